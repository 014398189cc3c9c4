"""Fuzzing the libsvm reader with hypothesis.

Budget: FTRL_FUZZ_EXAMPLES examples per test (default 200, CI-friendly: a few seconds after
JIT). A longer run:

    FTRL_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/test_reader_fuzz.py   # (make fuzz)

Oracles: `ref_parse` (the documented rules in plain Python, see tests/test_readers.py) and
scikit-learn's dump_svmlight_file/load_svmlight_file. Whatever the bytes, the reader must
either return batches equal to the reference or raise DataError - never crash, never
return something the rules reject, never reject something the rules accept. With on_bad
(skip bad lines), it must report exactly the lines the rules reject and keep the others.
"""

from __future__ import annotations

import io
import os
import re

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import dump_svmlight_file, load_svmlight_file
from test_readers import RefError, assert_same_as_ref, read_all, read_skipping, ref_lines, ref_parse, write

from ftrl_cli.errors import DataError
from ftrl_cli.readers import iter_libsvm

EXAMPLES = int(os.environ.get("FTRL_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Small batches and buffers so that every boundary is hit on short inputs.
READ_CONFIGS = [dict(), dict(batch_rows=2, chunk_bytes=5, batch_nnz=3)]


# Inputs starting like these are opened as gzip/bzip2/xz/zstd/Parquet, not as text.
MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd", b"PAR1")


_HUGE_ID = re.compile(rb"(\d{19,}):")


def hits_known_id_overflow_bug(data: bytes) -> bool:
    """ids >= 2**63 wrap around in parse_libsvm (xfail test_index_overflow_wrapping): for such
    inputs only 'no crash' is checked, so that the fuzzers keep testing everything else."""
    return any(int(m.group(1)) >= 2**63 for m in _HUGE_ID.finditer(data))


def check_against_ref(tmp_path, data: bytes):
    """ftrl agrees with the reference rules: same rows, or both reject (DataError only)."""
    path = write(tmp_path, data, "fuzz.svm")
    if data.startswith(MAGICS) or hits_known_id_overflow_bug(data):  # anything but DataError is a crash
        for on_bad in (None, lambda e: None):
            try:
                for _ in iter_libsvm(str(path), on_bad=on_bad, **READ_CONFIGS[1]):
                    pass
            except DataError as e:
                assert str(e).startswith(f"{path}:")
        return
    try:
        ref_parse(data)
        ref_ok = True
    except RefError:
        ref_ok = False
    for kw in READ_CONFIGS:
        try:
            p = read_all(path, **kw)  # read_all also checks each batch's structure
        except DataError as e:
            msg = str(e)
            assert msg.startswith(f"{path}:") and "\n" not in msg
            assert not ref_ok, f"rejected valid input {data!r}: {msg}"
            continue
        assert ref_ok, f"accepted invalid input {data!r}"
        assert_same_as_ref(p, data)
    # on_bad: every bad line is reported (in file order) and skipped, the good lines are kept
    labels, rows, bad = ref_lines(data)
    for kw in READ_CONFIGS[1:]:
        p, lines = read_skipping(path, **kw)
        assert lines == sorted(lines)
        assert sorted(set(lines)) == bad  # (set: a line may be reported twice, see test_readers)
        assert p.labels.tolist() == labels
        assert [p.row(r) for r in range(p.rows)] == rows


# bytes that matter to the grammar, plus a few that do not belong in libsvm at all
INTERESTING = list(b"0123456789:.+-eE #\t\n\r\x0b") + [b"q"[0], b"i"[0], b"d"[0], b"n"[0], b"a"[0],
                                                         0, 0x7F, 0x80, 0xC3, 0xFF]
TOKENS = [b"1", b"0", b"-1", b"+1", b"3:1", b"12:0.5", b"7:-2e-3", b"0:0", b" ", b"\t", b"\n", b"\r\n",
          b"#", b"# c\n", b"qid:3", b":", b".", b"e", b"1e999", b"nan", b"inf", b"\xff", b"9" * 20,
          b"4611686018427387903", b"4611686018427387904", b"0.1234567890123456789012", b"1e-400",
          b"4.9e-324", b"1e308", b"\xc3\xa9"]


@FUZZ
@given(data=st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(INTERESTING), max_size=200).map(bytes),
    st.lists(st.sampled_from(TOKENS), max_size=60).map(b"".join),
    st.tuples(st.sampled_from(MAGICS), st.binary(max_size=100)).map(b"".join),
))
def test_random_bytes_never_crash(tmp_path, data):
    check_against_ref(tmp_path, data)


def fmt_number(draw, x: float) -> str:
    style = draw(st.sampled_from(["{!r}", "{:.17g}", "{:.6e}", "{:.30f}", "{:+.3g}", "{:.25e}"]))
    return style.format(x)


@st.composite
def valid_text(draw):
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(["row", "row", "row", "row", "blank", "comment"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from(["", " ", "\t", "\r"])))
            continue
        if kind == "comment":
            lines.append(draw(st.sampled_from(["# c", "  #x", "#"])))
            continue
        label = fmt_number(draw, draw(st.sampled_from([1.0, 0.0, -1.0, 2.0, 0.5])))
        feats = []
        for _ in range(draw(st.integers(0, 8))):
            i = draw(st.one_of(st.integers(0, 30), st.integers(0, 2**62 - 1)))
            v = draw(st.floats(-1e30, 1e30, allow_nan=False))
            feats.append(f"{i}:{fmt_number(draw, v)}")
        if draw(st.booleans()):
            feats.insert(0, f"qid:{draw(st.integers(0, 99))}")
        sep = draw(st.sampled_from([" ", "\t", "  "]))
        line = label + (sep if feats else "") + sep.join(feats)
        if draw(st.booleans()):
            line += draw(st.sampled_from([" ", " # comment", "#c"]))
        lines.append(line)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return text.encode()


@st.composite
def mutated(draw):
    data = bytearray(draw(valid_text()))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = bytes([draw(st.sampled_from(INTERESTING))])
        elif data and op == "delete":
            del data[min(at, len(data) - 1)]
        elif data and op == "replace":
            data[min(at, len(data) - 1)] = draw(st.sampled_from(INTERESTING))
        elif data:
            n = draw(st.integers(1, 8))
            data[at:at] = data[at : at + n]
    return bytes(data)


@FUZZ
@given(data=valid_text())
def test_valid_text_parses_like_reference(tmp_path, data):
    ref_parse(data)  # the generator makes valid text only
    check_against_ref(tmp_path, data)


@FUZZ
@given(data=mutated())
def test_mutated_lines_parse_or_raise_data_error(tmp_path, data):
    check_against_ref(tmp_path, data)


SPECIAL = np.array([5e-324, -2.2250738585072014e-308, 1e-300, 0.1, 1 / 3, 1.0, -1.0, 2.0**53 + 2,
                    1e22, 1e23, 1.7976931348623157e300, -1e-5])


@st.composite
def sparse_problems(draw):
    """Random sparse matrices (numpy from a drawn seed: fast) with shapes chosen by hypothesis."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_rows = draw(st.integers(1, 25))
    n_cols = draw(st.sampled_from([1, 5, 60, 3_300_000]))
    nnz = draw(st.integers(0, min(n_rows * n_cols, 150)))
    rows, cols = rng.integers(0, n_rows, nnz), rng.integers(0, n_cols, nnz)
    style = draw(st.sampled_from(["normal", "wide", "special", "integers"]))
    if style == "normal":
        vals = rng.standard_normal(nnz)
    elif style == "wide":  # any magnitude from subnormal to 1e300, both signs
        vals = rng.choice([-1, 1], nnz) * 10.0 ** rng.uniform(-323, 300, nnz) * rng.uniform(1, 10, nnz)
    elif style == "special":
        vals = rng.choice(SPECIAL, nnz)
    else:
        vals = rng.integers(-3, 4, nnz).astype(np.float64)
    X = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols))
    X.sum_duplicates()
    X.data[~np.isfinite(X.data)] = 1.0  # sums of two huge values can overflow
    X.eliminate_zeros()
    if draw(st.booleans()):
        y = rng.choice([0, 1, -1, 2], n_rows)
    else:
        y = rng.standard_normal(n_rows) * 10.0 ** rng.integers(-300, 300, n_rows)
    qid = rng.integers(0, 50, n_rows) if draw(st.booleans()) else None
    return X, y, qid, draw(st.sampled_from([None, "made by hypothesis"]))


@FUZZ
@given(problem=sparse_problems(), cfg=st.sampled_from(READ_CONFIGS + [dict(batch_rows=7, chunk_bytes=64)]))
def test_dump_svmlight_round_trip(tmp_path, problem, cfg):
    X, y, qid, comment = problem
    buf = io.BytesIO()
    dump_svmlight_file(X, y, buf, zero_based=True, query_id=qid, comment=comment)
    data = buf.getvalue()
    p = read_all(write(tmp_path, data, "dump.svm"), **cfg)
    # sklearn writes "%.16g": the numbers that come back are float("%.16g" % v)
    back = lambda a: np.array([float(f"{v:.16g}") for v in a], dtype=np.float64)  # noqa: E731
    assert np.array_equal(p.labels, back(y) if y.dtype.kind == "f" else y.astype(np.float64))
    assert np.array_equal(p.indptr, X.indptr)
    assert np.array_equal(p.ids, X.indices)
    assert np.array_equal(p.values, back(X.data))
    # and sklearn's own reader of the same bytes agrees
    X2, y2 = load_svmlight_file(io.BytesIO(data), zero_based=True, n_features=X.shape[1],
                                query_id=qid is not None)[:2]
    X2.sort_indices()
    assert np.array_equal(p.labels, y2)
    assert np.array_equal(p.ids, X2.indices) and np.array_equal(p.values, X2.data)
