//! The network layer: construction, initialisation, the SGD step against a hand-written step
//! on the reference kernels, batches, gradients, evaluation, epochs, and bad input.

use deltaprop::{
    Activation, EpochOptions, Error, Gradients, Init, Layer, Loss, MatRef, Matrix, Network,
    reference,
};

/// Every weight and bias, as bits: "unchanged" means bit for bit.
fn bits<T: deltaprop::Scalar>(net: &Network<T>) -> Vec<u64> {
    net.layers()
        .iter()
        .flat_map(|l| {
            let mut v = l.weights().to_row_major();
            v.extend_from_slice(l.bias());
            v.into_iter().map(|e| e.to_f64().to_bits())
        })
        .collect()
}

fn mlp(sizes: &[usize], hidden: Activation, out: Activation, loss: Loss) -> Network<f64> {
    let mut b = Network::builder(sizes[0]);
    for (i, &s) in sizes[1..].iter().enumerate() {
        let act = if i + 2 == sizes.len() { out } else { hidden };
        b = b.layer(s, act);
    }
    b.loss(loss).seed(11).build().unwrap()
}

/// Deterministic pseudo-random values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

fn one_hot(n: usize, k: usize) -> Vec<f64> {
    (0..n).map(|j| if j == k { 1.0 } else { 0.0 }).collect()
}

#[test]
fn builder_is_reproducible_from_the_seed() {
    let make = |seed| {
        Network::<f32>::builder(5)
            .layer(7, Activation::Relu)
            .layer(3, Activation::Softmax)
            .seed(seed)
            .build()
            .unwrap()
    };
    assert_eq!(bits(&make(3)), bits(&make(3)));
    assert_ne!(bits(&make(3)), bits(&make(4)));
    assert_eq!(
        make(3).loss(),
        Loss::CrossEntropy,
        "Softmax output defaults to CE"
    );
    let default = Network::<f32>::builder(5)
        .layer(7, Activation::Relu)
        .layer(3, Activation::Softmax)
        .build()
        .unwrap();
    assert_eq!(bits(&default), bits(&make(deltaprop::DEFAULT_SEED)));
}

#[test]
fn initialisation_is_xavier_or_he_by_activation() {
    let net = Network::<f64>::builder(100)
        .layer(300, Activation::Relu)
        .layer(50, Activation::Tanh)
        .layer(10, Activation::Softmax)
        .build()
        .unwrap();
    let rules = [Init::He, Init::Xavier, Init::Xavier];
    for (layer, rule) in net.layers().iter().zip(rules) {
        assert_eq!(Init::for_activation(layer.activation()), rule);
        let r = rule.limit(layer.inputs(), layer.outputs());
        let w = layer.weights().to_row_major();
        assert!(w.iter().all(|v| v.abs() < r));
        // Uniform on (−r, r): variance r²/3, to within sampling error.
        let var = w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64;
        assert!((var / (r * r / 3.0) - 1.0).abs() < 0.15, "variance {var}");
        assert!(layer.bias().iter().all(|&b| b == 0.0));
    }
    assert_eq!(Init::for_activation(Activation::Gelu), Init::He);
    assert_eq!(Init::for_activation(Activation::Softplus), Init::He);
    assert_eq!(Init::for_activation(Activation::LeakyRelu), Init::He);
    assert_eq!(Init::for_activation(Activation::Sigmoid), Init::Xavier);
    assert_eq!(Init::for_activation(Activation::Identity), Init::Xavier);
}

#[test]
fn construction_errors_name_what_is_wrong() {
    let layer = |h, l, act| Layer::new(Matrix::<f32>::zeros(h, l), vec![0.0; l], act).unwrap();
    assert_eq!(
        Network::<f32>::new(vec![], Loss::SquaredError).unwrap_err(),
        Error::EmptyNetwork
    );
    let e = Network::new(
        vec![
            layer(3, 4, Activation::Tanh),
            layer(5, 2, Activation::Identity),
        ],
        Loss::SquaredError,
    )
    .unwrap_err();
    assert_eq!(
        e,
        Error::LayerMismatch {
            layer: 1,
            inputs: 5,
            previous_outputs: 4
        }
    );
    assert!(e.to_string().contains("layer 1 has 5 inputs"), "{e}");
    let e = Network::new(
        vec![
            layer(3, 4, Activation::Softmax),
            layer(4, 2, Activation::Softmax),
        ],
        Loss::CrossEntropy,
    )
    .unwrap_err();
    assert_eq!(e, Error::SoftmaxHidden { layer: 0 });
    let e = Network::new(vec![layer(3, 4, Activation::Sigmoid)], Loss::CrossEntropy).unwrap_err();
    assert!(matches!(e, Error::LossActivation { .. }), "{e}");
    assert!(e.to_string().contains("Softmax"), "{e}");
    let e = Network::<f32>::builder(3)
        .layer(4, Activation::Sigmoid)
        .loss(Loss::CrossEntropy)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::LossActivation { .. }));
    assert!(matches!(
        Network::<f32>::builder(0)
            .layer(4, Activation::Tanh)
            .build()
            .unwrap_err(),
        Error::ZeroSize { .. }
    ));
    assert!(matches!(
        Network::<f32>::builder(3)
            .layer(0, Activation::Tanh)
            .build()
            .unwrap_err(),
        Error::ZeroSize { layer: Some(0), .. }
    ));
    assert_eq!(
        Network::<f32>::builder(3).build().unwrap_err(),
        Error::EmptyNetwork
    );
    assert!(matches!(
        Network::<f32>::builder(usize::MAX / 2)
            .layer(4, Activation::Tanh)
            .build()
            .unwrap_err(),
        Error::SizeOverflow { .. }
    ));
    // Layer::new: b against W, non-finite weights.
    assert!(matches!(
        Layer::new(Matrix::<f32>::zeros(2, 3), vec![0.0; 2], Activation::Tanh).unwrap_err(),
        Error::DimensionMismatch { arg: "b", .. }
    ));
    let w = Matrix::from_row_major(1, 2, &[0.0f32, f32::NAN]).unwrap();
    assert_eq!(
        Layer::new(w, vec![0.0; 2], Activation::Tanh).unwrap_err(),
        Error::NonFiniteElement {
            arg: "w",
            row: Some(0),
            index: 1
        }
    );
}

/// One SGD step written out on the reference kernels, as the seed notes give it.
fn reference_step(
    net: &Network<f64>,
    x: &[f64],
    t: &[f64],
    alpha: f64,
) -> (Vec<Matrix<f64>>, Vec<Vec<f64>>, f64) {
    let layers = net.layers();
    let mut acts: Vec<Vec<f64>> = vec![x.to_vec()];
    let mut ds: Vec<Vec<f64>> = vec![vec![]];
    let mut ns: Vec<Vec<f64>> = vec![vec![]];
    for layer in layers {
        let l = layer.outputs();
        let mut n = vec![0.0; l];
        reference::affine(layer.weights(), acts.last().unwrap(), layer.bias(), &mut n).unwrap();
        let (mut a, mut d) = (vec![0.0; l], vec![0.0; l]);
        if layer.activation() == Activation::Softmax {
            let m = n.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = n.iter().map(|v| (v - m).exp()).sum();
            a = n.iter().map(|v| (v - m).exp() / s).collect();
        } else {
            reference::activate(layer.activation(), &n, &mut a, &mut d).unwrap();
        }
        ns.push(n);
        acts.push(a);
        ds.push(d);
    }
    let y = acts.last().unwrap().clone();
    let out = layers.last().unwrap().activation();
    let (psi, mut delta): (f64, Vec<f64>) = match (net.loss(), out) {
        (Loss::CrossEntropy, _) => (
            -t.iter().zip(&y).map(|(t, y)| t * y.ln()).sum::<f64>(),
            y.iter().zip(t).map(|(y, t)| y - t).collect(),
        ),
        (Loss::SquaredError, Activation::Softmax) => {
            let g: Vec<f64> = y.iter().zip(t).map(|(y, t)| -2.0 * (t - y)).collect();
            let yg: f64 = y.iter().zip(&g).map(|(a, b)| a * b).sum();
            (
                y.iter().zip(t).map(|(y, t)| (t - y) * (t - y)).sum(),
                y.iter().zip(&g).map(|(y, g)| y * (g - yg)).collect(),
            )
        }
        _ => (
            y.iter().zip(t).map(|(y, t)| (t - y) * (t - y)).sum(),
            y.iter()
                .zip(t)
                .zip(ds.last().unwrap())
                .map(|((y, t), d)| -2.0 * d * (t - y))
                .collect(),
        ),
    };
    let mut ws: Vec<Matrix<f64>> = layers
        .iter()
        .map(|l| {
            Matrix::from_row_major(l.inputs(), l.outputs(), &l.weights().to_row_major()).unwrap()
        })
        .collect();
    let mut bs: Vec<Vec<f64>> = layers.iter().map(|l| l.bias().to_vec()).collect();
    for k in (0..layers.len()).rev() {
        let mut delta_prev = vec![0.0; layers[k].inputs()];
        if k > 0 {
            reference::backward(ws[k].as_ref(), &delta, &ds[k], &mut delta_prev).unwrap();
        }
        reference::rank1_update(ws[k].as_mut(), alpha, &acts[k], &delta).unwrap();
        for (b, d) in bs[k].iter_mut().zip(&delta) {
            *b -= alpha * d;
        }
        delta = delta_prev;
    }
    (ws, bs, psi)
}

#[test]
fn train_sample_is_the_seed_step() {
    let cases = [
        (Activation::Sigmoid, Activation::Sigmoid, Loss::SquaredError),
        (Activation::Tanh, Activation::Identity, Loss::SquaredError),
        (Activation::Relu, Activation::Softmax, Loss::CrossEntropy),
        (Activation::Gelu, Activation::Softmax, Loss::SquaredError),
    ];
    for (hidden, out, loss) in cases {
        let mut net = mlp(&[6, 9, 5, 4], hidden, out, loss);
        let x = values(6, 1);
        let t = if out == Activation::Softmax {
            one_hot(4, 2)
        } else {
            values(4, 2).iter().map(|v| 0.5 + 0.4 * v).collect()
        };
        let (ws, bs, psi_ref) = reference_step(&net, &x, &t, 0.3);
        let psi = net.train_sample(&x, &t, 0.3).unwrap();
        assert!(
            (psi - psi_ref).abs() <= 1e-12 * psi_ref.abs().max(1.0),
            "{psi} vs {psi_ref}"
        );
        for (k, layer) in net.layers().iter().enumerate() {
            for (a, b) in layer
                .weights()
                .to_row_major()
                .iter()
                .zip(ws[k].to_row_major())
            {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{hidden} {out} {loss} layer {k}: {a} vs {b}"
                );
            }
            for (a, b) in layer.bias().iter().zip(&bs[k]) {
                assert!((a - b).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn train_sample_returns_the_loss_before_the_step_and_lowers_it() {
    let mut net = mlp(
        &[4, 8, 3],
        Activation::Tanh,
        Activation::Softmax,
        Loss::CrossEntropy,
    );
    let (x, t) = (values(4, 5), one_hot(3, 1));
    let before = net.predict(&x).unwrap();
    let psi = net.train_sample(&x, &t, 0.1).unwrap();
    assert!((psi - -before[1].ln()).abs() < 1e-12);
    let psi2 = net.train_sample(&x, &t, 0.1).unwrap();
    assert!(psi2 < psi);
}

#[test]
fn predict_into_equals_predict() {
    let mut net = mlp(
        &[4, 8, 3],
        Activation::Sigmoid,
        Activation::Softmax,
        Loss::CrossEntropy,
    );
    let x = values(4, 9);
    let y = net.predict(&x).unwrap();
    let mut out = [0.0; 3];
    net.predict_into(&x, &mut out).unwrap();
    assert_eq!(y, out);
    assert!((y.iter().sum::<f64>() - 1.0).abs() < 1e-15);
}

#[test]
fn softmax_cross_entropy_is_finite_for_huge_logits() {
    // Weights so large that the logits are ±1e4: y underflows to 0 in some classes, yet the
    // loss is log-sum-exp of the logits and the step is finite.
    let w = Matrix::from_row_major(2, 3, &[1e4f64, -1e4, 0.0, 5e3, 2e3, -3e3]).unwrap();
    let layer = Layer::new(w, vec![0.0; 3], Activation::Softmax).unwrap();
    let mut net = Network::new(vec![layer], Loss::CrossEntropy).unwrap();
    let x = [1.0, 0.5];
    let y = net.predict(&x).unwrap();
    assert!(y.iter().all(|v| v.is_finite()));
    assert_eq!(y[1], 0.0);
    // Target the class whose probability underflowed: ψ = n_max − n_1 exactly.
    let psi = net.train_sample(&x, &[0.0, 1.0, 0.0], 1e-6).unwrap();
    assert_eq!(psi, 12500.0 - (-9000.0));
    assert!(bits(&net).iter().all(|&b| f64::from_bits(b).is_finite()));
    let mut f = Network::<f32>::builder(2)
        .layer(3, Activation::Softmax)
        .build()
        .unwrap();
    let psi = f.train_sample(&[1e30, -1e30], &[1.0, 0.0, 0.0], 1e-3);
    // Overflowing logits (±∞ after the affine map in f32) are the one way to a non-finite
    // loss: an error, not NaN weights.
    if let Err(e) = psi {
        assert!(matches!(e, Error::Diverged { .. }));
    }
}

#[test]
fn bad_input_is_an_error_and_leaves_the_network_unchanged() {
    let mut net = mlp(
        &[3, 5, 2],
        Activation::Tanh,
        Activation::Sigmoid,
        Loss::SquaredError,
    );
    let before = bits(&net);
    let (x, t) = ([0.1, 0.2, 0.3], [0.5, 0.5]);
    let errs = [
        net.train_sample(&x[..2], &t, 0.1).unwrap_err(),
        net.train_sample(&x, &[0.5], 0.1).unwrap_err(),
        net.train_sample(&[0.1, f64::NAN, 0.3], &t, 0.1)
            .unwrap_err(),
        net.train_sample(&x, &[f64::INFINITY, 0.5], 0.1)
            .unwrap_err(),
        net.train_sample(&x, &t, 0.0).unwrap_err(),
        net.train_sample(&x, &t, -0.1).unwrap_err(),
        net.train_sample(&x, &t, f64::NAN).unwrap_err(),
        net.train_sample(&x, &t, f64::INFINITY).unwrap_err(),
    ];
    assert!(matches!(
        errs[0],
        Error::DimensionMismatch {
            arg: "x",
            expected: 3,
            found: 2,
            ..
        }
    ));
    assert!(matches!(
        errs[1],
        Error::DimensionMismatch {
            arg: "t",
            expected: 2,
            found: 1,
            ..
        }
    ));
    assert_eq!(
        errs[2],
        Error::NonFiniteElement {
            arg: "x",
            row: None,
            index: 1
        }
    );
    assert_eq!(
        errs[3],
        Error::NonFiniteElement {
            arg: "t",
            row: None,
            index: 0
        }
    );
    for e in &errs[4..] {
        assert!(matches!(e, Error::InvalidLearningRate { .. }), "{e}");
        assert!(e.to_string().contains("learning rate"));
    }
    // Batches.
    let xb = Matrix::from_row_major(2, 3, &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
    let tb = Matrix::from_row_major(2, 2, &[0.1, 0.2, 0.3, 0.4]).unwrap();
    let t3 = Matrix::from_row_major(3, 2, &[0.1; 6]).unwrap();
    let x2 = Matrix::from_row_major(2, 2, &[0.1; 4]).unwrap();
    let xnan = Matrix::from_row_major(2, 3, &[0.1, 0.2, 0.3, 0.4, f64::NAN, 0.6]).unwrap();
    let empty = Matrix::<f64>::zeros(0, 3);
    let empty_t = Matrix::<f64>::zeros(0, 2);
    let e = net.train_batch(xb.as_ref(), t3.as_ref(), 0.1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DimensionMismatch {
                arg: "t",
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = net.train_batch(x2.as_ref(), tb.as_ref(), 0.1).unwrap_err();
    assert!(
        matches!(e, Error::DimensionMismatch { arg: "x", .. }),
        "{e}"
    );
    let e = net
        .train_batch(xnan.as_ref(), tb.as_ref(), 0.1)
        .unwrap_err();
    assert_eq!(
        e,
        Error::NonFiniteElement {
            arg: "x",
            row: Some(1),
            index: 1
        }
    );
    let e = net
        .train_batch(empty.as_ref(), empty_t.as_ref(), 0.1)
        .unwrap_err();
    assert_eq!(e, Error::EmptyBatch { arg: "x" });
    let e = net.train_batch(xb.as_ref(), tb.as_ref(), -1.0).unwrap_err();
    assert!(matches!(e, Error::InvalidLearningRate { .. }));
    // Gradients of another network.
    let other = mlp(
        &[3, 4, 2],
        Activation::Tanh,
        Activation::Sigmoid,
        Loss::SquaredError,
    );
    let mut g = Gradients::new(&other);
    assert!(
        net.gradient_batch(xb.as_ref(), tb.as_ref(), &mut g)
            .is_err()
    );
    assert!(net.apply_gradients(&g, 0.1).is_err());
    let mut g = net.gradients();
    g.as_mut_slice()[3] = f64::NAN;
    assert!(matches!(
        net.apply_gradients(&g, 0.1).unwrap_err(),
        Error::NonFiniteElement { arg: "grads", .. }
    ));
    // Epochs.
    let opts = EpochOptions {
        batch_size: 0,
        ..EpochOptions::default()
    };
    assert!(
        net.train_epoch(xb.as_ref(), tb.as_ref(), 0.1, 0, &opts)
            .is_err()
    );
    assert!(
        net.train_epoch(xnan.as_ref(), tb.as_ref(), 0.1, 0, &EpochOptions::default())
            .is_err()
    );
    let mut out = [0.0; 3];
    assert!(net.predict_into(&x, &mut out).is_err());
    assert!(net.predict(&x[..1]).is_err());
    assert!(net.evaluate(empty.as_ref(), empty_t.as_ref()).is_err());
    assert_eq!(bits(&net), before);
}

#[test]
fn diverged_step_is_an_error_and_is_not_taken() {
    // Identity output with weights near f64::MAX: the squared error overflows to ∞.
    let w = Matrix::from_row_major(1, 1, &[1e300f64]).unwrap();
    let mut net = Network::new(
        vec![Layer::new(w, vec![0.0], Activation::Identity).unwrap()],
        Loss::SquaredError,
    )
    .unwrap();
    let before = bits(&net);
    let e = net.train_sample(&[1e10], &[0.0], 0.1).unwrap_err();
    assert!(matches!(e, Error::Diverged { .. }), "{e}");
    assert_eq!(bits(&net), before);
}

#[test]
fn a_batch_of_one_is_train_sample_bit_for_bit() {
    let mut a = mlp(
        &[5, 7, 3],
        Activation::Sigmoid,
        Activation::Softmax,
        Loss::CrossEntropy,
    );
    let mut b = a.clone();
    let (x, t) = (values(5, 3), one_hot(3, 0));
    let xb = MatRef::from_slice(&x, 1, 5, 5).unwrap();
    let tb = MatRef::from_slice(&t, 1, 3, 3).unwrap();
    for _ in 0..3 {
        let la = a.train_sample(&x, &t, 0.2).unwrap();
        let lb = b.train_batch(xb, tb, 0.2).unwrap();
        assert_eq!(la.to_bits(), lb.to_bits());
    }
    assert_eq!(bits(&a), bits(&b));
}

#[test]
fn train_batch_takes_the_mean_gradient_step() {
    for (hidden, out, loss) in [
        (Activation::Tanh, Activation::Softmax, Loss::CrossEntropy),
        (Activation::Relu, Activation::Identity, Loss::SquaredError),
        (Activation::Sigmoid, Activation::Softmax, Loss::SquaredError),
    ] {
        let mut net = mlp(&[6, 10, 4], hidden, out, loss);
        let rows = 5;
        let x = values(rows * 6, 21);
        let t: Vec<f64> = (0..rows).flat_map(|i| one_hot(4, i % 4)).collect();
        // The mean of the per-sample gradients, applied as one step ...
        let mut mean = net.gradients();
        let mut g = net.gradients();
        let mut psi_mean = 0.0;
        for i in 0..rows {
            psi_mean += net
                .gradient_sample(&x[i * 6..][..6], &t[i * 4..][..4], &mut g)
                .unwrap();
            mean.add(&g).unwrap();
        }
        mean.scale(1.0 / rows as f64);
        psi_mean /= rows as f64;
        let mut expect = net.clone();
        expect.apply_gradients(&mean, 0.5).unwrap();
        // ... is the batch step.
        let xb = MatRef::from_slice(&x, rows, 6, 6).unwrap();
        let tb = MatRef::from_slice(&t, rows, 4, 4).unwrap();
        let mut gb = net.gradients();
        let psi_g = net.gradient_batch(xb, tb, &mut gb).unwrap();
        for (a, b) in gb.as_slice().iter().zip(mean.as_slice()) {
            assert!((a - b).abs() < 1e-13, "{a} vs {b}");
        }
        let psi = net.train_batch(xb, tb, 0.5).unwrap();
        assert!((psi - psi_mean).abs() < 1e-13 && (psi_g - psi).abs() < 1e-13);
        for (a, b) in bits(&net).iter().zip(bits(&expect)) {
            assert!((f64::from_bits(*a) - f64::from_bits(b)).abs() < 1e-13);
        }
    }
}

#[test]
fn gradient_batch_leaves_the_network_unchanged() {
    let mut net = mlp(
        &[3, 4, 2],
        Activation::Tanh,
        Activation::Identity,
        Loss::SquaredError,
    );
    let before = bits(&net);
    let x = values(9, 1);
    let t = values(6, 2);
    let mut g = net.gradients();
    net.gradient_batch(
        MatRef::from_slice(&x, 3, 3, 3).unwrap(),
        MatRef::from_slice(&t, 3, 2, 2).unwrap(),
        &mut g,
    )
    .unwrap();
    assert_eq!(bits(&net), before);
    assert!(g.as_slice().iter().any(|&v| v != 0.0));
    assert_eq!(g.len(), 3 * 4 + 4 + 4 * 2 + 2);
    assert_eq!(g.bias(1).len(), 2);
    assert_eq!((g.weights(0).rows(), g.weights(0).cols()), (3, 4));
}

#[test]
fn evaluate_gives_the_seed_totals() {
    // One softmax layer, W = 0 and b = (ln 1, ln 3): y = (1/4, 3/4) for every input.
    let w = Matrix::<f64>::zeros(2, 2);
    let layer = Layer::new(w, vec![0.0, 3f64.ln()], Activation::Softmax).unwrap();
    let net = Network::new(vec![layer], Loss::CrossEntropy).unwrap();
    let x = Matrix::from_row_major(3, 2, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    let t = Matrix::from_row_major(3, 2, &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0]).unwrap();
    let e = net.evaluate(x.as_ref(), t.as_ref()).unwrap();
    let se = |y: [f64; 2], t: [f64; 2]| (t[0] - y[0]).powi(2) + (t[1] - y[1]).powi(2);
    let tse = se([0.25, 0.75], [1.0, 0.0]) + 2.0 * se([0.25, 0.75], [0.0, 1.0]);
    assert_eq!(e.samples, 3);
    assert!((e.total_squared_error - tse).abs() < 1e-15);
    assert!((e.mean_squared_error - tse / 3.0).abs() < 1e-15);
    let tce = -(0.25f64.ln()) - 2.0 * 0.75f64.ln();
    assert!((e.total_cross_entropy.unwrap() - tce).abs() < 1e-14);
    assert_eq!(e.correct, 2);
    assert!((e.accuracy - 2.0 / 3.0).abs() < 1e-15);
    let sq = mlp(
        &[2, 3, 2],
        Activation::Tanh,
        Activation::Sigmoid,
        Loss::SquaredError,
    );
    assert_eq!(
        sq.evaluate(x.as_ref(), t.as_ref())
            .unwrap()
            .total_cross_entropy,
        None
    );
}

#[test]
fn epochs_visit_every_sample_in_a_fresh_seeded_order() {
    let opts = EpochOptions {
        seed: 5,
        ..EpochOptions::default()
    };
    let (o0, o1) = (opts.order(0, 50), opts.order(1, 50));
    assert_ne!(o0, o1);
    assert_eq!(o0, opts.order(0, 50));
    let mut sorted = o1.clone();
    sorted.sort();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    let plain = EpochOptions {
        shuffle: false,
        ..opts
    };
    assert_eq!(plain.order(3, 5), [0, 1, 2, 3, 4]);

    // Per-sample epochs are train_sample in that order.
    let mut a = mlp(
        &[3, 6, 2],
        Activation::Tanh,
        Activation::Softmax,
        Loss::CrossEntropy,
    );
    let mut b = a.clone();
    let x = values(30, 8);
    let t: Vec<f64> = (0..10).flat_map(|i| one_hot(2, i % 2)).collect();
    let (xm, tm) = (
        MatRef::from_slice(&x, 10, 3, 3).unwrap(),
        MatRef::from_slice(&t, 10, 2, 2).unwrap(),
    );
    let loss = a.train_epoch(xm, tm, 0.1, 1, &opts).unwrap();
    let mut sum = 0.0;
    for i in opts.order(1, 10) {
        sum += b.train_sample(xm.row(i), tm.row(i), 0.1).unwrap();
    }
    assert_eq!(bits(&a), bits(&b));
    assert!((loss - sum / 10.0).abs() < 1e-14);

    // Minibatch epochs, with a short last batch; progress and per-epoch callbacks.
    let mut c = a.clone();
    let mb = EpochOptions {
        batch_size: 4,
        ..opts
    };
    let mut steps = vec![];
    c.train_epoch_with(xm, tm, 0.1, 0, &mb, |done| steps.push(done))
        .unwrap();
    assert_eq!(steps, [4, 8, 10]);
    // A batch larger than the data set is the whole set.
    let huge = EpochOptions {
        batch_size: usize::MAX,
        ..opts
    };
    let mut steps = vec![];
    c.clone()
        .train_epoch_with(xm, tm, 0.1, 0, &huge, |done| steps.push(done))
        .unwrap();
    assert_eq!(steps, [10]);
    let mut seen = vec![];
    let last = c
        .fit(xm, tm, 0.1, 3, &mb, |e, l| seen.push((e, l)))
        .unwrap();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(seen[2].1, last);
}
