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
//!             MR broadcasts of A[i, k], MR · NV FMAs (four k per loop trip on
//!             blocks of 128 k or more); then the tile's epilogue
//! ```
//!
//! When enough panels share it, A is packed too ([`gemm_packed`]): a block of rows per
//! k-block, MR adjacent values per k, so that the broadcasts read consecutive addresses (a
//! copy for the gradient's transposed Âᵀ, a transposition in registers for a row-major A);
//! that path runs row block, k-block, panel, tile. Narrower products read A in place, MR row
//! streams. No buffer scales with the problem and nothing is allocated: the only scratch is
//! the packed panel (at most [`PACK_BYTES`]), the packed A block (at most [`APACK_BYTES`])
//! and one tile, all on the stack (about 330 KiB at most).
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

/// Bytes of the packed block of A on the stack (see [`gemm_packed`]): [`ROW_BLOCK_TILES`]
/// tiles of 12 × KC f32, half as many of f64.
const APACK_BYTES: usize = 288 * 1024;

/// The packed A block's storage: [`APACK_BYTES`], aligned for any vector load.
#[repr(C, align(64))]
struct APackBuf(MaybeUninit<[u8; APACK_BYTES]>);

/// Largest MR · NR of any level (the tile scratch on the stack).
const MAX_TILE: usize = 12 * 32;

/// Largest NR of any level.
const MAX_NR: usize = 32;

/// Most tiles per row block (see `gemm_tiled` and [`gemm_packed`]).
const ROW_BLOCK_TILES: usize = 24;

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
/// `gemm` must be `gemm_tiled::<T, Self, MR, NV, KC>` (NV = NR / LANES, or 1) with MR ≤ 12,
/// NV · LANES ≤ 32 and KC · NV · LANES · size_of::<T>() ≤ [`PACK_BYTES`]; `batch.rs` sizes
/// its thread partitions from `MR` and `NR`.
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

    /// Packs the panel B[k0 .. k0 + kc, j0 .. j0 + nr_eff] of a B with `cs != 1` (a
    /// transposed matrix: B's columns are rows in memory) as [`pack_b`] does. The default
    /// gathers element by element; the x86 levels transpose whole vector blocks in
    /// registers when `rs == 1`.
    ///
    /// # Safety
    /// As [`pack_b`], with `nr = Self::NR`.
    #[inline(always)]
    unsafe fn pack_transposed(
        b: Operand<T>,
        k0: usize,
        kc: usize,
        j0: usize,
        nr_eff: usize,
        buf: *mut T,
    ) {
        // SAFETY: forwarded.
        unsafe { gather(b, k0, kc, j0, nr_eff, Self::NR, buf) }
    }

    /// Packs `mr` rows of a row-major A, `src + i·rs + k` for i < mr, k < kc, as kc groups
    /// of `mr` values (row i at offset i of each group): a transposition. The default copies
    /// element by element; the x86 levels transpose whole vector blocks in registers.
    ///
    /// # Safety
    /// The `mr` rows of `kc` values are readable; `dst` holds kc · mr values; the CPU
    /// supports `Self`'s level.
    #[inline(always)]
    unsafe fn pack_rows(src: *const T, rs: usize, kc: usize, mr: usize, dst: *mut T) {
        // SAFETY: forwarded.
        unsafe { gather_rows(src, rs, kc, mr, dst) }
    }
}

macro_rules! tiling {
    ($v:ty, $t:ty, $mr:literal, $nv:literal, $kc:literal $(, $transpose:path, $rows:path)?) => {
        // SAFETY: MR ≤ 12, NV · LANES ≤ 32 and KC · NV · LANES · size ≤ PACK_BYTES for every
        // instance below (checked again by `gemm_tiled`'s assertion); the transposers pack
        // exactly what `pack_b` specifies (see `x86_pack`).
        unsafe impl Tiling<$t> for $v {
            const MR: usize = $mr;
            const NR: usize = $nv * <$v as Vector<$t>>::LANES;
            const KC: usize = $kc;
            #[inline(always)]
            unsafe fn gemm(g: &Gemm<$t>, rows: Range<usize>, cols: Range<usize>) {
                /// Rows of the shorter tile for small minibatches (the same tile when
                /// there is none).
                const SHORT_MR: usize = if $mr == 12 { 8 } else { $mr };
                // SAFETY: forwarded. A block no wider than one vector (an output layer of
                // 10) runs one-vector tiles: same KC, so the same bits, in a third of the
                // lanes the two-vector tile would waste. A few rows that the tall tile
                // would cover with wasted rows (32 = 12 + 12 + 8) run the short one, which
                // covers them exactly: again the same bits, every element's FMA chain
                // being independent of the tile it is computed in.
                unsafe {
                    if $nv > 1 && cols.len() <= <$v as Vector<$t>>::LANES {
                        gemm_tiled::<$t, $v, $mr, 1, $kc>(g, rows, cols)
                    } else if SHORT_MR != $mr && short_rows_pay(rows.len(), $mr, SHORT_MR) {
                        gemm_tiled::<$t, $v, SHORT_MR, $nv, $kc>(g, rows, cols)
                    } else {
                        gemm_tiled::<$t, $v, $mr, $nv, $kc>(g, rows, cols)
                    }
                }
            }
            $(
                #[inline(always)]
                unsafe fn pack_transposed(
                    b: Operand<$t>,
                    k0: usize,
                    kc: usize,
                    j0: usize,
                    nr_eff: usize,
                    buf: *mut $t,
                ) {
                    // SAFETY: forwarded; the transposer reads B's rows j0 .. j0 + nr_eff
                    // (memory rows at stride cs) from k0 on, kc each, and writes kc · NR.
                    unsafe {
                        if b.rs == 1 {
                            $transpose(b.ptr.add(k0 + j0 * b.cs), b.cs, kc, nr_eff, buf)
                        } else {
                            gather(b, k0, kc, j0, nr_eff, Self::NR, buf)
                        }
                    }
                }

                #[inline(always)]
                unsafe fn pack_rows(
                    src: *const $t,
                    rs: usize,
                    kc: usize,
                    mr: usize,
                    dst: *mut $t,
                ) {
                    // SAFETY: forwarded; the transposer reads the mr rows' kc values and
                    // writes kc groups of mr.
                    unsafe { $rows(src, rs, kc, mr, dst) }
                }
            )?
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
tiling!(
    crate::simd::x86::Avx2F32,
    f32,
    6,
    2,
    256,
    x86_pack::avx2_f32,
    x86_pack::avx2_f32_rows
);
#[cfg(target_arch = "x86_64")]
tiling!(
    crate::simd::x86::Avx2F64,
    f64,
    6,
    2,
    256,
    x86_pack::avx2_f64,
    x86_pack::avx2_f64_rows
);
#[cfg(target_arch = "x86_64")]
tiling!(
    crate::simd::x86::Avx512F32,
    f32,
    12,
    2,
    256,
    x86_pack::avx512_f32,
    x86_pack::avx512_f32_rows
);
#[cfg(target_arch = "x86_64")]
tiling!(
    crate::simd::x86::Avx512F64,
    f64,
    12,
    2,
    256,
    x86_pack::avx512_f64,
    x86_pack::avx512_f64_rows
);

/// Whether `rows` rows run faster in tiles of `short` rows than of `mr`: for at most eight
/// tall tiles, when the short tiles leave fewer surplus rows (a minibatch of 32 in tiles of
/// 8 instead of 12, 12 and 8; the forward product at B = 32 measured 1.07–1.09× faster).
#[inline(always)]
fn short_rows_pay(rows: usize, mr: usize, short: usize) -> bool {
    let waste = |t: usize| rows.div_ceil(t) * t - rows;
    rows <= 8 * mr && waste(short) < waste(mr)
}

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
unsafe fn pack_b<T: Scalar, V: Tiling<T>, const NV: usize>(
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
        } else if nr == V::NR {
            V::pack_transposed(b, k0, kc, j0, nr_eff, buf);
        } else {
            gather(b, k0, kc, j0, nr_eff, nr, buf);
        }
    }
}

/// [`pack_b`] element by element, for any strides.
///
/// # Safety
/// As [`pack_b`].
#[inline(always)]
unsafe fn gather<T: Scalar>(
    b: Operand<T>,
    k0: usize,
    kc: usize,
    j0: usize,
    nr_eff: usize,
    nr: usize,
    buf: *mut T,
) {
    // SAFETY: reads stay inside the block, writes inside buf's kc · nr elements.
    unsafe {
        // Column by column: with a transposed B the reads run along memory and the writes
        // stride through the (L1) buffer.
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

/// [`Tiling::pack_rows`] element by element.
///
/// # Safety
/// As [`Tiling::pack_rows`].
#[inline(always)]
unsafe fn gather_rows<T: Scalar>(src: *const T, rs: usize, kc: usize, mr: usize, dst: *mut T) {
    // SAFETY: reads stay in the mr rows' first kc values, writes below kc · mr.
    unsafe {
        for i in 0..mr {
            let row = src.add(i * rs);
            for k in 0..kc {
                *dst.add(k * mr + i) = *row.add(k);
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
    V: Tiling<T>,
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
    if pack_a_pays(g, nr, cols.len()) {
        // SAFETY: forwarded.
        unsafe { gemm_packed::<T, V, MR, NV, KC>(g, rows, cols, blocks, buf) };
        return;
    }
    // Rows in blocks of ROW_BLOCK_TILES tiles, each block across all the columns: its slice
    // of A (at most 288 × KC elements, 576 KiB of f64) stays in L2 while every panel passes
    // it, instead of all of A being re-read once per panel; B's panels are packed again per
    // row block. 24 tiles cover a minibatch of 256 in one block, so a forward or backward
    // product at B = 256 packs W once (8 tiles packed it three times: paired A/B, 1024 ×
    // 1024 at B = 256, backward 1.10×, forward 1.01×; 784 × 256 1.12× and 1.05×).
    let row_block = ROW_BLOCK_TILES * MR;
    let mut r0 = rows.start;
    while r0 < rows.end {
        let r1 = rows.end.min(r0.saturating_add(row_block));
        let mut j0 = cols.start;
        while j0 < cols.end {
            let nr_eff = nr.min(cols.end - j0);
            for p in 0..blocks {
                // SAFETY: the rows and the panel lie inside the block; `buf` holds
                // PACK_BYTES; A is read in place.
                unsafe {
                    panel::<T, V, MR, NV, KC, false>(
                        g,
                        r0..r1,
                        j0,
                        nr_eff,
                        (p, blocks),
                        std::ptr::null(),
                        buf,
                    )
                };
            }
            j0 += nr;
        }
        r0 = r1;
    }
}

/// Whether [`gemm_packed`] beats reading A in place for this block: when at least 8 panels
/// share each packed block, and A has a unit stride either way.
/// - A transposed A (`rs == 1`, the gradient's Âᵀ) costs in place a new cache line per k
///   for every tile, `cs` apart: no prefetcher follows that stride, and at a multiple of
///   4 KiB every line of a tile falls in one L1 set. Packed, it is a copy of MR adjacent
///   values per k (`batch_update` 1.16–1.25× faster).
/// - A row-major A (`cs == 1`) is read in place as MR row streams, MR base registers that
///   the micro-kernel cannot all keep (it reloads some from the stack every k), and at a
///   row stride of 4 KiB they too share L1 sets. Packed (a transposition in registers),
///   the forward and backward products at B = 256 ran 1.10–1.18× faster at 1024 × 1024
///   and 1.01–1.06× at 784 × 256 (paired A/B, one thread).
///
/// Fewer panels would not repay the packing.
#[inline(always)]
fn pack_a_pays<T: Scalar>(g: &Gemm<T>, nr: usize, cols: usize) -> bool {
    (g.a.rs == 1 || g.a.cs == 1) && cols.div_ceil(nr) >= 8
}

/// [`gemm_tiled`] with A packed: rows in blocks whose A slice (one k-block of it) is packed
/// into a stack buffer tile by tile, MR scalars per k, so that the micro-kernel's broadcasts
/// read consecutive addresses. Loop order: row block, k-block (pack A), panel (pack B), tile.
/// Each C element is still one FMA chain in increasing k with the same k-blocks, so the
/// bits equal the unpacked path's.
///
/// # Safety
/// As [`gemm_tiled`]; `buf` holds [`PACK_BYTES`].
#[inline(always)]
unsafe fn gemm_packed<
    T: Scalar,
    V: Tiling<T>,
    const MR: usize,
    const NV: usize,
    const KC: usize,
>(
    g: &Gemm<T>,
    rows: Range<usize>,
    cols: Range<usize>,
    blocks: usize,
    buf: *mut T,
) {
    let nr = NV * V::LANES;
    let tile_elems = MR * KC;
    let block_tiles = (APACK_BYTES / (tile_elems * size_of::<T>())).clamp(1, ROW_BLOCK_TILES);
    assert!(block_tiles * tile_elems * size_of::<T>() <= APACK_BYTES);
    let mut apack = APackBuf(MaybeUninit::uninit());
    let abuf = apack.0.as_mut_ptr().cast::<T>();
    let row_block = block_tiles * MR;
    let mut r0 = rows.start;
    while r0 < rows.end {
        let r1 = rows.end.min(r0.saturating_add(row_block));
        for p in 0..blocks {
            let k0 = p * KC;
            let kc = KC.min(g.k - k0);
            // SAFETY: rows r0 .. r1 (clamped to m − 1 past the end) and k0 .. k0 + kc lie
            // inside A; the buffer holds block_tiles · MR · KC ≥ the tiles' MR · kc each.
            unsafe { pack_a::<T, V, MR>(g, r0, r1, k0, kc, abuf) };
            let mut j0 = cols.start;
            while j0 < cols.end {
                let nr_eff = nr.min(cols.end - j0);
                // SAFETY: the rows and the panel lie inside the block; `abuf` holds the
                // block's packed A for this k-block, `buf` PACK_BYTES.
                unsafe {
                    panel::<T, V, MR, NV, KC, true>(g, r0..r1, j0, nr_eff, (p, blocks), abuf, buf)
                };
                j0 += nr;
            }
        }
        r0 = r1;
    }
}

/// Packs the panel B[k-block p of `blocks`, j0 .. j0 + nr_eff] into `buf` and runs the
/// tiles of `rows` against it (each with its epilogue on the last k-block). With `PACKED`,
/// tile t's A is the t-th group of MR · kc values at `ap` (see [`pack_a`]); otherwise A is
/// read in place and `ap` is not used.
///
/// # Safety
/// As [`gemm_tiled`]; `buf` holds [`PACK_BYTES`]; with `PACKED`, `ap` holds the rows'
/// packed A of this k-block.
#[inline(always)]
unsafe fn panel<
    T: Scalar,
    V: Tiling<T>,
    const MR: usize,
    const NV: usize,
    const KC: usize,
    const PACKED: bool,
>(
    g: &Gemm<T>,
    rows: Range<usize>,
    j0: usize,
    nr_eff: usize,
    (p, blocks): (usize, usize),
    mut ap: *const T,
    buf: *mut T,
) {
    let k0 = p * KC;
    let kc = KC.min(g.k - k0);
    // SAFETY: the panel lies inside B (k0 + kc ≤ k, j0 + nr_eff ≤ n); `buf` holds
    // KC · NR ≥ kc · nr elements; each tile lies inside the caller's block.
    unsafe {
        pack_b::<T, V, NV>(g.b, k0, kc, j0, nr_eff, buf);
        let mut i0 = rows.start;
        while i0 < rows.end {
            let mr_eff = MR.min(rows.end - i0);
            tile::<T, V, MR, NV, PACKED>(
                g,
                i0,
                mr_eff,
                j0,
                nr_eff,
                k0,
                kc,
                ap,
                buf,
                p == 0,
                p + 1 == blocks,
            );
            i0 += MR;
            if PACKED {
                ap = ap.wrapping_add(MR * kc);
            }
        }
    }
}

/// Packs A[r0 .. r1, k0 .. k0 + kc] tile by tile: tile t (rows r0 + t·MR ..) as kc groups
/// of MR values, row i of the tile at offset i of each group; rows past r1 repeat row
/// min(i, m − 1) (their results are never stored), as the unpacked path reads them.
///
/// # Safety
/// The rows (clamped) and columns lie inside A; `buf` holds ⌈(r1 − r0)/MR⌉ · MR · kc values.
#[inline(always)]
unsafe fn pack_a<T: Scalar, V: Tiling<T>, const MR: usize>(
    g: &Gemm<T>,
    r0: usize,
    r1: usize,
    k0: usize,
    kc: usize,
    buf: *mut T,
) {
    let a = g.a;
    // SAFETY: every read is A[min(i, m − 1), k] with k < k0 + kc ≤ k; every write is below
    // the tiles' MR · kc values each.
    unsafe {
        let mut dst = buf;
        let mut i0 = r0;
        while i0 < r1 {
            let mut ra = [0usize; MR];
            for (i, r) in ra.iter_mut().enumerate() {
                *r = (i0 + i).min(g.m - 1) * a.rs + k0 * a.cs;
            }
            if a.rs == 1 && i0 + MR <= g.m {
                // MR adjacent scalars per k.
                let mut src = a.ptr.add(ra[0]);
                for _ in 0..kc {
                    std::ptr::copy_nonoverlapping(src, dst, MR);
                    src = src.add(a.cs);
                    dst = dst.add(MR);
                }
            } else if a.cs == 1 && i0 + MR <= g.m {
                // MR rows of kc adjacent scalars: a transposition.
                V::pack_rows(a.ptr.add(ra[0]), a.rs, kc, MR, dst);
                dst = dst.add(MR * kc);
            } else {
                for k in 0..kc {
                    for (i, &r) in ra.iter().enumerate() {
                        *dst.add(i) = *a.ptr.add(r + k * a.cs);
                    }
                    dst = dst.add(MR);
                }
            }
            i0 += MR;
        }
    }
}

/// One MR × NR tile of C over one k-block: accumulate, then the epilogue (or the partial
/// sum, on a block that is not the last).
///
/// The accumulators are only ever indexed by constants, so they stay in registers from the
/// first FMA to the store.
///
/// # Safety
/// As [`gemm_tiled`]; `bp` holds the packed panel of this block (kc rows of NV vectors).
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn tile<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize, const PACKED: bool>(
    g: &Gemm<T>,
    i0: usize,
    mr_eff: usize,
    j0: usize,
    nr_eff: usize,
    k0: usize,
    kc: usize,
    ap: *const T,
    bp: *const T,
    first: bool,
    last: bool,
) {
    let nr = NV * V::LANES;
    // SAFETY: rows i0 .. i0 + mr_eff and columns j0 .. j0 + nr_eff of C lie in the caller's
    // block; rows past mr_eff read A's row m − 1 instead (inside A) and are never stored.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let c = g.c;
        // Row i of the tile in C (a macro: no closures in the SIMD bodies).
        macro_rules! c_at {
            ($i:expr) => {
                c.ptr.add((i0 + $i) * c.rs + j0 * c.cs)
            };
        }

        // The chain's starting value.
        let init = match g.epi {
            Epilogue::BiasActivate { bias, .. } if first => {
                [load_row::<T, V, NV>(bias.add(j0), nr_eff); MR]
            }
            Epilogue::BiasActivate { .. } | Epilogue::Hadamard { .. } if !first => {
                load_tile::<T, V, MR, NV>(c, i0, mr_eff, j0, nr_eff)
            }
            _ => [[zero; NV]; MR],
        };

        // The tile rows the epilogue will read (worth it when the k-loop is long enough to
        // hide the misses).
        match g.epi {
            _ if kc < 32 => {}
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
        let acc = if PACKED {
            microkernel_packed::<T, V, MR, NV>(init, kc, ap, bp)
        } else {
            let a = g.a;
            let mut ra = [0usize; MR];
            for (i, r) in ra.iter_mut().enumerate() {
                *r = (i0 + i).min(g.m - 1) * a.rs;
            }
            microkernel::<T, V, MR, NV>(init, kc, a.ptr.add(k0 * a.cs), a.cs, &ra, bp)
        };

        // The epilogue, from a copy of the tile on the stack: the loops below run to mr_eff
        // and are too big to unroll, so they would keep the accumulators in memory anyway;
        // writing them out here with one unrolled store per vector avoids the zeroing and
        // the copies LLVM would otherwise add around the array.
        let mut scratch = [MaybeUninit::<T>::uninit(); MAX_TILE];
        let s = scratch.as_mut_ptr().cast::<T>();
        for i in 0..MR {
            store_row::<T, V, NV>(&acc[i], s.add(i * nr), nr);
        }
        macro_rules! row {
            ($i:expr) => {
                load_row::<T, V, NV>(s.add($i * nr), nr)
            };
        }
        match g.epi {
            Epilogue::BiasActivate { act, d, .. } if last => {
                // σ a row at a time: one inlined copy of `activate` for all rows.
                for i in 0..mr_eff {
                    let dp = d.ptr.add((i0 + i) * d.rs + j0);
                    crate::kernels::body::activate::<T, V>(
                        act,
                        s.add(i * nr),
                        c_at!(i),
                        dp,
                        nr_eff,
                    );
                }
            }
            Epilogue::Hadamard { d } if last && c.cs == 1 && d.cs == 1 => {
                for i in 0..mr_eff {
                    let mut x = row!(i);
                    let dv = load_row::<T, V, NV>(d.ptr.add((i0 + i) * d.rs + j0), nr_eff);
                    for v in 0..NV {
                        x[v] = x[v].mul(dv[v]);
                    }
                    store_row::<T, V, NV>(&x, c_at!(i), nr_eff);
                }
            }
            Epilogue::Hadamard { d } if last => {
                // Columns outer: with C transposed (rs = 1) each column is a contiguous run
                // of C, and of D̂.
                for jj in 0..nr_eff {
                    for i in 0..mr_eff {
                        let dx = *d.ptr.add((i0 + i) * d.rs + (j0 + jj) * d.cs);
                        *c.ptr.add((i0 + i) * c.rs + (j0 + jj) * c.cs) = *s.add(i * nr + jj) * dx;
                    }
                }
            }
            Epilogue::BiasActivate { .. } | Epilogue::Hadamard { .. } => {
                // A partial sum, for the next k-block.
                if c.cs == 1 {
                    for i in 0..mr_eff {
                        store_row::<T, V, NV>(&row!(i), c_at!(i), nr_eff);
                    }
                } else {
                    for jj in 0..nr_eff {
                        for i in 0..mr_eff {
                            *c.ptr.add((i0 + i) * c.rs + (j0 + jj) * c.cs) = *s.add(i * nr + jj);
                        }
                    }
                }
            }
            Epilogue::Scale { s: scale, beta } => {
                let sv = V::splat(scale);
                let beta = if first { beta } else { T::ONE };
                let bv = V::splat(beta);
                for i in 0..mr_eff {
                    let p = c_at!(i);
                    let mut x = row!(i);
                    if beta == T::ZERO {
                        for v in 0..NV {
                            x[v] = sv.mul(x[v]);
                        }
                    } else {
                        let mut cv = load_row::<T, V, NV>(p, nr_eff);
                        if beta != T::ONE {
                            for y in cv.iter_mut() {
                                *y = bv.mul(*y);
                            }
                        }
                        for v in 0..NV {
                            x[v] = sv.mul_add(x[v], cv[v]);
                        }
                    }
                    store_row::<T, V, NV>(&x, p, nr_eff);
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
        let mut left = kc;
        while kc >= UNROLL_MIN_K && left >= UNROLL {
            for u in 0..UNROLL {
                k_step::<T, V, MR, NV>(&mut acc, pa.add(u * a_cs), ra, pb.add(u * NV * V::LANES));
            }
            pa = pa.add(UNROLL * a_cs);
            pb = pb.add(UNROLL * NV * V::LANES);
            left -= UNROLL;
        }
        for _ in 0..left {
            k_step::<T, V, MR, NV>(&mut acc, pa, ra, pb);
            pa = pa.add(a_cs);
            pb = pb.add(NV * V::LANES);
        }
    }
    acc
}

/// k values per trip of the micro-kernels' main loop on k-blocks of at least
/// [`UNROLL_MIN_K`] (the rest, and shorter blocks, one k at a time). Four k per trip amortise
/// the loop's pointer updates and branch over 4 · MR · NV FMAs: paired A/B at B = 256,
/// AVX-512, the products 1.05–1.06× faster at 784 × 256 and 1024 × 1024; AVX2 1.01–1.03×.
const UNROLL: usize = 4;

/// The shortest k-block that runs the unrolled loop: on 64-32-10 (k = 64 and 32) unrolling
/// measured 0.97–0.98× (paired A/B), at k ≥ 128 it pays.
const UNROLL_MIN_K: usize = 128;

/// One k of a micro-kernel: acc[i][v] += A[i, k] · B̃[k, v], A's row i at `pa + ra[i]`, the
/// panel's row at `pb`. Each accumulator's FMAs stay in increasing k whatever the unrolling,
/// so the bits do not depend on it.
///
/// # Safety
/// `pa + ra[i]` is readable for every i < MR, `pb` holds NV vectors; the CPU supports `V`'s
/// level.
#[inline(always)]
unsafe fn k_step<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize>(
    acc: &mut [[V; NV]; MR],
    pa: *const T,
    ra: &[usize; MR],
    pb: *const T,
) {
    // SAFETY: see the function's contract.
    unsafe {
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
    }
}

/// [`microkernel`] on a packed A: the MR values of each k are consecutive at `pa` (rows at
/// offsets 0 .. MR, k at stride MR; constants once inlined).
///
/// # Safety
/// `pa` holds kc · MR values, `pb` kc rows of NV vectors; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn microkernel_packed<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize>(
    acc: [[V; NV]; MR],
    kc: usize,
    pa: *const T,
    pb: *const T,
) -> [[V; NV]; MR] {
    let ra: [usize; MR] = std::array::from_fn(|i| i);
    // SAFETY: row i at k is pa + i + k·MR, inside the kc · MR packed values.
    unsafe { microkernel::<T, V, MR, NV>(acc, kc, pa, MR, &ra, pb) }
}

/// Rows `< mr_eff` of a C tile (any strides) as accumulators, the other rows 0.
///
/// # Safety
/// The tile's `mr_eff × nr_eff` elements of C are readable; the CPU supports `V`'s level.
#[inline(always)]
unsafe fn load_tile<T: Scalar, V: Vector<T>, const MR: usize, const NV: usize>(
    c: Output<T>,
    i0: usize,
    mr_eff: usize,
    j0: usize,
    nr_eff: usize,
) -> [[V; NV]; MR] {
    // SAFETY: only elements of the tile are read.
    unsafe {
        let zero = splat::<T, V>(0.0);
        let mut acc = [[zero; NV]; MR];
        if c.cs == 1 {
            for (i, row) in acc.iter_mut().enumerate() {
                if i < mr_eff {
                    *row = load_row::<T, V, NV>(c.ptr.add((i0 + i) * c.rs + j0), nr_eff);
                }
            }
        } else {
            // Gathered through a stack tile; only its first nr_eff columns of the first
            // mr_eff rows are read back.
            let nr = NV * V::LANES;
            let mut scratch = [MaybeUninit::<T>::uninit(); MAX_TILE];
            let s = scratch.as_mut_ptr().cast::<T>();
            for jj in 0..nr_eff {
                for i in 0..mr_eff {
                    *s.add(i * nr + jj) = *c.ptr.add((i0 + i) * c.rs + (j0 + jj) * c.cs);
                }
            }
            for (i, row) in acc.iter_mut().enumerate() {
                if i < mr_eff {
                    *row = load_row::<T, V, NV>(s.add(i * nr), nr_eff);
                }
            }
        }
        acc
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
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
    pub(crate) mr: usize,
    /// Columns of a GEMM tile.
    #[cfg_attr(not(feature = "rayon"), allow(dead_code))]
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

/// The x86 levels' transposing packs: B's memory rows j0 + jj (stride `cs`, kc elements each
/// from `src`) become the packed panel's columns, `dst[k · NR + jj] = src[jj · cs + k]`, zero
/// for jj ≥ nr_eff. Blocks of LANES × LANES are loaded as row vectors (masked past kc),
/// transposed in registers with the textbook unpack/shuffle networks (a few shuffles per
/// element instead of a load and a store each), and stored as rows of the panel. NR is two
/// vectors at every x86 level.
#[cfg(target_arch = "x86_64")]
mod x86_pack {
    use std::arch::x86_64::*;

    /// Stores the first `$n` transposed vectors of `$t` as output rows `$kb ..` at `$dst`
    /// (`$width` values per row, this block's at column `$rb`): whole vectors when the block
    /// has `$w` valid lanes, else its first `$lanes`. Shared by `transposing!`'s whole and
    /// partial k-blocks; `$n` is the literal `$w` in the first, so its loop keeps a constant
    /// trip count.
    macro_rules! store_rows {
        ($t:ident, $n:expr, $dst:ident, $width:ident, $rb:ident, $kb:ident, $lanes:ident,
         $w:literal, $store:path, $store_part:path) => {
            for (k, v) in $t.iter().enumerate().take($n) {
                let p = $dst.add(($kb + k) * $width + $rb);
                if $lanes == $w {
                    $store(p, *v)
                } else {
                    $store_part(p, *v, $lanes)
                }
            }
        };
    }

    /// Transposes `$valid` rows of a source (row i at `$src + i·$stride`, `$kc` values each)
    /// into `$kc` output rows of `$width` values at `$dst`: value i of output row k is source
    /// row i's k-th, and the values of rows `$valid .. $width` are zero. Rows go in groups of
    /// `$w`, k `$w` values at a time through `$transpose`; `$load(ptr, k)` loads k ≤ `$w`
    /// elements (the rest zero), `$zero` is a zero vector, `$store(ptr, v)` stores a vector
    /// and `$store_part(ptr, v, lanes)` its first lanes. Functions, not closures: a closure
    /// would be compiled without the level's target features.
    macro_rules! transposing {
        ($src:ident, $stride:ident, $kc:ident, $valid:expr, $width:expr, $dst:ident, $w:literal,
         $load:path, $zero:expr, $store:path, $store_part:path, $transpose:ident) => {{
            let (valid, width) = ($valid, $width);
            let mut rb = 0;
            while rb < width {
                let rows = valid.saturating_sub(rb).min($w);
                let lanes = (width - rb).min($w);
                let mut kb = 0;
                // Whole blocks of k first, with constant trip counts so that the rows stay in
                // registers (the dynamic loops below go through the stack; backward product
                // 1.03–1.05× faster at B = 256, paired A/B).
                if rows > 0 {
                    while kb + $w <= $kc {
                        let mut r = [$zero; $w];
                        for (i, v) in r.iter_mut().enumerate() {
                            if i < rows {
                                *v = $load($src.add((rb + i) * $stride + kb), $w);
                            }
                        }
                        let t = $transpose(r);
                        store_rows!(t, $w, $dst, width, rb, kb, lanes, $w, $store, $store_part);
                        kb += $w;
                    }
                }
                while kb < $kc {
                    let kn = ($kc - kb).min($w);
                    let mut r = [$zero; $w];
                    for (i, v) in r.iter_mut().enumerate().take(rows) {
                        *v = $load($src.add((rb + i) * $stride + kb), kn);
                    }
                    let t = if rows == 0 { r } else { $transpose(r) };
                    store_rows!(t, kn, $dst, width, rb, kb, lanes, $w, $store, $store_part);
                    kb += $w;
                }
                rb += $w;
            }
        }};
    }

    /// Defines the two transposing packers of one level through `transposing!`: `$pack`
    /// (`Tiling::pack_transposed`: NR = 2 · `$w` values per k, zero past `nr_eff`) and `$rows`
    /// (`Tiling::pack_rows`: `mr` values per k), for element type `$t` with the level's
    /// `$load`, zero vector, `$store`, partial `$store_part` and `$transpose`; `$level` and
    /// `$feature` name the level in their docs.
    macro_rules! level_packers {
        ($level:literal, $feature:literal, $pack:ident, $rows:ident, $t:ty, $w:literal,
         $load:path, $zero:expr, $store:path, $store_part:path, $transpose:ident) => {
            #[doc = concat!("The transposing pack at ", $level, " (NR = 2 · ", stringify!($w), ").")]
            ///
            /// # Safety
            #[doc = concat!($feature, "; `src + jj·cs + k` readable for jj < nr_eff, k < kc.")]
            /// `dst` holds kc · NR.
            #[inline(always)]
            pub(super) unsafe fn $pack(
                src: *const $t,
                cs: usize,
                kc: usize,
                nr_eff: usize,
                dst: *mut $t,
            ) {
                // SAFETY: masked loads read only k < kc of rows < nr_eff; stores write rows
                // < kc of the panel.
                unsafe {
                    transposing!(
                        src,
                        cs,
                        kc,
                        nr_eff,
                        2 * $w,
                        dst,
                        $w,
                        $load,
                        $zero,
                        $store,
                        $store_part,
                        $transpose
                    )
                }
            }

            #[doc = concat!("The row-major A packer at ", $level, " (`Tiling::pack_rows`).")]
            ///
            /// # Safety
            #[doc = concat!($feature, "; `src + i·rs + k` readable for i < mr, k < kc.")]
            /// `dst` holds kc · mr.
            #[inline(always)]
            pub(super) unsafe fn $rows(
                src: *const $t,
                rs: usize,
                kc: usize,
                mr: usize,
                dst: *mut $t,
            ) {
                // SAFETY: masked loads read only k < kc of rows < mr; stores write mr values
                // per k < kc.
                unsafe {
                    transposing!(
                        src,
                        rs,
                        kc,
                        mr,
                        mr,
                        dst,
                        $w,
                        $load,
                        $zero,
                        $store,
                        $store_part,
                        $transpose
                    )
                }
            }
        };
    }

    // ------------------------------------------------------------------ AVX-512, f32

    /// 16 × 16: out[j] lane i = r[i] lane j.
    #[inline(always)]
    unsafe fn transpose_16x16(r: [__m512; 16]) -> [__m512; 16] {
        // SAFETY: only called from AVX-512F code (the table's target features).
        unsafe {
            // t[2p] 128-bit lane L = (r[2p][4L], r[2p+1][4L], r[2p][4L+1], r[2p+1][4L+1]),
            // t[2p+1] the same for 4L+2, 4L+3.
            let mut t = [_mm512_setzero_ps(); 16];
            for p in 0..8 {
                t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
                t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
            }
            // u[4q + c] lane L = column 4L + c, rows 4q .. 4q + 4.
            let mut u = [_mm512_setzero_ps(); 16];
            for q in 0..4 {
                let (a, b) = (_mm512_castps_pd(t[4 * q]), _mm512_castps_pd(t[4 * q + 2]));
                let (c, d) = (
                    _mm512_castps_pd(t[4 * q + 1]),
                    _mm512_castps_pd(t[4 * q + 3]),
                );
                u[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
                u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
                u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
                u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
            }
            // Column 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c]:
            // 0x88 takes lanes (a0, a2, b0, b2), 0xdd lanes (a1, a3, b1, b3).
            let mut out = [_mm512_setzero_ps(); 16];
            for c in 0..4 {
                let v = _mm512_shuffle_f32x4::<0x88>(u[c], u[4 + c]);
                let w = _mm512_shuffle_f32x4::<0xdd>(u[c], u[4 + c]);
                let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + c], u[12 + c]);
                let w2 = _mm512_shuffle_f32x4::<0xdd>(u[8 + c], u[12 + c]);
                out[c] = _mm512_shuffle_f32x4::<0x88>(v, v2);
                out[8 + c] = _mm512_shuffle_f32x4::<0xdd>(v, v2);
                out[4 + c] = _mm512_shuffle_f32x4::<0x88>(w, w2);
                out[12 + c] = _mm512_shuffle_f32x4::<0xdd>(w, w2);
            }
            out
        }
    }

    /// Elements k' < k from `p`, the rest 0.
    #[inline(always)]
    unsafe fn load16(p: *const f32, k: usize) -> __m512 {
        // SAFETY: AVX-512F code; masked lanes are not read; k ≤ 16.
        unsafe { _mm512_maskz_loadu_ps(((1u32 << k) - 1) as u16, p) }
    }

    /// The first `lanes` lanes of `v` to `p`.
    #[inline(always)]
    unsafe fn store16(p: *mut f32, v: __m512, lanes: usize) {
        // SAFETY: AVX-512F code; masked lanes are not written; lanes ≤ 16.
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << lanes) - 1) as u16, v) }
    }

    level_packers!(
        "AVX-512, f32",
        "AVX-512F",
        avx512_f32,
        avx512_f32_rows,
        f32,
        16,
        load16,
        _mm512_setzero_ps(),
        _mm512_storeu_ps,
        store16,
        transpose_16x16
    );

    // ------------------------------------------------------------------ AVX-512, f64

    /// 8 × 8: out[j] lane i = r[i] lane j.
    #[inline(always)]
    unsafe fn transpose_8x8d(r: [__m512d; 8]) -> [__m512d; 8] {
        // SAFETY: only called from AVX-512F code.
        unsafe {
            // t[2p + c] 128-bit lane L = column 2L + c, rows 2p, 2p + 1.
            let mut t = [_mm512_setzero_pd(); 8];
            for p in 0..4 {
                t[2 * p] = _mm512_unpacklo_pd(r[2 * p], r[2 * p + 1]);
                t[2 * p + 1] = _mm512_unpackhi_pd(r[2 * p], r[2 * p + 1]);
            }
            // Column 2L + c gathers lane L of t[c], t[2 + c], t[4 + c], t[6 + c].
            let mut out = [_mm512_setzero_pd(); 8];
            for c in 0..2 {
                let v = _mm512_shuffle_f64x2::<0x88>(t[c], t[2 + c]);
                let w = _mm512_shuffle_f64x2::<0xdd>(t[c], t[2 + c]);
                let v2 = _mm512_shuffle_f64x2::<0x88>(t[4 + c], t[6 + c]);
                let w2 = _mm512_shuffle_f64x2::<0xdd>(t[4 + c], t[6 + c]);
                out[c] = _mm512_shuffle_f64x2::<0x88>(v, v2);
                out[4 + c] = _mm512_shuffle_f64x2::<0xdd>(v, v2);
                out[2 + c] = _mm512_shuffle_f64x2::<0x88>(w, w2);
                out[6 + c] = _mm512_shuffle_f64x2::<0xdd>(w, w2);
            }
            out
        }
    }

    /// Elements k' < k from `p`, the rest 0.
    #[inline(always)]
    unsafe fn load8d(p: *const f64, k: usize) -> __m512d {
        // SAFETY: AVX-512F code; masked lanes are not read; k ≤ 8.
        unsafe { _mm512_maskz_loadu_pd(((1u32 << k) - 1) as u8, p) }
    }

    /// The first `lanes` lanes of `v` to `p`.
    #[inline(always)]
    unsafe fn store8d(p: *mut f64, v: __m512d, lanes: usize) {
        // SAFETY: AVX-512F code; masked lanes are not written; lanes ≤ 8.
        unsafe { _mm512_mask_storeu_pd(p, ((1u32 << lanes) - 1) as u8, v) }
    }

    level_packers!(
        "AVX-512, f64",
        "AVX-512F",
        avx512_f64,
        avx512_f64_rows,
        f64,
        8,
        load8d,
        _mm512_setzero_pd(),
        _mm512_storeu_pd,
        store8d,
        transpose_8x8d
    );

    // ------------------------------------------------------------------ AVX2, f32

    /// 8 × 8: out[j] lane i = r[i] lane j.
    #[inline(always)]
    unsafe fn transpose_8x8(r: [__m256; 8]) -> [__m256; 8] {
        // SAFETY: only called from AVX2 code.
        unsafe {
            // t as in `transpose_16x16`; u[4q + c] 128-bit lane L = column 4L + c, rows
            // 4q .. 4q + 4 (0x44 takes (a0, a1, b0, b1), 0xee (a2, a3, b2, b3)).
            let mut t = [_mm256_setzero_ps(); 8];
            for p in 0..4 {
                t[2 * p] = _mm256_unpacklo_ps(r[2 * p], r[2 * p + 1]);
                t[2 * p + 1] = _mm256_unpackhi_ps(r[2 * p], r[2 * p + 1]);
            }
            let mut u = [_mm256_setzero_ps(); 8];
            for q in 0..2 {
                u[4 * q] = _mm256_shuffle_ps::<0x44>(t[4 * q], t[4 * q + 2]);
                u[4 * q + 1] = _mm256_shuffle_ps::<0xee>(t[4 * q], t[4 * q + 2]);
                u[4 * q + 2] = _mm256_shuffle_ps::<0x44>(t[4 * q + 1], t[4 * q + 3]);
                u[4 * q + 3] = _mm256_shuffle_ps::<0xee>(t[4 * q + 1], t[4 * q + 3]);
            }
            // Column c: lane 0 of u[c] and u[4 + c]; column 4 + c: their lane 1.
            let mut out = [_mm256_setzero_ps(); 8];
            for c in 0..4 {
                out[c] = _mm256_permute2f128_ps::<0x20>(u[c], u[4 + c]);
                out[4 + c] = _mm256_permute2f128_ps::<0x31>(u[c], u[4 + c]);
            }
            out
        }
    }

    /// Lanes below `k` set, for `vmaskmovps`.
    #[inline(always)]
    unsafe fn mask8(k: usize) -> __m256i {
        // SAFETY: AVX2 code; k ≤ 8.
        unsafe {
            _mm256_cmpgt_epi32(
                _mm256_set1_epi32(k as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        }
    }

    /// Elements k' < k from `p`, the rest 0.
    #[inline(always)]
    unsafe fn load8(p: *const f32, k: usize) -> __m256 {
        // SAFETY: AVX2 code; masked lanes are not read.
        unsafe { _mm256_maskload_ps(p, mask8(k)) }
    }

    /// The first `lanes` lanes of `v` to `p`.
    #[inline(always)]
    unsafe fn store8(p: *mut f32, v: __m256, lanes: usize) {
        // SAFETY: AVX2 code; masked lanes are not written; lanes ≤ 8.
        unsafe { _mm256_maskstore_ps(p, mask8(lanes), v) }
    }

    level_packers!(
        "AVX2, f32",
        "AVX2",
        avx2_f32,
        avx2_f32_rows,
        f32,
        8,
        load8,
        _mm256_setzero_ps(),
        _mm256_storeu_ps,
        store8,
        transpose_8x8
    );

    // ------------------------------------------------------------------ AVX2, f64

    /// 4 × 4: out[j] lane i = r[i] lane j.
    #[inline(always)]
    unsafe fn transpose_4x4d(r: [__m256d; 4]) -> [__m256d; 4] {
        // SAFETY: only called from AVX2 code.
        unsafe {
            // t[0] 128-bit lane L = (r0[2L], r1[2L]), t[1] = (r0[2L+1], r1[2L+1]); t[2], t[3]
            // the same for rows 2, 3.
            let t0 = _mm256_unpacklo_pd(r[0], r[1]);
            let t1 = _mm256_unpackhi_pd(r[0], r[1]);
            let t2 = _mm256_unpacklo_pd(r[2], r[3]);
            let t3 = _mm256_unpackhi_pd(r[2], r[3]);
            [
                _mm256_permute2f128_pd::<0x20>(t0, t2),
                _mm256_permute2f128_pd::<0x20>(t1, t3),
                _mm256_permute2f128_pd::<0x31>(t0, t2),
                _mm256_permute2f128_pd::<0x31>(t1, t3),
            ]
        }
    }

    /// Lanes below `k` set, for `vmaskmovpd`.
    #[inline(always)]
    unsafe fn mask4(k: usize) -> __m256i {
        // SAFETY: AVX2 code; k ≤ 4.
        unsafe { _mm256_cmpgt_epi64(_mm256_set1_epi64x(k as i64), _mm256_setr_epi64x(0, 1, 2, 3)) }
    }

    /// Elements k' < k from `p`, the rest 0.
    #[inline(always)]
    unsafe fn load4d(p: *const f64, k: usize) -> __m256d {
        // SAFETY: AVX2 code; masked lanes are not read.
        unsafe { _mm256_maskload_pd(p, mask4(k)) }
    }

    /// The first `lanes` lanes of `v` to `p`.
    #[inline(always)]
    unsafe fn store4d(p: *mut f64, v: __m256d, lanes: usize) {
        // SAFETY: AVX2 code; masked lanes are not written; lanes ≤ 4.
        unsafe { _mm256_maskstore_pd(p, mask4(lanes), v) }
    }

    level_packers!(
        "AVX2, f64",
        "AVX2",
        avx2_f64,
        avx2_f64_rows,
        f64,
        4,
        load4d,
        _mm256_setzero_pd(),
        _mm256_storeu_pd,
        store4d,
        transpose_4x4d
    );
}
