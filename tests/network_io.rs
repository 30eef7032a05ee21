//! Save and load (feature `serde`): exact round trips; truncated or corrupt files are errors.
#![cfg(feature = "serde")]

use deltaprop::{Activation, Error, Loss, Network};

fn trained() -> Network<f32> {
    let mut net = Network::<f32>::builder(4)
        .layer(6, Activation::Gelu)
        .layer(3, Activation::Softmax)
        .loss(Loss::CrossEntropy)
        .seed(9)
        .build()
        .unwrap();
    for i in 0..20 {
        let x = [0.1 * i as f32, -0.3, 0.7, 1.0 / (1 + i) as f32];
        let mut t = [0.0; 3];
        t[i % 3] = 1.0;
        net.train_sample(&x, &t, 0.1).unwrap();
    }
    net
}

fn same<T: deltaprop::Scalar>(a: &Network<T>, b: &Network<T>) -> bool {
    a.loss() == b.loss()
        && a.layers().len() == b.layers().len()
        && a.layers().iter().zip(b.layers()).all(|(x, y)| {
            x.activation() == y.activation()
                && x.weights().to_row_major() == y.weights().to_row_major()
                && x.bias() == y.bias()
        })
}

#[test]
fn json_round_trip_is_exact() {
    let net = trained();
    let back = Network::<f32>::from_json(&net.to_json()).unwrap();
    assert!(same(&net, &back));
    let mut f64net = Network::<f64>::builder(3)
        .layer(5, Activation::Tanh)
        .layer(2, Activation::Identity)
        .build()
        .unwrap();
    f64net
        .train_sample(&[0.1, 0.2, 0.3], &[1.0, -1.0], 0.05)
        .unwrap();
    let back = Network::<f64>::from_json(&f64net.to_json()).unwrap();
    assert!(same(&f64net, &back));
    // And it predicts the same, bit for bit.
    assert_eq!(
        f64net.predict(&[0.3, 0.2, 0.1]).unwrap(),
        back.predict(&[0.3, 0.2, 0.1]).unwrap()
    );
}

#[test]
fn file_round_trip_and_io_errors() {
    let net = trained();
    let path = std::env::temp_dir().join(format!("deltaprop-io-{}.json", std::process::id()));
    net.save(&path).unwrap();
    let back = Network::<f32>::load(&path).unwrap();
    assert!(same(&net, &back));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Network::<f32>::load(&path).unwrap_err(),
        Error::Io { .. }
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let text = trained().to_json();
    for cut in (0..text.len()).step_by(7) {
        let e = Network::<f32>::from_json(&text[..cut]).unwrap_err();
        assert!(matches!(e, Error::InvalidFormat { .. }), "{e}");
    }
}

#[test]
fn corrupt_files_are_errors_that_say_why() {
    let text = trained().to_json();
    let cases = [
        (
            text.replace("deltaprop-network", "deltaprop-netwerk"),
            "format",
        ),
        (text.replace("\"version\":1", "\"version\":2"), "version 2"),
        (text.replace("\"f32\"", "\"f16\""), "f16"),
        (text.replace("CrossEntropy", "Hinge"), "Hinge"),
        (text.replace("Gelu", "Swish"), "Swish"),
        (text.replace("\"inputs\":6", "\"inputs\":7"), "layer 1"),
        (text.replace("\"Softmax\"", "\"Sigmoid\""), "Softmax"),
        (text.replacen("\"bias\":[", "\"bias\":[1e999,", 1), ""),
        (text.replacen("\"weights\":[", "\"weights\":[\"x\",", 1), ""),
        (text.replace("\"loss\"", "\"extra\":1,\"loss\""), "extra"),
        ("[]".to_owned(), ""),
        (String::new(), ""),
    ];
    for (bad, why) in cases {
        let e = Network::<f32>::from_json(&bad).unwrap_err();
        assert!(matches!(e, Error::InvalidFormat { .. }), "{e}");
        assert!(e.to_string().contains(why), "{e} should mention {why}");
    }
    // Through the generic serde path as well.
    assert!(serde_json::from_str::<Network<f32>>(&text).is_ok());
    assert!(serde_json::from_str::<Network<f64>>(&text).is_err());
}
