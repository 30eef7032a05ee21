//! Roofline probe: what one core, and every core, of this machine can do at most — the
//! ceilings the kernels' throughput is measured against in BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example roofline                # table on stdout, target/roofline.json
//! cargo run --release --example roofline -- --json x.json
//! ```
//!
//! - **Clock**: a chain of dependent 64-bit integer `add`s (one cycle each on every x86-64
//!   core) gives the core's actual rate, whatever `/proc/cpuinfo` or a hypervisor claims; a
//!   chain of dependent `imul`s (three cycles each) cross-checks it.
//! - **FMA peak** of one core, f32 and f64, with AVX2 (256-bit) and AVX-512 (512-bit) FMAs:
//!   independent accumulator chains (more than latency × FMA ports, so latency is hidden),
//!   each `acc = acc·m + c`. A level the CPU lacks is skipped with a note.
//! - **Bandwidth** of `read` (s += x_i), `rmw` (x_i += a) and `triad` (a_i = b_i + s·c_i)
//!   on f32 arrays whose working set (all arrays of the kernel together) is sized from the
//!   caches in `/sys/devices/system/cpu/cpu0/cache`: half of L1d, half of L2, the smaller
//!   of a quarter of L3 and 32 MiB that exceeds L2 and fits in half of L3 (no L3 figure if
//!   neither does), and a DRAM-sized set of 4 × L3 capped at an eighth of `MemAvailable`. Loads and stores are
//!   AVX-512 (else AVX2, else plain loops), unrolled, so that the kernels are bound by the
//!   memory system rather than by instructions. Bytes counted: read 1 stream, rmw 2 (read
//!   and write of x), triad 3 (b, c read, a written); the read-for-ownership that a cache
//!   performs before the triad's store to a (write-allocate) is **not** counted, so the
//!   traffic the memory really moves for the triad is 4/3 of the figure. GB = 10⁹ bytes.
//! - **All cores**: the same kernels on one thread per logical CPU (std threads, each with
//!   its own arrays, allocated and first touched by that thread, started together at a
//!   barrier). Private levels (L1, L2) keep the per-thread working set; shared levels (L3,
//!   DRAM) split the level's set between the threads. The rate of a repetition is all
//!   threads' bytes over the slowest thread's time.
//!
//! Every figure is the best of 63 timed repetitions of about 2 ms each (21 in each of three
//! rounds over all figures), with the median beside it: on a shared machine the best is the
//! closest to what the hardware allows, the median says how noisy the run was. A repetition
//! in a cache runs the kernel over the whole working set as many times as fill 2 ms; at DRAM
//! sizes, where one pass takes longer, a repetition is the next 2 ms segment of a pass (the
//! segments cycle through the whole set, so each was last touched a whole working set ago,
//! 4 × L3 bytes earlier). The whole run takes under a minute (40–50 s on a busy two-core
//! machine, most of it spent faulting in the DRAM-sized arrays).

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Timed length of one repetition. Short, so that on a busy machine many repetitions run
/// without being preempted: the best of them is what the hardware does undisturbed.
const SAMPLE_TIME: Duration = Duration::from_millis(2);
/// Rounds: every figure is measured once per round, the rounds one after the other, so that
/// a figure's repetitions are spread over the whole run rather than bunched in a fraction of
/// a second that a burst of other work on the machine may cover.
const ROUNDS: usize = 3;
/// Repetitions per figure and round.
const SAMPLES_PER_ROUND: usize = 21;
/// Repetitions per figure.
const SAMPLES: usize = ROUNDS * SAMPLES_PER_ROUND;

fn main() {
    let mut json_path =
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/roofline.json"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => match args.next() {
                Some(p) => json_path = p.into(),
                None => usage_exit("--json needs a path"),
            },
            "-h" | "--help" => {
                println!(
                    "usage: roofline [--json PATH]   (default {})",
                    json_path.display()
                );
                return;
            }
            other => usage_exit(&format!("unknown argument {other:?}")),
        }
    }

    let started = Instant::now();
    let machine = Machine::probe();
    let load_before = read_trimmed("/proc/loadavg");
    println!("deltaprop roofline probe, {} UTC", machine.date);
    println!(
        "CPU: {} ({} logical CPUs){}",
        machine.cpu_model,
        machine.logical_cpus,
        if machine.hypervisor {
            ", under a hypervisor"
        } else {
            ""
        }
    );
    println!("flags: {}", machine.flags.join(" "));
    println!(
        "caches: {}; MemAvailable {} MiB",
        machine
            .caches
            .iter()
            .map(|c| format!(
                "L{} {} (CPUs {})",
                c.level,
                human(c.size),
                c.shared_cpu_list
            ))
            .collect::<Vec<_>>()
            .join(", "),
        machine.mem_available / MIB
    );
    if let Some(note) = &machine.cache_note {
        println!("note: {note}");
    }
    if let Some(l) = &load_before {
        println!("load average before: {l}");
    }

    let isa = LoadIsa::detect();
    let levels = working_sets(&machine);
    let threads = machine.logical_cpus.max(1);
    let mut bw: Vec<BwResult> = Vec::new();
    for lv in &levels {
        for t in if threads > 1 {
            vec![1, threads]
        } else {
            vec![1]
        } {
            let per_thread = if lv.shared && t > 1 {
                lv.bytes / t
            } else {
                lv.bytes
            };
            for kernel in Kernel::ALL {
                bw.push(BwResult {
                    level: lv.name,
                    per_thread,
                    threads: t,
                    kernel,
                    rates: Vec::new(),
                });
            }
        }
    }
    let mut clock_rates = ClockRates::default();
    let mut fma = fma_plan();
    for round in 1..=ROUNDS {
        eprint!("\rround {round}/{ROUNDS} ");
        clock_rates.measure();
        for f in &mut fma {
            f.measure();
        }
        for r in &mut bw {
            let rates = measure_bandwidth(r.kernel, isa, r.per_thread, r.threads);
            r.rates.extend(rates);
        }
    }
    eprintln!();

    let clock = clock_rates.result();
    println!();
    match &clock {
        Clock::Measured {
            add_best,
            add_median,
            imul_best,
        } => println!(
            "clock: {add_best:.2} GHz (dependent add chain, best of {SAMPLES}; median \
             {add_median:.2}); dependent imul chain (3 cycles each): {imul_best:.2} GHz"
        ),
        Clock::Skipped(note) => println!("clock: skipped: {note}"),
    }
    let ghz = match clock {
        Clock::Measured { add_best, .. } => Some(add_best),
        Clock::Skipped(_) => None,
    };

    println!();
    println!("FMA peak, one core          best GFLOP/s   median   flop/cycle");
    for f in &fma {
        match f.run {
            Some(_) => {
                let stat = summarise(&f.rates);
                println!(
                    "  {:<7} {} ({:>2} chains)     {:>8.1}   {:>8.1}   {}",
                    f.isa,
                    f.ty,
                    f.chains,
                    stat.best,
                    stat.median,
                    ghz.map_or("-".into(), |g| format!("{:.1}", stat.best / g))
                )
            }
            None => println!("  {:<7} {}: skipped: {}", f.isa, f.ty, f.note),
        }
    }

    println!();
    println!(
        "bandwidth, GB/s (10^9 B/s), {} loads and stores; bytes counted: read 1 stream, \
         rmw 2, triad 3 (the triad's write-allocate read of a is not counted)",
        isa.name()
    );
    println!(
        "  level  working set/thread  threads    read best / median     rmw best / median   triad best / median"
    );
    for row in bw.chunks(Kernel::ALL.len()) {
        let mut line = format!(
            "  {:<5}  {:>18}  {:>7}",
            row[0].level,
            human(row[0].per_thread),
            row[0].threads
        );
        for r in row {
            let stat = summarise(&r.rates);
            let _ = write!(line, "  {:>8.1} / {:>8.1}", stat.best, stat.median);
        }
        println!("{line}");
    }
    for lv in &levels {
        println!("  {}: {}", lv.name, lv.rule);
    }

    let load_after = read_trimmed("/proc/loadavg");
    if let Some(l) = &load_after {
        println!("load average after: {l}");
    }
    let json = to_json(
        &machine,
        &clock,
        &fma,
        isa,
        &levels,
        &bw,
        [load_before, load_after],
        started.elapsed(),
    );
    if let Some(dir) = json_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(dir);
    }
    match std::fs::write(&json_path, json) {
        Ok(()) => println!(
            "wrote {} ({:.1} s in all)",
            json_path.display(),
            started.elapsed().as_secs_f64()
        ),
        Err(e) => {
            eprintln!("roofline: cannot write {}: {e}", json_path.display());
            std::process::exit(1);
        }
    }
}

fn usage_exit(msg: &str) -> ! {
    eprintln!("roofline: {msg}\nusage: roofline [--json PATH]");
    std::process::exit(2);
}

// ---------------------------------------------------------------------------------------
// The machine

struct Cache {
    level: u32,
    kind: String,
    size: usize,
    shared_cpu_list: String,
}

struct Machine {
    cpu_model: String,
    logical_cpus: usize,
    hypervisor: bool,
    flags: Vec<String>,
    caches: Vec<Cache>,
    cache_note: Option<String>,
    mem_available: usize,
    date: String,
}

/// The `/proc/cpuinfo` flags that decide which kernels a CPU can run.
const FLAGS_THAT_MATTER: [&str; 14] = [
    "sse2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_fp16",
    "avx512_bf16",
    "amx_tile",
    "asimd",
    "sve",
    "hypervisor",
];

impl Machine {
    fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let cpu_model = field("model name")
            .or_else(|| field("Model"))
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let all_flags = field("flags")
            .or_else(|| field("Features"))
            .unwrap_or_default();
        let all_flags: Vec<&str> = all_flags.split_whitespace().collect();
        let flags: Vec<String> = FLAGS_THAT_MATTER
            .iter()
            .filter(|f| all_flags.contains(f))
            .map(|f| f.to_string())
            .collect();
        let hypervisor = all_flags.contains(&"hypervisor");
        let logical_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

        let mut caches = Vec::new();
        for i in 0..16 {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
            let (Some(level), Some(kind), Some(size)) = (
                read_trimmed(&format!("{dir}/level")),
                read_trimmed(&format!("{dir}/type")),
                read_trimmed(&format!("{dir}/size")),
            ) else {
                continue;
            };
            let (Ok(level), Some(size)) = (level.parse::<u32>(), parse_size(&size)) else {
                continue;
            };
            if kind == "Instruction" {
                continue;
            }
            let shared_cpu_list =
                read_trimmed(&format!("{dir}/shared_cpu_list")).unwrap_or_default();
            caches.push(Cache {
                level,
                kind,
                size,
                shared_cpu_list,
            });
        }
        caches.sort_by_key(|c| c.level);
        let mut cache_note = None;
        for (level, default) in [(1, 32 * KIB), (2, MIB), (3, 8 * MIB)] {
            if !caches.iter().any(|c| c.level == level) {
                cache_note
                    .get_or_insert_with(String::new)
                    .push_str(&format!(
                        "no L{level} in /sys/devices/system/cpu/cpu0/cache: assumed {}. ",
                        human(default)
                    ));
                caches.push(Cache {
                    level,
                    kind: "assumed".into(),
                    size: default,
                    shared_cpu_list: String::new(),
                });
            }
        }
        caches.sort_by_key(|c| c.level);

        let mem_available = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemAvailable:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<usize>().ok())
            })
            .map_or(4096 * MIB, |kb| kb * KIB);

        Machine {
            cpu_model,
            logical_cpus,
            hypervisor,
            flags,
            caches,
            cache_note,
            mem_available,
            date: utc_now(),
        }
    }

    fn cache(&self, level: u32) -> &Cache {
        self.caches
            .iter()
            .find(|c| c.level == level)
            .expect("levels 1-3 are always present (assumed if sysfs lacks them)")
    }
}

/// "48K", "2048K", "260M", "1G" or plain bytes.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mul) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], KIB),
        'M' | 'm' => (&s[..s.len() - 1], MIB),
        'G' | 'g' => (&s[..s.len() - 1], 1024 * MIB),
        _ => (s, 1),
    };
    num.trim().parse::<usize>().ok().map(|n| n * mul)
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn human(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB / 4) {
        format!("{} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}

/// The current UTC time as ISO 8601 (civil-from-days, proleptic Gregorian calendar).
fn utc_now() -> String {
    iso_utc(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// `secs` after the Unix epoch as ISO 8601 UTC.
fn iso_utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------
// Working-set sizes per level

struct WorkingSet {
    name: &'static str,
    /// All arrays of one kernel together, for one thread.
    bytes: usize,
    /// Whether the level is shared by all cores (the threads split the working set).
    shared: bool,
    rule: String,
}

fn working_sets(m: &Machine) -> Vec<WorkingSet> {
    let (l1, l2, l3) = (m.cache(1), m.cache(2), m.cache(3));
    let shared = |c: &Cache| c.shared_cpu_list.contains(['-', ',']);
    let mut out = vec![
        WorkingSet {
            name: "L1",
            bytes: round_down(l1.size / 2),
            shared: false,
            rule: format!("half of L1d ({})", human(l1.size)),
        },
        WorkingSet {
            name: "L2",
            bytes: round_down(l2.size / 2),
            shared: shared(l2),
            rule: format!("half of L2 ({})", human(l2.size)),
        },
    ];
    let (small, large) = {
        let (q, c) = (l3.size / 4, 32 * MIB);
        (q.min(c), q.max(c))
    };
    let l3_set = [small, large]
        .into_iter()
        .find(|&s| s > l2.size && s <= l3.size / 2);
    match l3_set {
        Some(s) => out.push(WorkingSet {
            name: "L3",
            bytes: round_down(s),
            shared: shared(l3),
            rule: format!(
                "the smaller of a quarter of L3 ({}) and 32 MiB that exceeds L2 and fits in \
                 half of L3",
                human(l3.size)
            ),
        }),
        None => println!(
            "note: no L3-sized working set: neither a quarter of L3 ({}) nor 32 MiB lies \
             between L2 and half of L3",
            human(l3.size)
        ),
    }
    let cap = m.mem_available / 8;
    let dram = (4 * l3.size).min(cap);
    out.push(WorkingSet {
        name: "DRAM",
        bytes: round_down(dram),
        shared: true,
        rule: if dram < 4 * l3.size {
            format!(
                "4 × L3 capped at an eighth of MemAvailable ({}): {} × L3",
                human(m.mem_available),
                dram as f64 / l3.size as f64
            )
        } else {
            "4 × L3".into()
        },
    });
    out
}

/// A whole number of cache lines.
fn round_down(bytes: usize) -> usize {
    (bytes / 64).max(1) * 64
}

// ---------------------------------------------------------------------------------------
// Clock

enum Clock {
    Measured {
        add_best: f64,
        add_median: f64,
        imul_best: f64,
    },
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    Skipped(&'static str),
}

/// GHz of every repetition so far.
#[derive(Default)]
struct ClockRates {
    add: Vec<f64>,
    imul: Vec<f64>,
}

impl ClockRates {
    /// One round's repetitions.
    fn measure(&mut self) {
        #[cfg(target_arch = "x86_64")]
        {
            // One add per cycle: `iters` blocks of ADD_BLOCK dependent adds.
            self.add.extend(rates_of(|iters| {
                black_box(x86::add_chain(iters));
                iters as f64 * x86::ADD_BLOCK as f64 / 1e9
            }));
            self.imul.extend(rates_of(|iters| {
                black_box(x86::imul_chain(iters));
                iters as f64 * x86::ADD_BLOCK as f64 * 3.0 / 1e9
            }));
        }
    }

    fn result(&self) -> Clock {
        if self.add.is_empty() {
            return Clock::Skipped("the add-chain clock needs x86-64 assembly");
        }
        let add = summarise(&self.add);
        Clock::Measured {
            add_best: add.best,
            add_median: add.median,
            imul_best: summarise(&self.imul).best,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Timing

#[derive(Clone, Copy)]
struct Stat {
    best: f64,
    median: f64,
}

/// `work(iters)` runs `iters` units and returns the amount of work done (in the figure's
/// unit × time unit, e.g. GFLOP); each repetition is calibrated to about SAMPLE_TIME.
/// Returns amount / seconds of each of a round's repetitions.
fn rates_of(mut work: impl FnMut(u64) -> f64) -> Vec<f64> {
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        work(iters);
        let e = t.elapsed();
        if e >= SAMPLE_TIME / 4 || iters >= 1 << 40 {
            let scale = SAMPLE_TIME.as_secs_f64() / e.as_secs_f64().max(1e-9);
            iters = ((iters as f64 * scale).ceil() as u64).max(1);
            break;
        }
        iters *= 4;
    }
    (0..SAMPLES_PER_ROUND)
        .map(|_| {
            let t = Instant::now();
            let amount = work(iters);
            amount / t.elapsed().as_secs_f64()
        })
        .collect()
}

fn summarise(rates: &[f64]) -> Stat {
    let mut rates = rates.to_vec();
    rates.sort_by(f64::total_cmp);
    Stat {
        best: *rates.last().unwrap_or(&f64::NAN),
        median: rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN),
    }
}

// ---------------------------------------------------------------------------------------
// FMA peak

struct FmaPeak {
    isa: &'static str,
    ty: &'static str,
    chains: usize,
    lanes: usize,
    /// The measuring function, if this CPU can run it.
    run: Option<fn(u64)>,
    note: String,
    /// GFLOP/s of every repetition so far.
    rates: Vec<f64>,
}

impl FmaPeak {
    /// One round's repetitions.
    fn measure(&mut self) {
        if let Some(f) = self.run {
            // A multiply and an add per lane of each chain's FMA.
            let flops_per_iter = (self.chains * self.lanes * 2) as f64;
            self.rates.extend(rates_of(|iters| {
                f(iters);
                iters as f64 * flops_per_iter / 1e9
            }));
        }
    }
}

fn fma_plan() -> Vec<FmaPeak> {
    let mut out = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        use x86::{CHAINS_AVX2, CHAINS_AVX512};
        let has_avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let has_avx512 = is_x86_feature_detected!("avx512f");
        type Peak = (&'static str, &'static str, usize, bool, usize, fn(u64));
        let runs: [Peak; 4] = [
            ("avx2", "f32", CHAINS_AVX2, has_avx2, 8, |n| {
                // SAFETY: kept only when avx2 and fma were detected (`has` below).
                unsafe { x86::fma_avx2_f32(n) }
            }),
            ("avx2", "f64", CHAINS_AVX2, has_avx2, 4, |n| {
                // SAFETY: kept only when avx2 and fma were detected.
                unsafe { x86::fma_avx2_f64(n) }
            }),
            ("avx512", "f32", CHAINS_AVX512, has_avx512, 16, |n| {
                // SAFETY: kept only when avx512f was detected.
                unsafe { x86::fma_avx512_f32(n) }
            }),
            ("avx512", "f64", CHAINS_AVX512, has_avx512, 8, |n| {
                // SAFETY: kept only when avx512f was detected.
                unsafe { x86::fma_avx512_f64(n) }
            }),
        ];
        for (isa, ty, chains, has, lanes, f) in runs {
            let note = if has {
                String::new()
            } else if isa == "avx2" {
                "this CPU lacks avx2+fma".into()
            } else {
                "this CPU lacks avx512f".into()
            };
            out.push(FmaPeak {
                isa,
                ty,
                chains,
                lanes,
                run: has.then_some(f),
                note,
                rates: Vec::new(),
            });
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (isa, ty) in [
        ("avx2", "f32"),
        ("avx2", "f64"),
        ("avx512", "f32"),
        ("avx512", "f64"),
    ] {
        out.push(FmaPeak {
            isa,
            ty,
            chains: 0,
            lanes: 0,
            run: None,
            note: "not an x86-64 CPU".into(),
            rates: Vec::new(),
        });
    }
    out
}

// ---------------------------------------------------------------------------------------
// Bandwidth

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Read,
    Rmw,
    Triad,
}

impl Kernel {
    const ALL: [Kernel; 3] = [Kernel::Read, Kernel::Rmw, Kernel::Triad];

    fn name(self) -> &'static str {
        match self {
            Kernel::Read => "read",
            Kernel::Rmw => "rmw",
            Kernel::Triad => "triad",
        }
    }

    /// Arrays the working set is divided into.
    fn arrays(self) -> usize {
        match self {
            Kernel::Read | Kernel::Rmw => 1,
            Kernel::Triad => 3,
        }
    }

    /// Streams counted per element (see the module docs: write-allocate not counted).
    fn streams(self) -> usize {
        match self {
            Kernel::Read => 1,
            Kernel::Rmw => 2,
            Kernel::Triad => 3,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LoadIsa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl LoadIsa {
    fn detect() -> LoadIsa {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") {
                return LoadIsa::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return LoadIsa::Avx2;
            }
        }
        LoadIsa::Portable
    }

    fn name(self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            LoadIsa::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            LoadIsa::Avx2 => "avx2",
            LoadIsa::Portable => "portable",
        }
    }
}

/// An f32 array that starts on a 64-byte boundary plus `skew` bytes' worth of cache lines,
/// so that the triad's three arrays do not share their offsets within a 4 KiB page (loads
/// that alias earlier stores modulo 4 KiB stall).
struct Buf {
    storage: Vec<f32>,
    start: usize,
    len: usize,
}

impl Buf {
    fn new(len: usize, skew_lines: usize, value: f32) -> Buf {
        let pad = 16 + 16 * skew_lines;
        // Written element by element here, so the first touch of every page is by the
        // thread that will use it.
        let storage = vec![value; len + pad];
        let start = storage.as_ptr().align_offset(64).min(15) + 16 * skew_lines;
        Buf {
            storage,
            start,
            len,
        }
    }

    fn slice(&self, r: std::ops::Range<usize>) -> &[f32] {
        &self.storage[self.start..self.start + self.len][r]
    }

    fn slice_mut(&mut self, r: std::ops::Range<usize>) -> &mut [f32] {
        &mut self.storage[self.start..self.start + self.len][r]
    }
}

/// One thread's arrays for one kernel.
struct Arrays {
    x: Buf,
    y: Option<(Buf, Buf)>,
}

impl Arrays {
    /// Arrays of `bytes` in all, each a whole number of 64-element blocks.
    fn new(kernel: Kernel, bytes: usize) -> Arrays {
        let len = (bytes / 4 / kernel.arrays() / 64).max(1) * 64;
        match kernel {
            Kernel::Read | Kernel::Rmw => Arrays {
                x: Buf::new(len, 0, 1.0),
                y: None,
            },
            Kernel::Triad => Arrays {
                x: Buf::new(len, 0, 0.0),
                y: Some((Buf::new(len, 17, 1.0), Buf::new(len, 34, 2.0))),
            },
        }
    }

    fn len(&self) -> usize {
        self.x.len
    }

    /// Runs the kernel `passes` times over elements `r` of its arrays; returns the bytes
    /// counted.
    fn run(
        &mut self,
        kernel: Kernel,
        isa: LoadIsa,
        r: std::ops::Range<usize>,
        passes: usize,
    ) -> usize {
        let bytes = r.len() * 4 * kernel.streams() * passes;
        match kernel {
            Kernel::Read => {
                black_box(read(isa, black_box(self.x.slice(r)), passes));
            }
            Kernel::Rmw => rmw(isa, black_box(self.x.slice_mut(r)), black_box(1e-7), passes),
            Kernel::Triad => {
                let (b, c) = self.y.as_ref().expect("triad arrays");
                triad(
                    isa,
                    black_box(self.x.slice_mut(r.clone())),
                    b.slice(r.clone()),
                    c.slice(r),
                    black_box(0.5),
                    passes,
                );
            }
        }
        black_box(&mut self.x.storage);
        bytes
    }
}

fn read(isa: LoadIsa, x: &[f32], passes: usize) -> f32 {
    match isa {
        // SAFETY: LoadIsa::detect chose this level after detecting its features.
        #[cfg(target_arch = "x86_64")]
        LoadIsa::Avx512 => unsafe { x86::read_avx512(x, passes) },
        // SAFETY: as above (avx2 and fma detected).
        #[cfg(target_arch = "x86_64")]
        LoadIsa::Avx2 => unsafe { x86::read_avx2(x, passes) },
        LoadIsa::Portable => {
            let mut acc = [0.0f32; 16];
            let mut tail = 0.0;
            for _ in 0..passes {
                let chunks = x.chunks_exact(16);
                tail += chunks.remainder().iter().sum::<f32>();
                for c in chunks {
                    for (a, v) in acc.iter_mut().zip(c) {
                        *a += v;
                    }
                }
            }
            acc.iter().sum::<f32>() + tail
        }
    }
}

fn rmw(isa: LoadIsa, x: &mut [f32], a: f32, passes: usize) {
    match isa {
        // SAFETY: LoadIsa::detect chose this level after detecting its features.
        #[cfg(target_arch = "x86_64")]
        LoadIsa::Avx512 => unsafe { x86::rmw_avx512(x, a, passes) },
        // SAFETY: as above (avx2 and fma detected).
        #[cfg(target_arch = "x86_64")]
        LoadIsa::Avx2 => unsafe { x86::rmw_avx2(x, a, passes) },
        LoadIsa::Portable => {
            for _ in 0..passes {
                x.iter_mut().for_each(|v| *v += a);
            }
        }
    }
}

fn triad(isa: LoadIsa, a: &mut [f32], b: &[f32], c: &[f32], s: f32, passes: usize) {
    match isa {
        // SAFETY: LoadIsa::detect chose this level after detecting its features.
        #[cfg(target_arch = "x86_64")]
        LoadIsa::Avx512 => unsafe { x86::triad_avx512(a, b, c, s, passes) },
        // SAFETY: as above (avx2 and fma detected).
        #[cfg(target_arch = "x86_64")]
        LoadIsa::Avx2 => unsafe { x86::triad_avx2(a, b, c, s, passes) },
        LoadIsa::Portable => {
            for _ in 0..passes {
                for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + s * c;
                }
            }
        }
    }
}

struct BwResult {
    level: &'static str,
    per_thread: usize,
    threads: usize,
    kernel: Kernel,
    /// GB/s of every repetition so far.
    rates: Vec<f64>,
}

/// GB/s of one round's repetitions of `kernel` on `threads` threads, each with a working set
/// of `bytes`.
fn measure_bandwidth(kernel: Kernel, isa: LoadIsa, bytes: usize, threads: usize) -> Vec<f64> {
    let samples = SAMPLES_PER_ROUND;
    let barrier = Arc::new(Barrier::new(threads));
    // The slowest thread's time for one pass over its arrays, in nanoseconds.
    let pass_ns = Arc::new(AtomicUsize::new(1));
    // Per thread, per repetition: bytes counted and time.
    let per_thread: Vec<Vec<(usize, Duration)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, pass_ns) = (Arc::clone(&barrier), Arc::clone(&pass_ns));
                s.spawn(move || {
                    let mut arrays = Arrays::new(kernel, bytes);
                    let len = arrays.len();
                    // Warm up (every page faulted in, the caches filled), then time passes.
                    arrays.run(kernel, isa, 0..len, 1);
                    let (mut n, t) = (0u32, Instant::now());
                    while n == 0 || t.elapsed() < SAMPLE_TIME {
                        arrays.run(kernel, isa, 0..len, 1);
                        n += 1;
                    }
                    let ns = (t.elapsed() / n).as_nanos() as usize;
                    pass_ns.fetch_max(ns.max(1), Ordering::Relaxed);
                    barrier.wait();
                    // Every thread derives the same plan from the slowest pass: k whole
                    // passes per repetition, or one segment of a pass cut into `segments`.
                    let pass = pass_ns.load(Ordering::Relaxed) as f64 * 1e-9;
                    let target = SAMPLE_TIME.as_secs_f64();
                    let (k, segments) = if pass < target {
                        ((target / pass).ceil() as usize, 1)
                    } else {
                        (1, (pass / target).round().max(1.0) as usize)
                    };
                    let seg_len = len.div_ceil(segments).div_ceil(64) * 64;
                    let mut next = 0;
                    (0..samples)
                        .map(|_| {
                            let lo = (next * seg_len).min(len);
                            let hi = (lo + seg_len).min(len);
                            next = if hi >= len { 0 } else { next + 1 };
                            barrier.wait();
                            let t = Instant::now();
                            let counted = arrays.run(kernel, isa, lo..hi, k);
                            (counted, t.elapsed())
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bandwidth thread panicked"))
            .collect()
    });
    (0..samples)
        .map(|i| {
            let counted: usize = per_thread.iter().map(|t| t[i].0).sum();
            let slowest = per_thread.iter().map(|t| t[i].1).max().unwrap_or_default();
            counted as f64 / slowest.as_secs_f64() / 1e9
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// x86-64 kernels: each `#[target_feature]` function is called only after its features were
// detected at run time.

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::*;
    use std::hint::black_box;

    /// Dependent adds (or multiplications) per `add_chain` (`imul_chain`) iteration.
    pub const ADD_BLOCK: u64 = 200;

    /// `iters` × ADD_BLOCK dependent 64-bit adds, one cycle each; the loop counter runs
    /// beside the chain. Written in assembly because the compiler folds a chain of adds of a
    /// loop-invariant value into one multiply-add.
    pub fn add_chain(iters: u64) -> u64 {
        let (mut x, y) = (black_box(1u64), black_box(3u64));
        for _ in 0..iters {
            // SAFETY: the block only adds one register into another: it reads and writes
            // no memory, does not touch the stack, and only clobbers the flags (which asm!
            // assumes by default).
            unsafe {
                asm!(
                    ".rept {n}",
                    "add {x}, {y}",
                    ".endr",
                    n = const ADD_BLOCK,
                    x = inout(reg) x,
                    y = in(reg) y,
                    options(nomem, nostack, pure),
                );
            }
        }
        x
    }

    /// `iters` × ADD_BLOCK dependent 64-bit multiplications, three cycles each on Intel
    /// cores since Nehalem and AMD since Zen (in assembly: the compiler reassociates a
    /// product chain of a loop-invariant factor into fewer multiplications).
    pub fn imul_chain(iters: u64) -> u64 {
        let (mut x, y) = (black_box(1u64), black_box(0x9E37_79B9_7F4A_7C15u64));
        for _ in 0..iters {
            // SAFETY: as in `add_chain`: register operands only, no memory, no stack.
            unsafe {
                asm!(
                    ".rept {n}",
                    "imul {x}, {y}",
                    ".endr",
                    n = const ADD_BLOCK,
                    x = inout(reg) x,
                    y = in(reg) y,
                    options(nomem, nostack, pure),
                );
            }
        }
        x
    }

    /// Independent FMA chains of the AVX2 peaks: 12 (plus the two operands) of the 16
    /// ymm registers; an FMA's latency (4 cycles) × 2 ports needs at least 8.
    pub const CHAINS_AVX2: usize = 12;
    /// AVX-512: 24 of the 32 zmm registers.
    pub const CHAINS_AVX512: usize = 24;

    macro_rules! fma_peak {
        ($name:ident, $feat:literal, $chains:expr, $set1:ident, $fmadd:ident, $t:ty) => {
            /// `iters` rounds of `acc = acc·m + c` on each independent chain.
            #[target_feature(enable = $feat)]
            pub fn $name(iters: u64) {
                // m = 1/2, c = 1: every chain converges to 2, never overflows, never
                // reaches subnormals.
                let m = $set1(black_box(0.5 as $t));
                let c = $set1(black_box(1.0 as $t));
                let mut acc = [$set1(black_box(1.0 as $t)); $chains];
                for _ in 0..iters {
                    for a in acc.iter_mut() {
                        *a = $fmadd(*a, m, c);
                    }
                }
                black_box(acc);
            }
        };
    }
    fma_peak!(
        fma_avx2_f32,
        "avx2,fma",
        CHAINS_AVX2,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        f32
    );
    fma_peak!(
        fma_avx2_f64,
        "avx2,fma",
        CHAINS_AVX2,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        f64
    );
    fma_peak!(
        fma_avx512_f32,
        "avx512f",
        CHAINS_AVX512,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        f32
    );
    fma_peak!(
        fma_avx512_f64,
        "avx512f",
        CHAINS_AVX512,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        f64
    );

    // The bandwidth kernels take `passes` so that one call streams the array many times:
    // the read's final reduction (tens of cycles of dependent adds) is paid once per call,
    // not once per pass over an L1-sized array.

    /// Σ x_i, `passes` times over: sixteen 512-bit accumulators (add latency 4 × 2 load
    /// ports, twice over), 256 floats per iteration.
    #[target_feature(enable = "avx512f")]
    pub fn read_avx512(x: &[f32], passes: usize) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 16];
        let mut tail = 0.0;
        for _ in 0..passes {
            let chunks = x.chunks_exact(256);
            tail += chunks.remainder().iter().sum::<f32>();
            for c in chunks {
                for (j, a) in acc.iter_mut().enumerate() {
                    // SAFETY: c has 256 elements, so [16j, 16j + 16) is inside it for
                    // j < 16; loadu has no alignment requirement.
                    let v = unsafe { _mm512_loadu_ps(c.as_ptr().add(16 * j)) };
                    *a = _mm512_add_ps(*a, v);
                }
            }
        }
        let s = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a));
        _mm512_reduce_add_ps(s) + tail
    }

    /// Σ x_i, `passes` times over, with eight 256-bit accumulators, 64 floats per iteration.
    #[target_feature(enable = "avx2,fma")]
    pub fn read_avx2(x: &[f32], passes: usize) -> f32 {
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut tail = 0.0;
        for _ in 0..passes {
            let chunks = x.chunks_exact(64);
            tail += chunks.remainder().iter().sum::<f32>();
            for c in chunks {
                for (j, a) in acc.iter_mut().enumerate() {
                    // SAFETY: c has 64 elements, so [8j, 8j + 8) is inside it for j < 8.
                    let v = unsafe { _mm256_loadu_ps(c.as_ptr().add(8 * j)) };
                    *a = _mm256_add_ps(*a, v);
                }
            }
        }
        let s = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
        let mut lanes = [0.0f32; 8];
        // SAFETY: lanes has exactly 8 floats; storeu has no alignment requirement.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), s) };
        lanes.iter().sum::<f32>() + tail
    }

    /// x_i += a, `passes` times over, four vectors per iteration.
    #[target_feature(enable = "avx512f")]
    pub fn rmw_avx512(x: &mut [f32], a: f32, passes: usize) {
        let av = _mm512_set1_ps(a);
        for _ in 0..passes {
            let mut chunks = x.chunks_exact_mut(64);
            for c in &mut chunks {
                for j in 0..4 {
                    // SAFETY: c has 64 elements, so [16j, 16j + 16) is inside it for j < 4;
                    // loadu/storeu have no alignment requirement.
                    unsafe {
                        let p = c.as_mut_ptr().add(16 * j);
                        _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), av));
                    }
                }
            }
            chunks.into_remainder().iter_mut().for_each(|v| *v += a);
        }
    }

    /// x_i += a, `passes` times over, four 256-bit vectors per iteration.
    #[target_feature(enable = "avx2,fma")]
    pub fn rmw_avx2(x: &mut [f32], a: f32, passes: usize) {
        let av = _mm256_set1_ps(a);
        for _ in 0..passes {
            let mut chunks = x.chunks_exact_mut(32);
            for c in &mut chunks {
                for j in 0..4 {
                    // SAFETY: c has 32 elements, so [8j, 8j + 8) is inside it for j < 4.
                    unsafe {
                        let p = c.as_mut_ptr().add(8 * j);
                        _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), av));
                    }
                }
            }
            chunks.into_remainder().iter_mut().for_each(|v| *v += a);
        }
    }

    /// a_i = b_i + s·c_i, `passes` times over, four vectors per iteration.
    #[target_feature(enable = "avx512f")]
    pub fn triad_avx512(a: &mut [f32], b: &[f32], c: &[f32], s: f32, passes: usize) {
        let n = a.len().min(b.len()).min(c.len());
        let (a, b, c) = (&mut a[..n], &b[..n], &c[..n]);
        let sv = _mm512_set1_ps(s);
        let blocks = n / 64;
        for _ in 0..passes {
            for i in 0..blocks {
                for j in 0..4 {
                    let o = 64 * i + 16 * j;
                    // SAFETY: o + 16 ≤ 64 · blocks ≤ n, the length of all three slices.
                    unsafe {
                        let v = _mm512_fmadd_ps(
                            sv,
                            _mm512_loadu_ps(c.as_ptr().add(o)),
                            _mm512_loadu_ps(b.as_ptr().add(o)),
                        );
                        _mm512_storeu_ps(a.as_mut_ptr().add(o), v);
                    }
                }
            }
            let tail = a[64 * blocks..].iter_mut().zip(&b[64 * blocks..]);
            for ((a, b), c) in tail.zip(&c[64 * blocks..]) {
                *a = b + s * c;
            }
        }
    }

    /// a_i = b_i + s·c_i, `passes` times over, four 256-bit vectors per iteration.
    #[target_feature(enable = "avx2,fma")]
    pub fn triad_avx2(a: &mut [f32], b: &[f32], c: &[f32], s: f32, passes: usize) {
        let n = a.len().min(b.len()).min(c.len());
        let (a, b, c) = (&mut a[..n], &b[..n], &c[..n]);
        let sv = _mm256_set1_ps(s);
        let blocks = n / 32;
        for _ in 0..passes {
            for i in 0..blocks {
                for j in 0..4 {
                    let o = 32 * i + 8 * j;
                    // SAFETY: o + 8 ≤ 32 · blocks ≤ n, the length of all three slices.
                    unsafe {
                        let v = _mm256_fmadd_ps(
                            sv,
                            _mm256_loadu_ps(c.as_ptr().add(o)),
                            _mm256_loadu_ps(b.as_ptr().add(o)),
                        );
                        _mm256_storeu_ps(a.as_mut_ptr().add(o), v);
                    }
                }
            }
            let tail = a[32 * blocks..].iter_mut().zip(&b[32 * blocks..]);
            for ((a, b), c) in tail.zip(&c[32 * blocks..]) {
                *a = b + s * c;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// JSON (written by hand: the probe depends on std only)

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

#[allow(clippy::too_many_arguments)]
fn to_json(
    m: &Machine,
    clock: &Clock,
    fma: &[FmaPeak],
    isa: LoadIsa,
    levels: &[WorkingSet],
    bw: &[BwResult],
    load: [Option<String>; 2],
    elapsed: Duration,
) -> String {
    let mut j = String::from("{\n");
    let _ = writeln!(j, "  \"schema\": \"deltaprop-roofline/1\",");
    let _ = writeln!(j, "  \"date\": {},", json_str(&m.date));
    let _ = writeln!(
        j,
        "  \"command\": \"cargo run --release --example roofline\","
    );
    let _ = writeln!(j, "  \"machine\": {{");
    let _ = writeln!(j, "    \"cpu_model\": {},", json_str(&m.cpu_model));
    let _ = writeln!(j, "    \"arch\": {},", json_str(std::env::consts::ARCH));
    let _ = writeln!(j, "    \"logical_cpus\": {},", m.logical_cpus);
    let _ = writeln!(j, "    \"hypervisor\": {},", m.hypervisor);
    let flags: Vec<String> = m.flags.iter().map(|f| json_str(f)).collect();
    let _ = writeln!(j, "    \"flags\": [{}],", flags.join(", "));
    let caches: Vec<String> = m
        .caches
        .iter()
        .map(|c| {
            format!(
                "      {{\"level\": {}, \"type\": {}, \"size_bytes\": {}, \"shared_cpu_list\": {}}}",
                c.level,
                json_str(&c.kind),
                c.size,
                json_str(&c.shared_cpu_list)
            )
        })
        .collect();
    let _ = writeln!(j, "    \"caches\": [\n{}\n    ],", caches.join(",\n"));
    let _ = writeln!(j, "    \"mem_available_bytes\": {},", m.mem_available);
    let loads: Vec<String> = load
        .iter()
        .map(|l| l.as_deref().map_or("null".into(), json_str))
        .collect();
    let _ = writeln!(j, "    \"loadavg_before_after\": [{}]", loads.join(", "));
    let _ = writeln!(j, "  }},");
    match clock {
        Clock::Measured {
            add_best,
            add_median,
            imul_best,
        } => {
            let _ = writeln!(
                j,
                "  \"clock\": {{\"method\": \"dependent 64-bit add chain, 1 cycle per add\", \
                 \"ghz_best\": {}, \"ghz_median\": {}, \"imul_chain_ghz_best\": {}}},",
                json_num(*add_best),
                json_num(*add_median),
                json_num(*imul_best)
            );
        }
        Clock::Skipped(note) => {
            let _ = writeln!(j, "  \"clock\": {{\"skipped\": {}}},", json_str(note));
        }
    }
    let fmas: Vec<String> = fma
        .iter()
        .map(|f| match f.run {
            Some(_) => {
                let s = summarise(&f.rates);
                format!(
                    "    {{\"isa\": {}, \"type\": {}, \"chains\": {}, \"gflops_best\": {}, \
                     \"gflops_median\": {}, \"samples\": {}}}",
                    json_str(f.isa),
                    json_str(f.ty),
                    f.chains,
                    json_num(s.best),
                    json_num(s.median),
                    f.rates.len()
                )
            }
            None => format!(
                "    {{\"isa\": {}, \"type\": {}, \"skipped\": {}}}",
                json_str(f.isa),
                json_str(f.ty),
                json_str(&f.note)
            ),
        })
        .collect();
    let _ = writeln!(j, "  \"fma_peak_one_core\": [\n{}\n  ],", fmas.join(",\n"));
    let lv: Vec<String> = levels
        .iter()
        .map(|l| {
            format!(
                "      {{\"level\": {}, \"working_set_bytes\": {}, \"shared\": {}, \"rule\": {}}}",
                json_str(l.name),
                l.bytes,
                l.shared,
                json_str(&l.rule)
            )
        })
        .collect();
    let res: Vec<String> = bw
        .iter()
        .map(|r| {
            format!(
                "      {{\"level\": {}, \"kernel\": {}, \"threads\": {}, \
                 \"working_set_bytes_per_thread\": {}, \"gbs_best\": {}, \"gbs_median\": {}, \
                 \"samples\": {}}}",
                json_str(r.level),
                json_str(r.kernel.name()),
                r.threads,
                r.per_thread,
                json_num(summarise(&r.rates).best),
                json_num(summarise(&r.rates).median),
                r.rates.len()
            )
        })
        .collect();
    let _ = writeln!(j, "  \"bandwidth\": {{");
    let _ = writeln!(j, "    \"element\": \"f32\",");
    let _ = writeln!(j, "    \"load_store_isa\": {},", json_str(isa.name()));
    let _ = writeln!(
        j,
        "    \"streams_counted\": {{\"read\": 1, \"rmw\": 2, \"triad\": 3}},"
    );
    let _ = writeln!(j, "    \"write_allocate_counted\": false,");
    let _ = writeln!(j, "    \"gb\": 1e9,");
    let _ = writeln!(j, "    \"levels\": [\n{}\n    ],", lv.join(",\n"));
    let _ = writeln!(j, "    \"results\": [\n{}\n    ]", res.join(",\n"));
    let _ = writeln!(j, "  }},");
    let _ = writeln!(j, "  \"elapsed_s\": {}", json_num(elapsed.as_secs_f64()));
    j.push_str("}\n");
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(l1: usize, l2: usize, l3: usize, mem_available: usize) -> Machine {
        let cache = |level, size, shared: &str| Cache {
            level,
            kind: "Unified".into(),
            size,
            shared_cpu_list: shared.into(),
        };
        Machine {
            cpu_model: "test".into(),
            logical_cpus: 2,
            hypervisor: false,
            flags: Vec::new(),
            caches: vec![cache(1, l1, "0"), cache(2, l2, "0"), cache(3, l3, "0-1")],
            cache_note: None,
            mem_available,
            date: String::new(),
        }
    }

    fn sets(m: &Machine) -> Vec<(&'static str, usize)> {
        working_sets(m).iter().map(|w| (w.name, w.bytes)).collect()
    }

    #[test]
    fn sysfs_sizes_parse() {
        assert_eq!(parse_size("48K"), Some(48 * KIB));
        assert_eq!(parse_size("266240K"), Some(260 * MIB));
        assert_eq!(parse_size("32M"), Some(32 * MIB));
        assert_eq!(parse_size("1G"), Some(1024 * MIB));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn dates_are_iso_utc() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn working_sets_follow_the_caches() {
        // This machine: 48 KiB L1d, 2 MiB L2, 260 MiB L3: 32 MiB is the smaller candidate.
        let m = machine(48 * KIB, 2 * MIB, 260 * MIB, 24 * 1024 * MIB);
        assert_eq!(
            sets(&m),
            [
                ("L1", 24 * KIB),
                ("L2", MIB),
                ("L3", 32 * MIB),
                ("DRAM", 1040 * MIB)
            ]
        );
        // A desktop: 8 MiB L3, a quarter of it (2 MiB) is above L2 and is the smaller.
        let m = machine(32 * KIB, MIB, 8 * MIB, 16 * 1024 * MIB);
        assert_eq!(sets(&m)[2], ("L3", 2 * MIB));
        // A quarter of L3 not above L2, 32 MiB not inside half of L3: no L3 set.
        let m = machine(32 * KIB, 2 * MIB, 6 * MIB, 16 * 1024 * MIB);
        assert_eq!(
            sets(&m).iter().map(|s| s.0).collect::<Vec<_>>(),
            ["L1", "L2", "DRAM"]
        );
        // Little memory: DRAM set capped at an eighth of MemAvailable.
        let m = machine(48 * KIB, 2 * MIB, 260 * MIB, 2048 * MIB);
        assert_eq!(sets(&m)[3], ("DRAM", 256 * MIB));
    }

    /// Every load/store level's kernels against a plain loop, on lengths around their
    /// block sizes (tails included), several passes.
    #[test]
    fn bandwidth_kernels_compute_what_they_claim() {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut isas = vec![LoadIsa::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                isas.push(LoadIsa::Avx2);
            }
            if is_x86_feature_detected!("avx512f") {
                isas.push(LoadIsa::Avx512);
            }
        }
        for isa in isas {
            for len in [0, 1, 15, 31, 63, 64, 65, 255, 256, 257, 1000] {
                // Small integers: every sum is exact in f32, whatever the order.
                let x: Vec<f32> = (0..len).map(|i| (i % 7) as f32).collect();
                let want: f32 = x.iter().sum();
                assert_eq!(
                    read(isa, &x, 3),
                    3.0 * want,
                    "read {} len {len}",
                    isa.name()
                );

                let mut y = x.clone();
                rmw(isa, &mut y, 0.5, 2);
                let want: Vec<f32> = x.iter().map(|v| v + 1.0).collect();
                assert_eq!(y, want, "rmw {} len {len}", isa.name());

                let c: Vec<f32> = (0..len).map(|i| (i % 5) as f32).collect();
                let mut a = vec![f32::NAN; len];
                triad(isa, &mut a, &x, &c, 2.0, 2);
                let want: Vec<f32> = x.iter().zip(&c).map(|(b, c)| b + 2.0 * c).collect();
                assert_eq!(a, want, "triad {} len {len}", isa.name());
            }
        }
    }

    /// The bytes counted per call follow the stated convention (1, 2, 3 streams).
    #[test]
    fn bytes_counted_per_stream() {
        for (kernel, streams) in [(Kernel::Read, 1), (Kernel::Rmw, 2), (Kernel::Triad, 3)] {
            let mut arrays = Arrays::new(kernel, 48 * KIB);
            let len = arrays.len();
            assert_eq!(len, 48 * KIB / 4 / kernel.arrays());
            let counted = arrays.run(kernel, LoadIsa::detect(), 0..len, 5);
            assert_eq!(counted, 5 * len * 4 * streams);
        }
    }
}
