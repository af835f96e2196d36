"""The kernels' Python face: argument checks, dtype handling and result objects.

Conventions, as in PyTorch: `cross_entropy` takes logits (not probabilities) and integer labels;
W is (D, C) as in the chapter (X @ W + b). Inside, the kernels keep W class-major, (C, D), so each
logit is a dot product along D that fills every SIMD lane; the transposes at this boundary cost
O(C * D), nothing next to the O(B * C * D) of a step.

Inputs may be anything NumPy can view as an array (lists, NumPy arrays, CPU torch tensors that do
not require grad, ...). Floating inputs are computed in float32; X may also be uint8 (images), scaled
inside the kernel by `x_scale`. Non-contiguous inputs are copied; nothing is modified in place.
"""

from __future__ import annotations

import math

import numpy as np

from . import _core
from .result import LinearCrossEntropyResult

__all__ = [
    "softmax",
    "log_softmax",
    "cross_entropy",
    "linear_softmax",
    "linear_cross_entropy",
    "predict",
]

REDUCTIONS = ("mean", "sum", "none")


def _as_array(value, name):
    try:
        return np.asarray(value)
    except (RuntimeError, TypeError, ValueError) as exc:  # e.g. a torch tensor that requires grad
        raise TypeError(f"{name}: cannot be viewed as a NumPy array ({exc})") from None


def _as_float32(value, name, ndim):
    """A C-contiguous float32 array with `ndim` dimensions; other float dtypes are converted."""
    a = _as_array(value, name)
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating-point array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _as_features(value, name="X"):
    """X as the kernels take it: (B, D) float32, or uint8 kept as is."""
    a = _as_array(value, name)
    if a.dtype == np.uint8:
        if a.ndim != 2:
            raise ValueError(f"{name}: expected 2 dimensions (batch, features), got shape {a.shape}")
        return np.ascontiguousarray(a)
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: expected float or uint8, got dtype {a.dtype}")
    return _as_float32(a, name, 2)


def _as_labels(value, name, ndim=1):
    """Integer labels (any integer dtype) as int64; their range is checked by the kernels."""
    a = _as_array(value, name)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer labels, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimension(s), got shape {a.shape}")
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: values too large for int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _as_rows(rows):
    return None if rows is None else _as_labels(rows, "rows")


def _as_scale(x_scale):
    try:
        scale = float(x_scale)
    except (TypeError, ValueError):
        raise TypeError(f"x_scale: expected a number, got {type(x_scale).__name__}") from None
    if not math.isfinite(scale):
        raise ValueError(f"x_scale: must be finite, got {scale}")
    return scale


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: must be one of {REDUCTIONS}, got {reduction!r}")


def _rows_op(logits, what, axis, y=None):
    """Apply a row-wise kernel along `axis` of an array of any shape."""
    Z = _as_array(logits, "logits")
    if Z.ndim == 0:
        raise ValueError("logits: expected at least 1 dimension, got a scalar")
    if Z.size == 0:
        raise ValueError(f"logits: empty array of shape {Z.shape}")
    Z = np.moveaxis(Z, axis, -1)
    shape = Z.shape
    Z = _as_float32(Z.reshape(-1, shape[-1]), "logits", 2)
    out, _ = _core.softmax_rows(Z, what, y, False)
    return np.moveaxis(out.reshape(shape), -1, axis)


def softmax(logits, axis=-1):
    """exp(z - max z) / sum exp(z - max z) along `axis`: every row sums to 1, nothing overflows."""
    return _rows_op(logits, "softmax", axis)


def log_softmax(logits, axis=-1):
    """z - logsumexp(z) along `axis`: finite wherever the logits are, even where softmax underflows to 0."""
    return _rows_op(logits, "log_softmax", axis)


def cross_entropy(logits, y, reduction="mean"):
    """Cross-entropy of logits (B, C) against integer labels (B,): logsumexp(z) - z[y], per row.

    Takes *logits*, like torch.nn.functional.cross_entropy. The chapter's version, which takes
    probabilities, is `csoftmax.d2l.cross_entropy`.
    """
    _check_reduction(reduction)
    Z = _as_float32(logits, "logits", 2)
    labels = _as_labels(y, "y")
    if len(labels) != len(Z):
        raise ValueError(f"y: expected {len(Z)} labels for logits of shape {Z.shape}, got {len(labels)}")
    row_loss, _ = _core.softmax_rows(Z, "cross_entropy", labels, False)
    if reduction == "none":
        return row_loss
    total = float(row_loss.sum(dtype=np.float64))
    return total / len(row_loss) if reduction == "mean" else total


def _forward(X, W, b, x_scale, what, rows=None):
    out, _ = _core.linear_forward(_as_features(X), _as_float32(W, "W", 2), _as_float32(b, "b", 1), _as_rows(rows),
                                  _as_scale(x_scale), what, True, False)
    return out


def linear_softmax(X, W, b, x_scale=1.0, *, rows=None):
    """The chapter's `net`: softmax(x_scale * X @ W + b), shape (B, C)."""
    return _forward(X, W, b, x_scale, "softmax", rows)


def predict(X, W, b, x_scale=1.0, *, threshold=None, top_k=None, rows=None):
    """Predicted labels of softmax regression.

    By default the most likely class of each row (B,). With `threshold`, rows whose top probability
    is below it get -1: the model abstains instead of guessing (exercise 4). With `top_k`, the k most
    likely classes of each row, most likely first (B, k).
    """
    if threshold is None and top_k is None:
        return _forward(X, W, b, x_scale, "argmax", rows)
    if threshold is not None and top_k is not None:
        raise ValueError("predict: give threshold or top_k, not both")
    P = linear_softmax(X, W, b, x_scale, rows=rows)
    if top_k is not None:
        if not isinstance(top_k, (int, np.integer)) or not 1 <= top_k <= P.shape[1]:
            raise ValueError(f"top_k: expected an integer in [1, {P.shape[1]}], got {top_k!r}")
        top = np.argpartition(-P, top_k - 1, axis=1)[:, :top_k]
        order = np.argsort(-np.take_along_axis(P, top, axis=1), axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1)
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold: expected a probability in [0, 1], got {threshold}")
    labels = P.argmax(axis=1)
    labels[P.max(axis=1) < threshold] = -1
    return labels


def linear_cross_entropy(X, W, b, y, *, x_scale=1.0, rows=None, reduction="mean", grad_input=False):
    """One fused step of softmax regression: loss, gradients and the number of correct predictions.

    X: (N, D) float (computed in float32) or uint8, scaled by x_scale inside the kernel (1/255 for
       images); read from memory once.
    W: (D, C) as in the chapter; b: (C,); y: (N,) integer labels in [0, C).
    rows: optional integer indices selecting the batch from X and y (a shuffled minibatch without a
       copy); the batch is then len(rows) rows, and grad_X follows the order of rows.
    reduction: "mean" (the chapter's, and the default), "sum", or "none" (per-row losses; the
       gradients are then those of their sum).
    grad_input: also return d loss / d X.

    Returns a LinearCrossEntropyResult(loss, grad_W, grad_b, grad_X, correct).
    """
    _check_reduction(reduction)
    Xa, rows = _as_features(X), _as_rows(rows)
    batch = len(Xa) if rows is None else len(rows)
    loss_sum, correct, row_loss, grad_W, grad_b, grad_X = _core.linear_cross_entropy(
        Xa, _as_float32(W, "W", 2), _as_float32(b, "b", 1), _as_labels(y, "y"), rows, _as_scale(x_scale),
        1.0 / max(batch, 1) if reduction == "mean" else 1.0, reduction == "none", bool(grad_input), True)
    if reduction == "none":
        loss = row_loss
    else:
        loss = loss_sum / batch if reduction == "mean" else loss_sum
    return LinearCrossEntropyResult(loss=loss, grad_W=grad_W, grad_b=grad_b, grad_X=grad_X, correct=correct)
