"""benchmarks/bench_estimator.py --quick runs: csoftmax reaches scikit-learn's objective, every number is
measured, and a fit that stops above the objective is caught."""

import json

import pytest


@pytest.fixture
def bench_estimator(import_benchmark):
    return import_benchmark("bench_estimator")


def test_quick_run_reaches_sklearns_objective_and_writes_json(bench_estimator, tmp_path):
    results = bench_estimator.run(quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "bench_estimator.json").read_text())
    assert saved["quick"] and [p["problem"] for p in saved["problems"]] == list(bench_estimator.PROBLEMS)
    for problem in results["problems"]:
        sklearn = problem["scikit-learn"]
        assert sklearn["median_s"] > 0 and sklearn["n_iter"] >= 1 and sklearn["extra_bytes"] > 0
        assert problem["csoftmax"], problem
        for entry in problem["csoftmax"].values():
            assert entry["reached"], entry
            assert entry["objective"] <= sklearn["objective"]
            # scikit-learn's objective at max_iter is reached within a few more iterations: the same steps
            assert entry["iterations"] <= sklearn["n_iter"] + 2
            assert entry["passes"] >= entry["iterations"] and entry["pass_s"] > 0
            assert 0 < entry["extra_bytes"] and entry["x_bytes"] == sklearn["x_bytes"] > 0


def test_a_fit_above_sklearns_objective_is_caught(bench_estimator):
    with pytest.raises(AssertionError, match="above scikit-learn's"):
        bench_estimator.check_reached("probe", 0.5000001, 0.5)
    with pytest.raises(AssertionError):
        bench_estimator.check_reached("probe", float("nan"), 0.5)
    bench_estimator.check_reached("probe", 0.5, 0.5)
