//! `kernels::par` against the single-call kernels: the same bits, on shapes that are split
//! (by rows, by columns with a narrow last block, or both) and on one that is not, on one
//! and on two rayon threads; and the same errors, with nothing written.

use deltaprop::kernels::{self, par};
use deltaprop::{Error, Matrix, Scalar};

fn values<T: Scalar>(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<T> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f64(lo + (hi - lo) * ((s >> 11) as f64 / (1u64 << 53) as f64))
        })
        .collect()
}

fn bits<T: Scalar>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn check<T: Scalar>(h: usize, l: usize) {
    let w0 = Matrix::from_row_major(h, l, &values::<T>(h * l, 1, -0.05, 0.05)).unwrap();
    let a_prev = values::<T>(h, 2, 0.0, 1.0);
    let b = values::<T>(l, 3, -0.1, 0.1);
    let delta = values::<T>(l, 4, -0.5, 0.5);
    let d_prev = values::<T>(h, 5, 0.0, 0.25);
    let alpha = T::from_f64(0.01);
    let what = format!("{} {h}x{l}", T::NAME);

    let (mut n1, mut n2) = (vec![T::ZERO; l], vec![T::ZERO; l]);
    kernels::affine(w0.as_ref(), &a_prev, &b, &mut n1).unwrap();
    par::affine(w0.as_ref(), &a_prev, &b, &mut n2).unwrap();
    assert_eq!(bits(&n1), bits(&n2), "affine {what}");

    let (mut p1, mut p2) = (vec![T::ZERO; h], vec![T::ZERO; h]);
    kernels::backward(w0.as_ref(), &delta, &d_prev, &mut p1).unwrap();
    par::backward(w0.as_ref(), &delta, &d_prev, &mut p2).unwrap();
    assert_eq!(bits(&p1), bits(&p2), "backward {what}");

    let (mut w1, mut w2) = (w0.clone(), w0.clone());
    kernels::rank1_update(w1.as_mut(), alpha, &a_prev, &delta).unwrap();
    par::rank1_update(w2.as_mut(), alpha, &a_prev, &delta).unwrap();
    assert_eq!(
        bits(&w1.to_row_major()),
        bits(&w2.to_row_major()),
        "rank1_update {what}"
    );

    let (mut w1, mut w2) = (w0.clone(), w0.clone());
    let (mut p1, mut p2) = (vec![T::ZERO; h], vec![T::ZERO; h]);
    kernels::backward_update(w1.as_mut(), alpha, &a_prev, &delta, &d_prev, &mut p1).unwrap();
    par::backward_update(w2.as_mut(), alpha, &a_prev, &delta, &d_prev, &mut p2).unwrap();
    assert_eq!(bits(&p1), bits(&p2), "backward_update δ̂ {what}");
    assert_eq!(
        bits(&w1.to_row_major()),
        bits(&w2.to_row_major()),
        "backward_update W {what}"
    );

    // A wrong length is the same error as the single-call kernel's, and nothing is written.
    let mut w3 = w0.clone();
    let mut p3 = vec![T::ZERO; h];
    let short = &a_prev[..h - 1];
    let e1 = kernels::backward_update(w3.as_mut(), alpha, short, &delta, &d_prev, &mut p3);
    let e2 = par::backward_update(w3.as_mut(), alpha, short, &delta, &d_prev, &mut p3);
    assert!(matches!(e2, Err(Error::DimensionMismatch { .. })), "{what}");
    assert_eq!(format!("{e1:?}"), format!("{e2:?}"), "{what}");
    assert_eq!(bits(&w3.to_row_major()), bits(&w0.to_row_major()), "{what}");
    assert!(p3.iter().all(|&v| v == T::ZERO), "{what}");
    let mut n3 = vec![T::ZERO; l - 1];
    let e2 = par::affine(w0.as_ref(), &a_prev, &b, &mut n3);
    assert!(matches!(e2, Err(Error::DimensionMismatch { .. })), "{what}");
}

fn all_shapes() {
    // Split by rows and by columns (a 128-column last block): 2.5 MiB of f32.
    check::<f32>(1024, 640);
    // f64, split both ways, a last column block of 88.
    check::<f64>(512, 600);
    // A narrow output layer past the threshold: split by rows only.
    check::<f32>(65_600, 9);
    // Below the threshold: one call.
    check::<f64>(300, 200);
}

#[test]
fn par_kernels_give_the_single_call_bits() {
    all_shapes();
}

#[cfg(feature = "rayon")]
#[test]
fn par_kernels_give_the_same_bits_on_two_threads() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(all_shapes);
}
