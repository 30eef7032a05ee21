//! What subnormal numbers cost a training step, with and without
//! [`Network::set_flush_subnormals`] (x86-64 MXCSR FTZ | DAZ around the call).
//!
//! One iteration trains 64 samples in a row with `train_sample` on a 256-256-10 f32 network
//! (sigmoid, squared error). Three cases over the same network and targets:
//!
//! - `normal`: inputs uniform in [0, 1);
//! - `subnormal`: the same inputs times 2⁻¹³⁰, all subnormal: every product of the first
//!   layer's affine map and of its update reads a subnormal and yields one (or underflows);
//! - `subnormal-flushed`: those inputs with the flush on (they are read as zero).
//!
//! ```text
//! cargo bench --bench subnormal
//! DELTAPROP_SIMD=portable cargo bench --bench subnormal
//! ```
//!
//! Whether subnormals cost anything depends on the core: many x86 cores take a microcode
//! assist for each instruction that meets one, others handle most of them at full speed.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deltaprop::{Activation, Loss, Network};

const H: usize = 256;
const L: usize = 10;
const SAMPLES: usize = 64;
const LR: f32 = 0.01;

fn network(flush: bool) -> Network<f32> {
    let mut net = Network::<f32>::builder(H)
        .layer(256, Activation::Sigmoid)
        .layer(L, Activation::Sigmoid)
        .loss(Loss::SquaredError)
        .seed(1)
        .build()
        .expect("a valid network");
    net.set_flush_subnormals(flush);
    net
}

/// SAMPLES × H inputs in [0, 1) times `scale`, and one-hot targets.
fn data(scale: f32) -> (Vec<f32>, Vec<f32>) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let x = (0..SAMPLES * H)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * scale
        })
        .collect();
    let t = (0..SAMPLES * L)
        .map(|i| if i % L == (i / L) % L { 1.0 } else { 0.0 })
        .collect();
    (x, t)
}

fn subnormal(c: &mut Criterion) {
    let tiny = 2f32.powi(-130);
    let mut g = c.benchmark_group(format!("train_sample/{H}-256-{L}"));
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(SAMPLES as u64));
    for (name, scale, flush) in [
        ("normal", 1.0, false),
        ("subnormal", tiny, false),
        ("subnormal-flushed", tiny, true),
    ] {
        let (x, t) = data(scale);
        if scale < 1.0 {
            assert!(x.iter().all(|v| *v == 0.0 || v.is_subnormal()));
        }
        let mut net = network(flush);
        g.bench_function(name, |b| {
            b.iter(|| {
                for (xi, ti) in x.chunks_exact(H).zip(t.chunks_exact(L)) {
                    black_box(net.train_sample(black_box(xi), ti, LR).expect("a step"));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, subnormal);
criterion_main!(benches);
