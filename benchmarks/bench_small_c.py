"""Where the single-pass kernel stops being the faster one: csoftmax.ops.SMALL_C_MAX, measured.

    python benchmarks/bench_small_c.py            # D = 784 (the chapter's), B = 256 and 4096
    python benchmarks/bench_small_c.py --D 4096   # a wider input

One fused step (loss, dW, db) of csoftmax.linear_cross_entropy with kernel="single_pass" and
kernel="tiled", the two taking turns in every round (the machine is shared: ratios measured together
mean more than absolute times); medians of the rounds. The auto choice takes the single-pass kernel
for C <= SMALL_C_MAX: the ratio tiled / single should cross 1 near there. Check `uptime` first.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import csoftmax
from csoftmax.ops import SMALL_C_MAX

CLASSES = [16, 32, 48, 64, 96, 128]
KERNELS = ("single_pass", "tiled")


def median_seconds(X, W, b, y, rounds):
    calls = max(3, int(2e8 / W.size / len(X)))
    times = {k: [] for k in KERNELS}
    for _ in range(rounds):
        for kernel in KERNELS:
            start = time.perf_counter()
            for _ in range(calls):
                csoftmax.linear_cross_entropy(X, W, b, y, kernel=kernel)
            times[kernel].append((time.perf_counter() - start) / calls)
    return {k: statistics.median(v) for k, v in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--D", type=int, default=784)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"SMALL_C_MAX = {SMALL_C_MAX}, D = {args.D}, {csoftmax.get_num_threads()} threads")
    print(f"{'B':>5} {'C':>4} {'single us':>10} {'tiled us':>10} {'tiled/single':>13}")
    for B in (256, 4096):
        X = rng.standard_normal((B, args.D)).astype(np.float32)
        for C in CLASSES:
            W = (0.01 * rng.standard_normal((args.D, C))).astype(np.float32)
            b, y = np.zeros(C, np.float32), rng.integers(0, C, B)
            t = median_seconds(X, W, b, y, args.rounds)
            print(f"{B:>5} {C:>4} {1e6 * t['single_pass']:>10.1f} {1e6 * t['tiled']:>10.1f} "
                  f"{t['tiled'] / t['single_pass']:>13.2f}")


if __name__ == "__main__":
    main()
