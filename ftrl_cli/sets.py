"""Sorted unique values, unions and unique rows of integer arrays, found by sorting.

np.unique without return_index/return_counts finds integers' unique values with a hash
table since NumPy 2.3, then sorts them; with many distinct values that is ~50x slower than
sorting them outright here (1 M int64: 0.97 s against 0.02 s; np.union1d and
np.unique(axis=0) go the same way). These give np.unique's results, in its order.
"""

from __future__ import annotations

import numpy as np


def unique(a) -> np.ndarray:
    """np.unique(a) for a 1-D array: its distinct values, sorted."""
    s = np.sort(np.asarray(a).ravel())
    if len(s) < 2:
        return s
    keep = np.empty(len(s), bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def union(*arrays) -> np.ndarray:
    """np.union1d, of any number of 1-D arrays."""
    return unique(np.concatenate([np.asarray(a).ravel() for a in arrays]))


def _row_keys(a: np.ndarray) -> np.ndarray:
    """One bytes key per row of a 2-D int64 array whose byte order is the rows' order (first
    column, then the second, ...): each number with its sign bit flipped, big-endian."""
    flipped = (np.ascontiguousarray(a, np.int64).view(np.uint64) ^ np.uint64(1 << 63)).astype(">u8")
    return flipped.view(np.dtype((np.void, 8 * a.shape[1]))).ravel()


def _distinct(s: np.ndarray) -> np.ndarray:
    keep = np.empty(len(s), bool)
    keep[0] = True
    np.any(s[1:] != s[:-1], axis=1, out=keep[1:])
    return s[keep]


def unique_rows(a) -> np.ndarray:
    """np.unique(a, axis=0) for a 2-D int64 array: its distinct rows, sorted by the first
    column, then the second, ..."""
    a = np.asarray(a)
    if len(a) < 2:
        return a.copy()
    return _distinct(a[np.argsort(_row_keys(a), kind="stable")])
