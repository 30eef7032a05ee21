//! Learns XOR with a 2-4-1 network driven by the kernels alone, one SGD step per sample,
//! exactly as the seed notes derive it:
//!
//! forward  n = Wᵀâ + b, a = σ(n), keeping â and A = diag(σ'(n)) per layer;
//! output   δ = −2 A (t − y)                      (squared error f = ‖t − y‖²);
//! backward δ̂ = Â W δ together with W ← W − α â δᵀ (`backward_update`), b ← b − α δ.
//!
//! Run: `cargo run --release --example xor`

use deltaprop::{Activation, Error, Matrix, kernels};

/// A small deterministic generator for the initial weights (xorshift64*).
struct Rng(u64);

impl Rng {
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        lo + (hi - lo) * (bits as f64 / (1u64 << 53) as f64)
    }
}

fn main() -> Result<(), Error> {
    const H: usize = 4; // hidden neurons
    let inputs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let targets = [0.0, 1.0, 1.0, 0.0];
    let alpha = 0.2;

    let mut rng = Rng(0x05EE_D0FD_E17A);
    // Layer 1: 2 inputs → H hidden (tanh); layer 2: H → 1 output (sigmoid).
    let mut w1 = Matrix::<f64>::zeros(2, H);
    let mut w2 = Matrix::<f64>::zeros(H, 1);
    for r in 0..2 {
        w1.row_mut(r)
            .iter_mut()
            .for_each(|w| *w = rng.uniform(-1.0, 1.0));
    }
    for r in 0..H {
        w2.row_mut(r)[0] = rng.uniform(-1.0, 1.0);
    }
    let (mut b1, mut b2) = (vec![0.0; H], vec![0.0; 1]);

    // Workspaces: every step reuses them, nothing is allocated in the loop.
    let mut ws = Workspace {
        n1: vec![0.0; H],
        a1: vec![0.0; H],
        d1: vec![0.0; H],
        n2: vec![0.0; 1],
        y: vec![0.0; 1],
        d2: vec![0.0; 1],
    };
    let (mut delta2, mut delta1) = (vec![0.0; 1], vec![0.0; H]);

    for epoch in 0..=3000 {
        let mut total = 0.0;
        for (x, &t) in inputs.iter().zip(&targets) {
            ws.forward(&w1, &b1, &w2, &b2, x)?;
            let y = ws.y[0];
            total += (t - y) * (t - y);
            delta2[0] = -2.0 * ws.d2[0] * (t - y);
            // Layer 2: δ₁ = A₁ W₂ δ₂ from the old W₂, and W₂ ← W₂ − α a₁ δ₂ᵀ, in one pass.
            kernels::backward_update(w2.as_mut(), alpha, &ws.a1, &delta2, &ws.d1, &mut delta1)?;
            b2[0] -= alpha * delta2[0];
            // Layer 1: only the update (no layer below needs a δ).
            kernels::rank1_update(w1.as_mut(), alpha, x, &delta1)?;
            b1.iter_mut()
                .zip(&delta1)
                .for_each(|(b, d)| *b -= alpha * d);
        }
        if epoch % 500 == 0 {
            println!("epoch {epoch:4}: total squared error {total:.6}");
        }
    }

    println!("\n  x1  x2 | target | output");
    let mut correct = 0;
    for (x, &t) in inputs.iter().zip(&targets) {
        ws.forward(&w1, &b1, &w2, &b2, x)?;
        let y = ws.y[0];
        correct += usize::from((y > 0.5) == (t > 0.5));
        println!("  {:.0}   {:.0}  |   {t:.0}    | {y:.4}", x[0], x[1]);
    }
    println!(
        "\n{correct}/4 correct (SIMD level: {})",
        deltaprop::simd::active()
    );
    Ok(())
}

/// Each layer's n, a = σ(n) and d = σ'(n) (the diagonal of A).
struct Workspace {
    n1: Vec<f64>,
    a1: Vec<f64>,
    d1: Vec<f64>,
    n2: Vec<f64>,
    y: Vec<f64>,
    d2: Vec<f64>,
}

impl Workspace {
    fn forward(
        &mut self,
        w1: &Matrix<f64>,
        b1: &[f64],
        w2: &Matrix<f64>,
        b2: &[f64],
        x: &[f64],
    ) -> Result<(), Error> {
        kernels::affine(w1.as_ref(), x, b1, &mut self.n1)?;
        kernels::activate(Activation::Tanh, &self.n1, &mut self.a1, &mut self.d1)?;
        kernels::affine(w2.as_ref(), &self.a1, b2, &mut self.n2)?;
        kernels::activate(Activation::Sigmoid, &self.n2, &mut self.y, &mut self.d2)
    }
}
