//! deltaprop: backpropagation for dense neural networks on the CPU.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod activation;
mod error;
pub mod kernels;
mod matrix;
pub mod reference;
mod scalar;
pub mod simd;

pub use activation::{Activation, LEAKY_RELU_SLOPE};
pub use error::Error;
pub use matrix::{MatMut, MatRef, Matrix, ROW_ALIGN};
pub use scalar::Scalar;
