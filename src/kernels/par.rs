//! The per-sample kernels for wide layers: W split into FIXED blocks that run on rayon's pool
//! (feature `rayon`, by `rayon::join` down to the blocks: no allocation), or one after another
//! without it. Same signatures, same checks and the
//! same results as the kernels of [`crate::kernels`]; the network layer calls these.
//!
//! How a layer is split depends on its shape alone (never on the number of threads): rows
//! of W are independent in `backward`, `backward_update` and `rank1_update`, columns in
//! `affine`, and each kernel's summation order depends only on the shape of the view it is
//! given. Each of these kernels gives the same bits on a block as on the whole layer (rows
//! are independent, and each column's sum in `affine` runs down the rows in one order
//! whatever the width of the view), so the result is the same bit for bit on any number of
//! threads, with or without the `rayon` feature, and equal to the single-call kernel's. On a
//! pool of one thread `affine` and `backward` are therefore one kernel call, and the two
//! updates run their blocks one after another from the last to the first: the next forward
//! pass reads W from its first row and finds those rows still in cache, and the update
//! starts on the rows the forward pass read last (per-sample training of
//! 1024-1024-1024-10, f32: 1.12× faster than updating from the first row). Below the
//! thresholds a layer is one call: splitting a 64 × 32 (or even a 784 × 256) layer would
//! only add the cost of waking a thread.
//!
//! ```
//! use deltaprop::kernels::par;
//! use deltaprop::Matrix;
//!
//! # fn main() -> Result<(), deltaprop::Error> {
//! let (h, l) = (1024, 1024); // 4 MiB of f32: split, on as many threads as rayon has
//! let w = Matrix::<f32>::zeros(h, l);
//! let (a_prev, b) = (vec![1.0f32; h], vec![0.5f32; l]);
//! let mut n = vec![0.0f32; l];
//! par::affine(w.as_ref(), &a_prev, &b, &mut n)?;
//! assert!(n.iter().all(|&v| v == 0.5));
//! # Ok(())
//! # }
//! ```

use crate::error::Error;
use crate::kernels;
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;

/// Bytes of W (H · L · size of T) from which a layer's per-sample kernels are split into
/// blocks: 2 MiB, the L2 cache of one core of the 2-core machine this was measured on.
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

/// Whether the blocks would run on more than one thread. On a pool of one (or without the
/// `rayon` feature) `affine` and `backward` are one kernel call, which gives the same bits
/// (see the module docs): `affine`'s column blocks read W in 1 KiB pieces of each row, which
/// streamed measurably slower from L3 than whole rows (1024 × 1024 f32 on one thread: 1.2×
/// the time of one call).
fn parallel() -> bool {
    #[cfg(feature = "rayon")]
    {
        rayon::current_num_threads() > 1
    }
    #[cfg(not(feature = "rayon"))]
    {
        false
    }
}

/// Both closures, on rayon's pool when there is one.
fn join<A: Send, B: Send>(a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    #[cfg(feature = "rayon")]
    {
        rayon::join(a, b)
    }
    #[cfg(not(feature = "rayon"))]
    {
        (a(), b())
    }
}

/// Where a view of `n > block` rows (or columns) is cut in two: after half of its blocks, so
/// that however deep the recursion goes the leaves are the fixed blocks
/// `[k · block, (k + 1) · block)` of the original view.
fn mid(n: usize, block: usize) -> usize {
    n.div_ceil(block) / 2 * block
}

/// A kernel's arguments that are cut together: the view of W and the vectors indexed like
/// its rows (or, for `affine`, like its columns).
trait Split: Sized + Send {
    /// Rows (or columns) in the view.
    fn len(&self) -> usize;
    /// The first `m` and the rest, `0 < m < len`.
    fn split(self, m: usize) -> (Self, Self);
}

impl<T: Scalar> Split for MatMut<'_, T> {
    fn len(&self) -> usize {
        self.rows()
    }
    fn split(self, m: usize) -> (Self, Self) {
        self.split_at_row_mut(m)
    }
}

impl<T: Scalar> Split for MatRef<'_, T> {
    fn len(&self) -> usize {
        self.rows()
    }
    fn split(self, m: usize) -> (Self, Self) {
        self.split_at_row(m)
    }
}

/// A view cut by columns.
struct Cols<'a, T: Scalar>(MatRef<'a, T>);

impl<T: Scalar> Split for Cols<'_, T> {
    fn len(&self) -> usize {
        self.0.cols()
    }
    fn split(self, m: usize) -> (Self, Self) {
        let (a, b) = self.0.split_at_col(m);
        (Cols(a), Cols(b))
    }
}

impl<T: Scalar> Split for &[T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split(self, m: usize) -> (Self, Self) {
        self.split_at(m)
    }
}

impl<T: Scalar> Split for &mut [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split(self, m: usize) -> (Self, Self) {
        self.split_at_mut(m)
    }
}

macro_rules! split_tuple {
    ($($x:ident $v:ident $i:tt),+) => {
        impl<$($x: Split),+> Split for ($($x,)+) {
            fn len(&self) -> usize {
                self.0.len()
            }
            fn split(self, m: usize) -> (Self, Self) {
                $(let $v = self.$i.split(m);)+
                (($($v.0,)+), ($($v.1,)+))
            }
        }
    };
}
split_tuple!(A a 0, B b 1);
split_tuple!(A a 0, B b 1, C c 2);
split_tuple!(A a 0, B b 1, C c 2, D d 3);

/// Runs `leaf` on each fixed block of `block` rows (or columns) of `x`: halves recursively,
/// through `rayon::join`, so nothing is allocated. The first error is returned, after every
/// block has run (the callers check the shapes first, so no block can fail).
fn blocks<S: Split>(
    x: S,
    block: usize,
    leaf: &(impl Fn(S) -> Result<(), Error> + Sync),
) -> Result<(), Error> {
    let n = x.len();
    if n <= block {
        return leaf(x);
    }
    let (x0, x1) = x.split(mid(n, block));
    let (r0, r1) = join(|| blocks(x0, block, leaf), || blocks(x1, block, leaf));
    r0.and(r1)
}

/// Runs `leaf` on the fixed blocks of `block` rows of `x` one after another, the last block
/// first: on one thread, an update then ends on W's first rows, which the next forward pass
/// (`affine`, reading W from row 0) finds still in cache, and starts on its last rows, which
/// the forward pass just read.
fn blocks_last_first<S: Split>(
    x: S,
    block: usize,
    leaf: &impl Fn(S) -> Result<(), Error>,
) -> Result<(), Error> {
    let n = x.len();
    if n <= block {
        return leaf(x);
    }
    let (x0, x1) = x.split(mid(n, block));
    let r1 = blocks_last_first(x1, block, leaf);
    let r0 = blocks_last_first(x0, block, leaf);
    r1.and(r0)
}

/// An update's blocks of [`ROW_BLOCK`] rows: on rayon's pool when it has several threads,
/// otherwise one after another from the last to the first (see [`blocks_last_first`]).
fn update_blocks<S: Split>(
    x: S,
    leaf: &(impl Fn(S) -> Result<(), Error> + Sync),
) -> Result<(), Error> {
    if parallel() {
        blocks(x, ROW_BLOCK, leaf)
    } else {
        blocks_last_first(x, ROW_BLOCK, leaf)
    }
}

/// n = Wᵀâ + b, by blocks of [`COL_BLOCK`] columns on wide layers: [`super::affine`].
///
/// # Errors
/// As [`super::affine`].
pub fn affine<T: Scalar>(
    w: MatRef<'_, T>,
    a_prev: &[T],
    b: &[T],
    n: &mut [T],
) -> Result<(), Error> {
    if !split_cols::<T>(w.rows(), w.cols()) || !parallel() {
        return kernels::affine(w, a_prev, b, n);
    }
    kernels::check_affine(&w, a_prev, b, n)?;
    blocks((Cols(w), b, n), COL_BLOCK, &|(Cols(w), b, n)| {
        kernels::affine(w, a_prev, b, n)
    })
}

/// W ← W − α â δᵀ, by blocks of [`ROW_BLOCK`] rows on wide layers (on one thread, the last
/// block first): [`super::rank1_update`].
///
/// # Errors
/// As [`super::rank1_update`]; nothing is written on an error.
pub fn rank1_update<T: Scalar>(
    w: MatMut<'_, T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
) -> Result<(), Error> {
    let (h, l) = (w.rows(), w.cols());
    if !split_rows::<T>(h, l) {
        return kernels::rank1_update(w, alpha, a_prev, delta);
    }
    kernels::check_rank1(h, l, alpha, a_prev, delta)?;
    update_blocks((w, a_prev), &|(w, a)| {
        kernels::rank1_update(w, alpha, a, delta)
    })
}

/// δ̂ = Â W δ, by blocks of [`ROW_BLOCK`] rows on wide layers: [`super::backward`].
///
/// # Errors
/// As [`super::backward`].
pub fn backward<T: Scalar>(
    w: MatRef<'_, T>,
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    let (h, l) = (w.rows(), w.cols());
    if !split_rows::<T>(h, l) || !parallel() {
        return kernels::backward(w, delta, d_prev, delta_prev);
    }
    kernels::check_backward(h, l, delta, d_prev, delta_prev)?;
    blocks((w, d_prev, delta_prev), ROW_BLOCK, &|(w, d, p)| {
        kernels::backward(w, delta, d, p)
    })
}

/// δ̂ = Â W δ and W ← W − α â δᵀ in one pass, by blocks of [`ROW_BLOCK`] rows on wide layers
/// (on one thread, the last block first):
/// [`super::backward_update`].
///
/// # Errors
/// As [`super::backward_update`]; nothing is written on an error.
pub fn backward_update<T: Scalar>(
    w: MatMut<'_, T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    let (h, l) = (w.rows(), w.cols());
    if !split_rows::<T>(h, l) {
        return kernels::backward_update(w, alpha, a_prev, delta, d_prev, delta_prev);
    }
    kernels::check_rank1(h, l, alpha, a_prev, delta)?;
    kernels::check_backward(h, l, delta, d_prev, delta_prev)?;
    update_blocks((w, a_prev, d_prev, delta_prev), &|(w, a, d, p)| {
        kernels::backward_update(w, alpha, a, delta, d, p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cuts_fall_on_block_edges() {
        assert_eq!(mid(129, 128), 128);
        assert_eq!(mid(256, 128), 128);
        assert_eq!(mid(300, 128), 128);
        assert_eq!(mid(1024, 128), 512);
        assert_eq!(mid(1025, 128), 512);
        assert_eq!(mid(640, 256), 256);
    }

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
