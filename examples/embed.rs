//! How another crate embeds deltaprop's kernels: it keeps its own parameter storage (here one
//! flat arena holding every layer's W and b at its own offsets and strides) and its own
//! scratch buffers, and calls the kernels on borrowed views of them. No `Network`, no
//! allocation inside the training loop.
//!
//! Three ways to train a 4-16-3 regressor (tanh hidden layer, identity output, squared error):
//!
//! 1. per-sample SGD: `affine` + `activate` forward, δ = −2 A (t − y), `backward_update` on
//!    the output layer and `rank1_update` on the first;
//! 2. minibatch SGD: `batch_forward`, `batch_backward`, `batch_update`;
//! 3. data-parallel: each "worker" computes its shard's gradient with `batch_gradient` into a
//!    gradient arena laid out like the parameters, the arenas are summed (the all-reduce), and
//!    `apply_gradient` takes the step.
//!
//! Finally the per-sample step is checked against `deltaprop::reference`, the naive twins an
//! embedding crate can test its own code against.
//!
//! Run: `cargo run --release --example embed`

use deltaprop::{Activation, Error, MatMut, MatRef, kernels, reference};

const H: usize = 4; // inputs
const M: usize = 16; // hidden
const L: usize = 3; // outputs
/// Row stride of W₁ in the arena: padded, as an embedding crate might for its own reasons.
const S1: usize = 20;

/// Offsets of W₁ (H × M at stride S1), b₁ (M), W₂ (M × L, stride L), b₂ (L) in the arena.
const W1: usize = 0;
const B1: usize = W1 + (H - 1) * S1 + M;
const W2: usize = B1 + M;
const B2: usize = W2 + M * L;
const PARAMS: usize = B2 + L;

/// W₁, b₁, W₂, b₂ of an arena, mutable.
type Parts<'a> = (
    MatMut<'a, f32>,
    &'a mut [f32],
    MatMut<'a, f32>,
    &'a mut [f32],
);

/// Mutable views of the four parts of an arena (parameters or gradients).
fn split(arena: &mut [f32]) -> Result<Parts<'_>, Error> {
    let (w1, rest) = arena.split_at_mut(B1);
    let (b1, rest) = rest.split_at_mut(M);
    let (w2, b2) = rest.split_at_mut(M * L);
    Ok((
        MatMut::from_slice(w1, H, M, S1)?,
        b1,
        MatMut::from_slice(w2, M, L, L)?,
        b2,
    ))
}

/// The target function: t = (sin x₀ + x₁, x₂ · x₃, x₀ − x₃) / 2.
fn target(x: &[f32]) -> [f32; L] {
    [
        (x[0].sin() + x[1]) / 2.0,
        x[2] * x[3] / 2.0,
        (x[0] - x[3]) / 2.0,
    ]
}

/// A small deterministic generator in [−1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Squared error ‖t − y‖² and δ = −2 A (t − y), element by element (for one sample or a
/// whole row-major batch).
fn output_delta(y: &[f32], d: &[f32], t: &[f32], delta: &mut [f32]) -> f32 {
    let mut loss = 0.0;
    for (((dj, &yj), &aj), &tj) in delta.iter_mut().zip(y).zip(d).zip(t) {
        let e = tj - yj;
        loss += e * e;
        *dj = -2.0 * aj * e;
    }
    loss
}

/// Caller-owned per-sample scratch.
struct Scratch {
    n1: [f32; M],
    a1: [f32; M],
    d1: [f32; M],
    delta1: [f32; M],
    y: [f32; L],
    d2: [f32; L],
    delta2: [f32; L],
}

/// One per-sample SGD step on the arena; returns the loss before it.
fn sgd_step(
    p: &mut [f32],
    s: &mut Scratch,
    x: &[f32],
    t: &[f32],
    alpha: f32,
) -> Result<f32, Error> {
    let (mut w1, b1, mut w2, b2) = split(p)?;
    kernels::affine(w1.as_ref(), x, b1, &mut s.n1)?;
    kernels::activate(Activation::Tanh, &s.n1, &mut s.a1, &mut s.d1)?;
    let mut n2 = [0.0; L];
    kernels::affine(w2.as_ref(), &s.a1, b2, &mut n2)?;
    kernels::activate(Activation::Identity, &n2, &mut s.y, &mut s.d2)?;
    let loss = output_delta(&s.y, &s.d2, t, &mut s.delta2);
    kernels::backward_update(w2.reborrow(), alpha, &s.a1, &s.delta2, &s.d1, &mut s.delta1)?;
    kernels::rank1_update(w1.reborrow(), alpha, x, &s.delta1)?;
    for (b, d) in b2.iter_mut().zip(&s.delta2) {
        *b -= alpha * d;
    }
    for (b, d) in b1.iter_mut().zip(&s.delta1) {
        *b -= alpha * d;
    }
    Ok(loss)
}

/// Caller-owned minibatch scratch for B rows.
struct BatchScratch {
    a1: Vec<f32>,
    d1: Vec<f32>,
    delta1: Vec<f32>,
    y: Vec<f32>,
    d2: Vec<f32>,
    delta2: Vec<f32>,
}

impl BatchScratch {
    fn new(b: usize) -> Self {
        BatchScratch {
            a1: vec![0.0; b * M],
            d1: vec![0.0; b * M],
            delta1: vec![0.0; b * M],
            y: vec![0.0; b * L],
            d2: vec![0.0; b * L],
            delta2: vec![0.0; b * L],
        }
    }
}

/// Forward and backward for the B rows of `x`/`t`, leaving Δ₁, Δ₂ (and Â₁) in `s`; returns
/// the mean loss. The parameters are only read.
fn batch_deltas(p: &[f32], s: &mut BatchScratch, x: &[f32], t: &[f32]) -> Result<f32, Error> {
    let b = x.len() / H;
    let w1 = MatRef::from_slice(&p[W1..B1], H, M, S1)?;
    let w2 = MatRef::from_slice(&p[W2..B2], M, L, L)?;
    let xm = MatRef::from_slice(x, b, H, H)?;
    kernels::batch_forward(
        Activation::Tanh,
        w1,
        &p[B1..W2],
        xm,
        MatMut::from_slice(&mut s.a1, b, M, M)?,
        MatMut::from_slice(&mut s.d1, b, M, M)?,
    )?;
    kernels::batch_forward(
        Activation::Identity,
        w2,
        &p[B2..PARAMS],
        MatRef::from_slice(&s.a1, b, M, M)?,
        MatMut::from_slice(&mut s.y, b, L, L)?,
        MatMut::from_slice(&mut s.d2, b, L, L)?,
    )?;
    let loss = output_delta(&s.y, &s.d2, t, &mut s.delta2);
    kernels::batch_backward(
        w2,
        MatRef::from_slice(&s.delta2, b, L, L)?,
        MatRef::from_slice(&s.d1, b, M, M)?,
        MatMut::from_slice(&mut s.delta1, b, M, M)?,
    )?;
    Ok(loss / b as f32)
}

/// One minibatch SGD step: W ← W − (α/B) ÂᵀΔ per layer.
fn batch_step(
    p: &mut [f32],
    s: &mut BatchScratch,
    x: &[f32],
    t: &[f32],
    alpha: f32,
) -> Result<f32, Error> {
    let loss = batch_deltas(p, s, x, t)?;
    let b = x.len() / H;
    let (w1, b1, w2, b2) = split(p)?;
    kernels::batch_update(
        w2,
        b2,
        alpha,
        MatRef::from_slice(&s.a1, b, M, M)?,
        MatRef::from_slice(&s.delta2, b, L, L)?,
    )?;
    kernels::batch_update(
        w1,
        b1,
        alpha,
        MatRef::from_slice(x, b, H, H)?,
        MatRef::from_slice(&s.delta1, b, M, M)?,
    )?;
    Ok(loss)
}

/// Adds this shard's share of the whole batch's mean gradient to `g` (an arena laid out like
/// the parameters): G ← G + (1/B_total) ÂᵀΔ.
fn shard_gradient(
    p: &[f32],
    g: &mut [f32],
    s: &mut BatchScratch,
    x: &[f32],
    t: &[f32],
    total: usize,
) -> Result<(), Error> {
    batch_deltas(p, s, x, t)?;
    let b = x.len() / H;
    let scale = 1.0 / total as f32;
    let (g1, gb1, g2, gb2) = split(g)?;
    kernels::batch_gradient(
        MatRef::from_slice(&s.a1, b, M, M)?,
        MatRef::from_slice(&s.delta2, b, L, L)?,
        scale,
        1.0,
        g2,
        gb2,
    )?;
    kernels::batch_gradient(
        MatRef::from_slice(x, b, H, H)?,
        MatRef::from_slice(&s.delta1, b, M, M)?,
        scale,
        1.0,
        g1,
        gb1,
    )?;
    Ok(())
}

fn main() -> Result<(), Error> {
    let mut rng = Rng(0x00C0_FFEE);
    let mut params = vec![0.0f32; PARAMS];
    {
        let (mut w1, _, mut w2, _) = split(&mut params)?;
        for r in 0..H {
            w1.row_mut(r).iter_mut().for_each(|w| *w = rng.next() * 0.9);
        }
        for r in 0..M {
            w2.row_mut(r).iter_mut().for_each(|w| *w = rng.next() * 0.5);
        }
    }
    const N: usize = 512;
    let x: Vec<f32> = (0..N * H).map(|_| rng.next()).collect();
    let t: Vec<f32> = x.chunks(H).flat_map(target).collect();
    let mean_loss = |p: &[f32]| -> Result<f32, Error> {
        let mut s = BatchScratch::new(N);
        batch_deltas(p, &mut s, &x, &t)
    };

    // 1. Per-sample SGD.
    let mut p1 = params.clone();
    let mut s = Scratch {
        n1: [0.0; M],
        a1: [0.0; M],
        d1: [0.0; M],
        delta1: [0.0; M],
        y: [0.0; L],
        d2: [0.0; L],
        delta2: [0.0; L],
    };
    println!(
        "start:                              mean loss {:.4}",
        mean_loss(&p1)?
    );
    for _ in 0..40 {
        for i in 0..N {
            sgd_step(&mut p1, &mut s, &x[i * H..][..H], &t[i * L..][..L], 0.02)?;
        }
    }
    println!(
        "per-sample SGD, 40 epochs:          mean loss {:.4}",
        mean_loss(&p1)?
    );

    // 2. Minibatch SGD, B = 16.
    const B: usize = 16;
    let mut p2 = params.clone();
    let mut bs = BatchScratch::new(B);
    for _ in 0..400 {
        for (xb, tb) in x.chunks(B * H).zip(t.chunks(B * L)) {
            batch_step(&mut p2, &mut bs, xb, tb, 0.1)?;
        }
    }
    println!(
        "minibatch SGD (B = 16), 400 epochs: mean loss {:.4}",
        mean_loss(&p2)?
    );

    // 3. Data-parallel: two workers, each half of every batch of 32; the gradient arenas are
    //    summed (the all-reduce) and applied.
    let mut p3 = params.clone();
    let (mut g, mut g_other) = (vec![0.0f32; PARAMS], vec![0.0f32; PARAMS]);
    let mut scratch = [BatchScratch::new(B), BatchScratch::new(B)];
    for _ in 0..400 {
        for (xb, tb) in x.chunks(2 * B * H).zip(t.chunks(2 * B * L)) {
            g.fill(0.0);
            g_other.fill(0.0);
            let (s0, s1) = scratch.split_at_mut(1);
            shard_gradient(&p3, &mut g, &mut s0[0], &xb[..B * H], &tb[..B * L], 2 * B)?;
            shard_gradient(
                &p3,
                &mut g_other,
                &mut s1[0],
                &xb[B * H..],
                &tb[B * L..],
                2 * B,
            )?;
            g.iter_mut().zip(&g_other).for_each(|(a, b)| *a += b);
            let (w1, b1, w2, b2) = split(&mut p3)?;
            kernels::apply_gradient(
                w1,
                b1,
                0.2,
                MatRef::from_slice(&g[W1..B1], H, M, S1)?,
                &g[B1..W2],
            )?;
            kernels::apply_gradient(
                w2,
                b2,
                0.2,
                MatRef::from_slice(&g[W2..B2], M, L, L)?,
                &g[B2..PARAMS],
            )?;
        }
    }
    println!(
        "data-parallel (2 × 16), 400 epochs: mean loss {:.4}",
        mean_loss(&p3)?
    );

    // The per-sample step against the reference kernels, from the same start.
    let (mut fast, mut naive) = (params.clone(), params.clone());
    sgd_step(&mut fast, &mut s, &x[..H], &t[..L], 0.05)?;
    {
        let (mut w1, b1, mut w2, b2) = split(&mut naive)?;
        let (mut n1, mut a1, mut d1, mut n2, mut y, mut d2) =
            ([0.0; M], [0.0; M], [0.0; M], [0.0; L], [0.0; L], [0.0; L]);
        reference::affine(w1.as_ref(), &x[..H], b1, &mut n1)?;
        reference::activate(Activation::Tanh, &n1, &mut a1, &mut d1)?;
        reference::affine(w2.as_ref(), &a1, b2, &mut n2)?;
        reference::activate(Activation::Identity, &n2, &mut y, &mut d2)?;
        let delta2: Vec<f32> = (0..L).map(|j| -2.0 * d2[j] * (t[j] - y[j])).collect();
        let mut delta1 = [0.0; M];
        reference::backward_update(w2.reborrow(), 0.05, &a1, &delta2, &d1, &mut delta1)?;
        reference::rank1_update(w1.reborrow(), 0.05, &x[..H], &delta1)?;
        b2.iter_mut().zip(&delta2).for_each(|(b, d)| *b -= 0.05 * d);
        b1.iter_mut().zip(&delta1).for_each(|(b, d)| *b -= 0.05 * d);
    }
    let worst = fast
        .iter()
        .zip(&naive)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("one step, kernels vs reference: largest difference {worst:.1e}");
    assert!(worst < 1e-5);
    Ok(())
}
