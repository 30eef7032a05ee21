//! Backpropagation for dense neural networks on the CPU.
//!
//! deltaprop implements the derivation of backpropagation for one pair of consecutive layers
//! and the SGD step built on it. For a layer with H inputs and L outputs, W is H × L,
//! row-major (row r holds the weights leaving input r), and
//!
//! ```text
//! n = Wᵀâ + b,   a = σ(n),   A = diag(σ'(n)),   ∂f/∂W = â δᵀ,   ∂f/∂b = δ,   δ̂ = Â W δ,
//! output layer, squared error f = ‖t − y‖²:   δ = −2 A (t − y)
//! ```
//!
//! | notation | argument | kernel |
//! |---|---|---|
//! | â (length H) | `a_prev` | |
//! | W (H × L) | `w`: [`MatRef`] / [`MatMut`] | |
//! | b, n (length L) | `b`, `n` | [`kernels::affine`]: n = Wᵀâ + b |
//! | a = σ(n), A = diag(σ'(n)) | `a`, `d` | [`kernels::activate`] |
//! | δ (length L) | `delta` | |
//! | Â, δ̂ (length H) | `d_prev`, `delta_prev` | [`kernels::backward`]: δ̂ = Â W δ |
//! | α | `alpha` | [`kernels::rank1_update`]: W ← W − α â δᵀ |
//! | | | [`kernels::backward_update`]: both, reading W once |
//!
//! Every kernel has a naive twin with the same signature in [`reference`](mod@reference), public so that
//! crates embedding these kernels can test against it.
//!
//! # SIMD dispatch
//! The kernels are compiled for AVX-512F, AVX2+FMA and a portable level, and the best one
//! the CPU supports is chosen at the first call (see [`simd::active`]); the environment
//! variable `DELTAPROP_SIMD` (`portable`, `avx2`, `avx512`) forces one. A [`kernels::KernelSet`]
//! runs the kernels on a level of your choice.
//!
//! # Determinism
//! The same seed gives the same network, bit for bit, on every run of the same SIMD level:
//! the kernels' summation order depends only on the shapes, never on addresses, timing or
//! the number of rayon threads (`tests/determinism.rs` checks it across processes and
//! levels, `tests/network_par.rs` on 1, 2, 3 and 5 threads). Across levels it does not hold:
//! the portable level of a default x86-64 build has no fused multiply-add, and AVX2 and
//! AVX-512 sum in vectors of different widths, so each level rounds differently in the last
//! bits. Pin a level with `DELTAPROP_SIMD` (or run on a [`kernels::KernelSet`]) to reproduce
//! results on another machine. [`Network::set_flush_subnormals`] changes results below the
//! smallest normal number, so keep it the same too.
//!
//! # One SGD step with the kernels
//! ```
//! use deltaprop::{kernels, Activation, Matrix};
//! // A single sigmoid layer with H = 3 inputs and L = 2 outputs, squared error.
//! let mut w = Matrix::from_row_major(3, 2, &[0.1f64, -0.2, 0.3, 0.4, -0.5, 0.6])?;
//! let mut b = vec![0.0; 2];
//! let (x, t) = ([1.0, 0.5, -1.0], [1.0, 0.0]);
//! let (mut n, mut y, mut d) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; 2]);
//!
//! kernels::affine(w.as_ref(), &x, &b, &mut n)?;                 // n = Wᵀx + b
//! kernels::activate(Activation::Sigmoid, &n, &mut y, &mut d)?;  // y = σ(n), d = σ'(n)
//! let delta: Vec<f64> = (0..2).map(|j| -2.0 * d[j] * (t[j] - y[j])).collect();
//! let alpha = 0.1;
//! kernels::rank1_update(w.as_mut(), alpha, &x, &delta)?;       // W ← W − α x δᵀ
//! b.iter_mut().zip(&delta).for_each(|(b, d)| *b -= alpha * d);  // b ← b − α δ
//!
//! // The same step by the reference gives the same weights (to rounding).
//! let mut w_ref = Matrix::from_row_major(3, 2, &[0.1f64, -0.2, 0.3, 0.4, -0.5, 0.6])?;
//! deltaprop::reference::rank1_update(w_ref.as_mut(), alpha, &x, &delta)?;
//! for (a, b) in w.to_row_major().iter().zip(w_ref.to_row_major()) {
//!     assert!((a - b).abs() < 1e-15);
//! }
//! # Ok::<(), deltaprop::Error>(())
//! ```
//!
//! # Training a network
//! [`Network`] owns the layers and the workspaces and runs that step for every layer:
//! [`Network::train_sample`] per sample, [`Network::train_batch`] per minibatch (through the
//! batched kernels), [`Network::train_epoch`] over a data set in a seeded random order, and
//! [`Network::gradient_batch`] / [`Network::apply_gradients`] for data-parallel training. No
//! step allocates.
//!
//! ```
//! use deltaprop::{Activation, EpochOptions, Loss, Matrix, Network};
//! // 2 → 8 (tanh) → 2 (softmax), cross-entropy: which of the two inputs is larger?
//! let mut net = Network::<f32>::builder(2)
//!     .layer(8, Activation::Tanh)
//!     .layer(2, Activation::Softmax)
//!     .loss(Loss::CrossEntropy)
//!     .seed(42)
//!     .build()?;
//! let xs = [0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.6, 0.1, 0.2, 0.4, 0.9, 0.5];
//! let ts = [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0];
//! let (x, t) = (Matrix::from_row_major(6, 2, &xs)?, Matrix::from_row_major(6, 2, &ts)?);
//! let loss = net.train_sample(x.row(0), t.row(0), 0.5)?;   // the loss before the step
//! assert!(loss > 0.0);
//! net.fit(x.as_ref(), t.as_ref(), 0.5, 300, &EpochOptions::default(), |_, _| {})?;
//! assert_eq!(net.evaluate(x.as_ref(), t.as_ref())?.accuracy, 1.0);
//! let y = net.predict(&[0.05, 0.95])?;                      // softmax probabilities
//! assert!(y[1] > 0.9);
//! # Ok::<(), deltaprop::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod activation;
mod error;
pub mod kernels;
mod matrix;
mod network;
pub mod reference;
mod scalar;
pub mod simd;

pub use activation::{Activation, LEAKY_RELU_SLOPE};
pub use error::Error;
pub use matrix::{MatMut, MatRef, Matrix, ROW_ALIGN};
#[cfg(feature = "serde")]
pub use network::FORMAT_VERSION;
pub use network::{
    DEFAULT_SEED, EpochOptions, Evaluation, Gradients, Init, Layer, Loss, Network, NetworkBuilder,
};
pub use scalar::Scalar;
