"""Restart a benchmark script without the OpenBLAS overrides some environments set.

Some environments set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which pin OpenBLAS to an older, slower
kernel. The benchmarks compare against NumPy as a user would have it, so a script calls
restart_without_openblas_overrides() first thing when run as __main__: it re-executes the script
without them and records what it unset in $CSOFTMAX_BENCH_UNSET (reported by the script).

This module imports only os and sys: it has to run before NumPy is imported.
"""

import os
import sys

OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
UNSET_NOTE = "CSOFTMAX_BENCH_UNSET"


def restart_without_openblas_overrides() -> None:
    """Re-exec this Python process without OPENBLAS_OVERRIDES if any is set; return if none is."""
    if not any(name in os.environ for name in OPENBLAS_OVERRIDES):
        return
    # OpenBLAS reads these when NumPy is imported, so they must be gone before the process starts:
    # unsetting them in os.environ now would be too late once NumPy is loaded, hence the restart.
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    env[UNSET_NOTE] = " ".join(f"{k}={os.environ[k]}" for k in OPENBLAS_OVERRIDES if k in os.environ)
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def unset_overrides() -> str:
    """What the restart unset ("NAME=value ..."), or "" when there was no restart."""
    return os.environ.get(UNSET_NOTE, "")
