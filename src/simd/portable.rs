//! The portable level: `wide`'s 256-bit vectors. Their instructions are chosen at compile
//! time from the build's target features (SSE2 on a default x86-64 build, NEON on aarch64),
//! so this level runs on every CPU the build targets.

use wide::{f32x8, f64x4};

use super::Vector;

// SAFETY: `wide` compiles to instructions the build's target guarantees, so any CPU that
// runs this binary can hold and operate on these vectors.
unsafe impl Vector<f32> for f32x8 {
    const LANES: usize = 8;
    type Mask = f32x8;

    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        f32x8::splat(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees `p..p + 8` is readable; `read_unaligned` allows any
        // alignment.
        unsafe { f32x8::new(p.cast::<[f32; 8]>().read_unaligned()) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        if n == 8 {
            // SAFETY: as for `load`.
            return unsafe { Self::load(p) };
        }
        // A fixed-count loop rather than a copy of n elements: it unrolls into 8
        // predicated loads instead of a call to memcpy.
        let mut buf = [0.0f32; 8];
        for (i, x) in buf.iter_mut().enumerate() {
            if i < n {
                // SAFETY: i < n and the caller guarantees `p..p + n` is readable.
                *x = unsafe { *p.add(i) };
            }
        }
        f32x8::new(buf)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees `p..p + 8` is writable.
        unsafe { p.cast::<[f32; 8]>().write_unaligned(self.to_array()) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        if n == 8 {
            // SAFETY: as for `store`.
            return unsafe { self.store(p) };
        }
        for (i, &x) in self.to_array().iter().enumerate() {
            if i < n {
                // SAFETY: i < n and the caller guarantees `p..p + n` is writable.
                unsafe { *p.add(i) = x };
            }
        }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self / o
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f32x8::mul_add(self, b, c)
    }
    #[inline(always)]
    fn neg_mul_add(self, b: Self, c: Self) -> Self {
        f32x8::mul_neg_add(self, b, c)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.fast_max(o)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.fast_min(o)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32x8::abs(self)
    }
    #[inline(always)]
    fn lt(self, o: Self) -> Self::Mask {
        self.simd_lt(o)
    }
    #[inline(always)]
    fn is_nan(self) -> Self::Mask {
        f32x8::is_nan(self)
    }
    #[inline(always)]
    fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        m.select(a, b)
    }
    #[inline(always)]
    fn reduce_sum(self) -> f32 {
        let v = self.to_array();
        ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
    }
    #[inline(always)]
    fn reduce4(v: [Self; 4]) -> [f32; 4] {
        v.map(|x| x.reduce_sum())
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // 1.5 · 2²³ + 127: adding it leaves k + 127 in the low mantissa bits; shifting those
        // into the exponent field gives 2^k.
        let biased = self + f32x8::splat(12_582_912.0 + 127.0);
        f32x8::from_bits(biased.to_bits() << 23)
    }
}

// SAFETY: as for `f32x8` above.
unsafe impl Vector<f64> for f64x4 {
    const LANES: usize = 4;
    type Mask = f64x4;

    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        f64x4::splat(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller guarantees `p..p + 4` is readable; any alignment.
        unsafe { f64x4::new(p.cast::<[f64; 4]>().read_unaligned()) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize) -> Self {
        if n == 4 {
            // SAFETY: as for `load`.
            return unsafe { Self::load(p) };
        }
        // A fixed-count loop rather than a copy of n elements: it unrolls into 4
        // predicated loads instead of a call to memcpy.
        let mut buf = [0.0f64; 4];
        for (i, x) in buf.iter_mut().enumerate() {
            if i < n {
                // SAFETY: i < n and the caller guarantees `p..p + n` is readable.
                *x = unsafe { *p.add(i) };
            }
        }
        f64x4::new(buf)
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller guarantees `p..p + 4` is writable.
        unsafe { p.cast::<[f64; 4]>().write_unaligned(self.to_array()) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        if n == 4 {
            // SAFETY: as for `store`.
            return unsafe { self.store(p) };
        }
        for (i, &x) in self.to_array().iter().enumerate() {
            if i < n {
                // SAFETY: i < n and the caller guarantees `p..p + n` is writable.
                unsafe { *p.add(i) = x };
            }
        }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self / o
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        f64x4::mul_add(self, b, c)
    }
    #[inline(always)]
    fn neg_mul_add(self, b: Self, c: Self) -> Self {
        f64x4::mul_neg_add(self, b, c)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.fast_max(o)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.fast_min(o)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64x4::abs(self)
    }
    #[inline(always)]
    fn lt(self, o: Self) -> Self::Mask {
        self.simd_lt(o)
    }
    #[inline(always)]
    fn is_nan(self) -> Self::Mask {
        f64x4::is_nan(self)
    }
    #[inline(always)]
    fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        m.select(a, b)
    }
    #[inline(always)]
    fn reduce_sum(self) -> f64 {
        let v = self.to_array();
        (v[0] + v[2]) + (v[1] + v[3])
    }
    #[inline(always)]
    fn reduce4(v: [Self; 4]) -> [f64; 4] {
        v.map(|x| x.reduce_sum())
    }
    #[inline(always)]
    fn pow2i(self) -> Self {
        // 1.5 · 2⁵² + 1023: as for f32, the low mantissa bits become k + 1023.
        let biased = self + f64x4::splat(6_755_399_441_055_744.0 + 1023.0);
        f64x4::from_bits(biased.to_bits() << 52)
    }
}
