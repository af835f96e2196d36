"""LogisticRegression on a Dask cluster: csoftmax's estimator, fitted on Dask arrays where they live.

A separate class rather than a branch inside csoftmax.LogisticRegression: the single-machine estimator
stays free of Dask and keeps scikit-learn's contract (NumPy in, NumPy out, checked by
parametrize_with_checks), while this one answers Dask input with lazy Dask results. NumPy input goes to
the single-machine fit unchanged, so the one class serves both.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from dask import is_dask_collection
from sklearn.base import _fit_context
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted

from . import logistic_regression
from ._dask_objective import (
    DaskLogisticObjective,
    as_rows_like,
    check_finite_block,
    check_weights_block,
    encode_labels_block,
    persist_or_raise,
    row_chunked,
)

__all__ = ["DaskLogisticObjective", "LogisticRegression"]


class LogisticRegression(logistic_regression.LogisticRegression):
    """csoftmax.LogisticRegression (same parameters, objective, solver and attributes) for Dask arrays.

    ``fit`` on a Dask array X (chunked along rows; columns are merged into one chunk) runs on the
    cluster of the current ``distributed.Client`` (a LocalCluster or any scheduler address), or on
    Dask's local scheduler without one: X, y and the weights are computed once and kept in the workers'
    memory; each L-BFGS-B evaluation broadcasts the coefficients, computes every row chunk's weighted
    loss and gradient with csoftmax's kernel on its worker, and adds the partials in a fixed tree order,
    so the fit gives the same coefficients whatever the timing. The solver runs on the client.

    ``decision_function``, ``predict``, ``predict_proba``, ``predict_log_proba`` and ``score`` return
    lazy Dask arrays for Dask input (computed block by block), NumPy results for NumPy input.

    ``n_threads`` sets the kernel's threads on the client only; each worker's kernel uses the worker's
    setting (Dask's nanny starts workers with ``OMP_NUM_THREADS=1``).
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, classes=None):
        """Fit the model to (X, y) on the Dask cluster (NumPy input: the single-machine fit).

        Parameters
        ----------
        X : dask array of shape (n_samples, n_features)
            Training data, chunked along rows. float32, float64 and uint8 blocks are read as they are;
            other dtypes are converted to float64.
        y : dask array or array-like of shape (n_samples,)
            Class labels (rechunked to X's row chunks).
        sample_weight : dask array or array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.
        classes : array-like, default=None
            All the class labels. When given, no pass over y is needed to find them, and a label outside
            them is an error; otherwise they are found in one pass (``da.unique``) before the fit.

        Returns
        -------
        self : LogisticRegression
            The fitted estimator.
        """
        if not is_dask_collection(X):
            if classes is not None:
                raise ValueError("classes= is for Dask input; NumPy input finds the classes in y")
            return super().fit(X, y, sample_weight)
        if self.solver != "lbfgs":
            # The cluster objective distributes the loss and gradient pass only, not the Hessian product.
            raise ValueError(f"solver={self.solver!r} is not available for Dask input; use solver='lbfgs'")
        X = _checked_features(X)
        y = persist_or_raise(as_rows_like(y, X, "y"))[0]
        self.classes_ = _sorted_classes(y, classes)
        codes = y.map_blocks(encode_labels_block, self.classes_, dtype=np.int64)
        weights = self._dask_sample_weights(X, codes, sample_weight)
        self.n_features_in_ = X.shape[1]
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        objective = DaskLogisticObjective(X.map_blocks(check_finite_block, dtype=X.dtype), codes, weights,
                                          n_classes=len(self.classes_), C=self.C,
                                          fit_intercept=self.fit_intercept)
        return self._minimize(objective, X.dtype)

    def _dask_sample_weights(self, X, codes, sample_weight):
        """float64 weights with the class weights multiplied in (a dask array), or None when all are one."""
        if sample_weight is None and self.class_weight is None:
            return None
        weights = (da.ones(X.shape[0], chunks=(X.chunks[0],)) if sample_weight is None
                   else as_rows_like(sample_weight, X, "sample_weight").map_blocks(check_weights_block,
                                                                                 dtype=np.float64))
        if self.class_weight is None:
            return weights
        class_sums = None
        if self.class_weight == "balanced":  # one pass: the weight of each class
            class_sums = da.bincount(codes, weights=weights, minlength=len(self.classes_)).compute()
        # classes stand in for y: scikit-learn's formula then reads the class sums as its sample weights
        per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=self.classes_,
                                         sample_weight=class_sums)
        return weights * codes.map_blocks(_class_weight_block, per_class, dtype=np.float64)

    def decision_function(self, X):
        """Logits z = X coef_ᵀ + intercept_; a lazy dask array for Dask input (see the parent class)."""
        if not is_dask_collection(X):
            return super().decision_function(X)
        check_is_fitted(self)
        n_rows = self.coef_.shape[0]
        return self._blockwise(X, "decision_function", None if n_rows == 1 else n_rows)

    def predict(self, X):
        """The most probable class of each row; a lazy dask array for Dask input."""
        if not is_dask_collection(X):
            return super().predict(X)
        return self._blockwise(X, "predict", None, dtype=self.classes_.dtype)

    def predict_proba(self, X):
        """Probabilities of the classes; a lazy dask array for Dask input (see the parent class)."""
        if not is_dask_collection(X):
            return super().predict_proba(X)
        return self._blockwise(X, "predict_proba", len(self.classes_))

    def predict_log_proba(self, X):
        """Log-probabilities of the classes; a lazy dask array for Dask input (see the parent class)."""
        if not is_dask_collection(X):
            return super().predict_log_proba(X)
        return self._blockwise(X, "predict_log_proba", len(self.classes_))

    def score(self, X, y, sample_weight=None):
        """The (weighted) accuracy of predict(X) against y; a lazy 0-d dask array for Dask input."""
        if not is_dask_collection(X):
            return super().score(X, y, sample_weight)
        X = _checked_features(X)
        correct = self.predict(X) == as_rows_like(y, X, "y")
        if sample_weight is None:
            return correct.mean()
        weights = as_rows_like(sample_weight, X, "sample_weight")
        return (correct * weights).sum() / weights.sum()

    def _blockwise(self, X, method, n_columns, dtype=None):
        """The parent's method applied to each row chunk of X: a lazy dask array of n_columns columns,
        or of one value per row when n_columns is None; dtype None means the logits' dtype."""
        check_is_fitted(self)
        X = _checked_features(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        dtype = np.result_type(X.dtype, self.coef_.dtype) if dtype is None else dtype
        if n_columns is None:
            return X.map_blocks(_apply_method, self, method, drop_axis=1, dtype=dtype,
                                meta=np.empty((0,), dtype=dtype))
        return X.map_blocks(_apply_method, self, method, chunks=(X.chunks[0], (n_columns,)), dtype=dtype,
                            meta=np.empty((0, n_columns), dtype=dtype))


def _class_weight_block(codes, per_class):
    return per_class[codes]


def _apply_method(block, estimator, method):
    # A block is a NumPy array, so the method runs the single-machine code.
    return getattr(estimator, method)(block)


def _checked_features(X):
    """X as a 2-D, row-chunked dask array of a dtype the kernel reads in place (the single-machine
    estimator's list; anything else becomes float64, as there)."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array, got a {X.ndim}D dask array of shape {X.shape}")
    if X.dtype not in logistic_regression._KERNEL_DTYPES:
        X = X.astype(np.float64)
    return row_chunked(X)


def _sorted_classes(y, classes):
    """The given classes (sorted, unique), or those found in y in one pass; at least two."""
    found = np.unique(np.asarray(classes)) if classes is not None else da.unique(y).compute()
    if len(found) < 2:
        which = f"only one class: {found[0]!r}" if len(found) else "no class at all"
        raise ValueError(f"This solver needs samples of at least 2 classes in the data, but the data contains {which}")
    return found
