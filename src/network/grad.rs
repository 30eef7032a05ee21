//! [`Gradients`]: a network's gradient in one caller-owned buffer, for data-parallel training.

use crate::error::{Error, check_len};
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;

use super::{Network, check_lr, guard, layer::check_finite};

/// The gradient of the loss with respect to every weight and bias of a [`Network`], in one
/// flat buffer the caller owns.
///
/// Layer k's part is its ∂ψ/∂W (H × L, row-major with row stride L) followed by its ∂ψ/∂b
/// (length L), layers in order from the input side. [`as_mut_slice`](Self::as_mut_slice)
/// hands the whole buffer to a communication library in one piece; [`weights`](Self::weights)
/// and [`bias`](Self::bias) show one layer's parts.
///
/// Data-parallel training: every worker holds the same network, computes the mean gradient of
/// its own minibatch with [`Network::gradient_batch`], the workers all-reduce the buffers (sum,
/// then divide by their number), and each applies the mean with
/// [`Network::apply_gradients`] — so the copies stay identical.
///
/// ```
/// use deltaprop::{Activation, MatRef, Network};
/// let mut net = Network::<f64>::builder(3)
///     .layer(4, Activation::Tanh)
///     .layer(2, Activation::Identity)
///     .build()?;
/// // A batch of four samples, split between two workers (two rows each).
/// let x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2];
/// let t = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0];
/// let mut grads = [net.gradients(), net.gradients()];
/// for (w, g) in grads.iter_mut().enumerate() {
///     let xs = MatRef::from_slice(&x[6 * w..6 * w + 6], 2, 3, 3)?;
///     let ts = MatRef::from_slice(&t[4 * w..4 * w + 4], 2, 2, 2)?;
///     net.gradient_batch(xs, ts, g)?; // this worker's mean gradient; `net` is unchanged
/// }
/// // The all-reduce (by hand here): the mean of the workers' buffers.
/// let [mut g0, g1] = grads;
/// for (a, b) in g0.as_mut_slice().iter_mut().zip(g1.as_slice()) {
///     *a = (*a + *b) / 2.0;
/// }
/// // It is the mean gradient of the whole batch ...
/// let mut whole = net.gradients();
/// let (xs, ts) = (MatRef::from_slice(&x, 4, 3, 3)?, MatRef::from_slice(&t, 4, 2, 2)?);
/// net.gradient_batch(xs, ts, &mut whole)?;
/// for (a, b) in g0.as_slice().iter().zip(whole.as_slice()) {
///     assert!((a - b).abs() < 1e-12);
/// }
/// // ... and every worker applies it, so their copies stay identical.
/// net.apply_gradients(&g0, 0.1)?;
/// # Ok::<(), deltaprop::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct Gradients<T: Scalar> {
    data: Vec<T>,
    /// (H, L, offset of the layer's weights in `data`) per layer.
    shapes: Vec<(usize, usize, usize)>,
}

impl<T: Scalar> Gradients<T> {
    /// A zero gradient shaped like `net`'s weights and biases.
    pub fn new(net: &Network<T>) -> Self {
        let mut shapes = Vec::with_capacity(net.layers().len());
        let mut len = 0;
        for layer in net.layers() {
            let (h, l) = (layer.inputs(), layer.outputs());
            shapes.push((h, l, len));
            len += h * l + l;
        }
        Gradients {
            data: vec![T::ZERO; len],
            shapes,
        }
    }

    /// The number of layers.
    pub fn layers(&self) -> usize {
        self.shapes.len()
    }

    /// The number of elements (all weights and biases).
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether there are no elements (never, for a gradient of a network).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The whole buffer: layer by layer, ∂ψ/∂W row-major then ∂ψ/∂b.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The whole buffer, mutable (for an in-place all-reduce).
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Layer `k`'s ∂ψ/∂W, H × L.
    ///
    /// # Panics
    /// If `k >= self.layers()`.
    pub fn weights(&self, k: usize) -> MatRef<'_, T> {
        let (h, l, off) = self.shapes[k];
        MatRef::from_slice(&self.data[off..off + h * l], h, l, l).expect("shape of a layer")
    }

    /// Layer `k`'s ∂ψ/∂W, mutable.
    ///
    /// # Panics
    /// If `k >= self.layers()`.
    pub fn weights_mut(&mut self, k: usize) -> MatMut<'_, T> {
        self.layer_mut(k).0
    }

    /// Layer `k`'s ∂ψ/∂b, length L.
    ///
    /// # Panics
    /// If `k >= self.layers()`.
    pub fn bias(&self, k: usize) -> &[T] {
        let (h, l, off) = self.shapes[k];
        &self.data[off + h * l..off + h * l + l]
    }

    /// Layer `k`'s ∂ψ/∂b, mutable.
    ///
    /// # Panics
    /// If `k >= self.layers()`.
    pub fn bias_mut(&mut self, k: usize) -> &mut [T] {
        self.layer_mut(k).1
    }

    /// Layer `k`'s ∂ψ/∂W and ∂ψ/∂b together, both mutable.
    ///
    /// # Panics
    /// If `k >= self.layers()`.
    pub fn layer_mut(&mut self, k: usize) -> (MatMut<'_, T>, &mut [T]) {
        let (h, l, off) = self.shapes[k];
        let (w, b) = self.data[off..off + h * l + l].split_at_mut(h * l);
        (MatMut::from_slice(w, h, l, l).expect("shape of a layer"), b)
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: T) {
        self.data.iter_mut().for_each(|v| *v = value);
    }

    /// Multiplies every element by `factor` (e.g. 1 / workers after a summing all-reduce).
    pub fn scale(&mut self, factor: T) {
        self.data.iter_mut().for_each(|v| *v *= factor);
    }

    /// Adds `other` element by element. Errors — with `self` unchanged — if the two are
    /// shaped differently.
    pub fn add(&mut self, other: &Gradients<T>) -> Result<(), Error> {
        self.check_shape(&other.shapes)?;
        self.data
            .iter_mut()
            .zip(&other.data)
            .for_each(|(a, &b)| *a += b);
        Ok(())
    }

    /// `Err`, naming `other`, unless `other` has these gradients' shapes (layer by layer).
    fn check_shape(&self, other: &[(usize, usize, usize)]) -> Result<(), Error> {
        check_len(
            "other",
            other.len(),
            self.shapes.len(),
            "the number of layers of `self`",
        )?;
        for (&(h, l, _), &(h2, l2, _)) in self.shapes.iter().zip(other) {
            check_len("other", h2, h, "a layer's inputs (H) in `self`")?;
            check_len("other", l2, l, "a layer's outputs (L) in `self`")?;
        }
        Ok(())
    }

    /// `Err` unless these gradients are shaped like `net`.
    pub(crate) fn check_network(&self, net: &Network<T>) -> Result<(), Error> {
        check_len(
            "grads",
            self.shapes.len(),
            net.layers().len(),
            "the number of layers of the network",
        )?;
        for (&(h, l, _), layer) in self.shapes.iter().zip(net.layers()) {
            check_len("grads", h, layer.inputs(), "a layer's inputs (H)")?;
            check_len("grads", l, layer.outputs(), "a layer's outputs (L)")?;
        }
        Ok(())
    }

    /// `Err(NonFiniteElement)` at the first NaN or ∞.
    pub(crate) fn check_finite(&self) -> Result<(), Error> {
        check_finite("grads", &self.data)
    }
}

impl<T: Scalar> std::fmt::Debug for Gradients<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shapes: Vec<_> = self.shapes.iter().map(|&(h, l, _)| (h, l)).collect();
        f.debug_struct("Gradients")
            .field("layers", &shapes)
            .finish_non_exhaustive()
    }
}

impl<T: Scalar> Network<T> {
    /// A zero [`Gradients`] buffer shaped like this network.
    pub fn gradients(&self) -> Gradients<T> {
        Gradients::new(self)
    }

    /// W ← W − α G and b ← b − α g_b for every layer, from `grads` (e.g. an all-reduced mean
    /// gradient from [`gradient_batch`](Self::gradient_batch)).
    ///
    /// Errors — with the network unchanged — if `grads` is shaped for another network, has a
    /// NaN or infinite element, or `lr` is not finite and positive, and with
    /// [`Error::Diverged`] (its loss NaN: there is none) if the step would make a weight or
    /// bias overflow.
    pub fn apply_gradients(&mut self, grads: &Gradients<T>, lr: T) -> Result<(), Error> {
        let _ftz = self.ftz();
        check_lr(lr)?;
        grads.check_network(self)?;
        // One pass over the gradient: its finiteness, and per layer Σ |g| ≥ max |g| (not
        // finite if an element is not, or if the sum overflows).
        for (k, &(h, l, off)) in grads.shapes.iter().enumerate() {
            let g_max = guard::sum_abs(&grads.data[off..off + h * l + l]);
            if !g_max.is_finite() {
                grads.check_finite()?;
            }
            self.guard.set_gradient_max(k, g_max);
        }
        match self.guard.plan_apply(&self.layers, lr) {
            guard::Plan::Fast => {
                self.apply_gradients_unguarded(grads, lr)?;
                self.guard.taken();
                Ok(())
            }
            guard::Plan::Checked => {
                self.guard.save(&self.layers);
                let step = self.apply_gradients_unguarded(grads, lr);
                let finite = self.guard.restore_if_not_finite(&mut self.layers);
                step?;
                if finite {
                    Ok(())
                } else {
                    Err(Error::Diverged { loss: f64::NAN })
                }
            }
        }
    }

    fn apply_gradients_unguarded(&mut self, grads: &Gradients<T>, lr: T) -> Result<(), Error> {
        for (k, layer) in self.layers.iter_mut().enumerate() {
            super::batch::apply_gradient(layer, lr, grads.weights(k), grads.bias(k))?;
        }
        Ok(())
    }
}
