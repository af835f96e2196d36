"""LogisticRegression: scikit-learn's multinomial logistic regression, fitted on csoftmax's fused kernel.

A drop-in for ``sklearn.linear_model.LogisticRegression`` with its default L2 penalty: the same
parameters, attributes, objective and optimizer settings, so it finds the same solution; each
evaluation of the objective and its gradient is one pass of a fused C++ kernel over X, with no
(n_samples, n_classes) temporaries and no float64 copy of float32 X.
"""

from __future__ import annotations

import contextlib
import warnings
from numbers import Integral, Real

import numpy as np
from scipy import optimize, special
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from .. import config
from ._logistic_objective import LogisticObjective
from ._whitening import WhitenedObjective, Whitening

__all__ = ["LogisticRegression"]

# The dtypes the kernel reads in place; anything else is converted to the first (as scikit-learn does).
# uint8 (pixels) is kept too: the same problem as its float64 copy, read in a quarter of the bytes.
_KERNEL_DTYPES = [np.float64, np.float32, np.uint8]


class LogisticRegression(LinearClassifierMixin, ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression with an L2 penalty, fitted to convergence on csoftmax's kernel.

    The estimator minimizes scikit-learn's objective, exactly::

        f(W, b) = (1 / Σw) Σ_i w_i · loss_i  +  ||W||² / (2 · C · Σw)

    over the coefficients ``W`` and the intercept ``b`` (not penalized), with ``w_i`` the sample
    weights times the class weights and ``Σw`` their sum (``n_samples`` when there are none). With
    ``z_i = W x_i + b``, ``loss_i`` is the cross-entropy ``log Σ_k exp(z_ik) − z_{i, y_i}`` for three
    or more classes (``W`` of shape (n_classes, n_features)), and for two classes the binomial loss
    ``log(1 + exp(z_i)) − y_i z_i`` with one row of coefficients (``y_i = 1`` for ``classes_[1]``).

    Parameters
    ----------
    C : float, default=1.0
        Inverse of the regularization strength; ``np.inf`` fits without a penalty.
    fit_intercept : bool, default=True
        Whether to fit an intercept (one per class, or one for two classes).
    tol : float, default=1e-4
        Stop when the largest absolute component of the objective's gradient is at most ``tol``.
    max_iter : int, default=100
        Maximum number of solver iterations; reaching it raises a ``ConvergenceWarning``.
    class_weight : dict or "balanced", default=None
        Weights of the classes (``{label: weight}``), multiplied into the sample weights; "balanced"
        uses ``n_samples / (n_classes * np.bincount(y))``.
    warm_start : bool, default=False
        Start from the previous fit's ``coef_`` and ``intercept_``.
    verbose : int, default=0
        Above zero, print the objective and the gradient's largest component after each iteration.
    solver : {"lbfgs", "lbfgs-whitened", "newton-cg"}, default="lbfgs"
        "lbfgs": SciPy's L-BFGS-B with scikit-learn's settings (``maxls=50``, ``gtol=tol``,
        ``ftol=64·eps``, ``maxiter=max_iter``), so it takes scikit-learn's steps. "lbfgs-whitened": the
        same L-BFGS-B and stopping rule on centered, decorrelated features (a linear change of the
        coefficients, undone at the end: the same objective and solution); one pass over a sample of X
        for its mean and covariance first, and on ill-conditioned data such as pixels several times
        fewer iterations (627 -> 117 on Fashion-MNIST). "newton-cg": SciPy's trust-region Newton-CG
        ("trust-ncg"), each Hessian-vector product one pass over X; it stops when the gradient's
        2-norm is at most ``tol``.
    n_threads : int, default=None
        Threads of the kernel during ``fit``; None uses csoftmax's setting
        (:func:`csoftmax.set_num_threads`). The result does not depend on it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients; one row for two classes (the log-odds of ``classes_[1]``).
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts (zeros without ``fit_intercept``).
    n_iter_ : ndarray of shape (1,)
        Iterations the solver ran.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when X was a DataFrame with string column names.
    objective_curve_ : ndarray of shape (n_iter_[0] + 1,)
        The objective at the starting point and after each iteration.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from csoftmax import LogisticRegression
    >>> X, y = load_digits(return_X_y=True)
    >>> model = LogisticRegression(max_iter=1000).fit(X / 16, y)
    >>> model.coef_.shape
    (10, 64)
    """

    _parameter_constraints: dict = {
        "C": [Interval(Real, 0, None, closed="right")],
        "fit_intercept": ["boolean"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "solver": [StrOptions({"lbfgs", "lbfgs-whitened", "newton-cg"})],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, C=1.0, *, fit_intercept=True, tol=1e-4, max_iter=100, class_weight=None,
                 warm_start=False, verbose=0, solver="lbfgs", n_threads=None):
        self.C = C
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.verbose = verbose
        self.solver = solver
        self.n_threads = n_threads

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, dense. float32, float64 and uint8 arrays in C or Fortran order are read in
            place; other types are converted to float64.
        y : array-like of shape (n_samples,)
            Class labels, of any type.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples (ones by default).

        Returns
        -------
        self : LogisticRegression
            The fitted estimator.
        """
        X, y = validate_data(self, X, y, dtype=_KERNEL_DTYPES)
        X = _readable_in_place(X)
        check_classification_targets(y)
        encoder = LabelEncoder()
        codes = encoder.fit_transform(y).astype(np.int64, copy=False)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but the data "
                             f"contains only one class: {self.classes_[0]!r}")
        weights = self._sample_weights(X, y, codes, sample_weight)
        objective = LogisticObjective(X, codes, weights, n_classes=len(self.classes_), C=self.C,
                                      fit_intercept=self.fit_intercept)
        return self._minimize(objective, X.dtype)

    def _minimize(self, objective, dtype):
        """Run the solver on the objective and set the fitted attributes (the cluster fit's hook too)."""
        start = self._starting_point(objective)
        # The solver's own BLAS calls are vector-sized; left multi-threaded, OpenBLAS's threads keep
        # spinning after each one and take a core from the kernel's threads: a 60-iteration fit of the
        # full Fashion-MNIST took 4.4 s that way and 2.4 s with BLAS on one thread (kernel calls of
        # 64 ms instead of 34 ms).
        with _kernel_threads(self.n_threads), threadpool_limits(1, user_api="blas"):
            params, n_iter, curve = _SOLVERS[self.solver](objective, start, self.tol, self.max_iter,
                                                          self.verbose)
        coef, intercept = objective.unpack(params)
        dtype = dtype if dtype.kind == "f" else np.float64
        self.coef_ = coef.astype(dtype)
        self.intercept_ = (np.zeros(objective.n_rows) if intercept is None else intercept).astype(dtype)
        self.n_iter_ = np.array([n_iter], dtype=np.int32)
        self.objective_curve_ = np.asarray(curve, dtype=np.float64)
        return self

    def _sample_weights(self, X, y, codes, sample_weight):
        """float64 sample weights with the class weights multiplied in, or None when all are one."""
        if sample_weight is None and self.class_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True, copy=True)
        if self.class_weight is not None:
            per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y, sample_weight=weights)
            weights *= per_class[codes]
        return weights

    def _starting_point(self, objective):
        """Zeros, or the previous fit's coefficients with warm_start."""
        if not (self.warm_start and hasattr(self, "coef_")):
            return np.zeros(objective.n_params)
        expected = (objective.n_rows, objective.n_features)
        if self.coef_.shape != expected:
            raise ValueError(f"warm_start: the previous fit's coef_ has shape {self.coef_.shape}, this fit "
                             f"needs {expected} (the classes or the features changed)")
        return objective.pack(self.coef_, self.intercept_)

    def decision_function(self, X):
        """Logits z = X coef_ᵀ + intercept_.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense input.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes the log-odds of ``classes_[1]``, otherwise one logit per class.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_KERNEL_DTYPES, reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_log_proba(self, X):
        """Log-probabilities of the classes, computed from the logits (no log of a probability).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense input.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return special.log_softmax(self._class_scores(X), axis=1)

    def predict_proba(self, X):
        """Probabilities of the classes (softmax of the logits; the logistic function for two classes).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense input.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return special.softmax(self._class_scores(X), axis=1)

    def _class_scores(self, X):
        """One score per class whose softmax is the model's probability: [0, z] for the binomial z."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return np.stack([np.zeros_like(scores), scores], axis=1)
        return scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # dense input only: validate_data raises a TypeError for sparse X
        return tags


def _readable_in_place(X):
    """X as the kernel reads it: C- or Fortran-contiguous (a strided view is copied once)."""
    if X.flags.c_contiguous or X.flags.f_contiguous:
        return X
    return np.ascontiguousarray(X)


@contextlib.contextmanager
def _kernel_threads(n_threads):
    """Run the kernel on n_threads threads inside the block (csoftmax's setting unchanged when None)."""
    if n_threads is None:
        yield
        return
    previous = config.get_num_threads()
    config.set_num_threads(n_threads)
    try:
        yield
    finally:
        config.set_num_threads(previous)


class _Progress:
    """The objective after each iteration (printed when verbose), from the evaluation at that iterate.

    SciPy calls back once an iteration has ended, at its current point: for L-BFGS-B the point it
    evaluated last, for a trust region the last accepted one (evaluations of rejected steps may come
    after it). Keeping the few latest evaluations avoids another pass over X."""

    KEPT = 4

    def __init__(self, objective, verbose, reported_gradient=None):
        self.objective, self.verbose = objective, verbose
        self.reported_gradient = reported_gradient or (lambda gradient: gradient)  # ∇f from the solver's gradient
        self.recent = []  # (params, value, gradient) of the latest evaluations, newest last
        self.curve = []

    def value_and_gradient(self, params):
        value, gradient = self.objective.value_and_gradient(params)
        self.recent = [*self.recent[-(self.KEPT - 1):], (np.array(params), value, gradient)]
        if not self.curve:
            self.curve.append(value)  # the starting point
        return value, gradient

    def iteration_done(self, params):
        """Record the iterate's objective; returns the largest component of ∇f there."""
        kept = [(value, gradient) for saved, value, gradient in self.recent if np.array_equal(saved, params)]
        value, gradient = kept[-1] if kept else self.objective.value_and_gradient(params)
        largest = float(np.max(np.abs(self.reported_gradient(gradient))))
        self.curve.append(value)
        if self.verbose:
            print(f"iteration {len(self.curve) - 1:4d}: objective {value:.10g}, max |gradient| {largest:.3e}",
                  flush=True)
        return largest

    def ensure_started(self, params):
        """With max_iter=0 a solver may return before evaluating anything: the curve still starts."""
        if not self.curve:
            self.curve.append(self.objective.value(params))


def _lbfgs_options(max_iter, gtol):
    """scikit-learn's L-BFGS-B options (gtol is SciPy's own test on the gradient it is given)."""
    return {"maxiter": max_iter, "maxls": 50, "gtol": gtol, "ftol": 64 * np.finfo(float).eps}


def _fit_lbfgs(objective, start, tol, max_iter, verbose):
    """SciPy's L-BFGS-B with scikit-learn's options; returns (params, iterations, objective curve)."""
    progress = _Progress(objective, verbose)
    result = optimize.minimize(progress.value_and_gradient, start, method="L-BFGS-B", jac=True,
                               callback=progress.iteration_done, options=_lbfgs_options(max_iter, tol))
    n_iter = _check_optimize_result("lbfgs", result, max_iter)  # scikit-learn's ConvergenceWarning
    progress.ensure_started(result.x)
    return result.x, n_iter, progress.curve


def _fit_lbfgs_whitened(objective, start, tol, max_iter, verbose):
    """L-BFGS-B with scikit-learn's options on whitened features (see _whitening.py), stopping on
    scikit-learn's rule in the original coordinates: the largest component of ∇f at most tol."""
    whitening = Whitening(objective)
    progress = _Progress(WhitenedObjective(objective, whitening), verbose, whitening.gradient_to_original)
    reached = []

    def iteration_done(intermediate_result):
        if progress.iteration_done(intermediate_result.x) <= tol:
            reached.append(intermediate_result.x)
            raise StopIteration

    # gtol 0: SciPy's own test would read the whitened gradient, whose scale is another one.
    result = optimize.minimize(progress.value_and_gradient, whitening.from_original(start), method="L-BFGS-B",
                               jac=True, callback=iteration_done, options=_lbfgs_options(max_iter, 0.0))
    if reached:
        result.x, result.status = reached[-1], 0
    n_iter = min(result.nit, max_iter)
    if result.status != 0:
        _warn_not_converged("lbfgs-whitened", n_iter, result, max_iter)
    progress.ensure_started(result.x)
    return whitening.to_original(result.x), n_iter, progress.curve


def _fit_newton_cg(objective, start, tol, max_iter, verbose):
    """SciPy's trust-region Newton-CG: each CG step one Hessian-vector product, one pass over X.

    It stops when the gradient's 2-norm is below tol, which implies scikit-learn's newton-cg rule
    (the largest component below tol)."""
    progress = _Progress(objective, verbose)
    result = optimize.minimize(
        progress.value_and_gradient, start, method="trust-ncg", jac=True, hessp=objective.hessian_product,
        callback=progress.iteration_done, options={"maxiter": max_iter, "gtol": tol},
    )
    if result.status != 0:
        _warn_not_converged("newton-cg", result.nit, result, max_iter)
    progress.ensure_started(result.x)
    return result.x, result.nit, progress.curve


def _warn_not_converged(solver, n_iter, result, max_iter):
    """scikit-learn's ConvergenceWarning, worded as its own, for the solvers it does not have."""
    warnings.warn(f"{solver} failed to converge after {n_iter} iteration(s) (status={result.status}):\n"
                  f"{result.message}\nIncrease the number of iterations (max_iter={max_iter}) or scale the data.",
                  ConvergenceWarning, stacklevel=4)


_SOLVERS = {"lbfgs": _fit_lbfgs, "lbfgs-whitened": _fit_lbfgs_whitened, "newton-cg": _fit_newton_cg}
