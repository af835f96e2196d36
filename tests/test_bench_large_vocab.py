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
        # PyTorch holds the 8 MiB of logits and their gradient (measured: ~25 MiB extra), csoftmax one
        # chunk of them (here all 256 rows, 8 MiB) and its packing buffers (~1.7 MiB with the blocks
        # derived from a 2 MiB L2). At a shape of 1 MiB of logits the buffers alone came close to
        # PyTorch's extra memory.
        assert theirs["extra_bytes"] > memory["extra_bytes"], (theirs, memory)


def test_quick_run_times_every_option(bench_large_vocab, tmp_path):
    results = bench_large_vocab.run(quick=True, out=None)
    (shape,) = results["options"]
    timed = shape["contenders"]
    assert {"csoftmax", "csoftmax options"} <= set(timed) and "csoftmax lce subset" not in timed
    assert timed["csoftmax options"]["overhead_over_plain"] > 0
    if importlib.util.find_spec("torch") is not None:
        # checked against csoftmax before timing: a mismatch would have raised in run()
        assert {"torch options", "torch lce options"} <= set(timed)


def test_options_contenders_are_checked(bench_large_vocab):
    torch = pytest.importorskip("torch")
    X, W, y = bench_large_vocab.make_inputs(32, 8, 300)
    y = bench_large_vocab.ignore_some(y)
    options = bench_large_vocab.option_values(300)
    steps, checked_against = bench_large_vocab.option_contenders(torch, options)
    for name, against in checked_against.items():
        bench_large_vocab.check_same(name, steps[name](X, W, y), steps[against](X, W, y))
    # without the z-loss and the cap, PyTorch's eager loss is a different number: the check sees it
    with pytest.raises(AssertionError, match="differs"):
        bench_large_vocab.check_same("lce vs all options", steps["torch lce options"](X, W, y),
                                     steps["csoftmax options"](X, W, y))


def test_a_wrong_contender_is_caught(bench_large_vocab):
    import numpy as np

    X, W, y = bench_large_vocab.make_inputs(16, 8, 300)
    right = bench_large_vocab.contenders(None)["csoftmax"](X, W, y)
    wrong = (right[0], right[1], right[2] * 1.01)
    with pytest.raises(AssertionError, match="grad_W differs"):
        bench_large_vocab.check_same("wrong", wrong, right)
    bench_large_vocab.check_same("same", tuple(np.copy(r) for r in right), right)
