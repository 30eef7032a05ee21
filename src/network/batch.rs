//! Minibatch SGD and gradients on the batched kernels: forward N = Â W + 1bᵀ with σ fused,
//! backward Δ̂ = (Δ Wᵀ) ⊙ D̂, update W ← W − (α/B) Âᵀ Δ. A batch of one runs the per-sample
//! path instead (never a packed GEMM for B = 1).

use crate::activation::Activation;
use crate::error::Error;
use crate::matrix::{MatMut, MatRef, ROW_ALIGN};
use crate::scalar::Scalar;

use super::{Buf, Gradients, Layer, Network, buf, check_lr, guard, loss, par};
use crate::kernels;

/// Row stride of a B × `cols` workspace: `cols` rounded up to whole 64-byte lines, as
/// [`Matrix`](crate::Matrix) pads.
fn stride<T>(cols: usize) -> usize {
    let per_line = ROW_ALIGN / std::mem::size_of::<T>();
    cols.div_ceil(per_line) * per_line
}

/// One layer's batch workspace: A (= σ(N); for Softmax N, then Y), D = σ'(N) and Δ, each
/// `cap × L` at row stride `stride`.
#[derive(Clone)]
struct LayerWs<T: Scalar> {
    a: Buf<T>,
    d: Buf<T>,
    delta: Buf<T>,
    l: usize,
    stride: usize,
}

impl<T: Scalar> LayerWs<T> {
    fn view<'a>(buf: &'a [T], rows: usize, l: usize, stride: usize) -> MatRef<'a, T> {
        MatRef::from_slice(buf, rows, l, stride).expect("workspace holds `cap` rows")
    }
    fn view_mut<'a>(buf: &'a mut [T], rows: usize, l: usize, stride: usize) -> MatMut<'a, T> {
        MatMut::from_slice(buf, rows, l, stride).expect("workspace holds `cap` rows")
    }
}

/// The network's batch workspaces: allocated for B rows at the first batch of B (or more)
/// rows, and reused by every batch of at most that many rows.
#[derive(Clone, Default)]
pub(crate) struct BatchWs<T: Scalar> {
    cap: usize,
    layers: Vec<LayerWs<T>>,
    /// Gathered rows of x and t for the epoch driver's shuffled minibatches.
    pub(crate) gx: Vec<T>,
    pub(crate) gt: Vec<T>,
}

impl<T: Scalar> BatchWs<T> {
    /// Makes room for `rows` rows; allocates only when `rows` exceeds every earlier batch.
    fn ensure(&mut self, layers: &[Layer<T>], rows: usize) {
        if rows <= self.cap && self.layers.len() == layers.len() {
            return;
        }
        self.layers = layers
            .iter()
            .map(|layer| {
                let l = layer.outputs();
                let s = stride::<T>(l);
                let len = rows * s;
                LayerWs {
                    a: buf(len),
                    d: buf(len),
                    delta: buf(len),
                    l,
                    stride: s,
                }
            })
            .collect();
        self.cap = rows;
    }
}

impl<T: Scalar> Network<T> {
    /// One minibatch SGD step on the B pairs of rows of `x` (B × inputs) and `t`
    /// (B × outputs): W ← W − (α/B) Σᵢ âᵢ δᵢᵀ, b ← b − (α/B) Σᵢ δᵢ for every layer, from the
    /// mean gradient; returns the mean loss before the step.
    ///
    /// The batch workspaces are allocated at the first call with B rows (or more) and reused
    /// afterwards. B = 1 is [`train_sample`](Self::train_sample) exactly.
    ///
    /// Errors — with the network unchanged — as `train_sample` does, and if B is zero or the
    /// shapes of `x` and `t` disagree with each other or with the network.
    ///
    /// ```
    /// use deltaprop::{Activation, Matrix, Network};
    /// let mut net = Network::<f32>::builder(3).layer(2, Activation::Identity).seed(1).build()?;
    /// // Four samples of y = (x₀ + x₁, x₂): one row each.
    /// let x = Matrix::from([[1.0, 0.0, 0.5], [0.0, 1.0, -0.5], [1.0, 1.0, 0.0], [0.5, 0.5, 1.0]]);
    /// let t = Matrix::from([[1.0, 0.5], [1.0, -0.5], [2.0, 0.0], [1.0, 1.0]]);
    /// let first = net.train_batch(x.as_ref(), t.as_ref(), 0.3)?; // mean loss before the step
    /// let mut last = first;
    /// for _ in 0..300 {
    ///     last = net.train_batch(x.as_ref(), t.as_ref(), 0.3)?;
    /// }
    /// assert!(last < 1e-3 * first);
    /// # Ok::<(), deltaprop::Error>(())
    /// ```
    pub fn train_batch(&mut self, x: MatRef<'_, T>, t: MatRef<'_, T>, lr: T) -> Result<T, Error> {
        let _ftz = self.ftz();
        check_lr(lr)?;
        let x_sum = self.check_batch(x, t)?;
        self.train_batch_unchecked(x, t, lr, Some(x_sum))
    }

    /// `train_batch` on checked arguments; `x_sum` is Σ |x| if the checks computed it (x is
    /// then read once for both, rather than again for the step guard).
    pub(crate) fn train_batch_unchecked(
        &mut self,
        x: MatRef<'_, T>,
        t: MatRef<'_, T>,
        lr: T,
        x_sum: Option<f64>,
    ) -> Result<T, Error> {
        if x.rows() == 1 {
            let psi = self.forward_delta(x.row(0), t.row(0))?;
            self.backward_step(x.row(0), lr, psi, x_sum)?;
            return Ok(psi);
        }
        let psi = self.batch_forward_delta(x, t)?;
        let rows = x.rows();
        let plan = {
            let ws = &self.batch.layers;
            let view = |w: &LayerWs<T>, buf| LayerWs::view(buf, rows, w.l, w.stride);
            let out = &ws[ws.len() - 1];
            let d_out = guard::sum_abs_rows(view(out, &out.delta));
            let layers = &self.layers;
            self.guard
                .plan_backward(layers, lr, rows, d_out, |k| match k {
                    0 => match x_sum {
                        Some(s) => guard::Below::Input(s),
                        None => guard::Below::Batch(x, None),
                    },
                    _ => {
                        let p = &ws[k - 1];
                        guard::Below::Batch(view(p, &p.a), Some((view(p, &p.d), layers[k - 1].act)))
                    }
                })
        };
        match plan {
            guard::Plan::Fast => {
                self.batch_backward_unguarded(x, lr)?;
                self.guard.taken();
            }
            guard::Plan::Checked => {
                self.guard.save(&self.layers);
                let step = self.batch_backward_unguarded(x, lr);
                let finite = self.guard.restore_if_not_finite(&mut self.layers);
                step?;
                if !finite {
                    return Err(Error::Diverged { loss: psi.to_f64() });
                }
            }
        }
        Ok(psi)
    }

    /// The batch's backward step and update from the workspaces of
    /// [`batch_forward_delta`](Self::batch_forward_delta), without the guard.
    fn batch_backward_unguarded(&mut self, x: MatRef<'_, T>, lr: T) -> Result<(), Error> {
        let rows = x.rows();
        let ws = &mut self.batch.layers;
        for k in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[k];
            let (below, rest) = ws.split_at_mut(k);
            let cur = &rest[0];
            let delta = LayerWs::view(&cur.delta, rows, cur.l, cur.stride);
            let a_prev = match below.last_mut() {
                None => x,
                Some(prev) => {
                    let d_prev = LayerWs::view(&prev.d, rows, prev.l, prev.stride);
                    let delta_prev = LayerWs::view_mut(&mut prev.delta, rows, prev.l, prev.stride);
                    kernels::batch_backward(layer.w.as_ref(), delta, d_prev, delta_prev)?;
                    LayerWs::view(&prev.a, rows, prev.l, prev.stride)
                }
            };
            kernels::batch_update(layer.w.as_mut(), &mut layer.b, lr, a_prev, delta)?;
        }
        Ok(())
    }

    /// The mean gradient of the loss over the B pairs of rows of `x` and `t`, written to
    /// `grads` (overwriting it); returns the mean loss. The network's weights are not changed.
    ///
    /// With [`apply_gradients`](Self::apply_gradients), this splits
    /// [`train_batch`](Self::train_batch) in two, so that gradients can be combined across
    /// processes between the halves (see [`Gradients`]). A batch of one runs the per-sample
    /// kernels.
    ///
    /// Errors as `train_batch` does, and if `grads` is shaped for another network; `grads`
    /// is not written then.
    pub fn gradient_batch(
        &mut self,
        x: MatRef<'_, T>,
        t: MatRef<'_, T>,
        grads: &mut Gradients<T>,
    ) -> Result<T, Error> {
        let _ftz = self.ftz();
        self.check_batch(x, t)?;
        grads.check_network(self)?;
        if x.rows() == 1 {
            return self.gradient_sample_unchecked(x.row(0), t.row(0), grads);
        }
        let psi = self.batch_forward_delta(x, t)?;
        let rows = x.rows();
        let scale = T::ONE / T::from_f64(rows as f64);
        let ws = &mut self.batch.layers;
        for k in (0..self.layers.len()).rev() {
            let layer = &self.layers[k];
            let (below, rest) = ws.split_at_mut(k);
            let cur = &rest[0];
            let delta = LayerWs::view(&cur.delta, rows, cur.l, cur.stride);
            let a_prev = match below.last_mut() {
                None => x,
                Some(prev) => {
                    let d_prev = LayerWs::view(&prev.d, rows, prev.l, prev.stride);
                    let delta_prev = LayerWs::view_mut(&mut prev.delta, rows, prev.l, prev.stride);
                    kernels::batch_backward(layer.w.as_ref(), delta, d_prev, delta_prev)?;
                    LayerWs::view(&prev.a, rows, prev.l, prev.stride)
                }
            };
            let (g, g_b) = grads.layer_mut(k);
            kernels::batch_gradient(a_prev, delta, scale, T::ZERO, g, g_b)?;
        }
        Ok(psi)
    }

    /// The gradient of the loss of one pair (x, t), written to `grads`; returns the loss.
    /// Runs the per-sample kernels; the network's weights are not changed.
    ///
    /// Errors as [`train_sample`](Self::train_sample) does (but takes no learning rate), and
    /// if `grads` is shaped for another network.
    pub fn gradient_sample(
        &mut self,
        x: &[T],
        t: &[T],
        grads: &mut Gradients<T>,
    ) -> Result<T, Error> {
        let _ftz = self.ftz();
        self.check_x(x)?;
        self.check_t(t)?;
        grads.check_network(self)?;
        self.gradient_sample_unchecked(x, t, grads)
    }

    fn gradient_sample_unchecked(
        &mut self,
        x: &[T],
        t: &[T],
        grads: &mut Gradients<T>,
    ) -> Result<T, Error> {
        let psi = self.forward_delta(x, t)?;
        for k in (0..self.layers.len()).rev() {
            let layer = &self.layers[k];
            let (below, rest) = self.ws.split_at_mut(k);
            let delta: &[T] = &rest[0].delta;
            let a_prev: &[T] = match below.last_mut() {
                None => x,
                Some(prev) => {
                    par::backward(layer.w.as_ref(), delta, &prev.d, &mut prev.delta)?;
                    &prev.a
                }
            };
            // ∂ψ/∂W = â δᵀ, ∂ψ/∂b = δ.
            let (mut g, g_b) = grads.layer_mut(k);
            for (r, &ar) in a_prev.iter().enumerate() {
                for (gc, &dc) in g.row_mut(r).iter_mut().zip(delta) {
                    *gc = ar * dc;
                }
            }
            g_b.copy_from_slice(delta);
        }
        Ok(psi)
    }

    /// Batch forward pass into the batch workspaces, then every row's loss and the output
    /// layer's Δ. Returns the mean loss; `Err(Diverged)` if it is not finite.
    fn batch_forward_delta(&mut self, x: MatRef<'_, T>, t: MatRef<'_, T>) -> Result<T, Error> {
        let rows = x.rows();
        self.batch.ensure(&self.layers, rows);
        let ws = &mut self.batch.layers;
        for (k, layer) in self.layers.iter().enumerate() {
            let (below, rest) = ws.split_at_mut(k);
            let cur = &mut rest[0];
            let a_prev = match below.last() {
                None => x,
                Some(prev) => LayerWs::view(&prev.a, rows, prev.l, prev.stride),
            };
            // Softmax is applied with the loss, row by row: the kernel gives N.
            let act = match layer.act {
                Activation::Softmax => Activation::Identity,
                a => a,
            };
            let a = LayerWs::view_mut(&mut cur.a, rows, cur.l, cur.stride);
            let d = LayerWs::view_mut(&mut cur.d, rows, cur.l, cur.stride);
            kernels::batch_forward(act, layer.w.as_ref(), &layer.b, a_prev, a, d)?;
        }
        let last = ws.len() - 1;
        let out = &mut ws[last];
        let act = self.layers[last].act;
        let mut sum = T::ZERO;
        for i in 0..rows {
            let span = i * out.stride..i * out.stride + out.l;
            sum += loss::output_delta(
                self.loss,
                act,
                &mut out.a[span.clone()],
                &out.d[span.clone()],
                t.row(i),
                &mut out.delta[span],
            );
        }
        let psi = sum / T::from_f64(rows as f64);
        if !psi.is_finite() {
            return Err(Error::Diverged { loss: psi.to_f64() });
        }
        Ok(psi)
    }
}

/// W ← W − α G, b ← b − α g_b for one layer.
pub(crate) fn apply_gradient<T: Scalar>(
    layer: &mut Layer<T>,
    lr: T,
    g: MatRef<'_, T>,
    g_b: &[T],
) -> Result<(), Error> {
    kernels::apply_gradient(layer.w.as_mut(), &mut layer.b, lr, g, g_b)
}
