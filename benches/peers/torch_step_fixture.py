#!/usr/bin/env python3
"""Writes tests/data/torch_sgd_step.json: one SGD step of small float64 networks computed by
PyTorch autograd, which tests/torch_parity.rs replays with deltaprop's Network<f64>.

Every case is a network with two hidden layers (5-4-4-3) of one hidden activation, and one of
three output cases: sigmoid + squared error, softmax + cross-entropy, softmax + squared error.
Each is stepped once per sample (B = 1, deltaprop's train_sample) and once as a minibatch
(B = 4, train_batch).

deltaprop's conventions, reproduced here:
  * W is inputs x outputs, row-major; n = W^T a_prev + b, i.e. N = A_prev W + 1 b^T.
  * squared error psi = ||t - y||^2, a SUM over outputs, no 1/2;
    cross-entropy psi = -sum_j t_j ln softmax(n)_j.
  * a minibatch's loss is the MEAN of its samples' losses, so autograd of that mean gives the
    mean gradient; the step is W <- W - lr * grad, b <- b - lr * grad (plain SGD).
  * leaky ReLU slope 0.01 (src/activation.rs LEAKY_RELU_SLOPE), GELU in its tanh form.

Run:  python benches/peers/torch_step_fixture.py  (from the crate root; needs torch)
"""

import json
import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

LR = 0.1
SIZES = [5, 4, 4, 3]
BATCH_SIZES = [1, 4]
SEED = 20261128

# deltaprop's Activation names -> torch functions (float64, elementwise).
HIDDEN = {
    "Identity": lambda n: n,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "Relu": torch.relu,
    "LeakyRelu": lambda n: F.leaky_relu(n, negative_slope=0.01),
    "Softplus": F.softplus,  # beta 1; its threshold (20) is far above these pre-activations
    "Gelu": lambda n: F.gelu(n, approximate="tanh"),
}

# (output activation, loss) in deltaprop's names.
OUTPUTS = [
    ("Sigmoid", "SquaredError"),
    ("Softmax", "CrossEntropy"),
    ("Softmax", "SquaredError"),
]


def per_sample_loss(n_out, t, out_act, loss):
    """The loss of each row (shape [B]) from the output pre-activations."""
    if out_act == "Softmax":
        if loss == "CrossEntropy":
            return -(t * F.log_softmax(n_out, dim=1)).sum(dim=1)
        y = torch.softmax(n_out, dim=1)
    else:
        y = HIDDEN[out_act](n_out)
    return ((t - y) ** 2).sum(dim=1)


def make_case(rng, hidden, out_act, loss, batch):
    layers = []
    for h, l in zip(SIZES[:-1], SIZES[1:]):
        w = rng.uniform(-1.0, 1.0, size=(h, l))
        b = rng.uniform(-0.5, 0.5, size=l)
        layers.append((w, b))
    x = rng.uniform(-2.0, 2.0, size=(batch, SIZES[0]))
    if loss == "CrossEntropy":
        # A probability vector per row (deltaprop's δ is (Σt) y − t, torch's the same).
        t = rng.uniform(0.05, 1.0, size=(batch, SIZES[-1]))
        t /= t.sum(axis=1, keepdims=True)
    else:
        t = rng.uniform(0.0, 1.0, size=(batch, SIZES[-1]))

    params = []
    for w, b in layers:
        params.append(torch.tensor(w, dtype=torch.float64, requires_grad=True))
        params.append(torch.tensor(b, dtype=torch.float64, requires_grad=True))
    xt = torch.tensor(x, dtype=torch.float64)
    tt = torch.tensor(t, dtype=torch.float64)
    a = xt
    last = len(layers) - 1
    for k in range(len(layers)):
        n = a @ params[2 * k] + params[2 * k + 1]
        a = n if k == last else HIDDEN[hidden](n)
    psi = per_sample_loss(a, tt, out_act, loss).mean()
    psi.backward()
    opt = torch.optim.SGD(params, lr=LR, momentum=0.0, weight_decay=0.0)
    opt.step()

    return {
        "name": f"{hidden}-{out_act}-{loss}-B{batch}",
        "hidden": hidden,
        "output": out_act,
        "loss": loss,
        "sizes": SIZES,
        "batch": batch,
        "x": x.tolist(),
        "t": t.tolist(),
        "layers": [{"w": w.tolist(), "b": b.tolist()} for w, b in layers],
        "loss_value": psi.item(),
        "updated": [
            {"w": params[2 * k].detach().numpy().tolist(), "b": params[2 * k + 1].detach().numpy().tolist()}
            for k in range(len(layers))
        ],
    }


def main():
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(SEED)
    cases = []
    for hidden in HIDDEN:
        for out_act, loss in OUTPUTS:
            for batch in BATCH_SIZES:
                cases.append(make_case(rng, hidden, out_act, loss, batch))
    fixture = {
        "generator": "benches/peers/torch_step_fixture.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "dtype": "float64",
        "lr": LR,
        "conventions": "W inputs x outputs row-major; squared error a sum over outputs (no 1/2); "
        "cross-entropy -sum t ln softmax; batch loss and gradient are means over rows; "
        "one plain SGD step (torch.optim.SGD, no momentum, no weight decay)",
        "cases": cases,
    }
    root = pathlib.Path(__file__).resolve().parents[2]
    out = root / "tests" / "data" / "torch_sgd_step.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    # One line per case: small, and a regenerated fixture diffs case by case.
    head = json.dumps({k: v for k, v in fixture.items() if k != "cases"}, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in cases)
    out.write_text(f'{head},\n "cases": [\n{body}\n ]\n}}\n')
    json.loads(out.read_text())  # the file is valid JSON
    print(f"wrote {len(cases)} cases to {out.relative_to(root)}", file=sys.stderr)


if __name__ == "__main__":
    main()
