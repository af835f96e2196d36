"""csoftmax.LogisticRegression against scikit-learn's, side by side in one run on this machine.

    python benchmarks/bench_estimator.py           # the full run: scikit-learn alone takes ~5 min a fit
    python benchmarks/bench_estimator.py --quick   # seconds: small problems, checks results, no speed claims

Problems (C = 1, scikit-learn's LogisticRegression(C=1.0, max_iter=1000) as the yardstick):
  fashion-mnist   the full training set, 60000 x 784, pixels / 255 in float64 (as a scikit-learn user has
                  them), 10 classes; csoftmax also on the same pixels in float32
csoftmax runs its solvers: "lbfgs" (scikit-learn's steps), "lbfgs-whitened" (the same on whitened
features; its moments pass is part of the fit time, not of the pass count) and "newton-cg"
(trust-region Newton-CG).
  linear probe    synthetic float32 embeddings, n = 50000, d = 512, K = 100, labels drawn from a random
                  softmax teacher (so the classes overlap as real probes' do)

What is measured, each run in a fresh process (medians over the runs):
  scikit-learn    its fit time, its iterations, its final objective f_sklearn;
  csoftmax        the time to reach an objective no higher than f_sklearn: a first run (tol 1e-10, up
                  to 2 x scikit-learn's iterations + 50: the two take the same steps while their
                  gradients agree to rounding) finds the first iteration m whose objective is
                  <= f_sklearn; the timed runs fit with max_iter = m (the solver is deterministic:
                  the same m steps every run) and their objective is checked to be <= f_sklearn;
  memory          peak RSS beyond X: in the child, after X is built and the libraries are warmed up on a
                  tiny fit, the peak mark is reset (/proc/self/clear_refs) and RSS read; after the fit,
                  peak RSS (VmHWM) minus that (tracemalloc would not see C++ or BLAS allocations);
  passes          csoftmax's passes over X (loss-gradient evaluations) and the time of one pass (the
                  kernel alone, median), with its rate as a percentage of the machine's fp32 FMA peak
                  (csoftmax._core.peak_fma_flops; a float64 pass can reach at most half of it).
Both objectives are evaluated by the same function (csoftmax's, at each fit's coefficients).

Like the other benchmarks, it restarts itself without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when they
are set (see benchmarks/openblas_restart.py). Results go to benchmarks/results/bench_estimator.json.
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
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench_common import base_environment, numpy_blas, reset_peak_rss, status_bytes  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _core  # noqa: E402

C = 1.0
SKLEARN_MAX_ITER = 1000
# --quick: (n, d, K) of small problems of each kind, and scikit-learn's max_iter there
QUICK_SHAPES = {"fashion-mnist": (300, 784, 10), "linear probe": (500, 32, 5)}
QUICK_MAX_ITER = 30
FULL_SHAPES = {"fashion-mnist": (60000, 784, 10), "linear probe": (50000, 512, 100)}
SEARCH_TOL = 1e-10  # csoftmax's search run: stop only when the objective cannot go lower
TARGET_SPEEDUP = 20.0
TARGET_MEMORY_FRACTION = 0.10
RESULTS = Path(__file__).resolve().parent / "results"

# name -> csoftmax's contenders: (how X is stored, solver); the data come from make_problem
PROBLEMS = {
    "fashion-mnist": (("float64", "lbfgs"), ("float64", "lbfgs-whitened"), ("float64", "newton-cg"),
                      ("float32", "lbfgs"), ("float32", "lbfgs-whitened")),
    "linear probe": (("float32", "lbfgs"), ("float32", "lbfgs-whitened"), ("float32", "newton-cg")),
}


# --- problems ---------------------------------------------------------------------------------------


def make_problem(name, quick, dtype):
    """(X, y) of a problem; quick: a small one of the same kind."""
    if name == "fashion-mnist":
        data = csoftmax.load_fashion_mnist(sample=True) if quick else csoftmax.load_fashion_mnist(sample=False,
                                                                                                 download=False)
        images, labels = data.train_images, data.train_labels
        if quick:
            keep = np.random.default_rng(0).choice(len(labels), QUICK_SHAPES[name][0], replace=False)
            images, labels = images[keep], labels[keep]
        return (images / 255.0).astype(dtype), labels
    n, d, K = shape_of(name, quick)
    rng = np.random.default_rng([n, d, K])
    X = rng.standard_normal((n, d), dtype=np.float32).astype(dtype)
    teacher = rng.standard_normal((d, K)) * (3.0 / np.sqrt(d))
    logits = X @ teacher
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    y = (probabilities.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return X, y


def objective_at(X, y, coef, intercept):
    """scikit-learn's objective at (coef, intercept), on csoftmax's objective function."""
    from csoftmax.models._logistic_objective import LogisticObjective

    classes = np.unique(y)
    objective = LogisticObjective(X, np.searchsorted(classes, y).astype(np.int64), None, n_classes=len(classes),
                                  C=C, fit_intercept=True)
    return objective.value(objective.pack(np.asarray(coef, np.float64), np.asarray(intercept, np.float64)))


# --- one fit in a fresh process ---------------------------------------------------------------------------


def make_estimator(contender, max_iter, tol, solver="lbfgs"):
    if contender == "scikit-learn":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, max_iter=max_iter, tol=tol)
    return csoftmax.LogisticRegression(C=C, max_iter=max_iter, tol=tol, solver=solver, n_threads=os.cpu_count())


def child(spec):
    """Fit once as `spec` says; print time, memory, iterations and objective as JSON."""
    from sklearn.exceptions import ConvergenceWarning

    X, y = make_problem(spec["problem"], spec["quick"], spec["dtype"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # load libraries, start thread pools, touch BLAS's buffers on the same solver's path
        make_estimator(spec["contender"], 2, 1e-4, spec.get("solver", "lbfgs")).fit(X[:64], y[:64])
        passes = count_passes() if spec["contender"] == "csoftmax" else None
        reset_peak_rss()  # building X may have peaked higher: start from here
        before = status_bytes("VmRSS")
        model = make_estimator(spec["contender"], spec["max_iter"], spec["tol"], spec.get("solver", "lbfgs"))
        start = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - start
        peak = status_bytes("VmHWM")
    result = {"seconds": seconds, "extra_bytes": peak - before, "x_bytes": X.nbytes, "n_iter": int(model.n_iter_[0]),
              "objective": objective_at(X, y, model.coef_, model.intercept_)}
    if spec["contender"] == "csoftmax":
        # its objective is the optimizer's own, at the float64 parameters; coef_ keeps X's float dtype, so
        # for float32 X the stored model's objective ("objective_of_coef") differs in the ~8th digit
        result.update(objective_of_coef=result["objective"], objective=float(model.objective_curve_[-1]),
                      passes=passes["count"], curve=model.objective_curve_.tolist(),
                      pass_seconds=pass_seconds(X, y, model))
    print(json.dumps(result))


def count_passes():
    """Count the passes over X (loss-gradient evaluations and Hessian products) of the fits that follow."""
    from csoftmax.models import _logistic_objective

    counter = {"count": 0}

    def counted(kernel):
        def call(*args, **kwargs):
            counter["count"] += 1
            return kernel(*args, **kwargs)
        return call

    for name in ("logistic_loss_gradient", "logistic_hessian_product"):
        setattr(_logistic_objective, name, counted(getattr(_logistic_objective, name)))
    return counter


def pass_seconds(X, y, model, calls=5):
    """Median seconds of one loss-gradient pass at the fitted coefficients (the kernel alone)."""
    from csoftmax.ops import logistic_loss_gradient

    codes = np.searchsorted(model.classes_, y).astype(np.int64)
    coef, intercept = model.coef_.astype(np.float64), model.intercept_.astype(np.float64)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        logistic_loss_gradient(X, codes, None, coef, intercept)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_child(**spec):
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the run --------------------------------------------------------------------------------------------


def check_reached(label, objective, target):
    """The result check: a timed csoftmax fit ends at or below scikit-learn's objective."""
    if not objective <= target:  # (NaN fails too)
        raise AssertionError(f"{label}: csoftmax stopped at objective {objective!r}, above scikit-learn's {target!r}")


def median_of(runs, key):
    return statistics.median(run[key] for run in runs)


def bench_problem(name, quick, repeats, peak_flops, solvers=None):
    sk_max_iter = QUICK_MAX_ITER if quick else SKLEARN_MAX_ITER
    print(f"{name}: scikit-learn, {repeats} fit(s) ...", flush=True)
    sk_runs = [run_child(contender="scikit-learn", problem=name, quick=quick, dtype="float64" if name ==
                         "fashion-mnist" else "float32", max_iter=sk_max_iter, tol=1e-4) for _ in range(repeats)]
    target = min(run["objective"] for run in sk_runs)  # every run is the same fit; the lowest to be safe
    sklearn = {"median_s": median_of(sk_runs, "seconds"), "runs_s": [r["seconds"] for r in sk_runs],
               "n_iter": sk_runs[0]["n_iter"], "objective": target,
               "extra_bytes": max(r["extra_bytes"] for r in sk_runs), "x_bytes": sk_runs[0]["x_bytes"]}
    entry = {"problem": name, "scikit-learn": sklearn, "csoftmax": {}}
    first_dtype = PROBLEMS[name][0][0]
    for dtype, solver in PROBLEMS[name]:
        if (quick and dtype != first_dtype) or (solvers is not None and solver not in solvers):
            continue  # --quick: one dtype; --solver: the solvers asked for
        label = f"{dtype} X, {solver}"
        print(f"{name}: csoftmax ({label}), the search run ...", flush=True)
        # (L-BFGS-B takes scikit-learn's steps: its objective is reached near its iteration count, or never)
        search = run_child(contender="csoftmax", problem=name, quick=quick, dtype=dtype, solver=solver,
                           max_iter=2 * sklearn["n_iter"] + 50, tol=SEARCH_TOL)
        below = [i for i, f in enumerate(search["curve"]) if f <= target]
        if not below:
            entry["csoftmax"][label] = {"reached": False, "lowest_objective": min(search["curve"])}
            continue
        m = max(below[0], 1)
        print(f"{name}: csoftmax ({label}), {repeats} fit(s) to iteration {m} ...", flush=True)
        runs = [run_child(contender="csoftmax", problem=name, quick=quick, dtype=dtype, solver=solver, max_iter=m,
                          tol=SEARCH_TOL) for _ in range(repeats)]
        for run in runs:
            check_reached(f"{name} ({label})", run["objective"], target)
        n, d, K = shape_of(name, quick)
        flops_per_pass = 4.0 * n * d * (1 if K == 2 else K)
        seconds = median_of(runs, "seconds")
        entry["csoftmax"][label] = {
            "reached": True, "iterations": m, "passes": runs[0]["passes"], "median_s": seconds,
            "runs_s": [r["seconds"] for r in runs], "objective": runs[0]["objective"],
            "converged_objective": min(search["curve"]), "extra_bytes": max(r["extra_bytes"] for r in runs),
            "x_bytes": runs[0]["x_bytes"], "pass_s": median_of(runs, "pass_seconds"),
            "fit_s_per_pass": seconds / runs[0]["passes"],
            "percent_of_fp32_peak": 100 * flops_per_pass / median_of(runs, "pass_seconds") / peak_flops,
            "speedup": sklearn["median_s"] / seconds,
            "memory_fraction": max(r["extra_bytes"] for r in runs) / max(sklearn["extra_bytes"], 1),
        }
    return entry


def shape_of(name, quick):
    """(n, d, K) of a problem."""
    return (QUICK_SHAPES if quick else FULL_SHAPES)[name]


def environment(peak_flops):
    import scipy
    import sklearn

    env = base_environment()
    env.update({"scikit-learn": sklearn.__version__, "scipy": scipy.__version__, "numpy_blas": numpy_blas(),
                "csoftmax_threads": os.cpu_count(), "fp32_fma_peak_gflops": peak_flops / 1e9})
    return env


def run(quick=False, out=RESULTS, problems=tuple(PROBLEMS), repeats=None, solvers=None):
    threads = os.cpu_count()
    peak_flops = _core.peak_fma_flops(threads, 500_000 if quick else 2_000_000)[0]
    results = {"quick": quick, "environment": environment(peak_flops), "problems": []}
    repeats = repeats or (1 if quick else 3)
    for name in problems:
        results["problems"].append(bench_problem(name, quick, repeats, peak_flops, solvers))
    print_report(results)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "bench_estimator.json", "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {out / 'bench_estimator.json'}")
    return results


def print_report(results):
    env = results["environment"]
    print(f"\ncsoftmax {env['csoftmax']} ({env['simd']}, {env['csoftmax_threads']} threads), scikit-learn "
          f"{env['scikit-learn']}, SciPy {env['scipy']}, NumPy {env['numpy']}; {env['cpu']}; fp32 FMA peak "
          f"{env['fp32_fma_peak_gflops']:.0f} GFLOP/s" + ("  (quick: no speed claims)" if results["quick"] else ""))
    print(f"{'problem':<14} {'contender':<36} {'seconds':>9} {'iter':>5} {'passes':>6} {'ms/pass':>8} "
          f"{'% peak':>7} {'extra MiB':>10} {'objective':>14} {'speedup':>8} {'memory':>7}")
    for p in results["problems"]:
        sk = p["scikit-learn"]
        print(f"{p['problem']:<14} {'scikit-learn':<36} {sk['median_s']:>9.2f} {sk['n_iter']:>5} {'':>6} {'':>8} "
              f"{'':>7} {sk['extra_bytes'] / 2**20:>10.1f} {sk['objective']:>14.10f}")
        for contender, e in p["csoftmax"].items():
            label = f"csoftmax {contender}"
            if not e["reached"]:
                print(f"{'':<14} {label:<36} did not reach scikit-learn's objective (lowest {e['lowest_objective']!r})")
                continue
            print(f"{'':<14} {label:<36} {e['median_s']:>9.2f} {e['iterations']:>5} {e['passes']:>6} "
                  f"{1e3 * e['pass_s']:>8.2f} {e['percent_of_fp32_peak']:>6.1f}% {e['extra_bytes'] / 2**20:>10.1f} "
                  f"{e['objective']:>14.10f} {e['speedup']:>7.1f}x {100 * e['memory_fraction']:>6.1f}%")
    if not results["quick"]:
        print(f"targets: >= {TARGET_SPEEDUP:.0f}x sooner, <= {100 * TARGET_MEMORY_FRACTION:.0f}% of scikit-learn's "
              "memory beyond X")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small problems: checks results in seconds")
    parser.add_argument("--problem", choices=list(PROBLEMS), action="append",
                        help="run only this problem (repeatable; default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for bench_estimator.json")
    parser.add_argument("--solver", choices=sorted({s for c in PROBLEMS.values() for _, s in c}), action="append",
                        help="time only this csoftmax solver (repeatable; default: all)")
    parser.add_argument("--repeats", type=int, help="timed fits per contender (default: 3; --quick: 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats: expected a positive integer")
    run(quick=args.quick, out=args.out, problems=tuple(args.problem or PROBLEMS), repeats=args.repeats,
        solvers=args.solver)


if __name__ == "__main__":
    main()
