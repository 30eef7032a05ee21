//! The per-sample kernels: each step of the seed's SGD recursion on borrowed views,
//! allocation-free, on the best SIMD level of this CPU.
//!
//! For a layer with H inputs and L outputs, W is H × L (row r holds the weights leaving
//! input r). `a_prev`, `d_prev` and `delta_prev` have length H; `b`, `n`, `a`, `d` and
//! `delta` length L. Every kernel checks all sizes before it touches anything: a mismatch is
//! an [`Error`] and no output has been written. Zero-sized dimensions are valid no-ops
//! (H = 0 gives n = b). The scalar arguments (`alpha`, and `scale` and `beta` of the batch
//! gradient) must be finite; the data are not inspected (that would cost a pass over W):
//! NaN and ∞ in them propagate by IEEE arithmetic, as in BLAS. [`Network`](crate::Network)
//! checks its own inputs.
//!
//! The free functions run on [`simd::active()`](crate::simd::active); a [`KernelSet`] runs
//! them on a level of your choice (to compare levels in one process, or to test your code on
//! each). [`reference`](crate::reference) has naive twins with the same signatures.
//!
//! # Minibatches
//! [`batch_forward`], [`batch_backward`], [`batch_gradient`], [`batch_update`] and
//! [`apply_gradient`] run the same steps on B samples at once, one sample per row of a
//! row-major B × H (Â, D̂, Δ̂) or B × L (A, D, Δ) matrix: N = Â W + 1bᵀ, Δ̂ = (Δ Wᵀ) ⊙ D̂,
//! W ← W − (α/B) ÂᵀΔ. Each is one GEMM (this crate's own, allocation-free, with the bias,
//! σ, σ' or ⊙ D̂ applied to each register tile as it is stored) on strided views, never a
//! copy or a transpose; a batch of one runs the per-sample kernels instead. With the `rayon`
//! feature, GEMMs of at least [`PAR_MIN_FLOPS`] are split into fixed output blocks on
//! rayon's pool; every output element is computed the same way whatever its block, so the
//! bits do not depend on the number of threads.
//!
//! # Wide layers on several cores
//! [`par`] has the four per-sample kernels that read W split into fixed row or column blocks
//! on rayon's pool once W passes [`par::PAR_MIN_BYTES`]; the network layer uses them.

pub(crate) mod batch;
pub(crate) mod batch_body;
pub(crate) mod body;
pub mod par;
pub(crate) mod table;

pub use batch::{
    PAR_MIN_FLOPS, apply_gradient, batch_backward, batch_forward, batch_gradient, batch_update,
};

use crate::activation::Activation;
use crate::error::{Error, check_len};
use crate::matrix::{MatMut, MatRef};
use crate::scalar::Scalar;
use crate::simd::{self, Level};

pub(crate) fn check_affine<T: Scalar>(
    w: &MatRef<'_, T>,
    a_prev: &[T],
    b: &[T],
    n: &[T],
) -> Result<(), Error> {
    check_len("a_prev", a_prev.len(), w.rows(), "the rows of w (H)")?;
    check_len("b", b.len(), w.cols(), "the columns of w (L)")?;
    check_len("n", n.len(), w.cols(), "the columns of w (L)")
}

pub(crate) fn check_activate<T: Scalar>(
    act: Activation,
    n: &[T],
    a: &[T],
    d: &[T],
) -> Result<(), Error> {
    if !act.is_elementwise() {
        return Err(Error::UnsupportedActivation {
            activation: act.name(),
            context: "the element-wise `activate` kernel (the network applies it with its loss)",
        });
    }
    check_len("a", a.len(), n.len(), "the length of n")?;
    check_len("d", d.len(), n.len(), "the length of n")
}

pub(crate) fn check_rank1<T: Scalar>(
    h: usize,
    l: usize,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
) -> Result<(), Error> {
    if !alpha.is_finite() {
        return Err(Error::NonFinite { arg: "alpha" });
    }
    check_len("a_prev", a_prev.len(), h, "the rows of w (H)")?;
    check_len("delta", delta.len(), l, "the columns of w (L)")
}

pub(crate) fn check_backward<T: Scalar>(
    h: usize,
    l: usize,
    delta: &[T],
    d_prev: &[T],
    delta_prev: &[T],
) -> Result<(), Error> {
    check_len("delta", delta.len(), l, "the columns of w (L)")?;
    check_len("d_prev", d_prev.len(), h, "the rows of w (H)")?;
    check_len("delta_prev", delta_prev.len(), h, "the rows of w (H)")
}

/// The kernels of one SIMD level. [`KernelSet::active`] is what the free functions use.
///
/// ```
/// use deltaprop::{kernels::KernelSet, simd, Matrix};
/// let w = Matrix::from([[1.0f32, 2.0], [3.0, 4.0]]);
/// for level in simd::available() {
///     let mut n = [0.0f32; 2];
///     KernelSet::new(level)?.affine(w.as_ref(), &[1.0, 1.0], &[0.0, 0.5], &mut n)?;
///     assert_eq!(n, [4.0, 6.5], "on {level}");
/// }
/// # Ok::<(), deltaprop::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSet {
    level: Level,
}

impl KernelSet {
    /// The kernels of `level`; an error if this CPU cannot run it.
    pub fn new(level: Level) -> Result<Self, Error> {
        if level.is_supported() {
            Ok(KernelSet { level })
        } else {
            Err(Error::UnsupportedSimdLevel {
                level: level.name(),
            })
        }
    }

    /// The kernels of [`simd::active()`].
    #[inline]
    pub fn active() -> Self {
        KernelSet {
            level: simd::active(),
        }
    }

    /// The level these kernels run on.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Σ |v_i| in T (see `body::sum_abs`): the network's input checks and step bounds.
    #[inline]
    pub(crate) fn sum_abs<T: Scalar>(&self, v: &[T]) -> T {
        let t = table::get::<T>(self.level);
        // SAFETY: the slice is valid for its length; the level is supported (`new`).
        unsafe { (t.sum_abs)(v.as_ptr(), v.len()) }
    }

    /// Softmax of `z` in place, and with targets `t` the cross-entropy −Σ tⱼ ln yⱼ (else
    /// zero); see `body::softmax`. `z` empty gives zero; `t` must be as long as `z`.
    #[inline]
    pub(crate) fn softmax<T: Scalar>(&self, z: &mut [T], t: Option<&[T]>) -> T {
        if z.is_empty() {
            return T::ZERO;
        }
        let tp = match t {
            Some(t) => {
                assert_eq!(
                    t.len(),
                    z.len(),
                    "softmax: targets and outputs differ in length"
                );
                t.as_ptr()
            }
            None => std::ptr::null(),
        };
        let table = table::get::<T>(self.level);
        // SAFETY: `z` is valid for its non-zero length, `t` null or as long; the level is
        // supported (`new`).
        unsafe { (table.softmax)(z.as_mut_ptr(), tp, z.len()) }
    }

    /// n = Wᵀ â + b. See [`affine`].
    pub fn affine<T: Scalar>(
        &self,
        w: MatRef<'_, T>,
        a_prev: &[T],
        b: &[T],
        n: &mut [T],
    ) -> Result<(), Error> {
        check_affine(&w, a_prev, b, n)?;
        let t = table::get::<T>(self.level);
        // SAFETY: the checks above make every length match the contract of `body.rs`; the
        // view's span covers rows × cols at its stride; the level is supported (`new`).
        unsafe {
            (t.affine)(
                w.as_ptr(),
                w.rows(),
                w.cols(),
                w.row_stride(),
                a_prev.as_ptr(),
                b.as_ptr(),
                n.as_mut_ptr(),
            )
        };
        Ok(())
    }

    /// a = σ(n), d = σ'(n). See [`activate`].
    pub fn activate<T: Scalar>(
        &self,
        act: Activation,
        n: &[T],
        a: &mut [T],
        d: &mut [T],
    ) -> Result<(), Error> {
        check_activate(act, n, a, d)?;
        let t = table::get::<T>(self.level);
        // SAFETY: all three slices have length n.len(); `&mut` makes them disjoint.
        unsafe { (t.activate)(act, n.as_ptr(), a.as_mut_ptr(), d.as_mut_ptr(), n.len()) };
        Ok(())
    }

    /// W ← W − α â δᵀ. See [`rank1_update`].
    pub fn rank1_update<T: Scalar>(
        &self,
        mut w: MatMut<'_, T>,
        alpha: T,
        a_prev: &[T],
        delta: &[T],
    ) -> Result<(), Error> {
        let (h, l, rs) = (w.rows(), w.cols(), w.row_stride());
        check_rank1(h, l, alpha, a_prev, delta)?;
        let t = table::get::<T>(self.level);
        // SAFETY: as in `affine`; `w` is borrowed mutably, so no input aliases it.
        unsafe {
            (t.rank1_update)(
                w.as_mut_ptr(),
                h,
                l,
                rs,
                alpha,
                a_prev.as_ptr(),
                delta.as_ptr(),
            )
        };
        Ok(())
    }

    /// δ̂ = Â W δ. See [`backward`].
    pub fn backward<T: Scalar>(
        &self,
        w: MatRef<'_, T>,
        delta: &[T],
        d_prev: &[T],
        delta_prev: &mut [T],
    ) -> Result<(), Error> {
        check_backward(w.rows(), w.cols(), delta, d_prev, delta_prev)?;
        let t = table::get::<T>(self.level);
        // SAFETY: as in `affine`.
        unsafe {
            (t.backward)(
                w.as_ptr(),
                w.rows(),
                w.cols(),
                w.row_stride(),
                delta.as_ptr(),
                d_prev.as_ptr(),
                delta_prev.as_mut_ptr(),
            )
        };
        Ok(())
    }

    /// δ̂ = Â W δ and W ← W − α â δᵀ in one pass. See [`backward_update`].
    pub fn backward_update<T: Scalar>(
        &self,
        mut w: MatMut<'_, T>,
        alpha: T,
        a_prev: &[T],
        delta: &[T],
        d_prev: &[T],
        delta_prev: &mut [T],
    ) -> Result<(), Error> {
        let (h, l, rs) = (w.rows(), w.cols(), w.row_stride());
        check_rank1(h, l, alpha, a_prev, delta)?;
        check_backward(h, l, delta, d_prev, delta_prev)?;
        let t = table::get::<T>(self.level);
        // SAFETY: as in `rank1_update` and `backward`.
        unsafe {
            (t.backward_update)(
                w.as_mut_ptr(),
                h,
                l,
                rs,
                alpha,
                a_prev.as_ptr(),
                delta.as_ptr(),
                d_prev.as_ptr(),
                delta_prev.as_mut_ptr(),
            )
        };
        Ok(())
    }
}

/// Forward affine map of one layer: n = Wᵀ â + b, i.e. n_c = Σ_r W_rc â_r + b_c.
///
/// `w` is H × L, `a_prev` has length H, `b` and `n` length L. `n` is only written. H = 0 is
/// valid and gives n = b; L = 0 does nothing.
///
/// ```
/// use deltaprop::{kernels, Matrix};
/// // H = 2 inputs, L = 3 outputs.
/// let w = Matrix::from_row_major(2, 3, &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// let mut n = [0.0f32; 3];
/// kernels::affine(w.as_ref(), &[1.0, -1.0], &[0.5, 0.5, 0.5], &mut n)?;
/// assert_eq!(n, [-2.5, -2.5, -2.5]);
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub fn affine<T: Scalar>(
    w: MatRef<'_, T>,
    a_prev: &[T],
    b: &[T],
    n: &mut [T],
) -> Result<(), Error> {
    KernelSet::active().affine(w, a_prev, b, n)
}

/// Activation and its derivative in one pass: a = σ(n) and d = σ'(n), the diagonal of A.
///
/// `n`, `a` and `d` have equal lengths (zero is valid and does nothing); `a` and `d` are
/// only written. `Softmax` is an error (it is not element-wise). NaN in n gives NaN in a
/// and d.
///
/// ```
/// use deltaprop::{kernels, Activation};
/// let (mut a, mut d) = ([0.0f64; 2], [0.0f64; 2]);
/// kernels::activate(Activation::Sigmoid, &[0.0, -1000.0], &mut a, &mut d)?;
/// assert_eq!(a, [0.5, 0.0]);
/// assert_eq!(d, [0.25, 0.0]);
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub fn activate<T: Scalar>(
    act: Activation,
    n: &[T],
    a: &mut [T],
    d: &mut [T],
) -> Result<(), Error> {
    KernelSet::active().activate(act, n, a, d)
}

/// The SGD step of one layer's weights: W ← W − α â δᵀ (∂f/∂W = â δᵀ).
///
/// Each element becomes W_rc − (α â_r) δ_c with a single rounding (FMA). `alpha` must be
/// finite. H = 0 or L = 0 is valid and changes nothing.
///
/// ```
/// use deltaprop::{kernels, Matrix};
/// let mut w = Matrix::from([[1.0f32, 1.0], [1.0, 1.0], [1.0, 1.0]]); // H = 3, L = 2
/// kernels::rank1_update(w.as_mut(), 0.5, &[1.0, 0.0, 2.0], &[1.0, -1.0])?;
/// assert_eq!(w, Matrix::from([[0.5, 1.5], [1.0, 1.0], [0.0, 2.0]]));
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub fn rank1_update<T: Scalar>(
    w: MatMut<'_, T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
) -> Result<(), Error> {
    KernelSet::active().rank1_update(w, alpha, a_prev, delta)
}

/// Backward recursion: δ̂ = Â W δ, i.e. δ̂_r = σ̂'(n̂_r) Σ_c W_rc δ_c.
///
/// `delta` has length L; `d_prev` (σ̂' of the layer below) and `delta_prev` length H.
/// `delta_prev` is only written. L = 0 is valid and gives δ̂ = 0 ⊙ σ̂' (zeros for finite
/// σ̂'); H = 0 does nothing.
///
/// ```
/// use deltaprop::{kernels, Matrix};
/// let w = Matrix::from([[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]]); // H = 3, L = 2
/// let mut delta_prev = [0.0; 3];
/// kernels::backward(w.as_ref(), &[1.0, -1.0], &[1.0, 0.5, 0.0], &mut delta_prev)?;
/// assert_eq!(delta_prev, [-1.0, -0.5, 0.0]); // (W δ) ⊙ d̂
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub fn backward<T: Scalar>(
    w: MatRef<'_, T>,
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    KernelSet::active().backward(w, delta, d_prev, delta_prev)
}

/// [`backward`] and [`rank1_update`] fused: one pass over W that reads each element once,
/// uses its old value for δ̂ = Â W δ and writes W − α â δᵀ.
///
/// Gives bit for bit the δ̂ of [`backward`] on the old W and the W of [`rank1_update`]
/// (on the same SIMD level), at about half their combined memory traffic. Zero-sized
/// dimensions are valid, as for those two.
///
/// ```
/// use deltaprop::{kernels, Matrix};
/// let (x, delta, d_prev) = ([1.0f32, -2.0, 0.5], [0.25, -0.5], [1.0, 0.5, 2.0]);
/// let mut w = Matrix::from([[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
/// let mut fused = [0.0; 3];
/// kernels::backward_update(w.as_mut(), 0.1, &x, &delta, &d_prev, &mut fused)?;
///
/// let mut w2 = Matrix::from([[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]);
/// let mut separate = [0.0; 3];
/// kernels::backward(w2.as_ref(), &delta, &d_prev, &mut separate)?; // from the old W
/// kernels::rank1_update(w2.as_mut(), 0.1, &x, &delta)?;
/// assert_eq!((fused, w), (separate, w2));
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub fn backward_update<T: Scalar>(
    w: MatMut<'_, T>,
    alpha: T,
    a_prev: &[T],
    delta: &[T],
    d_prev: &[T],
    delta_prev: &mut [T],
) -> Result<(), Error> {
    KernelSet::active().backward_update(w, alpha, a_prev, delta, d_prev, delta_prev)
}

#[cfg(test)]
mod tests;
