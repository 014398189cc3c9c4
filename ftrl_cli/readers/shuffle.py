"""`--shuffle` on text: the rows of a libsvm file shuffled in blocks of --shuffle-buffer rows.

A text file has no index to seek by, so its rows cannot be permuted as a whole without
holding it all. Instead the file is cut into blocks of N rows (N = --shuffle-buffer,
rounded up to a multiple of --batch-size), counted from its first row; each block is read
whole, permuted by a generator seeded with (seed, pass, file, the block's first byte), and
yielded as batches. Memory is bounded by a block (and the read-ahead's next one).

Resuming is exact with two numbers, not the block's contents: a batch from inside a block
reports the block's start as its position (end_offset/end_line) and how many of the
block's rows have been yielded (end_block_row); a resume reads the block again from its
start, permutes it the same way and skips those rows. Only the batch that ends a block
reports the block's end.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import Config


def block_rows(config: Config) -> int:
    """Rows of a shuffle block: whole optimizer batches, so no step spans two blocks."""
    B = config.batch_size
    return -(-config.shuffle_buffer // B) * B


def take_rows(b, order: np.ndarray):
    """The batch's rows in `order` (a permutation), as new arrays."""
    lengths = np.diff(b.indptr)[order]
    indptr = np.zeros(len(order) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    starts = b.indptr[:-1][order]
    at = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return dataclasses.replace(b, labels=b.labels[order], indptr=indptr, ids=b.ids[at], values=b.values[at],
                               weights=None if b.weights is None else b.weights[order],
                               ids_text=None if b.ids_text is None else [b.ids_text[i] for i in order])


def shuffled_blocks(blocks, seed, *, start_offset: int, start_line: int, block_row: int, batch_rows: int):
    """Batches of at most batch_rows rows (a multiple of the batch size) from `blocks`, each
    block's rows permuted (module doc). blocks: the file's batches of exactly one block each
    (the last may be short), read from start_offset/start_line, where a block starts.
    seed: (seed, pass, file). block_row: rows of the first block yielded before (resume)."""
    offset, line, skip = start_offset, start_line, block_row
    try:
        for blk in blocks:
            rng = np.random.default_rng([*seed, offset])
            blk = take_rows(blk, rng.permutation(blk.rows))
            n = blk.rows
            for lo in range(skip, n, batch_rows):
                hi = min(lo + batch_rows, n)
                p0, p1 = int(blk.indptr[lo]), int(blk.indptr[hi])
                ids = blk.ids[p0:p1]
                last = hi == n
                yield dataclasses.replace(
                    blk, labels=blk.labels[lo:hi], indptr=blk.indptr[lo:hi + 1] - p0, ids=ids,
                    values=blk.values[p0:p1], max_id=int(ids.max(initial=-1)),
                    weights=None if blk.weights is None else blk.weights[lo:hi],
                    ids_text=None if blk.ids_text is None else blk.ids_text[lo:hi],
                    end_offset=blk.end_offset if last else offset, end_line=blk.end_line if last else line,
                    end_block_row=0 if last else hi)
            offset, line, skip = blk.end_offset, blk.end_line, 0
    finally:  # (closing this closes the reader)
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
