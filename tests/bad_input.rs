//! The bad-input inventory: every public function of the crate, and every way its input can
//! be wrong.
//!
//! Each case checks four things:
//! 1. the call returns `Err` of the right variant (never `Ok`, never a panic — every call runs
//!    under `catch_unwind`);
//! 2. the error's `Display` message names the argument and the sizes (or values) involved;
//! 3. every output buffer — filled with a NaN poison and fenced by guard zones — has the same
//!    bits as before the call;
//! 4. a network (every weight, bias, activation and its loss) has the same bits as before.
//!
//! The zero-sized decisions are tested here too, as the documentation states them: the kernels
//! treat a zero dimension as a valid no-op (H = 0 gives n = b; B = 0 writes nothing, except
//! that `batch_gradient` still scales G and g_b by β); `Matrix` and the views accept zero rows
//! or columns; a network's sizes (inputs, every layer's outputs, the layers, a batch, a data
//! set, a batch size) must not be zero; `fit` with zero epochs is a no-op once its arguments
//! have passed the same checks as an epoch's.
//!
//! Every case is run for `f32` and `f64`, and the kernel cases for every SIMD level this CPU
//! has, for the free functions (the active level) and for the `reference` twins.

mod common;

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{Float, Guarded, Rng, Storage, Stored, kernel_sets};
use deltaprop::kernels::{self, KernelSet};
use deltaprop::{
    Activation, EpochOptions, Error, Layer, Loss, MatMut, MatRef, Matrix, Network, reference,
};

// ---------------------------------------------------------------------------------------------
// What an error must be.

/// The variant an `Err` must have (a predicate, with a description for failures) and the words
/// its message must contain.
struct Want {
    what: String,
    is: Box<dyn Fn(&Error) -> bool>,
    words: Vec<String>,
}

impl Want {
    fn new(what: impl Into<String>, is: impl Fn(&Error) -> bool + 'static) -> Self {
        Want {
            what: what.into(),
            is: Box::new(is),
            words: Vec::new(),
        }
    }

    fn words(mut self, words: &[&dyn ToString]) -> Self {
        self.words.extend(words.iter().map(|w| w.to_string()));
        self
    }
}

/// `DimensionMismatch` of `arg`: the message names it and both sizes.
fn mismatch(arg: &'static str, expected: usize, found: usize) -> Want {
    Want::new(
        format!("DimensionMismatch {{ arg: {arg:?}, expected: {expected}, found: {found} }}"),
        move |e| {
            matches!(e, &Error::DimensionMismatch { arg: a, expected: x, found: f, .. }
                if a == arg && x == expected && f == found)
        },
    )
    .words(&[&format!("`{arg}`"), &expected, &found])
}

/// `NonFinite` of the scalar `arg`.
fn non_finite(arg: &'static str) -> Want {
    Want::new(
        format!("NonFinite {{ arg: {arg:?} }}"),
        move |e| matches!(e, &Error::NonFinite { arg: a } if a == arg),
    )
    .words(&[&format!("`{arg}`"), &"finite"])
}

/// `NonFiniteElement` of `arg` at `row`, `index`.
fn non_finite_at(arg: &'static str, row: Option<usize>, index: usize) -> Want {
    let want = Error::NonFiniteElement { arg, row, index };
    let mut w = Want::new(format!("{want:?}"), move |e| *e == want).words(&[
        &format!("`{arg}`"),
        &format!("index {index}").replace("index", if row.is_some() { "column" } else { "index" }),
    ]);
    if let Some(r) = row {
        w = w.words(&[&format!("row {r}")]);
    }
    w
}

fn invalid_lr(value: f64) -> Want {
    Want::new(
        format!("InvalidLearningRate {{ value: {value} }}"),
        move |e| matches!(e, &Error::InvalidLearningRate { value: v } if v.to_bits() == value.to_bits()),
    )
    .words(&[&"`lr`", &value])
}

fn zero_size(what: &'static str, layer: Option<usize>) -> Want {
    let want = Error::ZeroSize { what, layer };
    let mut w = Want::new(format!("{want:?}"), move |e| *e == want).words(&[&what, &"zero"]);
    if let Some(k) = layer {
        w = w.words(&[&format!("layer {k}")]);
    }
    w
}

fn same(want: Error, words: &[&dyn ToString]) -> Want {
    let w = want.clone();
    Want::new(format!("{want:?}"), move |e| *e == w).words(words)
}

thread_local! {
    /// Calls checked by `rejects` and `accepts` on this test's thread (printed at its end).
    static CHECKED: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

fn count(rejected: bool) {
    CHECKED.with(|c| {
        let (r, a) = c.get();
        c.set(if rejected { (r + 1, a) } else { (r, a + 1) });
    });
}

/// Runs a test and prints how many calls it checked (`--nocapture` shows it).
fn counted(name: &str, test: impl FnOnce()) {
    CHECKED.with(|c| c.set((0, 0)));
    test();
    let (r, a) = CHECKED.with(|c| c.get());
    eprintln!("bad_input {name}: {r} calls rejected as they should be, {a} accepted");
}

/// Runs `f` under `catch_unwind` and checks that it returns the `Err` described by `want`.
#[track_caller]
fn rejects<R: Debug>(ctx: &str, want: &Want, f: impl FnOnce() -> Result<R, Error>) -> Error {
    count(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    let Ok(result) = result else {
        panic!("{ctx}: panicked; expected Err({})", want.what)
    };
    let e = match result {
        Ok(v) => panic!("{ctx}: returned Ok({v:?}); expected Err({})", want.what),
        Err(e) => e,
    };
    assert!((want.is)(&e), "{ctx}: got {e:?}; expected {}", want.what);
    let msg = e.to_string();
    for w in &want.words {
        assert!(
            msg.contains(w.as_str()),
            "{ctx}: the message {msg:?} does not say {w:?}"
        );
    }
    e
}

/// Runs `f` under `catch_unwind` and returns its `Ok` value.
#[track_caller]
fn accepts<R>(ctx: &str, f: impl FnOnce() -> Result<R, Error>) -> R {
    count(false);
    match catch_unwind(AssertUnwindSafe(f)) {
        Err(_) => panic!("{ctx}: panicked; expected Ok"),
        Ok(Err(e)) => panic!("{ctx}: returned Err({e:?}: {e}); expected Ok"),
        Ok(Ok(v)) => v,
    }
}

// ---------------------------------------------------------------------------------------------
// The kernels: the SIMD levels, the free functions and the reference twins.

/// One implementation of the kernels.
#[derive(Clone, Copy, Debug)]
enum Imp {
    Level(KernelSet),
    Free,
    Reference,
}

fn imps() -> Vec<Imp> {
    let mut v: Vec<Imp> = kernel_sets().into_iter().map(Imp::Level).collect();
    v.push(Imp::Free);
    v.push(Imp::Reference);
    v
}

type R = Result<(), Error>;

impl Imp {
    fn affine<T: Float>(self, w: MatRef<T>, a_prev: &[T], b: &[T], n: &mut [T]) -> R {
        match self {
            Imp::Level(k) => k.affine(w, a_prev, b, n),
            Imp::Free => kernels::affine(w, a_prev, b, n),
            Imp::Reference => reference::affine(w, a_prev, b, n),
        }
    }
    fn activate<T: Float>(self, act: Activation, n: &[T], a: &mut [T], d: &mut [T]) -> R {
        match self {
            Imp::Level(k) => k.activate(act, n, a, d),
            Imp::Free => kernels::activate(act, n, a, d),
            Imp::Reference => reference::activate(act, n, a, d),
        }
    }
    fn rank1_update<T: Float>(self, w: MatMut<T>, alpha: T, a_prev: &[T], delta: &[T]) -> R {
        match self {
            Imp::Level(k) => k.rank1_update(w, alpha, a_prev, delta),
            Imp::Free => kernels::rank1_update(w, alpha, a_prev, delta),
            Imp::Reference => reference::rank1_update(w, alpha, a_prev, delta),
        }
    }
    fn backward<T: Float>(self, w: MatRef<T>, delta: &[T], d_prev: &[T], out: &mut [T]) -> R {
        match self {
            Imp::Level(k) => k.backward(w, delta, d_prev, out),
            Imp::Free => kernels::backward(w, delta, d_prev, out),
            Imp::Reference => reference::backward(w, delta, d_prev, out),
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn backward_update<T: Float>(
        self,
        w: MatMut<T>,
        alpha: T,
        a_prev: &[T],
        delta: &[T],
        d_prev: &[T],
        out: &mut [T],
    ) -> R {
        match self {
            Imp::Level(k) => k.backward_update(w, alpha, a_prev, delta, d_prev, out),
            Imp::Free => kernels::backward_update(w, alpha, a_prev, delta, d_prev, out),
            Imp::Reference => reference::backward_update(w, alpha, a_prev, delta, d_prev, out),
        }
    }
    fn batch_forward<T: Float>(
        self,
        act: Activation,
        w: MatRef<T>,
        b: &[T],
        a_prev: MatRef<T>,
        a: MatMut<T>,
        d: MatMut<T>,
    ) -> R {
        match self {
            Imp::Level(k) => k.batch_forward(act, w, b, a_prev, a, d),
            Imp::Free => kernels::batch_forward(act, w, b, a_prev, a, d),
            Imp::Reference => reference::batch_forward(act, w, b, a_prev, a, d),
        }
    }
    fn batch_backward<T: Float>(
        self,
        w: MatRef<T>,
        delta: MatRef<T>,
        d_prev: MatRef<T>,
        out: MatMut<T>,
    ) -> R {
        match self {
            Imp::Level(k) => k.batch_backward(w, delta, d_prev, out),
            Imp::Free => kernels::batch_backward(w, delta, d_prev, out),
            Imp::Reference => reference::batch_backward(w, delta, d_prev, out),
        }
    }
    fn batch_gradient<T: Float>(
        self,
        a_prev: MatRef<T>,
        delta: MatRef<T>,
        scale: T,
        beta: T,
        g: MatMut<T>,
        g_b: &mut [T],
    ) -> R {
        match self {
            Imp::Level(k) => k.batch_gradient(a_prev, delta, scale, beta, g, g_b),
            Imp::Free => kernels::batch_gradient(a_prev, delta, scale, beta, g, g_b),
            Imp::Reference => reference::batch_gradient(a_prev, delta, scale, beta, g, g_b),
        }
    }
    fn batch_update<T: Float>(
        self,
        w: MatMut<T>,
        b: &mut [T],
        alpha: T,
        a_prev: MatRef<T>,
        delta: MatRef<T>,
    ) -> R {
        match self {
            Imp::Level(k) => k.batch_update(w, b, alpha, a_prev, delta),
            Imp::Free => kernels::batch_update(w, b, alpha, a_prev, delta),
            Imp::Reference => reference::batch_update(w, b, alpha, a_prev, delta),
        }
    }
    fn apply_gradient<T: Float>(
        self,
        w: MatMut<T>,
        b: &mut [T],
        alpha: T,
        g: MatRef<T>,
        g_b: &[T],
    ) -> R {
        match self {
            Imp::Level(k) => k.apply_gradient(w, b, alpha, g, g_b),
            Imp::Free => kernels::apply_gradient(w, b, alpha, g, g_b),
            Imp::Reference => reference::apply_gradient(w, b, alpha, g, g_b),
        }
    }
}

/// An input vector of `len` random values between NaN guards.
fn input<T: Float>(rng: &mut Rng, len: usize) -> Guarded<T> {
    Guarded::input(&rng.values::<T>(len))
}

/// An input matrix, `rows × cols`, as a strided view between guards.
fn mat<T: Float>(rng: &mut Rng, rows: usize, cols: usize) -> Stored<T> {
    Stored::new(Storage::View, rows, cols, &rng.values::<T>(rows * cols))
}

/// An output matrix, `rows × cols`, every element the NaN poison, as a strided view.
fn out_mat<T: Float>(rows: usize, cols: usize) -> Stored<T> {
    Stored::new(Storage::View, rows, cols, &vec![T::POISON; rows * cols])
}

/// The lengths of one vector argument of a per-sample kernel, and the error expected.
struct VecCase {
    label: &'static str,
    lens: [usize; 4],
    want: Want,
}

/// Every too-short and too-long version of each vector argument, given their correct lengths
/// and names (and where each correct length comes from).
fn vec_cases(names: [&'static str; 4], lens: [usize; 4], used: usize) -> Vec<VecCase> {
    let mut v = Vec::new();
    for i in 0..used {
        for found in [lens[i].wrapping_sub(1), lens[i] + 1, 0] {
            if found == lens[i] || found == usize::MAX {
                continue;
            }
            let mut l = lens;
            l[i] = found;
            // The first argument (in check order) whose length is wrong is reported.
            v.push(VecCase {
                label: names[i],
                lens: l,
                want: mismatch(names[i], lens[i], found),
            });
        }
    }
    v
}

const ALPHAS: [f64; 3] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

fn per_sample_kernels<T: Float>() {
    let (h, l) = (7, 19);
    for imp in imps() {
        let mut rng = Rng::for_case::<T>("per-sample", &[h, l]);
        let w = mat::<T>(&mut rng, h, l);

        // affine(w, a_prev, b, n)
        for c in vec_cases(["a_prev", "b", "n", ""], [h, l, l, 0], 3) {
            let (a_prev, b) = (input::<T>(&mut rng, c.lens[0]), input(&mut rng, c.lens[1]));
            let mut n = Guarded::<T>::output(c.lens[2]);
            let ctx = format!("{imp:?} affine, wrong {} ({:?})", c.label, c.lens);
            rejects(&ctx, &c.want, || {
                imp.affine(w.as_ref(), a_prev.slice(), b.slice(), n.slice_mut())
            });
            n.assert_unchanged(&ctx);
            w.assert_unchanged(&ctx);
        }

        // activate(act, n, a, d)
        let n = input::<T>(&mut rng, l);
        let cases = vec_cases(["", "a", "d", ""], [l, l, l, 0], 3);
        for c in cases.into_iter().filter(|c| !c.label.is_empty()) {
            let (mut a, mut d) = (Guarded::<T>::output(c.lens[1]), Guarded::output(c.lens[2]));
            let ctx = format!("{imp:?} activate, wrong {} ({:?})", c.label, c.lens);
            rejects(&ctx, &c.want, || {
                imp.activate(Activation::Tanh, n.slice(), a.slice_mut(), d.slice_mut())
            });
            a.assert_unchanged(&ctx);
            d.assert_unchanged(&ctx);
        }
        let (mut a, mut d) = (Guarded::<T>::output(l), Guarded::output(l));
        let want = Want::new("UnsupportedActivation { Softmax }", |e| {
            matches!(
                e,
                Error::UnsupportedActivation {
                    activation: "Softmax",
                    ..
                }
            )
        })
        .words(&[&"Softmax", &"activate"]);
        let ctx = format!("{imp:?} activate(Softmax)");
        rejects(&ctx, &want, || {
            imp.activate(Activation::Softmax, n.slice(), a.slice_mut(), d.slice_mut())
        });
        a.assert_unchanged(&ctx);
        d.assert_unchanged(&ctx);

        // rank1_update(w, alpha, a_prev, delta) and backward_update(w, alpha, a_prev, delta,
        // d_prev, delta_prev): W must keep every bit.
        let mut wm = mat::<T>(&mut rng, h, l);
        for c in vec_cases(["a_prev", "delta", "", ""], [h, l, 0, 0], 2) {
            let (a_prev, delta) = (input::<T>(&mut rng, c.lens[0]), input(&mut rng, c.lens[1]));
            let ctx = format!("{imp:?} rank1_update, wrong {} ({:?})", c.label, c.lens);
            rejects(&ctx, &c.want, || {
                imp.rank1_update(wm.as_mut(), T::from_f64(0.5), a_prev.slice(), delta.slice())
            });
            wm.assert_unchanged(&ctx);
        }
        for alpha in ALPHAS {
            let (a_prev, delta) = (input::<T>(&mut rng, h), input(&mut rng, l));
            let ctx = format!("{imp:?} rank1_update, alpha = {alpha}");
            rejects(&ctx, &non_finite("alpha"), || {
                imp.rank1_update(
                    wm.as_mut(),
                    T::from_f64(alpha),
                    a_prev.slice(),
                    delta.slice(),
                )
            });
            wm.assert_unchanged(&ctx);
        }

        // backward(w, delta, d_prev, delta_prev)
        for c in vec_cases(["delta", "d_prev", "delta_prev", ""], [l, h, h, 0], 3) {
            let (delta, d_prev) = (input::<T>(&mut rng, c.lens[0]), input(&mut rng, c.lens[1]));
            let mut out = Guarded::<T>::output(c.lens[2]);
            let ctx = format!("{imp:?} backward, wrong {} ({:?})", c.label, c.lens);
            rejects(&ctx, &c.want, || {
                imp.backward(w.as_ref(), delta.slice(), d_prev.slice(), out.slice_mut())
            });
            out.assert_unchanged(&ctx);
        }

        // backward_update: the checks of both, in the order alpha, a_prev, delta, d_prev,
        // delta_prev.
        let names = ["a_prev", "delta", "d_prev", "delta_prev"];
        for c in vec_cases(names, [h, l, h, h], 4) {
            let a_prev = input::<T>(&mut rng, c.lens[0]);
            let (delta, d_prev) = (input::<T>(&mut rng, c.lens[1]), input(&mut rng, c.lens[2]));
            let mut out = Guarded::<T>::output(c.lens[3]);
            let ctx = format!("{imp:?} backward_update, wrong {} ({:?})", c.label, c.lens);
            rejects(&ctx, &c.want, || {
                imp.backward_update(
                    wm.as_mut(),
                    T::from_f64(0.5),
                    a_prev.slice(),
                    delta.slice(),
                    d_prev.slice(),
                    out.slice_mut(),
                )
            });
            wm.assert_unchanged(&ctx);
            out.assert_unchanged(&ctx);
        }
        for alpha in ALPHAS {
            let (a_prev, delta, d_prev) = (
                input::<T>(&mut rng, h),
                input::<T>(&mut rng, l),
                input::<T>(&mut rng, h),
            );
            let mut out = Guarded::<T>::output(h);
            let ctx = format!("{imp:?} backward_update, alpha = {alpha}");
            rejects(&ctx, &non_finite("alpha"), || {
                imp.backward_update(
                    wm.as_mut(),
                    T::from_f64(alpha),
                    a_prev.slice(),
                    delta.slice(),
                    d_prev.slice(),
                    out.slice_mut(),
                )
            });
            wm.assert_unchanged(&ctx);
            out.assert_unchanged(&ctx);
        }
    }
}

/// Zero-sized dimensions are valid no-ops: H = 0 gives n = b and an empty δ̂; L = 0 writes
/// nothing but δ̂ = 0 ⊙ σ̂' = 0; nothing outside the (empty) views is touched.
fn per_sample_zero_sizes<T: Float>() {
    for imp in imps() {
        for (h, l) in [(0, 5), (5, 0), (0, 0)] {
            let mut rng = Rng::for_case::<T>("zero", &[h, l]);
            let ctx = format!("{imp:?} {h}×{l}");
            let w = mat::<T>(&mut rng, h, l);
            let (a_prev, b) = (input::<T>(&mut rng, h), input::<T>(&mut rng, l));
            let mut n = Guarded::<T>::output(l);
            accepts(&ctx, || {
                imp.affine(w.as_ref(), a_prev.slice(), b.slice(), n.slice_mut())
            });
            common::assert_bits_eq(&format!("{ctx} affine: n = b"), n.slice(), b.slice());
            n.assert_guards_intact(&ctx);

            let mut wm = mat::<T>(&mut rng, h, l);
            let (delta, d_prev) = (input::<T>(&mut rng, l), input::<T>(&mut rng, h));
            accepts(&ctx, || {
                imp.rank1_update(wm.as_mut(), T::ONE, a_prev.slice(), delta.slice())
            });
            wm.assert_unchanged(&format!("{ctx} rank1_update"));
            let mut out = Guarded::<T>::output(h);
            accepts(&ctx, || {
                imp.backward(w.as_ref(), delta.slice(), d_prev.slice(), out.slice_mut())
            });
            assert!(out.slice().iter().all(|v| *v == T::ZERO), "{ctx} backward");
            out.assert_guards_intact(&ctx);
            let mut out = Guarded::<T>::output(h);
            accepts(&ctx, || {
                imp.backward_update(
                    wm.as_mut(),
                    T::ONE,
                    a_prev.slice(),
                    delta.slice(),
                    d_prev.slice(),
                    out.slice_mut(),
                )
            });
            assert!(out.slice().iter().all(|v| *v == T::ZERO), "{ctx}");
            out.assert_guards_intact(&ctx);
            wm.assert_unchanged(&format!("{ctx} backward_update"));

            let (mut a, mut d) = (Guarded::<T>::output(l), Guarded::<T>::output(l));
            accepts(&ctx, || {
                imp.activate(Activation::Sigmoid, b.slice(), a.slice_mut(), d.slice_mut())
            });
            a.assert_guards_intact(&ctx);
        }
    }
}

/// The kernels do not inspect the data: NaN and ∞ propagate by IEEE arithmetic (only the
/// scalar arguments must be finite). Documented in `kernels`.
fn kernels_propagate_non_finite_data<T: Float>() {
    for imp in imps() {
        let w = Matrix::from_row_major(2, 2, &[T::ONE; 4]).unwrap();
        let mut n = [T::ZERO; 2];
        accepts("affine", || {
            imp.affine(w.as_ref(), &[T::NAN, T::ONE], &[T::ZERO; 2], &mut n)
        });
        assert!(
            n.iter().all(|v| v.is_nan()),
            "{imp:?}: NaN in a_prev reaches n"
        );
        let mut w = Matrix::from_row_major(2, 2, &[T::ONE; 4]).unwrap();
        accepts("rank1_update", || {
            imp.rank1_update(
                w.as_mut(),
                T::ONE,
                &[T::ONE, T::ZERO],
                &[T::INFINITY, T::ZERO],
            )
        });
        assert!(!w.get(0, 0).is_finite(), "{imp:?}: ∞ in delta reaches W");
    }
}

/// A batch kernel's case: a label, the error, and the call on freshly made arguments (which
/// checks its outputs itself).
fn batch_kernels<T: Float>() {
    let (bsz, h, l) = (5, 7, 9);
    let half = T::from_f64(0.5);
    for imp in imps() {
        let mut rng = Rng::for_case::<T>("batch", &[bsz, h, l]);
        let w = mat::<T>(&mut rng, h, l);
        let bias = input::<T>(&mut rng, l);

        // batch_forward(act, w, b, a_prev (B×H), a (B×L), d (B×L))
        // (b len, a_prev cols, a rows, a cols, d rows, d cols) in check order.
        let good = [l, h, bsz, l, bsz, l];
        let names = [
            ("b", "the columns of w (L)"),
            ("a_prev (columns)", ""),
            ("a (rows)", ""),
            ("a (columns)", ""),
            ("d (rows)", ""),
            ("d (columns)", ""),
        ];
        for (i, &(name, _)) in names.iter().enumerate() {
            for found in [good[i] - 1, good[i] + 1] {
                let mut s = good;
                s[i] = found;
                let b = input::<T>(&mut rng, s[0]);
                let a_prev = mat::<T>(&mut rng, bsz, s[1]);
                let (mut a, mut d) = (out_mat::<T>(s[2], s[3]), out_mat::<T>(s[4], s[5]));
                let ctx = format!("{imp:?} batch_forward, {name} = {found}");
                rejects(&ctx, &mismatch(name, good[i], found), || {
                    imp.batch_forward(
                        Activation::Relu,
                        w.as_ref(),
                        b.slice(),
                        a_prev.as_ref(),
                        a.as_mut(),
                        d.as_mut(),
                    )
                });
                a.assert_unchanged(&ctx);
                d.assert_unchanged(&ctx);
            }
        }
        let a_prev = mat::<T>(&mut rng, bsz, h);
        let (mut a, mut d) = (out_mat::<T>(bsz, l), out_mat::<T>(bsz, l));
        let ctx = format!("{imp:?} batch_forward(Softmax)");
        let softmax = Want::new("UnsupportedActivation { Softmax }", |e| {
            matches!(
                e,
                Error::UnsupportedActivation {
                    activation: "Softmax",
                    ..
                }
            )
        })
        .words(&[&"Softmax", &"batch_forward"]);
        rejects(&ctx, &softmax, || {
            imp.batch_forward(
                Activation::Softmax,
                w.as_ref(),
                bias.slice(),
                a_prev.as_ref(),
                a.as_mut(),
                d.as_mut(),
            )
        });
        a.assert_unchanged(&ctx);
        d.assert_unchanged(&ctx);

        // batch_backward(w, delta (B×L), d_prev (B×H), delta_prev (B×H))
        // (delta cols, d_prev rows, d_prev cols, delta_prev rows, delta_prev cols).
        let good = [l, bsz, h, bsz, h];
        let names = [
            "delta (columns)",
            "d_prev (rows)",
            "d_prev (columns)",
            "delta_prev (rows)",
            "delta_prev (columns)",
        ];
        for (i, &name) in names.iter().enumerate() {
            for found in [good[i] - 1, good[i] + 1] {
                let mut s = good;
                s[i] = found;
                let delta = mat::<T>(&mut rng, bsz, s[0]);
                let d_prev = mat::<T>(&mut rng, s[1], s[2]);
                let mut out = out_mat::<T>(s[3], s[4]);
                let ctx = format!("{imp:?} batch_backward, {name} = {found}");
                rejects(&ctx, &mismatch(name, good[i], found), || {
                    imp.batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), out.as_mut())
                });
                out.assert_unchanged(&ctx);
            }
        }

        // batch_gradient(a_prev (B×H), delta (B×L), scale, beta, g (H×L), g_b (L))
        // (delta rows, g rows, g cols, g_b len).
        let good = [bsz, h, l, l];
        let names = ["delta (rows)", "g (rows)", "g (columns)", "g_b"];
        for (i, &name) in names.iter().enumerate() {
            for found in [good[i] - 1, good[i] + 1] {
                let mut s = good;
                s[i] = found;
                let a_prev = mat::<T>(&mut rng, bsz, h);
                let delta = mat::<T>(&mut rng, s[0], l);
                let mut g = out_mat::<T>(s[1], s[2]);
                let mut g_b = Guarded::<T>::output(s[3]);
                let ctx = format!("{imp:?} batch_gradient, {name} = {found}");
                rejects(&ctx, &mismatch(name, good[i], found), || {
                    imp.batch_gradient(
                        a_prev.as_ref(),
                        delta.as_ref(),
                        half,
                        T::ONE,
                        g.as_mut(),
                        g_b.slice_mut(),
                    )
                });
                g.assert_unchanged(&ctx);
                g_b.assert_unchanged(&ctx);
            }
        }
        for (arg, bad) in [("scale", 0), ("beta", 1)] {
            for v in ALPHAS {
                let a_prev = mat::<T>(&mut rng, bsz, h);
                let delta = mat::<T>(&mut rng, bsz, l);
                let mut g = out_mat::<T>(h, l);
                let mut g_b = Guarded::<T>::output(l);
                let (scale, beta) = if bad == 0 {
                    (T::from_f64(v), T::ONE)
                } else {
                    (half, T::from_f64(v))
                };
                let ctx = format!("{imp:?} batch_gradient, {arg} = {v}");
                rejects(&ctx, &non_finite(arg), || {
                    imp.batch_gradient(
                        a_prev.as_ref(),
                        delta.as_ref(),
                        scale,
                        beta,
                        g.as_mut(),
                        g_b.slice_mut(),
                    )
                });
                g.assert_unchanged(&ctx);
                g_b.assert_unchanged(&ctx);
            }
        }

        // batch_update(w, b, alpha, a_prev (B×H), delta (B×L)) and apply_gradient(w, b,
        // alpha, g (H×L), g_b): W and b keep every bit.
        // (b len, a_prev cols, delta rows, delta cols).
        let good = [l, h, bsz, l];
        let names = ["b", "a_prev (columns)", "delta (rows)", "delta (columns)"];
        let mut wm = mat::<T>(&mut rng, h, l);
        for (i, &name) in names.iter().enumerate() {
            for found in [good[i] - 1, good[i] + 1] {
                let mut s = good;
                s[i] = found;
                let mut b = Guarded::input(&rng.values::<T>(s[0]));
                let a_prev = mat::<T>(&mut rng, bsz, s[1]);
                let delta = mat::<T>(&mut rng, s[2], s[3]);
                let ctx = format!("{imp:?} batch_update, {name} = {found}");
                rejects(&ctx, &mismatch(name, good[i], found), || {
                    imp.batch_update(
                        wm.as_mut(),
                        b.slice_mut(),
                        half,
                        a_prev.as_ref(),
                        delta.as_ref(),
                    )
                });
                wm.assert_unchanged(&ctx);
                b.assert_unchanged(&ctx);
            }
        }
        // (b len, g rows, g cols, g_b len).
        let good = [l, h, l, l];
        let names = ["b", "g (rows)", "g (columns)", "g_b"];
        for (i, &name) in names.iter().enumerate() {
            for found in [good[i] - 1, good[i] + 1] {
                let mut s = good;
                s[i] = found;
                let mut b = Guarded::input(&rng.values::<T>(s[0]));
                let g = mat::<T>(&mut rng, s[1], s[2]);
                let g_b = input::<T>(&mut rng, s[3]);
                let ctx = format!("{imp:?} apply_gradient, {name} = {found}");
                rejects(&ctx, &mismatch(name, good[i], found), || {
                    imp.apply_gradient(wm.as_mut(), b.slice_mut(), half, g.as_ref(), g_b.slice())
                });
                wm.assert_unchanged(&ctx);
                b.assert_unchanged(&ctx);
            }
        }
        for alpha in ALPHAS {
            let mut b = Guarded::input(&rng.values::<T>(l));
            let (a_prev, delta) = (mat::<T>(&mut rng, bsz, h), mat::<T>(&mut rng, bsz, l));
            let (g, g_b) = (mat::<T>(&mut rng, h, l), input::<T>(&mut rng, l));
            let ctx = format!("{imp:?} batch_update / apply_gradient, alpha = {alpha}");
            let alpha = T::from_f64(alpha);
            rejects(&ctx, &non_finite("alpha"), || {
                imp.batch_update(
                    wm.as_mut(),
                    b.slice_mut(),
                    alpha,
                    a_prev.as_ref(),
                    delta.as_ref(),
                )
            });
            rejects(&ctx, &non_finite("alpha"), || {
                imp.apply_gradient(wm.as_mut(), b.slice_mut(), alpha, g.as_ref(), g_b.slice())
            });
            wm.assert_unchanged(&ctx);
            b.assert_unchanged(&ctx);
        }
    }
}

/// Zero-sized batches and layers are valid: B = 0 writes nothing (`batch_gradient` still
/// scales by β); H = 0 gives A = σ(1bᵀ); L = 0 gives Δ̂ = 0.
fn batch_zero_sizes<T: Float>() {
    let two = T::from_f64(2.0);
    for imp in imps() {
        for (bsz, h, l) in [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0)] {
            let mut rng = Rng::for_case::<T>("batch zero", &[bsz, h, l]);
            let ctx = format!("{imp:?} B = {bsz}, H = {h}, L = {l}");
            let w = mat::<T>(&mut rng, h, l);
            let b = input::<T>(&mut rng, l);
            let a_prev = mat::<T>(&mut rng, bsz, h);
            let (mut a, mut d) = (out_mat::<T>(bsz, l), out_mat::<T>(bsz, l));
            accepts(&ctx, || {
                imp.batch_forward(
                    Activation::Identity,
                    w.as_ref(),
                    b.slice(),
                    a_prev.as_ref(),
                    a.as_mut(),
                    d.as_mut(),
                )
            });
            a.assert_guards_intact(&ctx);
            if h == 0 {
                for i in 0..bsz {
                    common::assert_bits_eq(&ctx, a.as_ref().row(i), b.slice());
                }
            }
            let delta = mat::<T>(&mut rng, bsz, l);
            let d_prev = mat::<T>(&mut rng, bsz, h);
            let mut out = out_mat::<T>(bsz, h);
            accepts(&ctx, || {
                imp.batch_backward(w.as_ref(), delta.as_ref(), d_prev.as_ref(), out.as_mut())
            });
            out.assert_guards_intact(&ctx);
            if l == 0 {
                assert!(out.to_row_major().iter().all(|v| *v == T::ZERO), "{ctx}");
            }
            // G ← 2 G + Âᵀ Δ with B = 0: G doubles.
            let g0 = rng.values::<T>(h * l);
            let mut g = Stored::new(Storage::View, h, l, &g0);
            let gb0 = rng.values::<T>(l);
            let mut g_b = Guarded::input(&gb0);
            accepts(&ctx, || {
                imp.batch_gradient(
                    a_prev.as_ref(),
                    delta.as_ref(),
                    T::ONE,
                    two,
                    g.as_mut(),
                    g_b.slice_mut(),
                )
            });
            g.assert_guards_intact(&ctx);
            if bsz == 0 {
                let doubled: Vec<T> = g0.iter().map(|&v| two * v).collect();
                common::assert_bits_eq(&ctx, &g.to_row_major(), &doubled);
                let doubled: Vec<T> = gb0.iter().map(|&v| two * v).collect();
                common::assert_bits_eq(&ctx, g_b.slice(), &doubled);
            }
            let mut wm = mat::<T>(&mut rng, h, l);
            let mut bb = Guarded::input(&rng.values::<T>(l));
            accepts(&ctx, || {
                imp.batch_update(
                    wm.as_mut(),
                    bb.slice_mut(),
                    T::ONE,
                    a_prev.as_ref(),
                    delta.as_ref(),
                )
            });
            if bsz == 0 {
                wm.assert_unchanged(&ctx);
                bb.assert_unchanged(&ctx);
            }
            wm.assert_guards_intact(&ctx);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Matrix, MatRef, MatMut, KernelSet.

fn matrices_and_views<T: Float>() {
    let data = vec![T::ONE; 12];
    // Matrix::from_row_major
    rejects("from_row_major short", &mismatch("data", 12, 11), || {
        Matrix::from_row_major(3, 4, &data[..11])
    });
    rejects("from_row_major long", &mismatch("data", 9, 12), || {
        Matrix::from_row_major(3, 3, &data)
    });
    let overflow = same(
        Error::SizeOverflow {
            rows: usize::MAX,
            cols: 2,
        },
        &[&usize::MAX, &2, &"overflows"],
    );
    rejects("from_row_major overflow", &overflow, || {
        Matrix::from_row_major(usize::MAX, 2, &data)
    });
    // Zero rows with a column count whose padded stride overflows: once an overflow in
    // `Matrix::zeros` (a panic with overflow checks, a stride wrapped to 0 without); now the
    // size error.
    let want = same(
        Error::SizeOverflow {
            rows: 0,
            cols: usize::MAX,
        },
        &[&usize::MAX],
    );
    rejects("from_row_major(0, usize::MAX)", &want, || {
        Matrix::<T>::from_row_major(0, usize::MAX, &[])
    });
    // Zero-sized matrices are valid.
    for (r, c) in [(0, 4), (4, 0), (0, 0), (usize::MAX, 0)] {
        let m = accepts("from_row_major, zero-sized", || {
            Matrix::<T>::from_row_major(r, c, &[])
        });
        assert_eq!((m.rows(), m.cols()), (r, c));
        assert!(m.to_row_major().is_empty());
    }
    let m = Matrix::<T>::zeros(0, 5);
    assert_eq!((m.rows(), m.cols(), m.to_row_major().len()), (0, 5, 0));
    // `Matrix::zeros` is infallible and documents its panic on sizes beyond isize::MAX bytes:
    // its stride once wrapped to 0 in release builds and made a matrix whose views panicked.
    let r = catch_unwind(|| Matrix::<T>::zeros(1, usize::MAX - 3));
    assert!(
        r.is_err(),
        "Matrix::zeros(1, usize::MAX - 3) must panic, not wrap"
    );

    // MatRef::from_slice / MatMut::from_slice
    let mut buf = vec![T::ONE; 12];
    let before: Vec<u64> = buf.iter().map(|v| v.bits()).collect();
    for (rows, cols, stride, want) in [
        (
            3,
            4,
            3,
            same(
                Error::InvalidStride {
                    cols: 4,
                    row_stride: 3,
                },
                &[&"`row_stride` 3", &"`cols` 4"],
            ),
        ),
        (
            3,
            4,
            5,
            same(
                Error::BufferTooShort {
                    arg: "data",
                    needed: 14,
                    len: 12,
                },
                &[&"`data`", &14, &12],
            ),
        ),
        (
            13,
            1,
            1,
            same(
                Error::BufferTooShort {
                    arg: "data",
                    needed: 13,
                    len: 12,
                },
                &[&13, &12],
            ),
        ),
        (
            usize::MAX,
            2,
            usize::MAX / 2,
            same(
                Error::SizeOverflow {
                    rows: usize::MAX,
                    cols: 2,
                },
                &[&usize::MAX],
            ),
        ),
    ] {
        let ctx = format!("view {rows}×{cols} stride {stride} over 12");
        rejects(&ctx, &want, || MatRef::from_slice(&buf, rows, cols, stride));
        rejects(&ctx, &want, || {
            MatMut::from_slice(&mut buf, rows, cols, stride)
        });
        assert_eq!(buf.iter().map(|v| v.bits()).collect::<Vec<_>>(), before);
    }
    // Zero-sized views are valid, even over an empty slice.
    for (rows, cols, stride) in [(0, 5, 5), (5, 0, 0), (0, 0, 0), (usize::MAX, 0, 0)] {
        let v = accepts("empty view", || {
            MatRef::<T>::from_slice(&[], rows, cols, stride)
        });
        assert!(v.to_row_major().is_empty());
        let v = accepts("empty view", || {
            MatMut::<T>::from_slice(&mut [], rows, cols, stride)
        });
        assert!(v.to_row_major().is_empty());
    }
}

#[test]
fn kernel_set_rejects_levels_this_cpu_lacks() {
    let missing: Vec<_> = deltaprop::simd::Level::ALL
        .into_iter()
        .filter(|l| !l.is_supported())
        .collect();
    if missing.is_empty() {
        eprintln!("skipped: this CPU has every SIMD level, so none can be rejected here");
    }
    for level in missing {
        let want = same(
            Error::UnsupportedSimdLevel {
                level: level.name(),
            },
            &[&level.name()],
        );
        rejects("KernelSet::new", &want, || KernelSet::new(level));
    }
    assert!(deltaprop::simd::Level::from_name("sse9").is_none());
}

// ---------------------------------------------------------------------------------------------
// Layer, Network::new, the builder.

fn layer_new<T: Float>() {
    let w = || Matrix::from_row_major(2, 3, &[T::ONE; 6]).unwrap();
    rejects("Layer::new, short b", &mismatch("b", 3, 2), || {
        Layer::new(w(), vec![T::ZERO; 2], Activation::Tanh)
    });
    rejects("Layer::new, long b", &mismatch("b", 3, 4), || {
        Layer::new(w(), vec![T::ZERO; 4], Activation::Tanh)
    });
    rejects(
        "Layer::new, H = 0",
        &zero_size("the inputs (rows of w)", None),
        || Layer::new(Matrix::zeros(0, 3), vec![T::ZERO; 3], Activation::Tanh),
    );
    rejects(
        "Layer::new, L = 0",
        &zero_size("the outputs (columns of w)", None),
        || Layer::new(Matrix::<T>::zeros(2, 0), vec![], Activation::Tanh),
    );
    for (bad, name) in [(T::NAN, "NaN"), (T::INFINITY, "∞"), (-T::INFINITY, "-∞")] {
        let mut m = w();
        m.row_mut(1)[2] = bad;
        rejects(
            &format!("Layer::new, {name} in w"),
            &non_finite_at("w", Some(1), 2),
            || Layer::new(m, vec![T::ZERO; 3], Activation::Tanh),
        );
        let mut b = vec![T::ZERO; 3];
        b[1] = bad;
        rejects(
            &format!("Layer::new, {name} in b"),
            &non_finite_at("b", None, 1),
            || Layer::new(w(), b, Activation::Tanh),
        );
    }
}

fn layer<T: Float>(h: usize, l: usize, act: Activation) -> Layer<T> {
    let data: Vec<T> = (0..h * l)
        .map(|i| T::from_f64(((i * 7 % 11) as f64 - 5.0) / 10.0))
        .collect();
    Layer::new(
        Matrix::from_row_major(h, l, &data).unwrap(),
        vec![T::ZERO; l],
        act,
    )
    .unwrap()
}

fn network_new_and_builder<T: Float>() {
    use Activation::*;
    rejects(
        "Network::new([])",
        &same(Error::EmptyNetwork, &[&"layer"]),
        || Network::<T>::new(vec![], Loss::SquaredError),
    );
    let want = same(
        Error::LayerMismatch {
            layer: 1,
            inputs: 4,
            previous_outputs: 3,
        },
        &[&"layer 1", &4, &3],
    );
    rejects("Network::new, layers that do not chain", &want, || {
        Network::new(
            vec![layer::<T>(2, 3, Tanh), layer(4, 2, Tanh)],
            Loss::SquaredError,
        )
    });
    let want = same(Error::SoftmaxHidden { layer: 0 }, &[&"layer 0", &"Softmax"]);
    rejects("Network::new, hidden Softmax", &want, || {
        Network::new(
            vec![layer::<T>(2, 3, Softmax), layer(3, 2, Softmax)],
            Loss::CrossEntropy,
        )
    });
    let want = Want::new("LossActivation", |e| {
        matches!(
            e,
            Error::LossActivation {
                loss: "CrossEntropy",
                activation: "Sigmoid",
                ..
            }
        )
    })
    .words(&[&"CrossEntropy", &"Sigmoid", &"Softmax"]);
    rejects("Network::new, CrossEntropy without Softmax", &want, || {
        Network::new(vec![layer::<T>(2, 3, Sigmoid)], Loss::CrossEntropy)
    });

    // The builder.
    rejects(
        "builder(0)",
        &zero_size("the network's inputs", None),
        || Network::<T>::builder(0).layer(3, Tanh).build(),
    );
    rejects(
        "builder, layer of 0",
        &zero_size("the outputs", Some(1)),
        || {
            Network::<T>::builder(2)
                .layer(3, Tanh)
                .layer(0, Tanh)
                .build()
        },
    );
    rejects(
        "builder, no layers",
        &same(Error::EmptyNetwork, &[&"layer"]),
        || Network::<T>::builder(2).build(),
    );
    rejects(
        "builder, hidden Softmax",
        &same(Error::SoftmaxHidden { layer: 0 }, &[&"layer 0"]),
        || {
            Network::<T>::builder(2)
                .layer(3, Softmax)
                .layer(2, Identity)
                .build()
        },
    );
    let want = Want::new("LossActivation", |e| {
        matches!(e, Error::LossActivation { .. })
    })
    .words(&[&"CrossEntropy", &"Identity"]);
    rejects("builder, CrossEntropy on Identity", &want, || {
        Network::<T>::builder(2)
            .layer(2, Identity)
            .loss(Loss::CrossEntropy)
            .build()
    });
    // Sizes whose product overflows, or whose W would exceed isize::MAX bytes (once a
    // capacity-overflow panic inside the allocation).
    for (h, l) in [
        (usize::MAX, 2),
        (1 << 40, 1 << 40),
        (1 << 30, 1 << 31),
        (3, usize::MAX),
    ] {
        let want = same(Error::SizeOverflow { rows: h, cols: l }, &[&h, &l]);
        rejects(&format!("builder({h}).layer({l})"), &want, || {
            Network::<T>::builder(h).layer(l, Tanh).build()
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The network's methods: every call that fails leaves every bit of the network as it was.

/// Every weight and bias bit, every activation and the loss.
fn snapshot<T: Float>(net: &Network<T>) -> (Loss, Vec<(Activation, Vec<u64>)>) {
    let layers = net
        .layers()
        .iter()
        .map(|l| {
            let mut bits: Vec<u64> = l
                .weights()
                .to_row_major()
                .iter()
                .map(|v| v.bits())
                .collect();
            bits.extend(l.bias().iter().map(|v| v.bits()));
            (l.activation(), bits)
        })
        .collect();
    (net.loss(), layers)
}

fn bits<T: Float>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.bits()).collect()
}

/// The networks the method cases run on: 3 inputs, 4 hidden, 3 outputs.
fn networks<T: Float>() -> Vec<Network<T>> {
    use Activation::*;
    [
        (Sigmoid, Sigmoid, Loss::SquaredError),
        (Relu, Softmax, Loss::CrossEntropy),
        (Tanh, Softmax, Loss::SquaredError),
    ]
    .into_iter()
    .map(|(hid, out, loss)| {
        Network::builder(3)
            .layer(4, hid)
            .layer(3, out)
            .loss(loss)
            .seed(11)
            .build()
            .unwrap()
    })
    .collect()
}

fn m<T: Float>(rows: usize, cols: usize, v: &[f64]) -> Matrix<T> {
    let data: Vec<T> = (0..rows * cols)
        .map(|i| T::from_f64(v[i % v.len()]))
        .collect();
    Matrix::from_row_major(rows, cols, &data).unwrap()
}

fn vt<T: Float>(v: &[f64]) -> Vec<T> {
    v.iter().map(|&x| T::from_f64(x)).collect()
}

/// Per-sample arguments that are wrong whatever the loss: (label, x, t, lr, error).
/// A per-sample case: label, x, t, learning rate and the error expected.
type SampleCase<T> = (String, Vec<T>, Vec<T>, T, Want);

/// A batch case: label, x, t, learning rate and the error expected.
type BatchCase<T> = (String, Matrix<T>, Matrix<T>, T, Want);

fn sample_cases<T: Float>() -> Vec<SampleCase<T>> {
    let (x, t) = (vt::<T>(&[0.1, -0.2, 0.3]), vt::<T>(&[0.0, 1.0, 0.0]));
    let lr = T::from_f64(0.1);
    let mut v = vec![
        (
            "short x".into(),
            x[..2].to_vec(),
            t.clone(),
            lr,
            mismatch("x", 3, 2),
        ),
        (
            "long x".into(),
            vt(&[0.1; 4]),
            t.clone(),
            lr,
            mismatch("x", 3, 4),
        ),
        ("empty x".into(), vec![], t.clone(), lr, mismatch("x", 3, 0)),
        (
            "short t".into(),
            x.clone(),
            t[..2].to_vec(),
            lr,
            mismatch("t", 3, 2),
        ),
        (
            "long t".into(),
            x.clone(),
            vt(&[0.25; 4]),
            lr,
            mismatch("t", 3, 4),
        ),
    ];
    for (bad, name) in [(T::NAN, "NaN"), (T::INFINITY, "∞"), (-T::INFINITY, "-∞")] {
        let mut xb = x.clone();
        xb[2] = bad;
        v.push((
            format!("{name} in x"),
            xb,
            t.clone(),
            lr,
            non_finite_at("x", None, 2),
        ));
        let mut tb = t.clone();
        tb[1] = bad;
        v.push((
            format!("{name} in t"),
            x.clone(),
            tb,
            lr,
            non_finite_at("t", None, 1),
        ));
    }
    for lr in [
        0.0,
        -0.0,
        -0.1,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -f64::MIN_POSITIVE,
    ] {
        let value = T::from_f64(lr);
        v.push((
            format!("lr = {lr}"),
            x.clone(),
            t.clone(),
            value,
            invalid_lr(value.to_f64()),
        ));
    }
    v
}

/// Cross-entropy targets that are not a distribution: (label, t, error).
fn ce_target_cases<T: Float>(row: Option<usize>) -> Vec<(String, Vec<T>, Want)> {
    let tol = T::EPSILON.to_f64().sqrt() + 3.0 * T::EPSILON.to_f64();
    let sum_err = move |sum: f64| {
        Want::new(
            format!("TargetSum {{ row: {row:?}, sum ≈ {sum} }}"),
            move |e| {
                matches!(e, &Error::TargetSum { arg: "t", row: r, len: 3, sum: s, tolerance }
                if r == row && (s - sum).abs() < 1e-6 && tolerance == tol)
            },
        )
        .words(&[&"`t`", &"3 targets", &"sum to 1"])
    };
    let neg = move |index: usize, value: f64| {
        Want::new(
            format!("NegativeTarget {{ row: {row:?}, index: {index} }}"),
            move |e| {
                matches!(e, &Error::NegativeTarget { arg: "t", row: r, index: i, value: v }
                if r == row && i == index && v == value)
            },
        )
        .words(&[
            &"`t`",
            &value,
            &if row.is_some() { "column" } else { "index" },
        ])
    };
    vec![
        ("t sums to 0.9".into(), vt(&[0.0, 0.9, 0.0]), sum_err(0.9)),
        ("t sums to 2".into(), vt(&[1.0, 1.0, 0.0]), sum_err(2.0)),
        ("t is all zero".into(), vt(&[0.0, 0.0, 0.0]), sum_err(0.0)),
        (
            "t sums to 1 + 2·tolerance".into(),
            vt(&[0.5, 0.5 + 2.0 * tol, 0.0]),
            sum_err(1.0 + 2.0 * tol),
        ),
        (
            "t has a negative entry".into(),
            vt(&[-0.5, 1.0, 0.5]),
            neg(0, -0.5),
        ),
        (
            "t has -0.25 (sum 1)".into(),
            vt(&[0.25, 1.0, -0.25]),
            neg(2, -0.25),
        ),
    ]
}

fn network_per_sample<T: Float>() {
    for mut net in networks::<T>() {
        let tag = format!("{:?} {}", net.layers()[1].activation(), net.loss());
        let before = snapshot(&net);
        let mut grads = net.gradients();
        let grads_before = bits(grads.as_slice());
        let mut cases = sample_cases::<T>();
        if net.loss() == Loss::CrossEntropy {
            for (label, t, want) in ce_target_cases::<T>(None) {
                cases.push((label, vt(&[0.1, -0.2, 0.3]), t, T::from_f64(0.1), want));
            }
        }
        for (label, x, t, lr, want) in &cases {
            let ctx = format!("{tag}: train_sample, {label}");
            rejects(&ctx, want, || net.train_sample(x, t, *lr));
            assert_eq!(snapshot(&net), before, "{ctx}: the network changed");
            // gradient_sample takes no learning rate.
            if !label.starts_with("lr") {
                let ctx = format!("{tag}: gradient_sample, {label}");
                rejects(&ctx, want, || net.gradient_sample(x, t, &mut grads));
                assert_eq!(snapshot(&net), before, "{ctx}: the network changed");
                assert_eq!(bits(grads.as_slice()), grads_before, "{ctx}: grads written");
            }
            // predict and predict_into check x the same way.
            if label.contains(" x") {
                rejects(&format!("{tag}: predict, {label}"), want, || net.predict(x));
                let mut out = vec![T::POISON; 3];
                rejects(&format!("{tag}: predict_into, {label}"), want, || {
                    net.predict_into(x, &mut out)
                });
                assert_eq!(bits(&out), bits(&[T::POISON; 3]), "{tag}: out written");
            }
        }
        // CE targets within the tolerance are accepted (and the step is taken).
        if net.loss() == Loss::CrossEntropy {
            let mut copy = net.clone();
            let half_tol = 0.5 * T::EPSILON.to_f64().sqrt();
            let t = vt::<T>(&[0.25, 0.75 + half_tol, 0.0]);
            accepts("CE targets within tolerance", || {
                copy.train_sample(&vt(&[0.1, 0.2, 0.3]), &t, T::from_f64(0.1))
            });
        }
        // predict_into with the wrong `out`.
        let x = vt::<T>(&[0.1, 0.2, 0.3]);
        for len in [0, 2, 4] {
            let mut out = vec![T::POISON; len];
            let ctx = format!("{tag}: predict_into, out of {len}");
            rejects(&ctx, &mismatch("out", 3, len), || {
                net.predict_into(&x, &mut out)
            });
            assert_eq!(bits(&out), bits(&vec![T::POISON; len]), "{ctx}");
        }
        // Gradients of another network.
        let other = Network::<T>::builder(3)
            .layer(5, Activation::Tanh)
            .layer(3, Activation::Sigmoid)
            .build()
            .unwrap();
        let mut og = other.gradients();
        og.fill(T::POISON);
        let og_before = bits(og.as_slice());
        let t = vt::<T>(&[0.0, 1.0, 0.0]);
        let want = mismatch("grads", 4, 5);
        rejects(
            &format!("{tag}: gradient_sample, foreign grads"),
            &want,
            || net.gradient_sample(&x, &t, &mut og),
        );
        assert_eq!(bits(og.as_slice()), og_before);
        rejects(
            &format!("{tag}: apply_gradients, foreign grads"),
            &want,
            || net.apply_gradients(&og, T::from_f64(0.1)),
        );
        let one_layer = Network::<T>::builder(3)
            .layer(3, Activation::Sigmoid)
            .build()
            .unwrap();
        let want = mismatch("grads", 2, 1);
        rejects(
            &format!("{tag}: apply_gradients, one-layer grads"),
            &want,
            || net.apply_gradients(&one_layer.gradients(), T::from_f64(0.1)),
        );
        // apply_gradients: NaN/∞ in grads, bad lr.
        for (i, bad) in [(0, T::NAN), (17, T::INFINITY), (30, -T::INFINITY)] {
            let mut g = net.gradients();
            g.as_mut_slice()[i] = bad;
            rejects(
                &format!("{tag}: apply_gradients, grads[{i}] = {bad:e}"),
                &non_finite_at("grads", None, i),
                || net.apply_gradients(&g, T::from_f64(0.1)),
            );
        }
        for lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let g = net.gradients();
            let v = T::from_f64(lr);
            rejects(
                &format!("{tag}: apply_gradients, lr = {lr}"),
                &invalid_lr(v.to_f64()),
                || net.apply_gradients(&g, v),
            );
        }
        // Gradients::add of another shape: self untouched.
        let mut g = net.gradients();
        g.fill(T::ONE);
        let g_before = bits(g.as_slice());
        rejects(
            &format!("{tag}: Gradients::add"),
            &mismatch("other", 4, 5),
            || g.add(&other.gradients()),
        );
        rejects(
            &format!("{tag}: Gradients::add"),
            &mismatch("other", 2, 1),
            || g.add(&one_layer.gradients()),
        );
        assert_eq!(bits(g.as_slice()), g_before);
        assert_eq!(snapshot(&net), before, "{tag}: the network changed");
    }
}

/// A batch method of the network, for the cases that all of them share.
#[derive(Clone, Copy, Debug)]
enum BatchFn {
    TrainBatch,
    GradientBatch,
    Evaluate,
    TrainEpoch(usize),
    Fit(usize),
}

fn network_batches<T: Float>() {
    let methods = [
        BatchFn::TrainBatch,
        BatchFn::GradientBatch,
        BatchFn::Evaluate,
        BatchFn::TrainEpoch(1),
        BatchFn::TrainEpoch(2),
        BatchFn::Fit(0),
        BatchFn::Fit(3),
    ];
    let lr = T::from_f64(0.1);
    let (xs, ts) = (
        [0.1, -0.2, 0.3, 0.5],
        [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0],
    );
    for mut net in networks::<T>() {
        let tag = format!("{:?} {}", net.layers()[1].activation(), net.loss());
        let before = snapshot(&net);
        // (label, x, t, lr, error), B = 3 unless the case changes it.
        let mut cases: Vec<BatchCase<T>> = vec![
            (
                "empty batch".into(),
                m(0, 3, &xs),
                m(0, 3, &ts),
                lr,
                same(Error::EmptyBatch { arg: "x" }, &[&"`x`", &"no rows"]),
            ),
            (
                "x with 2 columns".into(),
                m(3, 2, &xs),
                m(3, 3, &ts),
                lr,
                mismatch("x", 3, 2),
            ),
            (
                "x with 4 columns".into(),
                m(3, 4, &xs),
                m(3, 3, &ts),
                lr,
                mismatch("x", 3, 4),
            ),
            (
                "t with 2 columns".into(),
                m(3, 3, &xs),
                m(3, 2, &ts),
                lr,
                mismatch("t", 3, 2),
            ),
            (
                "t with 4 rows".into(),
                m(3, 3, &xs),
                m(4, 3, &ts),
                lr,
                mismatch("t", 3, 4),
            ),
            (
                "t with 2 rows".into(),
                m(3, 3, &xs),
                m(2, 3, &ts),
                lr,
                mismatch("t", 3, 2),
            ),
            (
                "t with 0 rows".into(),
                m(3, 3, &xs),
                m(0, 3, &ts),
                lr,
                mismatch("t", 3, 0),
            ),
        ];
        for (bad, name) in [(T::NAN, "NaN"), (T::INFINITY, "∞")] {
            let mut x = m::<T>(3, 3, &xs);
            x.row_mut(2)[1] = bad;
            cases.push((
                format!("{name} in x"),
                x,
                m(3, 3, &ts),
                lr,
                non_finite_at("x", Some(2), 1),
            ));
            let mut t = m::<T>(3, 3, &ts);
            t.row_mut(1)[0] = bad;
            cases.push((
                format!("{name} in t"),
                m(3, 3, &xs),
                t,
                lr,
                non_finite_at("t", Some(1), 0),
            ));
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let v = T::from_f64(bad);
            cases.push((
                format!("lr = {bad}"),
                m(3, 3, &xs),
                m(3, 3, &ts),
                v,
                invalid_lr(v.to_f64()),
            ));
        }
        if net.loss() == Loss::CrossEntropy {
            for (label, t_row, want) in ce_target_cases::<T>(Some(1)) {
                let mut t = m::<T>(3, 3, &ts);
                t.row_mut(1).copy_from_slice(&t_row);
                cases.push((format!("row 1: {label}"), m(3, 3, &xs), t, lr, want));
            }
        }
        for method in methods {
            let mut grads = net.gradients();
            grads.fill(T::POISON);
            let grads_before = bits(grads.as_slice());
            for (label, x, t, lr, want) in &cases {
                let uses_lr = !matches!(method, BatchFn::GradientBatch | BatchFn::Evaluate);
                if label.starts_with("lr") && !uses_lr {
                    continue;
                }
                let ctx = format!("{tag}: {method:?}, {label}");
                let (x, t, lr) = (x.as_ref(), t.as_ref(), *lr);
                let opts = |b| EpochOptions {
                    batch_size: b,
                    ..EpochOptions::default()
                };
                let mut steps = 0;
                match method {
                    BatchFn::TrainBatch => drop(rejects(&ctx, want, || net.train_batch(x, t, lr))),
                    BatchFn::GradientBatch => {
                        drop(rejects(&ctx, want, || net.gradient_batch(x, t, &mut grads)))
                    }
                    BatchFn::Evaluate => drop(rejects(&ctx, want, || net.evaluate(x, t))),
                    BatchFn::TrainEpoch(b) => drop(rejects(&ctx, want, || {
                        net.train_epoch_with(x, t, lr, 0, &opts(b), |_| steps += 1)
                    })),
                    BatchFn::Fit(epochs) => drop(rejects(&ctx, want, || {
                        net.fit(x, t, lr, epochs, &opts(2), |_, _| steps += 1)
                    })),
                }
                assert_eq!(steps, 0, "{ctx}: a step was reported");
                assert_eq!(snapshot(&net), before, "{ctx}: the network changed");
                assert_eq!(bits(grads.as_slice()), grads_before, "{ctx}: grads written");
            }
        }
        // A zero batch size, for the epoch drivers; zero epochs of good arguments are a no-op.
        let (x, t) = (m::<T>(3, 3, &xs), m::<T>(3, 3, &ts));
        let zero = EpochOptions {
            batch_size: 0,
            ..EpochOptions::default()
        };
        let want = zero_size("the batch size (`opts.batch_size`)", None);
        rejects(&format!("{tag}: train_epoch, batch size 0"), &want, || {
            net.train_epoch(x.as_ref(), t.as_ref(), lr, 0, &zero)
        });
        rejects(&format!("{tag}: fit, batch size 0"), &want, || {
            net.fit(x.as_ref(), t.as_ref(), lr, 0, &zero, |_, _| {})
        });
        let r = accepts("fit, 0 epochs", || {
            net.fit(
                x.as_ref(),
                t.as_ref(),
                lr,
                0,
                &EpochOptions::default(),
                |_, _| {},
            )
        });
        assert_eq!(r, T::ZERO);
        assert_eq!(snapshot(&net), before, "{tag}: the network changed");
        // A batch of the wrong network's gradients.
        let other = Network::<T>::builder(3)
            .layer(5, Activation::Tanh)
            .layer(3, Activation::Sigmoid)
            .build()
            .unwrap();
        let mut og = other.gradients();
        rejects(
            &format!("{tag}: gradient_batch, foreign grads"),
            &mismatch("grads", 4, 5),
            || net.gradient_batch(x.as_ref(), t.as_ref(), &mut og),
        );
        assert!(og.as_slice().iter().all(|v| *v == T::ZERO));
        assert_eq!(snapshot(&net), before, "{tag}: the network changed");
    }
}

/// A step whose loss is not finite is `Diverged`, and not taken.
fn diverged_steps<T: Float>() {
    let big = T::MAX.to_f64() / 4.0;
    let w = Matrix::from_row_major(1, 1, &[T::from_f64(big)]).unwrap();
    let mut net = Network::new(
        vec![Layer::new(w, vec![T::ZERO], Activation::Identity).unwrap()],
        Loss::SquaredError,
    )
    .unwrap();
    let before = snapshot(&net);
    let want = Want::new("Diverged", |e| matches!(e, Error::Diverged { .. })).words(&[&"diverged"]);
    let (x, t) = (vt::<T>(&[4.0]), vt::<T>(&[0.0]));
    rejects("train_sample", &want, || {
        net.train_sample(&x, &t, T::from_f64(0.1))
    });
    let mut g = net.gradients();
    rejects("gradient_sample", &want, || {
        net.gradient_sample(&x, &t, &mut g)
    });
    let (xb, tb) = (m::<T>(2, 1, &[4.0]), m::<T>(2, 1, &[0.0]));
    rejects("train_batch", &want, || {
        net.train_batch(xb.as_ref(), tb.as_ref(), T::from_f64(0.1))
    });
    rejects("gradient_batch", &want, || {
        net.gradient_batch(xb.as_ref(), tb.as_ref(), &mut g)
    });
    rejects("train_epoch", &want, || {
        net.train_epoch(
            xb.as_ref(),
            tb.as_ref(),
            T::from_f64(0.1),
            0,
            &EpochOptions::default(),
        )
    });
    assert_eq!(snapshot(&net), before);
    assert!(g.as_slice().iter().all(|v| *v == T::ZERO));
}

// ---------------------------------------------------------------------------------------------
// Saved networks (feature `serde`).

#[cfg(feature = "serde")]
fn saved_networks<T: Float + serde::Serialize + serde::de::DeserializeOwned>() {
    let net = Network::<T>::builder(2)
        .layer(3, Activation::Tanh)
        .layer(2, Activation::Softmax)
        .seed(5)
        .build()
        .unwrap();
    let text = net.to_json();
    let invalid = |reason: &'static str| {
        Want::new(
            format!("InvalidFormat mentioning {reason:?}"),
            move |e| matches!(e, Error::InvalidFormat { reason: r } if r.contains(reason)),
        )
        .words(&[&"not a valid saved network", &reason])
    };
    let other = if T::NAME == "f32" { "f64" } else { "f32" };
    let w0 = &text[text.find("\"weights\":[").unwrap() + 11..];
    let first_weight = &w0[..w0.find(',').unwrap()];
    let cases: Vec<(String, String, Want)> = vec![
        ("empty text".into(), String::new(), invalid("EOF")),
        ("not JSON".into(), "deltaprop".into(), invalid("expected")),
        (
            "truncated".into(),
            text[..text.len() / 2].into(),
            invalid("EOF"),
        ),
        (
            "wrong magic".into(),
            text.replace("deltaprop-network", "other-network"),
            invalid("format field"),
        ),
        (
            "newer version".into(),
            text.replace("\"version\":1", "\"version\":2"),
            invalid("version 2"),
        ),
        (
            "version 0".into(),
            text.replace("\"version\":1", "\"version\":0"),
            invalid("version 0"),
        ),
        (
            "other element type".into(),
            text.replace(&format!("\"{}\"", T::NAME), &format!("\"{other}\"")),
            invalid(other),
        ),
        (
            "unknown loss".into(),
            text.replace("CrossEntropy", "Hinge"),
            invalid("Hinge"),
        ),
        (
            "unknown activation".into(),
            text.replace("Tanh", "Swish"),
            invalid("Swish"),
        ),
        (
            "unknown field".into(),
            text.replacen("\"loss\"", "\"extra\":1,\"loss\"", 1),
            invalid("extra"),
        ),
        (
            "missing field".into(),
            text.replacen("\"loss\":\"CrossEntropy\",", "", 1),
            invalid("loss"),
        ),
        (
            "too few weights".into(),
            text.replacen(&format!("{first_weight},"), "", 1),
            invalid("5 weights"),
        ),
        (
            "inputs 0".into(),
            text.replacen("\"inputs\":2", "\"inputs\":0", 1),
            invalid("layer 0"),
        ),
        (
            "inputs × outputs overflow".into(),
            text.replacen("\"inputs\":2", &format!("\"inputs\":{}", usize::MAX), 1),
            invalid("inputs"),
        ),
        (
            "a null weight".into(),
            text.replacen(first_weight, "null", 1),
            invalid("null"),
        ),
        (
            "a string weight".into(),
            text.replacen(first_weight, "\"0.5\"", 1),
            invalid("string"),
        ),
        (
            "an out-of-range weight".into(),
            text.replacen(first_weight, "1e999", 1),
            invalid("out of range"),
        ),
        (
            "no layers".into(),
            format!("{}[]}}", &text[..text.find("[{").unwrap()]),
            invalid("at least one layer"),
        ),
        (
            "layers that do not chain".into(),
            text.replacen("\"inputs\":3", "\"inputs\":4", 1),
            invalid("layer 1"),
        ),
        (
            "Softmax hidden".into(),
            text.replacen("Tanh", "Softmax", 1),
            invalid("Softmax"),
        ),
        (
            "CrossEntropy on Identity".into(),
            text.replacen("\"Softmax\"", "\"Identity\"", 1),
            invalid("CrossEntropy"),
        ),
    ];
    let mut cases = cases;
    if T::NAME == "f32" {
        // 1e300 is finite in f64 but beyond f32: an error, never a weight of ∞. (JSON has no
        // NaN or ∞; `Layer::new`'s finiteness check covers other serde formats.)
        cases.push((
            "a weight beyond f32".into(),
            text.replacen(first_weight, "1e300", 1),
            invalid("out of range"),
        ));
    }
    for (label, text, want) in &cases {
        rejects(&format!("from_json, {label}"), want, || {
            Network::<T>::from_json(text)
        });
    }
    // load: a missing file, a directory, bytes that are not UTF-8; save: a missing directory.
    let dir = std::env::temp_dir().join(format!(
        "deltaprop-bad-input-{}-{}",
        std::process::id(),
        T::NAME
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let io = |path: &std::path::Path| {
        let p = path.display().to_string();
        Want::new(
            format!("Io at {p}"),
            move |e| matches!(e, Error::Io { path, .. } if *path == p),
        )
        .words(&[&path.display()])
    };
    let missing = dir.join("missing.json");
    rejects("load, missing file", &io(&missing), || {
        Network::<T>::load(&missing)
    });
    rejects("load, a directory", &io(&dir), || Network::<T>::load(&dir));
    let binary = dir.join("binary.json");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x80]).unwrap();
    rejects("load, not UTF-8", &io(&binary), || {
        Network::<T>::load(&binary)
    });
    let nowhere = dir.join("no-such-dir").join("net.json");
    rejects("save, missing directory", &io(&nowhere), || {
        net.save(&nowhere)
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

macro_rules! for_both_types {
    ($($name:ident),* $(,)?) => {
        mod f32 {
            $(#[test] fn $name() { super::counted(concat!(stringify!($name), " f32"), super::$name::<f32>); })*
            #[cfg(feature = "serde")]
            #[test] fn saved_networks() { super::counted("saved_networks f32", super::saved_networks::<f32>); }
        }
        mod f64 {
            $(#[test] fn $name() { super::counted(concat!(stringify!($name), " f64"), super::$name::<f64>); })*
            #[cfg(feature = "serde")]
            #[test] fn saved_networks() { super::counted("saved_networks f64", super::saved_networks::<f64>); }
        }
    };
}

for_both_types!(
    per_sample_kernels,
    per_sample_zero_sizes,
    kernels_propagate_non_finite_data,
    batch_kernels,
    batch_zero_sizes,
    matrices_and_views,
    layer_new,
    network_new_and_builder,
    network_per_sample,
    network_batches,
    diverged_steps,
);
