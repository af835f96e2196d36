"""csoftmax.torch.linear_cross_entropy: the autograd op against PyTorch's own, and gradcheck."""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0+cpu)")
F = torch.nn.functional

# A plain import after the skip (it needs torch): an ImportError inside csoftmax/torch.py fails the tests.
import csoftmax.torch as ct

pytestmark = pytest.mark.torch


def make(B, D, C, dtype=torch.float32, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, generator=g, dtype=dtype, requires_grad=True)
    w = (torch.randn(C, D, generator=g, dtype=dtype) / D**0.5).requires_grad_()
    b = torch.randn(C, generator=g, dtype=dtype, requires_grad=True) if bias else None
    y = torch.randint(0, C, (B,), generator=g)
    return x, w, b, y


def grads(loss, inputs, upstream):
    return torch.autograd.grad(loss, [t for t in inputs if t is not None], upstream)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("ignore", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_float32_matches_torch(reduction, smoothing, ignore, bias):
    x, w, b, y = make(67, 40, 600, bias=bias)
    if ignore:
        y[::5] = -100
    ours = ct.linear_cross_entropy(x, w, b, y, reduction=reduction, label_smoothing=smoothing)
    theirs = F.cross_entropy(F.linear(x, w, b), y, reduction=reduction, label_smoothing=smoothing)
    assert ours.dtype == torch.float32 and ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    upstream = torch.rand_like(theirs) + 0.5
    for got, expected in zip(grads(ours, (x, w, b), upstream), grads(theirs, (x, w, b), upstream)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_class_weight_matches_torch(reduction, smoothing):
    x, w, b, y = make(67, 40, 600)
    y[::5] = -100
    class_weight = torch.rand(600, generator=torch.Generator().manual_seed(1)) * 2
    ours = ct.linear_cross_entropy(x, w, b, y, reduction=reduction, label_smoothing=smoothing,
                                   class_weight=class_weight)
    theirs = F.cross_entropy(F.linear(x, w, b), y, reduction=reduction, label_smoothing=smoothing,
                             weight=class_weight)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    upstream = torch.rand_like(theirs) + 0.5
    for got, expected in zip(grads(ours, (x, w, b), upstream), grads(theirs, (x, w, b), upstream)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def z_loss_written_out(logits, y, reduction, coefficient, ignore_index=-100):
    """coefficient * lse^2 per row not ignored, reduced over those rows (Liger Kernel's z-loss)."""
    kept = y != ignore_index
    row = torch.where(kept, coefficient * torch.logsumexp(logits, dim=-1) ** 2, 0.0)
    return {"mean": row.sum() / kept.sum(), "sum": row.sum(), "none": row}[reduction]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_z_loss_matches_torch_written_out(reduction):
    x, w, b, y = make(67, 40, 600)
    y[::5] = -100
    class_weight = torch.rand(600, generator=torch.Generator().manual_seed(1)) * 2
    ours = ct.linear_cross_entropy(x, w, b, y, reduction=reduction, label_smoothing=0.1, class_weight=class_weight,
                                   z_loss=1e-2)
    logits = F.linear(x, w, b)
    theirs = F.cross_entropy(logits, y, reduction=reduction, label_smoothing=0.1, weight=class_weight) + \
        z_loss_written_out(logits, y, reduction, 1e-2)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    upstream = torch.rand_like(theirs) + 0.5
    for got, expected in zip(grads(ours, (x, w, b), upstream), grads(theirs, (x, w, b), upstream)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_softcap_matches_torch_written_out(reduction):
    x, w, b, y = make(67, 40, 600)
    w = (w.detach() * 6).requires_grad_()  # logits past the cap
    ours = ct.linear_cross_entropy(x, w, b, y, reduction=reduction, softcap=10.0, z_loss=1e-3)
    logits = 10.0 * torch.tanh(F.linear(x, w, b) / 10.0)
    theirs = F.cross_entropy(logits, y, reduction=reduction) + z_loss_written_out(logits, y, reduction, 1e-3)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    upstream = torch.rand_like(theirs) + 0.5
    for got, expected in zip(grads(ours, (x, w, b), upstream), grads(theirs, (x, w, b), upstream)):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("options", [
    {},
    {"label_smoothing": 0.1, "class_weight": "random", "z_loss": 1e-3, "softcap": 10.0},
], ids=["plain", "every-option"])
def test_reduction_none_under_a_non_uniform_upstream_gradient(options):
    # Liger Kernel returned wrong gradients here once (its issue #968): each row's gradient must be
    # scaled by its own upstream value, signs and zeros included.
    x, w, b, y = make(67, 40, 600)
    y[::5] = -100
    g = torch.Generator().manual_seed(3)
    options = dict(options)
    if options.get("class_weight") == "random":
        options["class_weight"] = torch.rand(600, generator=g) * 2
    ours = ct.linear_cross_entropy(x, w, b, y, reduction="none", **options)
    logits = F.linear(x, w, b)
    if "softcap" in options:
        logits = options["softcap"] * torch.tanh(logits / options["softcap"])
    theirs = F.cross_entropy(logits, y, reduction="none", label_smoothing=options.get("label_smoothing", 0.0),
                             weight=options.get("class_weight"))
    if "z_loss" in options:
        theirs = theirs + z_loss_written_out(logits, y, "none", options["z_loss"])
    upstream = torch.randn(67, generator=g) * torch.linspace(0.0, 3.0, 67)  # signed, uneven, one exact 0
    upstream[7] = 0.0
    got = grads(ours, (x, w, b), upstream)
    expected = torch.autograd.grad(theirs, (x, w, b), upstream, retain_graph=True)
    for one, other in zip(got, expected):
        torch.testing.assert_close(one, other, rtol=1e-4, atol=1e-6)
    # not the gradient of the plain sum scaled by the mean upstream: the test can tell the two apart
    wrong = grads(theirs, (x, w, b), torch.full_like(upstream, float(upstream.mean())))
    assert not torch.allclose(got[1], wrong[1], rtol=1e-2, atol=1e-4)


def test_gradcheck_float64_with_class_weight():
    x, w, b, y = make(7, 5, 11, dtype=torch.float64)
    y[2] = -100
    class_weight = torch.rand(11, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.1
    assert torch.autograd.gradcheck(
        lambda x, w, b: ct.linear_cross_entropy(x, w, b, y, label_smoothing=0.2, class_weight=class_weight,
                                                z_loss=0.1, softcap=2.0),
        (x, w, b))


def test_ignore_index_inside_the_classes_matches_torch():
    x, w, b, y = make(50, 16, 300)
    ours = ct.linear_cross_entropy(x, w, b, y, ignore_index=int(y[0]))
    theirs = F.cross_entropy(F.linear(x, w, b), y, ignore_index=int(y[0]))
    torch.testing.assert_close(ours, theirs)


def test_matches_torch_linear_cross_entropy():
    # the pinned torch (2.13.0+cpu) has it: its absence is a failure, not a skip
    assert hasattr(F, "linear_cross_entropy"), f"torch {torch.__version__} has no F.linear_cross_entropy"
    x, w, b, y = make(64, 32, 1000)
    ours = ct.linear_cross_entropy(x, w, b, y, label_smoothing=0.05)
    theirs = F.linear_cross_entropy(x, w, y, linear_bias=b, label_smoothing=0.05)
    torch.testing.assert_close(ours, theirs)


def test_leading_dimensions_are_flattened():
    x, w, b, y = make(24, 8, 100)
    x3, y3 = x.detach().reshape(4, 6, 8).requires_grad_(), y.reshape(4, 6)
    ours = ct.linear_cross_entropy(x3, w, b, y3, reduction="none")
    assert ours.shape == (4, 6)
    torch.testing.assert_close(ours, F.cross_entropy(F.linear(x3, w, b).transpose(1, 2), y3, reduction="none"))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_float64(reduction):
    # float64 runs the NumPy reference: gradcheck compares its analytic gradients (the formulas the
    # kernel implements, checked against it in float32 above) with finite differences of the loss.
    x, w, b, y = make(7, 5, 11, dtype=torch.float64)
    y[2] = -100
    assert torch.autograd.gradcheck(
        lambda x, w, b: ct.linear_cross_entropy(x, w, b, y, reduction=reduction, label_smoothing=0.2), (x, w, b))


def test_gradcheck_float64_without_bias_and_with_a_class_ignored():
    x, w, _, y = make(6, 4, 9, dtype=torch.float64, bias=False)
    assert torch.autograd.gradcheck(lambda x, w: ct.linear_cross_entropy(x, w, None, y, ignore_index=int(y[0])),
                                    (x, w))


def test_float32_kernel_is_deterministic_across_threads(restore_threads):
    import csoftmax
    x, w, b, y = make(300, 64, 2000)
    results = []
    for threads in (1, 2):
        csoftmax.set_num_threads(threads)
        loss = ct.linear_cross_entropy(x, w, b, y)
        results.append([loss.detach(), *torch.autograd.grad(loss, (x, w, b))])
    for one, two in zip(*results):
        assert torch.equal(one, two)


@pytest.mark.parametrize("change, error, match", [
    (lambda x, w, b, y: (x.double(), w, b, y), TypeError, "weight: expected torch.float64"),
    (lambda x, w, b, y: (x.half(), w.half(), b.half(), y), TypeError, "x: expected float32 or float64"),
    (lambda x, w, b, y: (x, w, b, y.float()), TypeError, "target: expected integer"),
    (lambda x, w, b, y: (x, w.T, b, y), ValueError, "disagree"),
    (lambda x, w, b, y: (x, w, b, y[:-1]), ValueError, "target: expected shape"),
    (lambda x, w, b, y: (x, w, b, y + 1000), ValueError, "y: label"),
    (lambda x, w, b, y: (x.detach().numpy(), w, b, y), TypeError, "x: expected a torch.Tensor"),
])
def test_bad_input(change, error, match):
    x, w, b, y = make(5, 4, 10)
    with pytest.raises(error, match=match):
        ct.linear_cross_entropy(*change(x, w, b, y))


def test_out_of_range_target_float64():
    x, w, b, y = make(5, 4, 10, dtype=torch.float64)
    with pytest.raises(ValueError, match="target: label 10"):
        ct.linear_cross_entropy(x, w, b, torch.full_like(y, 10))


def test_importing_csoftmax_does_not_import_torch(tmp_path):
    import subprocess
    import sys
    code = "import sys, csoftmax; assert 'torch' not in sys.modules, 'csoftmax imported torch'"
    # cwd: `python -c` puts the current directory first on sys.path (the source tree would shadow the
    # installed package).
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


# --- torch.library registration and torch.compile -----------------------------------------------


class TinyLanguageModelHead(torch.nn.Module):
    """An embedding, a hidden layer and the loss over a vocabulary, the op called inside forward."""

    def __init__(self, vocabulary=300, width=16):
        super().__init__()
        self.embed = torch.nn.Embedding(vocabulary, width)
        self.hidden = torch.nn.Linear(width, width)
        self.head = torch.nn.Linear(width, vocabulary)

    def forward(self, tokens, targets):
        h = torch.tanh(self.hidden(self.embed(tokens)))  # (batch, time, width): x of shape (..., D)
        return ct.linear_cross_entropy(h, self.head.weight, self.head.bias, targets, label_smoothing=0.1,
                                       z_loss=1e-4, softcap=30.0)


def model_inputs():
    g = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    tokens = torch.randint(0, 300, (3, 7), generator=g)
    targets = torch.randint(0, 300, (3, 7), generator=g)
    targets[0, :2] = -100
    return TinyLanguageModelHead(), tokens, targets


def test_the_op_is_registered_with_torch_library():
    assert hasattr(torch.ops.csoftmax, "linear_cross_entropy")
    assert hasattr(torch.ops.csoftmax, "linear_cross_entropy_backward")
    x, w, b, y = make(9, 8, 40)
    for reduction in ("mean", "none"):
        # schema, fake (meta) implementation, autograd registration, all checked by PyTorch itself
        torch.library.opcheck(torch.ops.csoftmax.linear_cross_entropy.default,
                              (x, w, b, y, None, reduction, -100, 0.1, 1e-3, 20.0, True, True))


def test_torch_compile_traces_a_model_without_graph_breaks():
    model, tokens, targets = model_inputs()
    explanation = torch._dynamo.explain(model)(tokens, targets)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, explanation.break_reasons
    eager = model(tokens, targets)
    eager_grads = torch.autograd.grad(eager, list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")  # a break would raise here
    loss = compiled(tokens, targets)
    torch.testing.assert_close(loss, eager)
    for got, expected in zip(torch.autograd.grad(loss, list(model.parameters())), eager_grads):
        torch.testing.assert_close(got, expected)


def test_extras_come_with_the_loss():
    x, w, b, y = make(30, 16, 300)
    w = (w.detach() * 4).requires_grad_()
    y[::4] = -100
    y[1::4] = F.linear(x, w, b).argmax(dim=1)[1::4]  # some right
    out = ct.linear_cross_entropy(x, w, b, y, reduction="none", z_loss=1e-2, softcap=8.0, return_extras=True)
    logits = 8.0 * torch.tanh(F.linear(x, w, b) / 8.0)
    kept = y != -100
    torch.testing.assert_close(out.lse, torch.logsumexp(logits, dim=1).detach())
    torch.testing.assert_close(out.z_loss, z_loss_written_out(logits, y, "none", 1e-2).detach())
    assert torch.equal(out.predicted, logits.argmax(dim=1))
    assert torch.equal(out.row_correct, (logits.argmax(dim=1) == y) & kept)
    assert out.row_correct.sum() >= 7
    torch.testing.assert_close(out.accuracy, out.row_correct.sum() / kept.sum())
    assert out.loss.requires_grad and not out.lse.requires_grad and not out.z_loss.requires_grad
    plain = ct.linear_cross_entropy(x, w, b, y, reduction="none", z_loss=1e-2, softcap=8.0)
    torch.testing.assert_close(out.loss, plain)


def test_inputs_of_shape_batch_time_features():
    x, w, b, y = make(24, 8, 100)
    x3, y3 = x.detach().reshape(2, 3, 4, 8).requires_grad_(), y.reshape(2, 3, 4)
    class_weight = torch.rand(100, generator=torch.Generator().manual_seed(4))
    ours = ct.linear_cross_entropy(x3, w, b, y3, class_weight=class_weight)
    theirs = F.cross_entropy(F.linear(x3, w, b).reshape(-1, 100), y3.reshape(-1), weight=class_weight)
    torch.testing.assert_close(ours, theirs)
    got, expected = (torch.autograd.grad(loss, x3)[0] for loss in (ours, theirs))
    assert got.shape == x3.shape
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
