//! [`Loss`] and the output layer's δ: the only place where the network's math goes beyond the
//! kernels (Softmax is not element-wise, so it lives here rather than in `activate`).

use crate::activation::Activation;
use crate::error::Error;
use crate::kernels::KernelSet;
use crate::scalar::Scalar;

/// The per-sample loss ψ(t, y) of the seed notes. A batch's loss is the mean over its samples.
///
/// | loss | ψ(t, y) | δ at the output layer |
/// |---|---|---|
/// | `SquaredError`, element-wise σ | ‖t − y‖² (a sum over outputs, not a mean) | −2 A (t − y) |
/// | `SquaredError`, Softmax | ‖t − y‖² | Jᵀ(−2 (t − y)), J = diag(y) − y yᵀ |
/// | `CrossEntropy`, Softmax | −Σⱼ tⱼ ln yⱼ | (Σⱼ tⱼ) y − t, which is y − t for Σ t = 1 |
///
/// Softmax subtracts the largest pre-activation before exponentiating, and the cross-entropy
/// is computed from the pre-activations by log-sum-exp (−ln yⱼ = ln Σₖ e^(nₖ − m) − (nⱼ − m),
/// m = maxₖ nₖ), never as ln y: finite pre-activations give a finite loss and δ even where
/// some yⱼ underflow to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loss {
    /// ψ = ‖t − y‖² = Σⱼ (tⱼ − yⱼ)², with any output activation.
    SquaredError,
    /// ψ = −Σⱼ tⱼ ln yⱼ; needs a `Softmax` output layer. The targets of each sample must be
    /// a probability distribution — one-hot, or soft labels: every tⱼ ≥ 0 and
    /// |Σⱼ tⱼ − 1| ≤ √ε + L·ε (ε = `T::EPSILON`; about 3.5e-4 for `f32` and 1.5e-8 for `f64`,
    /// summed in `f64`) — else the call is an [`Error::NegativeTarget`] or
    /// [`Error::TargetSum`], checked before anything is written.
    CrossEntropy,
}

impl Loss {
    /// The variant's name, e.g. `"CrossEntropy"`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::SquaredError => "SquaredError",
            Loss::CrossEntropy => "CrossEntropy",
        }
    }

    /// `Err` unless this loss is defined for an output layer with activation `act`.
    pub(crate) fn check_output(self, act: Activation) -> Result<(), Error> {
        match (self, act) {
            (Loss::CrossEntropy, a) if a != Activation::Softmax => Err(Error::LossActivation {
                loss: self.name(),
                activation: a.name(),
                needs: "a Softmax output layer",
            }),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest |Σ t − 1| accepted for `len` cross-entropy targets: √ε + len·ε, room for the
/// rounding of soft labels made in `T` (or rounded to it), and far below any real mistake.
pub(crate) fn target_sum_tolerance<T: Scalar>(len: usize) -> f64 {
    let eps = T::EPSILON.to_f64();
    eps.sqrt() + len as f64 * eps
}

/// `Ok` unless the (finite) targets `t` of one sample are not a probability distribution:
/// [`Error::NegativeTarget`] at the first tⱼ < 0, else [`Error::TargetSum`] if Σ t (in `f64`)
/// is further than [`target_sum_tolerance`] from 1.
pub(crate) fn check_targets<T: Scalar>(
    arg: &'static str,
    row: Option<usize>,
    t: &[T],
) -> Result<(), Error> {
    let mut sum = 0.0f64;
    for (index, &tj) in t.iter().enumerate() {
        if tj < T::ZERO {
            return Err(Error::NegativeTarget {
                arg,
                row,
                index,
                value: tj.to_f64(),
            });
        }
        sum += tj.to_f64();
    }
    let tolerance = target_sum_tolerance::<T>(t.len());
    if (sum - 1.0).abs() <= tolerance {
        Ok(())
    } else {
        Err(Error::TargetSum {
            arg,
            row,
            len: t.len(),
            sum,
            tolerance,
        })
    }
}

/// Softmax in place: `z` holds the pre-activations n on entry and y = softmax(n) on return.
/// With targets `t` (as long as `z`), returns the cross-entropy −Σ tⱼ ln yⱼ (else zero).
///
/// One exponential per element: with m = max n, uⱼ = nⱼ − m ≤ 0 and s = Σ e^uⱼ ∈ [1, L],
/// −ln yⱼ = ln s − uⱼ, so ψ = (Σ tⱼ) ln s + (−Σ tⱼ uⱼ): for t ≥ 0 a sum of two non-negative
/// terms, without cancellation. Runs on the active SIMD level (the level's `exp`, one vector
/// pass for the exponentials and sums and one for the division).
pub(crate) fn softmax<T: Scalar>(z: &mut [T], t: Option<&[T]>) -> T {
    KernelSet::active().softmax(z, t)
}

/// The loss of one sample and δ at the output layer.
///
/// `y` holds σ(n) for an element-wise `act` (and `d` σ'(n)); for `Softmax` it holds n on
/// entry and y = softmax(n) on return (`d` is not read). `loss` and `act` have been checked
/// together ([`Loss::check_output`]).
pub(crate) fn output_delta<T: Scalar>(
    loss: Loss,
    act: Activation,
    y: &mut [T],
    d: &[T],
    t: &[T],
    delta: &mut [T],
) -> T {
    let two = T::ONE + T::ONE;
    match (loss, act) {
        (Loss::CrossEntropy, _) => {
            let ce = softmax(y, Some(t));
            let sum_t: T = t.iter().copied().sum();
            for ((dj, &yj), &tj) in delta.iter_mut().zip(y.iter()).zip(t) {
                *dj = sum_t * yj - tj;
            }
            ce
        }
        (Loss::SquaredError, Activation::Softmax) => {
            softmax(y, None);
            // g = ∂ψ/∂y = −2 (t − y); δ = Jᵀ g with J = diag(y) − y yᵀ: δⱼ = yⱼ (gⱼ − yᵀg).
            let mut se = T::ZERO;
            let mut yg = T::ZERO;
            for ((dj, &yj), &tj) in delta.iter_mut().zip(y.iter()).zip(t) {
                let e = tj - yj;
                se += e * e;
                let g = -(two * e);
                *dj = g;
                yg += yj * g;
            }
            for (dj, &yj) in delta.iter_mut().zip(y.iter()) {
                *dj = yj * (*dj - yg);
            }
            se
        }
        (Loss::SquaredError, _) => {
            let mut se = T::ZERO;
            for (((dj, &yj), &dd), &tj) in delta.iter_mut().zip(y.iter()).zip(d).zip(t) {
                let e = tj - yj;
                se += e * e;
                *dj = -(two * e) * dd;
            }
            se
        }
    }
}

/// ‖t − y‖².
pub(crate) fn squared_error<T: Scalar>(y: &[T], t: &[T]) -> T {
    y.iter()
        .zip(t)
        .map(|(&yj, &tj)| {
            let e = tj - yj;
            e * e
        })
        .fold(T::ZERO, |acc, v| acc + v)
}
