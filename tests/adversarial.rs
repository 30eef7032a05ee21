//! Training on adversarial but finite data: inputs of magnitude up to 1e30, targets at exactly
//! 0 and 1, saturated sigmoids, learning rates up to 1e30. Every call either trains — and then
//! every weight and bias is finite — or returns an `Err` with the network bit for bit as it
//! was. The weights never silently become NaN or ∞.

use deltaprop::{Activation, EpochOptions, Error, Loss, MatRef, Network, Scalar};

/// Every weight and bias, as bits.
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

fn all_finite<T: Scalar>(net: &Network<T>) -> bool {
    net.layers().iter().all(|l| {
        l.weights().to_row_major().iter().all(|v| v.is_finite())
            && l.bias().iter().all(|v| v.is_finite())
    })
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
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

const HIDDEN: [Activation; 7] = [
    Activation::Identity,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::LeakyRelu,
    Activation::Softplus,
    Activation::Gelu,
];

/// Input magnitudes: ordinary, large, and 1e30 (still finite in f32).
const SCALES: [f64; 4] = [1.0, 1e6, 1e15, 1e30];

/// Learning rates from ordinary to absurd.
const RATES: [f64; 5] = [1e-3, 1.0, 1e3, 1e10, 1e30];

/// A random network: 1-3 layers of 1-40 outputs, a random hidden activation, and an output
/// layer that is Identity, Sigmoid (saturates at these inputs), Softmax + cross-entropy or
/// Softmax + squared error.
fn network<T: Scalar>(rng: &mut Rng) -> Network<T> {
    let inputs = 1 + rng.below(24);
    let mut b = Network::<T>::builder(inputs);
    for _ in 0..rng.below(3) {
        b = b.layer(1 + rng.below(40), rng.pick(&HIDDEN));
    }
    let outputs = 1 + rng.below(6);
    b = match rng.below(4) {
        0 => b.layer(outputs, Activation::Identity),
        1 => b.layer(outputs, Activation::Sigmoid),
        2 => b
            .layer(outputs.max(2), Activation::Softmax)
            .loss(Loss::CrossEntropy),
        _ => b.layer(outputs.max(2), Activation::Softmax),
    };
    b.seed(rng.next()).build().unwrap()
}

/// `n` values of magnitude up to `scale`, a quarter of them exactly ±scale.
fn data<T: Scalar>(rng: &mut Rng, n: usize, scale: f64) -> Vec<T> {
    (0..n)
        .map(|_| {
            let v = match rng.below(4) {
                0 => scale * if rng.below(2) == 0 { 1.0 } else { -1.0 },
                _ => scale * rng.unit(),
            };
            T::from_f64(v)
        })
        .collect()
}

/// Targets at exactly 0 and 1: one-hot (or a single 0/1 output).
fn targets<T: Scalar>(rng: &mut Rng, rows: usize, l: usize) -> Vec<T> {
    let mut t = vec![T::ZERO; rows * l];
    for i in 0..rows {
        if l == 1 {
            t[i] = T::from_f64(rng.below(2) as f64);
        } else {
            t[i * l + rng.below(l)] = T::ONE;
        }
    }
    t
}

/// What one call did.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    diverged: usize,
    other_err: usize,
}

impl Tally {
    /// Checks the invariant for one call's result: Ok ⇒ every weight finite; Err ⇒ the
    /// network bit for bit as before the call.
    fn record<T: Scalar, R>(
        &mut self,
        what: &str,
        net: &Network<T>,
        before: &[u64],
        result: Result<R, Error>,
    ) {
        match result {
            Ok(_) => {
                assert!(
                    all_finite(net),
                    "{what}: Ok, but a weight or bias is not finite"
                );
                self.ok += 1;
            }
            Err(e) => {
                assert!(
                    bits(net) == before,
                    "{what}: Err({e}), but the network changed"
                );
                if matches!(e, Error::Diverged { .. }) {
                    self.diverged += 1;
                } else {
                    self.other_err += 1;
                }
            }
        }
    }
}

/// Random networks, each trained for a few steps of every kind on data of one scale with one
/// learning rate; every call is checked.
fn run<T: Scalar>(seed: u64, networks: usize) -> Tally {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    for case in 0..networks {
        let mut net = network::<T>(&mut rng);
        let (h, l) = (net.inputs(), net.outputs());
        let scale = rng.pick(&SCALES);
        let lr = T::from_f64(rng.pick(&RATES));
        let what = format!(
            "case {case}: {:?} loss {}, inputs ±{scale:e}, lr {:e}",
            net.layers(),
            net.loss(),
            lr.to_f64()
        );
        for step in 0..12 {
            let before = bits(&net);
            let rows = 1 + rng.below(9);
            let x = data::<T>(&mut rng, rows * h, scale);
            let t = targets::<T>(&mut rng, rows, l);
            let xm = MatRef::from_slice(&x, rows, h, h).unwrap();
            let tm = MatRef::from_slice(&t, rows, l, l).unwrap();
            let what = format!("{what}, step {step}");
            match step % 4 {
                0 | 1 => {
                    let r = net.train_sample(&x[..h], &t[..l], lr);
                    tally.record(&format!("{what} train_sample"), &net, &before, r);
                }
                2 => {
                    let r = net.train_batch(xm, tm, lr);
                    tally.record(&format!("{what} train_batch"), &net, &before, r);
                }
                _ => {
                    let mut g = net.gradients();
                    match net.gradient_batch(xm, tm, &mut g) {
                        Ok(_) => {
                            let r = net.apply_gradients(&g, lr);
                            tally.record(&format!("{what} apply_gradients"), &net, &before, r);
                        }
                        Err(e) => tally.record(
                            &format!("{what} gradient_batch"),
                            &net,
                            &before,
                            Err::<(), _>(e),
                        ),
                    }
                }
            }
        }
        // An epoch stops at a diverging step with the steps before it taken: those must have
        // left finite weights.
        let rows = 1 + rng.below(16);
        let x = data::<T>(&mut rng, rows * h, scale);
        let t = targets::<T>(&mut rng, rows, l);
        let xm = MatRef::from_slice(&x, rows, h, h).unwrap();
        let tm = MatRef::from_slice(&t, rows, l, l).unwrap();
        for batch_size in [1, 4] {
            let opts = EpochOptions {
                batch_size,
                ..EpochOptions::default()
            };
            match net.train_epoch(xm, tm, lr, 0, &opts) {
                Ok(_) => tally.ok += 1,
                Err(_) => tally.diverged += 1,
            }
            assert!(
                all_finite(&net),
                "{what}: an epoch left a non-finite weight"
            );
        }
    }
    tally
}

#[test]
fn adversarial_training_never_leaves_non_finite_weights_f32() {
    let t = run::<f32>(1, 400);
    eprintln!("f32: {t:?}");
    assert!(
        t.ok > 0 && t.diverged > 0,
        "both outcomes are exercised: {t:?}"
    );
}

#[test]
fn adversarial_training_never_leaves_non_finite_weights_f64() {
    let t = run::<f64>(2, 400);
    eprintln!("f64: {t:?}");
    assert!(
        t.ok > 0 && t.diverged > 0,
        "both outcomes are exercised: {t:?}"
    );
}

/// A finite loss whose step overflows: 1 → 1 Identity, W = 1, x = 1e15, t = 0 gives
/// ψ = 1e30 (finite in f32) and δ = 2e15; with α = 1e10 the update α x δ = 2e40 is not.
#[test]
fn a_finite_loss_whose_update_overflows_is_diverged_and_not_taken() {
    let w = deltaprop::Matrix::from_row_major(1, 1, &[1.0f32]).unwrap();
    let layer = deltaprop::Layer::new(w, vec![0.0], Activation::Identity).unwrap();
    let mut net = Network::new(vec![layer], Loss::SquaredError).unwrap();
    let before = bits(&net);
    match net.train_sample(&[1e15], &[0.0], 1e10) {
        Err(Error::Diverged { loss }) => assert!((loss / 1e30 - 1.0).abs() < 1e-6, "loss {loss}"),
        other => panic!("expected Err(Diverged), got {other:?}"),
    }
    assert!(bits(&net) == before, "the network changed");
    // The same as a batch of two rows, and as a gradient applied by hand.
    let x = MatRef::from_slice(&[1e15f32, 1e15], 2, 1, 1).unwrap();
    let t = MatRef::from_slice(&[0.0f32, 0.0], 2, 1, 1).unwrap();
    assert!(matches!(
        net.train_batch(x, t, 1e10),
        Err(Error::Diverged { .. })
    ));
    assert!(bits(&net) == before, "the network changed");
    let mut g = net.gradients();
    net.gradient_batch(x, t, &mut g).unwrap();
    assert!(matches!(
        net.apply_gradients(&g, 1e10),
        Err(Error::Diverged { .. })
    ));
    assert!(bits(&net) == before, "the network changed");
    // A small enough rate trains, with finite weights.
    net.train_sample(&[1e15], &[0.0], 1e-3).unwrap();
    assert!(all_finite(&net) && bits(&net) != before);
}

/// Finite inputs whose Σ |x| overflows: every element is finite, so the input checks pass
/// (the sum they compute for the step guard is +∞, which only sends the step down the checked
/// path). The step then either trains with finite weights or is `Diverged` and not taken —
/// never `NonFiniteElement`.
#[test]
fn inputs_whose_sum_of_magnitudes_overflows_are_accepted() {
    let big = f32::MAX / 2.0;
    for lr in [1e-30f32, 1e-3] {
        let w = deltaprop::Matrix::from_row_major(4, 1, &[1e-30f32, 0.0, 0.0, 0.0]).unwrap();
        let layer = deltaprop::Layer::new(w, vec![0.0], Activation::Sigmoid).unwrap();
        let mut net = Network::new(vec![layer], Loss::SquaredError).unwrap();
        // Row 0 sums to 2·MAX (+∞ in f32); row 1 is ordinary.
        let x = [big, big, big, big, 0.5, 0.5, 0.5, 0.5];
        let xb = MatRef::from_slice(&x, 2, 4, 4).unwrap();
        let tb = MatRef::from_slice(&[1.0f32, 0.0], 2, 1, 1).unwrap();
        let before = bits(&net);
        let mut tally = Tally::default();
        let result = net.train_batch(xb, tb, lr);
        assert!(
            !matches!(result, Err(Error::NonFiniteElement { .. })),
            "lr {lr}: finite inputs rejected: {result:?}"
        );
        tally.record("train_batch", &net, &before, result);
        // One sample whose Σ |x| overflows (the guard takes it from the input check).
        let before = bits(&net);
        let result = net.train_sample(&x[..4], &[1.0], lr);
        assert!(
            !matches!(result, Err(Error::NonFiniteElement { .. })),
            "lr {lr}: finite sample rejected: {result:?}"
        );
        tally.record("train_sample", &net, &before, result);
        assert_eq!(tally.ok + tally.diverged, 2, "lr {lr}: {tally:?}");
    }
}
