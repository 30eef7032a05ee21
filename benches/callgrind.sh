#!/usr/bin/env bash
# Instructions per element of deltaprop's per-sample kernels, counted by callgrind (and by
# `perf stat` where the CPU's performance counters are available): unlike wall-clock time, the
# count does not move when the machine is busy, so a regression shows even on a shared box.
# Prints one JSON line per kernel, type and tool.
#
#   benches/callgrind.sh                             # every kernel, f32 and f64, at 256×256
#   benches/callgrind.sh affine backward_update      # some kernels (activate:Tanh etc. too)
#   SHAPE="1024 1024" TYPES=f32 REPS=5 benches/callgrind.sh
#   DELTAPROP_SIMD=portable benches/callgrind.sh     # another SIMD level
#   TOOLS=perf PERF_REPS=2000 benches/callgrind.sh   # perf stat only
#
# Each figure is (I(1 + REPS) − I(1)) / (REPS · H · L), from two runs of examples/kernel_once
# that differ only by REPS extra calls: the program's start-up, the setup of W and the
# vectors, and the first call's one-time work are in both runs and cancel.
#
# valgrind cannot run AVX-512 code: the CPU it emulates reports AVX2 at most, so under
# callgrind deltaprop picks its avx2 kernels (or portable). The `simd` field of each line is
# the level the counted run used, as `deltaprop::simd::active()` reported it.
set -euo pipefail
cd "$(dirname "$0")/.."

kernels=("$@")
if [[ ${#kernels[@]} -eq 0 ]]; then
    kernels=(affine activate rank1_update backward backward_update)
fi
read -r -a types <<<"${TYPES:-f32 f64}"
read -r -a shape <<<"${SHAPE:-256 256}"
reps=${REPS:-20}
perf_reps=${PERF_REPS:-1000}
tools=${TOOLS:-callgrind perf}
h=${shape[0]}
l=${shape[1]}

cargo build --release --example kernel_once >&2
bin="${CARGO_TARGET_DIR:-target}/release/examples/kernel_once"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The `simd` field of kernel_once's JSON line.
simd_of() { sed -n 's/.*"simd": "\([a-z0-9]*\)".*/\1/p' "$1"; }

# Instructions of one callgrind run: callgrind_count <reps> <kernel> <type>; the program's
# own line goes to $tmp/out.
callgrind_count() {
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
        "$bin" "$2" "$3" "$h" "$l" "$1" >"$tmp/out" 2>"$tmp/err" || {
        cat "$tmp/err" >&2
        return 1
    }
    sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$tmp/cg.out"
}

# Instructions (user space) of one run under perf stat.
perf_count() {
    perf stat -x, -e instructions:u -o "$tmp/perf" -- \
        "$bin" "$2" "$3" "$h" "$l" "$1" >"$tmp/out"
    awk -F, '$3 ~ /^instructions/ { print $1 }' "$tmp/perf"
}

# One JSON line: emit <tool> <kernel> <type> <i_base> <i_more> <extra_reps> <version>
emit() {
    local per_call
    per_call=$(awk -v a="$4" -v b="$5" -v r="$6" 'BEGIN { printf "%.1f", (b - a) / r }')
    printf '{"tool": "%s", "kernel": "%s", "type": "%s", "h": %d, "l": %d, "simd": "%s", ' \
        "$1" "$2" "$3" "$h" "$l" "$(simd_of "$tmp/out")"
    printf '"reps": %d, "instructions_per_call": %s, "instructions_per_element": %s, ' \
        "$6" "$per_call" "$(awk -v c="$per_call" -v n=$((h * l)) 'BEGIN { printf "%.3f", c / n }')"
    printf '"version": "%s", "date": "%s"}\n' "$7" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

if [[ " $tools " == *" callgrind "* ]]; then
    if ! command -v valgrind >/dev/null; then
        echo "callgrind: valgrind is not installed (apt-get install valgrind)" >&2
    else
        version=$(valgrind --version)
        for kernel in "${kernels[@]}"; do
            for ty in "${types[@]}"; do
                base=$(callgrind_count 1 "$kernel" "$ty")
                more=$(callgrind_count $((1 + reps)) "$kernel" "$ty")
                emit callgrind "$kernel" "$ty" "$base" "$more" "$reps" "$version"
            done
        done
    fi
fi

if [[ " $tools " == *" perf "* ]]; then
    # A virtual machine often exposes no performance counters: perf then reports
    # "<not supported>" (or fails) and this part says so instead of printing zeros.
    probe=$(perf stat -x, -e instructions:u -- true 2>&1 || true)
    if ! command -v perf >/dev/null; then
        echo "perf: not installed; no perf stat counts" >&2
    elif ! awk -F, '$3 ~ /^instructions/ && $1 ~ /^[0-9]+$/ { ok = 1 } END { exit !ok }' \
        <<<"$probe"; then
        echo "perf: this machine does not count instructions (perf stat said: $(tr '\n' ' ' <<<"$probe"))" >&2
    else
        version=$(perf --version)
        for kernel in "${kernels[@]}"; do
            for ty in "${types[@]}"; do
                base=$(perf_count 1 "$kernel" "$ty")
                more=$(perf_count $((1 + perf_reps)) "$kernel" "$ty")
                emit perf "$kernel" "$ty" "$base" "$more" "$perf_reps" "$version"
            done
        done
    fi
fi
