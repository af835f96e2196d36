"""Where the chapter's SGD step spends its time, thread by thread (the fused epoch, timed inside C++).

    python benchmarks/bench_step_phases.py [--repeats N] [--quick]

Each thread of an epoch's steps (_core.sgd_epoch_phases) runs its blocks of the fused step, waits at
the step's barrier for the others, then sums every block's partial gradient into its own copy of W:

  blocks   its share of the forward, softmax and dW (and asking for the next step's first rows; with
           AMX, packing its copy of W into tiles first, 3–4 µs on the Intel Xeon)
  wait     at the barrier: the slower thread's lead, and the barrier's own cost
  update   summing the partials (on two threads, the other thread's comes from the other core) into W

in µs per step, the median of the runs, for the chapter's batch (256 rows, D = 784, C = 10, uint8):
"cached" is the same 256 rows every step (as bench.py's step back to back), "shuffled" an epoch of
60000 rows in a shuffled order (as the recipe, whose rows come from memory). One thread on half the
batch is a thread's share of the two-thread step, without the barrier and the other core's partial.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from openblas_restart import restart_without_openblas_overrides  # noqa: E402  (imports os and sys only)

if __name__ == "__main__":
    restart_without_openblas_overrides()  # before NumPy is imported

import argparse  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

from bench import make_step_problem  # noqa: E402
from bench_common import settle  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _core  # noqa: E402

PHASES = ("blocks", "wait", "update")
D, C, BATCH = 784, 10, 256


def orders(rows, steps, batch, shuffled):
    """The visiting order of one timed epoch: `steps` batches of `batch` rows."""
    if shuffled:
        return np.random.default_rng(steps).permutation(rows)[: steps * batch].astype(np.int64)
    return np.tile(np.arange(batch, dtype=np.int64), steps)


def measure(problem, threads, batch, steps, repeats):
    """{"threads": [{phase: median µs per step}, ...], "step": median µs per step of the slowest thread},
    over the problem's rows: a shuffled order of them when there are more than a batch."""
    X, W, b, y, x_scale = problem
    rows = len(X)
    wt, labels = np.ascontiguousarray(W.T), y.astype(np.int64)
    csoftmax.set_num_threads(threads)
    order = orders(rows, steps, batch, rows > batch)
    _core.sgd_epoch_phases(X, labels, order, batch, 0.0, x_scale, wt, b)  # the team starts, pages fault in
    settle()
    runs = [_core.sgd_epoch_phases(X, labels, order, batch, 0.0, x_scale, wt, b)[2] for _ in range(repeats)]
    csoftmax.set_num_threads(0)
    per_thread = []
    for t in range(len(runs[0])):
        per_thread.append({p: 1e6 * statistics.median(run[t][i] for run in runs) / steps for i, p in enumerate(PHASES)})
    step = 1e6 * statistics.median(max(sum(phases) for phases in run) for run in runs) / steps
    return {"threads": per_thread, "step": step}


def run(repeats=7, quick=False):
    threads = csoftmax.build_info()["available_threads"]
    steps, shuffled_rows = (8, 4096) if quick else (200, 60000)
    cases = [(f"{threads} threads, batch {BATCH}", threads, BATCH), (f"1 thread, batch {BATCH}", 1, BATCH),
             (f"1 thread, batch {BATCH // 2}", 1, BATCH // 2)]
    shuffled = make_step_problem(shuffled_rows, D, C, np.uint8)  # one set of rows for every shuffled run
    results = {}
    for name, t, batch in cases:
        results[("cached", name)] = measure(make_step_problem(batch, D, C, np.uint8), t, batch, steps, repeats)
    for name, t, batch in cases:
        results[("shuffled", name)] = measure(shuffled, t, batch, steps, repeats)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a few steps and runs: a check, not a measurement")
    args = parser.parse_args()
    info = csoftmax.build_info()
    print(f"csoftmax {info['variant']} ({info['simd']}), {info['available_threads']} threads available; "
          f"µs per step, median of {args.repeats} runs")
    print(f"{'rows':9} {'run':24} {'thread':>6} " + " ".join(f"{p:>7}" for p in PHASES) + f" {'step':>7}")
    for (rows, name), result in run(args.repeats, args.quick).items():
        for t, phases in enumerate(result["threads"]):
            cells = " ".join(f"{phases[p]:7.1f}" for p in PHASES)
            step = f"{result['step']:7.1f}" if t == 0 else ""
            print(f"{rows:9} {name:24} {t:6d} {cells} {step}")


if __name__ == "__main__":
    main()
