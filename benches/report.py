#!/usr/bin/env python3
"""Regenerate BENCHMARKS.md's tables and plots from the measurements (Python 3; the tables need
the standard library only, the plots matplotlib).

Reads
- target/criterion/**/new/{benchmark,estimates}.json, as written by benches/kernels.rs,
  benches/peers.rs, benches/training.rs and benches/scaling.rs (criterion's median);
- target/roofline.json, as written by `cargo run --release --example roofline`;
- benches/peers/results/*.json, as written by benches/peers/run.sh (PyTorch, numpy,
  scikit-learn, FANN);
- target/paired/peers-*.json (`cargo bench --features bench-peers --bench peers -- --paired`)
  and benches/peers/results/paired.json (benches/peers/paired.py): deltaprop interleaved with
  each peer, round by round, the figures the speed targets are judged on;
- Cargo.lock and the system's package database, for the versions of the Rust and C peers;

and prints markdown: the machine and its limits; per kernel, size and SIMD level in GB/s of W
traffic with the ratio to the reference loop; per kernel and size deltaprop's GB/s and GFLOP/s
against the best of OpenBLAS, faer, ndarray, matrixmultiply and a plain loop, with the fraction
of the roofline that applies (the bandwidth of the cache level W lives in); the minibatch
products in GFLOP/s against each library's GEMM and the FMA peak; activate against a std loop;
training samples/s side by side with the end-to-end peers; one thread against two; and the
speed targets, each marked met or not met.

    python3 benches/report.py                        # print the tables
    python3 benches/report.py --write BENCHMARKS.md  # replace the generated part, draw plots/

With --write, everything between the lines `<!-- report:begin -->` and
`<!-- report:end -->` is replaced; the prose around them is kept; the plots are written to
plots/*.svg next to the file (skipped, with a note, when matplotlib is missing).
"""

import argparse
import datetime
import json
import pathlib
import subprocess
import sys

SHAPES = ["128x10", "64x64", "256x256", "784x256", "1024x1024", "4096x4096"]
TYPES = ["f32", "f64"]
W_KERNELS = ["affine", "backward", "rank1_update", "backward_update"]
LEVELS = ["portable", "avx2", "avx512", "neon"]  # worst first
ACTIVATIONS = ["Sigmoid", "Tanh", "Relu", "Gelu", "Softplus"]
ACT_LENS = ["4096", "1048576"]
# First components of the group names this script reads.
OURS = set(W_KERNELS) | {"activate", "peers", "train_sample", "train_batch", "scaling"}
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"


def load(root):
    """{group: {parameter: (rate, unit)}}: rate in GB/s (bytes) or Gelem/s (elements),
    from the median time per iteration; plus the oldest and newest result times."""
    out, times = {}, []
    for bench in sorted(root.glob("**/new/benchmark.json")):
        est_path = bench.parent / "estimates.json"
        if not est_path.exists():
            continue
        b = json.loads(bench.read_text())
        est = json.loads(est_path.read_text())
        ns = est["median"]["point_estimate"]
        thr = b.get("throughput") or {}
        if "Bytes" in thr:
            rate, unit = thr["Bytes"] / ns, "GB/s"
        elif "Elements" in thr:
            rate, unit = thr["Elements"] / ns, "Gelem/s"
        else:
            continue
        group = b["group_id"]
        if group.split("/")[0] not in OURS:
            continue  # another bench's results (batch, training, ...)
        fid, val = b.get("function_id"), b.get("value_str")
        param = f"{fid}/{val}" if fid and val else (val or fid)
        out.setdefault(group, {})[param] = (rate, unit)
        times.append(est_path.stat().st_mtime)
    return out, times


def level_rank(name):
    return LEVELS.index(name) if name in LEVELS else -1


def fmt(x, digits=1):
    return "–" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}×"


def rate(res, group, param):
    v = res.get(group, {}).get(param)
    return None if v is None else v[0]


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def levels_in(res, groups):
    """The SIMD levels that appear in `groups`, worst first."""
    found = {p for g in groups for p in res.get(g, {}) if p in LEVELS}
    return sorted(found, key=level_rank)


def default_level(levels):
    """The level deltaprop picks by itself: the best the CPU has (the highest measured)."""
    return levels[-1] if levels else None


# ---------------------------------------------------------------------------------------------
# Per-kernel tables


def kernel_tables(res):
    out = []
    groups = [f"{k}/{t}/{s}" for k in W_KERNELS for t in TYPES for s in SHAPES]
    levels = levels_in(res, groups)
    if not levels:
        return "(no results from benches/kernels.rs)"
    out.append(
        "GB/s of W traffic (H·L·size read for `affine` and `backward`, 2·H·L·size read and "
        "written for `rank1_update` and `backward_update`), criterion's median; in brackets "
        "the ratio to the `reference` loop. 4096×4096 is timed on the portable and the best "
        "level only, the reference loop up to 1024×1024."
    )
    for k in W_KERNELS:
        out.append(f"\n#### `{k}`\n")
        rows = []
        for t in TYPES:
            for s in SHAPES:
                g = f"{k}/{t}/{s}"
                if g not in res:
                    continue
                ref = rate(res, g, "reference")
                row = [t, s.replace("x", "×")]
                for lv in levels:
                    r = rate(res, g, lv)
                    cell = fmt(r)
                    if r is not None and ref:
                        cell += f" ({fmt_ratio(r / ref)})"
                    row.append(cell)
                row.append(fmt(ref))
                rows.append(row)
        out.append(table(["type", "H×L"] + levels + ["reference"], rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Peers


def peer_entries(params):
    """Split a peers group's parameters into deltaprop levels, deltaprop pair, OpenBLAS cores,
    faer and plain."""
    dp, dp_pair, blas, other = {}, None, {}, {}
    for p in params:
        if p.startswith("deltaprop-") and p.endswith("-pair"):
            dp_pair = p
        elif p.startswith("deltaprop-"):
            dp[p[len("deltaprop-"):]] = p
        elif p.startswith("openblas-"):
            core = p[len("openblas-"):]
            core = core[: -len("-pair")] if core.endswith("-pair") else core
            blas[core] = p
        else:
            other[p.replace("-pair", "")] = p
    return dp, dp_pair, blas, other


def best_of(res, g, params):
    """(rate, parameter) of the fastest of `params` in group g."""
    best = (None, None)
    for p in params:
        r = rate(res, g, p)
        if r is not None and (best[0] is None or r > best[0]):
            best = (r, p)
    return best


def peer_row(res, g):
    """Everything the peer tables and the target checks need for one group."""
    dp, dp_pair, blas, other = peer_entries(res.get(g, {}))
    levels = sorted(dp, key=level_rank)
    dflt = default_level(levels)
    d_rate = rate(res, g, dp[dflt]) if dflt else None
    b_rate, b_param = best_of(res, g, dp.values())
    blas_rate, blas_param = best_of(res, g, blas.values())
    faer = rate(res, g, other["faer"]) if "faer" in other else None
    plain = rate(res, g, other["plain"]) if "plain" in other else None
    peers = [x for x in (blas_rate, faer, plain) if x is not None]
    best_peer = max(peers) if peers else None
    return {
        "default": (d_rate, dflt),
        "best_level": (b_rate, b_param[len("deltaprop-"):] if b_param else None),
        "pair": rate(res, g, dp_pair) if dp_pair else None,
        "openblas": (blas_rate, blas_param),
        "openblas_cores": {c: rate(res, g, p) for c, p in blas.items()},
        "faer": faer,
        "plain": plain,
        "best_peer": best_peer,
    }


def core_of(param):
    if not param:
        return ""
    core = param[len("openblas-"):]
    return core[: -len("-pair")] if core.endswith("-pair") else core


def peer_tables(res):
    out = []
    if not any(g.startswith("peers/") for g in res):
        return "(no results from benches/peers.rs)"
    out.append(
        "GB/s of the W traffic deltaprop's kernel needs (the same figure for every entry of a "
        "row, so the GB/s are proportional to speed). *default* is the level deltaprop picks "
        "by itself (the best this CPU has); *fastest level* is the best of all levels measured "
        "(the level in brackets). OpenBLAS: the fastest of the core types measured (in "
        "brackets). The ratios divide by the fastest peer of the row."
    )
    for k in W_KERNELS:
        pair = k == "backward_update"
        out.append(f"\n#### `{k}`" + (" (fused) vs GEMV-then-GER pairs" if pair else "") + "\n")
        rows = []
        for t in TYPES:
            for s in SHAPES:
                g = f"peers/{k}/{t}/{s}"
                if g not in res:
                    continue
                p = peer_row(res, g)
                d, dl = p["default"]
                b, bl = p["best_level"]
                blas, blas_p = p["openblas"]
                row = [t, s.replace("x", "×"), f"{fmt(d)} ({dl})", f"{fmt(b)} ({bl})"]
                if pair:
                    row.append(fmt(p["pair"]))
                row += [f"{fmt(blas)} ({core_of(blas_p)})", fmt(p["faer"]), fmt(p["plain"])]
                row += [fmt_ratio(ratio(d, p["best_peer"])), fmt_ratio(ratio(b, p["best_peer"]))]
                rows.append(row)
        head = ["type", "H×L", "deltaprop default", "deltaprop fastest level"]
        if pair:
            head.append("deltaprop pair")
        suffix = "-pair" if pair else ""
        head += [f"OpenBLAS{suffix}", f"faer{suffix}", f"plain{suffix}"]
        head += ["default ÷ best peer", "fastest level ÷ best peer"]
        out.append(table(head, rows))

    # OpenBLAS by core type, when more than one was measured.
    cores = sorted(
        {
            core_of(p)
            for g, ps in res.items()
            if g.startswith("peers/")
            for p in ps
            if p.startswith("openblas-")
        }
    )
    if len(cores) > 1:
        out.append("\n#### OpenBLAS by core type (GB/s, as above)\n")
        rows = []
        for k in W_KERNELS:
            for t in TYPES:
                for s in SHAPES:
                    g = f"peers/{k}/{t}/{s}"
                    if g not in res:
                        continue
                    cc = peer_row(res, g)["openblas_cores"]
                    rows.append([k, t, s.replace("x", "×")] + [fmt(cc.get(c)) for c in cores])
        out.append(table(["kernel", "type", "H×L"] + cores, rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# activate


def activate_table(res):
    groups = [f"activate/{t}/{a}/{n}" for t in TYPES for a in ACTIVATIONS for n in ACT_LENS]
    levels = levels_in(res, groups)
    if not levels:
        return "(no activate results)"
    dflt = default_level(levels)
    rows = []
    for t in TYPES:
        for a in ACTIVATIONS:
            for n in ACT_LENS:
                g = f"activate/{t}/{a}/{n}"
                if g not in res:
                    continue
                std = rate(res, g, "std-loop")
                row = [t, a, n] + [fmt(rate(res, g, lv), 3) for lv in levels]
                row += [fmt(rate(res, g, "reference"), 3), fmt(std, 3)]
                best = max((rate(res, g, lv) or 0) for lv in levels)
                row += [
                    fmt_ratio(ratio(rate(res, g, dflt), std)),
                    fmt_ratio(ratio(best, std)),
                ]
                rows.append(row)
    head = ["type", "σ", "n"] + levels + ["reference", "std loop"]
    head += [f"{dflt} ÷ std loop", "fastest level ÷ std loop"]
    return (
        "Gelem/s (a = σ(n) and d = σ'(n) written per element), criterion's median. The std "
        "loop (Sigmoid and Tanh only) is `1/(1+(-x).exp())` and `x.tanh()` with the derivative "
        "from the output, written inline in the bench.\n\n" + table(head, rows)
    )


# ---------------------------------------------------------------------------------------------
# Issue 2's targets


def _openblas_or_faer(p):
    """The faster of OpenBLAS (fastest core type) and faer in a peer row (`peer_row`)."""
    return max([x for x in (p["openblas"][0], p["faer"]) if x is not None], default=None)


# The kernel targets: label, kernel, the ratio required at a shape, the peers a paired run
# compares with (the weakest ratio counts), and the figure of a criterion peer row compared
# with.
KERNEL_TARGETS = [
    ("affine ≥ OpenBLAS, faer (1.5× at 128×10)", "affine",
     lambda s: 1.5 if s == "128x10" else 1.0, ["openblas", "faer"], _openblas_or_faer),
    ("backward ≥ OpenBLAS, faer (1.5× at 128×10)", "backward",
     lambda s: 1.5 if s == "128x10" else 1.0, ["openblas", "faer"], _openblas_or_faer),
    ("rank1_update ≥ 1.2× fastest of OpenBLAS, faer, plain", "rank1_update",
     lambda s: 1.2, ["openblas", "faer", "plain"], lambda p: p["best_peer"]),
    ("backward_update ≥ 1.6× fastest pair (1.2× below 256²)", "backward_update",
     lambda s: 1.2 if s in {"128x10", "64x64"} else 1.6,
     ["openblas-pair", "faer-pair", "ndarray-pair", "matrixmultiply-pair", "plain-pair"],
     lambda p: p["best_peer"]),
]


def targets(res):
    rows = []
    summary = []

    def check(name, t, s, need, got_default, got_best, versus):
        if got_default is None or versus is None:
            return None
        r_d, r_b = got_default / versus, (got_best or got_default) / versus
        ok = r_d >= need
        rows.append(
            [
                name,
                t,
                s.replace("x", "×"),
                f"≥ {need:.1f}×",
                fmt_ratio(r_d),
                fmt_ratio(r_b),
                "met" if ok else "**not met**",
            ]
        )
        return ok

    def gather(name, kernel, need_of, versus_of):
        results = []
        for t in TYPES:
            for s in SHAPES:
                g = f"peers/{kernel}/{t}/{s}"
                if g not in res:
                    continue
                p = peer_row(res, g)
                ok = check(
                    name, t, s, need_of(s), p["default"][0], p["best_level"][0], versus_of(p)
                )
                if ok is not None:
                    results.append(ok)
        if results:
            summary.append(f"- {name}: met at {sum(results)} of {len(results)} (type, size) pairs")

    for label, kernel, need_of, _, versus_of in KERNEL_TARGETS:
        gather(label, kernel, need_of, versus_of)
    act = []
    for a in ["Sigmoid", "Tanh"]:
        g = f"activate/f32/{a}/4096"
        levels = levels_in(res, [g])
        if not levels:
            continue
        dflt = rate(res, g, default_level(levels))
        best = max((rate(res, g, lv) or 0) for lv in levels)
        ok = check(f"activate({a}) ≥ 2.5× std loop", "f32", "4096", 2.5, dflt, best,
                   rate(res, g, "std-loop"))
        if ok is not None:
            act.append(ok)
    if act:
        summary.append(f"- activate(Sigmoid, Tanh) f32, n = 4096: met for {sum(act)} of {len(act)}")

    if not rows:
        return "(no peer results: run benches/peers.rs)"
    head = ["target", "type", "size", "required", "default level", "fastest level", "default level meets it?"]
    return (
        "Ratios of deltaprop's default level (the best this CPU has, what a user gets) and of "
        "its fastest level to the peer figure the target names (OpenBLAS at its fastest core "
        "type measured).\n\n" + "\n".join(summary) + "\n\n" + table(head, rows)
    )


# ---------------------------------------------------------------------------------------------
# The machine and its limits (target/roofline.json)


def load_roofline(path):
    if not path.exists():
        return None
    r = json.loads(path.read_text())
    caches = {c["level"]: c["size_bytes"] for c in r["machine"]["caches"] if c["type"] != "Instruction"}
    fma = {
        (f["isa"], f["type"]): f["gflops_best"] for f in r["fma_peak_one_core"] if "gflops_best" in f
    }
    bw = {
        (b["level"], b["kernel"], b["threads"]): (b["gbs_best"], b["gbs_median"])
        for b in r["bandwidth"]["results"]
    }
    return {"raw": r, "caches": caches, "fma": fma, "bw": bw}


def size_of(t):
    return 4 if t == "f32" else 8


def w_bytes(t, h, l):
    """W's bytes with each row padded to 64 bytes, as `Matrix` and the benches store it."""
    s = size_of(t)
    return h * (-(-l * s // 64) * 64)


def w_level(roof, t, h, l):
    b = w_bytes(t, h, l)
    c = roof["caches"]
    for lvl, name in ((1, "L1"), (2, "L2"), (3, "L3")):
        if lvl in c and b <= c[lvl]:
            return name
    return "DRAM"


def fma_peak(roof, t):
    """The best FMA peak of one core for type t (over the ISAs measured)."""
    vals = [v for (isa, ty), v in roof["fma"].items() if ty == t]
    return max(vals) if vals else None


def machine_section(roof, versions):
    if roof is None:
        return "(no target/roofline.json: run `cargo run --release --example roofline`)"
    r = roof["raw"]
    m = r["machine"]
    caches = ", ".join(
        f"L{c['level']}{'d' if c['type'] == 'Data' else ''} {human(c['size_bytes'])}"
        + (" shared" if "-" in c["shared_cpu_list"] or "," in c["shared_cpu_list"] else "")
        for c in m["caches"]
        if c["type"] != "Instruction"
    )
    clock = r.get("clock", {})
    ghz = f"{clock['ghz_best']:.2f} GHz measured (dependent-add chain)" if "ghz_best" in clock else "–"
    rows = [
        ["CPU", f"`{m['cpu_model']}`, {m['logical_cpus']} logical CPUs"
         + (", virtual machine" if m.get("hypervisor") else "")],
        ["clock", ghz],
        ["caches", caches],
        ["SIMD flags", " ".join(f"`{f}`" for f in m["flags"] if f != "hypervisor")],
        ["roofline measured", r["date"]],
    ]
    rows += [[k, v] for k, v in versions]
    out = [table(["", ""], rows)]

    out.append("\n#### FMA peak of one core (GFLOP/s, best of 31 repetitions; median in brackets)\n")
    frows = []
    for f in r["fma_peak_one_core"]:
        if "gflops_best" in f:
            frows.append([f["isa"], f["type"], f"{f['gflops_best']:.1f} ({f['gflops_median']:.1f})"])
        else:
            frows.append([f["isa"], f["type"], f"skipped: {f.get('skipped', '')}"])
    out.append(table(["ISA", "type", "GFLOP/s"], frows))

    out.append(
        "\n#### Bandwidth (GB/s, best of 31; median in brackets); read counts 1 stream, "
        "read-modify-write 2, triad 3 (write-allocate not counted)\n"
    )
    levels = [lv["level"] for lv in r["bandwidth"]["levels"]]
    sets = {lv["level"]: lv["working_set_bytes"] for lv in r["bandwidth"]["levels"]}
    brows = []
    for lv in levels:
        row = [lv, human(sets[lv])]
        for k in ("read", "rmw", "triad"):
            for th in (1, 2):
                v = roof["bw"].get((lv, k, th))
                row.append("–" if v is None else f"{v[0]:.1f} ({v[1]:.1f})")
        brows.append(row)
    head = ["level", "working set"] + [f"{k} {th} core{'s' if th > 1 else ''}"
                                       for k in ("read", "rmw", "triad") for th in (1, 2)]
    out.append(table(head, brows))
    return "\n".join(out)


def human(b):
    for unit, n in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= n:
            v = b / n
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{b} B"


# ---------------------------------------------------------------------------------------------
# deltaprop against the best peer and the roofline, per kernel and size

PEER_NAMES = ["openblas", "faer", "ndarray", "matrixmultiply", "plain"]
# flops per element of W, and whether the kernel writes W (read-modify-write traffic)
KERNEL_FLOPS = {"affine": 2, "backward": 2, "rank1_update": 2, "backward_update": 4}
KERNEL_RMW = {"affine": False, "backward": False, "rank1_update": True, "backward_update": True}


def peers_of(res, g):
    """{peer name: (rate, parameter)} for a peers group, each peer at its fastest entry
    (OpenBLAS at its fastest core type)."""
    best = {}
    for p, (r, _) in res.get(g, {}).items():
        if p.startswith("deltaprop-"):
            continue
        name = p.split("-")[0]
        if name not in best or r > best[name][0]:
            best[name] = (r, p)
    return best


def roofline_tables(res, roof):
    if not any(g.startswith("peers/") for g in res):
        return "(no results from benches/peers.rs)"
    out = [
        "deltaprop at the level it picks by itself; GB/s of W traffic as above; GFLOP/s = "
        "2·H·L flops (`backward_update` 4·H·L) per call. *Best peer* is the fastest of "
        "OpenBLAS (fastest core type), faer, ndarray, matrixmultiply and the plain loop "
        "(for `backward_update`, of their GEMV-then-GER pairs). *W in* is the cache level W "
        "(rows padded to 64 bytes) fits in; *roofline* is one core's bandwidth there from "
        "target/roofline.json (read for `affine` and `backward`, read-modify-write for the "
        "updates), best of 31; *of roofline* is deltaprop's GB/s over it."
    ]
    for k in W_KERNELS:
        out.append(f"\n#### `{k}`\n")
        rows = []
        for t in TYPES:
            for s in SHAPES:
                g = f"peers/{k}/{t}/{s}"
                if g not in res:
                    continue
                h, l = map(int, s.split("x"))
                p = peer_row(res, g)
                d, dl = p["default"]
                peers = peers_of(res, g)
                bp = max(peers.items(), key=lambda kv: kv[1][0]) if peers else None
                gflops = None if d is None else d * KERNEL_FLOPS[k] / (size_of(t) * (2 if KERNEL_RMW[k] else 1))
                row = [t, s.replace("x", "×"), fmt(d), fmt(gflops)]
                if bp:
                    row += [f"{fmt(bp[1][0])} ({bp[0]})", fmt_ratio(ratio(d, bp[1][0]))]
                else:
                    row += ["–", "–"]
                if roof:
                    lvl = w_level(roof, t, h, l)
                    kind = "rmw" if KERNEL_RMW[k] else "read"
                    rf = roof["bw"].get((lvl, kind, 1))
                    rf = rf[0] if rf else None
                    frac = ratio(d, rf)
                    row += [lvl, fmt(rf), "–" if frac is None else f"{100 * frac:.0f} %"]
                rows.append(row)
        head = ["type", "H×L", "deltaprop GB/s", "GFLOP/s", "best peer GB/s", "deltaprop ÷ best peer"]
        if roof:
            head += ["W in", "roofline GB/s", "of roofline"]
        out.append(table(head, rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Minibatch products against each library's GEMM

GEMM_OPS = ["gemm_forward", "gemm_backward", "gemm_update"]
GEMM_SHAPES = ["64x32", "256x128", "784x256", "1024x1024"]
GEMM_LIBS = ["openblas", "faer", "ndarray", "matrixmultiply"]


def gemm_entries(res, g):
    """{B: {library: rate}} of one gemm group; deltaprop under 'deltaprop'."""
    out = {}
    for p, (r, _) in res.get(g, {}).items():
        lib, _, b = p.rpartition("/")
        if not b.startswith("B="):
            continue
        name = "deltaprop" if lib.startswith("deltaprop") else lib.split("-")[0]
        cur = out.setdefault(int(b[2:]), {})
        cur[name] = max(r, cur.get(name, 0))
    return out


def gemm_tables(res, roof):
    if not any(g.startswith("peers/gemm_") for g in res):
        return "(no minibatch results from benches/peers.rs)"
    out = [
        "GFLOP/s (2·B·H·L flops per call), one thread. deltaprop's side is its batch kernel with "
        "its epilogue (`gemm_forward`: N = ÂW + 1bᵀ with the identity σ and σ' written; "
        "`gemm_backward`: Δ̂ = (ΔWᵀ) ⊙ D̂; `gemm_update`: W −= (α/B)ÂᵀΔ and the bias), every "
        "peer's the bare GEMM (OpenBLAS at its fastest core type). B = 1 runs deltaprop's "
        "per-sample kernels. *of peak* is deltaprop's GFLOP/s over one core's FMA peak."
    ]
    for op in GEMM_OPS:
        out.append(f"\n#### `{op}`\n")
        rows = []
        for t in TYPES:
            peak = fma_peak(roof, t) if roof else None
            for s in GEMM_SHAPES:
                g = f"peers/{op}/{t}/{s}"
                for b, libs in sorted(gemm_entries(res, g).items()):
                    d = libs.get("deltaprop")
                    peers = {k: v for k, v in libs.items() if k != "deltaprop"}
                    best = max(peers.values()) if peers else None
                    row = [t, s.replace("x", "×"), str(b), fmt(d)]
                    row += [fmt(peers.get(k)) for k in GEMM_LIBS]
                    row += [fmt_ratio(ratio(d, best))]
                    if peak:
                        row.append(f"{100 * d / peak:.0f} %" if d else "–")
                    rows.append(row)
        head = ["type", "H×L", "B", "deltaprop"] + GEMM_LIBS + ["deltaprop ÷ best peer"]
        if roof:
            head.append("of peak")
        out.append(table(head, rows))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Training, side by side with the end-to-end peers (benches/peers/results/*.json)

NETS = ["64-32-10", "64-32-10-softmax-ce", "784-256-128-10", "1024-1024-1024-10"]
MODES = [("per sample", "train_sample/{}"), ("B = 32", "train_batch/B32/{}"),
         ("B = 256", "train_batch/B256/{}")]


def load_peer_results(folder):
    recs = []
    for f in sorted(folder.glob("*.json")):
        try:
            data = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        for r in data if isinstance(data, list) else [data]:
            if isinstance(r, dict) and "samples_per_s" in r and "group" in r:
                recs.append(r)
    return recs


def peer_label(r):
    """A column per peer and thread count; PyTorch's variants (eager autograd, hand-written
    no_grad) get a column each, the other peers' variants are one per mode."""
    v = r.get("variant")
    lab = r["peer"] + (f" {v}" if r["peer"] == "pytorch" and v else "")
    return f"{lab}, {r.get('threads', 1)}t"


def peer_columns(peer_recs):
    """The peers' column labels, and {(criterion group, label): samples/s} (the best record)."""
    labels = sorted({peer_label(r) for r in peer_recs})
    by = {}
    for r in peer_recs:
        key = (r["group"], peer_label(r))
        by[key] = max(by.get(key, 0), r["samples_per_s"])
    return labels, by


def training_tables(res, peer_recs):
    out = []
    have_dp = any(g.startswith("train_") for g in res)
    if not have_dp and not peer_recs:
        return "(no training results: run benches/training.rs and benches/peers/run.sh)"
    labels, by = peer_columns(peer_recs)
    out.append(
        "Samples per second (f32, sigmoid hidden layers, lr 0.01; the networks and data of "
        "benches/training.rs). deltaprop on one thread (criterion's median); each peer's "
        "figure is the median of its repetitions, *Nt* its thread count. *deltaprop ÷ best* "
        "divides by the fastest peer of the row, whatever its thread count."
    )
    rows = []
    for net in NETS:
        for mode, pat in MODES:
            g = pat.format(net)
            d = rate(res, g, "f32")
            d = None if d is None else d * 1e9  # Gelem/s → samples/s
            vals = [by.get((g, lab)) for lab in labels]
            if d is None and not any(vals):
                continue
            best = max([v for v in vals if v], default=None)
            rows.append([net, mode, fmt(d, 0)] + [fmt(v, 0) for v in vals]
                        + [fmt_ratio(ratio(d, best))])
    out.append(table(["network", "mode", "deltaprop"] + labels + ["deltaprop ÷ best"], rows))
    vers = sorted({(r["peer"], str(r.get("version", "?"))) for r in peer_recs})
    if vers:
        out.append("Peer versions: " + ", ".join(f"{p} {v}" for p, v in vers) + ".")
    return "\n\n".join(out)


# ---------------------------------------------------------------------------------------------
# One thread against two (benches/scaling.rs)


def scaling_table(res):
    groups = sorted(g for g in res if g.startswith("scaling/"))
    if not groups:
        return "(no results from benches/scaling.rs)"
    rows = []
    for g in groups:
        one, two = rate(res, g, "threads=1"), rate(res, g, "threads=2")
        unit = next(iter(res[g].values()))[1]
        scale, u = (1e9, "samples/s") if unit == "Gelem/s" else (1, "GB/s")
        rows.append([g[len("scaling/"):], u, fmt(one and one * scale, 1 if u == "GB/s" else 0),
                     fmt(two and two * scale, 1 if u == "GB/s" else 0), fmt_ratio(ratio(two, one))])
    return (
        "Each row's two entries timed in one run, inside rayon pools of one and of two "
        "threads. The per-sample kernels are `kernels::par`'s (W split into fixed blocks above "
        "2 MiB); the training steps are `Network::train_sample` and `train_batch`.\n\n"
        + table(["what", "unit", "1 thread", "2 threads", "speed-up"], rows)
    )


# ---------------------------------------------------------------------------------------------
# Versions


def versions(root):
    out = []
    lock = root / "Cargo.lock"
    if lock.exists():
        text = lock.read_text()
        found = {}
        for block in text.split("[[package]]"):
            name = version = None
            for line in block.splitlines():
                if line.startswith('name = "'):
                    name = line.split('"')[1]
                elif line.startswith('version = "'):
                    version = line.split('"')[1]
            if name in ("faer", "ndarray", "matrixmultiply", "criterion", "wide", "rayon"):
                found[name] = version
        if found:
            out.append(["Rust crates (Cargo.lock)", ", ".join(f"{k} {v}" for k, v in sorted(found.items()))])
    for cmd, label in ((["rustc", "--version"], "rustc"),):
        try:
            out.append([label, subprocess.run(cmd, capture_output=True, text=True).stdout.strip()])
        except OSError:
            pass
    try:
        q = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                            "libopenblas0-pthread", "libopenblas0-openmp", "libfann2"],
                           capture_output=True, text=True).stdout.split()
        pk = [f"{q[i]} {q[i + 1]}" for i in range(0, len(q) - 1, 2)]
        if pk:
            out.append(["C libraries (Debian)", ", ".join(pk)])
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib)


def plots(res, roof, peer_recs, folder):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "(plots skipped: matplotlib is not installed — `pip install matplotlib`)"
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    style = {"deltaprop": ("C0", "o", 2.5), "openblas": ("C1", "s", 1.2), "faer": ("C2", "^", 1.2),
             "ndarray": ("C4", "v", 1.2), "matrixmultiply": ("C5", "D", 1.2), "plain": ("C7", "x", 1.2)}
    for k in W_KERNELS:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
        for ax, t in zip(axes, TYPES):
            xs = []
            series = {}
            for s in SHAPES:
                g = f"peers/{k}/{t}/{s}"
                if g not in res:
                    continue
                h, l = map(int, s.split("x"))
                xs.append((w_bytes(t, h, l), s))
                series.setdefault("deltaprop", []).append(peer_row(res, g)["default"][0])
                peers = peers_of(res, g)
                for name in PEER_NAMES:
                    series.setdefault(name, []).append(peers.get(name, (None,))[0])
            if not xs:
                continue
            x = [b for b, _ in xs]
            for name, ys in series.items():
                c, mk, lw = style[name]
                ax.plot(x, ys, marker=mk, color=c, lw=lw, label=name)
            if roof:
                kind = "rmw" if KERNEL_RMW[k] else "read"
                ry = []
                for _, s in xs:
                    v = roof["bw"].get((w_level(roof, t, *map(int, s.split("x"))), kind, 1))
                    ry.append(v[0] if v else None)
                ax.step(x, ry, where="mid", color="k", ls="--", lw=1, label=f"roofline ({kind}, 1 core)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks(x)
            ax.set_xticklabels([s.replace("x", "×") for _, s in xs], rotation=30, fontsize=8)
            ax.set_title(f"{k}, {t}")
            ax.set_ylabel("GB/s of W traffic")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        name = f"kernel-{k}.svg"
        fig.savefig(folder / name)
        plt.close(fig)
        made.append((f"`{k}`: GB/s against the size of W", name))

    # minibatch GEMM: GFLOP/s against B per library, one panel per op, f32 and f64 at 784×256
    if any(g.startswith("peers/gemm_") for g in res):
        fig, axes = plt.subplots(2, 3, figsize=(13, 7))
        for row, t in enumerate(TYPES):
            for col, op in enumerate(GEMM_OPS):
                ax = axes[row][col]
                for s, ls in (("784x256", "-"), ("1024x1024", ":")):
                    e = gemm_entries(res, f"peers/{op}/{t}/{s}")
                    bs = sorted(e)
                    for lib in ["deltaprop"] + GEMM_LIBS:
                        c, mk, lw = style[lib]
                        ys = [e[b].get(lib) for b in bs]
                        ax.plot(bs, ys, ls=ls, marker=mk, color=c, lw=lw,
                                label=f"{lib} {s.replace('x', '×')}")
                if roof and fma_peak(roof, t):
                    ax.axhline(fma_peak(roof, t), color="k", ls="--", lw=1, label="FMA peak, 1 core")
                ax.set_xscale("log", base=2)
                ax.set_xticks([1, 32, 256])
                ax.set_xticklabels(["1", "32", "256"])
                ax.set_title(f"{op}, {t}")
                ax.set_xlabel("B")
                ax.set_ylabel("GFLOP/s")
                ax.grid(True, alpha=0.3)
        axes[0][0].legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(folder / "gemm.svg")
        plt.close(fig)
        made.append(("minibatch products: GFLOP/s against B (784×256 solid, 1024×1024 dotted)", "gemm.svg"))

    # training samples/s per network and mode
    labels, by = peer_columns(peer_recs)
    if any(g.startswith("train_") for g in res) or by:
        fig, axes = plt.subplots(1, len(NETS), figsize=(15, 4.5), sharey=True)
        for ax, net in zip(axes, NETS):
            who = ["deltaprop"] + labels
            width = 0.8 / len(who)
            for i, w in enumerate(who):
                ys = []
                for _, pat in MODES:
                    g = pat.format(net)
                    if w == "deltaprop":
                        v = rate(res, g, "f32")
                        ys.append(v * 1e9 if v else 0)
                    else:
                        ys.append(by.get((g, w), 0))
                ax.bar([j + i * width for j in range(len(MODES))], ys, width,
                       label=w, color="C0" if w == "deltaprop" else f"C{(i % 9) + 1}")
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(MODES))])
            ax.set_xticklabels([m for m, _ in MODES], fontsize=8)
            ax.set_yscale("log")
            ax.set_title(net, fontsize=9)
            ax.grid(True, axis="y", which="both", alpha=0.3)
        axes[0].set_ylabel("samples/s")
        axes[-1].legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(folder / "training.svg")
        plt.close(fig)
        made.append(("training: samples/s per network and mode", "training.svg"))
    rel = folder.name
    return "\n\n".join(f"{cap}\n\n![{cap}]({rel}/{name})" for cap, name in made)


# ---------------------------------------------------------------------------------------------
# Paired measurements: benches/peers.rs --paired, benches/peers/paired.py

# Issue 3's training targets: (network, mode, required ratio to the best one-thread peer).
TRAIN_TARGETS = [
    ("64-32-10", "per-sample", 5.0),
    ("64-32-10-softmax-ce", "per-sample", 5.0),
    ("784-256-128-10", "per-sample", 2.5),
    ("1024-1024-1024-10", "per-sample", 1.8),
    ("784-256-128-10", "B32", 1.3),
    ("784-256-128-10", "B256", 1.15),
    ("1024-1024-1024-10", "B256", 1.1),
]


def load_paired_kernels(folder):
    """{group: {peer: (speedup, q1, q3, entry name)}} from target/paired/peers-*.json, with
    OpenBLAS's entries under `openblas` (`openblas-pair`) at the core type that did best
    against deltaprop; and the newest run's time."""
    out, when = {}, None
    for f in sorted(folder.glob("peers-*.json")):
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        when = max(when or 0, doc.get("unix_time", 0))
        for g in doc.get("groups", []):
            entries = out.setdefault(g["group"], {})
            for e in g["entries"][1:]:
                name = e["name"]
                key = name
                if name.startswith("openblas"):
                    key = "openblas-pair" if name.endswith("-pair") else "openblas"
                cur = (e["speedup"], e["speedup_q1"], e["speedup_q3"], name)
                if key not in entries or cur[0] < entries[key][0]:
                    entries[key] = cur
    return out, when


def load_paired_training(path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def fmt_sp(t):
    """A paired speedup with its quartiles."""
    if t is None:
        return "–"
    return f"{t[0]:.2f}× ({t[1]:.2f}–{t[2]:.2f})"


def mode_label(batch):
    return "per sample" if batch == 1 else f"B = {batch}"


def paired_section(pk, when, pt):
    if not pk and not pt:
        return (
            "(no paired runs: `cargo bench --features bench-peers --bench peers -- --paired` "
            "and `python benches/peers/paired.py`)"
        )
    train_rounds = "/".join(
        str(n) for n in sorted({r.get("rounds") for r in (pt or {}).get("records", [])} - {None})
    ) or "7"
    out = [
        "On this shared machine a neighbour's load comes and goes within seconds, so figures "
        "taken a minute apart (criterion's groups run one after the other) can differ by a "
        "third for the same code. The paired runs interleave deltaprop with each peer: every "
        "round runs each contender in turn for a few milliseconds (kernels; 25 rounds) or a "
        f"fraction of a second (training; {train_rounds} rounds), and the ratio within each round cancels "
        "most of the load both saw. Each figure is deltaprop's speed over the peer's: the "
        "median ratio over the rounds, with its quartiles in parentheses. OpenBLAS counts at "
        "the core type that did best (Debian's build picks `Prescott` on this CPU by itself; "
        "the run with `OPENBLAS_CORETYPE=SkylakeX` gives its AVX-512 kernels). The speed "
        "targets are judged on these."
    ]
    if pt:
        out.append(f"#### Training, one thread each ({pt.get('date', '?')})")
        peers = sorted({k for r in pt["records"] for k in r["deltaprop_speedup"]})
        rows = []
        for r in pt["records"]:
            sp = r["deltaprop_speedup"]
            best = min(sp.items(), key=lambda kv: kv[1]["median"])
            rows.append(
                [r["network"], mode_label(r["batch"]), fmt(r["samples_per_s"]["deltaprop"], 0)]
                + [fmt_sp(tuple(sp[p][k] for k in ("median", "q1", "q3"))) if p in sp else "–"
                   for p in peers]
                + [f"{best[1]['median']:.2f}× ({best[0]})"]
            )
        out.append(
            f"`{pt.get('command', '')}`: samples per second (median over the rounds) and "
            "deltaprop's speed over each peer's. FANN has no softmax: on the softmax + "
            "cross-entropy networks it trains the same sizes with a sigmoid output and squared "
            "error. scikit-learn is left out: slower than numpy in every row of the table above.\n\n"
            + table(["network", "mode", "deltaprop samples/s"] + [f"÷ {p}" for p in peers]
                    + ["÷ fastest peer"], rows)
        )
        trows = []
        by = {(r["network"], r["batch"]): r for r in pt["records"]}
        for net, mode, need in TRAIN_TARGETS:
            batch = 1 if mode == "per-sample" else int(mode[1:])
            r = by.get((net, batch))
            if not r:
                continue
            best = min(r["deltaprop_speedup"].items(), key=lambda kv: kv[1]["median"])
            got = best[1]["median"]
            trows.append([net, mode_label(batch), f"≥ {need:.2f}×", f"{got:.2f}× (vs {best[0]})",
                          "met" if got >= need else "**not met**"])
        if trows:
            out.append("Training targets (the ratio to the fastest one-thread peer of the row):\n\n"
                       + table(["network", "mode", "required", "paired", "met?"], trows))
    if pk:
        stamp = ""
        if when:
            t = datetime.datetime.fromtimestamp(when, datetime.timezone.utc)
            stamp = f" ({t:%Y-%m-%d %H:%M} UTC)"
        out.append(f"#### Kernel targets, one thread{stamp}\n\n" + paired_kernel_targets(pk))
        rows = []
        for g in sorted((g for g in pk if "/gemm_" in g), key=gemm_key):
            _, op, t, shape, b = g.split("/")
            e = pk[g]
            rows.append([op, t, shape.replace("x", "×"), b[2:]]
                        + [fmt_sp(e.get(p)) for p in ("openblas", "faer", "ndarray",
                                                       "matrixmultiply")])
        if rows:
            out.append(
                "#### Minibatch products against each library's bare GEMM, one thread\n\n"
                "deltaprop's batch kernel with its epilogue against each peer's bare GEMM "
                "(`gemm_forward`: N = ÂW + 1bᵀ, σ and σ' written; `gemm_backward`: Δ̂ = (ΔWᵀ) "
                "⊙ D̂; `gemm_update`: W −= (α/B)ÂᵀΔ and the bias).\n\n"
                + table(["product", "type", "H×L", "B", "÷ openblas", "÷ faer", "÷ ndarray",
                         "÷ matrixmultiply"], rows)
            )
    return "\n\n".join(out)


def gemm_key(g):
    _, op, t, shape, b = g.split("/")
    h, l = shape.split("x")
    return (["gemm_forward", "gemm_backward", "gemm_update"].index(op), t, int(h) * int(l),
            int(b[2:]))


def paired_kernel_targets(pk):
    rows, summary = [], []

    def gather(label, kernel, need_of, versus):
        met = []
        for t in TYPES:
            for sh in SHAPES:
                e = pk.get(f"peers/{kernel}/{t}/{sh}")
                if not e:
                    continue
                cands = [e[p] for p in versus if p in e]
                if not cands:
                    continue
                sp = min(cands, key=lambda c: c[0])
                need = need_of(sh)
                ok = sp[0] >= need
                met.append(ok)
                rows.append([label, t, sh.replace("x", "×"), f"≥ {need:.1f}×",
                             f"{fmt_sp(sp)} vs {sp[3]}", "met" if ok else "**not met**"])
        if met:
            summary.append(f"- {label}: met at {sum(met)} of {len(met)} (type, size) pairs")

    for label, kernel, need_of, peers, _ in KERNEL_TARGETS:
        gather(label, kernel, need_of, peers)
    if not rows:
        return "(no paired kernel groups)"
    return (
        "deltaprop at its default level against the peers each target names; the weakest "
        "ratio among them is shown.\n\n" + "\n".join(summary) + "\n\n"
        + table(["target", "type", "size", "required", "paired", "met?"], rows)
    )


# ---------------------------------------------------------------------------------------------
def render(res, times, roof, peer_recs, vers, plot_md, paired=""):
    stamp = ""
    if times:
        lo = datetime.datetime.fromtimestamp(min(times), datetime.timezone.utc)
        hi = datetime.datetime.fromtimestamp(max(times), datetime.timezone.utc)
        stamp = (
            f"Criterion results measured between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} UTC "
            "(modification times of criterion's estimates).\n\n"
        )
    parts = [
        "_Generated by `python3 benches/report.py --write BENCHMARKS.md` from target/criterion, "
        "target/roofline.json and benches/peers/results; do not edit by hand._\n\n" + stamp.rstrip(),
        "### The machine and its limits\n\n" + machine_section(roof, vers),
        "### Paired measurements: deltaprop interleaved with each peer\n\n" + paired,
        "### Plots\n\n" + plot_md,
        "### Per kernel: deltaprop against the best peer and the roofline\n\n"
        + roofline_tables(res, roof),
        "### Training: deltaprop against PyTorch, numpy, scikit-learn and FANN\n\n"
        + training_tables(res, peer_recs),
        "### Minibatch products against each library's GEMM\n\n" + gemm_tables(res, roof),
        "### One thread against two\n\n" + scaling_table(res),
        "### Kernels by SIMD level\n\n" + kernel_tables(res),
        "### deltaprop vs each peer, per kernel\n\n" + peer_tables(res),
        "### activate\n\n" + activate_table(res),
        "### Speed targets from the criterion medians\n\n" + targets(res),
    ]
    return "\n\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--criterion", default="target/criterion", help="criterion's output folder")
    ap.add_argument("--roofline", default="target/roofline.json", help="the roofline probe's JSON")
    ap.add_argument("--peers", default="benches/peers/results", help="the end-to-end peers' JSON")
    ap.add_argument("--paired", default="target/paired", help="benches/peers.rs --paired's JSON")
    ap.add_argument("--write", metavar="FILE", help="replace the generated part of FILE, draw plots/")
    args = ap.parse_args()
    res, times = load(pathlib.Path(args.criterion))
    roof = load_roofline(pathlib.Path(args.roofline))
    peer_recs = load_peer_results(pathlib.Path(args.peers))
    vers = versions(pathlib.Path("."))
    if args.write:
        path = pathlib.Path(args.write)
        plot_md = plots(res, roof, peer_recs, path.parent / "plots")
    else:
        plot_md = "(plots are drawn with --write)"
    pk, when = load_paired_kernels(pathlib.Path(args.paired))
    pt = load_paired_training(pathlib.Path(args.peers) / "paired.json")
    text = render(res, times, roof, peer_recs, vers, plot_md, paired_section(pk, when, pt))
    if not args.write:
        sys.stdout.write(text)
        return
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{path}: no {BEGIN} … {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + text + END + tail)


if __name__ == "__main__":
    main()
