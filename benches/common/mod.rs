//! What `kernels.rs` and `peers.rs` share: the shapes, the timing budget, the inputs.
//!
//! Every input is generated before timing starts, from a fixed seed, so two runs time the
//! same numbers; the benches hide them from the optimiser with `black_box`.

#![allow(dead_code)] // each bench uses its own part of this module

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use deltaprop::{Matrix, Scalar};

/// The W shapes (H inputs × L outputs) of issue 2, smallest traffic first.
pub const SHAPES: [(usize, usize); 6] = [
    (128, 10),
    (64, 64),
    (256, 256),
    (784, 256),
    (1024, 1024),
    (4096, 4096),
];

/// The largest W (in elements) that the slow paths (the reference loop, the portable level
/// in the peer comparison) are timed at.
pub const SLOW_MAX_ELEMS: usize = 1024 * 1024;

/// A short budget: the full kernel bench takes roughly ten minutes on two cores.
/// Command-line options (`--sample-size`, `--measurement-time`, ...) still override it.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
        // The medians are what BENCHMARKS.md reads; criterion's plots and its default
        // 100 000 bootstrap resamples would take longer than the measurements on two cores.
        .nresamples(10_000)
        .without_plots()
        .configure_from_args()
}

/// Group settings for a W of `h × l` elements: big ones take a few milliseconds per call,
/// so they get flat sampling (the same iteration count in every sample) and fewer samples.
pub fn configure_group<M: criterion::measurement::Measurement>(
    g: &mut criterion::BenchmarkGroup<'_, M>,
    h: usize,
    l: usize,
) {
    if h * l >= 1024 * 1024 {
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(2));
    }
}

/// `affine` and `backward` read W once.
pub fn read_bytes<T>(h: usize, l: usize) -> Throughput {
    Throughput::Bytes((h * l * std::mem::size_of::<T>()) as u64)
}

/// `rank1_update` and `backward_update` read and write W once.
pub fn read_write_bytes<T>(h: usize, l: usize) -> Throughput {
    Throughput::Bytes((2 * h * l * std::mem::size_of::<T>()) as u64)
}

/// SplitMix64: a fixed, dependency-free stream of pseudo-random numbers.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * u
    }

    /// `len` values uniform on [lo, hi).
    pub fn vec<T: Scalar>(&mut self, len: usize, lo: f64, hi: f64) -> Vec<T> {
        (0..len)
            .map(|_| T::from_f64(self.uniform(lo, hi)))
            .collect()
    }
}

/// The inputs of one layer's per-sample step, in the seed's names.
pub struct Layer<T: Scalar> {
    pub w: Matrix<T>,
    pub a_prev: Vec<T>,
    pub b: Vec<T>,
    pub delta: Vec<T>,
    pub d_prev: Vec<T>,
    /// Output of `affine` (length L).
    pub n: Vec<T>,
    /// Output of `backward` (length H).
    pub delta_prev: Vec<T>,
    /// A learning rate small enough that millions of repeated updates leave W of order 1
    /// (no overflow, no subnormals).
    pub alpha: T,
}

impl<T: Scalar> Layer<T> {
    pub fn new(h: usize, l: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ ((h as u64) << 32) ^ l as u64);
        let scale = 1.0 / (h.max(1) as f64).sqrt();
        let w_data = rng.vec::<T>(h * l, -scale, scale);
        Layer {
            w: Matrix::from_row_major(h, l, &w_data).expect("h × l values"),
            a_prev: rng.vec(h, 0.0, 1.0),
            b: rng.vec(l, -0.1, 0.1),
            delta: rng.vec(l, -0.5, 0.5),
            d_prev: rng.vec(h, 0.0, 0.25),
            n: vec![T::ZERO; l],
            delta_prev: vec![T::ZERO; h],
            alpha: T::from_f64(1e-7),
        }
    }
}
