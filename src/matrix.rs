//! Row-major matrices: the owned, padded [`Matrix`] and the borrowed views [`MatRef`] and
//! [`MatMut`] over any caller slice.
//!
//! A view is `rows × cols` elements whose row `r` starts at `data[r · row_stride]`. The
//! stride may exceed `cols` (a window into a larger matrix) and the slice may start at any
//! address; the kernels handle both. [`Matrix`] pads its stride so that every row starts on a
//! 64-byte boundary, which lets the kernels stream whole cache lines.

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
/// and is never part of the matrix's value.
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
        MatRef {
            data: &self.data[..len],
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
    }

    /// A mutable view of the whole matrix.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        let len = span(self.rows, self.cols, self.stride).unwrap_or(0);
        MatMut {
            data: &mut self.data[..len],
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
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
#[derive(Clone, Copy)]
pub struct MatRef<'a, T: Scalar> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    stride: usize,
}

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
        Ok(MatRef {
            data: &data[..len],
            rows,
            cols,
            stride: row_stride,
        })
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
        &self.data[r * self.stride..r * self.stride + self.cols]
    }

    /// Element `(r, c)`.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols`.
    pub fn get(&self, r: usize, c: usize) -> T {
        self.row(r)[c]
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

    /// The slice the view spans (from row 0's first element to the last row's last).
    pub(crate) fn span(&self) -> &'a [T] {
        self.data
    }
}

impl<T: Scalar> std::fmt::Debug for MatRef<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt_rows(f, "MatRef", self.rows, self.cols, |r| self.row(r))
    }
}

/// A borrowed, mutable, row-major view: `rows × cols` elements, row `r` at
/// `data[r · row_stride ..]`. Elements between rows (when `row_stride > cols`) are never
/// read or written through the view.
pub struct MatMut<'a, T: Scalar> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    stride: usize,
}

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
        Ok(MatMut {
            data: &mut data[..len],
            rows,
            cols,
            stride: row_stride,
        })
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

    /// A read-only view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        MatRef {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
    }

    /// A shorter-lived mutable view of the same elements, so a view can be passed to a
    /// kernel and used again afterwards.
    pub fn reborrow(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            stride: self.stride,
        }
    }

    /// The elements in row-major order without padding.
    pub fn to_row_major(&self) -> Vec<T> {
        self.as_ref().to_row_major()
    }

    /// The slice the view spans (from row 0's first element to the last row's last).
    pub(crate) fn span_mut(&mut self) -> &mut [T] {
        self.data
    }
}

impl<T: Scalar> std::fmt::Debug for MatMut<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fmt_rows(f, "MatMut", self.rows, self.cols, |r| self.row(r))
    }
}
