"""The large-vocabulary options on the test grids of Liger Kernel and Cut Cross-Entropy.

The facts of their grids (shapes, tolerances, option combinations) carry over; the code is ours. The
oracle is PyTorch in float64: F.linear + F.cross_entropy with the same options, the soft cap and the
z-loss written out. Nothing here uses csoftmax to produce an expected value.

- Liger Kernel (test_fused_linear_cross_entropy): shapes (B*T, H, V), float32 tolerances atol 1e-5 /
  rtol 5e-4 for "mean" and 1e-3 / 5e-2 for "sum", with and without bias, and its combined case:
  class weights, smoothing 0.1, ignore_index=42, z-loss 1e-4 and softcap 30 together.
- Cut Cross-Entropy (test_loss_forward / test_loss_backward): shapes (N, V, D), half of the classifier
  rows equal to inputs, 20% of targets ignored, softcap None or 20; csoftmax's error against float64
  must be no larger than PyTorch float32's error plus 1e-5.
- Past 250,000 classes, where float32 sums over the classes lose accuracy.
"""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0+cpu)")
F = torch.nn.functional

import csoftmax  # noqa: E402

pytestmark = pytest.mark.torch

IGNORE = -100


def oracle(x, weight, bias, target, *, reduction="mean", ignore_index=IGNORE, label_smoothing=0.0,
           class_weight=None, z_loss=0.0, softcap=None, dtype=torch.float64):
    """PyTorch's loss and (x, weight, bias) gradients in `dtype`, the soft cap and z-loss written out."""
    leaves = [None if t is None else t.detach().to(dtype).requires_grad_() for t in (x, weight, bias)]
    logits = F.linear(*leaves)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    loss = F.cross_entropy(logits, target, reduction=reduction, ignore_index=ignore_index,
                           label_smoothing=label_smoothing,
                           weight=None if class_weight is None else class_weight.to(dtype))
    if z_loss:
        kept = target != ignore_index
        row = torch.where(kept, z_loss * torch.logsumexp(logits, dim=-1) ** 2, 0.0)
        loss = loss + {"mean": row.sum() / kept.sum(), "sum": row.sum(), "none": row}[reduction]
    upstream = torch.ones_like(loss)
    grads = torch.autograd.grad(loss, [t for t in leaves if t is not None], upstream)
    return loss.detach(), grads


def ours(x, weight, bias, target, **options):
    """csoftmax.linear_cross_entropy on NumPy float32, as float64 tensors (loss, grads)."""
    options = dict(options)
    ignore_index = options.pop("ignore_index", IGNORE)
    class_weight = options.pop("class_weight", None)
    result = csoftmax.linear_cross_entropy(
        x.numpy(), weight.numpy(), None if bias is None else bias.numpy(), target.numpy(), layout="CD",
        grad_input=True, ignore_index=ignore_index,
        class_weight=None if class_weight is None else class_weight.numpy(), **options)
    grads = [result.grad_X, result.grad_W] + ([] if bias is None else [result.grad_b])
    as64 = [torch.as_tensor(g, dtype=torch.float64) for g in grads]
    return torch.as_tensor(result.loss, dtype=torch.float64), as64


def assert_within(got, expected, atol, rtol, name):
    torch.testing.assert_close(got, expected, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


# --- Liger Kernel's grid ---------------------------------------------------------------------------

LIGER_SHAPES = [(8 * 128, 1024, 4096), (4 * 47, 31, 123), (2 * 2, 8, 8), (9 * 7, 41, 41)]
LIGER_TOLERANCES = {"mean": (1e-5, 5e-4), "sum": (1e-3, 5e-2)}  # (atol, rtol), float32


def liger_problem(BT, H, V, bias, seed=0):
    """Liger's inputs: x ~ N(0, 1), torch.nn.Linear's initialization, targets anywhere in [0, V)."""
    g = torch.Generator().manual_seed(seed)
    bound = 1 / H**0.5
    x = torch.randn(BT, H, generator=g)
    weight = (torch.rand(V, H, generator=g) * 2 - 1) * bound
    b = (torch.rand(V, generator=g) * 2 - 1) * bound if bias else None
    target = torch.randint(0, V, (BT,), generator=g)
    return x, weight, b, target, g


def liger_check(shape, reduction, bias, **options):
    x, weight, b, target, g = liger_problem(*shape, bias)
    if options.pop("combined", False):
        # Liger's combined case: a random share of the targets set to ignore_index = 42
        ignored = torch.randperm(len(target), generator=g)[: torch.randint(1, len(target), (1,), generator=g)]
        target[ignored] = 42
        options.update(ignore_index=42, class_weight=torch.rand(shape[2], generator=g), label_smoothing=0.1,
                       z_loss=1e-4, softcap=30.0)
    atol, rtol = LIGER_TOLERANCES[reduction]
    got_loss, got_grads = ours(x, weight, b, target, reduction=reduction, **options)
    loss, grads = oracle(x, weight, b, target, reduction=reduction, **options)
    assert_within(got_loss, loss, atol, rtol, "loss")
    for name, got, expected in zip(("grad_x", "grad_weight", "grad_bias"), got_grads, grads):
        assert_within(got, expected, atol, rtol, name)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", LIGER_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_liger_grid(shape, reduction, bias):
    liger_check(shape, reduction, bias)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", LIGER_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_liger_combined_options(shape, reduction, bias):
    liger_check(shape, reduction, bias, combined=True)


# --- Cut Cross-Entropy's rule ----------------------------------------------------------------------

CCE_SHAPES = [(256, 512, 128), (252, 507, 128), (252, 507, 123)]  # (N, V, D)
CCE_TOLERANCE = 1e-5  # its float32 error_tol


def cce_problem(N, V, D, seed=0):
    """CCE's inputs: e ~ N(0, 1/D), c ~ N(0, 1) with its first min(N, V)/2 rows equal to e's (logits
    that stand out), and 20% of the targets ignored."""
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(N, D, generator=g) / D**0.5
    c = torch.randn(V, D, generator=g)
    half = min(N, V) // 2
    c[:half] = e[:half]
    target = torch.randint(0, V, (N,), generator=g)
    target[torch.randperm(N, generator=g)[: int(0.2 * N)]] = IGNORE
    return e, c, target


@pytest.mark.parametrize("softcap", [None, 20.0], ids=["no-cap", "softcap=20"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", CCE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_cut_cross_entropy_rule(shape, reduction, softcap):
    e, c, target = cce_problem(*shape)
    options = dict(reduction=reduction, softcap=softcap)
    truth, true_grads = oracle(e, c, None, target, **options)
    torch32, torch32_grads = oracle(e, c, None, target, dtype=torch.float32, **options)
    got, got_grads = ours(e, c, None, target, **options)
    pairs = [("loss", got, torch32, truth)] + [
        (name, a, b.double(), t) for name, a, b, t in zip(("grad_e", "grad_c"), got_grads, torch32_grads, true_grads)]
    for name, mine, theirs, exact in pairs:
        my_error = (mine - exact).abs()
        their_error = (theirs.double() - exact).abs()
        worst = float((my_error - their_error).max())
        assert bool((my_error <= their_error + CCE_TOLERANCE).all()), (
            f"{name}: csoftmax's error exceeds PyTorch float32's + {CCE_TOLERANCE} by {worst:.3g}")


# --- past 250,000 classes ----------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "z_loss": 1e-4, "softcap": 30.0,
                                           "class_weight": "random"}], ids=["plain", "combined"])
def test_past_a_quarter_million_classes(options):
    V, B, D = 262_147, 6, 8  # long sums over the classes: lse, the smoothing sum, the weights
    g = torch.Generator().manual_seed(7)
    x = torch.randn(B, D, generator=g) * 2
    weight = torch.randn(V, D, generator=g)
    bias = torch.randn(V, generator=g)
    target = torch.randint(0, V, (B,), generator=g)
    target[1] = IGNORE
    options = dict(options)
    if options.get("class_weight") == "random":
        options["class_weight"] = torch.rand(V, generator=g) + 0.5
    got_loss, got_grads = ours(x, weight, bias, target, **options)
    loss, grads = oracle(x, weight, bias, target, **options)
    assert_within(got_loss, loss, 1e-5, 1e-5, "loss")
    for name, got, expected in zip(("grad_x", "grad_weight", "grad_bias"), got_grads, grads):
        assert_within(got, expected, 1e-6, 1e-4, name)
