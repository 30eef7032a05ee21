//! What every public type promises a user who stores it, sends it to another thread or prints
//! it: compile-time assertions (a test that compiles has passed them), then the conversions
//! between `Matrix`, the views, `Vec`s and slices.

use std::fmt::{Debug, Display};

use deltaprop::kernels::KernelSet;
use deltaprop::simd::Level;
use deltaprop::{
    Activation, EpochOptions, Error, Evaluation, Gradients, Init, Layer, Loss, MatMut, MatRef,
    Matrix, Network, NetworkBuilder, Scalar,
};

fn debug_send_sync<T: Debug + Send + Sync>() {}
fn owned<T: Debug + Send + Sync + Clone + 'static>() {}
fn copy<T: Copy>() {}

/// Each type, for one element type.
fn per_scalar<T: Scalar>() {
    owned::<Matrix<T>>();
    owned::<Layer<T>>();
    owned::<Network<T>>();
    owned::<NetworkBuilder<T>>();
    owned::<Gradients<T>>();
    owned::<Evaluation<T>>();
    debug_send_sync::<MatRef<'static, T>>();
    debug_send_sync::<MatMut<'static, T>>();
    copy::<MatRef<'static, T>>();
}

#[test]
fn every_public_type_is_debug_send_sync_and_owned_ones_clone() {
    per_scalar::<f32>();
    per_scalar::<f64>();
    for t in [
        owned::<Activation>,
        owned::<Loss>,
        owned::<Init>,
        owned::<EpochOptions>,
        owned::<KernelSet>,
        owned::<Level>,
        owned::<Error>,
    ] {
        t();
    }
    copy::<Activation>();
    copy::<Loss>();
    copy::<Level>();
    copy::<KernelSet>();
}

#[test]
fn error_is_a_std_error_that_boxes_and_crosses_threads() {
    fn std_error<E: std::error::Error + Display + Send + Sync + 'static>() {}
    std_error::<Error>();
    let e: Box<dyn std::error::Error + Send + Sync> = Box::new(Error::NonFinite { arg: "alpha" });
    assert_eq!(e.to_string(), "`alpha` must be finite");
    let from_thread = std::thread::spawn(|| Matrix::<f32>::from_row_major(2, 2, &[1.0]))
        .join()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        from_thread.to_string(),
        "`data` has size 1, but rows × cols requires 4"
    );
}

#[test]
fn matrix_from_rows_vec_fn_and_arrays_agree() {
    let rows = [[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let flat = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let m = Matrix::from(rows);
    assert_eq!((m.rows(), m.cols()), (2, 3));
    assert_eq!(m, Matrix::from_rows(&rows).unwrap());
    assert_eq!(
        m,
        Matrix::from_rows(&[flat[..3].to_vec(), flat[3..].to_vec()]).unwrap()
    );
    assert_eq!(m, Matrix::from_vec(2, 3, flat.clone()).unwrap());
    assert_eq!(m, Matrix::from_row_major(2, 3, &flat).unwrap());
    assert_eq!(m, Matrix::from_fn(2, 3, |r, c| (r * 3 + c + 1) as f64));
    assert_eq!(Vec::from(m.clone()), flat);
    assert_eq!(m.to_row_major(), flat);
    assert_ne!(m, Matrix::from([[1.0, 2.0], [4.0, 5.0]]), "shapes differ");
    assert_ne!(
        m,
        Matrix::from([[1.0, 2.0, 3.0], [4.0, 5.0, 7.0]]),
        "an element differs"
    );
    // Equality ignores the padding a row stride brings.
    assert!(m.row_stride() > 3);
    assert_eq!(m.as_ref(), MatRef::from_slice(&flat, 2, 3, 3).unwrap());
}

#[test]
fn matrix_constructors_reject_mismatched_sizes() {
    assert_eq!(
        Matrix::<f32>::from_vec(2, 3, vec![0.0; 5]).unwrap_err(),
        Error::DimensionMismatch {
            arg: "data",
            expected: 6,
            found: 5,
            because: "rows × cols"
        }
    );
    let ragged: [&[f32]; 3] = [&[1.0, 2.0], &[3.0, 4.0], &[5.0]];
    assert_eq!(
        Matrix::from_rows(&ragged).unwrap_err(),
        Error::DimensionMismatch {
            arg: "rows",
            expected: 2,
            found: 1,
            because: "the length of row 0"
        }
    );
    let none: [Vec<f64>; 0] = [];
    let empty = Matrix::from_rows(&none).unwrap();
    assert_eq!((empty.rows(), empty.cols()), (0, 0));
}

#[test]
fn views_convert_to_owned_matrices_and_back() {
    let data: Vec<f32> = (0..20).map(|i| i as f32).collect();
    // Rows 0..3 of a 4 × 5 array, columns 1..4: row stride 5.
    let v = MatRef::from_slice(&data[1..], 3, 3, 5).unwrap();
    let m = Matrix::from(v);
    assert_eq!(
        m.to_row_major(),
        [1.0, 2.0, 3.0, 6.0, 7.0, 8.0, 11.0, 12.0, 13.0]
    );
    assert_eq!(v.to_matrix(), m);
    assert_eq!(MatRef::from(&m), v);

    let mut m2 = m.clone();
    let mut w = MatMut::from(&mut m2);
    w.row_mut(0)[0] = -1.0;
    assert_eq!(w.to_matrix().get(0, 0), -1.0);
    let r: MatRef<'_, f32> = w.into();
    assert_eq!(r.get(0, 0), -1.0);
    assert_ne!(m2, m);
}

#[test]
fn views_and_matrices_print_their_shape_and_rows() {
    let m = Matrix::from([[1.0f32, 2.0], [3.0, 4.0]]);
    assert_eq!(format!("{m:?}"), "Matrix(2×2) [[1.0, 2.0], [3.0, 4.0]]");
    assert_eq!(
        format!("{:?}", m.as_ref()),
        "MatRef(2×2) [[1.0, 2.0], [3.0, 4.0]]"
    );
    let net = Network::<f64>::builder(2)
        .layer(3, Activation::Tanh)
        .layer(1, Activation::Identity)
        .build()
        .unwrap();
    let s = format!("{net:?}");
    assert!(s.contains("Network"), "{s}");
}

/// A network trained on another thread comes back intact (`Network: Send`), and a shared one
/// predicts from several threads at once (`Network: Sync`).
#[test]
fn networks_move_between_and_are_shared_by_threads() {
    let mut net = Network::<f32>::builder(2)
        .layer(4, Activation::Tanh)
        .layer(1, Activation::Identity)
        .seed(3)
        .build()
        .unwrap();
    let net = std::thread::spawn(move || {
        net.train_sample(&[0.5, -0.5], &[1.0], 0.1).unwrap();
        net
    })
    .join()
    .unwrap();
    let y = net.predict(&[0.5, -0.5]).unwrap();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| assert_eq!(net.predict(&[0.5, -0.5]).unwrap(), y));
        }
    });
}
