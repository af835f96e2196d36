"""The chapter's math in plain NumPy: the reference every kernel is tested against.

Written the way the chapter writes it, with the two changes numerics demand: softmax subtracts the
row maximum before exponentiating, and the loss comes from log-sum-exp of the logits, never from the
log of a probability. The chapter's originals are kept as `naive_softmax` and `naive_cross_entropy`
to show what goes wrong without those changes (exercises 1-3).

Every function computes in `dtype` (float32 by default, like the kernels; pass np.float64 for a
ground truth).
"""

from __future__ import annotations

import numpy as np

from .result import LinearCrossEntropyResult

__all__ = [
    "naive_softmax",
    "naive_cross_entropy",
    "softmax",
    "log_softmax",
    "logsumexp",
    "cross_entropy",
    "linear_logits",
    "linear_softmax",
    "linear_cross_entropy",
    "predict",
]

REDUCTIONS = ("mean", "sum", "none")


def naive_softmax(X):
    """The chapter's softmax: exp(X) / sum exp(X). Overflows to inf/nan once a logit passes ~88 (float32)."""
    X_exp = np.exp(X)
    partition = X_exp.sum(1, keepdims=True)
    return X_exp / partition


def naive_cross_entropy(y_hat, y):
    """The chapter's cross-entropy: -log(y_hat[range(n), y]). Returns inf where a probability underflowed to 0."""
    return -np.log(y_hat[range(len(y_hat)), y])


def logsumexp(Z):
    """log sum_j exp(Z[i, j]) per row, shifted by the row maximum so nothing overflows."""
    m = Z.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(Z - m).sum(axis=-1, keepdims=True)))[..., 0]


def softmax(Z):
    """Row-wise softmax, stable: exp(Z - max) / sum."""
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return E / E.sum(axis=-1, keepdims=True)


def log_softmax(Z):
    """Row-wise log-softmax: Z - logsumexp(Z), never log(softmax(Z))."""
    return Z - logsumexp(Z)[..., None]


def _reduce(row_loss, reduction):
    if reduction == "none":
        return row_loss
    total = float(row_loss.sum(dtype=np.float64))
    return total / len(row_loss) if reduction == "mean" else total


def cross_entropy(Z, y, reduction="mean"):
    """Cross-entropy from logits Z (B, C) and integer labels y (B,): logsumexp(Z) - Z[y]."""
    y = np.asarray(y)
    row_loss = logsumexp(Z) - Z[np.arange(len(y)), y]
    return _reduce(row_loss, reduction)


def _batch(X, y, rows, x_scale, dtype):
    """The batch as the kernels see it: rows gathered (from X and y), X scaled, in dtype."""
    if rows is not None:
        X = X[rows]
        y = None if y is None else y[rows]
    return np.asarray(X).astype(dtype) * dtype(x_scale), y


def linear_logits(X, W, b, *, x_scale=1.0, rows=None, dtype=np.float32):
    """The chapter's `X @ W + b` with X scaled by x_scale (and gathered by rows)."""
    Xs, _ = _batch(X, None, rows, x_scale, dtype)
    return Xs @ W.astype(dtype) + b.astype(dtype)


def linear_softmax(X, W, b, *, x_scale=1.0, rows=None, dtype=np.float32):
    """The chapter's `net`: softmax(X @ W + b)."""
    return softmax(linear_logits(X, W, b, x_scale=x_scale, rows=rows, dtype=dtype))


def predict(X, W, b, *, x_scale=1.0, rows=None, dtype=np.float32):
    """The most likely class of each row (the first one on ties)."""
    return linear_logits(X, W, b, x_scale=x_scale, rows=rows, dtype=dtype).argmax(axis=1)


def linear_cross_entropy(X, W, b, y, *, x_scale=1.0, rows=None, reduction="mean", grad_input=False,
                         dtype=np.float32):
    """Loss and gradients of softmax regression on one batch, as the chapter computes them by autograd.

    Z = x_scale X W + b;  loss_i = logsumexp(Z_i) - Z[i, y_i]
    G = (softmax(Z) - onehot(y)) / B for "mean" (1 for "sum" and "none");
    grad_W = (x_scale X)^T G;  grad_b = sum_i G_i;  grad_X = x_scale G W^T.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    Xs, y = _batch(X, y, rows, x_scale, dtype)
    W = W.astype(dtype)
    Z = Xs @ W + b.astype(dtype)
    lse = logsumexp(Z)
    index = np.arange(len(y))
    row_loss = lse - Z[index, y]
    G = np.exp(Z - lse[:, None])
    G[index, y] -= 1
    if reduction == "mean":
        G /= len(y)
    return LinearCrossEntropyResult(
        loss=_reduce(row_loss, reduction),
        grad_W=Xs.T @ G,
        grad_b=G.sum(axis=0),
        grad_X=(G @ W.T) * dtype(x_scale) if grad_input else None,
        correct=int((Z.argmax(axis=1) == y).sum()),
    )
