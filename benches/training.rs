//! Training throughput of the network layer, in samples per second (criterion's
//! `Throughput::Elements` counts samples): `train_sample` (per-sample SGD) and `train_batch`
//! (B = 32 and 256), f32, sigmoid hidden layers, on the networks of issue 3.
//!
//! Groups are `train_sample/<net>` and `train_batch/B<b>/<net>`; the networks are
//! `64-32-10` (sigmoid output, squared error — FANN's set-up), `64-32-10-softmax-ce`
//! (softmax + cross-entropy, as the digits example), `784-256-128-10` and
//! `1024-1024-1024-10` (softmax + cross-entropy). One iteration of `train_sample` trains
//! 64 samples in a row (per-sample SGD over a fixed set); one of `train_batch` one batch.
//!
//! Timed inside a rayon pool of `DELTAPROP_BENCH_THREADS` threads (default 1: the figures of issue
//! 3 are single-threaded; 64-32-10 never leaves the calling thread anyway).
//!
//! ```text
//! cargo bench --bench training
//! cargo bench --bench training -- 'train_sample/'
//! DELTAPROP_BENCH_THREADS=2 cargo bench --bench training -- 1024
//! ```
//!
//! With `--serve` the bench is instead a server for `benches/peers/paired.py`, which times it
//! interleaved with the peers round by round (see `serve`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use deltaprop::{Activation, Loss, MatRef, Network};

/// A named network: layer sizes, output activation and loss.
struct Net {
    name: &'static str,
    sizes: &'static [usize],
    out: Activation,
    loss: Loss,
}

const NETS: [Net; 4] = [
    Net {
        name: "64-32-10",
        sizes: &[64, 32, 10],
        out: Activation::Sigmoid,
        loss: Loss::SquaredError,
    },
    Net {
        name: "64-32-10-softmax-ce",
        sizes: &[64, 32, 10],
        out: Activation::Softmax,
        loss: Loss::CrossEntropy,
    },
    Net {
        name: "784-256-128-10",
        sizes: &[784, 256, 128, 10],
        out: Activation::Softmax,
        loss: Loss::CrossEntropy,
    },
    Net {
        name: "1024-1024-1024-10",
        sizes: &[1024, 1024, 1024, 10],
        out: Activation::Softmax,
        loss: Loss::CrossEntropy,
    },
];

impl Net {
    fn build(&self) -> Network<f32> {
        let mut b = Network::<f32>::builder(self.sizes[0]);
        let last = self.sizes.len() - 1;
        for (i, &s) in self.sizes[1..].iter().enumerate() {
            b = b.layer(
                s,
                if i + 1 == last {
                    self.out
                } else {
                    Activation::Sigmoid
                },
            );
        }
        b.loss(self.loss).seed(1).build().expect("a valid network")
    }
}

/// `rows` inputs in [0, 1) and one-hot targets, row-major.
fn data(rows: usize, h: usize, l: usize) -> (Vec<f32>, Vec<f32>) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let x = (0..rows * h)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let t = (0..rows * l)
        .map(|i| if i % l == (i / l * 7) % l { 1.0 } else { 0.0 })
        .collect();
    (x, t)
}

const PER_SAMPLE: usize = 64;
const LR: f32 = 0.01;

/// The pool the bench times in: `DELTAPROP_BENCH_THREADS` threads (default 1).
fn bench_pool() -> rayon::ThreadPool {
    let threads = std::env::var("DELTAPROP_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

fn training(c: &mut Criterion) {
    let pool = bench_pool();
    {
        for net in &NETS {
            let (h, l) = (net.sizes[0], *net.sizes.last().expect("sizes"));
            let big = net.sizes.iter().any(|&s| s >= 1024);
            let mut g = c.benchmark_group(format!("train_sample/{}", net.name));
            g.sample_size(if big { 10 } else { 30 })
                .measurement_time(Duration::from_secs(if big { 6 } else { 3 }))
                .warm_up_time(Duration::from_secs(1))
                .throughput(Throughput::Elements(PER_SAMPLE as u64));
            let (x, t) = data(PER_SAMPLE, h, l);
            let mut nw = net.build();
            g.bench_function("f32", |b| {
                b.iter_custom(|iters| {
                    pool.install(|| {
                        let start = Instant::now();
                        for _ in 0..iters {
                            for (xi, ti) in x.chunks_exact(h).zip(t.chunks_exact(l)) {
                                black_box(nw.train_sample(black_box(xi), ti, LR).expect("a step"));
                            }
                        }
                        start.elapsed()
                    })
                })
            });
            g.finish();
            for batch in [32, 256] {
                let mut g = c.benchmark_group(format!("train_batch/B{batch}/{}", net.name));
                g.sample_size(if big { 10 } else { 30 })
                    .measurement_time(Duration::from_secs(if big { 6 } else { 3 }))
                    .warm_up_time(Duration::from_secs(1))
                    .throughput(Throughput::Elements(batch as u64));
                let (x, t) = data(batch, h, l);
                let xb = MatRef::from_slice(&x, batch, h, h).expect("x");
                let tb = MatRef::from_slice(&t, batch, l, l).expect("t");
                let mut nw = net.build();
                g.bench_function("f32", |b| {
                    b.iter_custom(|iters| {
                        pool.install(|| {
                            let start = Instant::now();
                            for _ in 0..iters {
                                black_box(nw.train_batch(black_box(xb), tb, LR).expect("a step"));
                            }
                            start.elapsed()
                        })
                    })
                });
                g.finish();
            }
        }
    }
}

/// `--serve`: the paired protocol of `benches/peers/paired.py`. Reads lines
/// `NET MODE SECONDS` from stdin (MODE is `per-sample`, `B32` or `B256`), trains that case
/// inside the bench's thread pool for about SECONDS (at least one call, after one untimed
/// warm-up call the first time the case is asked for) and answers one line with the samples
/// per second. Idle between requests, so that the peer timed next has the machine to itself.
fn serve(pool: &rayon::ThreadPool) {
    use std::io::{BufRead, Write};
    /// One case: its network and data (one call trains `rows` samples).
    struct Case {
        nw: Network<f32>,
        x: Vec<f32>,
        t: Vec<f32>,
        rows: usize,
        batch: bool,
    }
    impl Case {
        fn call(&mut self, h: usize, l: usize) {
            if self.batch {
                let xb = MatRef::from_slice(&self.x, self.rows, h, h).expect("x");
                let tb = MatRef::from_slice(&self.t, self.rows, l, l).expect("t");
                black_box(self.nw.train_batch(black_box(xb), tb, LR).expect("a step"));
            } else {
                for (xi, ti) in self.x.chunks_exact(h).zip(self.t.chunks_exact(l)) {
                    black_box(self.nw.train_sample(black_box(xi), ti, LR).expect("a step"));
                }
            }
        }
    }
    let mut cases: Vec<((String, String), Case)> = Vec::new();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").expect("stdout");
    out.flush().expect("stdout");
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [name, mode, seconds] = parts[..] else {
            continue;
        };
        let (Some(net), Ok(seconds)) = (NETS.iter().find(|n| n.name == name), seconds.parse())
        else {
            writeln!(out, "nan").expect("stdout");
            out.flush().expect("stdout");
            continue;
        };
        let seconds: f64 = seconds;
        let (h, l) = (net.sizes[0], *net.sizes.last().expect("sizes"));
        let key = (name.to_string(), mode.to_string());
        let i = match cases.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let (rows, batch) = match mode {
                    "B32" => (32, true),
                    "B256" => (256, true),
                    _ => (PER_SAMPLE, false),
                };
                let (x, t) = data(rows, h, l);
                let mut case = Case {
                    nw: net.build(),
                    x,
                    t,
                    rows,
                    batch,
                };
                pool.install(|| case.call(h, l));
                cases.push((key, case));
                cases.len() - 1
            }
        };
        let case = &mut cases[i].1;
        let rate = pool.install(|| {
            let start = Instant::now();
            let mut calls = 0usize;
            loop {
                case.call(h, l);
                calls += 1;
                let el = start.elapsed().as_secs_f64();
                if el >= seconds {
                    break (calls * case.rows) as f64 / el;
                }
            }
        });
        writeln!(out, "{rate}").expect("stdout");
        out.flush().expect("stdout");
    }
}

criterion_group!(benches, training);

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        serve(&bench_pool());
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
