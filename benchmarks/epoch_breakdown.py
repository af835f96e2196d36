"""Where one fused epoch of the chapter's recipe spends its time.

    python benchmarks/epoch_breakdown.py    # a few seconds

An epoch of the fused backend is next_epoch_order() (the shuffle), one _core.sgd_epoch call (235
minibatches of 256 rows gathered from the 47 MB of uint8 training images, each a fused forward +
backward + update) and the test-set evaluation. To tell the gather from the kernel, the same
sgd_epoch is timed over three orders of its rows:
  shuffled   the epoch's order, as in training: every minibatch gathers 256 rows scattered over 47 MB
  sorted     the same rows in ascending order: the gather streams through memory, prefetch-friendly
  cached     235 minibatches of the same 256 rows (np.tile(np.arange(256), 235)): the rows stay in
             cache, so this is the hot kernel alone
shuffled - cached is what fetching the rows costs; sorted shows how much of that is their order.

Real Fashion-MNIST (csoftmax.data.load_data_fashion_mnist(256, seed=0)), a SoftmaxRegression(seed=0)
trained one epoch first (lr 0.1), csoftmax's default thread count. Each figure is the median of 20
runs; the sgd_epoch runs train the model further (lr 0.1), as an epoch does.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from openblas_restart import restart_without_openblas_overrides  # noqa: E402  (imports os and sys only)

if __name__ == "__main__":
    restart_without_openblas_overrides()  # before NumPy is imported

import numpy as np  # noqa: E402
from bench_common import timed  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _core  # noqa: E402
from csoftmax.data import load_data_fashion_mnist  # noqa: E402

SEED, BATCH_SIZE, LR = 0, 256, 0.1
REPEATS = 20


def measure(repeats=REPEATS):
    """name -> median seconds (timed's result) of each part of an epoch."""
    train_iter, test_iter = load_data_fashion_mnist(BATCH_SIZE, seed=SEED)
    model = csoftmax.SoftmaxRegression(seed=SEED)
    model.fit(train_iter, test_iter, 1, LR)
    images, labels, x_scale = train_iter.images, train_iter.labels, train_iter.x_scale
    order = train_iter.next_epoch_order()
    batches = -(-len(order) // BATCH_SIZE)
    orders = {
        "shuffled": order,
        "sorted": np.sort(order),
        "cached": np.tile(np.arange(BATCH_SIZE, dtype=np.int64), batches),
    }

    def epoch(rows):
        return lambda: _core.sgd_epoch(images, labels, rows, BATCH_SIZE, LR, x_scale, model._wt, model.b)

    parts = {"next_epoch_order()": train_iter.next_epoch_order}
    parts.update({f"sgd_epoch, {name} rows": epoch(rows) for name, rows in orders.items()})
    parts["_accuracy(test_iter)"] = lambda: model._accuracy(test_iter, "fused")
    info = {"images_mb": images.nbytes / 1e6, "train": len(labels), "test": len(test_iter.labels),
            "batches": batches, "threads": csoftmax.get_num_threads(), "source": train_iter.source}
    return info, {name: timed(call, repeats, min_seconds=0) for name, call in parts.items()}


def main():
    info, times = measure()
    print(f"one fused epoch, in parts: {info['train']} training images ({info['images_mb']:.0f} MB uint8), "
          f"{info['batches']} minibatches of {BATCH_SIZE}, {info['test']} test images; {info['threads']} threads; "
          f"median of {REPEATS} runs")
    print(f"data: {info['source']}")
    cached = times["sgd_epoch, cached rows"]["median"]
    print(f"\n{'part':<28} {'ms':>8} {'vs cached':>10}")
    for name, t in times.items():
        relative = f"{t['median'] / cached:.2f}x" if name.startswith("sgd_epoch") else ""
        print(f"{name:<28} {t['median'] * 1e3:>8.2f} {relative:>10}")
    shuffled = times["sgd_epoch, shuffled rows"]["median"]
    print(f"\nfetching the rows (shuffled - cached): {(shuffled - cached) * 1e3:.2f} ms of the epoch's "
          f"{shuffled * 1e3:.2f} ms ({100 * (shuffled - cached) / shuffled:.0f}%)")


if __name__ == "__main__":
    main()
