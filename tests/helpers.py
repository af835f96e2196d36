"""Shared helpers for the kernel tests: inputs and the tolerance check."""

from __future__ import annotations

import numpy as np

# float32 kernels against a float64 reference: |got - ref| <= ATOL * scale + RTOL * |ref|,
# with scale the largest |ref| of the array (errors grow with the magnitudes summed).
RTOL = 2e-4
ATOL = 2e-5


def assert_close(got, ref, name, rtol=RTOL, atol=ATOL):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != reference {ref.shape}"
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    err = np.abs(got - ref)
    bound = atol * scale + rtol * np.abs(ref)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
    assert np.all(err <= bound), (
        f"{name}: max error {err.max():.3g} at {worst} (got {got[worst]:.8g}, reference {ref[worst]:.8g}, "
        f"bound {bound[worst]:.3g})"
    )


def make_problem(B, D, C, dtype, seed=0, rows=False):
    """X (N, D) float32 ~ N(0, 1) or uint8 (scaled by 1/255), W (D, C), b (C,), y (N,), rows or None."""
    rng = np.random.default_rng([B, D, C, seed])
    N = B + 5 if rows else B
    if dtype == np.uint8:
        X = rng.integers(0, 256, size=(N, D), dtype=np.uint8)
        x_scale = 1 / 255
    else:
        X = rng.standard_normal((N, D)).astype(np.float32)
        x_scale = 1.0
    W = (rng.standard_normal((D, C)) / np.sqrt(D)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    y = rng.integers(0, C, size=N)
    index = rng.integers(0, N, size=B) if rows else None
    return X, W, b, y, x_scale, index
