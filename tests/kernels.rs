//! The per-sample kernels against their naive twins in `deltaprop::reference`, for f32 and
//! f64, on every SIMD level this CPU has (`simd::available()`, through `KernelSet::new`), and
//! once through the free functions (which run on `simd::active()`).
//!
//! What every comparison also checks:
//! - Shapes: every pair (H, L) of `common::SIZES` (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33,
//!   63, 64, 65, 127, 129, 255, 257) and the big layers 784×256 and 1024×1024; with
//!   `DELTAPROP_TEST_SMALL=1` (for valgrind) the pairs of `common::SMALL_SIZES` only.
//! - Storage: W in a `Matrix` (aligned, padded rows) and in a strided view over a caller's
//!   `Vec` that starts 1 or 3 elements past a 64-byte boundary. Everything around the view
//!   (before it, the gaps between rows, after it) holds a guard value that must keep its bits.
//! - Vectors: every input and output vector sits between guard zones (a kernel reading past an
//!   input picks up NaN; one writing past an output changes a guard). Outputs start as NaN, so
//!   a kernel that reads what it should only write leaves NaN in its result. The guard values
//!   are described in `common`.
//!
//! Tolerances are derived from the operations in the comments next to them; `backward_update`
//! is held to bit-for-bit equality with `rank1_update` and `backward` on the same level.
//!
//! CI runs this file once per level, e.g. `DELTAPROP_SIMD=avx2 cargo test --release --test
//! kernels -- --nocapture`, and greps the line `deltaprop simd level: avx2` that
//! `simd_env_level_is_active` prints.

mod common;

use std::fmt;

use common::{
    Float, Guarded, Rng, STORAGES, Storage, Stored, assert_bits_eq, eps, guarded_output,
    kernel_sets, shapes, size_pairs, tiny,
};
use deltaprop::kernels::{self, KernelSet};
use deltaprop::simd::{self, Level};
use deltaprop::{Activation, Error, MatMut, MatRef, Matrix, ROW_ALIGN, reference};

// ----------------------------------------------------------------------------------------
// Tolerances of the linear kernels

/// Allowed |kernel − reference| for a value both compute from `k` roundings, each of at most
/// half an ULP of a partial result bounded by `sum_abs` = Σ|terms|.
///
/// Any summation order of a k-term dot product errs by at most γ_k·Σ|terms|, with
/// γ_k = k·u/(1 − k·u) and u = eps/2 (Higham, *Accuracy and Stability of Numerical
/// Algorithms*, §3.1); a fused multiply-add only removes roundings. Kernel and reference each
/// meet it, so they differ by at most 2·γ_k·Σ ≈ k·eps·Σ. We assert 2·(k + 2)·eps·Σ: about
/// twice that worst case, which also covers Σ itself being summed in f64. Correct code stays
/// far inside it (random rounding errors grow like √k, not k), while a wrong, lost or
/// repeated term is an error of the size of a whole term. The floor T::MIN_POSITIVE only
/// matters when every term is 0 (the data stays far above the subnormal range).
fn sum_tolerance<T: Float>(k: usize, sum_abs: f64) -> f64 {
    2.0 * (k as f64 + 2.0) * eps::<T>() * sum_abs + T::MIN_POSITIVE.to_f64()
}

/// Panics unless `got` is within `tol` of `want` (both finite).
fn assert_close<T: Float>(ctx: &str, what: &str, i: usize, got: T, want: T, tol: f64) {
    let err = (got.to_f64() - want.to_f64()).abs();
    assert!(
        err <= tol,
        "{ctx}: {what}[{i}] = {got:e}, reference {want:e}: |difference| {err:e} exceeds the \
         tolerance {tol:e}{}",
        if got.bits() == T::POISON.bits() {
            " (still the NaN poison: never written)"
        } else {
            ""
        }
    );
}

/// The inputs of one H × L case, drawn from a generator seeded by the tag and shape.
struct Case<T: Float> {
    h: usize,
    l: usize,
    /// W, row-major.
    w: Vec<T>,
    a_prev: Vec<T>,
    b: Vec<T>,
    delta: Vec<T>,
    d_prev: Vec<T>,
    alpha: T,
}

impl<T: Float> Case<T> {
    fn new(tag: &str, h: usize, l: usize) -> Self {
        let mut rng = Rng::for_case::<T>(tag, &[h, l]);
        Case {
            h,
            l,
            w: rng.values(h * l),
            a_prev: rng.values(h),
            b: rng.values(l),
            delta: rng.values(l),
            d_prev: rng.values(h),
            alpha: rng.value(),
        }
    }

    /// W in a plain Matrix, for the reference.
    fn matrix(&self) -> Matrix<T> {
        Matrix::from_row_major(self.h, self.l, &self.w).unwrap()
    }

    fn ctx(&self, kernel: &str, level: Level, w: &Stored<T>) -> String {
        format!(
            "{} {kernel} on {level}, H×L = {}×{}, {}",
            T::NAME,
            self.h,
            self.l,
            w.describe()
        )
    }
}

// ----------------------------------------------------------------------------------------
// Each kernel against the reference

/// n = Wᵀ â + b. n_c sums H + 1 terms, Σ|terms| = |b_c| + Σ_r |W_rc â_r|.
fn affine_matches_reference<T: Float>(storage: Storage) {
    for (h, l) in shapes() {
        let case = Case::<T>::new("affine", h, l);
        let mut want = vec![T::POISON; l];
        reference::affine(case.matrix().as_ref(), &case.a_prev, &case.b, &mut want).unwrap();
        let mut sum_abs: Vec<f64> = case.b.iter().map(|b| b.to_f64().abs()).collect();
        for (row, a) in case.w.chunks_exact(l.max(1)).zip(&case.a_prev) {
            for (s, w) in sum_abs.iter_mut().zip(row) {
                *s += (w.to_f64() * a.to_f64()).abs();
            }
        }

        for ks in kernel_sets() {
            let w = Stored::new(storage, h, l, &case.w);
            let ctx = case.ctx("affine", ks.level(), &w);
            let (a_prev, b) = (Guarded::input(&case.a_prev), Guarded::input(&case.b));
            let mut n = Guarded::output(l);
            ks.affine(w.as_ref(), a_prev.slice(), b.slice(), n.slice_mut())
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));

            w.assert_unchanged(&format!("{ctx}, W"));
            a_prev.assert_unchanged(&format!("{ctx}, a_prev"));
            b.assert_unchanged(&format!("{ctx}, b"));
            n.assert_guards_intact(&format!("{ctx}, n"));
            for c in 0..l {
                let tol = sum_tolerance::<T>(h + 1, sum_abs[c]);
                assert_close(&ctx, "n", c, n.slice()[c], want[c], tol);
            }
        }
    }
}

/// W ← W − α â δᵀ. Each element is W_rc − (α â_r) δ_c: three roundings in the reference
/// (α â_r, the product with δ_c, the difference), two with an FMA; Σ|terms| =
/// |W_rc| + |α â_r δ_c|, so k = 3.
fn rank1_update_matches_reference<T: Float>(storage: Storage) {
    for (h, l) in shapes() {
        let case = Case::<T>::new("rank1_update", h, l);
        let mut want = case.matrix();
        reference::rank1_update(want.as_mut(), case.alpha, &case.a_prev, &case.delta).unwrap();
        let want = want.to_row_major();

        for ks in kernel_sets() {
            let mut w = Stored::new(storage, h, l, &case.w);
            let ctx = case.ctx("rank1_update", ks.level(), &w);
            let (a_prev, delta) = (Guarded::input(&case.a_prev), Guarded::input(&case.delta));
            ks.rank1_update(w.as_mut(), case.alpha, a_prev.slice(), delta.slice())
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));

            w.assert_guards_intact(&format!("{ctx}, W"));
            a_prev.assert_unchanged(&format!("{ctx}, a_prev"));
            delta.assert_unchanged(&format!("{ctx}, delta"));
            let got = w.to_row_major();
            for i in 0..h * l {
                let (r, c) = (i / l, i % l);
                let step = case.alpha.to_f64() * case.a_prev[r].to_f64() * case.delta[c].to_f64();
                let tol = sum_tolerance::<T>(3, case.w[i].to_f64().abs() + step.abs());
                assert_close(&ctx, "W (row-major)", i, got[i], want[i], tol);
            }
        }
    }
}

/// δ̂ = Â W δ. δ̂_r = σ̂'_r · Σ_c W_rc δ_c: an L-term dot product and one more rounding,
/// k = L + 1, with Σ|terms| = |σ̂'_r| · Σ_c |W_rc δ_c|.
fn backward_matches_reference<T: Float>(storage: Storage) {
    for (h, l) in shapes() {
        let case = Case::<T>::new("backward", h, l);
        let mut want = vec![T::POISON; h];
        reference::backward(case.matrix().as_ref(), &case.delta, &case.d_prev, &mut want).unwrap();
        let sum_abs: Vec<f64> = (0..h)
            .map(|r| {
                let row = &case.w[r * l..(r + 1) * l];
                let dot: f64 = row
                    .iter()
                    .zip(&case.delta)
                    .map(|(w, d)| (w.to_f64() * d.to_f64()).abs())
                    .sum();
                case.d_prev[r].to_f64().abs() * dot
            })
            .collect();

        for ks in kernel_sets() {
            let w = Stored::new(storage, h, l, &case.w);
            let ctx = case.ctx("backward", ks.level(), &w);
            let (delta, d_prev) = (Guarded::input(&case.delta), Guarded::input(&case.d_prev));
            let mut delta_prev = Guarded::output(h);
            ks.backward(
                w.as_ref(),
                delta.slice(),
                d_prev.slice(),
                delta_prev.slice_mut(),
            )
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));

            w.assert_unchanged(&format!("{ctx}, W"));
            delta.assert_unchanged(&format!("{ctx}, delta"));
            d_prev.assert_unchanged(&format!("{ctx}, d_prev"));
            delta_prev.assert_guards_intact(&format!("{ctx}, delta_prev"));
            for r in 0..h {
                let tol = sum_tolerance::<T>(l + 1, sum_abs[r]);
                assert_close(&ctx, "delta_prev", r, delta_prev.slice()[r], want[r], tol);
            }
        }
    }
}

/// `backward_update` is `backward` on the old W and `rank1_update`, fused: on the same level
/// it must give the same bits as the two separate kernels, for W and for δ̂.
fn backward_update_equals_rank1_update_and_backward<T: Float>(storage: Storage) {
    for (h, l) in shapes() {
        let case = Case::<T>::new("backward_update", h, l);
        for ks in kernel_sets() {
            let mut w_rank1 = Stored::new(storage, h, l, &case.w);
            ks.rank1_update(w_rank1.as_mut(), case.alpha, &case.a_prev, &case.delta)
                .unwrap();
            w_rank1.assert_guards_intact("rank1_update");
            let w_old = Stored::new(storage, h, l, &case.w);
            let want_delta_prev = guarded_output("backward", h, |out| {
                ks.backward(w_old.as_ref(), &case.delta, &case.d_prev, out)
                    .unwrap()
            });

            let mut w = Stored::new(storage, h, l, &case.w);
            let ctx = case.ctx("backward_update", ks.level(), &w);
            let (a_prev, delta) = (Guarded::input(&case.a_prev), Guarded::input(&case.delta));
            let d_prev = Guarded::input(&case.d_prev);
            let mut delta_prev = Guarded::output(h);
            ks.backward_update(
                w.as_mut(),
                case.alpha,
                a_prev.slice(),
                delta.slice(),
                d_prev.slice(),
                delta_prev.slice_mut(),
            )
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));

            w.assert_guards_intact(&format!("{ctx}, W"));
            a_prev.assert_unchanged(&format!("{ctx}, a_prev"));
            delta.assert_unchanged(&format!("{ctx}, delta"));
            d_prev.assert_unchanged(&format!("{ctx}, d_prev"));
            delta_prev.assert_guards_intact(&format!("{ctx}, delta_prev"));
            assert_bits_eq(
                &format!("{ctx}: W (row-major) vs rank1_update"),
                &w.to_row_major(),
                &w_rank1.to_row_major(),
            );
            assert_bits_eq(
                &format!("{ctx}: delta_prev vs backward"),
                delta_prev.slice(),
                &want_delta_prev,
            );
        }
    }
}

/// The summation order is a function of the shape alone: a strided, unaligned view gives the
/// same bits as an aligned Matrix, for every kernel on every level.
fn kernels_give_the_same_bits_on_both_storages<T: Float>() {
    for (h, l) in size_pairs() {
        let case = Case::<T>::new("storages", h, l);
        for ks in kernel_sets() {
            let ctx = format!("{} on {}, H×L = {h}×{l}", T::NAME, ks.level());
            let [mut m, mut v] = STORAGES.map(|s| Stored::new(s, h, l, &case.w));
            let [mo, vo] = [&m, &v].map(|w| {
                guarded_output(&format!("{ctx}: affine n"), l, |n| {
                    ks.affine(w.as_ref(), &case.a_prev, &case.b, n).unwrap()
                })
            });
            assert_bits_eq(&format!("{ctx}: affine n, view vs Matrix"), &vo, &mo);

            let [mo, vo] = [&m, &v].map(|w| {
                guarded_output(&format!("{ctx}: backward δ̂"), h, |dp| {
                    ks.backward(w.as_ref(), &case.delta, &case.d_prev, dp)
                        .unwrap()
                })
            });
            assert_bits_eq(&format!("{ctx}: backward δ̂, view vs Matrix"), &vo, &mo);

            for w in [&mut m, &mut v] {
                ks.rank1_update(w.as_mut(), case.alpha, &case.a_prev, &case.delta)
                    .unwrap();
                w.assert_guards_intact(&format!("{ctx}: rank1_update W"));
            }
            assert_bits_eq(
                &format!("{ctx}: rank1_update W, view vs Matrix"),
                &v.to_row_major(),
                &m.to_row_major(),
            );
        }
    }
}

/// The free functions run `KernelSet::active()`, the kernels of `simd::active()`: the same
/// bits as `KernelSet::new(simd::active())`.
fn free_functions_run_the_active_level<T: Float>() {
    let ks = KernelSet::new(simd::active()).unwrap();
    assert_eq!(KernelSet::active(), ks);
    let all = [
        (1, 1),
        (3, 7),
        (16, 16),
        (33, 65),
        (128, 10),
        (257, 129),
        (784, 256),
    ];
    let shapes = if common::small() { &all[..4] } else { &all[..] };
    for &(h, l) in shapes {
        let case = Case::<T>::new("free", h, l);
        let ctx = format!(
            "{} free functions on {}, H×L = {h}×{l}",
            T::NAME,
            ks.level()
        );
        let w = Stored::new(Storage::View, h, l, &case.w);
        let (a, d, dp) = (&case.a_prev, &case.delta, &case.d_prev);

        let got = guarded_output(&ctx, l, |n| {
            kernels::affine(w.as_ref(), a, &case.b, n).unwrap()
        });
        let want = guarded_output(&ctx, l, |n| ks.affine(w.as_ref(), a, &case.b, n).unwrap());
        assert_bits_eq(&format!("{ctx}: affine"), &got, &want);

        let got = guarded_output(&ctx, h, |out| {
            kernels::backward(w.as_ref(), d, dp, out).unwrap()
        });
        let want = guarded_output(&ctx, h, |out| ks.backward(w.as_ref(), d, dp, out).unwrap());
        assert_bits_eq(&format!("{ctx}: backward"), &got, &want);

        let [mut got, mut want] = [0, 1].map(|_| Stored::new(Storage::View, h, l, &case.w));
        kernels::rank1_update(got.as_mut(), case.alpha, a, d).unwrap();
        ks.rank1_update(want.as_mut(), case.alpha, a, d).unwrap();
        got.assert_guards_intact(&ctx);
        assert_bits_eq(
            &format!("{ctx}: rank1_update"),
            &got.to_row_major(),
            &want.to_row_major(),
        );

        let [mut got, mut want] = [0, 1].map(|_| Stored::new(Storage::View, h, l, &case.w));
        let got_dp = guarded_output(&ctx, h, |out| {
            kernels::backward_update(got.as_mut(), case.alpha, a, d, dp, out).unwrap()
        });
        let want_dp = guarded_output(&ctx, h, |out| {
            ks.backward_update(want.as_mut(), case.alpha, a, d, dp, out)
                .unwrap()
        });
        got.assert_guards_intact(&ctx);
        assert_bits_eq(
            &format!("{ctx}: backward_update W"),
            &got.to_row_major(),
            &want.to_row_major(),
        );
        assert_bits_eq(&format!("{ctx}: backward_update δ̂"), &got_dp, &want_dp);
    }

    let n = dense_activation_inputs::<T>();
    for act in Activation::ELEMENTWISE {
        let ctx = format!("{} free activate({act}) on {}", T::NAME, ks.level());
        let [(got_a, got_d), (want_a, want_d)] = [Impl::Free, Impl::Set(ks)].map(|imp| {
            let (mut a, mut d) = (Guarded::output(n.len()), Guarded::output(n.len()));
            imp.activate(act, &n, a.slice_mut(), d.slice_mut()).unwrap();
            a.assert_guards_intact(&format!("{ctx}: {imp}, a"));
            d.assert_guards_intact(&format!("{ctx}: {imp}, d"));
            (a.slice().to_vec(), d.slice().to_vec())
        });
        assert_bits_eq(&format!("{ctx}: a"), &got_a, &want_a);
        assert_bits_eq(&format!("{ctx}: d"), &got_d, &want_d);
    }
}

// ----------------------------------------------------------------------------------------
// Every implementation of the kernels, for the argument checks

/// One implementation of the five kernels.
#[derive(Clone, Copy)]
enum Impl {
    /// The kernels of one SIMD level.
    Set(KernelSet),
    /// `kernels::*`, on `simd::active()`.
    Free,
    /// `reference::*`.
    Reference,
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Impl::Set(ks) => write!(f, "KernelSet({})", ks.level()),
            Impl::Free => write!(f, "kernels::* ({})", simd::active()),
            Impl::Reference => write!(f, "reference::*"),
        }
    }
}

impl Impl {
    fn all() -> Vec<Impl> {
        let mut all: Vec<Impl> = kernel_sets().into_iter().map(Impl::Set).collect();
        all.extend([Impl::Free, Impl::Reference]);
        all
    }

    fn affine<T: Float>(
        self,
        w: MatRef<'_, T>,
        a_prev: &[T],
        b: &[T],
        n: &mut [T],
    ) -> Result<(), Error> {
        match self {
            Impl::Set(ks) => ks.affine(w, a_prev, b, n),
            Impl::Free => kernels::affine(w, a_prev, b, n),
            Impl::Reference => reference::affine(w, a_prev, b, n),
        }
    }

    fn activate<T: Float>(
        self,
        act: Activation,
        n: &[T],
        a: &mut [T],
        d: &mut [T],
    ) -> Result<(), Error> {
        match self {
            Impl::Set(ks) => ks.activate(act, n, a, d),
            Impl::Free => kernels::activate(act, n, a, d),
            Impl::Reference => reference::activate(act, n, a, d),
        }
    }

    fn rank1_update<T: Float>(
        self,
        w: MatMut<'_, T>,
        alpha: T,
        a_prev: &[T],
        delta: &[T],
    ) -> Result<(), Error> {
        match self {
            Impl::Set(ks) => ks.rank1_update(w, alpha, a_prev, delta),
            Impl::Free => kernels::rank1_update(w, alpha, a_prev, delta),
            Impl::Reference => reference::rank1_update(w, alpha, a_prev, delta),
        }
    }

    fn backward<T: Float>(
        self,
        w: MatRef<'_, T>,
        delta: &[T],
        d_prev: &[T],
        delta_prev: &mut [T],
    ) -> Result<(), Error> {
        match self {
            Impl::Set(ks) => ks.backward(w, delta, d_prev, delta_prev),
            Impl::Free => kernels::backward(w, delta, d_prev, delta_prev),
            Impl::Reference => reference::backward(w, delta, d_prev, delta_prev),
        }
    }

    fn backward_update<T: Float>(
        self,
        w: MatMut<'_, T>,
        alpha: T,
        a_prev: &[T],
        delta: &[T],
        d_prev: &[T],
        delta_prev: &mut [T],
    ) -> Result<(), Error> {
        match self {
            Impl::Set(ks) => ks.backward_update(w, alpha, a_prev, delta, d_prev, delta_prev),
            Impl::Free => kernels::backward_update(w, alpha, a_prev, delta, d_prev, delta_prev),
            Impl::Reference => {
                reference::backward_update(w, alpha, a_prev, delta, d_prev, delta_prev)
            }
        }
    }
}

/// Every argument of a kernel call, each vector between guard zones, outputs poisoned; one
/// argument may be given a wrong length.
struct Args<T: Float> {
    w: Stored<T>,
    a_prev: Guarded<T>,
    b: Guarded<T>,
    n: Guarded<T>,
    delta: Guarded<T>,
    d_prev: Guarded<T>,
    delta_prev: Guarded<T>,
}

/// The shape the argument checks use.
const CHECK_SHAPE: (usize, usize) = (5, 9);

impl<T: Float> Args<T> {
    /// Arguments for `CHECK_SHAPE`, with `wrong = Some((arg, len))` giving `arg` length `len`.
    fn new(storage: Storage, wrong: Option<(&str, usize)>) -> Self {
        let (h, l) = CHECK_SHAPE;
        let mut rng = Rng::for_case::<T>("args", &[h, l]);
        let len = |arg: &str, right: usize| match wrong {
            Some((name, len)) if name == arg => len,
            _ => right,
        };
        Args {
            w: Stored::new(storage, h, l, &rng.values(h * l)),
            a_prev: Guarded::input(&rng.values(len("a_prev", h))),
            b: Guarded::input(&rng.values(len("b", l))),
            n: Guarded::output(len("n", l)),
            delta: Guarded::input(&rng.values(len("delta", l))),
            d_prev: Guarded::input(&rng.values(len("d_prev", h))),
            delta_prev: Guarded::output(len("delta_prev", h)),
        }
    }

    /// Panics unless W, every vector and every guard zone has its original bits.
    fn assert_untouched(&self, ctx: &str) {
        self.w.assert_unchanged(&format!("{ctx}, W"));
        self.a_prev.assert_unchanged(&format!("{ctx}, a_prev"));
        self.b.assert_unchanged(&format!("{ctx}, b"));
        self.n.assert_unchanged(&format!("{ctx}, n"));
        self.delta.assert_unchanged(&format!("{ctx}, delta"));
        self.d_prev.assert_unchanged(&format!("{ctx}, d_prev"));
        self.delta_prev
            .assert_unchanged(&format!("{ctx}, delta_prev"));
    }
}

/// Panics unless `err` is a `DimensionMismatch` naming `arg` with these sizes, and its message
/// names the argument.
fn assert_mismatch(ctx: &str, err: Error, arg: &str, expected: usize, found: usize) {
    match &err {
        Error::DimensionMismatch {
            arg: a,
            expected: e,
            found: f,
            ..
        } if *a == arg && *e == expected && *f == found => {}
        other => panic!(
            "{ctx}: expected DimensionMismatch {{ arg: {arg:?}, expected: {expected}, found: \
             {found} }}, got {other:?}"
        ),
    }
    let message = err.to_string();
    assert!(
        message.contains(arg),
        "{ctx}: the message {message:?} does not name `{arg}`"
    );
}

/// Each (argument, right length) of a kernel, and each wrong length of it: one too short, one
/// too long.
fn wrong_lengths(args: &[(&'static str, usize)]) -> Vec<(&'static str, usize, usize)> {
    args.iter()
        .flat_map(|&(arg, right)| [(arg, right, right - 1), (arg, right, right + 1)])
        .collect()
}

/// Runs `call` for every implementation, storage and wrong length: each must be the
/// `DimensionMismatch` of that argument, with W and every vector untouched.
fn check_rejects_wrong_lengths<T: Float>(
    kernel: &str,
    args: &[(&'static str, usize)],
    call: impl Fn(Impl, &mut Args<T>) -> Result<(), Error>,
) {
    for imp in Impl::all() {
        for storage in STORAGES {
            for (arg, right, wrong) in wrong_lengths(args) {
                let ctx = format!(
                    "{} {imp} {kernel} with {arg} of length {wrong} (not {right}), {storage}",
                    T::NAME
                );
                let mut a = Args::<T>::new(storage, Some((arg, wrong)));
                let err = call(imp, &mut a).expect_err(&format!("{ctx}: accepted"));
                assert_mismatch(&ctx, err, arg, right, wrong);
                a.assert_untouched(&ctx);
            }
        }
    }
}

/// affine: a_prev (H), b and n (L).
fn affine_rejects_wrong_lengths<T: Float>() {
    let (h, l) = CHECK_SHAPE;
    check_rejects_wrong_lengths::<T>("affine", &[("a_prev", h), ("b", l), ("n", l)], |imp, a| {
        imp.affine(a.w.as_ref(), a.a_prev.slice(), a.b.slice(), a.n.slice_mut())
    });
}

/// rank1_update: a_prev (H), delta (L).
fn rank1_update_rejects_wrong_lengths<T: Float>() {
    let (h, l) = CHECK_SHAPE;
    check_rejects_wrong_lengths::<T>("rank1_update", &[("a_prev", h), ("delta", l)], |imp, a| {
        let alpha = T::from_f64(0.5);
        imp.rank1_update(a.w.as_mut(), alpha, a.a_prev.slice(), a.delta.slice())
    });
}

/// backward: delta (L), d_prev and delta_prev (H).
fn backward_rejects_wrong_lengths<T: Float>() {
    let (h, l) = CHECK_SHAPE;
    check_rejects_wrong_lengths::<T>(
        "backward",
        &[("delta", l), ("d_prev", h), ("delta_prev", h)],
        |imp, a| {
            let (delta, d_prev) = (a.delta.slice(), a.d_prev.slice());
            imp.backward(a.w.as_ref(), delta, d_prev, a.delta_prev.slice_mut())
        },
    );
}

/// backward_update: a_prev (H), delta (L), d_prev and delta_prev (H).
fn backward_update_rejects_wrong_lengths<T: Float>() {
    let (h, l) = CHECK_SHAPE;
    check_rejects_wrong_lengths::<T>(
        "backward_update",
        &[
            ("a_prev", h),
            ("delta", l),
            ("d_prev", h),
            ("delta_prev", h),
        ],
        |imp, a| {
            let alpha = T::from_f64(0.5);
            let (a_prev, delta, d_prev) = (a.a_prev.slice(), a.delta.slice(), a.d_prev.slice());
            let delta_prev = a.delta_prev.slice_mut();
            imp.backward_update(a.w.as_mut(), alpha, a_prev, delta, d_prev, delta_prev)
        },
    );
}

/// NaN and ±∞ as α: `NonFinite { arg: "alpha" }`, and W untouched.
fn updates_reject_non_finite_alpha<T: Float>() {
    for imp in Impl::all() {
        for storage in STORAGES {
            for alpha in [T::NAN, T::INFINITY, -T::INFINITY] {
                let ctx = format!("{} {imp} with alpha = {alpha}, {storage}", T::NAME);
                let check = |kernel: &str, result: Result<(), Error>, a: &Args<T>| {
                    let ctx = format!("{ctx}, {kernel}");
                    let err = result.expect_err(&format!("{ctx}: accepted"));
                    assert!(
                        matches!(err, Error::NonFinite { arg: "alpha" }),
                        "{ctx}: expected NonFinite {{ arg: \"alpha\" }}, got {err:?}"
                    );
                    assert!(err.to_string().contains("alpha"), "{ctx}: {err}");
                    a.assert_untouched(&ctx);
                };

                let mut a = Args::<T>::new(storage, None);
                let result =
                    imp.rank1_update(a.w.as_mut(), alpha, a.a_prev.slice(), a.delta.slice());
                check("rank1_update", result, &a);

                let mut a = Args::<T>::new(storage, None);
                let (a_prev, delta, d_prev) = (a.a_prev.slice(), a.delta.slice(), a.d_prev.slice());
                let result = imp.backward_update(
                    a.w.as_mut(),
                    alpha,
                    a_prev,
                    delta,
                    d_prev,
                    a.delta_prev.slice_mut(),
                );
                check("backward_update", result, &a);
            }
        }
    }
}

/// H = 0 or L = 0 is a valid layer: affine gives n = b (an empty sum), backward gives
/// δ̂ = σ̂' ⊙ 0 = 0, and the updates change nothing; no guard is touched.
fn zero_sized_dims_are_valid<T: Float>() {
    let shapes = [(0, 0), (0, 1), (0, 9), (0, 33), (1, 0), (9, 0), (33, 0)];
    for imp in Impl::all() {
        for storage in STORAGES {
            for (h, l) in shapes {
                let case = Case::<T>::new("zero", h, l);
                let ctx = format!("{} {imp}, H×L = {h}×{l}, {storage}", T::NAME);
                let mut w = Stored::new(storage, h, l, &case.w);
                let (a_prev, b) = (Guarded::input(&case.a_prev), Guarded::input(&case.b));
                let (delta, d_prev) = (Guarded::input(&case.delta), Guarded::input(&case.d_prev));

                let mut n = Guarded::output(l);
                imp.affine(w.as_ref(), a_prev.slice(), b.slice(), n.slice_mut())
                    .unwrap_or_else(|e| panic!("{ctx}, affine: {e}"));
                n.assert_guards_intact(&format!("{ctx}, affine n"));
                if h == 0 {
                    assert_bits_eq(&format!("{ctx}, affine: n = b"), n.slice(), &case.b);
                }

                let mut delta_prev = Guarded::output(h);
                imp.backward(
                    w.as_ref(),
                    delta.slice(),
                    d_prev.slice(),
                    delta_prev.slice_mut(),
                )
                .unwrap_or_else(|e| panic!("{ctx}, backward: {e}"));
                delta_prev.assert_guards_intact(&format!("{ctx}, backward δ̂"));
                for (r, x) in delta_prev.slice().iter().enumerate() {
                    assert!(*x == T::ZERO, "{ctx}, backward: δ̂[{r}] = {x}, not 0");
                }

                imp.rank1_update(w.as_mut(), case.alpha, a_prev.slice(), delta.slice())
                    .unwrap_or_else(|e| panic!("{ctx}, rank1_update: {e}"));
                let mut delta_prev = Guarded::output(h);
                imp.backward_update(
                    w.as_mut(),
                    case.alpha,
                    a_prev.slice(),
                    delta.slice(),
                    d_prev.slice(),
                    delta_prev.slice_mut(),
                )
                .unwrap_or_else(|e| panic!("{ctx}, backward_update: {e}"));
                delta_prev.assert_guards_intact(&format!("{ctx}, backward_update δ̂"));
                for (r, x) in delta_prev.slice().iter().enumerate() {
                    assert!(*x == T::ZERO, "{ctx}, backward_update: δ̂[{r}] = {x}, not 0");
                }

                w.assert_unchanged(&format!("{ctx}, W"));
                for v in [&a_prev, &b, &delta, &d_prev] {
                    v.assert_unchanged(&format!("{ctx}, inputs"));
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------------------
// activate

/// √(2/π) and the cubic coefficient of the tanh form of GELU (`Activation::Gelu`'s docs).
const GELU_C: f64 = 0.797_884_560_802_865_4;
const GELU_K: f64 = 0.044_715;

/// Allowed |kernel − reference| for a = σ(n) and for d = σ'(n), at finite n.
///
/// Error model, in units of eps = T::EPSILON: an elementary function within m ULP errs by at
/// most m·eps relative; each +, −, ×, ÷ adds ½; relative errors add through products,
/// quotients and sums of like-signed terms. Budgets: the kernels' exp ≤ 2 ULP, log1p ≤ 3 ULP,
/// tanh ≤ K = 3 ULP (f32) or 1e-14 relative (f64, K = 45) (the table in src/simd/math.rs);
/// std's exp, ln_1p and tanh, used by the reference, ≤ 2 ULP each. Both sides follow the
/// formulas in `Activation`'s docs, so the budgets (kernel + reference) are:
///
/// | σ | a | d |
/// |---|---|---|
/// | Identity, Relu, LeakyRelu | 0: the same single rounding at most | 0 |
/// | Sigmoid: e = exp(−\|n\|), q = 1/(1+e); a = q or eq, d = q·eq | 4.5 + 4.5 = 9 | 7 + 7 = 14 |
/// | Softplus: a = max(n,0) + log1p(e), d = σ(n) | 5.5 + 4.5 = 10 | 4.5 + 4.5 = 9 |
/// | Tanh: d = (1 − \|a\|)(1 + \|a\|) | K + 2 | max(7, 0.9·K + ½) + 6 |
///
/// Sigmoid: e 2, 1 + e ≤ 1.5, q 2, eq 4.5, q·eq 7. Softplus: log1p(e) 3 + 2, the sum ½.
/// Tanh's d: in the kernel 1 − |a| = 2e/(1+e) (4.5) times 1 + |a| = 2/(1+e) (2), ½ → 7; or,
/// below the switch-over x₀ ≤ 0.625 of src/simd/math.rs, 1 − a² by FMA from a, where
/// a² ≤ tanh²(0.625) = 0.31 makes a's error count 2a²/(1 − a²) ≤ 0.9 times. In the reference
/// 2e/(1+e) (4) times 1 + |a| (1.5), ½ → 6.
///
/// Gelu is ill-conditioned for negative n: with 2u = 2c(n + k n³) (rounded with ≤ 2.5 eps
/// relative error on each side, so they differ by Δ ≤ 5·eps·|2u|), s = σ(2u) moves by a
/// relative σ(−2u)·Δ and s·σ(−2u) by |1 − 2s|·Δ ≤ Δ. So a = n·s gets
/// (9 + 1 + 5·|2u|·σ(−2u))·eps·|a|, and d = s + tail with tail = n·s·σ(−2u)·2c(1 + 3k n²)
/// (s·σ(−2u) 14, the polynomial factor ≤ 8, two products 1) is a sum whose terms may cancel,
/// so it is measured against both: (10 + 5·|2u|·σ(−2u))·eps·|s| + (24 + 5·|2u|)·eps·|tail|.
///
/// Floors, for results in the subnormal range: a subnormal exp result errs by ≤ 1 subnormal
/// ULP (`tiny`) and each later rounding by ½ tiny; the longest chain (tanh's d ≈ 4e) gives ≤ 6
/// tiny per side, so 16·tiny, which Gelu scales by its sensitivity to s,
/// 1 + |n|·(1 + 2c(1 + 3k n²)).
fn activation_tolerance<T: Float>(act: Activation, n: T, want: (T, T)) -> (f64, f64) {
    let eps = eps::<T>();
    let floor = 16.0 * tiny::<T>();
    let (a, d) = (want.0.to_f64().abs(), want.1.to_f64().abs());
    match act {
        Activation::Identity | Activation::Relu | Activation::LeakyRelu => (0.0, 0.0),
        Activation::Sigmoid => (9.0 * eps * a + floor, 14.0 * eps * d + floor),
        Activation::Softplus => (10.0 * eps * a + floor, 9.0 * eps * d + floor),
        Activation::Tanh => {
            let k = if std::mem::size_of::<T>() == 4 {
                3.0
            } else {
                1e-14 / eps
            };
            let d_budget = f64::max(7.0, 0.9 * k + 0.5) + 6.0;
            ((k + 2.0) * eps * a + floor, d_budget * eps * d + floor)
        }
        Activation::Gelu => {
            let x = n.to_f64();
            if x.abs() > 40.0 {
                // 2|u| > 4600: s is exactly 0 or 1 and s·σ(−2u) exactly 0 in both precisions,
                // so a = n·s and d = s are exact on both sides.
                return (0.0, 0.0);
            }
            let u2 = 2.0 * GELU_C * (x + GELU_K * x * x * x);
            // σ(2u) and σ(−2u) without overflow.
            let e = (-u2.abs()).exp();
            let (s, s_neg) = if u2 >= 0.0 {
                (1.0 / (1.0 + e), e / (1.0 + e))
            } else {
                (e / (1.0 + e), 1.0 / (1.0 + e))
            };
            let slope = 2.0 * GELU_C * (1.0 + 3.0 * GELU_K * x * x);
            let tail = x * s * s_neg * slope;
            let floor = floor * (1.0 + x.abs() * (1.0 + slope));
            let cond = 5.0 * u2.abs();
            (
                (10.0 + cond * s_neg) * eps * (x * s).abs() + floor,
                ((10.0 + cond * s_neg) * s + (24.0 + cond) * tail.abs()) * eps + floor,
            )
        }
        Activation::Softmax => unreachable!("not element-wise"),
    }
}

/// Panics unless the kernel's (a, d) at `n` match the reference's: both NaN, or equal where
/// n or either result is infinite (σ and σ' at ±∞ are exact limits: 0, ±1, ±∞), else within
/// `activation_tolerance`.
fn assert_activation_close<T: Float>(
    ctx: &str,
    act: Activation,
    i: usize,
    n: T,
    got: (T, T),
    want: (T, T),
) {
    let tol = activation_tolerance::<T>(act, n, want);
    for (what, got, want, tol) in [("a", got.0, want.0, tol.0), ("d", got.1, want.1, tol.1)] {
        let ctx = format!("{ctx}: {what}[{i}] at n = {n:e}");
        if want.is_nan() || got.is_nan() {
            assert!(
                want.is_nan() && got.is_nan(),
                "{ctx}: got {got:e}, reference {want:e}{}",
                if got.bits() == T::POISON.bits() {
                    " (still the NaN poison: never written)"
                } else {
                    ""
                }
            );
        } else if !n.is_finite() || !want.is_finite() || !got.is_finite() {
            assert!(got == want, "{ctx}: got {got:e}, reference {want:e}");
        } else {
            let err = (got.to_f64() - want.to_f64()).abs();
            assert!(
                err <= tol,
                "{ctx}: got {got:e}, reference {want:e}: |difference| {err:e} = {:.1} eps \
                 relative exceeds the tolerance {tol:e}",
                err / (eps::<T>() * want.to_f64().abs())
            );
        }
    }
}

/// Inputs that stress the special cases: signed zeros, subnormals, the extremes, infinities,
/// NaN, the tails where σ saturates and where exp underflows.
fn special_inputs<T: Float>() -> Vec<T> {
    let sub = T::MIN_POSITIVE * T::EPSILON; // the smallest subnormal
    let half_normal = T::MIN_POSITIVE * T::from_f64(0.5); // a subnormal
    let mut v = vec![
        T::ZERO,
        -T::ZERO,
        sub,
        half_normal,
        T::MIN_POSITIVE,
        T::NAN,
        T::INFINITY,
        T::MAX,
    ];
    for x in [
        1e-30, 1e-8, 1e-3, 0.25, 0.3, 0.55, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 40.0, 88.0, 100.0,
        1000.0,
    ] {
        v.push(T::from_f64(x));
    }
    let negated: Vec<T> = v.iter().map(|&x| -x).collect();
    v.extend(negated);
    v
}

/// The lengths `activate` is tested at: every length up to 33 (all partial vectors of every
/// level), around 64, and two long ones.
fn activate_lengths() -> Vec<usize> {
    if common::small() {
        return (0..=17).chain([31, 32, 33, 65]).collect();
    }
    (0..=33).chain([63, 64, 65, 1000, 4097]).collect()
}

/// Input of length `len`: every fourth element (from index 1) a special value, the others
/// uniform in [−30, 30].
fn mixed_inputs<T: Float>(len: usize) -> Vec<T> {
    let specials = special_inputs::<T>();
    let mut rng = Rng::for_case::<T>("activate", &[len]);
    (0..len)
        .map(|i| {
            if i % 4 == 1 {
                specials[(i / 4) % specials.len()]
            } else {
                T::from_f64(rng.uniform(-30.0, 30.0))
            }
        })
        .collect()
}

/// A dense sweep: [−30, 30] in steps of 2⁻⁹, ±m·2ᵉ for every binade e from the smallest
/// subnormal to 2¹⁰ (m = 1, 1.25, 1.5, 1.75), 20 000 uniform points in [−30, 30] and 20 000
/// log-uniform magnitudes in [2⁻³⁰, 2⁷] with random signs.
fn dense_activation_inputs<T: Float>() -> Vec<T> {
    let mut v: Vec<f64> = (-30 * 512..=30 * 512).map(|i| i as f64 / 512.0).collect();
    let min_exp = if std::mem::size_of::<T>() == 4 {
        -149
    } else {
        -1074
    };
    for e in min_exp..=10 {
        for m in [1.0, 1.25, 1.5, 1.75] {
            let x = m * 2f64.powi(e);
            v.extend([x, -x]);
        }
    }
    let mut rng = Rng::for_case::<T>("dense", &[]);
    for _ in 0..20_000 {
        v.push(rng.uniform(-30.0, 30.0));
        let sign = if rng.next_u64().is_multiple_of(2) {
            1.0
        } else {
            -1.0
        };
        v.push(sign * 2f64.powf(rng.uniform(-30.0, 7.0)));
    }
    v.into_iter().map(T::from_f64).collect()
}

/// Every element-wise activation at every length, inputs mixing special values and [−30, 30];
/// n between guards, a and d poisoned and between guards.
fn activate_matches_reference_at_every_length<T: Float>() {
    for len in activate_lengths() {
        let input = mixed_inputs::<T>(len);
        for act in Activation::ELEMENTWISE {
            let (mut want_a, mut want_d) = (vec![T::POISON; len], vec![T::POISON; len]);
            reference::activate(act, &input, &mut want_a, &mut want_d).unwrap();
            for ks in kernel_sets() {
                let ctx = format!(
                    "{} activate({act}) on {}, length {len}",
                    T::NAME,
                    ks.level()
                );
                let n = Guarded::input(&input);
                let (mut a, mut d) = (Guarded::output(len), Guarded::output(len));
                ks.activate(act, n.slice(), a.slice_mut(), d.slice_mut())
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                n.assert_unchanged(&format!("{ctx}, n"));
                a.assert_guards_intact(&format!("{ctx}, a"));
                d.assert_guards_intact(&format!("{ctx}, d"));
                for i in 0..len {
                    let got = (a.slice()[i], d.slice()[i]);
                    assert_activation_close(&ctx, act, i, input[i], got, (want_a[i], want_d[i]));
                }
            }
        }
    }
}

/// Every element-wise activation over `dense_activation_inputs` (every 97th of them in a
/// reduced run: an accuracy sweep, which valgrind would take an hour over).
fn activate_matches_reference_on_a_dense_sweep<T: Float>() {
    let mut n = dense_activation_inputs::<T>();
    if common::small() {
        n = n.into_iter().step_by(97).collect();
    }
    for act in Activation::ELEMENTWISE {
        let (mut want_a, mut want_d) = (vec![T::POISON; n.len()], vec![T::POISON; n.len()]);
        reference::activate(act, &n, &mut want_a, &mut want_d).unwrap();
        for ks in kernel_sets() {
            let ctx = format!("{} activate({act}) on {}", T::NAME, ks.level());
            let (mut a, mut d) = (Guarded::output(n.len()), Guarded::output(n.len()));
            ks.activate(act, &n, a.slice_mut(), d.slice_mut()).unwrap();
            a.assert_guards_intact(&format!("{ctx}, a"));
            d.assert_guards_intact(&format!("{ctx}, d"));
            let (a, d) = (a.slice(), d.slice());
            for i in 0..n.len() {
                assert_activation_close(&ctx, act, i, n[i], (a[i], d[i]), (want_a[i], want_d[i]));
            }
        }
    }
}

/// NaN in n gives NaN in a and d at that position only: the other lanes of the same vector
/// are finite (inputs here are finite or NaN).
fn activate_maps_nan_to_nan<T: Float>() {
    for len in [1, 2, 5, 8, 9, 16, 17, 33, 64, 100] {
        let mut rng = Rng::for_case::<T>("nan", &[len]);
        let n: Vec<T> = (0..len)
            .map(|i| {
                if i % 3 == 0 {
                    T::NAN
                } else {
                    T::from_f64(rng.uniform(-30.0, 30.0))
                }
            })
            .collect();
        for act in Activation::ELEMENTWISE {
            for imp in Impl::all() {
                let ctx = format!("{} {imp} activate({act}), length {len}", T::NAME);
                let (mut a, mut d) = (Guarded::output(len), Guarded::output(len));
                imp.activate(act, &n, a.slice_mut(), d.slice_mut()).unwrap();
                a.assert_guards_intact(&format!("{ctx}, a"));
                d.assert_guards_intact(&format!("{ctx}, d"));
                let (a, d) = (a.slice(), d.slice());
                for i in 0..len {
                    for (what, out) in [("a", a[i]), ("d", d[i])] {
                        assert!(
                            out.is_nan() == n[i].is_nan(),
                            "{ctx}: n[{i}] = {}, {what}[{i}] = {out}",
                            n[i]
                        );
                    }
                }
            }
        }
    }
}

/// `Softmax` is not element-wise: `UnsupportedActivation`, naming it, and a and d untouched.
fn activate_rejects_softmax<T: Float>() {
    for imp in Impl::all() {
        for len in [0, 1, 9] {
            let ctx = format!("{} {imp} activate(Softmax), length {len}", T::NAME);
            let n = Guarded::<T>::input(&Rng::for_case::<T>("softmax", &[len]).values(len));
            let (mut a, mut d) = (Guarded::output(len), Guarded::output(len));
            let err = imp
                .activate(Activation::Softmax, n.slice(), a.slice_mut(), d.slice_mut())
                .expect_err(&format!("{ctx}: accepted"));
            assert!(
                matches!(
                    err,
                    Error::UnsupportedActivation {
                        activation: "Softmax",
                        ..
                    }
                ),
                "{ctx}: expected UnsupportedActivation for Softmax, got {err:?}"
            );
            assert!(err.to_string().contains("Softmax"), "{ctx}: {err}");
            a.assert_unchanged(&format!("{ctx}, a"));
            d.assert_unchanged(&format!("{ctx}, d"));
        }
    }
}

/// An `a` or a `d` one element too short or too long: the `DimensionMismatch` of that
/// argument, outputs untouched.
fn activate_rejects_wrong_lengths<T: Float>() {
    let len = 9;
    for imp in Impl::all() {
        for (arg, wrong) in [
            ("a", len - 1),
            ("a", len + 1),
            ("d", len - 1),
            ("d", len + 1),
        ] {
            let ctx = format!("{} {imp} activate with {arg} of length {wrong}", T::NAME);
            let n = Guarded::<T>::input(&Rng::for_case::<T>("activate args", &[len]).values(len));
            let a_len = if arg == "a" { wrong } else { len };
            let d_len = if arg == "d" { wrong } else { len };
            let (mut a, mut d) = (Guarded::output(a_len), Guarded::output(d_len));
            let err = imp
                .activate(Activation::Tanh, n.slice(), a.slice_mut(), d.slice_mut())
                .expect_err(&format!("{ctx}: accepted"));
            assert_mismatch(&ctx, err, arg, len, wrong);
            a.assert_unchanged(&format!("{ctx}, a"));
            d.assert_unchanged(&format!("{ctx}, d"));
        }
    }
}

// ----------------------------------------------------------------------------------------
// Storage

/// `from_slice` rejects a stride below the columns (rows would overlap) and a slice shorter
/// than (rows − 1)·stride + cols, for MatRef and MatMut alike, and accepts the exact length.
fn views_reject_bad_strides_and_short_slices<T: Float>() {
    let mut buf = [T::ZERO; 64];
    // (rows, cols, stride, len): InvalidStride if stride < cols, else BufferTooShort when
    // len < (rows − 1)·stride + cols.
    let cases = [
        (3, 5, 4, 64),
        (1, 5, 4, 64),
        (0, 5, 4, 64),
        (3, 5, 7, 18),
        (3, 5, 5, 14),
        (1, 5, 5, 4),
        (1, 1, 1, 0),
        (4, 0, 3, 8),
    ];
    for (rows, cols, stride, len) in cases {
        let ctx = format!(
            "{} view of {rows}×{cols}, stride {stride}, over {len} elements",
            T::NAME
        );
        let needed = if rows == 0 {
            0
        } else {
            (rows - 1) * stride + cols
        };
        let check = |err: Error| {
            if stride < cols {
                assert_eq!(
                    err,
                    Error::InvalidStride {
                        cols,
                        row_stride: stride
                    },
                    "{ctx}"
                );
            } else {
                assert_eq!(
                    err,
                    Error::BufferTooShort {
                        arg: "data",
                        needed,
                        len
                    },
                    "{ctx}"
                );
            }
        };
        check(MatRef::from_slice(&buf[..len], rows, cols, stride).expect_err(&ctx));
        check(MatMut::from_slice(&mut buf[..len], rows, cols, stride).expect_err(&ctx));
        if stride >= cols {
            assert!(
                MatRef::from_slice(&buf[..needed], rows, cols, stride).is_ok(),
                "{ctx}"
            );
            assert!(
                MatMut::from_slice(&mut buf[..needed], rows, cols, stride).is_ok(),
                "{ctx}"
            );
        }
    }
    // Empty views need no elements.
    assert!(MatRef::<T>::from_slice(&[], 0, 5, 5).is_ok());
    assert!(MatRef::<T>::from_slice(&[], 3, 0, 0).is_ok());
    assert!(MatMut::<T>::from_slice(&mut [], 0, 0, 0).is_ok());
}

/// A view's row r is `data[r·stride ..][..cols]`, whatever the offset and stride, and writes
/// through `row_mut` land there and nowhere else.
fn views_address_rows_by_stride<T: Float>() {
    let (rows, cols, stride, offset) = (4, 5, 7, 3);
    let mut buf: Vec<T> = (0..offset + 3 * stride + cols + 4)
        .map(|i| T::from_f64(i as f64))
        .collect();
    let view = MatRef::from_slice(&buf[offset..], rows, cols, stride).unwrap();
    assert_eq!(
        (view.rows(), view.cols(), view.row_stride()),
        (rows, cols, stride)
    );
    for r in 0..rows {
        let start = offset + r * stride;
        assert_bits_eq("MatRef::row", view.row(r), &buf[start..start + cols]);
        for c in 0..cols {
            assert!(view.get(r, c) == buf[start + c]);
        }
    }
    let before = buf.clone();
    let mut view = MatMut::from_slice(&mut buf[offset..], rows, cols, stride).unwrap();
    for r in 0..rows {
        view.row_mut(r).fill(-T::ONE);
    }
    assert_eq!(view.as_ref().to_row_major(), vec![-T::ONE; rows * cols]);
    for (i, (x, y)) in buf.iter().zip(&before).enumerate() {
        let in_view = i >= offset && (i - offset) / stride < rows && (i - offset) % stride < cols;
        if in_view {
            assert!(*x == -T::ONE, "element {i} was not written");
        } else {
            assert!(
                x.bits() == y.bits(),
                "element {i} outside the view was written"
            );
        }
    }
}

/// Every row of a `Matrix` starts on a 64-byte boundary, and the row stride is the column
/// count rounded up to a whole number of 64-byte lines.
fn matrix_rows_are_64_byte_aligned<T: Float>() {
    assert_eq!(ROW_ALIGN, 64);
    let per_line = 64 / std::mem::size_of::<T>();
    let cols_list = (0..=70).chain([127, 128, 129, 255, 256, 257, 1000]);
    for cols in cols_list {
        for rows in [1, 2, 3, 7] {
            let ctx = format!("{} Matrix::zeros({rows}, {cols})", T::NAME);
            let m = Matrix::<T>::zeros(rows, cols);
            assert_eq!((m.rows(), m.cols()), (rows, cols), "{ctx}");
            assert_eq!(m.row_stride(), cols.div_ceil(per_line) * per_line, "{ctx}");
            assert_eq!(m.as_ref().row_stride(), m.row_stride(), "{ctx}");
            for r in 0..rows {
                assert_eq!(m.row(r).len(), cols, "{ctx}");
                assert!(
                    m.row(r).iter().all(|&x| x.bits() == 0),
                    "{ctx}: row {r} not +0"
                );
                if cols > 0 {
                    let addr = m.row(r).as_ptr() as usize;
                    assert_eq!(addr % 64, 0, "{ctx}: row {r} at {addr:#x}");
                    assert_eq!(m.as_ref().row(r).as_ptr() as usize, addr, "{ctx}");
                }
            }
        }
    }
}

/// `from_row_major` then `to_row_major` gives back the same bits (NaN payloads, −0,
/// subnormals, ±∞ included), `get` and `row` agree with the input, and a wrong length is the
/// `DimensionMismatch` of `data`.
fn matrix_round_trips_row_major_data<T: Float>() {
    let specials = special_inputs::<T>();
    for (rows, cols) in [
        (0, 0),
        (0, 3),
        (3, 0),
        (1, 1),
        (3, 17),
        (17, 3),
        (9, 33),
        (64, 64),
    ] {
        let ctx = format!("{} Matrix {rows}×{cols}", T::NAME);
        let mut rng = Rng::for_case::<T>("matrix", &[rows, cols]);
        let data: Vec<T> = (0..rows * cols)
            .map(|i| {
                if i % 5 == 0 {
                    specials[i / 5 % specials.len()]
                } else {
                    rng.value()
                }
            })
            .collect();
        let mut m = Matrix::from_row_major(rows, cols, &data).unwrap();
        assert_bits_eq(&ctx, &m.to_row_major(), &data);
        assert_bits_eq(&ctx, &m.as_ref().to_row_major(), &data);
        assert_bits_eq(&ctx, &m.as_mut().to_row_major(), &data);
        for r in 0..rows {
            assert_bits_eq(&ctx, m.row(r), &data[r * cols..(r + 1) * cols]);
            for c in 0..cols {
                assert!(m.get(r, c).bits() == data[r * cols + c].bits(), "{ctx}");
            }
        }
        for len in [rows * cols + 1, (rows * cols).saturating_sub(1)] {
            if len == rows * cols {
                continue;
            }
            let err = Matrix::<T>::from_row_major(rows, cols, &vec![T::ZERO; len])
                .err()
                .unwrap_or_else(|| panic!("{ctx}: accepted {len} elements"));
            assert_mismatch(&ctx, err, "data", rows * cols, len);
        }
    }
}

// ----------------------------------------------------------------------------------------
// Instantiation over f32 and f64

macro_rules! kernel_tests {
    ($m:ident, $t:ty) => {
        mod $m {
            use super::*;

            #[test]
            fn affine_matches_reference_on_matrix() {
                affine_matches_reference::<$t>(Storage::Matrix);
            }
            #[test]
            fn affine_matches_reference_on_strided_view() {
                affine_matches_reference::<$t>(Storage::View);
            }
            #[test]
            fn rank1_update_matches_reference_on_matrix() {
                rank1_update_matches_reference::<$t>(Storage::Matrix);
            }
            #[test]
            fn rank1_update_matches_reference_on_strided_view() {
                rank1_update_matches_reference::<$t>(Storage::View);
            }
            #[test]
            fn backward_matches_reference_on_matrix() {
                backward_matches_reference::<$t>(Storage::Matrix);
            }
            #[test]
            fn backward_matches_reference_on_strided_view() {
                backward_matches_reference::<$t>(Storage::View);
            }
            #[test]
            fn backward_update_equals_rank1_update_and_backward_on_matrix() {
                backward_update_equals_rank1_update_and_backward::<$t>(Storage::Matrix);
            }
            #[test]
            fn backward_update_equals_rank1_update_and_backward_on_strided_view() {
                backward_update_equals_rank1_update_and_backward::<$t>(Storage::View);
            }
            #[test]
            fn kernels_give_the_same_bits_on_both_storages() {
                super::kernels_give_the_same_bits_on_both_storages::<$t>();
            }
            #[test]
            fn free_functions_run_the_active_level() {
                super::free_functions_run_the_active_level::<$t>();
            }
            #[test]
            fn affine_rejects_wrong_lengths() {
                super::affine_rejects_wrong_lengths::<$t>();
            }
            #[test]
            fn rank1_update_rejects_wrong_lengths() {
                super::rank1_update_rejects_wrong_lengths::<$t>();
            }
            #[test]
            fn backward_rejects_wrong_lengths() {
                super::backward_rejects_wrong_lengths::<$t>();
            }
            #[test]
            fn backward_update_rejects_wrong_lengths() {
                super::backward_update_rejects_wrong_lengths::<$t>();
            }
            #[test]
            fn updates_reject_non_finite_alpha() {
                super::updates_reject_non_finite_alpha::<$t>();
            }
            #[test]
            fn zero_sized_dims_are_valid() {
                super::zero_sized_dims_are_valid::<$t>();
            }
            #[test]
            fn activate_matches_reference_at_every_length() {
                super::activate_matches_reference_at_every_length::<$t>();
            }
            #[test]
            fn activate_matches_reference_on_a_dense_sweep() {
                super::activate_matches_reference_on_a_dense_sweep::<$t>();
            }
            #[test]
            fn activate_maps_nan_to_nan() {
                super::activate_maps_nan_to_nan::<$t>();
            }
            #[test]
            fn activate_rejects_softmax() {
                super::activate_rejects_softmax::<$t>();
            }
            #[test]
            fn activate_rejects_wrong_lengths() {
                super::activate_rejects_wrong_lengths::<$t>();
            }
            #[test]
            fn views_reject_bad_strides_and_short_slices() {
                super::views_reject_bad_strides_and_short_slices::<$t>();
            }
            #[test]
            fn views_address_rows_by_stride() {
                super::views_address_rows_by_stride::<$t>();
            }
            #[test]
            fn matrix_rows_are_64_byte_aligned() {
                super::matrix_rows_are_64_byte_aligned::<$t>();
            }
            #[test]
            fn matrix_round_trips_row_major_data() {
                super::matrix_round_trips_row_major_data::<$t>();
            }
        }
    };
}

kernel_tests!(for_f32, f32);
kernel_tests!(for_f64, f64);

// ----------------------------------------------------------------------------------------
// SIMD levels

/// `DELTAPROP_SIMD` picks the level: if it names a level this CPU has, `simd::active()` is
/// that level; without it, the best level. Always prints `deltaprop simd level: <name>` (CI
/// runs this test with `--nocapture` and greps the line to prove each level really ran).
#[test]
fn simd_env_level_is_active() {
    let active = simd::active();
    eprintln!("deltaprop simd level: {active}");
    assert_eq!(KernelSet::active().level(), active);
    match std::env::var("DELTAPROP_SIMD") {
        Ok(name) => match Level::from_name(name.trim()) {
            Some(level) if level.is_supported() => assert_eq!(
                active, level,
                "DELTAPROP_SIMD={name}, but the kernels run on {active}"
            ),
            Some(level) => eprintln!(
                "DELTAPROP_SIMD={name}: skipped, this CPU lacks {level} (the kernels run on \
                 {active})"
            ),
            None => panic!(
                "DELTAPROP_SIMD={name:?} names no level of this build (known: {})",
                Level::ALL.map(Level::name).join(", ")
            ),
        },
        Err(_) => assert_eq!(
            active,
            simd::best(),
            "no DELTAPROP_SIMD: the best level runs"
        ),
    }
}

/// `available()` lists the supported levels worst first, starting with `Portable` and ending
/// with `best()`; `KernelSet::new` accepts exactly those and names any other in its error.
#[test]
fn kernel_sets_exist_for_exactly_the_supported_levels() {
    let available = simd::available();
    assert_eq!(available.first(), Some(&Level::Portable));
    assert_eq!(available.last(), Some(&simd::best()));
    assert!(available.windows(2).all(|w| w[0] < w[1]));
    for level in Level::ALL {
        assert_eq!(Level::from_name(level.name()), Some(level));
        assert_eq!(level.to_string(), level.name());
        match KernelSet::new(level) {
            Ok(ks) => {
                assert!(
                    available.contains(&level),
                    "{level} accepted but not available"
                );
                assert_eq!(ks.level(), level);
            }
            Err(err) => {
                assert!(
                    !available.contains(&level),
                    "{level} available but rejected"
                );
                assert_eq!(
                    err,
                    Error::UnsupportedSimdLevel {
                        level: level.name()
                    }
                );
                eprintln!("{level}: not supported by this CPU, skipped");
            }
        }
    }
}
