//! The x86-64 levels: AVX2 + FMA (256-bit) and AVX-512F (512-bit), on `std::arch`.
//!
//! Each type is a thin wrapper around a register type. Per the [`Vector`] contract a value
//! exists only on a CPU with the level's features, so every operation below runs intrinsics
//! the CPU has. The intrinsics get inlined because the generic kernel bodies are
//! `#[inline(always)]` into functions carrying the level's `#[target_feature]`s.

use std::arch::x86_64::*;

use super::Vector;

/// Eight f32 lanes in a ymm register (AVX2 + FMA).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Avx2F32(__m256);
/// Four f64 lanes in a ymm register (AVX2 + FMA).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Avx2F64(__m256d);
/// Sixteen f32 lanes in a zmm register (AVX-512F).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Avx512F32(__m512);
/// Eight f64 lanes in a zmm register (AVX-512F).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Avx512F64(__m512d);

/// The lane-wise operations whose intrinsics differ only by name.
macro_rules! lanewise {
    ($ty:ident, $add:ident, $sub:ident, $mul:ident, $div:ident, $fmadd:ident, $fnmadd:ident,
     $max:ident, $min:ident) => {
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: `self` exists, so the CPU has this level (the `Vector` contract).
            $ty(unsafe { $add(self.0, o.0) })
        }
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            // SAFETY: as in `add`.
            $ty(unsafe { $sub(self.0, o.0) })
        }
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            // SAFETY: as in `add`.
            $ty(unsafe { $mul(self.0, o.0) })
        }
        #[inline(always)]
        fn div(self, o: Self) -> Self {
            // SAFETY: as in `add`.
            $ty(unsafe { $div(self.0, o.0) })
        }
        #[inline(always)]
        fn mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: as in `add` (both levels include FMA).
            $ty(unsafe { $fmadd(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn neg_mul_add(self, b: Self, c: Self) -> Self {
            // SAFETY: as in `add`.
            $ty(unsafe { $fnmadd(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn max(self, o: Self) -> Self {
            // SAFETY: as in `add`.
            $ty(unsafe { $max(self.0, o.0) })
        }
        #[inline(always)]
        fn min(self, o: Self) -> Self {
            // SAFETY: as in `add`.
            $ty(unsafe { $min(self.0, o.0) })
        }
    };
}

// ---------------------------------------------------------------- AVX2 + FMA, f32

/// Lanes `i < n` set, as an integer mask for `vmaskmov`.
#[inline(always)]
unsafe fn avx2_mask32(n: usize) -> __m256i {
    // SAFETY: the caller has AVX2; `n ≤ 8` so the cast is exact.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

#[inline(always)]
unsafe fn avx2_mask64(n: usize) -> __m256i {
    // SAFETY: the caller has AVX2; `n ≤ 4` so the cast is exact.
    unsafe { _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3)) }
}

/// Sum of the four lanes of an xmm, as ((v0 + v2) + (v1 + v3)).
#[inline(always)]
unsafe fn hsum128(v: __m128) -> f32 {
    // SAFETY: SSE is part of x86-64; the caller has AVX.
    unsafe {
        let s = _mm_add_ps(v, _mm_movehl_ps(v, v));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s)))
    }
}

#[inline(always)]
unsafe fn hsum128d(v: __m128d) -> f64 {
    // SAFETY: SSE2 is part of x86-64.
    unsafe { _mm_cvtsd_f64(_mm_add_sd(v, _mm_unpackhi_pd(v, v))) }
}

// SAFETY: constructors are `unsafe` and require AVX2 + FMA; see the module docs.
unsafe impl Vector<f32> for Avx2F32 {
    const LANES: usize = 8;
    type Mask = __m256;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller guarantees AVX.
        Avx2F32(unsafe { _mm256_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees AVX and 8 readable elements at `p`.
        Avx2F32(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: masked lanes are neither read nor able to fault (`vmaskmovps`); the caller
        // guarantees `p..p + n` readable.
        Avx2F32(unsafe { _mm256_maskload_ps(p, avx2_mask32(n)) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable elements at `p`.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: only lanes < n are written; the caller guarantees them writable.
        unsafe { _mm256_maskstore_ps(p, avx2_mask32(n), self.0) }
    }
    lanewise!(
        Avx2F32,
        _mm256_add_ps,
        _mm256_sub_ps,
        _mm256_mul_ps,
        _mm256_div_ps,
        _mm256_fmadd_ps,
        _mm256_fnmadd_ps,
        _mm256_max_ps,
        _mm256_min_ps
    );
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: as in `add`.
        Avx2F32(unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0) })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __m256 {
        // SAFETY: as in `add`.
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __m256 {
        // SAFETY: as in `add`.
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __m256, a: Self, b: Self) -> Self {
        // SAFETY: `a` exists, so the CPU has AVX.
        Avx2F32(unsafe { _mm256_blendv_ps(b.0, a.0, m) })
    }
    #[inline(always)]
    fn reduce_sum(self) -> f32 {
        // SAFETY: as in `add`.
        unsafe {
            hsum128(_mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            ))
        }
    }
    #[inline(always)]
    fn reduce4(v: [Self; 4]) -> [f32; 4] {
        // SAFETY: as in `add`. hadd(hadd(v0, v1), hadd(v2, v3)) leaves the four sums of
        // each 128-bit half in order; adding the halves finishes them.
        unsafe {
            let t0 = _mm256_hadd_ps(v[0].0, v[1].0);
            let t1 = _mm256_hadd_ps(v[2].0, v[3].0);
            let t2 = _mm256_hadd_ps(t0, t1);
            let s = _mm_add_ps(_mm256_castps256_ps128(t2), _mm256_extractf128_ps::<1>(t2));
            let mut out = [0.0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), s);
            out
        }
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: as in `add`. 1.5 · 2²³ + 127 leaves k + 127 in the low mantissa bits;
        // shifting them into the exponent field gives 2^k.
        Avx2F32(unsafe {
            let biased = _mm256_add_ps(self.0, _mm256_set1_ps(12_582_912.0 + 127.0));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_castps_si256(biased)))
        })
    }
}

// SAFETY: constructors are `unsafe` and require AVX2 + FMA; see the module docs.
unsafe impl Vector<f64> for Avx2F64 {
    const LANES: usize = 4;
    type Mask = __m256d;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: the caller guarantees AVX.
        Avx2F64(unsafe { _mm256_set1_pd(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller guarantees AVX and 4 readable elements at `p`.
        Avx2F64(unsafe { _mm256_loadu_pd(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize) -> Self {
        // SAFETY: masked lanes are neither read nor able to fault; `p..p + n` is readable.
        Avx2F64(unsafe { _mm256_maskload_pd(p, avx2_mask64(n)) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller guarantees 4 writable elements at `p`.
        unsafe { _mm256_storeu_pd(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        // SAFETY: only lanes < n are written; the caller guarantees them writable.
        unsafe { _mm256_maskstore_pd(p, avx2_mask64(n), self.0) }
    }
    lanewise!(
        Avx2F64,
        _mm256_add_pd,
        _mm256_sub_pd,
        _mm256_mul_pd,
        _mm256_div_pd,
        _mm256_fmadd_pd,
        _mm256_fnmadd_pd,
        _mm256_max_pd,
        _mm256_min_pd
    );
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: as in `add`.
        Avx2F64(unsafe { _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0) })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __m256d {
        // SAFETY: as in `add`.
        unsafe { _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __m256d {
        // SAFETY: as in `add`.
        unsafe { _mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __m256d, a: Self, b: Self) -> Self {
        // SAFETY: `a` exists, so the CPU has AVX.
        Avx2F64(unsafe { _mm256_blendv_pd(b.0, a.0, m) })
    }
    #[inline(always)]
    fn reduce_sum(self) -> f64 {
        // SAFETY: as in `add`.
        unsafe {
            hsum128d(_mm_add_pd(
                _mm256_castpd256_pd128(self.0),
                _mm256_extractf128_pd::<1>(self.0),
            ))
        }
    }
    #[inline(always)]
    fn reduce4(v: [Self; 4]) -> [f64; 4] {
        // SAFETY: as in `add`. hadd pairs lanes within each 128-bit half; the two
        // permutes line the halves up so one add finishes all four sums.
        unsafe {
            let t0 = _mm256_hadd_pd(v[0].0, v[1].0);
            let t1 = _mm256_hadd_pd(v[2].0, v[3].0);
            let lo = _mm256_permute2f128_pd::<0x20>(t0, t1);
            let hi = _mm256_permute2f128_pd::<0x31>(t0, t1);
            let mut out = [0.0f64; 4];
            _mm256_storeu_pd(out.as_mut_ptr(), _mm256_add_pd(lo, hi));
            out
        }
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: as in `add`. 1.5 · 2⁵² + 1023 leaves k + 1023 in the low mantissa bits.
        Avx2F64(unsafe {
            let biased = _mm256_add_pd(self.0, _mm256_set1_pd(6_755_399_441_055_744.0 + 1023.0));
            _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_castpd_si256(biased)))
        })
    }
}

// ---------------------------------------------------------------- AVX-512F

// SAFETY: constructors are `unsafe` and require AVX-512F; see the module docs.
unsafe impl Vector<f32> for Avx512F32 {
    const LANES: usize = 16;
    type Mask = __mmask16;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        Avx512F32(unsafe { _mm512_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees AVX-512F and 16 readable elements at `p`.
        Avx512F32(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed (fault suppression); `p..p + n` is
        // readable; n ≤ 16 so the shift (in u32) is in range.
        Avx512F32(unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 16 writable elements at `p`.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: only lanes < n are written; the caller guarantees them writable.
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, self.0) }
    }
    lanewise!(
        Avx512F32,
        _mm512_add_ps,
        _mm512_sub_ps,
        _mm512_mul_ps,
        _mm512_div_ps,
        _mm512_fmadd_ps,
        _mm512_fnmadd_ps,
        _mm512_max_ps,
        _mm512_min_ps
    );
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: as in `add`.
        Avx512F32(unsafe { _mm512_abs_ps(self.0) })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __mmask16 {
        // SAFETY: as in `add`.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __mmask16 {
        // SAFETY: as in `add`.
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __mmask16, a: Self, b: Self) -> Self {
        // SAFETY: `a` exists, so the CPU has AVX-512F.
        Avx512F32(unsafe { _mm512_mask_blend_ps(m, b.0, a.0) })
    }
    #[inline(always)]
    fn reduce_sum(self) -> f32 {
        // SAFETY: as in `add`; AVX-512F implies AVX.
        unsafe {
            let lo = _mm512_castps512_ps256(self.0);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0)));
            Avx2F32(_mm256_add_ps(lo, hi)).reduce_sum()
        }
    }
    #[inline(always)]
    fn reduce4(v: [Self; 4]) -> [f32; 4] {
        // SAFETY: as in `add`; AVX-512F implies AVX2. Fold each vector to 256 bits, then
        // finish as AVX2 does.
        unsafe {
            Avx2F32::reduce4([
                Avx2F32(_mm256_add_ps(
                    _mm512_castps512_ps256(v[0].0),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v[0].0))),
                )),
                Avx2F32(_mm256_add_ps(
                    _mm512_castps512_ps256(v[1].0),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v[1].0))),
                )),
                Avx2F32(_mm256_add_ps(
                    _mm512_castps512_ps256(v[2].0),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v[2].0))),
                )),
                Avx2F32(_mm256_add_ps(
                    _mm512_castps512_ps256(v[3].0),
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v[3].0))),
                )),
            ])
        }
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: as in `add`; see `Avx2F32::pow2i` for the bit trick.
        Avx512F32(unsafe {
            let biased = _mm512_add_ps(self.0, _mm512_set1_ps(12_582_912.0 + 127.0));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_castps_si512(biased)))
        })
    }
}

// SAFETY: constructors are `unsafe` and require AVX-512F; see the module docs.
unsafe impl Vector<f64> for Avx512F64 {
    const LANES: usize = 8;
    type Mask = __mmask8;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: the caller guarantees AVX-512F.
        Avx512F64(unsafe { _mm512_set1_pd(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller guarantees AVX-512F and 8 readable elements at `p`.
        Avx512F64(unsafe { _mm512_loadu_pd(p) })
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed; `p..p + n` is readable; n ≤ 8, shifted in u32.
        Avx512F64(unsafe { _mm512_maskz_loadu_pd(((1u32 << n) - 1) as u8, p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller guarantees 8 writable elements at `p`.
        unsafe { _mm512_storeu_pd(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        // SAFETY: only lanes < n are written; the caller guarantees them writable.
        unsafe { _mm512_mask_storeu_pd(p, ((1u32 << n) - 1) as u8, self.0) }
    }
    lanewise!(
        Avx512F64,
        _mm512_add_pd,
        _mm512_sub_pd,
        _mm512_mul_pd,
        _mm512_div_pd,
        _mm512_fmadd_pd,
        _mm512_fnmadd_pd,
        _mm512_max_pd,
        _mm512_min_pd
    );
    #[inline(always)]
    fn abs(self) -> Self {
        // SAFETY: as in `add`.
        Avx512F64(unsafe { _mm512_abs_pd(self.0) })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __mmask8 {
        // SAFETY: as in `add`.
        unsafe { _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    fn is_nan(self) -> __mmask8 {
        // SAFETY: as in `add`.
        unsafe { _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, self.0) }
    }
    #[inline(always)]
    fn select(m: __mmask8, a: Self, b: Self) -> Self {
        // SAFETY: `a` exists, so the CPU has AVX-512F.
        Avx512F64(unsafe { _mm512_mask_blend_pd(m, b.0, a.0) })
    }
    #[inline(always)]
    fn reduce_sum(self) -> f64 {
        // SAFETY: as in `add`; AVX-512F implies AVX.
        unsafe {
            let lo = _mm512_castpd512_pd256(self.0);
            let hi = _mm512_extractf64x4_pd::<1>(self.0);
            Avx2F64(_mm256_add_pd(lo, hi)).reduce_sum()
        }
    }
    #[inline(always)]
    fn reduce4(v: [Self; 4]) -> [f64; 4] {
        // SAFETY: as in `add`; AVX-512F implies AVX2. Fold to 256 bits, finish as AVX2.
        unsafe {
            Avx2F64::reduce4([
                Avx2F64(_mm256_add_pd(
                    _mm512_castpd512_pd256(v[0].0),
                    _mm512_extractf64x4_pd::<1>(v[0].0),
                )),
                Avx2F64(_mm256_add_pd(
                    _mm512_castpd512_pd256(v[1].0),
                    _mm512_extractf64x4_pd::<1>(v[1].0),
                )),
                Avx2F64(_mm256_add_pd(
                    _mm512_castpd512_pd256(v[2].0),
                    _mm512_extractf64x4_pd::<1>(v[2].0),
                )),
                Avx2F64(_mm256_add_pd(
                    _mm512_castpd512_pd256(v[3].0),
                    _mm512_extractf64x4_pd::<1>(v[3].0),
                )),
            ])
        }
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // SAFETY: as in `add`; see `Avx2F64::pow2i` for the bit trick.
        Avx512F64(unsafe {
            let biased = _mm512_add_pd(self.0, _mm512_set1_pd(6_755_399_441_055_744.0 + 1023.0));
            _mm512_castsi512_pd(_mm512_slli_epi64::<52>(_mm512_castpd_si512(biased)))
        })
    }
}
