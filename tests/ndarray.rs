//! The `ndarray` feature: zero-copy views from `ArrayView2` / `ArrayViewMut2` whenever the rows
//! are contiguous, a typed `Err` for every other layout, and views back.
//!
//! Run: `cargo test --release --features ndarray --test ndarray`.

use deltaprop::{Error, MatMut, MatRef, Matrix, kernels, reference};
use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, ShapeBuilder, s};

/// A `rows × cols` array with distinct, exactly representable elements.
fn grid(rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_fn((rows, cols), |(r, c)| (r * 100 + c) as f64 / 8.0 - 3.0)
}

/// The layout error the conversion of a `rows × cols` view with `strides` must give.
fn layout_err(rows: usize, cols: usize, strides: [isize; 2]) -> Error {
    Error::UnsupportedLayout {
        arg: "array",
        rows,
        cols,
        row_stride: strides[0],
        col_stride: strides[1],
    }
}

#[test]
fn standard_layout_is_a_zero_copy_view() {
    let a = grid(5, 7);
    let w = MatRef::try_from(a.view()).unwrap();
    assert_eq!((w.rows(), w.cols(), w.row_stride()), (5, 7, 7));
    assert_eq!(w.row(0).as_ptr(), a.as_ptr(), "no copy");
    for r in 0..5 {
        assert_eq!(w.row(r), a.row(r).to_vec().as_slice());
    }
}

#[test]
fn a_window_keeps_the_parent_row_stride() {
    let a = grid(6, 9);
    let win = a.slice(s![1..5, 2..7]); // 4 × 5 at row stride 9
    let w = MatRef::try_from(win).unwrap();
    assert_eq!((w.rows(), w.cols(), w.row_stride()), (4, 5, 9));
    assert_eq!(w.row(0).as_ptr(), &a[[1, 2]] as *const f64, "no copy");
    assert_eq!(Matrix::from(w), Matrix::from(win));

    // A kernel on the window gives what the reference gives on a packed copy.
    let packed = Matrix::from(win);
    let (x, b) = ([0.5, -1.0, 0.25, 2.0], [1.0, 0.0, -1.0, 0.5, 0.125]);
    let (mut n, mut n_ref) = ([f64::NAN; 5], [f64::NAN; 5]);
    kernels::affine(w, &x, &b, &mut n).unwrap();
    reference::affine(packed.as_ref(), &x, &b, &mut n_ref).unwrap();
    for (u, v) in n.iter().zip(&n_ref) {
        assert!((u - v).abs() <= 1e-12 * v.abs().max(1.0), "{u} vs {v}");
    }
}

#[test]
fn a_mutable_window_writes_its_elements_only() {
    let mut a = grid(5, 8);
    let before = a.clone();
    let (alpha, x, delta) = (0.5, [1.0, -2.0, 0.5], [2.0, 0.0, -1.0, 4.0]);
    let w = MatMut::try_from(a.slice_mut(s![1..4, 3..7])).unwrap();
    assert_eq!((w.rows(), w.cols(), w.row_stride()), (3, 4, 8));
    kernels::rank1_update(w, alpha, &x, &delta).unwrap();
    for r in 0..5 {
        for c in 0..8 {
            let expected = if (1..4).contains(&r) && (3..7).contains(&c) {
                // x, δ and α are powers of two (or 0), so the FMA is exact.
                before[[r, c]] - alpha * x[r - 1] * delta[c - 3]
            } else {
                before[[r, c]]
            };
            assert_eq!(a[[r, c]], expected, "element ({r}, {c})");
        }
    }
}

/// The two halves of an array split by columns interleave in memory: each half's rows lie in
/// the other's gaps. Both halves convert, and two kernels write them at once from two threads.
#[test]
fn halves_split_by_columns_are_updated_concurrently() {
    let mut a = grid(64, 40);
    let before = a.clone();
    let (left, right) = a.view_mut().split_at(Axis(1), 16);
    let (wl, wr) = (
        MatMut::try_from(left).unwrap(),
        MatMut::try_from(right).unwrap(),
    );
    assert_eq!(
        (wl.cols(), wl.row_stride(), wr.cols(), wr.row_stride()),
        (16, 40, 24, 40)
    );
    let x: Vec<f64> = (0..64).map(|r| (r % 5) as f64 - 2.0).collect();
    let (dl, dr) = (vec![0.25; 16], vec![-0.5; 24]);
    std::thread::scope(|s| {
        s.spawn(|| kernels::rank1_update(wl, 1.0, &x, &dl).unwrap());
        s.spawn(|| kernels::rank1_update(wr, 1.0, &x, &dr).unwrap());
    });
    for r in 0..64 {
        for c in 0..40 {
            let d = if c < 16 { 0.25 } else { -0.5 };
            assert_eq!(a[[r, c]], before[[r, c]] - x[r] * d, "element ({r}, {c})");
        }
    }
}

#[test]
fn transposed_views_are_an_error() {
    let a = grid(3, 4);
    assert_eq!(
        MatRef::try_from(a.t()).unwrap_err(),
        layout_err(4, 3, [1, 4])
    );
    let mut f = Array2::<f32>::zeros((3, 4).f()); // column-major storage
    assert_eq!(
        MatMut::try_from(f.view_mut()).unwrap_err(),
        layout_err(3, 4, [1, 3])
    );
    let msg = MatRef::try_from(a.t()).unwrap_err().to_string();
    assert!(
        msg.contains("`array`") && msg.contains("4×3") && msg.contains("(1, 4)"),
        "{msg}"
    );
}

#[test]
fn negative_strides_are_an_error() {
    let a = grid(4, 5);
    // Rows reversed: row stride −5.
    assert_eq!(
        MatRef::try_from(a.slice(s![..;-1, ..])).unwrap_err(),
        layout_err(4, 5, [-5, 1])
    );
    // Columns reversed: column stride −1.
    assert_eq!(
        MatRef::try_from(a.slice(s![.., ..;-1])).unwrap_err(),
        layout_err(4, 5, [5, -1])
    );
    let mut m = grid(4, 5);
    assert_eq!(
        MatMut::try_from(m.slice_mut(s![..;-1, ..])).unwrap_err(),
        layout_err(4, 5, [-5, 1])
    );
}

#[test]
fn column_steps_and_broadcast_rows_are_an_error() {
    let a = grid(4, 6);
    assert_eq!(
        MatRef::try_from(a.slice(s![.., ..;2])).unwrap_err(),
        layout_err(4, 3, [6, 2])
    );
    // Every row the same memory: row stride 0 < 5 columns.
    let row = Array1::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0]);
    let b = row.broadcast((3, 5)).unwrap();
    assert_eq!(MatRef::try_from(b).unwrap_err(), layout_err(3, 5, [0, 1]));
}

#[test]
fn length_one_axes_ignore_their_stride() {
    let a = grid(4, 6);
    // One row of a transposed view: shape 1 × 4, strides (1, 6).
    let r = MatRef::try_from(a.t().slice_move(s![2..3, ..]));
    assert!(r.is_err(), "its 4 columns are 6 apart");
    // One column of the transposed view: shape 6 × 1, strides (1, 6) — contiguous rows of 1.
    let c = MatRef::try_from(a.t().slice_move(s![.., 1..2])).unwrap();
    assert_eq!((c.rows(), c.cols(), c.row_stride()), (6, 1, 1));
    assert_eq!(c.to_row_major(), a.row(1).to_vec());
    // One row of the reversed array: a negative row stride that is never used.
    let one = MatRef::try_from(a.slice(s![2..3;-1, ..])).unwrap();
    assert_eq!(one.to_row_major(), a.row(2).to_vec());
}

#[test]
fn empty_views_convert() {
    for (rows, cols) in [(0, 5), (3, 0), (0, 0)] {
        let mut a = Array2::<f32>::zeros((rows, cols));
        let w = MatRef::try_from(a.view()).unwrap();
        assert_eq!((w.rows(), w.cols()), (rows, cols));
        assert_eq!(ArrayView2::from(w).dim(), (rows, cols));
        let m = MatMut::try_from(a.view_mut()).unwrap();
        assert_eq!((m.rows(), m.cols()), (rows, cols));
        assert_eq!(ArrayViewMut2::from(m).dim(), (rows, cols));
        // An empty transposed view converts too: it has no element to lay out.
        assert!(MatRef::try_from(a.t()).is_ok());
    }
    // A kernel on an empty W: H = 0 gives n = b.
    let a = Array2::<f32>::zeros((0, 3));
    let mut n = [f32::NAN; 3];
    kernels::affine(
        MatRef::try_from(a.view()).unwrap(),
        &[],
        &[1.0, 2.0, 3.0],
        &mut n,
    )
    .unwrap();
    assert_eq!(n, [1.0, 2.0, 3.0]);
}

#[test]
fn views_convert_back_without_a_copy() {
    let mut m = Matrix::from_fn(3, 5, |r, c| (r * 5 + c) as f32);
    let v = ArrayView2::from(m.as_ref());
    assert_eq!(v.dim(), (3, 5));
    assert_eq!(v.strides(), [m.row_stride() as isize, 1]);
    assert_eq!(v.as_ptr(), m.row(0).as_ptr());
    assert_eq!(v[[2, 4]], 14.0);
    assert_eq!(ArrayView2::from(&m), v);

    let mut vm = ArrayViewMut2::from(&mut m);
    vm[[1, 2]] = -1.0;
    vm.row_mut(2).fill(9.0);
    assert_eq!(m.row(1), [5.0, 6.0, -1.0, 8.0, 9.0]);
    assert_eq!(m.row(2), [9.0; 5]);
    ArrayViewMut2::from(m.as_mut()).column_mut(0).fill(0.5);
    assert_eq!(m.to_row_major()[..6], [0.5, 1.0, 2.0, 3.0, 4.0, 0.5]);

    // A window over a caller slice round-trips to the same window.
    let data: Vec<f64> = (0..30).map(f64::from).collect();
    let w = MatRef::from_slice(&data[2..], 4, 3, 7).unwrap();
    let back = MatRef::try_from(ArrayView2::from(w)).unwrap();
    assert_eq!(
        (back.row_stride(), back.row(0).as_ptr()),
        (7, w.row(0).as_ptr())
    );
    assert_eq!(back, w);
}

#[test]
fn any_layout_copies_into_a_matrix() {
    let a = grid(3, 4);
    let t = Matrix::from(a.t());
    assert_eq!((t.rows(), t.cols()), (4, 3));
    for r in 0..4 {
        for c in 0..3 {
            assert_eq!(t.get(r, c), a[[c, r]]);
        }
    }
    let rev = Matrix::from(a.slice(s![..;-1, ..;-1]));
    assert_eq!(rev.get(0, 0), a[[2, 3]]);
}

/// The fused kernel on ndarray storage gives the same bits as on a `Matrix` copy.
#[test]
fn kernels_on_ndarray_storage_match_matrix_storage() {
    let (h, l) = (33, 17);
    let mut a = Array2::from_shape_fn((h, l + 3), |(r, c)| {
        ((r * 7 + c * 3) % 11) as f32 / 11.0 - 0.5
    });
    let mut m = Matrix::from(a.slice(s![.., 3..]));
    let x: Vec<f32> = (0..h).map(|i| (i as f32 * 0.37).sin()).collect();
    let d_prev: Vec<f32> = (0..h).map(|i| 0.1 + (i % 4) as f32 * 0.2).collect();
    let delta: Vec<f32> = (0..l).map(|j| (j as f32 * 0.91).cos()).collect();
    let (mut dp_a, mut dp_m) = (vec![f32::NAN; h], vec![f32::NAN; h]);
    let wa = MatMut::try_from(a.slice_mut(s![.., 3..])).unwrap();
    kernels::backward_update(wa, 0.01, &x, &delta, &d_prev, &mut dp_a).unwrap();
    kernels::backward_update(m.as_mut(), 0.01, &x, &delta, &d_prev, &mut dp_m).unwrap();
    assert_eq!(
        dp_a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        dp_m.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(Matrix::from(a.slice(s![.., 3..])), m);
}
