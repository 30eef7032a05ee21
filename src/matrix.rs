//! Row-major matrices: the owned, padded [`Matrix`] and the borrowed views [`MatRef`] and
//! [`MatMut`] over any caller slice.
//!
//! A view is `rows × cols` elements whose row `r` starts at `data[r · row_stride]`. The
//! stride may exceed `cols` (a window into a larger matrix) and the slice may start at any
//! address; the kernels handle both. [`Matrix`] pads its stride so that every row starts on a
//! 64-byte boundary, which lets the kernels stream whole cache lines.
//!
//! A view holds a pointer, not a slice: it borrows its `rows × cols` elements and nothing
//! else. The elements between its rows (when `row_stride > cols`) may belong to someone else
//! (the other half of an `ndarray` view split by columns, say), so no reference to them is
//! ever formed, and the kernels neither read nor write them.

use std::marker::PhantomData;
use std::ptr::NonNull;

use aligned_vec::{AVec, ConstAlign};

use crate::error::Error;
use crate::scalar::Scalar;

/// Alignment, in bytes, of every row of a [`Matrix`].
pub const ROW_ALIGN: usize = 64;

/// Elements a view over `rows × cols` with `row_stride` spans: `(rows − 1) · row_stride + cols`.
fn span(rows: usize, cols: usize, row_stride: usize) -> Option<usize> {
    if rows == 0 {
        Some(0)
    } else {
        (rows - 1).checked_mul(row_stride)?.checked_add(cols)
    }
}

fn check_view(len: usize, rows: usize, cols: usize, row_stride: usize) -> Result<usize, Error> {
    if row_stride < cols {
        return Err(Error::InvalidStride { cols, row_stride });
    }
    let needed = span(rows, cols, row_stride).ok_or(Error::SizeOverflow { rows, cols })?;
    if len < needed {
        return Err(Error::BufferTooShort {
            arg: "data",
            needed,
            len,
        });
    }
    Ok(needed)
}

/// An owned, row-major matrix whose rows each start on a 64-byte boundary.
///
/// The row stride is `cols` rounded up to a multiple of 64 bytes; the padding is kept at zero
/// and is never part of the matrix's value (`==` compares shapes and elements only).
///
/// ```
/// use deltaprop::{MatRef, Matrix};
/// let m = Matrix::from([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]); // 2 × 3
/// assert_eq!(m, Matrix::from_rows(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])?);
/// assert_eq!(m, Matrix::from_vec(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?);
/// assert_eq!(m.row(1), [4.0, 5.0, 6.0]);
/// assert_eq!(m.to_row_major(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
///
/// // A view over a caller's slice, and an owned copy of it.
/// let data = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let v = MatRef::from_slice(&data, 2, 3, 3)?;
/// assert_eq!(Matrix::from(v), m);
/// # Ok::<(), deltaprop::Error>(())
/// ```
#[derive(Clone)]
pub struct Matrix<T: Scalar> {
    data: AVec<T, ConstAlign<ROW_ALIGN>>,
    rows: usize,
    cols: usize,
    stride: usize,
}

impl<T: Scalar> Matrix<T> {
    fn padded_stride(cols: usize) -> Option<usize> {
        let per_line = ROW_ALIGN / std::mem::size_of::<T>();
        cols.div_ceil(per_line).checked_mul(per_line)
    }

    /// A `rows × cols` matrix of zeros. Zero rows or columns are valid (an empty matrix).
    ///
    /// # Panics
    /// If the padded matrix would take more than `isize::MAX` bytes, or the allocation fails,
    /// as `Vec` does.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self::try_zeros(rows, cols).expect("matrix size overflows usize")
    }

    /// [`zeros`](Self::zeros), or `Err(SizeOverflow)` if the padded matrix would take more
    /// than `isize::MAX` bytes.
    fn try_zeros(rows: usize, cols: usize) -> Result<Self, Error> {
        let size = Self::padded_stride(cols).and_then(|stride| {
            let len = rows.checked_mul(stride)?;
            let bytes = len.checked_mul(std::mem::size_of::<T>())?;
            (bytes <= isize::MAX as usize).then_some((stride, len))
        });
        let (stride, len) = size.ok_or(Error::SizeOverflow { rows, cols })?;
        let mut data = AVec::with_capacity(ROW_ALIGN, len);
        data.resize(len, T::ZERO);
        Ok(Matrix {
            data,
            rows,
            cols,
            stride,
        })
    }

    /// A copy of `data`, read as `rows × cols` row-major with no padding.
    ///
    /// Errors if `data.len() != rows · cols` (or that product overflows). Zero rows or
    /// columns are valid: an empty matrix from an empty slice.
    pub fn from_row_major(rows: usize, cols: usize, data: &[T]) -> Result<Self, Error> {
        let n = rows
            .checked_mul(cols)
            .ok_or(Error::SizeOverflow { rows, cols })?;
        crate::error::check_len("data", data.len(), n, "rows × cols")?;
        let mut m = Matrix::try_zeros(rows, cols)?;
        if cols > 0 {
            for (dst, src) in m
                .data
                .chunks_exact_mut(m.stride)
                .zip(data.chunks_exact(cols))
            {
                dst[..cols].copy_from_slice(src);
            }
        }
        Ok(m)
    }

    /// `data`, read as `rows × cols` row-major with no padding: [`from_row_major`] for an
    /// owned vector. The elements are copied into padded, aligned rows (a `Vec` has neither).
    ///
    /// Errors if `data.len() != rows · cols`.
    ///
    /// [`from_row_major`]: Self::from_row_major
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Result<Self, Error> {
        Self::from_row_major(rows, cols, &data)
    }

    /// A matrix with one row per item of `rows`, each of the same length (the columns).
    /// No rows give a 0 × 0 matrix.
    ///
    /// Errors if the rows differ in length.
    ///
    /// ```
    /// use deltaprop::Matrix;
    /// let rows: Vec<Vec<f64>> = vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]];
    /// let m = Matrix::from_rows(&rows)?;
    /// assert_eq!((m.rows(), m.cols(), m.get(2, 0)), (3, 2, 5.0));
    /// assert!(Matrix::from_rows(&[vec![1.0f64, 2.0], vec![3.0]]).is_err());
    /// # Ok::<(), deltaprop::Error>(())
    /// ```
    pub fn from_rows<R: AsRef<[T]>>(rows: &[R]) -> Result<Self, Error> {
        let cols = rows.first().map_or(0, |r| r.as_ref().len());
        for r in rows {
            crate::error::check_len("rows", r.as_ref().len(), cols, "the length of row 0")?;
        }
        let mut m = Matrix::zeros(rows.len(), cols);
        for (i, r) in rows.iter().enumerate() {
            m.row_mut(i).copy_from_slice(r.as_ref());
        }
        Ok(m)
    }

    /// A `rows × cols` matrix with element `(r, c)` equal to `f(r, c)`, filled row by row.
    ///
    /// # Panics
    /// As [`zeros`](Self::zeros).
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut m = Matrix::zeros(rows, cols);
        for r in 0..rows {
            for (c, x) in m.row_mut(r).iter_mut().enumerate() {
                *x = f(r, c);
            }
        }
        m
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Elements between the starts of consecutive rows (`cols` padded to 64 bytes).
    pub fn row_stride(&self) -> usize {
        self.stride
    }

    /// Row `r`, `cols` elements.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[T] {
        assert!(r < self.rows, "row {r} out of range for {} rows", self.rows);
        &self.data[r * self.stride..r * self.stride + self.cols]
    }

    /// Row `r`, mutable.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row_mut(&mut self, r: usize) -> &mut [T] {
        assert!(r < self.rows, "row {r} out of range for {} rows", self.rows);
        &mut self.data[r * self.stride..r * self.stride + self.cols]
    }

    /// Element `(r, c)`.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols`.
    pub fn get(&self, r: usize, c: usize) -> T {
        self.row(r)[c]
    }

    /// A borrowed view of the whole matrix.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        let len = span(self.rows, self.cols, self.stride).unwrap_or(0);
        MatRef::from_checked(&self.data[..len], self.rows, self.cols, self.stride)
    }

    /// A mutable view of the whole matrix.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        let len = span(self.rows, self.cols, self.stride).unwrap_or(0);
        let (rows, cols, stride) = (self.rows, self.cols, self.stride);
        MatMut::from_checked(&mut self.data[..len], rows, cols, stride)
    }

    /// The elements in row-major order without padding (`rows · cols` of them).
    pub fn to_row_major(&self) -> Vec<T> {
        self.as_ref().to_row_major()
    }
}

impl<T: Scalar> std::fmt::Debug for Matrix<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt_rows(f, "Matrix", self.rows, self.cols, |r| self.row(r))
    }
}

impl<T: Scalar> PartialEq for Matrix<T> {
    /// Same shape and the same elements (the padding is not compared; NaN ≠ NaN).
    fn eq(&self, other: &Self) -> bool {
        self.as_ref() == other.as_ref()
    }
}

/// `[[a, b, c], [d, e, f]]` is the 2 × 3 matrix with those rows.
impl<T: Scalar, const R: usize, const C: usize> From<[[T; C]; R]> for Matrix<T> {
    fn from(rows: [[T; C]; R]) -> Self {
        let mut m = Matrix::zeros(R, C);
        for (r, row) in rows.iter().enumerate() {
            m.row_mut(r).copy_from_slice(row);
        }
        m
    }
}

/// An owned copy of the view's elements, in padded, aligned rows.
impl<T: Scalar> From<MatRef<'_, T>> for Matrix<T> {
    fn from(v: MatRef<'_, T>) -> Self {
        let mut m = Matrix::zeros(v.rows(), v.cols());
        for r in 0..v.rows() {
            m.row_mut(r).copy_from_slice(v.row(r));
        }
        m
    }
}

/// The elements in row-major order without padding, as [`Matrix::to_row_major`].
impl<T: Scalar> From<Matrix<T>> for Vec<T> {
    fn from(m: Matrix<T>) -> Self {
        m.to_row_major()
    }
}

impl<'a, T: Scalar> From<&'a Matrix<T>> for MatRef<'a, T> {
    fn from(m: &'a Matrix<T>) -> Self {
        m.as_ref()
    }
}

impl<'a, T: Scalar> From<&'a mut Matrix<T>> for MatMut<'a, T> {
    fn from(m: &'a mut Matrix<T>) -> Self {
        m.as_mut()
    }
}

fn fmt_rows<'a, T: Scalar>(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    rows: usize,
    cols: usize,
    row: impl Fn(usize) -> &'a [T],
) -> std::fmt::Result {
    write!(f, "{name}({rows}×{cols}) ")?;
    f.debug_list().entries((0..rows).map(row)).finish()
}

/// A borrowed, read-only, row-major view: `rows × cols` elements, row `r` at
/// `data[r · row_stride ..]`.
///
/// It borrows those elements only: elements between rows (when `row_stride > cols`) are never
/// read through the view. `Copy`, `Send` and `Sync`, like the `&[T]` it stands for.
///
/// ```
/// use deltaprop::MatRef;
/// // Columns 1..3 of a 3 × 4 row-major array: a 3 × 2 window with row stride 4.
/// let data = [0.0f64, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0, 5.0, 6.0, 0.0];
/// let w = MatRef::from_slice(&data[1..], 3, 2, 4)?;
/// assert_eq!(w.to_row_major(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// assert!(MatRef::from_slice(&data, 3, 5, 4).is_err()); // stride < cols
/// # Ok::<(), deltaprop::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct MatRef<'a, T: Scalar> {
    /// Element (r, c) at `ptr + r · stride + c`, readable for `'a` and not written while the
    /// view lives, for r < rows and c < cols. Dangling (never read) if the view is empty.
    ptr: NonNull<T>,
    rows: usize,
    cols: usize,
    stride: usize,
    life: PhantomData<&'a [T]>,
}

// SAFETY: a `MatRef` is a shared borrow of `T`s, as `&[T]` is, and `T: Scalar` is `Sync`.
unsafe impl<T: Scalar> Send for MatRef<'_, T> {}
// SAFETY: as above; it offers no interior mutability.
unsafe impl<T: Scalar> Sync for MatRef<'_, T> {}

impl<'a, T: Scalar> MatRef<'a, T> {
    /// A view of `rows × cols` elements of `data`, row `r` starting at `r · row_stride`.
    ///
    /// Errors if `row_stride < cols` or `data` is shorter than
    /// `(rows − 1) · row_stride + cols`. Any alignment is accepted. Zero rows or columns are
    /// valid (an empty view, over any slice, even an empty one).
    pub fn from_slice(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<Self, Error> {
        let len = check_view(data.len(), rows, cols, row_stride)?;
        Ok(Self::from_checked(&data[..len], rows, cols, row_stride))
    }

    /// The view over `span`, which the caller has checked covers the shape.
    fn from_checked(span: &'a [T], rows: usize, cols: usize, stride: usize) -> Self {
        debug_assert!(span.len() >= self::span(rows, cols, stride).unwrap_or(usize::MAX));
        MatRef {
            ptr: NonNull::from(span).cast(),
            rows,
            cols,
            stride,
            life: PhantomData,
        }
    }

    /// A view from its raw parts.
    ///
    /// # Safety
    /// For every `r < rows` and `c < cols`, `ptr + r · stride + c` points at an initialised
    /// `T` that is readable and not written for `'a`; the offsets do not overflow `isize`;
    /// `stride ≥ cols`.
    #[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
    pub(crate) unsafe fn from_raw_parts(
        ptr: NonNull<T>,
        rows: usize,
        cols: usize,
        stride: usize,
    ) -> Self {
        MatRef {
            ptr,
            rows,
            cols,
            stride,
            life: PhantomData,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Elements between the starts of consecutive rows.
    pub fn row_stride(&self) -> usize {
        self.stride
    }

    /// Row `r`, `cols` elements.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &'a [T] {
        assert!(r < self.rows, "row {r} out of range for {} rows", self.rows);
        // SAFETY: row r's `cols` elements are part of the view (the field's invariant), and
        // r · stride ≤ (rows − 1) · stride stays within the span the view was made from.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(r * self.stride), self.cols) }
    }

    /// Element `(r, c)`.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols`.
    pub fn get(&self, r: usize, c: usize) -> T {
        self.row(r)[c]
    }

    /// Rows `..r` and rows `r..`, for `0 < r < rows`.
    pub(crate) fn split_at_row(self, r: usize) -> (MatRef<'a, T>, MatRef<'a, T>) {
        assert!(0 < r && r < self.rows, "split at row {r} of {}", self.rows);
        // SAFETY: row r is part of the view (r < rows), so ptr + r · stride points at its first
        // element, inside the span the view was made from. The two views cover rows < r and
        // rows ≥ r of this one: elements it may read for 'a.
        let tail = unsafe { self.ptr.add(r * self.stride) };
        let top = MatRef { rows: r, ..self };
        let bottom = MatRef {
            ptr: tail,
            rows: self.rows - r,
            ..self
        };
        (top, bottom)
    }

    /// Columns `..c` and columns `c..`, for `0 < c < cols`.
    pub(crate) fn split_at_col(self, c: usize) -> (MatRef<'a, T>, MatRef<'a, T>) {
        assert!(
            0 < c && c < self.cols,
            "split at column {c} of {}",
            self.cols
        );
        let tail = if self.rows == 0 {
            self.ptr // an empty view's pointer is never read
        } else {
            // SAFETY: element (0, c) is part of the view (rows > 0, c < cols), so ptr + c is
            // inside the span the view was made from. Each row of the two views is a part of
            // the same row of this one: elements it may read for 'a.
            unsafe { self.ptr.add(c) }
        };
        let left = MatRef { cols: c, ..self };
        let right = MatRef {
            ptr: tail,
            cols: self.cols - c,
            ..self
        };
        (left, right)
    }

    /// The elements in row-major order without padding.
    pub fn to_row_major(&self) -> Vec<T> {
        if self.cols == 0 {
            // Any number of empty rows (a view over an empty slice may claim usize::MAX).
            return Vec::new();
        }
        (0..self.rows)
            .flat_map(|r| self.row(r).iter().copied())
            .collect()
    }

    /// An owned copy of the view, as [`Matrix::from`].
    pub fn to_matrix(&self) -> Matrix<T> {
        Matrix::from(*self)
    }

    /// Pointer to element (0, 0): the kernels' entry points take the view as
    /// (pointer, rows, cols, row stride) and touch its elements only.
    pub(crate) fn as_ptr(&self) -> *const T {
        self.ptr.as_ptr()
    }
}

impl<T: Scalar> std::fmt::Debug for MatRef<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt_rows(f, "MatRef", self.rows, self.cols, |r| self.row(r))
    }
}

impl<T: Scalar> PartialEq for MatRef<'_, T> {
    /// Same shape and the same elements, whatever the strides (NaN ≠ NaN).
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows
            && self.cols == other.cols
            && (0..self.rows).all(|r| self.row(r) == other.row(r))
    }
}

/// A borrowed, mutable, row-major view: `rows × cols` elements, row `r` at
/// `data[r · row_stride ..]`. Elements between rows (when `row_stride > cols`) are never
/// read or written through the view.
///
/// `Send` and `Sync`, like the `&mut [T]` it stands for. Pass it to a kernel by value and
/// keep using it afterwards through [`reborrow`](Self::reborrow):
///
/// ```
/// use deltaprop::{kernels, MatMut};
/// let mut data = [1.0f32; 6];
/// let mut w = MatMut::from_slice(&mut data, 2, 3, 3)?;
/// kernels::rank1_update(w.reborrow(), 0.5, &[1.0, 2.0], &[1.0, 0.0, -1.0])?;
/// kernels::rank1_update(w.reborrow(), 0.5, &[1.0, 2.0], &[1.0, 0.0, -1.0])?;
/// assert_eq!(w.row(1), [-1.0, 1.0, 3.0]);
/// # Ok::<(), deltaprop::Error>(())
/// ```
pub struct MatMut<'a, T: Scalar> {
    /// As [`MatRef::ptr`], and also writable and not accessed by anyone else for `'a`.
    ptr: NonNull<T>,
    rows: usize,
    cols: usize,
    stride: usize,
    life: PhantomData<&'a mut [T]>,
}

// SAFETY: a `MatMut` is an exclusive borrow of `T`s, as `&mut [T]` is, and `T: Scalar` is
// `Send`.
unsafe impl<T: Scalar> Send for MatMut<'_, T> {}
// SAFETY: shared access to a `MatMut` only reads (`row`, `get`, `as_ref`), and `T` is `Sync`.
unsafe impl<T: Scalar> Sync for MatMut<'_, T> {}

impl<'a, T: Scalar> MatMut<'a, T> {
    /// A mutable view of `rows × cols` elements of `data`, row `r` starting at
    /// `r · row_stride`.
    ///
    /// Errors if `row_stride < cols` or `data` is shorter than
    /// `(rows − 1) · row_stride + cols`. Any alignment is accepted. Zero rows or columns are
    /// valid (an empty view, over any slice, even an empty one).
    pub fn from_slice(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Result<Self, Error> {
        let len = check_view(data.len(), rows, cols, row_stride)?;
        Ok(Self::from_checked(&mut data[..len], rows, cols, row_stride))
    }

    /// The view over `span`, which the caller has checked covers the shape.
    fn from_checked(span: &'a mut [T], rows: usize, cols: usize, stride: usize) -> Self {
        debug_assert!(span.len() >= self::span(rows, cols, stride).unwrap_or(usize::MAX));
        MatMut {
            ptr: NonNull::from(span).cast(),
            rows,
            cols,
            stride,
            life: PhantomData,
        }
    }

    /// A view from its raw parts.
    ///
    /// # Safety
    /// As [`MatRef::from_raw_parts`], and the elements are also writable and accessed by
    /// nothing else for `'a`.
    #[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
    pub(crate) unsafe fn from_raw_parts(
        ptr: NonNull<T>,
        rows: usize,
        cols: usize,
        stride: usize,
    ) -> Self {
        MatMut {
            ptr,
            rows,
            cols,
            stride,
            life: PhantomData,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Elements between the starts of consecutive rows.
    pub fn row_stride(&self) -> usize {
        self.stride
    }

    /// Row `r`, `cols` elements.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[T] {
        self.as_ref().row(r)
    }

    /// Row `r`, mutable.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row_mut(&mut self, r: usize) -> &mut [T] {
        assert!(r < self.rows, "row {r} out of range for {} rows", self.rows);
        // SAFETY: as in `MatRef::row`; `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(r * self.stride), self.cols) }
    }

    /// Element `(r, c)`.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols`.
    pub fn get(&self, r: usize, c: usize) -> T {
        self.row(r)[c]
    }

    /// Rows `..r` and rows `r..`, for `0 < r < rows`: two mutable views of disjoint elements.
    pub(crate) fn split_at_row_mut(self, r: usize) -> (MatMut<'a, T>, MatMut<'a, T>) {
        assert!(0 < r && r < self.rows, "split at row {r} of {}", self.rows);
        // SAFETY: as in `MatRef::split_at_row`; the two views cover disjoint rows of this one,
        // which it gives up, so each has its elements to itself for 'a.
        let tail = unsafe { self.ptr.add(r * self.stride) };
        let top = MatMut {
            ptr: self.ptr,
            rows: r,
            cols: self.cols,
            stride: self.stride,
            life: PhantomData,
        };
        let bottom = MatMut {
            ptr: tail,
            rows: self.rows - r,
            cols: self.cols,
            stride: self.stride,
            life: PhantomData,
        };
        (top, bottom)
    }

    /// A read-only view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef {
            ptr: self.ptr,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
            life: PhantomData,
        }
    }

    /// The view turned read-only for the rest of its lifetime.
    pub fn into_ref(self) -> MatRef<'a, T> {
        MatRef {
            ptr: self.ptr,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
            life: PhantomData,
        }
    }

    /// A shorter-lived mutable view of the same elements, so a view can be passed to a
    /// kernel and used again afterwards.
    pub fn reborrow(&mut self) -> MatMut<'_, T> {
        MatMut {
            ptr: self.ptr,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
            life: PhantomData,
        }
    }

    /// The elements in row-major order without padding.
    pub fn to_row_major(&self) -> Vec<T> {
        self.as_ref().to_row_major()
    }

    /// An owned copy of the view, as [`Matrix::from`].
    pub fn to_matrix(&self) -> Matrix<T> {
        Matrix::from(self.as_ref())
    }

    /// Pointer to element (0, 0), for writing: see [`MatRef::as_ptr`].
    pub(crate) fn as_mut_ptr(&mut self) -> *mut T {
        self.ptr.as_ptr()
    }
}

impl<'a, T: Scalar> From<MatMut<'a, T>> for MatRef<'a, T> {
    fn from(m: MatMut<'a, T>) -> Self {
        m.into_ref()
    }
}

impl<T: Scalar> std::fmt::Debug for MatMut<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt_rows(f, "MatMut", self.rows, self.cols, |r| self.row(r))
    }
}
