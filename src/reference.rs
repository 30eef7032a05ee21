//! Naive, obviously correct implementations of every kernel, with the same signatures and
//! the same argument checks as [`kernels`](crate::kernels).
//!
//! These are the oracle the crate's tests compare the SIMD kernels against, and they are
//! public so that a crate embedding `deltaprop` can test its own code against them. Each is
//! the textbook loop in the seed's notation, summing in index order in `T`'s precision; the
//! activations come from [`Activation::eval`]. They are slow on purpose: do not train with
//! them.

use crate::activation::Activation;
use crate::error::Error;
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
