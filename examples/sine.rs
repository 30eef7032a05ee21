//! Regression: a 1-32-32-1 network (tanh hidden layers, identity output, squared error)
//! learns y = sin x on [−π, π] by per-sample SGD through the network API, then prints its
//! fit on points it never saw.
//!
//! Run: `cargo run --release --example sine`

use std::f64::consts::PI;

use deltaprop::{Activation, EpochOptions, Error, Loss, Matrix, Network};

fn main() -> Result<(), Error> {
    const N: usize = 200;
    // Training points evenly spaced on [−π, π]; inputs scaled to [−1, 1].
    let xs: Vec<f64> = (0..N)
        .map(|i| -PI + 2.0 * PI * i as f64 / (N - 1) as f64)
        .collect();
    let x = Matrix::from_row_major(N, 1, &xs.iter().map(|v| v / PI).collect::<Vec<_>>())?;
    let t = Matrix::from_row_major(N, 1, &xs.iter().map(|v| v.sin()).collect::<Vec<_>>())?;

    let mut net = Network::<f64>::builder(1)
        .layer(32, Activation::Tanh)
        .layer(32, Activation::Tanh)
        .layer(1, Activation::Identity)
        .loss(Loss::SquaredError)
        .seed(1)
        .build()?;
    let opts = EpochOptions::default();
    net.fit(x.as_ref(), t.as_ref(), 0.01, 400, &opts, |epoch, loss| {
        if (epoch + 1) % 50 == 0 {
            println!("epoch {:>3}  mean squared error {loss:.2e}", epoch + 1);
        }
    })?;

    // Points between the training points.
    println!("\n     x      sin x    network");
    let mut worst = 0.0f64;
    for i in 0..N - 1 {
        let v = -PI + 2.0 * PI * (i as f64 + 0.5) / (N - 1) as f64;
        let y = net.predict(&[v / PI])?[0];
        worst = worst.max((y - v.sin()).abs());
        if i % 20 == 10 {
            println!("{v:>7.3}  {:>7.4}  {y:>8.4}", v.sin());
        }
    }
    println!("\nlargest error between the training points: {worst:.4}");
    Ok(())
}
