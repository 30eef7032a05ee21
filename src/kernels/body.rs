//! The per-sample kernels, written once over [`Vector`] and instantiated per level by
//! `table.rs`. Raw pointers in, no checks: `mod.rs` validates every shape first.
//!
//! Pointer contract shared by every function here: `w` points at an `h × l` row-major view
//! with row stride `rs ≥ l` (row r at `w + r·rs`), valid for reads (and writes where the
//! pointer is `*mut`) of those elements only; vectors have the lengths their names imply
//! (`a_prev`, `d_prev`, `delta_prev`: h; `b`, `n`, `a`, `d`, `delta`: l); outputs do not
//! overlap inputs; the CPU supports `V`'s level.
//!
//! Summation orders are fixed functions of the shape (never of alignment or of how a caller
//! might split the work), so each kernel is deterministic, and `backward_update` reproduces
//! `backward`'s δ̂ and `rank1_update`'s W bit for bit.

use crate::activation::{Activation, GELU_C, GELU_K, LEAKY_RELU_SLOPE};
use crate::scalar::Scalar;
use crate::simd::Vector;
use crate::simd::math::{exp, log1p_unit, sigmoid_pair, splat, tanh_pair};

/// Rows per pass of the wide affine loop: n is loaded and stored once per this many rows.
const AFFINE_ROWS: usize = 4;

/// Accumulators of a row dot product: vector j of a row goes into accumulator j mod 4.
const DOT_ACCS: usize = 4;

/// Applies `f` to consecutive `V`-sized chunks of `0..len`: `f(offset, None)` for a full
/// vector, `f(offset, Some(k))` for the final partial one of `k < LANES` elements.
#[inline(always)]
fn chunks<T: Scalar, V: Vector<T>>(len: usize, mut f: impl FnMut(usize, Option<usize>)) {
    let mut c = 0;
    while c + V::LANES <= len {
        f(c, None);
        c += V::LANES;
    }
    if c < len {
        f(c, Some(len - c));
    }
}

/// Loads a full or partial chunk.
#[inline(always)]
unsafe fn ld<T: Scalar, V: Vector<T>>(p: *const T, part: Option<usize>) -> V {
    // SAFETY: the caller's chunk lies inside the allocation it describes.
    unsafe {
        match part {
            None => V::load(p),
            Some(k) => V::load_partial(p, k),
        }
    }
}

/// Stores a full or partial chunk.
#[inline(always)]
unsafe fn st<T: Scalar, V: Vector<T>>(v: V, p: *mut T, part: Option<usize>) {
    // SAFETY: the caller's chunk lies inside the allocation it describes.
    unsafe {
        match part {
            None => v.store(p),
            Some(k) => v.store_partial(p, k),
        }
    }
}

/// n = Wᵀ â + b.
///
/// Wide layers (l > 2 vectors) stream W row by row: n starts as b and takes
/// `AFFINE_ROWS` rows per pass, so every n_c is the sequential FMA chain
/// b_c + W₀c â₀ + W₁c â₁ + … in row order. Narrow layers (l ≤ 2 vectors, e.g. an output
/// layer of 10) keep n in registers instead, with four interleaved row streams to hide FMA
/// latency: n_c = b_c + ((s₀ + s₁) + (s₂ + s₃)), s_j summing rows r ≡ j (mod 4) in order.
///
/// # Safety
/// The module's pointer contract.
#[inline(always)]
pub(crate) unsafe fn affine<T: Scalar, V: Vector<T>>(
    w: *const T,
    h: usize,
    l: usize,
    rs: usize,
    a_prev: *const T,
    b: *const T,
    n: *mut T,
) {
    // SAFETY: every access below stays inside the views of the pointer contract: rows < h,
    // columns < l, chunks from `chunks` never pass l.
    unsafe {
        if l <= 2 * V::LANES {
            let full = l / V::LANES; // vectors loaded whole; the rest (if any) is partial
            let rest = l - full * V::LANES;
            let load_row = |r: usize, j: usize| -> V {
                let p = w.add(r * rs + j * V::LANES);
                if j < full {
                    V::load(p)
                } else {
                    V::load_partial(p, rest)
                }
            };
            let nv = full + usize::from(rest > 0);
            let zero = splat::<T, V>(0.0);
            let mut acc = [[zero; 2]; 4];
            let mut r = 0;
            while r + 4 <= h {
                for (s, row_acc) in acc.iter_mut().enumerate() {
                    let ar = V::splat(*a_prev.add(r + s));
                    for (j, a) in row_acc.iter_mut().enumerate().take(nv) {
                        *a = ar.mul_add(load_row(r + s, j), *a);
                    }
                }
                r += 4;
            }
            for (s, row_acc) in acc.iter_mut().enumerate().take(h - r) {
                let ar = V::splat(*a_prev.add(r + s));
                for (j, a) in row_acc.iter_mut().enumerate().take(nv) {
                    *a = ar.mul_add(load_row(r + s, j), *a);
                }
            }
            for j in 0..nv {
                let sum = acc[0][j].add(acc[1][j]).add(acc[2][j].add(acc[3][j]));
                let part = if j < full { None } else { Some(rest) };
                let bj: V = ld(b.add(j * V::LANES), part);
                st(bj.add(sum), n.add(j * V::LANES), part);
            }
            return;
        }

        chunks::<T, V>(l, |c, part| st(ld::<T, V>(b.add(c), part), n.add(c), part));
        let mut r = 0;
        while r + AFFINE_ROWS <= h {
            let ar: [V; AFFINE_ROWS] = std::array::from_fn(|k| V::splat(*a_prev.add(r + k)));
            let rows: [*const T; AFFINE_ROWS] = std::array::from_fn(|k| w.add((r + k) * rs));
            chunks::<T, V>(l, |c, part| {
                let mut acc: V = ld(n.add(c), part);
                for k in 0..AFFINE_ROWS {
                    acc = ar[k].mul_add(ld(rows[k].add(c), part), acc);
                }
                st(acc, n.add(c), part);
            });
            r += AFFINE_ROWS;
        }
        while r < h {
            let ar = V::splat(*a_prev.add(r));
            let row = w.add(r * rs);
            chunks::<T, V>(l, |c, part| {
                let acc: V = ld(n.add(c), part);
                st(ar.mul_add(ld(row.add(c), part), acc), n.add(c), part);
            });
            r += 1;
        }
    }
}

/// One row's dot product with δ, in the fixed order of `DOT_ACCS` accumulators, and with
/// `update = Some(s)` also the row's update W_r ← W_r − s·δ from the same loads.
///
/// # Safety
/// `row` and `delta` are valid for `l` elements (`row` writable when updating); the CPU
/// supports `V`'s level.
#[inline(always)]
unsafe fn row_dot<T: Scalar, V: Vector<T>>(
    row: *mut T,
    delta: *const T,
    l: usize,
    update: Option<V>,
) -> T {
    // SAFETY: chunks stay below l; see the function's contract.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let mut acc = [zero; DOT_ACCS];
        let mut j = 0;
        chunks::<T, V>(l, |c, part| {
            let wv: V = ld(row.add(c), part);
            let dv: V = ld(delta.add(c), part);
            acc[j % DOT_ACCS] = wv.mul_add(dv, acc[j % DOT_ACCS]);
            if let Some(s) = update {
                st(s.neg_mul_add(dv, wv), row.add(c), part);
            }
            j += 1;
        });
        acc[0].add(acc[1]).add(acc[2].add(acc[3])).reduce_sum()
    }
}

/// δ̂ = Â W δ: δ̂_r = σ̂'_r · Σ_c W_rc δ_c, one dot product per row of W.
///
/// # Safety
/// The module's pointer contract.
#[inline(always)]
pub(crate) unsafe fn backward<T: Scalar, V: Vector<T>>(
    w: *const T,
    h: usize,
    l: usize,
    rs: usize,
    delta: *const T,
    d_prev: *const T,
    delta_prev: *mut T,
) {
    for r in 0..h {
        // SAFETY: row r < h of the view; the row is only read (`update` is None).
        unsafe {
            let dot = row_dot::<T, V>(w.add(r * rs).cast_mut(), delta, l, None);
            *delta_prev.add(r) = *d_prev.add(r) * dot;
        }
    }
}

/// W ← W − α â δᵀ: row r gets W_r − (α â_r)·δ, each element with one FMA.
///
/// # Safety
/// The module's pointer contract.
#[inline(always)]
pub(crate) unsafe fn rank1_update<T: Scalar, V: Vector<T>>(
    w: *mut T,
    h: usize,
    l: usize,
    rs: usize,
    alpha: T,
    a_prev: *const T,
    delta: *const T,
) {
    for r in 0..h {
        // SAFETY: row r < h of the view, chunks below l.
        unsafe {
            let s = V::splat(alpha * *a_prev.add(r));
            let row = w.add(r * rs);
            chunks::<T, V>(l, |c, part| {
                let wv: V = ld(row.add(c), part);
                let dv: V = ld(delta.add(c), part);
                st(s.neg_mul_add(dv, wv), row.add(c), part);
            });
        }
    }
}

/// `backward` and `rank1_update` in one sweep: each element of W is loaded once, feeds the
/// dot product with its old value and is stored updated. Same operations in the same order
/// as the two separate kernels, so the same bits.
///
/// # Safety
/// The module's pointer contract.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn backward_update<T: Scalar, V: Vector<T>>(
    w: *mut T,
    h: usize,
    l: usize,
    rs: usize,
    alpha: T,
    a_prev: *const T,
    delta: *const T,
    d_prev: *const T,
    delta_prev: *mut T,
) {
    for r in 0..h {
        // SAFETY: row r < h of the view.
        unsafe {
            let s = V::splat(alpha * *a_prev.add(r));
            let dot = row_dot::<T, V>(w.add(r * rs), delta, l, Some(s));
            *delta_prev.add(r) = *d_prev.add(r) * dot;
        }
    }
}

/// Runs `f` over `n` a vector at a time, writing a and d; NaN lanes of n come out NaN in
/// both.
#[inline(always)]
unsafe fn map<T: Scalar, V: Vector<T>>(
    n: *const T,
    a: *mut T,
    d: *mut T,
    len: usize,
    f: impl Fn(V) -> (V, V),
) {
    chunks::<T, V>(len, |c, part| {
        // SAFETY: chunks stay below len, the length of all three buffers.
        unsafe {
            let x: V = ld(n.add(c), part);
            let (av, dv) = f(x);
            let nan = x.is_nan();
            st(V::select(nan, x, av), a.add(c), part);
            st(V::select(nan, x, dv), d.add(c), part);
        }
    });
}

/// a = σ(n), d = σ'(n) for an element-wise activation (the caller has rejected Softmax).
///
/// # Safety
/// `n`, `a`, `d` are valid for `len` elements, `a` and `d` writable and disjoint from `n`;
/// the CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn activate<T: Scalar, V: Vector<T>>(
    act: Activation,
    n: *const T,
    a: *mut T,
    d: *mut T,
    len: usize,
) {
    // SAFETY: forwarded; the closures only build constants and arithmetic on this level.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let one = splat::<T, V>(1.0);
        match act {
            Activation::Identity => map::<T, V>(n, a, d, len, |x| (x, one)),
            Activation::Sigmoid => map::<T, V>(n, a, d, len, |x| {
                let (s, s_neg, _) = sigmoid_pair::<T, V>(x);
                (s, s.mul(s_neg))
            }),
            Activation::Tanh => map::<T, V>(n, a, d, len, |x| tanh_pair::<T, V>(x)),
            Activation::Relu => map::<T, V>(n, a, d, len, |x| {
                let pos = zero.lt(x);
                (V::select(pos, x, zero), V::select(pos, one, zero))
            }),
            Activation::LeakyRelu => {
                let slope = splat::<T, V>(LEAKY_RELU_SLOPE);
                map::<T, V>(n, a, d, len, |x| {
                    let pos = zero.lt(x);
                    (V::select(pos, x, slope.mul(x)), V::select(pos, one, slope))
                })
            }
            Activation::Softplus => map::<T, V>(n, a, d, len, |x| {
                let (s, _, e) = sigmoid_pair::<T, V>(x);
                (x.max(zero).add(log1p_unit::<T, V>(e)), s)
            }),
            Activation::Gelu => {
                let c2 = splat::<T, V>(2.0 * GELU_C);
                let k = splat::<T, V>(GELU_K);
                let k3 = splat::<T, V>(3.0 * GELU_K);
                // Beyond |n| = 40, σ(2u)σ(−2u) = 0 exactly in both precisions (2|u| > 4600), so
                // the derivative's tail is 0; clamping n there keeps n² from overflowing into
                // 0 · ∞.
                let big = splat::<T, V>(40.0);
                map::<T, V>(n, a, d, len, |x| {
                    let x2 = x.mul(x);
                    let u2 = c2.mul(x).mul(k.mul_add(x2, one));
                    let (s, s_neg, _) = sigmoid_pair::<T, V>(u2);
                    let xc = x.max(zero.sub(big)).min(big);
                    let slope = c2.mul(xc).mul(k3.mul(xc).mul_add(xc, one));
                    (x.mul(s), slope.mul(s.mul(s_neg)).add(s))
                })
            }
            Activation::Softmax => unreachable!("rejected by the caller"),
        }
    }
}

/// The vectorised elementary functions alone, for the accuracy tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum MathFn {
    /// eˣ.
    Exp,
    /// ln(1 + u) on [0, 1].
    Log1p,
    /// tanh x.
    Tanh,
}

/// out = f(x) element-wise.
///
/// # Safety
/// `x` and `out` are valid for `len` elements; the CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn math<T: Scalar, V: Vector<T>>(
    f: MathFn,
    x: *const T,
    out: *mut T,
    len: usize,
) {
    chunks::<T, V>(len, |c, part| {
        // SAFETY: chunks stay below len.
        unsafe {
            let v: V = ld(x.add(c), part);
            let y = match f {
                MathFn::Exp => exp::<T, V>(v),
                MathFn::Log1p => log1p_unit::<T, V>(v),
                MathFn::Tanh => tanh_pair::<T, V>(v).0,
            };
            st(V::select(v.is_nan(), v, y), out.add(c), part);
        }
    });
}
