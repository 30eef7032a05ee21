//! Gradient checks: for every hidden activation × output activation × loss the network
//! accepts, the backpropagated gradient (per sample, and the mean over a batch) matches
//! central finite differences of the loss in f64 to a relative error of 1e-6; a batch of one
//! is `train_sample` bit for bit.

use deltaprop::{Activation, Gradients, Layer, Loss, MatRef, Matrix, Network};

const H_FD: f64 = 1e-4;
const TOL: f64 = 1e-6;
/// Gradients below this size are compared absolutely (|g − fd| ≤ TOL · FLOOR = 1e-10): the
/// rounding noise of the difference quotient, about ε·ψ/h, reaches 1e-11.
const FLOOR: f64 = 1e-4;

fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// Every combination `Network::new` accepts: hidden σ (element-wise), output σ, loss.
fn combinations() -> Vec<(Activation, Activation, Loss)> {
    let mut v = vec![];
    for hidden in Activation::ELEMENTWISE {
        for out in Activation::ELEMENTWISE
            .into_iter()
            .chain([Activation::Softmax])
        {
            v.push((hidden, out, Loss::SquaredError));
            if out == Activation::Softmax {
                v.push((hidden, out, Loss::CrossEntropy));
            }
        }
    }
    v
}

/// A 4-5-4-3 network: two hidden layers, so δ is carried back through a hidden layer too.
/// Biases are drawn in ±0.1 rather than zero, so that no pre-activation sits exactly on a
/// ReLU's kink (a hidden unit whose inputs are all 0 would have n = b = 0). Seeds whose
/// gradient vanishes (every ReLU output dead) are skipped: they would check nothing.
fn network(hidden: Activation, out: Activation, loss: Loss, seed: u64) -> Network<f64> {
    let net = Network::builder(4)
        .layer(5, hidden)
        .layer(4, hidden)
        .layer(3, out)
        .loss(loss)
        .seed(seed)
        .build()
        .unwrap();
    let layers = net
        .layers()
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let b: Vec<f64> = values(l.outputs(), seed * 7 + k as u64)
                .iter()
                .map(|v| 0.1 * v)
                .collect();
            let w = Matrix::from_row_major(l.inputs(), l.outputs(), &l.weights().to_row_major());
            Layer::new(w.unwrap(), b, l.activation()).unwrap()
        })
        .collect();
    Network::new(layers, loss).unwrap()
}

/// A network for the combination whose gradient on (x, t) is not all zero.
fn live_network(
    hidden: Activation,
    out: Activation,
    loss: Loss,
    seed: u64,
    x: MatRef<'_, f64>,
    t: MatRef<'_, f64>,
) -> Network<f64> {
    for s in seed..seed + 20 {
        let mut net = network(hidden, out, loss, s);
        let mut g = net.gradients();
        net.gradient_batch(x, t, &mut g).unwrap();
        if g.as_slice().iter().filter(|v| v.abs() > FLOOR).count() > 3 {
            return net;
        }
    }
    panic!("{hidden} → {out}, {loss}: no seed gives a gradient");
}

/// Targets that fit the output: one-hot rows (CE), points of the simplex (Softmax + SE),
/// values in (0.1, 0.9) (bounded σ) or in (−1, 1).
fn targets(out: Activation, loss: Loss, rows: usize, seed: u64) -> Vec<f64> {
    let r = values(rows * 3, seed);
    match (out, loss) {
        (_, Loss::CrossEntropy) => (0..rows * 3)
            .map(|i| if i % 3 == (i / 3) % 3 { 1.0 } else { 0.0 })
            .collect(),
        (Activation::Softmax, _) => r
            .chunks(3)
            .flat_map(|c| {
                let e: Vec<f64> = c.iter().map(|v| v.exp()).collect();
                let s: f64 = e.iter().sum();
                e.into_iter().map(move |v| v / s)
            })
            .collect(),
        (Activation::Sigmoid, _) => r.iter().map(|v| 0.5 + 0.4 * v).collect(),
        _ => r,
    }
}

/// The network with parameter `p` (flat index in `Gradients` order) moved by `by`.
fn nudged(net: &Network<f64>, p: usize, by: f64) -> Network<f64> {
    let mut i = p;
    let layers = net
        .layers()
        .iter()
        .map(|l| {
            let mut w = l.weights().to_row_major();
            let mut b = l.bias().to_vec();
            if i < w.len() {
                w[i] += by;
            } else if i < w.len() + b.len() {
                b[i - w.len()] += by;
            }
            i = i.wrapping_sub(w.len() + b.len());
            let w = Matrix::from_row_major(l.inputs(), l.outputs(), &w).unwrap();
            Layer::new(w, b, l.activation()).unwrap()
        })
        .collect();
    Network::new(layers, net.loss()).unwrap()
}

/// Mean loss over the batch, from the seed's totals.
fn mean_loss(net: &Network<f64>, x: MatRef<'_, f64>, t: MatRef<'_, f64>) -> f64 {
    let e = net.evaluate(x, t).unwrap();
    let total = match net.loss() {
        Loss::SquaredError => e.total_squared_error,
        Loss::CrossEntropy => e.total_cross_entropy.unwrap(),
    };
    total / x.rows() as f64
}

/// Central differences with one Richardson step: O(h⁴) truncation error.
fn finite_difference(net: &Network<f64>, p: usize, x: MatRef<'_, f64>, t: MatRef<'_, f64>) -> f64 {
    let d = |h: f64| {
        (mean_loss(&nudged(net, p, h), x, t) - mean_loss(&nudged(net, p, -h), x, t)) / (2.0 * h)
    };
    (4.0 * d(H_FD / 2.0) - d(H_FD)) / 3.0
}

fn check(
    what: &str,
    g: &Gradients<f64>,
    net: &Network<f64>,
    x: MatRef<'_, f64>,
    t: MatRef<'_, f64>,
) {
    let mut worst = 0.0f64;
    for (p, &gp) in g.as_slice().iter().enumerate() {
        let fd = finite_difference(net, p, x, t);
        let rel = (gp - fd).abs() / gp.abs().max(fd.abs()).max(FLOOR);
        assert!(
            rel <= TOL,
            "{what}: parameter {p}: backprop {gp:e}, finite differences {fd:e}, relative error {rel:e}"
        );
        worst = worst.max(rel);
    }
    assert!(
        g.as_slice().iter().any(|&v| v.abs() > FLOOR),
        "{what}: a zero gradient checks nothing"
    );
}

#[test]
fn per_sample_gradient_matches_finite_differences() {
    for (i, (hidden, out, loss)) in combinations().into_iter().enumerate() {
        let x = values(4, 7 + i as u64);
        let t = targets(out, loss, 1, 50 + i as u64);
        let (xm, tm) = (
            MatRef::from_slice(&x, 1, 4, 4).unwrap(),
            MatRef::from_slice(&t, 1, 3, 3).unwrap(),
        );
        let mut net = live_network(hidden, out, loss, 100 + 20 * i as u64, xm, tm);
        let mut g = net.gradients();
        let psi = net.gradient_sample(&x, &t, &mut g).unwrap();
        assert!((psi - mean_loss(&net, xm, tm)).abs() <= 1e-14 * psi.abs().max(1.0));
        check(
            &format!("{hidden} → {out}, {loss}, one sample"),
            &g,
            &net,
            xm,
            tm,
        );
    }
}

#[test]
fn batch_mean_gradient_matches_finite_differences() {
    const B: usize = 3;
    for (i, (hidden, out, loss)) in combinations().into_iter().enumerate() {
        let x = values(B * 4, 17 + i as u64);
        let t = targets(out, loss, B, 70 + i as u64);
        let (xm, tm) = (
            MatRef::from_slice(&x, B, 4, 4).unwrap(),
            MatRef::from_slice(&t, B, 3, 3).unwrap(),
        );
        let mut net = live_network(hidden, out, loss, 5000 + 20 * i as u64, xm, tm);
        let mut g = net.gradients();
        let psi = net.gradient_batch(xm, tm, &mut g).unwrap();
        assert!((psi - mean_loss(&net, xm, tm)).abs() <= 1e-14 * psi.abs().max(1.0));
        check(
            &format!("{hidden} → {out}, {loss}, batch of {B}"),
            &g,
            &net,
            xm,
            tm,
        );
    }
}

#[test]
fn a_batch_of_one_is_train_sample_and_duplicates_average_to_it() {
    for (i, (hidden, out, loss)) in combinations().into_iter().enumerate() {
        let mut a = network(hidden, out, loss, 300 + i as u64);
        let mut b = a.clone();
        let x = values(4, 27 + i as u64);
        let t = targets(out, loss, 1, 90 + i as u64);
        let (xm, tm) = (
            MatRef::from_slice(&x, 1, 4, 4).unwrap(),
            MatRef::from_slice(&t, 1, 3, 3).unwrap(),
        );
        // The batch's mean gradient over two copies of a sample is that sample's gradient.
        let x2: Vec<f64> = x.iter().chain(&x).copied().collect();
        let t2: Vec<f64> = t.iter().chain(&t).copied().collect();
        let (x2m, t2m) = (
            MatRef::from_slice(&x2, 2, 4, 4).unwrap(),
            MatRef::from_slice(&t2, 2, 3, 3).unwrap(),
        );
        let (mut g1, mut g2) = (a.gradients(), a.gradients());
        a.gradient_sample(&x, &t, &mut g1).unwrap();
        a.gradient_batch(x2m, t2m, &mut g2).unwrap();
        for (p, q) in g1.as_slice().iter().zip(g2.as_slice()) {
            assert!(
                (p - q).abs() <= 1e-13 * p.abs().max(1.0),
                "{hidden} → {out}, {loss}: {p} vs {q}"
            );
        }
        for _ in 0..3 {
            let la = a.train_sample(&x, &t, 0.05).unwrap();
            let lb = b.train_batch(xm, tm, 0.05).unwrap();
            assert_eq!(la.to_bits(), lb.to_bits());
        }
        for (la, lb) in a.layers().iter().zip(b.layers()) {
            assert_eq!(la.weights().to_row_major(), lb.weights().to_row_major());
            assert_eq!(la.bias(), lb.bias());
        }
    }
}

#[test]
fn train_sample_steps_along_the_gradient() {
    // W_after = W_before − α ∂ψ/∂W for every parameter (to rounding).
    for (i, (hidden, out, loss)) in combinations().into_iter().enumerate().step_by(5) {
        let mut net = network(hidden, out, loss, 400 + i as u64);
        let x = values(4, 37 + i as u64);
        let t = targets(out, loss, 1, 11 + i as u64);
        let mut g = net.gradients();
        net.gradient_sample(&x, &t, &mut g).unwrap();
        let mut expect = net.clone();
        expect.apply_gradients(&g, 0.25).unwrap();
        net.train_sample(&x, &t, 0.25).unwrap();
        for (la, lb) in net.layers().iter().zip(expect.layers()) {
            for (p, q) in la
                .weights()
                .to_row_major()
                .iter()
                .zip(lb.weights().to_row_major())
            {
                assert!((p - q).abs() < 1e-14, "{hidden} → {out}, {loss}");
            }
        }
    }
}
