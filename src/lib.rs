//! Backpropagation for dense neural networks on the CPU.
//!
//! deltaprop implements the derivation of backpropagation for one pair of consecutive layers
//! and the SGD step built on it, as SIMD kernels on borrowed views
//! ([`kernels`]), a naive twin of each ([`reference`](mod@reference)), and a [`Network`] that
//! owns its layers and runs those kernels for you. For a layer with H inputs and L outputs, W
//! is H × L, row-major (row r holds the weights leaving input r), and
//!
//! ```text
//! n = Wᵀâ + b,   a = σ(n),   A = diag(σ'(n)),   ∂f/∂W = â δᵀ,   ∂f/∂b = δ,   δ̂ = Â W δ,
//! output layer, squared error f = ‖t − y‖²:   δ = −2 A (t − y)
//! ```
//!
//! | notation | argument | kernel |
//! |---|---|---|
//! | â (length H) | `a_prev` (the input x for the first layer) | |
//! | W (H × L) | `w`: [`MatRef`] / [`MatMut`] | |
//! | b, n (length L) | `b`, `n` | [`kernels::affine`]: n = Wᵀâ + b |
//! | σ | `act`: [`Activation`] | |
//! | a = σ(n), A = diag(σ'(n)) | `a`, `d` (A is kept as its diagonal) | [`kernels::activate`] |
//! | δ = ∂f/∂n (length L) | `delta` | |
//! | Â, δ̂ (length H) | `d_prev`, `delta_prev` | [`kernels::backward`]: δ̂ = Â W δ |
//! | α | `alpha` (`lr` in [`Network`]) | [`kernels::rank1_update`]: W ← W − α â δᵀ |
//! | | | [`kernels::backward_update`]: both, reading W once |
//!
//! Every kernel has a naive twin with the same signature in [`reference`](mod@reference),
//! public so that crates embedding these kernels can test against it.
//!
//! # Conventions
//! - **W is inputs × outputs, row-major**, never transposed behind your back: `w.rows()` is H
//!   and `w.cols()` is L. A view may have a row stride larger than L (a window into a wider
//!   array) and any alignment; a [`Matrix`] pads its rows to 64 bytes.
//! - **Squared error is a sum**, not a mean and without a ½: ψ = ‖t − y‖² = Σⱼ (tⱼ − yⱼ)², so
//!   δ = −2 A (t − y). Cross-entropy is ψ = −Σⱼ tⱼ ln yⱼ with a softmax output (δ = y − t).
//!   A minibatch's loss is the mean of its samples' losses, and its step uses the mean of
//!   their gradients. See [`Loss`].
//! - **Checked, then written.** Every size is checked before anything is written: a mismatch
//!   is an [`Error`] naming the argument and the sizes, and the outputs are untouched. Outputs
//!   (`n`, `a`, `d`, `delta_prev`) are only written, never read. Zero-sized dimensions are
//!   valid no-ops. Nothing here panics on bad input, except indexing a row or element out of
//!   range (`row`, `get`), as slices do, and [`Matrix::zeros`] of a size that overflows
//!   `usize`, as `vec!` does.
//! - **No allocation, no hidden threads** in a kernel call or a training step (see
//!   *Threads* below for the one exception, the `rayon` feature on large layers).
//!
//! # SIMD dispatch
//! The kernels are compiled for AVX-512F, AVX2+FMA and a portable level (SSE2 on a default
//! x86-64 build, NEON on aarch64), and the best one the CPU supports is chosen at the first
//! call and cached for the life of the process (see [`simd::active`]); no `RUSTFLAGS` or
//! `target-cpu` is needed. The environment variable `DELTAPROP_SIMD` (`portable`, `avx2`,
//! `avx512`) forces one; a level this CPU lacks, or an unknown name, is reported on stderr and
//! the best available level is used. A [`kernels::KernelSet`] runs the kernels on a level of
//! your choice, e.g. to test your code on each of [`simd::available`].
//!
//! # Threads and determinism
//! - Every kernel's summation order is a fixed function of the shape and the SIMD level, so
//!   the same inputs give the same bits on every run (`tests/determinism.rs` checks it across
//!   processes, `tests/network_par.rs` on 1, 2, 3 and 5 threads). Across levels it does not
//!   hold: the portable level of a default x86-64 build has no fused multiply-add, and AVX2
//!   and AVX-512 sum in vectors of different widths, so each level rounds differently in the
//!   last bits. Pin a level with `DELTAPROP_SIMD` (or run on a [`kernels::KernelSet`]) to
//!   reproduce results on another machine. [`Network::set_flush_subnormals`] changes results
//!   below the smallest normal number, so keep it the same too.
//! - With the `rayon` feature (default), the minibatch GEMMs of at least
//!   [`kernels::PAR_MIN_FLOPS`] and a [`Network`]'s per-sample steps on layers whose W takes
//!   at least 2 MiB are split into fixed blocks on the current rayon pool; smaller work stays
//!   on the calling thread. The blocks depend on the shape only and no element's value
//!   depends on its block, so results are the same, bit for bit, on any number of threads and
//!   without the feature. Run inside `rayon::ThreadPool::install` to choose the threads.
//!   [`kernels::par`] offers the same split per-sample kernels for wide layers of your own.
//! - The kernels themselves never spawn: call them from your own threads on disjoint views.
//!   Every public type is `Send` and `Sync`, so a trained [`Network`] can be shared and
//!   [`Network::predict`] called from several threads at once; training needs `&mut`.
//! - A [`Network`] built with the same [`seed`](NetworkBuilder::seed) starts from the same
//!   weights on every platform, and [`Network::train_epoch`] visits samples in a seeded order.
//!
//! # Feature flags
//! | feature | default | what it adds |
//! |---|---|---|
//! | `rayon` | yes | large layers and minibatch GEMMs split over rayon's pool (above) |
//! | `serde` | no | `Network::save` / `Network::load` (and `to_json` / `from_json`) in a versioned JSON format, `FORMAT_VERSION` |
//! | `ndarray` | no | zero-copy [`MatRef`] / [`MatMut`] from `ArrayView2` / `ArrayViewMut2` (`TryFrom`; an [`Error::UnsupportedLayout`] unless the rows are contiguous) and views back (`From`) |
//! | `bench-peers` | no | builds `benches/peers.rs` against OpenBLAS (from the system) and faer; nothing in the library |
//!
//! # Conversions
//! | from | to | how | copies? |
//! |---|---|---|---|
//! | `&[T]` / `&mut [T]` + rows, cols, row stride | [`MatRef`] / [`MatMut`] | [`MatRef::from_slice`], [`MatMut::from_slice`] | no |
//! | `&Matrix` / `&mut Matrix` | [`MatRef`] / [`MatMut`] | [`Matrix::as_ref`], [`Matrix::as_mut`], `From` | no |
//! | [`MatMut`] | [`MatRef`] | [`MatMut::into_ref`], [`MatMut::as_ref`], `From` | no |
//! | `&[T]`, `Vec<T>` (row-major) | [`Matrix`] | [`Matrix::from_row_major`], [`Matrix::from_vec`] | yes |
//! | rows (`&[Vec<T>]`, `&[[T; C]]`, …), `[[T; C]; R]`, a function | [`Matrix`] | [`Matrix::from_rows`], `From`, [`Matrix::from_fn`] | yes |
//! | [`MatRef`] / [`MatMut`] | [`Matrix`] | `Matrix::from(view)`, [`MatRef::to_matrix`], [`MatMut::to_matrix`] | yes |
//! | [`Matrix`], [`MatRef`], [`MatMut`] | `Vec<T>` (row-major) | `to_row_major`, `Vec::from(matrix)` | yes |
//! | `ndarray::ArrayView2` / `ArrayViewMut2` | [`MatRef`] / [`MatMut`] | `TryFrom` (feature `ndarray`): an [`Error::UnsupportedLayout`] unless column stride 1, row stride ≥ cols, no negative stride | no |
//! | [`MatRef`] / [`MatMut`], `&Matrix` / `&mut Matrix` | `ArrayView2` / `ArrayViewMut2` | `From` (feature `ndarray`) | no |
//! | `ArrayView2` of any layout | [`Matrix`] | `From` (feature `ndarray`) | yes |
//!
//! # Kernels on your own storage
//! A view borrows any slice, at any row stride: no copy, no `Matrix` needed.
//! ```
//! use deltaprop::{kernels, MatMut, MatRef};
//! // W (H = 2, L = 3) lives in a buffer of yours, rows 4 apart; its last column is unused.
//! let mut storage = vec![1.0f32, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0, 0.0];
//! let mut n = [0.0f32; 3];
//! kernels::affine(MatRef::from_slice(&storage, 2, 3, 4)?, &[1.0, 0.5], &[0.0; 3], &mut n)?;
//! assert_eq!(n, [3.0, 4.5, 6.0]);
//! // Sizes that disagree are an error, and nothing is written.
//! let err = kernels::affine(MatRef::from_slice(&storage, 2, 3, 4)?, &[1.0], &[0.0; 3], &mut n);
//! assert_eq!(err.unwrap_err().to_string(), "`a_prev` has size 1, but the rows of w (H) requires 2");
//! // An update in place through a mutable view.
//! let w = MatMut::from_slice(&mut storage, 2, 3, 4)?;
//! kernels::rank1_update(w, 1.0, &[1.0, 0.0], &[1.0, 1.0, 1.0])?;
//! assert_eq!(storage, [0.0, 1.0, 2.0, 0.0, 4.0, 5.0, 6.0, 0.0]);
//! # Ok::<(), deltaprop::Error>(())
//! ```
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
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod activation;
mod error;
#[cfg(feature = "ndarray")]
mod interop;
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

/// The code blocks of README.md, run as doctests by `cargo test`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
