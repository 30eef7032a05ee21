#!/usr/bin/env python3
"""Checks that the peers train the same networks: one SGD step, in float64, of PyTorch
autograd (torch_peer.py's eager variant), the hand-written torch no_grad backprop and the
hand-written numpy backprop, per sample and per batch of 32, on the two 64-32-10 networks and
784-256-128-10, from the same weights and data. Every updated weight and bias must agree to
1e-12 absolute. Prints one line per case; exits 1 on a mismatch.

  python benches/peers/check_peers.py
"""

import sys

import numpy as np
import torch

import common
import numpy_peer
import torch_peer


def main():
    torch.set_num_threads(1)
    bad = 0
    for name in ("64-32-10", "64-32-10-softmax-ce", "784-256-128-10"):
        sizes, out, loss = common.NETS[name]
        for batched in (False, True):
            rows = 32 if batched else 1
            x, t = common.data(rows, sizes[0], sizes[-1])
            x, t = x.astype(np.float64), t.astype(np.float64)
            if not batched:
                x, t = x[0], t[0]
            init = [(w.astype(np.float64), b.astype(np.float64)) for w, b in common.xavier(sizes)]
            results = {}
            for variant in ("eager", "nograd"):
                params = [
                    (
                        torch.tensor(w).requires_grad_(variant == "eager"),
                        torch.tensor(b).requires_grad_(variant == "eager"),
                    )
                    for w, b in init
                ]
                make = torch_peer.eager_step if variant == "eager" else torch_peer.nograd_step
                make(params, out, loss, batched)(torch.tensor(x), torch.tensor(t))
                results[f"torch-{variant}"] = [
                    (w.detach().numpy(), b.detach().numpy()) for w, b in params
                ]
            params = [(w.copy(), b.copy()) for w, b in init]
            numpy_peer.make_step(params, loss, batched)(x, t)
            results["numpy"] = params
            ref = results["torch-eager"]
            moved = max(np.abs(w - w0).max() for (w, _), (w0, _) in zip(ref, init))
            for peer, got in results.items():
                if peer == "torch-eager":
                    continue
                err = max(
                    max(np.abs(w - rw).max(), np.abs(b - rb).max())
                    for (w, b), (rw, rb) in zip(got, ref)
                )
                ok = err <= 1e-12 and moved > 1e-6
                bad += not ok
                print(
                    f"{'ok ' if ok else 'BAD'} {name:20} {'B32' if batched else 'B1 '} {peer:13}"
                    f" max |diff| vs autograd {err:.1e} (largest weight change {moved:.1e})"
                )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
