"""benchmarks/bench_dask.py --quick runs: the Dask objective and fit are checked against the single machine."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench_dask(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_dask

    yield bench_dask
    sys.modules.pop("bench_dask", None)


def test_quick_run_checks_results_and_writes_json(bench_dask, tmp_path):
    results = bench_dask.run(quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "bench_dask.json").read_text())
    assert saved["quick"] and saved["fits"].keys() == results["fits"].keys()
    assert set(results["evaluation_seconds"]) == {"single machine", "1 worker", "2 workers"}
    assert all(seconds > 0 for seconds in results["scheduler_round_trip_s"].values())
    partial = results["bytes"]["partial"]
    # one worker sends the root to the client; two also send the coefficients to a peer and partials
    # across the tree
    assert results["bytes"]["worker bytes sent per evaluation, 1 worker"] >= partial
    assert results["bytes"]["worker bytes sent per evaluation, 2 workers"] >= 2 * partial
    fits = results["fits"]
    assert fits["csoftmax on Dask"]["iterations"] > 0
    assert fits["csoftmax on Dask"]["test_accuracy"] == pytest.approx(fits["single machine"]["test_accuracy"])
    if importlib.util.find_spec("dask_ml") is not None:
        assert 0 <= fits["dask-ml"]["test_accuracy"] <= 1
