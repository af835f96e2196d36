"""The fast path: softmax regression trained by the fused kernel over the raw uint8 images.

The recipe is the chapter's — W ~ N(0, 0.01), b = 0, minibatch SGD on the mean gradient, the training
iterator's shuffles — but each epoch runs in C++ (`csoftmax._core.sgd_epoch`): minibatches are picked
from the uint8 images by the epoch's order, scaled by 1/255 inside the kernel, with no per-batch copy.
The "numpy" backend runs the same recipe batch by batch through `csoftmax.reference` (float32): the
honest NumPy baseline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from .. import _core, ops, reference
from .._validation import positive_float, positive_int
from ..data import PIXEL_SCALE
from ._npz import MAX_MODEL_BYTES, ModelFileError, read_checked_npz
from .metrics import EpochMetrics

__all__ = ["BACKENDS", "MAX_MODEL_BYTES", "ModelFileError", "SoftmaxRegression"]

BACKENDS = ("fused", "numpy")
FORMAT_VERSION = 1
# The fused backend runs an epoch in one call; with a progress callback, in this many pieces.
PROGRESS_STEPS = 20

ProgressCallback = Callable[[int, int, int], None]  # (epoch, examples done, examples in the epoch)


class SoftmaxRegression:
    """softmax(X W + b) for images of `num_inputs` pixels and `num_outputs` classes.

    W (num_inputs, num_outputs) starts as N(0, 0.01) samples drawn from numpy.random.default_rng(seed)
    and b as zeros: the chapter's initialisation, and the same W that `d2l.normal(0, 0.01, size=(784, 10))`
    draws after `d2l.manual_seed(seed)`. W is stored class-major, (C, D), as the kernels use it; `W` is a
    transposed view.

    Calling the model on a batch gives class probabilities, so it serves as the chapter's `net`
    (`d2l.evaluate_accuracy(model, test_iter)`, `d2l.predict_ch3(model, test_iter)`).
    """

    def __init__(self, num_inputs: int = 784, num_outputs: int = 10, *, seed=None):
        num_inputs = positive_int(num_inputs, "num_inputs")
        num_outputs = positive_int(num_outputs, "num_outputs")
        W = np.random.default_rng(seed).normal(0.0, 0.01, size=(num_inputs, num_outputs)).astype(np.float32)
        self._set_parameters(W, np.zeros(num_outputs, dtype=np.float32))

    def _set_parameters(self, W: np.ndarray, b: np.ndarray) -> None:
        self._wt = np.ascontiguousarray(W.T, dtype=np.float32)  # class-major (C, D), updated in place
        self.b = np.ascontiguousarray(b, dtype=np.float32)
        self.history: list[EpochMetrics] = []

    @property
    def W(self) -> np.ndarray:
        """The weights as the chapter has them, (num_inputs, num_outputs): a view of the class-major copy."""
        return self._wt.T

    @property
    def num_inputs(self) -> int:
        return self._wt.shape[1]

    @property
    def num_outputs(self) -> int:
        return self._wt.shape[0]

    def __repr__(self) -> str:
        return f"SoftmaxRegression(num_inputs={self.num_inputs}, num_outputs={self.num_outputs})"

    # --- prediction -------------------------------------------------------------------------------------

    def _features(self, X) -> tuple[np.ndarray, float]:
        """X as (n, num_inputs) and its scale: uint8 pixels are scaled by 1/255, floats are taken as they are."""
        X = np.asarray(X)
        if X.ndim < 2 or X[0].size != self.num_inputs:
            raise ValueError(
                f"X: expected a batch of examples with {self.num_inputs} values each, got shape {X.shape}"
            )
        X = X.reshape(X.shape[0], self.num_inputs)
        return X, (PIXEL_SCALE if X.dtype == np.uint8 else 1.0)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, num_outputs) of a batch: uint8 images (n, 784) or (n, 1, 28, 28), or
        floats in [0, 1] as the data iterators yield them."""
        X, x_scale = self._features(X)
        return ops.linear_softmax(X, self.W, self.b, x_scale)

    __call__ = predict_proba

    def predict(self, X, *, threshold: float | None = None, top_k: int | None = None) -> np.ndarray:
        """The most likely class of each example; see `csoftmax.predict` for threshold (abstain with -1)
        and top_k."""
        X, x_scale = self._features(X)
        return ops.predict(X, self.W, self.b, x_scale, threshold=threshold, top_k=top_k)

    def evaluate(self, data_iter) -> float:
        """Accuracy on a data iterator's whole dataset (its `images` and `labels`)."""
        return self._accuracy(data_iter, "fused")

    def _accuracy(self, data_iter, backend: str) -> float:
        images, labels = _raw_data(data_iter, "data_iter")
        if backend == "numpy":
            predicted = reference.predict(images, self.W, self.b, x_scale=data_iter.x_scale)
        else:
            predicted = ops.predict(images, self.W, self.b, data_iter.x_scale)
        return float(np.count_nonzero(predicted == labels)) / len(labels)

    # --- training -----------------------------------------------------------------------------------------

    def fit(
        self,
        train_iter,
        test_iter,
        num_epochs: int = 10,
        lr: float = 0.1,
        *,
        backend: str = "fused",
        callback: Callable[[EpochMetrics], None] | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[EpochMetrics]:
        """Minibatch SGD for `num_epochs` epochs; returns each epoch's metrics (also kept in `history`).

        train_iter, test_iter: csoftmax data iterators (`load_data_fashion_mnist`). Training visits the
            examples in the orders `train_iter` would (`next_epoch_order()`), in its `batch_size`.
        backend: "fused" (the C++ kernel) or "numpy" (the same steps through csoftmax.reference).
        callback: called with each epoch's EpochMetrics.
        progress: called as progress(epoch, examples_done, examples_total) during an epoch.
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        num_epochs = positive_int(num_epochs, "num_epochs")
        lr = positive_float(lr, "lr")
        images, labels = _raw_data(train_iter, "train_iter")
        _raw_data(test_iter, "test_iter")
        if images.shape[1] != self.num_inputs:
            raise ValueError(f"train_iter: images have {images.shape[1]} values, the model takes {self.num_inputs}")
        run_epoch = self._fused_epoch if backend == "fused" else self._numpy_epoch
        for epoch in range(1, num_epochs + 1):
            start = time.perf_counter()
            order = train_iter.next_epoch_order()
            loss_sum, correct = 0.0, 0
            for done, (part_loss, part_correct) in run_epoch(train_iter, order, lr, progress is not None):
                loss_sum, correct = loss_sum + part_loss, correct + part_correct
                if progress is not None:
                    progress(epoch, done, len(order))
            test_acc = self._accuracy(test_iter, backend)
            metrics = EpochMetrics(epoch, loss_sum / len(order), correct / len(order), test_acc,
                                   time.perf_counter() - start)
            self.history.append(metrics)
            if callback is not None:
                callback(metrics)
        return self.history[-num_epochs:]

    def _fused_epoch(self, train_iter, order, lr, in_steps) -> Iterator[tuple[int, tuple[float, int]]]:
        """Yields (examples done, (loss sum, correct)) per piece of the epoch: the whole epoch at once, or
        PROGRESS_STEPS pieces of whole minibatches (the same minibatches either way)."""
        batch_size = train_iter.batch_size
        batches = -(-len(order) // batch_size)
        piece = -(-batches // PROGRESS_STEPS) * batch_size if in_steps else len(order)
        for start in range(0, len(order), piece):
            part = order[start : start + piece]
            totals = _core.sgd_epoch(train_iter.images, train_iter.labels, part, batch_size, lr,
                                     train_iter.x_scale, self._wt, self.b)
            yield start + len(part), totals

    def _numpy_epoch(self, train_iter, order, lr, in_steps) -> Iterator[tuple[int, tuple[float, int]]]:
        """The same epoch one minibatch at a time, with the gradients of csoftmax.reference."""
        batch_size = train_iter.batch_size
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            step = reference.linear_cross_entropy(train_iter.images, self.W, self.b, train_iter.labels,
                                                  x_scale=train_iter.x_scale, rows=rows)
            self._wt -= lr * step.grad_W.T
            self.b -= lr * step.grad_b
            yield start + len(rows), (step.loss * len(rows), step.correct)

    # --- files --------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write W (D, C), b (C,) and a format number to an .npz file at exactly `path`."""
        with open(path, "wb") as file:  # np.savez(path) would append ".npz" to other names
            np.savez(file, W=np.ascontiguousarray(self.W), b=self.b, format=np.int64(FORMAT_VERSION))

    @classmethod
    def load(cls, path: str | os.PathLike) -> SoftmaxRegression:
        """Read a model written by `save`. Raises FileNotFoundError, or ModelFileError for a file that
        is not one (not an .npz archive, missing, extra or malformed arrays, non-finite values). Names,
        dtypes, shapes and sizes are checked from the archive's headers before any data is read."""
        arrays = read_checked_npz(path, _check_model_header, ("W", "b", "format"))
        if int(arrays["format"]) != FORMAT_VERSION:
            raise ModelFileError(f"{path}: unknown model format {arrays['format']!r} (this csoftmax reads "
                                 f"{FORMAT_VERSION})")
        W, b = arrays["W"], arrays["b"]
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ModelFileError(f"{path}: W or b holds non-finite values")
        return cls.from_weights(W, b)

    @classmethod
    def from_weights(cls, W, b) -> SoftmaxRegression:
        """A model of given weights W (num_inputs, num_outputs) and bias b (num_outputs,), e.g. a
        LogisticRegression's coef_.T and intercept_ fitted on pixels / 255: predictions of the uint8
        images then are the same."""
        W = np.asarray(W, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32)
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ValueError(f"W, b: expected shapes (D, C) and (C,), got {W.shape} and {b.shape}")
        model = cls.__new__(cls)
        model._set_parameters(W, b)
        return model


def _check_model_header(name: str, dtype: np.dtype, shape: tuple, earlier: dict) -> str | None:
    """What is wrong with an array `save` writes, judged from its .npy header (W, then b, then format)."""
    if name == "W" and (dtype != np.float32 or len(shape) != 2 or 0 in shape):
        return f"W must be float32 (D, C), got {dtype} {shape}"
    if name == "b" and (dtype != np.float32 or shape != (earlier["W"][1][1],)):
        return f"b must be float32 ({earlier['W'][1][1]},) to match W, got {dtype} {shape}"
    if name == "format" and (shape != () or dtype.kind not in "iu"):
        return f"unknown model format: a {dtype} array of shape {shape} (this csoftmax reads {FORMAT_VERSION})"
    return None


def _raw_data(data_iter, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images and int64 labels behind a csoftmax data iterator."""
    missing = [attr for attr in ("images", "labels", "x_scale", "batch_size", "next_epoch_order")
               if not hasattr(data_iter, attr)]
    if missing:
        raise TypeError(
            f"{name}: expected a csoftmax data iterator (load_data_fashion_mnist) exposing the raw data; "
            f"{type(data_iter).__name__} lacks {', '.join(missing)}"
        )
    if len(data_iter.labels) == 0:
        raise ValueError(f"{name}: the dataset is empty")
    return data_iter.images, data_iter.labels
