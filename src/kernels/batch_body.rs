//! The minibatch bodies: a small packed GEMM written once over [`Vector`], with the batch
//! epilogues fused into its tile stores, and the row-wise helpers around it. Instantiated per
//! level by [`batch_fns!`] (invoked from `table.rs`). Raw pointers in, no checks: `batch.rs`
//! validates every shape first.
//!
//! # The GEMM
//! C (m × n) = A (m × k) · B (k × n), every operand strided (element (i, j) of X at
//! `X.ptr + i·X.rs + j·X.cs`), then one of the [`Epilogue`]s. Loop order, for the output block
//! a caller asks for (a range of rows × a range of columns):
//!
//! ```text
//! for each panel of NR columns:                       (NR = NV vectors)
//!     for each block of KC values of k:
//!         pack B[block, panel] into a KC × NR stack buffer (zero-padded past n)
//!         for each tile of MR rows:                   (the micro-kernel)
//!             MR × NV vector accumulators; per k: NV loads of the packed row,
//!             MR broadcasts of A[i, k], MR · NV FMAs; then the tile's epilogue
//! ```
//!
//! A is never packed (broadcasts read it in place: a row-major A costs MR row streams, a
//! transposed one MR adjacent scalars), so no buffer scales with the problem and nothing is
//! allocated: the only scratch is the packed panel (at most [`PACK_BYTES`]) and one
//! tile, both on the stack.
//!
//! # Summation order
//! Every C element is the sequential chain of one FMA per k in increasing k, started from the
//! epilogue's initial value (0, or the bias); a later k-block reloads the chain's partial sum
//! from C (or, for [`Epilogue::Scale`], adds its own block sum to C: C ← C + s·Σ_block).
//! Packing copies exactly, and the last tile's surplus rows (clamped to row m − 1) and
//! columns (zero padding) are computed but never stored, so each element's value depends on
//! the shape and the level only — never on the rows × columns block it was computed in.
//! Splitting the output into blocks across threads therefore gives the same bits for any
//! split and any thread count.

use std::mem::MaybeUninit;
use std::ops::Range;

use crate::activation::Activation;
use crate::scalar::Scalar;
use crate::simd::Vector;
use crate::simd::math::splat;

/// Bytes of the packed B panel on the stack: KC · NR · size_of::<T>() ≤ this.
pub(crate) const PACK_BYTES: usize = 32 * 1024;

/// The packed panel's storage: [`PACK_BYTES`], aligned for any vector load.
#[repr(C, align(64))]
struct PackBuf(MaybeUninit<[u8; PACK_BYTES]>);

/// Largest MR · NR of any level (the tile scratch on the stack).
const MAX_TILE: usize = 12 * 32;

/// Largest NR of any level.
const MAX_NR: usize = 32;

/// A strided input: element (i, j) at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct Operand<T> {
    pub(crate) ptr: *const T,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// A strided output: element (i, j) at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct Output<T> {
    pub(crate) ptr: *mut T,
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

/// What a finished tile becomes.
#[derive(Clone, Copy)]
pub(crate) enum Epilogue<T> {
    /// C = AB + 1bᵀ (the chain starts at b_j), then C ← σ(C) and D ← σ'(C), row by row.
    /// C and D have `cs = 1`; `act` is element-wise.
    BiasActivate {
        act: Activation,
        bias: *const T,
        d: Output<T>,
    },
    /// C = (AB) ⊙ D̂, D̂ strided like C.
    Hadamard { d: Operand<T> },
    /// C ← s·AB + β·C; C is not read when β = 0. Blocks of k after the first add
    /// s·(their block's sum) to C. C has `cs = 1`.
    Scale { s: T, beta: T },
}

/// One GEMM with its epilogue: C = A B (m × k times k × n), then `epi`.
#[derive(Clone, Copy)]
pub(crate) struct Gemm<T> {
    pub(crate) m: usize,
    pub(crate) n: usize,
    pub(crate) k: usize,
    pub(crate) a: Operand<T>,
    pub(crate) b: Operand<T>,
    pub(crate) c: Output<T>,
    pub(crate) epi: Epilogue<T>,
}

/// The tile shape of a level: MR rows × NV vectors, and KC values of k per packed panel.
///
/// # Safety
/// `gemm` must be `gemm_tiled::<T, Self, MR, NV, KC>` with MR ≤ 12, NV · LANES ≤ 32 and
/// KC · NV · LANES · size_of::<T>() ≤ [`PACK_BYTES`]; `batch.rs` sizes its thread partitions
/// from `MR` and `NR`.
pub(crate) unsafe trait Tiling<T: Scalar>: Vector<T> {
    /// Rows of a tile.
    const MR: usize;
    /// Columns of a tile (a multiple of `LANES`).
    const NR: usize;
    /// Values of k per packed panel.
    const KC: usize;
    /// [`gemm_tiled`] at this level's shape.
    ///
    /// # Safety
    /// As [`gemm_tiled`].
    unsafe fn gemm(g: &Gemm<T>, rows: Range<usize>, cols: Range<usize>);
}

macro_rules! tiling {
    ($v:ty, $t:ty, $mr:literal, $nv:literal, $kc:literal) => {
        // SAFETY: MR ≤ 12, NV · LANES ≤ 32 and KC · NV · LANES · size ≤ PACK_BYTES for every
        // instance below (checked again by `gemm_tiled`'s assertion).
        unsafe impl Tiling<$t> for $v {
            const MR: usize = $mr;
            const NR: usize = $nv * <$v as Vector<$t>>::LANES;
            const KC: usize = $kc;
            #[inline(always)]
            unsafe fn gemm(g: &Gemm<$t>, rows: Range<usize>, cols: Range<usize>) {
                // SAFETY: forwarded.
                unsafe { gemm_tiled::<$t, $v, $mr, $nv, $kc>(g, rows, cols) }
            }
        }
    };
}

// AVX2 has 16 ymm registers: 6 × 2 accumulators, 2 packed loads and a broadcast. AVX-512 has
// 32: 12 × 2 accumulators. The portable vectors are two xmm each on SSE2: 4 × 1. KC = 256
// covers a minibatch of 256 in one block (so the gradient's G is read and written once) with
// a panel of at most 32 KiB, which stays in L1 beside the MR streams of A.
tiling!(wide::f32x8, f32, 4, 1, 256);
tiling!(wide::f64x4, f64, 4, 1, 256);
#[cfg(target_arch = "x86_64")]
tiling!(crate::simd::x86::Avx2F32, f32, 6, 2, 256);
#[cfg(target_arch = "x86_64")]
tiling!(crate::simd::x86::Avx2F64, f64, 6, 2, 256);
#[cfg(target_arch = "x86_64")]
tiling!(crate::simd::x86::Avx512F32, f32, 12, 2, 256);
#[cfg(target_arch = "x86_64")]
tiling!(crate::simd::x86::Avx512F64, f64, 12, 2, 256);

/// Lanes of vector `v` of a panel row that lie within `nr_eff` columns.
#[inline(always)]
fn lanes<T: Scalar, V: Vector<T>>(nr_eff: usize, v: usize) -> usize {
    nr_eff.saturating_sub(v * V::LANES).min(V::LANES)
}

/// Loads `nr_eff ≤ NV · LANES` contiguous elements as NV vectors, zero past `nr_eff`.
///
/// # Safety
/// `p..p + nr_eff` is readable; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn load_row<T: Scalar, V: Vector<T>, const NV: usize>(
    p: *const T,
    nr_eff: usize,
) -> [V; NV] {
    // SAFETY: each vector reads only its lanes below nr_eff.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let mut out = [zero; NV];
        if nr_eff == NV * V::LANES {
            for (v, o) in out.iter_mut().enumerate() {
                *o = V::load(p.add(v * V::LANES));
            }
        } else {
            for (v, o) in out.iter_mut().enumerate() {
                let k = lanes::<T, V>(nr_eff, v);
                if k > 0 {
                    *o = V::load_partial(p.add(v * V::LANES), k);
                }
            }
        }
        out
    }
}

/// Stores the first `nr_eff` lanes of NV vectors to contiguous elements.
///
/// # Safety
/// `p..p + nr_eff` is writable; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn store_row<T: Scalar, V: Vector<T>, const NV: usize>(
    row: &[V; NV],
    p: *mut T,
    nr_eff: usize,
) {
    // SAFETY: each vector writes only its lanes below nr_eff.
    unsafe {
        if nr_eff == NV * V::LANES {
            for (v, x) in row.iter().enumerate() {
                x.store(p.add(v * V::LANES));
            }
        } else {
            for (v, x) in row.iter().enumerate() {
                let k = lanes::<T, V>(nr_eff, v);
                if k > 0 {
                    x.store_partial(p.add(v * V::LANES), k);
                }
            }
        }
    }
}

/// Copies B[k0 .. k0 + kc, j0 .. j0 + nr_eff] into `buf` as kc rows of `nr` elements, the
/// columns past `nr_eff` zero. Exact copies: packing never changes a value.
///
/// # Safety
/// The block lies inside B; `buf` holds kc · nr elements; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn pack_b<T: Scalar, V: Vector<T>, const NV: usize>(
    b: Operand<T>,
    k0: usize,
    kc: usize,
    j0: usize,
    nr_eff: usize,
    buf: *mut T,
) {
    let nr = NV * V::LANES;
    // SAFETY: reads stay inside the block, writes inside buf's kc · nr elements.
    unsafe {
        if b.cs == 1 {
            let mut src = b.ptr.add(k0 * b.rs + j0);
            let mut dst = buf;
            for _ in 0..kc {
                let row = load_row::<T, V, NV>(src, nr_eff);
                store_row::<T, V, NV>(&row, dst, nr);
                src = src.add(b.rs);
                dst = dst.add(nr);
            }
        } else {
            // A transposed B (rows of B are columns in memory): gather column by column, so
            // the reads run along memory and the writes stride through the (L1) buffer.
            for jj in 0..nr {
                let mut dst = buf.add(jj);
                if jj < nr_eff {
                    let mut src = b.ptr.add(k0 * b.rs + (j0 + jj) * b.cs);
                    for _ in 0..kc {
                        *dst = *src;
                        src = src.add(b.rs);
                        dst = dst.add(nr);
                    }
                } else {
                    for _ in 0..kc {
                        *dst = T::ZERO;
                        dst = dst.add(nr);
                    }
                }
            }
        }
    }
}

/// C (m × n) = A B over the output block `rows × cols`, then the epilogue: see the module
/// docs for the loop order and the summation order.
///
/// # Safety
/// `rows ⊆ 0..m`, `cols ⊆ 0..n`; A, B and C (and the epilogue's operands) are valid for the
/// elements their strides and the shape address; C (and D) are writable and overlap no input;
/// no other thread writes the block; the CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn gemm_tiled<
    T: Scalar,
    V: Vector<T>,
    const MR: usize,
    const NV: usize,
    const KC: usize,
>(
    g: &Gemm<T>,
    rows: Range<usize>,
    cols: Range<usize>,
) {
    let nr = NV * V::LANES;
    assert!(MR * nr <= MAX_TILE && nr <= MAX_NR && KC * nr * size_of::<T>() <= PACK_BYTES);
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    let mut pack = PackBuf(MaybeUninit::uninit());
    let buf = pack.0.as_mut_ptr().cast::<T>();
    // One k-block even when k = 0, so that every tile still gets its epilogue.
    let blocks = g.k.div_ceil(KC).max(1);
    let mut j0 = cols.start;
    while j0 < cols.end {
        let nr_eff = nr.min(cols.end - j0);
        for p in 0..blocks {
            let k0 = p * KC;
            let kc = KC.min(g.k - k0);
            // SAFETY: the panel lies inside B (k0 + kc ≤ k, j0 + nr_eff ≤ n); `pack` holds
            // KC · nr ≥ kc · nr elements.
            unsafe { pack_b::<T, V, NV>(g.b, k0, kc, j0, nr_eff, buf) };
            let mut i0 = rows.start;
            while i0 < rows.end {
                let mr_eff = MR.min(rows.end - i0);
                // SAFETY: the tile lies inside the block; the packed panel holds kc rows.
                unsafe {
                    tile::<T, V, MR, NV>(
                        g,
                        i0,
                        mr_eff,
                        j0,
                        nr_eff,
                        k0,
                        kc,
                        buf,
                        p == 0,
                        p + 1 == blocks,
                    )
                };
                i0 += MR;
            }
        }
        j0 += nr;
    }
}

/// One MR × NR tile of C over one k-block: accumulate, then the epilogue (or the partial
/// sum, on a block that is not the last).
///
/// # Safety
/// As [`gemm_tiled`]; `bp` holds the packed panel of this block (kc rows of NV vectors).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize>(
    g: &Gemm<T>,
    i0: usize,
    mr_eff: usize,
    j0: usize,
    nr_eff: usize,
    k0: usize,
    kc: usize,
    bp: *const T,
    first: bool,
    last: bool,
) {
    let nr = NV * V::LANES;
    // SAFETY: rows i0 .. i0 + mr_eff and columns j0 .. j0 + nr_eff of C lie in the caller's
    // block; rows past mr_eff read A's row m − 1 instead (inside A) and are never stored.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let mut acc = [[zero; NV]; MR];
        let c = g.c;
        // Row i of the tile in C (a macro: no closures in the SIMD bodies).
        macro_rules! c_at {
            ($i:expr) => {
                c.ptr.add((i0 + $i) * c.rs + j0 * c.cs)
            };
        }

        // The chain's starting value.
        match g.epi {
            Epilogue::BiasActivate { bias, .. } if first => {
                let b = load_row::<T, V, NV>(bias.add(j0), nr_eff);
                for row in acc.iter_mut() {
                    *row = b;
                }
            }
            Epilogue::BiasActivate { .. } | Epilogue::Hadamard { .. } if !first => {
                load_tile::<T, V, MR, NV>(&mut acc, c, i0, mr_eff, j0, nr_eff);
            }
            _ => {}
        }

        // The tile rows the epilogue will read.
        match g.epi {
            Epilogue::Scale { beta, .. } if !first || beta != T::ZERO => {
                for i in 0..mr_eff {
                    prefetch_row(c_at!(i), nr_eff);
                }
            }
            Epilogue::Hadamard { d } if last && d.cs == 1 => {
                for i in 0..mr_eff {
                    prefetch_row(d.ptr.add((i0 + i) * d.rs + j0), nr_eff);
                }
            }
            _ => {}
        }

        // The micro-kernel.
        let a = g.a;
        let mut ra = [0usize; MR];
        for (i, r) in ra.iter_mut().enumerate() {
            *r = (i0 + i).min(g.m - 1) * a.rs;
        }
        acc = microkernel::<T, V, MR, NV>(acc, kc, a.ptr.add(k0 * a.cs), a.cs, &ra, bp);

        // The epilogue.
        match g.epi {
            Epilogue::BiasActivate { act, d, .. } if last => {
                let mut scratch = [MaybeUninit::<T>::uninit(); MAX_NR];
                let s = scratch.as_mut_ptr().cast::<T>();
                for (i, row) in acc.iter().enumerate().take(mr_eff) {
                    store_row::<T, V, NV>(row, s, nr);
                    let dp = d.ptr.add((i0 + i) * d.rs + j0);
                    crate::kernels::body::activate::<T, V>(act, s, c_at!(i), dp, nr_eff);
                }
            }
            Epilogue::Hadamard { d } if last => {
                if c.cs == 1 && d.cs == 1 {
                    for (i, row) in acc.iter_mut().enumerate().take(mr_eff) {
                        let dv = load_row::<T, V, NV>(d.ptr.add((i0 + i) * d.rs + j0), nr_eff);
                        for v in 0..NV {
                            row[v] = row[v].mul(dv[v]);
                        }
                        store_row::<T, V, NV>(row, c_at!(i), nr_eff);
                    }
                } else {
                    let mut scratch = [MaybeUninit::<T>::uninit(); MAX_TILE];
                    let s = scratch.as_mut_ptr().cast::<T>();
                    for (i, row) in acc.iter().enumerate() {
                        store_row::<T, V, NV>(row, s.add(i * nr), nr);
                    }
                    // Columns outer: with C transposed (rs = 1) each column is a contiguous
                    // run of C, and of D̂.
                    for jj in 0..nr_eff {
                        for i in 0..mr_eff {
                            let dx = *d.ptr.add((i0 + i) * d.rs + (j0 + jj) * d.cs);
                            *c.ptr.add((i0 + i) * c.rs + (j0 + jj) * c.cs) =
                                *s.add(i * nr + jj) * dx;
                        }
                    }
                }
            }
            Epilogue::BiasActivate { .. } | Epilogue::Hadamard { .. } => {
                store_tile::<T, V, MR, NV>(&acc, c, i0, mr_eff, j0, nr_eff);
            }
            Epilogue::Scale { s, beta } => {
                let sv = V::splat(s);
                let beta = if first { beta } else { T::ONE };
                for (i, row) in acc.iter_mut().enumerate().take(mr_eff) {
                    let p = c_at!(i);
                    if beta == T::ZERO {
                        for x in row.iter_mut() {
                            *x = sv.mul(*x);
                        }
                    } else {
                        let mut cv = load_row::<T, V, NV>(p, nr_eff);
                        if beta != T::ONE {
                            let bv = V::splat(beta);
                            for x in cv.iter_mut() {
                                *x = bv.mul(*x);
                            }
                        }
                        for v in 0..NV {
                            row[v] = sv.mul_add(row[v], cv[v]);
                        }
                    }
                    store_row::<T, V, NV>(row, p, nr_eff);
                }
            }
        }
    }
}

/// Asks for the cache lines of `len` elements from `p` (a tile row the epilogue will read),
/// so that they arrive while the micro-kernel runs instead of stalling the epilogue.
#[inline(always)]
fn prefetch_row<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = len * size_of::<T>();
        let mut off = 0;
        while off < bytes {
            // SAFETY: a prefetch is a hint: it never faults and has no effect on memory, so
            // any address is sound (`wrapping_add` keeps the pointer arithmetic defined).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(off)) };
            off += 64;
        }
        if bytes > 0 {
            // SAFETY: as above.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(bytes - 1)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// acc[i][v] += A[i, k] · B̃[k, v] for k in 0..kc: MR broadcasts of A (row i at `pa + ra[i]`,
/// k at stride `a_cs`) against NV vectors of the packed panel `pb` per k.
///
/// The accumulators go in and out by value: inside, every index is a constant after
/// unrolling, so they live in registers (an array that the epilogue's dynamic-length loops
/// also touched would be kept in memory, with a store after every FMA).
///
/// # Safety
/// `pa + ra[i] + k·a_cs` is readable for every i < MR and k < kc; `pb` holds kc rows of NV
/// vectors; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn microkernel<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize>(
    mut acc: [[V; NV]; MR],
    kc: usize,
    mut pa: *const T,
    a_cs: usize,
    ra: &[usize; MR],
    mut pb: *const T,
) -> [[V; NV]; MR] {
    // SAFETY: see the function's contract.
    unsafe {
        for _ in 0..kc {
            let mut bv = [splat::<T, V>(0.0); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = V::load(pb.add(v * V::LANES));
            }
            for i in 0..MR {
                let av = V::splat(*pa.add(ra[i]));
                for v in 0..NV {
                    acc[i][v] = av.mul_add(bv[v], acc[i][v]);
                }
            }
            pa = pa.add(a_cs);
            pb = pb.add(NV * V::LANES);
        }
    }
    acc
}

/// Loads rows `< mr_eff` of a C tile (any strides) into the accumulators.
///
/// # Safety
/// The tile's `mr_eff × nr_eff` elements of C are readable; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn load_tile<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize>(
    acc: &mut [[V; NV]; MR],
    c: Output<T>,
    i0: usize,
    mr_eff: usize,
    j0: usize,
    nr_eff: usize,
) {
    // SAFETY: only elements of the tile are read.
    unsafe {
        if c.cs == 1 {
            for (i, row) in acc.iter_mut().enumerate().take(mr_eff) {
                *row = load_row::<T, V, NV>(c.ptr.add((i0 + i) * c.rs + j0), nr_eff);
            }
        } else {
            let nr = NV * V::LANES;
            let mut scratch = [T::ZERO; MAX_TILE];
            for jj in 0..nr_eff {
                for i in 0..mr_eff {
                    scratch[i * nr + jj] = *c.ptr.add((i0 + i) * c.rs + (j0 + jj) * c.cs);
                }
            }
            for (i, row) in acc.iter_mut().enumerate().take(mr_eff) {
                *row = load_row::<T, V, NV>(scratch.as_ptr().add(i * nr), nr);
            }
        }
    }
}

/// Stores rows `< mr_eff` of the accumulators to a C tile (any strides).
///
/// # Safety
/// The tile's `mr_eff × nr_eff` elements of C are writable; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn store_tile<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize>(
    acc: &[[V; NV]; MR],
    c: Output<T>,
    i0: usize,
    mr_eff: usize,
    j0: usize,
    nr_eff: usize,
) {
    // SAFETY: only elements of the tile are written.
    unsafe {
        if c.cs == 1 {
            for (i, row) in acc.iter().enumerate().take(mr_eff) {
                store_row::<T, V, NV>(row, c.ptr.add((i0 + i) * c.rs + j0), nr_eff);
            }
        } else {
            let nr = NV * V::LANES;
            let mut scratch = [MaybeUninit::<T>::uninit(); MAX_TILE];
            let s = scratch.as_mut_ptr().cast::<T>();
            for (i, row) in acc.iter().enumerate() {
                store_row::<T, V, NV>(row, s.add(i * nr), nr);
            }
            for jj in 0..nr_eff {
                for i in 0..mr_eff {
                    *c.ptr.add((i0 + i) * c.rs + (j0 + jj) * c.cs) = *s.add(i * nr + jj);
                }
            }
        }
    }
}

/// g_b ← β·g_b + s·Σ_i Δ_i over the columns `cols`: each column's sum runs down the rows in
/// order, starting from row 0 (so one row gives Δ_0 exactly); g_b is not read when β = 0.
///
/// # Safety
/// `delta` is `rows × n` with row stride `rs` (n ≥ cols.end); `g_b` has n elements, writable,
/// disjoint from `delta`; the CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn col_sums<T: Scalar, V: Vector<T>>(
    delta: *const T,
    rows: usize,
    rs: usize,
    cols: Range<usize>,
    s: T,
    beta: T,
    g_b: *mut T,
) {
    // Four vectors of columns at a time: four independent add chains.
    const NV: usize = 4;
    // SAFETY: every access lies in rows < `rows`, columns in `cols`.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let sv = V::splat(s);
        let bv = V::splat(beta);
        let mut j = cols.start;
        while j < cols.end {
            let w = (NV * V::LANES).min(cols.end - j);
            let mut acc = [zero; NV];
            if rows > 0 {
                acc = load_row::<T, V, NV>(delta.add(j), w);
            }
            for r in 1..rows {
                let x = load_row::<T, V, NV>(delta.add(r * rs + j), w);
                for v in 0..NV {
                    acc[v] = acc[v].add(x[v]);
                }
            }
            if beta == T::ZERO {
                for x in acc.iter_mut() {
                    *x = sv.mul(*x);
                }
            } else {
                let old = load_row::<T, V, NV>(g_b.add(j), w);
                for v in 0..NV {
                    let o = if beta == T::ONE {
                        old[v]
                    } else {
                        bv.mul(old[v])
                    };
                    acc[v] = sv.mul_add(acc[v], o);
                }
            }
            store_row::<T, V, NV>(&acc, g_b.add(j), w);
            j += w;
        }
    }
}

/// G ← β·G + (s·â_r)·δ row by row (the B = 1 gradient for β ≠ 1; β = 1 is `rank1_update`);
/// G is not read when β = 0.
///
/// # Safety
/// `g` is `h × l` with row stride `rs`, writable; `a_prev` has h elements, `delta` l, both
/// disjoint from `g`; the CPU supports `V`'s level.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn outer<T: Scalar, V: Vector<T>>(
    g: *mut T,
    h: usize,
    l: usize,
    rs: usize,
    s: T,
    beta: T,
    a_prev: *const T,
    delta: *const T,
) {
    // SAFETY: rows < h, chunks below l.
    unsafe {
        let bv = V::splat(beta);
        for r in 0..h {
            let sr = V::splat(s * *a_prev.add(r));
            let row = g.add(r * rs);
            let mut c = 0;
            while c < l {
                let k = V::LANES.min(l - c);
                let dv = V::load_partial(delta.add(c), k);
                let x = if beta == T::ZERO {
                    sr.mul(dv)
                } else {
                    sr.mul_add(dv, bv.mul(V::load_partial(row.add(c), k)))
                };
                x.store_partial(row.add(c), k);
                c += k;
            }
        }
    }
}

/// W ← W − α G row by row over `rows` (one FMA per element).
///
/// # Safety
/// `w` and `g` are `· × l` views with row strides `rsw`, `rsg` holding the rows `rows`; `w`
/// writable and disjoint from `g`; the CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn axpy_rows<T: Scalar, V: Vector<T>>(
    w: *mut T,
    rsw: usize,
    alpha: T,
    g: *const T,
    rsg: usize,
    rows: Range<usize>,
    l: usize,
) {
    // SAFETY: rows in `rows`, chunks below l.
    unsafe {
        let av = V::splat(alpha);
        for r in rows {
            let (wr, gr) = (w.add(r * rsw), g.add(r * rsg));
            let mut c = 0;
            while c + V::LANES <= l {
                av.neg_mul_add(V::load(gr.add(c)), V::load(wr.add(c)))
                    .store(wr.add(c));
                c += V::LANES;
            }
            if c < l {
                let k = l - c;
                av.neg_mul_add(V::load_partial(gr.add(c), k), V::load_partial(wr.add(c), k))
                    .store_partial(wr.add(c), k);
            }
        }
    }
}

/// a = σ(a), d = σ'(a) in place over `len` elements, a stack chunk at a time (so that
/// `activate` never sees aliased input and output).
///
/// # Safety
/// `a` and `d` are valid for `len` elements, writable and disjoint; `act` is element-wise;
/// the CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn activate_in_place<T: Scalar, V: Vector<T>>(
    act: Activation,
    a: *mut T,
    d: *mut T,
    len: usize,
) {
    const CHUNK: usize = 256;
    let mut scratch = [MaybeUninit::<T>::uninit(); CHUNK];
    let s = scratch.as_mut_ptr().cast::<T>();
    let mut c = 0;
    while c < len {
        let k = CHUNK.min(len - c);
        // SAFETY: chunk c .. c + k of a and d; the scratch holds k ≤ CHUNK elements.
        unsafe {
            std::ptr::copy_nonoverlapping(a.add(c), s, k);
            crate::kernels::body::activate::<T, V>(act, s, a.add(c), d.add(c), k);
        }
        c += k;
    }
}

/// The minibatch entry points of one level for `T` (see `batch.rs` for their contracts).
pub(crate) struct BatchTable<T> {
    /// Rows of a GEMM tile (partitions are multiples of it).
    pub(crate) mr: usize,
    /// Columns of a GEMM tile.
    pub(crate) nr: usize,
    /// Values of k per packed panel.
    pub(crate) kc: usize,
    pub(crate) gemm: unsafe fn(&Gemm<T>, Range<usize>, Range<usize>),
    pub(crate) col_sums: unsafe fn(*const T, usize, usize, Range<usize>, T, T, *mut T),
    #[allow(clippy::type_complexity)]
    pub(crate) outer: unsafe fn(*mut T, usize, usize, usize, T, T, *const T, *const T),
    #[allow(clippy::type_complexity)]
    pub(crate) axpy_rows: unsafe fn(*mut T, usize, T, *const T, usize, Range<usize>, usize),
    pub(crate) activate_in_place: unsafe fn(Activation, *mut T, *mut T, usize),
}

/// Defines, inside a level module of `table.rs`, `BATCH: BatchTable<$t>` running this file's
/// bodies on vector type `$v` with the level's `#[target_feature]`s `$attr`.
macro_rules! batch_fns {
    ($t:ty, $v:ty $(, #[$attr:meta])*) => {
        $(#[$attr])*
        unsafe fn batch_gemm(
            g: &crate::kernels::batch_body::Gemm<$t>,
            rows: std::ops::Range<usize>,
            cols: std::ops::Range<usize>,
        ) {
            // SAFETY: the table's contract is the body's.
            unsafe {
                <$v as crate::kernels::batch_body::Tiling<$t>>::gemm(g, rows, cols)
            }
        }
        $(#[$attr])*
        unsafe fn batch_col_sums(
            delta: *const $t, rows: usize, rs: usize, cols: std::ops::Range<usize>,
            s: $t, beta: $t, g_b: *mut $t,
        ) {
            // SAFETY: the table's contract is the body's.
            unsafe {
                crate::kernels::batch_body::col_sums::<$t, $v>(delta, rows, rs, cols, s, beta, g_b)
            }
        }
        #[allow(clippy::too_many_arguments)]
        $(#[$attr])*
        unsafe fn batch_outer(
            g: *mut $t, h: usize, l: usize, rs: usize, s: $t, beta: $t,
            a_prev: *const $t, delta: *const $t,
        ) {
            // SAFETY: the table's contract is the body's.
            unsafe {
                crate::kernels::batch_body::outer::<$t, $v>(g, h, l, rs, s, beta, a_prev, delta)
            }
        }
        $(#[$attr])*
        unsafe fn batch_axpy_rows(
            w: *mut $t, rsw: usize, alpha: $t, g: *const $t, rsg: usize,
            rows: std::ops::Range<usize>, l: usize,
        ) {
            // SAFETY: the table's contract is the body's.
            unsafe {
                crate::kernels::batch_body::axpy_rows::<$t, $v>(w, rsw, alpha, g, rsg, rows, l)
            }
        }
        $(#[$attr])*
        unsafe fn batch_activate_in_place(act: Activation, a: *mut $t, d: *mut $t, len: usize) {
            // SAFETY: the table's contract is the body's.
            unsafe { crate::kernels::batch_body::activate_in_place::<$t, $v>(act, a, d, len) }
        }

        pub(crate) const BATCH: crate::kernels::batch_body::BatchTable<$t> =
            crate::kernels::batch_body::BatchTable {
                mr: <$v as crate::kernels::batch_body::Tiling<$t>>::MR,
                nr: <$v as crate::kernels::batch_body::Tiling<$t>>::NR,
                kc: <$v as crate::kernels::batch_body::Tiling<$t>>::KC,
                gemm: batch_gemm,
                col_sums: batch_col_sums,
                outer: batch_outer,
                axpy_rows: batch_axpy_rows,
                activate_in_place: batch_activate_in_place,
            };
    };
}
pub(crate) use batch_fns;
