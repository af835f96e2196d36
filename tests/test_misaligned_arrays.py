"""Arrays whose data is not aligned to their dtype (a view at an odd byte offset; Dask unpickles blocks
like that) are copied by the Python face and refused by the extension: the kernels load elements
through typed pointers, and a misaligned load is undefined behaviour (UBSan found one in a Dask fit)."""

import numpy as np
import pytest

import csoftmax
from csoftmax import _core, ops


def misaligned(a):
    """A read-only copy of `a` whose data starts one byte past an aligned address."""
    a = np.ascontiguousarray(a)
    buffer = np.zeros(a.nbytes + 1, dtype=np.uint8)
    buffer[1:] = a.view(np.uint8).ravel()
    out = np.frombuffer(buffer.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    assert not out.flags.aligned or a.dtype.alignment == 1
    return out


@pytest.fixture
def logistic_problem():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 7))
    y = rng.integers(0, 3, 50)
    w = rng.uniform(0.5, 2, 50)
    coef = rng.standard_normal((3, 7)) * 0.1
    b = rng.standard_normal(3) * 0.1
    return X, y, w, coef, b


def test_logistic_kernel_on_misaligned_inputs_equals_aligned(logistic_problem):
    X, y, w, coef, b = logistic_problem
    expected = ops.logistic_loss_gradient(X, y, w, coef, b)
    got = ops.logistic_loss_gradient(misaligned(X), misaligned(y), misaligned(w), misaligned(coef), misaligned(b))
    assert got[0] == expected[0]
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_array_equal(got[2], expected[2])


@pytest.mark.parametrize("which", ["X", "coef", "sample_weight"])
def test_the_extension_refuses_misaligned_arrays(logistic_problem, which):
    X, y, w, coef, b = logistic_problem
    args = {"X": X, "y": y, "sample_weight": w, "coef": coef, "intercept": b}
    args[which] = misaligned(args[which])
    with pytest.raises(ValueError, match=f"{which}: the array's data is not aligned"):
        _core.logistic_loss_gradient(args["X"], args["y"], args["sample_weight"], args["coef"], args["intercept"], 1.0)


def test_fused_step_on_misaligned_inputs_equals_aligned():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 20)).astype(np.float32)
    W = (rng.standard_normal((20, 5)) * 0.1).astype(np.float32)
    b = np.zeros(5, np.float32)
    y = rng.integers(0, 5, 40)
    expected = csoftmax.linear_cross_entropy(X, W, b, y)
    got = csoftmax.linear_cross_entropy(misaligned(X), misaligned(W), misaligned(b), misaligned(y))
    assert got.loss == expected.loss
    np.testing.assert_array_equal(got.grad_W, expected.grad_W)
