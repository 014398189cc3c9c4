"""pyarrow helpers shared by the Parquet and CSV readers: opening Parquet, reading row
groups in order (or a seeded order) from a resume row, cutting record batches to an exact
row count, and typed access to Arrow buffers. pyarrow is imported on first use, so
libsvm-only runs never load it.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from . import location
from .errors import _arrow_errors, _one_line, open_data
from .location import is_url

# ---------------------------------------------------------------------------------------
# pyarrow plumbing
# ---------------------------------------------------------------------------------------

def _id_text(pa, arr) -> list:
    """The id column as one str per row (Batch.ids_text; a null is the empty string)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr.fill_null("").to_pylist()


BATCH_ROWS = 1 << 16  # rows per batch of the Parquet and CSV readers


def _pa():
    import pyarrow as pa

    return pa


def _pc():
    import pyarrow.compute as pc

    return pc


def _is_list(pa, t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _open_parquet(path: str):
    import pyarrow.parquet as pq

    f = open_data(path)  # (missing, a directory, no permission: worded by open_data)
    if not is_url(path):
        f.close()
        f = path  # (pyarrow reads a local path itself)
    with _arrow_errors(path):
        try:
            return pq.ParquetFile(f)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for non-Parquet
            if isinstance(e, DataError):
                raise
            raise DataError(f"{path}: not a readable Parquet file ({_one_line(e)})") from None


def _rechunk(batches, n: int, skip: int = 0):
    """Record batches of exactly n rows (the last one fewer), after dropping `skip` rows."""
    pa = _pa()
    pending = []
    have = 0
    for rb in batches:
        if skip:
            if rb.num_rows <= skip:
                skip -= rb.num_rows
                continue
            rb = rb.slice(skip)
            skip = 0
        if rb.num_rows == 0:
            continue
        if not pending and rb.num_rows == n:
            yield rb
            continue
        pending.append(rb)
        have += rb.num_rows
        while have >= n:
            t = pa.Table.from_batches(pending)
            head = t.slice(0, n).combine_chunks()
            yield head.to_batches()[0]
            pending = [b for b in t.slice(n).to_batches() if b.num_rows]
            have -= n
    if have:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def group_order(group_rows, start_row: int, shuffle_seed=None):
    """(order, first, before): the order row groups are read in (a permutation seeded by
    shuffle_seed, or the file's), the place in it of the group holding start_row (rows
    counted in that order), and the rows of the groups before it."""
    order = list(range(len(group_rows)))
    if shuffle_seed is not None:
        order = [int(g) for g in np.random.default_rng(list(shuffle_seed)).permutation(len(group_rows))]
    first, before = 0, 0
    while first < len(order) and before + group_rows[order[first]] <= start_row:
        before += group_rows[order[first]]
        first += 1
    return order, first, before


def _parquet_batches(pf, columns, batch_rows: int, start_row: int, shuffle_seed=None, use_threads=True):
    """Record batches of the named columns from row start_row on, reading only the row
    groups from the one holding start_row, one row group at a time (pyarrow pre-buffers
    every row group it is asked for: asking for all would hold the whole file).

    shuffle_seed: read the row groups in the order of a permutation seeded by it (rows are
    then counted, for start_row, in that order). use_threads: decode a group's columns on
    Arrow's thread pool (False: in this thread, for files whose decode is one column's)."""
    md = pf.metadata
    order, first, before = group_order([md.row_group(g).num_rows for g in range(md.num_row_groups)],
                                       start_row, shuffle_seed)

    def groups():
        # read_row_group decodes a whole group at once: 4x faster than iter_batches here
        for g in order[first:]:
            yield from pf.read_row_group(g, columns=columns, use_threads=use_threads).to_batches(
                max_chunksize=batch_rows)

    return _rechunk(groups(), batch_rows, skip=start_row - before)


_ONES_U8 = np.ones(0, np.uint8)


def _valid(arr) -> np.ndarray:
    """uint8[n]: 1 where the cell is not null."""
    global _ONES_U8
    n = len(arr)
    if arr.null_count == 0:
        if len(_ONES_U8) < n:
            _ONES_U8 = np.ones(max(n, BATCH_ROWS), np.uint8)
        return _ONES_U8[:n]
    bitmap = arr.buffers()[0]
    if bitmap is None:  # (null, union, run-end types: no bitmap of their own)
        return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False)).view(np.uint8)
    # (the validity bitmap itself: Array.is_valid would import pyarrow.compute)
    bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), count=arr.offset + n, bitorder="little")
    return bits[arr.offset:]


def _fixed_values(arr, dtype) -> np.ndarray:
    """The values buffer of a primitive array as numpy (nulls hold garbage: see _valid)."""
    n = len(arr)
    bufs = arr.buffers()
    if n == 0 or bufs[1] is None:
        return np.zeros(n, dtype)
    item = np.dtype(dtype).itemsize
    return np.frombuffer(bufs[1], dtype=dtype, count=n, offset=arr.offset * item)


def _string_buffers(pa, arr):
    """(offsets, data) numpy views of a string/binary array (other types are cast)."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_binary(t):
        odt = np.int32
    else:
        if not (pa.types.is_large_string(t) or pa.types.is_large_binary(t)):
            arr = arr.cast(pa.large_string())
        odt = np.int64
    n = len(arr)
    bufs = arr.buffers()
    if bufs[1] is None:
        off = np.zeros(n + 1, odt)
    else:
        off = np.frombuffer(bufs[1], dtype=odt, count=n + 1, offset=arr.offset * np.dtype(odt).itemsize)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(1, np.uint8)
    return off, data


def _float64(pa, arr, name, col, role):
    """Cast a column to float64 (DataError naming the file and column if it cannot be)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_float64(t):
        return arr
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.float64())
    try:
        return arr.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
        raise DataError(f"{name}: column '{col}' ({role}) of type {t} is not numeric ({_one_line(e)})") from None


def _numbers(pa, arr, name, col, role, row0, *, nonneg=False, null=None):
    """float64 numpy values of a label/weight column, checked: finite, and no nulls (or
    nulls read as `null`)."""
    a = _float64(pa, arr, name, col, role)
    if a.null_count and null is not None:
        a = a.fill_null(null)
    valid = None
    if a.null_count:
        valid = a.is_valid().to_numpy(zero_copy_only=False)
    return checked_numbers(np.array(_fixed_values(a, np.float64)), valid, name, col, role, row0, nonneg=nonneg)


def checked_numbers(v, valid, name, col, role, row0, *, nonneg=False, null=None):
    """v (float64, owned), checked: no nulls where valid (bool/uint8, None: none) is 0, or
    nulls read as `null`; finite; >= 0 when nonneg. The words of every reader's check."""
    if valid is not None and not np.all(valid):
        if null is None:
            r = int(np.flatnonzero(~np.asarray(valid, bool))[0])
            raise DataError(f"{name}: row {row0 + r + 1}: column '{col}' ({role}) is null")
        v[~np.asarray(valid, bool)] = null
    bad = ~np.isfinite(v)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: row {row0 + r + 1}: column '{col}' ({role}) is {v[r]}, not a finite number")
    if nonneg and (v < 0).any():
        r = int(np.flatnonzero(v < 0)[0])
        raise DataError(f"{name}: row {row0 + r + 1}: column '{col}' ({role}) is {v[r]}; weights must be >= 0")
    return v


def _need_columns(name, present, wanted):
    """DataError for the first wanted (column, role) missing from the file."""
    have = set(present)
    for col, role in wanted:
        if col is not None and col not in have:
            shown = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "")
            raise DataError(f"{name}: no column '{col}' ({role}); the columns are: {shown}")


def _parquet_progress(path, pf):
    size = location.size(path) or 0
    total = max(pf.metadata.num_rows, 1)
    return lambda rows: int(size * min(rows, total) / total)


# ---------------------------------------------------------------------------------------
# sparse Parquet
# ---------------------------------------------------------------------------------------

_FAST_ELEMENTS = {"int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
                  "uint32": np.uint32, "uint16": np.uint16, "uint8": np.uint8,
                  "double": np.float64, "float": np.float32}


def _list_buffers(pa, arr, kinds):
    """(offsets int64[n+1], elements ndarray) of a list column read straight from its Arrow
    buffers, or None when the general path (_list_column) is needed: a fixed-size list,
    null elements, or an element type not in `kinds` (names as in _FAST_ELEMENTS).

    The elements are a zero-copy, read-only view of the whole child array; row r's are
    elements[offsets[r]:offsets[r+1]] (offsets are not shifted to 0). Null rows keep the
    offsets Arrow gave them: callers decide what a null row means. Decoding a row group
    thus costs no pyarrow.compute call (nor its import) and no copy of the ids."""
    t = arr.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or str(t.value_type) not in kinds:
        return None
    child = arr.values  # (the whole child: the list's slice offset is in its offsets)
    if child.null_count:
        return None
    n = len(arr)
    off = arr.offsets.to_numpy()
    if len(off) != n + 1:
        return None
    if n and (off[0] < 0 or off[n] > len(child) or (off[1:] < off[:-1]).any()):
        return None  # (not what Arrow builds from Parquet: let the general path judge it)
    return off.astype(np.int64, copy=False), _fixed_values(child, _FAST_ELEMENTS[str(t.value_type)])


def _list_column(pa, arr, name, col, what, row0):
    """(indptr int64[n+1], flat values Array) of a list column; null lists are empty rows."""
    import pyarrow.compute as pc

    lengths = pc.list_value_length(arr)
    if lengths.null_count:
        lengths = lengths.fill_null(0)
    indptr = np.zeros(len(arr) + 1, np.int64)
    np.cumsum(lengths.to_numpy(zero_copy_only=False), out=indptr[1:])
    flat = pc.list_flatten(arr)
    if flat.null_count:
        k = int(np.flatnonzero(~flat.is_valid().to_numpy(zero_copy_only=False))[0])
        r = int(np.searchsorted(indptr, k, side="right")) - 1
        raise DataError(f"{name}: row {row0 + r + 1}: column '{col}' ({what}) holds a null element")
    return indptr, flat
