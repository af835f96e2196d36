"""The logistic-regression objective over a Dask array's row chunks: the single-machine objective, with
its one pass over X done on the cluster.

The design is Spark MLlib's: X's row chunks are persisted on the workers once (checked for NaN/inf and
labels as they are stored); per evaluation the coefficients go to every worker once (one task holds
them, each worker fetches it once), each chunk's task returns its (Σ w·loss, Σ w·∂loss/∂coef, Σ w·∂loss/∂intercept) in float64
from the same kernel the single-machine fit calls, and the partials are added on the workers in a fixed
binary tree over the chunk index, so only the root reaches the client and the sums do not depend on
which task finished first. The optimizer (SciPy's L-BFGS-B) runs on the client, unchanged.

Without a distributed client the same graph runs on Dask's local scheduler (the coefficients then sit
in the graph: there is nothing to send).
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
from distributed import futures_of, wait

from ..ops import logistic_loss_gradient
from ._logistic_objective import LogisticObjective


class DaskLogisticObjective(LogisticObjective):
    """f and ∇f of scikit-learn's logistic regression on Dask arrays, evaluated on the cluster.

    X: (n, d) dask array, chunked along rows only; y: (n,) dask array of int64 class codes in
    [0, n_classes); sample_weight: (n,) float64 dask array or None; y and sample_weight chunked as X's
    rows. The arrays are persisted here (computed once and kept in the workers' memory); an error in
    computing them (a bad label, NaN in X) is raised here, before any evaluation.
    """

    def __init__(self, X, y, sample_weight, *, n_classes, C, fit_intercept):
        if X.numblocks[1] != 1:
            raise ValueError(f"X must be chunked along rows only; it has {X.numblocks[1]} column chunks")
        arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
        if any(a.chunks[0] != X.chunks[0] for a in arrays):
            raise ValueError("y and sample_weight must have the row chunks of X")
        arrays = persist_or_raise(*arrays)
        X, y = arrays[:2]
        sample_weight = arrays[2] if sample_weight is not None else None
        super().__init__(X, y, sample_weight, n_classes=n_classes, C=C, fit_intercept=fit_intercept)
        self.n_chunks = X.numblocks[0]
        weights = [None] * self.n_chunks if sample_weight is None else sample_weight.to_delayed().ravel()
        # (X, y, w) of each row chunk, as delayed references to the persisted blocks
        self._chunks = list(zip(X.to_delayed().ravel(), y.to_delayed().ravel(), weights))

    def loss_gradient_sums(self, coef, intercept):
        """The kernel's sums over all rows: per-chunk partials on the workers, added in a fixed tree."""
        # One task holds the coefficients: each worker fetches its result once for all its chunks (from
        # the scheduler's first recipient or a peer), the equivalent of scatter(broadcast=True) with
        # lineage: a worker lost mid-evaluation is recovered by Dask, where a scatter to it fails.
        params = dask.delayed((coef, intercept), pure=True)
        partial_sums = dask.delayed(_chunk_sums, pure=False)
        partials = [partial_sums(x, c, w, params) for x, c, w in self._chunks]
        (sums,) = dask.compute(tree_sum(partials))
        return sums


def persist_or_raise(*arrays):
    """The arrays persisted (in the cluster's memory), after raising the first error computing them.

    On a distributed client persist returns at once and an error would surface only at the first
    evaluation, inside the optimizer; waiting here names it before the fit starts. The local scheduler
    computes (and raises) inside persist."""
    arrays = dask.persist(*arrays)
    futures = futures_of(arrays)
    if futures:
        wait(futures)
    for future in futures:
        if future.status == "error":
            future.result()  # raises the task's exception, with its message
    return arrays


def _chunk_sums(X, y, sample_weight, params):
    """One row chunk's (Σ w·loss, ∂/∂coef, ∂/∂intercept or None), in float64, from the fused kernel."""
    coef, intercept = params
    return logistic_loss_gradient(X, y, sample_weight, coef, intercept)


def _add_sums(left, right):
    loss_left, coef_left, intercept_left = left
    loss_right, coef_right, intercept_right = right
    intercept = None if intercept_left is None else intercept_left + intercept_right
    return loss_left + loss_right, coef_left + coef_right, intercept


def tree_sum(partials):
    """The partials added in a binary tree over their index: (0+1), (2+3), …, level by level, an odd
    last one moving up unchanged. Each addition is its own task with fixed operands, so the result is
    bit-for-bit the same whatever the timing or placement of the tasks."""
    add = dask.delayed(_add_sums, pure=False)
    level = list(partials)
    while len(level) > 1:
        pairs = [add(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        level = pairs + level[len(pairs) * 2:]
    return level[0]


def check_finite_block(X, block_info=None):
    """X's block unchanged, or a ValueError naming the first NaN or infinity and its row in X."""
    finite = np.isfinite(X)
    if not finite.all():
        row, column = np.unravel_index(np.argmin(finite), X.shape)
        first_row = block_info[0]["array-location"][0][0]
        kind = "NaN" if np.isnan(X[row, column]) else "infinity"
        raise ValueError(f"Input X contains {kind} (row {first_row + row}, column {column}, in row chunk "
                         f"{block_info[0]['chunk-location'][0]} of the Dask array)")
    return X


def encode_labels_block(y, classes, block_info=None):
    """int64 codes of y's labels in the sorted classes, or a ValueError naming a label outside them."""
    codes = np.searchsorted(classes, y)
    inside = codes < len(classes)
    inside[inside] = classes[codes[inside]] == y[inside]
    if not inside.all():
        row = int(np.argmin(inside))
        first_row = block_info[0]["array-location"][0][0]
        raise ValueError(f"y contains the label {y[row:row + 1].tolist()[0]!r} (row {first_row + row}, in row chunk "
                         f"{block_info[0]['chunk-location'][0]} of the Dask array), which is not one "
                         f"of classes={classes.tolist()!r}")
    return codes.astype(np.int64)


def check_weights_block(sample_weight):
    """The block as float64, or scikit-learn's ValueError for negative weights."""
    if (sample_weight < 0).any():
        raise ValueError("Negative values in data passed to `sample_weight`")
    return np.asarray(sample_weight, dtype=np.float64)


def row_chunked(X):
    """X with one column chunk (the kernel needs whole rows) and known row chunk sizes."""
    if any(np.isnan(size) for size in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def as_rows_like(values, X, name):
    """A 1-D array or dask array as a dask array with X's row chunks."""
    values = values if isinstance(values, da.Array) else da.from_array(np.asarray(values), chunks=-1)
    if values.ndim != 1 or values.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has shape {values.shape}; expected ({X.shape[0]},), one value per row of X")
    return values.rechunk((X.chunks[0],))
