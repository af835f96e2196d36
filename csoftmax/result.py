"""The result of a fused linear + softmax + cross-entropy step, shared by the kernel and the reference."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: must be one of {REDUCTIONS}, got {reduction!r}")


def reduce_loss(row_loss, reduction, total=None, counted=None):
    """The loss a reduction asks for: the per-row losses ("none"), their total ("sum"), or the total over
    the `counted` rows, or their class-weight sum ("mean"; NaN when it is 0). `total` defaults to the float64 sum of
    row_loss and `counted` to its length (a kernel passes both when it did not keep per-row losses)."""
    if reduction == "none":
        return row_loss
    total = float(row_loss.sum(dtype=np.float64)) if total is None else total
    counted = len(row_loss) if counted is None else counted
    if reduction == "sum":
        return total
    return total / counted if counted else math.nan


@dataclass(frozen=True)
class LinearCrossEntropyResult:
    """Loss and gradients of one minibatch.

    loss:    the mean or summed loss (a float), or the per-row losses (an array) for reduction="none".
    grad_W:  d loss / d W, in W's layout. For reduction="none" the gradients are those of the sum.
             None when not asked for (grad_weight=False).
    grad_b:  d loss / d b, shape (C,); None when there is no bias (b=None).
    grad_X:  d loss / d X with X as given (x_scale included), shape (B, D); None unless asked for.
    correct: how many rows have argmax(logits) == label (ties go to the lowest class, as numpy.argmax);
             rows whose label is ignore_index are not counted.
    lse:     the per-row log-sum-exp of the logits, shape (B,); None unless asked for (return_lse=True).
    z_loss:  the z-loss term on its own (included in loss), reduced as the loss is: the mean over the
             rows not ignored, the sum, or per row; None when z_loss=0.
    predicted:   the per-row predicted class (argmax of the logits, the first on ties), shape (B,)
                 int64; None unless asked for (return_predictions=True).
    row_correct: per row, whether it is counted (not ignored) and predicted its label, shape (B,)
                 bool; None unless asked for.
    accuracy:    the token accuracy, correct / rows not ignored (NaN when none is); None unless asked for.
    """

    loss: float | np.ndarray
    grad_W: np.ndarray | None
    grad_b: np.ndarray | None
    grad_X: np.ndarray | None
    correct: int
    lse: np.ndarray | None = None
    z_loss: float | np.ndarray | None = None
    predicted: np.ndarray | None = None
    row_correct: np.ndarray | None = None
    accuracy: float | None = None
