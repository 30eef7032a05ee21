//! Random sequences of public calls with often-invalid arguments, and the invariants checked
//! after every call.
//!
//! One harness, two drivers: `tests/api_sequence.rs` feeds it seeded pseudo-random choices (a
//! fixed budget in `cargo test`, more by hand), and the cargo-fuzz target
//! `fuzz/fuzz_targets/api_sequence.rs` feeds it the fuzzer's bytes. A [`Source`] turns either
//! into choices, so a byte string is a sequence: the element type, a network (by the builder
//! or from layers), then calls to every public method, kernel (on every SIMD level this CPU
//! has, the active one and the reference twins) and, with the `serde` feature, save-format
//! round trips and corrupted files.
//!
//! Each argument is wrong with a small probability (a length, a shape, a NaN or ∞, a learning
//! rate, a batch size, an empty batch, cross-entropy targets that are not a distribution,
//! gradients of another network), so most calls are valid and the network keeps training.
//! After every call:
//! - it did not panic (every call runs under `catch_unwind`);
//! - it returned `Err` exactly when an argument was wrong — except `Diverged`, which a valid
//!   training call may return, but never while every weight and bias is at most 1000 in
//!   magnitude and the learning rate at most 0.5;
//! - after an `Err`, the network, every output buffer (NaN-poisoned) and every guard zone
//!   around a view have their bits from before the call (an epoch that diverges keeps the
//!   steps before the diverging one, as documented);
//! - after `Ok`: losses are finite, and outputs are finite while the weights are bounded as
//!   above; softmax outputs are a distribution; methods that do not train left the network's
//!   bits alone; `train_batch` of one row is `train_sample` bit for bit; `predict_into` is
//!   `predict` bit for bit; kernels wrote nothing outside their views.

// Each driver uses a different part of it.
#![allow(dead_code)]

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};

use deltaprop::kernels::{self, KernelSet};
use deltaprop::{
    Activation, EpochOptions, Error, Gradients, Layer, Loss, MatMut, MatRef, Matrix, Network,
    Scalar, reference, simd,
};

/// With the `serde` feature, what saving and loading need of the element type.
#[cfg(feature = "serde")]
pub trait Saved: serde::Serialize + serde::de::DeserializeOwned {}
#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Saved for T {}
/// Without the `serde` feature, nothing.
#[cfg(not(feature = "serde"))]
pub trait Saved {}
#[cfg(not(feature = "serde"))]
impl<T> Saved for T {}

/// The element types, with what the harness needs beyond [`Scalar`].
pub trait HFloat: Scalar + Saved {
    /// A quiet NaN with its own payload: what output buffers hold before a call.
    const POISON: Self;
    /// NaN.
    const NAN: Self;
    /// +∞.
    const INF: Self;
    /// The bits, widened to `u64`.
    fn bits(self) -> u64;
}

impl HFloat for f32 {
    const POISON: Self = f32::from_bits(0x7fc0_dead);
    const NAN: Self = f32::NAN;
    const INF: Self = f32::INFINITY;
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl HFloat for f64 {
    const POISON: Self = f64::from_bits(0x7ff8_0000_0000_dead);
    const NAN: Self = f64::NAN;
    const INF: Self = f64::INFINITY;
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// The guard value around output views: finite, so that any write to it (even adding NaN)
/// changes its bits.
const GUARD: f64 = 1_048_576.5;

/// Where the choices come from: a seeded SplitMix64 stream (endless) or a byte string (after
/// its end every choice is 0 and [`Source::exhausted`] is true).
pub struct Source<'a> {
    bytes: &'a [u8],
    pos: usize,
    state: u64,
    seeded: bool,
}

impl<'a> Source<'a> {
    /// An endless stream from `seed`.
    pub fn seeded(seed: u64) -> Self {
        Source {
            bytes: &[],
            pos: 0,
            state: seed,
            seeded: true,
        }
    }

    /// The choices of `bytes`.
    pub fn bytes(bytes: &'a [u8]) -> Self {
        Source {
            bytes,
            pos: 0,
            state: 0,
            seeded: false,
        }
    }

    /// Whether a byte string has been used up.
    pub fn exhausted(&self) -> bool {
        !self.seeded && self.pos >= self.bytes.len()
    }

    fn byte(&mut self) -> u8 {
        if self.seeded {
            self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        } else {
            let b = self.bytes.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
            b
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.byte()) << 8 | u16::from(self.byte())
    }

    fn u64(&mut self) -> u64 {
        (0..4).fold(0, |acc, _| acc << 16 | u64::from(self.u16()))
    }

    /// Uniform in `0..n` (n ≤ 65536).
    fn below(&mut self, n: usize) -> usize {
        if n <= 256 {
            usize::from(self.byte()) % n
        } else {
            usize::from(self.u16()) % n
        }
    }

    /// True with probability about 1/n.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        f64::from(self.u16()) / 65536.0
    }

    fn pick<V: Copy>(&mut self, v: &[V]) -> V {
        v[self.below(v.len())]
    }
}

/// Counts of what a run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Sequences run.
    pub sequences: usize,
    /// Public calls made and checked.
    pub calls: usize,
    /// Calls that returned `Ok`.
    pub ok: usize,
    /// Calls that returned `Err` for a wrong argument (and were expected to).
    pub rejected: usize,
    /// Valid training calls that returned `Diverged`.
    pub diverged: usize,
    /// Calls after which a weight was non-finite: a training call that returned `Ok` (only
    /// with a learning rate above 0.5 or weights above 1000 before it), or an epoch that
    /// diverged after such steps. The sequence then goes on with a new network.
    pub nonfinite_after_ok: usize,
}

impl Stats {
    /// Adds `o`'s counts to these.
    pub fn add(&mut self, o: &Stats) {
        self.sequences += o.sequences;
        self.calls += o.calls;
        self.ok += o.ok;
        self.rejected += o.rejected;
        self.diverged += o.diverged;
        self.nonfinite_after_ok += o.nonfinite_after_ok;
    }
}

/// One sequence from `seed`.
pub fn run_seed(seed: u64) -> Stats {
    let mut src = Source::seeded(seed);
    let calls = 1 + src.below(40);
    run(&mut src, calls)
}

/// One sequence from the bytes `data` (the fuzz target's entry point): calls until the bytes
/// run out, at most 200.
pub fn run_bytes(data: &[u8]) -> Stats {
    let mut src = Source::bytes(data);
    run(&mut src, 200)
}

fn run(src: &mut Source<'_>, calls: usize) -> Stats {
    if src.one_in(2) {
        Harness::<f32>::new(src).run(src, calls)
    } else {
        Harness::<f64>::new(src).run(src, calls)
    }
}

/// What a call should do, from the arguments drawn for it.
#[derive(Debug, Default)]
struct Expect {
    /// The wrong arguments (empty: a valid call).
    defects: Vec<&'static str>,
    /// A valid call of this method may return `Diverged`.
    may_diverge: bool,
    /// A `Diverged` from this method may keep earlier steps (an epoch).
    diverged_keeps_steps: bool,
}

impl Expect {
    fn valid(&self) -> bool {
        self.defects.is_empty()
    }
    fn bad(&mut self, what: &'static str) {
        self.defects.push(what);
    }
}

/// A buffer holding a `rows × cols` view at a random stride and offset, with guard zones.
struct Buf<T: HFloat> {
    data: Vec<T>,
    off: usize,
    rows: usize,
    cols: usize,
    stride: usize,
    before: Vec<u64>,
}

impl<T: HFloat> Buf<T> {
    /// An input view of random values in [−2, 2] (NaN guards, so an over-read shows), or an
    /// output view of poison (finite guards, so a stray write shows).
    fn new(rows: usize, cols: usize, output: bool, src: &mut Source<'_>) -> Self {
        let stride = cols + [0, 0, 1, 3][src.below(4)];
        let off = 1 + src.below(8);
        let span = if rows == 0 {
            0
        } else {
            (rows - 1) * stride + cols
        };
        let guard = if output {
            T::from_f64(GUARD)
        } else {
            T::POISON
        };
        let mut data = vec![guard; off + span + 9];
        for r in 0..rows {
            for c in 0..cols {
                data[off + r * stride + c] = if output {
                    T::POISON
                } else {
                    T::from_f64(4.0 * src.unit() - 2.0)
                };
            }
        }
        let before = data.iter().map(|v| v.bits()).collect();
        Buf {
            data,
            off,
            rows,
            cols,
            stride,
            before,
        }
    }

    fn vector(len: usize, output: bool, src: &mut Source<'_>) -> Self {
        Self::new(1, len, output, src)
    }

    /// Puts NaN, ∞ or −∞ at a random element of the view (if it has one).
    fn poke_non_finite(&mut self, src: &mut Source<'_>) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return false;
        }
        let (r, c) = (src.below(self.rows), src.below(self.cols));
        self.data[self.off + r * self.stride + c] = src.pick(&[T::NAN, T::INF, -T::INF]);
        self.before = self.data.iter().map(|v| v.bits()).collect();
        true
    }

    fn slice(&self) -> &[T] {
        &self.data[self.off..self.off + self.cols]
    }
    fn slice_mut(&mut self) -> &mut [T] {
        &mut self.data[self.off..self.off + self.cols]
    }
    fn view(&self) -> MatRef<'_, T> {
        MatRef::from_slice(&self.data[self.off..], self.rows, self.cols, self.stride).unwrap()
    }
    fn view_mut(&mut self) -> MatMut<'_, T> {
        MatMut::from_slice(
            &mut self.data[self.off..],
            self.rows,
            self.cols,
            self.stride,
        )
        .unwrap()
    }
    fn in_view(&self, i: usize) -> bool {
        i >= self.off
            && self.rows > 0
            && self.cols > 0
            && (i - self.off) / self.stride < self.rows
            && (i - self.off) % self.stride < self.cols
    }
    fn unchanged(&self) -> bool {
        self.data
            .iter()
            .map(|v| v.bits())
            .eq(self.before.iter().copied())
    }
    fn guards_intact(&self) -> bool {
        (0..self.data.len()).all(|i| self.in_view(i) || self.data[i].bits() == self.before[i])
    }
    fn finite(&self) -> bool {
        (0..self.data.len()).all(|i| !self.in_view(i) || self.data[i].is_finite())
    }
}

/// Every weight and bias bit, every activation and the loss.
fn snapshot<T: HFloat>(net: &Network<T>) -> (Loss, Vec<(Activation, Vec<u64>)>) {
    let layers = net
        .layers()
        .iter()
        .map(|l| {
            let mut bits: Vec<u64> = l
                .weights()
                .to_row_major()
                .iter()
                .map(|v| v.bits())
                .collect();
            bits.extend(l.bias().iter().map(|v| v.bits()));
            (l.activation(), bits)
        })
        .collect();
    (net.loss(), layers)
}

fn bits<T: HFloat>(v: &[T]) -> Vec<u64> {
    v.iter().map(|x| x.bits()).collect()
}

/// Every weight and bias finite and at most `bound` in magnitude.
fn bounded<T: HFloat>(net: &Network<T>, bound: f64) -> bool {
    net.layers().iter().all(|l| {
        let ok = |v: &T| v.is_finite() && v.to_f64().abs() <= bound;
        l.weights().to_row_major().iter().all(ok) && l.bias().iter().all(ok)
    })
}

fn all_finite<T: HFloat>(net: &Network<T>) -> bool {
    bounded(net, f64::INFINITY)
}

/// Runs `f` under `catch_unwind`; a panic fails the harness with `what`.
fn call<R>(what: &str, f: impl FnOnce() -> Result<R, Error>) -> Result<R, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: the call panicked ({msg}); it must return an Err instead")
        }
    }
}

const ACTS: [Activation; 8] = [
    Activation::Identity,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Relu,
    Activation::LeakyRelu,
    Activation::Softplus,
    Activation::Gelu,
    Activation::Softmax,
];

/// A kernel implementation: a SIMD level, the free functions, or the reference twins.
#[derive(Clone, Copy, Debug)]
enum Imp {
    Level(KernelSet),
    Free,
    Reference,
}

struct Harness<T: HFloat> {
    net: Network<T>,
    stats: Stats,
    /// The current call, for failure messages.
    step: usize,
    log: Vec<String>,
    imps: Vec<Imp>,
}

impl<T: HFloat> Harness<T> {
    fn new(src: &mut Source<'_>) -> Self {
        let mut imps: Vec<Imp> = simd::available()
            .into_iter()
            .map(|l| Imp::Level(KernelSet::new(l).expect("an available level")))
            .collect();
        imps.push(Imp::Free);
        imps.push(Imp::Reference);
        let mut h = Harness {
            net: Network::builder(2)
                .layer(2, Activation::Tanh)
                .build()
                .expect("a valid network"),
            stats: Stats {
                sequences: 1,
                ..Stats::default()
            },
            step: 0,
            log: Vec::new(),
            imps,
        };
        h.net = h.random_network(src);
        h
    }

    fn fail(&self, msg: String) -> ! {
        panic!(
            "{} sequence, call {}: {msg}\n  calls so far:\n    {}",
            T::NAME,
            self.step,
            self.log.join("\n    ")
        )
    }

    /// Checks a call's result against what its arguments predict; `unchanged` says whether
    /// the network and every output kept their bits. Returns whether it was `Ok`.
    fn judge<R: Debug>(
        &mut self,
        what: &str,
        exp: &Expect,
        r: &Result<R, Error>,
        unchanged: bool,
        bounded_before: bool,
    ) -> bool {
        self.stats.calls += 1;
        self.log.push(format!(
            "{what}: {exp:?} → {}",
            match r {
                Ok(_) => "Ok".to_string(),
                Err(e) => format!("Err({e})"),
            }
        ));
        if self.log.len() > 12 {
            self.log.remove(0);
        }
        match r {
            Ok(_) => {
                if !exp.valid() {
                    self.fail(format!(
                        "{what}: returned Ok for wrong arguments {:?}",
                        exp.defects
                    ));
                }
                self.stats.ok += 1;
                true
            }
            Err(Error::Diverged { loss }) => {
                if !exp.valid() {
                    self.fail(format!(
                        "{what}: Diverged (loss {loss}) instead of the error for {:?}",
                        exp.defects
                    ));
                }
                if !exp.may_diverge {
                    self.fail(format!("{what}: Diverged from a call that does not train"));
                }
                if bounded_before {
                    self.fail(format!(
                        "{what}: Diverged (loss {loss}) with bounded weights and learning rate"
                    ));
                }
                if !unchanged && !exp.diverged_keeps_steps {
                    self.fail(format!(
                        "{what}: Diverged but changed the network or an output"
                    ));
                }
                self.stats.diverged += 1;
                false
            }
            Err(e) => {
                if exp.valid() {
                    self.fail(format!("{what}: valid arguments rejected: {e:?} ({e})"));
                }
                if e.to_string().is_empty() {
                    self.fail(format!("{what}: {e:?} has an empty message"));
                }
                if !unchanged {
                    self.fail(format!(
                        "{what}: Err({e}) but the network or an output changed"
                    ));
                }
                self.stats.rejected += 1;
                false
            }
        }
    }

    fn run(&mut self, src: &mut Source<'_>, calls: usize) -> Stats {
        for step in 0..calls {
            if src.exhausted() {
                break;
            }
            self.step = step;
            match src.below(20) {
                0 => self.predict(src),
                1 | 2 => self.train_sample(src),
                3 | 4 => self.train_batch(src),
                5 => self.gradient(src, false),
                6 => self.gradient(src, true),
                7 => self.apply_gradients(src),
                8 => self.evaluate(src),
                9 => self.epoch(src),
                10 => self.gradients_add(src),
                11 | 12 => self.per_sample_kernel(src),
                13 | 14 => self.batch_kernel(src),
                15 => self.net = self.random_network(src),
                16 => self.layer_new(src),
                17 => self.save_format(src),
                _ => self.train_sample(src),
            }
            if !all_finite(&self.net) {
                // Only after unbounded steps (`after_training` checks the bounded ones), or
                // an epoch that diverged after such steps: start again from a new network.
                self.stats.nonfinite_after_ok += 1;
                eprintln!(
                    "harness: non-finite weights after {}",
                    self.log.last().map_or("", |s| s)
                );
                self.net = self.random_network(src);
            }
        }
        self.stats
    }

    // -----------------------------------------------------------------------------------------
    // Arguments.

    /// A length near `len`, different from it.
    fn wrong_len(src: &mut Source<'_>, len: usize) -> usize {
        match src.below(3) {
            0 if len > 0 => len - 1,
            0 | 1 => len + 1,
            _ => len + 2 + src.below(5),
        }
    }

    /// A length: `len`, or (rarely) a wrong one, recorded in `exp`.
    fn len(src: &mut Source<'_>, len: usize, exp: &mut Expect, what: &'static str) -> usize {
        if src.one_in(14) {
            exp.bad(what);
            Self::wrong_len(src, len)
        } else {
            len
        }
    }

    /// A network input of `len` values, rarely with a NaN or ∞ (a defect for the network).
    fn data(src: &mut Source<'_>, rows: usize, cols: usize, exp: &mut Expect) -> Buf<T> {
        let mut b = Buf::new(rows, cols, false, src);
        if src.one_in(14) && b.poke_non_finite(src) {
            exp.bad("non-finite data");
        }
        b
    }

    /// Targets for the current network: `rows × cols` (cols as drawn, maybe wrong): for
    /// CrossEntropy a distribution per row (one-hot or soft), else values in [−1, 1]; rarely
    /// not a distribution (a defect under CrossEntropy) or non-finite.
    fn targets(&self, src: &mut Source<'_>, rows: usize, cols: usize, exp: &mut Expect) -> Buf<T> {
        let mut b = Buf::new(rows, cols, false, src);
        let ce = self.net.loss() == Loss::CrossEntropy;
        for r in 0..rows {
            let row = &mut b.data[b.off + r * b.stride..b.off + r * b.stride + cols];
            if ce && cols > 0 {
                if src.one_in(2) {
                    row.iter_mut().for_each(|v| *v = T::ZERO);
                    row[src.below(cols)] = T::ONE;
                } else {
                    let w: Vec<f64> = (0..cols).map(|_| src.unit() + 0.01).collect();
                    let s: f64 = w.iter().sum();
                    row.iter_mut()
                        .zip(&w)
                        .for_each(|(v, w)| *v = T::from_f64(w / s));
                }
                if src.one_in(14) {
                    exp.bad("targets not a distribution");
                    let j = src.below(cols);
                    match src.below(3) {
                        0 => row[j] = T::from_f64(-0.1 - src.unit()),
                        1 => row[j] += T::from_f64(0.01 + src.unit()),
                        _ => row.iter_mut().for_each(|v| *v = T::ZERO),
                    }
                }
            } else {
                row.iter_mut()
                    .for_each(|v| *v = T::from_f64(2.0 * src.unit() - 1.0));
            }
        }
        b.before = b.data.iter().map(|v| v.bits()).collect();
        if src.one_in(14) && b.poke_non_finite(src) {
            exp.bad("non-finite targets");
        }
        b
    }

    /// A learning rate: usually in (0, 0.5]; rarely huge (valid, may diverge) or invalid.
    fn lr(src: &mut Source<'_>, exp: &mut Expect) -> T {
        if src.one_in(14) {
            exp.bad("learning rate");
            T::from_f64(src.pick(&[0.0, -0.0, -0.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]))
        } else if src.one_in(40) {
            T::from_f64(10.0 + 1e4 * src.unit())
        } else {
            T::from_f64(0.5 * src.unit() * src.unit() + 1e-4)
        }
    }

    fn ok_lr(lr: T) -> bool {
        lr.is_finite() && lr.to_f64() <= 0.5
    }

    /// Gradients for the network, or (rarely) for another network.
    fn grads(&self, src: &mut Source<'_>, exp: &mut Expect) -> Gradients<T> {
        let mut g = if src.one_in(14) {
            exp.bad("gradients of another network");
            let other = Network::<T>::builder(self.net.inputs() + 1)
                .layer(1 + src.below(4), Activation::Tanh)
                .build()
                .expect("a valid network");
            other.gradients()
        } else {
            self.net.gradients()
        };
        for v in g.as_mut_slice() {
            *v = T::from_f64(src.unit() - 0.5);
        }
        g
    }

    // -----------------------------------------------------------------------------------------
    // Construction.

    /// A random network: by the builder, or by `Network::new` from `Layer::new`'s; often with
    /// a wrong size or structure, which must be an error.
    fn random_network(&mut self, src: &mut Source<'_>) -> Network<T> {
        for _ in 0..4 {
            let mut exp = Expect::default();
            let inputs = if src.one_in(16) {
                exp.bad("zero inputs");
                0
            } else {
                1 + src.below(6)
            };
            let depth = if src.one_in(16) {
                exp.bad("no layers");
                0
            } else {
                1 + src.below(3)
            };
            let mut layers = Vec::new();
            for k in 0..depth {
                let out = if src.one_in(24) {
                    exp.bad("zero outputs");
                    0
                } else {
                    1 + src.below(6)
                };
                let last = k + 1 == depth;
                let act = if last {
                    src.pick(&ACTS)
                } else if src.one_in(16) {
                    exp.bad("hidden Softmax");
                    Activation::Softmax
                } else {
                    src.pick(&ACTS[..7])
                };
                layers.push((out, act));
            }
            let out_act = layers.last().map(|l| l.1);
            let loss = if out_act == Some(Activation::Softmax) {
                if src.one_in(4) {
                    Loss::SquaredError
                } else {
                    Loss::CrossEntropy
                }
            } else if src.one_in(16) {
                exp.bad("CrossEntropy without Softmax");
                Loss::CrossEntropy
            } else {
                Loss::SquaredError
            };
            let what = format!("build {inputs} → {layers:?}, {loss}");
            let r = if src.one_in(4) && exp.valid() {
                // Network::new from Layer::new's, each with its own possible defects.
                self.network_of_layers(src, inputs, &layers, loss)
            } else {
                let mut b = Network::<T>::builder(inputs).seed(src.u64());
                for &(l, a) in &layers {
                    b = b.layer(l, a);
                }
                if out_act != Some(Activation::Softmax) || src.one_in(2) {
                    b = b.loss(loss);
                }
                let r = call(&what, || b.build());
                self.judge(&what, &exp, &r, true, false);
                r.ok()
            };
            if let Some(net) = r {
                if !all_finite(&net) {
                    self.fail(format!("{what}: a new network with a non-finite weight"));
                }
                return net;
            }
        }
        Network::builder(3)
            .layer(4, Activation::Tanh)
            .layer(2, Activation::Sigmoid)
            .seed(src.u64())
            .build()
            .expect("a valid network")
    }

    fn network_of_layers(
        &mut self,
        src: &mut Source<'_>,
        inputs: usize,
        layers: &[(usize, Activation)],
        loss: Loss,
    ) -> Option<Network<T>> {
        let mut built = Vec::new();
        let mut exp_net = Expect::default();
        let mut h = inputs;
        for (k, &(l, act)) in layers.iter().enumerate() {
            let mut exp = Expect::default();
            let h_here = if k > 0 && src.one_in(16) {
                exp_net.bad("layers that do not chain");
                h + 1
            } else {
                h
            };
            let (w, b) = self.weights(src, h_here, l, &mut exp);
            let what = format!("Layer::new({h_here}×{l}, b of {}, {act:?})", b.len());
            let r = call(&what, || Layer::new(w, b, act));
            if self.judge(&what, &exp, &r, true, false) {
                built.push(r.unwrap());
            } else {
                return None;
            }
            h = l;
        }
        let what = format!("Network::new({} layers, {loss})", built.len());
        let r = call(&what, || Network::new(built, loss));
        self.judge(&what, &exp_net, &r, true, false);
        r.ok()
    }

    /// W (H × L) and b for `Layer::new`, rarely with a wrong b or a non-finite element.
    fn weights(
        &self,
        src: &mut Source<'_>,
        h: usize,
        l: usize,
        exp: &mut Expect,
    ) -> (Matrix<T>, Vec<T>) {
        let data: Vec<T> = (0..h * l).map(|_| T::from_f64(src.unit() - 0.5)).collect();
        let mut w = Matrix::from_row_major(h, l, &data).expect("sizes match");
        let bl = Self::len(src, l, exp, "b length");
        let mut b: Vec<T> = (0..bl)
            .map(|_| T::from_f64(0.2 * src.unit() - 0.1))
            .collect();
        if src.one_in(16) {
            exp.bad("non-finite weight");
            let bad = src.pick(&[T::NAN, T::INF, -T::INF]);
            if src.one_in(2) && h * l > 0 {
                let (r, c) = (src.below(h), src.below(l));
                w.row_mut(r)[c] = bad;
            } else if !b.is_empty() {
                let i = src.below(b.len());
                b[i] = bad;
            } else {
                exp.defects.pop();
            }
        }
        (w, b)
    }

    fn layer_new(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect::default();
        let h = if src.one_in(8) {
            exp.bad("zero inputs");
            0
        } else {
            1 + src.below(5)
        };
        let l = if src.one_in(8) {
            exp.bad("zero outputs");
            0
        } else {
            1 + src.below(5)
        };
        let (w, b) = self.weights(src, h, l, &mut exp);
        let act = src.pick(&ACTS);
        let what = format!("Layer::new({h}×{l}, b of {}, {act:?})", b.len());
        let r = call(&what, || Layer::new(w, b, act));
        self.judge(&what, &exp, &r, true, false);
    }

    // -----------------------------------------------------------------------------------------
    // The network's methods.

    /// Checks an `Ok` training call: the loss is finite, and the weights too if they and the
    /// learning rate were bounded before it.
    fn after_training(&mut self, what: &str, loss: T, bounded_before: bool) {
        if !loss.is_finite() {
            self.fail(format!("{what}: Ok with a non-finite loss {loss}"));
        }
        if self.net.loss() == Loss::SquaredError && loss < T::ZERO {
            self.fail(format!("{what}: a negative squared error {loss}"));
        }
        if bounded_before && !all_finite(&self.net) {
            self.fail(format!(
                "{what}: Ok, but a weight became non-finite from bounded weights"
            ));
        }
    }

    fn predict(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect::default();
        let n = Self::len(src, self.net.inputs(), &mut exp, "x length");
        let x = Self::data(src, 1, n, &mut exp);
        let before = snapshot(&self.net);
        let bounded_before = bounded(&self.net, 1e3);
        let what = format!("predict(x of {n})");
        let r = call(&what, || self.net.predict(x.slice()));
        let unchanged = snapshot(&self.net) == before && x.unchanged();
        if self.judge(&what, &exp, &r, unchanged, false) {
            let y = r.unwrap();
            self.check_outputs(&what, &y, bounded_before);
        }
        // predict_into: the same bits, or the same error with `out` untouched.
        let m = Self::len(src, self.net.outputs(), &mut exp, "out length");
        let mut out = Buf::<T>::vector(m, true, src);
        let what = format!("predict_into(x of {n}, out of {m})");
        let r2 = call(&what, || self.net.predict_into(x.slice(), out.slice_mut()));
        let unchanged = snapshot(&self.net) == before && out.unchanged();
        if self.judge(&what, &exp, &r2, unchanged, false) {
            if !out.guards_intact() {
                self.fail(format!("{what}: wrote outside `out`"));
            }
            let y = self.net.predict(x.slice()).expect("valid, as above");
            if bits(out.slice()) != bits(&y) {
                self.fail(format!(
                    "{what}: {:?} differs from predict's {y:?}",
                    out.slice()
                ));
            }
        }
    }

    /// Outputs of a valid forward pass: finite while the weights are bounded; a softmax
    /// output is a distribution.
    fn check_outputs(&self, what: &str, y: &[T], bounded_before: bool) {
        if bounded_before && !y.iter().all(|v| v.is_finite()) {
            self.fail(format!(
                "{what}: non-finite outputs {y:?} from bounded weights"
            ));
        }
        let out_act = self.net.layers()[self.net.layers().len() - 1].activation();
        if out_act == Activation::Softmax && y.iter().all(|v| v.is_finite()) {
            let s: f64 = y.iter().map(|v| v.to_f64()).sum();
            if (s - 1.0).abs() > 1e-3 || y.iter().any(|v| *v < T::ZERO) {
                self.fail(format!(
                    "{what}: softmax outputs {y:?} are not a distribution"
                ));
            }
        }
    }

    fn train_sample(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect {
            may_diverge: true,
            ..Expect::default()
        };
        let lr = Self::lr(src, &mut exp);
        let n = Self::len(src, self.net.inputs(), &mut exp, "x length");
        let m = Self::len(src, self.net.outputs(), &mut exp, "t length");
        let x = Self::data(src, 1, n, &mut exp);
        let t = self.targets(src, 1, m, &mut exp);
        let before = snapshot(&self.net);
        let bounded_before = bounded(&self.net, 1e3) && Self::ok_lr(lr);
        let what = format!("train_sample(x of {n}, t of {m}, lr {lr})");
        let r = call(&what, || self.net.train_sample(x.slice(), t.slice(), lr));
        let unchanged = snapshot(&self.net) == before;
        if self.judge(&what, &exp, &r, unchanged, bounded_before) {
            self.after_training(&what, r.unwrap(), bounded_before);
        }
    }

    /// Draws a batch (B × inputs, B × outputs, with rare wrong shapes, empty batches and
    /// non-finite elements).
    fn batch(&self, src: &mut Source<'_>, exp: &mut Expect, max_rows: usize) -> (Buf<T>, Buf<T>) {
        let rows = if src.one_in(14) {
            exp.bad("empty batch");
            0
        } else {
            1 + src.below(max_rows)
        };
        let n = Self::len(src, self.net.inputs(), exp, "x columns");
        let m = Self::len(src, self.net.outputs(), exp, "t columns");
        let t_rows = if rows > 0 && src.one_in(14) {
            exp.bad("t rows");
            Self::wrong_len(src, rows)
        } else {
            rows
        };
        let x = Self::data(src, rows, n, exp);
        let t = self.targets(src, t_rows, m, exp);
        (x, t)
    }

    fn train_batch(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect {
            may_diverge: true,
            ..Expect::default()
        };
        let lr = Self::lr(src, &mut exp);
        let (x, t) = self.batch(src, &mut exp, 8);
        let before = snapshot(&self.net);
        let copy = self.net.clone();
        let bounded_before = bounded(&self.net, 1e3) && Self::ok_lr(lr);
        let what = format!(
            "train_batch(x {}×{}, t {}×{}, lr {lr})",
            x.rows, x.cols, t.rows, t.cols
        );
        let r = call(&what, || self.net.train_batch(x.view(), t.view(), lr));
        let unchanged = snapshot(&self.net) == before;
        if self.judge(&what, &exp, &r, unchanged, bounded_before) {
            let loss = r.unwrap();
            if x.rows == 1 {
                // B = 1 is train_sample exactly.
                let mut copy = copy;
                let l1 = copy.train_sample(x.view().row(0), t.view().row(0), lr);
                if l1.map(|v| v.bits()) != Ok(loss.bits()) || snapshot(&copy) != snapshot(&self.net)
                {
                    self.fail(format!("{what}: B = 1 differs from train_sample"));
                }
            }
            self.after_training(&what, loss, bounded_before);
        }
    }

    fn gradient(&mut self, src: &mut Source<'_>, batch: bool) {
        let mut exp = Expect {
            may_diverge: true,
            ..Expect::default()
        };
        let (x, t) = if batch {
            self.batch(src, &mut exp, 8)
        } else {
            let n = Self::len(src, self.net.inputs(), &mut exp, "x length");
            let m = Self::len(src, self.net.outputs(), &mut exp, "t length");
            (
                Self::data(src, 1, n, &mut exp),
                self.targets(src, 1, m, &mut exp),
            )
        };
        let mut g = self.grads(src, &mut exp);
        let g_before = bits(g.as_slice());
        let before = snapshot(&self.net);
        let bounded_before = bounded(&self.net, 1e3);
        let what = format!(
            "gradient_{}(x {}×{}, t {}×{})",
            if batch { "batch" } else { "sample" },
            x.rows,
            x.cols,
            t.rows,
            t.cols
        );
        let r = call(&what, || {
            if batch {
                self.net.gradient_batch(x.view(), t.view(), &mut g)
            } else {
                self.net.gradient_sample(x.slice(), t.slice(), &mut g)
            }
        });
        let same_net = snapshot(&self.net) == before;
        let unchanged = same_net && bits(g.as_slice()) == g_before;
        if self.judge(&what, &exp, &r, unchanged, bounded_before) {
            if !same_net {
                self.fail(format!("{what}: changed the network"));
            }
            let loss = r.unwrap();
            if !loss.is_finite() || (bounded_before && !g.as_slice().iter().all(|v| v.is_finite()))
            {
                self.fail(format!("{what}: loss {loss} or a gradient not finite"));
            }
            // Apply it: the other half of a step.
            let mut exp2 = Expect::default();
            let lr = Self::lr(src, &mut exp2);
            if !g.as_slice().iter().all(|v| v.is_finite()) {
                // Possible only from unbounded weights (checked above).
                exp2.bad("non-finite gradient");
            }
            let bounded_before = bounded_before && Self::ok_lr(lr);
            let what = format!("apply_gradients(the gradient above, lr {lr})");
            let r = call(&what, || self.net.apply_gradients(&g, lr));
            let unchanged = snapshot(&self.net) == before;
            if self.judge(&what, &exp2, &r, unchanged, false) {
                self.after_training(&what, T::ZERO, bounded_before);
            }
        }
    }

    fn apply_gradients(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect::default();
        let lr = Self::lr(src, &mut exp);
        let mut g = self.grads(src, &mut exp);
        if src.one_in(10) {
            exp.bad("non-finite gradient");
            let i = src.below(g.len());
            g.as_mut_slice()[i] = src.pick(&[T::NAN, T::INF, -T::INF]);
        }
        let before = snapshot(&self.net);
        let bounded_before = bounded(&self.net, 1e3) && Self::ok_lr(lr);
        let what = format!("apply_gradients(grads of {}, lr {lr})", g.len());
        let r = call(&what, || self.net.apply_gradients(&g, lr));
        let unchanged = snapshot(&self.net) == before;
        if self.judge(&what, &exp, &r, unchanged, false) {
            self.after_training(&what, T::ZERO, bounded_before);
        }
    }

    fn evaluate(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect::default();
        let (x, t) = self.batch(src, &mut exp, 12);
        let before = snapshot(&self.net);
        let bounded_before = bounded(&self.net, 1e3);
        let what = format!("evaluate(x {}×{}, t {}×{})", x.rows, x.cols, t.rows, t.cols);
        let r = call(&what, || self.net.evaluate(x.view(), t.view()));
        let unchanged = snapshot(&self.net) == before;
        if !unchanged {
            self.fail(format!("{what}: changed the network"));
        }
        if self.judge(&what, &exp, &r, unchanged, false) {
            let e = r.unwrap();
            let finite = e.total_squared_error.is_finite()
                && e.total_cross_entropy.is_none_or(|c| c.is_finite());
            if e.samples != x.rows
                || e.correct > e.samples
                || !(0.0..=1.0).contains(&e.accuracy)
                || (bounded_before && !finite)
            {
                self.fail(format!("{what}: {e:?}"));
            }
        }
    }

    fn epoch(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect {
            may_diverge: true,
            diverged_keeps_steps: true,
            ..Expect::default()
        };
        let lr = Self::lr(src, &mut exp);
        let (x, t) = self.batch(src, &mut exp, 10);
        let batch_size = if src.one_in(14) {
            exp.bad("batch size 0");
            0
        } else {
            src.pick(&[1, 1, 2, 3, 4, 16, usize::MAX])
        };
        let opts = EpochOptions {
            batch_size,
            shuffle: src.one_in(2),
            seed: src.u64(),
        };
        let before = snapshot(&self.net);
        let fit = src.one_in(3);
        let epochs = src.below(3);
        let mut reported = 0usize;
        let what = format!(
            "{}(x {}×{}, t {}×{}, lr {lr}, batch size {batch_size})",
            if fit { "fit" } else { "train_epoch" },
            x.rows,
            x.cols,
            t.rows,
            t.cols
        );
        let epoch = src.below(1000);
        let r = call(&what, || {
            if fit {
                self.net
                    .fit(x.view(), t.view(), lr, epochs, &opts, |_, _| reported += 1)
            } else {
                self.net
                    .train_epoch_with(x.view(), t.view(), lr, epoch, &opts, |_| reported += 1)
            }
        });
        let unchanged = snapshot(&self.net) == before && (reported == 0 || r.is_ok());
        // Bounded weights can grow past the bound within an epoch, so a divergence there is
        // not a failure.
        if self.judge(&what, &exp, &r, unchanged, false) {
            let loss = r.unwrap();
            if fit && epochs == 0 && (loss != T::ZERO || snapshot(&self.net) != before) {
                self.fail(format!("{what}: zero epochs changed something"));
            }
            self.after_training(&what, loss, false);
        }
    }

    fn gradients_add(&mut self, src: &mut Source<'_>) {
        let mut exp = Expect::default();
        let mut a = self.net.gradients();
        for v in a.as_mut_slice() {
            *v = T::from_f64(src.unit());
        }
        let b = self.grads(src, &mut exp);
        let before = bits(a.as_slice());
        let what = format!("Gradients::add(grads of {} + {})", a.len(), b.len());
        let r = call(&what, || a.add(&b));
        let unchanged = bits(a.as_slice()) == before;
        if self.judge(&what, &exp, &r, unchanged, false) {
            for ((s, &x), &y) in a.as_slice().iter().zip(&before).zip(b.as_slice()) {
                let want = from_bits::<T>(x) + y;
                if s.bits() != want.bits() {
                    self.fail(format!("{what}: not the element-wise sum"));
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The kernels.

    fn per_sample_kernel(&mut self, src: &mut Source<'_>) {
        let imp = src.pick(&self.imps);
        let (h, l) = (src.below(10), src.below(10));
        let mut exp = Expect::default();
        let w = Buf::<T>::new(h, l, false, src);
        let mut wm = Buf::<T>::new(h, l, false, src);
        let alpha = if src.one_in(12) {
            exp.bad("alpha");
            src.pick(&[T::NAN, T::INF, -T::INF])
        } else {
            T::from_f64(src.unit())
        };
        let kernel = src.below(5);
        let what = format!("{imp:?} kernel {kernel} on {h}×{l}");
        let act = src.pick(&ACTS);
        match kernel {
            0 => {
                let a_prev = Buf::vector(Self::len(src, h, &mut exp, "a_prev"), false, src);
                let b = Buf::vector(Self::len(src, l, &mut exp, "b"), false, src);
                let mut n = Buf::vector(Self::len(src, l, &mut exp, "n"), true, src);
                exp.defects.retain(|d| *d != "alpha");
                let r = call(&what, || match imp {
                    Imp::Level(k) => k.affine(w.view(), a_prev.slice(), b.slice(), n.slice_mut()),
                    Imp::Free => {
                        kernels::affine(w.view(), a_prev.slice(), b.slice(), n.slice_mut())
                    }
                    Imp::Reference => {
                        reference::affine(w.view(), a_prev.slice(), b.slice(), n.slice_mut())
                    }
                });
                self.kernel_verdict(&what, &exp, &r, &[&n], &[&w]);
            }
            1 => {
                let n = Buf::vector(l, false, src);
                let mut a = Buf::vector(Self::len(src, l, &mut exp, "a"), true, src);
                let mut d = Buf::vector(Self::len(src, l, &mut exp, "d"), true, src);
                exp.defects.retain(|d| *d != "alpha");
                if act == Activation::Softmax {
                    exp.bad("Softmax");
                }
                let r = call(&what, || match imp {
                    Imp::Level(k) => k.activate(act, n.slice(), a.slice_mut(), d.slice_mut()),
                    Imp::Free => kernels::activate(act, n.slice(), a.slice_mut(), d.slice_mut()),
                    Imp::Reference => {
                        reference::activate(act, n.slice(), a.slice_mut(), d.slice_mut())
                    }
                });
                self.kernel_verdict(&what, &exp, &r, &[&a, &d], &[]);
            }
            2 => {
                let a_prev = Buf::vector(Self::len(src, h, &mut exp, "a_prev"), false, src);
                let delta = Buf::vector(Self::len(src, l, &mut exp, "delta"), false, src);
                let r = call(&what, || match imp {
                    Imp::Level(k) => {
                        k.rank1_update(wm.view_mut(), alpha, a_prev.slice(), delta.slice())
                    }
                    Imp::Free => {
                        kernels::rank1_update(wm.view_mut(), alpha, a_prev.slice(), delta.slice())
                    }
                    Imp::Reference => {
                        reference::rank1_update(wm.view_mut(), alpha, a_prev.slice(), delta.slice())
                    }
                });
                self.kernel_verdict(&what, &exp, &r, &[&wm], &[]);
            }
            3 => {
                let delta = Buf::vector(Self::len(src, l, &mut exp, "delta"), false, src);
                let d_prev = Buf::vector(Self::len(src, h, &mut exp, "d_prev"), false, src);
                let mut out = Buf::vector(Self::len(src, h, &mut exp, "delta_prev"), true, src);
                exp.defects.retain(|d| *d != "alpha");
                let r = call(&what, || match imp {
                    Imp::Level(k) => {
                        k.backward(w.view(), delta.slice(), d_prev.slice(), out.slice_mut())
                    }
                    Imp::Free => {
                        kernels::backward(w.view(), delta.slice(), d_prev.slice(), out.slice_mut())
                    }
                    Imp::Reference => reference::backward(
                        w.view(),
                        delta.slice(),
                        d_prev.slice(),
                        out.slice_mut(),
                    ),
                });
                self.kernel_verdict(&what, &exp, &r, &[&out], &[&w]);
            }
            _ => {
                let a_prev = Buf::vector(Self::len(src, h, &mut exp, "a_prev"), false, src);
                let delta = Buf::vector(Self::len(src, l, &mut exp, "delta"), false, src);
                let d_prev = Buf::vector(Self::len(src, h, &mut exp, "d_prev"), false, src);
                let mut out = Buf::vector(Self::len(src, h, &mut exp, "delta_prev"), true, src);
                let (ap, dl, dp) = (a_prev.slice(), delta.slice(), d_prev.slice());
                let r = call(&what, || match imp {
                    Imp::Level(k) => {
                        k.backward_update(wm.view_mut(), alpha, ap, dl, dp, out.slice_mut())
                    }
                    Imp::Free => {
                        kernels::backward_update(wm.view_mut(), alpha, ap, dl, dp, out.slice_mut())
                    }
                    Imp::Reference => reference::backward_update(
                        wm.view_mut(),
                        alpha,
                        ap,
                        dl,
                        dp,
                        out.slice_mut(),
                    ),
                });
                self.kernel_verdict(&what, &exp, &r, &[&wm, &out], &[]);
            }
        }
    }

    /// A kernel call's checks: Err ⇔ a defect; after Err every output (and its guards) is
    /// unchanged; after Ok the guards are intact and (inputs being finite and in [−2, 2]) the
    /// outputs finite; the read-only `inputs` never change.
    fn kernel_verdict(
        &mut self,
        what: &str,
        exp: &Expect,
        r: &Result<(), Error>,
        outputs: &[&Buf<T>],
        inputs: &[&Buf<T>],
    ) {
        let unchanged = outputs.iter().all(|b| b.unchanged());
        if !inputs.iter().all(|b| b.unchanged()) {
            self.fail(format!("{what}: changed a read-only argument"));
        }
        if self.judge(what, exp, r, unchanged, false) {
            for (i, b) in outputs.iter().enumerate() {
                if !b.guards_intact() {
                    self.fail(format!("{what}: output {i} written outside its view"));
                }
                if !b.finite() {
                    self.fail(format!("{what}: output {i} not finite"));
                }
            }
        }
    }

    fn batch_kernel(&mut self, src: &mut Source<'_>) {
        let imp = src.pick(&self.imps);
        let (bsz, h, l) = (src.below(7), src.below(10), src.below(10));
        let mut exp = Expect::default();
        let finite = |src: &mut Source<'_>, exp: &mut Expect, what: &'static str| {
            if src.one_in(12) {
                exp.bad(what);
                src.pick(&[T::NAN, T::INF, -T::INF])
            } else {
                T::from_f64(src.unit())
            }
        };
        let kernel = src.below(5);
        let what = format!("{imp:?} batch kernel {kernel}, B = {bsz}, {h}×{l}");
        let mut dim =
            |src: &mut Source<'_>, n: usize, what: &'static str| Self::len(src, n, &mut exp, what);
        match kernel {
            0 => {
                let act = src.pick(&ACTS);
                let w = Buf::<T>::new(h, l, false, src);
                let b = Buf::vector(dim(src, l, "b"), false, src);
                let a_prev = Buf::new(bsz, dim(src, h, "a_prev cols"), false, src);
                let (ar, ac) = (dim(src, bsz, "a rows"), dim(src, l, "a cols"));
                let (dr, dc) = (dim(src, bsz, "d rows"), dim(src, l, "d cols"));
                let mut a = Buf::new(ar, ac, true, src);
                let mut d = Buf::new(dr, dc, true, src);
                if act == Activation::Softmax {
                    exp.bad("Softmax");
                }
                let r = call(&what, || match imp {
                    Imp::Level(k) => k.batch_forward(
                        act,
                        w.view(),
                        b.slice(),
                        a_prev.view(),
                        a.view_mut(),
                        d.view_mut(),
                    ),
                    Imp::Free => kernels::batch_forward(
                        act,
                        w.view(),
                        b.slice(),
                        a_prev.view(),
                        a.view_mut(),
                        d.view_mut(),
                    ),
                    Imp::Reference => reference::batch_forward(
                        act,
                        w.view(),
                        b.slice(),
                        a_prev.view(),
                        a.view_mut(),
                        d.view_mut(),
                    ),
                });
                self.kernel_verdict(&what, &exp, &r, &[&a, &d], &[&w, &a_prev]);
            }
            1 => {
                let w = Buf::<T>::new(h, l, false, src);
                let delta = Buf::new(bsz, dim(src, l, "delta cols"), false, src);
                let d_prev = Buf::new(
                    dim(src, bsz, "d_prev rows"),
                    dim(src, h, "d_prev cols"),
                    false,
                    src,
                );
                let mut out = Buf::new(
                    dim(src, bsz, "out rows"),
                    dim(src, h, "out cols"),
                    true,
                    src,
                );
                let r = call(&what, || match imp {
                    Imp::Level(k) => {
                        k.batch_backward(w.view(), delta.view(), d_prev.view(), out.view_mut())
                    }
                    Imp::Free => kernels::batch_backward(
                        w.view(),
                        delta.view(),
                        d_prev.view(),
                        out.view_mut(),
                    ),
                    Imp::Reference => reference::batch_backward(
                        w.view(),
                        delta.view(),
                        d_prev.view(),
                        out.view_mut(),
                    ),
                });
                self.kernel_verdict(&what, &exp, &r, &[&out], &[&w, &delta, &d_prev]);
            }
            2 => {
                let a_prev = Buf::<T>::new(bsz, h, false, src);
                let delta = Buf::new(dim(src, bsz, "delta rows"), l, false, src);
                // β = 0 with a poisoned G: G and g_b must not be read.
                let zero_beta = src.one_in(2);
                let mut g = Buf::new(dim(src, h, "g rows"), dim(src, l, "g cols"), zero_beta, src);
                let mut g_b = Buf::vector(dim(src, l, "g_b"), zero_beta, src);
                let scale = finite(src, &mut exp, "scale");
                let beta = if zero_beta {
                    T::ZERO
                } else {
                    finite(src, &mut exp, "beta")
                };
                let r = call(&what, || match imp {
                    Imp::Level(k) => k.batch_gradient(
                        a_prev.view(),
                        delta.view(),
                        scale,
                        beta,
                        g.view_mut(),
                        g_b.slice_mut(),
                    ),
                    Imp::Free => kernels::batch_gradient(
                        a_prev.view(),
                        delta.view(),
                        scale,
                        beta,
                        g.view_mut(),
                        g_b.slice_mut(),
                    ),
                    Imp::Reference => reference::batch_gradient(
                        a_prev.view(),
                        delta.view(),
                        scale,
                        beta,
                        g.view_mut(),
                        g_b.slice_mut(),
                    ),
                });
                self.kernel_verdict(&what, &exp, &r, &[&g, &g_b], &[&a_prev, &delta]);
            }
            3 => {
                let mut w = Buf::<T>::new(h, l, false, src);
                let mut b = Buf::vector(dim(src, l, "b"), false, src);
                let a_prev = Buf::new(bsz, dim(src, h, "a_prev cols"), false, src);
                let delta = Buf::new(
                    dim(src, bsz, "delta rows"),
                    dim(src, l, "delta cols"),
                    false,
                    src,
                );
                let alpha = finite(src, &mut exp, "alpha");
                let r = call(&what, || match imp {
                    Imp::Level(k) => k.batch_update(
                        w.view_mut(),
                        b.slice_mut(),
                        alpha,
                        a_prev.view(),
                        delta.view(),
                    ),
                    Imp::Free => kernels::batch_update(
                        w.view_mut(),
                        b.slice_mut(),
                        alpha,
                        a_prev.view(),
                        delta.view(),
                    ),
                    Imp::Reference => reference::batch_update(
                        w.view_mut(),
                        b.slice_mut(),
                        alpha,
                        a_prev.view(),
                        delta.view(),
                    ),
                });
                self.kernel_verdict(&what, &exp, &r, &[&w, &b], &[&a_prev, &delta]);
            }
            _ => {
                let mut w = Buf::<T>::new(h, l, false, src);
                let mut b = Buf::vector(dim(src, l, "b"), false, src);
                let g = Buf::new(dim(src, h, "g rows"), dim(src, l, "g cols"), false, src);
                let g_b = Buf::vector(dim(src, l, "g_b"), false, src);
                let alpha = finite(src, &mut exp, "alpha");
                let r = call(&what, || match imp {
                    Imp::Level(k) => {
                        k.apply_gradient(w.view_mut(), b.slice_mut(), alpha, g.view(), g_b.slice())
                    }
                    Imp::Free => kernels::apply_gradient(
                        w.view_mut(),
                        b.slice_mut(),
                        alpha,
                        g.view(),
                        g_b.slice(),
                    ),
                    Imp::Reference => reference::apply_gradient(
                        w.view_mut(),
                        b.slice_mut(),
                        alpha,
                        g.view(),
                        g_b.slice(),
                    ),
                });
                self.kernel_verdict(&what, &exp, &r, &[&w, &b], &[&g, &g_b]);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // The save format.

    #[cfg(not(feature = "serde"))]
    fn save_format(&mut self, src: &mut Source<'_>) {
        self.train_sample(src)
    }

    /// A round trip (exact), then a corrupted copy: an `InvalidFormat` error or a valid
    /// network, never a panic.
    #[cfg(feature = "serde")]
    fn save_format(&mut self, src: &mut Source<'_>) {
        let text = self.net.to_json();
        let exp = Expect::default();
        let what = "from_json(to_json())";
        let r = call(what, || Network::<T>::from_json(&text));
        if self.judge(what, &exp, &r, true, false) && snapshot(&r.unwrap()) != snapshot(&self.net) {
            self.fail("the round trip is not exact".into());
        }
        let mut bytes = text.into_bytes();
        for _ in 0..1 + src.below(3) {
            if bytes.is_empty() {
                break;
            }
            let i = src.below(bytes.len().min(65536));
            match src.below(4) {
                0 => bytes.truncate(i),
                1 => bytes[i] = src.pick(b"0123456789-+.eE,:[]{}\"nul aN"),
                2 => {
                    let j = (i + 1 + src.below(16)).min(bytes.len());
                    bytes.drain(i..j);
                }
                _ => {
                    let j = (i + 1 + src.below(16)).min(bytes.len());
                    let piece = bytes[i..j].to_vec();
                    bytes.splice(i..i, piece);
                }
            }
        }
        let text = String::from_utf8(bytes).expect("JSON and the replacements are ASCII");
        let what = format!("from_json(a corrupted file of {} bytes)", text.len());
        let r = call(&what, || Network::<T>::from_json(&text));
        self.stats.calls += 1;
        match r {
            Ok(net) => {
                self.stats.ok += 1;
                if !all_finite(&net) || net.inputs() == 0 {
                    self.fail(format!("{what}: loaded an invalid network"));
                }
            }
            Err(Error::InvalidFormat { .. }) => self.stats.rejected += 1,
            Err(e) => self.fail(format!("{what}: {e:?} is not InvalidFormat")),
        }
    }
}

fn from_bits<T: HFloat>(b: u64) -> T {
    if T::NAME == "f32" {
        T::from_f64(f64::from(f32::from_bits(b as u32)))
    } else {
        T::from_f64(f64::from_bits(b))
    }
}
