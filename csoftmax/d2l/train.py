"""The chapter's training loop: Accumulator, accuracy, evaluate_accuracy, sgd, Updater, train_epoch_ch3,
train_ch3 — with the chapter's semantics, on the arrays of `csoftmax.d2l.traced` (see there how
`l.sum().backward()` reaches the fused kernel).

Differences from the book, each on purpose: `train_ch3` returns the per-epoch metrics (and passes
each to `callback`) instead of asserting the book's thresholds at the end, and its Animator writes
the figure to a file outside Jupyter (see `csoftmax.d2l.plot`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..models.metrics import EpochMetrics
from .traced import Parameter

__all__ = [
    "Accumulator",
    "Updater",
    "accuracy",
    "evaluate_accuracy",
    "sgd",
    "train_ch3",
    "train_epoch_ch3",
]


class Accumulator:
    """For accumulating sums over `n` variables."""

    def __init__(self, n: int):
        self.data = [0.0] * n

    def add(self, *args) -> None:
        if len(args) != len(self.data):
            raise ValueError(f"Accumulator.add: expected {len(self.data)} values, got {len(args)}")
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self) -> None:
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]

    def __repr__(self) -> str:
        return f"Accumulator({self.data})"


def accuracy(y_hat, y) -> float:
    """The number of correct predictions (a count, as the chapter defines it: divide by len(y) for a rate).

    y_hat is either one score per class per example (n, classes), whose argmax is the prediction, or
    the predicted labels (n,).
    """
    y_hat, y = np.asarray(y_hat), np.asarray(y)
    if y_hat.ndim > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    if y_hat.shape != y.shape:
        raise ValueError(f"accuracy: {y_hat.shape[0]} predictions for {y.shape[0]} labels")
    cmp = y_hat.astype(y.dtype) == y
    return float(cmp.astype(y.dtype).sum())


def evaluate_accuracy(net: Callable, data_iter: Iterable) -> float:
    """The fraction of the examples of `data_iter` that `net` predicts right."""
    metric = Accumulator(2)  # correct predictions, predictions
    for X, y in data_iter:
        metric.add(accuracy(net(X), y), np.size(y))
    if metric[1] == 0:
        raise ValueError("evaluate_accuracy: the data iterator yielded no examples")
    return metric[0] / metric[1]


def sgd(params: Sequence[Parameter], lr: float, batch_size: int) -> None:
    """Minibatch stochastic gradient descent: param -= lr * param.grad / batch_size, then grad = 0.

    The gradients are those of the summed loss (`l.sum().backward()`), hence the division.
    """
    for param in params:
        if not isinstance(param, Parameter) or param.grad is None:
            raise RuntimeError(
                f"sgd: a parameter of shape {np.shape(param)} has no gradient; create parameters with "
                "requires_grad=True and call loss(y_hat, y).sum().backward() before updating"
            )
        param -= lr * param.grad / batch_size
        param.grad[...] = 0


class Updater:
    """For updating parameters using minibatch stochastic gradient descent: `updater(batch_size)`."""

    def __init__(self, params: Sequence[Parameter], lr: float):
        self.params = list(params)
        self.lr = lr

    def __call__(self, batch_size: int) -> None:
        sgd(self.params, self.lr, batch_size)


def train_epoch_ch3(net: Callable, train_iter: Iterable, loss: Callable, updater: Callable) -> tuple[float, float]:
    """One epoch of the chapter's training loop; returns (mean training loss, training accuracy),
    each example counted before its minibatch's update."""
    metric = Accumulator(3)  # sum of training loss, correct predictions, examples
    for X, y in train_iter:
        y_hat = net(X)
        l = loss(y_hat, y)
        l.sum().backward()
        updater(X.shape[0])
        metric.add(float(l.sum()), accuracy(y_hat, y), np.size(y))
    if metric[2] == 0:
        raise ValueError("train_epoch_ch3: the training iterator yielded no examples")
    return metric[0] / metric[2], metric[1] / metric[2]


def train_ch3(
    net: Callable,
    train_iter: Iterable,
    test_iter: Iterable,
    loss: Callable,
    num_epochs: int,
    updater: Callable,
    *,
    callback: Callable[[EpochMetrics], None] | None = None,
    animator=None,
) -> list[EpochMetrics]:
    """Train a model (defined in Chapter 3), plotting loss and accuracies after each epoch.

    animator: the `csoftmax.d2l.Animator` to draw on (default: the chapter's, which redraws live in
        Jupyter and otherwise writes a file); False draws nothing.
    callback: called with each epoch's EpochMetrics, as the fast path's `SoftmaxRegression.fit` does.
    Returns the EpochMetrics of every epoch.
    """
    if animator is None:
        from .plot import training_animator  # matplotlib is imported only when a figure is drawn

        animator = training_animator(num_epochs)
    history = []
    for epoch in range(1, num_epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch_ch3(net, train_iter, loss, updater)
        test_acc = evaluate_accuracy(net, test_iter)
        metrics = EpochMetrics(epoch, train_loss, train_acc, test_acc, time.perf_counter() - start)
        history.append(metrics)
        if animator:
            animator.add_epoch(metrics)
        if callback is not None:
            callback(metrics)
    return history
