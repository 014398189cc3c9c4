"""The streaming libsvm reader (`ftrl_cli.readers.iter_libsvm`).

Oracles, never ftrl itself:
- scikit-learn's `load_svmlight_file(zero_based=True)` (CSR after sum_duplicates and
  eliminate_zeros) on sklearn's own parser fixtures and on slices of real data sets;
- `ref_parse` below: a few lines of plain Python that implement the documented rules
  (also used by tests/test_reader_fuzz.py);
- Python's `float()` for number parsing;
- byte offsets and line counts computed from the file's bytes.

Real-data slices in tests/data are described in tests/data/READERS_DATA.md.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_svmlight_file

from ftrl_cli import kernels as K
from ftrl_cli import readers
from ftrl_cli.errors import DataError
from ftrl_cli.readers import iter_libsvm

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

SK_FIXTURE_OK = DATA / "svmlight_classification.txt"
SK_FIXTURE_INVALID = DATA / "svmlight_invalid.txt"
SK_FIXTURE_ORDER = DATA / "svmlight_invalid_order.txt"
SK_FIXTURE_MULTILABEL = DATA / "svmlight_multilabel.txt"
REAL_FILES = [
    "a9a_head2000.svm",  # 0/1 one-hot, +1/-1 labels
    "a9a_t_head500.svm",  # max index 122 < 123
    "w8a_head1000_blank.svm",  # trailing spaces, ends with a blank line
    "url_day0_mini.svm",  # ids up to 3.2 M, real values
    "rcv1_head80.svm",  # TF-IDF values like 6.2699720e-02, long lines
]
# Batch and buffer sizes that put boundaries everywhere (tiny buffers grow per line).
CONFIGS = {
    "default": {},
    "rows7_chunk64": dict(batch_rows=7, chunk_bytes=64),
    "rows1_chunk13_nnz16": dict(batch_rows=1, chunk_bytes=13, batch_nnz=16),
    "rows1000_nnz100": dict(batch_rows=1000, batch_nnz=100),
    "chunk1": dict(batch_rows=50, chunk_bytes=1),
}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


class Parsed:
    """Concatenated batches (copied), plus the per-batch metadata."""

    def __init__(self, labels, indptr, ids, values, batches):
        self.labels, self.indptr, self.ids, self.values = labels, indptr, ids, values
        self.batches = batches  # [(rows, max_id, end_offset, end_line, raw_bytes)]

    @property
    def rows(self):
        return len(self.labels)

    def row(self, r):
        a, b = self.indptr[r], self.indptr[r + 1]
        return dict(zip(self.ids[a:b].tolist(), self.values[a:b].tolist()))


def check_batch(b, batch_rows):
    """Structural promises of one Batch (checked on every batch of every test)."""
    assert 1 <= b.rows <= batch_rows
    assert b.labels.dtype == np.float64 and b.values.dtype == np.float64
    assert b.indptr.dtype == np.int64 and b.ids.dtype == np.int64
    assert len(b.indptr) == b.rows + 1 and b.indptr[0] == 0
    assert np.all(np.diff(b.indptr) >= 0)
    assert b.indptr[-1] == len(b.ids) == len(b.values)
    assert np.all(np.isfinite(b.labels)) and np.all(np.isfinite(b.values))
    assert np.all(b.values != 0), "explicit zeros must be dropped"
    assert np.all(b.ids >= 0) and np.all(b.ids < 2**62)
    for r in range(b.rows):
        seg = b.ids[b.indptr[r] : b.indptr[r + 1]]
        assert np.all(np.diff(seg) > 0), "ids within a row must be sorted and unique"
    if len(b.ids):
        assert b.max_id >= b.ids.max()
    assert b.max_id < 2**62


def read_all(path, **kw) -> Parsed:
    labels, ids, values, indptr, batches = [], [], [], [0], []
    for b in iter_libsvm(str(path), **kw):
        check_batch(b, kw.get("batch_rows", readers.BATCH_ROWS))
        labels.append(b.labels.copy())
        ids.append(b.ids.copy())
        values.append(b.values.copy())
        indptr.extend((b.indptr[1:] + indptr[-1]).tolist())
        batches.append((b.rows, b.max_id, b.end_offset, b.end_line, b.raw_bytes))
    cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.empty(0, dt)  # noqa: E731
    return Parsed(cat(labels, np.float64), np.array(indptr, np.int64), cat(ids, np.int64),
                  cat(values, np.float64), batches)


def read_error(path, **kw) -> str:
    with pytest.raises(DataError) as ei:
        for _ in iter_libsvm(str(path), **kw):
            pass
    msg = str(ei.value)
    assert "\n" not in msg, "messages are one line"
    return msg


def sk_load(path):
    X, y = load_svmlight_file(str(path), zero_based=True)
    X = X.tocsr()
    X.sum_duplicates()
    X.eliminate_zeros()
    X.sort_indices()
    return X, y


def assert_same_as_sklearn(p: Parsed, path):
    X, y = sk_load(path)
    assert p.rows == X.shape[0]
    assert np.array_equal(p.labels, y)
    assert np.array_equal(p.indptr, X.indptr)
    assert np.array_equal(p.ids, X.indices)
    assert np.array_equal(p.values, X.data)  # exact, not approx
    if len(p.ids):
        assert max(m for _, m, *_ in p.batches) == X.indices.max()


class RefError(Exception):
    def __init__(self, line):
        super().__init__(line)
        self.line = line


_NUM = rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_NUM_RE = re.compile(_NUM + rb"\Z")
_FEAT_RE = re.compile(rb"(\d+):(" + _NUM + rb")\Z")
_QID_RE = re.compile(rb"qid:[+-]?\d+\Z")


def ref_parse(data: bytes):
    """The documented rules in plain Python: returns (labels, rows as {id: value}) or raises
    RefError(first bad line). Lines end at b'\\n'; '#' starts a comment; tokens are split on
    ASCII blanks; `qid:N` (N an integer, optionally signed) is ignored, any other `qid:`
    token is an error; ids are decimal integers < 2**62; numbers are
    decimal (no nan/inf) and must be finite; repeated ids are summed in file order;
    values equal to 0 are dropped."""
    labels, rows = [], []
    for n, line in enumerate(data.split(b"\n"), start=1):
        toks = line.split(b"#", 1)[0].split()
        if not toks:
            continue
        if not _NUM_RE.match(toks[0]):
            raise RefError(n)
        label = float(toks[0])
        if not np.isfinite(label):
            raise RefError(n)
        row = {}
        for t in toks[1:]:
            if t.startswith(b"qid:"):
                if not _QID_RE.match(t):
                    raise RefError(n)
                continue
            m = _FEAT_RE.match(t)
            if not m:
                raise RefError(n)
            i, v = int(m.group(1)), float(m.group(2))
            if i >= 2**62 or not np.isfinite(v):
                raise RefError(n)
            if v != 0:
                row[i] = row.get(i, 0.0) + v
        labels.append(label)
        rows.append({i: v for i, v in sorted(row.items()) if v != 0})
    return labels, rows


def assert_same_as_ref(p: Parsed, data: bytes):
    labels, rows = ref_parse(data)
    assert p.rows == len(labels)
    assert p.labels.tolist() == labels
    for r, want in enumerate(rows):
        assert p.row(r) == want, f"row {r}"


def data_rows(data: bytes):
    """[(line_start, line_end_incl_newline)] of every line holding a row (independent of ftrl)."""
    out, pos = [], 0
    for line in data.split(b"\n"):
        end = min(pos + len(line) + 1, len(data))
        if line.split(b"#", 1)[0].strip():
            out.append((pos, end))
        pos += len(line) + 1
    return out


def assert_positions(p: Parsed, data: bytes):
    """Each batch's end_offset lies between the end of its last row's line and the start of
    the next row's line, on a line boundary; end_line counts the newlines before it."""
    spans = data_rows(data)
    done = 0
    for rows, _max_id, end_offset, end_line, _raw in p.batches:
        done += rows
        lo = spans[done - 1][1]
        hi = spans[done][0] if done < len(spans) else len(data)
        assert lo <= end_offset <= hi
        assert end_offset == len(data) or data[end_offset - 1 : end_offset] == b"\n"
        assert end_line == data[:end_offset].count(b"\n")
    assert done == len(spans)


def write(tmp_path, data: bytes, name="x.svm"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def zstd_compress(data: bytes) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as f:
        f.write(data)
    return sink.getvalue().to_pybytes()


COMPRESSORS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": zstd_compress,
}


# --------------------------------------------------------------------------------------
# 1. agreement with scikit-learn, batch and buffer boundaries
# --------------------------------------------------------------------------------------


def test_test_data_is_what_the_tests_expect():
    assert (DATA / "w8a_head1000_blank.svm").read_bytes().endswith(b" \n\n")
    _, y = load_svmlight_file(str(DATA / "url_day0_mini.svm"), zero_based=True)
    assert len(y) == 200
    X, _ = load_svmlight_file(str(DATA / "url_day0_mini.svm"), zero_based=True)
    assert X.indices.max() > 3_000_000
    X, _ = load_svmlight_file(str(DATA / "rcv1_head80.svm"), zero_based=True)
    assert len(np.unique(X.data)) > 1000  # real-valued


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("name", REAL_FILES)
def test_real_files_match_sklearn(name, config):
    path = DATA / name
    kw = CONFIGS[config]
    p = read_all(path, **kw)
    assert_same_as_sklearn(p, path)
    assert_positions(p, path.read_bytes())
    if kw.get("batch_rows") and not {"chunk_bytes", "batch_nnz"} & set(kw):  # only rows limit batches
        assert all(rows == kw["batch_rows"] for rows, *_ in p.batches[:-1])


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
def test_sklearn_classification_fixture(config):
    p = read_all(SK_FIXTURE_OK, **CONFIGS[config])
    assert_same_as_sklearn(p, SK_FIXTURE_OK)
    assert p.rows == 6
    assert p.labels.tolist() == [1.0, 2.0, 3.0, 4.0, 1.0, 2.0]
    assert p.row(0) == {3: 2.5, 11: -5.2, 16: 1.5}  # TAB and runs of spaces between pairs
    assert p.row(3) == {2: 1.234567890123456e10}
    assert p.row(4) == {} and p.row(5) == {}  # no features / only an explicit 3:0
    assert_positions(p, SK_FIXTURE_OK.read_bytes())


def test_sklearn_invalid_fixture_rejected_with_position():
    with pytest.raises(ValueError):
        load_svmlight_file(str(SK_FIXTURE_INVALID), zero_based=True)
    msg = read_error(SK_FIXTURE_INVALID)
    assert msg.startswith(f"{SK_FIXTURE_INVALID}:1:1: ")
    assert "label" in msg and "python" in msg


def test_sklearn_multilabel_fixture_rejected_with_position():
    with pytest.raises(ValueError):
        load_svmlight_file(str(SK_FIXTURE_MULTILABEL), zero_based=True)
    msg = read_error(SK_FIXTURE_MULTILABEL)
    assert msg.startswith(f"{SK_FIXTURE_MULTILABEL}:2:1: ")  # line 1 is a comment
    assert "label" in msg and "1,0" in msg


def test_unsorted_indices_accepted_unlike_sklearn():
    with pytest.raises(ValueError, match="sorted"):
        load_svmlight_file(str(SK_FIXTURE_ORDER), zero_based=True)
    p = read_all(SK_FIXTURE_ORDER)
    assert p.labels.tolist() == [-1.0]
    assert p.ids.tolist() == [2, 5, 15]
    assert p.values.tolist() == [-5.2, 2.5, 1.5]


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
def test_repeated_ids_are_summed_and_zeros_dropped(tmp_path, config):
    data = (b"1 7:1.5 3:0.25 7:2.25 1:1 7:-0.75\n"  # 7 -> 3.0, unsorted
            b"0 4:1 4:-1 2:0.5\n"  # 4 cancels out -> dropped
            b"-1 3:0 4:0.0 5:-0 6:+0e10 8:.0 9:1\n"  # explicit zeros of every spelling
            b"1 9:1 8:1 7:1 6:1 5:1 4:1 3:1 2:1 1:1 0:1 9:1\n")  # reversed, 9 twice
    p = read_all(write(tmp_path, data), **CONFIGS[config])
    assert p.labels.tolist() == [1.0, 0.0, -1.0, 1.0]
    assert p.row(0) == {1: 1.0, 3: 0.25, 7: 3.0}
    assert p.row(1) == {2: 0.5}
    assert p.row(2) == {9: 1.0}
    assert p.row(3) == {**{i: 1.0 for i in range(9)}, 9: 2.0}
    assert_same_as_ref(p, data)


def test_ids_are_used_as_written_zero_and_one_based(tmp_path):
    p = read_all(write(tmp_path, b"1 0:1 1:2\n0 1:3 4611686018427387903:4\n"))
    assert p.ids.tolist() == [0, 1, 1, 2**62 - 1]
    assert p.batches[0][1] == 2**62 - 1  # max_id


def test_qid_is_ignored(tmp_path):
    data = b"1 qid:3 1:1\n0 qid:3 2:1\n"
    p = read_all(write(tmp_path, data))
    X, y = load_svmlight_file(str(tmp_path / "x.svm"), zero_based=True)
    assert p.labels.tolist() == y.tolist() == [1.0, 0.0]
    assert p.ids.tolist() == X.indices.tolist() == [1, 2]
    # ftrl also skips qid tokens elsewhere in the row (sklearn only allows them after the label)
    data = b"1 1:1 qid:7 3:1 qid:12\n"
    p = read_all(write(tmp_path, data))
    assert p.ids.tolist() == [1, 3]
    assert_same_as_ref(p, data)


def test_labels_any_number_as_written(tmp_path):
    data = b"+1 1:1\n-1 1:1\n0 1:1\n2 1:1\n0.5 1:1\n-3e2 1:1\n1. 1:1\n.5 1:1\n-0 1:1\n"
    p = read_all(write(tmp_path, data))
    assert p.labels.tolist() == [1, -1, 0, 2, 0.5, -300, 1, 0.5, 0]


def test_comments_blank_lines_and_whitespace(tmp_path):
    data = (b"# header\n\n   \n\t\n1 1:1 # trailing\n#1 2:2\n"
            b"  0\t2:2\x0b3:3\x0c   4:4#glued comment\n   # indented comment\n-1#no features\n")
    p = read_all(write(tmp_path, data), batch_rows=2, chunk_bytes=8)
    assert p.labels.tolist() == [1, 0, -1]
    assert [p.row(r) for r in range(3)] == [{1: 1.0}, {2: 2.0, 3: 3.0, 4: 4.0}, {}]
    assert_positions(p, data)
    assert_same_as_ref(p, data)


def test_many_slow_numbers_across_rows(tmp_path):
    # > MAX_SLOW numbers that need float() in one file: the batch must be split, not wrong.
    rng = np.random.default_rng(1)
    toks = [f"{rng.integers(1, 10)}.{rng.integers(10**17, 9 * 10**18)}{rng.integers(10**5)}e-{rng.integers(1, 40)}"
            for _ in range(6 * 1100)]
    lines = [f"{toks[6 * r]} " + " ".join(f"{j + 1}:{toks[6 * r + j + 1]}" for j in range(5))
             for r in range(1100)]
    data = ("\n".join(lines) + "\n").encode()
    p = read_all(write(tmp_path, data), batch_rows=5000)
    assert len(p.batches) >= 2  # MAX_SLOW = 4096 forces a split
    assert p.labels.tolist() == [float(toks[6 * r]) for r in range(1100)]
    assert p.values.tolist() == [float(toks[6 * r + j + 1]) for r in range(1100) for j in range(5)]
    assert_positions(p, data)


def test_row_with_more_slow_numbers_than_max_slow(tmp_path, monkeypatch):
    class CappedNumpy:  # turn the runaway allocation into a quick failure
        def __getattr__(self, name):
            return getattr(np, name)

        def empty(self, shape, dtype=float):
            assert np.prod(shape) < 1 << 24, "runaway allocation"
            return np.empty(shape, dtype)

    monkeypatch.setattr(readers.libsvm, "np", CappedNumpy())  # (the module that allocates)
    toks = [f"0.{k:05d}12345678901234567891" for k in range(1, 5001)]  # 25 digits: slow path
    data = ("1 " + " ".join(f"{i}:{t}" for i, t in enumerate(toks)) + "\n").encode()
    p = read_all(write(tmp_path, data), batch_nnz=1 << 14)
    assert p.values.tolist() == [float(t) for t in toks]


# --------------------------------------------------------------------------------------
# 2. compression, stdin, unreadable inputs
# --------------------------------------------------------------------------------------


def batches_of(path, **kw):
    return [(b.labels.copy(), b.indptr.copy(), b.ids.copy(), b.values.copy(), b.max_id, b.end_offset,
             b.end_line) for b in iter_libsvm(str(path), **kw)]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            assert np.array_equal(u, v)


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_compressed_inputs_give_identical_batches(tmp_path, kind):
    a, b = (DATA / "a9a_head2000.svm").read_bytes()[:40000], (DATA / "rcv1_head80.svm").read_bytes()[:30000]
    data = a[: a.rfind(b"\n") + 1] + b[: b.rfind(b"\n") + 1]
    plain = write(tmp_path, data)
    comp = write(tmp_path, COMPRESSORS[kind](data), "compressed.txt")  # magic bytes, not the name
    for kw in ({}, dict(batch_rows=7, chunk_bytes=64)):
        want = batches_of(plain, **kw)
        assert_same_batches(batches_of(comp, **kw), want)
    size = comp.stat().st_size
    raw = [b.raw_bytes for b in iter_libsvm(str(comp), batch_rows=7)]
    assert all(0 < r <= size for r in raw) and raw == sorted(raw)
    assert_same_as_sklearn(read_all(comp), plain)


def test_concatenated_gzip_members(tmp_path):
    path = write(tmp_path, gzip.compress(b"1 1:1\n") + gzip.compress(b"0 2:2\n"), "two.gz")
    p = read_all(path)
    assert p.labels.tolist() == [1, 0] and p.ids.tolist() == [1, 2]


STDIN_SCRIPT = """
import sys
import numpy as np
from ftrl_cli.errors import DataError
from ftrl_cli.readers import iter_libsvm
parts = {"labels": [], "indptr": [np.zeros(1, np.int64)], "ids": [], "values": []}
try:
    for b in iter_libsvm("-", batch_rows=7, chunk_bytes=64):
        parts["indptr"].append(b.indptr[1:] + parts["indptr"][-1][-1])
        for k in ("labels", "ids", "values"):
            parts[k].append(getattr(b, k).copy())
except DataError as e:
    print(e)
    sys.exit(3)
np.savez(sys.argv[1], **{k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()})
"""


def run_stdin(tmp_path, payload: bytes):
    out = tmp_path / "out.npz"
    r = subprocess.run([sys.executable, "-c", STDIN_SCRIPT, str(out)], input=payload,
                       capture_output=True, cwd=ROOT, timeout=300)
    return r, out


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_stdin(tmp_path, kind):
    data = (DATA / "a9a_head2000.svm").read_bytes()[:20000]
    data = data[: data.rfind(b"\n") + 1]
    payload = data if kind == "plain" else COMPRESSORS[kind](data)
    r, out = run_stdin(tmp_path, payload)
    assert r.returncode == 0, r.stderr.decode()
    got = np.load(out)
    path = write(tmp_path, data)
    p = read_all(path)
    for k in ("labels", "indptr", "ids", "values"):
        assert np.array_equal(got[k], getattr(p, k)), k
    assert_same_as_sklearn(p, path)


@pytest.mark.parametrize("payload", [b"", gzip.compress(b"")], ids=["empty", "empty_gzip"])
def test_stdin_empty(tmp_path, payload):
    r, out = run_stdin(tmp_path, payload)
    assert r.returncode == 0, r.stderr.decode()
    assert len(np.load(out)["labels"]) == 0


def test_stdin_error_names_stdin(tmp_path):
    r, _ = run_stdin(tmp_path, b"1 1:1\n# c\n1 2:x\n")
    assert r.returncode == 3, r.stderr.decode()
    msg = r.stdout.decode().strip()
    assert msg.startswith("<stdin>:3:5: ") and "value" in msg


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_truncated_compressed_file(tmp_path, kind):
    data = (DATA / "a9a_head2000.svm").read_bytes()
    comp = COMPRESSORS[kind](data)
    path = write(tmp_path, comp[: len(comp) // 2], "cut.bin")
    msg = read_error(path)
    assert msg.startswith(f"{path}: ")
    assert "truncat" in msg.lower()


def test_truncated_gzip_tail_only(tmp_path):
    comp = gzip.compress(b"1 1:1\n0 2:1\n")
    path = write(tmp_path, comp[:-4], "cut.gz")  # only part of the ISIZE trailer is missing
    msg = read_error(path)
    assert msg.startswith(f"{path}: ") and "truncated" in msg


def test_corrupt_gzip(tmp_path):
    comp = bytearray(gzip.compress((DATA / "a9a_head2000.svm").read_bytes()))
    comp[-8] ^= 0xFF  # CRC32 trailer
    msg = read_error(write(tmp_path, bytes(comp), "bad.gz"))
    assert "gzip" in msg


def test_parquet_is_rejected_clearly(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data.svm"
    pq.write_table(pa.table({"label": [1, 0], "f": [0.5, 2.0]}), path)
    msg = read_error(path)
    assert msg.startswith(f"{path}: ") and "Parquet" in msg


def test_missing_path(tmp_path):
    path = tmp_path / "nope.svm"
    msg = read_error(path)
    assert msg.startswith(f"{path}: ") and "no such file" in msg


def test_directory(tmp_path):
    msg = read_error(tmp_path)
    assert msg.startswith(f"{tmp_path}: ") and "directory" in msg


# --------------------------------------------------------------------------------------
# 3. bad input: file:line:col: message
# --------------------------------------------------------------------------------------

PREFIX = b"# a comment line\n1 1:1 2:0.5\n\n"  # the bad line is line 4

BAD_LINES = {
    # name: (line, column, words that must be in the message)
    "label_not_a_number": (b"yes 1:1\n", 1, ["label", "'yes'", "not a number"]),
    "label_multilabel_comma": (b"1,0 1:1\n", 1, ["label", "'1,0'"]),
    "value_not_a_number": (b"1 3:abc\n", 5, ["value", "'abc'", "not a number"]),
    "value_trailing_garbage": (b"1 3:1.5x 4:1\n", 5, ["value", "'1.5x'"]),
    "index_colon_without_value": (b"1 3: 4:1\n", 3, ["'3:'", "no value"]),
    "index_colon_at_end_of_line": (b"1 4:1 3:\n", 7, ["'3:'", "no value"]),
    "index_without_colon": (b"1 3 4:1\n", 3, ["'3'", "no value"]),
    "negative_index": (b"1 -3:1\n", 3, ["'-3:1'", "non-negative integer id"]),
    "non_integer_index": (b"1 1.5:2\n", 3, ["'1.5:2'", "integer id"]),
    "letters_as_index": (b"1 a:2\n", 3, ["'a:2'", "id"]),
    "index_2_62": (b"1 4611686018427387904:1\n", 3, ["too large", "2**62"]),
    "index_20_digits": (b"1 99999999999999999999:1\n", 3, ["too large"]),
    "nan_label": (b"nan 1:1\n", 1, ["label", "'nan'"]),
    "inf_label": (b"inf 1:1\n", 1, ["label", "'inf'"]),
    "minus_inf_label": (b"-inf 1:1\n", 1, ["label", "'-inf'"]),
    "nan_value": (b"1 3:nan\n", 5, ["value", "'nan'"]),
    "NaN_value": (b"1 3:NaN\n", 5, ["value", "'NaN'"]),
    "inf_value": (b"1 3:inf\n", 5, ["value", "'inf'"]),
    "infinity_value": (b"1 3:-Infinity\n", 5, ["value", "'-Infinity'"]),
    "overflow_value": (b"1 2:1 3:1e999\n", 9, ["value", "'1e999'", "not a finite number"]),
    "overflow_negative_value": (b"1 3:-1.5e400\n", 5, ["value", "'-1.5e400'", "finite"]),
    "overflow_long_mantissa": (b"1 3:" + b"9" * 400 + b"\n", 5, ["value", "finite"]),
    "overflow_label": (b"1e999 1:1\n", 1, ["label", "'1e999'", "not a finite number"]),
    "invalid_utf8_between_features": (b"1 3:1 \xff\xfe 4:1\n", 7, ["byte 0xff", "ASCII"]),
    "utf8_bom_at_line_start": (b"\xef\xbb\xbf1 3:1\n", 1, ["byte 0xef"]),
    "utf8_letter_as_feature": (b"1 3:1 \xc3\xa9:1\n", 7, ["byte 0xc3"]),
    "invalid_utf8_in_label": (b"1\xff 3:1\n", 1, ["label"]),
    "control_byte": (b"1 3:1 \x01\n", 7, ["byte 0x01"]),
    "missing_label": (b"3:1 4:1\n", 1, ["'3:1'", "label is missing"]),
    "missing_label_indented": (b"  3:1\n", 3, ["'3:1'", "label is missing"]),
    "exponent_without_digits": (b"1 3:1e\n", 5, ["value", "'1e'"]),
    "lone_dot_value": (b"1 3:.\n", 5, ["value", "'.'"]),
}

@pytest.mark.parametrize("name", list(BAD_LINES))
def test_bad_input_message(tmp_path, name):
    bad, col, words = BAD_LINES[name]
    path = write(tmp_path, PREFIX + bad + b"1 1:1\n", f"{name}.svm")
    with pytest.raises(RefError) as ref:  # the bad line is bad by the documented rules
        ref_parse(path.read_bytes())
    assert ref.value.line == 4
    for kw in ({}, dict(batch_rows=1, chunk_bytes=16)):
        msg = read_error(path, **kw)
        assert msg.startswith(f"{path}:4:{col}: "), msg
        for w in words:
            assert w in msg, (w, msg)


def test_bad_input_in_compressed_file_names_the_file_and_line(tmp_path):
    path = write(tmp_path, gzip.compress(PREFIX + b"1 3:abc\n"), "x.svm.gz")
    msg = read_error(path)
    assert msg.startswith(f"{path}:4:5: ")


@pytest.mark.parametrize("tok", [b"18446744073709551620", b"9300000000000000000"],
                         ids=["wraps_to_4", "wraps_negative"])
def test_index_overflow_wrapping(tmp_path, tok):
    path = write(tmp_path, b"1 " + tok + b":1\n")
    msg = read_error(path)
    assert msg.startswith(f"{path}:1:3: ") and "too large" in msg


def test_invalid_byte_glued_to_value_names_that_byte(tmp_path):
    path = write(tmp_path, b"1 3:2\xff\n")
    msg = read_error(path)
    assert msg.startswith(f"{path}:1:") and "0xff" in msg


@pytest.mark.parametrize("data, where", [
    (b"1 3:1e999\n1 2:1\nx 1:1\n", "1:5"),  # slow-path error before a fast-path one
    (b"1 2:1\n1e999 1:1\n1 1:1e999\n", "2:1"),  # two slow-path errors
    (b"1 2:1\n1 1:x\n1 1:1e999\n", "2:5"),  # fast-path error first
], ids=["slow_then_fast", "slow_then_slow", "fast_then_slow"])
def test_first_bad_line_is_reported(tmp_path, data, where):
    # (was a bug: the slow-path error was raised only after the fast path's)
    path = write(tmp_path, data)
    for kw in ({}, dict(batch_rows=1), dict(chunk_bytes=4)):
        msg = read_error(path, **kw)
        assert msg.startswith(f"{path}:{where}: "), msg


def test_non_ascii_in_comments_is_fine(tmp_path):
    data = "# en-tête: données ✓\n1 3:1 # café, naïve, 日本\n0 2:1#ünïcödé\n".encode() + b"1 1:1 # \xff\xfe\n"
    p = read_all(write(tmp_path, data))
    assert p.labels.tolist() == [1, 0, 1]
    assert [p.row(r) for r in range(3)] == [{3: 1.0}, {2: 1.0}, {1: 1.0}]


@pytest.mark.parametrize("config", ["default", "rows7_chunk64", "chunk1"])
def test_crlf_same_as_lf(tmp_path, config):
    lf = (DATA / "a9a_head2000.svm").read_bytes()[:30000]
    lf = lf[: lf.rfind(b"\n") + 1] + b"# comment\r\n\r\n"
    crlf = lf.replace(b"\n", b"\r\n")
    kw = CONFIGS[config]
    a, b = read_all(write(tmp_path, lf, "lf.svm"), **kw), read_all(write(tmp_path, crlf, "crlf.svm"), **kw)
    for k in ("labels", "indptr", "ids", "values"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    assert_positions(b, crlf)
    assert_same_as_sklearn(a, tmp_path / "lf.svm")


@pytest.mark.parametrize("tail", [b"-1 2:2", b"-1 2:2   ", b"-1 2:2 # no newline", b"-1 2:2\r"])
def test_last_line_without_newline(tmp_path, tail):
    data = b"1 1:1\n" + tail
    for kw in ({}, dict(batch_rows=1, chunk_bytes=3)):
        p = read_all(write(tmp_path, data), **kw)
        assert p.labels.tolist() == [1, -1]
        assert p.row(1) == {2: 2.0}
        assert p.batches[-1][2] == len(data)
        assert p.batches[-1][3] == 1  # one newline consumed


def test_comment_last_line_without_newline(tmp_path):
    p = read_all(write(tmp_path, b"1 1:1\n# the end"))
    assert p.rows == 1


def test_error_on_last_line_without_newline(tmp_path):
    path = write(tmp_path, b"1 1:1\n\n1 2:")
    assert read_error(path).startswith(f"{path}:3:3: ")


@pytest.mark.parametrize("data", [b"", b"\n", b"\n\n  \n", b"# only a comment", b"# c\n\r\n\t\n"])
def test_empty_input(tmp_path, data):
    for kw in ({}, dict(batch_rows=1, chunk_bytes=1)):
        assert read_all(write(tmp_path, data), **kw).rows == 0
    assert read_all(write(tmp_path, gzip.compress(data), "e.gz")).rows == 0


def test_line_longer_than_max_line_bytes(tmp_path):
    long = b"1 " + b" ".join(b"%d:1" % i for i in range(1, 300)) + b"\n"
    assert len(long) > 1000
    path = write(tmp_path, b"1 1:1\n# c\n" + long + b"0 1:1\n")
    msg = read_error(path, chunk_bytes=64, max_line_bytes=256)
    assert msg.startswith(f"{path}:3: ") and "longer" in msg
    # gzip: same limit, same line
    gz = write(tmp_path, gzip.compress(path.read_bytes()), "long.gz")
    assert read_error(gz, chunk_bytes=64, max_line_bytes=256).startswith(f"{gz}:3: ")


def test_line_too_long_message_states_the_limit(tmp_path):
    # (was: 'line longer than 0 MB' for limits under 1 MB)
    path = write(tmp_path, b"1 " + b"1:1 " * 100 + b"\n")
    msg = read_error(path, chunk_bytes=64, max_line_bytes=256)
    assert "0 MB" not in msg and "256 bytes" in msg


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_long_line_within_limit_after_buffer_growth(tmp_path, chunk):
    long = b"-1 " + b" ".join(b"%d:%d.25" % (i, i) for i in range(1, 40)) + b"\n"
    assert 200 < len(long) < 512
    data = b"1 1:1\n" + long + b"0 2:1\n" + long
    path = write(tmp_path, data)
    p = read_all(path, chunk_bytes=chunk, max_line_bytes=512, batch_rows=3)
    assert_same_as_sklearn(p, path)
    assert_positions(p, data)


# --------------------------------------------------------------------------------------
# 3b. on_bad: skip bad lines (the --on-bad-line policy)
# --------------------------------------------------------------------------------------


def ref_lines(data: bytes):
    """Each line judged alone by ref_parse: (labels, rows, bad line numbers)."""
    labels, rows, bad = [], [], []
    for n, line in enumerate(data.split(b"\n"), start=1):
        try:
            lab, r = ref_parse(line)
        except RefError:
            bad.append(n)
            continue
        labels += lab
        rows += r
    return labels, rows, bad


def error_line(path, exc) -> int:
    msg = str(exc)
    assert isinstance(exc, DataError) and msg.startswith(f"{path}:") and "\n" not in msg
    return int(msg[len(str(path)) + 1 :].split(":")[0])


def read_skipping(path, **kw):
    errors = []
    p = read_all(path, on_bad=errors.append, **kw)
    return p, [error_line(path, e) for e in errors]


def mixed_good_and_bad() -> bytes:
    good = (DATA / "a9a_head2000.svm").read_bytes().split(b"\n")[:60]
    slow = [b"1 2:0.1234567890123456789012 7:3e-300", b"0.50000000000000000001 1:1"]
    bad = [b for b, _, _ in BAD_LINES.values()]
    lines = []
    for k, g in enumerate(good):
        lines.append(g)
        if k % 3 == 0:
            lines.append(bad[(k // 3) % len(bad)].rstrip(b"\n"))
        if k % 7 == 0:
            lines.append(slow[k % 2])
    return b"\n".join(lines + bad[-5:]) + b"\n" + b"\n".join(b.rstrip(b"\n") for b in bad[:5])


@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
def test_on_bad_skips_bad_lines_in_file_order(tmp_path, config):
    data = mixed_good_and_bad()
    labels, rows, bad = ref_lines(data)
    assert len(bad) > 25 and len(rows) > 60
    path = write(tmp_path, data)
    p, lines = read_skipping(path, **CONFIGS[config])
    assert sorted(set(lines)) == bad
    assert lines == sorted(lines), "bad lines must be reported in file order"
    assert p.labels.tolist() == labels
    assert [p.row(r) for r in range(p.rows)] == rows
    gz = write(tmp_path, gzip.compress(data), "x.gz")
    p2, lines2 = read_skipping(gz, **CONFIGS[config])
    assert lines2 == lines and np.array_equal(p2.values, p.values)


def test_on_bad_may_raise_to_stop(tmp_path):
    path = write(tmp_path, b"1 1:1\nx\n1 2:1\ny\n1 3:1\n")
    seen = []

    def stop_at_second(exc):
        seen.append(exc)
        if len(seen) == 2:
            raise DataError("too many")

    got = []
    with pytest.raises(DataError, match="too many"):
        for b in iter_libsvm(str(path), on_bad=stop_at_second, batch_rows=1):
            got.append(b.labels.tolist())
    assert [error_line(path, e) for e in seen] == [2, 4]


def test_on_bad_called_once_per_bad_line(tmp_path):
    path = write(tmp_path, b"1 3:1e999 4:1e999\n0 1:1\n")
    p, lines = read_skipping(path)
    assert p.labels.tolist() == [0.0]
    assert lines == [1]


@pytest.mark.parametrize("batch_rows", [1, 2, 100])
def test_resume_after_skipped_bad_line_does_not_report_it_again(tmp_path, batch_rows):
    """Every bad line is reported exactly once across a resume at any batch end: the lines
    reported by the time a batch is yielded are exactly those before its end position."""
    path = write(tmp_path, b"1 1:1\nx\n2 2:2\ny\n\n3 3:3\nz\n")
    seen, ends = [], []
    for b in iter_libsvm(str(path), on_bad=seen.append, batch_rows=batch_rows):
        ends.append((b.end_offset, b.end_line, len(seen)))
    assert len(seen) == 3 and sum(1 for _ in ends) >= 1
    for off, line, reported in ends:
        again = []
        list(iter_libsvm(str(path), on_bad=again.append, start_offset=off, start_line=line,
                         batch_rows=batch_rows))
        assert reported + len(again) == 3, (off, reported, len(again))


# --------------------------------------------------------------------------------------
# 4. numbers: exactly Python's float()
# --------------------------------------------------------------------------------------

HARD_NUMBERS = [
    "0.1", "0.2", "0.3", "1.", ".5", "1e5", "1E-5", "+3", "-0", "-0.0", "0e999", "00012", "0.000",
    "9007199254740992", "9007199254740993", "9007199254740995", "18014398509481985",
    "123456789012345678", "1234567890123456789", "12345678901234567890123",
    "1.7976931348623157e308", "1.7976931348623158e308", "2.2250738585072014e-308",
    "2.2250738585072011e-308", "4.9e-324", "5e-324", "2.4703282292062327e-324",
    "2.4703282292062328e-324", "1e-400", "1e23", "8.98846567431158e307", "9.5e-323",
    "1e22", "1e-22", "9007199254740991e22", "9007199254740991e-22", "9007199254740993e-22",
    "0.000000000000000000000000000000000001", "7.1e-5", "3.0517578125e-05",
    "1.00000000000000011102230246251565404236316680908203125",  # halfway 1 + 2**-53
    "1.00000000000000011102230246251565404236316680908203126",
    "100000000000000000000000000000000000000000e-20", "0.9999999999999999999999999",
    "6.2699720e-02", "1.234567890123456e10", "4503599627370497.5", "4503599627370496.5",
]


def check_numbers(tmp_path, tokens):
    """Each token as a label and as a value; compared with float(token) (inf must be rejected).
    Read twice: through a 50-byte buffer (the general number code: the fast path needs
    FAST_TAIL bytes of buffer after a token) and through the default buffer (fast path)."""
    finite = [t for t in tokens if np.isfinite(float(t))]
    data = "".join(f"{t} 5:{t} 3:1\n" for t in finite).encode()
    path = write(tmp_path, data, "numbers.svm")
    for chunk in (50, readers.CHUNK_BYTES):
        check_parsed_numbers(read_all(path, batch_rows=17, chunk_bytes=chunk), finite)
    for t in tokens:
        if not np.isfinite(float(t)):
            path = write(tmp_path, f"1 1:1\n1 5:{t}\n".encode(), "inf.svm")
            assert read_error(path).startswith(f"{path}:2:5: ")


def check_parsed_numbers(p, finite):
    assert p.rows == len(finite)
    for r, t in enumerate(finite):
        want = float(t)
        assert p.labels[r] == want, (t, p.labels[r], want)
        row = p.row(r)
        if want == 0:
            assert row == {3: 1.0}, t
        else:
            assert row == {3: 1.0, 5: want}, (t, row.get(5), want)


def test_hard_numbers(tmp_path):
    check_numbers(tmp_path, HARD_NUMBERS)


@st.composite
def decimal_tokens(draw):
    sign = draw(st.sampled_from(["", "", "+", "-"]))
    int_digits = draw(st.text("0123456789", max_size=25))
    dot = draw(st.booleans())
    frac_digits = draw(st.text("0123456789", max_size=25)) if dot else ""
    if not int_digits and not frac_digits:
        int_digits = draw(st.text("0123456789", min_size=1, max_size=25))
    exp = ""
    if draw(st.booleans()):
        e = draw(st.integers(-330, 310))
        esign = "-" if e < 0 else draw(st.sampled_from(["", "+"]))
        exp = draw(st.sampled_from("eE")) + esign + str(abs(e)).zfill(draw(st.integers(1, 3)))
    return sign + int_digits + ("." if dot else "") + frac_digits + exp


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(decimal_tokens(), min_size=1, max_size=40))
@example(tokens=["1.", ".5", "1e5", "1E-5", "+3", "-.5e-3"])
def test_random_decimal_strings_parse_like_python_float(tmp_path, tokens):
    check_numbers(tmp_path, tokens)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(xs=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40),
       fmt=st.sampled_from(["{!r}", "{:.17g}", "{:.17e}", "{:.25f}", "{:.3e}", "{:.16g}"]))
def test_formatted_doubles_parse_like_python_float(tmp_path, xs, fmt):
    check_numbers(tmp_path, [fmt.format(x) for x in xs])


# The parser's fast path (kernels._digits8, eight bytes at a time) takes ids of up to 8
# digits and values of up to 15 digits; these sit on and around its limits.
FAST_PATH_TOKENS = [
    "1", "7", "-1", "-0", "0", "10", "99999999", "12345678", "123456789", "1234567890",
    "0.5", "-0.5", "1.", "-1.", "0.0", "0.137795", "0.00816811", "12345678.1234567",
    "1234567.12345678", "123456789012345", "1234567890123456", "9007199254740993",
    "0.123456789012345", "0.1234567890123456", "1.23456789", "12345678.9", "00000001",
    "0000000012", "3.14159265358979", "1e5", "1.5e-3", "+1", ".5", "5.", "-12345678.5",
    "92050347.66496171",  # 16 digits: mantissa > 2**53, so dividing it would round twice
]


def test_fast_path_numbers_and_ids(tmp_path):
    check_numbers(tmp_path, FAST_PATH_TOKENS)
    ids = [0, 1, 9, 10, 1234567, 9999999, 10000000, 12345678, 99999999, 100000000, 123456789,
           16777215, 16777216, 10 ** 15, 2 ** 62 - 2]
    data = "".join(f"1 {i}:2.5 {i + 1}:-3\n" for i in ids).encode()
    p = read_all(write(tmp_path, data), chunk_bytes=readers.CHUNK_BYTES)
    assert p.ids.tolist() == [x for i in ids for x in (i, i + 1)]
    assert p.values.tolist() == [2.5, -3.0] * len(ids)


@pytest.mark.parametrize("tail", [b"", b"\n", b" ", b"#c"])
def test_fast_path_never_reads_a_token_past_end(tail):
    """Bytes after `end` (a read buffer holds stale data there) must not join the last
    token, whatever they are: digits, ':', '.', or a whole token."""
    text = b"1 12:3 45:0.25 7:1" + tail
    for stale in (b"99999999:1.5 ", b":", b".5", b"0123456789" * 4, b" 8:8", b"\x00" * 40):
        buf = np.frombuffer(text + stale + b"\n" * 64, np.uint8).copy()
        out = [np.empty(4), np.zeros(5, np.int64), np.empty(16, np.int64), np.empty(16)]
        slow, weights = np.empty((8, 3), np.int64), np.empty(4)
        labels, indptr, ids, values = out
        r = K.parse_libsvm(buf, 0, len(text), labels, indptr, ids, values, slow, 4, weights)
        pos, rows, nnz, err = r[0], r[1], r[2], r[7]
        assert (err, rows, pos) == (0, 1, len(text)), (stale, r)
        assert ids[:nnz].tolist() == [12, 45, 7] and values[:nnz].tolist() == [3.0, 0.25, 1.0], stale


NOJIT_SCRIPT = """
from ftrl_cli.readers import iter_libsvm
b = next(iter_libsvm("-"))
print(repr(b.values.tolist()))
"""


def test_kernels_as_plain_python_parse_exponents():
    # (was a bug: without the JIT, `e * 10 + (buf[i] - 48)` was computed in uint8 under NumPy 2)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, "-c", NOJIT_SCRIPT], input=b"1 3:2.5e300 4:1e-15 5:7e-300\n",
                       capture_output=True, cwd=ROOT, env=env, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-500:]
    assert r.stdout.decode().strip() == repr([2.5e300, 1e-15, 7e-300])


# --------------------------------------------------------------------------------------
# 6. resume from a batch's end_offset / end_line
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "gzip", "crlf"])
def test_resume_yields_exactly_the_remaining_rows(tmp_path, kind):
    data = (DATA / "a9a_head2000.svm").read_bytes()[:50000]
    data = b"# header\n\n" + data[: data.rfind(b"\n") + 1] + b"# footer\n"
    if kind == "crlf":
        data = data.replace(b"\n", b"\r\n")
    path = write(tmp_path, gzip.compress(data) if kind == "gzip" else data)
    full = read_all(path, batch_rows=7)
    assert_positions(full, data)
    starts = np.cumsum([0] + [rows for rows, *_ in full.batches])
    picks = sorted({0, 1, 2, 13, len(full.batches) // 2, len(full.batches) - 2, len(full.batches) - 1})
    for k in picks:
        _, _, off, line, _ = full.batches[k]
        rest = read_all(path, batch_rows=7, start_offset=off, start_line=line)
        first = starts[k + 1]
        assert rest.rows == full.rows - first
        a, b = full.indptr[first], full.indptr[-1]
        assert np.array_equal(rest.labels, full.labels[first:])
        assert np.array_equal(rest.ids, full.ids[a:b])
        assert np.array_equal(rest.values, full.values[a:b])
        assert np.array_equal(rest.indptr, full.indptr[first:] - a)
        # positions stay absolute after resuming
        assert [x[2:4] for x in rest.batches] == [x[2:4] for x in full.batches[k + 1 :]]


def test_resume_at_end_yields_nothing(tmp_path):
    data = b"1 1:1\n0 2:1\n"
    for name, blob in (("p.svm", data), ("p.gz", gzip.compress(data))):
        path = write(tmp_path, blob, name)
        assert read_all(path, start_offset=len(data), start_line=2).rows == 0


def test_resume_past_end_of_compressed_stream(tmp_path):
    path = write(tmp_path, gzip.compress(b"1 1:1\n0 2:1\n"), "p.gz")
    msg = read_error(path, start_offset=1000, start_line=50)
    assert msg.startswith(f"{path}: ") and "resume" in msg


@pytest.mark.parametrize("kind", ["plain", "gzip"])
@pytest.mark.parametrize("bad", [b"1 5:oops\n", b"1 5:1e999\n"], ids=["fast_path", "slow_path"])
def test_errors_after_resume_report_absolute_lines(tmp_path, kind, bad):
    lines = (DATA / "a9a_head2000.svm").read_bytes().split(b"\n")[:300]
    data = b"\n".join(lines[:200]) + b"\n# comment\n\n" + bad + b"\n".join(lines[200:]) + b"\n"
    bad_line = 203
    path = write(tmp_path, gzip.compress(data) if kind == "gzip" else data)
    assert read_error(path).startswith(f"{path}:{bad_line}:5: ")
    ends = []
    with pytest.raises(DataError):
        for b in iter_libsvm(str(path), batch_rows=7, chunk_bytes=4096):
            ends.append((b.end_offset, b.end_line))
    assert len(ends) > 10
    for off, line in (ends[3], ends[-1]):
        msg = read_error(path, batch_rows=7, start_offset=off, start_line=line)
        assert msg.startswith(f"{path}:{bad_line}:5: "), msg


@pytest.mark.parametrize("B", [7, 32])
def test_minibatches_do_not_depend_on_buffer_sizes(B):
    """Batches end at multiples of the optimizer's batch size whatever the read buffer and
    feature-array sizes, so mini-batch training gives the same model bit for bit."""
    from ftrl_cli.config import Config
    from ftrl_cli.model import Model

    path = str(DATA / "a9a_head2000.svm")
    models = []
    for kw in ({}, dict(chunk_bytes=4096, batch_nnz=300, batch_rows=5 * B), dict(chunk_bytes=777, batch_rows=B)):
        m = Model(Config(batch_size=B, update="dense", l1=0.1))
        for b in iter_libsvm(path, row_multiple=B, **kw):
            assert b.rows % B == 0 or b.end_offset == os.path.getsize(path)
            y = (b.labels > 0).astype(float)
            m.learn(b.indptr, b.ids, b.values, y, np.ones(b.rows), b.max_id, np.empty(b.rows))
        models.append(m)
    for m in models[1:]:
        assert np.array_equal(m.st, models[0].st) and m.iterations == models[0].iterations


@pytest.mark.parametrize("kw", [{}, {"batch_nnz": 64}, {"batch_nnz": 64, "row_multiple": 4},
                                {"batch_nnz": 100, "chunk_bytes": 256}])
def test_fresh_batches_own_their_arrays(kw):
    """fresh=True (what the read-ahead thread uses instead of copying): every batch keeps
    its own arrays, with the same content as the reused-buffer batches."""
    path = str(DATA / "a9a_head2000.svm")
    kept = list(iter_libsvm(path, batch_rows=300, fresh=True, **kw))
    want = read_all(path, batch_rows=300, **kw)
    assert [b.rows for b in kept] == [rows for rows, *_ in want.batches] and len(kept) > 3
    got = np.concatenate([b.ids for b in kept])
    assert np.array_equal(got, want.ids)
    assert np.array_equal(np.concatenate([b.values for b in kept]), want.values)
    assert np.array_equal(np.concatenate([b.labels for b in kept]), want.labels)
    for a, b in zip(kept, kept[1:]):
        for x, y in ((a.ids, b.ids), (a.values, b.values), (a.labels, b.labels), (a.indptr, b.indptr)):
            assert not np.shares_memory(x, y)
