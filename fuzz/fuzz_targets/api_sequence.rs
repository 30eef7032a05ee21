//! Fuzzes random sequences of public calls: the fuzzer's bytes choose the element type, the
//! network and every call and argument, and the invariants of `tests/harness/mod.rs` are
//! checked after each call (a violated invariant, or a panic in the crate, is a crash).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/harness/mod.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::run_bytes(data);
});
