//! The guard that keeps a finite loss from turning into non-finite weights.
//!
//! A finite loss does not make a step safe: with inputs of 1e30 or a learning rate of 1e10
//! the update α â δᵀ, or the error signal δ̂ = Â W δ passed down, can overflow, and a weight
//! becomes ±∞ or NaN after a call that returned `Ok`. Checking the weights after the step
//! cannot undo it bit for bit, and keeping a copy of them before every step would double the
//! step's memory traffic. So every step is first bounded, in `f64`, from numbers the step
//! has already computed or that cost O(H + L) to get:
//!
//! - per layer, a ceiling c ≥ max(|W|, |b|), kept up to date by adding each step's bound on
//!   the update (exact at construction, and recomputed from W and b when it gets in the way;
//!   any new way of changing W or b outside these steps must keep it an upper bound);
//! - A ≥ max |â| (a static bound for Sigmoid and Tanh; Σ |âᵣ|, one vectorised pass,
//!   otherwise), P ≥ max |σ̂'| (a static bound except for Gelu), D ≥ max |δ| (Σ |δⱼ| at
//!   the output, whose length is L, then a bound carried down from the layer above).
//!
//! Then |α â δᵀ| ≤ α A D, |W δ| ≤ L · c · D, |δ̂| ≤ P · L · c · D, and every intermediate product and partial
//! sum of the kernels (α âᵣ, â δ summed over a batch of B, W δ) is at most
//! max(α, 1) · max(A, 1) · max(D, 1) · max(B, 1) or max(P, 1) · L · c · D. If all of these stay below a
//! quarter of T's largest value, no operation of the step can overflow (the factor four
//! absorbs rounding, including the slack of the ceilings' own sums), and the step runs as
//! it always has. Otherwise the ceilings are recomputed exactly, the bound is tried again,
//! and if it still fails the step runs on the slow path: the weights and biases are copied
//! aside (into a buffer kept for the next time), the step is taken, and if any weight or
//! bias is then not finite the copy is put back and the call is `Err(Diverged)`. Only
//! steps near overflow take that path, so ordinary training pays a few comparisons and a
//! pass over x (and over the hidden activations of unbounded σ) per step, and no allocation.

use crate::activation::Activation;
use crate::kernels::KernelSet;
use crate::matrix::MatRef;
use crate::scalar::Scalar;

use super::Layer;

/// Each layer's ceiling, the scratch of one step's bounds, and the slow path's copy.
#[derive(Clone, Default)]
pub(crate) struct StepGuard<T> {
    /// c_k ≥ max(|W_k|, |b_k|), in `f64`.
    ceiling: Vec<f64>,
    /// This step's bound on |ΔW_k| and |Δb_k|, added to the ceilings once the step is taken.
    growth: Vec<f64>,
    /// Weights and biases of every layer, copied before a step on the slow path.
    backup: Vec<T>,
}

/// Whether a step may run on the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The bound holds: no operation of the step can overflow.
    Fast,
    /// The bound fails even with exact ceilings: take the step with a copy to go back to.
    Checked,
}

/// A quarter of T's largest finite value.
pub(crate) fn limit<T: Scalar>() -> f64 {
    let max = if std::mem::size_of::<T>() == 4 {
        f64::from(f32::MAX)
    } else {
        f64::MAX
    };
    max / 4.0
}

/// `v ≤ lim`; false for NaN, so a NaN bound fails.
fn within(v: f64, lim: f64) -> bool {
    v <= lim
}

/// max |v| in `f64`; NaN if an element is NaN (so every bound built on it fails).
pub(crate) fn max_abs<T: Scalar>(v: &[T]) -> f64 {
    // Eight independent lanes of `if a > m { a } else { m }`, which is the semantics of the
    // x86 max instructions, so the loop vectorises; NaN is caught by the finiteness flag.
    let mut m = [T::ZERO; 8];
    let mut finite = true;
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            let a = c[i].abs();
            finite &= a.is_finite();
            m[i] = if a > m[i] { a } else { m[i] };
        }
    }
    for &e in chunks.remainder() {
        let a = e.abs();
        finite &= a.is_finite();
        m[0] = if a > m[0] { a } else { m[0] };
    }
    if !finite {
        return f64::NAN;
    }
    m.iter().fold(0.0f64, |acc, &e| acc.max(e.to_f64()))
}

/// Σ |v| in T, converted to `f64`: an upper bound on max |v| in one pass of the active SIMD
/// level's kernel, ±∞ or NaN if an element is not finite or the sum overflows T — and then
/// every bound built on it fails.
#[inline]
pub(crate) fn sum_abs<T: Scalar>(v: &[T]) -> f64 {
    KernelSet::active().sum_abs(v).to_f64()
}

/// [`sum_abs`] over the view's rows (an upper bound on max |m|), summed in `f64` in row
/// order.
pub(crate) fn sum_abs_rows<T: Scalar>(m: MatRef<'_, T>) -> f64 {
    (0..m.rows()).map(|r| sum_abs(m.row(r))).sum()
}

/// max |m| over the view's elements.
pub(crate) fn max_abs_rows<T: Scalar>(m: MatRef<'_, T>) -> f64 {
    let mut acc = 0.0f64;
    for r in 0..m.rows() {
        let v = max_abs(m.row(r));
        if v.is_nan() {
            return f64::NAN;
        }
        acc = acc.max(v);
    }
    acc
}

/// A static bound on |σ(n)| where σ has one.
#[inline]
fn output_bound(act: Activation) -> Option<f64> {
    match act {
        Activation::Sigmoid | Activation::Tanh => Some(1.0),
        _ => None,
    }
}

/// A static bound on |σ'(n)| where σ has one (GELU's derivative peaks near 1.13, and its
/// vectorised form is summed rather than trusted).
#[inline]
fn derivative_bound(act: Activation) -> Option<f64> {
    match act {
        Activation::Sigmoid => Some(0.25),
        Activation::Identity
        | Activation::Tanh
        | Activation::Relu
        | Activation::LeakyRelu
        | Activation::Softplus => Some(1.0),
        Activation::Gelu | Activation::Softmax => None,
    }
}

/// max(|W|, |b|) of one layer, exactly.
fn exact_ceiling<T: Scalar>(layer: &Layer<T>) -> f64 {
    let w = max_abs_rows(layer.w.as_ref());
    let b = max_abs(&layer.b);
    if w.is_nan() || b.is_nan() {
        f64::INFINITY
    } else {
        w.max(b)
    }
}

/// The activations below a layer and their derivatives: one sample's vectors, or a batch's
/// rows.
pub(crate) enum Below<'a, T: Scalar> {
    /// Per sample: â and σ̂' (no σ̂' below the first layer).
    Sample(&'a [T], Option<(&'a [T], Activation)>),
    /// A batch: Â and D̂.
    Batch(MatRef<'a, T>, Option<(MatRef<'a, T>, Activation)>),
    /// The input: a sample's x by its [`sum_abs`], or a batch's X by its [`sum_abs_rows`]
    /// (no σ̂' below the first layer), already known from the input checks.
    Input(f64),
}

impl<T: Scalar> Below<'_, T> {
    /// (A, P): bounds on |â| and |σ̂'| (P = 0 below the first layer, which passes no δ̂ on).
    #[inline]
    fn bounds(&self, act_below: Option<Activation>) -> (f64, f64) {
        let a = match (act_below.and_then(output_bound), self) {
            (Some(bound), _) => bound,
            (None, Below::Sample(a, _)) => sum_abs(a),
            (None, Below::Batch(a, _)) => sum_abs_rows(*a),
            (None, Below::Input(s)) => *s,
        };
        let p = match self {
            Below::Sample(_, None) | Below::Batch(_, None) | Below::Input(_) => 0.0,
            Below::Sample(_, Some((d, act))) => {
                derivative_bound(*act).unwrap_or_else(|| sum_abs(d))
            }
            Below::Batch(_, Some((d, act))) => {
                derivative_bound(*act).unwrap_or_else(|| sum_abs_rows(*d))
            }
        };
        (a, p)
    }
}

impl<T: Scalar> StepGuard<T> {
    /// A guard for `layers`, with exact ceilings.
    pub(crate) fn new(layers: &[Layer<T>]) -> Self {
        StepGuard {
            ceiling: layers.iter().map(exact_ceiling).collect(),
            growth: vec![0.0; layers.len()],
            backup: Vec::new(),
        }
    }

    /// Recomputes every ceiling from the weights.
    fn refresh(&mut self, layers: &[Layer<T>]) {
        for (c, layer) in self.ceiling.iter_mut().zip(layers) {
            *c = exact_ceiling(layer);
        }
    }

    /// Bounds a backward step from the output layer's δ (bound `d_out`) down, with `below(k)`
    /// giving layer k's â and σ̂'; `rows` is B (1 per sample). True if no operation of the
    /// step can overflow; `growth` then holds each layer's update bound.
    #[inline]
    fn bound_backward<'a>(
        &mut self,
        layers: &[Layer<T>],
        alpha: f64,
        rows: usize,
        d_out: f64,
        below: &impl Fn(usize) -> Below<'a, T>,
    ) -> bool
    where
        T: 'a,
    {
        let lim = limit::<T>();
        let mut d = d_out;
        for k in (0..layers.len()).rev() {
            let act_below = k.checked_sub(1).map(|j| layers[j].act);
            let (a, p) = below(k).bounds(act_below);
            let c = self.ceiling[k];
            // Intermediates: α âᵣ, Σᵢ âᵢ δᵢ over the batch, their scaled sum.
            let inter = alpha.max(1.0) * a.max(1.0) * d.max(1.0) * (rows as f64);
            // The update of W (α â δ) and of b (α δ).
            let growth = alpha * a.max(1.0) * d;
            if !within(c + inter, lim) {
                return false;
            }
            self.growth[k] = growth;
            if k > 0 {
                // δ̂ = σ̂' ⊙ (W δ), from W before its update: W δ must not overflow even where
                // σ̂' is 0 (0 · ∞ is NaN).
                let w_delta = (layers[k].outputs() as f64) * c * d;
                if !within(w_delta * p.max(1.0), lim) {
                    return false;
                }
                d = p * w_delta;
            }
        }
        true
    }

    /// Plans a backward step (see [`bound_backward`](Self::bound_backward)): `Fast` if the
    /// bound holds with the current ceilings or, failing that, with exact ones.
    #[inline]
    pub(crate) fn plan_backward<'a>(
        &mut self,
        layers: &[Layer<T>],
        alpha: T,
        rows: usize,
        d_out: f64,
        below: impl Fn(usize) -> Below<'a, T>,
    ) -> Plan
    where
        T: 'a,
    {
        let alpha = alpha.to_f64();
        if self.bound_backward(layers, alpha, rows, d_out, &below) {
            return Plan::Fast;
        }
        self.refresh(layers);
        if self.bound_backward(layers, alpha, rows, d_out, &below) {
            Plan::Fast
        } else {
            Plan::Checked
        }
    }

    /// Records a bound on max(|G_k|, |g_b,k|), layer k's gradient, for
    /// [`plan_apply`](Self::plan_apply).
    pub(crate) fn set_gradient_max(&mut self, k: usize, g_max: f64) {
        self.growth[k] = g_max;
    }

    /// Plans W ← W − α G, b ← b − α g_b for every layer, from the maxima recorded by
    /// [`set_gradient_max`](Self::set_gradient_max).
    pub(crate) fn plan_apply(&mut self, layers: &[Layer<T>], alpha: T) -> Plan {
        let alpha = alpha.to_f64();
        let lim = limit::<T>();
        for g in &mut self.growth {
            // From here on, the bound on the update α G.
            *g *= alpha;
        }
        // The only intermediate is the product α G_ij itself.
        let bound = |ceiling: &[f64], growth: &[f64]| {
            ceiling.iter().zip(growth).all(|(&c, &g)| c + g <= lim)
        };
        if bound(&self.ceiling, &self.growth) {
            return Plan::Fast;
        }
        self.refresh(layers);
        if bound(&self.ceiling, &self.growth) {
            Plan::Fast
        } else {
            Plan::Checked
        }
    }

    /// After a fast step: each ceiling grows by its layer's update bound.
    #[inline]
    pub(crate) fn taken(&mut self) {
        for (c, g) in self.ceiling.iter_mut().zip(&self.growth) {
            *c += g;
        }
    }

    /// Copies every weight and bias aside, for [`restore_if_not_finite`](Self::restore_if_not_finite).
    pub(crate) fn save(&mut self, layers: &[Layer<T>]) {
        self.backup.clear();
        for layer in layers {
            for r in 0..layer.w.rows() {
                self.backup.extend_from_slice(layer.w.row(r));
            }
            self.backup.extend_from_slice(&layer.b);
        }
    }

    /// After a step on the slow path: true, with the ceilings exact, if every weight and bias
    /// is finite; otherwise puts back the copy [`save`](Self::save) made and returns false.
    pub(crate) fn restore_if_not_finite(&mut self, layers: &mut [Layer<T>]) -> bool {
        self.refresh(layers);
        if self.ceiling.iter().all(|c| c.is_finite()) {
            return true;
        }
        let mut src = &self.backup[..];
        for layer in layers.iter_mut() {
            for r in 0..layer.w.rows() {
                let row = layer.w.row_mut(r);
                let (head, rest) = src.split_at(row.len());
                row.copy_from_slice(head);
                src = rest;
            }
            let (head, rest) = src.split_at(layer.b.len());
            layer.b.copy_from_slice(head);
            src = rest;
        }
        self.refresh(layers);
        false
    }
}
