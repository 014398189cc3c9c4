"""Inputs read as written (issue 13, items 10, 11, 13 and 15): what the readers used to
accept silently, or misread, is an error that names the file (and line) or is read right:
duplicate column names, an unterminated CSV quote, control characters in messages, format
detection (CSV on stdin, svmlight multilabel, libsvm .txt files with commas, gzip on a slow
pipe, CR-only line ends), cost: given twice, trailing garbage after bzip2/xz data, Parquet
ids >= 2**62, and no abort at exit after a CSV error."""

import bz2
import gc
import gzip
import io
import lzma
import subprocess
import sys
import types
import weakref

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import DATA, ROOT

from ftrl_cli import api
from ftrl_cli import kernels as K
from ftrl_cli.cli import main
from ftrl_cli.errors import DataError
from ftrl_cli.readers import detect_format, iter_libsvm, iter_parquet_sparse, iter_tabular

CTR = DATA / "ctr"


def error_of(it) -> str:
    with pytest.raises(DataError) as e:
        for _ in it:
            pass
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def dup_parquet(path, names):
    cols = [pa.array([1.0, 0.0]), pa.array([0.0, 1.0]), pa.array(["x", "y"])]
    pq.write_table(pa.Table.from_arrays(cols, names=names), path)
    return str(path)


# ---------------------------------------------------------------------------------------
# item 10: duplicate columns, unterminated quotes, control characters in messages
# ---------------------------------------------------------------------------------------

def test_duplicate_column_names_are_an_error_naming_the_column_and_the_file(tmp_path):
    csv = tmp_path / "dup.csv"
    csv.write_text("label,label,a\n1,0,x\n0,1,y\n")
    par = dup_parquet(tmp_path / "dup.parquet", ["label", "label", "a"])
    for path in (str(csv), par):
        msg = error_of(iter_tabular(path))
        assert msg.startswith(f"{path}: the column name 'label' is used by 2 columns (numbers 1, 2)"), msg
    # also a column that is not the label, and through the command line (exit 1)
    csv.write_text("label,a,b,a\n1,x,y,z\n")
    assert "'a' is used by 2 columns (numbers 2, 4)" in error_of(iter_tabular(str(csv)))
    r = run("train", csv, "-m", tmp_path / "m")
    assert r.exit_code == 1 and f"{csv}: the column name 'a'" in r.output, r.output
    # sparse Parquet: a column it reads
    sp = tmp_path / "sparse.parquet"
    t = pa.Table.from_arrays([pa.array([1.0]), pa.array([[1, 2]], pa.list_(pa.int64())), pa.array([0.0])],
                             names=["label", "indices", "label"])
    pq.write_table(t, sp)
    assert error_of(iter_parquet_sparse(str(sp))).startswith(f"{sp}: the column name 'label' is used by 2")


def test_unterminated_quote_is_an_error_naming_file_line_and_column(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes(b'label,a\n1,x\n0,"y\n1,z\n')
    assert pcsv.read_csv(path).num_rows == 2  # (pyarrow reads the rest of the file into one value)
    msg = error_of(iter_tabular(str(path)))
    assert msg.startswith(f"{path}:3:3: this quote (\") is never closed"), msg
    path.write_bytes(b'label,a\n1,x\n0,"y')  # at the very end, no line end
    assert error_of(iter_tabular(str(path))).startswith(f"{path}:3:3: ")
    gz = tmp_path / "q.csv.gz"
    gz.write_bytes(gzip.compress(b'label,a\n1,"x\n0,y\n'))
    assert error_of(iter_tabular(str(gz))).startswith(f"{gz}:2:3: ")
    # stdin: the byte
    r = run("train", "-", "-m", tmp_path / "m", "--format", "csv", input=b'label,a\n1,x\n0,"y\n')
    assert r.exit_code == 1 and "<stdin>: at byte 15: this quote" in r.output, r.output


@pytest.mark.parametrize("data", [
    b'label,a\n1,"x,y"\n0,"a ""quoted"" word"\n',  # delimiters and doubled quotes in quotes
    b'label,a\n1,ab"c\n0,"x"y\n',  # a quote inside a plain field, text after a closing quote
    b'label,a\n1,"two\nlines"\n0,z\n',  # a line break in a quoted value
    b'label,a\r\n1,"x"\r\n0,""\r\n',  # CRLF, an empty quoted value
    b'"label","a"\n1,"x"',  # quoted header, a quote closed at the end of the file
])
def test_valid_quoting_is_read_as_pyarrow_reads_it(tmp_path, data):
    path = tmp_path / "ok.csv"
    path.write_bytes(data)
    want = pcsv.read_csv(path).column("a").to_pylist()
    got = list(iter_tabular(str(path), categorical=["a"], bits=30))
    assert sum(b.rows for b in got) == len(want)


def test_quote_scan_does_not_depend_on_where_blocks_end():
    data = b'label,a\n1,"x,""y"""\n0,ab"c\n1,"open\n'
    whole = np.array([0, -1], np.int64)
    K.csv_quote_scan(np.frombuffer(data, np.uint8), ord(","), ord('"'), whole)
    assert whole[0] == 2 and whole[1] == data.rindex(b'"')
    for cut in range(len(data) + 1):
        st = np.array([0, -1], np.int64)
        K.csv_quote_scan(np.frombuffer(data[:cut], np.uint8), ord(","), ord('"'), st)
        opened = st[1]
        st[1] = -1
        K.csv_quote_scan(np.frombuffer(data[cut:], np.uint8), ord(","), ord('"'), st)
        assert st[0] == whole[0], cut
        assert (cut + st[1] if st[1] >= 0 else opened) == whole[1], cut


def test_printable_escapes_what_a_terminal_would_act_on():
    from ftrl_cli.readers.errors import printable

    assert printable("plain, naïve: 日本 ok") == "plain, naïve: 日本 ok"
    assert printable("a\x1b[31mred\x1b[0m\r\n\x00\x7f\x9b\u202e\udcff") == (
        "a\\x1b[31mred\\x1b[0m\\r\\n\\x00\\x7f\\x9b\\u202e\\udcff")


def test_error_messages_never_carry_control_characters(tmp_path):
    esc = "\x1b[31mred\x1b[0m"
    csv = tmp_path / "ansi.csv"
    csv.write_text(f"label,x\n1,{esc}\n")  # a text cell in a numeric column: pyarrow quotes it
    msg = error_of(iter_tabular(str(csv), numeric=["x"]))
    assert "\x1b" not in msg and "\\x1b[31mred" in msg, msg
    csv.write_text(f"{esc},a\n1,x\n")  # the column names a missing-column error lists
    msg = error_of(iter_tabular(str(csv), label="click"))
    assert "\x1b" not in msg and "\\x1b[31mred" in msg, msg
    par = tmp_path / "ansi.parquet"
    pq.write_table(pa.table({esc: [1.0], "a": ["x"]}), par)
    msg = error_of(iter_tabular(str(par), label="click"))
    assert "\x1b" not in msg and "\\x1b[31mred" in msg, msg
    r = run("train", csv, "-m", tmp_path / "m", "--label", "click")
    assert r.exit_code == 1 and "\x1b" not in r.output and "\\x1b" in r.output


# ---------------------------------------------------------------------------------------
# item 11: format detection
# ---------------------------------------------------------------------------------------

def test_csv_or_tsv_read_as_libsvm_says_which_format_to_ask_for(tmp_path):
    avazu = (CTR / "avazu_train_head1000.csv").read_bytes()[:5000]
    r = run("train", "-", "-m", tmp_path / "m", input=avazu)
    assert r.exit_code == 1 and "<stdin>:1:1: label 'id,click," in r.output, r.output
    assert "is this CSV? use --format csv" in r.output
    criteo = (CTR / "criteo_train_head1000.tsv").read_bytes()[:5000]
    r = run("train", "-", "-m", tmp_path / "m", input=criteo)
    assert r.exit_code == 1 and "is this TSV? use --format tsv" in r.output, r.output
    # a bad libsvm line, or a later one, gets no such hint
    path = tmp_path / "bad.svm"
    path.write_bytes(b"1 3:1\nyes,no 1:1\n")
    assert "--format" not in error_of(iter_libsvm(str(path)))
    path.write_bytes(b"yes 1:1,2\n")
    assert "--format" not in error_of(iter_libsvm(str(path)))


def test_svmlight_multilabel_is_read_as_libsvm_and_refused_clearly():
    path = DATA / "svmlight_multilabel.txt"
    assert detect_format(str(path)) == "libsvm"
    msg = error_of(iter_libsvm(str(path)))
    assert msg.startswith(f"{path}:2:1: label '1,0' is a list of labels (svmlight multilabel), "
                          "which ftrl does not read"), msg


@pytest.mark.parametrize("first", [
    b"1 cost:2 3:1 # a, b",  # a cost: token and a comma in the comment
    b"1 qid:x 3:1 # a,b",
    b"yes,no 3:1",  # a bad first line: the next ones tell
    b"1 3:1,5",
])
def test_txt_libsvm_with_commas_is_read_as_libsvm(tmp_path, first):
    path = tmp_path / "data.txt"
    path.write_bytes(b"# made by hand, with commas\n" + first + b"\n0 2:1 # x,y\n1 4:0.5\n")
    assert detect_format(str(path)) == "libsvm"
    if first.startswith(b"1 cost"):  # (qid:x is an error at line 2, checked below)
        assert sum(b.rows for b in iter_libsvm(str(path))) == 3
    else:
        assert error_of(iter_libsvm(str(path))).startswith(f"{path}:2:")


def test_detection_of_tables_is_unchanged(tmp_path):
    for name, data, want in [("a.txt", b"a,b\n1,2\n", "csv"), ("b.txt", b"1,0\n0,1\n", "csv"),
                             ("c.txt", b"label\tx\n1\t2\n", "tsv"), ("d.txt", b"1 1:1\n", "libsvm")]:
        (tmp_path / name).write_bytes(data)
        assert detect_format(str(tmp_path / name)) == want, name


class _Trickle(io.RawIOBase):
    """A pipe that hands over its first byte alone, then the rest."""

    def __init__(self, data):
        self._parts = [data[:1], data[1:]]

    def readable(self):
        return True

    def readinto(self, b):
        if not self._parts:
            return 0
        part = self._parts[0][: len(b)]
        self._parts[0] = self._parts[0][len(part):]
        if not self._parts[0]:
            self._parts.pop(0)
        b[: len(part)] = part
        return len(part)


def test_gzip_on_stdin_is_detected_when_the_first_read_returns_one_byte(monkeypatch):
    data = b"1 1:1\n0 2:1\n1 3:0.5\n"
    stdin = io.BufferedReader(_Trickle(gzip.compress(data)))
    assert stdin.peek(8) == b"\x1f"  # (what a pipe may give: one byte)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=stdin))
    batches = list(iter_libsvm("-"))
    assert sum(b.rows for b in batches) == 3 and batches[0].ids.tolist() == [1, 2, 3]


def test_cr_only_line_ends_get_a_clear_error(tmp_path):
    path = tmp_path / "mac.svm"
    path.write_bytes(b"1 3:1\r0 2:1\r1 4:1\r")
    msg = error_of(iter_libsvm(str(path)))
    assert msg.startswith(f"{path}:1:7: feature '0' has no value"), msg
    assert "lines end with CR alone (classic Mac OS)" in msg and "tr '\\r' '\\n'" in msg
    path.write_bytes(b"1 3:1\r\n0 2:1\r\n")  # CRLF: fine
    assert sum(b.rows for b in iter_libsvm(str(path))) == 2


# ---------------------------------------------------------------------------------------
# item 13: silent acceptances
# ---------------------------------------------------------------------------------------

def test_cost_given_twice_is_an_error(tmp_path):
    path = tmp_path / "w.svm"
    path.write_bytes(b"1 cost:2 3:1\n0 cost:1 2:1 cost:2\n")
    msg = error_of(iter_libsvm(str(path)))
    assert msg.startswith(f"{path}:2:14: 'cost:2': the line gives its weight twice"), msg
    path.write_bytes(b"1 cost:2 3:1\n0 2:1 cost:0.5\n")
    b = next(iter_libsvm(str(path)))
    assert b.weights.tolist() == [2.0, 0.5]


@pytest.mark.parametrize("kind", ["bzip2", "xz"])
def test_trailing_garbage_after_bzip2_and_xz_is_an_error(tmp_path, kind):
    compress = bz2.compress if kind == "bzip2" else lzma.compress
    text = b"1 1:1\n0 2:1\n"
    path = tmp_path / f"x.{kind}"
    path.write_bytes(compress(text) + b"garbage")
    msg = error_of(iter_libsvm(str(path)))
    assert msg == f"{path}: corrupt {kind} data (trailing garbage after the end of the compressed stream)"
    path.write_bytes(compress(text) + compress(text))  # concatenated streams: fine
    assert sum(b.rows for b in iter_libsvm(str(path))) == 4
    path.write_bytes(compress(text)[:-3])  # truncated
    msg = error_of(iter_libsvm(str(path)))
    assert "ends early" in msg or "corrupt" in msg


def test_xz_stream_padding_is_allowed(tmp_path):
    path = tmp_path / "x.xz"
    path.write_bytes(lzma.compress(b"1 1:1\n") + b"\0" * 8 + lzma.compress(b"0 2:1\n") + b"\0" * 4)
    assert sum(b.rows for b in iter_libsvm(str(path))) == 2


@pytest.mark.parametrize("ids, typ", [([1, 2**62], pa.int64()), ([1, 2**63 + 5], pa.uint64())],
                         ids=["2**62", "beyond_int64"])
def test_parquet_ids_from_2_62_are_refused_as_in_text(tmp_path, ids, typ):
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"label": [1.0, 0.0], "indices": pa.array([[3], ids], pa.list_(typ))}), path)
    msg = error_of(iter_parquet_sparse(str(path)))
    assert msg == (f"{path}: row 2: column 'indices': feature id {ids[1]} is too large "
                   "(ids must be < 2**62)"), msg
    text = tmp_path / "big.svm"
    text.write_bytes(f"1 3:1\n0 1:1 {ids[1]}:1\n".encode())
    assert "is too large (ids must be < 2**62)" in error_of(iter_libsvm(str(text)))
    pq.write_table(pa.table({"label": [1.0], "indices": pa.array([[2**62 - 1]], pa.list_(typ))}), path)
    assert next(iter_parquet_sparse(str(path))).ids.tolist() == [2**62 - 1]


# ---------------------------------------------------------------------------------------
# item 15: no pyarrow thread holds Python objects when a CSV error ends the process
# ---------------------------------------------------------------------------------------

def _avazu_without(tmp_path, rows=50, bad=None):
    lines = (CTR / "avazu_train_head1000.csv").read_bytes().split(b"\n")[: rows + 1]
    lines = [b",".join(c for k, c in enumerate(ln.split(b",")) if k != 1) for ln in lines]  # no click
    if bad is not None:
        lines = [ln.replace(b"1fbe01fe", bad) for ln in lines]
    path = tmp_path / "test.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("case", ["missing_column", "invalid_utf8", "unterminated_quote"])
def test_csv_errors_leave_pyarrow_holding_nothing(tmp_path, monkeypatch, case):
    """What pyarrow's read-ahead holds (the file object, its blocks) it must release holding
    the GIL; done at exit, that aborts the process. After an error, even with the exception
    (and its traceback) still alive, as the command line keeps it until it exits, pyarrow
    has let go of every file object it was given."""
    handed = []
    real = pa.PythonFile

    def spy(handle, mode=None):
        handed.append(weakref.ref(handle))
        return real(handle, mode=mode)

    monkeypatch.setattr(pa, "PythonFile", spy)
    if case == "missing_column":
        path, kw = _avazu_without(tmp_path), dict(label="click")
    elif case == "invalid_utf8":  # in a later block than the first: found while reading
        path = tmp_path / "utf8.csv"
        path.write_bytes(b"label,a\n" + b"1,x\n" * 300000 + b"0,\xff\xfe\n")
        kw = {}
    else:
        path = tmp_path / "q.csv"
        path.write_bytes(b"label,a\n" + b"1,x\n" * 20000 + b'0,"y\n')
        kw = {}
    with pytest.raises(DataError) as kept:
        list(iter_tabular(str(path), **kw))
    gc.collect()
    assert handed and kept.value is not None
    assert all(ref() is None for ref in handed), f"pyarrow still holds a file object after: {kept.value}"


def test_predict_on_a_bad_csv_exits_1_every_time(tmp_path):
    """`ftrl predict` on a CSV with invalid UTF-8 or two columns of one name, `ftrl eval`
    on one without its label column, 30 times in all: exit 1 each time, never 134 ("terminate called without an active exception"). Each run reads
    through a file whose reads take a little while (a slow disk), as pyarrow's read-ahead is
    then still busy when the command fails (that made the abort frequent)."""
    model = tmp_path / "m"
    api.train([str(CTR / "avazu_train_head1000.csv")], model,
              overrides={"label_column": "click", "ignore": ["id"], "bits": 16})
    header = (CTR / "avazu_train_head1000.csv").read_bytes().split(b"\n")[:21]
    utf8 = tmp_path / "utf8.csv"  # invalid UTF-8 in a text column
    utf8.write_bytes(b"\n".join(header).replace(b"1fbe01fe", b"1fbe\xff\xfe") + b"\n")
    dup = tmp_path / "dup.csv"  # two columns named click
    dup.write_bytes(b"\n".join([header[0].replace(b",hour,", b",click,")] + header[1:]) + b"\n")
    script = tmp_path / "slow_ftrl.py"
    script.write_text(SLOW_FTRL)
    cmds = [["predict", "-m", str(model), str(utf8)], ["predict", "-m", str(model), str(dup)],
            ["eval", "-m", str(model), str(_avazu_without(tmp_path))]]  # (eval needs the label)
    # (reads of 0.05 to 0.15 s: pyarrow's read-ahead is still reading when the command fails)
    runs = [(cmds[2] if k % 3 else cmds[k % 2], 0.05 + 0.02 * (k % 6)) for k in range(30)]
    codes = []
    for start in range(0, len(runs), 3):  # three at a time
        procs = [subprocess.Popen([sys.executable, str(script), str(delay)] + cmd, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for cmd, delay in runs[start:start + 3]]
        for p in procs:
            _, err = p.communicate(timeout=120)
            codes.append((p.returncode, err.decode(errors="replace")[-300:]))
    assert all(c == 1 for c, _ in codes), [c for c in codes if c[0] != 1][:3]
    assert all("ftrl: error: " in e and "terminate" not in e for _, e in codes)


SLOW_FTRL = '''
import sys
import time

import pyarrow as pa

delay = float(sys.argv.pop(1))
_PythonFile = pa.PythonFile


class _Slow:
    def __init__(self, f):
        self._f = f

    def __getattr__(self, k):
        return getattr(self._f, k)

    def read(self, n=-1):
        time.sleep(delay)
        return self._f.read(n)


pa.PythonFile = lambda f, mode=None: _PythonFile(_Slow(f), mode=mode)
from ftrl_cli.cli import main

sys.argv[0] = "ftrl"
main()
'''
