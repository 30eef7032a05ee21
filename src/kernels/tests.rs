//! Accuracy of the vectorised elementary functions (`simd::math`) and of the activation
//! kernels, on every SIMD level this CPU has.
//!
//! Distances are in ULPs, counted on the ordered integer image of the bits
//! ([`Float::ordered`]): adjacent values are one apart, +0 and −0 coincide, and each
//! subnormal is one step, so "k ULP" means "k representable values away" across signs, zero
//! and the subnormal range alike.
//!
//! References: for f32, `std`'s f64 function (or `Activation::eval::<f64>`) rounded to f32 —
//! the correctly rounded value, unless f64's own sub-ULP error lands within 2⁻²⁹ of an f32
//! rounding boundary (too rare to move these maxima). For f64, `std`'s f64 function, itself
//! up to an ULP off the exact value (and differing between platforms' libms), so every f64
//! ULP bound is the figure of `simd::math`'s table plus [`REF_ULPS`].
//!
//! Every sweep prints its maxima:
//! `cargo test --lib kernels::tests -- --nocapture --test-threads 1`. The ignored
//! `exhaustive_f32_*` test checks every f32 bit pattern on the best level:
//! `cargo test --release --lib exhaustive_f32 -- --ignored --nocapture`.

use super::KernelSet;
use super::body::MathFn;
use super::table;
use crate::activation::{Activation, GELU_C, GELU_K};
use crate::error::Error;
use crate::scalar::Scalar;
use crate::simd::{self, Level};

/// Points per kernel call in the sweeps: many full vectors of every level, then a partial
/// tail.
const CHUNK: usize = (1 << 16) + 3;
/// Points of a dense sweep over a function's main range.
const DENSE: usize = 4_000_037;
/// Points of a sweep over a secondary range (near 0, tiny or subnormal arguments).
const SPARSE: usize = 1_000_003;

/// The floor for f32 values: within 4 ULP.
const F32_VALUE_ULPS: u64 = 4;
/// The floor for f32 derivatives: relative error ≤ 1e-6.
const F32_DERIVATIVE_REL: f64 = 1e-6;
/// The floor for f64 values and derivatives: relative error ≤ 1e-12.
const F64_REL: f64 = 1e-12;
/// Allowance for the error of the f64 reference (`std`, within 1 ULP).
const REF_ULPS: u64 = 1;

/// The element types under test, with their references and documented bounds.
trait Float: Scalar + std::fmt::LowerExp {
    /// Unit roundoff u: half the gap between 1 and the next number.
    const UNIT_ROUNDOFF: f64;
    /// The smallest positive normal number.
    const MIN_NORMAL: f64;
    /// Bits of the largest finite number.
    const MAX_BITS: u64;
    /// eˣ is 0 below and +∞ above this range (`simd::math::exp` clamps to it).
    const EXP_RANGE: (f64, f64);
    /// Where eˣ is subnormal and not 0.
    const EXP_SUBNORMAL: (f64, f64);
    /// A linear sweep over ±this covers every activation from saturation to saturation.
    const ACTIVATION_RANGE: f64;
    /// The floor for derivatives.
    const DERIVATIVE_REL: f64;

    /// The value with these bits (the low 32, for f32).
    fn from_bits64(bits: u64) -> Self;
    /// The bits as a monotone integer: −x maps to −(image of x), ±0 to 0, and
    /// consecutive values to consecutive integers.
    fn ordered(self) -> i64;
    /// The reference value of one of the vectorised functions.
    fn reference(f: MathFn, x: Self) -> Self;
    /// The reference (value, derivative) of an activation.
    fn reference_activation(act: Activation, n: Self) -> (Self, Self);
    /// The ULP bound asserted for `f` on every level: `simd::math`'s table (the same with
    /// FMA and without, as on the portable level of a default x86-64 build, where `wide`'s
    /// `mul_add` is a multiply and an add), plus [`REF_ULPS`] for f64.
    fn math_ulps(f: MathFn) -> u64;
}

impl Float for f32 {
    const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
    const MIN_NORMAL: f64 = f32::MIN_POSITIVE as f64;
    const MAX_BITS: u64 = 0x7f7f_ffff;
    const EXP_RANGE: (f64, f64) = (-104.0, 89.0);
    const EXP_SUBNORMAL: (f64, f64) = (-103.97, -87.34);
    const ACTIVATION_RANGE: f64 = 120.0;
    const DERIVATIVE_REL: f64 = F32_DERIVATIVE_REL;

    fn from_bits64(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
    fn ordered(self) -> i64 {
        let i = self.to_bits() as i32;
        i64::from(if i < 0 { i32::MIN - i } else { i })
    }
    fn reference(f: MathFn, x: Self) -> Self {
        let x = f64::from(x);
        (match f {
            MathFn::Exp => x.exp(),
            MathFn::Log1p => x.ln_1p(),
            MathFn::Tanh => x.tanh(),
        }) as f32
    }
    fn reference_activation(act: Activation, n: Self) -> (Self, Self) {
        let (a, d) = act.eval::<f64>(f64::from(n)).expect("element-wise");
        (a as f32, d as f32)
    }
    fn math_ulps(f: MathFn) -> u64 {
        match f {
            MathFn::Exp => 1,
            MathFn::Log1p => 2,
            MathFn::Tanh => 1,
        }
    }
}

impl Float for f64 {
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    const MAX_BITS: u64 = 0x7fef_ffff_ffff_ffff;
    const EXP_RANGE: (f64, f64) = (-746.0, 710.0);
    const EXP_SUBNORMAL: (f64, f64) = (-745.13, -708.40);
    const ACTIVATION_RANGE: f64 = 800.0;
    const DERIVATIVE_REL: f64 = F64_REL;

    fn from_bits64(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn ordered(self) -> i64 {
        let i = self.to_bits() as i64;
        if i < 0 { i64::MIN - i } else { i }
    }
    fn reference(f: MathFn, x: Self) -> Self {
        match f {
            MathFn::Exp => x.exp(),
            MathFn::Log1p => x.ln_1p(),
            MathFn::Tanh => x.tanh(),
        }
    }
    fn reference_activation(act: Activation, n: Self) -> (Self, Self) {
        act.eval::<f64>(n).expect("element-wise")
    }
    fn math_ulps(f: MathFn) -> u64 {
        REF_ULPS
            + match f {
                MathFn::Exp => 1,
                MathFn::Log1p => 2,
                MathFn::Tanh => 2,
            }
    }
}

/// ULPs between two values; NaN is 0 from NaN and infinitely far from anything else.
fn ulps<T: Float>(got: T, want: T) -> u64 {
    match (got.is_nan(), want.is_nan()) {
        (true, true) => 0,
        (false, false) => got.ordered().abs_diff(want.ordered()),
        _ => u64::MAX,
    }
}

/// |got − want| / max(|want|, smallest normal): the relative error, with the smallest
/// normal number as the floor of the denominator, since subnormal results have no relative
/// precision to keep. Equal values (infinities included) are 0 apart.
fn rel_err<T: Float>(got: T, want: T) -> f64 {
    let (g, w) = (got.to_f64(), want.to_f64());
    if g == w || (g.is_nan() && w.is_nan()) {
        return 0.0;
    }
    let e = (g - w).abs() / w.abs().max(T::MIN_NORMAL);
    if e.is_nan() { f64::INFINITY } else { e }
}

/// (input, result, reference) of a worst point.
type At = (f64, f64, f64);

/// The worst points of a sweep, by ULPs and by relative error.
#[derive(Debug, Clone, Copy, Default)]
struct Worst {
    ulps: u64,
    ulps_at: At,
    rel: f64,
    rel_at: At,
}

impl Worst {
    fn see<T: Float>(&mut self, x: T, got: T, want: T) {
        let at = (x.to_f64(), got.to_f64(), want.to_f64());
        let u = ulps(got, want);
        if u > self.ulps {
            (self.ulps, self.ulps_at) = (u, at);
        }
        let r = rel_err(got, want);
        if r > self.rel {
            (self.rel, self.rel_at) = (r, at);
        }
    }

    fn report(&self, what: &str) -> String {
        let ((x, g, w), (rx, rg, rw)) = (self.ulps_at, self.rel_at);
        format!(
            "{what}: max {} ULP at {x:e} (got {g:e}, want {w:e}); \
             max rel {:.2e} at {rx:e} (got {rg:e}, want {rw:e})",
            self.ulps, self.rel
        )
    }
}

/// `f` on `x` through `level`'s table, directly.
fn math<T: Float>(level: Level, f: MathFn, x: &[T]) -> Vec<T> {
    let mut out = vec![T::from_f64(f64::NAN); x.len()];
    // SAFETY: `x` and `out` hold `x.len()` elements each; every caller takes `level` from
    // `simd::available()` or `simd::best()`, so this CPU supports it.
    unsafe { (table::get::<T>(level).math)(f, x.as_ptr(), out.as_mut_ptr(), x.len()) };
    out
}

/// (a, d) of `act` on `n` through `level`'s public kernel set.
fn activate<T: Float>(level: Level, act: Activation, n: &[T]) -> Result<(Vec<T>, Vec<T>), Error> {
    let mut a = vec![T::from_f64(f64::NAN); n.len()];
    let mut d = a.clone();
    KernelSet::new(level)?.activate(act, n, &mut a, &mut d)?;
    Ok((a, d))
}

/// Calls `body` on `point(0..count)`, `CHUNK` points at a time.
fn in_chunks<T: Float>(
    count: usize,
    point: impl Fn(usize) -> T,
    mut body: impl FnMut(&[T]) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut buf = Vec::with_capacity(CHUNK);
    for start in (0..count).step_by(CHUNK) {
        buf.clear();
        buf.extend((start..count.min(start + CHUNK)).map(&point));
        body(&buf)?;
    }
    Ok(())
}

/// `count` evenly spaced points from `lo` to `hi`, both included, rounded to `T`.
fn linear<T: Float>(lo: f64, hi: f64, count: usize) -> impl Fn(usize) -> T + Copy {
    move |i| T::from_f64(lo + (hi - lo) * i as f64 / (count - 1) as f64)
}

/// `count` geometrically spaced points from `sign·lo` to `sign·hi` (lo, hi > 0), both
/// included.
fn geometric<T: Float>(lo: f64, hi: f64, count: usize, sign: f64) -> impl Fn(usize) -> T + Copy {
    let log_ratio = (hi / lo).ln();
    move |i| T::from_f64(sign * lo * (log_ratio * i as f64 / (count - 1) as f64).exp())
}

/// `count` points spread evenly over the bit patterns of the non-negative finite numbers
/// (0 and the largest finite included), times `sign`: every magnitude, subnormals too.
fn all_magnitudes<T: Float>(count: usize, sign: f64) -> impl Fn(usize) -> T + Copy {
    move |i| {
        let bits = (u128::from(T::MAX_BITS) * i as u128 / (count - 1) as u128) as u64;
        T::from_f64(sign * T::from_bits64(bits).to_f64())
    }
}

/// The worst error of `f` on `level` over the points, against `T::reference`.
fn sweep_math<T: Float>(
    level: Level,
    f: MathFn,
    count: usize,
    point: impl Fn(usize) -> T,
) -> Worst {
    let mut worst = Worst::default();
    in_chunks(count, point, |x| {
        for (&x, got) in x.iter().zip(math(level, f, x)) {
            worst.see(x, got, T::reference(f, x));
        }
        Ok(())
    })
    .expect("math sweeps cannot fail");
    worst
}

/// Sweeps `f` over the points on every level; prints the maxima and asserts the documented
/// ULP bound (and, for f64, the relative floor).
fn check_math<T: Float>(f: MathFn, what: &str, count: usize, point: impl Fn(usize) -> T + Copy) {
    for level in simd::available() {
        let bound = T::math_ulps(f);
        let worst = sweep_math(level, f, count, point);
        let report = worst.report(&format!("{level:>8} {f:?} {} {what}", T::NAME));
        println!("{report}");
        assert!(worst.ulps <= bound, "{report}: above the {bound} ULP bound");
        assert!(
            T::NAME == "f32" || worst.rel <= F64_REL,
            "{report}: above {F64_REL:e}"
        );
    }
}

/// The worst values and derivatives of an activation.
#[derive(Debug, Clone, Copy, Default)]
struct ActWorst {
    a: Worst,
    d: Worst,
}

impl ActWorst {
    fn see<T: Float>(&mut self, act: Activation, n: &[T], a: &[T], d: &[T]) {
        for ((&n, &a), &d) in n.iter().zip(a).zip(d) {
            let (ra, rd) = T::reference_activation(act, n);
            self.a.see(n, a, ra);
            self.d.see(n, d, rd);
        }
    }

    /// Prints the maxima and asserts the floors: a within 4 ULP (f32) or 1e-12
    /// relative (f64), d within 1e-6 (f32) or 1e-12 relative.
    fn check<T: Float>(&self, what: &str) {
        let ra = self.a.report(&format!("{what} {} a", T::NAME));
        let rd = self.d.report(&format!("{what} {} d", T::NAME));
        println!("{ra}\n{rd}");
        if T::NAME == "f32" {
            assert!(
                self.a.ulps <= F32_VALUE_ULPS,
                "{ra}: above {F32_VALUE_ULPS} ULP"
            );
        } else {
            assert!(self.a.rel <= F64_REL, "{ra}: above {F64_REL:e} relative");
        }
        let floor = T::DERIVATIVE_REL;
        assert!(self.d.rel <= floor, "{rd}: above {floor:e} relative");
    }
}

/// The dense input set of the activation tests: a linear sweep across the whole range where
/// the activations vary, and geometric sweeps of both signs from the smallest normal number
/// up, which decide the behaviour near 0 (tanh n ≈ n, σ ≈ ½, GELU ≈ n/2).
fn for_activation_inputs<T: Float>(
    mut body: impl FnMut(&[T]) -> Result<(), Error>,
) -> Result<(), Error> {
    let r = T::ACTIVATION_RANGE;
    in_chunks(2 * SPARSE, linear(-r, r, 2 * SPARSE), &mut body)?;
    for sign in [1.0, -1.0] {
        in_chunks(
            SPARSE / 2,
            geometric(T::MIN_NORMAL, r, SPARSE / 2, sign),
            &mut body,
        )?;
    }
    Ok(())
}

fn check_smooth_activations<T: Float>() -> Result<(), Error> {
    for level in simd::available() {
        for act in [Activation::Sigmoid, Activation::Tanh, Activation::Softplus] {
            let mut worst = ActWorst::default();
            for_activation_inputs::<T>(|n| {
                let (a, d) = activate(level, act, n)?;
                worst.see(act, n, &a, &d);
                Ok(())
            })?;
            worst.check::<T>(&format!("{level:>8} {act}"));
        }
    }
    Ok(())
}

/// GELU against the f64 formula, with a budget derived from its conditioning.
///
/// The kernel forms the argument z = 2u = 2√(2/π)·n·(1 + k n²), k = 0.044715, in `T`. Its
/// relative error is at most 6u (u the unit roundoff) to first order: the constants
/// 2√(2/π) and k rounded to `T` (u each, k's weighted by k n²/(1 + k n²) ≤ 1), n² (u, same
/// weight), the fused 1 + k n² (u), 2√(2/π)·n (u) and the final product (u). That is an
/// absolute error of 6u·|z|, and since σ'(z) = σ(z)(1 − σ(z)), s = σ(z) moves by a
/// relative (1 − s)·6u·|z|, and so does a = n·s. One ULP of a exceeds u·|a|, so that is
/// at most 6(1 − s)|z| ULP on top of the 4 ULP floor that σ and the product n·s may cost.
/// For negative n this grows like 0.43|n|³: the function is ill-conditioned there, the
/// kernel is not to blame.
///
/// The derivative d = s + tail, tail = s(1 − s)·2√(2/π)(1 + 3k n²)·n: s moves as above,
/// s(1 − s) by a relative |1 − 2s|·6u·|z| ≤ 6u·|z|, the slope 2√(2/π)(1 + 3k n²)·n by
/// another 6u. So |d − d_ref| ≤ (|s| + |tail|)·(floor + 6u·|z| + 6u): the error is measured
/// relative to Σ|terms| = |s| + |tail|, not to d, which cancels where n ≈ −1.7.
///
/// For f64 the reference is evaluated in the same precision, with the same argument
/// error, so the conditioning terms count twice.
#[derive(Debug, Clone, Copy, Default)]
struct GeluWorst {
    /// Largest error of a as a share of its budget (≤ 1 passes), and where.
    a_share: f64,
    a_at: At,
    /// Largest error of d as a share of its budget, and where.
    d_share: f64,
    d_at: At,
    /// Plain maxima for the report: ULPs of a, error of d relative to Σ|terms|.
    a_ulps: u64,
    d_rel: f64,
}

impl GeluWorst {
    fn see<T: Float>(&mut self, n: &[T], a: &[T], d: &[T]) {
        let u = T::UNIT_ROUNDOFF;
        let sides = if T::NAME == "f64" { 2.0 } else { 1.0 };
        for ((&n, &a), &d) in n.iter().zip(a).zip(d) {
            let (ra, rd) = T::reference_activation(Activation::Gelu, n);
            let nf = n.to_f64();
            let z = 2.0 * GELU_C * nf * (1.0 + GELU_K * nf * nf);
            let s = 1.0 / (1.0 + (-z).exp());
            let tail = rd.to_f64() - s;
            let a_ulps = ulps(a, ra);
            let a_share = if T::NAME == "f32" {
                a_ulps as f64 / (F32_VALUE_ULPS as f64 + sides * 6.0 * (1.0 - s) * z.abs())
            } else {
                rel_err(a, ra) / (F64_REL + sides * 6.0 * u * (1.0 - s) * z.abs())
            };
            let terms = (s.abs() + tail.abs()).max(T::MIN_NORMAL);
            let d_rel = (d.to_f64() - rd.to_f64()).abs() / terms;
            let d_share = d_rel / (T::DERIVATIVE_REL + sides * 6.0 * u * z.abs() + 6.0 * u);
            if a_share > self.a_share {
                (self.a_share, self.a_at) = (a_share, (nf, a.to_f64(), ra.to_f64()));
            }
            if d_share > self.d_share {
                (self.d_share, self.d_at) = (d_share, (nf, d.to_f64(), rd.to_f64()));
            }
            self.a_ulps = self.a_ulps.max(a_ulps);
            self.d_rel = self.d_rel.max(d_rel);
        }
    }

    fn check(&self, what: &str) {
        let report = format!(
            "{what}: a max {} ULP, worst {:.3} of budget at {:?}; \
             d max {:.2e} relative to Σ|terms|, worst {:.3} of budget at {:?}",
            self.a_ulps, self.a_share, self.a_at, self.d_rel, self.d_share, self.d_at
        );
        println!("{report}");
        assert!(self.a_share <= 1.0, "{report}: a over budget");
        assert!(self.d_share <= 1.0, "{report}: d over budget");
    }
}

fn check_gelu<T: Float>() -> Result<(), Error> {
    for level in simd::available() {
        let mut worst = GeluWorst::default();
        for_activation_inputs::<T>(|n| {
            let (a, d) = activate(level, Activation::Gelu, n)?;
            worst.see(n, &a, &d);
            Ok(())
        })?;
        worst.check(&format!("{level:>8} Gelu {}", T::NAME));
    }
    Ok(())
}

fn check_exp_limits<T: Float>() {
    let x = [
        -1000.0,
        1000.0,
        -1e30,
        1e30,
        0.0,
        -0.0,
        f64::NEG_INFINITY,
        f64::INFINITY,
    ];
    let want = [
        0.0,
        f64::INFINITY,
        0.0,
        f64::INFINITY,
        1.0,
        1.0,
        0.0,
        f64::INFINITY,
    ];
    for level in simd::available() {
        let y = math(level, MathFn::Exp, &x.map(T::from_f64));
        assert_eq!(y, want.map(T::from_f64), "{level} exp{x:?}");
    }
}

fn check_exp_subnormal<T: Float>(example: f64) {
    // The Taylor value scaled by 2^k₁ is normal and rounds once into the subnormal grid on
    // the final 2^k₂: the nearest subnormal to a value a few normal ULPs off, so one step at
    // most (plus the f64 reference's own allowance).
    let bound = 1 + if T::NAME == "f64" { REF_ULPS } else { 0 };
    let (lo, hi) = T::EXP_SUBNORMAL;
    for level in simd::available() {
        let worst = sweep_math(level, MathFn::Exp, SPARSE, linear::<T>(lo, hi, SPARSE));
        let report = worst.report(&format!("{level:>8} Exp {} subnormal results", T::NAME));
        println!("{report}");
        assert!(worst.ulps <= bound, "{report}");

        let x = T::from_f64(example);
        let y = math(level, MathFn::Exp, &[x])[0];
        let want = T::reference(MathFn::Exp, x);
        assert!(want.to_f64() < T::MIN_NORMAL && want.to_f64() > 0.0);
        assert!(
            ulps(y, want) <= bound,
            "{level} exp({x:e}) = {y:e}, want {want:e}"
        );
    }
}

fn check_subnormal_arguments<T: Float>() {
    // ln(1 + u) = u − u²/2 + … and tanh x = x − x³/3 + … round to u and x exactly there.
    let min_normal_bits = T::from_f64(T::MIN_NORMAL).ordered() as u64;
    let x: Vec<T> = (1..=SPARSE as u64)
        .map(|i| {
            T::from_bits64(
                (u128::from(i) * u128::from(min_normal_bits - 1) / SPARSE as u128) as u64,
            )
        })
        .collect();
    for level in simd::available() {
        for f in [MathFn::Log1p, MathFn::Tanh] {
            for sign in [1.0, -1.0] {
                if f == MathFn::Log1p && sign < 0.0 {
                    continue; // outside log1p_unit's domain
                }
                let x: Vec<T> = x.iter().map(|v| T::from_f64(sign * v.to_f64())).collect();
                for (x, y) in x.iter().zip(math(level, f, &x)) {
                    assert!(y == *x, "{level} {f:?}({x:e}) = {y:e}");
                }
            }
        }
    }
}

fn check_nan_in_nan_out<T: Float>() -> Result<(), Error> {
    let nan = T::from_f64(f64::NAN);
    for level in simd::available() {
        // Lengths 1..=17 put NaNs in full vectors and in partial tails of every level.
        for len in 1..=17 {
            let mut x = vec![T::from_f64(0.5); len];
            x[len / 2] = nan;
            x[len - 1] = nan;
            let nan_at = |y: &[T]| y[len / 2].is_nan() && y[len - 1].is_nan();
            for f in [MathFn::Exp, MathFn::Log1p, MathFn::Tanh] {
                assert!(nan_at(&math(level, f, &x)), "{level} {f:?}, len {len}");
            }
            for act in Activation::ELEMENTWISE {
                let (a, d) = activate(level, act, &x)?;
                assert!(nan_at(&a) && nan_at(&d), "{level} {act}, len {len}");
            }
        }
    }
    Ok(())
}

/// `sum_abs` on every level against Σ |x| in f64 (within the γ_n bound of the sum), for
/// lengths around every level's 4-vector step and its tails; a NaN or ±∞ anywhere makes it
/// NaN or +∞; an overflowing sum of finite elements is +∞ (the callers then look closer).
fn check_sum_abs<T: Float>() {
    let eps = if size_of::<T>() == 4 {
        f64::from(f32::EPSILON)
    } else {
        f64::EPSILON
    };
    let mut lens: Vec<usize> = (0..=70).collect();
    lens.extend([127, 128, 129, 1000, 4099]);
    for level in simd::available() {
        let sum = |x: &[T]| {
            // SAFETY: `x` is valid for its length; the level is available.
            unsafe { (table::get::<T>(level).sum_abs)(x.as_ptr(), x.len()) }
        };
        for &len in &lens {
            let x: Vec<T> = (0..len)
                .map(|i| T::from_f64(((i * 7919 % 1000) as f64 - 500.0) / 37.0))
                .collect();
            let want: f64 = x.iter().map(|v| v.to_f64().abs()).sum();
            let got = sum(&x).to_f64();
            let tol = (len as f64) * eps * want + f64::MIN_POSITIVE;
            assert!(
                (got - want).abs() <= tol,
                "{level} len {len}: {got:e}, want {want:e} ± {tol:e}"
            );
            for (at, bad, is) in [
                (len / 2, f64::NAN, f64::is_nan as fn(f64) -> bool),
                (len.saturating_sub(1), f64::NEG_INFINITY, |v: f64| {
                    v == f64::INFINITY
                }),
            ] {
                if len == 0 {
                    continue;
                }
                let mut y = x.clone();
                y[at] = T::from_f64(bad);
                let got = sum(&y).to_f64();
                assert!(is(got), "{level} len {len}, {bad} at {at}: {got}");
            }
        }
        let max = T::from_bits64(T::MAX_BITS);
        assert_eq!(
            sum(&[max, max]).to_f64(),
            f64::INFINITY,
            "{level}: overflow"
        );
    }
}

/// `softmax` on every level against the f64 softmax and cross-entropy of the same inputs, for
/// lengths around every level's vector width, pre-activations spread over ±60 around offsets
/// of 0, +1000 and −10⁴, with one-hot, soft and no targets. The tolerances follow the
/// computation: uⱼ = nⱼ − m rounds once (relative u, so e^uⱼ moves by |uⱼ|·u), e^uⱼ carries
/// the level's `exp` bound, and s sums `len` terms (γ_len); yⱼ = eⱼ/s adds one rounding;
/// ψ = (Σt)·ln s − Σ tⱼuⱼ inherits s's relative error once and the sums' γ_len. Also: huge
/// but finite inputs stay finite, and a NaN anywhere makes every y NaN.
fn check_softmax<T: Float>() {
    let u = T::UNIT_ROUNDOFF;
    let exp_rel = T::math_ulps(MathFn::Exp) as f64 * 2.0 * u;
    let lens = [
        1usize, 2, 3, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 100, 1000,
    ];
    for level in simd::available() {
        let softmax = |z: &mut [T], t: Option<&[T]>| KernelSet::new(level).map(|k| k.softmax(z, t));
        for &len in &lens {
            for offset in [0.0, 1000.0, -1e4] {
                let n: Vec<T> = (0..len)
                    .map(|i| T::from_f64(offset + ((i * 7919 % 1201) as f64 - 600.0) / 10.0))
                    .collect();
                let one_hot: Vec<T> = (0..len)
                    .map(|i| T::from_f64(if i == len / 3 { 1.0 } else { 0.0 }))
                    .collect();
                let soft: Vec<T> = (0..len)
                    .map(|i| T::from_f64(((i * 31 % 7) as f64) / (3.0 * len as f64)))
                    .collect();
                for t in [None, Some(&one_hot[..]), Some(&soft[..])] {
                    let ctx = format!("{level} len {len} offset {offset} targets {}", t.is_some());
                    let mut y = n.clone();
                    let ce = softmax(&mut y, t).expect("an available level").to_f64();
                    // The reference, in f64 from the same T inputs and the same m.
                    let m = n.iter().fold(n[0], |m, &v| if v > m { v } else { m });
                    let us: Vec<f64> = n.iter().map(|&v| (v - m).to_f64()).collect();
                    let es: Vec<f64> = n.iter().map(|&v| (v.to_f64() - m.to_f64()).exp()).collect();
                    let s: f64 = es.iter().sum();
                    let rel = exp_rel + (len as f64 + 2.0) * u;
                    for j in 0..len {
                        let want = es[j] / s;
                        let tol = want * (rel + us[j].abs() * u) + T::MIN_NORMAL;
                        let got = y[j].to_f64();
                        assert!(
                            (got - want).abs() <= tol,
                            "{ctx}: y[{j}] = {got:e}, want {want:e} ± {tol:e}"
                        );
                    }
                    if let Some(t) = t {
                        let tf: Vec<f64> = t.iter().map(|v| v.to_f64()).collect();
                        let sum_t: f64 = tf.iter().sum();
                        let want = sum_t * s.ln()
                            - tf.iter()
                                .zip(&n)
                                .map(|(t, &v)| t * (v.to_f64() - m.to_f64()))
                                .sum::<f64>();
                        let sum_tu: f64 = tf.iter().zip(&us).map(|(t, u)| (t * u).abs()).sum();
                        let tol = sum_t * rel + (len as f64 + 2.0) * u * sum_tu + T::MIN_NORMAL;
                        assert!(
                            (ce - want).abs() <= tol,
                            "{ctx}: cross-entropy {ce:e}, want {want:e} ± {tol:e}"
                        );
                    } else {
                        assert_eq!(ce, 0.0, "{ctx}: no targets, no loss");
                    }
                }
            }
            // A NaN anywhere reaches every output.
            let mut y: Vec<T> = (0..len).map(|i| T::from_f64(i as f64)).collect();
            y[len - 1] = T::from_f64(f64::NAN);
            softmax(&mut y, None).expect("an available level");
            assert!(y.iter().all(|v| v.is_nan()), "{level} len {len}: NaN lost");
        }
        // Huge finite pre-activations: y = (1, 0), a finite loss of 2·big.
        let big = T::from_bits64(T::MAX_BITS).to_f64() / 4.0;
        let mut y = [T::from_f64(big), T::from_f64(-big)];
        let t = [T::ZERO, T::ONE];
        let ce = softmax(&mut y, Some(&t))
            .expect("an available level")
            .to_f64();
        assert_eq!(
            (y[0].to_f64(), y[1].to_f64()),
            (1.0, 0.0),
            "{level}: huge inputs"
        );
        assert!(
            ce.is_finite() && (ce - 2.0 * big).abs() <= 2.0 * big * u,
            "{level}: {ce:e}"
        );
    }
}

fn check_finite_in_finite_out<T: Float>() -> Result<(), Error> {
    let max = T::from_bits64(T::MAX_BITS).to_f64();
    for level in simd::available() {
        for act in Activation::ELEMENTWISE {
            for sign in [1.0, -1.0] {
                let mut check = |n: &[T]| -> Result<(), Error> {
                    let (a, d) = activate(level, act, n)?;
                    for ((n, a), d) in n.iter().zip(a).zip(d) {
                        assert!(
                            a.is_finite() && d.is_finite(),
                            "{level} {act}({n:e}) = ({a:e}, {d:e})"
                        );
                    }
                    Ok(())
                };
                in_chunks(SPARSE, all_magnitudes::<T>(SPARSE, sign), &mut check)?;
                check(&[0.0, T::MIN_NORMAL, 1e30, max].map(|v| T::from_f64(sign * v)))?;
            }
        }
    }
    Ok(())
}

/// (a, d) of `act` at the given points, on `level`, as f64.
fn act_at<T: Float>(level: Level, act: Activation, n: &[f64]) -> Result<Vec<(f64, f64)>, Error> {
    let n: Vec<T> = n.iter().map(|&v| T::from_f64(v)).collect();
    let (a, d) = activate(level, act, &n)?;
    Ok(a.iter()
        .zip(&d)
        .map(|(a, d)| (a.to_f64(), d.to_f64()))
        .collect())
}

fn check_sigmoid_saturation<T: Float>() -> Result<(), Error> {
    for level in simd::available() {
        let got = act_at::<T>(level, Activation::Sigmoid, &[-1000.0, 1000.0])?;
        assert_eq!(got, [(0.0, 0.0), (1.0, 0.0)], "{level}");
    }
    Ok(())
}

fn check_tanh_saturation<T: Float>() -> Result<(), Error> {
    let n = [-1000.0, 1000.0];
    for level in simd::available() {
        assert_eq!(
            act_at::<T>(level, Activation::Tanh, &n)?,
            [(-1.0, 0.0), (1.0, 0.0)]
        );
        let y = math(level, MathFn::Tanh, &n.map(T::from_f64));
        assert_eq!(y, [-1.0, 1.0].map(T::from_f64), "{level}");
    }
    Ok(())
}

fn check_softplus_tails<T: Float>() -> Result<(), Error> {
    // ln(1 + e⁻³⁰) = e⁻³⁰ − e⁻⁶⁰/2 + …, where the textbook ln(1 + eⁿ) rounds 1 + e⁻³⁰ to 1.
    let want = T::from_f64((-30.0f64).exp().ln_1p());
    let bound = if T::NAME == "f32" {
        F32_VALUE_ULPS
    } else {
        2 + REF_ULPS
    };
    for level in simd::available() {
        let got = act_at::<T>(level, Activation::Softplus, &[1000.0, -1000.0, -30.0])?;
        assert_eq!(got[0], (1000.0, 1.0), "{level} softplus(1000)");
        assert_eq!(got[1], (0.0, 0.0), "{level} softplus(-1000)");
        let a = T::from_f64(got[2].0);
        assert!(
            ulps(a, want) <= bound,
            "{level} softplus(-30) = {a:e}, want {want:e}"
        );
    }
    Ok(())
}

macro_rules! accuracy_tests {
    ($t:ident, exp_subnormal_example: $example:expr) => {
        mod $t {
            use super::*;

            #[test]
            fn exp_is_within_its_documented_ulps_over_its_whole_range() {
                let (lo, hi) = <$t as Float>::EXP_RANGE;
                check_math::<$t>(MathFn::Exp, "dense", DENSE, linear(lo, hi, DENSE));
                check_math::<$t>(MathFn::Exp, "[-1, 1]", SPARSE, linear(-1.0, 1.0, SPARSE));
            }

            #[test]
            fn exp_is_zero_and_infinity_beyond_its_range_and_one_at_zero() {
                check_exp_limits::<$t>();
            }

            #[test]
            fn exp_rounds_subnormal_results_to_within_one_step() {
                check_exp_subnormal::<$t>($example);
            }

            #[test]
            fn log1p_is_within_its_documented_ulps_on_the_unit_interval() {
                check_math::<$t>(MathFn::Log1p, "[0, 1]", DENSE, linear(0.0, 1.0, DENSE));
            }

            #[test]
            fn log1p_keeps_full_relative_precision_for_tiny_u() {
                let tiny = geometric(1e-30, 1e-3, SPARSE, 1.0);
                check_math::<$t>(MathFn::Log1p, "[1e-30, 1e-3]", SPARSE, tiny);
            }

            #[test]
            fn log1p_and_tanh_return_subnormal_arguments_unchanged() {
                check_subnormal_arguments::<$t>();
            }

            #[test]
            fn tanh_is_within_its_documented_ulps_on_minus_20_to_20() {
                check_math::<$t>(MathFn::Tanh, "[-20, 20]", DENSE, linear(-20.0, 20.0, DENSE));
            }

            #[test]
            fn tanh_keeps_full_relative_precision_near_zero() {
                for sign in [1.0, -1.0] {
                    let near_zero = geometric(1e-38, 1.0, SPARSE, sign);
                    check_math::<$t>(MathFn::Tanh, "±[1e-38, 1]", SPARSE, near_zero);
                }
            }

            #[test]
            fn sigmoid_tanh_softplus_values_and_derivatives_match_the_f64_formula()
            -> Result<(), Error> {
                check_smooth_activations::<$t>()
            }

            #[test]
            fn gelu_matches_the_f64_formula_within_its_conditioning() -> Result<(), Error> {
                check_gelu::<$t>()
            }

            #[test]
            fn sigmoid_saturates_to_exactly_zero_and_one() -> Result<(), Error> {
                check_sigmoid_saturation::<$t>()
            }

            #[test]
            fn tanh_saturates_to_exactly_minus_one_and_one() -> Result<(), Error> {
                check_tanh_saturation::<$t>()
            }

            #[test]
            fn softplus_is_exact_in_both_tails() -> Result<(), Error> {
                check_softplus_tails::<$t>()
            }

            #[test]
            fn nan_in_gives_nan_out_everywhere() -> Result<(), Error> {
                check_nan_in_nan_out::<$t>()
            }

            #[test]
            fn no_finite_input_gives_nan_or_infinity_in_any_activation() -> Result<(), Error> {
                check_finite_in_finite_out::<$t>()
            }

            #[test]
            fn sum_abs_matches_the_f64_sum_and_propagates_nan_and_infinity() {
                check_sum_abs::<$t>()
            }

            #[test]
            fn softmax_matches_the_f64_softmax_and_cross_entropy() {
                check_softmax::<$t>()
            }
        }
    };
}

accuracy_tests!(f32, exp_subnormal_example: -100.0);
accuracy_tests!(f64, exp_subnormal_example: -740.0);

/// Every f32 bit pattern (2³², NaNs and infinities included) through exp, log1p (on its
/// domain [0, 1]) and tanh, and through the Sigmoid, Tanh, Softplus and Gelu kernels, on
/// the best level, against the bounds of the dense sweeps. Single-threaded: about ten minutes
/// of CPU time (`--release`).
#[test]
#[ignore = "sweeps all 2³² f32 values (minutes); run with --ignored"]
#[cfg(target_pointer_width = "64")]
fn exhaustive_f32_every_bit_pattern_meets_the_documented_bounds() -> Result<(), Error> {
    let level = simd::best();
    let started = std::time::Instant::now();
    let mut fns = [MathFn::Exp, MathFn::Log1p, MathFn::Tanh].map(|f| (f, Worst::default()));
    let mut acts = [Activation::Sigmoid, Activation::Tanh, Activation::Softplus]
        .map(|act| (act, ActWorst::default()));
    let mut gelu = GeluWorst::default();
    let mut unit = Vec::with_capacity(CHUNK);
    in_chunks(
        1 << 32,
        |i| f32::from_bits(i as u32),
        |x| {
            for (f, worst) in &mut fns {
                let x = if *f == MathFn::Log1p {
                    unit.clear();
                    unit.extend(x.iter().filter(|v| (0.0..=1.0).contains(*v)));
                    &unit[..]
                } else {
                    x
                };
                for (&x, got) in x.iter().zip(math(level, *f, x)) {
                    worst.see(x, got, f32::reference(*f, x));
                }
            }
            for (act, worst) in &mut acts {
                let (a, d) = activate(level, *act, x)?;
                worst.see(*act, x, &a, &d);
            }
            let (a, d) = activate(level, Activation::Gelu, x)?;
            gelu.see(x, &a, &d);
            Ok(())
        },
    )?;
    println!(
        "every f32 on {level}, {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    for (f, worst) in fns {
        let bound = f32::math_ulps(f);
        let report = worst.report(&format!("{level:>8} {f:?} f32 all"));
        println!("{report}");
        assert!(worst.ulps <= bound, "{report}: above the {bound} ULP bound");
    }
    for (act, worst) in acts {
        worst.check::<f32>(&format!("{level:>8} {act} all"));
    }
    gelu.check(&format!("{level:>8} Gelu f32 all"));
    Ok(())
}
