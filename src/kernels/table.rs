//! One table of kernel entry points per (SIMD level, element type): the generic bodies of
//! `body.rs` instantiated inside functions compiled with the level's target features.

use crate::activation::Activation;
use crate::scalar::Scalar;
use crate::simd::Level;

use super::body::MathFn;

/// Entry points of one level for `T`. Every function has `body.rs`'s pointer contract and
/// requires a CPU with the table's level.
pub struct Table<T> {
    pub(crate) affine: unsafe fn(*const T, usize, usize, usize, *const T, *const T, *mut T),
    pub(crate) activate: unsafe fn(Activation, *const T, *mut T, *mut T, usize),
    pub(crate) rank1_update: unsafe fn(*mut T, usize, usize, usize, T, *const T, *const T),
    pub(crate) backward: unsafe fn(*const T, usize, usize, usize, *const T, *const T, *mut T),
    #[allow(clippy::type_complexity)]
    pub(crate) backward_update:
        unsafe fn(*mut T, usize, usize, usize, T, *const T, *const T, *const T, *mut T),
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) math: unsafe fn(MathFn, *const T, *mut T, usize),
    pub(crate) sum_abs: unsafe fn(*const T, usize) -> T,
    pub(crate) softmax: unsafe fn(*mut T, *const T, usize) -> T,
    /// The minibatch entry points (`batch_body.rs`).
    pub(crate) batch: super::batch_body::BatchTable<T>,
}

/// Defines module `$m` with `TABLE: Table<$t>` running `body.rs` on vector type `$v`, every
/// function carrying the attributes `$attr` (the level's `#[target_feature]`s).
macro_rules! level_table {
    ($m:ident, $t:ty, $v:ty $(, #[$attr:meta])*) => {
        mod $m {
            use super::*;
            use crate::kernels::body;

            $(#[$attr])*
            unsafe fn affine(
                w: *const $t, h: usize, l: usize, rs: usize,
                a_prev: *const $t, b: *const $t, n: *mut $t,
            ) {
                // SAFETY: the table's contract is the body's.
                unsafe { body::affine::<$t, $v>(w, h, l, rs, a_prev, b, n) }
            }
            $(#[$attr])*
            unsafe fn activate(act: Activation, n: *const $t, a: *mut $t, d: *mut $t, len: usize) {
                // SAFETY: the table's contract is the body's.
                unsafe { body::activate::<$t, $v>(act, n, a, d, len) }
            }
            $(#[$attr])*
            unsafe fn rank1_update(
                w: *mut $t, h: usize, l: usize, rs: usize,
                alpha: $t, a_prev: *const $t, delta: *const $t,
            ) {
                // SAFETY: the table's contract is the body's.
                unsafe { body::rank1_update::<$t, $v>(w, h, l, rs, alpha, a_prev, delta) }
            }
            $(#[$attr])*
            unsafe fn backward(
                w: *const $t, h: usize, l: usize, rs: usize,
                delta: *const $t, d_prev: *const $t, delta_prev: *mut $t,
            ) {
                // SAFETY: the table's contract is the body's.
                unsafe { body::backward::<$t, $v>(w, h, l, rs, delta, d_prev, delta_prev) }
            }
            #[allow(clippy::too_many_arguments)]
            $(#[$attr])*
            unsafe fn backward_update(
                w: *mut $t, h: usize, l: usize, rs: usize, alpha: $t,
                a_prev: *const $t, delta: *const $t, d_prev: *const $t, delta_prev: *mut $t,
            ) {
                // SAFETY: the table's contract is the body's.
                unsafe {
                    body::backward_update::<$t, $v>(
                        w, h, l, rs, alpha, a_prev, delta, d_prev, delta_prev,
                    )
                }
            }
            $(#[$attr])*
            unsafe fn math(f: MathFn, x: *const $t, out: *mut $t, len: usize) {
                // SAFETY: the table's contract is the body's.
                unsafe { body::math::<$t, $v>(f, x, out, len) }
            }

            $(#[$attr])*
            unsafe fn sum_abs(x: *const $t, len: usize) -> $t {
                // SAFETY: the table's contract is the body's.
                unsafe { body::sum_abs::<$t, $v>(x, len) }
            }

            $(#[$attr])*
            unsafe fn softmax(z: *mut $t, t: *const $t, len: usize) -> $t {
                // SAFETY: the table's contract is the body's.
                unsafe { body::softmax::<$t, $v>(z, t, len) }
            }

            crate::kernels::batch_body::batch_fns!($t, $v $(, #[$attr])*);

            pub(crate) static TABLE: Table<$t> = Table {
                affine, activate, rank1_update, backward, backward_update, math, sum_abs,
                softmax, batch: BATCH,
            };
        }
    };
}

level_table!(portable_f32, f32, wide::f32x8);
level_table!(portable_f64, f64, wide::f64x4);
#[cfg(target_arch = "x86_64")]
level_table!(avx2_f32, f32, crate::simd::x86::Avx2F32, #[target_feature(enable = "avx2,fma")]);
#[cfg(target_arch = "x86_64")]
level_table!(avx2_f64, f64, crate::simd::x86::Avx2F64, #[target_feature(enable = "avx2,fma")]);
#[cfg(target_arch = "x86_64")]
level_table!(avx512_f32, f32, crate::simd::x86::Avx512F32, #[target_feature(enable = "avx512f")]);
#[cfg(target_arch = "x86_64")]
level_table!(avx512_f64, f64, crate::simd::x86::Avx512F64, #[target_feature(enable = "avx512f")]);

macro_rules! select_table {
    ($t:ty, $portable:ident, $avx2:ident, $avx512:ident) => {
        impl crate::scalar::sealed::Sealed for $t {
            fn table(level: Level) -> &'static Table<$t> {
                match level {
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx2 => &$avx2::TABLE,
                    #[cfg(target_arch = "x86_64")]
                    Level::Avx512 => &$avx512::TABLE,
                    _ => &$portable::TABLE,
                }
            }
        }
    };
}

select_table!(f32, portable_f32, avx2_f32, avx512_f32);
select_table!(f64, portable_f64, avx2_f64, avx512_f64);

/// The table of `level` for `T`.
#[inline(always)]
pub(crate) fn get<T: Scalar>(level: Level) -> &'static Table<T> {
    <T as crate::scalar::sealed::Sealed>::table(level)
}
