//! deltaprop's per-sample kernels next to the same operations in OpenBLAS, faer and a plain
//! Rust loop, each in the same criterion group so that ratios come from one run.
//!
//! Needs Debian's `libopenblas-dev` (linked from the system, no build script) and the
//! `bench-peers` feature:
//!
//! ```text
//! apt-get install -y libopenblas-dev
//! env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE cargo bench --features bench-peers --bench peers
//! # OpenBLAS again under a forced core type, its entries only (see below):
//! env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE=SkylakeX \
//!     cargo bench --features bench-peers --bench peers -- openblas
//! ```
//!
//! `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` left over in an environment force OpenBLAS onto
//! an older, slower kernel, so the main run unsets them. OpenBLAS is held to one thread
//! (`openblas_set_num_threads(1)`), faer runs with `Par::Seq`, and the core type OpenBLAS
//! picked is printed at the start and is part of each OpenBLAS entry's name
//! (`openblas-haswell`, `openblas-skylakex`, ...). A CPU newer than the OpenBLAS build can be
//! detected as an ancient core (Debian's 0.3.21 takes a recent Xeon for `Prescott`, SSE3
//! only); the second command above then adds the entries of the best kernel set that build
//! has, next to the first run's.
//!
//! Groups are `peers/<kernel>/<type>/<H>x<L>`, with the same shapes and the same throughput
//! (bytes of W traffic that deltaprop's kernel needs) as `benches/kernels.rs`, so the GB/s of
//! every entry in a group is proportional to its speed:
//!
//! | group             | deltaprop                  | each peer                                      |
//! |-------------------|----------------------------|------------------------------------------------|
//! | `affine`          | n = Wᵀâ + b                | copy b, then GEMV with Wᵀ (`sgemv` Trans)      |
//! | `backward`        | δ̂ = (W δ) ⊙ d̂              | GEMV (`sgemv` NoTrans), then the ⊙             |
//! | `rank1_update`    | W −= α â δᵀ                | `sger` / faer's outer-product matmul / a loop  |
//! | `backward_update` | fused: one pass over W     | the `backward` above, then the `rank1_update`  |
//!
//! Parameters: `deltaprop-<level>` for each SIMD level above portable, `openblas-<core>`, `faer`,
//! `plain` (safe Rust, default build flags, written so LLVM vectorises it), and in the
//! `backward_update` groups also `deltaprop-<best>-pair` (deltaprop's own `backward` then
//! `rank1_update`: what the fusion saves).

mod common;

use std::ffi::{CStr, c_char, c_int};
use std::hint::black_box;

use aligned_vec::{AVec, ConstAlign};
use cblas_sys::{CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use criterion::{BenchmarkId, Criterion, criterion_group};
use deltaprop::kernels::KernelSet;
use deltaprop::simd::{self, Level};
use deltaprop::{MatMut, MatRef, ROW_ALIGN, Scalar, reference};
use faer::linalg::matmul::matmul;
use faer::{Accum, ColMut, ColRef, Par, RowRef};
use ndarray::linalg::{general_mat_mul, general_mat_vec_mul};
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ShapeBuilder};

use common::{Rng, SHAPES, configure_group, read_bytes, read_write_bytes};

// OpenBLAS's own entry points, and the link to the system library that also resolves
// cblas-sys's declarations.
#[link(name = "openblas")]
unsafe extern "C" {
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
    fn openblas_get_corename() -> *const c_char;
    fn openblas_get_config() -> *const c_char;
}

/// The BLAS-2 calls of one element type, on a row-major W with leading dimension `lda`.
trait Blas: Scalar + faer::traits::ComplexField + ndarray::LinalgScalar {
    /// y = β y + Wᵀ x (trans) or y = β y + W x (no trans).
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemv(
        trans: bool,
        h: usize,
        l: usize,
        w: *const Self,
        lda: usize,
        x: *const Self,
        beta: Self,
        y: *mut Self,
    );
    /// W += alpha x yᵀ.
    #[allow(clippy::too_many_arguments)]
    unsafe fn ger(
        h: usize,
        l: usize,
        alpha: Self,
        x: *const Self,
        y: *const Self,
        w: *mut Self,
        lda: usize,
    );
    /// C = alpha op(A) op(B) + beta C, all row-major: `mnk` = (m, n, k), op(A) is m × k,
    /// op(B) k × n.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        ta: bool,
        tb: bool,
        mnk: (usize, usize, usize),
        alpha: Self,
        a: (*const Self, usize),
        b: (*const Self, usize),
        beta: Self,
        c: (*mut Self, usize),
    );
    /// matrixmultiply's GEMM: C = alpha A B + beta C, `mkn` = (m, k, n), with general strides
    /// (pointer, row stride, column stride).
    #[allow(clippy::too_many_arguments)]
    unsafe fn mm_gemm(
        mkn: (usize, usize, usize),
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        beta: Self,
        c: (*mut Self, isize, isize),
    );
}

macro_rules! impl_blas {
    ($t:ty, $gemv:ident, $ger:ident, $gemm:ident, $mm:ident) => {
        impl Blas for $t {
            unsafe fn gemv(
                trans: bool,
                h: usize,
                l: usize,
                w: *const $t,
                lda: usize,
                x: *const $t,
                beta: $t,
                y: *mut $t,
            ) {
                let t = if trans {
                    CBLAS_TRANSPOSE::CblasTrans
                } else {
                    CBLAS_TRANSPOSE::CblasNoTrans
                };
                // SAFETY: the caller passes a row-major h × l W with leading dimension lda,
                // x of length h (trans) or l, y of length l (trans) or h.
                unsafe {
                    cblas_sys::$gemv(
                        CBLAS_LAYOUT::CblasRowMajor,
                        t,
                        h as c_int,
                        l as c_int,
                        1.0,
                        w,
                        lda as c_int,
                        x,
                        1,
                        beta,
                        y,
                        1,
                    )
                }
            }
            unsafe fn ger(
                h: usize,
                l: usize,
                alpha: $t,
                x: *const $t,
                y: *const $t,
                w: *mut $t,
                lda: usize,
            ) {
                // SAFETY: the caller passes x of length h, y of length l and a writable
                // row-major h × l W with leading dimension lda.
                unsafe {
                    cblas_sys::$ger(
                        CBLAS_LAYOUT::CblasRowMajor,
                        h as c_int,
                        l as c_int,
                        alpha,
                        x,
                        1,
                        y,
                        1,
                        w,
                        lda as c_int,
                    )
                }
            }
            unsafe fn gemm(
                ta: bool,
                tb: bool,
                (m, n, k): (usize, usize, usize),
                alpha: $t,
                a: (*const $t, usize),
                b: (*const $t, usize),
                beta: $t,
                c: (*mut $t, usize),
            ) {
                let t = |x: bool| {
                    if x {
                        CBLAS_TRANSPOSE::CblasTrans
                    } else {
                        CBLAS_TRANSPOSE::CblasNoTrans
                    }
                };
                // SAFETY: the caller passes row-major A, B, C whose leading dimensions and
                // shapes (after the transpositions) agree with m, n, k.
                unsafe {
                    cblas_sys::$gemm(
                        CBLAS_LAYOUT::CblasRowMajor,
                        t(ta),
                        t(tb),
                        m as c_int,
                        n as c_int,
                        k as c_int,
                        alpha,
                        a.0,
                        a.1 as c_int,
                        b.0,
                        b.1 as c_int,
                        beta,
                        c.0,
                        c.1 as c_int,
                    )
                }
            }
            unsafe fn mm_gemm(
                (m, k, n): (usize, usize, usize),
                alpha: $t,
                a: (*const $t, isize, isize),
                b: (*const $t, isize, isize),
                beta: $t,
                c: (*mut $t, isize, isize),
            ) {
                // SAFETY: the caller passes views whose strides and shapes match m, k, n.
                unsafe {
                    matrixmultiply::$mm(
                        m, k, n, alpha, a.0, a.1, a.2, b.0, b.1, b.2, beta, c.0, c.1, c.2,
                    )
                }
            }
        }
    };
}
impl_blas!(f32, cblas_sgemv, cblas_sger, cblas_sgemm, sgemm);
impl_blas!(f64, cblas_dgemv, cblas_dger, cblas_dgemm, dgemm);

/// One layer's inputs with W in a 64-byte-aligned buffer whose stride is padded as
/// `deltaprop::Matrix` pads it, so that every library reads the very same memory.
#[derive(Clone)]
struct Layer<T: Scalar> {
    h: usize,
    l: usize,
    stride: usize,
    w: AVec<T, ConstAlign<ROW_ALIGN>>,
    a_prev: Vec<T>,
    b: Vec<T>,
    delta: Vec<T>,
    d_prev: Vec<T>,
    n: Vec<T>,
    delta_prev: Vec<T>,
    alpha: T,
}

impl<T: Scalar> Layer<T> {
    fn new(h: usize, l: usize) -> Self {
        let per_line = ROW_ALIGN / std::mem::size_of::<T>();
        let stride = l.div_ceil(per_line) * per_line;
        let mut rng = Rng::new(1 ^ ((h as u64) << 32) ^ l as u64);
        let scale = 1.0 / (h as f64).sqrt();
        let w = AVec::from_iter(
            ROW_ALIGN,
            (0..h * stride).map(|i| {
                if i % stride < l {
                    T::from_f64(rng.uniform(-scale, scale))
                } else {
                    T::ZERO
                }
            }),
        );
        Layer {
            h,
            l,
            stride,
            w,
            a_prev: rng.vec(h, 0.0, 1.0),
            b: rng.vec(l, -0.1, 0.1),
            delta: rng.vec(l, -0.5, 0.5),
            d_prev: rng.vec(h, 0.0, 0.25),
            n: vec![T::ZERO; l],
            delta_prev: vec![T::ZERO; h],
            alpha: T::from_f64(1e-7),
        }
    }
}

fn w_ref<T: Scalar>(w: &[T], h: usize, l: usize, stride: usize) -> MatRef<'_, T> {
    MatRef::from_slice(w, h, l, stride).expect("a valid view")
}

fn w_mut<T: Scalar>(w: &mut [T], h: usize, l: usize, stride: usize) -> MatMut<'_, T> {
    MatMut::from_slice(w, h, l, stride).expect("a valid view")
}

fn faer_w<T: Scalar>(w: &[T], h: usize, l: usize, stride: usize) -> faer::MatRef<'_, T> {
    faer::MatRef::from_row_major_slice_with_stride(w, h, l, stride)
}

/// A row-major view for faer, built as the transpose of a column-major one (as faer's own
/// `MatRef::from_row_major_slice_with_stride` does): faer 0.24.4's
/// `MatMut::from_row_major_slice_with_stride_mut` passes the strides to `from_raw_parts_mut`
/// swapped and gives a column-major view of the slice — a different, overlapping matrix
/// whenever H ≠ L, which the checks below catch.
fn faer_w_mut<T: Scalar>(w: &mut [T], h: usize, l: usize, stride: usize) -> faer::MatMut<'_, T> {
    faer::MatMut::from_column_major_slice_with_stride_mut(w, l, h, stride).transpose_mut()
}

// --- the plain loops: safe Rust as a user would write it, vectorised by LLVM where it can

/// n = b + Σ_r â_r W_r (row-wise axpy: streams W in storage order).
fn plain_affine<T: Scalar>(w: &[T], l: usize, stride: usize, a_prev: &[T], b: &[T], n: &mut [T]) {
    n.copy_from_slice(b);
    for (row, &ar) in w.chunks(stride).zip(a_prev) {
        for (nc, &wc) in n.iter_mut().zip(&row[..l]) {
            *nc += wc * ar;
        }
    }
}

/// A dot product with eight partial sums, so LLVM may vectorise it without reassociating.
fn plain_dot<T: Scalar>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for k in 0..8 {
            acc[k] += xs[k] * ys[k];
        }
    }
    let mut tail = T::ZERO;
    for (&a, &b) in xr.iter().zip(yr) {
        tail += a * b;
    }
    acc.iter().copied().sum::<T>() + tail
}

/// δ̂_r = d̂_r (W_r · δ).
fn plain_backward<T: Scalar>(
    w: &[T],
    l: usize,
    stride: usize,
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) {
    for ((row, &dr), out) in w.chunks(stride).zip(d_prev).zip(delta_prev.iter_mut()) {
        *out = dr * plain_dot(&row[..l], delta);
    }
}

/// W_r −= (α â_r) δ.
fn plain_rank1<T: Scalar>(
    w: &mut [T],
    l: usize,
    stride: usize,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
) {
    for (row, &ar) in w.chunks_mut(stride).zip(a_prev) {
        let s = alpha * ar;
        for (wc, &dc) in row[..l].iter_mut().zip(delta) {
            *wc -= s * dc;
        }
    }
}

// --- the peers' versions of each step

fn openblas_affine<T: Blas>(x: &mut Layer<T>) {
    x.n.copy_from_slice(black_box(&x.b));
    // SAFETY: W is h × l at stride `stride`, â has length h, n length l.
    unsafe {
        T::gemv(
            true,
            x.h,
            x.l,
            x.w.as_ptr(),
            x.stride,
            black_box(x.a_prev.as_ptr()),
            T::ONE,
            x.n.as_mut_ptr(),
        )
    };
}

fn openblas_backward<T: Blas>(x: &mut Layer<T>) {
    // SAFETY: W is h × l at stride `stride`, δ has length l, δ̂ length h.
    unsafe {
        T::gemv(
            false,
            x.h,
            x.l,
            x.w.as_ptr(),
            x.stride,
            black_box(x.delta.as_ptr()),
            T::ZERO,
            x.delta_prev.as_mut_ptr(),
        )
    };
    for (o, &d) in x.delta_prev.iter_mut().zip(black_box(&x.d_prev)) {
        *o *= d;
    }
}

fn openblas_rank1<T: Blas>(x: &mut Layer<T>) {
    // SAFETY: â has length h, δ length l, W is h × l at stride `stride`.
    unsafe {
        T::ger(
            x.h,
            x.l,
            -black_box(x.alpha),
            black_box(x.a_prev.as_ptr()),
            black_box(x.delta.as_ptr()),
            x.w.as_mut_ptr(),
            x.stride,
        )
    };
}

fn faer_affine<T: Blas>(x: &mut Layer<T>) {
    x.n.copy_from_slice(black_box(&x.b));
    let w = faer_w(&x.w, x.h, x.l, x.stride);
    let a = ColRef::from_slice(black_box(&x.a_prev[..]));
    matmul(
        ColMut::from_slice_mut(&mut x.n[..]),
        Accum::Add,
        w.transpose(),
        a,
        T::ONE,
        Par::Seq,
    );
}

fn faer_backward<T: Blas>(x: &mut Layer<T>) {
    let w = faer_w(&x.w, x.h, x.l, x.stride);
    let delta = ColRef::from_slice(black_box(&x.delta[..]));
    matmul(
        ColMut::from_slice_mut(&mut x.delta_prev[..]),
        Accum::Replace,
        w,
        delta,
        T::ONE,
        Par::Seq,
    );
    for (o, &d) in x.delta_prev.iter_mut().zip(black_box(&x.d_prev)) {
        *o *= d;
    }
}

fn faer_rank1<T: Blas>(x: &mut Layer<T>) {
    let (h, l, stride) = (x.h, x.l, x.stride);
    let a = ColRef::from_slice(black_box(&x.a_prev[..]));
    let delta = RowRef::from_slice(black_box(&x.delta[..]));
    matmul(
        faer_w_mut(&mut x.w, h, l, stride),
        Accum::Add,
        a,
        delta,
        -black_box(x.alpha),
        Par::Seq,
    );
}

fn nd_w<T: Blas>(w: &[T], h: usize, l: usize, stride: usize) -> ArrayView2<'_, T> {
    ArrayView2::from_shape((h, l).strides((stride, 1)), w).expect("a valid ndarray view")
}

fn nd_w_mut<T: Blas>(w: &mut [T], h: usize, l: usize, stride: usize) -> ArrayViewMut2<'_, T> {
    ArrayViewMut2::from_shape((h, l).strides((stride, 1)), w).expect("a valid ndarray view")
}

/// ndarray as a user would call it without allocating: `general_mat_vec_mul` with Wᵀ.
fn ndarray_affine<T: Blas>(x: &mut Layer<T>) {
    x.n.copy_from_slice(black_box(&x.b));
    let w = nd_w(&x.w, x.h, x.l, x.stride);
    let a = ArrayView1::from(black_box(&x.a_prev[..]));
    let mut n = ArrayViewMut1::from(&mut x.n[..]);
    general_mat_vec_mul(T::ONE, &w.t(), &a, T::ONE, &mut n);
}

fn ndarray_backward<T: Blas>(x: &mut Layer<T>) {
    let w = nd_w(&x.w, x.h, x.l, x.stride);
    let delta = ArrayView1::from(black_box(&x.delta[..]));
    let mut out = ArrayViewMut1::from(&mut x.delta_prev[..]);
    general_mat_vec_mul(T::ONE, &w, &delta, T::ZERO, &mut out);
    out *= &ArrayView1::from(black_box(&x.d_prev[..]));
}

/// ndarray has no GER without a BLAS backend: one `scaled_add` per row.
fn ndarray_rank1<T: Blas>(x: &mut Layer<T>) {
    let (h, l, stride) = (x.h, x.l, x.stride);
    let alpha = black_box(x.alpha);
    let delta = ArrayView1::from(black_box(&x.delta[..]));
    let mut w = nd_w_mut(&mut x.w, h, l, stride);
    for (mut row, &ar) in w.rows_mut().into_iter().zip(black_box(&x.a_prev)) {
        row.scaled_add(-(alpha * ar), &delta);
    }
}

/// matrixmultiply's GEMM with one dimension 1 (it has no GEMV).
fn mm_affine<T: Blas>(x: &mut Layer<T>) {
    x.n.copy_from_slice(black_box(&x.b));
    // SAFETY: â is 1 × h, W h × l at row stride `stride`, n 1 × l.
    unsafe {
        T::mm_gemm(
            (1, x.h, x.l),
            T::ONE,
            (black_box(x.a_prev.as_ptr()), x.h as isize, 1),
            (x.w.as_ptr(), x.stride as isize, 1),
            T::ONE,
            (x.n.as_mut_ptr(), x.l as isize, 1),
        )
    }
}

fn mm_backward<T: Blas>(x: &mut Layer<T>) {
    // SAFETY: W is h × l at row stride `stride`, δ l × 1, δ̂ h × 1.
    unsafe {
        T::mm_gemm(
            (x.h, x.l, 1),
            T::ONE,
            (x.w.as_ptr(), x.stride as isize, 1),
            (black_box(x.delta.as_ptr()), 1, 1),
            T::ZERO,
            (x.delta_prev.as_mut_ptr(), 1, 1),
        )
    }
    for (o, &d) in x.delta_prev.iter_mut().zip(black_box(&x.d_prev)) {
        *o *= d;
    }
}

fn mm_rank1<T: Blas>(x: &mut Layer<T>) {
    // SAFETY: â is h × 1, δ 1 × l, W h × l at row stride `stride`.
    unsafe {
        T::mm_gemm(
            (x.h, 1, x.l),
            -black_box(x.alpha),
            (black_box(x.a_prev.as_ptr()), 1, 1),
            (black_box(x.delta.as_ptr()), x.l as isize, 1),
            T::ONE,
            (x.w.as_mut_ptr(), x.stride as isize, 1),
        )
    }
}

fn plain_affine_step<T: Scalar>(x: &mut Layer<T>) {
    plain_affine(
        &x.w,
        x.l,
        x.stride,
        black_box(&x.a_prev),
        black_box(&x.b),
        &mut x.n,
    );
}

fn plain_backward_step<T: Scalar>(x: &mut Layer<T>) {
    plain_backward(
        &x.w,
        x.l,
        x.stride,
        black_box(&x.delta),
        black_box(&x.d_prev),
        &mut x.delta_prev,
    );
}

fn plain_rank1_step<T: Scalar>(x: &mut Layer<T>) {
    plain_rank1(
        &mut x.w,
        x.l,
        x.stride,
        black_box(x.alpha),
        black_box(&x.a_prev),
        black_box(&x.delta),
    );
}

// --- deltaprop's, through the public views

fn dp_affine<T: Scalar>(k: KernelSet, x: &mut Layer<T>) {
    let w = w_ref(&x.w, x.h, x.l, x.stride);
    k.affine(w, black_box(&x.a_prev), black_box(&x.b), &mut x.n)
        .unwrap();
}

fn dp_backward<T: Scalar>(k: KernelSet, x: &mut Layer<T>) {
    let w = w_ref(&x.w, x.h, x.l, x.stride);
    k.backward(
        w,
        black_box(&x.delta),
        black_box(&x.d_prev),
        &mut x.delta_prev,
    )
    .unwrap();
}

fn dp_rank1<T: Scalar>(k: KernelSet, x: &mut Layer<T>) {
    let w = w_mut(&mut x.w, x.h, x.l, x.stride);
    k.rank1_update(
        w,
        black_box(x.alpha),
        black_box(&x.a_prev),
        black_box(&x.delta),
    )
    .unwrap();
}

fn dp_backward_update<T: Scalar>(k: KernelSet, x: &mut Layer<T>) {
    let w = w_mut(&mut x.w, x.h, x.l, x.stride);
    k.backward_update(
        w,
        black_box(x.alpha),
        black_box(&x.a_prev),
        black_box(&x.delta),
        black_box(&x.d_prev),
        &mut x.delta_prev,
    )
    .unwrap();
}

/// What `kernel` must give on `x`, by deltaprop's reference loops (f64 copies of the outputs
/// the kernel writes: n, δ̂, W).
fn expected<T: Scalar>(kernel: &str, x: &Layer<T>) -> Vec<f64> {
    let mut y = x.clone();
    let (h, l, stride) = (y.h, y.l, y.stride);
    match kernel {
        "affine" => {
            reference::affine(w_ref(&y.w, h, l, stride), &y.a_prev, &y.b, &mut y.n).unwrap()
        }
        "backward" => reference::backward(
            w_ref(&y.w, h, l, stride),
            &y.delta,
            &y.d_prev,
            &mut y.delta_prev,
        )
        .unwrap(),
        "rank1_update" => {
            reference::rank1_update(w_mut(&mut y.w, h, l, stride), y.alpha, &y.a_prev, &y.delta)
                .unwrap()
        }
        _ => reference::backward_update(
            w_mut(&mut y.w, h, l, stride),
            y.alpha,
            &y.a_prev,
            &y.delta,
            &y.d_prev,
            &mut y.delta_prev,
        )
        .unwrap(),
    }
    outputs(kernel, &y)
}

fn outputs<T: Scalar>(kernel: &str, y: &Layer<T>) -> Vec<f64> {
    let f = |v: &[T]| v.iter().map(|e| e.to_f64()).collect::<Vec<_>>();
    match kernel {
        "affine" => f(&y.n),
        "backward" => f(&y.delta_prev),
        "rank1_update" => f(&y.w),
        _ => [f(&y.w), f(&y.delta_prev)].concat(),
    }
}

/// Runs `step` once on a copy of `x` with a large α and checks what it wrote against the
/// reference loop: a library given a wrong view would be timed doing other work, so the bench
/// refuses to go on.
fn verify_step<T: Scalar>(kernel: &str, name: &str, x: &Layer<T>, step: &dyn Fn(&mut Layer<T>)) {
    let mut y = x.clone();
    y.alpha = T::from_f64(0.5);
    let want = expected(kernel, &y);
    step(&mut y);
    let got = outputs(kernel, &y);
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let tol = scale * if T::NAME == "f32" { 1e-3 } else { 1e-10 };
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{name} computes the wrong {kernel} for {} {}x{}: element {i} is {g}, not {w}",
            T::NAME,
            x.h,
            x.l
        );
    }
}

/// The deltaprop levels compared: every level above portable (the best one can differ per
/// kernel), or portable alone on a CPU without any.
fn levels() -> Vec<KernelSet> {
    let mut lv: Vec<Level> = simd::available()
        .into_iter()
        .filter(|&l| l != Level::Portable)
        .collect();
    if lv.is_empty() {
        lv.push(Level::Portable);
    }
    lv.into_iter()
        .map(|l| KernelSet::new(l).expect("an available level"))
        .collect()
}

type Step<T> = fn(&mut Layer<T>);
type DpStep<T> = fn(KernelSet, &mut Layer<T>);
/// One kernel's group: its name, its throughput, deltaprop's step, the peers' steps.
type Op<'a, T> = (
    &'a str,
    criterion::Throughput,
    DpStep<T>,
    [(&'a str, Step<T>); 5],
);

/// The per-sample groups: each kernel's name, its throughput, deltaprop's step, and the
/// peers' steps (for `backward_update`, each peer's GEMV-then-GER pair).
fn kernel_ops<T: Blas>(h: usize, l: usize) -> [Op<'static, T>; 4] {
    [
        (
            "affine",
            read_bytes::<T>(h, l),
            dp_affine::<T>,
            [
                ("openblas", openblas_affine::<T>),
                ("faer", faer_affine::<T>),
                ("ndarray", ndarray_affine::<T>),
                ("matrixmultiply", mm_affine::<T>),
                ("plain", plain_affine_step::<T>),
            ],
        ),
        (
            "backward",
            read_bytes::<T>(h, l),
            dp_backward::<T>,
            [
                ("openblas", openblas_backward::<T>),
                ("faer", faer_backward::<T>),
                ("ndarray", ndarray_backward::<T>),
                ("matrixmultiply", mm_backward::<T>),
                ("plain", plain_backward_step::<T>),
            ],
        ),
        (
            "rank1_update",
            read_write_bytes::<T>(h, l),
            dp_rank1::<T>,
            [
                ("openblas", openblas_rank1::<T>),
                ("faer", faer_rank1::<T>),
                ("ndarray", ndarray_rank1::<T>),
                ("matrixmultiply", mm_rank1::<T>),
                ("plain", plain_rank1_step::<T>),
            ],
        ),
        (
            "backward_update",
            read_write_bytes::<T>(h, l),
            dp_backward_update::<T>,
            [
                ("openblas-pair", |x| {
                    openblas_backward(x);
                    openblas_rank1(x);
                }),
                ("faer-pair", |x| {
                    faer_backward(x);
                    faer_rank1(x);
                }),
                ("ndarray-pair", |x| {
                    ndarray_backward(x);
                    ndarray_rank1(x);
                }),
                ("matrixmultiply-pair", |x| {
                    mm_backward(x);
                    mm_rank1(x);
                }),
                ("plain-pair", |x| {
                    plain_backward_step(x);
                    plain_rank1_step(x);
                }),
            ],
        ),
    ]
}

fn bench_peers<T: Blas>(c: &mut Criterion) {
    let kernel_sets = levels();
    let best = KernelSet::new(simd::best()).expect("the best level");
    let openblas = format!("openblas-{}", openblas_core().to_lowercase());
    for (h, l) in SHAPES {
        let mut x = Layer::<T>::new(h, l);
        let shape = format!("{}/{h}x{l}", T::NAME);

        let ops = kernel_ops::<T>(h, l);

        for (kernel, throughput, dp, peers) in ops {
            let mut g = c.benchmark_group(format!("peers/{kernel}/{shape}"));
            configure_group(&mut g, h, l);
            g.throughput(throughput);
            for &k in &kernel_sets {
                let id = format!("deltaprop-{}", k.level());
                verify_step(kernel, &id, &x, &|x| dp(k, x));
                g.bench_function(BenchmarkId::from_parameter(id), |bch| {
                    bch.iter(|| {
                        dp(k, &mut x);
                        black_box(&mut x.w);
                        black_box((&mut x.n, &mut x.delta_prev));
                    })
                });
            }
            if kernel == "backward_update" {
                let id = format!("deltaprop-{}-pair", best.level());
                verify_step(kernel, &id, &x, &|x| {
                    dp_backward(best, x);
                    dp_rank1(best, x);
                });
                g.bench_function(BenchmarkId::from_parameter(id), |bch| {
                    bch.iter(|| {
                        dp_backward(best, &mut x);
                        dp_rank1(best, &mut x);
                        black_box(&mut x.w);
                        black_box(&mut x.delta_prev);
                    })
                });
            }
            for (name, step) in peers {
                // OpenBLAS's entries carry the core type it runs on (chosen at load time
                // from OPENBLAS_CORETYPE or the CPU), so runs under several core types
                // sit side by side in one group.
                let name = name.replacen("openblas", &openblas, 1);
                verify_step(kernel, &name, &x, &step);
                g.bench_function(BenchmarkId::from_parameter(name), |bch| {
                    bch.iter(|| {
                        step(&mut x);
                        black_box(&mut x.w);
                        black_box((&mut x.n, &mut x.delta_prev));
                    })
                });
            }
            g.finish();
        }
    }
}

// --- minibatch products: deltaprop's batch kernels next to each library's GEMM

/// The W shapes of the minibatch groups (the layers of the training bench's networks).
const GEMM_SHAPES: [(usize, usize); 4] = [(64, 32), (256, 128), (784, 256), (1024, 1024)];
const BATCHES: [usize; 3] = [1, 32, 256];

/// A row-major matrix in a 64-byte-aligned buffer, rows padded as `deltaprop::Matrix` pads
/// them, that every library can view.
#[derive(Clone)]
struct Dense<T: Scalar> {
    rows: usize,
    cols: usize,
    stride: usize,
    data: AVec<T, ConstAlign<ROW_ALIGN>>,
}

impl<T: Blas> Dense<T> {
    fn new(rows: usize, cols: usize, rng: &mut Rng, lo: f64, hi: f64) -> Self {
        let per_line = ROW_ALIGN / std::mem::size_of::<T>();
        let stride = cols.div_ceil(per_line) * per_line;
        let data = AVec::from_iter(
            ROW_ALIGN,
            (0..rows * stride).map(|i| {
                if i % stride < cols {
                    T::from_f64(rng.uniform(lo, hi))
                } else {
                    T::ZERO
                }
            }),
        );
        Dense {
            rows,
            cols,
            stride,
            data,
        }
    }
    fn at(&self, r: usize, c: usize) -> T {
        self.data[r * self.stride + c]
    }
    fn dp(&self) -> MatRef<'_, T> {
        MatRef::from_slice(&self.data, self.rows, self.cols, self.stride).expect("a valid view")
    }
    fn dp_mut(&mut self) -> MatMut<'_, T> {
        MatMut::from_slice(&mut self.data, self.rows, self.cols, self.stride).expect("a valid view")
    }
    fn faer(&self) -> faer::MatRef<'_, T> {
        faer_w(&self.data, self.rows, self.cols, self.stride)
    }
    fn faer_mut(&mut self) -> faer::MatMut<'_, T> {
        faer_w_mut(&mut self.data, self.rows, self.cols, self.stride)
    }
    fn nd(&self) -> ArrayView2<'_, T> {
        nd_w(&self.data, self.rows, self.cols, self.stride)
    }
    fn nd_mut(&mut self) -> ArrayViewMut2<'_, T> {
        nd_w_mut(&mut self.data, self.rows, self.cols, self.stride)
    }
    /// (pointer, row stride, column stride), transposed or not, for matrixmultiply.
    fn mm(&self, transposed: bool) -> (*const T, isize, isize) {
        let rs = self.stride as isize;
        let p = self.data.as_ptr();
        if transposed { (p, 1, rs) } else { (p, rs, 1) }
    }
    fn mm_out(&mut self) -> (*mut T, isize, isize) {
        (self.data.as_mut_ptr(), self.stride as isize, 1)
    }
}

/// One minibatch product's operands: W (H × L), Â and D̂ (B × H), Δ (B × L), the bias, and
/// the outputs (`out`: N, B × L, or Δ̂, B × H; `w_upd`: the W that the update changes).
#[derive(Clone)]
struct Batch<T: Scalar> {
    w: Dense<T>,
    bias: Vec<T>,
    x: Dense<T>,
    delta: Dense<T>,
    d_prev: Dense<T>,
    d: Dense<T>,
    out_l: Dense<T>,
    out_h: Dense<T>,
    w_upd: Dense<T>,
    b_upd: Vec<T>,
    alpha: T,
    best: KernelSet,
}

impl<T: Blas> Batch<T> {
    fn new(h: usize, l: usize, bsz: usize, best: KernelSet) -> Self {
        let mut rng = Rng::new(7 ^ ((h as u64) << 32) ^ ((l as u64) << 12) ^ bsz as u64);
        let scale = 1.0 / (h as f64).sqrt();
        let w = Dense::new(h, l, &mut rng, -scale, scale);
        let bias = rng.vec(l, -0.1, 0.1);
        Batch {
            w_upd: w.clone(),
            b_upd: bias.clone(),
            w,
            bias,
            x: Dense::new(bsz, h, &mut rng, 0.0, 1.0),
            delta: Dense::new(bsz, l, &mut rng, -0.5, 0.5),
            d_prev: Dense::new(bsz, h, &mut rng, 0.0, 0.25),
            d: Dense::new(bsz, l, &mut rng, 0.0, 0.0),
            out_l: Dense::new(bsz, l, &mut rng, 0.0, 0.0),
            out_h: Dense::new(bsz, h, &mut rng, 0.0, 0.0),
            alpha: T::from_f64(1e-7),
            best,
        }
    }
    /// −α/B, the factor of ÂᵀΔ in the update.
    fn s(&self) -> T {
        -self.alpha / T::from_f64(self.x.rows as f64)
    }
}

type BatchStep<T> = fn(&mut Batch<T>);

// N = Â W (deltaprop: + 1bᵀ, identity σ, σ' written).
fn dp_forward<T: Blas>(z: &mut Batch<T>) {
    z.best
        .batch_forward(
            deltaprop::Activation::Identity,
            black_box(z.w.dp()),
            black_box(&z.bias),
            black_box(z.x.dp()),
            z.out_l.dp_mut(),
            z.d.dp_mut(),
        )
        .unwrap()
}
fn blas_forward<T: Blas>(z: &mut Batch<T>) {
    // SAFETY: Â is B × H, W H × L, N B × L, at their leading dimensions.
    unsafe {
        T::gemm(
            false,
            false,
            (z.x.rows, z.w.cols, z.w.rows),
            T::ONE,
            (black_box(z.x.data.as_ptr()), z.x.stride),
            (z.w.data.as_ptr(), z.w.stride),
            T::ZERO,
            (z.out_l.data.as_mut_ptr(), z.out_l.stride),
        )
    }
}
fn faer_forward<T: Blas>(z: &mut Batch<T>) {
    let (x, w) = (black_box(&z.x).faer(), z.w.faer());
    matmul(z.out_l.faer_mut(), Accum::Replace, x, w, T::ONE, Par::Seq)
}
fn nd_forward<T: Blas>(z: &mut Batch<T>) {
    let (x, w) = (black_box(&z.x).nd(), z.w.nd());
    general_mat_mul(T::ONE, &x, &w, T::ZERO, &mut z.out_l.nd_mut())
}
fn mm_forward<T: Blas>(z: &mut Batch<T>) {
    let out = z.out_l.mm_out();
    // SAFETY: Â is B × H, W H × L, N B × L, as the strides say.
    unsafe {
        T::mm_gemm(
            (z.x.rows, z.w.rows, z.w.cols),
            T::ONE,
            black_box(z.x.mm(false)),
            z.w.mm(false),
            T::ZERO,
            out,
        )
    }
}

// Δ̂ = Δ Wᵀ (deltaprop: ⊙ D̂).
fn dp_backward_b<T: Blas>(z: &mut Batch<T>) {
    z.best
        .batch_backward(
            black_box(z.w.dp()),
            black_box(z.delta.dp()),
            black_box(z.d_prev.dp()),
            z.out_h.dp_mut(),
        )
        .unwrap()
}
fn blas_backward_b<T: Blas>(z: &mut Batch<T>) {
    // SAFETY: Δ is B × L, Wᵀ L × H (W transposed), Δ̂ B × H.
    unsafe {
        T::gemm(
            false,
            true,
            (z.x.rows, z.w.rows, z.w.cols),
            T::ONE,
            (black_box(z.delta.data.as_ptr()), z.delta.stride),
            (z.w.data.as_ptr(), z.w.stride),
            T::ZERO,
            (z.out_h.data.as_mut_ptr(), z.out_h.stride),
        )
    }
}
fn faer_backward_b<T: Blas>(z: &mut Batch<T>) {
    let (d, w) = (black_box(&z.delta).faer(), z.w.faer().transpose());
    matmul(z.out_h.faer_mut(), Accum::Replace, d, w, T::ONE, Par::Seq)
}
fn nd_backward_b<T: Blas>(z: &mut Batch<T>) {
    let (d, w) = (black_box(&z.delta).nd(), z.w.nd());
    general_mat_mul(T::ONE, &d, &w.t(), T::ZERO, &mut z.out_h.nd_mut())
}
fn mm_backward_b<T: Blas>(z: &mut Batch<T>) {
    let out = z.out_h.mm_out();
    // SAFETY: Δ is B × L, Wᵀ L × H (W by swapped strides), Δ̂ B × H.
    unsafe {
        T::mm_gemm(
            (z.x.rows, z.w.cols, z.w.rows),
            T::ONE,
            black_box(z.delta.mm(false)),
            z.w.mm(true),
            T::ZERO,
            out,
        )
    }
}

// W −= (α/B) ÂᵀΔ (deltaprop: and the bias).
fn dp_update_b<T: Blas>(z: &mut Batch<T>) {
    let (x, d) = (black_box(z.x.dp()), black_box(z.delta.dp()));
    z.best
        .batch_update(z.w_upd.dp_mut(), &mut z.b_upd, z.alpha, x, d)
        .unwrap()
}
fn blas_update_b<T: Blas>(z: &mut Batch<T>) {
    let s = z.s();
    // SAFETY: Âᵀ is H × B (Â transposed), Δ B × L, W H × L.
    unsafe {
        T::gemm(
            true,
            false,
            (z.w.rows, z.w.cols, z.x.rows),
            s,
            (black_box(z.x.data.as_ptr()), z.x.stride),
            (black_box(z.delta.data.as_ptr()), z.delta.stride),
            T::ONE,
            (z.w_upd.data.as_mut_ptr(), z.w_upd.stride),
        )
    }
}
fn faer_update_b<T: Blas>(z: &mut Batch<T>) {
    let s = z.s();
    let (x, d) = (
        black_box(&z.x).faer().transpose(),
        black_box(&z.delta).faer(),
    );
    matmul(z.w_upd.faer_mut(), Accum::Add, x, d, s, Par::Seq)
}
fn nd_update_b<T: Blas>(z: &mut Batch<T>) {
    let s = z.s();
    let (x, d) = (black_box(&z.x).nd(), black_box(&z.delta).nd());
    general_mat_mul(s, &x.t(), &d, T::ONE, &mut z.w_upd.nd_mut())
}
fn mm_update_b<T: Blas>(z: &mut Batch<T>) {
    let s = z.s();
    let out = z.w_upd.mm_out();
    // SAFETY: Âᵀ is H × B (Â by swapped strides), Δ B × L, W H × L.
    unsafe {
        T::mm_gemm(
            (z.w.rows, z.x.rows, z.w.cols),
            s,
            black_box(z.x.mm(true)),
            black_box(z.delta.mm(false)),
            T::ONE,
            out,
        )
    }
}

/// The product each step of `op` must give, computed naively in f64 (without deltaprop's
/// epilogue): N = ÂW, Δ̂ = ΔWᵀ, or W − (α/B)ÂᵀΔ.
fn naive_product<T: Blas>(op: &str, z: &Batch<T>) -> Vec<f64> {
    let (h, l, bsz) = (z.w.rows, z.w.cols, z.x.rows);
    let w = |r, c| z.w.at(r, c).to_f64();
    match op {
        "gemm_forward" => (0..bsz * l)
            .map(|i| {
                (0..h)
                    .map(|k| z.x.at(i / l, k).to_f64() * w(k, i % l))
                    .sum()
            })
            .collect(),
        "gemm_backward" => (0..bsz * h)
            .map(|i| {
                (0..l)
                    .map(|k| z.delta.at(i / h, k).to_f64() * w(i % h, k))
                    .sum()
            })
            .collect(),
        _ => (0..h * l)
            .map(|i| {
                let (r, c) = (i / l, i % l);
                let sum: f64 = (0..bsz)
                    .map(|b| z.x.at(b, r).to_f64() * z.delta.at(b, c).to_f64())
                    .sum();
                w(r, c) + z.s().to_f64() * sum
            })
            .collect(),
    }
}

/// Runs `step` once on a copy of the operands with a large α and checks its output against
/// the naive product (for deltaprop, with its epilogue: plus the bias in the forward, times D̂
/// in the backward): a library given a wrong view would be timed doing other work, so the
/// bench refuses to go on.
fn verify_gemm<T: Blas>(op: &str, name: &str, z0: &Batch<T>, step: BatchStep<T>) {
    let mut z = z0.clone();
    z.alpha = T::from_f64(0.5);
    // The timed entries before this one have updated `w_upd` many times: start from W.
    z.w_upd = z.w.clone();
    z.b_upd = z.bias.clone();
    step(&mut z);
    let want = naive_product(op, &z);
    let dp = name.starts_with("deltaprop");
    let (rows, cols) = match op {
        "gemm_forward" => (z.x.rows, z.w.cols),
        "gemm_backward" => (z.x.rows, z.w.rows),
        _ => (z.w.rows, z.w.cols),
    };
    // deltaprop's output, epilogue included, and what it must be.
    let (got, want_at) = (
        |r: usize, c: usize| -> f64 {
            match op {
                "gemm_forward" => z.out_l.at(r, c).to_f64(),
                "gemm_backward" => z.out_h.at(r, c).to_f64(),
                _ => z.w_upd.at(r, c).to_f64(),
            }
        },
        |r: usize, c: usize| -> f64 {
            let p = want[r * cols + c];
            match op {
                "gemm_forward" if dp => p + z.bias[c].to_f64(),
                "gemm_backward" if dp => p * z.d_prev.at(r, c).to_f64(),
                _ => p,
            }
        },
    );
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let tol = scale * if T::NAME == "f32" { 1e-3 } else { 1e-10 };
    for r in 0..rows {
        for c in 0..cols {
            let (g, w) = (got(r, c), want_at(r, c));
            assert!(
                (g - w).abs() <= tol,
                "{name} computes the wrong {op} at ({r}, {c}) for {} {}x{} B={}: {g} vs {w}",
                T::NAME,
                z.w.rows,
                z.w.cols,
                z.x.rows
            );
        }
    }
}

fn configure_gemm<M: criterion::measurement::Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    flops: usize,
) {
    g.warm_up_time(std::time::Duration::from_millis(200));
    g.measurement_time(std::time::Duration::from_millis(600));
    g.sample_size(20);
    if flops > 50_000_000 {
        g.sampling_mode(criterion::SamplingMode::Flat);
        g.sample_size(10);
    }
}

/// The minibatch products: each one's name and its steps, deltaprop's first, then
/// OpenBLAS, faer, ndarray and matrixmultiply.
fn gemm_ops<T: Blas>() -> [(&'static str, [BatchStep<T>; 5]); 3] {
    [
        (
            "gemm_forward",
            [
                dp_forward,
                blas_forward,
                faer_forward,
                nd_forward,
                mm_forward,
            ],
        ),
        (
            "gemm_backward",
            [
                dp_backward_b,
                blas_backward_b,
                faer_backward_b,
                nd_backward_b,
                mm_backward_b,
            ],
        ),
        (
            "gemm_update",
            [
                dp_update_b,
                blas_update_b,
                faer_update_b,
                nd_update_b,
                mm_update_b,
            ],
        ),
    ]
}

/// Groups `peers/gemm_<forward|backward|update>/<type>/<H>x<L>`, entries `<library>/B=<b>`,
/// throughput in elements of 2·B·H·L (so "Gelem/s" reads GFLOP/s). deltaprop's side is its
/// batch kernel, epilogue included (identity activation and bias; ⊙ D̂; the bias column sums);
/// each peer's is the bare GEMM:
///
/// | group | deltaprop | peers |
/// |---|---|---|
/// | `gemm_forward` | A, D = σ(ÂW + 1bᵀ), σ'(…) | N = Â W |
/// | `gemm_backward` | Δ̂ = (Δ Wᵀ) ⊙ D̂ | Δ Wᵀ |
/// | `gemm_update` | W −= (α/B) ÂᵀΔ, b −= (α/B) Σ Δ | W −= (α/B) ÂᵀΔ |
fn bench_gemm<T: Blas>(c: &mut Criterion) {
    let best = KernelSet::new(simd::best()).expect("the best level");
    let dp_name = format!("deltaprop-{}", best.level());
    let openblas = format!("openblas-{}", openblas_core().to_lowercase());
    let ops = gemm_ops::<T>();
    let names = [
        dp_name.as_str(),
        openblas.as_str(),
        "faer",
        "ndarray",
        "matrixmultiply",
    ];
    for (h, l) in GEMM_SHAPES {
        let flops = |b: usize| 2 * b * h * l;
        for (op, steps) in &ops {
            let mut g = c.benchmark_group(format!("peers/{op}/{}/{h}x{l}", T::NAME));
            configure_gemm(&mut g, flops(256));
            for bsz in BATCHES {
                g.throughput(criterion::Throughput::Elements(flops(bsz) as u64));
                let mut z = Batch::<T>::new(h, l, bsz, best);
                for (name, step) in names.iter().zip(steps) {
                    verify_gemm(op, name, &z, *step);
                    g.bench_function(BenchmarkId::new(*name, format!("B={bsz}")), |bch| {
                        bch.iter(|| step(&mut z))
                    });
                }
            }
            g.finish();
        }
    }
}

fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        return "?".into();
    }
    // SAFETY: OpenBLAS returns pointers to static NUL-terminated strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The core type OpenBLAS chose for this process, e.g. `Haswell`, `SkylakeX`.
fn openblas_core() -> String {
    // SAFETY: no arguments; OpenBLAS returns a static string.
    c_str(unsafe { openblas_get_corename() })
}

/// Pins OpenBLAS to one thread and prints what it runs on (once, before any timing).
fn setup(_: &mut Criterion) {
    for var in ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"] {
        if let Ok(v) = std::env::var(var) {
            eprintln!(
                "peers bench: {var}={v} is set: OpenBLAS runs the kernels it names (unset it, \
                 `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`, unless that is intended)"
            );
        }
    }
    // SAFETY: plain FFI calls into OpenBLAS with no pointer arguments; the returned strings
    // are static.
    let (threads, core, config) = unsafe {
        openblas_set_num_threads(1);
        (
            openblas_get_num_threads(),
            c_str(openblas_get_corename()),
            c_str(openblas_get_config()),
        )
    };
    // One thread for deltaprop's batch kernels too (their rayon split stays off), unless
    // RAYON_NUM_THREADS says otherwise.
    #[cfg(feature = "rayon")]
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global();
    }
    let levels: Vec<String> = levels().iter().map(|k| k.level().to_string()).collect();
    eprintln!("peers bench: OpenBLAS core {core}, {threads} thread(s), config: {config}");
    eprintln!("peers bench: deltaprop levels {levels:?}, faer Par::Seq");
}

// --- paired mode: each peer interleaved with deltaprop, round by round

/// Rounds of the paired mode, and the time each contender runs per round.
const PAIRED_ROUNDS: usize = 25;
const PAIRED_SLICE_S: f64 = 0.004;

/// One contender of a paired comparison: its name and one call.
type Contender<'a, X> = (String, Box<dyn Fn(&mut X) + 'a>);

/// Runs the contenders in turn, `PAIRED_ROUNDS` rounds of about `PAIRED_SLICE_S` each (at
/// least one call), the starting contender rotating from round to round; returns each
/// contender's seconds per call in every round. A neighbour's load on a shared machine then
/// falls on every contender of a round alike, and the per-round ratios cancel it.
fn paired_rounds<X>(x: &mut X, contenders: &[Contender<'_, X>]) -> Vec<Vec<f64>> {
    let calls: Vec<usize> = contenders
        .iter()
        .map(|(_, f)| {
            f(x); // warm-up
            let t = std::time::Instant::now();
            f(x);
            let once = t.elapsed().as_secs_f64().max(1e-9);
            ((PAIRED_SLICE_S / once) as usize).max(1)
        })
        .collect();
    let n = contenders.len();
    let mut secs = vec![Vec::with_capacity(PAIRED_ROUNDS); n];
    for round in 0..PAIRED_ROUNDS {
        for j in 0..n {
            let i = (round + j) % n;
            let (_, f) = &contenders[i];
            let t = std::time::Instant::now();
            for _ in 0..calls[i] {
                f(x);
            }
            secs[i].push(t.elapsed().as_secs_f64() / calls[i] as f64);
        }
    }
    secs
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The JSON record of one paired group: contender 0 is deltaprop; every other contender's
/// `speedup` is the median over rounds of (its time ÷ deltaprop's time in the same round),
/// with the quartiles.
fn paired_record<X>(
    group: &str,
    work: (&str, f64),
    x: &mut X,
    contenders: &[Contender<'_, X>],
) -> serde_json::Value {
    let secs = paired_rounds(x, contenders);
    let dp = &secs[0];
    let entries: Vec<serde_json::Value> = contenders
        .iter()
        .zip(&secs)
        .map(|((name, _), s)| {
            let mut ratios: Vec<f64> = s.iter().zip(dp).map(|(t, d)| t / d).collect();
            let mut times = s.clone();
            serde_json::json!({
                "name": name,
                "median_s": median(&mut times),
                "best_s": times.iter().copied().fold(f64::INFINITY, f64::min),
                "speedup": median(&mut ratios),
                "speedup_q1": quantile(&mut ratios, 0.25),
                "speedup_q3": quantile(&mut ratios, 0.75),
            })
        })
        .collect();
    let line: Vec<String> = entries
        .iter()
        .skip(1)
        .map(|e| {
            let name = e["name"].as_str().unwrap_or("?");
            format!("{name} {:.2}x", e["speedup"].as_f64().unwrap_or(f64::NAN))
        })
        .collect();
    eprintln!("{group}: deltaprop vs {}", line.join(", "));
    serde_json::json!({
        "group": group,
        work.0: work.1,
        "rounds": PAIRED_ROUNDS,
        "slice_s": PAIRED_SLICE_S,
        "entries": entries,
    })
}

/// The per-sample groups of `bench_peers`, paired: deltaprop at its default level against
/// each peer (verified first, as there).
fn paired_peers<T: Blas>(filter: &str, out: &mut Vec<serde_json::Value>) {
    let dp = KernelSet::active();
    let openblas = format!("openblas-{}", openblas_core().to_lowercase());
    for (h, l) in SHAPES {
        let mut x = Layer::<T>::new(h, l);
        let kernels = kernel_ops::<T>(h, l);
        for (kernel, throughput, dp_step, peers) in kernels {
            let group = format!("peers/{kernel}/{}/{h}x{l}", T::NAME);
            if !group.contains(filter) {
                continue;
            }
            let mut contenders: Vec<Contender<'_, Layer<T>>> = vec![(
                format!("deltaprop-{}", dp.level()),
                Box::new(move |x: &mut Layer<T>| dp_step(dp, x)),
            )];
            for (name, step) in peers {
                contenders.push((name.replacen("openblas", &openblas, 1), Box::new(step)));
            }
            for (name, step) in &contenders {
                verify_step(kernel, name, &x, step.as_ref());
            }
            let criterion::Throughput::Bytes(bytes) = throughput else {
                unreachable!("the per-sample groups count bytes")
            };
            let bytes = bytes as f64;
            out.push(paired_record(&group, ("bytes", bytes), &mut x, &contenders));
        }
    }
}

/// The minibatch groups of `bench_gemm`, paired, one record per (product, shape, B).
fn paired_gemm<T: Blas>(filter: &str, out: &mut Vec<serde_json::Value>) {
    let best = KernelSet::active();
    let openblas = format!("openblas-{}", openblas_core().to_lowercase());
    let ops = gemm_ops::<T>();
    let names = [
        format!("deltaprop-{}", best.level()),
        openblas,
        "faer".into(),
        "ndarray".into(),
        "matrixmultiply".into(),
    ];
    for (h, l) in GEMM_SHAPES {
        for (op, steps) in &ops {
            for bsz in BATCHES.into_iter().filter(|&b| b > 1) {
                let group = format!("peers/{op}/{}/{h}x{l}/B={bsz}", T::NAME);
                if !group.contains(filter) {
                    continue;
                }
                let mut z = Batch::<T>::new(h, l, bsz, best);
                let contenders: Vec<Contender<'_, Batch<T>>> = names
                    .iter()
                    .zip(steps)
                    .map(|(n, &s)| (n.clone(), Box::new(s) as Box<dyn Fn(&mut Batch<T>)>))
                    .collect();
                for (name, step) in names.iter().zip(steps) {
                    verify_gemm(op, name, &z, *step);
                }
                let flops = (2 * bsz * h * l) as f64;
                out.push(paired_record(&group, ("flops", flops), &mut z, &contenders));
            }
        }
    }
}

/// `--paired [FILTER]`: every per-sample and minibatch group, deltaprop interleaved with each
/// peer round by round, written to `target/paired/peers-<openblas core>.json`.
fn paired_main(filter: &str) {
    setup(&mut Criterion::default());
    let mut out = Vec::new();
    paired_peers::<f32>(filter, &mut out);
    paired_peers::<f64>(filter, &mut out);
    paired_gemm::<f32>(filter, &mut out);
    paired_gemm::<f64>(filter, &mut out);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/paired");
    std::fs::create_dir_all(&dir).expect("target/paired");
    let path = dir.join(format!("peers-{}.json", openblas_core().to_lowercase()));
    let doc = serde_json::json!({
        "openblas_core": openblas_core(),
        "deltaprop_level": KernelSet::active().level().to_string(),
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        "groups": out,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("JSON")).expect("write");
    eprintln!("peers bench: wrote {}", path.display());
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = setup, bench_peers::<f32>, bench_peers::<f64>, bench_gemm::<f32>, bench_gemm::<f64>
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--paired") {
        let filter = args
            .get(i + 1)
            .filter(|f| !f.starts_with("--"))
            .map_or("", String::as_str);
        paired_main(filter);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
