#!/usr/bin/env python3
"""deltaprop's training throughput interleaved with each peer's, round by round.

On a shared machine a neighbour's load comes and goes within seconds, so two figures taken a
minute apart can differ by a third for the same code. Here every contender is a server that
waits on stdin: deltaprop (`cargo bench --bench training -- --serve`), PyTorch eager and
no_grad and numpy (`torch_peer.py` / `numpy_peer.py --serve`) and FANN (`fann_peer --serve`).
For each network and mode, each round asks every contender in turn (the first one rotating
from round to round) to train for SECONDS and report its samples per second; the ratio of
deltaprop's rate to a peer's in the same round cancels most of the load both saw. The
figure is the median of those per-round ratios, with its quartiles.

All contenders run on one thread (the issue's targets are single-threaded): deltaprop in a
rayon pool of one, PyTorch with torch.set_num_threads(1), numpy's BLAS limited to one thread
by threadpoolctl, FANN single-threaded anyway. Networks, data, learning rate and the meaning
of one call are those of benches/training.rs and common.py.

    python benches/peers/paired.py                      # every network and mode, ~6 minutes
    python benches/peers/paired.py --nets 784-256-128-10 --modes B32,B256 --rounds 11

Writes benches/peers/results/paired.json (see --out); benches/report.py turns it into the
"paired" tables of BENCHMARKS.md.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys

import common

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class Server:
    """One contender: a process speaking the line protocol of common.serve."""

    def __init__(self, name, argv, env):
        self.name = name
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise SystemExit(f"{name}: expected 'ready', got {line!r}")

    def rate(self, net, mode, seconds):
        self.proc.stdin.write(f"{net} {mode} {seconds}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name} exited")
        return float(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def quartiles(v):
    s = sorted(v)
    q = statistics.quantiles(s, n=4, method="inclusive") if len(s) > 1 else [s[0]] * 3
    return q[0], statistics.median(s), q[2]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nets", default=",".join(common.NETS))
    p.add_argument("--modes", default="per-sample,B32,B256")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument(
        "--seconds", type=float, default=0.3, help="per contender and round (x3 for 1024 nets)"
    )
    p.add_argument(
        "--peers",
        default="pytorch-nograd,pytorch-eager,numpy,fann",
        help="comma-separated: pytorch-nograd, pytorch-eager, numpy, fann",
    )
    p.add_argument("--python", default=sys.executable, help="interpreter with requirements.txt")
    p.add_argument("--out", default=str(HERE / "results" / "paired.json"))
    args = p.parse_args()

    env = dict(os.environ)
    # Left-over settings that force OpenBLAS onto an old kernel (numpy's BLAS).
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(var, None)
    env["DELTAPROP_BENCH_THREADS"] = "1"

    argv = {
        "deltaprop": ["cargo", "bench", "--quiet", "--bench", "training", "--", "--serve"],
        "pytorch-nograd": [
            args.python, str(HERE / "torch_peer.py"), "--threads", "1", "--variants", "nograd",
            "--serve",
        ],
        "pytorch-eager": [
            args.python, str(HERE / "torch_peer.py"), "--threads", "1", "--variants", "eager",
            "--serve",
        ],
        "numpy": [args.python, str(HERE / "numpy_peer.py"), "--threads", "1", "--serve"],
        "fann": [str(HERE / "build" / "fann_peer"), "--serve"],
    }
    peers = [x for x in args.peers.split(",") if x]
    if "fann" in peers:
        (HERE / "build").mkdir(exist_ok=True)
        cc = shutil.which("cc") or "gcc"
        subprocess.run(
            [cc, "-O2", "-o", argv["fann"][0], str(HERE / "fann_peer.c"), "-lfloatfann", "-lm"],
            check=True,
        )
    print("starting deltaprop (cargo bench --bench training) and the peers ...", file=sys.stderr)
    servers = [Server("deltaprop", argv["deltaprop"], env)]
    servers += [Server(name, argv[name], env) for name in peers]

    records = []
    try:
        for name in args.nets.split(","):
            sizes = common.NETS[name][0]
            seconds = args.seconds * (3 if common.is_big(sizes) else 1)
            for mode in args.modes.split(","):
                rates = {s.name: [] for s in servers}
                for r in range(args.rounds):
                    for j in range(len(servers)):
                        s = servers[(r + j) % len(servers)]
                        rates[s.name].append(s.rate(name, mode, seconds))
                dp = rates["deltaprop"]
                ratios = {}
                for peer in peers:
                    q1, med, q3 = quartiles([d / x for d, x in zip(dp, rates[peer])])
                    ratios[peer] = {"median": med, "q1": q1, "q3": q3}
                batch = 1 if mode == "per-sample" else int(mode.lstrip("B"))
                rec = {
                    "network": name,
                    "mode": "per-sample" if mode == "per-sample" else "batch",
                    "batch": batch,
                    "group": f"train_sample/{name}" if batch == 1 else f"train_batch/B{batch}/{name}",
                    "rounds": args.rounds,
                    "seconds_per_turn": seconds,
                    "samples_per_s": {k: statistics.median(v) for k, v in rates.items()},
                    "rounds_samples_per_s": rates,
                    "deltaprop_speedup": ratios,
                    "threads": 1,
                }
                records.append(rec)
                line = ", ".join(
                    f"{k} {v['median']:.2f}x [{v['q1']:.2f}, {v['q3']:.2f}]"
                    for k, v in ratios.items()
                )
                print(
                    f"{rec['group']}: deltaprop {rec['samples_per_s']['deltaprop']:.0f}/s; "
                    f"deltaprop vs {line}",
                    file=sys.stderr,
                )
    finally:
        for s in servers:
            s.close()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": common.cpu_model(),
        "machine": platform.machine(),
        "loadavg_1min": load,
        "command": "python benches/peers/paired.py " + " ".join(sys.argv[1:]),
        "protocol": (
            f"{args.rounds} rounds; per round every contender trains for the given seconds in "
            "turn, the first contender rotating; speedup = median over rounds of deltaprop's "
            "samples/s over the peer's in the same round"
        ),
        "records": records,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
