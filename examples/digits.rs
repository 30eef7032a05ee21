//! The main job: a 64-32-10 network (sigmoid hidden layer, softmax output, cross-entropy)
//! learns the 1797 8×8 handwritten digits of `examples/data/digits.csv` by per-sample SGD,
//! exactly the seed's step, and classifies a held-out fifth of them.
//!
//! ```sh
//! cargo run --release --example digits
//! cargo run --release --example digits -- --batch 32 --lr 2
//! cargo run --release --example digits -- --hidden 64,32 --plot curve.png
//! cargo run --release --example digits -- --mnist ~/data/mnist --hidden 128 --epochs 10
//! ```
//!
//! Flags (all optional):
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--epochs N` | 30 | passes over the training set |
//! | `--lr F` | 0.2 | learning rate α |
//! | `--batch B` | 1 | samples per step: 1 is per-sample SGD, more is minibatch SGD |
//! | `--hidden L1,L2,…` | 32 | hidden layer sizes (sigmoid) |
//! | `--threads N` | all cores | rayon threads (layers this small stay on one) |
//! | `--seed S` | 2024 | seed of the split, the initial weights and the epoch orders |
//! | `--plot PATH` | — | write the training curve (loss, test accuracy) as a PNG |
//! | `--mnist DIR` | — | train on MNIST instead: the four IDX files in DIR |
//! | `--data PATH` | examples/data/digits.csv | the digits CSV |
//!
//! Per epoch it prints the mean training loss (before each step), the accuracy on the test
//! split and the training speed in samples per second (training steps only).
//!
//! The data: see `examples/data/README.md` (UCI, CC BY 4.0, credit E. Alpaydin and
//! C. Kaynak). MNIST is not shipped; `--mnist DIR` reads `train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`
//! (uncompressed; the `.` spelling `train-images.idx3-ubyte` is accepted too).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use deltaprop::{Activation, EpochOptions, Loss, MatRef, Network};
use indicatif::{ProgressBar, ProgressStyle};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Command-line options.
#[derive(Debug, Clone)]
struct Args {
    epochs: usize,
    lr: f32,
    batch: usize,
    hidden: Vec<usize>,
    threads: Option<usize>,
    seed: u64,
    plot: Option<PathBuf>,
    mnist: Option<PathBuf>,
    data: PathBuf,
}

const USAGE: &str = "usage: digits [--epochs N] [--lr F] [--batch B] [--hidden L1,L2,...] \
[--threads N] [--seed S] [--plot PATH.png] [--mnist DIR] [--data PATH.csv]";

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        epochs: 30,
        lr: 0.2,
        batch: 1,
        hidden: vec![32],
        threads: None,
        seed: 2024,
        plot: None,
        mnist: None,
        data: Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv"),
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
            v.parse()
                .map_err(|_| format!("{flag}: cannot read {v:?} as a number"))
        }
        match flag.as_str() {
            "--epochs" => a.epochs = num(&flag, &value()?)?,
            "--lr" => a.lr = num(&flag, &value()?)?,
            "--batch" => a.batch = num(&flag, &value()?)?,
            "--threads" => a.threads = Some(num(&flag, &value()?)?),
            "--seed" => a.seed = num(&flag, &value()?)?,
            "--hidden" => {
                let v = value()?;
                a.hidden = if v.is_empty() || v == "none" {
                    vec![]
                } else {
                    v.split(',')
                        .map(|s| num(&flag, s.trim()))
                        .collect::<Result<_, _>>()?
                };
            }
            "--plot" => a.plot = Some(PathBuf::from(value()?)),
            "--mnist" => a.mnist = Some(PathBuf::from(value()?)),
            "--data" => a.data = PathBuf::from(value()?),
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    if a.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    if a.hidden.contains(&0) {
        return Err("--hidden: layer sizes must be at least 1".into());
    }
    Ok(a)
}

/// Samples as rows: `x` is N × inputs, pixel intensities in [0, 1]; `labels` the classes.
#[derive(Debug, Clone, PartialEq)]
struct Dataset {
    inputs: usize,
    x: Vec<f32>,
    labels: Vec<u8>,
}

impl Dataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    /// The rows `idx`, in that order.
    fn subset(&self, idx: &[usize]) -> Dataset {
        let h = self.inputs;
        Dataset {
            inputs: h,
            x: idx
                .iter()
                .flat_map(|&i| &self.x[i * h..(i + 1) * h])
                .copied()
                .collect(),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// One-hot targets, N × classes.
    fn targets(&self, classes: usize) -> Vec<f32> {
        let mut t = vec![0.0; self.len() * classes];
        for (i, &c) in self.labels.iter().enumerate() {
            t[i * classes + c as usize] = 1.0;
        }
        t
    }
}

/// The digits CSV: a header, then 64 intensities in [0, 1] and the label per row.
fn load_csv(path: &Path) -> Res<Dataset> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} (run from the crate, or pass --data)",
            path.display()
        )
    })?;
    let mut lines = text.lines();
    let header = lines.next().ok_or("empty CSV")?;
    let inputs = header.split(',').count() - 1;
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != inputs + 1 {
            return Err(format!(
                "line {}: {} fields, expected {}",
                n + 2,
                fields.len(),
                inputs + 1
            )
            .into());
        }
        for f in &fields[..inputs] {
            x.push(
                f.trim()
                    .parse::<f32>()
                    .map_err(|e| format!("line {}: {e}", n + 2))?,
            );
        }
        let label: u8 = fields[inputs]
            .trim()
            .parse()
            .map_err(|e| format!("line {}: {e}", n + 2))?;
        if label > 9 {
            return Err(format!("line {}: label {label} is not a digit", n + 2).into());
        }
        labels.push(label);
    }
    Ok(Dataset { inputs, x, labels })
}

/// The IDX format of MNIST: `0 0 type ndims`, ndims big-endian u32 sizes, then the data.
mod idx {
    use super::{Dataset, Res};
    use std::path::Path;

    /// The sizes and the bytes of an IDX file of unsigned bytes (type 0x08).
    pub fn parse(bytes: &[u8]) -> Result<(Vec<usize>, &[u8]), String> {
        if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
            return Err("not an IDX file (bad magic)".into());
        }
        if bytes[2] != 0x08 {
            return Err(format!(
                "IDX element type {:#04x}, only unsigned bytes (0x08) are read",
                bytes[2]
            ));
        }
        let ndims = bytes[3] as usize;
        let header = 4 + 4 * ndims;
        if ndims == 0 || bytes.len() < header {
            return Err("IDX header truncated".into());
        }
        let dims: Vec<usize> = bytes[4..header]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
            .collect();
        let len = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or("IDX sizes overflow")?;
        let data = &bytes[header..];
        if data.len() != len {
            return Err(format!(
                "IDX data has {} bytes, the sizes {dims:?} need {len}",
                data.len()
            ));
        }
        Ok((dims, data))
    }

    fn read(dir: &Path, names: &[&str]) -> Res<Vec<u8>> {
        for name in names {
            if let Ok(b) = std::fs::read(dir.join(name)) {
                return Ok(b);
            }
        }
        Err(format!("{}: none of {names:?} found", dir.display()).into())
    }

    /// Images (N × rows × cols, scaled to [0, 1]) and labels (N) as a data set.
    pub fn dataset(images: &[u8], labels: &[u8]) -> Res<Dataset> {
        let (dims, pixels) = parse(images).map_err(|e| format!("images: {e}"))?;
        let (ldims, classes) = parse(labels).map_err(|e| format!("labels: {e}"))?;
        if dims.len() != 3 || ldims.len() != 1 || dims[0] != ldims[0] {
            return Err(format!("images {dims:?} and labels {ldims:?} do not match").into());
        }
        if let Some(c) = classes.iter().find(|&&c| c > 9) {
            return Err(format!("label {c} is not a digit").into());
        }
        Ok(Dataset {
            inputs: dims[1] * dims[2],
            x: pixels.iter().map(|&p| p as f32 / 255.0).collect(),
            labels: classes.to_vec(),
        })
    }

    /// MNIST's training and test sets from `dir`.
    pub fn load_mnist(dir: &Path) -> Res<(Dataset, Dataset)> {
        let train = dataset(
            &read(dir, &["train-images-idx3-ubyte", "train-images.idx3-ubyte"])?,
            &read(dir, &["train-labels-idx1-ubyte", "train-labels.idx1-ubyte"])?,
        )?;
        let test = dataset(
            &read(dir, &["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"])?,
            &read(dir, &["t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"])?,
        )?;
        Ok((train, test))
    }
}

/// A fixed, seeded split: a fifth of the rows for testing, the rest for training.
fn split(data: &Dataset, seed: u64) -> (Dataset, Dataset) {
    let order = EpochOptions {
        seed,
        shuffle: true,
        batch_size: 1,
    }
    .order(0, data.len());
    let n_test = data.len() / 5;
    (data.subset(&order[n_test..]), data.subset(&order[..n_test]))
}

/// Writes the training curve as a PNG: the mean training loss per epoch on the left (from
/// 0), the test accuracy on the right, in frames with grid lines every 5 epochs and every
/// [`grid_step`] of the value. (No text: plotters renders text only with a font feature,
/// which would also change criterion's plots; the scales are printed instead.)
fn plot(path: &Path, losses: &[f64], accuracies: &[f64]) -> Res<()> {
    use plotters::prelude::*;
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    let epochs = losses.len().max(2) as f64;
    let grey = RGBColor(215, 215, 215);
    for (area, ys, colour) in [(&left, losses, RED), (&right, accuracies, BLUE)] {
        let (lo, hi) = range(ys);
        let mut chart = ChartBuilder::on(area)
            .margin(20)
            .build_cartesian_2d(1f64..epochs, lo..hi)?;
        let step = grid_step(hi - lo);
        let mut v = (lo / step).ceil() * step;
        while v <= hi {
            chart.draw_series(LineSeries::new([(1.0, v), (epochs, v)], grey))?;
            v += step;
        }
        for e in (5..=losses.len()).step_by(5) {
            chart.draw_series(LineSeries::new([(e as f64, lo), (e as f64, hi)], grey))?;
        }
        chart.draw_series(std::iter::once(Rectangle::new(
            [(1.0, lo), (epochs, hi)],
            BLACK.stroke_width(1),
        )))?;
        chart.draw_series(LineSeries::new(
            ys.iter().enumerate().map(|(i, &v)| ((i + 1) as f64, v)),
            colour.stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}

/// The plotted range of `ys`: their extent padded by 5 % (from 0 for values ≥ 0 that reach
/// above half their maximum, as a loss curve does).
fn range(ys: &[f64]) -> (f64, f64) {
    let (lo, hi) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    if lo >= 0.0 && lo < hi / 2.0 {
        (0.0, hi + pad)
    } else {
        (lo - pad, hi + pad)
    }
}

/// A grid spacing of 1, 2 or 5 × 10ᵏ giving 4 to 10 lines over `span`.
fn grid_step(span: f64) -> f64 {
    let raw = span / 5.0;
    let unit = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * unit)
        .find(|&s| s >= raw)
        .unwrap_or(unit * 10.0)
}

/// The median (the upper one for an even count); the machine's hiccups only move the tails.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn run(args: &Args) -> Res<()> {
    let (train, test) = match &args.mnist {
        Some(dir) => idx::load_mnist(dir)?,
        None => split(&load_csv(&args.data)?, args.seed),
    };
    let classes = 10;
    let mut builder = Network::<f32>::builder(train.inputs);
    for &h in &args.hidden {
        builder = builder.layer(h, Activation::Sigmoid);
    }
    let mut net = builder
        .layer(classes, Activation::Softmax)
        .loss(Loss::CrossEntropy)
        .seed(args.seed)
        .build()?;
    let sizes: Vec<String> = std::iter::once(train.inputs)
        .chain(net.layers().iter().map(|l| l.outputs()))
        .map(|s| s.to_string())
        .collect();
    println!(
        "{}: {} training and {} test samples; network {} (sigmoid hidden, softmax + cross-entropy), f32",
        if args.mnist.is_some() {
            "MNIST"
        } else {
            "digits"
        },
        train.len(),
        test.len(),
        sizes.join("-"),
    );
    println!(
        "{} SGD, α = {}, {} epochs, simd level {}",
        if args.batch == 1 {
            "per-sample".to_owned()
        } else {
            format!("minibatch (B = {})", args.batch)
        },
        args.lr,
        args.epochs,
        deltaprop::simd::active(),
    );

    let (tx, tt) = (train.x.as_slice(), train.targets(classes));
    let x = MatRef::from_slice(tx, train.len(), train.inputs, train.inputs)?;
    let t = MatRef::from_slice(&tt, train.len(), classes, classes)?;
    let test_t = test.targets(classes);
    let xv = MatRef::from_slice(&test.x, test.len(), test.inputs, test.inputs)?;
    let tv = MatRef::from_slice(&test_t, test.len(), classes, classes)?;
    let opts = EpochOptions {
        batch_size: args.batch,
        shuffle: true,
        seed: args.seed,
    };

    let bar = ProgressBar::new(train.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} {per_sec}")?
            .progress_chars("=> "),
    );
    let (mut losses, mut accuracies) = (vec![], vec![]);
    let mut speeds = vec![];
    let mut reached = None;
    for epoch in 0..args.epochs {
        bar.reset();
        bar.set_prefix(format!("epoch {:>3}", epoch + 1));
        let start = Instant::now();
        let loss = net.train_epoch_with(x, t, args.lr, epoch, &opts, |done| {
            if done % 64 == 0 || done == train.len() {
                bar.set_position(done as u64);
            }
        })?;
        let secs = start.elapsed().as_secs_f64();
        let eval = net.evaluate(xv, tv)?;
        speeds.push(train.len() as f64 / secs);
        if reached.is_none() && eval.accuracy >= 0.96 {
            reached = Some(epoch + 1);
        }
        bar.suspend(|| {
            println!(
                "epoch {:>3}  loss {:.4}  test accuracy {:>6.2} % ({}/{})  {:>9.0} samples/s",
                epoch + 1,
                loss,
                100.0 * eval.accuracy,
                eval.correct,
                eval.samples,
                train.len() as f64 / secs,
            )
        });
        losses.push(loss as f64);
        accuracies.push(eval.accuracy);
    }
    bar.finish_and_clear();
    if let Some(&acc) = accuracies.last() {
        println!(
            "test accuracy {:.2} % after {} epochs{}; training {:.0} samples/s (median epoch)",
            100.0 * acc,
            args.epochs,
            match reached {
                Some(e) => format!(" (≥ 96 % from epoch {e})"),
                None => String::new(),
            },
            median(&mut speeds),
        );
    }
    if let Some(path) = &args.plot {
        plot(path, &losses, &accuracies)?;
        let ((l0, l1), (a0, a1)) = (range(&losses), range(&accuracies));
        println!(
            "training curve written to {}: epochs 1–{} across (grid every 5); left, red: mean \
             training loss, {l0:.3} to {l1:.3} (grid every {}); right, blue: test accuracy, \
             {:.1} % to {:.1} % (grid every {} %)",
            path.display(),
            losses.len(),
            grid_step(l1 - l0),
            100.0 * a0,
            100.0 * a1,
            100.0 * grid_step(a1 - a0),
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = match args.threads {
        #[cfg(feature = "rayon")]
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(|| run(&args)),
            Err(e) => Err(e.into()),
        },
        #[cfg(not(feature = "rayon"))]
        Some(_) => {
            eprintln!("--threads needs the `rayon` feature; running on one thread");
            run(&args)
        }
        None => run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IDX file of unsigned bytes with sizes `dims`.
    fn idx_file(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 0x08, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn idx_files_round_trip() {
        let pixels: Vec<u8> = (0..3 * 2 * 2).map(|i| (i * 20) as u8).collect();
        let images = idx_file(&[3, 2, 2], &pixels);
        let labels = idx_file(&[3], &[7, 0, 9]);
        let (dims, data) = idx::parse(&images).unwrap();
        assert_eq!(dims, [3, 2, 2]);
        assert_eq!(data, pixels.as_slice());
        let d = idx::dataset(&images, &labels).unwrap();
        assert_eq!(d.inputs, 4);
        assert_eq!(d.labels, [7, 0, 9]);
        assert_eq!(d.x[5], 100.0 / 255.0);
    }

    #[test]
    fn mnist_directory_is_read() {
        let dir = std::env::temp_dir().join(format!("deltaprop-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = |n: u32| idx_file(&[n, 28, 28], &vec![255; n as usize * 784]);
        std::fs::write(dir.join("train-images-idx3-ubyte"), img(5)).unwrap();
        std::fs::write(
            dir.join("train-labels-idx1-ubyte"),
            idx_file(&[5], &[1, 2, 3, 4, 5]),
        )
        .unwrap();
        std::fs::write(dir.join("t10k-images.idx3-ubyte"), img(2)).unwrap();
        std::fs::write(dir.join("t10k-labels.idx1-ubyte"), idx_file(&[2], &[0, 9])).unwrap();
        let (train, test) = idx::load_mnist(&dir).unwrap();
        assert_eq!((train.len(), test.len(), train.inputs), (5, 2, 784));
        assert!(train.x.iter().all(|&v| v == 1.0));
        std::fs::remove_file(dir.join("t10k-labels.idx1-ubyte")).unwrap();
        assert!(idx::load_mnist(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_idx_files_are_errors() {
        let good = idx_file(&[2, 2, 2], &[0; 8]);
        assert!(
            idx::parse(&good[..good.len() - 1]).is_err(),
            "truncated data"
        );
        assert!(idx::parse(&good[..6]).is_err(), "truncated header");
        assert!(idx::parse(&[]).is_err());
        let mut bad = good.clone();
        bad[0] = 1;
        assert!(idx::parse(&bad).is_err(), "magic");
        let mut float = good.clone();
        float[2] = 0x0D;
        assert!(idx::parse(&float).unwrap_err().contains("0x0d"));
        let labels = idx_file(&[3], &[1, 2, 3]);
        assert!(idx::dataset(&good, &labels).is_err(), "2 images, 3 labels");
        assert!(
            idx::dataset(&good, &idx_file(&[2], &[1, 10])).is_err(),
            "label 10"
        );
    }

    #[test]
    fn arguments_are_parsed() {
        let a = parse_args(
            "--epochs 5 --lr=0.5 --batch 32 --hidden 64,16 --seed 9 --plot c.png"
                .split(' ')
                .map(String::from),
        )
        .unwrap();
        assert_eq!((a.epochs, a.lr, a.batch, a.seed), (5, 0.5, 32, 9));
        assert_eq!(a.hidden, [64, 16]);
        assert_eq!(a.plot, Some(PathBuf::from("c.png")));
        assert!(parse_args(["--batch".to_owned(), "0".to_owned()]).is_err());
        assert!(parse_args(["--epochs".to_owned()]).is_err());
        assert!(parse_args(["--frobnicate".to_owned()]).is_err());
    }

    #[test]
    fn the_digits_csv_loads_and_splits() {
        let d = load_csv(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv"))
            .unwrap();
        assert_eq!((d.len(), d.inputs), (1797, 64));
        assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        let (train, test) = split(&d, 2024);
        assert_eq!((train.len(), test.len()), (1438, 359));
        assert_eq!(split(&d, 2024).1, test, "the split is fixed by the seed");
    }
}
