#!/usr/bin/env python3
"""PyTorch (CPU) training throughput on the networks of benches/training.rs.

Two variants:
  eager   autograd: forward with x @ W + b, loss.backward(), torch.optim.SGD(lr).step()
          (what a PyTorch user writes);
  nograd  hand-written backprop under torch.no_grad(): the same recursion as deltaprop
          (delta_prev = (W delta) * sigma'(n_prev), W -= lr a_prev delta^T) with addmv/addr
          per sample and addmm per batch.
Both keep W as inputs x outputs (float32), sigmoid hidden layers, and the per-sample loss of
deltaprop: squared error as a sum over outputs, or softmax + cross-entropy; a batch's loss is
the mean over its rows.

  python benches/peers/torch_peer.py --threads 1 --out benches/peers/results/torch-1t.json
"""

import torch
import torch.nn.functional as F

import common


def eager_step(params, out, loss, batched):
    last = len(params) - 1
    opt = torch.optim.SGD([p for wb in params for p in wb], lr=common.LR)

    def step(x, t):
        opt.zero_grad(set_to_none=True)
        a = x
        for k, (w, b) in enumerate(params):
            n = a @ w + b
            a = n if k == last else torch.sigmoid(n)
        if loss == "ce":
            psi = -(t * F.log_softmax(a, dim=-1)).sum(dim=-1)
        else:
            psi = ((t - torch.sigmoid(a)) ** 2).sum(dim=-1)
        if batched:
            psi = psi.mean()
        psi.backward()
        opt.step()

    return step


def nograd_step(params, out, loss, batched):
    last = len(params) - 1
    lr = common.LR

    @torch.no_grad()
    def step(x, t):
        acts, ders = [x], []
        a = x
        for k, (w, b) in enumerate(params):
            n = torch.addmm(b, a, w) if batched else torch.addmv(b, w.t(), a)
            if k == last:
                break
            a = torch.sigmoid(n)
            acts.append(a)
            ders.append(a * (1.0 - a))
        if loss == "ce":
            delta = torch.softmax(n, dim=-1) - t
        else:
            y = torch.sigmoid(n)
            delta = -2.0 * (t - y) * y * (1.0 - y)
        for k in range(last, -1, -1):
            w, b = params[k]
            a_prev = acts[k]
            delta_prev = None
            if k > 0:
                # From the old W, before the update.
                delta_prev = (delta @ w.t() if batched else w @ delta) * ders[k - 1]
            if batched:
                rows = x.shape[0]
                w.addmm_(a_prev.t(), delta, alpha=-lr / rows)
                b.add_(delta.sum(dim=0), alpha=-lr / rows)
            else:
                w.addr_(a_prev, delta, alpha=-lr)
                b.add_(delta, alpha=-lr)
            delta = delta_prev

    return step


def main():
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--variants", default="eager,nograd")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    backend = {
        "blas": "mkl" if torch.backends.mkl.is_available() else "unknown",
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "parallel": next(
            (
                line.split(":", 1)[1].strip()
                for line in torch.__config__.parallel_info().splitlines()
                if line.startswith("ATen parallel backend")
            ),
            "unknown",
        ),
        "math_library": next(
            (
                line.strip()
                for line in torch.__config__.show().splitlines()
                if "Math Kernel Library" in line
            ),
            "unknown",
        ),
    }
    def make_call(variant, name, sizes, out, loss, mode, batch):
        make = {"eager": eager_step, "nograd": nograd_step}[variant]
        rows = common.PER_SAMPLE if mode == "per-sample" else batch
        x, t = common.data(rows, sizes[0], sizes[-1])
        x, t = torch.from_numpy(x), torch.from_numpy(t)
        params = [
            (
                torch.from_numpy(w).requires_grad_(variant == "eager"),
                torch.from_numpy(b).requires_grad_(variant == "eager"),
            )
            for w, b in common.xavier(sizes)
        ]
        step = make(params, out, loss, mode == "batch")
        return common.call_of(step, x, t, mode == "per-sample"), rows

    if args.serve:
        variant = args.variants.split(",")[0]
        common.serve(lambda *case: make_call(variant, *case))
        return
    records = []
    for variant in args.variants.split(","):
        records += common.measure_all(
            args,
            lambda *case: make_call(variant, *case),
            "pytorch",
            variant,
            torch.__version__,
            torch.get_num_threads(),
            backend=backend,
        )
    common.write(records, args.out)


if __name__ == "__main__":
    main()
