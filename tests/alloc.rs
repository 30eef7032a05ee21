//! No heap allocation per step: `train_sample`, `predict_into`, and `train_batch`,
//! `gradient_batch` and `apply_gradients` after the first call at a batch size, counted by a
//! global allocator on the calling thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use deltaprop::{Activation, Loss, MatRef, Network, Scalar};

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the allocator also runs while thread-locals are being torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

fn data<T: Scalar>(n: usize, seed: u64) -> Vec<T> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f64((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

fn one_hot_rows<T: Scalar>(rows: usize, l: usize) -> Vec<T> {
    (0..rows * l)
        .map(|i| {
            if i % l == (i / l) % l {
                T::ONE
            } else {
                T::ZERO
            }
        })
        .collect()
}

fn digits_net<T: Scalar>() -> Network<T> {
    Network::builder(64)
        .layer(32, Activation::Sigmoid)
        .layer(10, Activation::Softmax)
        .loss(Loss::CrossEntropy)
        .build()
        .unwrap()
}

fn regression_net<T: Scalar>() -> Network<T> {
    Network::builder(20)
        .layer(40, Activation::Relu)
        .layer(30, Activation::Tanh)
        .layer(3, Activation::Identity)
        .build()
        .unwrap()
}

fn per_sample<T: Scalar>(mut net: Network<T>) {
    let (h, l) = (net.inputs(), net.outputs());
    let x = data::<T>(h, 3);
    let t = one_hot_rows::<T>(1, l);
    let lr = T::from_f64(0.01);
    let mut out = vec![T::ZERO; l];
    net.train_sample(&x, &t, lr).unwrap();
    let n = allocations(|| {
        for _ in 0..100 {
            net.train_sample(&x, &t, lr).unwrap();
            net.predict_into(&x, &mut out).unwrap();
        }
    });
    assert_eq!(
        n,
        0,
        "{n} allocations in 100 train_sample + predict_into ({})",
        T::NAME
    );
}

fn batched<T: Scalar>(mut net: Network<T>) {
    let (h, l) = (net.inputs(), net.outputs());
    let lr = T::from_f64(0.01);
    let x = data::<T>(64 * h, 5);
    let t = one_hot_rows::<T>(64, l);
    let view = |rows: usize| {
        (
            MatRef::from_slice(&x[..rows * h], rows, h, h).unwrap(),
            MatRef::from_slice(&t[..rows * l], rows, l, l).unwrap(),
        )
    };
    let mut grads = net.gradients();
    // The first batch of 32 allocates the workspaces ...
    let (xb, tb) = view(32);
    assert!(
        allocations(|| {
            net.train_batch(xb, tb, lr).unwrap();
        }) > 0
    );
    // ... and later batches of at most 32 rows allocate nothing.
    let n = allocations(|| {
        for rows in [32, 32, 17, 1, 2, 32] {
            let (xb, tb) = view(rows);
            net.train_batch(xb, tb, lr).unwrap();
            net.gradient_batch(xb, tb, &mut grads).unwrap();
            net.apply_gradients(&grads, lr).unwrap();
        }
    });
    assert_eq!(
        n,
        0,
        "{n} allocations in batches of ≤ 32 after one of 32 ({})",
        T::NAME
    );
    let (xb, tb) = view(64);
    net.train_batch(xb, tb, lr).unwrap();
    let n = allocations(|| {
        net.train_batch(xb, tb, lr).unwrap();
    });
    assert_eq!(
        n,
        0,
        "{n} allocations in a second batch of 64 ({})",
        T::NAME
    );
}

#[test]
fn train_sample_and_predict_into_do_not_allocate() {
    per_sample(digits_net::<f32>());
    per_sample(digits_net::<f64>());
    per_sample(regression_net::<f32>());
    per_sample(regression_net::<f64>());
}

#[test]
fn train_batch_does_not_allocate_after_the_first_call_at_a_size() {
    batched(digits_net::<f32>());
    batched(digits_net::<f64>());
    batched(regression_net::<f32>());
}

#[test]
fn wide_layers_split_across_threads_do_not_allocate() {
    // 1024 × 640 (2.5 MiB) is above the size where the per-sample kernels are split into
    // row and column blocks; run in a rayon pool, after a warm-up (the pool's own start-up
    // allocates).
    let net = Network::<f32>::builder(64)
        .layer(1024, Activation::Tanh)
        .layer(640, Activation::Tanh)
        .layer(10, Activation::Softmax)
        .build()
        .unwrap();
    #[cfg(feature = "rayon")]
    {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| per_sample(net));
    }
    #[cfg(not(feature = "rayon"))]
    per_sample(net);
}
