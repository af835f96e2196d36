"""The epoch orders of the training iterator: permutations, reproducible, uniform."""

import itertools

import numpy as np
import pytest

from csoftmax.data._batching import fill_permutation


@pytest.mark.parametrize("n", [0, 1, 2, 3, 1000, 60000])
def test_every_index_exactly_once(n):
    order = np.full(n, -1, dtype=np.int64)
    fill_permutation(order, 12345)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


def test_same_seed_same_order_other_seed_other_order():
    a, b, c = (np.empty(1000, dtype=np.int64) for _ in range(3))
    fill_permutation(a, 7)
    fill_permutation(b, 7)
    fill_permutation(c, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_all_orders_equally_likely():
    # 4! = 24 orders over 48,000 seeds: each should come up ~2,000 times. A chi-square statistic
    # above 60 (23 degrees of freedom) has probability < 1e-4 for a uniform shuffle.
    counts = dict.fromkeys(itertools.permutations(range(4)), 0)
    order = np.empty(4, dtype=np.int64)
    for seed in range(48000):
        fill_permutation(order, seed)
        counts[tuple(order.tolist())] += 1
    expected = 48000 / 24
    chi2 = sum((count - expected) ** 2 / expected for count in counts.values())
    assert chi2 < 60, counts
