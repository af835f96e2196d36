"""PyTorch op over csoftmax's large-vocabulary kernel (CPU tensors), registered with torch.library.

    loss = csoftmax.torch.linear_cross_entropy(x, weight, bias, target)

computes F.cross_entropy(x @ weight.T + bias, target) without materializing the logits: x is
(..., D), weight is (C, D) like torch.nn.Linear.weight, bias is (C,) or None, target is (...) class
indices. Options as in PyTorch: reduction ("mean", "sum", "none"), ignore_index (default -100),
label_smoothing, class_weight (F.cross_entropy's `weight`); and z_loss (Liger Kernel's lse_square_scale)
and softcap (Gemma 2's logit soft cap), as Liger Kernel and Cut Cross-Entropy have them. With
return_extras=True it also returns the per-row lse, predicted class and correctness, the token
accuracy and the z-loss term (LinearCrossEntropyOutput).

The op is `torch.ops.csoftmax.linear_cross_entropy` (torch.library.custom_op, with register_autograd
and register_fake), so torch.compile traces a model that calls it without a graph break.
float32 tensors go through the C++ kernel, which computes the loss and every gradient in one pass
(the gradients are kept from the forward and scaled by the upstream gradient in backward; for
reduction="none" the backward runs the kernel again, `torch.ops.csoftmax.linear_cross_entropy_backward`,
weighting each row by its upstream gradient). float64 tensors go through the NumPy reference
(csoftmax.reference) in float64: the same gradient formulas, exact enough for
torch.autograd.gradcheck, slow, meant for checking.

PyTorch is an optional dependency: importing csoftmax does not import this module.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch
from torch import Tensor

from . import ops, reference
from .result import check_reduction

__all__ = ["linear_cross_entropy", "LinearCrossEntropyOutput"]


class LinearCrossEntropyOutput(NamedTuple):
    """linear_cross_entropy(..., return_extras=True): the loss and, detached, what came with it."""

    loss: Tensor         # as without extras (z-loss included)
    z_loss: Tensor       # the z-loss term on its own, reduced as the loss (0 when z_loss=0)
    lse: Tensor          # (...) per-row log-sum-exp of the (capped) logits
    predicted: Tensor    # (...) int64 argmax of the logits
    row_correct: Tensor  # (...) bool: counted and predicted its target
    accuracy: Tensor     # () token accuracy over the rows not ignored (NaN when none is)


def _numpy(t):
    return t.detach().contiguous().numpy()


def _compute(x, weight, bias, target, class_weight, reduction, ignore_index, label_smoothing, z_loss, softcap,
             row_weights, grad_input, grad_weight):
    """The kernel (float32) or the reference (float64) on 2-D x and 1-D target, as NumPy results."""
    args = (_numpy(x), _numpy(weight), None if bias is None else _numpy(bias), _numpy(target))
    options = dict(reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                   softcap=softcap, layout="CD", grad_input=grad_input, row_weights=row_weights,
                   class_weight=None if class_weight is None else _numpy(class_weight))
    if x.dtype == torch.float64:
        reference.check_labels(args[3], weight.shape[0], ignore_index, name="target")
        return reference.linear_cross_entropy(*args, dtype=np.float64, **options)
    return ops.linear_cross_entropy(*args, kernel="tiled", grad_weight=grad_weight, return_lse=True,
                                    return_predictions=True, **options)


def _tensor(value, dtype):
    """A NumPy result as a tensor of dtype; None (a gradient not asked for) as an empty one (ops return
    tensors only)."""
    return torch.empty(0, dtype=dtype) if value is None else torch.from_numpy(np.array(value)).to(dtype)


def _loss_shape(x, reduction):
    return (x.shape[0],) if reduction == "none" else ()


@torch.library.custom_op("csoftmax::linear_cross_entropy", mutates_args=())
def _forward(x: Tensor, weight: Tensor, bias: Optional[Tensor], target: Tensor, class_weight: Optional[Tensor],
             reduction: str, ignore_index: Optional[int], label_smoothing: float, z_loss: float,
             softcap: Optional[float], grad_input: bool,
             grad_weight: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(loss, z-loss term, lse, predicted, row_correct, accuracy, grad_x, grad_weight, grad_bias) on 2-D x;
    the gradients (empty unless asked for, and always for reduction="none") are those of the loss."""
    now = reduction != "none"
    result = _compute(x, weight, bias, target, class_weight, reduction, ignore_index, label_smoothing, z_loss,
                      softcap, None, now and grad_input, now and grad_weight)
    predicted = result.predicted if result.predicted is not None else np.zeros(x.shape[0], np.int64)
    row_correct = result.row_correct if result.row_correct is not None else np.zeros(x.shape[0], bool)
    z_term = np.zeros(_loss_shape(x, reduction)) if result.z_loss is None else result.z_loss
    accuracy = result.accuracy if result.accuracy is not None else np.nan
    return (_tensor(result.loss, x.dtype), _tensor(z_term, x.dtype), _tensor(result.lse, x.dtype),
            _tensor(predicted, torch.int64), _tensor(row_correct, torch.bool), _tensor(accuracy, x.dtype),
            _tensor(result.grad_X, x.dtype), _tensor(result.grad_W, x.dtype),
            _tensor(None if bias is None else result.grad_b, x.dtype))


@_forward.register_fake
def _(x, weight, bias, target, class_weight, reduction, ignore_index, label_smoothing, z_loss, softcap, grad_input,
      grad_weight):
    now = reduction != "none"
    B = x.shape[0]
    loss = x.new_empty(_loss_shape(x, reduction))
    return (loss, torch.empty_like(loss), x.new_empty((B,)), x.new_empty((B,), dtype=torch.int64),
            x.new_empty((B,), dtype=torch.bool), x.new_empty(()),
            torch.empty_like(x) if now and grad_input else x.new_empty((0,)),
            torch.empty_like(weight) if now and grad_weight else x.new_empty((0,)),
            torch.empty_like(bias) if now and grad_weight and bias is not None else x.new_empty((0,)))


@torch.library.custom_op("csoftmax::linear_cross_entropy_backward", mutates_args=())
def _backward_none(x: Tensor, weight: Tensor, bias: Optional[Tensor], target: Tensor, class_weight: Optional[Tensor],
                   grad_output: Tensor, ignore_index: Optional[int], label_smoothing: float, z_loss: float,
                   softcap: Optional[float], grad_input: bool, grad_weight: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of sum_i grad_output[i] loss_i (reduction="none"): the kernel with row weights."""
    row_weights = _numpy(grad_output).astype(np.float64 if x.dtype == torch.float64 else np.float32)
    result = _compute(x, weight, bias, target, class_weight, "sum", ignore_index, label_smoothing, z_loss, softcap,
                      row_weights, grad_input, grad_weight)
    return (_tensor(result.grad_X if grad_input else None, x.dtype),
            _tensor(result.grad_W if grad_weight else None, x.dtype),
            _tensor(None if bias is None or not grad_weight else result.grad_b, x.dtype))


@_backward_none.register_fake
def _(x, weight, bias, target, class_weight, grad_output, ignore_index, label_smoothing, z_loss, softcap, grad_input,
      grad_weight):
    return (torch.empty_like(x) if grad_input else x.new_empty((0,)),
            torch.empty_like(weight) if grad_weight else x.new_empty((0,)),
            torch.empty_like(bias) if grad_weight and bias is not None else x.new_empty((0,)))


def _setup_context(ctx, inputs, output):
    x, weight, bias, target, class_weight, reduction, ignore_index, label_smoothing, z_loss, softcap, gi, gw = inputs
    ctx.options = (reduction, ignore_index, label_smoothing, z_loss, softcap, gi, gw)
    if reduction == "none":
        ctx.save_for_backward(x, weight, bias, target, class_weight)
    else:
        ctx.save_for_backward(*output[6:])


def _backward(ctx, grad_loss, *unused):
    """Only the loss is differentiable (linear_cross_entropy detaches the other outputs)."""
    reduction, ignore_index, label_smoothing, z_loss, softcap, grad_input, grad_weight = ctx.options
    if reduction == "none":
        x, weight, bias, target, class_weight = ctx.saved_tensors
        grads = _backward_none(x, weight, bias, target, class_weight, grad_loss, ignore_index, label_smoothing,
                               z_loss, softcap, grad_input, grad_weight)
    else:
        grads = tuple(g * grad_loss for g in ctx.saved_tensors)
    grad_x, grad_w, grad_b = grads
    return (grad_x if grad_input else None, grad_w if grad_weight else None,
            grad_b if grad_weight and grad_b.numel() else None) + (None,) * 9


_forward.register_autograd(_backward, setup_context=_setup_context)


def _check(x, weight, bias, target, class_weight):
    tensors = {"x": x, "weight": weight, "target": target, "bias": bias, "class_weight": class_weight}
    tensors = {name: t for name, t in tensors.items() if t is not None}
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.device.type != "cpu":
            raise ValueError(f"{name}: csoftmax runs on the CPU, got a tensor on {t.device}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"x: expected float32 or float64, got {x.dtype}")
    for name in ("weight", "bias", "class_weight"):
        if name in tensors and tensors[name].dtype != x.dtype:
            raise TypeError(f"{name}: expected {x.dtype} like x, got {tensors[name].dtype}")
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.dtype.is_complex:
        raise TypeError(f"target: expected integer class indices, got {target.dtype}")
    if x.dim() < 1 or weight.dim() != 2 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x (..., D) and weight (C, D) disagree: x {tuple(x.shape)}, weight {tuple(weight.shape)}")
    if tuple(target.shape) != tuple(x.shape[:-1]):
        raise ValueError(f"target: expected shape {tuple(x.shape[:-1])} (x without its last axis), "
                         f"got {tuple(target.shape)}")
    if class_weight is not None and tuple(class_weight.shape) != (weight.shape[0],):
        raise ValueError(f"class_weight: expected shape ({weight.shape[0]},), got {tuple(class_weight.shape)}")


def linear_cross_entropy(x, weight, bias, target, *, reduction="mean", ignore_index=-100, label_smoothing=0.0,
                         class_weight=None, z_loss=0.0, softcap=None, return_extras=False):
    """F.cross_entropy(x @ weight.T + bias, target, ...) with the logits never materialized.

    x: (..., D) float32 (the kernel) or float64 (the reference), on the CPU.
    weight: (C, D), like torch.nn.Linear.weight; bias: (C,) or None; same dtype as x.
    target: (...) integer class indices in [0, C), or ignore_index.
    reduction: "mean" (over the rows not ignored), "sum" or "none" (shape of target).
    ignore_index: rows whose target equals it count for nothing (PyTorch's default -100; None
        ignores nothing). label_smoothing: in [0, 1], PyTorch's definition.
    class_weight: (C,) F.cross_entropy's `weight` (not differentiated), or None; "mean" then divides
        by the sum of the class weights of the rows not ignored.
    z_loss: the coefficient of lse^2 added to each row's loss (not class-weighted; "mean" over the rows
        not ignored).
    softcap: None or s > 0: the logits are s tanh(z / s) before the softmax.
    return_extras: return a LinearCrossEntropyOutput (the loss, and detached: the z-loss term, the
        per-row lse, predicted class and correctness, the token accuracy) instead of the loss alone.
    """
    _check(x, weight, bias, target, class_weight)
    check_reduction(reduction)
    # which gradients the forward computes (decided here: the op sees tensors, not the graph)
    grad_enabled = torch.is_grad_enabled()
    grad_input = grad_enabled and x.requires_grad
    grad_weight = grad_enabled and (weight.requires_grad or (bias is not None and bias.requires_grad))
    outputs = _forward(x.reshape(-1, x.shape[-1]), weight, bias, target.reshape(-1), class_weight, reduction,
                       None if ignore_index is None else int(ignore_index), float(label_smoothing), float(z_loss),
                       None if softcap is None else float(softcap), grad_input, grad_weight)
    shape = target.shape

    def per_row(t):
        return t.detach().reshape(shape)

    loss = outputs[0].reshape(shape) if reduction == "none" else outputs[0]
    if not return_extras:
        return loss
    z_term = per_row(outputs[1]) if reduction == "none" else outputs[1].detach()
    return LinearCrossEntropyOutput(loss, z_term, per_row(outputs[2]), per_row(outputs[3]), per_row(outputs[4]),
                                    outputs[5].detach())
