"""libsvm/svmlight text (plain, gzip, bzip2, xz, zstd, or stdin as `-`) streamed as CSR
batches parsed inside Numba (kernels/libsvm.py). Nothing is done per line in Python.

Rules (see README "Input format"):
- a line is `label [qid:N] id:value ...  [# comment]`; blank and comment lines are skipped;
- the label is any number; a row is positive when label > 0 (so 0/1, -1/+1 and 1/2 work);
- feature ids are used as written (no shift): a zero-based and a one-based file both work,
  and `ftrl export` prints the ids of the data;
- within a row, ids may come in any order; a repeated id adds its values (x is a vector);
  values equal to 0 are dropped;
- SVMlight's `cost:W` token gives the row an importance weight W >= 0 (default 1), once per
  line; a `qid:N` token (N an integer, as SVMlight writes it) is skipped; `qid:abc` is an error;
- a line ends at LF (CRLF too); a CR alone is a blank, so a file with CR-only line ends
  (classic Mac OS) fails at its second line, with a hint to convert it.
"""

from __future__ import annotations

import numpy as np

from .. import kernels as K
from ..errors import DataError
from .batch import BATCH_ROWS, Batch
from .errors import _bare_cr, _error
from .stream import InputStream

CHUNK_BYTES = 8 << 20  # read buffer; grows for longer lines up to MAX_LINE_BYTES


MAX_LINE_BYTES = 256 << 20


BATCH_NNZ = 1 << 20


MAX_SLOW = 4096


def _full_token(buf: np.ndarray, pos: int, end: int) -> bytes:
    """The bytes from pos up to the next blank, newline or '#'."""
    stop = pos
    while stop < end and int(buf[stop]) not in b" \t\r\n\x0b\x0c#":
        stop += 1
    return bytes(buf[pos:stop])


def iter_libsvm(path: str, *, start_offset: int = 0, start_line: int = 0,
                batch_rows: int = BATCH_ROWS, batch_nnz: int = BATCH_NNZ,
                chunk_bytes: int = CHUNK_BYTES, max_line_bytes: int = MAX_LINE_BYTES,
                on_bad=None, with_comments: bool = False, row_multiple: int = 1,
                fresh: bool = False):
    """Yield Batches of batch_rows rows from one libsvm input (the last one fewer).

    A batch ends early only when its feature arrays are full, and then at a multiple of
    row_multiple rows (the arrays grow instead): where batches end never depends on the
    read buffer, so mini-batches of row_multiple rows line up the same way in every run.
    start_offset/start_line resume inside the (decompressed) stream at a row boundary.
    on_bad: None raises DataError at the first bad line; else on_bad(error) is called for
    each bad line (it may raise to stop) and the line is skipped.
    with_comments: fill Batch.ids_text with each row's trailing comment (predict --with-id).
    fresh: every batch gets arrays of its own (else views of buffers the next batch reuses),
    for a consumer that keeps batches (the read-ahead thread) and would otherwise copy them.
    """
    with InputStream(path) as src:
        src.skip(start_offset)
        name = src.name
        buf = np.empty(chunk_bytes, np.uint8)
        labels = np.empty(batch_rows, np.float64)
        weights = np.empty(batch_rows, np.float64)
        indptr = np.zeros(batch_rows + 1, np.int64)
        ids = np.empty(batch_nnz, np.int64)
        values = np.empty(batch_nnz, np.float64)
        slow = np.empty((MAX_SLOW, 3), np.int64)
        filled = 0  # valid bytes in buf
        pos = 0  # first unparsed byte
        offset = start_offset  # stream offset of buf[0]
        line = start_line  # newlines consumed before buf[pos]
        eof = False
        r0 = z0 = 0  # rows and features already in the batch being filled
        batch_max = -1
        texts = [] if with_comments else None
        first = start_offset == 0  # no data line seen yet (the hint for a CSV/TSV read as libsvm)

        def take_batch():
            """The batch filled so far; the next one starts empty (in new arrays if fresh)."""
            nonlocal r0, z0, batch_max, texts, labels, weights, indptr, ids, values
            w = weights[:r0]
            b = Batch(labels[:r0], indptr[: r0 + 1], ids[:z0], values[:z0], batch_max, offset + pos, line,
                      src.raw_pos(), weights=w if (w != 1.0).any() else None, ids_text=texts)
            r0 = z0 = 0
            batch_max = -1
            texts = [] if with_comments else None
            if fresh:
                labels, weights, indptr, ids, values = _new_buffers(labels, weights, indptr, ids, values)
            return b

        while True:
            if not eof:
                if pos > 0:  # keep the unparsed tail, read behind it
                    buf[: filled - pos] = buf[pos:filled]
                    offset += pos
                    filled -= pos
                    pos = 0
                if filled == len(buf):
                    if len(buf) >= max_line_bytes:
                        limit = (f"{max_line_bytes >> 20} MB" if max_line_bytes >= 1 << 20
                                 else f"{max_line_bytes} bytes")
                        hint = ("; its lines end with CR alone (classic Mac OS): convert it with "
                                "tr '\\r' '\\n' < FILE > FILE.unix" if _bare_cr(bytes(buf[: 1 << 16]))
                                else " (is this a libsvm text file?)")
                        raise DataError(f"{name}:{line + 1}: line longer than {limit}{hint}")
                    buf = np.concatenate([buf, np.empty(len(buf), np.uint8)])
                got = src.readinto(memoryview(buf)[filled:])
                if got == 0:
                    eof = True
                filled += got
            if eof:
                end = filled
            else:
                nl = K.last_newline(buf, pos, filled)
                if nl < 0:
                    continue  # no complete line yet: read more (the buffer grows if full)
                end = nl + 1
            while pos < end:
                room = batch_rows - r0
                # views: the kernel fills the batch from row r0 and feature z0 on
                L, P, W = labels[r0:], indptr[r0:], weights[r0:]
                Z, V = ids[z0:], values[z0:]
                (new_pos, rows, nnz, lines, nslow, max_id, unsorted, err, err_pos) = K.parse_libsvm(
                    buf, pos, end, L, P, Z, V, slow, room, W)
                if err == K.ERR_ROW_TOO_BIG:  # the next row does not fit
                    P[0] = z0  # (the kernel wrote 0 there)
                    if r0 and r0 % row_multiple == 0:
                        yield take_batch()
                    else:
                        ids, values = _grown(ids, z0), _grown(values, z0)
                        slow = np.empty((2 * len(slow), 3), np.int64)
                    continue
                skip_to = exc = None
                if err:
                    exc = _error(name, err, buf, err_pos, new_pos, end, line + lines + 1,
                                 first=first and rows == 0)
                    # keep the rows before the bad line (their slow numbers come first)
                    nnz = int(P[rows])
                    keep = (slow[:nslow, 0] != 1) & (slow[:nslow, 1] < rows) | (
                        (slow[:nslow, 0] == 1) & (slow[:nslow, 1] < nnz))
                    nslow = int(keep.sum())
                    slow[:nslow] = slow[: len(keep)][keep]
                    nl = K.last_newline(buf, err_pos, _line_end(buf, err_pos, end))
                    skip_to = nl + 1 if nl >= 0 else end
                comments = None
                if with_comments and rows:
                    spans = np.empty((rows, 2), np.int64)
                    K.comment_spans(buf, pos, new_pos, spans)
                    raw = bytes(buf[pos:new_pos])
                    comments = [raw[a - pos:b - pos].decode("utf-8", "replace") if a >= 0 else ""
                                for a, b in spans]
                slow_full = nslow == len(slow)
                if nslow:
                    bad_rows = _resolve_slow(buf, slow[:nslow], L, V, end, name, pos, line,
                                             P, rows, on_bad, W)
                    if bad_rows:
                        rows, nnz = _drop_rows(bad_rows, L, P, Z, V, rows, W)
                        if comments is not None:
                            comments = [c for k, c in enumerate(comments) if k not in set(bad_rows)]
                first = first and not rows and exc is None
                if exc is not None:
                    if on_bad is None:
                        raise exc
                    on_bad(exc)  # the bad-line policy: count, warn, or raise; then skip it
                if unsorted or nslow:
                    nnz = K.canonicalize(P, Z, V, rows)
                P[: rows + 1] += z0  # (the kernel wrote P[0] = 0: restore it even for no rows)
                if rows:
                    batch_max = max(batch_max, int(Z[:nnz].max(initial=-1)) if nslow else int(max_id))
                    r0 += rows
                    z0 += nnz
                    if comments is not None:
                        texts.extend(comments)
                stopped_early = new_pos < end and err == 0 and rows < room  # arrays full
                line += lines
                pos = new_pos
                if skip_to is not None:  # the skipped line belongs to the batch before it
                    line += 1
                    pos = skip_to
                if r0 == batch_rows or (stopped_early and not slow_full and r0 and r0 % row_multiple == 0):
                    yield take_batch()
                elif stopped_early and not slow_full:
                    ids, values = _grown(ids, z0), _grown(values, z0)  # finish the row multiple
            if eof:
                if r0:
                    yield take_batch()
                return


def _new_buffers(labels, weights, indptr, ids, values):
    """A batch's arrays again, new (iter_libsvm's fresh=True)."""
    return (np.empty_like(labels), np.empty_like(weights), np.zeros_like(indptr),
            np.empty_like(ids), np.empty_like(values))


def _grown(a, keep):
    """a, twice as long, its first `keep` entries kept."""
    out = np.empty(2 * len(a), a.dtype)
    out[:keep] = a[:keep]
    return out


def _line_end(buf, pos, end):
    """One past the newline that ends the line holding pos (or end)."""
    nl = np.flatnonzero(buf[pos:end] == 10)
    return pos + int(nl[0]) + 1 if len(nl) else end


def _drop_rows(bad_rows, labels, indptr, ids, values, rows, weights):
    """Remove rows (sorted indices) from a batch in place; returns (rows, nnz)."""
    keep = np.ones(rows, bool)
    keep[list(bad_rows)] = False
    lengths = np.diff(indptr[: rows + 1])
    feat_keep = np.repeat(keep, lengths)
    nnz = int(feat_keep.sum())
    ids[:nnz] = ids[: len(feat_keep)][feat_keep]
    values[:nnz] = values[: len(feat_keep)][feat_keep]
    new_rows = int(keep.sum())
    labels[:new_rows] = labels[:rows][keep]
    weights[:new_rows] = weights[:rows][keep]
    indptr[1 : new_rows + 1] = np.cumsum(lengths[keep])
    indptr[0] = 0
    return new_rows, nnz


def _resolve_slow(buf, slow, labels, values, end, name, seg_start, line_base, indptr, rows, on_bad, weights):
    """Parse the rare numbers the fast path declines (>18 digits, big exponents) with
    float(). Returns the rows whose number is not finite when on_bad lets them be skipped."""
    bad = set()
    for kind, at, bpos in slow:
        v = float(_full_token(buf, bpos, end))
        if not np.isfinite(v):
            row = int(at) if kind != 1 else int(np.searchsorted(indptr[: rows + 1], at, side="right") - 1)
            if row in bad:  # one report per bad line
                continue
            nl = bytes(buf[seg_start:bpos]).count(b"\n")
            line_start = bytes(buf[:bpos]).rfind(b"\n") + 1
            exc = _error(name, K.ERR_NAN, buf, bpos, line_start, end, line_base + nl + 1,
                         what=("label", "value", "weight")[kind])
            if on_bad is None:
                raise exc
            on_bad(exc)
            bad.add(row)
            continue
        if kind == 0:
            labels[at] = v
        elif kind == 1:
            values[at] = v
        else:
            weights[at] = v
    return sorted(bad)
