"""The full-batch logistic-regression kernels (csoftmax.ops.logistic_loss_gradient and
logistic_hessian_product) against the float64 NumPy reference: every dtype and order of X, binomial and
multinomial, with and without intercept and weights, extreme logits, thread counts, and bad input."""

import tracemalloc

import numpy as np
import pytest
from helpers import assert_close

import csoftmax
from csoftmax import _core, ops, reference

# Both sides compute in float64; they differ only in the order of their sums.
RTOL, ATOL = 1e-11, 1e-12


def problem(n, d, K, dtype, order, *, intercept=True, weights=True, seed=0):
    """X of dtype in `order` (uint8: pixels, with x_scale 1/255), labels, weights and parameters;
    K is the number of coef rows (1: binomial)."""
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        X, x_scale = rng.integers(0, 256, (n, d)).astype(np.uint8), 1 / 255
    else:
        X, x_scale = rng.normal(size=(n, d)).astype(dtype), 0.7
    X = np.asarray(X, order=order)
    y = rng.integers(0, max(K, 2), n)
    w = rng.uniform(0.0, 3.0, n) if weights else None
    coef = rng.normal(size=(K, d)) / np.sqrt(d)
    b = rng.normal(size=K) if intercept else None
    return X, y, w, coef, b, x_scale


def check_loss_gradient(X, y, w, coef, b, x_scale):
    got = ops.logistic_loss_gradient(X, y, w, coef, b, x_scale=x_scale)
    ref = reference.logistic_loss_gradient(X, y, w, coef, b, x_scale=x_scale)
    assert isinstance(got[0], float)
    assert_close(got[0], ref[0], "loss_sum", RTOL, ATOL)
    assert got[1].dtype == np.float64
    assert_close(got[1], ref[1], "grad_coef", RTOL, ATOL)
    if b is None:
        assert got[2] is None
    else:
        assert_close(got[2], ref[2], "grad_intercept", RTOL, ATOL)
    return got


SHAPES = [(301, 37), (40, 8), (5, 1)]  # tails of tiles, vectors and slabs; one exact vector; one feature


@pytest.mark.parametrize("K", [1, 3, 10, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8], ids=["f32", "f64", "u8"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no_intercept"])
@pytest.mark.parametrize("weights", [True, False], ids=["weights", "no_weights"])
def test_loss_gradient_matches_the_reference(K, dtype, order, intercept, weights):
    for n, d in SHAPES:
        check_loss_gradient(*problem(n, d, K, dtype, order, intercept=intercept, weights=weights))


@pytest.mark.parametrize("K", [1, 3, 10, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8], ids=["f32", "f64", "u8"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("intercept", [True, False], ids=["intercept", "no_intercept"])
def test_hessian_product_matches_the_reference(K, dtype, order, intercept):
    rng = np.random.default_rng(5)
    for n, d in SHAPES:
        X, _, w, coef, b, x_scale = problem(n, d, K, dtype, order, intercept=intercept)
        V = rng.normal(size=coef.shape)
        Vb = rng.normal(size=K) if intercept else None
        got = ops.logistic_hessian_product(X, w, coef, b, V, Vb, x_scale=x_scale)
        ref = reference.logistic_hessian_product(X, w, coef, b, V, Vb, x_scale=x_scale)
        assert_close(got[0], ref[0], "HV", RTOL, ATOL)
        if intercept:
            assert_close(got[1], ref[1], "HV_intercept", RTOL, ATOL)
        else:
            assert got[1] is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8], ids=["f32", "f64", "u8"])
def test_c_and_f_order_give_identical_bits(dtype):
    # Both orders pack the same float64 tile (F-ordered float32 through a register transpose), so the
    # sums run in the same order. 301 x 37: full tiles, a short last tile and a partial column block.
    X, y, w, coef, b, x_scale = problem(301, 37, 10, dtype, "C")
    c_order = ops.logistic_loss_gradient(X, y, w, coef, b, x_scale=x_scale)
    f_order = ops.logistic_loss_gradient(np.asfortranarray(X), y, w, coef, b, x_scale=x_scale)
    assert c_order[0] == f_order[0]
    np.testing.assert_array_equal(c_order[1], f_order[1])
    np.testing.assert_array_equal(c_order[2], f_order[2])


def test_many_slabs_of_fashion_mnist_shape():
    # 4000 rows of 784 features: several slabs of whole tiles, a short last tile, 784 = 98 vectors.
    check_loss_gradient(*problem(4003, 784, 10, np.uint8, "C"))
    check_loss_gradient(*problem(4003, 784, 10, np.float32, "F"))


@pytest.mark.parametrize("d", [8, 784, 37])
@pytest.mark.parametrize("K", [1, 10])
def test_float64_rows_read_where_they_lie(d, K):
    # C-ordered float64 X at x_scale 1 whose rows are whole vectors at every width (d = 8, 784) is used
    # as its own tile, unpacked; the short last tile of 4003 rows and d = 37 are packed as usual.
    X, y, w, coef, b, _ = problem(4003, d, K, np.float64, "C")
    check_loss_gradient(X, y, w, coef, b, 1.0)
    V, Vb = np.random.default_rng(6).normal(size=coef.shape), np.random.default_rng(7).normal(size=K)
    got = ops.logistic_hessian_product(X, w, coef, b, V, Vb)
    ref = reference.logistic_hessian_product(X, w, coef, b, V, Vb)
    assert_close(got[0], ref[0], "HV", RTOL, ATOL)
    assert_close(got[1], ref[1], "HV_intercept", RTOL, ATOL)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8], ids=["f32", "u8"])
def test_many_classes_of_linear_probe_shape(dtype):
    # K = 100 (a linear probe's class count): many class tiles, logits reduced 8 classes at a time with
    # a 4-class tail, several 32-row tiles and a short last one, a feature tail.
    check_loss_gradient(*problem(333, 70, 100, dtype, "C"))


@pytest.mark.parametrize("K", [1, 3])
def test_extreme_logits_stay_finite_and_exact(K):
    # Logits of +-1e4: exp of an unshifted logit overflows; the losses are exactly 1e4 or 0.
    X = np.array([[1.0], [-1.0], [1.0], [-1.0], [0.5]])
    coef = np.array([[1e4]]) if K == 1 else np.array([[1e4], [0.0], [-1e4]])
    y = np.array([0, 1, 1, 0, 1]) if K == 1 else np.array([0, 2, 1, 1, 2])
    loss, grad, grad_b = check_loss_gradient(X, y, None, coef, np.zeros(K), 1.0)
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and np.all(np.isfinite(grad_b))
    hv, hv_b = ops.logistic_hessian_product(X, None, coef, np.zeros(K), np.ones_like(coef), np.ones(K))
    assert np.all(np.isfinite(hv)) and np.all(np.isfinite(hv_b))


def test_int32_and_int64_labels_give_the_same_result():
    X, y, w, coef, b, x_scale = problem(301, 37, 10, np.float32, "C")
    a = ops.logistic_loss_gradient(X, y.astype(np.int64), w, coef, b, x_scale=x_scale)
    c = ops.logistic_loss_gradient(X, y.astype(np.int32), w, coef, b, x_scale=x_scale)
    d = ops.logistic_loss_gradient(X, y.astype(np.uint8), w, coef, b, x_scale=x_scale)
    for got in (c, d):
        assert got[0] == a[0]
        np.testing.assert_array_equal(got[1], a[1])
        np.testing.assert_array_equal(got[2], a[2])


def test_zero_weights_drop_rows():
    X, y, w, coef, b, x_scale = problem(301, 37, 10, np.float64, "C")
    w[100:] = 0
    full = ops.logistic_loss_gradient(X, y, w, coef, b, x_scale=x_scale)
    head = ops.logistic_loss_gradient(X[:100], y[:100], w[:100], coef, b, x_scale=x_scale)
    assert full[0] == pytest.approx(head[0], rel=1e-13)
    np.testing.assert_allclose(full[1], head[1], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("K", [1, 10])
def test_any_thread_count_gives_identical_bits(order, K, restore_threads):
    n, d = 20000, 60  # 32 slabs, and enough work for the kernel to start threads
    X, y, w, coef, b, x_scale = problem(n, d, K, np.float32, order)
    V, Vb = np.ones_like(coef), np.ones(K)
    results = []
    for threads in (1, 2, 3, 4):
        csoftmax.set_num_threads(threads)
        assert csoftmax.get_num_threads() == threads
        results.append((ops.logistic_loss_gradient(X, y, w, coef, b, x_scale=x_scale),
                        ops.logistic_hessian_product(X, w, coef, b, V, Vb, x_scale=x_scale)))
    (loss, grad, grad_b), (hv, hv_b) = results[0]
    for threads, ((loss_t, grad_t, grad_b_t), (hv_t, hv_b_t)) in zip((2, 3, 4), results[1:]):
        assert loss_t == loss, f"{threads} threads"
        for a, c in [(grad_t, grad), (grad_b_t, grad_b), (hv_t, hv), (hv_b_t, hv_b)]:
            np.testing.assert_array_equal(a, c, err_msg=f"{threads} threads")


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_x_is_read_in_place(order, dtype):
    # numpy reports its allocations to tracemalloc: a copy (or a float64 version) of X would show.
    X, y, w, coef, b, x_scale = problem(20000, 50, 10, dtype, order)
    X.flags.writeable = False  # as a read-only memmap
    tracemalloc.start()
    try:
        ops.logistic_loss_gradient(X, y, w, coef, b, x_scale=x_scale)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 4, f"{peak} bytes allocated for X of {X.nbytes}"


def good_arguments():
    X, y, w, coef, b, _ = problem(20, 4, 3, np.float32, "C")
    return dict(X=X, y=y, sample_weight=w, coef=coef, intercept=b)


BAD_LOSS_INPUTS = [
    ("X", lambda a: a["X"].astype(np.int64), TypeError, "X: expected dtype float32, float64 or uint8"),
    ("X", lambda a: a["X"].astype(">f4"), TypeError, "native byte order"),
    ("X", lambda a: a["X"][None], ValueError, "X: expected 2 dimensions"),
    ("X", lambda a: a["X"][:, ::2], ValueError, "C- or F-contiguous"),
    ("X", lambda a: a["X"][:0], ValueError, "at least one sample"),
    ("coef", lambda a: a["coef"][:, :3], ValueError, r"coef: expected shape \(n_classes or 1, 4\)"),
    ("coef", lambda a: a["coef"][0], ValueError, "coef: expected shape"),
    ("coef", lambda a: np.where(a["coef"] > 0, np.nan, a["coef"]), ValueError, "coef: contains NaN"),
    ("coef", lambda a: a["coef"].astype(int), TypeError, "coef: expected a floating-point array"),
    ("intercept", lambda a: a["intercept"][:2], ValueError, r"intercept: expected shape \(3,\)"),
    ("intercept", lambda a: np.full(3, np.inf), ValueError, "intercept: contains NaN or infinity"),
    ("y", lambda a: a["y"][:-1], ValueError, r"y: expected shape \(20,\)"),
    ("y", lambda a: a["y"].astype(float), TypeError, "y: expected integer class codes"),
    ("y", lambda a: np.where(np.arange(20) == 7, 3, a["y"]), ValueError, r"label 3 at position 7 is outside \[0, 3\)"),
    ("y", lambda a: np.where(np.arange(20) == 2, -1, a["y"]), ValueError, r"label -1 at position 2"),
    ("sample_weight", lambda a: a["sample_weight"][:5], ValueError, r"sample_weight: expected shape \(20,\)"),
    ("sample_weight", lambda a: np.full(20, np.nan), ValueError, "sample_weight: contains NaN"),
]


@pytest.mark.parametrize("name, make_bad, error, message", BAD_LOSS_INPUTS)
def test_bad_input_is_rejected_with_a_clear_error(name, make_bad, error, message):
    arguments = good_arguments()
    arguments[name] = make_bad(arguments)
    with pytest.raises(error, match=message):
        ops.logistic_loss_gradient(**arguments)


def test_binomial_labels_must_be_0_or_1():
    a = good_arguments()
    with pytest.raises(ValueError, match=r"label 2 at position \d+ is outside \[0, 2\).*binomial"):
        ops.logistic_loss_gradient(a["X"], a["y"], None, a["coef"][:1], None)


@pytest.mark.parametrize("x_scale, error", [(np.inf, ValueError), (np.nan, ValueError), ("big", TypeError)])
def test_x_scale_must_be_a_finite_number(x_scale, error):
    with pytest.raises(error, match="x_scale"):
        ops.logistic_loss_gradient(**good_arguments(), x_scale=x_scale)


def test_hessian_product_rejects_bad_directions():
    a = good_arguments()
    X, w, coef, b = a["X"], a["sample_weight"], a["coef"], a["intercept"]
    with pytest.raises(ValueError, match="V: expected coef's shape"):
        ops.logistic_hessian_product(X, w, coef, b, coef[:2], b[:2])
    with pytest.raises(ValueError, match="V_intercept: must be given exactly when intercept is"):
        ops.logistic_hessian_product(X, w, coef, b, coef, None)
    with pytest.raises(ValueError, match="V_intercept: must be given exactly when intercept is"):
        ops.logistic_hessian_product(X, w, coef, None, coef, b)
    with pytest.raises(ValueError, match="V: contains NaN"):
        ops.logistic_hessian_product(X, w, coef, b, coef * np.nan, b)


def test_the_compiled_kernel_checks_its_arguments_itself():
    # The extension must be safe without the Python checks: errors, never an out-of-bounds read.
    a = good_arguments()
    X, y, w, coef, b = a["X"], a["y"], a["sample_weight"], a["coef"], a["intercept"]
    with pytest.raises(ValueError, match=r"y: label 5 at position 0"):
        _core.logistic_loss_gradient(X, np.where(np.arange(20) == 0, 5, y), w, coef, b, 1.0)
    with pytest.raises(ValueError, match="coef: expected a C-contiguous array"):
        _core.logistic_loss_gradient(X, y, w, np.asfortranarray(coef), b, 1.0)
    with pytest.raises(ValueError, match="sample_weight: expected size 20"):
        _core.logistic_loss_gradient(X, y, w[:3], coef, b, 1.0)
    with pytest.raises(ValueError, match="coef: contains NaN"):
        _core.logistic_loss_gradient(X, y, w, coef * np.nan, b, 1.0)
    with pytest.raises(TypeError, match="X: expected dtype float32, float64 or uint8"):
        _core.logistic_loss_gradient(X.astype(np.int16), y, w, coef, b, 1.0)
    with pytest.raises(ValueError, match="X: expected a C- or F-contiguous array"):
        _core.logistic_loss_gradient(X[::2], y[::2].copy(), None, coef, b, 1.0)
    with pytest.raises(ValueError, match="V_intercept: must be given exactly when intercept is"):
        _core.logistic_hessian_product(X, w, coef, b, coef, None, 1.0)
