"""The cluster fit (csoftmax.dask.LogisticRegression) against the single-machine fit, in one run.

    python benchmarks/bench_dask.py           # the full Fashion-MNIST (minutes: several fits)
    python benchmarks/bench_dask.py --quick   # seconds: a small synthetic problem, checks results

What is measured (medians; one LocalCluster per worker count, processes, 1 thread a worker, loopback):
  evaluation      seconds per evaluation of f and its gradient (one pass over X, what an L-BFGS
                  iteration costs) at a fixed point: the single-machine objective with 1 thread and with
                  every thread, and the Dask objective on 1 and 2 workers (2 row chunks a worker). The
                  difference between 1 worker and the single machine on 1 thread is the engine's
                  overhead per evaluation.
  scheduler       seconds for one no-op task's round trip (client -> scheduler -> worker -> client): the
                  latency floor of one step of the tree.
  bytes           bytes the workers send per evaluation (their transfer_outgoing_bytes_total counters:
                  the coefficients fetched from a peer, tree partials crossing workers, the root to the
                  client), beside the sizes of the coefficients and of one partial.
  fits            the Dask fit and the single-machine fit to convergence: iterations, seconds per
                  iteration, final objectives (checked equal to 1e-6 relative), test accuracy.
  dask-ml         when installed (pip install dask-ml), its LogisticRegression (lbfgs) on the same Dask
                  arrays: its test accuracy beside csoftmax's (dask-ml has no multinomial loss).

Results go to benchmarks/results/bench_dask.json.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from openblas_restart import restart_without_openblas_overrides  # noqa: E402  (imports os and sys only)

if __name__ == "__main__":
    restart_without_openblas_overrides()  # before NumPy is imported

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import dask.array as da  # noqa: E402
import numpy as np  # noqa: E402
from bench_common import base_environment, timed  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax.dask import DaskLogisticObjective  # noqa: E402
from csoftmax.dask import LogisticRegression as DaskLogisticRegression  # noqa: E402
from csoftmax.models._logistic_objective import LogisticObjective  # noqa: E402
from csoftmax.models.logistic_regression import LogisticRegression  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CHUNKS_PER_WORKER = 2
WORKER_COUNTS = (1, 2)
OBJECTIVE_RTOL = 1e-6
# Two fits stopped by tol = 1e-4 agree only as far as the tolerance lets them: the Dask sum runs in
# another order than the threads' blocks, so the two L-BFGS paths part after a few hundred iterations
# and stop at different points (measured on Fashion-MNIST: 0.350510 and 0.350806). The tests compare
# converged fits (tol 1e-8) to 1e-6; here the fits are checked to be equally good to this much.
FIT_OBJECTIVE_RTOL = 1e-2


def fashion_mnist():
    """(X_train, y_train, X_test, y_test): the full set, pixels / 255 in float32."""
    data = csoftmax.load_fashion_mnist(sample=False)

    def pixels(images):
        return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)

    return pixels(data.train_images), data.train_labels, pixels(data.test_images), data.test_labels


def synthetic():
    """A small 5-class problem for --quick."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=3000, n_features=20, n_informative=12, n_classes=5, random_state=0)
    X = X.astype(np.float32)
    return X[:2000], y[:2000], X[2000:], y[2000:]


def single_machine_evaluation(X, y, n_classes, params, repeats):
    """Median seconds of one evaluation on this process, with 1 thread and with every thread."""
    objective = LogisticObjective(X, y, None, n_classes=n_classes, C=1.0, fit_intercept=True)
    seconds = {}
    for threads in (1, 0):
        csoftmax.set_num_threads(threads)
        seconds["1 thread" if threads else f"{csoftmax.get_num_threads()} threads"] = timed(
            lambda: objective.value_and_gradient(params), repeats)["median"]
    return seconds, objective.value_and_gradient(params)


def scheduler_round_trip(client, repeats):
    """Median seconds of a no-op task's round trip."""
    return timed(lambda: client.submit(int, pure=False).result(), repeats, min_seconds=0)["median"]


def scheduler_task_cost(client, tasks=400, repeats=3):
    """Median seconds of scheduler time per task: a burst of no-op tasks at once, wall time / tasks.
    The scheduler handles tasks one after another, so this is what each extra task of an evaluation
    costs, where the round trip above is what each dependent step costs."""
    burst = lambda: client.gather(client.map(int, range(tasks), pure=False))  # noqa: E731
    return timed(burst, repeats, min_seconds=0)["median"] / tasks


def outgoing_bytes(client):
    """Bytes all workers have sent so far (to peers and to the client)."""
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def dask_evaluation(client, n_workers, X, y, n_classes, params, expected, repeats):
    """Seconds and worker bytes per evaluation of the Dask objective, checked against the single machine."""
    rows = -(-len(X) // (n_workers * CHUNKS_PER_WORKER))
    Xd, yd = da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)
    objective = DaskLogisticObjective(Xd, yd, None, n_classes=n_classes, C=1.0, fit_intercept=True)
    value, gradient = objective.value_and_gradient(params)
    check_objective(f"Dask objective, {n_workers} worker(s)", value, expected[0])
    np.testing.assert_allclose(gradient, expected[1], rtol=1e-9, atol=1e-12)
    before = outgoing_bytes(client)
    seconds = timed(lambda: objective.value_and_gradient(params), repeats, min_seconds=0, warmup=0)
    moved = (outgoing_bytes(client) - before) / len(seconds["times"])
    return {"seconds": seconds["median"], "chunks": objective.n_chunks, "worker_bytes_sent": moved}


def check_objective(name, value, expected, rtol=OBJECTIVE_RTOL):
    if not abs(value - expected) <= rtol * abs(expected):
        raise AssertionError(f"{name}: objective {value!r} differs from the single machine's {expected!r}")


def timed_fit(model, *args, **kwargs):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning at max_iter is reported as n_iter
        model.fit(*args, **kwargs)
    seconds = time.perf_counter() - start
    return seconds


def compare_fits(X, y, X_test, y_test, n_workers, fit_params):
    """The single-machine and the Dask fit to convergence, and dask-ml's when installed."""
    single = LogisticRegression(**fit_params)
    single_seconds = timed_fit(single, X, y)
    rows = -(-len(X) // (n_workers * CHUNKS_PER_WORKER))
    Xd, yd = da.from_array(X, chunks=(rows, X.shape[1])), da.from_array(y, chunks=rows)
    cluster_fit = DaskLogisticRegression(**fit_params)
    dask_seconds = timed_fit(cluster_fit, Xd, yd)
    rtol = OBJECTIVE_RTOL if fit_params["tol"] <= 1e-6 else FIT_OBJECTIVE_RTOL
    check_objective("Dask fit", cluster_fit.objective_curve_[-1], single.objective_curve_[-1], rtol)
    fits = {
        "single machine": fit_summary(single, single_seconds, X_test, y_test),
        "csoftmax on Dask": fit_summary(cluster_fit, dask_seconds, da.from_array(X_test), y_test),
    }
    if importlib.util.find_spec("dask_ml") is not None:
        from dask_ml.linear_model import LogisticRegression as DaskMLLogisticRegression

        theirs = DaskMLLogisticRegression(solver="lbfgs", C=fit_params["C"], max_iter=fit_params["max_iter"])
        fits["dask-ml"] = {"seconds": timed_fit(theirs, Xd, yd),
                           "test_accuracy": float(np.mean(np.asarray(theirs.predict(X_test)) == y_test))}
    else:
        fits["dask-ml"] = "not installed (pip install dask-ml)"
    return fits


def fit_summary(model, seconds, X_test, y_test):
    accuracy = model.score(X_test, y_test)
    return {"seconds": seconds, "iterations": int(model.n_iter_[0]),
            "seconds_per_iteration": seconds / max(1, int(model.n_iter_[0])),
            "objective": float(model.objective_curve_[-1]), "test_accuracy": float(np.asarray(accuracy))}


def run(quick=False, out=RESULTS):
    X, y, X_test, y_test = synthetic() if quick else fashion_mnist()
    n_classes = len(np.unique(y))
    repeats = 3 if quick else 9
    fit_params = {"C": 1.0, "tol": 1e-6 if quick else 1e-4, "max_iter": 1000}
    params = np.random.default_rng(0).normal(scale=0.01, size=n_classes * (X.shape[1] + 1))
    single_seconds, expected = single_machine_evaluation(X, y, n_classes, params, repeats)
    coefficient_bytes = params.nbytes
    results = {"quick": quick, "environment": base_environment(), "shape": list(X.shape), "classes": n_classes,
               "evaluation_seconds": {"single machine": single_seconds}, "scheduler_round_trip_s": {},
               "scheduler_task_s": {},
               "bytes": {"coefficients": coefficient_bytes, "partial": coefficient_bytes + 8},
               "chunks_per_worker": CHUNKS_PER_WORKER}
    for n_workers in WORKER_COUNTS:
        with LocalCluster(n_workers=n_workers, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            name = f"{n_workers} worker{'s' if n_workers > 1 else ''}"
            results["scheduler_round_trip_s"][name] = scheduler_round_trip(client, repeats * 3)
            results["scheduler_task_s"][name] = scheduler_task_cost(client)
            measured = dask_evaluation(client, n_workers, X, y, n_classes, params, expected, repeats)
            results["evaluation_seconds"][name] = measured["seconds"]
            results["bytes"][f"worker bytes sent per evaluation, {name}"] = measured["worker_bytes_sent"]
            if n_workers == max(WORKER_COUNTS):
                results["fits"] = compare_fits(X, y, X_test, y_test, n_workers, fit_params)
    results["model"] = scaling_model(results)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_dask.json").write_text(json.dumps(results, indent=2))
    report(results)
    return results


def model_constants(results):
    """The constants of the per-evaluation time model, from this run's measurements.

    T(N) = t_row * n / N  +  L0 + rtt * log2(k N)  +  2 k N * tau  +  2 P log2(N) / bandwidth
      compute     t_row: seconds per row of one evaluation on one machine (all its threads), rows split
                  evenly over N machines;
      latency     L0: the engine's fixed cost of an evaluation (the 1-worker evaluation minus the
                  1-thread single machine, less its one tree level), rtt: one dependent step (the no-op
                  round trip), once per level of the binary tree over the k N chunks;
      scheduler   tau: the scheduler's time per task; an evaluation has k N chunk tasks and k N - 1
                  tree additions, handled one after another on the scheduler;
      bytes       P: one partial (= the coefficients); the broadcast and the tree each move P per level
                  on the critical path: 63 kB at 1.25 GB/s (10 Gb/s) is 50 us a level, small beside rtt.
    """
    single = results["evaluation_seconds"]["single machine"]
    rtt = statistics.median(results["scheduler_round_trip_s"].values())
    k = results["chunks_per_worker"]
    overhead = results["evaluation_seconds"]["1 worker"] - single["1 thread"]
    return {"t_row_s": min(single.values()) / results["shape"][0], "rtt_s": rtt,
            "L0_s": max(0.0, overhead - rtt * math.log2(k)), "tau_s": statistics.median(results["scheduler_task_s"].values()),
            "k": k, "partial_bytes": results["bytes"]["partial"], "bandwidth_bytes_s": 1.25e9}


def modeled_seconds(constants, rows, machines):
    c = constants
    chunks = c["k"] * machines
    return (c["t_row_s"] * rows / machines + c["L0_s"] + c["rtt_s"] * math.log2(chunks) + 2 * chunks * c["tau_s"]
            + 2 * c["partial_bytes"] * math.log2(max(machines, 1)) / c["bandwidth_bytes_s"])


def scaling_model(results, scales=(1, 100, 1000), machines=(1, 10, 30, 100)):
    """Modeled seconds per evaluation on N machines like this one, for this problem's rows times each
    scale, and the machine count past which more machines make an evaluation slower."""
    constants = model_constants(results)
    rows = results["shape"][0]
    table = {}
    for scale in scales:
        times = {n: modeled_seconds(constants, rows * scale, n) for n in range(1, 2001)}
        best = min(times, key=times.get)
        table[f"{scale}x rows"] = {"rows": rows * scale, "seconds": {str(n): times[n] for n in machines},
                                   "best_machines": best, "best_seconds": times[best]}
    return {"constants": constants, "table": table}


def report_model(model):
    c = model["constants"]
    print(f"  model: t_row {c['t_row_s'] * 1e9:.0f} ns, L0 {c['L0_s'] * 1e3:.1f} ms, round trip {c['rtt_s'] * 1e3:.2f} ms "
          f"a tree level, scheduler {c['tau_s'] * 1e3:.2f} ms a task, {c['k']} chunks a machine")
    for name, row in model["table"].items():
        cells = ", ".join(f"N={n}: {s * 1e3:.0f} ms" for n, s in row["seconds"].items())
        print(f"    {name:>10} ({row['rows']:.1e} rows): {cells}; fastest at N={row['best_machines']} "
              f"({row['best_seconds'] * 1e3:.0f} ms)")


def report(results):
    print(f"problem {results['shape'][0]} x {results['shape'][1]}, {results['classes']} classes"
          f"{' (quick)' if results['quick'] else ''}")
    single = results["evaluation_seconds"]["single machine"]
    for name, seconds in single.items():
        print(f"  evaluation, single machine, {name:>10}: {seconds * 1e3:9.2f} ms")
    for name in (f"{n} worker{'s' if n > 1 else ''}" for n in WORKER_COUNTS):
        seconds = results["evaluation_seconds"][name]
        print(f"  evaluation, Dask, {name:>17}: {seconds * 1e3:9.2f} ms  "
              f"({seconds / single['1 thread']:.1f}x the 1-thread single machine), "
              f"{results['bytes'][f'worker bytes sent per evaluation, {name}'] / 1e3:.1f} kB sent by workers; "
              f"scheduler round trip {results['scheduler_round_trip_s'][name] * 1e3:.2f} ms, "
              f"{results['scheduler_task_s'][name] * 1e3:.2f} ms a task in a burst")
    print(f"  coefficients {results['bytes']['coefficients'] / 1e3:.1f} kB, one partial "
          f"{results['bytes']['partial'] / 1e3:.1f} kB")
    for name, fit in results["fits"].items():
        if isinstance(fit, str):
            print(f"  fit, {name}: {fit}")
            continue
        iterations = f", {fit['iterations']} iterations, {fit['seconds_per_iteration'] * 1e3:.1f} ms each" \
            if "iterations" in fit else ""
        objective = f", objective {fit['objective']:.8f}" if "objective" in fit else ""
        print(f"  fit, {name}: {fit['seconds']:.2f} s{iterations}{objective}, "
              f"test accuracy {fit['test_accuracy']:.4f}")
    report_model(results["model"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small problem: checks results in seconds")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for bench_dask.json")
    args = parser.parse_args(argv)
    run(quick=args.quick, out=args.out)


if __name__ == "__main__":
    main()
