"""One build, one instruction-set variant: what bench.py measures in a child process of its own.

    python benchmarks/bench_variant.py --measure peak,steady,recipe,large_vocab,predict [--repeats N]

prints one JSON line. bench.py runs it with CSOFTMAX_ISA set, to measure each variant of a dispatched
build against its own FMA peak, and under another install's Python (bench.py --against), to compare
two builds side by side: a variant is chosen when csoftmax._core is imported, and an install is
chosen by the interpreter, so neither can change inside one process.

  peak         the FMA probe at the variant's vector width, on 1 thread and on all of them (GFLOP/s)
  steady       the chapter's step back to back in C++ (bench.bench_steady_step), as a % of that peak
  recipe       the chapter's recipe (fused backend, 10 epochs on Fashion-MNIST): median seconds
  large_vocab  one forward + backward of linear_cross_entropy at B = 1024, D = 768, V = 50257
  predict      csoftmax.predict of the first n test images with the recipe's trained weights, on one
               thread and on all: median seconds per call (CSOFTMAX_VNNI=0 / 1 compares the float32
               forward with the integer one, kernels/vnni_argmax.hpp)
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from openblas_restart import restart_without_openblas_overrides  # noqa: E402  (imports os and sys only)

if __name__ == "__main__":
    restart_without_openblas_overrides()  # before NumPy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

import bench  # noqa: E402
from bench_common import check_close, timed  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _core, reference  # noqa: E402

MEASURES = ("peak", "steady", "recipe", "large_vocab", "predict")
PREDICT_ROWS = (128, 512, 2000, 10000)
LARGE_VOCAB_SHAPE = (1024, 768, 50257)


def measure_peak(quick):
    iterations = 500_000 if quick else 2_000_000
    threads = sorted({1, csoftmax.build_info()["available_threads"]})
    return {t: _core.peak_fma_flops(t, iterations)[0] for t in threads}


def measure_recipe(repeats, epochs):
    """Median seconds of the fused recipe, and its final test accuracy (checked by the caller)."""
    runs = [bench.timed_fit(epochs) for _ in range(repeats)]
    times = [seconds for seconds, _, _ in runs]
    return {"median": statistics.median(times), "times": times, "test_acc": runs[-1][1][-1]["test_acc"]}


def measure_large_vocab(repeats, quick):
    B, D, V = (64, 32, 4099) if quick else LARGE_VOCAB_SHAPE
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, D), dtype=np.float32)
    W = (0.02 * rng.standard_normal((V, D))).astype(np.float32)
    y = rng.integers(0, V, size=B)
    step = lambda: csoftmax.linear_cross_entropy(X, W, None, y, layout="CD", grad_input=True)  # noqa: E731
    expected = reference.linear_cross_entropy(X, W, None, y, layout="CD")
    check_close("large vocab loss", step().loss, expected.loss, rtol=1e-4, atol=1e-5)
    run = timed(step, repeats, min_seconds=0)
    return {"shape": [B, D, V], "median": run["median"], "times": run["times"],
            "gflops": 6.0 * B * D * V / run["median"] / 1e9}


def measure_predict(repeats, quick):
    _, _, model = bench.timed_fit(2 if quick else 10)
    test = bench.load_data(bench.BATCH_SIZE, bench.SEED)[1]
    W, b = np.ascontiguousarray(model.W), model.b
    result = {}
    for n in PREDICT_ROWS[:2] if quick else PREDICT_ROWS:
        X = np.ascontiguousarray(test.images[:n])
        exact = reference.predict(X, W, b, x_scale=bench.PIXEL_SCALE, dtype=np.float64)
        if np.count_nonzero(csoftmax.predict(X, W, b, bench.PIXEL_SCALE) != exact) > 1:
            raise AssertionError(f"predict: labels of the first {n} test images differ from the reference")
        for threads in sorted({1, csoftmax.build_info()["available_threads"]}):
            csoftmax.set_num_threads(threads)
            run = timed(lambda: csoftmax.predict(X, W, b, bench.PIXEL_SCALE), repeats)  # noqa: B023
            result[f"{n} rows, {threads} thread(s)"] = run["median"]
        csoftmax.set_num_threads(0)
    return {"vnni": csoftmax.build_info()["vnni"], "median_seconds": result}


def run(measures, repeats, quick):
    info = csoftmax.build_info()
    result = {"python": sys.executable, "variant": info.get("variant", "native"), "simd": info["simd"],
              "cxx_flags": info["cxx_flags"], "native": info["native"]}
    if "peak" in measures or "steady" in measures:
        peak = measure_peak(quick)
        if "steady" in measures:
            result["steady"] = bench.bench_steady_step(repeats, peak, steps=100 if quick else 400)
        result["peak_gflops"] = {str(t): flops / 1e9 for t, flops in peak.items()}
    if "recipe" in measures:
        result["recipe"] = measure_recipe(repeats, 2 if quick else 10)
    if "large_vocab" in measures:
        result["large_vocab"] = measure_large_vocab(repeats, quick)
    if "predict" in measures:
        result["predict"] = measure_predict(repeats, quick)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", default="peak,steady", help=f"comma-separated, of {', '.join(MEASURES)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small shapes and few steps: a check")
    args = parser.parse_args(argv)
    measures = args.measure.split(",")
    unknown = sorted(set(measures) - set(MEASURES))
    if unknown:
        parser.error(f"unknown measure(s) {', '.join(unknown)}; expected some of {', '.join(MEASURES)}")
    print(json.dumps(run(measures, args.repeats, args.quick), default=float))


if __name__ == "__main__":
    main()
