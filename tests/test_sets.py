"""ftrl_cli.sets against NumPy's own np.unique / np.union1d / np.unique(axis=0) (the oracle:
the same values, in the same order), on random arrays of every size and sign."""

import numpy as np
import pytest

from ftrl_cli import sets


@pytest.mark.parametrize("seed", range(40))
def test_unique_union_and_rows_are_numpy_s(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(0, 60)), int(rng.integers(0, 60))
    span = [3, 1000, 1 << 62][seed % 3]
    a, b = rng.integers(-span, span, n), rng.integers(-span, span, m)
    assert np.array_equal(sets.unique(a), np.unique(a)) and sets.unique(a).dtype == a.dtype
    assert np.array_equal(sets.union(a, b), np.union1d(a, b))
    rows = rng.integers(-span, span, (n, 2))
    if seed % 2:
        rows[:, 0] %= 4  # (ties in the first column: the second decides)
    assert np.array_equal(sets.unique_rows(rows), np.unique(rows, axis=0).reshape(-1, 2))


def test_unique_rows_orders_negative_and_huge_numbers_as_numbers():
    rows = np.array([[1, -1], [-(1 << 62), 5], [1, -(1 << 62)], [1, -1], [0, 1 << 62]], np.int64)
    assert sets.unique_rows(rows).tolist() == [[-(1 << 62), 5], [0, 1 << 62], [1, -(1 << 62)], [1, -1]]
