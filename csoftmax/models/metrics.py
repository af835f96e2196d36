"""What training and evaluation report: per-epoch metrics, the confusion matrix, the risk–coverage curve."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["EpochMetrics", "RiskCoverage", "confusion_matrix", "risk_coverage"]


@dataclass(frozen=True)
class EpochMetrics:
    """One epoch of training, as every training loop here reports it to its callback.

    epoch:      1 for the first epoch.
    train_loss: mean cross-entropy over the epoch's examples, each taken before its minibatch's update
                (the chapter's metric).
    train_acc:  fraction of the epoch's examples predicted right, also before each update.
    test_acc:   fraction of the test set predicted right after the epoch.
    seconds:    wall time of the epoch, evaluation included.
    """

    epoch: int
    train_loss: float
    train_acc: float
    test_acc: float
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"epoch {self.epoch:>2}  train loss {self.train_loss:.4f}  train acc {self.train_acc:.4f}  "
            f"test acc {self.test_acc:.4f}  {self.seconds:.3f} s"
        )


def _labels(values, name):
    array = np.asarray(values)
    if array.dtype.kind not in "iu" or array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of integer labels, got {array.dtype} {array.shape}")
    return array


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """counts[i, j] = how many examples of class i were predicted as class j; int64 (C, C)."""
    true, pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {true.shape[0]} vs {pred.shape[0]}")
    for name, labels in (("y_true", true), ("y_pred", pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name}: labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    counts = np.bincount(true.astype(np.int64) * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class RiskCoverage:
    """Selective prediction (exercise 4): answer only when the top probability is at least a threshold.

    Entry k is what `predict(..., threshold=threshold[k])` achieves: it keeps the fraction `coverage[k]`
    of the examples and is right on the fraction `accuracy[k]` of those it keeps. Thresholds decrease, so
    coverage grows to 1, where accuracy is the plain accuracy. Only reachable points are listed: examples
    with equal top probability are kept or dropped together.
    """

    threshold: np.ndarray
    coverage: np.ndarray
    accuracy: np.ndarray

    def at_threshold(self, threshold: float) -> tuple[float, float]:
        """(coverage, accuracy) of predicting with this threshold; (0, nan) when nothing is kept."""
        kept = np.flatnonzero(self.threshold >= threshold)
        if kept.size == 0:
            return 0.0, float("nan")
        return float(self.coverage[kept[-1]]), float(self.accuracy[kept[-1]])


def risk_coverage(probabilities, labels) -> RiskCoverage:
    """The risk–coverage curve of a classifier's probabilities (N, C) against the true labels (N,)."""
    P = np.asarray(probabilities)
    y = _labels(labels, "labels")
    if P.ndim != 2 or P.shape[0] != y.shape[0] or P.shape[0] == 0:
        raise ValueError(f"probabilities: expected shape ({y.shape[0]}, C) with at least one row, got {P.shape}")
    confidence = P.max(axis=1)
    correct = P.argmax(axis=1) == y
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    kept = np.arange(1, len(y) + 1)
    # A threshold keeps every example whose confidence reaches it, so a run of equal confidences is one step.
    last_of_run = np.append(confidence[1:] != confidence[:-1], True)
    return RiskCoverage(
        threshold=confidence[last_of_run],
        coverage=kept[last_of_run] / len(y),
        accuracy=np.cumsum(correct)[last_of_run] / kept[last_of_run],
    )
