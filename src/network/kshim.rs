//! TEMPORARY stand-in for the batched kernels of `kernels::batch` (same signatures, naive
//! loops) until they land; removed then.
#![allow(dead_code)]

use crate::activation::Activation;
use crate::error::Error;
use crate::kernels;
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;

pub fn batch_forward<T: Scalar>(
    act: Activation,
    w: MatRef<'_, T>,
    b: &[T],
    a_prev: MatRef<'_, T>,
    mut a: MatMut<'_, T>,
    mut d: MatMut<'_, T>,
) -> Result<(), Error> {
    let mut n = vec![T::ZERO; w.cols()];
    for i in 0..a_prev.rows() {
        kernels::affine(w, a_prev.row(i), b, &mut n)?;
        let mut dr = d.row(i).to_vec();
        kernels::activate(act, &n, a.row_mut(i), &mut dr)?;
        d.row_mut(i).copy_from_slice(&dr);
    }
    Ok(())
}

pub fn batch_backward<T: Scalar>(
    w: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    d_prev: MatRef<'_, T>,
    mut delta_prev: MatMut<'_, T>,
) -> Result<(), Error> {
    for i in 0..delta.rows() {
        kernels::backward(w, delta.row(i), d_prev.row(i), delta_prev.row_mut(i))?;
    }
    Ok(())
}

pub fn batch_gradient<T: Scalar>(
    a_prev: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    scale: T,
    beta: T,
    mut g: MatMut<'_, T>,
    g_b: &mut [T],
) -> Result<(), Error> {
    for r in 0..g.rows() {
        for c in 0..g.cols() {
            let mut s = T::ZERO;
            for i in 0..a_prev.rows() {
                s += a_prev.get(i, r) * delta.get(i, c);
            }
            let old = if beta == T::ZERO {
                T::ZERO
            } else {
                beta * g.get(r, c)
            };
            g.row_mut(r)[c] = old + scale * s;
        }
    }
    for (c, gb) in g_b.iter_mut().enumerate() {
        let s: T = (0..delta.rows()).map(|i| delta.get(i, c)).sum();
        let old = if beta == T::ZERO { T::ZERO } else { beta * *gb };
        *gb = old + scale * s;
    }
    Ok(())
}

pub fn batch_update<T: Scalar>(
    mut w: MatMut<'_, T>,
    b: &mut [T],
    alpha: T,
    a_prev: MatRef<'_, T>,
    delta: MatRef<'_, T>,
) -> Result<(), Error> {
    let s = alpha / T::from_f64(a_prev.rows() as f64);
    for r in 0..w.rows() {
        for c in 0..w.cols() {
            let mut acc = T::ZERO;
            for i in 0..a_prev.rows() {
                acc += a_prev.get(i, r) * delta.get(i, c);
            }
            w.row_mut(r)[c] -= s * acc;
        }
    }
    for (c, bc) in b.iter_mut().enumerate() {
        let acc: T = (0..delta.rows()).map(|i| delta.get(i, c)).sum();
        *bc -= s * acc;
    }
    Ok(())
}

pub fn apply_gradient<T: Scalar>(
    mut w: MatMut<'_, T>,
    b: &mut [T],
    alpha: T,
    g: MatRef<'_, T>,
    g_b: &[T],
) -> Result<(), Error> {
    for r in 0..w.rows() {
        for c in 0..w.cols() {
            w.row_mut(r)[c] -= alpha * g.get(r, c);
        }
    }
    for (bc, &gb) in b.iter_mut().zip(g_b) {
        *bc -= alpha * gb;
    }
    Ok(())
}
