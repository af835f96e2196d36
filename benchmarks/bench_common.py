"""What the benchmark scripts share: timing, result checks and the environment report.

No PyTorch here (benchmarks/contenders.py imports it): bench_large_vocab.py's memory child for
csoftmax uses these without loading torch.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

import csoftmax
from csoftmax.config import _cpu_model as cpu_model  # the same lookup as csoftmax.show_config()'s
from openblas_restart import unset_overrides

# --- timing -----------------------------------------------------------------------------------------


def settle():
    """Let the other contenders' thread pools go idle first. OpenMP and BLAS worker threads spin for a
    while after each call (milliseconds for libgomp's default); measured right after PyTorch, a
    two-thread kernel shares its cores with them and looks slower than it is."""
    time.sleep(0.05)


def seconds_per_call(fn, number=1):
    """Wall seconds per call of fn(), over `number` calls back to back."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def timed(fn, repeats, *, min_seconds=0.02, warmup=1):
    """Median seconds per call of fn over `repeats` runs, each of enough calls to last min_seconds
    (one call per run with min_seconds=0: for calls long enough to time on their own)."""
    settle()
    for _ in range(warmup):
        fn()
    number = 1
    if min_seconds > 0:
        number = max(1, int(min_seconds / max(seconds_per_call(fn), 1e-9)))
    times = [seconds_per_call(fn, number) for _ in range(repeats)]
    return {"median": statistics.median(times), "times": times, "calls_per_run": number}


# --- result checks ----------------------------------------------------------------------------------


def check_close(name, got, expected, *, rtol=1e-3, atol=1e-4, min_scale=1.0, against="the float64 reference"):
    """Raise AssertionError unless got has expected's shape and every element is within
    atol * scale + rtol * |expected| of it, scale being the largest |expected| (at least min_scale)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"{name}: shape {got.shape} differs from {against}'s {expected.shape}")
    scale = max(min_scale, float(np.abs(expected).max(initial=0.0)))
    excess = float((np.abs(got - expected) - rtol * np.abs(expected)).max(initial=0.0)) / scale
    if not excess <= atol:  # (NaN fails too)
        raise AssertionError(f"{name} differs from {against} by {excess:.2e} of its scale")


def check_all(name, labels, got, expected, **tolerances):
    """check_close on each (label, got, expected) triple: a step's loss and gradients, say."""
    for label, g, e in zip(labels, got, expected, strict=True):
        check_close(f"{name}: {label}", g, e, **tolerances)


# --- memory -----------------------------------------------------------------------------------------
# Peak resident memory of a child process: tracemalloc sees Python's allocations only, not C++'s or
# the BLAS's, so memory is read from the kernel's accounting instead.


def status_bytes(field):
    """A size field of /proc/self/status (VmRSS, VmHWM, ...) in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss():
    """Make the kernel's peak-RSS mark (VmHWM) start again from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")


# --- environment ------------------------------------------------------------------------------------


def base_environment():
    """What both benchmark scripts report about this machine and these libraries."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "csoftmax": csoftmax.__version__,
        "simd": csoftmax.build_info()["simd"],
        "numpy": np.__version__,
        "openblas_overrides_unset": unset_overrides(),
    }


def numpy_blas():
    """The BLAS libraries NumPy loaded (threadpoolctl's view: which kernel, how many threads), or a note
    when threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (pip install threadpoolctl to see the kernel)"
    np.ones((64, 64)) @ np.ones((64, 64))  # make sure the BLAS is loaded
    return [{k: pool.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]
