//! Helpers for the integration tests: a seeded generator, vectors and matrices fenced by guard
//! zones, and the shapes and SIMD levels the kernels are tested on.
//!
//! Guard zones around inputs hold [`Float::INPUT_GUARD`], a NaN with its own payload: a kernel
//! that reads past an input carries NaN into its result. Guard zones around outputs and around
//! a matrix view hold [`Float::GUARD`], a large finite value: any write there changes its bits
//! (even a read-modify-write that adds a NaN, which a NaN guard would survive), and a read of
//! it into a result lands far from the reference. Outputs start as [`Float::POISON`], another
//! NaN, so a kernel that reads what it should only write leaves NaN behind.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::fmt;

use deltaprop::kernels::KernelSet;
use deltaprop::{MatMut, MatRef, Matrix, Scalar, simd};

/// The element types under test, with what the tests need beyond [`Scalar`].
pub trait Float: Scalar + fmt::LowerExp {
    /// The default quiet NaN.
    const NAN: Self;
    /// +∞.
    const INFINITY: Self;
    /// The largest finite value.
    const MAX: Self;
    /// The smallest positive normal value.
    const MIN_POSITIVE: Self;
    /// A quiet NaN with its own payload, filling the guard zones around inputs.
    const INPUT_GUARD: Self;
    /// 2²⁰ + ½, filling the guard zones around outputs and matrix views.
    const GUARD: Self;
    /// A quiet NaN with another payload, filling every output before a kernel runs.
    const POISON: Self;
    /// The bit pattern, widened to `u64`.
    fn bits(self) -> u64;
}

impl Float for f32 {
    const NAN: Self = f32::NAN;
    const INFINITY: Self = f32::INFINITY;
    const MAX: Self = f32::MAX;
    const MIN_POSITIVE: Self = f32::MIN_POSITIVE;
    const INPUT_GUARD: Self = f32::from_bits(0x7fc0_6a2d);
    const GUARD: Self = 1_048_576.5;
    const POISON: Self = f32::from_bits(0x7fc0_dead);
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Float for f64 {
    const NAN: Self = f64::NAN;
    const INFINITY: Self = f64::INFINITY;
    const MAX: Self = f64::MAX;
    const MIN_POSITIVE: Self = f64::MIN_POSITIVE;
    const INPUT_GUARD: Self = f64::from_bits(0x7ff8_0000_0000_6a2d);
    const GUARD: Self = 1_048_576.5;
    const POISON: Self = f64::from_bits(0x7ff8_0000_0000_dead);
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// T's machine epsilon as `f64`.
pub fn eps<T: Float>() -> f64 {
    T::EPSILON.to_f64()
}

/// The smallest positive subnormal of T (one ULP of the subnormal range), as `f64`.
pub fn tiny<T: Float>() -> f64 {
    T::MIN_POSITIVE.to_f64() * T::EPSILON.to_f64()
}

/// SplitMix64 (Steele, Lea & Flood, 2014): a small, seedable, well-mixed generator, plenty for
/// test data.
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator for one test case, seeded by its tag, element type and dimensions, so a
    /// case's data does not depend on which cases ran before it.
    pub fn for_case<T: Float>(tag: &str, dims: &[usize]) -> Self {
        // FNV-1a over the tag, the type's name and the dimensions.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |byte: u8| h = (h ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        tag.bytes().chain(T::NAME.bytes()).for_each(&mut eat);
        dims.iter()
            .flat_map(|d| (*d as u64).to_le_bytes())
            .for_each(&mut eat);
        Rng(h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        lo + (hi - lo) * unit
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A test value: mostly uniform in [−1, 1]; one in eight scaled by 2^e with e uniform in
    /// [−16, 16], so magnitudes vary and sums mix scales and cancel; one in 32 exactly 0.
    pub fn value<T: Float>(&mut self) -> T {
        let x = self.uniform(-1.0, 1.0);
        let x = match self.next_u64() % 32 {
            0 => 0.0,
            1..=4 => x * 2f64.powi(self.below(33) as i32 - 16),
            _ => x,
        };
        T::from_f64(x)
    }

    /// `len` values from [`Rng::value`].
    pub fn values<T: Float>(&mut self, len: usize) -> Vec<T> {
        (0..len).map(|_| self.value()).collect()
    }
}

/// Elements of guard zone on each side of a guarded vector: more than one 512-bit vector of
/// f32 (16 lanes), and odd, so the vector between them starts at no particular alignment.
pub const GUARD_LEN: usize = 19;

/// A vector between two guard zones, in one `Vec`; kernels get the middle as a slice.
pub struct Guarded<T: Float> {
    buf: Vec<T>,
    guard: T,
    /// Bits of every element when the buffer was built.
    before: Vec<u64>,
    len: usize,
}

impl<T: Float> Guarded<T> {
    fn build(values: impl Iterator<Item = T>, len: usize, guard: T) -> Self {
        let mut buf = vec![guard; GUARD_LEN];
        buf.extend(values);
        buf.extend(std::iter::repeat_n(guard, GUARD_LEN));
        assert_eq!(buf.len(), len + 2 * GUARD_LEN);
        let before = buf.iter().map(|x| x.bits()).collect();
        Guarded {
            buf,
            guard,
            before,
            len,
        }
    }

    /// An input vector holding `values`, between [`Float::INPUT_GUARD`]s.
    pub fn input(values: &[T]) -> Self {
        Self::build(values.iter().copied(), values.len(), T::INPUT_GUARD)
    }

    /// An output vector of `len` elements, each [`Float::POISON`], between [`Float::GUARD`]s.
    pub fn output(len: usize) -> Self {
        Self::build(std::iter::repeat_n(T::POISON, len), len, T::GUARD)
    }

    /// The vector (without its guards).
    pub fn slice(&self) -> &[T] {
        &self.buf[GUARD_LEN..GUARD_LEN + self.len]
    }

    /// The vector (without its guards), mutable.
    pub fn slice_mut(&mut self) -> &mut [T] {
        &mut self.buf[GUARD_LEN..GUARD_LEN + self.len]
    }

    /// Panics unless every element, guards and vector, has its original bits.
    pub fn assert_unchanged(&self, what: &str) {
        for (i, (x, &b)) in self.buf.iter().zip(&self.before).enumerate() {
            assert!(
                x.bits() == b,
                "{what}: element {} (relative to the vector) changed from {b:#x} to {x} \
                 ({:#x}), but the kernel must not write here",
                i as isize - GUARD_LEN as isize,
                x.bits()
            );
        }
    }

    /// Panics unless both guard zones have their original bits.
    pub fn assert_guards_intact(&self, what: &str) {
        let end = GUARD_LEN + self.len;
        for i in (0..GUARD_LEN).chain(end..self.buf.len()) {
            let x = self.buf[i];
            assert!(
                x.bits() == self.guard.bits(),
                "{what}: guard element {} (relative to the vector of length {}) was \
                 overwritten with {x} ({:#x})",
                i as isize - GUARD_LEN as isize,
                self.len,
                x.bits()
            );
        }
    }
}

/// Runs `write` on a poisoned output of `len` elements between guard zones, panics (naming
/// `what`) if it wrote outside, and returns what it wrote.
pub fn guarded_output<T: Float>(what: &str, len: usize, write: impl FnOnce(&mut [T])) -> Vec<T> {
    let mut out = Guarded::output(len);
    write(out.slice_mut());
    out.assert_guards_intact(what);
    out.slice().to_vec()
}

/// Where a weight matrix lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// A [`Matrix`]: every row 64-byte aligned, the stride padded.
    Matrix,
    /// A [`MatRef`]/[`MatMut`] over a caller's `Vec`: starting 1 or 3 elements past a 64-byte
    /// boundary, with a row stride greater than the columns, guard zones before, between the
    /// rows and after.
    View,
}

/// Both storages.
pub const STORAGES: [Storage; 2] = [Storage::Matrix, Storage::View];

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Storage::Matrix => "Matrix storage",
            Storage::View => "strided view",
        })
    }
}

/// Guard elements before a view (plus the 0–15 that place its start).
const VIEW_LEAD: usize = 16;

/// An H × L matrix in one of the two storages.
pub struct Stored<T: Float> {
    storage: Storage,
    rows: usize,
    cols: usize,
    matrix: Matrix<T>,
    /// View storage: the caller's buffer, guard-filled outside the view.
    buf: Vec<T>,
    offset: usize,
    stride: usize,
    /// Matrix storage: the row-major bits; view storage: the bits of all of `buf`.
    before: Vec<u64>,
}

impl<T: Float> Stored<T> {
    /// `data` (row-major, `rows × cols`) in `storage`.
    ///
    /// A view starts `1` or `3` elements (chosen by the shape) past a 64-byte boundary, after
    /// at least 16 guard elements; its stride exceeds `cols` by 1, 3, 8 or 17 (also chosen by
    /// the shape; 17 is more than one vector of any level); 19 guard elements follow it.
    pub fn new(storage: Storage, rows: usize, cols: usize, data: &[T]) -> Self {
        assert_eq!(data.len(), rows * cols);
        match storage {
            Storage::Matrix => {
                let matrix = Matrix::from_row_major(rows, cols, data).unwrap();
                Stored {
                    storage,
                    rows,
                    cols,
                    matrix,
                    buf: Vec::new(),
                    offset: 0,
                    stride: 0,
                    before: data.iter().map(|x| x.bits()).collect(),
                }
            }
            Storage::View => {
                let size = std::mem::size_of::<T>();
                let per_line = 64 / size;
                let past_line = [1, 3][(rows + cols) % 2];
                let stride = cols + [1, 3, 8, 17][(3 * rows + cols) % 4];
                let span = if rows == 0 {
                    0
                } else {
                    (rows - 1) * stride + cols
                };
                let mut buf = vec![T::GUARD; VIEW_LEAD + per_line + span + GUARD_LEN];
                let lead_addr = buf.as_ptr() as usize + VIEW_LEAD * size;
                let to_line = (64 - lead_addr % 64) % 64 / size;
                let offset = VIEW_LEAD + (to_line + past_line) % per_line;
                assert_eq!(
                    (buf.as_ptr() as usize + offset * size) % 64,
                    past_line * size
                );
                for r in 0..rows {
                    let start = offset + r * stride;
                    buf[start..start + cols].copy_from_slice(&data[r * cols..(r + 1) * cols]);
                }
                let before = buf.iter().map(|x| x.bits()).collect();
                Stored {
                    storage,
                    rows,
                    cols,
                    matrix: Matrix::zeros(0, 0),
                    buf,
                    offset,
                    stride,
                    before,
                }
            }
        }
    }

    /// The storage kind and layout, for failure messages.
    pub fn describe(&self) -> String {
        match self.storage {
            Storage::Matrix => format!(
                "Matrix storage (row stride {})",
                self.matrix.as_ref().row_stride()
            ),
            Storage::View => {
                let size = std::mem::size_of::<T>();
                format!(
                    "strided view ({} elements past a 64-byte boundary, row stride {} = L + {})",
                    (self.buf.as_ptr() as usize + self.offset * size) % 64 / size,
                    self.stride,
                    self.stride - self.cols
                )
            }
        }
    }

    /// A read-only view of the matrix.
    pub fn as_ref(&self) -> MatRef<'_, T> {
        match self.storage {
            Storage::Matrix => self.matrix.as_ref(),
            Storage::View => {
                MatRef::from_slice(&self.buf[self.offset..], self.rows, self.cols, self.stride)
                    .unwrap()
            }
        }
    }

    /// A mutable view of the matrix.
    pub fn as_mut(&mut self) -> MatMut<'_, T> {
        match self.storage {
            Storage::Matrix => self.matrix.as_mut(),
            Storage::View => MatMut::from_slice(
                &mut self.buf[self.offset..],
                self.rows,
                self.cols,
                self.stride,
            )
            .unwrap(),
        }
    }

    /// The matrix's elements, row-major.
    pub fn to_row_major(&self) -> Vec<T> {
        self.as_ref().to_row_major()
    }

    fn in_view(&self, i: usize) -> bool {
        if i < self.offset || self.rows == 0 {
            return false;
        }
        let j = i - self.offset;
        j / self.stride < self.rows && j % self.stride < self.cols
    }

    /// Panics unless every element (and, for a view, every guard element) has its original
    /// bits.
    pub fn assert_unchanged(&self, what: &str) {
        match self.storage {
            Storage::Matrix => {
                for (i, (x, &b)) in self.to_row_major().iter().zip(&self.before).enumerate() {
                    assert!(
                        x.bits() == b,
                        "{what}: W[{}, {}] changed from {b:#x} to {x}, but the kernel only \
                         reads W",
                        i / self.cols,
                        i % self.cols
                    );
                }
            }
            Storage::View => {
                for (i, (x, &b)) in self.buf.iter().zip(&self.before).enumerate() {
                    assert!(
                        x.bits() == b,
                        "{what}: buffer element {i} (view element {}) changed from {b:#x} to \
                         {x}, but the kernel must not write it",
                        self.locate(i)
                    );
                }
            }
        }
    }

    /// Panics unless every element outside the view (before it, in the stride gaps, after it)
    /// has its original bits. Matrix padding is private, so for Matrix storage there is
    /// nothing to check.
    pub fn assert_guards_intact(&self, what: &str) {
        if self.storage == Storage::Matrix {
            return;
        }
        for (i, (x, &b)) in self.buf.iter().zip(&self.before).enumerate() {
            if !self.in_view(i) {
                assert!(
                    x.bits() == b,
                    "{what}: guard element {i} of the buffer ({}) was overwritten with {x} \
                     ({:#x})",
                    self.locate(i),
                    x.bits()
                );
            }
        }
    }

    /// Where buffer element `i` lies relative to the view, in words.
    fn locate(&self, i: usize) -> String {
        if i < self.offset {
            return format!("{} before the view", self.offset - i);
        }
        let j = i - self.offset;
        let (r, c) = (j / self.stride, j % self.stride);
        if self.rows == 0 || r >= self.rows || (r == self.rows - 1 && c >= self.cols) {
            let end = self.offset
                + if self.rows == 0 {
                    0
                } else {
                    (self.rows - 1) * self.stride + self.cols
                };
            format!("{} after the view", i - end + 1)
        } else if c >= self.cols {
            format!("stride gap after row {r}, column {c}")
        } else {
            format!("W[{r}, {c}]")
        }
    }
}

/// The sizes every dimension is tested at: around the vector widths (4, 8, 16 lanes) and the
/// kernels' unroll and block edges.
pub const SIZES: [usize; 19] = [
    1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 255, 257,
];

/// Layer shapes of real networks: MNIST's input layer and a large square layer.
pub const BIG_SHAPES: [(usize, usize); 2] = [(784, 256), (1024, 1024)];

/// The sizes of a reduced run ([`small`]): each side of the vector widths (2, 4, 8 and 16
/// lanes) and of a two-vector unroll.
pub const SMALL_SIZES: [usize; 9] = [1, 3, 4, 5, 8, 9, 16, 17, 33];

/// Whether `DELTAPROP_TEST_SMALL` asks for a reduced run (set and not `0`): the shapes shrink
/// to [`SMALL_SIZES`] and the big layers are left out, so that the tests finish under
/// valgrind. Every code path the shapes reach (full vectors, tails, unrolled and leftover
/// rows) is still taken on every level.
pub fn small() -> bool {
    std::env::var_os("DELTAPROP_TEST_SMALL").is_some_and(|v| v != "0")
}

/// [`SIZES`], or [`SMALL_SIZES`] in a reduced run.
pub fn sizes() -> &'static [usize] {
    if small() { &SMALL_SIZES } else { &SIZES }
}

/// Every pair (H, L) of [`sizes`].
pub fn size_pairs() -> impl Iterator<Item = (usize, usize)> {
    let s = sizes();
    s.iter().flat_map(move |&h| s.iter().map(move |&l| (h, l)))
}

/// Every pair of [`sizes`], then [`BIG_SHAPES`] (not in a reduced run).
pub fn shapes() -> impl Iterator<Item = (usize, usize)> {
    let big: &[(usize, usize)] = if small() { &[] } else { &BIG_SHAPES };
    size_pairs().chain(big.iter().copied())
}

/// The kernels of every SIMD level this CPU has, worst first.
pub fn kernel_sets() -> Vec<KernelSet> {
    simd::available()
        .into_iter()
        .map(|level| KernelSet::new(level).expect("an available level is supported"))
        .collect()
}

/// Panics at the first element whose bits differ.
pub fn assert_bits_eq<T: Float>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.bits() == w.bits(),
            "{what}: element {i} is {g:e} ({:#x}), expected bit for bit {w:e} ({:#x})",
            g.bits(),
            w.bits()
        );
    }
}
