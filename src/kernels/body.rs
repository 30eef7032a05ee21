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

/// Rows per pass of the wide affine loop: n is loaded and stored once per this many rows
/// (then passes of half as many, then single rows). Eight row streams measured 3–10 % faster
/// than four from L2 and L3 at the same bits.
const AFFINE_ROWS: usize = 8;

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
            // Lanes in the first and second vector of a row (k1 = 0: one vector).
            let k0 = l.min(V::LANES);
            let k1 = l - k0;
            let zero = splat::<T, V>(0.0);
            let (mut lo, mut hi) = ([zero; 4], [zero; 4]);
            macro_rules! row {
                ($s:expr, $r:expr) => {{
                    let p = w.add($r * rs);
                    let ar = V::splat(*a_prev.add($r));
                    lo[$s] = ar.mul_add(V::load_partial(p, k0), lo[$s]);
                    if k1 > 0 {
                        hi[$s] = ar.mul_add(V::load_partial(p.add(V::LANES), k1), hi[$s]);
                    }
                }};
            }
            let mut r = 0;
            while r + 4 <= h {
                row!(0, r);
                row!(1, r + 1);
                row!(2, r + 2);
                row!(3, r + 3);
                r += 4;
            }
            if r < h {
                row!(0, r);
            }
            if r + 1 < h {
                row!(1, r + 1);
            }
            if r + 2 < h {
                row!(2, r + 2);
            }
            let sum_lo = lo[0].add(lo[1]).add(lo[2].add(lo[3]));
            V::load_partial(b, k0).add(sum_lo).store_partial(n, k0);
            if k1 > 0 {
                let sum_hi = hi[0].add(hi[1]).add(hi[2].add(hi[3]));
                let (b1, n1) = (b.add(V::LANES), n.add(V::LANES));
                V::load_partial(b1, k1).add(sum_hi).store_partial(n1, k1);
            }
            return;
        }

        let full = l - l % V::LANES;
        let rest = l - full;
        let mut c = 0;
        while c < full {
            V::load(b.add(c)).store(n.add(c));
            c += V::LANES;
        }
        if rest > 0 {
            V::load_partial(b.add(c), rest).store_partial(n.add(c), rest);
        }
        // 8 rows per pass over n, then 4, then one at a time: each n_c stays one sequential
        // chain over r, whatever the pass width.
        let r = affine_rows::<T, V, AFFINE_ROWS>(w, h, rs, a_prev, n, full, rest, 0);
        let mut r = affine_rows::<T, V, { AFFINE_ROWS / 2 }>(w, h, rs, a_prev, n, full, rest, r);
        while r < h {
            let ar = V::splat(*a_prev.add(r));
            let row = w.add(r * rs);
            let mut c = 0;
            while c < full {
                ar.mul_add(V::load(row.add(c)), V::load(n.add(c)))
                    .store(n.add(c));
                c += V::LANES;
            }
            if rest > 0 {
                let acc = V::load_partial(n.add(c), rest);
                ar.mul_add(V::load_partial(row.add(c), rest), acc)
                    .store_partial(n.add(c), rest);
            }
            r += 1;
        }
    }
}

/// From row `r` on, passes of R rows over n (`full` columns in whole vectors, then `rest`)
/// while R rows remain: n_c ← n_c + W_rc â_r + … + W_(r+R−1)c â_(r+R−1), one FMA at a time.
/// Returns the first row not done.
///
/// # Safety
/// The module's pointer contract, as in [`affine`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn affine_rows<T: Scalar, V: Vector<T>, const R: usize>(
    w: *const T,
    h: usize,
    rs: usize,
    a_prev: *const T,
    n: *mut T,
    full: usize,
    rest: usize,
    mut r: usize,
) -> usize {
    // SAFETY: rows r .. r + R < h and columns < full + rest = l, inside the views.
    unsafe {
        let zero = splat::<T, V>(0.0);
        while r + R <= h {
            let mut ar = [zero; R];
            let mut rows = [w; R];
            for k in 0..R {
                ar[k] = V::splat(*a_prev.add(r + k));
                rows[k] = w.add((r + k) * rs);
            }
            let mut c = 0;
            while c < full {
                let mut acc = V::load(n.add(c));
                for k in 0..R {
                    acc = ar[k].mul_add(V::load(rows[k].add(c)), acc);
                }
                acc.store(n.add(c));
                c += V::LANES;
            }
            if rest > 0 {
                let mut acc = V::load_partial(n.add(c), rest);
                for k in 0..R {
                    acc = ar[k].mul_add(V::load_partial(rows[k].add(c), rest), acc);
                }
                acc.store_partial(n.add(c), rest);
            }
            r += R;
        }
        r
    }
}

/// One row's dot product with δ, in the fixed order of `DOT_ACCS` accumulators (vector j
/// of the row, the last one possibly partial, feeds accumulator j mod 4), and with
/// `UPDATE` also the row's update W_r ← W_r − s·δ from the same loads.
///
/// # Safety
/// `row` and `delta` are valid for `l` elements (`row` writable when updating); the CPU
/// supports `V`'s level.
#[inline(always)]
unsafe fn row_dot<T: Scalar, V: Vector<T>, const UPDATE: bool>(
    row: *mut T,
    delta: *const T,
    l: usize,
    s: V,
) -> V {
    // SAFETY: every vector read or written lies below l; see the function's contract.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
        macro_rules! step {
            ($acc:ident, $c:expr) => {{
                let c = $c;
                let wv = V::load(row.add(c));
                let dv = V::load(delta.add(c));
                $acc = wv.mul_add(dv, $acc);
                if UPDATE {
                    s.neg_mul_add(dv, wv).store(row.add(c));
                }
            }};
        }
        let full = l / V::LANES;
        let mut j = 0;
        // Written out per accumulator so that all four stay in registers.
        while j + DOT_ACCS <= full {
            step!(a0, j * V::LANES);
            step!(a1, (j + 1) * V::LANES);
            step!(a2, (j + 2) * V::LANES);
            step!(a3, (j + 3) * V::LANES);
            j += DOT_ACCS;
        }
        if j < full {
            step!(a0, j * V::LANES);
            j += 1;
        }
        if j < full {
            step!(a1, j * V::LANES);
            j += 1;
        }
        if j < full {
            step!(a2, j * V::LANES);
        }
        let rest = l - full * V::LANES;
        if rest > 0 {
            let c = full * V::LANES;
            let wv = V::load_partial(row.add(c), rest);
            let dv = V::load_partial(delta.add(c), rest);
            // By value, not through a reference, so the accumulators stay in registers.
            match full % DOT_ACCS {
                0 => a0 = wv.mul_add(dv, a0),
                1 => a1 = wv.mul_add(dv, a1),
                2 => a2 = wv.mul_add(dv, a2),
                _ => a3 = wv.mul_add(dv, a3),
            }
            if UPDATE {
                s.neg_mul_add(dv, wv).store_partial(row.add(c), rest);
            }
        }
        a0.add(a1).add(a2.add(a3))
    }
}

/// `row_dot` for two rows at once, sharing every load of δ between them. Each row's
/// accumulators see the same operations in the same order as in `row_dot`, so the results
/// are bit for bit those of two `row_dot` calls.
///
/// # Safety
/// As `row_dot`, for both rows.
#[inline(always)]
unsafe fn row_dot2<T: Scalar, V: Vector<T>, const UPDATE: bool>(
    rows: [*mut T; 2],
    delta: *const T,
    l: usize,
    s: [V; 2],
) -> [V; 2] {
    // SAFETY: every vector read or written lies below l in one of the two rows.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
        let (mut b0, mut b1, mut b2, mut b3) = (zero, zero, zero, zero);
        macro_rules! step {
            ($acc:ident, $bcc:ident, $c:expr) => {{
                let c = $c;
                let dv = V::load(delta.add(c));
                let wv = V::load(rows[0].add(c));
                let xv = V::load(rows[1].add(c));
                $acc = wv.mul_add(dv, $acc);
                $bcc = xv.mul_add(dv, $bcc);
                if UPDATE {
                    s[0].neg_mul_add(dv, wv).store(rows[0].add(c));
                    s[1].neg_mul_add(dv, xv).store(rows[1].add(c));
                }
            }};
        }
        let full = l / V::LANES;
        let mut j = 0;
        while j + DOT_ACCS <= full {
            step!(a0, b0, j * V::LANES);
            step!(a1, b1, (j + 1) * V::LANES);
            step!(a2, b2, (j + 2) * V::LANES);
            step!(a3, b3, (j + 3) * V::LANES);
            j += DOT_ACCS;
        }
        if j < full {
            step!(a0, b0, j * V::LANES);
            j += 1;
        }
        if j < full {
            step!(a1, b1, j * V::LANES);
            j += 1;
        }
        if j < full {
            step!(a2, b2, j * V::LANES);
        }
        let rest = l - full * V::LANES;
        if rest > 0 {
            let c = full * V::LANES;
            let dv = V::load_partial(delta.add(c), rest);
            let wv = V::load_partial(rows[0].add(c), rest);
            let xv = V::load_partial(rows[1].add(c), rest);
            match full % DOT_ACCS {
                0 => (a0, b0) = (wv.mul_add(dv, a0), xv.mul_add(dv, b0)),
                1 => (a1, b1) = (wv.mul_add(dv, a1), xv.mul_add(dv, b1)),
                2 => (a2, b2) = (wv.mul_add(dv, a2), xv.mul_add(dv, b2)),
                _ => (a3, b3) = (wv.mul_add(dv, a3), xv.mul_add(dv, b3)),
            }
            if UPDATE {
                s[0].neg_mul_add(dv, wv).store_partial(rows[0].add(c), rest);
                s[1].neg_mul_add(dv, xv).store_partial(rows[1].add(c), rest);
            }
        }
        [a0.add(a1).add(a2.add(a3)), b0.add(b1).add(b2.add(b3))]
    }
}

/// δ̂_r = d_r · (row r of W · δ) for all rows, four rows per horizontal reduction (rows past
/// h padded with zero vectors, so every row is summed the same way). With `UPDATE`, each
/// row also gets W_r ← W_r − (α â_r)·δ from the same loads.
///
/// # Safety
/// The module's pointer contract.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_rows<T: Scalar, V: Vector<T>, const UPDATE: bool>(
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
    // SAFETY: rows r < h only; see the contract.
    unsafe {
        let zero = splat::<T, V>(0.0);
        // δ̂ for rows r..r + k (k ≤ 4) from their four row vectors, one shared reduction.
        macro_rules! finish {
            ($r:expr, $v:expr, $k:expr) => {{
                let r = $r;
                for (i, sum) in V::reduce4($v).into_iter().enumerate().take($k) {
                    *delta_prev.add(r + i) = *d_prev.add(r + i) * sum;
                }
            }};
        }
        if l <= 2 * V::LANES {
            // Narrow layers (an output layer of 10): a row is one or two vectors, δ stays in
            // registers, and the row's dot product is one or two multiplies, added as the
            // general loop below would add its first two accumulators.
            let k0 = l.min(V::LANES);
            let k1 = l - k0;
            let dv0 = V::load_partial(delta, k0);
            let dv1 = V::load_partial(delta.add(k0), k1);
            macro_rules! narrow_row {
                ($r:expr) => {{
                    let r = $r;
                    let p = w.add(r * rs);
                    let s = if UPDATE {
                        V::splat(alpha * *a_prev.add(r))
                    } else {
                        zero
                    };
                    let wv0 = V::load_partial(p, k0);
                    let mut dot = wv0.mul_add(dv0, zero);
                    if UPDATE {
                        s.neg_mul_add(dv0, wv0).store_partial(p, k0);
                    }
                    if k1 > 0 {
                        let wv1 = V::load_partial(p.add(k0), k1);
                        dot = dot.add(wv1.mul_add(dv1, zero));
                        if UPDATE {
                            s.neg_mul_add(dv1, wv1).store_partial(p.add(k0), k1);
                        }
                    }
                    dot
                }};
            }
            let mut r = 0;
            while r + 4 <= h {
                let v = [
                    narrow_row!(r),
                    narrow_row!(r + 1),
                    narrow_row!(r + 2),
                    narrow_row!(r + 3),
                ];
                finish!(r, v, 4);
                r += 4;
            }
            if r < h {
                let k = h - r;
                let v1 = if k > 1 { narrow_row!(r + 1) } else { zero };
                let v2 = if k > 2 { narrow_row!(r + 2) } else { zero };
                finish!(r, [narrow_row!(r), v1, v2, zero], k);
            }
            return;
        }
        // A macro, not a closure: closures are compiled without the level's target
        // features and would turn every vector operation into a call.
        macro_rules! row {
            ($r:expr) => {{
                let r = $r;
                let s = if UPDATE {
                    V::splat(alpha * *a_prev.add(r))
                } else {
                    zero
                };
                row_dot::<T, V, UPDATE>(w.add(r * rs), delta, l, s)
            }};
        }
        macro_rules! row_pair {
            ($r:expr) => {{
                let r = $r;
                let s = if UPDATE {
                    [
                        V::splat(alpha * *a_prev.add(r)),
                        V::splat(alpha * *a_prev.add(r + 1)),
                    ]
                } else {
                    [zero; 2]
                };
                row_dot2::<T, V, UPDATE>([w.add(r * rs), w.add((r + 1) * rs)], delta, l, s)
            }};
        }
        let mut r = 0;
        while r + 4 <= h {
            let [v0, v1] = row_pair!(r);
            let [v2, v3] = row_pair!(r + 2);
            finish!(r, [v0, v1, v2, v3], 4);
            r += 4;
        }
        if r < h {
            let k = h - r;
            let v1 = if k > 1 { row!(r + 1) } else { zero };
            let v2 = if k > 2 { row!(r + 2) } else { zero };
            finish!(r, [row!(r), v1, v2, zero], k);
        }
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
    // SAFETY: forwarded; without UPDATE, `backward_rows` only reads W and never touches
    // `a_prev` (null here).
    unsafe {
        let a_prev = std::ptr::null();
        backward_rows::<T, V, false>(
            w.cast_mut(),
            h,
            l,
            rs,
            T::ZERO,
            a_prev,
            delta,
            d_prev,
            delta_prev,
        )
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
    if l <= 2 * V::LANES {
        // Narrow layers: δ stays in registers (the compiler cannot hoist its loads past the
        // stores to W, which it must assume may alias).
        // SAFETY: row r < h of the view, l = k0 + k1 elements each.
        unsafe {
            let k0 = l.min(V::LANES);
            let k1 = l - k0;
            let dv0 = V::load_partial(delta, k0);
            let dv1 = V::load_partial(delta.add(k0), k1);
            for r in 0..h {
                let s = V::splat(alpha * *a_prev.add(r));
                let row = w.add(r * rs);
                s.neg_mul_add(dv0, V::load_partial(row, k0))
                    .store_partial(row, k0);
                if k1 > 0 {
                    let row1 = row.add(k0);
                    s.neg_mul_add(dv1, V::load_partial(row1, k1))
                        .store_partial(row1, k1);
                }
            }
        }
        return;
    }
    // Four rows per pass: each vector of δ is loaded once for four rows of W (δ is reloaded
    // for every pass because the compiler must assume the stores to W may alias it). Every
    // element still gets exactly W_rc − (α â_r)·δ_c with one FMA, so the blocking changes no
    // bits.
    const ROWS: usize = 4;
    // SAFETY: rows r < h of the view, vectors below l.
    unsafe {
        let mut r = 0;
        while r + ROWS <= h {
            let mut s = [V::splat(T::ZERO); ROWS];
            let mut rows = [w; ROWS];
            for k in 0..ROWS {
                s[k] = V::splat(alpha * *a_prev.add(r + k));
                rows[k] = w.add((r + k) * rs);
            }
            let mut c = 0;
            while c + V::LANES <= l {
                let dv = V::load(delta.add(c));
                for k in 0..ROWS {
                    let p = rows[k].add(c);
                    s[k].neg_mul_add(dv, V::load(p)).store(p);
                }
                c += V::LANES;
            }
            if c < l {
                let n = l - c;
                let dv = V::load_partial(delta.add(c), n);
                for k in 0..ROWS {
                    let p = rows[k].add(c);
                    s[k].neg_mul_add(dv, V::load_partial(p, n))
                        .store_partial(p, n);
                }
            }
            r += ROWS;
        }
        while r < h {
            let s = V::splat(alpha * *a_prev.add(r));
            let row = w.add(r * rs);
            let mut c = 0;
            while c + V::LANES <= l {
                let wv = V::load(row.add(c));
                s.neg_mul_add(V::load(delta.add(c)), wv).store(row.add(c));
                c += V::LANES;
            }
            if c < l {
                let k = l - c;
                let wv = V::load_partial(row.add(c), k);
                s.neg_mul_add(V::load_partial(delta.add(c), k), wv)
                    .store_partial(row.add(c), k);
            }
            r += 1;
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
    // SAFETY: forwarded.
    unsafe { backward_rows::<T, V, true>(w, h, l, rs, alpha, a_prev, delta, d_prev, delta_prev) }
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
    chunks::<T, V>(
        len,
        #[inline(always)]
        |c, part| {
            // SAFETY: chunks stay below len, the length of all three buffers.
            unsafe {
                let x: V = ld(n.add(c), part);
                let (av, dv) = f(x);
                let nan = x.is_nan();
                st(V::select(nan, x, av), a.add(c), part);
                st(V::select(nan, x, dv), d.add(c), part);
            }
        },
    );
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
            Activation::Identity => map::<T, V>(
                n,
                a,
                d,
                len,
                #[inline(always)]
                |x| (x, one),
            ),
            Activation::Sigmoid => map::<T, V>(
                n,
                a,
                d,
                len,
                #[inline(always)]
                |x| {
                    let (s, s_neg, _) = sigmoid_pair::<T, V>(x);
                    (s, s.mul(s_neg))
                },
            ),
            Activation::Tanh => map::<T, V>(
                n,
                a,
                d,
                len,
                #[inline(always)]
                |x| tanh_pair::<T, V>(x),
            ),
            Activation::Relu => map::<T, V>(
                n,
                a,
                d,
                len,
                #[inline(always)]
                |x| {
                    let pos = zero.lt(x);
                    (V::select(pos, x, zero), V::select(pos, one, zero))
                },
            ),
            Activation::LeakyRelu => {
                let slope = splat::<T, V>(LEAKY_RELU_SLOPE);
                map::<T, V>(
                    n,
                    a,
                    d,
                    len,
                    #[inline(always)]
                    |x| {
                        let pos = zero.lt(x);
                        (V::select(pos, x, slope.mul(x)), V::select(pos, one, slope))
                    },
                )
            }
            Activation::Softplus => map::<T, V>(
                n,
                a,
                d,
                len,
                #[inline(always)]
                |x| {
                    let (s, _, e) = sigmoid_pair::<T, V>(x);
                    (x.max(zero).add(log1p_unit::<T, V>(e)), s)
                },
            ),
            Activation::Gelu => {
                let c2 = splat::<T, V>(2.0 * GELU_C);
                let k = splat::<T, V>(GELU_K);
                let k3 = splat::<T, V>(3.0 * GELU_K);
                // Beyond |n| = 40, σ(2u)σ(−2u) = 0 exactly in both precisions (2|u| > 4600), so
                // the derivative's tail is 0; clamping n there keeps n² from overflowing into
                // 0 · ∞.
                let big = splat::<T, V>(40.0);
                map::<T, V>(
                    n,
                    a,
                    d,
                    len,
                    #[inline(always)]
                    |x| {
                        let x2 = x.mul(x);
                        let u2 = c2.mul(x).mul(k.mul_add(x2, one));
                        let (s, s_neg, _) = sigmoid_pair::<T, V>(u2);
                        let xc = x.max(zero.sub(big)).min(big);
                        let slope = c2.mul(xc).mul(k3.mul(xc).mul_add(xc, one));
                        (x.mul(s), slope.mul(s.mul(s_neg)).add(s))
                    },
                )
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

/// Vectors of a softmax row kept in registers (rows up to this many vectors, e.g. an output
/// layer of 10, are read once and written once).
const SOFTMAX_REGS: usize = 4;

/// 1.0 in each element type, enough for the widest vector (lanes of a partial chunk's
/// mask: see [`valid_lanes`]).
static ONES_F32: [f32; 16] = [1.0; 16];
static ONES_F64: [f64; 16] = [1.0; 16];

/// The mask of lanes `< k` (a partial chunk's), from a load of k ones: a constant load, not
/// a read-back of a masked store (which the CPU cannot forward).
///
/// # Safety
/// `k ≤ V::LANES ≤ 16`; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn valid_lanes<T: Scalar, V: Vector<T>>(k: usize) -> V::Mask {
    let ones = if size_of::<T>() == 4 {
        ONES_F32.as_ptr().cast::<T>()
    } else {
        ONES_F64.as_ptr().cast::<T>()
    };
    // SAFETY: T is f32 or f64 (`Scalar` is sealed), so the table holds 16 ≥ k values of T.
    unsafe { splat::<T, V>(0.0).lt(V::load_partial(ones, k)) }
}

/// Softmax in place over `len ≥ 1` elements: `z` holds the pre-activations n on entry and
/// y = softmax(n) on return. With targets (`t` not null, `len` elements) returns the
/// cross-entropy −Σ tⱼ ln yⱼ, else zero.
///
/// m = max n (a scalar fold in index order; NaN only if n₀ is NaN, but a NaN anywhere makes
/// its e, hence s and every y, NaN); uⱼ = nⱼ − m ≤ 0, eⱼ = e^uⱼ (the level's `exp`),
/// s = Σ eⱼ ∈ [1, len] (lanes past `len` masked to zero), Σ tⱼ and Σ tⱼuⱼ (t loads as zero
/// past `len`); then yⱼ = eⱼ / s. Rows of up to [`SOFTMAX_REGS`] vectors keep e in
/// registers; longer rows store e and read it back for the division. The loss is
/// ψ = (Σ tⱼ)·ln s − Σ tⱼuⱼ: for t ≥ 0 two non-negative terms, without cancellation, with
/// ln s exact near s = 1: `ln_1p(s − 1)` for f64, and for f32 the f64 `ln` of s (s ≥ 1 is
/// an f32, so its f64 logarithm has relative error ≤ 2⁻⁵²/2⁻²³ = 2⁻²⁹ even at s = 1 + 2⁻²³,
/// before the one rounding to f32).
///
/// # Safety
/// `z` is valid for `len ≥ 1` elements and `t` is null or valid for `len`; the CPU supports
/// `V`'s level.
#[inline(always)]
pub(crate) unsafe fn softmax<T: Scalar, V: Vector<T>>(z: *mut T, t: *const T, len: usize) -> T {
    // SAFETY: every access is below len (partial chunks through the masked load and store).
    unsafe {
        let mut m = *z;
        for j in 1..len {
            let v = *z.add(j);
            if v > m {
                m = v;
            }
        }
        let mv = V::splat(m);
        let zero = splat::<T, V>(0.0);
        let (mut s, mut sum_t, mut sum_tu) = (zero, zero, zero);
        // e of the chunk at c (zero past len), accumulating the sums (a macro: a closure
        // could not be marked inline).
        macro_rules! chunk {
            ($c:expr, $part:expr) => {{
                let (c, part): (usize, Option<usize>) = ($c, $part);
                let u = ld::<T, V>(z.add(c), part).sub(mv);
                // `exp` clamps its argument; NaN passes through, as std's does.
                let mut e = V::select(u.is_nan(), u, exp::<T, V>(u));
                if let Some(k) = part {
                    e = V::select(valid_lanes::<T, V>(k), e, zero);
                }
                s = s.add(e);
                if !t.is_null() {
                    let tv: V = ld(t.add(c), part);
                    sum_t = sum_t.add(tv);
                    sum_tu = tv.mul_add(u, sum_tu);
                }
                e
            }};
        }
        let part_at = |c: usize| (c + V::LANES > len).then(|| len - c);
        let total;
        if len <= SOFTMAX_REGS * V::LANES {
            let mut es = [zero; SOFTMAX_REGS];
            for (i, e) in es.iter_mut().enumerate() {
                let c = i * V::LANES;
                if c < len {
                    *e = chunk!(c, part_at(c));
                }
            }
            total = s.reduce_sum();
            let sv = V::splat(total);
            for (i, e) in es.iter().enumerate() {
                let c = i * V::LANES;
                if c < len {
                    st(e.div(sv), z.add(c), part_at(c));
                }
            }
        } else {
            chunks::<T, V>(
                len,
                #[inline(always)]
                |c, part| st(chunk!(c, part), z.add(c), part),
            );
            total = s.reduce_sum();
            let sv = V::splat(total);
            chunks::<T, V>(
                len,
                #[inline(always)]
                |c, part| st(ld::<T, V>(z.add(c), part).div(sv), z.add(c), part),
            );
        }
        if t.is_null() {
            return T::ZERO;
        }
        let ln_s = if size_of::<T>() == 4 {
            T::from_f64(total.to_f64().ln())
        } else {
            (total - T::ONE).ln_1p()
        };
        sum_t.reduce_sum() * ln_s - sum_tu.reduce_sum()
    }
}

/// Σ |x_i| over `len` elements in T: four vector chains, a one-vector tail, the lanes summed
/// at the end. ±∞ or NaN when an element is not finite (or the sum overflows T), so a finite
/// result proves every element finite.
///
/// # Safety
/// `x` is valid for `len` elements; the CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn sum_abs<T: Scalar, V: Vector<T>>(x: *const T, len: usize) -> T {
    const NV: usize = 4;
    let step = NV * V::LANES;
    // SAFETY: every load reads below len (the last through `load_partial`).
    unsafe {
        let mut acc = [splat::<T, V>(0.0); NV];
        let mut i = 0;
        while i + step <= len {
            for (v, a) in acc.iter_mut().enumerate() {
                *a = a.add(V::load(x.add(i + v * V::LANES)).abs());
            }
            i += step;
        }
        while i + V::LANES <= len {
            acc[0] = acc[0].add(V::load(x.add(i)).abs());
            i += V::LANES;
        }
        if i < len {
            acc[1] = acc[1].add(V::load_partial(x.add(i), len - i).abs());
        }
        acc[0].add(acc[1]).add(acc[2].add(acc[3])).reduce_sum()
    }
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
    chunks::<T, V>(
        len,
        #[inline(always)]
        |c, part| {
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
        },
    );
}
