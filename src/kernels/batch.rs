//! The minibatch kernels: the SGD recursion for B samples at once, each step one GEMM with
//! its element-wise work fused into the GEMM's tile stores.
//!
//! A minibatch is row-major, one sample per row: Â is B × H, N, A, D and Δ are B × L, and W is
//! H × L as everywhere. Then
//!
//! ```text
//! forward    N = Â W + 1bᵀ,  A = σ(N),  D = σ'(N)          batch_forward
//! backward   Δ̂ = (Δ Wᵀ) ⊙ D̂                              batch_backward
//! gradient   G ← β G + s Âᵀ Δ,  g_b ← β g_b + s Σ_i Δ_i     batch_gradient
//! SGD step   W ← W − (α/B) Âᵀ Δ,  b ← b − (α/B) Σ_i Δ_i     batch_update
//! apply      W ← W − α G,  b ← b − α g_b                    apply_gradient
//! ```
//!
//! # How
//! The GEMM is this crate's own (see `batch_body.rs`): one packed B panel of at most 16–32
//! KiB on the stack, a register tile of MR × NR outputs per level, and the epilogue (bias +
//! σ + σ', ⊙ D̂, or the β/s accumulate) applied to each tile right after its last FMA. On
//! wide layers (8 panels or more) A is packed too, a row block at a time into a 288 KiB
//! stack buffer, so that the broadcasts read consecutive addresses; narrower products read A
//! in place. Transposes (Âᵀ, Wᵀ, Δᵀ) are strides or these packing copies, never matrix-sized
//! copies. It allocates nothing: its only scratch is at most about 330 KiB of stack per call
//! (or per rayon task), so call the batch kernels from threads with the default 2 MiB stack
//! or more. `matrixmultiply`,
//! which allocates its packing buffers on every call, is the speed reference in
//! `benches/batch.rs`. A batch of one never goes through the GEMM: it runs the
//! per-sample kernels ([`affine`](super::affine) + [`activate`](super::activate),
//! [`backward`](super::backward), [`rank1_update`](super::rank1_update)) and gives their bits.
//!
//! # Numerics and determinism
//! Each output element is one FMA chain over k in increasing order (k = H forward, L
//! backward, B for the gradient; blocked into fixed-size pieces by level), so the error is
//! within the usual γ_k bound of Σ|terms|. Its bits depend on the shape and the SIMD level
//! only. Above a size threshold the GEMM's output is split into fixed blocks run on rayon's
//! pool (feature `rayon`); the blocks are a function of the shape alone and no element's
//! value depends on its block, so results are bit-for-bit identical for any thread count and
//! from run to run.
//!
//! # Shapes
//! Every size is checked before anything is written; a mismatch is an [`Error`] naming the
//! argument, and the outputs are untouched. Zero-sized dimensions are valid: B = 0 writes
//! nothing (but `batch_gradient` with B = 0 still scales: G ← β G, g_b ← β g_b, the empty
//! sum being 0); H = 0 gives N = 1bᵀ and Δ̂ empty; L = 0 gives N, Δ empty and Δ̂ = 0 ⊙ D̂.

use super::KernelSet;
use super::batch_body::{BatchTable, Epilogue, Gemm, Operand, Output};
use super::table;
use crate::activation::Activation;
use crate::error::{Error, check_len};
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;

/// GEMMs below this many flops (2·m·n·k) run on the calling thread.
///
/// Measured on 2 cores (Xeon, AVX-512, f32), two threads against one for each kernel: with
/// the second core idle, ×0.7–0.9 below 0.15 MFLOP, about even at 0.5 MFLOP, ×1.2–1.4 at 1
/// MFLOP and ×1.4–1.65 from 2 MFLOP up; with the second core busy (a shared machine), a
/// split costs up to 10 % at any size. At 2 MFLOP every GEMM of a 64-32-10 network stays on
/// one thread up to B = 487 (its largest, 64 × 32 at B = 256, is 1.05 MFLOP), so such a
/// network never gets slower with more threads, while a 256 × 128 layer at B = 32 (2.1
/// MFLOP) already gains.
pub const PAR_MIN_FLOPS: usize = 2_000_000;

#[cfg(feature = "rayon")]
/// Flops per parallel task, roughly (tasks are whole tiles; their count is a function of the
/// shape only).
const TASK_FLOPS: usize = 2_000_000;

#[cfg(feature = "rayon")]
/// At most this many parallel tasks per GEMM: enough to balance a few cores, few enough that
/// each task's fixed costs (its packed panels, one rayon job) stay small.
const MAX_TASKS: usize = 16;

#[cfg(feature = "rayon")]
/// At most this many row groups per column panel: each row group packs the panel's B again.
const MAX_ROW_GROUPS: usize = 4;

#[cfg(feature = "rayon")]
/// `apply_gradient` splits W into row blocks across threads from this many elements on
/// (measured on 2 cores: ×1.0 at 32 K elements, ×1.5 at 128 K, ×1.7–1.9 from 200 K).
const PAR_MIN_ELEMS: usize = 1 << 17;

#[cfg(feature = "rayon")]
/// Rows per parallel block of `apply_gradient`.
const APPLY_ROWS: usize = 64;

/// Checks a matrix argument's rows and columns; `arg` names both, e.g.
/// `("a (rows)", "a (columns)")`.
fn check_shape(
    arg: (&'static str, &'static str),
    found: (usize, usize),
    rows: (usize, &'static str),
    cols: (usize, &'static str),
) -> Result<(), Error> {
    check_len(arg.0, found.0, rows.0, rows.1)?;
    check_len(arg.1, found.1, cols.0, cols.1)
}

fn check_finite<T: Scalar>(arg: &'static str, x: T) -> Result<(), Error> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite { arg })
    }
}

pub(crate) fn check_forward<T: Scalar>(
    act: Activation,
    w: &MatRef<'_, T>,
    b: &[T],
    a_prev: &MatRef<'_, T>,
    a: &MatMut<'_, T>,
    d: &MatMut<'_, T>,
) -> Result<(), Error> {
    if !act.is_elementwise() {
        return Err(Error::UnsupportedActivation {
            activation: act.name(),
            context: "`batch_forward` (apply Softmax to the output of an Identity layer)",
        });
    }
    let (h, l, bsz) = (w.rows(), w.cols(), a_prev.rows());
    let rows = (bsz, "the rows of a_prev (B)");
    let cols = (l, "the columns of w (L)");
    check_len("b", b.len(), l, "the columns of w (L)")?;
    check_len("a_prev (columns)", a_prev.cols(), h, "the rows of w (H)")?;
    check_shape(
        ("a (rows)", "a (columns)"),
        (a.rows(), a.cols()),
        rows,
        cols,
    )?;
    check_shape(
        ("d (rows)", "d (columns)"),
        (d.rows(), d.cols()),
        rows,
        cols,
    )
}

pub(crate) fn check_backward<T: Scalar>(
    w: &MatRef<'_, T>,
    delta: &MatRef<'_, T>,
    d_prev: &MatRef<'_, T>,
    delta_prev: &MatMut<'_, T>,
) -> Result<(), Error> {
    let (h, l, bsz) = (w.rows(), w.cols(), delta.rows());
    check_len("delta (columns)", delta.cols(), l, "the columns of w (L)")?;
    let rows = (bsz, "the rows of delta (B)");
    let cols = (h, "the rows of w (H)");
    check_shape(
        ("d_prev (rows)", "d_prev (columns)"),
        (d_prev.rows(), d_prev.cols()),
        rows,
        cols,
    )?;
    check_shape(
        ("delta_prev (rows)", "delta_prev (columns)"),
        (delta_prev.rows(), delta_prev.cols()),
        rows,
        cols,
    )
}

pub(crate) fn check_gradient<T: Scalar>(
    a_prev: &MatRef<'_, T>,
    delta: &MatRef<'_, T>,
    scale: T,
    beta: T,
    g: (usize, usize),
    g_b: usize,
) -> Result<(), Error> {
    check_finite("scale", scale)?;
    check_finite("beta", beta)?;
    let (bsz, h, l) = (a_prev.rows(), a_prev.cols(), delta.cols());
    check_len("delta (rows)", delta.rows(), bsz, "the rows of a_prev (B)")?;
    check_shape(
        ("g (rows)", "g (columns)"),
        g,
        (h, "the columns of a_prev (H)"),
        (l, "the columns of delta (L)"),
    )?;
    check_len("g_b", g_b, l, "the columns of delta (L)")
}

pub(crate) fn check_update<T: Scalar>(
    w: (usize, usize),
    b: usize,
    alpha: T,
    a_prev: &MatRef<'_, T>,
    delta: &MatRef<'_, T>,
) -> Result<(), Error> {
    check_finite("alpha", alpha)?;
    let (h, l) = w;
    check_len("b", b, l, "the columns of w (L)")?;
    check_len("a_prev (columns)", a_prev.cols(), h, "the rows of w (H)")?;
    check_shape(
        ("delta (rows)", "delta (columns)"),
        (delta.rows(), delta.cols()),
        (a_prev.rows(), "the rows of a_prev (B)"),
        (l, "the columns of w (L)"),
    )
}

pub(crate) fn check_apply<T: Scalar>(
    w: (usize, usize),
    b: usize,
    alpha: T,
    g: &MatRef<'_, T>,
    g_b: usize,
) -> Result<(), Error> {
    check_finite("alpha", alpha)?;
    let (h, l) = w;
    check_len("b", b, l, "the columns of w (L)")?;
    check_shape(
        ("g (rows)", "g (columns)"),
        (g.rows(), g.cols()),
        (h, "the rows of w (H)"),
        (l, "the columns of w (L)"),
    )?;
    check_len("g_b", g_b, l, "the columns of w (L)")
}

/// Runs `g` on the calling thread, or on rayon's pool in fixed blocks when it is big enough.
fn run_gemm<T: Scalar>(bt: &BatchTable<T>, g: &Gemm<T>) {
    let flops = 2usize
        .saturating_mul(g.m)
        .saturating_mul(g.n)
        .saturating_mul(g.k.max(1));
    #[cfg(feature = "rayon")]
    if flops >= PAR_MIN_FLOPS && rayon::current_num_threads() > 1 {
        par_gemm(bt, g, flops);
        return;
    }
    let _ = flops;
    // SAFETY: the caller built `g` from checked views (see each kernel), and the whole output
    // is one block on this thread.
    unsafe { (bt.gemm)(g, 0..g.m, 0..g.n) }
}

#[cfg(feature = "rayon")]
/// The fixed blocks of an m × n output, a function of the shape alone: `tasks` column groups
/// of whole NR panels, or, when there are fewer panels than tasks, every panel its own group,
/// split into at most [`MAX_ROW_GROUPS`] row groups of whole MR tiles (each row group packs
/// its panels' B again, so rows are split only as far as needed). Returns (row groups,
/// column groups).
fn partition(m: usize, n: usize, mr: usize, nr: usize, flops: usize) -> (usize, usize) {
    let tasks = (flops / TASK_FLOPS).clamp(2, MAX_TASKS);
    let panels = n.div_ceil(nr);
    let tiles = m.div_ceil(mr);
    if panels >= tasks {
        (1, tasks)
    } else {
        (
            tasks.div_ceil(panels).min(MAX_ROW_GROUPS).min(tiles),
            panels,
        )
    }
}

#[cfg(feature = "rayon")]
/// Block `i` of `groups` over `units` units of `size` elements, clipped to `len`.
fn group(i: usize, groups: usize, units: usize, size: usize, len: usize) -> std::ops::Range<usize> {
    let lo = (i * units / groups * size).min(len);
    let hi = ((i + 1) * units / groups * size).min(len);
    lo..hi
}

#[cfg(feature = "rayon")]
fn par_gemm<T: Scalar>(bt: &BatchTable<T>, g: &Gemm<T>, flops: usize) {
    use rayon::prelude::*;

    /// The GEMM shared by the tasks.
    struct Shared<'a, T>(&'a Gemm<T>);
    // SAFETY: the tasks only read A, B and the epilogue's inputs, and write pairwise disjoint
    // blocks of C (and D); the borrow checker kept every caller's view alive and unaliased
    // for the duration of the call, which outlives the parallel loop.
    unsafe impl<T> Sync for Shared<'_, T> {}
    impl<T> Shared<'_, T> {
        // A method, so that closures capture the `Sync` wrapper and not its field.
        fn get(&self) -> &Gemm<T> {
            self.0
        }
    }

    let (rg, cg) = partition(g.m, g.n, bt.mr, bt.nr, flops);
    let (tiles, panels) = (g.m.div_ceil(bt.mr), g.n.div_ceil(bt.nr));
    let shared = Shared(g);
    let gemm = bt.gemm;
    (0..rg * cg).into_par_iter().for_each(|t| {
        let g = shared.get();
        let rows = group(t % rg, rg, tiles, bt.mr, g.m);
        let cols = group(t / rg, cg, panels, bt.nr, g.n);
        // SAFETY: block t is disjoint from every other task's (`group` tiles 0..m and 0..n
        // without overlap), inside the output, and `g` is valid as in `run_gemm`.
        unsafe { gemm(g, rows, cols) }
    });
}

impl KernelSet {
    /// N = Â W + 1bᵀ, A = σ(N), D = σ'(N). See [`batch_forward`].
    pub fn batch_forward<T: Scalar>(
        &self,
        act: Activation,
        w: MatRef<'_, T>,
        b: &[T],
        a_prev: MatRef<'_, T>,
        mut a: MatMut<'_, T>,
        mut d: MatMut<'_, T>,
    ) -> Result<(), Error> {
        check_forward(act, &w, b, &a_prev, &a, &d)?;
        let (h, l, bsz) = (w.rows(), w.cols(), a_prev.rows());
        if bsz == 0 || l == 0 {
            return Ok(());
        }
        let t = table::get::<T>(self.level);
        let (a_rs, d_rs) = (a.row_stride(), d.row_stride());
        let (ap, dp) = (a.as_mut_ptr(), d.as_mut_ptr());
        if bsz == 1 {
            // SAFETY: row 0 of each view: a_prev has H elements, a and d L; b has L (checked);
            // a and d are distinct `&mut` borrows, so no input overlaps them.
            unsafe {
                (t.affine)(
                    w.as_ptr(),
                    h,
                    l,
                    w.row_stride(),
                    a_prev.as_ptr(),
                    b.as_ptr(),
                    ap,
                );
                (t.batch.activate_in_place)(act, ap, dp, l);
            }
            return Ok(());
        }
        let g = Gemm {
            m: bsz,
            n: l,
            k: h,
            a: Operand {
                ptr: a_prev.as_ptr(),
                rs: a_prev.row_stride(),
                cs: 1,
            },
            b: Operand {
                ptr: w.as_ptr(),
                rs: w.row_stride(),
                cs: 1,
            },
            c: Output {
                ptr: ap,
                rs: a_rs,
                cs: 1,
            },
            epi: Epilogue::BiasActivate {
                act,
                bias: b.as_ptr(),
                d: Output {
                    ptr: dp,
                    rs: d_rs,
                    cs: 1,
                },
            },
        };
        run_gemm(&t.batch, &g);
        Ok(())
    }

    /// Δ̂ = (Δ Wᵀ) ⊙ D̂. See [`batch_backward`].
    pub fn batch_backward<T: Scalar>(
        &self,
        w: MatRef<'_, T>,
        delta: MatRef<'_, T>,
        d_prev: MatRef<'_, T>,
        mut delta_prev: MatMut<'_, T>,
    ) -> Result<(), Error> {
        check_backward(&w, &delta, &d_prev, &delta_prev)?;
        let (h, l, bsz) = (w.rows(), w.cols(), delta.rows());
        if bsz == 0 || h == 0 {
            return Ok(());
        }
        let t = table::get::<T>(self.level);
        let out_rs = delta_prev.row_stride();
        let out = delta_prev.as_mut_ptr();
        if bsz == 1 {
            // SAFETY: row 0 of each view: delta has L elements, d_prev and delta_prev H;
            // delta_prev is a `&mut` borrow, so no input overlaps it.
            unsafe {
                (t.backward)(
                    w.as_ptr(),
                    h,
                    l,
                    w.row_stride(),
                    delta.as_ptr(),
                    d_prev.as_ptr(),
                    out,
                )
            };
            return Ok(());
        }
        let (wp, wrs) = (w.as_ptr(), w.row_stride());
        let (dlp, dlrs) = (delta.as_ptr(), delta.row_stride());
        let (dpp, dprs) = (d_prev.as_ptr(), d_prev.row_stride());
        // Either product gives the same bits (each element is the same FMA chain over l);
        // they differ in what gets transposed on the way. Δ Wᵀ gathers W (H·L scalars) into
        // its packed panels; (W Δᵀ)ᵀ gathers Δ (B·L) and scatters its B·H outputs, once if
        // L fits one k-block and twice more per extra block (the partial sums).
        let passes = 2 * l.div_ceil(t.batch.kc).max(1) - 1;
        let scatter = bsz * (l + h * passes);
        let g = if scatter < h * l {
            Gemm {
                m: h,
                n: bsz,
                k: l,
                a: Operand {
                    ptr: wp,
                    rs: wrs,
                    cs: 1,
                },
                b: Operand {
                    ptr: dlp,
                    rs: 1,
                    cs: dlrs,
                },
                c: Output {
                    ptr: out,
                    rs: 1,
                    cs: out_rs,
                },
                epi: Epilogue::Hadamard {
                    d: Operand {
                        ptr: dpp,
                        rs: 1,
                        cs: dprs,
                    },
                },
            }
        } else {
            Gemm {
                m: bsz,
                n: h,
                k: l,
                a: Operand {
                    ptr: dlp,
                    rs: dlrs,
                    cs: 1,
                },
                b: Operand {
                    ptr: wp,
                    rs: 1,
                    cs: wrs,
                },
                c: Output {
                    ptr: out,
                    rs: out_rs,
                    cs: 1,
                },
                epi: Epilogue::Hadamard {
                    d: Operand {
                        ptr: dpp,
                        rs: dprs,
                        cs: 1,
                    },
                },
            }
        };
        run_gemm(&t.batch, &g);
        Ok(())
    }

    /// G ← β G + s Âᵀ Δ, g_b ← β g_b + s Σ_i Δ_i. See [`batch_gradient`].
    pub fn batch_gradient<T: Scalar>(
        &self,
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
        let (bsz, h, l) = (a_prev.rows(), a_prev.cols(), delta.cols());
        if l == 0 {
            return Ok(());
        }
        let t = table::get::<T>(self.level);
        let (dp, drs) = (delta.as_ptr(), delta.row_stride());
        // SAFETY: delta is B × L at stride drs, g_b has L elements (checked) and is a `&mut`
        // borrow, so it overlaps no input.
        unsafe { (t.batch.col_sums)(dp, bsz, drs, 0..l, scale, beta, g_b.as_mut_ptr()) };
        if h == 0 {
            return Ok(());
        }
        let (g_rs, gp) = (g.row_stride(), g.as_mut_ptr());
        let ap = a_prev.as_ptr();
        if bsz == 1 {
            // SAFETY: g is H × L at stride g_rs, a_prev's row 0 has H elements, delta's L; g is
            // a `&mut` borrow, so no input overlaps it.
            unsafe {
                if beta == T::ONE {
                    (t.rank1_update)(gp, h, l, g_rs, -scale, ap, dp);
                } else {
                    (t.batch.outer)(gp, h, l, g_rs, scale, beta, ap, dp);
                }
            }
            return Ok(());
        }
        let gemm = Gemm {
            m: h,
            n: l,
            k: bsz,
            a: Operand {
                ptr: ap,
                rs: 1,
                cs: a_prev.row_stride(),
            },
            b: Operand {
                ptr: dp,
                rs: drs,
                cs: 1,
            },
            c: Output {
                ptr: gp,
                rs: g_rs,
                cs: 1,
            },
            epi: Epilogue::Scale { s: scale, beta },
        };
        run_gemm(&t.batch, &gemm);
        Ok(())
    }

    /// W ← W − (α/B) Âᵀ Δ, b ← b − (α/B) Σ_i Δ_i. See [`batch_update`].
    pub fn batch_update<T: Scalar>(
        &self,
        w: MatMut<'_, T>,
        b: &mut [T],
        alpha: T,
        a_prev: MatRef<'_, T>,
        delta: MatRef<'_, T>,
    ) -> Result<(), Error> {
        check_update((w.rows(), w.cols()), b.len(), alpha, &a_prev, &delta)?;
        let bsz = a_prev.rows();
        if bsz == 0 {
            return Ok(());
        }
        let scale = -alpha / T::from_f64(bsz as f64);
        self.batch_gradient(a_prev, delta, scale, T::ONE, w, b)
    }

    /// W ← W − α G, b ← b − α g_b. See [`apply_gradient`].
    pub fn apply_gradient<T: Scalar>(
        &self,
        mut w: MatMut<'_, T>,
        b: &mut [T],
        alpha: T,
        g: MatRef<'_, T>,
        g_b: &[T],
    ) -> Result<(), Error> {
        let (h, l) = (w.rows(), w.cols());
        check_apply((h, l), b.len(), alpha, &g, g_b.len())?;
        if l == 0 {
            return Ok(());
        }
        let t = table::get::<T>(self.level);
        let axpy = t.batch.axpy_rows;
        // SAFETY: b and g_b are 1 × L; b is a `&mut` borrow, so it overlaps no input.
        unsafe { axpy(b.as_mut_ptr(), l, alpha, g_b.as_ptr(), l, 0..1, l) };
        if h == 0 {
            return Ok(());
        }
        let (wrs, wp) = (w.row_stride(), w.as_mut_ptr());
        let (grs, gp) = (g.row_stride(), g.as_ptr());
        #[cfg(feature = "rayon")]
        if h.saturating_mul(l) >= PAR_MIN_ELEMS && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            /// W's and G's pointers, shared by the row blocks.
            struct Rows<T>(*mut T, *const T);
            // SAFETY: each task writes its own rows of W and reads the same rows of G; the
            // views outlive the parallel loop.
            unsafe impl<T> Sync for Rows<T> {}
            impl<T> Rows<T> {
                // A method, so that closures capture the `Sync` wrapper and not its fields.
                fn get(&self) -> (*mut T, *const T) {
                    (self.0, self.1)
                }
            }
            let ptrs = Rows(wp, gp);
            (0..h.div_ceil(APPLY_ROWS)).into_par_iter().for_each(|i| {
                let rows = i * APPLY_ROWS..((i + 1) * APPLY_ROWS).min(h);
                let (wp, gp) = ptrs.get();
                // SAFETY: rows of this block only, inside both H × L views.
                unsafe { axpy(wp, wrs, alpha, gp, grs, rows, l) };
            });
            return Ok(());
        }
        // SAFETY: W and G are H × L at their strides; W is a `&mut` borrow.
        unsafe { axpy(wp, wrs, alpha, gp, grs, 0..h, l) };
        Ok(())
    }
}

/// Forward step of one layer for a minibatch: A = σ(Â W + 1bᵀ) and D = σ'(Â W + 1bᵀ).
///
/// `a_prev` is B × H (one sample per row), `w` H × L, `b` has length L, `a` and `d` are
/// B × L and only written. Row i of `a` is what [`affine`](super::affine) and
/// [`activate`](super::activate) give for row i of `a_prev`: for B = 1 exactly those
/// kernels run; for B > 1 one GEMM with bias, σ and σ' applied to each tile as it leaves the
/// registers. `act` must be element-wise: `Softmax` is an error (the network applies it
/// after an `Identity` layer). Zero-sized dimensions are valid: B = 0 or L = 0 writes
/// nothing, H = 0 gives A = σ(1bᵀ).
///
/// ```
/// use deltaprop::{kernels, Activation, Matrix};
/// // B = 2 samples, H = 2 inputs, L = 3 outputs.
/// let w = Matrix::from_row_major(2, 3, &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// let x = Matrix::from_row_major(2, 2, &[1.0f32, -1.0, 0.5, 0.0])?;
/// let (mut a, mut d) = (Matrix::zeros(2, 3), Matrix::zeros(2, 3));
/// let b = [0.5f32, 0.5, -0.5];
/// kernels::batch_forward(Activation::Relu, w.as_ref(), &b, x.as_ref(), a.as_mut(), d.as_mut())?;
/// // N = [[-2.5, -2.5, -3.5], [1.0, 1.5, 1.0]]
/// assert_eq!(a.to_row_major(), [0.0, 0.0, 0.0, 1.0, 1.5, 1.0]);
/// assert_eq!(d.to_row_major(), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub fn batch_forward<T: Scalar>(
    act: Activation,
    w: MatRef<'_, T>,
    b: &[T],
    a_prev: MatRef<'_, T>,
    a: MatMut<'_, T>,
    d: MatMut<'_, T>,
) -> Result<(), Error> {
    KernelSet::active().batch_forward(act, w, b, a_prev, a, d)
}

/// Backward step for a minibatch: Δ̂ = (Δ Wᵀ) ⊙ D̂, i.e. row i of Δ̂ is
/// [`backward`](super::backward) of row i of Δ (and for B = 1 is exactly that kernel).
///
/// `w` is H × L, `delta` B × L, `d_prev` (σ̂' of the layer below) and `delta_prev` B × H;
/// `delta_prev` is only written. B = 0 or H = 0 writes nothing; L = 0 gives Δ̂ = 0 ⊙ D̂.
pub fn batch_backward<T: Scalar>(
    w: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    d_prev: MatRef<'_, T>,
    delta_prev: MatMut<'_, T>,
) -> Result<(), Error> {
    KernelSet::active().batch_backward(w, delta, d_prev, delta_prev)
}

/// A minibatch's weight and bias gradient, accumulated: G ← β·G + s·ÂᵀΔ and
/// g_b ← β·g_b + s·Σ_i Δ_i (the column sums of Δ).
///
/// `a_prev` is B × H, `delta` B × L, `g` H × L and `g_b` has length L. With s = 1/B and
/// β = 0 this is the minibatch's mean gradient (G and g_b are then not read, so they may hold
/// anything); with G = W, g_b = b, s = −α/B and β = 1 it is the SGD step ([`batch_update`]).
/// `scale` and `beta` must be finite. Use it for data-parallel training: each process
/// computes its shard's gradient, the gradients are summed (all-reduced) and every process
/// applies the result with [`apply_gradient`].
///
/// With B = 1 and β = 1 this is exactly [`rank1_update`](super::rank1_update) with α = −s
/// (and g_b + s·δ for the bias). With B = 0, G ← β·G and g_b ← β·g_b.
pub fn batch_gradient<T: Scalar>(
    a_prev: MatRef<'_, T>,
    delta: MatRef<'_, T>,
    scale: T,
    beta: T,
    g: MatMut<'_, T>,
    g_b: &mut [T],
) -> Result<(), Error> {
    KernelSet::active().batch_gradient(a_prev, delta, scale, beta, g, g_b)
}

/// Minibatch SGD step: W ← W − (α/B)·ÂᵀΔ and b ← b − (α/B)·Σ_i Δ_i, the mean gradient
/// folded into the GEMM's accumulate; `batch_gradient(a_prev, delta, −α/B, 1, w, b)`.
///
/// `w` is H × L, `b` has length L, `a_prev` is B × H, `delta` B × L; `alpha` must be finite.
/// With B = 1 the weights are exactly those of [`rank1_update`](super::rank1_update); B = 0
/// changes nothing.
pub fn batch_update<T: Scalar>(
    w: MatMut<'_, T>,
    b: &mut [T],
    alpha: T,
    a_prev: MatRef<'_, T>,
    delta: MatRef<'_, T>,
) -> Result<(), Error> {
    KernelSet::active().batch_update(w, b, alpha, a_prev, delta)
}

/// Applies a gradient computed elsewhere: W ← W − α·G and b ← b − α·g_b, one FMA per
/// element (e.g. after all-reducing [`batch_gradient`]'s output across processes).
///
/// `w` and `g` are H × L, `b` and `g_b` have length L; `alpha` must be finite. H = 0 updates
/// only b; L = 0 does nothing.
pub fn apply_gradient<T: Scalar>(
    w: MatMut<'_, T>,
    b: &mut [T],
    alpha: T,
    g: MatRef<'_, T>,
    g_b: &[T],
) -> Result<(), Error> {
    KernelSet::active().apply_gradient(w, b, alpha, g, g_b)
}
