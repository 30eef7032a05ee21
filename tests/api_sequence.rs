//! Randomised API sequences: random small networks (every activation and loss, `f32` and
//! `f64`) driven through random sequences of public calls with often-invalid arguments; the
//! invariants checked after every call are listed in `tests/harness/mod.rs`.
//!
//! The budget is a number of sequences, each from its own seed (0, 1, 2, …) and of 1 to 40
//! calls:
//! - `cargo test --release --test api_sequence` runs 20 000 sequences (492 782 calls, 4–7 s
//!   on one core of the 2-core CI machine);
//! - `DELTAPROP_SEQ_CASES=1000000 cargo test --release --test api_sequence -- --nocapture`
//!   runs a million (add `--features serde` to include the save format; with it, measured:
//!   25 669 076 calls, every invariant held, 17 min on the loaded 2-core machine);
//! - `DELTAPROP_SEQ_SEED=n` starts at seed n, so `DELTAPROP_SEQ_SEED=n DELTAPROP_SEQ_CASES=1`
//!   replays the sequence a failure names.
//!
//! The same harness runs under cargo-fuzz (nightly): `cargo fuzz run api_sequence` in `fuzz/`.

mod harness;

use std::panic::{AssertUnwindSafe, catch_unwind};

fn env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn random_api_sequences_keep_every_invariant() {
    let cases = env("DELTAPROP_SEQ_CASES", 20_000);
    let first = env("DELTAPROP_SEQ_SEED", 0);
    let mut total = harness::Stats::default();
    let start = std::time::Instant::now();
    for seed in first..first + cases {
        match catch_unwind(AssertUnwindSafe(|| harness::run_seed(seed))) {
            Ok(stats) => total.add(&stats),
            Err(_) => panic!(
                "sequence {seed} failed (see above); replay it with \
                 DELTAPROP_SEQ_SEED={seed} DELTAPROP_SEQ_CASES=1"
            ),
        }
    }
    eprintln!(
        "api_sequence: {} sequences, {} calls ({} Ok, {} rejected as they should be, {} \
         diverged, {} times non-finite weights after unbounded steps) in {:.1} s",
        total.sequences,
        total.calls,
        total.ok,
        total.rejected,
        total.diverged,
        total.nonfinite_after_ok,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(total.sequences as u64, cases);
    // The generator must reach both sides of every check.
    if cases >= 1000 {
        assert!(total.ok > total.calls / 4, "{total:?}");
        assert!(total.rejected > total.calls / 20, "{total:?}");
    }
}

/// Byte strings, as the fuzz target gets them: the empty string, short and long ones.
#[test]
fn byte_driven_sequences_keep_every_invariant() {
    let mut total = harness::Stats::default();
    let mut state = 0x1234_5678_9abc_def0u64;
    for len in (0..64).chain([100, 500, 1000, 4000]) {
        for _ in 0..8 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            total.add(&harness::run_bytes(&bytes));
        }
    }
    assert!(total.calls > 0);
}
