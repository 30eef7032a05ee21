//! Seeded initial weights: Xavier/Glorot or He, uniform, by the layer's activation.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::activation::Activation;
use crate::matrix::Matrix;
use crate::scalar::Scalar;

/// The random generator of the network layer: xoshiro256++, seeded through SplitMix64
/// (`seed_from_u64`), so a seed names the same stream on every platform.
pub(crate) type Rng = Xoshiro256PlusPlus;

/// The generator for `seed`.
pub(crate) fn rng(seed: u64) -> Rng {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// The rule that draws a layer's initial weights from its activation.
///
/// | activation | rule | W_rc ~ U(−r, r) with |
/// |---|---|---|
/// | Sigmoid, Tanh, Identity, Softmax | Xavier/Glorot uniform | r = √(6 / (H + L)) |
/// | Relu, LeakyRelu, Gelu, Softplus (the ReLU family) | He uniform | r = √(6 / H) |
///
/// Biases start at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Init {
    /// Xavier/Glorot uniform: variance 2 / (H + L).
    Xavier,
    /// He (Kaiming) uniform: variance 2 / H.
    He,
}

impl Init {
    /// The rule for a layer with activation `act`.
    pub fn for_activation(act: Activation) -> Init {
        match act {
            Activation::Relu | Activation::LeakyRelu | Activation::Gelu | Activation::Softplus => {
                Init::He
            }
            _ => Init::Xavier,
        }
    }

    /// r of U(−r, r) for a layer with `h` inputs and `l` outputs.
    pub fn limit(self, h: usize, l: usize) -> f64 {
        match self {
            Init::Xavier => (6.0 / (h + l) as f64).sqrt(),
            Init::He => (6.0 / h as f64).sqrt(),
        }
    }
}

/// An `h × l` matrix drawn from U(−r, r) by `rule`, in row-major order from `rng`.
pub(crate) fn weights<T: Scalar>(rng: &mut Rng, h: usize, l: usize, rule: Init) -> Matrix<T> {
    let r = rule.limit(h, l);
    let mut w = Matrix::zeros(h, l);
    for row in 0..h {
        for v in w.row_mut(row) {
            *v = T::from_f64(rng.random_range(-r..r));
        }
    }
    w
}
