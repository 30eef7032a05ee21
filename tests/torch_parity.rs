//! One SGD step of `Network<f64>` against PyTorch float64 autograd.
//!
//! `tests/data/torch_sgd_step.json` is written by `benches/peers/torch_step_fixture.py` (run
//! it again to regenerate; this test needs no Python). Each case is a 5-4-4-3 network with two
//! hidden layers of one activation (Identity, Sigmoid, Tanh, Relu, LeakyRelu, Softplus, Gelu)
//! and one output case (Sigmoid + squared error, Softmax + cross-entropy, Softmax + squared
//! error), its initial weights and biases, its inputs and targets, the loss torch computed and
//! the weights and biases after one step of `torch.optim.SGD` at lr 0.1. B = 1 cases replay
//! through `train_sample`, B = 4 cases through `train_batch` (mean loss, mean gradient).
//!
//! Tolerance: every loss, weight and bias within 1e-10 **absolute** of torch's value (the
//! values are of order one, so this is at least as strict as 1e-10 relative).

use deltaprop::{Activation, Layer, Loss, MatRef, Matrix, Network};
use serde_json::Value;

const TOL: f64 = 1e-10;
const FIXTURE: &str = include_str!("data/torch_sgd_step.json");

fn activation(name: &str) -> Activation {
    Activation::ELEMENTWISE
        .into_iter()
        .chain([Activation::Softmax])
        .find(|a| a.name() == name)
        .unwrap_or_else(|| panic!("unknown activation {name:?} in the fixture"))
}

fn loss(name: &str) -> Loss {
    [Loss::SquaredError, Loss::CrossEntropy]
        .into_iter()
        .find(|l| l.name() == name)
        .unwrap_or_else(|| panic!("unknown loss {name:?} in the fixture"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|e| e.as_f64().expect("a number"))
        .collect()
}

/// A JSON array of rows, flattened row-major, with its (rows, cols).
fn rows(v: &Value) -> (Vec<f64>, usize, usize) {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(floats).collect();
    let cols = rows.first().map_or(0, Vec::len);
    assert!(rows.iter().all(|r| r.len() == cols), "ragged rows");
    (rows.concat(), rows.len(), cols)
}

struct Case<'a> {
    name: &'a str,
    hidden: Activation,
    batch: usize,
    v: &'a Value,
}

fn fixture() -> (Value, f64) {
    let v: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let lr = v["lr"].as_f64().expect("lr");
    (v, lr)
}

fn cases(v: &Value) -> Vec<Case<'_>> {
    v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("name"),
            hidden: activation(c["hidden"].as_str().expect("hidden")),
            batch: c["batch"].as_u64().expect("batch") as usize,
            v: c,
        })
        .collect()
}

fn build(c: &Case<'_>) -> Network<f64> {
    let layers = c.v["layers"].as_array().expect("layers");
    let last = layers.len() - 1;
    let out = activation(c.v["output"].as_str().expect("output"));
    let built = layers
        .iter()
        .enumerate()
        .map(|(k, l)| {
            let (w, h, cols) = rows(&l["w"]);
            let w = Matrix::from_row_major(h, cols, &w).expect("w");
            let act = if k == last { out } else { c.hidden };
            Layer::new(w, floats(&l["b"]), act).expect("a layer")
        })
        .collect();
    Network::new(built, loss(c.v["loss"].as_str().expect("loss"))).expect("a network")
}

/// Every |got − want| > TOL, described; and the largest difference seen.
fn compare(c: &Case<'_>, net: &Network<f64>, psi: f64, errors: &mut Vec<String>) -> f64 {
    let mut worst = (psi - c.v["loss_value"].as_f64().expect("loss_value")).abs();
    if worst > TOL || worst.is_nan() {
        errors.push(format!(
            "{}: loss {psi:e}, torch {}",
            c.name, c.v["loss_value"]
        ));
    }
    let updated = c.v["updated"].as_array().expect("updated");
    assert_eq!(updated.len(), net.layers().len(), "{}: layer count", c.name);
    for (k, (layer, want)) in net.layers().iter().zip(updated).enumerate() {
        let (w, h, l) = rows(&want["w"]);
        assert_eq!(
            (h, l),
            (layer.inputs(), layer.outputs()),
            "{}: shape",
            c.name
        );
        for r in 0..h {
            for col in 0..l {
                let (got, want) = (layer.weights().get(r, col), w[r * l + col]);
                let diff = (got - want).abs();
                worst = worst.max(diff);
                if diff > TOL || diff.is_nan() {
                    errors.push(format!(
                        "{}: W{k}[{r},{col}] = {got:e}, torch {want:e}",
                        c.name
                    ));
                }
            }
        }
        for (j, (&got, want)) in layer.bias().iter().zip(floats(&want["b"])).enumerate() {
            let diff = (got - want).abs();
            worst = worst.max(diff);
            if diff > TOL || diff.is_nan() {
                errors.push(format!("{}: b{k}[{j}] = {got:e}, torch {want:e}", c.name));
            }
        }
    }
    worst
}

/// Runs every case of batch size `b` (1: `train_sample`, else `train_batch`) and checks it.
fn check(per_sample: bool) {
    let (v, lr) = fixture();
    assert_eq!(lr, 0.1, "the fixture's learning rate");
    let cases: Vec<_> = cases(&v)
        .into_iter()
        .filter(|c| (c.batch == 1) == per_sample)
        .collect();
    // Every hidden activation torch shares with deltaprop, under each of the three outputs.
    for hidden in Activation::ELEMENTWISE {
        let n = cases.iter().filter(|c| c.hidden == hidden).count();
        assert_eq!(
            n, 3,
            "{hidden}: expected 3 output cases, the fixture has {n}"
        );
    }
    let mut errors = vec![];
    let mut worst = 0.0f64;
    for c in &cases {
        let mut net = build(c);
        let (x, bx, h) = rows(&c.v["x"]);
        let (t, bt, l) = rows(&c.v["t"]);
        assert_eq!((bx, bt), (c.batch, c.batch), "{}: batch rows", c.name);
        let psi = if per_sample {
            net.train_sample(&x, &t, lr).expect("train_sample")
        } else {
            let x = MatRef::from_slice(&x, bx, h, h).expect("x");
            let t = MatRef::from_slice(&t, bt, l, l).expect("t");
            net.train_batch(x, t, lr).expect("train_batch")
        };
        worst = worst.max(compare(c, &net, psi, &mut errors));
    }
    println!(
        "{} cases ({}): largest |deltaprop − torch| = {worst:e}",
        cases.len(),
        if per_sample {
            "train_sample"
        } else {
            "train_batch"
        }
    );
    assert!(
        errors.is_empty(),
        "{} values differ from torch by more than {TOL:e}:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn train_sample_matches_torch_float64_autograd() {
    check(true);
}

#[test]
fn train_batch_matches_torch_float64_autograd() {
    check(false);
}
