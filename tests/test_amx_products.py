"""The large-vocabulary kernel's products on AMX tiles (kernels/amx_gemm.hpp), through
csoftmax._core.amx_product, against float64: float32-accurate for every layout and edge of the tiles
(where two bf16 parts, or a careless split, would be 2^8 times worse), for rows and columns of any
scale, and refused (the FMA sgemm runs instead) where the tiles cannot hold the values.

They skip on a machine, or in a run (CSOFTMAX_AMX=0), without AMX: there the kernel never takes
this path. The large-vocabulary tests (test_tiled_linear_cross_entropy.py, test_large_vocab_grids.py)
run on it wherever it is used.
"""

import numpy as np
import pytest

import csoftmax
from csoftmax import _core

INFO = csoftmax.build_info()
pytestmark = pytest.mark.skipif(not INFO["amx"], reason=f"this process does not run AMX: {INFO['amx_reason']}")

U = 2.0 ** -24  # float32's unit roundoff
# Observed: at most 3 u sum_k |a_ik b_kj| on random data (NumPy's float32 matmul: 3.2 u). A split
# into two bf16 parts would leave about 2^-16 = 256 u.
BOUND = 8 * U
# A result in float32's subnormal range is held to its spacing, 2^-149, as any float32 result is
# (rounded once by the sum, once as it is scaled back)
SUBNORMAL_FLOOR = 2.0 ** -148
MAX_DEPTH = 2048  # kAmxMaxDepth


def product(A, B, a_transposed=False, b_transposed=False):
    a = np.ascontiguousarray(A.T) if a_transposed else np.ascontiguousarray(A)
    b = np.ascontiguousarray(B.T) if b_transposed else np.ascontiguousarray(B)
    return _core.amx_product(a, b, a_transposed=a_transposed, b_transposed=b_transposed)


def assert_float32_accurate(got, A, B, floor=0.0):
    assert got is not None, "the AMX products refused finite values they hold"
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    exact, magnitude = A64 @ B64, np.abs(A64) @ np.abs(B64)
    excess = np.abs(got - exact) - (BOUND * magnitude + floor + SUBNORMAL_FLOOR)
    worst = np.unravel_index(np.argmax(excess), excess.shape)
    assert excess[worst] <= 0, (f"element {worst}: {got[worst]!r} against {exact[worst]!r}, error "
                                f"{abs(got[worst] - exact[worst]) / magnitude[worst] / U:.1f} u sum|a b|")


# every edge: one tile, partial tiles of rows / columns / a step of 32 k, odd blocks, the deepest
SHAPES = [(1, 1, 1), (16, 16, 32), (17, 33, 31), (31, 15, 33), (64, 48, 70), (50, 300, 768), (33, 17, MAX_DEPTH)]


@pytest.mark.parametrize("M, N, K", SHAPES)
@pytest.mark.parametrize("a_transposed", [False, True], ids=["A", "A^T"])
@pytest.mark.parametrize("b_transposed", [False, True], ids=["B", "B^T"])
def test_products_are_float32_accurate(M, N, K, a_transposed, b_transposed):
    rng = np.random.default_rng([M, N, K])
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    assert_float32_accurate(product(A, B, a_transposed, b_transposed), A, B)


def test_rows_and_columns_of_any_scale():
    # each row of A and column of B times its own power of two, 2^-120 .. 2^120 (products as small as
    # 2^-240 and as large as 2^120 in float64): the tiles see each line scaled to [1, 2)
    rng = np.random.default_rng(5)
    A = rng.standard_normal((40, 100)) * 2.0 ** rng.integers(-120, 60, 40)[:, None]
    B = rng.standard_normal((100, 24)) * 2.0 ** rng.integers(-120, 60, 24)[None, :]
    A, B = A.astype(np.float32), B.astype(np.float32)
    for a_transposed in (False, True):
        assert_float32_accurate(product(A, B, a_transposed, not a_transposed), A, B)


def test_a_huge_row_times_a_tiny_column_stays_finite():
    # rows near float32's largest, columns near its smallest normal: each product is about 1, and the
    # two scales must not be applied one after the other (2^126 x the sum would overflow first)
    rng = np.random.default_rng(11)
    A = (rng.standard_normal((8, 100)) * 2.0 ** 125).astype(np.float32)
    B = (rng.standard_normal((100, 8)) * 2.0 ** -125).astype(np.float32)
    got = product(A, B)
    assert np.all(np.isfinite(got))
    assert_float32_accurate(got, A, B)


def test_zero_lines_give_zeros():
    rng = np.random.default_rng(6)
    A = rng.standard_normal((20, 40), dtype=np.float32)
    B = rng.standard_normal((40, 20), dtype=np.float32)
    A[3] = 0.0
    B[:, 7] = 0.0
    got = product(A, B)
    assert np.all(got[3] == 0.0) and np.all(got[:, 7] == 0.0)
    assert_float32_accurate(got, A, B)


def test_values_far_below_their_lines_largest_keep_an_absolute_floor():
    # a row whose values span 2^0 .. 2^-140: those below 2^-100 of the row's largest may lose their low
    # parts (AMX reads subnormal bf16 as zero), an error below 2^-100 max|a_i.| max|b_.j| per term
    rng = np.random.default_rng(7)
    K = 64
    A = (rng.standard_normal((16, K)) * 2.0 ** -rng.integers(0, 140, (16, K))).astype(np.float32)
    B = rng.standard_normal((K, 16), dtype=np.float32)
    floor = K * 2.0 ** -100 * np.abs(A).max(axis=1)[:, None] * np.abs(B).max(axis=0)[None, :]
    assert_float32_accurate(product(A, B), A, B, floor=floor)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", ["A", "B"])
def test_non_finite_values_are_refused(bad, where):
    rng = np.random.default_rng(8)
    A = rng.standard_normal((20, 40), dtype=np.float32)
    B = rng.standard_normal((40, 20), dtype=np.float32)
    (A if where == "A" else B)[5, 6] = bad
    assert product(A, B) is None
    assert product(A, B, True, True) is None


def test_a_line_whose_largest_value_is_subnormal_is_refused():
    rng = np.random.default_rng(9)
    A = rng.standard_normal((20, 40), dtype=np.float32)
    B = rng.standard_normal((40, 20), dtype=np.float32)
    A[2] = 0.0
    A[2, 3] = np.float32(1e-40)  # the scale that would put it in [1, 2) is not a float
    assert product(A, B) is None
    A[2, 3] = np.float32(2.0 ** -126)  # the smallest normal float is held
    assert_float32_accurate(product(A, B), A, B)


def test_depth_past_the_limit_is_refused():
    rng = np.random.default_rng(10)
    A = rng.standard_normal((4, MAX_DEPTH + 1), dtype=np.float32)
    B = rng.standard_normal((MAX_DEPTH + 1, 4), dtype=np.float32)
    assert product(A, B) is None


def test_shapes_are_checked():
    A = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="B: expected size 4 along axis 0"):
        _core.amx_product(A, np.zeros((5, 2), np.float32))
    with pytest.raises(TypeError, match="A: expected dtype float32"):
        _core.amx_product(A.astype(np.float64), np.zeros((4, 2), np.float32))
