"""The cluster fit (csoftmax.dask.LogisticRegression) against the single-machine fit, on a 2-process
LocalCluster over loopback: same objective and coefficients, whatever the chunking, the timing or a
worker lost in the middle; bad chunks named, the cluster usable afterwards."""

import os
import signal
import warnings

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from csoftmax.dask import LogisticRegression as DaskLogisticRegression
from csoftmax.models._dask_objective import DaskLogisticObjective, tree_sum
from csoftmax.models._logistic_objective import LogisticObjective
from csoftmax.models.logistic_regression import LogisticRegression

N_WORKERS = 2


@pytest.fixture(scope="module")
def client():
    """A client connected by address (as to any scheduler) to 2 worker processes, 1 thread each."""
    with LocalCluster(n_workers=N_WORKERS, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            yield client


@pytest.fixture
def on_cluster(client):
    """Dask computes on the cluster inside the test (without this fixture: the local scheduler)."""
    with client.as_current():
        yield client
    client.wait_for_workers(N_WORKERS)  # a test that kills a worker leaves a full cluster behind


def weighted_problem(n_samples=1200, n_classes=4):
    X, y = make_classification(n_samples=n_samples, n_features=12, n_informative=8, n_classes=n_classes,
                               random_state=0)
    weights = np.random.default_rng(1).uniform(0.2, 3.0, size=n_samples)
    return X, y, weights


def as_dask(n_chunks, *arrays):
    rows = -(-len(arrays[0]) // n_chunks)
    return [da.from_array(a, chunks=(rows,) + a.shape[1:]) for a in arrays]


def assert_same_fit(dask_fit, single_fit):
    objective, reference = dask_fit.objective_curve_[-1], single_fit.objective_curve_[-1]
    assert abs(objective - reference) <= 1e-6 * abs(reference)
    np.testing.assert_allclose(dask_fit.coef_, single_fit.coef_, rtol=0, atol=1e-4)
    np.testing.assert_allclose(dask_fit.intercept_, single_fit.intercept_, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(dask_fit.classes_, single_fit.classes_)


# --- the distributed objective ----------------------------------------------------------------------
@pytest.mark.parametrize("n_chunks", [1, 3, 8])
@pytest.mark.parametrize("n_classes, weighted, fit_intercept", [(4, True, True), (4, False, False),
                                                                 (2, True, True)])
def test_objective_equals_the_whole_data_objective(on_cluster, n_chunks, n_classes, weighted, fit_intercept):
    X, y, weights = weighted_problem(n_classes=n_classes)
    weights = weights if weighted else None
    whole = LogisticObjective(X, y, weights, n_classes=n_classes, C=0.5, fit_intercept=fit_intercept)
    Xd, yd = as_dask(n_chunks, X, y)
    wd = None if weights is None else as_dask(n_chunks, weights)[0]
    chunked = DaskLogisticObjective(Xd, yd, wd, n_classes=n_classes, C=0.5, fit_intercept=fit_intercept)
    assert chunked.n_chunks == n_chunks
    params = np.random.default_rng(2).normal(size=whole.n_params)
    value, gradient = chunked.value_and_gradient(params)
    expected_value, expected_gradient = whole.value_and_gradient(params)
    assert value == pytest.approx(expected_value, rel=1e-12)
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-10, atol=1e-12)


def test_tree_sum_adds_neighbours_first():
    # 1e16 + 1 == 1e16 in float64: the result tells the order of the additions apart.
    partials = [(v, np.array([v]), None) for v in (1e16, 1.0, -1e16, 1.0, 1.0)]
    loss, coef, intercept = tree_sum(partials).compute(scheduler="sync")
    expected = ((1e16 + 1.0) + (-1e16 + 1.0)) + 1.0  # levels: (0+1), (2+3), 4; then (01+23), 4
    assert loss == expected == 1.0 and coef[0] == expected and intercept is None


# --- the fit, against the single-machine fit --------------------------------------------------------
@pytest.mark.parametrize("chunks_per_worker", [1, 2, 4])
def test_weighted_fit_equals_the_single_machine_fit(on_cluster, chunks_per_worker):
    X, y, weights = weighted_problem()
    single = LogisticRegression(tol=1e-8, max_iter=1000).fit(X, y, sample_weight=weights)
    Xd, yd, wd = as_dask(N_WORKERS * chunks_per_worker, X, y, weights)
    fitted = DaskLogisticRegression(tol=1e-8, max_iter=1000).fit(Xd, yd, sample_weight=wd)
    assert_same_fit(fitted, single)


@pytest.mark.full_data
def test_fashion_mnist_subset_fit_equals_the_single_machine_fit(on_cluster):
    from training_helpers import full_data

    dataset = full_data()
    n = 1500  # the first 1500 training images: the full set takes minutes per fit on 2 shared cores
    X = dataset.train_images[:n].reshape(n, -1).astype(np.float32) / np.float32(255)
    y = dataset.train_labels[:n]
    params = {"C": 0.001, "tol": 1e-8, "max_iter": 1000}  # converged far enough for coefficients to 1e-4
    single = LogisticRegression(**params).fit(X, y)
    Xd, yd = as_dask(2 * N_WORKERS, X, y)
    fitted = DaskLogisticRegression(**params).fit(Xd, yd)
    assert_same_fit(fitted, single)
    assert fitted.coef_.dtype == np.float32


def test_fit_without_a_client_runs_on_the_local_scheduler():
    X, y, weights = weighted_problem()
    single = LogisticRegression(tol=1e-8, max_iter=1000, class_weight="balanced").fit(X, y, sample_weight=weights)
    Xd, yd, wd = as_dask(3, X, y, weights)
    fitted = DaskLogisticRegression(tol=1e-8, max_iter=1000, class_weight="balanced").fit(Xd, yd, sample_weight=wd)
    assert_same_fit(fitted, single)


def test_the_input_graph_is_computed_once_for_the_whole_fit():
    X, y, weights = weighted_problem()
    computed = []

    def rows_of_X(block_info=None):  # the input graph's tasks, counted (local scheduler: threads)
        (start, stop), _ = block_info[None]["array-location"]
        computed.append(start)
        return X[start:stop]

    Xd = da.map_blocks(rows_of_X, dtype=X.dtype, chunks=((300,) * 4, (X.shape[1],)))
    fitted = DaskLogisticRegression(tol=1e-8, max_iter=1000).fit(Xd, y, sample_weight=weights)
    assert fitted.n_iter_[0] > 10
    assert sorted(computed) == [0, 300, 600, 900]  # once per chunk, not once per evaluation


def test_given_classes_and_string_labels_and_column_chunks(on_cluster):
    X, y, _ = weighted_problem(n_classes=3)
    names = np.array(["cat", "dog", "emu"])[y]
    single = LogisticRegression(tol=1e-8, max_iter=1000, class_weight={"dog": 2.0}).fit(X, names)
    Xd = da.from_array(X, chunks=(400, 5))  # columns in 3 chunks: merged before the fit
    fitted = DaskLogisticRegression(tol=1e-8, max_iter=1000, class_weight={"dog": 2.0}).fit(
        Xd, names, classes=["emu", "cat", "dog"])
    assert_same_fit(fitted, single)


def test_same_coefficients_bit_for_bit_when_a_worker_dies_mid_fit(on_cluster, monkeypatch):
    X, y, weights = weighted_problem()
    Xd, yd, wd = as_dask(2 * N_WORKERS, X, y, weights)
    undisturbed = DaskLogisticRegression(tol=1e-8, max_iter=1000).fit(Xd, yd, sample_weight=wd)

    evaluate = DaskLogisticObjective.loss_gradient_sums
    calls = []

    def kill_a_worker_at_the_fifth_evaluation(objective, coef, intercept):
        calls.append(1)
        if len(calls) == 5:
            pid = next(iter(on_cluster.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)  # its persisted chunks are lost; the nanny starts a new process
        return evaluate(objective, coef, intercept)

    pids_before = set(on_cluster.run(os.getpid).values())
    monkeypatch.setattr(DaskLogisticObjective, "loss_gradient_sums", kill_a_worker_at_the_fifth_evaluation)
    disturbed = DaskLogisticRegression(tol=1e-8, max_iter=1000).fit(Xd, yd, sample_weight=wd)
    assert len(calls) > 5
    on_cluster.wait_for_workers(N_WORKERS)
    assert len(set(on_cluster.run(os.getpid).values()) - pids_before) == 1  # one worker was replaced
    np.testing.assert_array_equal(disturbed.coef_, undisturbed.coef_)
    np.testing.assert_array_equal(disturbed.intercept_, undisturbed.intercept_)
    assert disturbed.n_iter_ == undisturbed.n_iter_


# --- bad chunks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("problem, message", [
    ("nan", r"Input X contains NaN \(row 1000, column 3, in row chunk 3"),
    ("inf", r"Input X contains infinity \(row 1000, column 3, in row chunk 3"),
    ("label", r"y contains the label 3 \(row \d+, in row chunk \d of the Dask array\), which is not one of "
              r"classes=\[0, 1, 2\]"),
    ("weight", r"Negative values in data passed to `sample_weight`"),
])
def test_bad_chunk_is_named_and_the_cluster_stays_usable(on_cluster, problem, message):
    X, y, weights = weighted_problem()
    if problem in ("nan", "inf"):
        X = X.copy()
        X[1000, 3] = np.nan if problem == "nan" else -np.inf
    if problem == "weight":
        weights = weights.copy()
        weights[700] = -1.0
    Xd, yd, wd = as_dask(4, X, y, weights)
    classes = [0, 1, 2] if problem == "label" else None
    with pytest.raises(ValueError, match=message):
        DaskLogisticRegression().fit(Xd, yd, sample_weight=wd, classes=classes)
    X, y, _ = weighted_problem()
    assert on_cluster.submit(sum, [1, 2]).result() == 3
    single = LogisticRegression(tol=1e-8, max_iter=1000).fit(X, y)
    assert_same_fit(DaskLogisticRegression(tol=1e-8, max_iter=1000).fit(*as_dask(4, X, y)), single)


def test_one_class_is_an_error(on_cluster):
    X, _, _ = weighted_problem()
    Xd, yd = as_dask(2, X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="at least 2 classes"):
        DaskLogisticRegression().fit(Xd, yd)


def test_newton_cg_on_dask_input_is_refused_not_run_on_the_client():
    X, y, _ = weighted_problem()
    with pytest.raises(ValueError, match="solver='newton-cg' is not available for Dask input"):
        DaskLogisticRegression(solver="newton-cg").fit(*as_dask(2, X, y))


# --- lazy predictions -------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 4])
def test_predictions_are_lazy_and_equal_the_numpy_ones(on_cluster, n_classes):
    X, y, weights = weighted_problem(n_classes=n_classes)
    Xd, yd, wd = as_dask(4, X, y, weights)
    model = DaskLogisticRegression(max_iter=200).fit(Xd, yd)
    for method in ("decision_function", "predict", "predict_proba", "predict_log_proba"):
        lazy = getattr(model, method)(Xd)
        assert isinstance(lazy, da.Array), method
        np.testing.assert_allclose(lazy.compute(), getattr(model, method)(X), rtol=1e-12, err_msg=method)
    for sample_weight, dask_weight in ((None, None), (weights, wd)):
        lazy = model.score(Xd, yd, sample_weight=dask_weight)
        assert isinstance(lazy, da.Array)
        assert float(lazy.compute()) == pytest.approx(model.score(X, y, sample_weight=sample_weight), rel=1e-12)


# --- NumPy input: the single-machine estimator, scikit-learn's protocol held ---------------------------
@parametrize_with_checks([DaskLogisticRegression()])
def test_sklearn_estimator_checks_on_numpy_input(estimator, check):
    if check.func.__name__ == "check_array_api_input":
        # needs SCIPY_ARRAY_API=1 before SciPy loads; test_logistic_regression.py runs it in a child
        # process on the parent class, whose code NumPy input runs here
        pytest.skip("array-API input: checked on csoftmax.LogisticRegression, the code NumPy input runs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tiny or ill-scaled problems, default max_iter
        check(estimator)
