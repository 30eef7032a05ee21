//! The minibatch kernels allocate nothing: a counting global allocator sees no allocation
//! across many calls of every kernel at every path (B = 1 per-sample path, the GEMM, several
//! k-blocks, the transposed backward) once the process is warm.
//!
//! One test per binary, so that no other test's thread allocates while counting. On threads:
//! a GEMM big enough to be split (≥ `PAR_MIN_FLOPS`) hands its blocks to rayon; rayon's
//! fork-join allocates nothing from a thread of its pool, but a call from outside the pool
//! pushes a job onto the pool's shared injector queue, which allocates a new 63-slot block
//! now and then. `threaded_calls_from_inside_the_pool_allocate_nothing` shows the first half;
//! the second half is counted and printed, not asserted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use deltaprop::kernels::KernelSet;
use deltaprop::{Activation, Matrix, simd};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Inputs and outputs of one shape, allocated up front.
struct Case {
    w: Matrix<f32>,
    x: Matrix<f32>,
    delta: Matrix<f32>,
    d_prev: Matrix<f32>,
    a: Matrix<f32>,
    d: Matrix<f32>,
    dp: Matrix<f32>,
    g: Matrix<f32>,
    b: Vec<f32>,
    gb: Vec<f32>,
}

impl Case {
    fn new(bsz: usize, h: usize, l: usize) -> Self {
        let fill = |r: usize, c: usize, k: usize| {
            let v: Vec<f32> = (0..r * c)
                .map(|i| ((i * k) % 17) as f32 / 17.0 - 0.5)
                .collect();
            Matrix::from_row_major(r, c, &v).unwrap()
        };
        Case {
            w: fill(h, l, 3),
            x: fill(bsz, h, 5),
            delta: fill(bsz, l, 7),
            d_prev: fill(bsz, h, 11),
            a: Matrix::zeros(bsz, l),
            d: Matrix::zeros(bsz, l),
            dp: Matrix::zeros(bsz, h),
            g: Matrix::zeros(h, l),
            b: vec![0.25; l],
            gb: vec![0.0; l],
        }
    }

    /// Every kernel once.
    fn run(&mut self, ks: KernelSet) {
        ks.batch_forward(
            Activation::Sigmoid,
            self.w.as_ref(),
            &self.b,
            self.x.as_ref(),
            self.a.as_mut(),
            self.d.as_mut(),
        )
        .unwrap();
        ks.batch_backward(
            self.w.as_ref(),
            self.delta.as_ref(),
            self.d_prev.as_ref(),
            self.dp.as_mut(),
        )
        .unwrap();
        ks.batch_gradient(
            self.x.as_ref(),
            self.delta.as_ref(),
            0.5,
            0.0,
            self.g.as_mut(),
            &mut self.gb,
        )
        .unwrap();
        ks.batch_update(
            self.w.as_mut(),
            &mut self.b,
            1e-6,
            self.x.as_ref(),
            self.delta.as_ref(),
        )
        .unwrap();
        ks.apply_gradient(
            self.w.as_mut(),
            &mut self.b,
            1e-6,
            self.g.as_ref(),
            &self.gb,
        )
        .unwrap();
    }
}

/// Allocations while `f` runs.
fn count(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    f();
    ALLOCS.load(Ordering::SeqCst) - before
}

#[test]
fn batch_kernels_allocate_nothing() {
    // B = 1 (per-sample path), small GEMMs (single thread), k past one block (H = 784,
    // L = 520 backward, B = 300 gradient), the transposed backward (B = 2, L = 1000), and
    // GEMMs above PAR_MIN_FLOPS (split across threads when there are several).
    let shapes = [
        (1, 64, 32),
        (32, 64, 32),
        (33, 31, 10),
        (7, 65, 784),
        (2, 9, 1000),
        (300, 33, 17),
        (256, 64, 520),
        (256, 784, 256),
    ];
    let mut cases: Vec<Case> = shapes.iter().map(|&(b, h, l)| Case::new(b, h, l)).collect();
    let sets: Vec<KernelSet> = simd::available()
        .into_iter()
        .map(|l| KernelSet::new(l).unwrap())
        .collect();

    // Single-threaded (a one-thread pool, entered once: the entry itself may allocate).
    let single = |cases: &mut [Case]| {
        for c in cases.iter_mut() {
            for &ks in &sets {
                c.run(ks);
            }
        }
        let n = count(|| {
            for _ in 0..3 {
                for c in cases.iter_mut() {
                    for &ks in &sets {
                        c.run(ks);
                    }
                }
            }
        });
        assert_eq!(
            n, 0,
            "{n} allocations in single-threaded batch kernel calls"
        );
    };
    #[cfg(not(feature = "rayon"))]
    single(&mut cases);
    #[cfg(feature = "rayon")]
    threaded(&mut cases, single);
}

#[cfg(feature = "rayon")]
fn threaded(cases: &mut [Case], single: impl FnOnce(&mut [Case]) + Send) {
    let pool1 = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool1.install(|| single(cases));

    // Two threads, called from a thread of the pool.
    let pool2 = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool2.install(|| {
        for _ in 0..3 {
            for c in cases.iter_mut() {
                c.run(KernelSet::active());
            }
        }
        let n = count(|| {
            for _ in 0..20 {
                for c in cases.iter_mut() {
                    c.run(KernelSet::active());
                }
            }
        });
        assert_eq!(
            n, 0,
            "{n} allocations in threaded batch kernel calls inside the pool"
        );
    });

    // Two threads (the global pool), called from outside it: rayon's injector.
    let big = cases.last_mut().unwrap();
    big.run(KernelSet::active());
    let calls = 200;
    let n = count(|| {
        for _ in 0..calls {
            deltaprop::kernels::batch_forward(
                Activation::Identity,
                big.w.as_ref(),
                &big.b,
                big.x.as_ref(),
                big.a.as_mut(),
                big.d.as_mut(),
            )
            .unwrap();
        }
    });
    eprintln!(
        "{n} allocations in {calls} threaded batch_forward calls from outside rayon's pool \
         ({} threads)",
        rayon::current_num_threads()
    );
}
