"""PyTorch autograd op over csoftmax's large-vocabulary kernel (CPU tensors).

    loss = csoftmax.torch.linear_cross_entropy(x, weight, bias, target)

computes F.cross_entropy(x @ weight.T + bias, target) without materializing the logits: x is
(..., D), weight is (C, D) like torch.nn.Linear.weight, bias is (C,) or None, target is (...) class
indices. Options as in PyTorch: reduction ("mean", "sum", "none"), ignore_index (default -100),
label_smoothing, class_weight (F.cross_entropy's `weight`); and z_loss (Liger Kernel's lse_square_scale)
and softcap (Gemma 2's logit soft cap), as Liger Kernel and Cut Cross-Entropy have them.

float32 tensors go through the C++ kernel, which computes the loss and every gradient in one pass
(the gradients are kept from the forward and scaled by the upstream gradient in backward; for
reduction="none" the backward runs the kernel again, weighting each row by its upstream gradient).
float64 tensors go through the NumPy reference (csoftmax.reference) in float64: the same gradient
formulas, exact enough for torch.autograd.gradcheck, slow, meant for checking.

PyTorch is an optional dependency: importing csoftmax does not import this module.
"""

from __future__ import annotations

import numpy as np
import torch

from . import ops, reference
from .result import check_reduction

__all__ = ["linear_cross_entropy", "LinearCrossEntropyFunction"]


def _numpy(t):
    return t.detach().contiguous().numpy()


def _compute(x, weight, bias, target, class_weight, reduction, ignore_index, label_smoothing, z_loss, softcap,
             row_weights, grad_input, grad_weight):
    """The kernel (float32) or the reference (float64) on 2-D x and 1-D target, as NumPy results."""
    args = (_numpy(x), _numpy(weight), None if bias is None else _numpy(bias), _numpy(target))
    options = dict(reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                   softcap=softcap,
                   layout="CD",
                   grad_input=grad_input, row_weights=row_weights,
                   class_weight=None if class_weight is None else _numpy(class_weight))
    if x.dtype == torch.float64:
        reference.check_labels(args[3], weight.shape[0], ignore_index, name="target")
        return reference.linear_cross_entropy(*args, dtype=np.float64, **options)
    return ops.linear_cross_entropy(*args, kernel="tiled", grad_weight=grad_weight, **options)


def _tensors(result, dtype):
    return tuple(None if g is None else torch.from_numpy(np.asarray(g)).to(dtype)
                 for g in (result.grad_X, result.grad_W, result.grad_b))


class LinearCrossEntropyFunction(torch.autograd.Function):
    """The autograd Function; use linear_cross_entropy, which checks and reshapes its arguments."""

    @staticmethod
    def forward(ctx, x, weight, bias, target, class_weight, reduction, ignore_index, label_smoothing, z_loss,
                softcap):
        ctx.options = (class_weight, reduction, ignore_index, label_smoothing, z_loss, softcap)
        # reduction="none": the upstream gradient weights each row, so the gradients wait for backward.
        now = reduction != "none"
        grad_input = now and ctx.needs_input_grad[0]
        grad_weight = now and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
        result = _compute(x, weight, bias, target, class_weight, reduction, ignore_index, label_smoothing, z_loss,
                          softcap, None, grad_input, grad_weight)
        if reduction == "none":
            ctx.save_for_backward(x, weight, bias, target)
            return torch.from_numpy(np.asarray(result.loss)).to(x.dtype)
        ctx.grads = _tensors(result, x.dtype)
        return torch.tensor(result.loss, dtype=x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        class_weight, reduction, ignore_index, label_smoothing, z_loss, softcap = ctx.options
        if reduction == "none":
            x, weight, bias, target = ctx.saved_tensors
            row_weights = _numpy(grad_output).astype(np.float64 if x.dtype == torch.float64 else np.float32)
            result = _compute(x, weight, bias, target, class_weight, "sum", ignore_index, label_smoothing, z_loss,
                              softcap, row_weights,
                              ctx.needs_input_grad[0], ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
            grads = _tensors(result, x.dtype)
        else:
            grads = tuple(None if g is None else g * grad_output for g in ctx.grads)
        grad_x, grad_w, grad_b = grads
        return (grad_x if ctx.needs_input_grad[0] else None, grad_w if ctx.needs_input_grad[1] else None,
                grad_b if ctx.needs_input_grad[2] else None, None, None, None, None, None, None, None)


def linear_cross_entropy(x, weight, bias, target, *, reduction="mean", ignore_index=-100, label_smoothing=0.0,
                         class_weight=None, z_loss=0.0, softcap=None):
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
    """
    tensors = {"x": x, "weight": weight, "target": target}
    if bias is not None:
        tensors["bias"] = bias
    if class_weight is not None:
        tensors["class_weight"] = class_weight
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
    check_reduction(reduction)
    if class_weight is not None and tuple(class_weight.shape) != (weight.shape[0],):
        raise ValueError(f"class_weight: expected shape ({weight.shape[0]},), got {tuple(class_weight.shape)}")
    loss = LinearCrossEntropyFunction.apply(x.reshape(-1, x.shape[-1]), weight, bias, target.reshape(-1),
                                            class_weight, reduction, ignore_index, float(label_smoothing),
                                            float(z_loss), None if softcap is None else float(softcap))
    return loss.reshape(target.shape) if reduction == "none" else loss
