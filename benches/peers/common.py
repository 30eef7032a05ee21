"""Shared by the Python peers: the networks and data of benches/training.rs, the timing
protocol, and the JSON records every peer prints.

The networks (sigmoid hidden layers, f32, lr 0.01, W stored inputs x outputs):
  64-32-10             sigmoid output + squared error (a sum over outputs)
  64-32-10-softmax-ce  softmax output + cross-entropy
  784-256-128-10       softmax output + cross-entropy
  1024-1024-1024-10    softmax output + cross-entropy
Modes, as benches/training.rs: per-sample SGD over 64 samples in a row (one call trains 64
samples), and minibatch SGD with B = 32 and B = 256 (one call is one step on one batch, mean
loss and mean gradient).

Timing: one untimed warm-up repetition, then `reps` timed repetitions of `iters` calls each
(`iters` chosen by a calibration call so that a repetition lasts about `target_s` seconds);
the figure is the median repetition's samples per second.
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import time

import numpy as np

PER_SAMPLE = 64
LR = 0.01
BATCHES = (32, 256)

NETS = {
    "64-32-10": ([64, 32, 10], "sigmoid", "se"),
    "64-32-10-softmax-ce": ([64, 32, 10], "softmax", "ce"),
    "784-256-128-10": ([784, 256, 128, 10], "softmax", "ce"),
    "1024-1024-1024-10": ([1024, 1024, 1024, 10], "softmax", "ce"),
}


def data(rows, h, l):
    """`rows` inputs in [0, 1) and one-hot targets, float32, row-major: the xorshift64 stream
    of benches/training.rs's `data`, value for value."""
    mask = (1 << 64) - 1
    s = 0x9E3779B97F4A7C15
    x = np.empty(rows * h, dtype=np.float32)
    for i in range(rows * h):
        s ^= (s << 13) & mask
        s ^= s >> 7
        s ^= (s << 17) & mask
        x[i] = (s >> 40) / float(1 << 24)
    i = np.arange(rows * l)
    t = (i % l == (i // l * 7) % l).astype(np.float32)
    return x.reshape(rows, h), t.reshape(rows, l)


def xavier(sizes, seed=1):
    """Weights W (H x L, float32) from Xavier/Glorot uniform U(-r, r), r = sqrt(6 / (H + L)),
    and zero biases: deltaprop's rule for sigmoid and softmax layers (its own stream differs;
    the timings do not depend on the values)."""
    rng = np.random.default_rng(seed)
    out = []
    for h, l in zip(sizes[:-1], sizes[1:]):
        r = np.sqrt(6.0 / (h + l))
        out.append((rng.uniform(-r, r, size=(h, l)).astype(np.float32), np.zeros(l, np.float32)))
    return out


def measure(call, samples_per_call, big):
    """Median samples/s of `call` (see the module docs); also the per-repetition figures."""
    target_s, reps = (1.0, 3) if big else (0.4, 5)
    t0 = time.perf_counter()
    call()  # calibration, also a first warm-up
    once = max(time.perf_counter() - t0, 1e-6)
    iters = max(1, int(target_s / once))
    for _ in range(iters):  # warm-up repetition
        call()
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            call()
        rates.append(iters * samples_per_call / (time.perf_counter() - t0))
    return statistics.median(rates), rates, iters


def parser(desc):
    p = argparse.ArgumentParser(description=desc)
    p.add_argument("--threads", type=int, default=1, help="threads the peer may use")
    p.add_argument("--nets", default=",".join(NETS), help="comma-separated network names")
    p.add_argument("--modes", default="per-sample,B32,B256", help="per-sample,B32,B256")
    p.add_argument("--out", help="write the records as a JSON array to this file")
    p.add_argument(
        "--serve",
        action="store_true",
        help="answer timing requests on stdin instead (see serve(); used by paired.py)",
    )
    return p


def measure_all(args, make_call, peer, variant, version, threads, **extra):
    """Times the call `make_call(name, sizes, out, loss, mode, batch)` builds (with the
    samples per call) for every network and mode asked for; one `record` each."""
    records = []
    for name, sizes, out, loss, mode, batch in cases(args):
        call, rows = make_call(name, sizes, out, loss, mode, batch)
        rate, rates, iters = measure(call, rows, is_big(sizes))
        records.append(
            record(peer, variant, version, threads, name, mode, batch, rate, rates, iters, **extra)
        )
    return records


def call_of(step, x, t, per_sample):
    """One timed call: `step` on each row of (x, t) in turn (per-sample SGD over the rows),
    or once on the whole batch."""
    if per_sample:
        xs, ts = list(x), list(t)

        def call():
            for xi, ti in zip(xs, ts):
                step(xi, ti)

    else:

        def call():
            step(x, t)

    return call


def serve(make_call):
    """The paired protocol (benches/peers/paired.py): read lines `NET MODE SECONDS` from
    stdin (MODE is per-sample, B32 or B256), train that case for about SECONDS (at least one
    call, after one untimed warm-up call the first time the case is asked for), and answer
    one line with the samples per second. `make_call(name, sizes, out, loss, mode, batch)`
    returns (call, samples per call). Idle between requests, so the peer timed next has the
    machine to itself."""
    cache = {}
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        name, mode_arg, seconds = parts[0], parts[1], float(parts[2])
        key = (name, mode_arg)
        if key not in cache:
            sizes, out, loss = NETS[name]
            mode, batch = ("per-sample", 1) if mode_arg == "per-sample" else (
                "batch",
                int(mode_arg.lstrip("B")),
            )
            call, rows = make_call(name, sizes, out, loss, mode, batch)
            call()
            cache[key] = (call, rows)
        call, rows = cache[key]
        n = 0
        t0 = time.perf_counter()
        while True:
            call()
            n += 1
            el = time.perf_counter() - t0
            if el >= seconds:
                break
        print(f"{n * rows / el}", flush=True)


def cases(args):
    """(network name, sizes, output, loss, mode, batch) for the networks and modes asked."""
    modes = args.modes.split(",")
    for name in args.nets.split(","):
        sizes, out, loss = NETS[name]
        for mode in modes:
            if mode == "per-sample":
                yield name, sizes, out, loss, "per-sample", 1
            else:
                yield name, sizes, out, loss, "batch", int(mode.lstrip("B"))


def is_big(sizes):
    return max(sizes) >= 1024


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def command():
    """The command line that produced the records, with the environment it depends on."""
    env = " ".join(
        f"{k}={shlex.quote(os.environ[k])}"
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
        if k in os.environ
    )
    cmd = shlex.join(["python"] + sys.argv)
    return f"{env} {cmd}".strip()


def record(peer, variant, version, threads, name, mode, batch, rate, rates, iters, **extra):
    """One flat JSON record: the fields every peer's results share."""
    group = (
        f"train_sample/{name}" if mode == "per-sample" else f"train_batch/B{batch}/{name}"
    )
    rec = {
        "peer": peer,
        "variant": variant,
        "version": version,
        "threads": threads,
        "network": name,
        "mode": mode,
        "batch": batch,
        "group": group,
        "dtype": "f32",
        "lr": LR,
        "samples_per_call": PER_SAMPLE if mode == "per-sample" else batch,
        "samples_per_s": rate,
        "reps_samples_per_s": rates,
        "calls_per_rep": iters,
        "exact_match": True,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        # The machine is shared: the load at the end of the measurement, for the reader.
        "loadavg_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "command": command(),
    }
    rec.update(extra)
    print(json.dumps(rec), flush=True)
    return rec


def write(records, path):
    if path:
        with open(path, "w") as f:
            json.dump(records, f, indent=1)
            f.write("\n")
        print(f"wrote {len(records)} records to {path}", file=sys.stderr)
