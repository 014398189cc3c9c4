"""readers/parquet_own.py (ftrl's own decoder of the sparse Parquet it writes) against
pyarrow as the oracle, bit for bit; its kernels (kernels/parquet.py) against plainly written
pure-Python references; damaged and unsupported files."""

import os
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ftrl_cli.kernels.parquet as KP
from ftrl_cli.errors import DataError
from ftrl_cli.readers import parquet_own as PO
from ftrl_cli.readers.parquet_own import WRITER_OPTIONS, open_own

I64 = pa.list_(pa.field("item", pa.int64(), nullable=False))
F64 = pa.list_(pa.field("item", pa.float64(), nullable=False))


def _schema(weight=True, ids_nullable=False, values_nullable=True):
    fields = [pa.field("label", pa.float64(), nullable=False),
              pa.field("indices", I64, nullable=ids_nullable),
              pa.field("values", F64, nullable=values_nullable)]
    if weight:
        fields.append(pa.field("weight", pa.float64()))
    return pa.schema(fields, metadata={b"ftrl.layout": b"sparse"})


def _doubles(rng, n):
    """Doubles of every kind a bit-for-bit check should see: signed zeros, 1.0, inf, NaN
    payloads, subnormals, random bit patterns."""
    bits = rng.integers(0, 1 << 63, n, dtype=np.int64) * rng.choice([1, -1], n)
    x = bits.view(np.float64).copy()
    pick = rng.integers(0, 8, n)
    x[pick == 0] = 1.0
    x[pick == 1] = rng.normal(size=int((pick == 1).sum()))
    x[pick == 2] = -0.0
    x[pick == 3] = np.inf
    return x


def _table(rng, n, *, weight=True, ids_nullable=False, values_nullable=True, max_len=12, big=True,
           pool=None):
    """A random sparse table; pool: ids below it and every double from a pool of that many
    (few distinct values: dictionaries that never fall back to PLAIN)."""
    lens = rng.integers(0, max_len + 1, n)
    lens[rng.random(n) < 0.15] = 0  # empty rows
    nnz = int(lens.sum())
    hi = pool if pool else (1 << 62) - 1 if big else 1 << 20
    ids = rng.integers(0, hi, nnz, dtype=np.int64)
    ids[rng.random(nnz) < 0.3] = hi  # (the largest id ftrl reads, and repeats)
    doubles = _doubles
    if pool:
        few = _doubles(rng, pool)

        def doubles(rng, n):
            return few[rng.integers(0, pool, n)]
    off = np.zeros(n + 1, np.int32)
    np.cumsum(lens, out=off[1:])
    id_mask = pa.array(rng.random(n) < 0.1) if ids_nullable else None
    indices = pa.ListArray.from_arrays(pa.array(off), pa.array(ids), type=I64, mask=id_mask)
    vals = doubles(rng, nnz)
    if values_nullable:
        null = rng.random(n) < 0.3  # (one-hot rows: a null values list)
        vlens = np.where(null, 0, lens)
        voff = np.zeros(n + 1, np.int32)
        np.cumsum(vlens, out=voff[1:])
        keep = np.repeat(~null, lens)
        values = pa.ListArray.from_arrays(pa.array(voff), pa.array(vals[keep]), type=F64, mask=pa.array(null))
    else:
        values = pa.ListArray.from_arrays(pa.array(off), pa.array(vals), type=F64)
    cols = [pa.array(doubles(rng, n)), indices, values]
    if weight:
        w = doubles(rng, n) if pool else rng.random(n)
        cols.append(pa.array(w, mask=rng.random(n) < 0.4))
    return pa.Table.from_arrays(cols, schema=_schema(weight, ids_nullable, values_nullable))


def _write(path, table, rg_rows, **opts):
    with pq.ParquetWriter(path, table.schema, **opts) as w:
        for off in range(0, table.num_rows, rg_rows):
            w.write_table(table.slice(off, rg_rows), row_group_size=rg_rows)
        if table.num_rows == 0:
            w.write_table(table)
    return str(path)


def _check_shapes(f, g, got):
    """What the caller relies on, whatever the data: array types and sizes, offsets from 0,
    never decreasing, ending at the element count; null rows with empty ranges."""
    n = f.row_group_rows[g]
    for name, r in got.items():
        if f.kind(name).startswith("list"):
            off, el, valid = r
            assert off.dtype == np.int64 and off.shape == (n + 1,) and off[0] == 0
            assert np.all(np.diff(off) >= 0) and off[-1] == len(el)
            assert el.dtype == (np.int64 if "int64" in f.kind(name) else np.float64)
            if valid is not None:
                assert valid.dtype == np.uint8 and valid.shape == (n,)
                assert np.all(np.diff(off)[valid == 0] == 0)
        else:
            vals, valid = r
            assert vals.dtype == np.float64 and vals.shape == (n,)
            assert valid is None or (valid.dtype == np.uint8 and valid.shape == (n,))


def _assert_same_as_pyarrow(path):
    f = open_own(path)
    assert f is not None, path
    pf = pq.ParquetFile(path)
    assert f.num_rows == pf.metadata.num_rows
    assert f.row_group_rows == [pf.metadata.row_group(g).num_rows for g in range(pf.metadata.num_row_groups)]
    assert f.columns == pf.schema_arrow.names
    assert f.key_value == {k.decode(): v.decode() for k, v in pf.metadata.metadata.items()}
    try:
        for g in range(len(f.row_group_rows)):
            got = f.read_row_group(g, f.columns)
            _check_shapes(f, g, got)
            want = pf.read_row_group(g)
            for name in f.columns:
                col = want.column(name).combine_chunks()
                if f.kind(name).startswith("list"):
                    off, el, valid = got[name]
                    o = col.offsets.to_numpy()
                    assert np.array_equal(off, o - o[0]), name
                    flat = col.values.to_numpy()[o[0]:o[-1]]
                    assert el.tobytes() == flat.tobytes(), name  # bit for bit
                    if col.null_count:
                        assert np.array_equal(valid, np.asarray(col.is_valid()).astype(np.uint8)), name
                    else:
                        assert valid is None, name
                else:
                    vals, valid = got[name]
                    ok = np.asarray(col.is_valid())
                    assert vals[ok].tobytes() == col.drop_null().to_numpy().tobytes(), name
                    assert np.isnan(vals[~ok]).all()
                    if col.null_count:
                        assert np.array_equal(valid, ok.astype(np.uint8)), name
                    else:
                        assert valid is None, name
    finally:
        f.close()
    return f


# ---------------------------------------------------------------------------------------
# pyarrow as the oracle
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("compression", ["none", "lz4"])
@pytest.mark.parametrize("page_version", ["1.0", "2.0"])
@pytest.mark.parametrize("seed", [1, 2])
def test_same_as_pyarrow_several_pages_and_groups(tmp_path, compression, page_version, seed):
    rng = np.random.default_rng(seed)
    t = _table(rng, 700)
    p = _write(tmp_path / "a.parquet", t, int(rng.integers(90, 300)), use_dictionary=False,
               compression=compression, data_page_version=page_version, write_statistics=seed == 1,
               data_page_size=int(rng.integers(200, 2000)))  # (several pages a column chunk)
    md = pq.ParquetFile(p).metadata
    assert md.row_group(0).column(1).compression == ("LZ4" if compression == "lz4" else "UNCOMPRESSED")
    f = _assert_same_as_pyarrow(p)
    assert [f.kind(c) for c in f.columns] == ["double", "list<int64>", "list<double>?", "double?"]


def test_writer_options_file(tmp_path):
    """WRITER_OPTIONS write what the reader reads, LZ4_RAW (Thrift codec 7): checked in the
    footer's own bytes, as pyarrow names LZ4 and LZ4_RAW alike."""
    rng = np.random.default_rng(3)
    p = _write(tmp_path / "w.parquet", _table(rng, 5000, max_len=40, big=False), 1024, **WRITER_OPTIONS)
    _assert_same_as_pyarrow(p)
    f = open_own(p)
    assert {c.chunks[0][0] for c in f._cols.values()} == {7}
    assert {c.chunks[0][5] for c in f._cols.values()} == {bool(WRITER_OPTIONS["use_dictionary"])}
    f.close()


def test_other_kinds_and_shapes(tmp_path):
    rng = np.random.default_rng(4)
    # nullable ids lists, non-null values lists, no weight column, one-row groups
    t = _table(rng, 60, weight=False, ids_nullable=True, values_nullable=False)
    p = _write(tmp_path / "k.parquet", t, 1, **WRITER_OPTIONS)
    f = _assert_same_as_pyarrow(p)
    assert [f.kind(c) for c in f.columns] == ["double", "list<int64>?", "list<double>"]
    # every values list null (one-hot data), every weight null, every row empty
    n = 50
    empty = pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.int64()), type=I64)
    t = pa.Table.from_arrays([pa.array(np.ones(n)), empty, pa.nulls(n, F64), pa.nulls(n, pa.float64())],
                             schema=_schema())
    for v in ("1.0", "2.0"):
        _assert_same_as_pyarrow(_write(tmp_path / f"e{v}.parquet", t, 16, **{**WRITER_OPTIONS, "data_page_version": v}))
    # no rows at all
    f = _assert_same_as_pyarrow(_write(tmp_path / "z.parquet", t.slice(0, 0), 16, **WRITER_OPTIONS))
    assert f.num_rows == 0


def test_only_named_columns_and_fresh_arrays(tmp_path):
    rng = np.random.default_rng(5)
    p = _write(tmp_path / "c.parquet", _table(rng, 300), 100, **WRITER_OPTIONS)
    with open_own(p) as f:
        a = f.read_row_group(1, ["indices"])
        b = f.read_row_group(1, ["indices", "label"])
        assert list(a) == ["indices"] and list(b) == ["indices", "label"]
        assert not np.shares_memory(a["indices"][1], b["indices"][1])
        keep = a["indices"][1].copy()
        f.read_row_group(2, ["indices"])  # (a later read does not overwrite what was returned)
        assert np.array_equal(a["indices"][1], keep)
        with pytest.raises(IndexError):
            f.read_row_group(3, ["label"])


# ---------------------------------------------------------------------------------------
# dictionary-encoded chunks (pyarrow's default), with and without a fallback to PLAIN
# ---------------------------------------------------------------------------------------

_PLAIN, _PLAIN_DICT, _RLE_DICT = 0, 2, 8


def _pages(path):
    """{(row group, column path): [(page type, values encoding), ...]} from the page headers
    themselves (pyarrow's metadata names a chunk's encodings, not which page has which)."""
    md = pq.ParquetFile(path).metadata
    data = open(path, "rb").read()
    out = {}
    for g in range(md.num_row_groups):
        for c in range(md.num_columns):
            cc = md.row_group(g).column(c)
            pos = cc.dictionary_page_offset if cc.has_dictionary_page else cc.data_page_offset
            end = pos + cc.total_compressed_size
            pages = []
            while pos < end:
                h, pos = PO._struct(data, pos, end)
                enc = {0: (5, 2), 2: (7, 2), 3: (8, 4)}[h[1]]
                pages.append((h[1], h[enc[0]][enc[1]]))
                pos += h[3]
            out[(g, cc.path_in_schema)] = pages
    return out


def _dictionary_opts(rng, compression, page_version, fallback):
    opts = {"use_dictionary": True, "compression": compression, "data_page_version": page_version,
            "write_statistics": False, "data_page_size": int(rng.integers(200, 1500) if fallback else rng.integers(40, 200)),
            "write_batch_size": int(rng.integers(16, 100)),  # (a page, and the fallback test, per batch)
            # (v1 pages: also format 1.0, whose data pages say PLAIN_DICTIONARY)
            "version": "1.0" if page_version == "1.0" and not fallback else "2.6"}
    if fallback:
        opts["dictionary_pagesize_limit"] = int(rng.integers(100, 600))  # (PLAIN pages mid-chunk)
    return opts


@pytest.mark.parametrize("compression", ["none", "lz4"])
@pytest.mark.parametrize("page_version", ["1.0", "2.0"])
@pytest.mark.parametrize("pool", [40, None], ids=["few-values", "many-values"])
def test_dictionary_files_same_as_pyarrow(tmp_path, compression, page_version, pool):
    rng = np.random.default_rng(13 + (pool or 0) + (compression == "lz4") + 2 * (page_version == "2.0"))
    t = _table(rng, 900, pool=pool, big=False, ids_nullable=page_version == "1.0")
    opts = _dictionary_opts(rng, compression, page_version, fallback=pool is None)
    p = _write(tmp_path / "d.parquet", t, int(rng.integers(200, 400)), **opts)
    pages = _pages(p)
    dict_encs = {_PLAIN_DICT, _RLE_DICT}
    assert all(ps[0][0] == 2 for ps in pages.values())  # (a dictionary page first in every chunk)
    data_pages = [[e for _, e in ps[1:]] for ps in pages.values()]
    assert max(map(len, data_pages)) > 2
    if pool:  # every data page dictionary-encoded
        assert {e for ps in data_pages for e in ps} <= dict_encs
        want_enc = _PLAIN_DICT if opts["version"] == "1.0" else _RLE_DICT
        assert {e for ps in data_pages for e in ps} == {want_enc}
    else:  # chunks that begin with dictionary pages and go on with PLAIN ones
        mixed = [ps for ps in data_pages if ps[0] in dict_encs and ps[-1] == _PLAIN]
        assert len(mixed) >= 3 and all(ps == sorted(ps, key=lambda e: e == _PLAIN) for ps in mixed)
    f = _assert_same_as_pyarrow(p)
    assert all(c.chunks[0][5] for c in f._cols.values())  # (read as dictionary chunks)


def test_dictionary_long_runs(tmp_path):
    """Dictionary indices in long RLE runs take next to no bytes: a chunk may hold far more
    elements than its bytes / 8 (a bound that holds for PLAIN chunks only)."""
    rng = np.random.default_rng(14)
    n = 300
    lens = rng.integers(0, 400, n)
    off = np.zeros(n + 1, np.int32)
    np.cumsum(lens, out=off[1:])
    ids = np.repeat(rng.integers(0, 5, n), lens)
    t = pa.Table.from_arrays([pa.array(np.ones(n)), pa.ListArray.from_arrays(pa.array(off), pa.array(ids), type=I64),
                              pa.ListArray.from_arrays(pa.array(off), pa.array(np.full(len(ids), 0.5)), type=F64),
                              pa.array(np.full(n, 2.0))], schema=_schema())
    for v in ("1.0", "2.0"):
        p = _write(tmp_path / f"r{v}.parquet", t, 150, **{**WRITER_OPTIONS, "use_dictionary": True,
                                                          "data_page_version": v})
        md = pq.ParquetFile(p).metadata.row_group(0).column(1)
        assert md.num_values > md.total_uncompressed_size // 8 + 150  # (the case above)
        _assert_same_as_pyarrow(p)


def test_damaged_dictionary_index_is_a_data_error(tmp_path):
    """A page's index bit width set past 32, or to 32 (its indices then past the dictionary
    or the data): one-line DataErrors that name the place."""
    rng = np.random.default_rng(15)
    t = _table(rng, 400, pool=30)
    opts = {**WRITER_OPTIONS, "use_dictionary": True, "compression": "none", "data_page_version": "2.0"}
    p = _write(tmp_path / "d.parquet", t, 200, **opts)
    data = open(p, "rb").read()
    cc = pq.ParquetFile(p).metadata.row_group(1).column(1)  # (the ids of row group 2)
    dh, pos = PO._struct(data, cc.dictionary_page_offset, len(data))
    h, p0 = PO._struct(data, pos + dh[3], len(data))  # (the first data page)
    assert dh[1] == 2 and h[1] == 3 and h[8][4] == _RLE_DICT
    at = p0 + h[8][5] + h[8][6]  # (past the levels: the indices' bit width)
    assert data[at] == 5  # (31 values in the dictionary)
    bad = tmp_path / "b.parquet"
    for width in (33, 32, 255):
        d = bytearray(data)
        d[at] = width
        bad.write_bytes(bytes(d))
        with open_own(bad) as f:
            f.read_row_group(0, f.columns)
            with pytest.raises(DataError, match=r"row group 2 of 2, column 'indices'.*dictionary") as e:
                f.read_row_group(1, f.columns)
            assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------
# files this reader leaves to pyarrow
# ---------------------------------------------------------------------------------------

def _unsupported_tables(rng):
    n = 200
    base = _table(rng, n, big=False, max_len=5)
    ids32 = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)),
                                     pa.array(rng.integers(0, 9, 2 * n, dtype=np.int32)),
                                     type=pa.list_(pa.field("item", pa.int32(), nullable=False)))
    nested = pa.array([[[1, 2], [3]]] * n, pa.list_(pa.list_(pa.int64())))
    return {
        "int32 ids": base.set_column(1, "indices", ids32),
        "nullable elements": base.set_column(1, "indices", base.column(1).cast(pa.list_(pa.int64()))),
        "wide table": pa.table({"label": np.ones(n), "a": np.arange(n), "b": [str(i) for i in range(n)]}),
        "nested list": base.append_column("nested", nested),
        "struct": base.append_column("s", pa.array([{"x": 1.0}] * n)),
        "float32": base.set_column(0, "label", pa.array(np.ones(n, np.float32))),
        "duplicate names": pa.Table.from_arrays([base.column(0), base.column(0)], names=["label", "label"]),
    }


def test_unsupported_files_return_none(tmp_path):
    rng = np.random.default_rng(6)
    for name, t in _unsupported_tables(rng).items():
        p = _write(tmp_path / "u.parquet", t, 64, **WRITER_OPTIONS)
        assert open_own(p) is None, name
    t = _table(rng, 300, big=False, max_len=5)
    for opts in [{"compression": "zstd"}, {"compression": "snappy"}, {"use_dictionary": True, "compression": "zstd"},
                 {"compression": "gzip"}, {"use_dictionary": False, "column_encoding": {"label": "BYTE_STREAM_SPLIT"}},
                 {"use_dictionary": False, "column_encoding": {"values.list.element": "BYTE_STREAM_SPLIT"}},
                 {"use_dictionary": False, "column_encoding": {"indices.list.element": "DELTA_BINARY_PACKED"}}]:
        p = _write(tmp_path / "o.parquet", t, 64, **{**WRITER_OPTIONS, **opts})
        assert open_own(p) is None, opts
        pq.read_table(p)  # (pyarrow reads them)
    # not Parquet, not a file, not there
    (tmp_path / "t.svm").write_text("1 2:3\n" * 20)
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "magic.parquet").write_bytes(b"PAR1PAR1")
    for p in ["t.svm", "empty.parquet", "magic.parquet", "missing.parquet", "."]:
        assert open_own(tmp_path / p) is None, p


# ---------------------------------------------------------------------------------------
# damaged files: DataError or None, never another exception or a hang
# ---------------------------------------------------------------------------------------

def _read_all(path):
    f = open_own(path)
    if f is None:
        return None
    try:
        for g in range(len(f.row_group_rows)):
            got = f.read_row_group(g, f.columns)
            _check_shapes(f, g, got)
    finally:
        f.close()
    return True


_PLAIN_OPTS = {**WRITER_OPTIONS, "use_dictionary": False}
_DICT_OPTS = {**WRITER_OPTIONS, "use_dictionary": True, "dictionary_pagesize_limit": 256}


@pytest.mark.parametrize("opts,pool", [
    (_PLAIN_OPTS, None), ({**_PLAIN_OPTS, "data_page_version": "1.0"}, None), ({**_PLAIN_OPTS, "compression": "none"}, None),
    (_DICT_OPTS, None), ({**_DICT_OPTS, "data_page_version": "1.0"}, 20), ({**_DICT_OPTS, "compression": "none"}, 20)],
    ids=["v2-lz4", "v1-lz4", "v2-none", "dict-fallback-v2-lz4", "dict-v1-lz4", "dict-v2-none"])
def test_random_damage(tmp_path, opts, pool):
    rng = np.random.default_rng(7)
    good = _write(tmp_path / "g.parquet", _table(rng, 120, max_len=6, pool=pool), 50, data_page_size=300, **opts)
    data = bytearray(open(good, "rb").read())
    md = pq.ParquetFile(good).metadata
    chunks = [md.row_group(g).column(c) for g in range(md.num_row_groups) for c in range(md.num_columns)]
    heads = [cc.data_page_offset for cc in chunks]
    heads += [cc.dictionary_page_offset for cc in chunks if cc.has_dictionary_page]
    assert all(cc.has_dictionary_page == opts["use_dictionary"] for cc in chunks)
    footer = len(data) - 8 - struct.unpack("<I", data[-8:-4])[0]
    bad = tmp_path / "b.parquet"
    outcomes = {"none": 0, "error": 0, "read": 0}
    for k in range(300):
        d = bytearray(data)
        kind = k % 5
        if kind == 0:  # anywhere
            for _ in range(int(rng.integers(1, 4))):
                d[int(rng.integers(0, len(d)))] ^= int(rng.integers(1, 256))
        elif kind == 1:  # a page header (sizes, counts, encodings)
            d[int(rng.choice(heads)) + int(rng.integers(0, 24))] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:  # the footer
            d[int(rng.integers(footer, len(d) - 8))] ^= int(rng.integers(1, 256))
        elif kind == 3:  # a forged length: a byte of a page header or footer set to a large varint
            at = int(rng.choice(heads)) + int(rng.integers(0, 16)) if k % 2 else int(rng.integers(footer, len(d) - 8))
            d[at:at + 1] = b"\xff\xff\xff\x7f"
        else:  # truncated, the footer kept (pages past the end of their data)
            cut = int(rng.integers(4, footer))
            d = d[:cut] + d[footer:]
        bad.write_bytes(bytes(d))
        try:
            r = _read_all(bad)
        except DataError as e:
            assert "\n" not in str(e) and str(bad) in str(e) and "row group" in str(e)
            outcomes["error"] += 1
        else:
            outcomes["none" if r is None else "read"] += 1
    assert outcomes["error"] > 20 and outcomes["none"] > 20, outcomes


def test_file_truncated_after_open(tmp_path):
    rng = np.random.default_rng(8)
    p = _write(tmp_path / "t.parquet", _table(rng, 400), 100, **WRITER_OPTIONS)
    f = open_own(p)
    os.truncate(p, 100)
    with pytest.raises(DataError, match="row group 1 of 4"):
        f.read_row_group(0, f.columns)
    f.close()


# ---------------------------------------------------------------------------------------
# kernels against plainly written references
# ---------------------------------------------------------------------------------------

def lz4_reference(src: bytes, cap: int):
    """LZ4 block format, byte by byte: the output (<= cap bytes) or None if malformed."""
    out = bytearray()
    i = 0
    while True:
        if i >= len(src):
            return None
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                if i >= len(src):
                    return None
                lit += src[i]
                i += 1
                if src[i - 1] != 255:
                    break
        if i + lit > len(src) or len(out) + lit > cap:
            return None
        out += src[i:i + lit]
        i += lit
        if i == len(src):
            return bytes(out)
        if i + 2 > len(src):
            return None
        off = src[i] | src[i + 1] << 8
        i += 2
        if off == 0 or off > len(out):
            return None
        ml = token & 15
        if ml == 15:
            while True:
                if i >= len(src):
                    return None
                ml += src[i]
                i += 1
                if src[i - 1] != 255:
                    break
        ml += 4
        if len(out) + ml > cap:
            return None
        for _ in range(ml):
            out.append(out[-off])


def _kernel_lz4(src: bytes, cap: int, pad: int = 0):
    s = np.frombuffer(src, np.uint8)
    dst = np.zeros(cap + pad + 16, np.uint8)
    dst[cap + pad:] = 0xAB  # (guard bytes past the range given)
    n = KP.pq_lz4_raw(s, 0, len(s), dst, pad, pad + cap)
    assert (dst[cap + pad:] == 0xAB).all()  # nothing written past the end
    return None if n < 0 else dst[pad:pad + n].tobytes()


def _lz4_inputs(rng):
    for k in range(120):
        n = int(rng.integers(0, 3000))
        kind = k % 4
        if kind == 0:
            raw = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == 1:  # small ids as int64: LZ4's many short matches at offset 8
            raw = rng.integers(0, 1 << 20, n // 8 + 1, dtype=np.int64).tobytes()
        elif kind == 2:  # long runs and short periods (overlapping matches)
            raw = bytes(np.repeat(rng.integers(0, 4, 40, dtype=np.uint8), rng.integers(1, 300, 40)))
        else:
            raw = (bytes(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8)) * (n // 3 + 1))[:n]
        yield raw


def test_lz4_kernel_decodes_pyarrow_blocks():
    rng = np.random.default_rng(9)
    for raw in _lz4_inputs(rng):
        c = pa.compress(raw, codec="lz4_raw", asbytes=True)
        assert lz4_reference(c, len(raw)) == raw
        assert _kernel_lz4(c, len(raw), pad=int(rng.integers(0, 9))) == raw
        if raw:
            assert _kernel_lz4(c, len(raw) - 1) is None  # (no room: an error, not a write past)


def test_lz4_kernel_matches_reference_on_damaged_blocks():
    rng = np.random.default_rng(10)
    for raw in _lz4_inputs(rng):
        c = bytearray(pa.compress(raw, codec="lz4_raw", asbytes=True))
        for _ in range(5):
            d = bytearray(c)
            if rng.random() < 0.3 and len(d) > 1:
                d = d[:int(rng.integers(0, len(d)))]
            else:
                for _ in range(int(rng.integers(1, 4))):
                    d[int(rng.integers(0, len(d)))] = int(rng.integers(0, 256))
            cap = len(raw) + int(rng.integers(-3, 20))
            cap = max(cap, 0)
            want = lz4_reference(bytes(d), cap)
            assert _kernel_lz4(bytes(d), cap) == want
    for _ in range(300):  # noise
        d = rng.integers(0, 256, int(rng.integers(0, 60)), dtype=np.uint8).tobytes()
        assert _kernel_lz4(d, 100) == lz4_reference(d, 100)


def levels_reference(src: bytes, bit_width: int, count: int, max_level: int):
    """RLE/bit-packed hybrid, plainly: (levels, bytes consumed) or None if malformed."""
    out = []
    i = 0
    while len(out) < count:
        header = shift = 0
        while True:
            if i >= len(src) or shift > 28:
                return None
            header |= (src[i] & 127) << shift
            i += 1
            shift += 7
            if src[i - 1] < 128:
                break
        if header & 1 == 0:
            if i >= len(src) or src[i] > max_level:
                return None
            out += [src[i]] * min(header >> 1, count - len(out))
            i += 1
        else:
            bits = "".join(format(b, "08b")[::-1] for b in src[i:])  # least significant first
            take = min((header >> 1) * 8, count - len(out))
            if take * bit_width > len(bits):
                return None
            vals = [int(bits[j * bit_width:(j + 1) * bit_width][::-1], 2) for j in range(take)]
            if any(v > max_level for v in vals):
                return None
            out += vals
            i += min((header >> 1) * bit_width, len(src) - i)
    return out, i


def _encode_levels(rng, levels, bit_width):
    """A random mix of RLE and bit-packed runs spelling `levels` (as writers may)."""
    out = bytearray()

    def varint(n):
        while n >= 128:
            out.append(n & 127 | 128)
            n >>= 7
        out.append(n)

    i = 0
    while i < len(levels):
        run = int(rng.integers(1, 40))
        if rng.random() < 0.5:  # RLE of the value at i as long as it repeats
            j = i
            while j < len(levels) and j - i < run and levels[j] == levels[i]:
                j += 1
            varint((j - i) << 1)
            out += int(levels[i]).to_bytes((bit_width + 7) // 8, "little")  # (a byte for levels)
            i = j
        else:
            groups = (min(run, len(levels) - i) + 7) // 8
            vals = list(levels[i:i + 8 * groups]) + [0] * (8 * groups - len(levels[i:i + 8 * groups]))
            varint(groups << 1 | 1)
            acc = nbits = 0
            for v in vals:
                acc |= v << nbits
                nbits += bit_width
                while nbits >= 8:
                    out.append(acc & 255)
                    acc >>= 8
                    nbits -= 8
            i += 8 * groups
    return bytes(out)


def _kernel_levels(src: bytes, bit_width, count, max_level, at_level=1):
    s = np.frombuffer(src, np.uint8)
    out = np.full(count + 24, 0xEE, np.uint8)
    st, n_at = KP.pq_levels(s, 0, len(s), bit_width, out, 3, count, max_level, at_level)
    assert (out[:3] == 0xEE).all() and (out[3 + count:] == 0xEE).all()
    if st < 0:
        return None
    got = list(out[3:3 + count])
    assert n_at == got.count(at_level)
    return got, st


def test_levels_kernel_matches_reference():
    rng = np.random.default_rng(11)
    for k in range(200):
        bw = int(rng.integers(1, 9))
        n = int(rng.integers(0, 400))
        top = (1 << bw) - 1
        levels = rng.integers(0, top + 1, n)
        if k % 2:
            levels = np.where(rng.random(n) < 0.9, top, levels)  # (long runs, as def levels)
        src = _encode_levels(rng, [int(x) for x in levels], bw)
        want = levels_reference(src, bw, n, top)
        assert want is not None and want[0] == list(levels)
        assert _kernel_levels(src, bw, n, top) == want
        # the same bytes read with a lower maximum, with damage, or cut short
        assert _kernel_levels(src, bw, n, top // 2) == levels_reference(src, bw, n, top // 2)
        d = bytearray(src + b"\x00" * 4)
        for _ in range(3):
            d[int(rng.integers(0, len(d)))] = int(rng.integers(0, 256))
        assert _kernel_levels(bytes(d), bw, n, top) == levels_reference(bytes(d), bw, n, top)
        cut = src[:int(rng.integers(0, len(src) + 1))]
        assert _kernel_levels(cut, bw, n, top) == levels_reference(cut, bw, n, top)


def dict_indices_reference(src: bytes, n_dict: int, count: int):
    """Dictionary indices, plainly: a byte of bit width, then the RLE/bit-packed hybrid.
    Returns (indices, bytes consumed), or "short" (the data ends before `count` indices)
    or "index" (an index >= n_dict, or a bit width above 32)."""
    if not src:
        return ([], 0) if count == 0 else "short"
    bw = src[0]
    if bw > 32:
        return "index"
    out = []
    i = 1
    while len(out) < count:
        header = shift = 0
        while True:
            if i >= len(src) or shift > 28:
                return "short"
            header |= (src[i] & 127) << shift
            i += 1
            shift += 7
            if src[i - 1] < 128:
                break
        if header & 1 == 0:  # RLE: the index in whole little-endian bytes
            nb = (bw + 7) // 8
            if i + nb > len(src):
                return "short"
            v = int.from_bytes(src[i:i + nb], "little")
            i += nb
            if v >= n_dict:
                return "index"
            out += [v] * min(header >> 1, count - len(out))
        else:
            bits = "".join(format(b, "08b")[::-1] for b in src[i:])  # least significant first
            take = min((header >> 1) * 8, count - len(out))
            if take * bw > len(bits):
                return "short"
            vals = [int(bits[j * bw:(j + 1) * bw][::-1] or "0", 2) for j in range(take)]
            if any(v >= n_dict for v in vals):
                return "index"
            out += vals
            i += min((header >> 1) * bw, len(src) - i)
    return out, i


def _kernel_dict(src: bytes, n_dict, count, dictionary, pre=0, post=0):
    """The kernel on src placed inside other bytes (which it must not read), its output
    between guards; the same forms as dict_indices_reference."""
    buf = np.frombuffer(bytes([0x99]) * pre + src + bytes([0x77]) * post, np.uint8)
    guard = np.int64(-0x1234567)
    out = np.full(count + 10, guard, np.int64)
    st = KP.pq_dict_gather(buf, pre, pre + len(src), dictionary, n_dict, out, 3, count)
    assert (out[:3] == guard).all() and (out[3 + count:] == guard).all()
    if st == KP.PQ_ERR_LEVELS:
        return "short"
    if st == KP.PQ_ERR_DICT_INDEX:
        return "index"
    assert st >= 0, st
    return list(out[3:3 + count]), st


def _dict_inputs(rng):
    """(encoded indices, indices, bit width) of every width 0..32, runs long and short."""
    for k in range(240):
        bw = k % 33
        n = int(rng.integers(0, 300))
        top = min((1 << bw) - 1, 4000)
        idx = rng.integers(0, top + 1, n)
        if k % 3 == 0:  # (long runs of one index: RLE runs)
            idx = np.repeat(idx[:max(n // 30, 1)], 30)[:n]
        yield bytes([bw]) + _encode_levels(rng, [int(x) for x in idx], bw), [int(x) for x in idx], bw


def test_dict_gather_kernel_matches_reference():
    rng = np.random.default_rng(16)
    dictionary = rng.integers(-(1 << 63), (1 << 63) - 1, 4001, dtype=np.int64)
    outcomes = set()
    for src, idx, bw in _dict_inputs(rng):
        n = len(idx)
        n_dict = min(1 << bw, 4001)
        want = dict_indices_reference(src, n_dict, n)
        assert want[0] == idx  # (the reference reads what the encoder wrote)
        for pre, post in [(0, 0), (int(rng.integers(1, 9)), int(rng.integers(0, 9)))]:
            got = _kernel_dict(src, n_dict, n, dictionary, pre, post)
            assert got == ([int(dictionary[v]) for v in idx], want[1])
        # a smaller dictionary (indices past it), damage, cuts, fewer indices asked for
        small = int(rng.integers(0, n_dict + 1))
        cases = [(src, small, n)]
        for _ in range(3):
            d = bytearray(src + bytes(4))
            for _ in range(int(rng.integers(1, 4))):
                d[int(rng.integers(0, len(d)))] = int(rng.integers(0, 256))
            cases.append((bytes(d), n_dict, n))
        cases.append((src[:int(rng.integers(0, len(src) + 1))], n_dict, n))
        cases.append((src, n_dict, int(rng.integers(0, n + 1))))
        for s, nd, cnt in cases:
            want = dict_indices_reference(s, nd, cnt)
            if isinstance(want, tuple):
                want = ([int(dictionary[v]) for v in want[0]], want[1])
            assert _kernel_dict(s, nd, cnt, dictionary, 2, int(rng.integers(0, 9))) == want
            outcomes.add(want if isinstance(want, str) else "ok")
    for _ in range(300):  # noise
        s = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
        s = bytes([int(rng.integers(0, 34))]) + s
        nd, cnt = int(rng.integers(0, 4001)), int(rng.integers(0, 50))
        want = dict_indices_reference(s, nd, cnt)
        if isinstance(want, tuple):
            want = ([int(dictionary[v]) for v in want[0]], want[1])
        assert _kernel_dict(s, nd, cnt, dictionary) == want
        outcomes.add(want if isinstance(want, str) else "ok")
    assert outcomes == {"ok", "short", "index"}


def list_rows_reference(rep, dl, max_def, nullable, cap):
    """Rows of a one-level list from its levels: (offsets, valid) or None if impossible."""
    offsets, valid, e = [], [], 0
    last_element = False
    for r, d in zip(rep, dl):
        if r == 0:
            if len(offsets) == cap:
                return None
            offsets.append(e)
            valid.append(1)
        elif r != 1 or not last_element:
            return None
        if d == max_def:
            e += 1
            last_element = True
        elif r == 0 and d == max_def - 1:
            last_element = False
        elif r == 0 and nullable and d == max_def - 2:
            valid[-1] = 0
            last_element = False
        else:
            return None
    return offsets + [e], valid


def test_list_rows_kernel_matches_reference():
    rng = np.random.default_rng(12)
    for k in range(400):
        nullable = bool(k % 2)
        max_def = 2 if nullable else 1
        rows = int(rng.integers(0, 30))
        rep, dl = [], []
        for _ in range(rows):
            kind = rng.integers(0, 4)
            if kind == 0:
                rep.append(0)
                dl.append(max_def - 1)
            elif kind == 1 and nullable:
                rep.append(0)
                dl.append(0)
            else:
                m = int(rng.integers(1, 30))
                rep += [0] + [1] * (m - 1)
                dl += [max_def] * m
        if k % 3 == 0 and rep:  # damage: a level changed
            j = int(rng.integers(0, len(rep)))
            rep[j] = int(rng.integers(0, 3))
            dl[j] = int(rng.integers(0, max_def + 2))
        cap = rows + int(rng.integers(-1, 2)) if k % 5 == 0 else rows
        cap = max(cap, 0)
        r8, d8 = np.array(rep, np.uint8), np.array(dl, np.uint8)
        offsets = np.full(cap + 1, -7, np.int64)
        valid = np.full(cap, 9, np.uint8)
        st, n, e = KP.pq_list_rows(r8, d8, len(rep), max_def, nullable, offsets, valid)
        want = list_rows_reference(rep, dl, max_def, nullable, cap)
        if want is None:
            assert st != KP.PQ_OK
        else:
            assert st == KP.PQ_OK and n == len(want[0]) - 1 and e == want[0][-1]
            assert list(offsets[:n + 1]) == want[0]
            if nullable:
                assert list(valid[:n]) == want[1]


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "f.parquet"
    os.mkfifo(fifo)
    assert open_own(str(fifo)) is None  # (a blocking open would wait here for a writer forever)
