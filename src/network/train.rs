//! Training over a data set (epochs in a seeded random order) and evaluation of the seed's
//! error totals.

use rand::seq::SliceRandom;

use crate::activation::Activation;
use crate::error::Error;
use crate::matrix::MatRef;
use crate::scalar::Scalar;

use super::{DEFAULT_SEED, Network, SampleWs, check_lr, forward, init, loss};

/// How [`Network::train_epoch`] visits a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochOptions {
    /// Samples per SGD step: 1 is per-sample SGD ([`Network::train_sample`]), more is
    /// minibatch SGD ([`Network::train_batch`]; the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Whether to visit the samples in a fresh random order each epoch (the seed notes'
    /// "perhaps chosen at random"), or in the order of the rows.
    pub shuffle: bool,
    /// The seed of the orders: epoch e is shuffled by xoshiro256++ seeded with
    /// `seed + e · 0x9E37_79B9_7F4A_7C15` (wrapping), so every epoch's order is reproducible
    /// on its own.
    pub seed: u64,
}

impl Default for EpochOptions {
    /// Per-sample SGD in a shuffled order seeded with [`DEFAULT_SEED`].
    fn default() -> Self {
        EpochOptions {
            batch_size: 1,
            shuffle: true,
            seed: DEFAULT_SEED,
        }
    }
}

impl EpochOptions {
    /// The order in which epoch `epoch` visits `n` samples.
    pub fn order(&self, epoch: usize, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        if self.shuffle {
            let seed = self
                .seed
                .wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            order.shuffle(&mut init::rng(seed));
        }
        order
    }
}

/// The seed notes' error totals of a network over a data set, and its classification
/// accuracy. See [`Network::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<T> {
    /// N, the number of samples.
    pub samples: usize,
    /// E_TSE = Σᵢ ‖tⁱ − yⁱ‖².
    pub total_squared_error: T,
    /// E_MSE = E_TSE / N.
    pub mean_squared_error: T,
    /// E_TCE = −Σᵢ Σⱼ tⱼⁱ ln yⱼⁱ, for a Softmax output layer (`None` otherwise), computed by
    /// log-sum-exp from the pre-activations.
    pub total_cross_entropy: Option<T>,
    /// Samples whose predicted class is the target's class: the index of the largest
    /// element (the first one on ties), or for a single output whether it is ≥ 0.5.
    pub correct: usize,
    /// `correct / samples`.
    pub accuracy: f64,
}

/// The class of an output or target vector: argmax (first on ties), or `v ≥ 0.5` for one
/// element.
fn class<T: Scalar>(v: &[T]) -> usize {
    if v.len() == 1 {
        return usize::from(v[0] >= T::from_f64(0.5));
    }
    let mut best = 0;
    for (j, &e) in v.iter().enumerate() {
        if e > v[best] {
            best = j;
        }
    }
    best
}

impl<T: Scalar> Network<T> {
    /// One epoch of SGD over the data set `x` (N × inputs) and `t` (N × outputs), in the
    /// order and batch size `opts` gives; returns the mean of the losses before each step.
    ///
    /// Errors before any step — with the network unchanged — on the errors of
    /// [`train_batch`](Self::train_batch) for the whole set, and if `opts.batch_size` is zero.
    /// A diverging step ([`Error::Diverged`]) ends the epoch early with the steps before it
    /// taken.
    pub fn train_epoch(
        &mut self,
        x: MatRef<'_, T>,
        t: MatRef<'_, T>,
        lr: T,
        epoch: usize,
        opts: &EpochOptions,
    ) -> Result<T, Error> {
        self.train_epoch_with(x, t, lr, epoch, opts, |_| {})
    }

    /// [`train_epoch`](Self::train_epoch), calling `on_step(samples_done)` after every step
    /// (e.g. to move a progress bar).
    pub fn train_epoch_with(
        &mut self,
        x: MatRef<'_, T>,
        t: MatRef<'_, T>,
        lr: T,
        epoch: usize,
        opts: &EpochOptions,
        mut on_step: impl FnMut(usize),
    ) -> Result<T, Error> {
        let _ftz = self.ftz();
        self.check_epoch(x, t, lr, opts)?;
        let order = opts.order(epoch, x.rows());
        let mut sum = 0.0f64;
        if opts.batch_size == 1 {
            for (done, &i) in order.iter().enumerate() {
                let psi = self.forward_delta(x.row(i), t.row(i))?;
                self.backward_step(x.row(i), lr, psi, None)?;
                sum += psi.to_f64();
                on_step(done + 1);
            }
        } else {
            let (h, l) = (self.inputs(), self.outputs());
            // No batch is larger than the data set (nor is its gather buffer).
            let batch_size = opts.batch_size.min(x.rows());
            let mut gx = std::mem::take(&mut self.batch.gx);
            let mut gt = std::mem::take(&mut self.batch.gt);
            gx.resize(batch_size * h, T::ZERO);
            gt.resize(batch_size * l, T::ZERO);
            let mut result = Ok(());
            let mut done = 0;
            for chunk in order.chunks(batch_size) {
                for (j, &i) in chunk.iter().enumerate() {
                    gx[j * h..(j + 1) * h].copy_from_slice(x.row(i));
                    gt[j * l..(j + 1) * l].copy_from_slice(t.row(i));
                }
                let b = chunk.len();
                let step = MatRef::from_slice(&gx, b, h, h).and_then(|xb| {
                    let tb = MatRef::from_slice(&gt, b, l, l)?;
                    self.train_batch_unchecked(xb, tb, lr, None)
                });
                match step {
                    Ok(psi) => sum += psi.to_f64() * b as f64,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
                done += b;
                on_step(done);
            }
            self.batch.gx = gx;
            self.batch.gt = gt;
            result?;
        }
        Ok(T::from_f64(sum / x.rows() as f64))
    }

    /// The checks of [`train_epoch`](Self::train_epoch), before any step.
    fn check_epoch(
        &self,
        x: MatRef<'_, T>,
        t: MatRef<'_, T>,
        lr: T,
        opts: &EpochOptions,
    ) -> Result<(), Error> {
        check_lr(lr)?;
        if opts.batch_size == 0 {
            return Err(Error::ZeroSize {
                what: "the batch size (`opts.batch_size`)",
                layer: None,
            });
        }
        self.check_batch(x, t).map(|_| ())
    }

    /// `epochs` epochs of [`train_epoch`](Self::train_epoch) (epoch indices 0, 1, …),
    /// calling `on_epoch(epoch, mean_loss)` after each; returns the last epoch's mean loss.
    ///
    /// The arguments are checked as [`train_epoch`](Self::train_epoch) checks them even when
    /// `epochs` is zero; zero epochs of valid arguments are a no-op that returns zero.
    ///
    /// ```
    /// use deltaprop::{Activation, EpochOptions, Matrix, Network};
    /// let mut net = Network::<f32>::builder(2)
    ///     .layer(8, Activation::Tanh)
    ///     .layer(1, Activation::Sigmoid)
    ///     .build()?;
    /// let x = Matrix::from_row_major(4, 2, &[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])?;
    /// let t = Matrix::from_row_major(4, 1, &[0.0, 1.0, 1.0, 0.0])?;
    /// let mut losses = Vec::new();
    /// net.fit(x.as_ref(), t.as_ref(), 0.5, 2000, &EpochOptions::default(), |_, loss| {
    ///     losses.push(loss)
    /// })?;
    /// assert!(losses[1999] < losses[0]);
    /// assert_eq!(net.evaluate(x.as_ref(), t.as_ref())?.correct, 4);
    /// # Ok::<(), deltaprop::Error>(())
    /// ```
    pub fn fit(
        &mut self,
        x: MatRef<'_, T>,
        t: MatRef<'_, T>,
        lr: T,
        epochs: usize,
        opts: &EpochOptions,
        mut on_epoch: impl FnMut(usize, T),
    ) -> Result<T, Error> {
        self.check_epoch(x, t, lr, opts)?;
        let mut last = T::ZERO;
        for epoch in 0..epochs {
            last = self.train_epoch(x, t, lr, epoch, opts)?;
            on_epoch(epoch, last);
        }
        Ok(last)
    }

    /// The network's error totals and accuracy over the data set `x` (N × inputs) and `t`
    /// (N × outputs). The network is not changed; scratch space is allocated per call and the
    /// totals are accumulated in `f64`.
    ///
    /// Errors if N is zero, the shapes disagree, an element is NaN or infinite, or the loss
    /// is `CrossEntropy` and a row of `t` is not a probability distribution.
    pub fn evaluate(&self, x: MatRef<'_, T>, t: MatRef<'_, T>) -> Result<Evaluation<T>, Error> {
        self.check_batch(x, t)?;
        let mut ws: Vec<_> = self
            .layers
            .iter()
            .map(|l| SampleWs::new(l.outputs()))
            .collect();
        let softmax = self.output_act() == Activation::Softmax;
        let (mut tse, mut tce, mut correct) = (0.0f64, 0.0f64, 0usize);
        for i in 0..x.rows() {
            forward(&self.layers, &mut ws, x.row(i))?;
            let y = &mut ws.last_mut().expect("a network has layers").a;
            let ti = t.row(i);
            if softmax {
                tce += loss::softmax(y, Some(ti)).to_f64();
            }
            tse += loss::squared_error(y, ti).to_f64();
            correct += usize::from(class(y) == class(ti));
        }
        let n = x.rows();
        Ok(Evaluation {
            samples: n,
            total_squared_error: T::from_f64(tse),
            mean_squared_error: T::from_f64(tse / n as f64),
            total_cross_entropy: softmax.then(|| T::from_f64(tce)),
            correct,
            accuracy: correct as f64 / n as f64,
        })
    }
}
