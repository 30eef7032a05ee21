//! One thread against two: the wide-layer kernels of `kernels::par` at 4096 × 4096 and the
//! training of 1024-1024-1024-10 (softmax + cross-entropy, sigmoid hidden layers, f32), per
//! sample and in minibatches of 32 and 256, each timed inside a rayon pool of 1 and of 2
//! threads in the same group, so the speed-up is the ratio of two entries measured minutes
//! apart in one process.
//!
//! Groups `scaling/<kernel>/<type>/4096x4096` and `scaling/train_sample|train_batch_B<b>/
//! 1024-1024-1024-10`, entries `threads=1` and `threads=2`. About five minutes:
//!
//! ```text
//! cargo bench --bench scaling
//! ```

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Layer, Rng, read_bytes, read_write_bytes};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use deltaprop::kernels::par;
use deltaprop::{Activation, Loss, MatRef, Network, Scalar};
use rayon::ThreadPool;

const THREADS: [usize; 2] = [1, 2];

fn pools() -> Vec<(usize, ThreadPool)> {
    THREADS
        .iter()
        .map(|&n| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .expect("a thread pool");
            (n, pool)
        })
        .collect()
}

/// Times `f` (one call per iteration) inside `pool`.
fn timed(pool: &ThreadPool, iters: u64, mut f: impl FnMut() + Send) -> Duration {
    pool.install(|| {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        start.elapsed()
    })
}

type Step<T> = fn(&mut Layer<T>) -> Result<(), deltaprop::Error>;

fn kernels<T: Scalar>(c: &mut Criterion) {
    let (h, l) = (4096, 4096);
    let pools = pools();
    let mut x = Layer::<T>::new(h, l, 1);
    let steps: [(&str, Throughput, Step<T>); 4] = [
        ("affine", read_bytes::<T>(h, l), |x| {
            par::affine(x.w.as_ref(), black_box(&x.a_prev), &x.b, &mut x.n)
        }),
        ("backward", read_bytes::<T>(h, l), |x| {
            par::backward(
                x.w.as_ref(),
                black_box(&x.delta),
                &x.d_prev,
                &mut x.delta_prev,
            )
        }),
        ("rank1_update", read_write_bytes::<T>(h, l), |x| {
            par::rank1_update(x.w.as_mut(), x.alpha, black_box(&x.a_prev), &x.delta)
        }),
        ("backward_update", read_write_bytes::<T>(h, l), |x| {
            par::backward_update(
                x.w.as_mut(),
                x.alpha,
                &x.a_prev,
                black_box(&x.delta),
                &x.d_prev,
                &mut x.delta_prev,
            )
        }),
    ];
    for (kernel, throughput, step) in steps {
        let mut g = c.benchmark_group(format!("scaling/{kernel}/{}/{h}x{l}", T::NAME));
        g.throughput(throughput)
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (threads, pool) in &pools {
            g.bench_function(format!("threads={threads}"), |bch| {
                bch.iter_custom(|iters| timed(pool, iters, || step(&mut x).expect("valid shapes")))
            });
        }
        g.finish();
    }
}

fn network() -> Network<f32> {
    Network::<f32>::builder(1024)
        .layer(1024, Activation::Sigmoid)
        .layer(1024, Activation::Sigmoid)
        .layer(10, Activation::Softmax)
        .loss(Loss::CrossEntropy)
        .seed(1)
        .build()
        .expect("a valid network")
}

fn training(c: &mut Criterion) {
    let pools = pools();
    let name = "1024-1024-1024-10";
    let rows = 256;
    let x: Vec<f32> = Rng::new(6).vec(rows * 1024, 0.0, 1.0);
    let t: Vec<f32> = (0..rows * 10)
        .map(|i| {
            if i % 10 == (i / 10 * 7) % 10 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let lr = 0.01;

    let per_sample = 16;
    let mut g = c.benchmark_group(format!("scaling/train_sample/{name}"));
    g.throughput(Throughput::Elements(per_sample as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (threads, pool) in &pools {
        let mut net = network();
        g.bench_function(format!("threads={threads}"), |bch| {
            bch.iter_custom(|iters| {
                timed(pool, iters, || {
                    for (xi, ti) in x
                        .chunks_exact(1024)
                        .zip(t.chunks_exact(10))
                        .take(per_sample)
                    {
                        black_box(net.train_sample(black_box(xi), ti, lr).expect("a step"));
                    }
                })
            })
        });
    }
    g.finish();

    for batch in [32, 256] {
        let mut g = c.benchmark_group(format!("scaling/train_batch_B{batch}/{name}"));
        g.throughput(Throughput::Elements(batch as u64))
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        let xb = MatRef::from_slice(&x[..batch * 1024], batch, 1024, 1024).expect("x");
        let tb = MatRef::from_slice(&t[..batch * 10], batch, 10, 10).expect("t");
        for (threads, pool) in &pools {
            let mut net = network();
            g.bench_function(format!("threads={threads}"), |bch| {
                bch.iter_custom(|iters| {
                    timed(pool, iters, || {
                        black_box(net.train_batch(black_box(xb), tb, lr).expect("a step"));
                    })
                })
            });
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots().nresamples(10_000).configure_from_args();
    targets = kernels::<f32>, kernels::<f64>, training
}
criterion_main!(benches);
