"""csoftmax against the NumPy reference and PyTorch, side by side in one run on this machine.

    python benchmarks/bench.py             # the full run: a few minutes
    python benchmarks/bench.py --quick     # well under a minute; checks every result, asserts no speed

Every figure is a median of several runs, and every speed is also a ratio to the other contenders
measured in the same run: absolute times on a shared machine mean little, ratios measured together do.
Each contender's result is checked against the float64 reference before it is timed.

What is measured:
  kernel step   one fused forward + backward at the chapter's shape and others, called from Python,
                and the chapter's step run back to back in C++ (no Python in between), as GFLOP/s and
                as a percentage of the machine's peak FMA rate (measured here by csoftmax's probe)
  recipe        the chapter's 10 epochs on Fashion-MNIST: fused vs. the NumPy backend, a plain NumPy loop
                (benchmarks/contenders.py) and PyTorch eager
  evaluation    predicted labels of the 10,000 test images
  threads       the fused recipe on 1 thread and on all of them (results must be identical)
  memory        memory across the epochs of the fused recipe (no allocation per minibatch)
  variants      each instruction-set variant this CPU runs, forced in a child process: the chapter's
                step against that variant's own FMA peak (benchmarks/bench_variant.py)
  builds        with --against PYTHON (another install, e.g. the native build's venv): the recipe and a
                large-vocabulary step of both installs, taking turns
  large vocab   exercise 5: benchmarks/bench_large_vocab.py, run in a process of its own

Some environments set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow NumPy's OpenBLAS down; this
script restarts itself without them so NumPy runs as a user would have it, and says so.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from openblas_restart import restart_without_openblas_overrides  # noqa: E402  (imports os and sys only)

if __name__ == "__main__":
    restart_without_openblas_overrides()  # before NumPy is imported: see benchmarks/openblas_restart.py

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import contenders  # noqa: E402
from bench_common import base_environment, check_all, numpy_blas, settle, timed  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _core, reference  # noqa: E402

PIXEL_SCALE = 1.0 / 255.0
# the chapter's recipe: every section that trains uses these
SEED, BATCH_SIZE, LR = 0, 256, 0.1

# Probes of the FMA peak just before the back-to-back step (bench_steady_step), each about 25 ms
PEAK_PROBES = 5

# (name, B, D, C, dtype)
STEP_SHAPES = [
    ("chapter, uint8", 256, 784, 10, np.uint8),
    ("chapter, float32", 256, 784, 10, np.float32),
    ("B=1", 1, 784, 10, np.uint8),
    ("B=64", 64, 784, 10, np.uint8),
    ("B=4096", 4096, 784, 10, np.uint8),
    ("C=100", 256, 784, 100, np.uint8),
    ("C=1000", 256, 784, 1000, np.uint8),
]

TARGETS = {
    "recipe_vs_numpy": 10.0,
    "recipe_vs_numpy_loop": 7.0,
    "recipe_vs_torch": 15.0,
    "step_percent_of_peak": 60.0,
    "eval_vs_numpy": 10.0,
    "threads_speedup": 1.7,
    "variant_step_percent_of_own_peak": 50.0,  # the lowest over the variants this CPU runs
    "build_recipe_speed": 0.95,  # this build's recipe speed over the other build's (--against): within 5%
    "build_large_vocab_speed": 0.95,
}


# --- environment ------------------------------------------------------------------------------------


def environment(peak):
    info = csoftmax.build_info()
    env = base_environment()
    env.update({
        "openmp": info["openmp"],
        "threads": info["threads"],
        "compiler": info["compiler"],
        "cxx_flags": info["cxx_flags"],
        "peak_gflops": {str(t): flops / 1e9 for t, flops in peak.items()},
        "numpy_blas": numpy_blas(),
    })
    if contenders.torch_available():
        torch = contenders.torch
        torch.set_num_threads(info["threads"])
        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    else:
        env["torch"] = None
    return env


def print_environment(env):
    print(f"csoftmax {env['csoftmax']} — {env['cpu']}, {env['cores']} cores; {env['simd']}, "
          f"OpenMP {'on' if env['openmp'] else 'off'}, {env['threads']} threads; {env['compiler']}")
    peaks = ", ".join(f"{t} thread{'s' if t != '1' else ''} {g:.0f}" for t, g in env["peak_gflops"].items())
    print(f"measured peak fp32 FMA rate (GFLOP/s): {peaks}")
    blas = env["numpy_blas"]
    if isinstance(blas, list):
        blas = "; ".join(f"{p['internal_api']} {p['version']} kernel {p['architecture']}, {p['num_threads']} threads"
                         for p in blas)
    print(f"NumPy {env['numpy']} ({blas})")
    if env["openblas_overrides_unset"]:
        print(f"  (restarted without {env['openblas_overrides_unset']}, which slow OpenBLAS down)")
    print(f"PyTorch: {env['torch'] + ', ' + str(env['torch_threads']) + ' threads' if env['torch'] else 'not installed'}")


# --- sections ---------------------------------------------------------------------------------------


def make_step_problem(B, D, C, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        X, x_scale = rng.integers(0, 256, size=(B, D), dtype=np.uint8), PIXEL_SCALE
    else:
        X, x_scale = rng.random((B, D), dtype=np.float32), 1.0
    W = rng.normal(0, 0.01, size=(D, C)).astype(np.float32)
    b = rng.normal(0, 0.01, size=C).astype(np.float32)
    y = rng.integers(0, C, size=B)
    return X, W, b, y, x_scale


def bench_kernel_step(repeats, peak):
    rows = []
    for name, B, D, C, dtype in STEP_SHAPES:
        X, W, b, y, x_scale = make_step_problem(B, D, C, dtype)
        exact = reference.linear_cross_entropy(X, W, b, y, x_scale=x_scale, dtype=np.float64)
        calls = {
            "csoftmax": lambda: (lambda r: (r.loss, r.grad_W, r.grad_b))(
                csoftmax.linear_cross_entropy(X, W, b, y, x_scale=x_scale)),
            "numpy": lambda: contenders.numpy_step(X, W, b, y, x_scale),
        }
        if contenders.torch_available():
            calls["torch"] = contenders.make_torch_step(X, W, b, y, x_scale)
        flops = 4.0 * B * D * C
        row = {"name": name, "B": B, "D": D, "C": C, "dtype": np.dtype(dtype).name, "flops": flops}
        for contender, call in calls.items():
            check_all(f"{name} {contender}", ("loss", "grad_W", "grad_b"), call(),
                      (exact.loss, exact.grad_W, exact.grad_b))
            row[contender] = timed(call, repeats)
        rows.append(row)
    steady = bench_steady_step(repeats, peak)
    return {"shapes": rows, "steady": steady}


def bench_steady_step(repeats, peak, steps=400):
    """The chapter's step back to back inside C++ (sgd_epoch over the same 256 rows, lr = 0): the
    kernel's own rate, without Python between steps; the rows stay in cache."""
    X, W, b, y, x_scale = make_step_problem(256, 784, 10, np.uint8)
    order = np.tile(np.arange(256, dtype=np.int64), steps)
    # Probe again, now, a few times: noise only ever lowers a measured peak, so keep the highest. (One
    # more probe was not enough: on a busy host, a variant's 2-thread peak once read 108 GFLOP/s against
    # 87 on 1 thread, and its step came out at 119% of it.)
    for threads in peak:
        peak[threads] = max([peak[threads]] + [_core.peak_fma_flops(threads)[0] for _ in range(PEAK_PROBES)])
    labels = y.astype(np.int64)
    flops = 4.0 * 256 * 784 * 10
    result = {"flops_per_step": flops, "steps": steps}
    for threads in sorted({1, csoftmax.build_info()["available_threads"]}):
        csoftmax.set_num_threads(threads)
        wt, bias = np.ascontiguousarray(W.T), b.copy()
        run = timed(lambda: _core.sgd_epoch(X, labels, order, 256, 0.0, x_scale, wt, bias), repeats)
        per_step = run["median"] / steps
        result[str(threads)] = {
            "seconds_per_step": per_step,
            "gflops": flops / per_step / 1e9,
            "percent_of_peak": 100 * flops / per_step / peak[threads],
            "times": run["times"],
        }
    csoftmax.set_num_threads(0)
    return result


def load_data(batch_size, seed):
    from csoftmax.data import load_data_fashion_mnist

    train_iter, test_iter = load_data_fashion_mnist(batch_size, seed=seed)
    return train_iter, test_iter


def timed_fit(epochs, backend="fused"):
    """One run of the recipe from fresh data iterators: (seconds of the training loop, per-epoch metrics
    as dicts, the trained model)."""
    from csoftmax import SoftmaxRegression

    train_iter, test_iter = load_data(BATCH_SIZE, SEED)
    model = SoftmaxRegression(seed=SEED)
    settle()
    start = time.perf_counter()
    history = model.fit(train_iter, test_iter, epochs, LR, backend=backend)
    seconds = time.perf_counter() - start
    return seconds, [m.as_dict() for m in history], model


def bench_recipe(epochs, repeats, torch_repeats):
    """The recipe's results, the model the first fused run trained and the test set (for the evaluation)."""
    from csoftmax import SoftmaxRegression

    seed, batch_size, lr = SEED, BATCH_SIZE, LR
    probe_train, probe_test = load_data(batch_size, seed)
    dataset = {"source": probe_train.source, "train": len(probe_train.labels), "test": len(probe_test.labels),
               "sample": bool(getattr(probe_train, "is_sample", False))}

    result = {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "lr": lr}
    fused_model = None
    for backend, runs in (("fused", repeats), ("numpy", max(1, torch_repeats))):
        outcomes = [timed_fit(epochs, backend) for _ in range(runs)]
        result[backend] = {"times": [o[0] for o in outcomes], "median": statistics.median(o[0] for o in outcomes),
                           "epochs": outcomes[0][1]}
        if backend == "fused":
            fused_model = outcomes[0][2]
    W0 = SoftmaxRegression(seed=seed).W.copy()
    loops = {"numpy loop": contenders.numpy_loop_recipe}
    if contenders.torch_available():
        loops["torch"] = contenders.torch_recipe
    for name, recipe in loops.items():

        def loop_fit():
            train_iter, test_iter = load_data(batch_size, seed)
            settle()
            return recipe(train_iter, test_iter, W0, epochs, lr)

        outcomes = [loop_fit() for _ in range(max(1, torch_repeats))]
        result[name] = {"times": [o[1] for o in outcomes], "median": statistics.median(o[1] for o in outcomes),
                        "epochs": outcomes[0][0]}
    fused_acc = result["fused"]["epochs"][-1]["test_acc"]
    for other in ("numpy", "numpy loop", "torch"):
        if other in result:
            gap = abs(result[other]["epochs"][-1]["test_acc"] - fused_acc)
            result[other]["test_acc_gap_pp"] = 100 * gap
            if gap > 0.005:
                raise AssertionError(f"recipe: {other} test accuracy differs from fused by {100 * gap:.2f} pp")
    return result, fused_model, probe_test


def bench_evaluation(model, test_iter, repeats):
    images, labels, W, b = test_iter.images, test_iter.labels, np.ascontiguousarray(model.W), model.b
    calls = {"csoftmax": lambda: csoftmax.predict(images, W, b, PIXEL_SCALE),
             "numpy": lambda: contenders.numpy_predict(images, W, b, PIXEL_SCALE)}
    if contenders.torch_available():
        calls["torch"] = contenders.make_torch_predict(images, W, b, PIXEL_SCALE)
    exact = reference.predict(images, W, b, x_scale=PIXEL_SCALE, dtype=np.float64)
    result = {"images": len(labels), "flops": 2.0 * images.shape[0] * images.shape[1] * W.shape[1]}
    for name, call in calls.items():
        predicted = call()
        # a near-tie may flip in float32; more than a handful of differences is a bug
        if np.count_nonzero(predicted != exact) > 10:
            raise AssertionError(f"evaluation: {name} predictions differ from the reference")
        result[name] = timed(call, repeats)
        result[name]["accuracy"] = float(np.mean(predicted == labels))
    return result


def bench_threads(epochs, repeats):
    result = {}
    models = {}
    for threads in sorted({1, csoftmax.build_info()["available_threads"]}):
        csoftmax.set_num_threads(threads)
        runs = [timed_fit(epochs) for _ in range(repeats)]
        times = [seconds for seconds, _, _ in runs]
        result[str(threads)] = {"times": times, "median": statistics.median(times)}
        models[threads] = runs[-1][2]
    csoftmax.set_num_threads(0)
    first, last = models[min(models)], models[max(models)]
    result["identical"] = bool(np.array_equal(first.W, last.W) and np.array_equal(first.b, last.b))
    if not result["identical"]:
        raise AssertionError("threads: the trained weights depend on the thread count")
    return result


def _rss_bytes():
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory(epochs):
    """Python/NumPy allocations (tracemalloc) and resident memory sampled at each progress report of the
    fused recipe (up to csoftmax.models.softmax_regression.PROGRESS_STEPS per epoch): flat samples mean nothing is allocated
    per minibatch."""
    from csoftmax import SoftmaxRegression

    train_iter, test_iter = load_data(BATCH_SIZE, SEED)
    model = SoftmaxRegression(seed=SEED)
    samples = []
    tracemalloc.start()
    try:
        model.fit(train_iter, test_iter, epochs, LR,
                  progress=lambda epoch, done, total: samples.append(
                      (epoch, done, tracemalloc.get_traced_memory()[0], _rss_bytes())))
    finally:
        tracemalloc.stop()
    within_epochs = [s for s in samples if s[0] > 1]  # after the first epoch has touched everything
    traced = [s[2] for s in within_epochs]
    rss = [s[3] for s in within_epochs]
    return {"samples": samples, "samples_per_epoch": sum(1 for s in samples if s[0] == 1),
            "traced_bytes_range": [min(traced), max(traced)],
            "rss_bytes_range": [min(rss), max(rss)]}


def run_variant_child(python, measures, repeats, quick, isa=None):
    """benchmarks/bench_variant.py's JSON from a child process: under another install's Python, or with
    CSOFTMAX_ISA forcing a variant (both are fixed when csoftmax._core is imported)."""
    env = dict(os.environ)
    env.pop("CSOFTMAX_ISA", None)
    if isa is not None:
        env["CSOFTMAX_ISA"] = isa
    script = Path(__file__).resolve().parent / "bench_variant.py"
    command = [python, str(script), "--measure", ",".join(measures), "--repeats", str(repeats)]
    done = subprocess.run(command + (["--quick"] if quick else []), env=env, check=True, capture_output=True,
                          text=True, cwd=Path(script).parent)
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_variants(repeats, quick):
    """Each instruction-set variant this CPU runs, forced in turn: its chapter step against its own FMA
    peak (a dispatched build has several; a native build has one)."""
    info = csoftmax.build_info()
    variants = info.get("variants_runnable") or [info.get("variant", "native")]
    return {variant: run_variant_child(sys.executable, ("peak", "steady"), repeats, quick,
                                       isa=variant if len(variants) > 1 else None)
            for variant in variants}


def bench_builds(against, rounds, quick):
    """This install and another (`against`: its Python) taking turns, `rounds` times: the recipe and one
    large-vocabulary step, medians over the rounds. Each round is one child process per install."""
    measures = ("recipe", "large_vocab")
    runs = {"this": [], "against": []}
    for _ in range(rounds):
        runs["this"].append(run_variant_child(sys.executable, measures, 3, quick))
        runs["against"].append(run_variant_child(against, measures, 3, quick))
    result = {}
    for name, children in runs.items():
        result[name] = {"python": children[0]["python"], "variant": children[0]["variant"],
                        "native": children[0]["native"], "cxx_flags": children[0]["cxx_flags"],
                        "recipe_s": statistics.median(c["recipe"]["median"] for c in children),
                        "large_vocab_s": statistics.median(c["large_vocab"]["median"] for c in children),
                        "large_vocab_shape": children[0]["large_vocab"]["shape"],
                        "test_acc": children[0]["recipe"]["test_acc"]}
    if result["this"]["test_acc"] != result["against"]["test_acc"]:
        raise AssertionError(f"builds: the recipe's test accuracy differs ({result['this']['test_acc']} here, "
                             f"{result['against']['test_acc']} with {against})")
    return result


def bench_large_vocab(quick, out):
    """Exercise 5's benchmark (benchmarks/bench_large_vocab.py), in a process of its own: its
    gigabyte-sized PyTorch steps would otherwise leave this process's memory and thread pools
    different for what is measured after them. It prints its own table."""
    script = Path(__file__).resolve().parent / "bench_large_vocab.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)] + (["--quick"] if quick else []), check=True)
    with open(out / "bench_large_vocab.json", encoding="utf-8") as f:
        return json.load(f)


# --- report -----------------------------------------------------------------------------------------


def ratio(a, b):
    return b / a if a > 0 else float("nan")


def summarize(results):
    """The headline ratios against their targets."""
    steps = results["kernel_step"]
    recipe, evaluation, threads = results["recipe"], results["evaluation"], results["threads"]
    all_threads = str(max(int(k) for k in threads if k.isdigit()))
    summary = {
        "recipe_vs_numpy": ratio(recipe["fused"]["median"], recipe["numpy"]["median"]),
        "recipe_vs_numpy_loop": ratio(recipe["fused"]["median"], recipe["numpy loop"]["median"]),
        "recipe_vs_torch": ratio(recipe["fused"]["median"], recipe["torch"]["median"]) if "torch" in recipe else None,
        "step_percent_of_peak": steps["steady"][all_threads]["percent_of_peak"],
        "eval_vs_numpy": ratio(evaluation["csoftmax"]["median"], evaluation["numpy"]["median"]),
        "threads_speedup": ratio(threads[all_threads]["median"], threads["1"]["median"]),
        "variant_step_percent_of_own_peak": min(
            v["steady"][max(v["steady"], key=lambda k: int(k) if k.isdigit() else 0)]["percent_of_peak"]
            for v in results["variants"].values()),
    }
    if "builds" in results:
        builds = results["builds"]
        summary["build_recipe_speed"] = ratio(builds["this"]["recipe_s"], builds["against"]["recipe_s"])
        summary["build_large_vocab_speed"] = ratio(builds["this"]["large_vocab_s"], builds["against"]["large_vocab_s"])
    return {name: {"value": value, "target": TARGETS[name], "met": value is not None and value >= TARGETS[name]}
            for name, value in summary.items()}


def print_report(results):
    peak = results["environment"]["peak_gflops"]
    print("\nKernel step: one fused forward + backward, called from Python (median µs per call; "
          "GFLOP/s; speedup of csoftmax)")
    print(f"{'shape':<18} {'B':>5} {'C':>5} {'csoftmax':>10} {'numpy':>10} {'torch':>10} {'GFLOP/s':>8} "
          f"{'vs numpy':>9} {'vs torch':>9}")
    for row in results["kernel_step"]["shapes"]:
        ours = row["csoftmax"]["median"]
        torch_t = row.get("torch", {}).get("median")
        print(f"{row['name']:<18} {row['B']:>5} {row['C']:>5} {ours * 1e6:>10.1f} {row['numpy']['median'] * 1e6:>10.1f} "
              f"{(torch_t * 1e6 if torch_t else float('nan')):>10.1f} {row['flops'] / ours / 1e9:>8.1f} "
              f"{ratio(ours, row['numpy']['median']):>8.1f}x "
              f"{(ratio(ours, torch_t) if torch_t else float('nan')):>8.1f}x")
    steady = results["kernel_step"]["steady"]
    print(f"\nThe chapter's step back to back in C++ ({steady['steps']} steps over 256 cached rows, "
          f"{steady['flops_per_step'] / 1e6:.2f} MFLOP each):")
    for threads in (k for k in steady if k.isdigit()):
        s = steady[threads]
        print(f"  {threads} thread(s): {s['seconds_per_step'] * 1e6:.1f} µs/step, {s['gflops']:.0f} GFLOP/s = "
              f"{s['percent_of_peak']:.0f}% of the measured peak ({peak[threads]:.0f} GFLOP/s)")

    recipe = results["recipe"]
    data = recipe["dataset"]
    kind = "the embedded SAMPLE" if data["sample"] else "the full dataset"
    print(f"\nRecipe: {recipe['epochs']} epochs, batch {recipe['batch_size']}, lr {recipe['lr']:g} on {kind} "
          f"({data['train']} train / {data['test']} test, {data['source']}); wall time of the training loop, "
          "evaluation included")
    for name in ("fused", "numpy", "numpy loop", "torch"):
        if name in recipe:
            last = recipe[name]["epochs"][-1]
            print(f"  {name:<10} {recipe[name]['median'] * 1e3:>9.1f} ms   final train loss {last['train_loss']:.4f}  "
                  f"train acc {last['train_acc']:.4f}  test acc {last['test_acc']:.4f}")

    ev = results["evaluation"]
    print(f"\nEvaluation: labels of the {ev['images']} test images (from uint8, each contender converts)")
    for name in ("csoftmax", "numpy", "torch"):
        if name in ev:
            print(f"  {name:<8} {ev[name]['median'] * 1e3:>8.2f} ms  accuracy {ev[name]['accuracy']:.4f}")

    th = results["threads"]
    print("\nThreads: the fused recipe")
    for k in (k for k in th if k.isdigit()):
        print(f"  {k} thread(s): {th[k]['median'] * 1e3:.1f} ms")
    print(f"  identical results: {th['identical']}")

    mem = results["memory"]
    mib = 1 << 20
    print(f"\nMemory across epochs 2+ of the fused recipe (sampled {mem['samples_per_epoch']}x per epoch): "
          f"traced Python/NumPy {mem['traced_bytes_range'][0] / mib:.2f}-{mem['traced_bytes_range'][1] / mib:.2f} MiB, "
          f"resident {mem['rss_bytes_range'][0] / mib:.1f}-{mem['rss_bytes_range'][1] / mib:.1f} MiB")

    print("\nInstruction-set variants, each forced (CSOFTMAX_ISA) in a process of its own: the chapter's step "
          "back to back in C++ against that variant's own FMA peak")
    for variant, v in results["variants"].items():
        cells = "; ".join(f"{t} thread(s) {v['steady'][t]['seconds_per_step'] * 1e6:.1f} µs/step = "
                          f"{v['steady'][t]['percent_of_peak']:.0f}% of {v['peak_gflops'][t]:.0f} GFLOP/s"
                          for t in v["peak_gflops"])
        print(f"  {variant:<9} {v['simd']:<9} {cells}")

    if "builds" in results:
        builds = results["builds"]
        this, other = builds["this"], builds["against"]
        shape = "x".join(str(n) for n in this["large_vocab_shape"])
        print(f"\nBuilds side by side (medians of {results['build_rounds']} rounds, each install in turn): recipe, "
              f"and one large-vocabulary step (B x D x V = {shape})")
        for name, b in (("this", this), ("against", other)):
            kind = "native" if b["native"] else "portable"
            print(f"  {name:<8} {kind} ({b['variant']}), {b['python']}: recipe {b['recipe_s'] * 1e3:.1f} ms, "
                  f"large vocab {b['large_vocab_s'] * 1e3:.0f} ms")

    print("\nTargets (ratios from this run):")
    labels = {
        "recipe_vs_numpy": "recipe, fused vs numpy backend",
        "recipe_vs_numpy_loop": "recipe, fused vs a plain NumPy loop",
        "variant_step_percent_of_own_peak": "step, % of own peak (lowest variant)",
        "build_recipe_speed": "recipe, this build's speed / --against's",
        "build_large_vocab_speed": "large vocab, this build / --against's",
        "recipe_vs_torch": "recipe, fused vs PyTorch eager",
        "step_percent_of_peak": "chapter step, % of peak (all threads)",
        "eval_vs_numpy": "evaluation, csoftmax vs numpy",
        "threads_speedup": "recipe, all threads vs 1",
    }
    for name, s in results["summary"].items():
        value = "n/a" if s["value"] is None else f"{s['value']:.2f}"  # 14.96 must not print as 15.0
        print(f"  {labels[name]:<40} {value:>7}  (target {s['target']:g})  {'met' if s['met'] else 'NOT met'}")


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = {row["name"]: row for row in results["kernel_step"]["shapes"]}
    chapter = steps["chapter, uint8"]
    recipe = results["recipe"]
    groups = {
        "kernel step\n(chapter, uint8)": (chapter["csoftmax"]["median"], chapter["numpy"]["median"],
                                          chapter.get("torch", {}).get("median")),
        f"recipe\n({recipe['epochs']} epochs)": (recipe["fused"]["median"], recipe["numpy"]["median"],
                                               recipe.get("torch", {}).get("median")),
        "evaluation\n(10k images)": (results["evaluation"]["csoftmax"]["median"],
                                     results["evaluation"]["numpy"]["median"],
                                     results["evaluation"].get("torch", {}).get("median")),
    }
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.25
    for i, (label, color) in enumerate((("csoftmax", "tab:green"), ("NumPy", "tab:blue"), ("PyTorch", "tab:orange"))):
        values = [ratio(v[0], v[i]) if v[i] else 0 for v in groups.values()]
        bars = ax.bar(np.arange(len(groups)) + (i - 1) * width, values, width, label=label, color=color)
        ax.bar_label(bars, labels=[f"{v:.1f}x" if v else "" for v in values], fontsize=8)
    ax.set_xticks(np.arange(len(groups)), list(groups))
    ax.set_ylabel("time relative to csoftmax (higher = slower)")
    ax.set_title(f"csoftmax vs NumPy and PyTorch on {results['environment']['cpu']} "
                 f"({results['environment']['cores']} cores)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small repeats and 2 epochs: a check that runs in CI")
    parser.add_argument("--no-large-vocab", action="store_true",
                        help="skip exercise 5's benchmark (benchmarks/bench_large_vocab.py, several minutes)")
    parser.add_argument("--against", metavar="PYTHON",
                        help="the Python of another csoftmax install (e.g. a venv with the native build): "
                             "its recipe and large-vocabulary step are timed in turn with this one's")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                        help="directory for bench.json and bench.png (default: benchmarks/results)")
    args = parser.parse_args(argv)

    repeats = 3 if args.quick else 9
    epochs = 2 if args.quick else 10
    slow_repeats = 1 if args.quick else 3

    threads = csoftmax.build_info()["available_threads"]
    peak = {t: _core.peak_fma_flops(t, 2_000_000 if not args.quick else 500_000)[0] for t in sorted({1, threads})}
    results = {"quick": args.quick, "environment": environment(peak)}
    print_environment(results["environment"])
    print("\nmeasuring... (kernel step)", flush=True)
    results["kernel_step"] = bench_kernel_step(repeats, peak)
    results["environment"]["peak_gflops"] = {str(t): flops / 1e9 for t, flops in peak.items()}  # re-probed
    print("measuring... (recipe)", flush=True)
    results["recipe"], model, test_iter = bench_recipe(epochs, repeats if not args.quick else 2, slow_repeats)
    print("measuring... (evaluation, threads, memory)", flush=True)
    results["evaluation"] = bench_evaluation(model, test_iter, repeats)
    results["threads"] = bench_threads(epochs, repeats if not args.quick else 2)
    results["memory"] = bench_memory(epochs if not args.quick else 3)
    print("measuring... (instruction-set variants)", flush=True)
    results["variants"] = bench_variants(repeats, args.quick)
    if args.against:
        print(f"measuring... (this build and {args.against}, in turn)", flush=True)
        results["build_rounds"] = 1 if args.quick else 5
        results["builds"] = bench_builds(args.against, results["build_rounds"], args.quick)
    results["summary"] = summarize(results)
    print_report(results)

    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_large_vocab:
        print("\nLarge label sets (exercise 5), in a separate process:", flush=True)
        results["large_vocab"] = bench_large_vocab(args.quick, args.out)
    with open(args.out / "bench.json", "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, default=float)
    plot(results, args.out / "bench.png")
    print(f"\nwrote {args.out / 'bench.json'} and {args.out / 'bench.png'}")


if __name__ == "__main__":
    main()
