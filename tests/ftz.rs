//! The opt-in flush of subnormals (x86-64 MXCSR FTZ | DAZ): set for exactly the duration of
//! a training call, the previous value back afterwards on every way out (`Ok`, `Err`, a
//! panic unwinding out of a callback), and training with it on stays finite and sane.
#![cfg(target_arch = "x86_64")]

use std::panic::{AssertUnwindSafe, catch_unwind};

use deltaprop::simd::flushing_subnormals;
use deltaprop::{Activation, EpochOptions, Error, Loss, MatRef, Network};

fn net(flush: bool) -> Network<f32> {
    let mut net = Network::<f32>::builder(2)
        .layer(8, Activation::Tanh)
        .layer(1, Activation::Sigmoid)
        .loss(Loss::SquaredError)
        .seed(5)
        .build()
        .unwrap();
    net.set_flush_subnormals(flush);
    net
}

const X: [f32; 8] = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
const T: [f32; 4] = [0.0, 1.0, 1.0, 0.0];

fn xor() -> (MatRef<'static, f32>, MatRef<'static, f32>) {
    (
        MatRef::from_slice(&X, 4, 2, 2).unwrap(),
        MatRef::from_slice(&T, 4, 1, 1).unwrap(),
    )
}

fn bits(net: &Network<f32>) -> Vec<u32> {
    net.layers()
        .iter()
        .flat_map(|l| {
            let mut v = l.weights().to_row_major();
            v.extend_from_slice(l.bias());
            v.into_iter().map(f32::to_bits)
        })
        .collect()
}

#[test]
fn flags_are_set_during_a_training_call_only() {
    assert!(!flushing_subnormals(), "FTZ/DAZ are off in a fresh thread");
    let (x, t) = xor();
    for (flush, batch_size) in [(true, 1), (true, 2), (false, 1)] {
        let mut n = net(flush);
        assert_eq!(n.flush_subnormals(), flush);
        let opts = EpochOptions {
            batch_size,
            ..EpochOptions::default()
        };
        let mut seen = vec![];
        n.train_epoch_with(x, t, 0.5, 0, &opts, |_| seen.push(flushing_subnormals()))
            .unwrap();
        assert!(
            !seen.is_empty() && seen.iter().all(|&s| s == flush),
            "{seen:?}"
        );
        assert!(!flushing_subnormals(), "restored after the epoch");
    }
}

#[test]
fn flags_are_restored_after_every_kind_of_call_and_error() {
    let (x, t) = xor();
    let mut n = net(true);
    n.train_sample(&X[..2], &T[..1], 0.5).unwrap();
    assert!(!flushing_subnormals());
    n.train_batch(x, t, 0.5).unwrap();
    assert!(!flushing_subnormals());
    let mut g = n.gradients();
    n.gradient_batch(x, t, &mut g).unwrap();
    assert!(!flushing_subnormals());
    n.gradient_sample(&X[..2], &T[..1], &mut g).unwrap();
    assert!(!flushing_subnormals());
    n.apply_gradients(&g, 0.5).unwrap();
    assert!(!flushing_subnormals());
    // Errors: a bad learning rate, a bad length, a step that would overflow.
    assert!(n.train_sample(&X[..2], &T[..1], -1.0).is_err());
    assert!(!flushing_subnormals());
    assert!(
        n.train_batch(x, MatRef::from_slice(&X, 4, 2, 2).unwrap(), 0.5)
            .is_err()
    );
    assert!(!flushing_subnormals());
    let mut big = Network::<f32>::builder(1)
        .layer(1, Activation::Identity)
        .build()
        .unwrap();
    big.set_flush_subnormals(true);
    let e = big.train_sample(&[1e15], &[0.0], 1e10).unwrap_err();
    assert!(matches!(e, Error::Diverged { .. }), "{e}");
    assert!(!flushing_subnormals());
    // A panic unwinding out of the callback.
    let r = catch_unwind(AssertUnwindSafe(|| {
        n.train_epoch_with(x, t, 0.5, 0, &EpochOptions::default(), |_| {
            assert!(flushing_subnormals());
            panic!("from the callback")
        })
    }));
    assert!(r.is_err());
    assert!(!flushing_subnormals(), "restored while unwinding");
}

#[test]
fn the_previous_value_is_restored_not_cleared() {
    // Inside an outer call with the flags on, an inner call of a network with the setting on
    // restores "on", and one with it off leaves them on.
    let (x, t) = xor();
    let mut outer = net(true);
    let (mut on, mut off) = (net(true), net(false));
    let mut seen = vec![];
    outer
        .train_epoch_with(x, t, 0.5, 0, &EpochOptions::default(), |_| {
            on.train_sample(&X[2..4], &T[1..2], 0.5).unwrap();
            seen.push(flushing_subnormals());
            off.train_sample(&X[2..4], &T[1..2], 0.5).unwrap();
            seen.push(flushing_subnormals());
        })
        .unwrap();
    assert!(seen.iter().all(|&s| s), "{seen:?}");
    assert!(!flushing_subnormals());
}

#[test]
fn training_with_the_flush_on_is_finite_and_learns() {
    let (x, t) = xor();
    let mut n = net(true);
    let first = n.evaluate(x, t).unwrap().total_squared_error;
    n.fit(x, t, 0.5, 2000, &EpochOptions::default(), |_, _| {})
        .unwrap();
    let e = n.evaluate(x, t).unwrap();
    assert!(e.total_squared_error < first / 4.0, "{e:?}");
    assert_eq!(e.correct, 4);
    assert!(bits(&n).iter().all(|&b| f32::from_bits(b).is_finite()));
}

#[test]
fn subnormals_are_flushed_with_the_setting_on_and_kept_without_it() {
    // 1 → 1 Identity, W = 1, b = 0, x subnormal, t = 0: y = x, δ = 2y and b ← b − α δ.
    // Without the flush b becomes a subnormal; with it x is read as 0 and nothing moves.
    let tiny = f32::MIN_POSITIVE / 8.0;
    assert!(tiny.is_subnormal());
    let make = |flush| {
        let w = deltaprop::Matrix::from_row_major(1, 1, &[1.0f32]).unwrap();
        let layer = deltaprop::Layer::new(w, vec![0.0], Activation::Identity).unwrap();
        let mut n = Network::new(vec![layer], Loss::SquaredError).unwrap();
        n.set_flush_subnormals(flush);
        n
    };
    let mut kept = make(false);
    kept.train_sample(&[tiny], &[0.0], 0.5).unwrap();
    let b = kept.layers()[0].bias()[0];
    assert!(b.is_subnormal() && b < 0.0, "without the flush b = {b:e}");
    let mut flushed = make(true);
    flushed.train_sample(&[tiny], &[0.0], 0.5).unwrap();
    assert_eq!(bits(&flushed), [1.0f32.to_bits(), 0.0f32.to_bits()]);
}
