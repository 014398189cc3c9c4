"""WIDE tables (`iter_tabular`): Parquet or CSV/TSV (with or without a header line) with a
  label column; every other column becomes features, hashed to ids < 2**bits by
  MurmurHash3 of `column=value` (see kernels/hashing.py for the exact bytes):
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
  numeric_as="auto" (the Config default) without a list types each column from its values in
  the file's first batch instead (_profile: row ids ignored, ids and codes categorical,
  counts log2 bins, real values values; large ones log2 bins); the plan records it (`auto`
  in the input_schema) and is reused for every later file, so predict reads as training did.

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

import itertools
import re
import time
import weakref
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .. import kernels as K
from ..errors import ConfigError, DataError
from .arrow import (
    BATCH_ROWS,
    _fixed_values,
    _float64,
    _id_text,
    _need_columns,
    _numbers,
    _open_parquet,
    _pa,
    _parquet_batches,
    _parquet_progress,
    _pc,
    _rechunk,
    _string_buffers,
    _valid,
)
from .batch import Batch
from .detect import detect_format
from .errors import _arrow_errors, _one_line, printable
from .names import NameMap
from .stream import InputStream, display_name, read_once

NUMERIC_AS = ("value", "categorical", "bin", "logsq", "auto")

# numeric_as="auto" with no --categorical/--numeric list: each column's kind is decided from
# its type and its values in the file's first batch (_profile), and recorded in the model
AUTO_MIN_ROWS = 1000  # a column unique on fewer rows is not taken for a row id
AUTO_FEW = 32  # integers with at most this many distinct values: categories
AUTO_VALUE_MAX = 100.0  # real values beyond this magnitude: log2 bins (as values they diverge)
AUTO_COUNT_BUCKETS = "bin"  # the buckets of count columns


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
    label: str | None  # None: the label is not read (predict)
    weight: str | None
    id_column: str | None
    singles: list  # [_Col]
    crosses: list  # [tuple[_Col, ...]]
    read: list  # every column to read, in file order
    auto: list | None = None  # numeric_as="auto": [[column, kind or "ignore", why], ...]

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


def _profile(pa, arr, t) -> tuple:
    """(kind, numeric, reason) of a column typed automatically, from its type t and its
    values `arr` in the first batch: kind "ignore" (unique on every row: a row id), "cat",
    "num" (real values) or a bucket kind (counts, AUTO_COUNT_BUCKETS; large reals, "bin").
    numeric: read as float64 from CSV (else as text). Deterministic: counts, extremes and
    the median only, in a fixed order."""
    pc = _pc()
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), t.value_type
    is_float = pa.types.is_floating(t) or pa.types.is_decimal(t)
    n, nulls = len(arr), arr.null_count
    if pa.types.is_null(t) or nulls == n:
        return ("num" if is_float else "cat"), is_float, "no values in the first batch: by its type"
    if pa.types.is_boolean(t):
        return "cat", False, "boolean"
    if not (is_float or pa.types.is_integer(t)):  # strings, dates, times, binary
        distinct = pc.count_distinct(arr).as_py()
        if nulls == 0 and n >= AUTO_MIN_ROWS and distinct == n:
            return "ignore", False, f"unique on each of the first {n:,} rows (a row id)"
        return "cat", False, f"{distinct:,} distinct values"
    # (statistics only: integers beyond 2**53 may round; uniqueness is counted on `arr` itself)
    x = pc.cast(arr.drop_null(), pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    if is_float:
        x = x[~np.isnan(x)]
        if not len(x):
            return "num", True, "no values in the first batch: by its type"
        if not np.all(np.isfinite(x)) or not np.all(x == np.floor(x)):
            top = float(np.max(np.abs(x)))
            if top <= AUTO_VALUE_MAX:
                return "num", True, f"real values, |x| <= {top:.4g}"
            return "bin", True, f"real values up to |x| = {top:.4g}"
    distinct = pc.count_distinct(arr).as_py()  # (floats: integral from here on)
    # integers written as floats keep their float text, unless beyond float precision
    numeric = is_float and float(np.max(np.abs(x))) < 2.0 ** 53
    if nulls == 0 and n >= AUTO_MIN_ROWS and distinct == n:
        return "ignore", False, f"unique on each of the first {n:,} rows (a row id)"
    if distinct <= AUTO_FEW:
        return "cat", numeric, f"{distinct} distinct integers"
    lo, med, hi = float(np.min(x)), float(np.median(x)), float(np.max(x))
    values, counts = np.unique(x, return_counts=True)
    mode = float(values[np.argmax(counts)])  # (ties: the smallest)
    # counts: 0 or 1 most often, and a long tail far above the median; ids and codes are
    # most often some other value (an app, an os: 3, 19), or not skewed (1001..1010, 1..N)
    if mode in (0.0, 1.0) and hi >= 10 * max(med, 1.0):
        return AUTO_COUNT_BUCKETS, True, f"counts {lo:.15g}..{hi:.15g}, median {med:.15g}, mostly {mode:.0f}"
    return "cat", numeric, f"integer codes, {distinct:,} distinct"


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


def _unique_columns(name, names, hint="") -> None:
    """A table whose columns share a name is refused: which one a flag means (and which one
    a reader returns: CSV the first, Parquet the last) cannot be told."""
    dup = [c for c, k in Counter(names).items() if k > 1]
    if dup:
        where = [i + 1 for i, c in enumerate(names) if c == dup[0]]
        raise DataError(f"{name}: the column name '{dup[0]}' is used by {len(where)} columns (numbers "
                        f"{', '.join(map(str, where))}); give each column its own name{hint}")


def _make_plan(pa, name, schema, *, label, categorical, numeric, ignore, interactions, numeric_as,
               weight, id_column, need_label=True, sample=None) -> _Plan:
    """The features of a file of this (arrow) schema. sample(columns): the file's first
    batch of those columns (None: no rows), looked at only with numeric_as="auto" and no
    categorical/numeric list, to type each column (_profile)."""
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
    _need_columns(name, names, [(label if need_label else None, "label"), (weight, "weight"), (id_column, "id")]
                  + [(c, "categorical") for c in categorical or [] if c != "*"]
                  + [(c, "numeric") for c in numeric or [] if c != "*"]
                  + [(c, "ignore") for c in ignore]
                  + [(c, "interaction") for cross in crosses for c in cross])
    for cross in crosses:
        for c in cross:
            if c in special:
                raise ConfigError(f"column '{c}' is the label, weight or id column; it cannot be in an interaction")
    rest = [c for c in names if c not in special and c not in ignore and c not in listed]
    profiled = {}  # column -> (kind, numeric, why) of numeric_as="auto"
    if categorical is None and numeric is None:
        auto = rest
        star_kind = None
        if numeric_as == "auto":
            looked = [c for c in names if c in set(rest) | {m for cr in crosses for m in cr}]
            batch = sample(looked) if sample is not None and looked else None
            for c in looked:
                if not _supported(pa, types[c]):
                    continue  # (an error below, as for any other typing)
                if batch is None:
                    profiled[c] = _profile(pa, pa.nulls(0, types[c]), types[c])
                else:
                    arr = batch.column(batch.schema.get_field_index(c))
                    profiled[c] = _profile(pa, arr, arr.type)
            auto = [c for c in rest if profiled.get(c, ("cat",))[0] != "ignore"]
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
        if c in profiled:
            kind, num, _ = profiled[c]
            return _Col(c, "cat" if kind == "ignore" else kind, num)  # (ignored: only in a cross)
        if not is_num:
            # a float column listed as categorical is still read as float64 from CSV, so
            # its text is rendered as for a Parquet float column ("0.50" -> "0.5")
            return _Col(c, "cat", _auto_numeric(pa, types[c]))
        # ("auto" with a list: listed numeric columns are values, as before "auto" existed)
        kind = {"value": "num", "categorical": "cat", "bin": "bin", "logsq": "logsq", "auto": "num"}[numeric_as]
        return _Col(c, kind, True)

    chosen = set(listed) | set(auto) | (set(rest) if star_kind else set())
    singles = [kind_of(c) for c in names if c in chosen]
    cross_cols = [tuple(kind_of(c) for c in cross) for cross in crosses]
    plan = _finish_plan(names, label if need_label else None, weight, id_column, singles, cross_cols)
    if numeric_as == "auto" and categorical is None and numeric is None:
        plan.auto = [[c, profiled[c][0], profiled[c][2]] for c in names if c in profiled and c in rest]
    return plan


def _finish_plan(names, label, weight, id_column, singles, crosses) -> _Plan:
    """The plan over a file's columns `names` (the label None: not read)."""
    need = {c for c in (label, weight, id_column) if c is not None}
    need |= {c.name for c in singles} | {c.name for cr in crosses for c in cr}
    return _Plan(label, weight, id_column, singles, crosses, [c for c in names if c in need])


# ---------------------------------------------------------------------------------------
# wide tables: the schema a model records (Config.input_schema), and reading by it
# ---------------------------------------------------------------------------------------

def plan_options(categorical, numeric, ignore, interactions, numeric_as) -> dict:
    """The settings a plan is made from, as the schema records them (JSON values)."""
    return {"categorical": _norm_list(categorical, "categorical"), "numeric": _norm_list(numeric, "numeric"),
            "ignore": _norm_list(ignore, "ignore") or [],
            "interactions": [list(t) for t in _norm_interactions(interactions)], "numeric_as": numeric_as}


def _plan_json(plan: _Plan, columns, options) -> dict:
    """A table model's input_schema: the columns of its first training file as read (header
    or names given), and the features it hashes, with the kind each column was read as."""
    col = lambda c: [c.name, c.kind, c.numeric]  # noqa: E731
    out = {"layout": "table", "columns": list(columns), "singles": [col(c) for c in plan.singles],
           "crosses": [[col(c) for c in cr] for cr in plan.crosses], "options": options}
    if plan.auto is not None:  # (what numeric_as="auto" decided, and why: reported, not read back)
        out["auto"] = plan.auto
    return out


_AUTO_WORDS = {"ignore": "ignored", "cat": "category", "num": "value", "bin": "log2 bins", "logsq": "logsq bins"}


def auto_report(schema) -> list:
    """One line per column of what numeric_as="auto" decided (a table model's input_schema),
    for the log; [] when nothing was decided automatically."""
    rows = (schema or {}).get("auto") or []
    if not rows:
        return []
    width = min(max(len(c) for c, _, _ in rows), 20)
    return (["columns typed by their values in the first batch (flags override):"]
            + [f"  {c:<{width}} {_AUTO_WORDS.get(k, k):<10} {why}" for c, k, why in rows])


def _parquet_sample(pf, columns):
    """The first batch (up to BATCH_ROWS rows of the first row group) of these columns,
    whatever order a run reads the row groups in; None for a file without rows."""
    if pf.metadata.num_row_groups == 0:
        return None
    table = pf.read_row_group(0, columns=columns).slice(0, BATCH_ROWS)
    return table.combine_chunks().to_batches()[0] if table.num_rows else None


def _stored_plan(pa, name, names, schema, options, *, label, weight, id_column) -> _Plan | None:
    """The model's own plan over this file's columns, when its schema holds one made from
    the same settings (flags given to predict/eval that change the features: None, and the
    plan is made from them as before). A feature column the file lacks is an error; the
    file's other columns are not features; each column is read as the kind it had in
    training (so a test file whose first block types a column otherwise reads the same)."""
    if not schema or "singles" not in schema or schema.get("options") != options:
        return None
    singles = [_Col(*c) for c in schema["singles"]]
    crosses = [tuple(_Col(*c) for c in cr) for cr in schema["crosses"]]
    members = [c.name for c in singles] + [c.name for cr in crosses for c in cr]
    _need_columns(name, names, [(label, "label"), (weight, "weight"), (id_column, "id")]
                  + [(c, "a feature of the model") for c in dict.fromkeys(members)])
    return _finish_plan(names, label, weight, id_column, singles, crosses)


def _headerless_names(name, stored, width, label, need_label):
    """Names for a headerless file of `width` columns from the training columns `stored`:
    all of them, or all but the label when the file has one column fewer (a test file
    without labels, which predict reads)."""
    if width == len(stored):
        return list(stored)
    if width == len(stored) - 1 and label in stored:
        if need_label:
            raise DataError(f"{name}: has {width} columns, one fewer than the training data ({len(stored)}); "
                            f"the label column '{label}' is missing")
        return [c for c in stored if c != label]
    shown = ", ".join(stored[:12]) + (", ..." if len(stored) > 12 else "")
    raise DataError(f"{name}: has {width} columns but no header line, and the model was trained on "
                    f"{len(stored)} ({shown}); give --columns to name them")


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
    if plan.label is None:  # (predict without labels)
        labels = np.full(n, np.nan)
    else:
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

def _csv_sample(pa, csv, keep, rename, columns):
    """The first batch of an open CSV reader (its first block, which typed the columns),
    as `columns`; kept in `keep` for a file read once, whose rows it then starts."""
    try:
        rb = csv._next()
    except StopIteration:
        return None
    keep.append(rb)
    if rename is not None:
        rb = pa.RecordBatch.from_arrays(rb.columns, names=rename)
    return pa.RecordBatch.from_arrays([rb.column(rb.schema.get_field_index(c)) for c in columns], names=columns)


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


class _Feed:
    """The bytes pyarrow's CSV reader reads (through pa.PythonFile), from an InputStream.

    pyarrow reads ahead in its own threads, and each block it holds, and the file object
    itself, are Python objects it must release holding the GIL: if that happens while the
    interpreter exits, the thread is killed inside C++ and the process aborts
    ("terminate called without an active exception", exit 134). So the blocks are tracked
    (`_FeedState.blocks`), and _Csv.close() stops the reads and waits until pyarrow has let go
    of every block and of this object.

    With quoting on, the reads also follow CSV quoting (kernels.csv_quote_scan, only over
    blocks that hold a quote), to tell a quote that is never closed: pyarrow would read the
    rest of the file into that one value."""

    def __init__(self, src, state):
        self._src = src
        self._state = state
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1):
        st = self._state
        if st.stopped or n == 0:
            return b""
        block = _Block(n if n > 0 else 1 << 20)
        mv, got = memoryview(block), 0
        while got < len(block):  # a whole block, as a buffered file gives (pyarrow expects it)
            k = self._src.readinto(mv[got:])
            if not k:
                break
            got += k
        mv.release()
        del block[got:]
        st.blocks.add(id(block))
        weakref.finalize(block, st.blocks.discard, id(block))
        if st.quote is not None and got:
            q = st.quote_state
            if q[0] >= 2 or block.find(b'"') >= 0:
                q[1] = -1
                K.csv_quote_scan(np.frombuffer(block, np.uint8), st.delim, st.quote, q)
                if q[1] >= 0:
                    st.open_quote = st.offset + int(q[1])
            else:
                q[0] = 0 if block[-1] in (st.delim, 10, 13) else 1
        st.offset += got
        return block

    def close(self) -> None:
        self.closed = True  # (the InputStream is closed by its _Csv)


class _Block(bytearray):
    """A block handed to pyarrow (a bytearray that can be tracked by a weak reference)."""


class _FeedState:
    def __init__(self, quote: bool, delim: str):
        self.stopped = False
        self.blocks = set()  # ids of the blocks pyarrow still holds
        self.quote = 34 if quote else None
        self.delim = ord(delim)
        self.quote_state = np.array([0, -1], np.int64)
        self.open_quote = -1  # stream offset of the quote that opened the last quoted value
        self.offset = 0

    @property
    def in_quotes(self) -> bool:
        return self.quote is not None and self.quote_state[0] == 2


class _Csv:
    """A CSV/TSV input open for pyarrow's streaming reader: `schema`, `batches()`, and a
    close() that leaves no pyarrow thread holding Python objects (see _Feed). Use as a
    context manager."""

    _WAIT = 5.0  # seconds close() waits for pyarrow's threads at most

    def __init__(self, path, fmt, header, columns, delimiter, types=None, include=None):
        pa = _pa()
        import pyarrow.csv as pcsv

        self.path = path
        self.name = display_name(path)
        self.reader = None
        self.src = InputStream(path)
        ro, po, co = _csv_options(fmt, header, columns, delimiter, types, include)
        self.state = _FeedState(po.quote_char is not False, po.delimiter)
        feed = _Feed(self.src, self.state)
        self._feed = weakref.ref(feed)
        try:
            with _arrow_errors(self.name):
                self.reader = pcsv.open_csv(pa.PythonFile(feed, mode="r"), read_options=ro,
                                            parse_options=po, convert_options=co)
        except BaseException:
            del feed
            self.close()
            raise

    @property
    def schema(self):
        return self.reader.schema

    def raw_pos(self) -> int:
        return self.src.raw_pos()

    def batches(self):
        """The reader's record batches; at the end, an unterminated quote is an error."""
        while True:
            try:
                rb = self._next()
            except StopIteration:
                break
            yield rb
        if self.state.in_quotes:
            raise DataError(self._unterminated())

    def _next(self):
        try:
            return self.reader.read_next_batch()
        except _pa().ArrowInvalid as e:
            if "out of sync with chunker" in str(e) or "straddl" in str(e):
                raise DataError(f"{printable(self.name)}: a quoted value holds a line break across ftrl's "
                                "1 MB read blocks, or a quote (\") is not closed") from None
            raise

    def _unterminated(self) -> str:
        at = self.state.open_quote
        where = f"byte {at + 1}"
        if not self.src.once:  # name the line and column: count the lines before the quote
            try:
                with InputStream(self.path) as f:
                    lines, last_nl, pos = 0, -1, 0
                    buf = bytearray(1 << 20)
                    while pos < at:
                        got = f.readinto(memoryview(buf)[: min(len(buf), at - pos)])
                        if not got:
                            break
                        chunk = memoryview(buf)[:got]
                        k = bytes(chunk).count(b"\n")
                        if k:
                            lines += k
                            last_nl = pos + bytes(chunk).rfind(b"\n")
                        pos += got
                where = f"{lines + 1}:{at - last_nl}"
            except DataError:
                pass
        sep = ":" if where[0].isdigit() else ": at "
        return printable(f"{self.name}{sep}{where}: this quote (\") is never closed, so the rest of "
                         "the file would be read as one value; close it, or remove it")

    def close(self) -> None:
        """Stop pyarrow's reads, wait until it has let go of every block and of the feed,
        then close the input."""
        self.state.stopped = True  # (reads now return end-of-file at once)
        self.reader = None
        deadline = time.monotonic() + self._WAIT
        while (self._feed() is not None or self.state.blocks) and time.monotonic() < deadline:
            time.sleep(0.001)  # (releases the GIL, which pyarrow's threads need to let go)
        self.src.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def iter_tabular(path: str, *, fmt: str | None = None, label: str = "label", categorical=None,
                 numeric=None, ignore=(), interactions=(), numeric_as: str = "value",
                 header: bool = True, columns=None, bits: int = 24, batch_rows: int = BATCH_ROWS,
                 names: NameMap | None = None, weight: str | None = None,
                 id_column: str | None = None, delimiter: str | None = None, start_row: int = 0,
                 shuffle_seed=None, schema: dict | None = None, need_label: bool = True):
    """Yield hashed Batches (ids < 2**bits) from a wide Parquet or CSV/TSV file (module doc).

    fmt: "parquet", "csv" or "tsv" (None: detect_format). label: the label column
    (positive iff > 0). categorical / numeric: lists of columns (or comma-separated
    strings) that select the features and their kind; "*" = every other column; None for
    both = every column, typed automatically. ignore: columns never used as single
    features. interactions: crosses, each "a^b" or ("a", "b") (two or more columns).
    numeric_as: "value" | "categorical" | "bin" | "logsq" for numeric columns, or "auto":
    without a list, every column typed from its values in the first batch. header / columns:
    CSV/TSV only: whether the first line names the columns; `columns` gives the names
    (and replaces a header line). names: a NameMap to fill with slot -> `column=value`.
    weight / id_column: optional weight column (Batch.weights) and id column
    (Batch.ids_text, one str per row), never features. delimiter: overrides , or TAB. start_row: resume
    (= a batch's end_offset). shuffle_seed: Parquet only, read the row groups in a seeded order.
    schema: the model's input_schema (table_schema): its training columns name a headerless
    file given no `columns`, and its features (when made from these settings) are the ones
    read, each column as the kind it had in training. need_label: False reads no label
    (Batch.labels is NaN), so a file without the label column can be predicted.
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
    options = plan_options(categorical, numeric, ignore, interactions, numeric_as)
    opts = dict(label=label, categorical=categorical, numeric=numeric, ignore=ignore,
                interactions=interactions, numeric_as=numeric_as, weight=weight, id_column=id_column,
                need_label=need_label)

    def plan_for(file_schema, sample) -> _Plan:
        plan = _stored_plan(pa, name, list(file_schema.names), schema, options,
                            label=label if need_label else None, weight=weight, id_column=id_column)
        return plan if plan is not None else _make_plan(pa, name, file_schema, sample=sample, **opts)

    if fmt == "parquet":
        if columns:
            raise ConfigError("columns names a CSV/TSV file's columns; a Parquet file has its own")
        pf = _open_parquet(path)
        row = start_row
        try:
            with _arrow_errors(name):
                _unique_columns(name, pf.schema_arrow.names)
                plan = plan_for(pf.schema_arrow, lambda cols: _parquet_sample(pf, cols))
                progress = _parquet_progress(path, pf)
                for rb in _parquet_batches(pf, plan.read, batch_rows, start_row, shuffle_seed):
                    end = row + rb.num_rows
                    yield _wide_batch(pa, rb, plan, mask, names, name, row, progress(end), end)
                    row = end
        finally:
            pf.close()
        return
    if fmt not in ("csv", "tsv"):
        raise DataError(f"{name}: is {fmt}, not a table (Parquet, CSV or TSV)")
    stored_columns = (schema or {}).get("columns")
    with _arrow_errors(name):
        # pass 1: names and inferred types from the first block
        csv = _Csv(path, fmt, header, columns, delimiter)
        rename = None  # names given to the batches of a file read once
        try:
            if not header and not columns and stored_columns:
                # a headerless file read without names: the training columns name it
                columns = _headerless_names(name, stored_columns, len(csv.schema.names), label, need_label)
                if columns != csv.schema.names:
                    if read_once(path):
                        rename = columns
                    else:
                        csv.close()
                        csv = _Csv(path, fmt, header, columns, delimiter)
            file_schema = csv.schema if rename is None else pa.schema(
                [f.with_name(c) for f, c in zip(csv.schema, rename)])
            _unique_columns(name, file_schema.names, "" if columns else
                            " (or replace the header: --columns a,b,... names the columns)")
            first = []  # the first batch, when "auto" typing looked at it
            plan = plan_for(file_schema, lambda cols: _csv_sample(pa, csv, first, rename, cols))
            if not read_once(path):  # (stdin or a FIFO cannot be read twice: keep the inferred types)
                csv.close()
                types = {} if plan.label is None else {plan.label: pa.float64()}
                if plan.weight is not None:
                    types[plan.weight] = pa.float64()
                if plan.id_column is not None:
                    types[plan.id_column] = pa.string()
                for c, col in plan.members.items():
                    types[c] = pa.float64() if col.numeric else pa.string()
                csv = _Csv(path, fmt, header, columns, delimiter, types, plan.read)
            batches = csv.batches()
            if first and read_once(path):  # (looked at, so no longer in the reader)
                batches = itertools.chain(first, batches)
            if rename is not None:
                batches = (pa.RecordBatch.from_arrays(rb.columns, names=rename) for rb in batches)
            row = start_row
            for rb in _rechunk(batches, batch_rows, skip=start_row):
                end = row + rb.num_rows
                yield _wide_batch(pa, rb, plan, mask, names, name, row, csv.raw_pos(), end)
                row = end
        finally:
            csv.close()


def table_schema(path: str, *, fmt: str, label: str = "label", categorical=None, numeric=None, ignore=(),
                 interactions=(), numeric_as: str = "value", header: bool = True, columns=None,
                 weight: str | None = None, id_column: str | None = None, delimiter: str | None = None) -> dict:
    """The input_schema of a model trained on this table (its first training file): the
    columns as read, and the plan iter_tabular makes of them. A file read once (stdin, a
    FIFO) cannot be looked at first: only the layout is recorded."""
    pa = _pa()
    fmt = {"pq": "parquet", "tab": "tsv"}.get(fmt, fmt)
    if fmt != "parquet" and read_once(path):
        return {"layout": "table"}
    name = display_name(path)
    options = plan_options(categorical, numeric, ignore, interactions, numeric_as)
    opts = dict(label=label, categorical=categorical, numeric=numeric, ignore=ignore,
                interactions=interactions, numeric_as=numeric_as, weight=weight, id_column=id_column)
    if fmt == "parquet":
        pf = _open_parquet(path)
        try:
            with _arrow_errors(name):
                file_schema = pf.schema_arrow
                _unique_columns(name, file_schema.names)
                plan = _make_plan(pa, name, file_schema, sample=lambda cols: _parquet_sample(pf, cols), **opts)
        finally:
            pf.close()
    else:
        with _arrow_errors(name), _Csv(path, fmt, header, columns, delimiter) as csv:
            file_schema = csv.schema
            _unique_columns(name, file_schema.names, "" if columns else
                            " (or replace the header: --columns a,b,... names the columns)")
            plan = _make_plan(pa, name, file_schema, sample=lambda cols: _csv_sample(pa, csv, [], None, cols),
                              **opts)
    return _plan_json(plan, file_schema.names, options)
