//! SIMD levels, their runtime detection, and the vector abstraction the kernels are written
//! against.
//!
//! Every kernel is written once, generic over `Vector`, and instantiated per level inside a
//! function compiled with that level's `#[target_feature]`s (see `kernels::table`). Which
//! instantiation runs is decided once per process: the first call to [`active`] reads
//! `DELTAPROP_SIMD`, checks the CPU's features and caches the answer in an atomic, so each
//! kernel call pays one relaxed load and an indirect call, never a per-element test.

use std::sync::atomic::{AtomicU8, Ordering};

mod ftz;
pub(crate) mod math;
pub(crate) mod portable;
mod vector;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

pub(crate) use ftz::FlushSubnormals;
pub use ftz::flushing_subnormals;
pub(crate) use vector::Vector;

/// An instruction-set level the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Level {
    /// Portable code on `wide`'s vectors, with whatever the build's target features allow
    /// (SSE2 on a default x86-64 build, NEON on aarch64).
    Portable,
    /// x86-64 AVX2 with FMA: 256-bit vectors.
    Avx2,
    /// x86-64 AVX-512F: 512-bit vectors with masked loads and stores for the tails.
    Avx512,
}

impl Level {
    /// Every level this build knows, worst first.
    pub const ALL: [Level; 3] = [Level::Portable, Level::Avx2, Level::Avx512];

    /// The level's name as `DELTAPROP_SIMD` spells it: `"portable"`, `"avx2"`, `"avx512"`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The level named `name` (as printed by `Display`), if there is one.
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        match self {
            Level::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    fn index(self) -> u8 {
        match self {
            Level::Portable => 1,
            Level::Avx2 => 2,
            Level::Avx512 => 3,
        }
    }

    fn from_index(i: u8) -> Level {
        match i {
            2 => Level::Avx2,
            3 => Level::Avx512,
            _ => Level::Portable,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every level this CPU supports, worst first (always starts with `Portable`).
pub fn available() -> Vec<Level> {
    Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect()
}

/// The best level this CPU supports.
pub fn best() -> Level {
    *available().last().unwrap_or(&Level::Portable)
}

static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// The level the kernels use: chosen at the first call from the CPU's features, unless the
/// environment variable `DELTAPROP_SIMD` names one (`portable`, `avx2`, `avx512`). A name
/// this CPU cannot run, or an unknown name, is reported on stderr and the best available
/// level is used instead. The choice is cached for the life of the process.
///
/// ```
/// use deltaprop::simd::{self, Level};
/// let level = simd::active(); // e.g. `avx512`, or whatever DELTAPROP_SIMD forced
/// assert!(simd::available().contains(&level));
/// assert_eq!(Level::from_name(&level.to_string()), Some(level));
/// ```
#[inline]
pub fn active() -> Level {
    match ACTIVE.load(Ordering::Relaxed) {
        0 => init_active(),
        i => Level::from_index(i),
    }
}

#[cold]
fn init_active() -> Level {
    let level = match std::env::var("DELTAPROP_SIMD") {
        Ok(name) => match Level::from_name(name.trim()) {
            Some(level) if level.is_supported() => level,
            Some(level) => {
                eprintln!(
                    "deltaprop: DELTAPROP_SIMD={name}: this CPU lacks {level}; using {}",
                    best()
                );
                best()
            }
            None => {
                eprintln!(
                    "deltaprop: DELTAPROP_SIMD={name} is not one of portable, avx2, avx512; using {}",
                    best()
                );
                best()
            }
        },
        Err(_) => best(),
    };
    // Racing initialisers compute the same answer, so a plain store is enough.
    ACTIVE.store(level.index(), Ordering::Relaxed);
    level
}
