#!/usr/bin/env python3
"""Turn criterion's results into BENCHMARKS.md's tables (Python 3, standard library only).

Reads target/criterion/**/new/{benchmark,estimates}.json as written by benches/kernels.rs
and benches/peers.rs, and prints markdown: per kernel, size and SIMD level in GB/s of W
traffic (criterion's median) with the ratio to the reference loop; deltaprop against
OpenBLAS, faer and a plain loop; activate in Gelem/s against a plain std loop; and the
speed targets of issue 2, each marked met or not met.

    python3 benches/report.py                        # print the tables
    python3 benches/report.py --write BENCHMARKS.md  # replace the generated part of the file

With --write, everything between the lines `<!-- report:begin -->` and
`<!-- report:end -->` is replaced; the prose around them is kept.
"""

import argparse
import datetime
import json
import pathlib
import sys

SHAPES = ["128x10", "64x64", "256x256", "784x256", "1024x1024", "4096x4096"]
TYPES = ["f32", "f64"]
W_KERNELS = ["affine", "backward", "rank1_update", "backward_update"]
LEVELS = ["portable", "avx2", "avx512", "neon"]  # worst first
ACTIVATIONS = ["Sigmoid", "Tanh", "Relu", "Gelu", "Softplus"]
ACT_LENS = ["4096", "1048576"]
# First components of the group names this script reads.
OURS = set(W_KERNELS) | {"activate", "peers"}
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
        param = b.get("value_str") or b.get("function_id")
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

    small = {"128x10", "64x64"}
    gather(
        "affine ≥ OpenBLAS, faer (1.5× at 128×10)",
        "affine",
        lambda s: 1.5 if s == "128x10" else 1.0,
        lambda p: max([x for x in (p["openblas"][0], p["faer"]) if x is not None], default=None),
    )
    gather(
        "backward ≥ OpenBLAS, faer (1.5× at 128×10)",
        "backward",
        lambda s: 1.5 if s == "128x10" else 1.0,
        lambda p: max([x for x in (p["openblas"][0], p["faer"]) if x is not None], default=None),
    )
    gather(
        "rank1_update ≥ 1.2× fastest of OpenBLAS, faer, plain",
        "rank1_update",
        lambda s: 1.2,
        lambda p: p["best_peer"],
    )
    gather(
        "backward_update ≥ 1.6× fastest pair (1.2× below 256²)",
        "backward_update",
        lambda s: 1.2 if s in small else 1.6,
        lambda p: p["best_peer"],
    )
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


def render(res, times):
    stamp = ""
    if times:
        lo = datetime.datetime.fromtimestamp(min(times), datetime.timezone.utc)
        hi = datetime.datetime.fromtimestamp(max(times), datetime.timezone.utc)
        stamp = (
            f"Results measured between {lo:%Y-%m-%d %H:%M} and {hi:%Y-%m-%d %H:%M} UTC "
            "(modification times of criterion's estimates).\n\n"
        )
    parts = [
        "_Generated by `python3 benches/report.py --write BENCHMARKS.md` from "
        "target/criterion; do not edit by hand._\n\n" + stamp.rstrip(),
        "### Kernels by SIMD level\n\n" + kernel_tables(res),
        "### deltaprop vs OpenBLAS, faer and a plain loop\n\n" + peer_tables(res),
        "### activate\n\n" + activate_table(res),
        "### Issue 2's speed targets\n\n" + targets(res),
    ]
    return "\n\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--criterion", default="target/criterion", help="criterion's output folder")
    ap.add_argument("--write", metavar="FILE", help="replace the generated part of FILE")
    args = ap.parse_args()
    res, times = load(pathlib.Path(args.criterion))
    text = render(res, times)
    if not args.write:
        sys.stdout.write(text)
        return
    path = pathlib.Path(args.write)
    doc = path.read_text()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{path}: no {BEGIN} … {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + text + END + tail)


if __name__ == "__main__":
    main()
