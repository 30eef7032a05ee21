//! The network layer: [`Network`] owns its [`Layer`]s and the workspaces of the SGD step, and
//! runs forward, backward and update by calling the kernels.
//!
//! Per sample ([`Network::train_sample`]) the step is the seed's:
//!
//! 1. forward: for each layer n = Wᵀâ + b ([`kernels::affine`]), a = σ(n) and d = σ'(n)
//!    ([`kernels::activate`]), keeping every layer's a and d;
//! 2. output: the loss ψ(t, y) and δ of the output layer ([`Loss`]);
//! 3. from the last layer backwards: δ̂ = Â W δ from the W before the update, together with
//!    W ← W − α â δᵀ ([`kernels::backward_update`]; the first layer has no δ̂ to pass on, so
//!    it needs only [`kernels::rank1_update`]), and b ← b − α δ.
//!
//! All workspaces are allocated when the network is made, so a step allocates nothing.

mod batch;
mod builder;
mod grad;
mod guard;
mod init;
#[cfg(feature = "serde")]
mod io;
mod layer;
mod loss;
pub(crate) use crate::kernels::par;
mod train;

use aligned_vec::{AVec, ConstAlign};

pub use builder::{DEFAULT_SEED, NetworkBuilder};
pub use grad::Gradients;
pub use init::Init;
#[cfg(feature = "serde")]
pub use io::FORMAT_VERSION;
pub use layer::Layer;
pub use loss::Loss;
pub use train::{EpochOptions, Evaluation};

use crate::activation::Activation;
use crate::error::{Error, check_len};
use crate::kernels;
use crate::matrix::{MatRef, ROW_ALIGN};
use crate::scalar::Scalar;
use layer::{check_finite, check_finite_matrix, check_finite_sum};

/// A 64-byte aligned buffer (the kernels stream whole cache lines from it).
pub(crate) type Buf<T> = AVec<T, ConstAlign<ROW_ALIGN>>;

/// `len` zeros, 64-byte aligned.
pub(crate) fn buf<T: Scalar>(len: usize) -> Buf<T> {
    let mut v = AVec::with_capacity(ROW_ALIGN, len);
    v.resize(len, T::ZERO);
    v
}

/// One layer's per-sample workspace: n, a = σ(n), d = σ'(n) and δ, each of length L.
/// For a Softmax output layer `a` holds n and then y; `n` and `d` are unused.
#[derive(Clone)]
struct SampleWs<T: Scalar> {
    n: Buf<T>,
    a: Buf<T>,
    d: Buf<T>,
    delta: Buf<T>,
}

impl<T: Scalar> SampleWs<T> {
    fn new(l: usize) -> Self {
        SampleWs {
            n: buf(l),
            a: buf(l),
            d: buf(l),
            delta: buf(l),
        }
    }
}

/// A dense feed-forward network trained by backpropagation: a stack of [`Layer`]s, a [`Loss`],
/// and the workspaces every step reuses.
///
/// ```
/// use deltaprop::{Activation, Loss, Network};
/// // 2 inputs → 8 tanh → 1 sigmoid, squared error: learn XOR.
/// let mut net = Network::<f64>::builder(2)
///     .layer(8, Activation::Tanh)
///     .layer(1, Activation::Sigmoid)
///     .loss(Loss::SquaredError)
///     .seed(7)
///     .build()?;
/// let data = [([0.0, 0.0], 0.0), ([0.0, 1.0], 1.0), ([1.0, 0.0], 1.0), ([1.0, 1.0], 0.0)];
/// for _ in 0..2000 {
///     for (x, t) in &data {
///         net.train_sample(x, &[*t], 0.5)?;
///     }
/// }
/// for (x, t) in &data {
///     assert!((net.predict(x)?[0] - t).abs() < 0.2);
/// }
/// # Ok::<(), deltaprop::Error>(())
/// ```
///
/// # Threads
/// With the `rayon` feature (default), the per-sample kernels of a layer whose W takes at
/// least 2 MiB are split into fixed blocks of rows (backward, update) or columns (forward)
/// run on the current rayon pool; smaller layers — where a second thread was measured to gain
/// nothing — stay on the calling thread, and the batched kernels split large GEMMs the same
/// way. The blocks depend on the layer's shape only, so results are the same, bit for bit, on
/// any number of threads. Run inside `ThreadPool::install` to choose the threads.
#[derive(Clone)]
pub struct Network<T: Scalar> {
    layers: Vec<Layer<T>>,
    loss: Loss,
    ws: Vec<SampleWs<T>>,
    pub(crate) batch: batch::BatchWs<T>,
    /// Keeps a step from leaving non-finite weights (see `guard.rs`).
    guard: guard::StepGuard<T>,
    /// Whether training calls flush subnormals to zero.
    flush_subnormals: bool,
}

impl<T: Scalar> Network<T> {
    /// A network of `layers` (input side first) trained on `loss`.
    ///
    /// Errors if there are no layers, if a layer's inputs differ from the outputs of the layer
    /// before it, if a layer other than the last uses `Softmax`, or if `loss` is
    /// `CrossEntropy` and the last layer is not `Softmax`.
    pub fn new(layers: Vec<Layer<T>>, loss: Loss) -> Result<Self, Error> {
        let Some(last) = layers.last() else {
            return Err(Error::EmptyNetwork);
        };
        for (k, pair) in layers.windows(2).enumerate() {
            if pair[1].inputs() != pair[0].outputs() {
                return Err(Error::LayerMismatch {
                    layer: k + 1,
                    inputs: pair[1].inputs(),
                    previous_outputs: pair[0].outputs(),
                });
            }
        }
        if let Some(k) = layers[..layers.len() - 1]
            .iter()
            .position(|l| l.act == Activation::Softmax)
        {
            return Err(Error::SoftmaxHidden { layer: k });
        }
        loss.check_output(last.act)?;
        let ws = layers.iter().map(|l| SampleWs::new(l.outputs())).collect();
        let guard = guard::StepGuard::new(&layers);
        Ok(Network {
            layers,
            loss,
            ws,
            batch: batch::BatchWs::default(),
            guard,
            flush_subnormals: false,
        })
    }

    /// A [`NetworkBuilder`] for a network with `inputs` inputs: add layers with
    /// [`layer`](NetworkBuilder::layer), then [`build`](NetworkBuilder::build).
    pub fn builder(inputs: usize) -> NetworkBuilder<T> {
        NetworkBuilder::new(inputs)
    }

    /// The layers, input side first.
    pub fn layers(&self) -> &[Layer<T>] {
        &self.layers
    }

    /// The layers, giving up the network.
    pub fn into_layers(self) -> Vec<Layer<T>> {
        self.layers
    }

    /// Opt in (or out) of flushing subnormals to zero during training: while
    /// [`train_sample`](Self::train_sample), [`train_batch`](Self::train_batch),
    /// [`train_epoch`](Self::train_epoch) (and [`fit`](Self::fit)),
    /// [`gradient_sample`](Self::gradient_sample), [`gradient_batch`](Self::gradient_batch)
    /// and [`apply_gradients`](Self::apply_gradients) run, the calling thread's MXCSR has FTZ
    /// and DAZ set, and its previous value is restored when the call returns, with `Ok` or
    /// `Err` (or unwinds). Off by default.
    ///
    /// Subnormal numbers (below 2⁻¹²⁶ in f32) appear when weights, activations or δ decay
    /// towards zero, and an x86 core may take a microcode assist for each operation on one;
    /// flushing them to zero changes results only below that threshold. See
    /// `benches/subnormal.rs` for what they cost on a given machine.
    ///
    /// Only on x86-64, and only on the calling thread: elsewhere this setting does nothing,
    /// and the blocks of a big layer that run on rayon's worker threads keep those threads'
    /// own settings. An `on_step` callback of [`train_epoch_with`](Self::train_epoch_with)
    /// runs with the flags set. [`simd::flushing_subnormals`](crate::simd::flushing_subnormals)
    /// tells whether they are set on the calling thread.
    pub fn set_flush_subnormals(&mut self, on: bool) {
        self.flush_subnormals = on;
    }

    /// Whether training calls flush subnormals to zero (see
    /// [`set_flush_subnormals`](Self::set_flush_subnormals)).
    pub fn flush_subnormals(&self) -> bool {
        self.flush_subnormals
    }

    /// The guard a training call holds for its duration.
    pub(crate) fn ftz(&self) -> crate::simd::FlushSubnormals {
        crate::simd::FlushSubnormals::new(self.flush_subnormals)
    }

    /// The loss the network is trained on.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Inputs of the first layer (the length of x).
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs()
    }

    /// Outputs of the last layer (the length of y and t).
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].outputs()
    }

    /// The output y for input `x` (length [`inputs`](Self::inputs)).
    ///
    /// Allocates its result and scratch space; [`predict_into`](Self::predict_into) does
    /// not allocate.
    pub fn predict(&self, x: &[T]) -> Result<Vec<T>, Error> {
        self.check_x(x)?;
        let mut ws: Vec<_> = self
            .layers
            .iter()
            .map(|l| SampleWs::new(l.outputs()))
            .collect();
        forward(&self.layers, &mut ws, x)?;
        let mut y = ws.pop().map(|w| w.a.to_vec()).unwrap_or_default();
        if self.output_act() == Activation::Softmax {
            loss::softmax(&mut y, None);
        }
        Ok(y)
    }

    /// The output y for input `x`, written to `out` (length [`outputs`](Self::outputs)),
    /// without allocating: it runs in the network's own workspaces.
    pub fn predict_into(&mut self, x: &[T], out: &mut [T]) -> Result<(), Error> {
        self.check_x(x)?;
        check_len("out", out.len(), self.outputs(), "the network's outputs")?;
        self.forward(x)?;
        let last = self.ws.len() - 1;
        let y = &mut self.ws[last].a;
        if self.layers[last].act == Activation::Softmax {
            loss::softmax(y, None);
        }
        out.copy_from_slice(y);
        Ok(())
    }

    /// One SGD step on the pair (x, t) with learning rate `lr`; returns the loss ψ(t, y) of
    /// the network before the step.
    ///
    /// Errors — with the network unchanged — if `x` or `t` has the wrong length or a NaN or
    /// infinite element, if the loss is `CrossEntropy` and `t` is not a probability
    /// distribution (see [`Loss::CrossEntropy`]), if `lr` is not finite and positive, or if
    /// the loss is not finite or the step would make a weight or bias overflow
    /// ([`Error::Diverged`]): after an `Ok`, every weight and bias is finite.
    pub fn train_sample(&mut self, x: &[T], t: &[T], lr: T) -> Result<T, Error> {
        let _ftz = self.ftz();
        check_lr(lr)?;
        let x_sum = self.check_x_sum(x)?;
        self.check_t(t)?;
        let psi = self.forward_delta(x, t)?;
        self.backward_step(x, lr, psi, Some(x_sum))?;
        Ok(psi)
    }

    /// The output activation.
    fn output_act(&self) -> Activation {
        self.layers[self.layers.len() - 1].act
    }

    /// Forward pass for one sample into the workspaces: every layer's a and d (and n).
    fn forward(&mut self, x: &[T]) -> Result<(), Error> {
        forward(&self.layers, &mut self.ws, x)
    }

    /// Forward pass, then the loss and the output layer's δ. `Err(Diverged)` on a non-finite
    /// loss.
    fn forward_delta(&mut self, x: &[T], t: &[T]) -> Result<T, Error> {
        self.forward(x)?;
        let last = self.ws.len() - 1;
        let act = self.layers[last].act;
        let ws = &mut self.ws[last];
        let psi = loss::output_delta(self.loss, act, &mut ws.a, &ws.d, t, &mut ws.delta);
        if !psi.is_finite() {
            return Err(Error::Diverged { loss: psi.to_f64() });
        }
        Ok(psi)
    }

    /// The backward step of [`backward_step_unguarded`](Self::backward_step_unguarded), taken
    /// only if no weight or bias can become non-finite: on the fast path if the guard's bound
    /// holds, else with a copy of the weights to put back (then `Err(Diverged)` with `psi`,
    /// the loss, and the network unchanged). `x_sum` is Σ |x| if the input checks computed
    /// it (x is then not read again for the guard).
    fn backward_step(
        &mut self,
        x: &[T],
        alpha: T,
        psi: T,
        x_sum: Option<f64>,
    ) -> Result<(), Error> {
        let last = self.ws.len() - 1;
        let d_out = guard::sum_abs(&self.ws[last].delta);
        let (layers, ws) = (&self.layers, &self.ws);
        let plan = self
            .guard
            .plan_backward(layers, alpha, 1, d_out, |k| match k {
                0 => match x_sum {
                    Some(s) => guard::Below::Input(s),
                    None => guard::Below::Sample(x, None),
                },
                _ => guard::Below::Sample(&ws[k - 1].a, Some((&ws[k - 1].d, layers[k - 1].act))),
            });
        match plan {
            guard::Plan::Fast => {
                self.backward_step_unguarded(x, alpha)?;
                self.guard.taken();
                Ok(())
            }
            guard::Plan::Checked => {
                self.guard.save(&self.layers);
                let step = self.backward_step_unguarded(x, alpha);
                let finite = self.guard.restore_if_not_finite(&mut self.layers);
                step?;
                if finite {
                    Ok(())
                } else {
                    Err(Error::Diverged { loss: psi.to_f64() })
                }
            }
        }
    }

    /// From the last layer backwards: δ̂ with the update of W fused, then b ← b − α δ.
    fn backward_step_unguarded(&mut self, x: &[T], alpha: T) -> Result<(), Error> {
        for k in (0..self.layers.len()).rev() {
            let layer = &mut self.layers[k];
            let (below, rest) = self.ws.split_at_mut(k);
            let delta = &rest[0].delta;
            match below.last_mut() {
                None => par::rank1_update(layer.w.as_mut(), alpha, x, delta)?,
                Some(prev) => par::backward_update(
                    layer.w.as_mut(),
                    alpha,
                    &prev.a,
                    delta,
                    &prev.d,
                    &mut prev.delta,
                )?,
            }
            for (b, &d) in layer.b.iter_mut().zip(delta.iter()) {
                *b -= alpha * d;
            }
        }
        Ok(())
    }

    fn check_x(&self, x: &[T]) -> Result<(), Error> {
        self.check_x_sum(x).map(|_| ())
    }

    /// [`check_x`](Self::check_x), returning Σ |x| (see `check_finite_sum`), which the step
    /// guard reuses.
    fn check_x_sum(&self, x: &[T]) -> Result<f64, Error> {
        check_len("x", x.len(), self.inputs(), "the network's inputs")?;
        check_finite_sum("x", x)
    }

    fn check_t(&self, t: &[T]) -> Result<(), Error> {
        check_len("t", t.len(), self.outputs(), "the network's outputs")?;
        check_finite("t", t)?;
        if self.loss == Loss::CrossEntropy {
            loss::check_targets("t", None, t)?;
        }
        Ok(())
    }

    /// Checks a batch: B ≥ 1 rows in both, the right columns, finite elements. Returns
    /// Σ |x| (see `check_finite_matrix`), which the step guard reuses.
    fn check_batch(&self, x: MatRef<'_, T>, t: MatRef<'_, T>) -> Result<f64, Error> {
        if x.rows() == 0 {
            return Err(Error::EmptyBatch { arg: "x" });
        }
        check_len(
            "x",
            x.cols(),
            self.inputs(),
            "the network's inputs (columns of x)",
        )?;
        check_len(
            "t",
            t.cols(),
            self.outputs(),
            "the network's outputs (columns of t)",
        )?;
        check_len("t", t.rows(), x.rows(), "the rows of x (the batch size)")?;
        let x_sum = check_finite_matrix("x", x)?;
        check_finite_matrix("t", t)?;
        if self.loss == Loss::CrossEntropy {
            for r in 0..t.rows() {
                loss::check_targets("t", Some(r), t.row(r))?;
            }
        }
        Ok(x_sum)
    }
}

impl<T: Scalar> std::fmt::Debug for Network<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("layers", &self.layers)
            .field("loss", &self.loss)
            .finish_non_exhaustive()
    }
}

/// `Err(InvalidLearningRate)` unless `lr` is finite and positive.
pub(crate) fn check_lr<T: Scalar>(lr: T) -> Result<(), Error> {
    if lr.is_finite() && lr > T::ZERO {
        Ok(())
    } else {
        Err(Error::InvalidLearningRate { value: lr.to_f64() })
    }
}

/// Forward pass for one sample through `layers` into `ws`: every layer's a and d (and n).
/// A Softmax output layer's `a` holds n.
fn forward<T: Scalar>(layers: &[Layer<T>], ws: &mut [SampleWs<T>], x: &[T]) -> Result<(), Error> {
    for (k, layer) in layers.iter().enumerate() {
        let (below, rest) = ws.split_at_mut(k);
        let a_prev: &[T] = if k == 0 { x } else { &below[k - 1].a };
        let cur = &mut rest[0];
        forward_layer(layer, a_prev, &mut cur.n, &mut cur.a, &mut cur.d)?;
    }
    Ok(())
}

/// One layer forward: n = Wᵀâ + b, a = σ(n), d = σ'(n). For Softmax, `a` gets n (the
/// caller applies the softmax with its loss) and `n`, `d` are untouched.
fn forward_layer<T: Scalar>(
    layer: &Layer<T>,
    a_prev: &[T],
    n: &mut [T],
    a: &mut [T],
    d: &mut [T],
) -> Result<(), Error> {
    if layer.act == Activation::Softmax {
        par::affine(layer.w.as_ref(), a_prev, &layer.b, a)
    } else {
        par::affine(layer.w.as_ref(), a_prev, &layer.b, n)?;
        kernels::activate(layer.act, n, a, d)
    }
}
