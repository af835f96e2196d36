"""Stubs of csoftmax._core, the compiled kernels (src_cpp/bindings/register_*.cpp).

Use the csoftmax package, which converts and validates arguments first; the extension checks dtypes,
shapes and indices on its own too, and raises TypeError or ValueError naming the argument.
Every argument after the arrays is keyword-only, except in sgd_epoch.
"""

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

_F32 = npt.NDArray[np.float32]
_I64 = npt.NDArray[np.int64]
_U8 = npt.NDArray[np.uint8]
_Features = npt.NDArray[np.float32] | npt.NDArray[np.uint8]
_Layout = Literal["DC", "CD"]

# --- register_build_info.cpp ---------------------------------------------------------------------

def build_info() -> dict[str, Any]:
    """compiler, cxx_flags, native, simd, simd_width, tile (the running variant's register tiles: forward rows,
    forward classes, dW vectors, dW classes), openmp, available_threads,
    max_threads, cpu_features; variant (running), variants_compiled, variants_runnable (by this CPU), variant_forced
    (CSOFTMAX_ISA, or None); amx (whether the uint8 forward and dW run on AMX tiles) and amx_reason (what for, or
    why not); vnni (whether the labels of uint8 rows come from AVX512-VNNI integer dot products; not where AMX
    tiles give them) and vnni_reason."""

def peak_fma_flops(threads: int, iterations: int = 2000000, repeats: int = 5) -> tuple[float, int]:
    """(FLOP/s, threads that ran) of independent FMA chains: the machine's fp32 peak."""

def get_num_threads() -> int: ...
def max_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

# --- register_softmax.cpp ------------------------------------------------------------------------

def softmax_rows(
    logits: _F32, what: Literal["softmax", "log_softmax", "cross_entropy"], y: _I64 | None = None
) -> _F32:
    """(B, C) probabilities or log-probabilities, or (B,) losses (needs y)."""

def linear_forward(
    X: _Features,
    W: _F32,
    b: _F32,
    what: Literal["softmax", "log_softmax", "argmax"],
    *,
    rows: _I64 | None = None,
    x_scale: float = 1.0,
    layout: _Layout = "DC",
) -> _F32 | _I64:
    """softmax, log_softmax (B, C) or argmax (B,) of x_scale * X[rows] . W + b."""

def vnni_proven_labels(X: _U8, W: _F32, b: _F32, *, x_scale: float = 1.0) -> _I64:
    """The integer forward's label of each uint8 row of X (W is (D, C)), or -1 where it proves none."""

# --- register_linear_cross_entropy.cpp -----------------------------------------------------------

def linear_cross_entropy(
    X: _Features,
    W: _F32,
    b: _F32,
    y: _I64,
    *,
    rows: _I64 | None = None,
    x_scale: float = 1.0,
    grad_scale: float = 1.0,
    row_losses: bool = False,
    grad_input: bool = False,
    layout: _Layout = "DC",
) -> tuple[float, int, _F32 | None, _F32, _F32, _F32 | None]:
    """The single-pass fused step: (loss_sum, correct, row_loss, grad_W, grad_b, grad_X)."""

# --- register_training.cpp -----------------------------------------------------------------------

def sgd_epoch(
    X: _Features, y: _I64, order: _I64, batch_size: int, lr: float, x_scale: float, wt: _F32, bias: _F32
) -> tuple[float, int]:
    """An epoch of minibatch SGD over X[order], updating class-major wt (C, D) and bias (C) in place:
    (loss_sum, correct)."""

def sgd_epoch_phases(
    X: _Features, y: _I64, order: _I64, batch_size: int, lr: float, x_scale: float, wt: _F32, bias: _F32
) -> tuple[float, int, list[tuple[float, float, float]]]:
    """sgd_epoch, timed: (loss_sum, correct, phases), with one (blocks, wait, update) in seconds for
    each thread that ran: its blocks of the steps, its waits at their barriers, its updates of W."""

# --- register_tiled_linear_cross_entropy.cpp -----------------------------------------------------

def tiled_linear_cross_entropy(
    X: _Features,
    W: _F32,
    b: _F32 | None,
    y: _I64,
    *,
    rows: _I64 | None = None,
    x_scale: float = 1.0,
    mean: bool = True,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    row_weights: _F32 | None = None,
    class_weight: _F32 | None = None,
    z_loss: float = 0.0,
    softcap: float = 0.0,
    layout: _Layout = "DC",
    want_lse: bool = False,
    want_predictions: bool = False,
    grad_weight: bool = True,
    grad_input: bool = False,
    naive: bool = False,
) -> tuple[float, int, float, int, _F32, _F32 | None, _F32 | None, _F32 | None, _F32 | None, float, _F32 | None,
           _I64 | None, npt.NDArray[np.uint8] | None]:
    """The large-vocabulary kernel: (loss_sum, counted, weight_sum, correct, row_loss, lse, grad_W, grad_b,
    grad_X, z_loss_sum, row_z_loss, row_argmax, row_correct)."""

def amx_product(A: _F32, B: _F32, *, a_transposed: bool = False, b_transposed: bool = False) -> _F32 | None:
    """A . B by the large-vocabulary kernel's AMX products (A, B given as their transposes' storage when
    a_transposed, b_transposed); None where they refuse the values or the depth, or AMX is not used."""

def tiled_plan(B: int, C: int, D: int) -> dict[str, Any]:
    """row_block, class_block, weight_class_block, class_groups, feature_slices, gradient_depth_block, logits_bytes, micro_tile;
    each size in [1, 2^40]."""

# --- register_logistic_regression.cpp ----------------------------------------------------------------

_Design = npt.NDArray[np.float32] | npt.NDArray[np.float64] | npt.NDArray[np.uint8]
_F64 = npt.NDArray[np.float64]

def logistic_loss_gradient(
    X: _Design,
    y: npt.NDArray[np.integer],
    sample_weight: _F64 | None,
    coef: _F64,
    intercept: _F64 | None,
    x_scale: float,
) -> tuple[float, _F64, _F64 | None]:
    """(Σ w·loss, its gradient in coef, in intercept or None) in one pass over X; one coef row: binomial."""

def logistic_hessian_product(
    X: _Design,
    sample_weight: _F64 | None,
    coef: _F64,
    intercept: _F64 | None,
    V: _F64,
    V_intercept: _F64 | None,
    x_scale: float,
) -> tuple[_F64, _F64 | None]:
    """The Hessian of the loss sum times (V, V_intercept) in one pass over X."""

# --- register_tuning.cpp -------------------------------------------------------------------------

def tuning() -> dict[str, Any]:
    """The running machine's facts (machine: l1d, l2, l3, line, processors; source: where each was read)
    and the blocks derived from them: block_k, block_n, block_m, min_row_block, max_row_block,
    logits_floor_bytes, logits_cap_bytes, micro_tile."""

def derive_tuning(l1d: int, l2: int, l3: int, line: int, processors: int) -> dict[str, Any]:
    """tuning() for a machine with these facts; implausible ones are replaced by the Zen 5 defaults."""
