//! The per-sample kernels on one layer's W, split into FIXED blocks on wide layers and run on
//! rayon's pool (feature `rayon`) — or one after another without it.
//!
//! Whether and how a layer is split depends on its shape alone (never on the number of
//! threads): rows of W are independent in `backward`, `backward_update` and `rank1_update`,
//! columns in `affine`, and each kernel's summation order depends only on the shape of the
//! view it is given. So the result is the same bit for bit on any number of threads, with or
//! without the `rayon` feature. Below the thresholds a layer is one kernel call: splitting a
//! 64 × 32 (or even a 784 × 256) layer would only add the cost of waking a thread.
//!
//! Each function takes the layer's [`Matrix`] itself, not a view: the blocks are cut from the
//! matrix's buffer, which the network owns whole (a view borrows its elements only).

use crate::error::Error;
use crate::kernels;
use crate::matrix::{MatMut, MatRef, Matrix};
use crate::scalar::Scalar;

/// Bytes of W (H · L · size of T) from which a layer's per-sample kernels are split into
/// blocks: 2 MiB, twice the L2 cache of one core of the 2-core Zen 4 this was measured on.
/// Below it W fits in one core's L2 and a second thread gained nothing (512 × 512 and
/// 784 × 256 f32: `backward_update` 22.7 vs 23.2 µs and 18.3 vs 18.9 µs on one vs two
/// threads); above it each core streams its half from its own L2 (1024 × 1024 f32:
/// `backward_update` 157 → 58 µs, `affine` 137 → 77 µs).
pub const PAR_MIN_BYTES: usize = 2 << 20;

/// Rows of W per block in `backward`, `backward_update` and `rank1_update` on a split layer.
pub const ROW_BLOCK: usize = 128;

/// Columns of W per block in `affine` on a split layer.
pub const COL_BLOCK: usize = 256;

fn big<T>(h: usize, l: usize) -> bool {
    h.saturating_mul(l).saturating_mul(std::mem::size_of::<T>()) >= PAR_MIN_BYTES
}

fn split_rows<T>(h: usize, l: usize) -> bool {
    big::<T>(h, l) && h >= 2 * ROW_BLOCK
}

fn split_cols<T>(h: usize, l: usize) -> bool {
    big::<T>(h, l) && l >= 2 * COL_BLOCK
}

/// n = Wᵀâ + b, by blocks of [`COL_BLOCK`] columns on wide layers.
pub(crate) fn affine<T: Scalar>(
    w: &Matrix<T>,
    a_prev: &[T],
    b: &[T],
    n: &mut [T],
) -> Result<(), Error> {
    let (h, l, rs) = (w.rows(), w.cols(), w.row_stride());
    if !split_cols::<T>(h, l) {
        return kernels::affine(w.as_ref(), a_prev, b, n);
    }
    kernels::check_affine(&w.as_ref(), a_prev, b, n)?;
    let span = w.data();
    let block = |k: usize, b: &[T], n: &mut [T]| {
        let c0 = k * COL_BLOCK;
        let wk = MatRef::from_slice(&span[c0..], h, n.len(), rs)?;
        kernels::affine(wk, a_prev, b, n)
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        b.par_chunks(COL_BLOCK)
            .zip(n.par_chunks_mut(COL_BLOCK))
            .enumerate()
            .try_for_each(|(k, (b, n))| block(k, b, n))
    }
    #[cfg(not(feature = "rayon"))]
    {
        b.chunks(COL_BLOCK)
            .zip(n.chunks_mut(COL_BLOCK))
            .enumerate()
            .try_for_each(|(k, (b, n))| block(k, b, n))
    }
}

/// W ← W − α â δᵀ, by blocks of [`ROW_BLOCK`] rows on wide layers.
pub(crate) fn rank1_update<T: Scalar>(
    w: &mut Matrix<T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
) -> Result<(), Error> {
    let (h, l, rs) = (w.rows(), w.cols(), w.row_stride());
    if !split_rows::<T>(h, l) {
        return kernels::rank1_update(w.as_mut(), alpha, a_prev, delta);
    }
    kernels::check_rank1(h, l, alpha, a_prev, delta)?;
    let block = |wk: &mut [T], a: &[T]| {
        let wk = MatMut::from_slice(wk, a.len(), l, rs)?;
        kernels::rank1_update(wk, alpha, a, delta)
    };
    let span = w.data_mut();
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        span.par_chunks_mut(ROW_BLOCK * rs)
            .zip(a_prev.par_chunks(ROW_BLOCK))
            .try_for_each(|(wk, a)| block(wk, a))
    }
    #[cfg(not(feature = "rayon"))]
    {
        span.chunks_mut(ROW_BLOCK * rs)
            .zip(a_prev.chunks(ROW_BLOCK))
            .try_for_each(|(wk, a)| block(wk, a))
    }
}

/// δ̂ = Â W δ, by blocks of [`ROW_BLOCK`] rows on wide layers.
pub(crate) fn backward<T: Scalar>(
    w: &Matrix<T>,
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    let (h, l, rs) = (w.rows(), w.cols(), w.row_stride());
    if !split_rows::<T>(h, l) {
        return kernels::backward(w.as_ref(), delta, d_prev, delta_prev);
    }
    kernels::check_backward(h, l, delta, d_prev, delta_prev)?;
    let block = |wk: &[T], d: &[T], dp: &mut [T]| {
        let wk = MatRef::from_slice(wk, d.len(), l, rs)?;
        kernels::backward(wk, delta, d, dp)
    };
    let span = w.data();
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        span.par_chunks(ROW_BLOCK * rs)
            .zip(d_prev.par_chunks(ROW_BLOCK))
            .zip(delta_prev.par_chunks_mut(ROW_BLOCK))
            .try_for_each(|((wk, d), dp)| block(wk, d, dp))
    }
    #[cfg(not(feature = "rayon"))]
    {
        span.chunks(ROW_BLOCK * rs)
            .zip(d_prev.chunks(ROW_BLOCK))
            .zip(delta_prev.chunks_mut(ROW_BLOCK))
            .try_for_each(|((wk, d), dp)| block(wk, d, dp))
    }
}

/// δ̂ = Â W δ and W ← W − α â δᵀ in one pass, by blocks of [`ROW_BLOCK`] rows on wide layers.
pub(crate) fn backward_update<T: Scalar>(
    w: &mut Matrix<T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    let (h, l, rs) = (w.rows(), w.cols(), w.row_stride());
    if !split_rows::<T>(h, l) {
        return kernels::backward_update(w.as_mut(), alpha, a_prev, delta, d_prev, delta_prev);
    }
    kernels::check_rank1(h, l, alpha, a_prev, delta)?;
    kernels::check_backward(h, l, delta, d_prev, delta_prev)?;
    let block = |wk: &mut [T], a: &[T], d: &[T], dp: &mut [T]| {
        let wk = MatMut::from_slice(wk, a.len(), l, rs)?;
        kernels::backward_update(wk, alpha, a, delta, d, dp)
    };
    let span = w.data_mut();
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        span.par_chunks_mut(ROW_BLOCK * rs)
            .zip(a_prev.par_chunks(ROW_BLOCK))
            .zip(d_prev.par_chunks(ROW_BLOCK))
            .zip(delta_prev.par_chunks_mut(ROW_BLOCK))
            .try_for_each(|(((wk, a), d), dp)| block(wk, a, d, dp))
    }
    #[cfg(not(feature = "rayon"))]
    {
        span.chunks_mut(ROW_BLOCK * rs)
            .zip(a_prev.chunks(ROW_BLOCK))
            .zip(d_prev.chunks(ROW_BLOCK))
            .zip(delta_prev.chunks_mut(ROW_BLOCK))
            .try_for_each(|(((wk, a), d), dp)| block(wk, a, d, dp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_layers_past_one_l2_are_split() {
        assert!(!split_rows::<f32>(64, 32) && !split_cols::<f32>(64, 32));
        assert!(!split_rows::<f32>(784, 256) && !split_cols::<f32>(784, 256));
        assert!(!split_rows::<f32>(512, 512) && !split_cols::<f32>(512, 512));
        assert!(split_rows::<f32>(1024, 640) && split_cols::<f32>(1024, 640));
        assert!(split_rows::<f64>(512, 512) && split_cols::<f64>(512, 512));
        // A narrow output layer is split by rows only.
        assert!(split_rows::<f32>(65536, 10) && !split_cols::<f32>(65536, 10));
    }
}
