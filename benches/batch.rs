//! Throughput of the minibatch kernels in GFLOP/s, side by side with a raw `matrixmultiply`
//! GEMM of the same product, f32 and f64, on the active SIMD level (`DELTAPROP_SIMD` picks
//! another) and on one thread.
//!
//! Groups are named `batch_forward|batch_backward|batch_update/type/HxL`; in each, the
//! benchmarks `deltaprop/B=…` and `matrixmultiply/B=…` for B = 1, 32, 256. Throughput is in
//! elements of 2·B·H·L (the flops of the product), so criterion's "Gelem/s" reads GFLOP/s.
//! What is timed:
//!
//! | group | deltaprop | matrixmultiply |
//! |---|---|---|
//! | `batch_forward` | A, D = σ(ÂW + 1bᵀ), σ'(…), sigmoid | N = Â W (`?gemm`, β = 0) |
//! | `batch_backward` | Δ̂ = (Δ Wᵀ) ⊙ D̂ | Δ Wᵀ (Wᵀ by strides, β = 0) |
//! | `batch_update` | W ← W − (α/B) ÂᵀΔ, b ← b − (α/B) Σ Δ | W ← W − (α/B) ÂᵀΔ (β = 1) |
//!
//! So deltaprop's side also pays its epilogue (σ and σ', ⊙ D̂, the bias column sums), and
//! matrixmultiply's its per-call allocation of packing buffers. B = 1 shows why a single
//! sample never goes through a packed GEMM (deltaprop runs its per-sample kernels there).
//!
//! Both sides run on one thread: the bench makes rayon's global pool one thread unless
//! `RAYON_NUM_THREADS` is set (matrixmultiply's own threading is a cargo feature that is
//! off). About four minutes:
//!
//! ```text
//! cargo bench --bench batch
//! cargo bench --bench batch -- 'batch_forward/f32'      # a filter, as criterion takes it
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use deltaprop::kernels::KernelSet;
use deltaprop::{Activation, MatRef, Matrix, Scalar};

/// The layer shapes (H × L) of the issue's networks.
const SHAPES: [(usize, usize); 4] = [(64, 32), (256, 128), (784, 256), (1024, 1024)];
const BATCHES: [usize; 3] = [1, 32, 256];

/// `matrixmultiply`'s GEMM for each element type.
trait Gemm: Scalar {
    /// C ← α A B + β C with strided A (m × k), B (k × n), C (m × n, row stride `rsc`).
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        beta: Self,
        c: (*mut Self, isize),
    );
}

impl Gemm for f32 {
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: (*const f32, isize, isize),
        b: (*const f32, isize, isize),
        beta: f32,
        c: (*mut f32, isize),
    ) {
        // SAFETY: the caller passes views that match the shape.
        unsafe {
            matrixmultiply::sgemm(
                m, k, n, alpha, a.0, a.1, a.2, b.0, b.1, b.2, beta, c.0, c.1, 1,
            )
        }
    }
}

impl Gemm for f64 {
    unsafe fn gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: (*const f64, isize, isize),
        b: (*const f64, isize, isize),
        beta: f64,
        c: (*mut f64, isize),
    ) {
        // SAFETY: the caller passes views that match the shape.
        unsafe {
            matrixmultiply::dgemm(
                m, k, n, alpha, a.0, a.1, a.2, b.0, b.1, b.2, beta, c.0, c.1, 1,
            )
        }
    }
}

/// A deterministic matrix of values in [−0.5, 0.5).
fn filled<T: Scalar>(rows: usize, cols: usize, seed: usize) -> Matrix<T> {
    let data: Vec<T> = (0..rows * cols)
        .map(|i| T::from_f64(((i * 7919 + seed * 104_729) % 1000) as f64 / 1000.0 - 0.5))
        .collect();
    Matrix::from_row_major(rows, cols, &data).unwrap()
}

/// (pointer, row stride, column stride) of a view, transposed or not.
fn strides<T: Scalar>(m: MatRef<'_, T>, transposed: bool) -> (*const T, isize, isize) {
    let rs = m.row_stride() as isize;
    let p = if m.rows() > 0 {
        m.row(0).as_ptr()
    } else {
        std::ptr::null()
    };
    if transposed { (p, 1, rs) } else { (p, rs, 1) }
}

/// Short groups (144 benchmarks in about four minutes): in-cache shapes are steady within
/// half a second; the big ones take fewer, flat samples.
fn configure(g: &mut BenchmarkGroup<'_, WallTime>, flops: usize) {
    g.warm_up_time(Duration::from_millis(200));
    g.measurement_time(Duration::from_millis(600));
    g.sample_size(20);
    if flops > 50_000_000 {
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
    }
}

/// No plots and a lighter bootstrap: criterion's analysis would otherwise cost more than the
/// measurements.
fn criterion() -> Criterion {
    Criterion::default().without_plots().nresamples(5_000)
}

fn bench_type<T: Gemm>(c: &mut Criterion) {
    let ks = KernelSet::active();
    let alpha = T::from_f64(1e-3);
    for (h, l) in SHAPES {
        let w = filled::<T>(h, l, 1);
        let b = vec![T::from_f64(0.1); l];
        let inputs: Vec<_> = BATCHES
            .iter()
            .map(|&bsz| {
                (
                    bsz,
                    filled::<T>(bsz, h, 2),
                    filled::<T>(bsz, l, 3),
                    filled::<T>(bsz, h, 4),
                )
            })
            .collect();
        let flops = |bsz: usize| 2 * bsz * h * l;

        let mut g = c.benchmark_group(format!("batch_forward/{}/{h}x{l}", T::NAME));
        configure(&mut g, flops(256));
        for (bsz, x, _, _) in &inputs {
            let bsz = *bsz;
            g.throughput(Throughput::Elements(flops(bsz) as u64));
            let (mut a, mut d) = (Matrix::<T>::zeros(bsz, l), Matrix::<T>::zeros(bsz, l));
            g.bench_function(BenchmarkId::new("deltaprop", format!("B={bsz}")), |bch| {
                bch.iter(|| {
                    ks.batch_forward(
                        Activation::Sigmoid,
                        black_box(w.as_ref()),
                        black_box(&b),
                        black_box(x.as_ref()),
                        a.as_mut(),
                        d.as_mut(),
                    )
                    .unwrap()
                })
            });
            let mut n = Matrix::<T>::zeros(bsz, l);
            let ldn = n.row_stride() as isize;
            g.bench_function(
                BenchmarkId::new("matrixmultiply", format!("B={bsz}")),
                |bch| {
                    bch.iter(|| {
                        let np = n.row_mut(0).as_mut_ptr();
                        // SAFETY: Â is B × H, W H × L, N B × L, as the strides say.
                        unsafe {
                            T::gemm(
                                bsz,
                                h,
                                l,
                                T::ONE,
                                strides(black_box(x.as_ref()), false),
                                strides(black_box(w.as_ref()), false),
                                T::ZERO,
                                (np, ldn),
                            )
                        }
                    })
                },
            );
        }
        g.finish();

        let mut g = c.benchmark_group(format!("batch_backward/{}/{h}x{l}", T::NAME));
        configure(&mut g, flops(256));
        for (bsz, _, delta, d_prev) in &inputs {
            let bsz = *bsz;
            g.throughput(Throughput::Elements(flops(bsz) as u64));
            let mut out = Matrix::<T>::zeros(bsz, h);
            g.bench_function(BenchmarkId::new("deltaprop", format!("B={bsz}")), |bch| {
                bch.iter(|| {
                    ks.batch_backward(
                        black_box(w.as_ref()),
                        black_box(delta.as_ref()),
                        black_box(d_prev.as_ref()),
                        out.as_mut(),
                    )
                    .unwrap()
                })
            });
            let ldo = out.row_stride() as isize;
            g.bench_function(
                BenchmarkId::new("matrixmultiply", format!("B={bsz}")),
                |bch| {
                    bch.iter(|| {
                        let op = out.row_mut(0).as_mut_ptr();
                        // SAFETY: Δ is B × L, Wᵀ L × H (W by swapped strides), Δ̂ B × H.
                        unsafe {
                            T::gemm(
                                bsz,
                                l,
                                h,
                                T::ONE,
                                strides(black_box(delta.as_ref()), false),
                                strides(black_box(w.as_ref()), true),
                                T::ZERO,
                                (op, ldo),
                            )
                        }
                    })
                },
            );
        }
        g.finish();

        let mut g = c.benchmark_group(format!("batch_update/{}/{h}x{l}", T::NAME));
        configure(&mut g, flops(256));
        for (bsz, x, delta, _) in &inputs {
            let bsz = *bsz;
            g.throughput(Throughput::Elements(flops(bsz) as u64));
            // α is tiny, so thousands of steps keep W in range.
            let (mut w2, mut b2) = (w.clone(), b.clone());
            g.bench_function(BenchmarkId::new("deltaprop", format!("B={bsz}")), |bch| {
                bch.iter(|| {
                    ks.batch_update(
                        w2.as_mut(),
                        &mut b2,
                        alpha,
                        black_box(x.as_ref()),
                        black_box(delta.as_ref()),
                    )
                    .unwrap()
                })
            });
            let mut w3 = w.clone();
            let ldw = w3.row_stride() as isize;
            let s = -alpha / T::from_f64(bsz as f64);
            g.bench_function(
                BenchmarkId::new("matrixmultiply", format!("B={bsz}")),
                |bch| {
                    bch.iter(|| {
                        let wp = w3.row_mut(0).as_mut_ptr();
                        // SAFETY: Âᵀ is H × B (Â by swapped strides), Δ B × L, W H × L.
                        unsafe {
                            T::gemm(
                                h,
                                bsz,
                                l,
                                s,
                                strides(black_box(x.as_ref()), true),
                                strides(black_box(delta.as_ref()), false),
                                T::ONE,
                                (wp, ldw),
                            )
                        }
                    })
                },
            );
        }
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    // One thread for both sides unless RAYON_NUM_THREADS says otherwise (the kernels' rayon
    // split then stays off, as matrixmultiply's threading feature is).
    #[cfg(feature = "rayon")]
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build_global()
            .expect("the global pool is configured before any kernel runs");
    }
    bench_type::<f32>(c);
    bench_type::<f64>(c);
}

criterion_group! {
    name = batch;
    config = criterion();
    targets = benches
}
criterion_main!(batch);
