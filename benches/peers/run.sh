#!/usr/bin/env bash
# Runs every end-to-end peer once and writes benches/peers/results/*.json.
# Usage (from anywhere):  bash benches/peers/run.sh [peer ...]
#   peers: torch numpy sklearn fann (default: all). PYTHON names the interpreter with
#   benches/peers/requirements.txt installed (default: python3). See benches/peers/README.md.
set -euo pipefail
# From the crate root, so that each record's `command` runs as written from there.
cd "$(dirname "$0")/../.."
P=benches/peers
PYTHON=${PYTHON:-python3}
# Some machines set these for old OpenBLAS builds; they force an older, slower kernel.
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
mkdir -p $P/results $P/build
peers=("$@")
[[ ${#peers[@]} -gt 0 ]] || peers=(torch numpy sklearn fann)

# The hand-written backprops must equal autograd before their speed means anything.
if [[ " ${peers[*]} " == *" torch "* || " ${peers[*]} " == *" numpy "* ]]; then
    "$PYTHON" $P/check_peers.py
fi

for peer in "${peers[@]}"; do
    case $peer in
        torch)
            for threads in 1 2; do
                "$PYTHON" $P/torch_peer.py --threads "$threads" --out "$P/results/pytorch-${threads}t.json"
            done
            ;;
        numpy)
            for threads in 1 2; do
                "$PYTHON" $P/numpy_peer.py --threads "$threads" --out "$P/results/numpy-${threads}t.json"
            done
            ;;
        sklearn)
            "$PYTHON" $P/sklearn_peer.py --threads 1 --out $P/results/sklearn-1t.json
            ;;
        fann)
            cc -O2 -o $P/build/fann_peer $P/fann_peer.c -lfloatfann -lm
            $P/build/fann_peer "$(dpkg-query -W -f='${Version}' libfann-dev)" \
                | "$PYTHON" $P/collect.py $P/results/fann-1t.json
            ;;
        *)
            echo "unknown peer: $peer (torch, numpy, sklearn, fann)" >&2
            exit 2
            ;;
    esac
done
