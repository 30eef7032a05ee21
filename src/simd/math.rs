//! Vectorised exp, log1p and tanh, and the sigmoid pair built on exp, generic over the
//! [`Vector`] of any level.
//!
//! Error bounds in ULPs (steps between adjacent values; a subnormal result counts steps of
//! the subnormal grid), as measured and asserted by `kernels::tests`: for f32 against the
//! correctly rounded value, over dense sweeps on every level and over every f32 bit pattern
//! on the best level (an `#[ignore]`d test); for f64 against `std`'s f64 function over dense
//! sweeps. `std` is itself up to an ULP off the exact value, so the f64 tests allow one ULP
//! more than the table, and the distance to the exact value may be one more too.
//!
//! | function | domain | f32 | f64 (from `std`) |
//! |---|---|---|---|
//! | `exp` | all x | 1 ULP | 1 ULP |
//! | `log1p_unit` | 0 ≤ u ≤ 1 | 2 ULP | 2 ULP |
//! | `tanh_pair`, tanh | all x | 1 ULP | 2 ULP |
//!
//! The same bounds hold with FMA (AVX2, AVX-512) and without it (the portable level of a
//! default x86-64 build, where `wide`'s `mul_add` is a multiply and an add): every
//! range reduction here is exact either way, and the roundings FMA saves are damped.
//!
//! Results below the smallest normal number come out as correctly scaled subnormals (exp:
//! within one step of the subnormal grid; log1p and tanh: exact, = u and = x), results
//! beyond the largest finite number as +∞, and no finite input gives NaN. NaN inputs are
//! not handled here: the kernels restore them at the end of each vector.
//!
//! `sigmoid_pair` and the activations built on these functions are tested through the
//! `activate` kernels against the floors: values within 4 ULP (f32) or 1e-12
//! relative (f64), derivatives within 1e-6 (f32) or 1e-12 relative.

use super::Vector;
use crate::scalar::Scalar;

#[inline(always)]
fn is_f32<T: Scalar>() -> bool {
    std::mem::size_of::<T>() == 4
}

/// A constant in every lane.
///
/// # Safety
/// The CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn splat<T: Scalar, V: Vector<T>>(x: f64) -> V {
    // SAFETY: forwarded to the caller.
    unsafe { V::splat(T::from_f64(x)) }
}

/// Horner's rule: `c[0] + x·(c[1] + x·(c[2] + …))`.
///
/// # Safety
/// The CPU supports `V`'s level.
#[inline(always)]
unsafe fn horner<T: Scalar, V: Vector<T>>(x: V, c: &[f64]) -> V {
    // SAFETY: forwarded to the caller.
    unsafe {
        let mut p = splat::<T, V>(c[c.len() - 1]);
        for &ci in c[..c.len() - 1].iter().rev() {
            p = p.mul_add(x, splat::<T, V>(ci));
        }
        p
    }
}

/// 1/k! for k = 0..=13: the Taylor coefficients of eʳ.
const EXP_TAYLOR: [f64; 14] = [
    1.0,
    1.0,
    0.5,
    0.16666666666666666,
    0.041666666666666664,
    0.008333333333333333,
    0.001388888888888889,
    0.0001984126984126984,
    2.48015873015873e-05,
    2.7557319223985893e-06,
    2.755731922398589e-07,
    2.505210838544172e-08,
    2.08767569878681e-09,
    1.6059043836821613e-10,
];

/// eˣ.
///
/// Range reduction: x = k ln 2 + r with k = round(x / ln 2), so |r| ≤ ln 2 / 2 ≈ 0.347
/// (a hair more where x/ln 2 rounds the other way without FMA). Cody–Waite: ln 2 is split
/// into a head of 16 (f32) or 42 (f64) significant bits and a tail (the rest, rounded to
/// `T`), so k·head is exact for every k the clamp allows (|k| ≤ 150 < 2⁸, or 1076 < 2¹¹),
/// and x − k·head is exact too (Sterbenz: x and k·head are within a factor 2 of each other,
/// or k = 0). The one rounding left, of r − k·tail, is half an ULP of r, with or without
/// FMA; the tail's own error, |k|·2⁻⁴¹ (f32) or |k|·2⁻⁹⁶ (f64), is far below it. A head of
/// full precision would leave k·head inexact where `mul_add` is a multiply and an add
/// (the portable level without FMA): an error of half an ULP of x, up to 64 ULP of eˣ.
/// Then eʳ by its Taylor series: to r⁷ for f32 (truncation ≤ 0.347⁸/8! = 5.4e-9 relative,
/// 0.05 ULP) and to r¹³ for f64 (≤ 0.347¹⁴/14! = 4.2e-18); Horner's last step, p·r + 1,
/// rounds once with FMA (twice without: p·r's rounding, at |p·r| < 1/2, is at most half
/// the result's). Finally eˣ = eʳ·2^k, the power of two applied as 2^k₁ · 2^k₂ with k₁
/// clamped to the normal exponent range, so results that are subnormal are rounded once,
/// correctly, instead of flushed to zero.
/// x is first clamped to [−104, 89] (f32) or [−746, 710] (f64): beyond those the result is
/// 0 or ∞ anyway, and k stays small enough for the bit tricks.
///
/// # Safety
/// The CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn exp<T: Scalar, V: Vector<T>>(x: V) -> V {
    // SAFETY: forwarded to the caller.
    unsafe {
        let f32 = is_f32::<T>();
        let (lo, hi) = if f32 { (-104.0, 89.0) } else { (-746.0, 710.0) };
        // head = round(ln 2 · 2¹⁶) / 2¹⁶ or round(ln 2 · 2⁴²) / 2⁴², tail = ln 2 − head.
        let (ln2_hi, ln2_lo) = if f32 {
            (0.693145751953125, 1.4286068203094173e-06)
        } else {
            (0.6931471805598903, 5.497923018708371e-14)
        };
        // 1.5 · 2^(mantissa bits): adding it rounds to an integer (ties to even).
        let magic = if f32 {
            12_582_912.0
        } else {
            6_755_399_441_055_744.0
        };
        let (emin, emax) = if f32 {
            (-126.0, 127.0)
        } else {
            (-1022.0, 1023.0)
        };

        let x = x.max(splat(lo)).min(splat(hi));
        let m = splat::<T, V>(magic);
        let k = x.mul_add(splat(std::f64::consts::LOG2_E), m).sub(m);
        let r = k.neg_mul_add(splat(ln2_hi), x);
        let r = k.neg_mul_add(splat(ln2_lo), r);
        let p = horner(
            r,
            if f32 {
                &EXP_TAYLOR[..8]
            } else {
                &EXP_TAYLOR[..]
            },
        );
        let k1 = k.max(splat(emin)).min(splat(emax));
        let k2 = k.sub(k1);
        p.mul(k1.pow2i()).mul(k2.pow2i())
    }
}

/// (σ(x), σ(−x), e⁻|ˣ|) for the logistic σ(x) = 1/(1 + e⁻ˣ): with e = e^(−|x|) ∈ (0, 1] and
/// q = 1/(1 + e), the two are q and e·q in the order x's sign gives. Neither overflows nor
/// cancels; σ(−1000) = 0 and σ(1000) = 1 exactly.
///
/// # Safety
/// The CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn sigmoid_pair<T: Scalar, V: Vector<T>>(x: V) -> (V, V, V) {
    // SAFETY: forwarded to the caller.
    unsafe {
        let one = splat::<T, V>(1.0);
        let e = exp(splat::<T, V>(0.0).sub(x.abs()));
        let q = one.div(one.add(e));
        let eq = e.mul(q);
        let neg = x.lt(splat(0.0));
        (V::select(neg, eq, q), V::select(neg, q, eq), e)
    }
}

/// ln(1 + u) for 0 ≤ u ≤ 1 (what softplus needs).
///
/// ln(1 + u) = 2 atanh(s) with s = u / (2 + u) ∈ [0, 1/3], and
/// 2 atanh(s) = 2s + 2s·s²·(1/3 + s²/5 + s⁴/7 + …). In w = 2s = 2u / (2 + u) and
/// v = w² ≤ 4/9 this is w + w·v·Σⱼ vʲ / ((2j + 3)·4ʲ⁺¹), summed to v⁶ for f32 (truncation
/// ≤ (1/9)⁸/17 = 1.4e-9 relative) and to v¹⁵ for f64 ((1/9)¹⁷/35 = 5.3e-18). The rounding
/// of 2 + u and of the quotient put ≤ 2 half-ULPs of relative error into w, which the
/// result inherits; the series' own roundings are damped by its weight v/12 ≤ 1/27. For
/// small u, w ≈ u carries the value to full relative precision: no 1 + u is ever rounded
/// away, and for subnormal u, w = 2u / 2 = u exactly (forming s = u/2 first would round).
///
/// # Safety
/// The CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn log1p_unit<T: Scalar, V: Vector<T>>(u: V) -> V {
    /// 1/((2j + 3)·4ʲ⁺¹) for j = 0..16: the series of (ln(1 + u) / w − 1) / w² in w².
    const SERIES: [f64; 16] = [
        1.0 / (3.0 * 4.0),
        1.0 / (5.0 * 16.0),
        1.0 / (7.0 * 64.0),
        1.0 / (9.0 * 256.0),
        1.0 / (11.0 * 1024.0),
        1.0 / (13.0 * 4096.0),
        1.0 / (15.0 * 16384.0),
        1.0 / (17.0 * 65536.0),
        1.0 / (19.0 * 262144.0),
        1.0 / (21.0 * 1048576.0),
        1.0 / (23.0 * 4194304.0),
        1.0 / (25.0 * 16777216.0),
        1.0 / (27.0 * 67108864.0),
        1.0 / (29.0 * 268435456.0),
        1.0 / (31.0 * 1073741824.0),
        1.0 / (33.0 * 4294967296.0),
    ];
    // SAFETY: forwarded to the caller.
    unsafe {
        let w = u.add(u).div(splat::<T, V>(2.0).add(u));
        let v = w.mul(w);
        let p = horner(
            v,
            if is_f32::<T>() {
                &SERIES[..7]
            } else {
                &SERIES[..]
            },
        );
        w.mul(v).mul_add(p, w)
    }
}

/// Taylor coefficients of tanh x / x − 1 in powers of x² (x³ … x¹⁷): −1/3, 2/15, −17/315,
/// 62/2835, … = 2²ⁿ(2²ⁿ − 1)B₂ₙ/(2n)!.
const TANH_TAYLOR: [f64; 8] = [
    -0.3333333333333333,
    0.13333333333333333,
    -0.05396825396825397,
    0.021869488536155203,
    -0.008863235529902197,
    0.003592128036572481,
    -0.0014558343870513183,
    0.000590027440945586,
];

/// The convergent of Lambert's continued fraction
/// tanh x = x / (1 + x²/(3 + x²/(5 + … + x²/15))), written as x + x³·R(x²)/D(x²):
/// the numerator and denominator coefficients of R and D, lowest power first. Integers,
/// so exact in f64.
const TANH_LAMBERT_R: [f64; 4] = [-675675.0, -45045.0, -594.0, -1.0];
const TANH_LAMBERT_D: [f64; 5] = [2027025.0, 945945.0, 51975.0, 630.0, 1.0];

/// (tanh x, 1 − tanh² x).
///
/// For |x| ≥ x₀ (0.55 for f32, 0.625 for f64): with e = e^(−2|x|) and q = 1/(1 + e),
/// 1 − |tanh x| = 2e·q and 1 + |tanh x| = 2q, both free of cancellation, so tanh = ±(1 − 2eq)
/// loses at most (1 − t)/t ≤ 1 (f32; 0.8 for f64) times the ≈ 2 half-ULPs of error of 2eq,
/// and the derivative (1 − |a|)(1 + |a|) keeps full relative precision as |x| → ∞.
/// For |x| < x₀, where 1 − 2eq would cancel, x + x³·c(x²), the correction c ≈ −1/3 carrying
/// a weight ≤ x₀²/3 < 0.14 of its own rounding errors into the result:
/// - f32: the Taylor series of tanh to x¹⁷ (truncation 5e-9 relative at 0.55), and 1 − a²;
/// - f64: c = R/D from Lambert's continued fraction (above; truncation 6.2e-18 relative at
///   0.625, where Taylor would need terms to x⁴³), and 1 − a². The division costs one more
///   `div` than Taylor, but the higher x₀ takes the big branch's amplification from 2.4
///   (at Taylor's reach of 0.3 with terms to x²¹) down to 0.8.
///
/// # Safety
/// The CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn tanh_pair<T: Scalar, V: Vector<T>>(x: V) -> (V, V) {
    // SAFETY: forwarded to the caller.
    unsafe {
        let f32 = is_f32::<T>();
        let one = splat::<T, V>(1.0);
        let zero = splat::<T, V>(0.0);
        let ax = x.abs();
        let e = exp(zero.sub(ax.add(ax)));
        let q = one.div(one.add(e));
        let one_minus = e.add(e).mul(q);
        let t_big = one.sub(one_minus);
        let d_big = one_minus.mul(q.add(q));
        let t_big = V::select(x.lt(zero), zero.sub(t_big), t_big);

        let x2 = x.mul(x);
        let c = if f32 {
            horner(x2, &TANH_TAYLOR)
        } else {
            horner(x2, &TANH_LAMBERT_R).div(horner(x2, &TANH_LAMBERT_D))
        };
        let t_small = x.mul(x2).mul_add(c, x);
        let d_small = t_small.neg_mul_add(t_small, one);

        let small = ax.lt(splat(if f32 { 0.55 } else { 0.625 }));
        (
            V::select(small, t_small, t_big),
            V::select(small, d_small, d_big),
        )
    }
}
