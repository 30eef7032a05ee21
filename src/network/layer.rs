//! [`Layer`]: one layer's W (H × L), b (L) and σ.

use crate::activation::Activation;
use crate::error::{Error, check_len};
use crate::matrix::{MatRef, Matrix};
use crate::scalar::Scalar;

use super::guard;

/// One dense layer with H inputs and L outputs: n = Wᵀâ + b, a = σ(n).
///
/// W is H × L, row-major (row r holds the weights leaving input r), as everywhere in the
/// crate. A `Layer` is validated when it is made: W and b agree in L, neither dimension is
/// zero, and every weight and bias is finite.
///
/// ```
/// use deltaprop::{Activation, Layer, Matrix};
/// let w = Matrix::from_row_major(2, 3, &[0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6])?;
/// let layer = Layer::new(w, vec![0.0; 3], Activation::Tanh)?;
/// assert_eq!((layer.inputs(), layer.outputs()), (2, 3));
/// assert_eq!(layer.weights().get(1, 2), 0.6);
/// # Ok::<(), deltaprop::Error>(())
/// ```
#[derive(Clone)]
pub struct Layer<T: Scalar> {
    pub(crate) w: Matrix<T>,
    pub(crate) b: Vec<T>,
    pub(crate) act: Activation,
}

impl<T: Scalar> Layer<T> {
    /// A layer with weights `w` (H × L), biases `b` (length L) and activation `act`.
    ///
    /// Errors if `b.len() != w.cols()`, if H or L is zero, or if an element of `w` or `b` is
    /// NaN or infinite. Whether `act` fits the layer's place (Softmax only at the output) is
    /// checked by [`Network::new`](crate::Network::new).
    pub fn new(w: Matrix<T>, b: Vec<T>, act: Activation) -> Result<Self, Error> {
        if w.rows() == 0 {
            return Err(Error::ZeroSize {
                what: "the inputs (rows of w)",
                layer: None,
            });
        }
        if w.cols() == 0 {
            return Err(Error::ZeroSize {
                what: "the outputs (columns of w)",
                layer: None,
            });
        }
        check_len("b", b.len(), w.cols(), "the columns of w (L)")?;
        check_finite_matrix("w", w.as_ref())?;
        check_finite("b", &b)?;
        Ok(Layer { w, b, act })
    }

    /// The weights W, H × L.
    pub fn weights(&self) -> MatRef<'_, T> {
        self.w.as_ref()
    }

    /// The biases b, length L.
    pub fn bias(&self) -> &[T] {
        &self.b
    }

    /// The activation σ.
    pub fn activation(&self) -> Activation {
        self.act
    }

    /// H, the number of inputs (rows of W).
    pub fn inputs(&self) -> usize {
        self.w.rows()
    }

    /// L, the number of outputs (columns of W).
    pub fn outputs(&self) -> usize {
        self.w.cols()
    }

    /// The layer's parts: W, b and σ.
    pub fn into_parts(self) -> (Matrix<T>, Vec<T>, Activation) {
        (self.w, self.b, self.act)
    }
}

impl<T: Scalar> std::fmt::Debug for Layer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("inputs", &self.inputs())
            .field("outputs", &self.outputs())
            .field("activation", &self.act)
            .finish_non_exhaustive()
    }
}

/// `Err(NonFiniteElement)` at the first NaN or ∞ of `v`.
pub(crate) fn check_finite<T: Scalar>(arg: &'static str, v: &[T]) -> Result<(), Error> {
    check_finite_sum(arg, v).map(|_| ())
}

/// [`check_finite`], returning [`guard::sum_abs`] of `v` from the same pass.
pub(crate) fn check_finite_sum<T: Scalar>(arg: &'static str, v: &[T]) -> Result<f64, Error> {
    sum_abs_checked(v).map_err(|index| Error::NonFiniteElement {
        arg,
        row: None,
        index,
    })
}

/// [`guard::sum_abs`] of `v`, or the position of its first NaN or ∞.
fn sum_abs_checked<T: Scalar>(v: &[T]) -> Result<f64, usize> {
    // The common case in one pass of the SIMD level's Σ |v| (finite only if every element
    // is); the position only when it is not (an overflowing sum of finite elements then
    // passes below, and the sum is +∞).
    let sum = guard::sum_abs(v);
    if sum.is_finite() {
        return Ok(sum);
    }
    match v.iter().position(|e| !e.is_finite()) {
        None => Ok(sum),
        Some(index) => Err(index),
    }
}

/// `Err(NonFiniteElement)` at the first NaN or ∞ of `m`, with its row and column; else
/// [`guard::sum_abs_rows`] of `m` (an upper bound on max |m|), from the same pass.
pub(crate) fn check_finite_matrix<T: Scalar>(
    arg: &'static str,
    m: MatRef<'_, T>,
) -> Result<f64, Error> {
    let mut total = 0.0;
    for r in 0..m.rows() {
        total += sum_abs_checked(m.row(r)).map_err(|index| Error::NonFiniteElement {
            arg,
            row: Some(r),
            index,
        })?;
    }
    Ok(total)
}
