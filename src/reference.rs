//! Naive, obviously correct implementations of every kernel, with the same signatures and
//! the same argument checks as [`kernels`](crate::kernels).
//!
//! These are the oracle the crate's tests compare the SIMD kernels against, and they are
//! public so that a crate embedding `deltaprop` can test its own code against them. Each is
//! the textbook loop in the seed's notation, summing in index order in `T`'s precision; the
//! activations come from [`Activation::eval`]. They are slow on purpose: do not train with
//! them.
//!
//! ```
//! use deltaprop::{kernels, reference, Activation};
//! // Check the SIMD kernel against its twin on inputs of your own.
//! let n = [-3.0f32, -0.5, 0.0, 0.5, 3.0];
//! let (mut a, mut d, mut a_ref, mut d_ref) = ([0.0; 5], [0.0; 5], [0.0; 5], [0.0; 5]);
//! kernels::activate(Activation::Tanh, &n, &mut a, &mut d)?;
//! reference::activate(Activation::Tanh, &n, &mut a_ref, &mut d_ref)?;
//! for i in 0..5 {
//!     assert!((a[i] - a_ref[i]).abs() <= 4.0 * f32::EPSILON * a_ref[i].abs());
//!     assert!((d[i] - d_ref[i]).abs() <= 1e-6);
//! }
//! # Ok::<(), deltaprop::Error>(())
//! ```

use crate::activation::Activation;
use crate::error::Error;
use crate::kernels::batch::{
    check_apply, check_backward as check_batch_backward, check_forward, check_gradient,
    check_update,
};
use crate::kernels::{check_activate, check_affine, check_backward, check_rank1};
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;

/// n_c = b_c + Σ_r W_rc â_r, summed over r in order.
pub fn affine<T: Scalar>(
    w: MatRef<'_, T>,
    a_prev: &[T],
    b: &[T],
    n: &mut [T],
) -> Result<(), Error> {
    check_affine(&w, a_prev, b, n)?;
    for c in 0..w.cols() {
        let mut sum = b[c];
        for (r, &ar) in a_prev.iter().enumerate() {
            sum += w.get(r, c) * ar;
        }
        n[c] = sum;
    }
    Ok(())
}

/// a_i, d_i = σ(n_i), σ'(n_i) from [`Activation::eval`].
pub fn activate<T: Scalar>(
    act: Activation,
    n: &[T],
    a: &mut [T],
    d: &mut [T],
) -> Result<(), Error> {
    check_activate(act, n, a, d)?;
    for i in 0..n.len() {
        let (ai, di) = act.eval(n[i]).expect("element-wise, checked above");
        a[i] = ai;
        d[i] = di;
    }
    Ok(())
}

/// W_rc ← W_rc − α · â_r · δ_c.
pub fn rank1_update<T: Scalar>(
    mut w: MatMut<'_, T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
) -> Result<(), Error> {
    check_rank1(w.rows(), w.cols(), alpha, a_prev, delta)?;
    for (r, &ar) in a_prev.iter().enumerate() {
        for (wc, &dc) in w.row_mut(r).iter_mut().zip(delta) {
            *wc -= alpha * ar * dc;
        }
    }
    Ok(())
}

/// δ̂_r = σ̂'_r · Σ_c W_rc δ_c, summed over c in order.
pub fn backward<T: Scalar>(
    w: MatRef<'_, T>,
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    check_backward(w.rows(), w.cols(), delta, d_prev, delta_prev)?;
    for r in 0..w.rows() {
        let mut sum = T::ZERO;
        for (&wc, &dc) in w.row(r).iter().zip(delta) {
            sum += wc * dc;
        }
        delta_prev[r] = d_prev[r] * sum;
    }
    Ok(())
}

/// [`backward`] on the old W, then [`rank1_update`].
pub fn backward_update<T: Scalar>(
    w: MatMut<'_, T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    check_rank1(w.rows(), w.cols(), alpha, a_prev, delta)?;
    backward(w.as_ref(), delta, d_prev, delta_prev)?;
    rank1_update(w, alpha, a_prev, delta)
}

/// N_ic = b_c + Σ_r Â_ir W_rc (summed over r in order), then A_ic, D_ic = σ(N_ic), σ'(N_ic)
/// from [`Activation::eval`].
pub fn batch_forward<T: Scalar>(
    act: Activation,
    w: MatRef<'_, T>,
    b: &[T],
    a_prev: MatRef<'_, T>,
    mut a: MatMut<'_, T>,
    mut d: MatMut<'_, T>,
) -> Result<(), Error> {
    check_forward(act, &w, b, &a_prev, &a, &d)?;
    for i in 0..a_prev.rows() {
        for (c, &bc) in b.iter().enumerate() {
            let mut sum = bc;
            for (r, &ar) in a_prev.row(i).iter().enumerate() {
                sum += ar * w.get(r, c);
            }
            let (ai, di) = act.eval(sum).expect("element-wise, checked above");
            a.row_mut(i)[c] = ai;
            d.row_mut(i)[c] = di;
        }
    }
    Ok(())
}

/// Δ̂_ir = D̂_ir · Σ_c W_rc Δ_ic, summed over c in order.
pub fn batch_backward<T: Scalar>(
    w: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    d_prev: MatRef<'_, T>,
    mut delta_prev: MatMut<'_, T>,
) -> Result<(), Error> {
    check_batch_backward(&w, &delta, &d_prev, &delta_prev)?;
    for i in 0..delta.rows() {
        for r in 0..w.rows() {
            let mut sum = T::ZERO;
            for (&wc, &dc) in w.row(r).iter().zip(delta.row(i)) {
                sum += wc * dc;
            }
            delta_prev.row_mut(i)[r] = d_prev.get(i, r) * sum;
        }
    }
    Ok(())
}

/// G_rc ← β·G_rc + s·Σ_i Â_ir Δ_ic and g_b,c ← β·g_b,c + s·Σ_i Δ_ic, summed over i in
/// order; G and g_b are not read when β = 0.
pub fn batch_gradient<T: Scalar>(
    a_prev: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    scale: T,
    beta: T,
    mut g: MatMut<'_, T>,
    g_b: &mut [T],
) -> Result<(), Error> {
    check_gradient(
        &a_prev,
        &delta,
        scale,
        beta,
        (g.rows(), g.cols()),
        g_b.len(),
    )?;
    let keep = |old: T| if beta == T::ZERO { T::ZERO } else { beta * old };
    for (c, gc) in g_b.iter_mut().enumerate() {
        let mut sum = T::ZERO;
        for i in 0..delta.rows() {
            sum += delta.get(i, c);
        }
        *gc = keep(*gc) + scale * sum;
    }
    for r in 0..a_prev.cols() {
        for c in 0..delta.cols() {
            let mut sum = T::ZERO;
            for i in 0..a_prev.rows() {
                sum += a_prev.get(i, r) * delta.get(i, c);
            }
            let old = g.get(r, c);
            g.row_mut(r)[c] = keep(old) + scale * sum;
        }
    }
    Ok(())
}

/// [`batch_gradient`] with s = −α/B and β = 1 on W and b; nothing for B = 0.
pub fn batch_update<T: Scalar>(
    w: MatMut<'_, T>,
    b: &mut [T],
    alpha: T,
    a_prev: MatRef<'_, T>,
    delta: MatRef<'_, T>,
) -> Result<(), Error> {
    check_update((w.rows(), w.cols()), b.len(), alpha, &a_prev, &delta)?;
    if a_prev.rows() == 0 {
        return Ok(());
    }
    let scale = -alpha / T::from_f64(a_prev.rows() as f64);
    batch_gradient(a_prev, delta, scale, T::ONE, w, b)
}

/// W_rc ← W_rc − α·G_rc, b_c ← b_c − α·g_b,c.
pub fn apply_gradient<T: Scalar>(
    mut w: MatMut<'_, T>,
    b: &mut [T],
    alpha: T,
    g: MatRef<'_, T>,
    g_b: &[T],
) -> Result<(), Error> {
    check_apply((w.rows(), w.cols()), b.len(), alpha, &g, g_b.len())?;
    for (bc, &gc) in b.iter_mut().zip(g_b) {
        *bc -= alpha * gc;
    }
    for r in 0..w.rows() {
        for (wc, &gc) in w.row_mut(r).iter_mut().zip(g.row(r)) {
            *wc -= alpha * gc;
        }
    }
    Ok(())
}
