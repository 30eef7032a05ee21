//! Flushing subnormals to zero: the x86-64 MXCSR bits FTZ (results that would be subnormal
//! become zero) and DAZ (subnormal inputs are read as zero), set for the duration of a call
//! and restored afterwards.
//!
//! A subnormal operand or result can cost an SSE/AVX instruction a microcode assist of
//! around a hundred cycles on many x86 cores; weights and activations that decay towards
//! zero can make a whole step that much slower (`benches/subnormal.rs` measures it).

/// MXCSR bit 15: flush to zero.
#[cfg(target_arch = "x86_64")]
const FTZ: u32 = 1 << 15;
/// MXCSR bit 6: denormals are zero.
#[cfg(target_arch = "x86_64")]
const DAZ: u32 = 1 << 6;

/// The calling thread's MXCSR.
#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr = 0u32;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR to the given address, which is a live,
    // aligned, writable local; every x86-64 CPU has SSE. It changes no register or flag.
    unsafe {
        std::arch::asm!(
            "stmxcsr [{p}]",
            p = in(reg) &mut csr as *mut u32,
            options(nostack, preserves_flags)
        );
    }
    csr
}

/// Loads `csr` into the calling thread's MXCSR.
///
/// # Safety
/// `csr` must be a value read by [`read_mxcsr`] on this thread with at most the FTZ and DAZ
/// bits changed (so no reserved bit is set, which would fault, and no exception is
/// unmasked, which would make floating-point operations trap).
#[cfg(target_arch = "x86_64")]
unsafe fn write_mxcsr(csr: u32) {
    // SAFETY: `ldmxcsr` loads MXCSR from a live, aligned local; the caller guarantees the
    // value is valid (see above). It changes no general register or flag.
    unsafe {
        std::arch::asm!(
            "ldmxcsr [{p}]",
            p = in(reg) &csr as *const u32,
            options(nostack, preserves_flags, readonly)
        );
    }
}

/// Whether FTZ and DAZ are both set on the calling thread (always `false` off x86-64).
pub fn flushing_subnormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        read_mxcsr() & (FTZ | DAZ) == FTZ | DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Sets FTZ and DAZ on the calling thread while it lives and puts the previous MXCSR
/// control bits back when dropped — on every path out of the call that made it, including
/// an early `?` return and a panic that unwinds. Not `Send`: MXCSR belongs to the thread.
///
/// On targets other than x86-64 it does nothing (aarch64 has its own FZ bit, not touched
/// here; 32-bit x86 is left alone because DAZ is missing on some of its CPUs, where setting
/// it faults).
///
/// Why this is sound although the compiler assumes the default floating-point environment:
/// FTZ and DAZ change no exception mask and no rounding mode, so no operation traps and
/// every normal result is unchanged; they only replace subnormal inputs and results by zero
/// of the same sign. The compiler may constant-fold or move floating-point operations across
/// the guard's boundaries, so an operation near them may or may not be flushed — a
/// difference in a value below 2⁻¹²⁶ (f32) or 2⁻¹⁰²² (f64), never in control flow that
/// memory safety depends on: every address the kernels touch comes from integer shapes and
/// strides, never from a floating-point value. The crate sets it only around its own
/// training calls ([`Network::set_flush_subnormals`](crate::Network::set_flush_subnormals)).
pub(crate) struct FlushSubnormals {
    #[cfg(target_arch = "x86_64")]
    saved: Option<u32>,
    /// MXCSR is per thread: the guard must be dropped where it was made.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl FlushSubnormals {
    /// Sets FTZ and DAZ if `on` (else a guard that does nothing).
    #[inline]
    pub(crate) fn new(on: bool) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = on.then(|| {
                let csr = read_mxcsr();
                // SAFETY: `csr` was just read on this thread; only FTZ and DAZ are added, both
                // defined on every x86-64 CPU.
                unsafe { write_mxcsr(csr | FTZ | DAZ) };
                csr
            });
            FlushSubnormals {
                saved,
                _not_send: std::marker::PhantomData,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = on;
            FlushSubnormals {
                _not_send: std::marker::PhantomData,
            }
        }
    }
}

impl Drop for FlushSubnormals {
    #[inline]
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if let Some(saved) = self.saved {
            // Keep the exception flags raised meanwhile (bits 0-5); put back the control bits.
            let csr = (read_mxcsr() & 0x3f) | (saved & !0x3f);
            // SAFETY: `saved` was read on this thread (the guard is not `Send`) and the flags
            // taken from the current value are status bits, valid in any combination.
            unsafe { write_mxcsr(csr) };
        }
    }
}
