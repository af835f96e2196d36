"""benchmarks/bench_large_vocab.py --quick runs: every contender's result is checked, and memory is measured."""

import importlib.util
import json

import pytest


@pytest.fixture
def bench_large_vocab(import_benchmark):
    return import_benchmark("bench_large_vocab")


def test_quick_run_checks_results_and_writes_json(bench_large_vocab, tmp_path):
    results = bench_large_vocab.run(quick=True, out=tmp_path)
    saved = json.loads((tmp_path / "bench_large_vocab.json").read_text())
    assert saved["quick"] and len(saved["shapes"]) == len(bench_large_vocab.QUICK_SHAPES)
    first = results["shapes"][0]["contenders"]
    memory = first["csoftmax"]["memory"]
    assert memory["peak_bytes"] >= memory["before_bytes"] > 0
    for entry in first.values():
        assert entry["median_s"] > 0 and len(entry["runs_s"]) == 2
    if importlib.util.find_spec("torch") is not None:
        # the quick run compares against PyTorch whenever it is installed, memory included
        assert {"csoftmax", "torch"} <= set(first)
        theirs = first["torch"]["memory"]
        assert theirs["peak_bytes"] >= theirs["before_bytes"] > 0
        # PyTorch holds the 1 MiB of logits several times over (measured: ~3.6 MiB extra against
        # csoftmax's ~1 MiB, its one chunk of logits)
        assert theirs["extra_bytes"] > memory["extra_bytes"], (theirs, memory)


def test_a_wrong_contender_is_caught(bench_large_vocab):
    import numpy as np

    X, W, y = bench_large_vocab.make_inputs(16, 8, 300)
    right = bench_large_vocab.contenders(None)["csoftmax"](X, W, y)
    wrong = (right[0], right[1], right[2] * 1.01)
    with pytest.raises(AssertionError, match="grad_W differs"):
        bench_large_vocab.check_same("wrong", wrong, right)
    bench_large_vocab.check_same("same", tuple(np.copy(r) for r in right), right)
