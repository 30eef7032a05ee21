//! Vectorised exp, log1p and tanh, and the sigmoid pair built on exp, generic over the
//! [`Vector`] of any level.
//!
//! Error bounds (tested in `tests` below over dense ranges, and over every f32 by an
//! `#[ignore]`d sweep), against the correctly rounded value, with FMA (AVX2, AVX-512):
//!
//! | function | domain | f32 | f64 |
//! |---|---|---|---|
//! | `exp` | all finite x | ≤ 2 ULP | ≤ 2 ULP |
//! | `log1p` | 0 ≤ u ≤ 1 | ≤ 3 ULP | ≤ 3 ULP |
//! | `tanh` | all finite x | ≤ 3 ULP | relative ≤ 1e-14 |
//!
//! Results below the smallest normal number come out as correctly scaled subnormals
//! (absolute error ≤ 1 ULP of the subnormal), overflow gives +∞ exactly where the true value
//! exceeds the largest finite number, and no finite input gives NaN. NaN inputs are not
//! handled here: the activation kernels restore them at the end of each vector.

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
/// Range reduction: x = k ln 2 + r with k = round(x / ln 2), so |r| ≤ ln 2 / 2 ≈ 0.347;
/// r is formed with FMAs against ln 2 split into a head (ln 2 rounded to `T`) and a tail
/// (the rest), so its error is below half an ULP of r. Then eʳ by its Taylor series: to r⁷
/// for f32 (truncation ≤ 0.347⁸/8! = 5.4e-9 relative, 0.05 ULP) and to r¹³ for f64
/// (≤ 0.347¹⁴/14! = 4.2e-18); Horner's last step, p·r + 1, rounds once. Finally eˣ = eʳ·2^k,
/// the power of two applied as 2^k₁ · 2^k₂ with k₁ clamped to the normal exponent range, so
/// results that are subnormal are rounded once, correctly, instead of flushed to zero.
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
        let (ln2_hi, ln2_lo) = if f32 {
            (0.6931471824645996, -1.904654299957768e-09)
        } else {
            (0.6931471805599453, 2.3190468138462996e-17)
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
/// 2 atanh(s) = 2s + 2s·t·(1/3 + t/5 + t²/7 + …), t = s² ≤ 1/9: to t⁷ for f32 (truncation
/// ≤ (1/9)⁸/17 = 1.4e-9 relative) and to t¹⁶ for f64 ((1/9)¹⁷/35 = 5.3e-18). For small u,
/// s ≈ u/2 carries the value to full relative precision: no 1 + u is ever rounded away.
///
/// # Safety
/// The CPU supports `V`'s level.
#[inline(always)]
pub(crate) unsafe fn log1p_unit<T: Scalar, V: Vector<T>>(u: V) -> V {
    /// 1/(2j + 3) for j = 0..16: the series of (atanh(s)/s − 1)/s².
    const ATANH: [f64; 16] = [
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
        1.0 / 23.0,
        1.0 / 25.0,
        1.0 / 27.0,
        1.0 / 29.0,
        1.0 / 31.0,
        1.0 / 33.0,
    ];
    // SAFETY: forwarded to the caller.
    unsafe {
        let s = u.div(splat::<T, V>(2.0).add(u));
        let s2 = s.add(s);
        let t = s.mul(s);
        let p = horner(
            t,
            if is_f32::<T>() {
                &ATANH[..7]
            } else {
                &ATANH[..]
            },
        );
        s2.mul(t).mul_add(p, s2)
    }
}

/// Taylor coefficients of tanh x / x − 1 in powers of x² (x³ … x²¹): −1/3, 2/15, −17/315,
/// 62/2835, … = 2²ⁿ(2²ⁿ − 1)B₂ₙ/(2n)!.
const TANH_TAYLOR: [f64; 10] = [
    -0.3333333333333333,
    0.13333333333333333,
    -0.05396825396825397,
    0.021869488536155203,
    -0.008863235529902197,
    0.003592128036572481,
    -0.0014558343870513183,
    0.000590027440945586,
    -0.00023912911424355248,
    9.691537956929451e-05,
];

/// (tanh x, 1 − tanh² x).
///
/// For |x| ≥ x₀ (0.55 for f32, 0.3 for f64): with e = e^(−2|x|) and q = 1/(1 + e),
/// 1 − |tanh x| = 2e·q and 1 + |tanh x| = 2q, both free of cancellation, so tanh = ±(1 − 2eq)
/// loses at most (1 − t)/t ≤ 1 (f32; 2.4 for f64) times the ≈ 2.5 ULP error of 2eq, and the
/// derivative (1 − |a|)(1 + |a|) keeps full relative precision as |x| → ∞.
/// For |x| < x₀, where 1 − 2eq would cancel: the Taylor series x + x³·P(x²) to x¹⁷ (f32;
/// truncation 5e-9 relative at 0.55) or x²¹ (f64; 1.9e-16 at 0.3), and 1 − a².
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
        let p = horner(
            x2,
            if f32 {
                &TANH_TAYLOR[..8]
            } else {
                &TANH_TAYLOR[..]
            },
        );
        let t_small = x.mul(x2).mul_add(p, x);
        let d_small = t_small.neg_mul_add(t_small, one);

        let small = ax.lt(splat(if f32 { 0.55 } else { 0.3 }));
        (
            V::select(small, t_small, t_big),
            V::select(small, d_small, d_big),
        )
    }
}
