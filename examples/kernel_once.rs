//! Runs one per-sample kernel `reps` times on one shape, and nothing else: the program that
//! `benches/callgrind.sh` counts instructions of (under `valgrind --tool=callgrind`, or
//! `perf stat` where the CPU's counters are available).
//!
//! ```sh
//! cargo run --release --example kernel_once -- <kernel> <f32|f64> <H> <L> [reps]
//! ```
//!
//! `<kernel>` is `affine`, `activate`, `rank1_update`, `backward` or `backward_update`;
//! `activate` takes Sigmoid unless named as `activate:<Activation>` (e.g. `activate:Tanh`).
//! W is H × L; `activate` works on a vector of H·L elements, so that every kernel's element
//! count is H·L. Inputs are fixed pseudo-random numbers in [−1, 1) and everything is
//! allocated and filled before the first call, so two runs that differ only in `reps`
//! (default 1) differ only by the extra calls: their difference in instructions, divided by
//! the extra calls and by H·L, is the kernel's instructions per element.
//!
//! The SIMD level is `deltaprop::simd::active()` (set `DELTAPROP_SIMD` to choose one);
//! the program prints it with the shape and the wall-clock time per call as one JSON line.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use deltaprop::{Activation, Error, Matrix, Scalar, kernels, simd};

const USAGE: &str = "usage: kernel_once <affine|activate[:Activation]|rank1_update|backward|\
                     backward_update> <f32|f64> <H> <L> [reps]";

#[derive(Clone, Copy)]
enum Kernel {
    Affine,
    Activate(Activation),
    Rank1Update,
    Backward,
    BackwardUpdate,
}

impl Kernel {
    fn parse(s: &str) -> Option<Kernel> {
        Some(match s {
            "affine" => Kernel::Affine,
            "activate" => Kernel::Activate(Activation::Sigmoid),
            "rank1_update" => Kernel::Rank1Update,
            "backward" => Kernel::Backward,
            "backward_update" => Kernel::BackwardUpdate,
            _ => {
                let name = s.strip_prefix("activate:")?;
                let act = Activation::ELEMENTWISE
                    .into_iter()
                    .find(|a| a.name().eq_ignore_ascii_case(name))?;
                Kernel::Activate(act)
            }
        })
    }

    fn name(self) -> String {
        match self {
            Kernel::Affine => "affine".into(),
            Kernel::Activate(a) => format!("activate:{}", a.name()),
            Kernel::Rank1Update => "rank1_update".into(),
            Kernel::Backward => "backward".into(),
            Kernel::BackwardUpdate => "backward_update".into(),
        }
    }
}

struct Args {
    kernel: Kernel,
    ty: String,
    h: usize,
    l: usize,
    reps: u64,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        std::process::exit(0);
    }
    if !(4..=5).contains(&args.len()) {
        return Err(format!("expected 4 or 5 arguments, got {}", args.len()));
    }
    let kernel = Kernel::parse(&args[0]).ok_or_else(|| format!("unknown kernel {:?}", args[0]))?;
    let ty = args[1].clone();
    if ty != "f32" && ty != "f64" {
        return Err(format!("type must be f32 or f64, got {ty:?}"));
    }
    let dim = |i: usize, what: &str| {
        args[i]
            .parse::<usize>()
            .map_err(|e| format!("{what} {:?}: {e}", args[i]))
    };
    let (h, l) = (dim(2, "H")?, dim(3, "L")?);
    let reps = match args.get(4) {
        Some(r) => r.parse::<u64>().map_err(|e| format!("reps {r:?}: {e}"))?,
        None => 1,
    };
    Ok(Args {
        kernel,
        ty,
        h,
        l,
        reps,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("kernel_once: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let run = match args.ty.as_str() {
        "f32" => run::<f32>(&args),
        _ => run::<f64>(&args),
    };
    match run {
        Ok(ns_per_call) => {
            println!(
                "{{\"kernel\": \"{}\", \"type\": \"{}\", \"h\": {}, \"l\": {}, \"reps\": {}, \
                 \"simd\": \"{}\", \"elements\": {}, \"ns_per_call\": {:.1}}}",
                args.kernel.name(),
                args.ty,
                args.h,
                args.l,
                args.reps,
                simd::active(),
                args.h * args.l,
                ns_per_call
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kernel_once: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Fixed pseudo-random numbers in [−1, 1) (xorshift64*).
struct Rng(u64);

impl Rng {
    fn fill<T: Scalar>(&mut self, out: &mut [T]) {
        for v in out {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            *v = T::from_f64(2.0 * (bits as f64 / (1u64 << 53) as f64) - 1.0);
        }
    }

    fn vec<T: Scalar>(&mut self, n: usize) -> Vec<T> {
        let mut v = vec![T::ZERO; n];
        self.fill(&mut v);
        v
    }
}

/// Sets everything up, then calls the kernel `reps` times; returns the wall-clock time per
/// call in nanoseconds (0 for no calls).
fn run<T: Scalar>(args: &Args) -> Result<f64, Error> {
    let (h, l) = (args.h, args.l);
    // Decide the level before anything is timed or counted, so that its one-time detection
    // belongs to the setup, not to the first call.
    let _ = simd::active();
    let mut rng = Rng(0x0DE1_7A9B_0F00_D5EE);
    let mut w = Matrix::<T>::zeros(h, l);
    for r in 0..h {
        rng.fill(w.row_mut(r));
    }
    let a_prev: Vec<T> = rng.vec(h);
    let d_prev: Vec<T> = rng.vec(h);
    let b: Vec<T> = rng.vec(l);
    let delta: Vec<T> = rng.vec(l);
    let mut out_h = vec![T::ZERO; h];
    let mut out_l = vec![T::ZERO; l];
    // `activate` works on H·L elements (see the module docs).
    let n_act: Vec<T> = match args.kernel {
        Kernel::Activate(_) => rng.vec(h * l),
        _ => Vec::new(),
    };
    let (mut a_act, mut d_act) = (vec![T::ZERO; n_act.len()], vec![T::ZERO; n_act.len()]);
    // Small enough that W stays in [−1.1, 1.1] for a million updates.
    let alpha = T::from_f64(1e-7);

    let start = Instant::now();
    for _ in 0..args.reps {
        match args.kernel {
            Kernel::Affine => kernels::affine(w.as_ref(), &a_prev, &b, &mut out_l)?,
            Kernel::Activate(act) => kernels::activate(act, &n_act, &mut a_act, &mut d_act)?,
            Kernel::Rank1Update => kernels::rank1_update(w.as_mut(), alpha, &a_prev, &delta)?,
            Kernel::Backward => kernels::backward(w.as_ref(), &delta, &d_prev, &mut out_h)?,
            Kernel::BackwardUpdate => {
                kernels::backward_update(w.as_mut(), alpha, &a_prev, &delta, &d_prev, &mut out_h)?
            }
        }
        black_box((&mut out_l, &mut out_h, &mut a_act, &mut d_act, &mut w));
    }
    let elapsed = start.elapsed();
    Ok(if args.reps == 0 {
        0.0
    } else {
        elapsed.as_nanos() as f64 / args.reps as f64
    })
}
