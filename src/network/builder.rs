//! [`NetworkBuilder`]: a network from its layer sizes, with seeded initial weights.

use std::marker::PhantomData;

use crate::activation::Activation;
use crate::error::Error;
use crate::matrix::ROW_ALIGN;
use crate::scalar::Scalar;

use super::init::{self, Init};
use super::{Layer, Loss, Network};

/// The seed [`NetworkBuilder`] uses unless [`seed`](NetworkBuilder::seed) sets another, and
/// the default of [`EpochOptions::seed`](super::EpochOptions::seed).
pub const DEFAULT_SEED: u64 = 0x5EED_DE17_A000;

/// Builds a [`Network`] from its sizes: `Network::builder(inputs)`, then one
/// [`layer`](Self::layer) per layer from the input side, then [`build`](Self::build).
///
/// Initial weights are drawn uniformly by [`Init::for_activation`] — Xavier/Glorot for
/// Sigmoid, Tanh, Identity and Softmax layers, He for the ReLU family (Relu, LeakyRelu, Gelu,
/// Softplus) — from one xoshiro256++ stream seeded with [`seed`](Self::seed) (default
/// [`DEFAULT_SEED`]), layer by layer and row by row; biases start at zero. The same seed gives
/// the same network, bit for bit, on every platform.
///
/// ```
/// use deltaprop::{Activation, Loss, Network};
/// let net = Network::<f32>::builder(64)
///     .layer(32, Activation::Sigmoid)
///     .layer(10, Activation::Softmax)
///     .loss(Loss::CrossEntropy)
///     .seed(1)
///     .build()?;
/// let sizes: Vec<_> = net.layers().iter().map(|l| (l.inputs(), l.outputs())).collect();
/// assert_eq!(sizes, [(64, 32), (32, 10)]);
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub struct NetworkBuilder<T: Scalar> {
    inputs: usize,
    layers: Vec<(usize, Activation)>,
    loss: Option<Loss>,
    seed: u64,
    scalar: PhantomData<fn() -> T>,
}

impl<T: Scalar> Clone for NetworkBuilder<T> {
    fn clone(&self) -> Self {
        NetworkBuilder {
            layers: self.layers.clone(),
            ..*self
        }
    }
}

impl<T: Scalar> std::fmt::Debug for NetworkBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkBuilder")
            .field("scalar", &T::NAME)
            .field("inputs", &self.inputs)
            .field("layers", &self.layers)
            .field("loss", &self.loss)
            .field("seed", &self.seed)
            .finish()
    }
}

impl<T: Scalar> NetworkBuilder<T> {
    /// A builder for a network with `inputs` inputs and no layers yet.
    pub fn new(inputs: usize) -> Self {
        NetworkBuilder {
            inputs,
            layers: Vec::new(),
            loss: None,
            seed: DEFAULT_SEED,
            scalar: PhantomData,
        }
    }

    /// Adds a layer of `outputs` neurons with activation `act` on top of the layers so far.
    pub fn layer(mut self, outputs: usize, act: Activation) -> Self {
        self.layers.push((outputs, act));
        self
    }

    /// The loss. Default: `CrossEntropy` when the output layer is `Softmax`, else
    /// `SquaredError`.
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = Some(loss);
        self
    }

    /// The seed of the initial weights (default [`DEFAULT_SEED`]).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The network, with weights drawn from the seed.
    ///
    /// Errors as [`Network::new`] does, if the inputs or a layer's outputs are zero, and if a
    /// layer's W would take more than `isize::MAX` bytes ([`Error::SizeOverflow`]). A network
    /// that is merely larger than the memory fails to allocate, as a `Vec` does.
    pub fn build(self) -> Result<Network<T>, Error> {
        if self.inputs == 0 {
            return Err(Error::ZeroSize {
                what: "the network's inputs",
                layer: None,
            });
        }
        if let Some(k) = self.layers.iter().position(|&(l, _)| l == 0) {
            return Err(Error::ZeroSize {
                what: "the outputs",
                layer: Some(k),
            });
        }
        let mut h = self.inputs;
        for &(l, _) in &self.layers {
            // W is stored with its rows padded to whole 64-byte lines; no allocation may
            // exceed isize::MAX bytes (beyond that `Vec` would panic, not fail).
            let per_line = ROW_ALIGN / size_of::<T>();
            let bytes = l
                .div_ceil(per_line)
                .checked_mul(ROW_ALIGN)
                .and_then(|row| row.checked_mul(h));
            if bytes.is_none_or(|n| n > isize::MAX as usize) {
                return Err(Error::SizeOverflow { rows: h, cols: l });
            }
            h = l;
        }
        let Some(&(_, out_act)) = self.layers.last() else {
            return Err(Error::EmptyNetwork);
        };
        let loss = self.loss.unwrap_or(if out_act == Activation::Softmax {
            Loss::CrossEntropy
        } else {
            Loss::SquaredError
        });
        // Check the structure before drawing (and allocating) any weights.
        if let Some(k) = self.layers[..self.layers.len() - 1]
            .iter()
            .position(|&(_, a)| a == Activation::Softmax)
        {
            return Err(Error::SoftmaxHidden { layer: k });
        }
        loss.check_output(out_act)?;

        let mut rng = init::rng(self.seed);
        h = self.inputs;
        let mut layers = Vec::with_capacity(self.layers.len());
        for &(l, act) in &self.layers {
            let w = init::weights::<T>(&mut rng, h, l, Init::for_activation(act));
            layers.push(Layer::new(w, vec![T::ZERO; l], act)?);
            h = l;
        }
        Network::new(layers, loss)
    }
}
