//! The vector abstraction every kernel is written against.

use crate::scalar::Scalar;

/// A SIMD vector of `LANES` elements of `T`, for one instruction-set level.
///
/// # Safety
/// Implementing types wrap instructions the CPU may lack. A value of such a type may only
/// come into existence on a CPU that has them: every constructor (`splat`, the loads) is an
/// `unsafe fn` whose caller promises this. Operations on an existing value are then safe,
/// because the value's existence proves the instructions are there.
pub(crate) unsafe trait Vector<T: Scalar>: Copy {
    /// Elements per vector.
    const LANES: usize;
    /// The result of a lane-wise comparison.
    type Mask: Copy;

    /// Every lane `x`.
    ///
    /// # Safety
    /// The CPU supports the implementing level.
    unsafe fn splat(x: T) -> Self;
    /// `LANES` elements from `p`; any alignment.
    ///
    /// # Safety
    /// The CPU supports the level and `p..p + LANES` is readable.
    unsafe fn load(p: *const T) -> Self;
    /// `n ≤ LANES` elements from `p`, the other lanes 0; reads nothing past `p + n`.
    ///
    /// # Safety
    /// The CPU supports the level and `p..p + n` is readable.
    unsafe fn load_partial(p: *const T, n: usize) -> Self;
    /// Writes the `LANES` lanes to `p`; any alignment.
    ///
    /// # Safety
    /// `p..p + LANES` is writable.
    unsafe fn store(self, p: *mut T);
    /// Writes the first `n ≤ LANES` lanes to `p`; touches nothing past `p + n`.
    ///
    /// # Safety
    /// `p..p + n` is writable.
    unsafe fn store_partial(self, p: *mut T, n: usize);

    /// Lane-wise `self + o`.
    fn add(self, o: Self) -> Self;
    /// Lane-wise `self − o`.
    fn sub(self, o: Self) -> Self;
    /// Lane-wise `self · o`.
    fn mul(self, o: Self) -> Self;
    /// Lane-wise `self / o`, correctly rounded.
    fn div(self, o: Self) -> Self;
    /// Lane-wise `self · b + c`: one rounding where the level has FMA (AVX2, AVX-512;
    /// the portable level fuses only if the build enables FMA).
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// Lane-wise `c − self · b`, rounded as `mul_add`.
    fn neg_mul_add(self, b: Self, c: Self) -> Self;
    /// Lane-wise maximum; unspecified which operand a NaN lane gives.
    fn max(self, o: Self) -> Self;
    /// Lane-wise minimum; unspecified which operand a NaN lane gives.
    fn min(self, o: Self) -> Self;
    /// Lane-wise |self|.
    fn abs(self) -> Self;
    /// Lanes where `self < o` (false for NaN).
    fn lt(self, o: Self) -> Self::Mask;
    /// Lanes where `self` is NaN.
    fn is_nan(self) -> Self::Mask;
    /// `a` where `m` is set, else `b`.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// Sum of the lanes, in a fixed order.
    fn reduce_sum(self) -> T;
    /// The lane sums of four vectors, each in a fixed order (cheaper than four
    /// `reduce_sum`s: the shuffles are shared).
    fn reduce4(v: [Self; 4]) -> [T; 4];
    /// 2^k for lanes holding integers k in the normal exponent range
    /// (−126..=127 for f32, −1022..=1023 for f64), built from the exponent bits.
    fn pow2i(self) -> Self;
}
