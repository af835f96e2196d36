"""The chapter's recipe in one call: load Fashion-MNIST, initialise, train, and time the training loop.

    result = run_recipe(num_epochs=10, backend="fused")
    result.epochs[-1].test_acc, result.train_seconds

Used by `csoftmax train` and by the benchmarks, so that every timing is of the same thing: the training
loop of all epochs, evaluation included; data loading, and whatever the callback does (drawing,
printing), excluded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..data import BatchIterator, load_data_fashion_mnist
from .metrics import EpochMetrics
from .softmax_regression import ProgressCallback, SoftmaxRegression

__all__ = ["RecipeResult", "run_recipe", "train_recipe"]


@dataclass(frozen=True)
class RecipeResult:
    """A trained model, its per-epoch metrics, the training loop's wall time, and the data it used."""

    model: SoftmaxRegression
    backend: str
    epochs: list[EpochMetrics]
    train_seconds: float
    train_iter: BatchIterator
    test_iter: BatchIterator

    def metrics_document(self) -> dict:
        """The run as `metrics.json` holds it (the schema `csoftmax train --metrics` promises)."""
        return {
            "backend": self.backend,
            "dataset": {
                "source": self.train_iter.source,
                "train": int(self.train_iter.num_examples),
                "test": int(self.test_iter.num_examples),
            },
            "epochs": [metrics.as_dict() for metrics in self.epochs],
            "train_seconds": self.train_seconds,
        }


def run_recipe(
    num_epochs: int = 10,
    batch_size: int = 256,
    lr: float = 0.1,
    seed: int | None = 0,
    *,
    backend: str = "fused",
    data_dir: str | os.PathLike | None = None,
    sample: bool | None = None,
    callback: Callable[[EpochMetrics], None] | None = None,
    progress: ProgressCallback | None = None,
) -> RecipeResult:
    """Load Fashion-MNIST (`data_dir` and `sample` as in load_data_fashion_mnist) and `train_recipe` on it.

    `seed` seeds both the initial weights and the training shuffles, so a seed fixes the whole run: the
    chapter's program started with `d2l.manual_seed(seed)` and `load_data_fashion_mnist(..., seed=seed)`
    makes the same run.
    """
    train_iter, test_iter = load_data_fashion_mnist(batch_size, data_dir=data_dir, sample=sample, seed=seed)
    return train_recipe(train_iter, test_iter, num_epochs, lr, seed, backend=backend, callback=callback,
                        progress=progress)


def train_recipe(
    train_iter: BatchIterator,
    test_iter: BatchIterator,
    num_epochs: int = 10,
    lr: float = 0.1,
    seed: int | None = 0,
    *,
    backend: str = "fused",
    callback: Callable[[EpochMetrics], None] | None = None,
    progress: ProgressCallback | None = None,
) -> RecipeResult:
    """Initialise SoftmaxRegression(seed=seed) and fit it (see SoftmaxRegression.fit).

    `train_seconds` is the sum of the epochs' wall times, each of which spans the epoch's training and
    its evaluation on the test set but not the callback.
    """
    model = SoftmaxRegression(train_iter.images.shape[1], 10, seed=seed)
    epochs = model.fit(train_iter, test_iter, num_epochs, lr, backend=backend, callback=callback, progress=progress)
    train_seconds = sum(metrics.seconds for metrics in epochs)
    return RecipeResult(model, backend, epochs, train_seconds, train_iter, test_iter)
