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
"Beside a copy" is that half batch again, timed while a second process runs the same (thread 1 is that
process): two threads that share nothing, no rows, no partials, no barrier. Where each is slower than
the half batch alone, the loss is the host's (the two vCPUs contending for something beneath them),
not the kernel's; where it is not, the two-thread step's loss is the kernel's own.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from openblas_restart import restart_without_openblas_overrides  # noqa: E402  (imports os and sys only)

if __name__ == "__main__":
    restart_without_openblas_overrides()  # before NumPy is imported

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402

from bench import make_step_problem  # noqa: E402
from bench_common import settle  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _core  # noqa: E402

PHASES = ("blocks", "wait", "update")
D, C, BATCH = 784, 10, 256
BESIDE_A_COPY = f"1 thread, batch {BATCH // 2}, beside a copy"


def orders(rows, steps, batch, shuffled):
    """The visiting order of one timed epoch: `steps` batches of `batch` rows."""
    if shuffled:
        return np.random.default_rng(steps).permutation(rows)[: steps * batch].astype(np.int64)
    return np.tile(np.arange(batch, dtype=np.int64), steps)


def epoch_timer(problem, threads, batch, steps):
    """A function that runs one timed epoch of `steps` steps over the problem's rows (a shuffled order
    of them when there are more than a batch) and returns each thread's (blocks, wait, update) seconds."""
    X, W, b, y, x_scale = problem
    wt, labels = np.ascontiguousarray(W.T), y.astype(np.int64)
    order = orders(len(X), steps, batch, len(X) > batch)
    csoftmax.set_num_threads(threads)
    return lambda: _core.sgd_epoch_phases(X, labels, order, batch, 0.0, x_scale, wt, b)[2]


def summarize(runs, steps):
    """{"threads": [{phase: median µs per step}, ...], "step": median µs per step of the slowest thread}."""
    per_thread = []
    for t in range(len(runs[0])):
        per_thread.append({p: 1e6 * statistics.median(run[t][i] for run in runs) / steps for i, p in enumerate(PHASES)})
    step = 1e6 * statistics.median(max(sum(phases) for phases in run) for run in runs) / steps
    return {"threads": per_thread, "step": step}


def measure(problem, threads, batch, steps, repeats):
    run_epoch = epoch_timer(problem, threads, batch, steps)
    run_epoch()  # the team starts, pages fault in
    settle()
    runs = [run_epoch() for _ in range(repeats)]
    csoftmax.set_num_threads(0)
    return summarize(runs, steps)


def sizes(quick):
    """(steps per timed epoch, rows of the shuffled problem)."""
    return (8, 4096) if quick else (200, 60000)


def case_rows(rows_kind, batch, quick):
    """The rows a case runs over: its batch itself, every step (cached), or a shuffled epoch's."""
    return batch if rows_kind == "cached" else sizes(quick)[1]


@functools.cache
def make_problem(rows):
    """The chapter's step over `rows` uint8 rows, built once per size and shared by the cases that use it
    (the shuffled epoch's 60,000 rows take a while to draw)."""
    return make_step_problem(rows, D, C, np.uint8)


def beside_a_copy(rows_kind, quick, repeats):
    """The half batch on one thread, measured while a second process (this script, --partner) runs the
    same loop on rows of its own; the partner's phases come back as a second thread's."""
    command = [sys.executable, os.path.abspath(__file__), "--partner", rows_kind] + (["--quick"] if quick else [])
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as partner:
        try:
            if partner.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the partner process failed to start: {' '.join(command)}")
            problem = make_problem(case_rows(rows_kind, BATCH // 2, quick))
            mine = measure(problem, 1, BATCH // 2, sizes(quick)[0], repeats)
        finally:
            partner.stdin.close()  # the partner's signal to stop and report
        report = partner.stdout.readline()
    if partner.returncode != 0 or not report:
        raise RuntimeError(f"the partner process failed: {' '.join(command)}")
    return {"threads": mine["threads"] + [json.loads(report)], "step": mine["step"]}


def run_partner(rows_kind, quick):
    """The other half of beside_a_copy: the half batch on one thread, epoch after epoch, from "ready"
    until standard input closes; then one JSON line of its phases (median µs per step)."""
    steps = sizes(quick)[0]
    run_epoch = epoch_timer(make_problem(case_rows(rows_kind, BATCH // 2, quick)), 1, BATCH // 2, steps)
    run_epoch()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print("ready", flush=True)
    runs = [run_epoch()]
    while not stop.is_set():
        runs.append(run_epoch())
    print(json.dumps(summarize(runs, steps)["threads"][0]), flush=True)


def run(repeats=7, quick=False):
    threads = csoftmax.build_info()["available_threads"]
    steps = sizes(quick)[0]
    cases = [(f"{threads} threads, batch {BATCH}", threads, BATCH), (f"1 thread, batch {BATCH}", 1, BATCH),
             (f"1 thread, batch {BATCH // 2}", 1, BATCH // 2)]
    results = {}
    for rows_kind in ("cached", "shuffled"):
        for name, t, batch in cases:
            problem = make_problem(case_rows(rows_kind, batch, quick))
            results[(rows_kind, name)] = measure(problem, t, batch, steps, repeats)
        results[(rows_kind, BESIDE_A_COPY)] = beside_a_copy(rows_kind, quick, repeats)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a few steps and runs: a check, not a measurement")
    parser.add_argument("--partner", choices=("cached", "shuffled"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.partner:
        return run_partner(args.partner, args.quick)
    info = csoftmax.build_info()
    print(f"csoftmax {info['variant']} ({info['simd']}), {info['available_threads']} threads available; "
          f"µs per step, median of {args.repeats} runs")
    print(f"{'rows':9} {'run':36} {'thread':>6} " + " ".join(f"{p:>7}" for p in PHASES) + f" {'step':>7}")
    for (rows, name), result in run(args.repeats, args.quick).items():
        for t, phases in enumerate(result["threads"]):
            cells = " ".join(f"{phases[p]:7.1f}" for p in PHASES)
            step = f"{result['step']:7.1f}" if t == 0 else ""
            print(f"{rows:9} {name:36} {t:6d} {cells} {step}")


if __name__ == "__main__":
    main()
