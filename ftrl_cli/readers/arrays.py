"""CSR arrays in memory as Batches (the scikit-learn estimator's input), cut the way the
file readers cut their input, so that training on them takes the same steps."""

from __future__ import annotations

import numpy as np

from .batch import BATCH_ROWS, Batch


def iter_csr(indptr, ids, values, labels, weights=None, *, batch_rows: int = BATCH_ROWS,
             start_row: int = 0, order=None):
    """Batches of batch_rows rows (the last one fewer) from row start_row on; with order
    (a permutation of the rows), of the rows in that order.

    # Assumes: a valid CSR (indptr int64 from 0, non-decreasing, ending at len(ids)), ids
    #          int64 >= 0, values float64 finite; the arrays are not changed while read.
    Batch.end_offset / end_line are the rows consumed from the start (a resume position).
    """
    if order is not None:
        indptr, ids, values, labels, weights = permute_rows(order, indptr, ids, values, labels, weights)
    n = len(labels)
    for r0 in range(start_row, n, batch_rows):
        r1 = min(n, r0 + batch_rows)
        a, b = int(indptr[r0]), int(indptr[r1])
        ip = indptr[r0:r1 + 1] - a
        bid = ids[a:b]
        yield Batch(labels=labels[r0:r1], indptr=ip, ids=bid, values=values[a:b],
                    max_id=int(bid.max(initial=-1)), end_offset=r1, end_line=r1, raw_bytes=0,
                    weights=None if weights is None else weights[r0:r1])


def permute_rows(order, indptr, ids, values, labels, weights=None):
    """The CSR rows (and their labels and weights) in `order`, as new arrays."""
    order = np.asarray(order, np.int64)
    lengths = np.diff(indptr)[order]
    new_indptr = np.zeros(len(order) + 1, np.int64)
    np.cumsum(lengths, out=new_indptr[1:])
    # entry k of new row i is old entry indptr[order[i]] + (k - new_indptr[i])
    take = np.repeat(indptr[:-1][order] - new_indptr[:-1], lengths) + np.arange(new_indptr[-1])
    return (new_indptr, ids[take], values[take], labels[order],
            None if weights is None else weights[order])
