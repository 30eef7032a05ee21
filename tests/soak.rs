//! Soak test, ignored by default: 10 million per-sample steps and 100 000 minibatch steps on
//! random shapes, checking that memory stays flat and that no weight, bias or loss becomes
//! non-finite. Run it by hand:
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! `DELTAPROP_SOAK_SCALE=0.01` runs a hundredth of the steps (a quick look). Memory is
//! watched two ways: the bytes the training thread has live on the heap (a counting allocator,
//! per thread) and the resident set (`/proc/self/statm`, Linux); both are printed at the start
//! and the end of each phase.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use deltaprop::{Activation, EpochOptions, Loss, MatRef, Network, Scalar};

/// The system allocator, counting the bytes live.
struct Counting;

thread_local! {
    /// Bytes this thread allocated minus bytes it freed. Per thread, so that what the test
    /// harness's own thread allocates meanwhile (its channel's lazily built waker, say) can
    /// never show up as a leak of the thread that trains.
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add_live(bytes: isize) {
    // `try_with`: a thread being torn down has no counter left, and its frees do not matter.
    let _ = LIVE.try_with(|l| l.set(l.get().wrapping_add(bytes)));
}

/// This thread's live bytes.
fn live() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: every call forwards to `System` with the caller's arguments unchanged; the counter
// is only arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add_live(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add_live(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add_live(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add_live(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Resident set size in KiB (0 where `/proc/self/statm` is missing).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4)
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const HIDDEN: [Activation; 7] = Activation::ELEMENTWISE;

/// A random network of 1-3 layers with 1-64 units, and a data set of `rows` samples for it.
fn random_setup<T: Scalar>(rng: &mut Rng, rows: usize) -> (Network<T>, Vec<T>, Vec<T>) {
    let inputs = 1 + rng.below(64);
    let mut b = Network::<T>::builder(inputs);
    for _ in 0..rng.below(3) {
        b = b.layer(1 + rng.below(64), HIDDEN[rng.below(HIDDEN.len())]);
    }
    let outputs = 2 + rng.below(9);
    b = if rng.below(2) == 0 {
        b.layer(outputs, Activation::Softmax)
            .loss(Loss::CrossEntropy)
    } else {
        b.layer(outputs, Activation::Sigmoid)
    };
    let net = b.seed(rng.next()).build().unwrap();
    let x = (0..rows * inputs)
        .map(|_| T::from_f64(rng.unit() * 2.0 - 1.0))
        .collect();
    let mut t = vec![T::ZERO; rows * outputs];
    for i in 0..rows {
        t[i * outputs + rng.below(outputs)] = T::ONE;
    }
    (net, x, t)
}

fn finite<T: Scalar>(net: &Network<T>) -> bool {
    net.layers().iter().all(|l| {
        l.bias().iter().all(|v| v.is_finite())
            && (0..l.weights().rows()).all(|r| l.weights().row(r).iter().all(|v| v.is_finite()))
    })
}

fn scale() -> f64 {
    std::env::var("DELTAPROP_SOAK_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0)
}

/// Steps after which a network's workspaces have reached their size.
const WARM_UP: u64 = 100;

/// Memory at a point of a phase.
#[derive(Debug, Clone, Copy)]
struct Mem {
    live: isize,
    rss_kib: u64,
}

fn mem() -> Mem {
    Mem {
        live: live(),
        rss_kib: rss_kib(),
    }
}

/// Trains `total` steps on a fresh random set-up every `per_setup` steps, with `step`; checks
/// every loss, every weight at the end of each set-up, that the heap does not move after
/// [`WARM_UP`] steps of a set-up, and that the heap and the resident set at the end are
/// where they were after the first set-up.
fn phase<T: Scalar>(
    name: &str,
    total: u64,
    per_setup: u64,
    rows: usize,
    mut step: impl FnMut(&mut Network<T>, &[T], &[T], u64) -> T,
) {
    let mut rng = Rng(0x5eed ^ total);
    let start = Instant::now();
    let (mut warm, mut peak) = (None, 0isize);
    let mut done = 0u64;
    let mut setups = 0u64;
    while done < total {
        let (mut net, x, t) = random_setup::<T>(&mut rng, rows);
        let n = per_setup.min(total - done);
        // The first steps allocate the workspaces; from then on the heap must not move.
        let mut settled = None;
        for i in 0..n {
            if i == WARM_UP {
                settled = Some(live());
            }
            let psi = step(&mut net, &x, &t, i);
            assert!(
                psi.is_finite(),
                "{name}: step {}: loss {}",
                done + i,
                psi.to_f64()
            );
        }
        assert!(
            finite(&net),
            "{name}: a weight is not finite after {} steps",
            done + n
        );
        if let Some(settled) = settled {
            let now = live();
            assert_eq!(
                now, settled,
                "{name}: the heap moved during training ({settled} → {now} B)"
            );
        }
        done += n;
        setups += 1;
        drop((net, x, t));
        let m = mem();
        peak = peak.max(m.live);
        if warm.is_none() {
            warm = Some(m);
        }
    }
    let (warm, end) = (warm.unwrap(), mem());
    eprintln!(
        "{name}: {total} steps on {setups} random set-ups in {:.1} s; heap live {} B after \
         the first set-up, {} B at the end (peak between set-ups {} B); RSS {} KiB → {} KiB",
        start.elapsed().as_secs_f64(),
        warm.live,
        end.live,
        peak,
        warm.rss_kib,
        end.rss_kib
    );
    // Everything a set-up allocates is freed with it: the heap comes back to where it was.
    assert_eq!(
        end.live, warm.live,
        "{name}: heap grew from {} to {} B",
        warm.live, end.live
    );
    // And the resident set does not creep (allowing the allocator some slack).
    assert!(
        end.rss_kib <= warm.rss_kib + 8 * 1024,
        "{name}: RSS grew from {} to {} KiB",
        warm.rss_kib,
        end.rss_kib
    );
}

#[test]
#[ignore = "soak test: minutes; run with --ignored"]
fn soak_ten_million_samples_and_a_hundred_thousand_batches() {
    let s = scale();
    let samples = (10_000_000.0 * s) as u64;
    let batches = (100_000.0 * s) as u64;
    // Per sample: 200 000 steps per random network over a set of 256 samples.
    phase::<f32>(
        "per-sample f32",
        samples / 2,
        200_000,
        256,
        |net, x, t, i| {
            let (h, l) = (net.inputs(), net.outputs());
            let r = (i as usize) % 256;
            net.train_sample(&x[r * h..][..h], &t[r * l..][..l], 0.01)
                .unwrap()
        },
    );
    phase::<f64>(
        "per-sample f64",
        samples - samples / 2,
        200_000,
        256,
        |net, x, t, i| {
            let (h, l) = (net.inputs(), net.outputs());
            let r = (i as usize) % 256;
            net.train_sample(&x[r * h..][..h], &t[r * l..][..l], 0.01)
                .unwrap()
        },
    );
    // Minibatches of random size 2-64 (the workspaces grow to the largest seen, then stay),
    // every tenth step a shuffled epoch step of the whole set instead.
    let mut brng = Rng(77);
    phase::<f32>("minibatch f32", batches, 2_000, 256, |net, x, t, i| {
        let (h, l) = (net.inputs(), net.outputs());
        if i % 10 == 9 {
            let (xm, tm) = (
                MatRef::from_slice(x, 256, h, h).unwrap(),
                MatRef::from_slice(t, 256, l, l).unwrap(),
            );
            let opts = EpochOptions {
                batch_size: 128,
                shuffle: true,
                seed: i,
            };
            return net.train_epoch(xm, tm, 0.01, i as usize, &opts).unwrap();
        }
        // The first step takes the largest batch, so the workspaces are sized by the warm-up.
        let b = if i == 0 { 64 } else { 2 + brng.below(63) };
        let r = brng.below(256 - b);
        let xm = MatRef::from_slice(&x[r * h..], b, h, h).unwrap();
        let tm = MatRef::from_slice(&t[r * l..], b, l, l).unwrap();
        net.train_batch(xm, tm, 0.05).unwrap()
    });
}
