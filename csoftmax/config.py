"""What was compiled in, what the CPU offers, and how many threads the kernels use."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

from . import _core
from ._validation import natural_int

__all__ = ["build_info", "show_config", "get_num_threads", "set_num_threads"]


def build_info() -> dict:
    """Build-time facts (compiler, flags, SIMD level, OpenMP) and the thread count, as a dict."""
    info = dict(_core.build_info())
    info["threads"] = _core.get_num_threads()
    return info


def get_num_threads() -> int:
    """Threads the kernels use (OMP_NUM_THREADS or the cores, unless set_num_threads was called)."""
    return _core.get_num_threads()


def set_num_threads(n: int) -> None:
    """Use n threads in the kernels; 0 restores the default. Results do not depend on n.

    At most `_core.max_threads()` (4 per processor, at least 64): more threads than processors only take
    turns, while each costs its scratch memory.
    """
    _core.set_num_threads(natural_int(n, "set_num_threads", maximum=_core.max_threads()))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _openmp_summary(info) -> str:
    if not info["openmp"]:
        return "no (serial build)"
    settings = [f"{name}={os.environ[name]}" for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
                if name in os.environ]
    return f"yes ({', '.join(settings)})" if settings else "yes"


def _bytes(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << (shift - 4)) == 0:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} B"


def _tuning_lines(t: dict) -> list[str]:
    """The machine's caches (and where each was read) and the blocks the kernels derive from them."""
    m, src = t["machine"], t["source"]
    caches = ", ".join(f"{name} {_bytes(m[name])} ({src[name]})" for name in ("l1d", "l2", "l3"))
    return [
        f"  caches:       {caches}, line {m['line']} B ({src['line']}); "
        f"{m['processors']} processors ({src['processors']})",
        f"  GEMM blocks:  k {t['block_k']}, n {t['block_n']}, m {t['block_m']} "
        f"(micro-tile {t['micro_tile'][0]} x {t['micro_tile'][1]}; derived from L1d and L2)",
        f"  large vocab:  chunks of {t['min_row_block']}-{t['max_row_block']} rows, logits "
        f"{_bytes(t['logits_floor_bytes'])}-{_bytes(t['logits_cap_bytes'])}",
    ]


def _variant_summary(info) -> str:
    """The running variant, what was compiled in and what this CPU runs of it, and the CSOFTMAX_ISA setting."""
    compiled, runnable = info["variants_compiled"], info["variants_runnable"]
    runs = "all" if tuple(runnable) == tuple(compiled) else ", ".join(runnable)
    forced = "CSOFTMAX_ISA not set" if info["variant_forced"] is None else f"CSOFTMAX_ISA={info['variant_forced']}"
    return f"{info['variant']} (compiled: {', '.join(compiled)}; this CPU runs {runs}; {forced})"


def show_config(file=None) -> None:
    """Print the build report: compiler, flags, the instruction-set variant running and those compiled in,
    SIMD compiled in vs. offered by the CPU, whether AMX tiles are used (CSOFTMAX_AMX=0 turns them off),
    whether VNNI gives the labels of uint8 rows (CSOFTMAX_VNNI=0 turns it off), OpenMP, threads, the caches
    the machine reports and the blocks derived from them. The flags and SIMD are the running variant's."""
    from . import __version__

    info = build_info()
    offered = [name for name, present in info["cpu_features"].items() if present]
    lines = [
        f"csoftmax {__version__} (Python {platform.python_version()}, NumPy {np.__version__})",
        f"  compiler:     {info['compiler']}",
        f"  flags:        {info['cxx_flags']}",
        f"  build:        {'native (-march=native)' if info['native'] else 'portable'}",
        f"  variant:      {_variant_summary(info)}",
        f"  SIMD:         {info['simd']} ({info['simd_width']} float lanes), "
        f"tiles {info['tile'][0]} rows x {info['tile'][1]} classes (forward), "
        f"{info['tile'][2]} vectors x {info['tile'][3]} classes (dW)",
        f"  CPU:          {_cpu_model()}",
        f"  CPU offers:   {', '.join(offered) if offered else 'unknown'}",
        f"  AMX:          {'used: ' if info['amx'] else 'not used: '}{info['amx_reason']}",
        f"  VNNI:         {'used: ' if info['vnni'] else 'not used: '}{info['vnni_reason']}",
        f"  OpenMP:       {_openmp_summary(info)}",
        f"  threads:      {info['threads']} in use, {info['available_threads']} available",
        *_tuning_lines(_core.tuning()),
    ]
    print("\n".join(lines), file=file or sys.stdout)
