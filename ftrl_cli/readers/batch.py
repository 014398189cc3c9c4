"""The CSR `Batch` every reader yields, and `prefetch`, which reads the next batches in a
thread while the current one trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BATCH_ROWS = 1 << 14  # rows per batch: small enough that read-ahead costs little memory


@dataclass
class Batch:
    """A CSR batch. Arrays are views into reused buffers: valid until the next batch."""

    labels: np.ndarray  # float64[rows], as written
    indptr: np.ndarray  # int64[rows + 1]
    ids: np.ndarray  # int64[nnz], feature ids as written
    values: np.ndarray  # float64[nnz]
    max_id: int  # -1 when the batch has no features
    end_offset: int  # bytes of (decompressed) input consumed after this batch
    end_line: int  # lines consumed after this batch
    raw_bytes: int  # bytes of the file on disk read so far (progress)
    weights: np.ndarray | None = None  # float64[rows] importance weights; None = all 1
    ids_text: list | None = None  # per row: the text after '#' (libsvm) or the id column
    end_block_row: int = 0  # --shuffle on text: rows of the block at end_offset/end_line already yielded

    @property
    def rows(self) -> int:
        return len(self.labels)


def _own(b: Batch) -> Batch:
    """A copy of a batch that no longer shares the reader's reused buffers."""
    return Batch(b.labels.copy(), b.indptr.copy(), b.ids.copy(), b.values.copy(), b.max_id, b.end_offset,
                 b.end_line, b.raw_bytes, None if b.weights is None else b.weights.copy(), b.ids_text,
                 b.end_block_row)


def prefetch(batches, depth: int = 2, copy: bool = True):
    """Iterate `batches` in a background thread, `depth` batches ahead: the Numba parser
    releases the GIL, so parsing the next batch overlaps training on this one. Order and
    content are unchanged; an exception in the reader is raised here, in order.
    copy=False when each batch already owns its arrays (iter_libsvm(fresh=True), Parquet)."""
    import queue
    import threading

    q = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work():
        try:
            for b in batches:
                if stop.is_set():
                    return
                q.put(_own(b) if copy else b)
            q.put(done)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, name="ftrl-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)
