"""solver="lbfgs-whitened": the change of variables (csoftmax/models/_whitening.py) against NumPy's
moments and finite differences, its memory, and what it buys: the same solution in fewer iterations.
The solution itself is compared with scikit-learn's in test_logistic_regression.py (every solver)."""

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from csoftmax import LogisticRegression
from csoftmax.models import _whitening
from csoftmax.models._logistic_objective import LogisticObjective
from csoftmax.models._whitening import WhitenedObjective, Whitening


def small_problem(n=300, d=12, n_classes=4, *, weights=True, fit_intercept=True, C=1.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d) * 3  # correlated, off-center
    y = rng.integers(0, n_classes, n)
    w = rng.uniform(0.1, 2.0, n) if weights else None
    return LogisticObjective(X, y, w, n_classes=n_classes, C=C, fit_intercept=fit_intercept)


@pytest.mark.parametrize("weights", [True, False], ids=["weights", "no_weights"])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
def test_factor_is_that_of_the_weighted_covariance(weights, fit_intercept):
    objective = small_problem(weights=weights, fit_intercept=fit_intercept)
    whitening = Whitening(objective)
    X = objective.X
    w = np.ones(len(X)) if objective.sample_weight is None else objective.sample_weight
    mean = w @ X / w.sum()
    centered = X - mean if fit_intercept else X  # no intercept: the uncentered second moment
    expected = (centered * w[:, None]).T @ centered / w.sum() + 4 * objective.l2_strength * np.eye(X.shape[1])
    factor = whitening.factor
    np.testing.assert_array_equal(factor, np.tril(factor))
    # the jitter adds 1e-10 of the mean variance: far below this tolerance
    np.testing.assert_allclose(factor @ factor.T, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
    np.testing.assert_allclose(whitening.mean, mean if fit_intercept else 0.0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("fit_intercept", [True, False], ids=["intercept", "no_intercept"])
def test_map_inverts_and_its_gradient_is_that_of_the_composition(n_classes, fit_intercept):
    objective = small_problem(n_classes=n_classes, fit_intercept=fit_intercept)
    whitening = Whitening(objective)
    rng = np.random.default_rng(1)
    q = rng.normal(size=objective.n_params) * 0.1
    np.testing.assert_allclose(whitening.from_original(whitening.to_original(q)), q, rtol=1e-10, atol=1e-12)
    composed = WhitenedObjective(objective, whitening)
    value, gradient = composed.value_and_gradient(q)
    assert value == objective.value(whitening.to_original(q))
    # central differences of f∘T along random directions
    for _ in range(3):
        v = rng.normal(size=q.shape)
        h = 1e-5
        numeric = (composed.value(q + h * v) - composed.value(q - h * v)) / (2 * h)
        assert numeric == pytest.approx(gradient @ v, rel=1e-6, abs=1e-9)
    original = objective.value_and_gradient(whitening.to_original(q))[1]
    np.testing.assert_allclose(whitening.gradient_to_original(gradient), original, rtol=1e-9, atol=1e-12)


def test_constant_features_without_a_penalty_fall_back_to_centering():
    # every feature constant and C = inf: the covariance is 0, no Cholesky factor exists
    X = np.ones((50, 3))
    objective = LogisticObjective(X, np.arange(50) % 3, None, n_classes=3, C=np.inf, fit_intercept=True)
    whitening = Whitening(objective)
    np.testing.assert_array_equal(whitening.factor, np.eye(3))
    q = np.arange(objective.n_params, dtype=float)
    np.testing.assert_allclose(whitening.from_original(whitening.to_original(q)), q)


def test_zero_weights_on_every_sampled_row_fall_back_to_the_identity():
    objective = small_problem(weights=False)
    objective.sample_weight = np.zeros(len(objective.X))  # the moments' sample (every row here) weighs nothing
    whitening = Whitening(objective)
    assert np.all(np.isfinite(whitening.factor)) and np.all(np.diag(whitening.factor) > 0)
    # no 0 / 0: the mean is zero and the factor the identity plus the penalty's 4λ on the diagonal
    np.testing.assert_array_equal(whitening.mean, 0.0)
    np.testing.assert_allclose(whitening.factor, np.sqrt(1.0 + 4 * objective.l2_strength) * np.eye(12))


def test_moments_come_from_a_sample_without_copying_X(monkeypatch):
    n, d = 40_000, 100  # X: 32 MB
    X = np.random.default_rng(2).normal(size=(n, d))
    monkeypatch.setattr(_whitening, "_MOMENT_ROWS", 4000)
    objective = LogisticObjective(X, np.arange(n) % 3, None, n_classes=3, C=1.0, fit_intercept=True)
    tracemalloc.start()
    try:
        whitening = Whitening(objective)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * d * d * 8 + _whitening._BLOCK_ROWS * d * 8, peak  # the (d, d) factor and a block of rows
    sample = X[:: n // 4000]
    np.testing.assert_allclose(whitening.mean, sample.mean(axis=0), rtol=1e-12)
    expected = np.cov(sample, rowvar=False, bias=True) + 4 * objective.l2_strength * np.eye(d)
    np.testing.assert_allclose(whitening.factor @ whitening.factor.T, expected, rtol=1e-8, atol=1e-10)


def test_fewer_iterations_than_lbfgs_on_pixels_to_the_same_objective():
    # digits: 8 x 8 pixels, positive and correlated, the ill-conditioning the change of variables removes
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    plain = LogisticRegression(solver="lbfgs", tol=1e-6, max_iter=5000).fit(X, y)
    whitened = LogisticRegression(solver="lbfgs-whitened", tol=1e-6, max_iter=5000).fit(X, y)
    assert whitened.n_iter_[0] * 2 <= plain.n_iter_[0], (whitened.n_iter_, plain.n_iter_)
    assert whitened.objective_curve_[-1] == pytest.approx(plain.objective_curve_[-1], rel=1e-7)


def test_stops_on_sklearns_rule_in_the_original_coordinates():
    X, y = load_digits(return_X_y=True)
    objective = LogisticObjective(X / 16.0, y, None, n_classes=10, C=1.0, fit_intercept=True)
    model = LogisticRegression(solver="lbfgs-whitened", tol=1e-3).fit(X / 16.0, y)
    params = objective.pack(model.coef_, model.intercept_)
    assert np.max(np.abs(objective.value_and_gradient(params)[1])) <= 1e-3
    # and not long after: one iteration earlier the rule did not hold (the curve is strictly decreasing)
    shorter = LogisticRegression(solver="lbfgs-whitened", tol=1e-3, max_iter=model.n_iter_[0] - 1)
    with pytest.warns(ConvergenceWarning, match="lbfgs-whitened failed to converge"):
        shorter.fit(X / 16.0, y)
    params = objective.pack(shorter.coef_, shorter.intercept_)
    assert np.max(np.abs(objective.value_and_gradient(params)[1])) > 1e-3


def test_warm_start_from_the_solution_stops_at_once():
    X, y = load_digits(return_X_y=True)
    converged = LogisticRegression(solver="lbfgs-whitened", tol=1e-6, max_iter=1000).fit(X / 16.0, y)
    resumed = LogisticRegression(solver="lbfgs-whitened", tol=1e-6, max_iter=1000, warm_start=True)
    resumed.coef_, resumed.intercept_ = converged.coef_.copy(), converged.intercept_.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        resumed.fit(X / 16.0, y)
    assert resumed.n_iter_[0] <= 2, resumed.n_iter_
    assert resumed.objective_curve_[0] == pytest.approx(converged.objective_curve_[-1], rel=1e-12)
