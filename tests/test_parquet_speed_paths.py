"""The sparse Parquet reader's three paths give the same batches: parquet_own's decoder (the
files `convert` writes), pyarrow's zero-copy path (list columns read straight from their
Arrow buffers) and its general path (pyarrow.compute flatten + cast), and a plain-Python
reading of the file, on the layouts `convert` writes today (required lists), wrote before
(nullable lists, dictionary pages), and others users write; `convert`'s schema; _valid."""

import pathlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftrl_cli.errors import DataError
from ftrl_cli.readers import arrow as A
from ftrl_cli.readers import iter_libsvm
from ftrl_cli.readers import parquet_sparse as P
from ftrl_cli.readers.parquet_own import WRITER_OPTIONS

ROOT = pathlib.Path(__file__).resolve().parent.parent
A9A = ROOT / "tests" / "data" / "a9a_head2000.svm"


def batches(path, **kw):
    out = []
    for b in P.iter_parquet_sparse(str(path), weight_default="weight", **kw):
        out.append(dict(labels=b.labels.copy(), indptr=b.indptr.copy(), ids=b.ids.copy(),
                        values=b.values.copy(), max_id=b.max_id, end=b.end_offset,
                        weights=None if b.weights is None else b.weights.copy()))
    return out


def general_batches(monkeypatch, path, **kw):
    """The batches of pyarrow's general path: parquet_own and the buffer path switched off."""
    with monkeypatch.context() as m:
        m.setattr(P, "own_file", lambda p: None)
        m.setattr(P, "_list_buffers", lambda *a: None)
        return batches(path, **kw)


def arrow_batches(monkeypatch, path, **kw):
    """The batches of pyarrow's buffer path: parquet_own switched off."""
    with monkeypatch.context() as m:
        m.setattr(P, "own_file", lambda p: None)
        return batches(path, **kw)


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], np.ndarray):
                assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), k
            else:
                assert x[k] == y[k], k


def python_rows(path):
    """Each row as (label, {id: value}), read with to_pylist and the format's rules written
    out plainly: a null values row is all ones, repeated ids add, zero values are dropped."""
    t = pq.read_table(path).to_pylist()
    rows = []
    for r in t:
        vals = r.get("values")
        if vals is None:
            vals = [1.0] * len(r["indices"])
        x = {}
        for i, v in zip(r["indices"], vals):
            x[i] = x.get(i, 0.0) + float(v)
        rows.append((float(r["label"]), {i: v for i, v in sorted(x.items()) if v != 0.0}))
    return rows


def rows_of(bs):
    out = []
    for b in bs:
        for r in range(len(b["labels"])):
            a, c = b["indptr"][r], b["indptr"][r + 1]
            out.append((float(b["labels"][r]), dict(zip(b["ids"][a:c].tolist(), b["values"][a:c].tolist()))))
    return out


def write(tmp_path, name, columns, row_group_size, **options):
    p = tmp_path / name
    pq.write_table(pa.table(columns), p, row_group_size=row_group_size, **options)
    return p


def mixed_rows(n, seed, unsorted=False):
    """Rows of 0-6 ids, some with real values (some zero), others all ones."""
    rng = np.random.default_rng(seed)
    labels, ids, vals = [], [], []
    for r in range(n):
        k = int(rng.integers(0, 7))
        row = sorted(rng.choice(50, size=k, replace=False).tolist())
        if unsorted and k > 1 and r % 5 == 0:
            row = row[::-1] + [row[0]]  # (out of order, an id repeated)
        labels.append(float(rng.integers(0, 2)))
        ids.append(row)
        vals.append(None if r % 3 == 0 else [float(v) for v in rng.integers(-2, 4, size=len(row))])
    return labels, ids, vals


LAYOUTS = {
    "nullable int64 (convert before)": (pa.list_(pa.int64()), pa.list_(pa.float64())),
    "required (convert now)": (pa.list_(pa.field("item", pa.int64(), nullable=False)),
                               pa.list_(pa.field("item", pa.float64(), nullable=False))),
    "int32, float32": (pa.list_(pa.int32()), pa.list_(pa.float32())),
    "large lists, uint16": (pa.large_list(pa.uint16()), pa.large_list(pa.float64())),
    "uint64 ids, int values (general path)": (pa.list_(pa.uint64()), pa.list_(pa.int32())),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("unsorted", [False, True])
def test_buffer_path_gives_the_general_path_and_python_batches(tmp_path, monkeypatch, layout, unsorted):
    ids_t, vals_t = LAYOUTS[layout]
    labels, ids, vals = mixed_rows(700, 3, unsorted)
    if "int values" in layout:
        vals = [None if v is None else [int(x) for x in v] for v in vals]
    # row groups of 150 rows, batches of 64: batches are slices of row groups (list arrays
    # with an offset) and joins of two
    p = write(tmp_path, "m.parquet", {"label": pa.array(labels), "indices": pa.array(ids, ids_t),
                                      "values": pa.array(vals, vals_t)}, 150)
    taken = []
    with monkeypatch.context() as m:
        m.setattr(P, "_list_buffers", lambda *a: taken.append(A._list_buffers(*a) is not None) or
                  A._list_buffers(*a))
        fast = batches(p, batch_rows=64)
    assert any(taken) == ("general path" not in layout)  # (the path under test was taken)
    assert_same(fast, general_batches(monkeypatch, p, batch_rows=64))
    assert rows_of(fast) == python_rows(p)
    assert [b["end"] for b in fast][:3] == [64, 128, 192]
    # resuming mid-file reads the same rows from there
    resumed = batches(p, batch_rows=64, start_row=200)
    assert_same(resumed, general_batches(monkeypatch, p, batch_rows=64, start_row=200))
    assert rows_of(resumed) == python_rows(p)[200:]


def test_convert_output_reads_as_the_libsvm_it_came_from(tmp_path, monkeypatch):
    """convert's file (required lists, one-hot rows as null values) gives the text reader's
    batches on both paths; so training from either gives the same model."""
    out = tmp_path / "a.parquet"
    P.convert_to_parquet(iter_libsvm(str(A9A), batch_rows=1000), str(out), row_group_rows=300)
    text = [dict(labels=b.labels.copy(), indptr=b.indptr.copy(), ids=b.ids.copy(), values=b.values.copy(),
                 max_id=b.max_id) for b in iter_libsvm(str(A9A), batch_rows=256)]
    fast = batches(out, batch_rows=256)
    assert_same(fast, general_batches(monkeypatch, out, batch_rows=256))
    for x, y in zip(text, fast):
        for k in ("labels", "indptr", "ids", "values", "max_id"):
            assert np.array_equal(x[k], y[k]), k
    assert len(text) == len(fast)
    f = pq.ParquetFile(out).schema_arrow
    assert not f.field("indices").nullable and not f.field("indices").type.value_field.nullable
    assert f.field("values").nullable and not f.field("values").type.value_field.nullable
    assert pa.types.is_int64(f.field("indices").type.value_type)
    assert pa.types.is_float64(f.field("values").type.value_type)


def test_convert_roundtrip_with_real_values_and_weights(tmp_path, monkeypatch):
    src = tmp_path / "s.svm"
    src.write_text("1 3:0.5 7:1 9:2\n0 1:1 2:1\n1 cost:2 4:1e-3 8:-1\n0\n1 5:1 6:1 7:1\n" * 40)
    out = tmp_path / "s.parquet"
    P.convert_to_parquet(iter_libsvm(str(src), batch_rows=33), str(out), weights="optional", row_group_rows=50)
    fast = batches(out, batch_rows=45)
    assert_same(fast, general_batches(monkeypatch, out, batch_rows=45))
    assert rows_of(fast) == python_rows(out)


@pytest.mark.parametrize("case, words", [
    ("count", ["row 2", "1 values for 2 indices"]),
    ("negative", ["row 2", "negative feature id -4"]),
    ("nonfinite", ["row 1", "inf"]),
])
def test_errors_are_the_same_on_both_paths(tmp_path, monkeypatch, case, words):
    ids = [[1, 2], [3, -4 if case == "negative" else 4]]
    vals = [[float("inf") if case == "nonfinite" else 1.5, 2.0], [1.0] if case == "count" else None]
    p = write(tmp_path, "e.parquet", {"label": pa.array([1.0, 0.0]), "indices": pa.array(ids, pa.list_(pa.int64())),
                                      "values": pa.array(vals, pa.list_(pa.float64()))}, 10)
    own = write(tmp_path, "own.parquet", pq.read_table(p).cast(P.sparse_schema()), 10, **WRITER_OPTIONS)
    assert P.own_file(str(own)) is not None and P.own_file(str(p)) is None
    msgs = []
    for run in (lambda: batches(p), lambda: general_batches(monkeypatch, p), lambda: batches(own)):
        with pytest.raises(DataError) as e:
            run()
        msgs.append(str(e.value).replace("own.parquet", "e.parquet"))
    assert msgs[0] == msgs[1] == msgs[2]
    assert all(w in msgs[0] for w in words), msgs[0]


@pytest.mark.parametrize("kw", [{"batch_rows": 256}, {"batch_rows": 300}, {"batch_rows": 1000, "start_row": 777},
                                {"batch_rows": 100, "start_row": 1234, "shuffle_seed": (5, 1, 0)},
                                {"batch_rows": 5000}])
def test_convert_files_decode_without_pyarrow_as_pyarrow_decodes_them(tmp_path, monkeypatch, kw):
    """parquet_own's batches (row groups cut and joined to exact batches) are pyarrow's,
    for one-hot and real-valued rows with cost weights."""
    src = tmp_path / "s.svm"
    src.write_text(A9A.read_text() + "1 cost:2 4:1e-3 8:-1\n0\n1 cost:0.5 5:1 6:1 7:1\n" * 30)
    out = tmp_path / "s.parquet"
    P.convert_to_parquet(iter_libsvm(str(src), batch_rows=333), str(out), weights="optional", row_group_rows=300)
    assert P.own_file(str(out)) is not None
    own = batches(out, **kw)
    assert own and (any(b["weights"] is not None for b in own) or "shuffle_seed" in kw)
    assert_same(own, arrow_batches(monkeypatch, out, **kw))
    rows = [b["labels"].size for b in own]
    assert all(r == kw["batch_rows"] for r in rows[:-1]) and 0 < rows[-1] <= kw["batch_rows"]


def test_a_damaged_convert_file_is_one_line_naming_it(tmp_path):
    out = tmp_path / "a.parquet"
    P.convert_to_parquet(iter_libsvm(str(A9A), batch_rows=1000), str(out), row_group_rows=300)
    data = bytearray(out.read_bytes())
    data[len(data) // 3:len(data) // 3 + 64] = b"\xff" * 64  # (inside a page)
    out.write_bytes(bytes(data))
    with pytest.raises(DataError) as e:
        batches(out, batch_rows=256)
    assert str(out) in str(e.value) and "\n" not in str(e.value)


def test_null_indices_rows_take_the_general_path(tmp_path):
    """A null ids list is an empty row (the general path's rule), even when Arrow gave it a span."""
    p = write(tmp_path, "n.parquet", {"label": pa.array([1.0, 0.0, 1.0]),
                                      "indices": pa.array([[1, 2], None, [5]], pa.list_(pa.int64()))}, 10)
    b = batches(p)[0]
    assert b["indptr"].tolist() == [0, 2, 2, 3] and b["ids"].tolist() == [1, 2, 5]


def test_list_buffers_of_a_sliced_array():
    arr = pa.array([[1, 2], [3], [], [4, 5, 6], [7]], pa.list_(pa.int64())).slice(1, 3)
    off, el = A._list_buffers(pa, arr, ("int64",))
    flat = el[off[0]:off[-1]]
    assert (off - off[0]).tolist() == [0, 1, 1, 4] and flat.tolist() == [3, 4, 5, 6]
    assert A._list_buffers(pa, arr, ("int32",)) is None  # (an element type not asked for)
    with_null = pa.array([[1], [None]], pa.list_(pa.int64()))
    assert A._list_buffers(pa, with_null, ("int64",)) is None


@pytest.mark.parametrize("start, n", [(0, 21), (3, 11), (8, 13), (13, 0)])
def test_valid_reads_the_bitmap_as_is_valid(start, n):
    rng = np.random.default_rng(start)
    items = [None if rng.random() < 0.4 else float(i) for i in range(40)]
    for arr in (pa.array(items).slice(start, n), pa.array(items, pa.float32()).slice(start, n),
                pa.nulls(n, pa.float64())):
        expect = [x is not None for x in arr.to_pylist()]
        got = A._valid(arr)
        assert got.dtype == np.uint8 and got.tolist() == [int(e) for e in expect]


@pytest.mark.parametrize("multiple", [1, 4])
def test_batches_may_end_with_a_row_group_at_a_multiple_of_the_optimizer_batch(tmp_path, monkeypatch, multiple):
    """With row_multiple, a batch also ends where a row group does when it then holds a
    multiple of row_multiple rows (the text reader's batches end early the same way); the
    rows, in order, are the exact batches' rows. convert caps its groups near 1 M values
    (here: 3,000) at an input batch's end."""
    monkeypatch.setattr(P, "CONVERT_ROW_GROUP_VALUES", 3000)
    out = tmp_path / "a.parquet"
    P.convert_to_parquet(iter_libsvm(str(A9A), batch_rows=101), str(out))
    md = pq.ParquetFile(out).metadata
    groups = [md.row_group(g).num_rows for g in range(md.num_row_groups)]
    assert len(groups) > 5 and all(r % 101 == 0 for r in groups[:-1])  # (cut at input batches' ends)
    exact = batches(out, batch_rows=512)
    short = batches(out, batch_rows=512, row_multiple=multiple)
    rows = [b["labels"].size for b in short]
    assert len(short) > len(exact) and all(r <= 512 for r in rows)
    assert all(r % multiple == 0 for r in rows[:-1])
    ends = set(np.cumsum(groups).tolist())
    assert all(b["end"] in ends or b["labels"].size == 512 for b in short)
    assert rows_of(short) == rows_of(exact) == python_rows(out)
