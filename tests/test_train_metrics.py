"""EpochMetrics, the confusion matrix, and the risk–coverage curve of exercise 4 against direct counts."""

import numpy as np
import pytest
from training_helpers import tiny_iterators

import csoftmax
from csoftmax import EpochMetrics, RiskCoverage, confusion_matrix, risk_coverage


def test_epoch_metrics_print_and_serialise():
    metrics = EpochMetrics(3, 0.51234, 0.8, 0.79, 0.0421)
    assert metrics.as_dict() == {"epoch": 3, "train_loss": 0.51234, "train_acc": 0.8, "test_acc": 0.79,
                                 "seconds": 0.0421}
    assert str(metrics) == "epoch  3  train loss 0.5123  train acc 0.8000  test acc 0.7900  0.042 s"


def test_confusion_matrix_counts_pairs():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    counts = confusion_matrix(y_true, y_pred, 4)
    for i in range(4):
        for j in range(4):
            assert counts[i, j] == np.sum((y_true == i) & (y_pred == j))
    assert counts.sum() == 500


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [([0, 1], [0], "differ in length"), ([0, 4], [0, 1], r"y_true: labels must be in \[0, 4\)"),
     ([0, 1], [-1, 1], "y_pred: labels must be"), ([0.5, 1], [0, 1], "integer labels")],
)
def test_confusion_matrix_rejects_bad_labels(y_true, y_pred, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.array(y_true), np.array(y_pred), 4)


def brute_force(P, y, threshold):
    """What predicting with this threshold does, counted directly."""
    kept = P.max(axis=1) >= threshold
    right = P.argmax(axis=1)[kept] == y[kept]
    return kept.mean(), right.mean()


def test_risk_coverage_matches_thresholded_predictions():
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.full(5, 0.5), size=400)
    P[::7] = P[0]  # ties: equal confidences must be kept or dropped together
    y = np.where(rng.random(400) < 0.7, P.argmax(axis=1), rng.integers(0, 5, 400))
    curve = risk_coverage(P, y)
    assert np.all(np.diff(curve.threshold) < 0) and curve.coverage[-1] == 1.0
    assert curve.accuracy[-1] == np.mean(P.argmax(axis=1) == y)
    for threshold, coverage, accuracy in zip(curve.threshold, curve.coverage, curve.accuracy):
        assert (coverage, accuracy) == pytest.approx(brute_force(P, y, threshold))
    for threshold in (0.3, 0.5, 0.9):
        assert curve.at_threshold(threshold) == pytest.approx(brute_force(P, y, threshold))
    assert curve.at_threshold(1.1)[0] == 0.0


def test_risk_coverage_agrees_with_predict_threshold():
    """The curve describes exactly what `predict(threshold=...)` does for a trained model."""
    train_iter, test_iter = tiny_iterators(n_test=300)
    model = csoftmax.SoftmaxRegression(seed=0)
    model.fit(train_iter, test_iter, 1, 0.05)
    P = model.predict_proba(test_iter.images)
    curve: RiskCoverage = risk_coverage(P, test_iter.labels)
    # thresholds inside the range of the confidences: each one answers some of the images, not all
    for threshold in np.quantile(P.max(axis=1), [0.25, 0.5, 0.75]):
        answered = model.predict(test_iter.images, threshold=threshold)
        kept = answered != -1
        assert kept.any() and not kept.all(), threshold
        coverage, accuracy = curve.at_threshold(threshold)
        assert coverage == pytest.approx(kept.mean())
        assert accuracy == pytest.approx(np.mean(answered[kept] == test_iter.labels[kept]))


def test_risk_coverage_rejects_bad_shapes():
    with pytest.raises(ValueError, match="expected shape"):
        risk_coverage(np.ones((3, 2)) / 2, np.array([0, 1]))
    with pytest.raises(ValueError, match="at least one row"):
        risk_coverage(np.ones((0, 2)), np.array([], dtype=np.int64))
