#!/usr/bin/env python3
"""scikit-learn MLPClassifier training throughput on the networks of benches/training.rs.

MLPClassifier(solver="sgd", learning_rate_init=0.01, momentum=0, alpha=0 (no L2 penalty),
shuffle=False), logistic hidden layers, float32 inputs (scikit-learn keeps float32), trained by
partial_fit: per sample, partial_fit over the 64 samples with batch_size=1 (64 updates per
call); per batch, partial_fit on one batch of B with batch_size=B (one update per call).
Its coefs_ are inputs x outputs, as deltaprop's W.

What it cannot match: MLPClassifier has no squared-error loss. The softmax + cross-entropy
networks match exactly (class labels = argmax of the one-hot targets). For 64-32-10 (sigmoid
output + squared error) the nearest is a multilabel target matrix, which gives sigmoid
outputs with binary cross-entropy: the same shapes and passes, another loss
(exact_match: false in the record).

  python benches/peers/sklearn_peer.py --threads 1 --out benches/peers/results/sklearn-1t.json
"""

import warnings

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

import common


def main():
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    records = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, sizes, out, loss, mode, batch in common.cases(args):
            rows = common.PER_SAMPLE if mode == "per-sample" else batch
            x, t = common.data(rows, sizes[0], sizes[-1])
            multilabel = loss == "se"
            y = t.astype(np.int64) if multilabel else t.argmax(axis=1)
            clf = MLPClassifier(
                hidden_layer_sizes=tuple(sizes[1:-1]),
                activation="logistic",
                solver="sgd",
                learning_rate="constant",
                learning_rate_init=common.LR,
                momentum=0.0,
                nesterovs_momentum=False,
                alpha=0.0,
                batch_size=1 if mode == "per-sample" else batch,
                shuffle=False,
                random_state=1,
            )
            classes = np.arange(sizes[-1])

            def call():
                clf.partial_fit(x, y, classes=classes)

            rate, rates, iters = common.measure(call, rows, common.is_big(sizes))
            extra = {
                "coef_dtype": str(clf.coefs_[0].dtype),
                "output_activation": clf.out_activation_,
                "loss_used": "binary cross-entropy (multilabel)" if multilabel else "cross-entropy",
            }
            if multilabel:
                extra["exact_match"] = False
                extra["deviation"] = (
                    "MLPClassifier has no squared-error loss: sigmoid outputs with binary "
                    "cross-entropy (multilabel targets) instead"
                )
            records.append(
                common.record(
                    "scikit-learn",
                    "MLPClassifier.partial_fit",
                    sklearn.__version__,
                    args.threads,
                    name,
                    mode,
                    batch,
                    rate,
                    rates,
                    iters,
                    **extra,
                )
            )
    common.write(records, args.out)


if __name__ == "__main__":
    main()
