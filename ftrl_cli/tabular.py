"""Parquet and CSV/TSV input: sparse Parquet, wide (tabular) Parquet and delimited text,
streamed as `readers.Batch` CSR batches. pyarrow is imported inside the functions, so
libsvm-only use never loads it.

Two layouts:

- SPARSE Parquet (`iter_parquet_sparse`): a numeric label column, a `list<int>` column of
  feature ids (used as written, like libsvm ids), an optional `list<float>` column of values
  (absent: every value is 1; a null row: each of that row's values is 1, which is how
  `ftrl convert` writes one-hot rows, as Arrow decodes a null row for nothing), optional
  weight and id columns. Rows follow the libsvm rules:
  sorted by id, a repeated id adds its values, zero values are dropped.
- WIDE tables (`iter_tabular`): Parquet or CSV/TSV (with or without a header line) with a
  label column; every other column becomes features, hashed to ids < 2**bits by
  MurmurHash3 of `column=value` (see kernels.py, 'Feature hashing', for the exact bytes):
    * string, integer, boolean, date/time columns are categorical: one feature
      `column=value` with value 1 per non-empty cell;
    * float/decimal columns are numeric: by default one feature `column` with the cell's
      value (numeric_as="value"), or `column=<value as text>` (numeric_as="categorical"),
      or `column=<log2 bin>` (numeric_as="bin"), or `column=<x if x <= 2 else floor(ln(x)^2)>`
      (numeric_as="logsq", the Criteo-Kaggle count buckets);
    * nulls, NaN, empty strings (and zeros of numeric values) are skipped;
    * `interactions` adds crosses of columns like VW's -q: `a=va^b=vb`.
  With `categorical`/`numeric` lists only the listed columns are features ("*" in a list
  stands for every column not otherwise named); `ignore` drops columns.

CSV/TSV are read with pyarrow's streaming reader (`pyarrow.csv.open_csv`): the first block
decides which columns are numeric (float) — unless `numeric` says — then the file is read
again with categorical columns as text and numeric ones as float64, so an integer column
in CSV (text "42") and in Parquet (int64 42) give the same ids.

Batches hold exactly `batch_rows` rows (the last one fewer). For Parquet and CSV alike,
Batch.end_offset and Batch.end_line are the rows consumed from the start of the file, so
a run resumes with `start_row=batch.end_offset` (for Parquet, only the row groups from
there on are read). raw_bytes is progress: bytes of the file read (CSV) or the file size
times the fraction of rows read (Parquet). Memory is bounded by one batch and the Parquet
row group being decoded: whole files are never read into a table.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass

import numpy as np

from . import kernels as K
from .atomic import atomic_writer
from .errors import ConfigError, DataError
from .readers import Batch, InputStream, display_name, open_data

BATCH_ROWS = 1 << 16
# Row groups that `convert` writes: decoding one holds several times its size in
# transient memory, and 16k rows (the text reader's batch) keep that small.
CONVERT_ROW_GROUP_ROWS = 1 << 14
NAME_MAP_ENTRIES = 1 << 20
NUMERIC_AS = ("value", "categorical", "bin", "logsq")
FORMATS = ("parquet", "csv", "tsv", "libsvm")

_EXT = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv", ".tab": "tsv",
    ".svm": "libsvm", ".libsvm": "libsvm", ".svmlight": "libsvm",
}
_COMPRESSED_EXT = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd")
_LIBSVM_LINE = re.compile(
    rb"^[ \t]*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:[ \t]+(?:qid:\d+|\d+:\S+))*[ \t]*(?:#.*)?\r?$")


# ---------------------------------------------------------------------------------------
# format detection
# ---------------------------------------------------------------------------------------

def detect_format(path: str) -> str:
    """'parquet', 'csv', 'tsv' or 'libsvm', from magic bytes, extension, then content.

    `PAR1` at the start is Parquet. Otherwise the extension (after a .gz/.bz2/.xz/.zst
    suffix) decides: .parquet/.pq, .csv, .tsv/.tab, .svm/.libsvm/.svmlight. For .txt and
    anything else the first data line is looked at (decompressed if need be): a libsvm
    line (`label id:value ...`) is libsvm, else a tab makes it TSV, a comma CSV.
    """
    if path == "-":
        return "libsvm"
    with open_data(path) as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    name = os.path.basename(path).lower()
    for suffix in _COMPRESSED_EXT:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    ext = os.path.splitext(name)[1]
    if ext in _EXT:
        return _EXT[ext]
    return _sniff(path)


def _sniff(path: str) -> str:
    with InputStream(path) as src:
        buf = bytearray(1 << 16)
        got = src.readinto(memoryview(buf))
    for line in bytes(buf[:got]).split(b"\n")[:-1] or [bytes(buf[:got])]:
        s = line.strip()
        if not s or s.startswith(b"#"):
            continue
        if _LIBSVM_LINE.match(line):
            return "libsvm"
        if b"\t" in line:
            return "tsv"
        if b"," in line:
            return "csv"
        return "libsvm"
    return "libsvm"


def parquet_layout(path: str, indices: str = "indices") -> str:
    """'sparse' when the Parquet file has a list column named `indices`, else 'wide'."""
    pa = _pa()
    schema = _open_parquet(path).schema_arrow
    i = schema.get_field_index(indices)
    if i >= 0 and _is_list(pa, schema.field(i).type):
        return "sparse"
    return "wide"


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


def _pa():
    import pyarrow as pa

    return pa


def _pc():
    import pyarrow.compute as pc

    return pc


def _is_list(pa, t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    s = s[0] if s else type(e).__name__
    return s if len(s) <= 300 else s[:300] + "..."


@contextlib.contextmanager
def _arrow_errors(name: str):
    """Turn pyarrow's read errors into one-line DataErrors naming the file."""
    pa = _pa()
    try:
        yield
    except (DataError, ConfigError):
        raise
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{name}: {_one_line(e)}") from None


def _open_parquet(path: str):
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a data file")
    with _arrow_errors(path):
        try:
            return pq.ParquetFile(path)
        except PermissionError:
            raise DataError(f"{path}: permission denied") from None
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


def _parquet_batches(pf, columns, batch_rows: int, start_row: int, shuffle_seed=None):
    """Record batches of the named columns from row start_row on, reading only the row
    groups from the one holding start_row, one row group at a time (pyarrow pre-buffers
    every row group it is asked for: asking for all would hold the whole file).

    shuffle_seed: read the row groups in the order of a permutation seeded by it (rows are
    then counted, for start_row, in that order)."""
    md = pf.metadata
    order = list(range(md.num_row_groups))
    if shuffle_seed is not None:
        order = [int(g) for g in np.random.default_rng(list(shuffle_seed)).permutation(md.num_row_groups)]
    first, before = 0, 0
    while first < len(order) and before + md.row_group(order[first]).num_rows <= start_row:
        before += md.row_group(order[first]).num_rows
        first += 1

    def groups():
        # read_row_group decodes a whole group at once: 4x faster than iter_batches here
        for g in order[first:]:
            yield from pf.read_row_group(g, columns=columns).to_batches(max_chunksize=batch_rows)

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
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False)).view(np.uint8)


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


def _numbers(pa, arr, name, col, role, row0, *, nonneg=False):
    """float64 numpy values of a label/weight column, checked: no nulls, finite."""
    a = _float64(pa, arr, name, col, role)
    if a.null_count:
        r = int(np.flatnonzero(~a.is_valid().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{name}: row {row0 + r + 1}: column '{col}' ({role}) is null")
    v = np.array(_fixed_values(a, np.float64))  # a copy we own
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
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    total = max(pf.metadata.num_rows, 1)
    return lambda rows: int(size * min(rows, total) / total)


# ---------------------------------------------------------------------------------------
# sparse Parquet
# ---------------------------------------------------------------------------------------

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


def iter_parquet_sparse(path: str, *, label: str = "label", indices: str = "indices",
                        values: str | None = "values", weight: str | None = None,
                        id_column: str | None = None, batch_rows: int = BATCH_ROWS,
                        start_batch: int = 0, start_row: int = 0, shuffle_seed=None):
    """Yield Batches from a sparse Parquet file (module doc), batch_rows rows at a time.

    label: numeric column (positive iff > 0). indices: list<integer> of feature ids >= 0.
    values: list<number> with one value per index; when the default "values" column is
    absent every value is 1 (values=None ignores the column). weight: optional numeric
    column of importance weights (>= 0). id_column: optional column whose text becomes
    batch.ids_text (one str per row). Resume with start_row (= a batch's end_offset, the rows consumed) or
    start_batch (batches of the same batch_rows already consumed).
    """
    pa = _pa()
    if batch_rows < 1:
        raise ConfigError(f"batch_rows must be >= 1, got {batch_rows}")
    pf = _open_parquet(path)
    schema = pf.schema_arrow
    names = schema.names
    _need_columns(path, names, [(label, "label"), (indices, "indices"), (weight, "weight"),
                                (id_column, "id")])
    if values is not None and values not in names:
        if values != "values":
            _need_columns(path, names, [(values, "values")])
        values = None

    def typed(col, ok, expect):
        t = schema.field(col).type
        if not ok(t):
            raise DataError(f"{path}: column '{col}' has type {t}; expected {expect}")

    def numeric(t):
        if pa.types.is_dictionary(t):
            t = t.value_type
        return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_decimal(t))

    def list_of(pred):
        return lambda t: _is_list(pa, t) and pred(t.value_type)

    typed(label, numeric, "a numeric label column")
    typed(indices, list_of(pa.types.is_integer), "list<int> (feature ids)")
    if values is not None:
        typed(values, list_of(lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)),
              "list<float> (feature values)")
    if weight is not None:
        typed(weight, numeric, "a numeric weight column")
    cols = [c for c in dict.fromkeys([label, indices, values, weight, id_column]) if c is not None]
    progress = _parquet_progress(path, pf)
    row = start_row + start_batch * batch_rows
    with _arrow_errors(path):
        for rb in _parquet_batches(pf, cols, batch_rows, row, shuffle_seed):
            n = rb.num_rows
            labels = _numbers(pa, rb.column(label), path, label, "label", row)
            indptr, flat = _list_column(pa, rb.column(indices), path, indices, "indices", row)
            try:
                ids = flat.cast(pa.int64()).to_numpy(zero_copy_only=False)
            except pa.ArrowInvalid:
                raise DataError(f"{path}: column '{indices}' (indices) holds ids beyond int64") from None
            varr = rb.column(values) if values is not None else None
            if varr is None or varr.null_count == n:
                vals = np.ones(len(ids), np.float64)
            else:
                vptr, vflat = _list_column(pa, varr, path, values, "values", row)
                vflat = vflat.cast(pa.float64()).to_numpy(zero_copy_only=False)
                if varr.null_count:  # null rows are all ones
                    vals = np.empty(len(ids), np.float64)
                    bad = K.expand_values(indptr, vptr, _valid(varr), vflat, vals)
                else:
                    vals = vflat
                    bad = -1 if np.array_equal(vptr, indptr) else int(
                        np.flatnonzero(np.diff(vptr) != np.diff(indptr))[0])
                if bad >= 0:
                    raise DataError(f"{path}: row {row + bad + 1}: column '{values}' has "
                                    f"{vptr[bad + 1] - vptr[bad]} values for "
                                    f"{indptr[bad + 1] - indptr[bad]} indices in '{indices}'")
            err, pos, max_id, canon = K.check_sparse(indptr, ids, vals)
            if err:
                r = int(np.searchsorted(indptr, pos, side="right")) - 1
                if err == K.ERR_NEGATIVE:
                    raise DataError(f"{path}: row {row + r + 1}: column '{indices}' holds the negative "
                                    f"feature id {ids[pos]}")
                raise DataError(f"{path}: row {row + r + 1}: column '{values}' holds {vals[pos]}, "
                                "not a finite number")
            if canon:
                ids = np.array(ids)
                vals = np.array(vals)
                nnz = K.canonicalize(indptr, ids, vals, n)
                ids, vals = ids[:nnz], vals[:nnz]
                max_id = int(ids.max()) if nnz else -1
            w = None
            if weight is not None:
                w = _numbers(pa, rb.column(weight), path, weight, "weight", row, nonneg=True)
            row += n
            yield Batch(labels, indptr, np.ascontiguousarray(ids, np.int64),
                        np.ascontiguousarray(vals, np.float64), int(max_id), row, row, progress(row),
                        weights=w,
                        ids_text=_id_text(pa, rb.column(id_column)) if id_column is not None else None)


# ---------------------------------------------------------------------------------------
# writing sparse Parquet
# ---------------------------------------------------------------------------------------

def sparse_schema(weights: bool = False):
    pa = _pa()
    fields = [pa.field("label", pa.float64(), nullable=False),
              pa.field("indices", pa.list_(pa.int64())),
              pa.field("values", pa.list_(pa.float64()))]
    if weights:
        fields.append(pa.field("weight", pa.float64(), nullable=False))
    return pa.schema(fields, metadata={b"ftrl.layout": b"sparse"})


def _values_list(pa, indptr, values):
    """The values column of one batch: rows whose values are all 1 are written as null
    (the reader's rule), so one-hot data costs the reader nothing to decode."""
    others = np.zeros(len(values) + 1, np.int64)
    np.cumsum(values != 1.0, out=others[1:])
    ones = others[indptr[1:]] == others[indptr[:-1]]  # no value other than 1 in the row
    lengths = np.diff(indptr)
    lengths[ones] = 0
    offsets = np.zeros(len(indptr), np.int32)
    np.cumsum(lengths, out=offsets[1:])
    kept = np.repeat(~ones, np.diff(indptr))
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[kept]), mask=pa.array(ones))


def _close_quietly(writer):
    with contextlib.suppress(Exception):
        writer.close()


def convert_to_parquet(batches, out_path: str, *, weights: bool | None = None,
                       compression: str = "lz4", row_group_rows: int = CONVERT_ROW_GROUP_ROWS) -> dict:
    """Write Batches as sparse Parquet (label float64, indices list<int64>,
    values list<float64>, and weight float64 when `weights`; None = when the first batch
    has weights). compression: a Parquet codec; lz4 decodes ~1.6x faster than zstd on
    CTR-like data, for a file ~1.5x larger. Streams: holds at most one row group. The file appears atomically: it is
    written to a temporary file beside out_path, fsynced, then renamed over it.
    Returns {"path", "rows", "nnz", "row_groups"}.
    """
    pa = _pa()
    import pyarrow.parquet as pq

    out_path = os.fspath(out_path)
    rows = nnz = groups = 0
    with atomic_writer(out_path) as f, contextlib.ExitStack() as cleanup:
        writer = None
        # on an error, close the writer before the file (it writes a footer)
        cleanup.callback(lambda: writer is not None and _close_quietly(writer))
        pending, pend_rows, pend_nnz = [], 0, 0

        def flush():
            nonlocal pending, pend_rows, pend_nnz, groups
            if pending:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=max(pend_rows, 1))
                groups += 1
            pending, pend_rows, pend_nnz = [], 0, 0

        for b in batches:
            if writer is None:
                if weights is None:
                    weights = b.weights is not None
                schema = sparse_schema(weights)
                writer = pq.ParquetWriter(f, schema, compression=compression)
            if b.weights is not None and not weights:
                raise DataError(f"{out_path}: a batch has weights but the file has no weight column")
            n = b.rows
            b_nnz = int(b.indptr[n] - b.indptr[0])
            if pend_nnz + b_nnz >= (1 << 31) - 1:
                flush()
            if b_nnz >= (1 << 31) - 1:
                raise DataError(f"{out_path}: a batch holds {b_nnz} features, too many for one row group")
            indptr = (b.indptr - b.indptr[0]).astype(np.int32)
            arrays = [pa.array(np.array(b.labels, np.float64)),
                      pa.ListArray.from_arrays(pa.array(indptr), pa.array(np.array(b.ids[:b_nnz], np.int64))),
                      _values_list(pa, indptr, np.asarray(b.values[:b_nnz], np.float64))]
            if weights:
                w = np.ones(n) if b.weights is None else np.array(b.weights, np.float64)
                arrays.append(pa.array(w))
            rb = pa.RecordBatch.from_arrays(arrays, schema=schema)
            pending.append(rb)
            pend_rows += n
            pend_nnz += b_nnz
            rows += n
            nnz += b_nnz
            while pend_rows >= row_group_rows:
                t = pa.Table.from_batches(pending)
                writer.write_table(t.slice(0, row_group_rows), row_group_size=row_group_rows)
                groups += 1
                pending = [x for x in t.slice(row_group_rows).to_batches() if x.num_rows]
                pend_rows -= row_group_rows
                pend_nnz = sum(int(x.column(1).offsets[-1].as_py() - x.column(1).offsets[0].as_py())
                               for x in pending)
        if writer is None:
            schema = sparse_schema(bool(weights))
            writer = pq.ParquetWriter(f, schema, compression=compression)
        flush()
        writer.close()
        writer = None
    return {"path": out_path, "rows": rows, "nnz": nnz, "row_groups": groups}


# ---------------------------------------------------------------------------------------
# slot -> name map
# ---------------------------------------------------------------------------------------

class NameMap:
    """Names of hashed features, bounded: the first name seen for each slot, plus a record
    of distinct keys per slot (slot, 32-bit fingerprint of the key) to count collisions.

    Holds at most max_entries names and max_entries keys; `overflow` tells when either
    bound was reached (later slots stay unnamed, later keys uncounted).
    """

    def __init__(self, max_entries: int = NAME_MAP_ENTRIES):
        self.max_entries = int(max_entries)
        self._names: dict[int, str] = {}
        self._keys = np.empty(0, np.uint64)  # sorted (slot << 32 | fingerprint)
        self.overflow = False

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, slot) -> bool:
        return int(slot) in self._names

    def name(self, slot, default=None):
        return self._names.get(int(slot), default)

    get = name

    def items(self):
        """(slot, name) pairs, by slot."""
        return sorted(self._names.items())

    @property
    def keys_seen(self) -> int:
        return len(self._keys)

    def collisions(self) -> int:
        """Slots known to hold two or more distinct keys."""
        if not len(self._keys):
            return 0
        _, counts = np.unique(self._keys >> np.uint64(32), return_counts=True)
        return int((counts > 1).sum())

    def keys_per_slot(self) -> dict:
        """slot -> number of distinct keys seen there (only slots with >= 2)."""
        slots, counts = np.unique(self._keys >> np.uint64(32), return_counts=True)
        return {int(s): int(c) for s, c in zip(slots, counts) if c > 1}

    def observe(self, ids, fingerprints, off, data) -> None:
        """Record one batch of one feature source: ids[r] (-1 = none) with the key bytes
        data[off[r]:off[r+1]] and its fingerprint."""
        sel = np.flatnonzero(ids >= 0)
        if not len(sel):
            return
        keys = (ids[sel].astype(np.uint64) << np.uint64(32)) | fingerprints[sel].astype(np.uint64)
        uk, first = np.unique(keys, return_index=True)
        known = np.zeros(len(uk), bool)
        if len(self._keys):
            at = np.searchsorted(self._keys, uk)
            at[at >= len(self._keys)] = 0
            known = self._keys[at] == uk
        if known.all():
            return
        uk, pos = uk[~known], sel[first[~known]]
        order = np.argsort(pos, kind="stable")  # first seen in row order
        uk, pos = uk[order], pos[order]
        for key, p in zip(uk.tolist(), pos.tolist()):
            slot = key >> 32
            if slot not in self._names:
                if len(self._names) >= self.max_entries:
                    self.overflow = True
                    break
                self._names[slot] = bytes(data[off[p]:off[p + 1]]).decode("utf-8", "replace")
        room = self.max_entries - len(self._keys)
        if room < len(uk):
            self.overflow = True
            uk = np.sort(uk)[:max(room, 0)]
        if len(uk):
            self._keys = np.union1d(self._keys, uk)

    def save(self, path: str) -> None:
        """Write `slot<TAB>keys<TAB>name` lines (by slot), atomically."""
        per = self.keys_per_slot()
        with atomic_writer(path, "w") as f:
            for slot, name in self.items():
                clean = name.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                f.write(f"{slot}\t{per.get(slot, 1)}\t{clean}\n")

    @classmethod
    def load(cls, path: str, max_entries: int = NAME_MAP_ENTRIES) -> NameMap:
        """Names from save()'s file (collision records are not kept: only the names)."""
        m = cls(max_entries)
        with open(path, encoding="utf-8") as f:
            for line in f:
                slot, _keys, name = line.rstrip("\n").split("\t", 2)
                name = re.sub(r"\\(.)", lambda g: {"t": "\t", "n": "\n"}.get(g.group(1), g.group(1)), name)
                m._names[int(slot)] = name
        return m


# ---------------------------------------------------------------------------------------
# wide tables: plan
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Col:
    name: str
    kind: str  # "cat" (column=value), "num" (column, x), "bin" (column=log2 bin)
    numeric: bool  # numeric (listed, or of float type): read as float64 from CSV


@dataclass
class _Plan:
    label: str
    weight: str | None
    id_column: str | None
    singles: list  # [_Col]
    crosses: list  # [tuple[_Col, ...]]
    read: list  # every column to read, in file order

    @property
    def members(self) -> dict:
        out = {c.name: c for c in self.singles}
        for cross in self.crosses:
            for c in cross:
                out.setdefault(c.name, c)
        return out


def _auto_numeric(pa, t) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_floating(t) or pa.types.is_decimal(t)


def _supported(pa, t) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return not (pa.types.is_nested(t))


def _norm_list(x, what):
    if x is None:
        return None
    if isinstance(x, str):
        x = [s for s in re.split(r"[,\s]+", x) if s]
    out = list(x)
    for c in out:
        if not isinstance(c, str):
            raise ConfigError(f"{what}: column names must be strings, got {c!r}")
    return out


def _norm_interactions(interactions):
    out = []
    for it in interactions or ():
        members = [s for s in re.split(r"[\^,\s]+", it) if s] if isinstance(it, str) else list(it)
        if len(members) < 2:
            raise ConfigError(f"interaction {it!r} needs two or more columns (a^b)")
        out.append(tuple(members))
    return out


def _make_plan(pa, name, schema, *, label, categorical, numeric, ignore, interactions, numeric_as,
               weight, id_column) -> _Plan:
    names = list(schema.names)
    types = {f.name: f.type for f in schema}
    categorical = _norm_list(categorical, "categorical")
    numeric = _norm_list(numeric, "numeric")
    ignore = _norm_list(ignore, "ignore") or []
    crosses = _norm_interactions(interactions)
    special = [c for c in (label, weight, id_column) if c is not None]
    listed = [c for c in (categorical or []) + (numeric or []) if c != "*"]
    both = set(categorical or []) & set(numeric or []) - {"*"}
    if both:
        raise ConfigError(f"column '{sorted(both)[0]}' is listed as both categorical and numeric")
    for c in listed:
        if c in ignore:
            raise ConfigError(f"column '{c}' is listed as a feature and as ignored")
        if c in special:
            raise ConfigError(f"column '{c}' is the label, weight or id column; it cannot be a feature")
    _need_columns(name, names, [(label, "label"), (weight, "weight"), (id_column, "id")]
                  + [(c, "categorical") for c in categorical or [] if c != "*"]
                  + [(c, "numeric") for c in numeric or [] if c != "*"]
                  + [(c, "ignore") for c in ignore]
                  + [(c, "interaction") for cross in crosses for c in cross])
    for cross in crosses:
        for c in cross:
            if c in special:
                raise ConfigError(f"column '{c}' is the label, weight or id column; it cannot be in an interaction")
    rest = [c for c in names if c not in special and c not in ignore and c not in listed]
    if categorical is None and numeric is None:
        auto = rest
        star_kind = None
    else:
        star_cat = "*" in (categorical or [])
        star_num = "*" in (numeric or [])
        if star_cat and star_num:
            raise ConfigError("'*' can stand in the categorical or the numeric list, not both")
        auto = []
        star_kind = "cat" if star_cat else "num" if star_num else None

    def kind_of(c):
        """(is_numeric, kind) for column c."""
        if numeric is not None and c in numeric:
            is_num = True
        elif categorical is not None and c in categorical:
            is_num = False
        elif star_kind is not None and c in rest:
            is_num = star_kind == "num"
        else:
            is_num = _auto_numeric(pa, types[c])
        if not _supported(pa, types[c]):
            raise DataError(f"{name}: column '{c}' has type {types[c]}, which cannot be a feature "
                            "(ignore it)")
        if not is_num:
            # a float column listed as categorical is still read as float64 from CSV, so
            # its text is rendered as for a Parquet float column ("0.50" -> "0.5")
            return _Col(c, "cat", _auto_numeric(pa, types[c]))
        return _Col(c, {"value": "num", "categorical": "cat", "bin": "bin", "logsq": "logsq"}[numeric_as], True)

    chosen = set(listed) | set(auto) | (set(rest) if star_kind else set())
    singles = [kind_of(c) for c in names if c in chosen]
    cross_cols = [tuple(kind_of(c) for c in cross) for cross in crosses]
    need = set(special) | {c.name for c in singles} | {c.name for cr in cross_cols for c in cr}
    return _Plan(label, weight, id_column, singles, cross_cols, [c for c in names if c in need])


# ---------------------------------------------------------------------------------------
# wide tables: hashing one record batch
# ---------------------------------------------------------------------------------------

@dataclass
class _Arena:
    off: np.ndarray
    data: np.ndarray
    present: np.ndarray
    vals: np.ndarray | None  # None = all 1


def _arena(pa, arr, col: _Col, name, row0) -> _Arena:
    """The keys (and values) of one column of a batch, rendered in Numba."""
    n = len(arr)
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    off = np.empty(n + 1, np.int64)
    present = np.empty(n, np.uint8)
    if pa.types.is_null(t):
        off[:] = 0
        present[:] = 0
        return _Arena(off, np.zeros(1, np.uint8), present, None)
    if col.kind == "cat" and not col.numeric or col.kind == "cat" and pa.types.is_integer(t):
        prefix = np.frombuffer((col.name + "=").encode("utf-8"), np.uint8)
        if pa.types.is_integer(t):
            big = pa.types.is_uint64(t) and (_pc().max(arr).as_py() or 0) >= 1 << 63
            if big:
                arr, t = arr.cast(pa.large_string()), pa.large_string()
            else:
                a = arr.cast(pa.int64())
                data = np.empty(max(n * (len(prefix) + K.MAX_INT_TEXT), 1), np.uint8)
                K.render_ints(prefix, _fixed_values(a, np.int64), _valid(a), off, data, present)
                return _Arena(off, data, present, None)
        if pa.types.is_floating(t) or pa.types.is_decimal(t):
            a = arr.cast(pa.float64())
            data = np.empty(max(n * (len(prefix) + K.MAX_FLOAT_TEXT), 1), np.uint8)
            K.render_floats(prefix, _fixed_values(a, np.float64), _valid(a), off, data, present)
            return _Arena(off, data, present, None)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                or pa.types.is_large_binary(t)):
            try:
                arr = arr.cast(pa.large_string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise DataError(f"{name}: column '{col.name}' of type {t} cannot be read as text "
                                f"({_one_line(e)})") from None
        offsets, src = _string_buffers(pa, arr)
        size = n * len(prefix) + int(offsets[n] - offsets[0])
        data = np.empty(max(size, 1), np.uint8)
        K.render_strings(prefix, offsets, src, _valid(arr), off, data, present)
        return _Arena(off, data, present, None)
    # numeric columns: value, bin, or categorical text of the float
    a = _float64(pa, arr, name, col.name, "numeric")
    x = _fixed_values(a, np.float64)
    valid = _valid(a)
    if col.kind == "cat":
        prefix = np.frombuffer((col.name + "=").encode("utf-8"), np.uint8)
        data = np.empty(max(n * (len(prefix) + K.MAX_FLOAT_TEXT), 1), np.uint8)
        K.render_floats(prefix, x, valid, off, data, present)
        return _Arena(off, data, present, None)
    if col.kind in ("bin", "logsq"):
        prefix = np.frombuffer((col.name + "=").encode("utf-8"), np.uint8)
        data = np.empty(max(n * (len(prefix) + K.MAX_FLOAT_TEXT + 1), 1), np.uint8)
        got = K.render_bins(prefix, x, valid, off, data, present, col.kind == "logsq")
        vals = None
    else:
        key = np.frombuffer(col.name.encode("utf-8"), np.uint8)
        data = np.empty(max(n * len(key), 1), np.uint8)
        vals = np.empty(n, np.float64)
        got = K.numeric_tokens(key, x, valid, off, data, present, vals)
    if got < 0:
        r = -got - 1
        raise DataError(f"{name}: row {row0 + r + 1}: column '{col.name}' is {x[r]}, not a finite number")
    return _Arena(off, data, present, vals)


def _cross(a: _Arena, b: _Arena) -> _Arena:
    n = len(a.present)
    off = np.empty(n + 1, np.int64)
    present = np.empty(n, np.uint8)
    vals = np.empty(n, np.float64)
    data = np.empty(max(int(a.off[n] + b.off[n]) + n, 1), np.uint8)
    ones = np.ones(n)
    K.cross_tokens(a.off, a.data, a.present, ones if a.vals is None else a.vals,
                   b.off, b.data, b.present, ones if b.vals is None else b.vals,
                   off, data, present, vals)
    return _Arena(off, data, present, vals)


def _wide_batch(pa, rb, plan: _Plan, mask: int, names: NameMap | None, name: str, row0: int,
                progress: int, end_row: int) -> Batch:
    n = rb.num_rows
    col_index = {f.name: i for i, f in enumerate(rb.schema)}
    labels = _numbers(pa, rb.column(col_index[plan.label]), name, plan.label, "label", row0)
    w = None
    if plan.weight is not None:
        w = _numbers(pa, rb.column(col_index[plan.weight]), name, plan.weight, "weight", row0, nonneg=True)
    arenas = {c: _arena(pa, rb.column(col_index[c]), col, name, row0) for c, col in plan.members.items()}
    sources = [arenas[c.name] for c in plan.singles]
    for cross in plan.crosses:
        acc = arenas[cross[0].name]
        for c in cross[1:]:
            acc = _cross(acc, arenas[c.name])
        sources.append(acc)
    nsrc = len(sources)
    tok_ids = np.empty((nsrc, n), np.int64)
    tok_vals = np.ones((nsrc, n), np.float64)
    fp = np.empty(n, np.int64) if names is not None else None
    for j, s in enumerate(sources):
        K.hash_tokens(s.off, s.data, s.present, K.HASH_SEED, mask, tok_ids[j])
        if s.vals is not None:
            tok_vals[j] = s.vals
        if names is not None:
            K.hash_tokens(s.off, s.data, s.present, K.FINGERPRINT_SEED, 0xFFFFFFFF, fp)
            names.observe(tok_ids[j], fp, s.off, s.data)
    indptr = np.empty(n + 1, np.int64)
    ids = np.empty(max(nsrc * n, 1), np.int64)
    values = np.empty(max(nsrc * n, 1), np.float64)
    nnz, max_id = K.assemble_csr(tok_ids, tok_vals, indptr, ids, values)
    nnz = K.canonicalize(indptr, ids, values, n)
    ids_text = _id_text(pa, rb.column(col_index[plan.id_column])) if plan.id_column is not None else None
    return Batch(labels, indptr, ids[:nnz], values[:nnz], int(max_id), end_row, end_row, progress,
                 weights=w, ids_text=ids_text)


# ---------------------------------------------------------------------------------------
# wide tables: readers
# ---------------------------------------------------------------------------------------

def _csv_options(fmt, header, columns, delimiter, types=None, include=None, block_size=1 << 20):
    import pyarrow.csv as pcsv

    delim = delimiter or ("\t" if fmt == "tsv" else ",")
    ro = pcsv.ReadOptions(
        block_size=block_size,
        column_names=list(columns) if columns else None,
        autogenerate_column_names=not header and not columns,
        skip_rows=1 if header and columns else 0,
    )
    po = pcsv.ParseOptions(delimiter=delim, quote_char=False if delim == "\t" else '"')
    co = pcsv.ConvertOptions(column_types=types or None, include_columns=include,
                             strings_can_be_null=False)
    return ro, po, co


def _open_csv(path, fmt, header, columns, delimiter, types=None, include=None):
    """(InputStream, pyarrow CSV StreamingReader) over a possibly compressed text file."""
    pa = _pa()
    import pyarrow.csv as pcsv

    src = InputStream(path)
    try:
        ro, po, co = _csv_options(fmt, header, columns, delimiter, types, include)
        with _arrow_errors(display_name(path)):
            reader = pcsv.open_csv(pa.PythonFile(src.f, mode="r"), read_options=ro,
                                   parse_options=po, convert_options=co)
    except BaseException:
        src.close()
        raise
    return src, reader


def iter_tabular(path: str, *, fmt: str | None = None, label: str = "label", categorical=None,
                 numeric=None, ignore=(), interactions=(), numeric_as: str = "value",
                 header: bool = True, columns=None, bits: int = 24, batch_rows: int = BATCH_ROWS,
                 names: NameMap | None = None, weight: str | None = None,
                 id_column: str | None = None, delimiter: str | None = None, start_row: int = 0,
                 shuffle_seed=None):
    """Yield hashed Batches (ids < 2**bits) from a wide Parquet or CSV/TSV file (module doc).

    fmt: "parquet", "csv" or "tsv" (None: detect_format). label: the label column
    (positive iff > 0). categorical / numeric: lists of columns (or comma-separated
    strings) that select the features and their kind; "*" = every other column; None for
    both = every column, typed automatically. ignore: columns never used as single
    features. interactions: crosses, each "a^b" or ("a", "b") (two or more columns).
    numeric_as: "value" | "categorical" | "bin" for numeric columns. header / columns:
    CSV/TSV only: whether the first line names the columns; `columns` gives the names
    (and replaces a header line). names: a NameMap to fill with slot -> `column=value`.
    weight / id_column: optional weight column (Batch.weights) and id column
    (Batch.ids_text, one str per row), never features. delimiter: overrides , or TAB. start_row: resume
    (= a batch's end_offset). shuffle_seed: Parquet only, read the row groups in a seeded order.
    """
    pa = _pa()
    if numeric_as not in NUMERIC_AS:
        raise ConfigError(f"numeric_as must be one of {', '.join(NUMERIC_AS)}, got {numeric_as!r}")
    if not isinstance(bits, int) or not 1 <= bits <= 40:
        raise ConfigError(f"bits must be an integer in 1..40, got {bits}")
    if batch_rows < 1:
        raise ConfigError(f"batch_rows must be >= 1, got {batch_rows}")
    mask = (1 << min(bits, 32)) - 1
    fmt = (fmt or detect_format(path)).lower()
    fmt = {"pq": "parquet", "tab": "tsv"}.get(fmt, fmt)
    name = display_name(path)
    opts = dict(label=label, categorical=categorical, numeric=numeric, ignore=ignore,
                interactions=interactions, numeric_as=numeric_as, weight=weight, id_column=id_column)
    if fmt == "parquet":
        if columns:
            raise ConfigError("columns names a CSV/TSV file's columns; a Parquet file has its own")
        pf = _open_parquet(path)
        plan = _make_plan(pa, name, pf.schema_arrow, **opts)
        progress = _parquet_progress(path, pf)
        row = start_row
        with _arrow_errors(name):
            for rb in _parquet_batches(pf, plan.read, batch_rows, start_row, shuffle_seed):
                end = row + rb.num_rows
                yield _wide_batch(pa, rb, plan, mask, names, name, row, progress(end), end)
                row = end
        return
    if fmt not in ("csv", "tsv"):
        raise DataError(f"{name}: is {fmt}, not a table (Parquet, CSV or TSV)")
    # pass 1: names and inferred types from the first block
    src, reader = _open_csv(path, fmt, header, columns, delimiter)
    schema = reader.schema
    plan = _make_plan(pa, name, schema, **opts)
    if path == "-":  # stdin cannot be read twice: keep the inferred types
        it = reader
    else:
        src.close()
        types = {plan.label: pa.float64()}
        if plan.weight is not None:
            types[plan.weight] = pa.float64()
        if plan.id_column is not None:
            types[plan.id_column] = pa.string()
        for c, col in plan.members.items():
            types[c] = pa.float64() if col.numeric else pa.string()
        src, reader = _open_csv(path, fmt, header, columns, delimiter, types, plan.read)
        it = reader
    row = start_row
    try:
        with _arrow_errors(name):
            for rb in _rechunk(it, batch_rows, skip=start_row):
                end = row + rb.num_rows
                yield _wide_batch(pa, rb, plan, mask, names, name, row, src.raw_pos(), end)
                row = end
    finally:
        src.close()
