//! Determinism: the same seed gives the same network, bit for bit, on every run — in one
//! process, across processes, and (`network_par.rs`) on any number of threads. Across SIMD
//! levels it does not: the levels round differently (the portable level of a default x86-64
//! build has no fused multiply-add; AVX2 and AVX-512 sum in vectors of different widths), so
//! each level has its own bits. These tests pin both facts down.
//!
//! Processes: the test binary runs itself (`std::env::current_exe`) with
//! `DELTAPROP_DETERMINISM_CHILD=1` and a forced `DELTAPROP_SIMD`, and compares the
//! fingerprint the child prints.

use std::process::Command;

use deltaprop::{Activation, EpochOptions, Loss, MatRef, Network, Scalar, simd};

/// FNV-1a over 64-bit words.
fn fnv(words: impl IntoIterator<Item = u64>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for w in words {
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn data<T: Scalar>(n: usize, seed: u64) -> Vec<T> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            T::from_f64((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        })
        .collect()
}

/// Builds a network from a seed and trains it every way the crate offers — per sample,
/// minibatches, shuffled epochs of both, gradients applied by hand — and returns the bits of
/// every weight, bias, loss and prediction along the way.
fn trained<T: Scalar>(seed: u64) -> Vec<u64> {
    let (h, l, rows) = (37, 5, 40);
    let mut net = Network::<T>::builder(h)
        .layer(48, Activation::Tanh)
        .layer(17, Activation::Gelu)
        .layer(l, Activation::Softmax)
        .loss(Loss::CrossEntropy)
        .seed(seed)
        .build()
        .unwrap();
    let x = data::<T>(rows * h, seed ^ 1);
    let t: Vec<T> = (0..rows * l)
        .map(|i| T::from_f64(f64::from(u8::from(i % l == (i / l) % l))))
        .collect();
    let (xm, tm) = (
        MatRef::from_slice(&x, rows, h, h).unwrap(),
        MatRef::from_slice(&t, rows, l, l).unwrap(),
    );
    let lr = T::from_f64(0.05);
    let mut out: Vec<u64> = vec![];
    for i in 0..rows {
        let psi = net
            .train_sample(&x[i * h..][..h], &t[i * l..][..l], lr)
            .unwrap();
        out.push(psi.to_f64().to_bits());
    }
    out.push(net.train_batch(xm, tm, lr).unwrap().to_f64().to_bits());
    for (epoch, batch_size) in [(0, 1), (1, 8), (2, 7)] {
        let opts = EpochOptions {
            batch_size,
            shuffle: true,
            seed: seed ^ 7,
        };
        let psi = net.train_epoch(xm, tm, lr, epoch, &opts).unwrap();
        out.push(psi.to_f64().to_bits());
    }
    let mut g = net.gradients();
    net.gradient_batch(xm, tm, &mut g).unwrap();
    net.apply_gradients(&g, lr).unwrap();
    out.extend(
        net.predict(&x[..h])
            .unwrap()
            .iter()
            .map(|v| v.to_f64().to_bits()),
    );
    for layer in net.layers() {
        out.extend(
            layer
                .weights()
                .to_row_major()
                .iter()
                .map(|v| v.to_f64().to_bits()),
        );
        out.extend(layer.bias().iter().map(|v| v.to_f64().to_bits()));
    }
    out
}

/// The fingerprint of [`trained`] for f32 and f64.
fn fingerprint() -> (u64, u64) {
    (fnv(trained::<f32>(21)), fnv(trained::<f64>(21)))
}

/// Runs the fingerprint in a fresh process on `level`; `None` if the child did not print one.
fn child_fingerprint(level: simd::Level) -> (String, Option<(u64, u64)>) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_prints_its_fingerprint",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DELTAPROP_DETERMINISM_CHILD", "1")
        .env("DELTAPROP_SIMD", level.name())
        .output()
        .expect("the test binary runs itself");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find_map(|l| {
        l.split_once("deltaprop-fingerprint: ")
            .map(|(_, fp)| fp.to_owned())
    });
    let parsed = line.and_then(|l| {
        let mut it = l.split_whitespace();
        let (lv, a, b) = (it.next()?, it.next()?, it.next()?);
        (lv == level.name()).then_some(())?;
        Some((
            u64::from_str_radix(a, 16).ok()?,
            u64::from_str_radix(b, 16).ok()?,
        ))
    });
    (text, parsed)
}

/// Not a test of its own: the child process's half of the tests below (it does nothing
/// unless `DELTAPROP_DETERMINISM_CHILD` is set).
#[test]
fn child_prints_its_fingerprint() {
    if std::env::var_os("DELTAPROP_DETERMINISM_CHILD").is_none() {
        return;
    }
    let (a, b) = fingerprint();
    println!(
        "deltaprop-fingerprint: {} {a:016x} {b:016x}",
        simd::active()
    );
}

#[test]
fn the_same_seed_gives_the_same_bits_twice_in_one_process() {
    assert!(trained::<f32>(21) == trained::<f32>(21));
    assert!(trained::<f64>(21) == trained::<f64>(21));
    assert!(trained::<f32>(21) != trained::<f32>(22), "the seed matters");
}

#[test]
fn the_same_seed_gives_the_same_bits_in_every_process_on_every_level() {
    for level in simd::available() {
        let runs: Vec<_> = (0..2).map(|_| child_fingerprint(level)).collect();
        for (text, fp) in &runs {
            assert!(
                fp.is_some(),
                "level {level}: the child printed no fingerprint:\n{text}"
            );
        }
        assert_eq!(runs[0].1, runs[1].1, "level {level}: two processes differ");
        if level == simd::active() {
            assert_eq!(
                runs[0].1,
                Some(fingerprint()),
                "level {level}: child and parent differ"
            );
        }
        eprintln!("level {level}: {:016x?}", runs[0].1.unwrap());
    }
}

/// The honest finding, asserted so that a change is noticed: levels with different
/// arithmetic give different bits (the same seed is reproducible per level, not across
/// levels).
#[test]
fn levels_differ_in_the_last_bits() {
    let levels = simd::available();
    if levels.len() < 2 {
        eprintln!("skipped: this CPU has one SIMD level");
        return;
    }
    let fps: Vec<_> = levels
        .iter()
        .map(|&l| (l, child_fingerprint(l).1.expect("a fingerprint")))
        .collect();
    for w in fps.windows(2) {
        eprintln!(
            "{} vs {}: f32 {}, f64 {}",
            w[0].0,
            w[1].0,
            if w[0].1.0 == w[1].1.0 {
                "same"
            } else {
                "different"
            },
            if w[0].1.1 == w[1].1.1 {
                "same"
            } else {
                "different"
            }
        );
    }
    // Portable (no FMA on a default x86-64 build) against the FMA levels.
    assert_ne!(
        fps[0].1, fps[1].1,
        "{} and {} agree bit for bit",
        fps[0].0, fps[1].0
    );
}
