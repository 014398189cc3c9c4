"""The inputs of a run cut into K partitions (parallel training, ftrl_cli/parallel.py), and
the Batches of one partition from a position.

A partition is a contiguous stretch of the inputs in order: a list of Pieces, each a whole
file or a part of one. Where the cuts fall depends only on the inputs and K:
- with at least K inputs, partitions are runs of whole files, balanced by size;
- with fewer, files are cut: plain libsvm text at line starts (newline-aligned byte
  ranges), sparse Parquet at row-group boundaries (in rows); compressed text is never cut
  (it cannot be read from the middle), and neither is text read with --on-bad-line
  skip|warn (a skipped line is counted by the one partition that owns the whole file).
A partition may be empty (a single compressed file and K = 2): it then trains nothing.

A Position is where a partition's next round starts: piece, offset (bytes for text, rows
for Parquet), line, and rows to skip from there. It moves only by whole rows.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from ..config import Config
from ..errors import ConfigError, DataError
from . import location
from .batch import Batch
from .errors import open_data
from .source import input_format, open_batches
from .stream import InputStream

FINER = (128, 1)  # batch sizes that find the last row before a text cut


@dataclass(frozen=True)
class Piece:
    """A file, or rows start..stop of it (stop None: to its end); start is a byte offset
    at a line start for text, a row for Parquet. line: newlines before start (None: not
    counted yet; only error messages need it). index: the input's place in the run."""

    path: str
    fmt: str  # libsvm | parquet-sparse
    start: int = 0
    stop: int | None = None
    line: int | None = 0
    index: int = 0


@dataclass
class Position:
    piece: int = 0
    offset: int = 0
    line: int = 0
    skip: int = 0  # rows to drop from (offset, line) on

    @classmethod
    def start(cls, pieces, skip: int = 0) -> Position:
        p = pieces[0] if pieces else None
        return cls(0, p.start if p else 0, (p.line or 0) if p else 0, skip)


# ---------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------

def plan(paths: list, indices: list, config: Config, k: int) -> list:
    """The K partitions of `paths` (in this pass's order; indices: their places in the
    run's input list) as lists of Pieces."""
    units = []  # per input: (path, fmt, size, cut points [(weight offset, position)], whole)
    for path, index in zip(paths, indices):
        fmt = input_format(path, config)
        if fmt not in ("libsvm", "parquet-sparse"):
            raise ConfigError(f"{path}: parallel training reads libsvm text and sparse Parquet, not {fmt}; "
                              f"convert it first (ftrl convert {path} data.parquet)")
        units.append((path, fmt, location.size(path) or 0, index))
    total = sum(u[2] for u in units)
    if len(units) >= k:
        cuts = _file_cuts([u[2] for u in units], k)
        return [[Piece(u[0], u[1], index=u[3]) for u in units[a:b]]
                for a, b in zip(cuts[:-1], cuts[1:])]
    # fewer inputs than partitions: cut inside files
    points = [(0, 0)]  # (input, position in it)
    starts = np.cumsum([0] + [u[2] for u in units])
    for j in range(1, k):
        target = total * j / k
        i = min(int(np.searchsorted(starts, target, side="right")) - 1, len(units) - 1)
        pos = _snap(units[i], target - starts[i], config)
        if pos >= _end(units[i]):
            i, pos = i + 1, 0
        points.append(max(points[-1], (i, pos)))
    points.append((len(units), 0))
    parts = []
    for (i0, p0), (i1, p1) in zip(points[:-1], points[1:]):
        pieces = []
        for i in range(i0, min(i1 + 1, len(units))):
            start = p0 if i == i0 else 0
            stop = p1 if i == i1 else None
            if stop is not None and stop <= start:
                continue
            u = units[i]
            pieces.append(Piece(u[0], u[1], start, stop, 0 if start == 0 else None, u[3]))
        parts.append(pieces)
    return parts


def _file_cuts(sizes, k):
    """Input boundaries 0 = c0 < c1 < ... < ck = n nearest to equal shares of the bytes."""
    n = len(sizes)
    cum = np.cumsum([0] + list(sizes))
    cuts = [0]
    for j in range(1, k):
        target = cum[-1] * j / k
        c = int(np.argmin(np.abs(cum - target)))
        cuts.append(min(max(c, cuts[-1] + 1), n - (k - j)))
    return cuts + [n]


def _compressed(unit) -> bool:
    if unit[1] != "libsvm":
        return False
    with InputStream(unit[0]) as s:
        return s.kind != "text"


def _end(unit) -> int:
    """The last position of an input: bytes for text, rows for Parquet."""
    return _row_groups(unit[0])[-1] if unit[1] == "parquet-sparse" else unit[2]


def _snap(unit, local: float, config: Config) -> int:
    """A cut near `local` bytes into an input, where that input can be cut."""
    path, fmt, size, _ = unit
    if fmt == "parquet-sparse":  # the row-group boundary nearest in bytes (rows stand for bytes)
        bounds = _row_groups(path)
        want = local / size * bounds[-1] if size else 0
        return int(bounds[int(np.argmin(np.abs(np.asarray(bounds) - want)))])
    if _compressed(unit) or config.on_bad_line != "fail":
        return 0 if local < size / 2 else size
    return _line_start(path, int(local))


def _row_groups(path) -> list:
    """Row offsets of a Parquet file's row groups, and its row count last."""
    from .parquet_sparse import own_file

    own = own_file(path)
    if own is not None:  # (a file convert wrote: its footer read without pyarrow)
        with own:
            rows = list(own.row_group_rows)
    else:
        import pyarrow.parquet as pq

        with open_data(path) as f:
            md = pq.ParquetFile(f).metadata
        rows = [md.row_group(g).num_rows for g in range(md.num_row_groups)]
    return [0] + list(np.cumsum(rows, dtype=np.int64).tolist())


def _line_start(path, pos: int) -> int:
    """The first line start at or after byte pos (the file size if none)."""
    if pos <= 0:
        return 0
    with open_data(path) as f:
        f.seek(pos - 1)
        at = pos - 1
        while True:
            block = f.read(1 << 16)
            if not block:
                return at
            nl = block.find(b"\n")
            if nl >= 0:
                return at + nl + 1
            at += len(block)


def count_lines(path, end: int) -> int:
    """Newlines in the first `end` bytes of a plain text file."""
    n, left = 0, end
    with open_data(path) as f:
        while left > 0:
            block = f.read(min(left, 1 << 24))
            if not block:
                break
            n += block.count(b"\n")
            left -= len(block)
    return n


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------

def read_partition(pieces, config: Config, pos: Position, *, max_rows=None, batch_rows: int,
                   on_bad=None, shuffle_seeds=None):
    """Batches of a partition from `pos`, at most max_rows rows (None: to its end); `pos`
    is moved to where the next read continues (pos.piece == len(pieces): done).
    shuffle_seeds(piece) -> the shuffle_seed of a whole Parquet file, or None."""
    left = max_rows
    while pos.piece < len(pieces) and (left is None or left > 0):
        piece = pieces[pos.piece]
        if piece.stop is not None and pos.offset >= piece.stop and not pos.skip:
            _next_piece(pieces, pos)
            continue
        seed = shuffle_seeds(piece) if shuffle_seeds and piece.start == 0 and piece.stop is None else None
        at = (pos.offset, pos.line)  # where the batch being read starts
        with contextlib.closing(_piece_batches(piece, config, pos.offset, pos.line, batch_rows, on_bad,
                                               seed)) as it:
            for b in it:
                skipped = min(pos.skip, b.rows)
                take = b.rows - skipped
                if left is not None and take > left:  # the round ends inside this batch
                    yield _rows(b, skipped, skipped + left)
                    pos.offset, pos.line, pos.skip = at[0], at[1], skipped + left
                    return
                if take:
                    yield _rows(b, skipped, b.rows) if skipped else b
                pos.skip -= skipped
                if left is not None:
                    left -= take
                at = (b.end_offset, b.end_line)
                pos.offset, pos.line = at
                if left == 0:
                    return
        _next_piece(pieces, pos)


def _next_piece(pieces, pos: Position) -> None:
    pos.piece += 1
    if pos.piece < len(pieces):
        pos.offset, pos.line = pieces[pos.piece].start, pieces[pos.piece].line or 0


def _piece_batches(piece: Piece, config, offset, line, batch_rows, on_bad, seed):
    """A piece's Batches from (offset, line) to its stop."""
    if piece.fmt == "parquet-sparse":
        return _rows_upto(open_batches(piece.path, config, start_offset=offset, batch_rows=batch_rows,
                                       shuffle_seed=seed), None if piece.stop is None else piece.stop - offset)
    if piece.stop is None:
        return open_batches(piece.path, config, start_offset=offset, start_line=line, batch_rows=batch_rows,
                            on_bad=on_bad)
    return _text_range(piece, config, offset, line, batch_rows, on_bad)


def _rows_upto(batches, n):
    """The first n rows of a stream of Batches (None: all)."""
    with contextlib.closing(batches):
        for b in batches:
            if n is not None and b.rows >= n:
                if n:
                    yield _rows(b, 0, n)
                return
            if n is not None:
                n -= b.rows
            yield b


def _text_range(piece: Piece, config, offset, line, batch_rows, on_bad):
    """The rows of a text file between byte offset and piece.stop (a line start). The
    reader has no stop: when a batch runs past it, that batch is read again in smaller
    ones, down to single rows, and only the rows that end by the stop are kept."""
    stop = piece.stop
    try:
        for size in (batch_rows,) + FINER:
            crossed = False
            with contextlib.closing(open_batches(piece.path, config, start_offset=offset, start_line=line,
                                                 batch_rows=size, on_bad=on_bad)) as it:
                for b in it:
                    if b.end_offset > stop:
                        crossed = True
                        break
                    yield b
                    offset, line = b.end_offset, b.end_line
                    if offset == stop:
                        return
            if not crossed:
                return
    except DataError:
        if piece.line is not None:
            raise
        _raise_with_lines(piece, config, batch_rows, on_bad)
        raise


def _raise_with_lines(piece: Piece, config, batch_rows, on_bad):
    """A read error in a piece whose line count was not taken: read the piece again with
    its lines counted, so that the message names the right line."""
    counted = Piece(piece.path, piece.fmt, piece.start, piece.stop, count_lines(piece.path, piece.start),
                    piece.index)
    for _ in _text_range(counted, config, counted.start, counted.line, batch_rows, on_bad):
        pass


def _rows(b: Batch, lo: int, hi: int) -> Batch:
    """Rows lo..hi-1 of a batch (views). Its end position is not known: the caller keeps it."""
    p0, p1 = int(b.indptr[lo]), int(b.indptr[hi])
    ids = b.ids[p0:p1]
    return Batch(b.labels[lo:hi], b.indptr[lo:hi + 1] - p0, ids, b.values[p0:p1], int(ids.max(initial=-1)),
                 b.end_offset, b.end_line, b.raw_bytes, None if b.weights is None else b.weights[lo:hi],
                 None if b.ids_text is None else b.ids_text[lo:hi])
