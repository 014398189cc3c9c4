"""Crosses of feature ids (`--interactions 3:7,5:*` on libsvm and sparse Parquet), the id
counterpart of VW's `-q`: new features appended to CSR rows, inside Numba.

Spec (stable across processes, machines and versions):

- A cross is a set of two or more distinct ids. Its id is
  `2**61 | (h & (2**61 - 1))`, where h = CROSS_SEED, then for each member m in ascending
  order h = mix64(h ^ m) (mix64: splitmix64's finalizer; all arithmetic mod 2**64). So a
  cross id lies in [2**61, 2**62): at or above 2**bits, it goes through the table's slot
  hashing, and it is below 2**62 like every id. `3:7` and `7:3` are one feature.
- Its value is the product of the members' values, multiplied in ascending id order.
- An interaction lists ids and at most one `*`. Without `*`, a row holding every listed
  id gets their cross. With `*`, a row holding every listed id gets one cross per other
  id j of the row (j not listed): the listed ids and j. Only the row's own features are
  crossed, never the crosses.
- A row's crosses are merged into it so that it stays canonical (ids strictly increasing,
  no zero value): a cross produced twice in a row (`3:7` and `3:*`) counts once; a cross
  whose id equals one of the row's own ids (possible only for ids >= 2**61) is added to
  it; a product that underflows to 0 is dropped.

Every cache=True kernel here calls only helpers defined in this file (see libsvm.py).
"""

import numpy as np
from numba import njit

__all__ = [  # the names ftrl_cli.kernels re-exports
    "CROSS_SEED", "CROSS_BASE", "ERR_CROSS_UNSORTED", "ERR_CROSS_NONFINITE", "cross_id", "cross_rows",
]

CROSS_SEED = 0x9E3779B97F4A7C15  # splitmix64's increment: any fixed odd constant would do
CROSS_BASE = 1 << 61  # cross ids lie in [CROSS_BASE, 2 * CROSS_BASE)
ERR_CROSS_UNSORTED = 1  # a row's ids are not strictly increasing (err_pos: the entry)
ERR_CROSS_NONFINITE = 2  # a cross's value overflows (err_pos: the row, err_spec: the spec)

_LOW = np.uint64(CROSS_BASE - 1)
_TOP = np.uint64(CROSS_BASE)
_SEED = np.uint64(CROSS_SEED)


@njit(cache=True, inline="always")
def _mix64(x):
    # splitmix64's finalizer (the same bijection as kernels/ftrl.py's, copied: see above)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, inline="always")
def _step(h, m):
    return _mix64(h ^ np.uint64(m))


@njit(cache=True, inline="always")
def _finish(h):
    return np.int64(_TOP | (h & _LOW))


@njit(cache=True)
def cross_id(members):
    """The id of the cross of `members` (int64, ascending, distinct; module doc).

    # Assumes: members sorted ascending, each in [0, 2**62).
    """
    h = _SEED
    for m in members:
        h = _step(h, m)
    return _finish(h)


@njit(cache=True, inline="always")
def _find(ids, a, b, t):
    # position of t in the strictly increasing ids[a:b], or -1 (binary search)
    lo = a
    hi = b
    while lo < hi:
        mid = (lo + hi) >> 1
        if ids[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    if lo < b and ids[lo] == t:
        return lo
    return -1


@njit(cache=True, nogil=True)
def cross_rows(indptr, ids, values, mptr, members, wild):
    """The rows of a CSR batch with their crosses merged in (module doc).

    # Assumes: indptr int64[n + 1], non-decreasing, within ids/values (same length), as
    #          every reader yields (checked here: ids strictly increasing in each row);
    #          spec s lists members[mptr[s]:mptr[s+1]] (int64, ascending, distinct, in
    #          [0, 2**62)) and wild[s] = 1 when it also has `*`; mptr[s+1] - mptr[s] +
    #          wild[s] >= 2.
    Returns (err, err_pos, err_spec, out_indptr, out_ids, out_values, max_id): err is 0, or
    ERR_CROSS_UNSORTED / ERR_CROSS_NONFINITE (err_spec -1: a cross added to an own id),
    with the output arrays then empty.
    out_indptr starts at 0.
    """
    n = len(indptr) - 1
    nspec = len(wild)
    empty_i = np.zeros(0, np.int64)
    empty_f = np.zeros(0, np.float64)
    # pass 1: check the rows, count each row's crosses (before removing repeats)
    total = 0
    most = 0
    most_members = 1
    for s in range(nspec):
        most_members = max(most_members, mptr[s + 1] - mptr[s] + 1)
    for r in range(n):
        a = indptr[r]
        b = indptr[r + 1]
        for k in range(a + 1, b):
            if ids[k] <= ids[k - 1]:
                return 1, k, 0, empty_i, empty_i, empty_f, np.int64(-1)
        c = 0
        for s in range(nspec):
            ok = True
            for q in range(mptr[s], mptr[s + 1]):
                if _find(ids, a, b, members[q]) < 0:
                    ok = False
                    break
            if ok:
                c += (b - a) - (mptr[s + 1] - mptr[s]) if wild[s] else 1
        total += c
        most = max(most, c)
    out_indptr = np.empty(n + 1, np.int64)
    out_ids = np.empty(indptr[n] - indptr[0] + total, np.int64)
    out_values = np.empty(len(out_ids), np.float64)
    cid = np.empty(most, np.int64)  # one row's crosses
    cval = np.empty(most, np.float64)
    mem = np.empty(most_members, np.int64)  # one cross's members, ascending
    max_id = np.int64(-1)
    o = 0
    out_indptr[0] = 0
    # pass 2: each row's crosses, sorted and merged into the row
    for r in range(n):
        a = indptr[r]
        b = indptr[r + 1]
        c = 0
        for s in range(nspec):
            lo = mptr[s]
            hi = mptr[s + 1]
            ok = True
            for q in range(lo, hi):
                if _find(ids, a, b, members[q]) < 0:
                    ok = False
                    break
            if not ok:
                continue
            if not wild[s]:
                h = _SEED
                v = 1.0
                for q in range(lo, hi):
                    h = _step(h, members[q])
                    v *= values[_find(ids, a, b, members[q])]
                if not np.isfinite(v):
                    return 2, r, s, empty_i, empty_i, empty_f, np.int64(-1)
                cid[c] = _finish(h)
                cval[c] = v
                c += 1
                continue
            for k in range(a, b):
                j = ids[k]
                listed = False
                for q in range(lo, hi):
                    if members[q] == j:
                        listed = True
                        break
                if listed:
                    continue
                # members of this cross in ascending order: the listed ids with j inserted
                nm = 0
                placed = False
                for q in range(lo, hi):
                    if not placed and j < members[q]:
                        mem[nm] = j
                        nm += 1
                        placed = True
                    mem[nm] = members[q]
                    nm += 1
                if not placed:
                    mem[nm] = j
                    nm += 1
                h = _SEED
                v = 1.0
                for q in range(nm):
                    h = _step(h, mem[q])
                    v *= values[k] if mem[q] == j else values[_find(ids, a, b, mem[q])]
                if not np.isfinite(v):
                    return 2, r, s, empty_i, empty_i, empty_f, np.int64(-1)
                cid[c] = _finish(h)
                cval[c] = v
                c += 1
        # the crosses by id (a repeated cross has one value: which copy is kept is moot)
        if c <= 16:  # (most rows: no allocation)
            for x in range(1, c):
                ti = cid[x]
                tv = cval[x]
                y = x - 1
                while y >= 0 and cid[y] > ti:
                    cid[y + 1] = cid[y]
                    cval[y + 1] = cval[y]
                    y -= 1
                cid[y + 1] = ti
                cval[y + 1] = tv
        else:
            order = np.argsort(cid[:c])
            cid[:c] = cid[:c][order]
            cval[:c] = cval[:c][order]
        # merge: the row's own (ascending) and the crosses (ascending, repeats skipped)
        k = a
        i = 0
        while k < b or i < c:
            if i < c and i > 0 and cid[i] == cid[i - 1]:
                i += 1
                continue
            if i >= c or (k < b and ids[k] < cid[i]):
                t = ids[k]
                v = values[k]
                k += 1
            elif k >= b or cid[i] < ids[k]:
                t = cid[i]
                v = cval[i]
                i += 1
            else:  # a cross id equal to one of the row's own: one entry, the sum
                t = ids[k]
                v = values[k] + cval[i]
                if not np.isfinite(v):
                    return 2, r, -1, empty_i, empty_i, empty_f, np.int64(-1)
                k += 1
                i += 1
            if v != 0.0:
                out_ids[o] = t
                out_values[o] = v
                o += 1
                if t > max_id:
                    max_id = t
        out_indptr[r + 1] = o
    return 0, 0, 0, out_indptr, out_ids[:o], out_values[:o], max_id
