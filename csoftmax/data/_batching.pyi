# Stub of the compiled Cython module csoftmax.data._batching (source: _batching.pyx).
import numpy as np
import numpy.typing as npt

def gather_scaled(
    images: npt.NDArray[np.uint8],
    rows: npt.NDArray[np.int64],
    scale: float,
    out: npt.NDArray[np.float32],
) -> None:
    """out[i, :] = images[rows[i], :] * scale for i < len(rows)."""

def fill_permutation(out: npt.NDArray[np.int64], seed: int) -> None:
    """out <- a uniformly random permutation of 0 .. len(out) - 1, fixed by `seed` (up to 2**32 elements)."""
