#!/usr/bin/env python3
"""numpy training throughput on the networks of benches/training.rs: hand-written backprop.

Per sample: n = a_prev @ W + b (a GEMV), delta_prev = (W @ delta) * sigma'(n_prev) from the
old W, then W -= np.outer(lr * a_prev, delta) (numpy has no in-place rank-1 update: the outer
product is formed, then subtracted). Per batch: N = A_prev @ W + b (GEMM),
Delta_prev = (Delta @ W.T) * D_prev, W -= (lr / B) * (A_prev.T @ Delta). float32 throughout;
squared error as a sum over outputs, softmax + cross-entropy; mean over a batch's rows.

numpy's BLAS does the matrix products; --threads limits its threads (threadpoolctl).

  python benches/peers/numpy_peer.py --threads 1 --out benches/peers/results/numpy-1t.json
"""

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import common


def sigmoid(n):
    return 1.0 / (1.0 + np.exp(-n))


def softmax(n):
    e = np.exp(n - n.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def make_step(params, loss, batched):
    last = len(params) - 1
    dtype = params[0][0].dtype.type
    lr = dtype(common.LR)

    def step(x, t):
        acts, ders = [x], []
        a = x
        for k, (w, b) in enumerate(params):
            n = a @ w + b
            if k == last:
                break
            a = sigmoid(n)
            acts.append(a)
            ders.append(a * (1.0 - a))
        if loss == "ce":
            delta = softmax(n) - t
        else:
            y = sigmoid(n)
            delta = -2.0 * (t - y) * y * (1.0 - y)
        for k in range(last, -1, -1):
            w, b = params[k]
            a_prev = acts[k]
            delta_prev = None
            if k > 0:
                delta_prev = (delta @ w.T if batched else w @ delta) * ders[k - 1]
            if batched:
                scale = lr / dtype(x.shape[0])
                w -= scale * (a_prev.T @ delta)
                b -= scale * delta.sum(axis=0)
            else:
                w -= np.outer(lr * a_prev, delta)
                b -= lr * delta
            delta = delta_prev

    return step


def blas_config():
    """numpy.show_config()'s build section and what threadpoolctl sees at run time."""
    cfg = {}
    try:
        d = np.show_config(mode="dicts")
        cfg["build_dependencies"] = d.get("Build Dependencies", {})
        cfg["simd_extensions"] = d.get("SIMD Extensions", {})
    except TypeError:  # numpy < 1.26 prints only
        pass
    cfg["threadpoolctl"] = [
        {k: v for k, v in lib.items() if k != "filepath"} for lib in threadpool_info()
    ]
    return cfg


def main():
    args = common.parser(__doc__.splitlines()[0]).parse_args()

    def make_call(name, sizes, out, loss, mode, batch):
        rows = common.PER_SAMPLE if mode == "per-sample" else batch
        x, t = common.data(rows, sizes[0], sizes[-1])
        params = common.xavier(sizes)
        step = make_step(params, loss, mode == "batch")
        return common.call_of(step, x, t, mode == "per-sample"), rows

    with threadpool_limits(limits=args.threads, user_api="blas"):
        if args.serve:
            common.serve(make_call)
            return
        records = common.measure_all(
            args,
            make_call,
            "numpy",
            "hand-written backprop",
            np.__version__,
            args.threads,
            backend=blas_config(),
        )
    common.write(records, args.out)


if __name__ == "__main__":
    main()
