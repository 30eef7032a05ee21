//! Throughput of every per-sample kernel, f32 and f64, on every SIMD level this CPU runs and
//! on the naive `reference` loop.
//!
//! Groups are named `kernel/type/HxL` (W kernels, throughput in bytes of W traffic: H·L·size
//! read for `affine` and `backward`, 2·H·L·size read + written for `rank1_update` and
//! `backward_update`) and `activate/type/Activation/n` (throughput in elements), each
//! benchmark's parameter the level's name (`portable`, `avx2`, `avx512`), `reference`, or
//! `std-loop` (a plain loop over std's `exp`/`tanh`, the yardstick of issue 2). So the
//! results parse from `target/criterion/<group>/<parameter>/new/{benchmark,estimates}.json`;
//! `benches/report.py` turns them into BENCHMARKS.md's tables.
//!
//! 4096 × 4096 is timed only on the portable and the best level, the reference loop only up
//! to 1024 × 1024 (its column-order `affine` is cache-hostile by design).
//!
//! ```text
//! cargo bench --bench kernels                      # everything (about ten minutes)
//! cargo bench --bench kernels -- 'affine/f32'      # a filter, as criterion takes it
//! ```

mod common;

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use deltaprop::kernels::KernelSet;
use deltaprop::simd::{self, Level};
use deltaprop::{Activation, Scalar, reference};

use common::{Layer, Rng, SHAPES, SLOW_MAX_ELEMS, configure_group, read_bytes, read_write_bytes};

/// Who runs a kernel: one SIMD level's kernels, or the naive reference loop.
#[derive(Clone, Copy)]
enum Runner {
    Level(KernelSet),
    Reference,
}

impl Runner {
    fn name(self) -> &'static str {
        match self {
            Runner::Level(k) => k.level().name(),
            Runner::Reference => "reference",
        }
    }
}

/// The runners timed at `h × l`: every level, plus the reference loop up to 1024²; at 4096²
/// only the portable and the best level.
fn runners(h: usize, l: usize) -> Vec<Runner> {
    let levels = simd::available();
    let best = simd::best();
    let big = h * l > SLOW_MAX_ELEMS;
    let mut out: Vec<Runner> = levels
        .into_iter()
        .filter(|&lv| !big || lv == Level::Portable || lv == best)
        .map(|lv| Runner::Level(KernelSet::new(lv).expect("an available level")))
        .collect();
    if !big {
        out.push(Runner::Reference);
    }
    out
}

fn bench_w_kernels<T: Scalar>(c: &mut Criterion) {
    for (h, l) in SHAPES {
        let mut layer = Layer::<T>::new(h, l, 1);
        let runners = runners(h, l);
        let shape = format!("{}/{h}x{l}", T::NAME);

        let mut g = c.benchmark_group(format!("affine/{shape}"));
        configure_group(&mut g, h, l);
        g.throughput(read_bytes::<T>(h, l));
        for &r in &runners {
            g.bench_function(BenchmarkId::from_parameter(r.name()), |bch| {
                let Layer {
                    w, a_prev, b, n, ..
                } = &mut layer;
                bch.iter(|| {
                    let (w, a_prev, b) = (
                        black_box(w.as_ref()),
                        black_box(&a_prev[..]),
                        black_box(&b[..]),
                    );
                    match r {
                        Runner::Level(k) => k.affine(w, a_prev, b, n),
                        Runner::Reference => reference::affine(w, a_prev, b, n),
                    }
                    .unwrap();
                    black_box(&mut *n);
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("backward/{shape}"));
        configure_group(&mut g, h, l);
        g.throughput(read_bytes::<T>(h, l));
        for &r in &runners {
            g.bench_function(BenchmarkId::from_parameter(r.name()), |bch| {
                let Layer {
                    w,
                    delta,
                    d_prev,
                    delta_prev,
                    ..
                } = &mut layer;
                bch.iter(|| {
                    let (w, delta, d_prev) = (
                        black_box(w.as_ref()),
                        black_box(&delta[..]),
                        black_box(&d_prev[..]),
                    );
                    match r {
                        Runner::Level(k) => k.backward(w, delta, d_prev, delta_prev),
                        Runner::Reference => reference::backward(w, delta, d_prev, delta_prev),
                    }
                    .unwrap();
                    black_box(&mut *delta_prev);
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("rank1_update/{shape}"));
        configure_group(&mut g, h, l);
        g.throughput(read_write_bytes::<T>(h, l));
        for &r in &runners {
            g.bench_function(BenchmarkId::from_parameter(r.name()), |bch| {
                let Layer {
                    w,
                    a_prev,
                    delta,
                    alpha,
                    ..
                } = &mut layer;
                bch.iter(|| {
                    let (alpha, a_prev, delta) = (
                        black_box(*alpha),
                        black_box(&a_prev[..]),
                        black_box(&delta[..]),
                    );
                    match r {
                        Runner::Level(k) => k.rank1_update(w.as_mut(), alpha, a_prev, delta),
                        Runner::Reference => {
                            reference::rank1_update(w.as_mut(), alpha, a_prev, delta)
                        }
                    }
                    .unwrap();
                    black_box(&mut *w);
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("backward_update/{shape}"));
        configure_group(&mut g, h, l);
        g.throughput(read_write_bytes::<T>(h, l));
        for &r in &runners {
            g.bench_function(BenchmarkId::from_parameter(r.name()), |bch| {
                let Layer {
                    w,
                    a_prev,
                    delta,
                    d_prev,
                    delta_prev,
                    alpha,
                    ..
                } = &mut layer;
                bch.iter(|| {
                    let (alpha, a_prev, delta, d_prev) = (
                        black_box(*alpha),
                        black_box(&a_prev[..]),
                        black_box(&delta[..]),
                        black_box(&d_prev[..]),
                    );
                    match r {
                        Runner::Level(k) => {
                            k.backward_update(w.as_mut(), alpha, a_prev, delta, d_prev, delta_prev)
                        }
                        Runner::Reference => reference::backward_update(
                            w.as_mut(),
                            alpha,
                            a_prev,
                            delta,
                            d_prev,
                            delta_prev,
                        ),
                    }
                    .unwrap();
                    black_box(&mut *w);
                    black_box(&mut *delta_prev);
                })
            });
        }
        g.finish();
    }
}

/// The activations timed: the smooth ones that need exp/tanh, and Relu as the memory-bound
/// floor.
const ACTIVATIONS: [Activation; 5] = [
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::Gelu,
    Activation::Softplus,
];

/// The plain loop a user would write with std, as the issue's yardstick: σ and σ' in one
/// pass, the derivative from the output as the kernels do.
fn std_loop<T: Scalar>(act: Activation, n: &[T], a: &mut [T], d: &mut [T]) {
    match act {
        Activation::Sigmoid => {
            for ((&x, a), d) in n.iter().zip(a.iter_mut()).zip(d.iter_mut()) {
                let s = T::ONE / (T::ONE + (-x).exp());
                *a = s;
                *d = s * (T::ONE - s);
            }
        }
        Activation::Tanh => {
            for ((&x, a), d) in n.iter().zip(a.iter_mut()).zip(d.iter_mut()) {
                let t = x.tanh();
                *a = t;
                *d = T::ONE - t * t;
            }
        }
        _ => unreachable!("the std loop is only written for Sigmoid and Tanh"),
    }
}

fn bench_activate<T: Scalar>(c: &mut Criterion) {
    for len in [4096, 1 << 20] {
        let mut rng = Rng::new(7 ^ len as u64);
        // Pre-activations of a trained layer sit mostly within a few units of 0; ±8 also
        // reaches the saturated tails.
        let n: Vec<T> = rng.vec(len, -8.0, 8.0);
        let mut a = vec![T::ZERO; len];
        let mut d = vec![T::ZERO; len];
        for act in ACTIVATIONS {
            let mut g = c.benchmark_group(format!("activate/{}/{}/{len}", T::NAME, act.name()));
            configure_group(&mut g, 1, len);
            g.throughput(Throughput::Elements(len as u64));
            for r in runners(1, len) {
                g.bench_function(BenchmarkId::from_parameter(r.name()), |bch| {
                    bch.iter(|| {
                        let n = black_box(&n[..]);
                        match r {
                            Runner::Level(k) => k.activate(act, n, &mut a, &mut d),
                            Runner::Reference => reference::activate(act, n, &mut a, &mut d),
                        }
                        .unwrap();
                        black_box((&mut a, &mut d));
                    })
                });
            }
            if matches!(act, Activation::Sigmoid | Activation::Tanh) {
                g.bench_function(BenchmarkId::from_parameter("std-loop"), |bch| {
                    bch.iter(|| {
                        std_loop(act, black_box(&n[..]), &mut a, &mut d);
                        black_box((&mut a, &mut d));
                    })
                });
            }
            g.finish();
        }
    }
}

fn print_levels(_: &mut Criterion) {
    let names: Vec<&str> = simd::available().iter().map(|l| l.name()).collect();
    eprintln!(
        "deltaprop kernels bench: levels {names:?}, best {}",
        simd::best()
    );
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = print_levels, bench_w_kernels::<f32>, bench_w_kernels::<f64>,
        bench_activate::<f32>, bench_activate::<f64>
}
criterion_main!(benches);
