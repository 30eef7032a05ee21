//! The crate's one error type.

use std::fmt;

/// What was wrong with a call, and with which sizes.
///
/// Every fallible function in the crate returns `Result<_, Error>`. A call that returns an
/// `Err` has not written to any of its output arguments.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// An argument's length or dimension disagrees with what the other arguments imply.
    DimensionMismatch {
        /// The argument whose size is wrong, e.g. `"a_prev"`.
        arg: &'static str,
        /// The size the other arguments imply.
        expected: usize,
        /// The size the argument has.
        found: usize,
        /// Where the expected size comes from, e.g. `"the rows of w (H)"`.
        because: &'static str,
    },
    /// A slice is too short to hold the matrix view described over it.
    BufferTooShort {
        /// The argument, e.g. `"data"`.
        arg: &'static str,
        /// Elements the view needs: `(rows − 1) · row_stride + cols`.
        needed: usize,
        /// Elements the slice has.
        len: usize,
    },
    /// A row stride smaller than the number of columns (rows would overlap).
    InvalidStride {
        /// Columns of the view.
        cols: usize,
        /// The row stride asked for.
        row_stride: usize,
    },
    /// A strided view (an `ndarray` view, feature `ndarray`) whose layout the kernels cannot
    /// read in place: they need each row's elements adjacent (column stride 1) and rows that
    /// do not overlap or run backwards (row stride ≥ columns).
    UnsupportedLayout {
        /// The argument, e.g. `"array"`.
        arg: &'static str,
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Its row stride, in elements.
        row_stride: isize,
        /// Its column stride, in elements.
        col_stride: isize,
    },
    /// The sizes overflow `usize`.
    SizeOverflow {
        /// Rows asked for.
        rows: usize,
        /// Columns asked for.
        cols: usize,
    },
    /// An activation used where it is not defined, e.g. `Softmax` in the element-wise
    /// `activate` kernel.
    UnsupportedActivation {
        /// The activation's name.
        activation: &'static str,
        /// Where it was used.
        context: &'static str,
    },
    /// A scalar argument that must be finite is NaN or infinite.
    NonFinite {
        /// The argument, e.g. `"alpha"`.
        arg: &'static str,
    },
    /// A SIMD level this CPU (or this build's target architecture) does not have.
    UnsupportedSimdLevel {
        /// The level's name, as `DELTAPROP_SIMD` spells it.
        level: &'static str,
    },
    /// A network was given no layers.
    EmptyNetwork,
    /// A size that must be at least one is zero.
    ZeroSize {
        /// What is empty, e.g. `"layer 2's outputs"`.
        what: &'static str,
        /// The layer concerned (0-based), where there is one.
        layer: Option<usize>,
    },
    /// A layer's inputs differ from the outputs of the layer before it.
    LayerMismatch {
        /// The layer (0-based) whose inputs are wrong.
        layer: usize,
        /// Its inputs: the rows of its W.
        inputs: usize,
        /// The outputs of the layer before it (or the network's inputs, for layer 0).
        previous_outputs: usize,
    },
    /// `Softmax` on a layer other than the output layer.
    SoftmaxHidden {
        /// The layer (0-based).
        layer: usize,
    },
    /// A loss used with an output activation it is not defined for, e.g. `CrossEntropy`
    /// without a `Softmax` output layer.
    LossActivation {
        /// The loss's name.
        loss: &'static str,
        /// The output layer's activation.
        activation: &'static str,
        /// What the loss needs.
        needs: &'static str,
    },
    /// An element of an input (data, targets, weights, gradients) is NaN or infinite.
    NonFiniteElement {
        /// The argument, e.g. `"x"`.
        arg: &'static str,
        /// The row, for a matrix argument.
        row: Option<usize>,
        /// The index in the row (or in the vector).
        index: usize,
    },
    /// A learning rate that is not finite and positive.
    InvalidLearningRate {
        /// The value given.
        value: f64,
    },
    /// A `CrossEntropy` target below zero: the targets of a sample must be a probability
    /// distribution.
    NegativeTarget {
        /// The argument, e.g. `"t"`.
        arg: &'static str,
        /// The row, for a matrix argument.
        row: Option<usize>,
        /// The index in the row (or in the vector).
        index: usize,
        /// The target.
        value: f64,
    },
    /// `CrossEntropy` targets of one sample whose sum is not 1 within `tolerance`.
    TargetSum {
        /// The argument, e.g. `"t"`.
        arg: &'static str,
        /// The row, for a matrix argument.
        row: Option<usize>,
        /// The number of targets (L).
        len: usize,
        /// Their sum.
        sum: f64,
        /// The largest |sum − 1| accepted.
        tolerance: f64,
    },
    /// A batch (or data set) with no samples.
    EmptyBatch {
        /// The argument, e.g. `"x"`.
        arg: &'static str,
    },
    /// The loss of the current sample or batch is not finite, or the step would make a weight,
    /// a bias or an error signal overflow: the weights have diverged (the learning rate is too
    /// large, or the data too large for it). The step was not taken.
    Diverged {
        /// The loss: NaN or ±∞, or the finite loss of a step that would have overflowed (NaN
        /// from `apply_gradients`, which has no loss).
        loss: f64,
    },
    /// A saved network that cannot be read: truncated, corrupt, of another format version or
    /// element type.
    InvalidFormat {
        /// What is wrong.
        reason: String,
    },
    /// An I/O error while saving or loading.
    Io {
        /// The file.
        path: String,
        /// The operating system's message.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DimensionMismatch {
                arg,
                expected,
                found,
                because,
            } => write!(
                f,
                "`{arg}` has size {found}, but {because} requires {expected}"
            ),
            Error::BufferTooShort { arg, needed, len } => {
                write!(f, "`{arg}` has {len} elements, but the view needs {needed}")
            }
            Error::InvalidStride { cols, row_stride } => write!(
                f,
                "`row_stride` {row_stride} is smaller than `cols` {cols} (rows would overlap)"
            ),
            Error::UnsupportedLayout {
                arg,
                rows,
                cols,
                row_stride,
                col_stride,
            } => write!(
                f,
                "`{arg}` is a {rows}×{cols} view with strides ({row_stride}, {col_stride}), but a \
                 matrix view needs column stride 1 and a row stride of at least {cols} \
                 (make a standard-layout copy first)"
            ),
            Error::SizeOverflow { rows, cols } => {
                write!(f, "a {rows}×{cols} matrix overflows usize")
            }
            Error::UnsupportedActivation {
                activation,
                context,
            } => {
                write!(f, "activation {activation} is not supported in {context}")
            }
            Error::NonFinite { arg } => write!(f, "`{arg}` must be finite"),
            Error::UnsupportedSimdLevel { level } => {
                write!(f, "SIMD level `{level}` is not available on this CPU")
            }
            Error::EmptyNetwork => f.write_str("a network needs at least one layer"),
            Error::ZeroSize { what, layer } => match layer {
                Some(k) => write!(f, "{what} of layer {k} must not be zero"),
                None => write!(f, "{what} must not be zero"),
            },
            Error::LayerMismatch {
                layer,
                inputs,
                previous_outputs,
            } => write!(
                f,
                "layer {layer} has {inputs} inputs, but the layer before it gives {previous_outputs} outputs"
            ),
            Error::SoftmaxHidden { layer } => write!(
                f,
                "layer {layer} uses Softmax, which only the output layer may use"
            ),
            Error::LossActivation {
                loss,
                activation,
                needs,
            } => write!(
                f,
                "loss {loss} needs {needs}, but the output layer uses {activation}"
            ),
            Error::NonFiniteElement { arg, row, index } => match row {
                Some(r) => write!(
                    f,
                    "`{arg}` has a non-finite element (NaN or ∞) at row {r}, column {index}"
                ),
                None => write!(
                    f,
                    "`{arg}` has a non-finite element (NaN or ∞) at index {index}"
                ),
            },
            Error::InvalidLearningRate { value } => write!(
                f,
                "the learning rate `lr` must be finite and positive, but it is {value}"
            ),
            Error::NegativeTarget {
                arg,
                row,
                index,
                value,
            } => {
                write!(f, "`{arg}` has the negative target {value} at ")?;
                match row {
                    Some(r) => write!(f, "row {r}, column {index}")?,
                    None => write!(f, "index {index}")?,
                }
                f.write_str(": CrossEntropy needs targets ≥ 0")
            }
            Error::TargetSum {
                arg,
                row,
                len,
                sum,
                tolerance,
            } => {
                write!(f, "the {len} targets of `{arg}`")?;
                if let Some(r) = row {
                    write!(f, " in row {r}")?;
                }
                write!(
                    f,
                    " sum to {sum}, but CrossEntropy needs them to sum to 1 (within {tolerance:e})"
                )
            }
            Error::EmptyBatch { arg } => {
                write!(f, "`{arg}` has no rows: a batch needs at least one sample")
            }
            Error::Diverged { loss } => write!(
                f,
                "the loss is {loss}: the weights have diverged (lower the learning rate); the step was not taken"
            ),
            Error::InvalidFormat { reason } => write!(f, "not a valid saved network: {reason}"),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Err(DimensionMismatch)` unless `found == expected`.
pub(crate) fn check_len(
    arg: &'static str,
    found: usize,
    expected: usize,
    because: &'static str,
) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::DimensionMismatch {
            arg,
            expected,
            found,
            because,
        })
    }
}
