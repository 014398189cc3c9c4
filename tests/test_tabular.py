"""Parquet and CSV/TSV input (ftrl_cli.readers): sparse Parquet, wide tables hashed with
MurmurHash3, the name map, format detection and the Parquet writer."""

import gzip
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftrl_cli import kernels as H
from ftrl_cli import readers as T
from ftrl_cli.errors import ConfigError, DataError
from ftrl_cli.readers import iter_libsvm

ROOT = pathlib.Path(__file__).resolve().parent.parent
CTR = ROOT / "tests" / "data" / "ctr"
AGARICUS = ROOT / "sample_data" / "agaricus.txt.train"
CRITEO_COLS = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
MASK20 = (1 << 20) - 1


def mm(key, seed=0):
    b = key.encode("utf-8")
    return int(H.murmur3_32(np.frombuffer(b, np.uint8) if b else np.zeros(0, np.uint8), 0, len(b), seed))


def collect(batches):
    """Copies of every batch's arrays (batches may reuse buffers)."""
    out = []
    for b in batches:
        out.append(dict(labels=b.labels.copy(), indptr=b.indptr.copy(), ids=b.ids.copy(),
                        values=b.values.copy(), max_id=b.max_id, end_offset=b.end_offset,
                        end_line=b.end_line,
                        weights=None if b.weights is None else b.weights.copy()))
    return out


def concat(batches):
    """One CSR from many batches: labels, indptr, ids, values (and weights)."""
    labels = np.concatenate([b["labels"] for b in batches])
    ids = np.concatenate([b["ids"] for b in batches])
    values = np.concatenate([b["values"] for b in batches])
    lens = np.concatenate([np.diff(b["indptr"]) for b in batches])
    indptr = np.concatenate([[0], np.cumsum(lens)])
    return labels, indptr, ids, values


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for k in ("labels", "indptr", "ids", "values"):
            assert x[k].dtype == y[k].dtype, k
            assert np.array_equal(x[k], y[k]), k
        assert x["max_id"] == y["max_id"]
        assert x["end_offset"] == y["end_offset"]


def row_keys(batch, r):
    return set(batch["ids"][batch["indptr"][r]:batch["indptr"][r + 1]].tolist())


# ---------------------------------------------------------------------------------------
# wide tables: the three CTR samples through CSV/TSV and Parquet
# ---------------------------------------------------------------------------------------

def criteo(path, **kw):
    if str(path).endswith(".tsv") or str(path).endswith(".tsv.gz"):
        kw.setdefault("header", False)
        kw.setdefault("columns", CRITEO_COLS)
    return collect(T.iter_tabular(str(path), bits=20, batch_rows=300, **kw))


def test_criteo_tsv_and_parquet_give_identical_batches():
    a = criteo(CTR / "criteo_train_head1000.tsv")
    b = criteo(CTR / "criteo_train_head1000.parquet")
    assert [x["end_offset"] for x in a] == [300, 600, 900, 1000]
    assert_same_batches(a, b)
    assert (a[0]["ids"] < 2**20).all()


def test_criteo_rows_are_the_hashed_cells():
    with open(CTR / "criteo_train_head1000.tsv") as f:
        first = f.readline().rstrip("\n").split("\t")
    b = criteo(CTR / "criteo_train_head1000.tsv")[0]
    expected = {mm(f"{c}={v}") & MASK20 for c, v in zip(CRITEO_COLS[1:], first[1:]) if v != ""}
    assert row_keys(b, 0) == expected
    assert b["labels"][0] == float(first[0])
    r = b["indptr"]
    assert np.all(np.diff(b["ids"][r[0]:r[1]]) > 0)  # sorted, no repeats


def test_criteo_bins_and_numeric_lists():
    ints = [f"I{i}" for i in range(1, 14)]
    kw = dict(numeric=ints, categorical="*", numeric_as="bin")
    a = criteo(CTR / "criteo_train_head1000.tsv", **kw)
    b = criteo(CTR / "criteo_train_head1000.parquet", **kw)
    assert_same_batches(a, b)
    with open(CTR / "criteo_train_head1000.tsv") as f:
        first = f.readline().rstrip("\n").split("\t")
    want = set()
    for c, v in zip(CRITEO_COLS[1:], first[1:]):
        if v == "":
            continue
        if c in ints:
            x = float(v)
            k = int(np.frexp(1 + abs(x))[1]) - 1
            want.add(mm(f"{c}={'-' if x < 0 else ''}{k}") & MASK20)
        else:
            want.add(mm(f"{c}={v}") & MASK20)
    assert row_keys(a[0], 0) == want
    # numeric as values: one feature per column, with the count as its value
    v = criteo(CTR / "criteo_train_head1000.parquet", numeric=ints, categorical="*")
    assert_same_batches(v, criteo(CTR / "criteo_train_head1000.tsv", numeric=ints, categorical="*"))
    r0 = slice(v[0]["indptr"][0], v[0]["indptr"][1])
    got = dict(zip(v[0]["ids"][r0].tolist(), v[0]["values"][r0].tolist()))
    for c, x in zip(CRITEO_COLS[1:14], first[1:14]):
        if x not in ("", "0"):
            assert got[mm(c) & MASK20] == float(x)


def avazu(path, **kw):
    return collect(T.iter_tabular(str(path), label="click", ignore=["id"], bits=20, batch_rows=256, **kw))


def test_avazu_csv_and_parquet_give_identical_batches():
    a = avazu(CTR / "avazu_train_head1000.csv")
    b = avazu(CTR / "avazu_train_head1000.parquet")
    assert_same_batches(a, b)
    assert all(np.all(np.diff(x["indptr"]) == 22) for x in a)  # 22 columns, all present


def test_avazu_headerless_csv_with_column_names(tmp_path):
    src = CTR / "avazu_train_head1000.csv"
    lines = src.read_text().splitlines(keepends=True)
    names = lines[0].strip().split(",")
    headerless = tmp_path / "dev.csv"
    headerless.write_text("".join(lines[1:]))
    a = avazu(src)
    b = avazu(headerless, header=False, columns=names)
    assert_same_batches(a, b)
    # column names given for a file that has a header line: they replace it
    c = avazu(src, header=True, columns=names)
    assert_same_batches(a, c)


def talking(path, **kw):
    return collect(T.iter_tabular(str(path), label="is_attributed",
                                  ignore=["click_time", "attributed_time"],
                                  interactions=["app^channel", ("app", "os")], bits=20,
                                  batch_rows=400, **kw))


def test_talkingdata_csv_gzip_and_parquet_give_identical_batches(tmp_path):
    gz = tmp_path / "talkingdata.csv.gz"
    with open(CTR / "talkingdata_head1000.csv", "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    a = talking(CTR / "talkingdata_head1000.csv")
    b = talking(CTR / "talkingdata_head1000.parquet")
    c = talking(gz)
    assert_same_batches(a, b)
    assert_same_batches(a, c)
    with open(CTR / "talkingdata_head1000.csv") as f:
        f.readline()
        ip, app, device, os_, channel = f.readline().split(",")[:5]
    want = {mm(k) & MASK20 for k in (f"ip={ip}", f"app={app}", f"device={device}", f"os={os_}",
                                     f"channel={channel}", f"app={app}^channel={channel}",
                                     f"app={app}^os={os_}")}
    assert row_keys(a[0], 0) == want


def test_timestamps_are_categorical_text():
    # Parquet timestamps become Arrow's ISO text; the CSV has the spreadsheet's text, so the
    # two differ: this is why the test above ignores the time columns.
    a = collect(T.iter_tabular(str(CTR / "talkingdata_head1000.parquet"), label="is_attributed",
                               categorical=["click_time"], bits=32))
    first = pq.ParquetFile(CTR / "talkingdata_head1000.parquet").read_row_group(0).column("click_time")[0]
    text = pa.array([first.as_py()], pa.timestamp("us")).cast(pa.string())[0].as_py()
    assert row_keys(a[0], 0) == {mm(f"click_time={text}")}


# ---------------------------------------------------------------------------------------
# wide tables: typing rules on small hand-made tables
# ---------------------------------------------------------------------------------------

def write_parquet(path, table, **kw):
    pq.write_table(table, str(path), **kw)
    return str(path)


def test_int_and_string_columns_hash_alike(tmp_path):
    t1 = pa.table({"y": [1, 0, 1], "a": pa.array([5, None, -12], pa.int32())})
    t2 = pa.table({"y": [1, 0, 1], "a": pa.array(["5", "", "-12"])})
    t3 = pa.table({"y": [1, 0, 1], "a": pa.array([5.0, float("nan"), -12.0])})
    a = collect(T.iter_tabular(write_parquet(tmp_path / "1.parquet", t1), label="y", bits=32))
    b = collect(T.iter_tabular(write_parquet(tmp_path / "2.parquet", t2), label="y", bits=32))
    c = collect(T.iter_tabular(write_parquet(tmp_path / "3.parquet", t3), label="y", bits=32,
                               categorical=["a"]))
    assert_same_batches(a, b)
    assert_same_batches(a, c)
    assert a[0]["ids"].tolist() == [mm("a=5"), mm("a=-12")]
    assert a[0]["indptr"].tolist() == [0, 1, 1, 2]


def test_float_columns_hash_alike_from_csv_and_parquet(tmp_path):
    csv = tmp_path / "f.csv"
    csv.write_text("label,x,n\n1,0.50,3\n0,,-1e-5\n1,2.0,\n")
    t = pa.table({"label": [1, 0, 1], "x": [0.5, None, 2.0], "n": [3.0, -1e-5, None]})
    p = write_parquet(tmp_path / "f.parquet", t)
    for kw in (dict(categorical=["x", "n"]), dict(numeric_as="categorical"), dict(numeric_as="bin"), {}):
        a = collect(T.iter_tabular(str(csv), bits=32, **kw))
        b = collect(T.iter_tabular(p, bits=32, **kw))
        assert_same_batches(a, b)
    a = collect(T.iter_tabular(str(csv), bits=32, categorical=["x", "n"]))[0]
    assert row_keys(a, 0) == {mm("x=0.5"), mm("n=3")}
    assert row_keys(a, 1) == {mm("n=-0.00001")}
    assert row_keys(a, 2) == {mm("x=2")}


def test_numeric_modes_nulls_and_zeros(tmp_path):
    t = pa.table({"label": [1, 0, 1, 0],
                  "x": pa.array([2.5, 0.0, None, float("nan")]),
                  "s": pa.array(["u", None, "", "v"]),
                  "b": pa.array([True, False, None, True])})
    p = write_parquet(tmp_path / "t.parquet", t)
    v = collect(T.iter_tabular(p, bits=32))[0]
    assert v["indptr"].tolist() == [0, 3, 4, 4, 6]  # 0.0, null, NaN, "" and null skipped
    assert dict(zip(v["ids"][:3].tolist(), v["values"][:3].tolist())) == {
        mm("x"): 2.5, mm("s=u"): 1.0, mm("b=true"): 1.0}
    assert set(v["ids"][3:4].tolist()) == {mm("b=false")}
    c = collect(T.iter_tabular(p, bits=32, numeric_as="categorical"))[0]
    assert row_keys(c, 0) == {mm("x=2.5"), mm("s=u"), mm("b=true")}
    assert row_keys(c, 1) == {mm("x=0"), mm("b=false")}
    b = collect(T.iter_tabular(p, bits=32, numeric_as="bin"))[0]
    assert row_keys(b, 0) == {mm("x=1"), mm("s=u"), mm("b=true")}
    assert row_keys(b, 1) == {mm("x=0"), mm("b=false")}


def test_column_selection(tmp_path):
    t = pa.table({"label": [1, 0], "a": ["p", "q"], "b": [1, 2], "c": [0.5, 1.5], "d": ["x", "y"]})
    p = write_parquet(tmp_path / "t.parquet", t)

    def keys(**kw):
        return row_keys(collect(T.iter_tabular(p, bits=32, **kw))[0], 0)

    assert keys() == {mm("a=p"), mm("b=1"), mm("c"), mm("d=x")}
    assert keys(ignore=["d", "c"]) == {mm("a=p"), mm("b=1")}
    assert keys(categorical=["a"]) == {mm("a=p")}
    assert keys(categorical="a,c") == {mm("a=p"), mm("c=0.5")}
    assert keys(numeric=["b"]) == {mm("b")}
    assert keys(numeric=["b"], categorical=["*"], ignore=["d"]) == {mm("a=p"), mm("b"), mm("c=0.5")}
    assert keys(categorical=["a"], interactions=["a^d", "a^b^d"]) == {
        mm("a=p"), mm("a=p^d=x"), mm("a=p^b=1^d=x")}
    assert keys(categorical=["a"], numeric=["c"], interactions=[("a", "c")]) == {
        mm("a=p"), mm("c"), mm("a=p^c")}
    v = collect(T.iter_tabular(p, bits=32, categorical=["a"], numeric=["c"], interactions=["a^c"]))[0]
    assert dict(zip(v["ids"][:3].tolist(), v["values"][:3].tolist()))[mm("a=p^c")] == 0.5


def test_bits_mask_and_weight_and_id_columns(tmp_path):
    t = pa.table({"label": [1, 0, 1], "w": [0.5, 2.0, 1.0], "rid": ["r1", "r2", "r3"], "a": ["p", "q", "p"]})
    p = write_parquet(tmp_path / "t.parquet", t)
    bs = list(T.iter_tabular(p, bits=4, weight="w", id_column="rid"))
    b = bs[0]
    assert b.ids.tolist() == [mm("a=p") & 15, mm("a=q") & 15, mm("a=p") & 15]
    assert b.weights.tolist() == [0.5, 2.0, 1.0]
    assert b.ids_text == ["r1", "r2", "r3"]
    assert b.max_id == max(b.ids)


def test_resume_at_a_row(tmp_path):
    whole = criteo(CTR / "criteo_train_head1000.parquet")
    for path in (CTR / "criteo_train_head1000.parquet", CTR / "criteo_train_head1000.tsv"):
        resumed = criteo(path, start_row=600)
        assert_same_batches(whole[2:], resumed)
    # a Parquet file with several row groups: only the later ones are read
    t = pq.read_table(CTR / "avazu_train_head1000.parquet")
    p = write_parquet(tmp_path / "rg.parquet", t, row_group_size=100)
    a = avazu(p)
    b = avazu(p, start_row=512)
    assert_same_batches(a[2:], b)


def test_name_map_names_and_collisions():
    names = T.NameMap()
    bs = collect(T.iter_tabular(str(CTR / "criteo_train_head1000.tsv"), header=False,
                                columns=CRITEO_COLS, bits=20, names=names))
    assert len(names) > 1000
    for slot, name in names.items()[:50]:
        assert mm(name) & MASK20 == slot
    # every id of the data has a name
    assert set(np.unique(bs[0]["ids"]).tolist()) <= {s for s, _ in names.items()}
    # tiny table: many keys share slots, and the record counts them
    small = T.NameMap()
    list(T.iter_tabular(str(CTR / "criteo_train_head1000.parquet"), bits=6, names=small))
    assert len(small) <= 64
    assert small.collisions() > 0 and small.keys_seen > 64
    assert sum(small.keys_per_slot().values()) <= small.keys_seen


def test_name_map_is_bounded_and_saves(tmp_path):
    names = T.NameMap(max_entries=100)
    list(T.iter_tabular(str(CTR / "criteo_train_head1000.parquet"), bits=20, names=names))
    assert len(names) == 100 and names.keys_seen <= 100 and names.overflow
    path = tmp_path / "names.tsv"
    names.save(str(path))
    back = T.NameMap.load(str(path))
    assert back.items() == names.items()


def test_names_first_seen_per_slot(tmp_path):
    t = pa.table({"label": [1, 1, 1], "a": ["first", "second", "third"]})
    p = write_parquet(tmp_path / "t.parquet", t)
    names = T.NameMap()
    list(T.iter_tabular(p, bits=1, names=names))  # two slots: collisions are certain
    assert names.keys_seen == 3 and names.collisions() >= 1
    assert names.name(mm("a=first") & 1) == "a=first"


# ---------------------------------------------------------------------------------------
# sparse Parquet
# ---------------------------------------------------------------------------------------

SYNTH_LIBSVM = """\
1 5:1 3:2.5 3:1 9:0
-1
0 1000000000000:1.5 7:-2 # comment
# a comment line

2 qid:3 4:1e-3 2:1
"""


@pytest.mark.parametrize("source", ["agaricus", "synthetic"])
def test_sparse_parquet_from_libsvm_gives_the_same_batches(tmp_path, source):
    if source == "agaricus":
        src = str(AGARICUS)
    else:
        src = str(tmp_path / "s.svm")
        pathlib.Path(src).write_text(SYNTH_LIBSVM)
    out = tmp_path / "s.parquet"
    info = T.convert_to_parquet(iter_libsvm(src, batch_rows=1000), str(out), row_group_rows=2500)
    svm = collect(iter_libsvm(src, batch_rows=700))
    par = collect(T.iter_parquet_sparse(str(out), batch_rows=700))
    assert info["rows"] == sum(len(b["labels"]) for b in svm)
    for x, y in zip(concat(svm), concat(par)):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert [b["max_id"] for b in svm] == [b["max_id"] for b in par]
    schema = pq.read_schema(out)
    assert schema.field("label").type == pa.float64()
    # (convert writes the lists' elements, and the ids list, as required: see sparse_schema)
    ids_t, vals_t = schema.field("indices").type, schema.field("values").type
    assert pa.types.is_list(ids_t) and ids_t.value_type == pa.int64()
    assert pa.types.is_list(vals_t) and vals_t.value_type == pa.float64()
    assert not schema.field("indices").nullable and schema.field("values").nullable
    assert "weight" not in schema.names
    if source == "agaricus":
        assert pq.ParquetFile(out).metadata.num_row_groups == 3
        assert [b["end_offset"] for b in par][:3] == [700, 1400, 2100]


def test_convert_writes_one_hot_rows_as_null_values(tmp_path):
    """Rows whose values are all 1 get a null values list (read back as ones); others
    keep their values. Agaricus is one-hot: its whole values column is null."""
    src = tmp_path / "s.svm"
    src.write_text(SYNTH_LIBSVM)
    for path, all_null in ((AGARICUS, True), (src, False)):
        out = tmp_path / "o.parquet"
        T.convert_to_parquet(iter_libsvm(str(path)), str(out))
        null = pq.read_table(out).column("values").is_null().to_pylist()
        if all_null:
            assert all(null) and len(null) == 6513
        else:
            assert 0 < sum(null) < len(null)
        ones = [all(v == 1.0 for v in row) for row in
                collect_rows(T.iter_parquet_sparse(str(out)))]
        assert null == ones


def collect_rows(batches):
    rows = []
    for b in batches:
        rows += [b.values[b.indptr[r]:b.indptr[r + 1]].tolist() for r in range(b.rows)]
    return rows


def test_sparse_parquet_null_values_row_is_all_ones(tmp_path):
    p = sparse_file(tmp_path, values=pa.array([None, [3.0]], pa.list_(pa.float64())))
    b = collect(T.iter_parquet_sparse(p))[0]
    assert b["ids"].tolist() == [1, 2, 3] and b["values"].tolist() == [1.0, 1.0, 3.0]
    p = sparse_file(tmp_path, values=pa.array([None, None], pa.list_(pa.float64())))
    assert collect(T.iter_parquet_sparse(p))[0]["values"].tolist() == [1.0, 1.0, 1.0]


def test_sparse_parquet_weights_and_ids(tmp_path):
    from ftrl_cli.readers import Batch

    b = Batch(np.array([1.0, 0.0]), np.array([0, 2, 3]), np.array([1, 4, 2]), np.array([1.0, 2.0, 3.0]),
              4, 0, 0, 0, np.array([0.5, 2.0]))
    out = tmp_path / "w.parquet"
    T.convert_to_parquet(iter([b]), str(out))
    got = list(T.iter_parquet_sparse(str(out), weight="weight"))
    assert got[0].weights.tolist() == [0.5, 2.0]
    t = pq.read_table(out).append_column("rid", pa.array(["a", "b"]))
    pq.write_table(t, tmp_path / "w2.parquet")
    got = list(T.iter_parquet_sparse(str(tmp_path / "w2.parquet"), id_column="rid"))
    assert got[0].ids_text == ["a", "b"] and got[0].weights is None


def test_sparse_parquet_types_nulls_and_canonical_rows(tmp_path):
    t = pa.table({
        "y": pa.array([1, 0, 1], pa.int8()),
        "idx": pa.array([[3, 1, 3], None, [7]], pa.list_(pa.int32())),
        "val": pa.array([[1.0, 2.0, 0.5], None, [0.0]], pa.list_(pa.float32())),
    })
    p = write_parquet(tmp_path / "t.parquet", t)
    b = collect(T.iter_parquet_sparse(p, label="y", indices="idx", values="val"))[0]
    assert b["indptr"].tolist() == [0, 2, 2, 2]
    assert b["ids"].tolist() == [1, 3] and b["values"].tolist() == [2.0, 1.5]
    assert b["max_id"] == 3
    # no values column: every value is 1 (the default name may be absent)
    b = collect(T.iter_parquet_sparse(p, label="y", indices="idx"))[0]
    assert b["ids"].tolist() == [1, 3, 7] and b["values"].tolist() == [1.0, 2.0, 1.0]
    b = collect(T.iter_parquet_sparse(p, label="y", indices="idx", values=None))[0]
    assert b["values"].tolist() == [1.0, 2.0, 1.0]


def test_sparse_parquet_resume(tmp_path):
    out = tmp_path / "a.parquet"
    T.convert_to_parquet(iter_libsvm(str(AGARICUS)), str(out), row_group_rows=1000)
    whole = collect(T.iter_parquet_sparse(str(out), batch_rows=500))
    assert_same_batches(whole[5:], collect(T.iter_parquet_sparse(str(out), batch_rows=500, start_batch=5)))
    assert_same_batches(whole[3:], collect(T.iter_parquet_sparse(str(out), batch_rows=500,
                                                                 start_row=whole[2]["end_offset"])))


# ---------------------------------------------------------------------------------------
# errors: one line, naming the file and the column
# ---------------------------------------------------------------------------------------

def sparse_file(tmp_path, **cols):
    base = {"label": pa.array([1.0, 0.0]),
            "indices": pa.array([[1, 2], [3]], pa.list_(pa.int64())),
            "values": pa.array([[1.0, 2.0], [3.0]], pa.list_(pa.float64()))}
    base.update(cols)
    base = {k: v for k, v in base.items() if v is not None}
    return write_parquet(tmp_path / "bad.parquet", pa.table(base))


@pytest.mark.parametrize("cols,kw,words", [
    (dict(label=None), {}, ["no column 'label'", "label"]),
    ({}, dict(indices="idx"), ["no column 'idx'"]),
    ({}, dict(values="vals"), ["no column 'vals'"]),
    ({}, dict(weight="w"), ["no column 'w'", "weight"]),
    (dict(label=pa.array(["a", "b"])), {}, ["column 'label'", "numeric"]),
    (dict(indices=pa.array([1, 2])), {}, ["column 'indices'", "list<int>"]),
    (dict(indices=pa.array([["a"], ["b"]])), {}, ["column 'indices'", "list<int>"]),
    (dict(values=pa.array([["a", "b"], ["c"]])), {}, ["column 'values'", "list<float>"]),
    (dict(label=pa.array([1.0, None])), {}, ["row 2", "column 'label'", "null"]),
    (dict(label=pa.array([1.0, np.inf])), {}, ["row 2", "column 'label'", "finite"]),
    (dict(indices=pa.array([[1, -2], [3]])), {}, ["row 1", "column 'indices'", "negative", "-2"]),
    (dict(indices=pa.array([[1, None], [3]], pa.list_(pa.int64()))), {}, ["row 1", "column 'indices'", "null"]),
    (dict(values=pa.array([[1.0, 2.0], [np.nan]])), {}, ["row 2", "column 'values'", "finite"]),
    (dict(values=pa.array([[1.0], [3.0]])), {}, ["row 1", "column 'values'", "1 values for 2 indices"]),
    (dict(values=pa.array([None, [3.0, 4.0]], pa.list_(pa.float64()))), {},
     ["row 2", "column 'values'", "2 values for 1 indices"]),
    (dict(w=pa.array([1.0, -1.0])), dict(weight="w"), ["row 2", "column 'w'", ">= 0"]),
])
def test_sparse_errors(tmp_path, cols, kw, words):
    p = sparse_file(tmp_path, **cols)
    with pytest.raises(DataError) as e:
        list(T.iter_parquet_sparse(p, **kw))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(p)
    for w in words:
        assert w in msg


def test_sparse_errors_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        list(T.iter_parquet_sparse(str(tmp_path / "missing.parquet")))
    (tmp_path / "x.parquet").write_text("1 1:1\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        list(T.iter_parquet_sparse(str(tmp_path / "x.parquet")))


def test_tabular_errors(tmp_path):
    t = pa.table({"label": pa.array([1.0, None]), "a": ["p", "q"], "x": [1.0, np.inf]})
    p = write_parquet(tmp_path / "t.parquet", t)
    cases = [
        (dict(label="click"), ["no column 'click'", "label"]),
        (dict(categorical=["zz"]), ["no column 'zz'", "categorical"]),
        (dict(interactions=["a^zz"]), ["no column 'zz'", "interaction"]),
        (dict(categorical=["a"]), ["row 2", "column 'label'", "null"]),
    ]
    for kw, words in cases:
        with pytest.raises(DataError) as e:
            list(T.iter_tabular(p, **kw))
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(p), msg
        for w in words:
            assert w in msg, msg
    t = pa.table({"label": [1.0, 0.0], "x": [1.0, -np.inf]})
    p = write_parquet(tmp_path / "u.parquet", t)
    with pytest.raises(DataError, match=r"row 2: column 'x' is -inf"):
        list(T.iter_tabular(p))
    with pytest.raises(ConfigError):
        list(T.iter_tabular(p, numeric_as="log"))
    with pytest.raises(ConfigError):
        list(T.iter_tabular(p, categorical=["x"], numeric=["x"]))
    with pytest.raises(ConfigError):
        list(T.iter_tabular(p, interactions=["x"]))
    with pytest.raises(ConfigError):
        list(T.iter_tabular(p, categorical=["label"]))
    # CSV: a text cell in a numeric column, a short line
    csv = tmp_path / "t.csv"
    csv.write_text("label,x,s\n1,2.5,a\n0,oops,b\n")
    with pytest.raises(DataError) as e:
        list(T.iter_tabular(str(csv), numeric=["x"], categorical=["s"]))
    assert str(e.value).startswith(str(csv)) and "oops" in str(e.value) and "\n" not in str(e.value)
    csv.write_text("label,x,s\n1,2.5,a\n0,3\n")
    with pytest.raises(DataError, match="Expected 3 columns"):
        list(T.iter_tabular(str(csv)))
    with pytest.raises(DataError, match="no such file"):
        list(T.iter_tabular(str(tmp_path / "none.csv")))


# ---------------------------------------------------------------------------------------
# detect_format, writer atomicity, memory, lazy import
# ---------------------------------------------------------------------------------------

def test_detect_format(tmp_path):
    assert T.detect_format(str(CTR / "criteo_train_head1000.parquet")) == "parquet"
    assert T.detect_format(str(CTR / "criteo_train_head1000.tsv")) == "tsv"
    assert T.detect_format(str(CTR / "avazu_train_head1000.csv")) == "csv"
    assert T.detect_format(str(AGARICUS)) == "libsvm"  # .train: sniffed
    shutil.copy(CTR / "criteo_train_head1000.parquet", tmp_path / "data.csv")
    assert T.detect_format(str(tmp_path / "data.csv")) == "parquet"  # magic wins
    with open(CTR / "criteo_train_head1000.tsv", "rb") as f, gzip.open(tmp_path / "train.txt.gz", "wb") as g:
        g.write(f.read())
    assert T.detect_format(str(tmp_path / "train.txt.gz")) == "tsv"  # Criteo's train.txt
    (tmp_path / "a.txt").write_text("# head\n1 qid:2 3:1 7:0.5\n")
    assert T.detect_format(str(tmp_path / "a.txt")) == "libsvm"
    (tmp_path / "b.data").write_text("a,b\n1,2\n")
    assert T.detect_format(str(tmp_path / "b.data")) == "csv"
    (tmp_path / "c.svm.gz").write_bytes(gzip.compress(b"1 1:1\n"))
    assert T.detect_format(str(tmp_path / "c.svm.gz")) == "libsvm"
    assert T.parquet_layout(str(CTR / "criteo_train_head1000.parquet")) == "wide"
    with pytest.raises(DataError, match="no such file"):
        T.detect_format(str(tmp_path / "nope"))


def test_convert_is_atomic(tmp_path):
    out = tmp_path / "o.parquet"
    out.write_bytes(b"old")

    def failing():
        yield from iter_libsvm(str(AGARICUS), batch_rows=1000)
        raise DataError("boom")

    with pytest.raises(DataError, match="boom"):
        T.convert_to_parquet(failing(), str(out), row_group_rows=1000)
    assert out.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["o.parquet"]  # no temporary file left
    T.convert_to_parquet(iter_libsvm(str(AGARICUS)), str(out))
    assert pq.ParquetFile(out).metadata.num_rows == 6513
    assert sorted(os.listdir(tmp_path)) == ["o.parquet"]
    # no batch at all: a valid empty file
    T.convert_to_parquet(iter(()), str(tmp_path / "e.parquet"))
    assert list(T.iter_parquet_sparse(str(tmp_path / "e.parquet"))) == []


def test_memory_is_bounded_by_the_batch(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n, k = 200_000, 20
    ids = rng.integers(0, 1 << 30, n * k)
    table = pa.table({
        "label": pa.array(rng.integers(0, 2, n).astype(np.float64)),
        "indices": pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), pa.array(ids)),
        "values": pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
                                           pa.array(rng.random(n * k))),
    })
    decoded = table.nbytes  # ~ 67 MB
    p = write_parquet(tmp_path / "big.parquet", table, row_group_size=10_000, compression="zstd")
    del table, ids

    def forbidden(*a, **kw):
        raise AssertionError("the whole file must not be read")

    monkeypatch.setattr(pq, "read_table", forbidden)
    monkeypatch.setattr(pq.ParquetFile, "read", forbidden)
    base = pa.total_allocated_bytes()
    peak = 0
    rows = 0
    for b in T.iter_parquet_sparse(p, batch_rows=5000):
        rows += b.rows
        peak = max(peak, pa.total_allocated_bytes() - base)
    assert rows == n
    assert peak < decoded / 5, (peak, decoded)
    # the wide reader streams too
    wide = pa.table({"label": pa.array(rng.integers(0, 2, n)),
                     "a": pa.array(rng.integers(0, 1000, n)),
                     "s": pa.array(np.char.add("v", rng.integers(0, 50_000, n).astype(str)))})
    decoded = wide.nbytes
    p = write_parquet(tmp_path / "wide.parquet", wide, row_group_size=10_000)
    del wide
    base = pa.total_allocated_bytes()
    peak = 0
    for _b in T.iter_tabular(p, batch_rows=5000):
        peak = max(peak, pa.total_allocated_bytes() - base)
    assert peak < decoded / 5, (peak, decoded)


def test_libsvm_use_never_imports_pyarrow():
    code = ("import sys, ftrl_cli.readers, ftrl_cli.kernels\n"
            "from ftrl_cli.readers import iter_libsvm\n"
            f"assert ftrl_cli.readers.detect_format({str(AGARICUS)!r}) == 'libsvm'\n"
            f"rows = sum(b.rows for b in iter_libsvm({str(AGARICUS)!r}))\n"
            "assert 'pyarrow' not in sys.modules, 'pyarrow was imported'\n"
            "print(rows)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "6513"


_CHILD = r"""
import sys, numpy as np
from ftrl_cli import readers as T
h = 0
for b in T.iter_tabular(sys.argv[1], label="click", ignore=["id"], bits=22, interactions=["C1^site_id"]):
    h = (h * 1000003 + int(np.sum(b.ids * np.arange(1, len(b.ids) + 1)) % (1 << 61))) % (1 << 61)
print(h)
"""


def test_identical_ids_in_two_processes():
    path = str(CTR / "avazu_train_head1000.csv")
    env = dict(os.environ, PYTHONHASHSEED="random")
    outs = {subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True,
                           env=env, check=True).stdout for _ in range(2)}
    h = 0
    for b in T.iter_tabular(path, label="click", ignore=["id"], bits=22, interactions=["C1^site_id"]):
        h = (h * 1000003 + int(np.sum(b.ids * np.arange(1, len(b.ids) + 1)) % (1 << 61))) % (1 << 61)
    assert outs == {f"{h}\n"}


def test_a_shared_slot_is_named_by_every_key_and_counted(tmp_path):
    """Issue 13 item 6: export and inspect name every key of a slot that several keys share
    (joined by '+', first seen first), inspect counts the shared slots of a wide-table
    model, and names.tsv keeps them all through a save, a load and a resume."""
    from ftrl_cli import api

    values = [f"v{i}" for i in range(12)]
    t = pa.table({"label": [i % 2 for i in range(24)], "a": values + values})
    p = write_parquet(tmp_path / "t.parquet", t)
    bits = 2
    by_slot = {}  # the oracle: MurmurHash3 of "a=v", masked
    for v in values:
        by_slot.setdefault(mm(f"a={v}") & ((1 << bits) - 1), []).append(f"a={v}")
    shared = {s: ks for s, ks in by_slot.items() if len(ks) > 1}
    assert shared  # 12 keys in 4 slots

    m = tmp_path / "m"
    api.train([p], m, overrides={"bits": bits, "label_column": "label", "l1": 0.0, "bias": False})
    names = T.NameMap.load(str(m / "names.tsv"))
    for s, ks in by_slot.items():
        assert names.names(s) == ks
    assert names.collisions() == len(shared)
    assert api.inspect(m)["table"]["collisions"] == len(shared)
    out = tmp_path / "w.tsv"
    with open(out, "wb") as f:
        api.export(m, f)
    exported = {line.split("\t")[0] for line in out.read_text().splitlines()}
    for ks in by_slot.values():
        assert "+".join(ks) in exported
    # a resume over the same rows adds no name twice and keeps the counts
    api.train([p], m, resume=True, overrides={"passes": 2})
    again = T.NameMap.load(str(m / "names.tsv"))
    assert {s: again.names(s) for s in by_slot} == by_slot
    assert again.keys_per_slot() == {s: len(ks) for s, ks in shared.items()}
