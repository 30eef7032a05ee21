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
                "row stride {row_stride} is smaller than the {cols} columns (rows would overlap)"
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
