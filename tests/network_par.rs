//! Multi-core determinism: training gives the same bits on 1, 2, 3 and 5 rayon threads (and
//! from run to run), on layers wide enough to be split into blocks.
#![cfg(feature = "rayon")]

use deltaprop::{Activation, MatRef, Network, Scalar};

fn bits<T: Scalar>(net: &Network<T>) -> Vec<u64> {
    net.layers()
        .iter()
        .flat_map(|l| {
            let mut v = l.weights().to_row_major();
            v.extend_from_slice(l.bias());
            v.into_iter().map(|e| e.to_f64().to_bits())
        })
        .collect()
}

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f32 / (1u64 << 53) as f32
        })
        .collect()
}

/// 96 → 1024 → 640 → 10: the 1024 × 640 layer (2.5 MiB) is above the per-sample split
/// threshold (rows and columns), the batch GEMMs above the batch kernels' threshold.
fn train(threads: usize) -> (Vec<u64>, Vec<u32>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut net = Network::<f32>::builder(96)
            .layer(1024, Activation::Tanh)
            .layer(640, Activation::Relu)
            .layer(10, Activation::Softmax)
            .seed(3)
            .build()
            .unwrap();
        let rows = 48;
        let x = data(rows * 96, 1);
        let t: Vec<f32> = (0..rows * 10)
            .map(|i| if i % 10 == (i / 10) % 10 { 1.0 } else { 0.0 })
            .collect();
        let mut losses = vec![];
        for i in 0..rows {
            let l = net
                .train_sample(&x[i * 96..][..96], &t[i * 10..][..10], 0.01)
                .unwrap();
            losses.push(l.to_bits());
        }
        let (xb, tb) = (
            MatRef::from_slice(&x, rows, 96, 96).unwrap(),
            MatRef::from_slice(&t, rows, 10, 10).unwrap(),
        );
        for _ in 0..3 {
            losses.push(net.train_batch(xb, tb, 0.01).unwrap().to_bits());
        }
        // A shuffled epoch of minibatches (a short last batch), and a gradient applied by hand.
        let opts = deltaprop::EpochOptions {
            batch_size: 20,
            shuffle: true,
            seed: 9,
        };
        losses.push(net.train_epoch(xb, tb, 0.01, 0, &opts).unwrap().to_bits());
        let mut g = net.gradients();
        losses.push(net.gradient_batch(xb, tb, &mut g).unwrap().to_bits());
        net.apply_gradients(&g, 0.01).unwrap();
        let mut y = [0.0f32; 10];
        net.predict_into(&x[..96], &mut y).unwrap();
        losses.extend(y.iter().map(|v| v.to_bits()));
        (bits(&net), losses)
    })
}

#[test]
fn one_and_two_threads_give_the_same_bits() {
    let one = train(1);
    let two = train(2);
    assert!(one.0 == two.0, "weights differ between 1 and 2 threads");
    assert_eq!(one.1, two.1, "losses or predictions differ");
    assert!(train(2) == two, "two runs on 2 threads differ");
    // More threads than blocks of some splits, and an odd count.
    for threads in [3, 5] {
        assert!(train(threads) == one, "{threads} threads differ from one");
    }
}
