//! Conversions between this crate's matrices and `ndarray`'s two-dimensional arrays (feature
//! `ndarray`).
//!
//! | from | to | cost |
//! |---|---|---|
//! | `ArrayView2<'a, T>` | [`MatRef<'a, T>`](MatRef) (`TryFrom`) | zero-copy; `Err` unless rows are contiguous |
//! | `ArrayViewMut2<'a, T>` | [`MatMut<'a, T>`](MatMut) (`TryFrom`) | zero-copy; `Err` unless rows are contiguous |
//! | [`MatRef<'a, T>`](MatRef), `&'a Matrix<T>` | `ArrayView2<'a, T>` (`From`) | zero-copy |
//! | [`MatMut<'a, T>`](MatMut), `&'a mut Matrix<T>` | `ArrayViewMut2<'a, T>` (`From`) | zero-copy |
//! | `ArrayView2<'_, T>` | [`Matrix<T>`](Matrix) (`From`) | a copy, from any layout |
//!
//! A view converts without a copy when its rows are contiguous: column stride 1, a row stride
//! of at least the number of columns, and no negative stride. That is every standard-layout
//! (C-order) array and any slice of one by rows or by a contiguous range of columns
//! (`a.slice(s![.., 2..5])`). A transposed (Fortran-order) view, a column step
//! (`s![.., ..;2]`), a reversed axis or a broadcast row is an [`Error::UnsupportedLayout`];
//! `Matrix::from(view)` (a copy) or `view.as_standard_layout()` takes any layout.
//!
//! In a length-1 axis the stride is never used, so it is not checked, and an empty view (no
//! rows or no columns) always converts.

use std::ptr::NonNull;

use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};

use crate::error::Error;
use crate::matrix::{MatMut, MatRef, Matrix};
use crate::scalar::Scalar;

/// The argument named by a layout error from a conversion.
const ARG: &str = "array";

/// The row stride of a `rows × cols` view with `strides` (in elements) if its rows are
/// contiguous, as the kernels need; an error naming the shape and strides otherwise. An empty
/// view gets stride `cols`.
fn row_stride(shape: &[usize], strides: &[isize]) -> Result<usize, Error> {
    let (rows, cols) = (shape[0], shape[1]);
    let (rs, cs) = (strides[0], strides[1]);
    let err = || Error::UnsupportedLayout {
        arg: ARG,
        rows,
        cols,
        row_stride: rs,
        col_stride: cs,
    };
    if rows == 0 || cols == 0 {
        return Ok(cols);
    }
    if cols > 1 && cs != 1 {
        return Err(err());
    }
    if rows == 1 {
        return Ok(cols);
    }
    match usize::try_from(rs) {
        Ok(rs) if rs >= cols => Ok(rs),
        _ => Err(err()),
    }
}

/// A zero-copy view of `a` if its rows are contiguous (column stride 1, row stride ≥ cols,
/// no negative stride); [`Error::UnsupportedLayout`] otherwise.
///
/// ```
/// use deltaprop::MatRef;
/// use ndarray::{array, s};
/// let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
/// let w = MatRef::try_from(a.slice(s![.., 1..]))?; // 2 × 2, row stride 3, no copy
/// assert_eq!((w.row_stride(), w.to_row_major()), (3, vec![2.0, 3.0, 5.0, 6.0]));
/// assert!(MatRef::try_from(a.t()).is_err()); // columns are not contiguous
/// # Ok::<(), deltaprop::Error>(())
/// ```
impl<'a, T: Scalar> TryFrom<ArrayView2<'a, T>> for MatRef<'a, T> {
    type Error = Error;

    fn try_from(a: ArrayView2<'a, T>) -> Result<Self, Error> {
        let stride = row_stride(a.shape(), a.strides())?;
        let (rows, cols) = a.dim();
        if rows == 0 || cols == 0 {
            return MatRef::from_slice(&[], rows, cols, stride);
        }
        let ptr = NonNull::new(a.as_ptr().cast_mut()).expect("ndarray views are non-null");
        // SAFETY: element (r, c) of the view is at ptr + r·stride + c (column stride 1, row
        // stride `stride` ≥ cols, checked above); those are the elements `a` borrows for 'a,
        // shared, and they lie in one allocation, so the offsets fit in isize.
        Ok(unsafe { MatRef::from_raw_parts(ptr, rows, cols, stride) })
    }
}

/// A zero-copy mutable view of `a` if its rows are contiguous; [`Error::UnsupportedLayout`]
/// otherwise (as for [`MatRef`]).
///
/// ```
/// use deltaprop::{kernels, MatMut};
/// use ndarray::{array, s};
/// let mut w = array![[1.0f64, 1.0, 0.0], [1.0, 1.0, 0.0]];
/// // W ← W − α â δᵀ on the first two columns, in place.
/// kernels::rank1_update(MatMut::try_from(w.slice_mut(s![.., ..2]))?, 1.0, &[1.0, 2.0], &[0.5, 0.0])?;
/// assert_eq!(w, array![[0.5, 1.0, 0.0], [0.0, 1.0, 0.0]]);
/// # Ok::<(), deltaprop::Error>(())
/// ```
impl<'a, T: Scalar> TryFrom<ArrayViewMut2<'a, T>> for MatMut<'a, T> {
    type Error = Error;

    fn try_from(mut a: ArrayViewMut2<'a, T>) -> Result<Self, Error> {
        let stride = row_stride(a.shape(), a.strides())?;
        let (rows, cols) = a.dim();
        if rows == 0 || cols == 0 {
            return MatMut::from_slice(&mut [], rows, cols, stride);
        }
        let ptr = NonNull::new(a.as_mut_ptr()).expect("ndarray views are non-null");
        // SAFETY: as for `MatRef`; `a` borrows these elements exclusively for 'a and is
        // consumed here, so the new view is their only accessor.
        Ok(unsafe { MatMut::from_raw_parts(ptr, rows, cols, stride) })
    }
}

/// The same elements as an `ndarray` view: shape (rows, cols), strides (row stride, 1).
impl<'a, T: Scalar> From<MatRef<'a, T>> for ArrayView2<'a, T> {
    fn from(m: MatRef<'a, T>) -> Self {
        let (rows, cols, rs) = (m.rows(), m.cols(), m.row_stride());
        if rows == 0 || cols == 0 {
            return ArrayView2::from_shape((rows, cols), &[]).expect("an empty shape fits");
        }
        // SAFETY: the view's elements, at ptr + r·rs + c, are readable and unwritten for 'a
        // (the `MatRef` invariant), lie in the one allocation it was made from (so every
        // offset fits in isize), and the strides are non-negative.
        unsafe { ArrayView2::from_shape_ptr((rows, cols).strides((rs, 1)), m.as_ptr()) }
    }
}

/// The same elements as a mutable `ndarray` view: shape (rows, cols), strides (row stride, 1).
impl<'a, T: Scalar> From<MatMut<'a, T>> for ArrayViewMut2<'a, T> {
    fn from(mut m: MatMut<'a, T>) -> Self {
        let (rows, cols, rs) = (m.rows(), m.cols(), m.row_stride());
        if rows == 0 || cols == 0 {
            return ArrayViewMut2::from_shape((rows, cols), &mut []).expect("an empty shape fits");
        }
        // SAFETY: as above, and `m`, consumed here, was the elements' only accessor for 'a.
        unsafe { ArrayViewMut2::from_shape_ptr((rows, cols).strides((rs, 1)), m.as_mut_ptr()) }
    }
}

/// The matrix as an `ndarray` view (its padded row stride included).
impl<'a, T: Scalar> From<&'a Matrix<T>> for ArrayView2<'a, T> {
    fn from(m: &'a Matrix<T>) -> Self {
        m.as_ref().into()
    }
}

/// The matrix as a mutable `ndarray` view (its padded row stride included).
impl<'a, T: Scalar> From<&'a mut Matrix<T>> for ArrayViewMut2<'a, T> {
    fn from(m: &'a mut Matrix<T>) -> Self {
        m.as_mut().into()
    }
}

/// A copy of `a`, from any layout, into padded, aligned rows.
impl<T: Scalar> From<ArrayView2<'_, T>> for Matrix<T> {
    fn from(a: ArrayView2<'_, T>) -> Self {
        Matrix::from_fn(a.nrows(), a.ncols(), |r, c| a[[r, c]])
    }
}
