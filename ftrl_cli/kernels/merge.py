"""Merging the states that K partitions trained from one global state (parallel training,
ftrl_cli/parallel.py; the rules are written down in docs/parallel.md).

Only online FTRL states are merged: rows of (z, n). Per coordinate, with base row
(z0, n0) and the rows (zk, nk) of the partitions that changed it, in partition order:
  one partition   its row is copied (z0 + (zk - z0) need not be zk in floating point)
  sum             z0 + sum_k (zk - z0),            n likewise
  avg             z0 + sum_k (zk - z0) / m         (m: the partitions that changed it)
  weighted        z0 + sum_k (dn_k / S) (zk - z0), n likewise, dn_k = nk - n0, S = sum_k dn_k;
                  S == 0 (z moved, n did not: shrinkage, or g^2 lost to rounding): avg
The sums run in partition order, in float64; the result is rounded once to the table's dtype.
"""

import numpy as np
from numba import njit

__all__ = ["MERGE_WEIGHTED", "MERGE_AVG", "MERGE_SUM", "merge_rows", "mark_ids", "changed_marked"]

MERGE_WEIGHTED, MERGE_AVG, MERGE_SUM = 0, 1, 2
_COL_N = 1  # (z is column 0, n column 1: model.layout for online FTRL)


@njit(cache=True, nogil=True)
def merge_rows(base, fresh, slots, rows, order, rule, out):
    """Write the merged row of every slot in `slots` into out.

    # Assumes: base (D0, C) and out (D, C), D >= D0, C == 2 (z, n); out[:D0] holds base and
    # out[D0:] fresh rows; fresh (C,) is the row of an untouched slot; slots (m,) int64, each in
    # [0, D), listed partition by partition (at most once per partition); rows (m, C) the
    # partitions' rows for those slots; order a stable argsort of slots (equal slots keep
    # partition order); rule one of MERGE_*.
    """
    m = len(order)
    d0 = base.shape[0]
    ncol = out.shape[1]
    i = 0
    while i < m:
        s = slots[order[i]]
        j = i + 1
        while j < m and slots[order[j]] == s:
            j += 1
        if j - i == 1:  # one partition changed it: its row, as it is
            for c in range(ncol):
                out[s, c] = rows[order[i], c]
        else:
            n0 = np.float64(base[s, _COL_N]) if s < d0 else np.float64(fresh[_COL_N])
            total = 0.0
            for t in range(i, j):
                total += np.float64(rows[order[t], _COL_N]) - n0
            weighted = rule == MERGE_WEIGHTED and total > 0.0
            for c in range(ncol):
                b = np.float64(base[s, c]) if s < d0 else np.float64(fresh[c])
                acc = 0.0
                for t in range(i, j):
                    r = order[t]
                    d = np.float64(rows[r, c]) - b
                    if weighted:
                        acc += ((np.float64(rows[r, _COL_N]) - n0) / total) * d
                    else:
                        acc += d
                if rule == MERGE_AVG or (rule == MERGE_WEIGHTED and not weighted):
                    acc = acc / (j - i)
                out[s, c] = b + acc
        i = j


# ---------------------------------------------------------------------------------------
# what a partition changed: only the slots its rows touched are compared
# ---------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def mark_ids(ids, cap, mark):
    """mark[i] = 1 for every id i < cap (its own slot); returns how many ids are >= cap
    (hashed: the caller marks their slots).

    # Assumes: len(mark) > every id < cap in ids (the caller grows mark like the table).
    """
    hashed = 0
    for k in range(len(ids)):
        i = ids[k]
        if i >= cap:
            hashed += 1
        elif i >= 0:
            mark[i] = 1
    return hashed


@njit(cache=True, nogil=True)
def changed_marked(table, base, fresh, mark, out):
    """out[:m] = the marked slots whose row of `table` differs, bit for bit, from base's
    row (from `fresh` past base's end), in slot order; returns m.

    # Assumes: table (D, C) and base (D0, C) integer views of the same float dtype,
    # D0 <= D; fresh (C,) the same view of the fresh row; len(mark) >= D only matters up to
    # D (slots past len(mark) were not touched); len(out) >= D.
    """
    d = min(table.shape[0], len(mark))
    d0 = base.shape[0]
    ncol = table.shape[1]
    m = 0
    for s in range(d):
        if mark[s] == 0:
            continue
        for c in range(ncol):
            b = base[s, c] if s < d0 else fresh[c]
            if table[s, c] != b:
                out[m] = s
                m += 1
                break
    return m
