//! The minibatch kernels against their naive twins in `deltaprop::reference`, for f32 and f64,
//! on every SIMD level this CPU has (`simd::available()` through `KernelSet::new`; a level the
//! CPU lacks is reported as skipped).
//!
//! What the comparisons cover:
//! - Shapes: B ∈ {1, 2, 3, 7, 32, 33, 256} × every (H, L) from {1, 3, 8, 9, 16, 17, 31, 64,
//!   65, 127} (around the tile edges of every level: MR ∈ {4, 6, 12}, NR ∈ {8, 16, 32}), plus
//!   784 × 256 (several k-blocks, many panels), a few shapes past one k-block in every
//!   direction (B = 300, L = 520, 784, 1000), k-blocks of 128 or more that are not a multiple
//!   of four (B = 130, H = 131, L = 387) and zero-sized dimensions. `DELTAPROP_TEST_SMALL=1`
//!   shrinks them (see [`small`]) for a run under valgrind.
//! - Storage: `Matrix` (aligned, padded rows) and strided views over a caller's `Vec` that start
//!   1 or 3 elements past a 64-byte boundary with a row stride of cols + 1, 3, 8 or 17. Around
//!   and between the rows of a view sit guard values: NaN around inputs (a kernel reading
//!   outside an input carries NaN into its result), a finite value around outputs that must
//!   keep its bits. Outputs start as NaN (a kernel that reads what it should only write leaves
//!   NaN behind).
//! - Tolerances from the operations (see [`sum_tol`]); bit-for-bit equality where B = 1 takes
//!   the per-sample kernels, and across thread counts.

use deltaprop::kernels::{self, KernelSet};
use deltaprop::{Activation, Error, MatMut, MatRef, Matrix, Scalar, reference, simd};

// ----------------------------------------------------------------------------------------
// Element types

/// What the tests need beyond [`Scalar`].
trait Float: Scalar + std::fmt::LowerExp {
    /// A NaN filling every output before a kernel runs.
    const POISON: Self;
    /// A NaN with another payload around inputs.
    const INPUT_GUARD: Self;
    /// A finite value around outputs: any write there changes its bits.
    const GUARD: Self;
    /// Relative error allowed for the vectorised σ and σ' against `std`'s (the per-sample
    /// kernels' documented bounds: a few ULP in f32, 1e-12 in f64).
    const ACT_REL: f64;
    /// The smallest positive normal value, as f64: the floor of every tolerance.
    const TINY: f64;
    fn bits(self) -> u64;
}

impl Float for f32 {
    const POISON: Self = f32::from_bits(0x7fc0_dead);
    const INPUT_GUARD: Self = f32::from_bits(0x7fc0_6a2d);
    const GUARD: Self = 1_048_576.5;
    const ACT_REL: f64 = 2e-6;
    const TINY: f64 = f32::MIN_POSITIVE as f64;
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Float for f64 {
    const POISON: Self = f64::from_bits(0x7ff8_0000_0000_dead);
    const INPUT_GUARD: Self = f64::from_bits(0x7ff8_0000_0000_6a2d);
    const GUARD: Self = 1_048_576.5;
    const ACT_REL: f64 = 2e-12;
    const TINY: f64 = f64::MIN_POSITIVE;
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

fn eps<T: Float>() -> f64 {
    T::EPSILON.to_f64()
}

/// Allowed |kernel − reference| for a value both compute as a sum of `k` terms with
/// Σ|terms| = `sum_abs`.
///
/// Any summation order errs by at most γ_k·Σ|terms| with γ_k = k·u/(1 − k·u), u = eps/2
/// (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1); FMA only removes
/// roundings. Kernel and reference each meet it, so they differ by at most ≈ k·eps·Σ; we
/// assert 2·(k + 2)·eps·Σ (the two extra roundings cover a final scaling or bias). A lost,
/// repeated or misplaced term is an error the size of a whole term, far outside.
fn sum_tol<T: Float>(k: usize, sum_abs: f64) -> f64 {
    2.0 * (k as f64 + 2.0) * eps::<T>() * sum_abs + T::TINY
}

// ----------------------------------------------------------------------------------------
// Data

/// SplitMix64: a small seeded generator for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Mostly uniform in [−1, 1]; one in eight scaled by 2^e, e ∈ [−8, 8], so sums mix
    /// magnitudes and cancel; one in 32 exactly 0.
    fn value<T: Float>(&mut self) -> T {
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let x = match self.next_u64() % 32 {
            0 => 0.0,
            1..=4 => x * 2f64.powi((self.next_u64() % 17) as i32 - 8),
            _ => x,
        };
        T::from_f64(x)
    }
    fn values<T: Float>(&mut self, n: usize) -> Vec<T> {
        (0..n).map(|_| self.value()).collect()
    }
}

/// Where a matrix lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// A [`Matrix`]: rows 64-byte aligned, stride padded.
    Matrix,
    /// A view over a guarded `Vec`, unaligned, stride > cols.
    View,
}

const STORAGES: [Storage; 2] = [Storage::Matrix, Storage::View];

/// Guard elements before a view (plus 0–15 to place it) and after it.
const LEAD: usize = 16;
const TAIL: usize = 19;

/// A rows × cols matrix in one of the two storages, with its guards.
struct Stored<T: Float> {
    storage: Storage,
    rows: usize,
    cols: usize,
    matrix: Matrix<T>,
    buf: Vec<T>,
    offset: usize,
    stride: usize,
    guard: T,
}

impl<T: Float> Stored<T> {
    /// `data` (row-major) in `storage`; a view's surroundings hold `guard`. `salt` varies
    /// the view's misalignment and stride between matrices of one case.
    fn new(storage: Storage, rows: usize, cols: usize, data: &[T], guard: T, salt: usize) -> Self {
        assert_eq!(data.len(), rows * cols);
        match storage {
            Storage::Matrix => Stored {
                storage,
                rows,
                cols,
                matrix: Matrix::from_row_major(rows, cols, data).unwrap(),
                buf: Vec::new(),
                offset: 0,
                stride: 0,
                guard,
            },
            Storage::View => {
                let size = std::mem::size_of::<T>();
                let per_line = 64 / size;
                let past_line = [1, 3][(rows + cols + salt) % 2];
                let stride = cols + [1, 3, 8, 17][(3 * rows + cols + salt) % 4];
                let span = if rows == 0 {
                    0
                } else {
                    (rows - 1) * stride + cols
                };
                let mut buf = vec![guard; LEAD + per_line + span + TAIL];
                let lead_addr = buf.as_ptr() as usize + LEAD * size;
                let to_line = (64 - lead_addr % 64) % 64 / size;
                let offset = LEAD + (to_line + past_line) % per_line;
                for r in 0..rows {
                    let s = offset + r * stride;
                    buf[s..s + cols].copy_from_slice(&data[r * cols..(r + 1) * cols]);
                }
                Stored {
                    storage,
                    rows,
                    cols,
                    matrix: Matrix::zeros(0, 0),
                    buf,
                    offset,
                    stride,
                    guard,
                }
            }
        }
    }

    /// An input: `data` with NaN guards.
    fn input(storage: Storage, rows: usize, cols: usize, data: &[T], salt: usize) -> Self {
        Self::new(storage, rows, cols, data, T::INPUT_GUARD, salt)
    }

    /// An output: every element NaN, finite guards.
    fn output(storage: Storage, rows: usize, cols: usize, salt: usize) -> Self {
        let data = vec![T::POISON; rows * cols];
        Self::new(storage, rows, cols, &data, T::GUARD, salt)
    }

    /// An input-output (G, W): `data` with finite guards.
    fn inout(storage: Storage, rows: usize, cols: usize, data: &[T], salt: usize) -> Self {
        Self::new(storage, rows, cols, data, T::GUARD, salt)
    }

    fn as_ref(&self) -> MatRef<'_, T> {
        match self.storage {
            Storage::Matrix => self.matrix.as_ref(),
            Storage::View => {
                MatRef::from_slice(&self.buf[self.offset..], self.rows, self.cols, self.stride)
                    .unwrap()
            }
        }
    }

    fn as_mut(&mut self) -> MatMut<'_, T> {
        match self.storage {
            Storage::Matrix => self.matrix.as_mut(),
            Storage::View => MatMut::from_slice(
                &mut self.buf[self.offset..],
                self.rows,
                self.cols,
                self.stride,
            )
            .unwrap(),
        }
    }

    fn to_vec(&self) -> Vec<T> {
        self.as_ref().to_row_major()
    }

    /// Panics if anything outside a view's elements lost its guard bits.
    fn assert_guards(&self, what: &str) {
        if self.storage == Storage::Matrix {
            return;
        }
        for (i, x) in self.buf.iter().enumerate() {
            let j = i.wrapping_sub(self.offset);
            let inside = i >= self.offset
                && self.rows > 0
                && j / self.stride < self.rows
                && j % self.stride < self.cols;
            assert!(
                inside || x.bits() == self.guard.bits(),
                "{what}: buffer element {i} outside the view (offset {}, stride {}) was \
                 overwritten with {x:e}",
                self.offset,
                self.stride
            );
        }
    }

    /// Bits of every element of the buffer or matrix.
    fn all_bits(&self) -> Vec<u64> {
        match self.storage {
            Storage::Matrix => self.to_vec().iter().map(|x| x.bits()).collect(),
            Storage::View => self.buf.iter().map(|x| x.bits()).collect(),
        }
    }
}

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.bits()).collect()
}

/// Every supported level's kernels; says which were skipped.
fn kernel_sets() -> Vec<KernelSet> {
    let mut sets = Vec::new();
    for level in simd::Level::ALL {
        match KernelSet::new(level) {
            Ok(ks) => sets.push(ks),
            Err(_) => eprintln!("skipped SIMD level {level}: this CPU lacks it"),
        }
    }
    assert_eq!(
        sets.iter().map(|k| k.level()).collect::<Vec<_>>(),
        simd::available()
    );
    sets
}

const BATCHES: [usize; 7] = [1, 2, 3, 7, 32, 33, 256];
const SIZES: [usize; 10] = [1, 3, 8, 9, 16, 17, 31, 64, 65, 127];

/// Whether `DELTAPROP_TEST_SMALL` asks for a reduced run (set and not `0`), e.g. under
/// valgrind: the sizes below, still on each side of every tile edge (MR ∈ {4, 6, 12},
/// NR ∈ {8, 16, 32}), no 784 × 256 layer, and of the shapes past one k-block only the cheap
/// ones.
fn small() -> bool {
    std::env::var_os("DELTAPROP_TEST_SMALL").is_some_and(|v| v != "0")
}
const SMALL_BATCHES: [usize; 5] = [1, 2, 7, 13, 33];
const SMALL_SIZES: [usize; 6] = [1, 3, 8, 9, 17, 33];

/// [`BATCHES`], or [`SMALL_BATCHES`] in a reduced run.
fn batches() -> &'static [usize] {
    if small() { &SMALL_BATCHES } else { &BATCHES }
}

/// [`SIZES`], or [`SMALL_SIZES`] in a reduced run.
fn sizes() -> &'static [usize] {
    if small() { &SMALL_SIZES } else { &SIZES }
}

/// [`sizes`] and, unless the run is reduced, `big`.
fn sizes_and(big: usize) -> Vec<usize> {
    let mut v = sizes().to_vec();
    if !small() {
        v.push(big);
    }
    v
}

/// Every (B, H, L) the comparisons run, with a storage (alternating over the cases so both
/// meet every size) and an activation (cycling through the element-wise ones).
fn cases() -> Vec<(usize, usize, usize, Storage, Activation)> {
    let mut out = Vec::new();
    let mut n = 0;
    for &bsz in batches() {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for &h in sizes() {
            for &l in sizes() {
                pairs.push((h, l));
            }
        }
        if !small() {
            pairs.push((784, 256));
        }
        for (h, l) in pairs {
            for storage in STORAGES {
                // The biggest batch runs every size once, alternating storage (the others
                // already cover both storages at every size).
                if bsz == 256 && (h + l + (storage == Storage::View) as usize).is_multiple_of(2) {
                    continue;
                }
                let act = Activation::ELEMENTWISE[n % Activation::ELEMENTWISE.len()];
                n += 1;
                out.push((bsz, h, l, storage, act));
            }
        }
    }
    // Past one k-block of every level (KC = 256): the gradient's second block accumulates
    // onto G (B = 300; with L = 264, on the path that packs Âᵀ, which wide layers take);
    // backward's partial sums go through its output, transposed or not (L = 784, 1000 with
    // small B; L = 520 with B = 256). Then k-blocks of at least 128 that are not a multiple
    // of four, whose last k the unrolled micro-kernels run one at a time: the gradient's
    // k = B = 130 and the forward's k = H = 131 on a layer wide enough to pack A, the
    // backward's last block of L = 387 with A packed (B = 112; H = 520 keeps eight panels
    // per thread when two threads split the columns) and read in place (B = 5, as (W Δᵀ)ᵀ).
    let past_k_block = [
        (300, 33, 17),
        (300, 37, 264),
        (7, 65, 784),
        (2, 9, 1000),
        (130, 131, 264),
        (112, 520, 387),
        (5, 264, 387),
        (256, 64, 520),
    ];
    let past_k_block = if small() {
        &past_k_block[..7]
    } else {
        &past_k_block[..]
    };
    for &(bsz, h, l) in past_k_block {
        for storage in STORAGES {
            let act = Activation::ELEMENTWISE[n % Activation::ELEMENTWISE.len()];
            n += 1;
            out.push((bsz, h, l, storage, act));
        }
    }
    out
}

fn ctx(ks: &KernelSet, t: &str, bsz: usize, h: usize, l: usize, s: Storage) -> String {
    format!(
        "{t} level {}, B = {bsz}, H = {h}, L = {l}, {s:?} storage",
        ks.level()
    )
}

/// Panics unless |got − want| ≤ tol element-wise (NaN only where the reference has NaN).
fn assert_close<T: Float>(ctx: &str, what: &str, cols: usize, got: &[T], want: &[T], tol: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else {
            (g.to_f64() - w.to_f64()).abs() <= t
        };
        assert!(
            ok,
            "{ctx}: {what}[{}, {}] = {g:e}, reference {w:e}: |difference| {:e} exceeds the \
             tolerance {t:e}{}",
            i / cols.max(1),
            i % cols.max(1),
            (g.to_f64() - w.to_f64()).abs(),
            if g.bits() == T::POISON.bits() {
                " (the poison value: never written)"
            } else {
                ""
            }
        );
    }
}

fn assert_bits_eq<T: Float>(ctx: &str, what: &str, got: &[T], want: &[T]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.bits() == w.bits(),
            "{ctx}: {what}[{i}] = {g:e} ({:#x}) but {w:e} ({:#x}) expected bit for bit",
            g.bits(),
            w.bits()
        );
    }
    assert_eq!(got.len(), want.len(), "{ctx}: {what} lengths");
}

// ----------------------------------------------------------------------------------------
// The comparisons

/// Upper bounds of |σ'| and |σ''| over the reals, for how an error in n moves a and d.
fn lipschitz(act: Activation) -> (f64, f64) {
    match act {
        Activation::Identity => (1.0, 0.0),
        Activation::Sigmoid => (0.25, 0.1),
        Activation::Tanh => (1.0, 0.77),
        Activation::Relu | Activation::LeakyRelu => (1.0, 0.0),
        Activation::Softplus => (1.0, 0.25),
        // GELU (tanh form): σ' ≤ 1.13, |σ''| ≤ 0.8.
        Activation::Gelu => (1.13, 0.8),
        Activation::Softmax => unreachable!(),
    }
}

fn forward_vs_reference<T: Float>() {
    for ks in kernel_sets() {
        for (bsz, h, l, storage, act) in cases() {
            let ctx = format!("{} {act}", ctx(&ks, T::NAME, bsz, h, l, storage));
            let mut rng = Rng::new((bsz * 1_000_003 + h * 1009 + l) as u64);
            let (wv, xv, bv) = (
                rng.values::<T>(h * l),
                rng.values::<T>(bsz * h),
                rng.values::<T>(l),
            );
            let w = Stored::input(storage, h, l, &wv, 0);
            let x = Stored::input(storage, bsz, h, &xv, 1);
            let mut a = Stored::<T>::output(storage, bsz, l, 2);
            let mut d = Stored::<T>::output(storage, bsz, l, 3);
            ks.batch_forward(act, w.as_ref(), &bv, x.as_ref(), a.as_mut(), d.as_mut())
                .unwrap();
            a.assert_guards(&format!("{ctx}: a"));
            d.assert_guards(&format!("{ctx}: d"));

            // The reference's n (Identity) and σ, σ'.
            let (mut n_ref, mut one) = (Matrix::zeros(bsz, l), Matrix::zeros(bsz, l));
            let (mut a_ref, mut d_ref) = (Matrix::zeros(bsz, l), Matrix::zeros(bsz, l));
            let (wr, xr) = (w.as_ref(), x.as_ref());
            reference::batch_forward(
                Activation::Identity,
                wr,
                &bv,
                xr,
                n_ref.as_mut(),
                one.as_mut(),
            )
            .unwrap();
            reference::batch_forward(act, wr, &bv, xr, a_ref.as_mut(), d_ref.as_mut()).unwrap();
            // n_ic = b_c + Σ_r x_ir W_rc: H + 1 terms. An error e in n moves a by at most
            // |σ'|·e and d by |σ''|·e; the vectorised σ, σ' add their own few ULP.
            let (lip1, lip2) = lipschitz(act);
            let (mut tol_a, mut tol_d) = (vec![0.0; bsz * l], vec![0.0; bsz * l]);
            let n_ref = n_ref.to_row_major();
            let (a_want, mut d_want) = (a_ref.to_row_major(), d_ref.to_row_major());
            let mut d_got = d.to_vec();
            for i in 0..bsz {
                for c in 0..l {
                    let mut s = bv[c].to_f64().abs();
                    for r in 0..h {
                        s += (xv[i * h + r].to_f64() * wv[r * l + c].to_f64()).abs();
                    }
                    let e = sum_tol::<T>(h + 1, s);
                    let k = i * l + c;
                    tol_a[k] = lip1 * e + T::ACT_REL * (a_want[k].to_f64().abs() + 1e-30);
                    tol_d[k] = lip2 * e + T::ACT_REL * (d_want[k].to_f64().abs() + 1.0);
                    // σ' of the ReLU family jumps at 0: only compare d away from it.
                    if matches!(act, Activation::Relu | Activation::LeakyRelu)
                        && n_ref[k].to_f64().abs() <= e
                    {
                        d_want[k] = T::ZERO;
                        d_got[k] = T::ZERO;
                    }
                }
            }
            assert_close(&ctx, "a", l, &a.to_vec(), &a_want, &tol_a);
            assert_close(&ctx, "d", l, &d_got, &d_want, &tol_d);
        }
    }
}

fn backward_vs_reference<T: Float>() {
    for ks in kernel_sets() {
        for (bsz, h, l, storage, _) in cases() {
            let ctx = ctx(&ks, T::NAME, bsz, h, l, storage);
            let mut rng = Rng::new((bsz * 1_000_033 + h * 1013 + l) as u64);
            let (wv, dv, dpv) = (
                rng.values::<T>(h * l),
                rng.values::<T>(bsz * l),
                rng.values::<T>(bsz * h),
            );
            let w = Stored::input(storage, h, l, &wv, 0);
            let delta = Stored::input(storage, bsz, l, &dv, 1);
            let d_prev = Stored::input(storage, bsz, h, &dpv, 2);
            let mut out = Stored::<T>::output(storage, bsz, h, 3);
            ks.batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), out.as_mut())
                .unwrap();
            out.assert_guards(&format!("{ctx}: delta_prev"));
            let mut want = Matrix::zeros(bsz, h);
            reference::batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), want.as_mut())
                .unwrap();
            // δ̂_ir = D̂_ir · Σ_c W_rc Δ_ic: L terms, then one product.
            let mut tol = vec![0.0; bsz * h];
            for i in 0..bsz {
                for r in 0..h {
                    let mut s = 0.0;
                    for c in 0..l {
                        s += (wv[r * l + c].to_f64() * dv[i * l + c].to_f64()).abs();
                    }
                    tol[i * h + r] = sum_tol::<T>(l, s) * dpv[i * h + r].to_f64().abs();
                }
            }
            assert_close(
                &ctx,
                "delta_prev",
                h,
                &out.to_vec(),
                &want.to_row_major(),
                &tol,
            );
        }
    }
}

/// The (scale, beta) pairs the gradient is tested with: the mean gradient, the folded SGD
/// step, and a general accumulate.
fn scale_beta<T: Float>(bsz: usize) -> [(T, T); 3] {
    let inv = T::from_f64(1.0 / bsz.max(1) as f64);
    [
        (inv, T::ZERO),
        (T::from_f64(-0.05) * inv, T::ONE),
        (T::from_f64(0.75), T::from_f64(-0.5)),
    ]
}

fn gradient_vs_reference<T: Float>() {
    for ks in kernel_sets() {
        for (n, (bsz, h, l, storage, _)) in cases().into_iter().enumerate() {
            let (scale, beta) = scale_beta::<T>(bsz)[n % 3];
            let ctx = format!(
                "{} scale {scale:e} beta {beta:e}",
                ctx(&ks, T::NAME, bsz, h, l, storage)
            );
            let mut rng = Rng::new((bsz * 1_000_037 + h * 1019 + l) as u64);
            let (xv, dv, gv, gbv) = (
                rng.values::<T>(bsz * h),
                rng.values::<T>(bsz * l),
                rng.values::<T>(h * l),
                rng.values::<T>(l),
            );
            let x = Stored::input(storage, bsz, h, &xv, 0);
            let delta = Stored::input(storage, bsz, l, &dv, 1);
            // β = 0: G and g_b are only written, so they start poisoned.
            let (g0, gb0) = if beta == T::ZERO {
                (vec![T::POISON; h * l], vec![T::POISON; l])
            } else {
                (gv.clone(), gbv.clone())
            };
            let mut g = Stored::inout(storage, h, l, &g0, 2);
            let mut gb = gb0.clone();
            ks.batch_gradient(x.as_ref(), delta.as_ref(), scale, beta, g.as_mut(), &mut gb)
                .unwrap();
            g.assert_guards(&format!("{ctx}: g"));
            let mut g_ref = Matrix::from_row_major(h, l, &g0).unwrap();
            let mut gb_ref = gb0.clone();
            reference::batch_gradient(
                x.as_ref(),
                delta.as_ref(),
                scale,
                beta,
                g_ref.as_mut(),
                &mut gb_ref,
            )
            .unwrap();
            // G_rc = β·G_rc + s·Σ_i x_ir Δ_ic: B + 1 terms; g_b likewise with x = 1.
            let (s_abs, b_abs) = (scale.to_f64().abs(), beta.to_f64().abs());
            let old = |v: &[T], k: usize| {
                if beta == T::ZERO {
                    0.0
                } else {
                    b_abs * v[k].to_f64().abs()
                }
            };
            let mut tol = vec![0.0; h * l];
            for r in 0..h {
                for c in 0..l {
                    let mut s = 0.0;
                    for i in 0..bsz {
                        s += (xv[i * h + r].to_f64() * dv[i * l + c].to_f64()).abs();
                    }
                    tol[r * l + c] = sum_tol::<T>(bsz + 1, s_abs * s + old(&gv, r * l + c));
                }
            }
            let tol_b: Vec<f64> = (0..l)
                .map(|c| {
                    let s: f64 = (0..bsz).map(|i| dv[i * l + c].to_f64().abs()).sum();
                    sum_tol::<T>(bsz + 1, s_abs * s + old(&gbv, c))
                })
                .collect();
            assert_close(&ctx, "g", l, &g.to_vec(), &g_ref.to_row_major(), &tol);
            assert_close(&ctx, "g_b", l, &gb, &gb_ref, &tol_b);
        }
    }
}

fn update_vs_reference<T: Float>() {
    for ks in kernel_sets() {
        for (bsz, h, l, storage, _) in cases() {
            let ctx = ctx(&ks, T::NAME, bsz, h, l, storage);
            let mut rng = Rng::new((bsz * 1_000_039 + h * 1021 + l) as u64);
            let (xv, dv, wv, bv) = (
                rng.values::<T>(bsz * h),
                rng.values::<T>(bsz * l),
                rng.values::<T>(h * l),
                rng.values::<T>(l),
            );
            let alpha = T::from_f64(0.3);
            let x = Stored::input(storage, bsz, h, &xv, 0);
            let delta = Stored::input(storage, bsz, l, &dv, 1);
            let mut w = Stored::inout(storage, h, l, &wv, 2);
            let mut b = bv.clone();
            ks.batch_update(w.as_mut(), &mut b, alpha, x.as_ref(), delta.as_ref())
                .unwrap();
            w.assert_guards(&format!("{ctx}: w"));
            let mut w_ref = Matrix::from_row_major(h, l, &wv).unwrap();
            let mut b_ref = bv.clone();
            reference::batch_update(
                w_ref.as_mut(),
                &mut b_ref,
                alpha,
                x.as_ref(),
                delta.as_ref(),
            )
            .unwrap();
            // W − (α/B)·Σ_i x_ir Δ_ic: B + 1 terms, plus the rounding of α/B.
            let s_abs = alpha.to_f64() / bsz as f64;
            let mut tol = vec![0.0; h * l];
            for r in 0..h {
                for c in 0..l {
                    let mut s = 0.0;
                    for i in 0..bsz {
                        s += (xv[i * h + r].to_f64() * dv[i * l + c].to_f64()).abs();
                    }
                    tol[r * l + c] =
                        sum_tol::<T>(bsz + 2, s_abs * s + wv[r * l + c].to_f64().abs());
                }
            }
            let tol_b: Vec<f64> = (0..l)
                .map(|c| {
                    let s: f64 = (0..bsz).map(|i| dv[i * l + c].to_f64().abs()).sum();
                    sum_tol::<T>(bsz + 2, s_abs * s + bv[c].to_f64().abs())
                })
                .collect();
            assert_close(&ctx, "w", l, &w.to_vec(), &w_ref.to_row_major(), &tol);
            assert_close(&ctx, "b", l, &b, &b_ref, &tol_b);
        }
    }
}

fn apply_gradient_vs_reference<T: Float>() {
    for ks in kernel_sets() {
        for &h in &sizes_and(784) {
            for &l in &sizes_and(256) {
                for storage in STORAGES {
                    let ctx = ctx(&ks, T::NAME, 0, h, l, storage);
                    let mut rng = Rng::new((h * 1031 + l) as u64);
                    let (wv, gv, bv, gbv) = (
                        rng.values::<T>(h * l),
                        rng.values::<T>(h * l),
                        rng.values::<T>(l),
                        rng.values::<T>(l),
                    );
                    let alpha = T::from_f64(0.3);
                    let mut w = Stored::inout(storage, h, l, &wv, 0);
                    let g = Stored::input(storage, h, l, &gv, 1);
                    let mut b = bv.clone();
                    ks.apply_gradient(w.as_mut(), &mut b, alpha, g.as_ref(), &gbv)
                        .unwrap();
                    w.assert_guards(&format!("{ctx}: w"));
                    let mut w_ref = Matrix::from_row_major(h, l, &wv).unwrap();
                    let mut b_ref = bv.clone();
                    reference::apply_gradient(w_ref.as_mut(), &mut b_ref, alpha, g.as_ref(), &gbv)
                        .unwrap();
                    // W − α·G: one FMA against a product and a difference.
                    let tol = |x: &[T], y: &[T]| -> Vec<f64> {
                        x.iter()
                            .zip(y)
                            .map(|(x, y)| {
                                sum_tol::<T>(1, x.to_f64().abs() + 0.3 * y.to_f64().abs())
                            })
                            .collect()
                    };
                    assert_close(
                        &ctx,
                        "w",
                        l,
                        &w.to_vec(),
                        &w_ref.to_row_major(),
                        &tol(&wv, &gv),
                    );
                    assert_close(&ctx, "b", l, &b, &b_ref, &tol(&bv, &gbv));
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// B = 1 takes the per-sample kernels

fn batch_of_one_is_per_sample<T: Float>() {
    for ks in kernel_sets() {
        for &h in &sizes_and(784) {
            for &l in &sizes_and(256) {
                let ctx = ctx(&ks, T::NAME, 1, h, l, Storage::View);
                let mut rng = Rng::new((h * 1033 + l) as u64);
                let (wv, xv, bv, dv, dpv) = (
                    rng.values::<T>(h * l),
                    rng.values::<T>(h),
                    rng.values::<T>(l),
                    rng.values::<T>(l),
                    rng.values::<T>(h),
                );
                let w = Stored::input(Storage::View, h, l, &wv, 0);
                for act in Activation::ELEMENTWISE {
                    let x = Stored::input(Storage::View, 1, h, &xv, 1);
                    let (mut a, mut d) = (
                        Stored::<T>::output(Storage::View, 1, l, 2),
                        Stored::<T>::output(Storage::View, 1, l, 3),
                    );
                    ks.batch_forward(act, w.as_ref(), &bv, x.as_ref(), a.as_mut(), d.as_mut())
                        .unwrap();
                    let (mut n1, mut a1, mut d1) =
                        (vec![T::ZERO; l], vec![T::ZERO; l], vec![T::ZERO; l]);
                    ks.affine(w.as_ref(), &xv, &bv, &mut n1).unwrap();
                    ks.activate(act, &n1, &mut a1, &mut d1).unwrap();
                    assert_bits_eq(&format!("{ctx} {act}"), "a", &a.to_vec(), &a1);
                    assert_bits_eq(&format!("{ctx} {act}"), "d", &d.to_vec(), &d1);
                }

                let delta = Stored::input(Storage::View, 1, l, &dv, 1);
                let d_prev = Stored::input(Storage::View, 1, h, &dpv, 2);
                let mut out = Stored::<T>::output(Storage::View, 1, h, 3);
                ks.batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), out.as_mut())
                    .unwrap();
                let mut dp1 = vec![T::ZERO; h];
                ks.backward(w.as_ref(), &dv, &dpv, &mut dp1).unwrap();
                assert_bits_eq(&ctx, "delta_prev", &out.to_vec(), &dp1);

                // batch_update with B = 1 is rank1_update with the same α (α/1 = α).
                let alpha = T::from_f64(0.3);
                let x = Stored::input(Storage::View, 1, h, &xv, 1);
                let mut w2 = Stored::inout(Storage::View, h, l, &wv, 4);
                let mut b2 = bv.clone();
                ks.batch_update(w2.as_mut(), &mut b2, alpha, x.as_ref(), delta.as_ref())
                    .unwrap();
                let mut w1 = Matrix::from_row_major(h, l, &wv).unwrap();
                ks.rank1_update(w1.as_mut(), alpha, &xv, &dv).unwrap();
                assert_bits_eq(
                    &ctx,
                    "w (batch_update vs rank1_update)",
                    &w2.to_vec(),
                    &w1.to_row_major(),
                );
                // b − α·δ (one FMA where the level has it): to rounding.
                let b1: Vec<T> = bv.iter().zip(&dv).map(|(&b, &d)| b - alpha * d).collect();
                let tol: Vec<f64> = bv
                    .iter()
                    .zip(&dv)
                    .map(|(b, d)| sum_tol::<T>(1, b.to_f64().abs() + 0.3 * d.to_f64().abs()))
                    .collect();
                assert_close(&ctx, "b", l, &b2, &b1, &tol);

                // batch_gradient with B = 1, β = 1 is rank1_update with α = −s.
                let s = T::from_f64(-0.125);
                let mut g = Stored::inout(Storage::View, h, l, &wv, 5);
                let mut gb = bv.clone();
                ks.batch_gradient(x.as_ref(), delta.as_ref(), s, T::ONE, g.as_mut(), &mut gb)
                    .unwrap();
                let mut g1 = Matrix::from_row_major(h, l, &wv).unwrap();
                ks.rank1_update(g1.as_mut(), -s, &xv, &dv).unwrap();
                assert_bits_eq(
                    &ctx,
                    "g (batch_gradient vs rank1_update)",
                    &g.to_vec(),
                    &g1.to_row_major(),
                );
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// Threads

/// Runs `f` on a fresh rayon pool of `n` threads.
#[cfg(feature = "rayon")]
fn on_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

/// Every kernel's output bits on `threads` threads, for one shape (big enough to be split).
#[cfg(feature = "rayon")]
fn all_outputs<T: Float>(
    ks: KernelSet,
    bsz: usize,
    h: usize,
    l: usize,
    threads: usize,
) -> Vec<u64> {
    on_threads(threads, || {
        let mut rng = Rng::new(7);
        let (wv, xv, bv, dv, dpv) = (
            rng.values::<T>(h * l),
            rng.values::<T>(bsz * h),
            rng.values::<T>(l),
            rng.values::<T>(bsz * l),
            rng.values::<T>(bsz * h),
        );
        let w = Matrix::from_row_major(h, l, &wv).unwrap();
        let x = Matrix::from_row_major(bsz, h, &xv).unwrap();
        let delta = Matrix::from_row_major(bsz, l, &dv).unwrap();
        let d_prev = Matrix::from_row_major(bsz, h, &dpv).unwrap();
        let (mut a, mut d) = (Matrix::zeros(bsz, l), Matrix::zeros(bsz, l));
        ks.batch_forward(
            Activation::Tanh,
            w.as_ref(),
            &bv,
            x.as_ref(),
            a.as_mut(),
            d.as_mut(),
        )
        .unwrap();
        let mut dp = Matrix::zeros(bsz, h);
        ks.batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), dp.as_mut())
            .unwrap();
        let (mut g, mut gb) = (Matrix::zeros(h, l), vec![T::ZERO; l]);
        ks.batch_gradient(
            x.as_ref(),
            delta.as_ref(),
            T::from_f64(0.01),
            T::ZERO,
            g.as_mut(),
            &mut gb,
        )
        .unwrap();
        let (mut w2, mut b2) = (w.clone(), bv.clone());
        ks.batch_update(
            w2.as_mut(),
            &mut b2,
            T::from_f64(0.1),
            x.as_ref(),
            delta.as_ref(),
        )
        .unwrap();
        let (mut w3, mut b3) = (w.clone(), bv.clone());
        ks.apply_gradient(w3.as_mut(), &mut b3, T::from_f64(0.1), g.as_ref(), &gb)
            .unwrap();
        let mut out = Vec::new();
        for m in [&a, &d, &dp, &g, &w2, &w3] {
            out.extend(bits(&m.to_row_major()));
        }
        for v in [&gb, &b2, &b3] {
            out.extend(bits(v));
        }
        out
    })
}

/// Shapes above `PAR_MIN_FLOPS` that split by columns, by rows (few columns), and both; with
/// L = 40 a split leaves a block of 8 columns, which runs one-vector tiles where one thread
/// runs two-vector tiles over all 40; with B = 64 one thread runs the short tiles of 8 rows
/// where a split leaves blocks of tall tiles; one shape below the threshold; and a backward
/// product whose last k-block (131 of L = 387) one thread runs with A packed (one block of
/// 17 panels) and two threads with A in place (blocks of two panels).
#[cfg(feature = "rayon")]
const THREAD_SHAPES: [(usize, usize, usize); 7] = [
    (256, 784, 256),
    (256, 1024, 10),
    (33, 1000, 129),
    (256, 512, 40),
    (64, 2048, 20),
    (256, 64, 32),
    (112, 520, 387),
];

#[cfg(feature = "rayon")]
fn same_bits_on_any_thread_count<T: Float>() {
    const { assert!(2 * 256 * 784 * 256 >= kernels::PAR_MIN_FLOPS) };
    // A 64-32-10 network's GEMMs stay on one thread up to B = 256 (it must never get slower
    // with more threads).
    const { assert!(2 * 256 * 64 * 32 < kernels::PAR_MIN_FLOPS) };
    for ks in kernel_sets() {
        // A reduced run keeps the one shape that splits into blocks of both tile widths.
        let shapes = if small() {
            &THREAD_SHAPES[2..3]
        } else {
            &THREAD_SHAPES[..]
        };
        for &(bsz, h, l) in shapes {
            let one = all_outputs::<T>(ks, bsz, h, l, 1);
            for threads in [2, 3, 2] {
                let many = all_outputs::<T>(ks, bsz, h, l, threads);
                let first_diff = one.iter().zip(&many).position(|(x, y)| x != y);
                assert!(
                    first_diff.is_none() && one.len() == many.len(),
                    "{} level {}, B = {bsz}, H = {h}, L = {l}: {threads} threads differ from \
                     one at output element {first_diff:?}",
                    T::NAME,
                    ks.level()
                );
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// Bad input and zero sizes

/// Panics unless `result` is an error and every output kept its bits (`before`, `after`).
fn assert_rejects(what: &str, result: Result<(), Error>, before: &[Vec<u64>], after: &[Vec<u64>]) {
    let e = result.expect_err(what);
    assert!(!e.to_string().is_empty());
    assert_eq!(
        before, after,
        "{what}: an output changed although the call failed ({e})"
    );
}

fn bad_shapes_are_errors<T: Float>() {
    let (bsz, h, l) = (5, 7, 3);
    let mut rng = Rng::new(11);
    let s = Storage::View;
    let w = Stored::input(s, h, l, &rng.values::<T>(h * l), 0);
    let wrong_w = Stored::input(s, h + 1, l, &rng.values::<T>((h + 1) * l), 0);
    let x = Stored::input(s, bsz, h, &rng.values::<T>(bsz * h), 1);
    let x_short = Stored::input(s, bsz, h - 1, &rng.values::<T>(bsz * (h - 1)), 1);
    let delta = Stored::input(s, bsz, l, &rng.values::<T>(bsz * l), 2);
    let delta_rows = Stored::input(s, bsz + 1, l, &rng.values::<T>((bsz + 1) * l), 2);
    let delta_cols = Stored::input(s, bsz, l + 1, &rng.values::<T>(bsz * (l + 1)), 2);
    let d_prev = Stored::input(s, bsz, h, &rng.values::<T>(bsz * h), 3);
    let b = rng.values::<T>(l);
    let b_long = rng.values::<T>(l + 1);
    for ks in kernel_sets() {
        // forward: b, a_prev columns, a rows/columns, d rows/columns, Softmax.
        let fwd = |act: Activation,
                   w: &Stored<T>,
                   b: &[T],
                   x: &Stored<T>,
                   ar: usize,
                   ac: usize,
                   dr: usize,
                   dc: usize,
                   name: &str| {
            let mut a = Stored::<T>::output(s, ar, ac, 2);
            let mut d = Stored::<T>::output(s, dr, dc, 3);
            let before = [a.all_bits(), d.all_bits()];
            let r = ks.batch_forward(act, w.as_ref(), b, x.as_ref(), a.as_mut(), d.as_mut());
            assert_rejects(name, r, &before, &[a.all_bits(), d.all_bits()]);
        };
        let id = Activation::Identity;
        fwd(id, &w, &b_long, &x, bsz, l, bsz, l, "forward: b too long");
        fwd(
            id,
            &wrong_w,
            &b,
            &x,
            bsz,
            l,
            bsz,
            l,
            "forward: w has H + 1 rows",
        );
        fwd(
            id,
            &w,
            &b,
            &x_short,
            bsz,
            l,
            bsz,
            l,
            "forward: a_prev has H − 1 columns",
        );
        fwd(
            id,
            &w,
            &b,
            &x,
            bsz + 1,
            l,
            bsz,
            l,
            "forward: a has B + 1 rows",
        );
        fwd(
            id,
            &w,
            &b,
            &x,
            bsz,
            l + 1,
            bsz,
            l,
            "forward: a has L + 1 columns",
        );
        fwd(
            id,
            &w,
            &b,
            &x,
            bsz,
            l,
            bsz - 1,
            l,
            "forward: d has B − 1 rows",
        );
        fwd(
            id,
            &w,
            &b,
            &x,
            bsz,
            l,
            bsz,
            l - 1,
            "forward: d has L − 1 columns",
        );
        fwd(
            Activation::Softmax,
            &w,
            &b,
            &x,
            bsz,
            l,
            bsz,
            l,
            "forward: Softmax",
        );
        {
            let mut a = Stored::<T>::output(s, bsz, l, 2);
            let mut d = Stored::<T>::output(s, bsz, l, 3);
            let e = ks
                .batch_forward(id, w.as_ref(), &b, x_short.as_ref(), a.as_mut(), d.as_mut())
                .unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::DimensionMismatch {
                        arg: "a_prev (columns)",
                        expected: 7,
                        found: 6,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("a_prev"), "{e}");
        }

        // backward: delta columns, d_prev rows/columns, delta_prev rows/columns.
        let bwd = |delta: &Stored<T>, d_prev: &Stored<T>, or: usize, oc: usize, name: &str| {
            let mut out = Stored::<T>::output(s, or, oc, 4);
            let before = [out.all_bits()];
            let r = ks.batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), out.as_mut());
            assert_rejects(name, r, &before, &[out.all_bits()]);
        };
        bwd(
            &delta_cols,
            &d_prev,
            bsz,
            h,
            "backward: delta has L + 1 columns",
        );
        bwd(
            &delta_rows,
            &d_prev,
            bsz,
            h,
            "backward: d_prev has B rows, delta B + 1",
        );
        bwd(
            &delta,
            &x_short,
            bsz,
            h,
            "backward: d_prev has H − 1 columns",
        );
        bwd(
            &delta,
            &d_prev,
            bsz + 1,
            h,
            "backward: delta_prev has B + 1 rows",
        );
        bwd(
            &delta,
            &d_prev,
            bsz,
            h + 1,
            "backward: delta_prev has H + 1 columns",
        );

        // gradient: delta rows, g rows/columns, g_b, non-finite scale and beta.
        let grad = |x: &Stored<T>,
                    delta: &Stored<T>,
                    s_: T,
                    b_: T,
                    gr: usize,
                    gc: usize,
                    gbl: usize,
                    name: &str| {
            let mut g = Stored::<T>::output(s, gr, gc, 5);
            let mut gb = vec![T::POISON; gbl];
            let before = [g.all_bits(), bits(&gb)];
            let r = ks.batch_gradient(x.as_ref(), delta.as_ref(), s_, b_, g.as_mut(), &mut gb);
            assert_rejects(name, r, &before, &[g.all_bits(), bits(&gb)]);
        };
        let (one, zero) = (T::ONE, T::ZERO);
        let nan = T::from_f64(f64::NAN);
        let inf = T::from_f64(f64::INFINITY);
        grad(
            &x,
            &delta_rows,
            one,
            zero,
            h,
            l,
            l,
            "gradient: delta has B + 1 rows",
        );
        grad(
            &x,
            &delta,
            one,
            zero,
            h + 1,
            l,
            l,
            "gradient: g has H + 1 rows",
        );
        grad(
            &x,
            &delta,
            one,
            zero,
            h,
            l - 1,
            l,
            "gradient: g has L − 1 columns",
        );
        grad(
            &x,
            &delta,
            one,
            zero,
            h,
            l,
            l + 1,
            "gradient: g_b has L + 1 elements",
        );
        grad(&x, &delta, nan, zero, h, l, l, "gradient: NaN scale");
        grad(&x, &delta, one, inf, h, l, l, "gradient: infinite beta");
        {
            let mut g = Stored::<T>::output(s, h, l, 5);
            let mut gb = vec![T::ZERO; l];
            let e = ks
                .batch_gradient(x.as_ref(), delta.as_ref(), one, nan, g.as_mut(), &mut gb)
                .unwrap_err();
            assert_eq!(e, Error::NonFinite { arg: "beta" });
        }

        // update: b, a_prev columns, delta rows/columns, alpha.
        let upd =
            |w_rows: usize, bl: usize, alpha: T, x: &Stored<T>, delta: &Stored<T>, name: &str| {
                let mut wm = Stored::inout(s, w_rows, l, &vec![T::ONE; w_rows * l], 6);
                let mut bb = vec![T::ONE; bl];
                let before = [wm.all_bits(), bits(&bb)];
                let r = ks.batch_update(wm.as_mut(), &mut bb, alpha, x.as_ref(), delta.as_ref());
                assert_rejects(name, r, &before, &[wm.all_bits(), bits(&bb)]);
            };
        let a = T::from_f64(0.1);
        upd(h, l + 1, a, &x, &delta, "update: b has L + 1 elements");
        upd(h + 1, l, a, &x, &delta, "update: w has H + 1 rows");
        upd(h, l, a, &x, &delta_rows, "update: delta has B + 1 rows");
        upd(h, l, a, &x, &delta_cols, "update: delta has L + 1 columns");
        upd(h, l, inf, &x, &delta, "update: infinite alpha");
        upd(h, l, nan, &x, &delta, "update: NaN alpha");

        // apply_gradient: b, g rows/columns, g_b, alpha.
        let apply = |gr: usize, gc: usize, bl: usize, gbl: usize, alpha: T, name: &str| {
            let mut wm = Stored::inout(s, h, l, &vec![T::ONE; h * l], 6);
            let g = Stored::input(s, gr, gc, &vec![T::ONE; gr * gc], 7);
            let mut bb = vec![T::ONE; bl];
            let before = [wm.all_bits(), bits(&bb)];
            let r = ks.apply_gradient(wm.as_mut(), &mut bb, alpha, g.as_ref(), &vec![T::ONE; gbl]);
            assert_rejects(name, r, &before, &[wm.all_bits(), bits(&bb)]);
        };
        apply(h, l, l + 1, l, a, "apply: b has L + 1 elements");
        apply(h + 1, l, l, l, a, "apply: g has H + 1 rows");
        apply(h, l + 1, l, l, a, "apply: g has L + 1 columns");
        apply(h, l, l, l - 1, a, "apply: g_b has L − 1 elements");
        apply(h, l, l, l, nan, "apply: NaN alpha");
    }
}

/// Zero-sized B, H or L: valid calls that agree with the reference (B = 0 writes nothing
/// but the gradient's β scaling; H = 0 gives σ(b); L = 0 gives Δ̂ = 0 ⊙ D̂).
fn zero_sizes_agree_with_reference<T: Float>() {
    for ks in kernel_sets() {
        for (bsz, h, l) in [
            (0, 5, 3),
            (4, 0, 3),
            (4, 5, 0),
            (0, 0, 0),
            (1, 0, 3),
            (1, 5, 0),
            (0, 17, 33),
        ] {
            let ctx = ctx(&ks, T::NAME, bsz, h, l, Storage::Matrix);
            let mut rng = Rng::new(13);
            let (wv, xv, bv, dv, dpv) = (
                rng.values::<T>(h * l),
                rng.values::<T>(bsz * h),
                rng.values::<T>(l),
                rng.values::<T>(bsz * l),
                rng.values::<T>(bsz * h),
            );
            let w = Matrix::from_row_major(h, l, &wv).unwrap();
            let x = Matrix::from_row_major(bsz, h, &xv).unwrap();
            let delta = Matrix::from_row_major(bsz, l, &dv).unwrap();
            let d_prev = Matrix::from_row_major(bsz, h, &dpv).unwrap();

            let (mut a, mut d) = (Matrix::zeros(bsz, l), Matrix::zeros(bsz, l));
            let (mut ar, mut dr) = (Matrix::zeros(bsz, l), Matrix::zeros(bsz, l));
            ks.batch_forward(
                Activation::Sigmoid,
                w.as_ref(),
                &bv,
                x.as_ref(),
                a.as_mut(),
                d.as_mut(),
            )
            .unwrap();
            reference::batch_forward(
                Activation::Sigmoid,
                w.as_ref(),
                &bv,
                x.as_ref(),
                ar.as_mut(),
                dr.as_mut(),
            )
            .unwrap();
            let tol = |v: &Matrix<T>| vec![1e-6; v.rows() * v.cols()];
            assert_close(
                &ctx,
                "a",
                l,
                &a.to_row_major(),
                &ar.to_row_major(),
                &tol(&a),
            );
            assert_close(
                &ctx,
                "d",
                l,
                &d.to_row_major(),
                &dr.to_row_major(),
                &tol(&d),
            );

            let (mut o, mut or) = (Matrix::zeros(bsz, h), Matrix::zeros(bsz, h));
            ks.batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), o.as_mut())
                .unwrap();
            reference::batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), or.as_mut())
                .unwrap();
            assert_bits_eq(&ctx, "delta_prev", &o.to_row_major(), &or.to_row_major());

            let gv = rng.values::<T>(h * l);
            let gbv = rng.values::<T>(l);
            let (s, beta) = (T::from_f64(0.5), T::from_f64(-2.0));
            let (mut g, mut gb) = (Matrix::from_row_major(h, l, &gv).unwrap(), gbv.clone());
            let (mut gr, mut gbr) = (Matrix::from_row_major(h, l, &gv).unwrap(), gbv.clone());
            ks.batch_gradient(x.as_ref(), delta.as_ref(), s, beta, g.as_mut(), &mut gb)
                .unwrap();
            reference::batch_gradient(x.as_ref(), delta.as_ref(), s, beta, gr.as_mut(), &mut gbr)
                .unwrap();
            // β·G + s·Σ_i x_ir Δ_ic: B + 1 terms (G is H × L, so empty when H or L is 0).
            let tg: Vec<f64> = (0..h * l)
                .map(|k| {
                    let (r, c) = (k / l, k % l);
                    let s_abs: f64 = (0..bsz)
                        .map(|i| (xv[i * h + r] * dv[i * l + c]).to_f64().abs())
                        .sum();
                    sum_tol::<T>(bsz + 1, 2.0 * gv[k].to_f64().abs() + 0.5 * s_abs)
                })
                .collect();
            let tb: Vec<f64> = (0..l)
                .map(|c| {
                    let s_abs: f64 = (0..bsz).map(|i| dv[i * l + c].to_f64().abs()).sum();
                    sum_tol::<T>(bsz + 1, 2.0 * gbv[c].to_f64().abs() + 0.5 * s_abs)
                })
                .collect();
            assert_close(&ctx, "g", l, &g.to_row_major(), &gr.to_row_major(), &tg);
            assert_close(&ctx, "g_b", l, &gb, &gbr, &tb);

            if bsz == 0 {
                let (mut w2, mut b2) = (w.clone(), bv.clone());
                ks.batch_update(w2.as_mut(), &mut b2, T::ONE, x.as_ref(), delta.as_ref())
                    .unwrap();
                assert_bits_eq(&ctx, "w after an empty batch", &w2.to_row_major(), &wv);
                assert_bits_eq(&ctx, "b after an empty batch", &b2, &bv);
            }
        }
    }
}

/// The free functions run on the active level and give that level's bits.
fn free_functions_use_the_active_level<T: Float>() {
    let ks = KernelSet::active();
    let (bsz, h, l) = (9, 33, 17);
    let mut rng = Rng::new(17);
    let w = Matrix::from_row_major(h, l, &rng.values::<T>(h * l)).unwrap();
    let x = Matrix::from_row_major(bsz, h, &rng.values::<T>(bsz * h)).unwrap();
    let delta = Matrix::from_row_major(bsz, l, &rng.values::<T>(bsz * l)).unwrap();
    let b = rng.values::<T>(l);
    let (mut a1, mut d1, mut a2, mut d2) = (
        Matrix::zeros(bsz, l),
        Matrix::zeros(bsz, l),
        Matrix::zeros(bsz, l),
        Matrix::zeros(bsz, l),
    );
    kernels::batch_forward(
        Activation::Gelu,
        w.as_ref(),
        &b,
        x.as_ref(),
        a1.as_mut(),
        d1.as_mut(),
    )
    .unwrap();
    ks.batch_forward(
        Activation::Gelu,
        w.as_ref(),
        &b,
        x.as_ref(),
        a2.as_mut(),
        d2.as_mut(),
    )
    .unwrap();
    assert_bits_eq(
        "free batch_forward",
        "a",
        &a1.to_row_major(),
        &a2.to_row_major(),
    );
    assert_bits_eq(
        "free batch_forward",
        "d",
        &d1.to_row_major(),
        &d2.to_row_major(),
    );
    let (mut o1, mut o2) = (Matrix::zeros(bsz, h), Matrix::zeros(bsz, h));
    kernels::batch_backward(w.as_ref(), delta.as_ref(), x.as_ref(), o1.as_mut()).unwrap();
    ks.batch_backward(w.as_ref(), delta.as_ref(), x.as_ref(), o2.as_mut())
        .unwrap();
    assert_bits_eq(
        "free batch_backward",
        "delta_prev",
        &o1.to_row_major(),
        &o2.to_row_major(),
    );
    let (mut g1, mut g2) = (Matrix::zeros(h, l), Matrix::zeros(h, l));
    let (mut gb1, mut gb2) = (vec![T::ZERO; l], vec![T::ZERO; l]);
    let s = T::from_f64(0.25);
    kernels::batch_gradient(
        x.as_ref(),
        delta.as_ref(),
        s,
        T::ZERO,
        g1.as_mut(),
        &mut gb1,
    )
    .unwrap();
    ks.batch_gradient(
        x.as_ref(),
        delta.as_ref(),
        s,
        T::ZERO,
        g2.as_mut(),
        &mut gb2,
    )
    .unwrap();
    assert_bits_eq(
        "free batch_gradient",
        "g",
        &g1.to_row_major(),
        &g2.to_row_major(),
    );
    let (mut w1, mut b1, mut w2, mut b2) = (w.clone(), b.clone(), w.clone(), b.clone());
    kernels::batch_update(w1.as_mut(), &mut b1, s, x.as_ref(), delta.as_ref()).unwrap();
    ks.batch_update(w2.as_mut(), &mut b2, s, x.as_ref(), delta.as_ref())
        .unwrap();
    assert_bits_eq(
        "free batch_update",
        "w",
        &w1.to_row_major(),
        &w2.to_row_major(),
    );
    kernels::apply_gradient(w1.as_mut(), &mut b1, s, g1.as_ref(), &gb1).unwrap();
    ks.apply_gradient(w2.as_mut(), &mut b2, s, g2.as_ref(), &gb2)
        .unwrap();
    assert_bits_eq(
        "free apply_gradient",
        "w",
        &w1.to_row_major(),
        &w2.to_row_major(),
    );
    assert_bits_eq("free apply_gradient", "b", &b1, &b2);
}

macro_rules! batch_tests {
    ($m:ident, $t:ty) => {
        mod $m {
            #[test]
            fn forward_matches_reference() {
                super::forward_vs_reference::<$t>();
            }
            #[test]
            fn backward_matches_reference() {
                super::backward_vs_reference::<$t>();
            }
            #[test]
            fn gradient_matches_reference() {
                super::gradient_vs_reference::<$t>();
            }
            #[test]
            fn update_matches_reference() {
                super::update_vs_reference::<$t>();
            }
            #[test]
            fn apply_gradient_matches_reference() {
                super::apply_gradient_vs_reference::<$t>();
            }
            #[test]
            fn batch_of_one_is_per_sample_bit_for_bit() {
                super::batch_of_one_is_per_sample::<$t>();
            }
            #[cfg(feature = "rayon")]
            #[test]
            fn same_bits_on_any_thread_count() {
                super::same_bits_on_any_thread_count::<$t>();
            }
            #[test]
            fn bad_shapes_are_errors_and_write_nothing() {
                super::bad_shapes_are_errors::<$t>();
            }
            #[test]
            fn zero_sizes_agree_with_reference() {
                super::zero_sizes_agree_with_reference::<$t>();
            }
            #[test]
            fn free_functions_use_the_active_level() {
                super::free_functions_use_the_active_level::<$t>();
            }
        }
    };
}

batch_tests!(f32_batch, f32);
batch_tests!(f64_batch, f64);
