"""CSR arrays in memory as Batches (the scikit-learn estimator's input), cut the way the
file readers cut their input, so that training on them takes the same steps."""

from __future__ import annotations

from .batch import BATCH_ROWS, Batch


def iter_csr(indptr, ids, values, labels, weights=None, *, batch_rows: int = BATCH_ROWS,
             start_row: int = 0):
    """Batches of batch_rows rows (the last one fewer) from row start_row on.

    # Assumes: a valid CSR (indptr int64 from 0, non-decreasing, ending at len(ids)), ids
    #          int64 >= 0, values float64 finite; the arrays are not changed while read.
    Batch.end_offset / end_line are the rows consumed from the start (a resume position).
    """
    n = len(labels)
    for r0 in range(start_row, n, batch_rows):
        r1 = min(n, r0 + batch_rows)
        a, b = int(indptr[r0]), int(indptr[r1])
        ip = indptr[r0:r1 + 1] - a
        bid = ids[a:b]
        yield Batch(labels=labels[r0:r1], indptr=ip, ids=bid, values=values[a:b],
                    max_id=int(bid.max(initial=-1)), end_offset=r1, end_line=r1, raw_bytes=0,
                    weights=None if weights is None else weights[r0:r1])
