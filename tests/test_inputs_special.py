"""Inputs out of the ordinary: names.tsv for category values holding any character, and
FIFOs (named pipes) as training/predict inputs, read once like stdin."""

import bz2
import gzip
import io
import json
import lzma
import os
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import DATA, state_arrays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftrl_cli import api
from ftrl_cli.cli import main
from ftrl_cli.errors import ConfigError, DataError, ModelError
from ftrl_cli.readers import names as N
from ftrl_cli.readers.names import NameMap

# ---------------------------------------------------------------------------------------
# names.tsv: any character in a name
# ---------------------------------------------------------------------------------------

# what breaks a line for str.splitlines / universal newlines, TSV fields, or UTF-8
NASTY = list("\r\n\t\\\x00\x0b\x0c\x1c\x1d\x1e\x1f\x7f\x85\u2028\u2029\ud800\udfff")

names_text = st.text(alphabet=st.one_of(st.characters(exclude_categories=()), st.sampled_from(NASTY)),
                     max_size=30)


def save_and_load(tmp_path, names: dict) -> tuple:
    m = NameMap()
    for slot, name in names.items():
        m.add(slot, name)
    path = tmp_path / "names.tsv"
    m.save(str(path))
    return NameMap.load(str(path)), path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.integers(0, 2**40), names_text, max_size=8))
def test_names_tsv_round_trips_any_text(tmp_path, names):
    back, data = save_and_load(tmp_path, names)
    assert back.items() == sorted(names.items())
    # one line per name, whichever way the file is read back as text
    text = data.decode("utf-8")
    assert len(data.split(b"\n")) == len(names) + 1 and data.endswith(b"\n") or not names
    assert len(text.splitlines()) == len(names)
    with open(tmp_path / "names.tsv", encoding="utf-8") as f:  # universal newlines
        assert [line.count("\t") for line in f] == [2] * len(names)
    for name in names.values():
        assert N.unescape_name(N.escape_name(name)) == name


def test_names_tsv_escapes_as_documented(tmp_path):
    cases = {"a\rb": r"a\rb", "x\ny": r"x\ny", "t\tz": r"t\tz", "back\\slash": r"back\\slash",
             "nul\x00": r"nul\x00", "vt\x0bff\x0c": r"vt\x0bff\x0c", "del\x7f": r"del\x7f",
             "nel\x85": r"nel\x85", "ls\u2028ps\u2029": r"ls\u2028ps\u2029", "lone\ud83d": r"lone\ud83d",
             "é→😀 ok": "é→😀 ok", r"\x41": r"\\x41"}
    for raw, written in cases.items():
        assert N.escape_name(raw) == written
    back, data = save_and_load(tmp_path, dict(enumerate(cases)))
    assert data == "".join(f"{i}\t1\t{w}\n" for i, w in enumerate(cases.values())).encode()
    assert [n for _, n in back.items()] == list(cases)
    assert back.get(0) == r"a\rb" and back.name(0) == "a\rb" and back.get(99, "99") == "99"


def test_names_tsv_reads_files_of_earlier_versions(tmp_path):
    """Earlier versions escaped only \\, TAB and LF, and wrote CR and the rest raw."""
    path = tmp_path / "names.tsv"
    path.write_bytes(b"3\t1\tc=back\\\\slash\\tt\\nn\n7\t2\tc=raw\rcr\x00\xc2\x85\n")
    back = NameMap.load(str(path))
    assert back.items() == [(3, "c=back\\slash\tt\nn"), (7, "c=raw\rcr\x00\x85")]


def test_damaged_names_tsv_is_a_model_error(tmp_path):
    path = tmp_path / "names.tsv"
    path.write_bytes(b"3\t1\tc=a\nnot a line\n")
    with pytest.raises(ModelError, match=r"names.tsv:2: damaged line"):
        NameMap.load(str(path))


CATEGORIES = ["a\rb", "x\ny", "t\tz", "back\\slash", "nul\x00", "plain"]
WRITTEN = {"a\rb": r"c=a\rb", "x\ny": r"c=x\ny", "t\tz": r"c=t\tz", "back\\slash": r"c=back\\slash",
           "nul\x00": r"c=nul\x00", "plain": "c=plain", "more\u2028lines\r\n": r"c=more\u2028lines\r\n"}


def categories_parquet(path, values, rows=60):
    c = [values[i % len(values)] for i in range(rows)]
    y = [int((i % len(values)) % 2 == 0) ^ int(i % 7 == 0) for i in range(rows)]  # every value weighs
    pq.write_table(pa.table({"y": y, "c": c}), path)
    return str(path)


def test_category_values_with_control_characters_end_to_end(tmp_path):
    """A Parquet string column holding CR, LF, TAB, backslash and NUL: train, export,
    inspect and train --resume work, and export/inspect show the names escaped."""
    first = categories_parquet(tmp_path / "t.parquet", CATEGORIES)
    m = tmp_path / "m"
    over = {"label_column": "y", "l1": 0.0}
    api.train([first], m, overrides=over)

    def exported():
        out = io.BytesIO()
        api.export(m, out)
        rows = [line.split(b"\t") for line in out.getvalue().split(b"\n")[:-1]]
        assert all(len(r) == 2 for r in rows), rows  # one line, two fields per weight
        return {r[0].decode() for r in rows}

    assert exported() == {WRITTEN[v] for v in CATEGORIES} | {"bias"}
    top = api.inspect(m, top=20)
    assert {t["feature"] for t in top["top_positive"] + top["top_negative"]} <= {WRITTEN[v] for v in CATEGORIES}
    for cmd in (["export", "-m", m], ["inspect", "-m", m], ["inspect", "-m", m, "--json"]):
        r = CliRunner().invoke(main, [str(a) for a in cmd], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["inspect", "-m", str(m), "--json"], catch_exceptions=False)
    json.loads(r.stdout)

    second = categories_parquet(tmp_path / "u.parquet", CATEGORIES + ["more\u2028lines\r\n"])
    api.train([second], m, overrides=over, resume=True)  # reads names.tsv back, adds to it
    assert exported() == set(WRITTEN.values()) | {"bias"}
    names = NameMap.load(str(m / "names.tsv"))
    assert sorted(n for _, n in names.items()) == sorted("c=" + v for v in WRITTEN)  # not escaped twice


# ---------------------------------------------------------------------------------------
# FIFOs as inputs: read once, like stdin
# ---------------------------------------------------------------------------------------

A9A = DATA / "a9a_head2000.svm"
TIMEOUT = 60


class Writer:
    """Writes data into a FIFO from a thread, in small pieces (opening waits for a reader)."""

    def __init__(self, fifo, data: bytes, piece: int = 4096):
        self.fifo, self.data, self.piece, self.error = str(fifo), data, piece, None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            with open(self.fifo, "wb") as f:
                for i in range(0, len(self.data), self.piece):
                    f.write(self.data[i:i + self.piece])
        except OSError as e:  # (BrokenPipeError when the reader stops early)
            self.error = e

    def join(self):
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the writer is still waiting"


def unblock(fifo):
    """Let a reader waiting in open(fifo) go on (it then reads an empty stream)."""
    for _ in range(5):
        try:
            os.close(os.open(str(fifo), os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return


def within_timeout(fn, fifo, timeout=TIMEOUT):
    """fn() in a thread: a hang fails the test instead of blocking the suite."""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        unblock(fifo)
        t.join(10)
        pytest.fail(f"hung for {timeout} s on the FIFO (opened more than once?)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def make_fifo(tmp_path, name="in"):
    path = tmp_path / name
    os.mkfifo(path)
    return str(path)


COMPRESS = {"plain": lambda b: b, "gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}


@pytest.fixture(scope="module")
def file_model(tmp_path_factory):
    """The model trained on the regular file (also compiles the kernels before any timeout)."""
    d = tmp_path_factory.mktemp("file") / "m"
    api.train([str(A9A)], d)
    return d


def test_train_from_a_fifo_gives_the_file_s_model(tmp_path, file_model):
    fifo = make_fifo(tmp_path)
    w = Writer(fifo, A9A.read_bytes())
    summary = within_timeout(lambda: api.train([fifo], tmp_path / "m"), fifo)
    w.join()
    assert w.error is None and summary["examples"] == 2000
    got, log = state_arrays(tmp_path / "m")
    want, want_log = state_arrays(file_model)
    for k in want:
        assert np.array_equal(got[k], want[k]), k
    assert log["examples_seen"] == want_log["examples_seen"] and log["history"] == want_log["history"]


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_train_from_a_compressed_fifo(tmp_path, file_model, kind):
    fifo = make_fifo(tmp_path, "stream")  # no extension: the format is sniffed, decompressed
    w = Writer(fifo, COMPRESS[kind](A9A.read_bytes()), piece=1000)
    within_timeout(lambda: api.train([fifo], tmp_path / "m"), fifo)
    w.join()
    got, _ = state_arrays(tmp_path / "m")
    want, _ = state_arrays(file_model)
    for k in want:
        assert np.array_equal(got[k], want[k]), k


def test_predict_from_a_fifo(tmp_path, file_model):
    test = DATA / "a9a_t_head500.svm"
    want = io.BytesIO()
    api.predict(file_model, [str(test)], want)
    fifo = make_fifo(tmp_path)
    w = Writer(fifo, test.read_bytes(), piece=777)
    got = io.BytesIO()
    n = within_timeout(lambda: api.predict(file_model, [fifo], got), fifo)
    w.join()
    assert n == 500 and got.getvalue() == want.getvalue()


def test_fifo_is_refused_like_stdin_when_it_would_be_read_twice(tmp_path):
    fifo = make_fifo(tmp_path, "pipe.svm")
    with pytest.raises(ConfigError, match=r"pipe.svm \(a FIFO\) can be read once only: use it alone "
                                          r"with --passes 1, or give a file"):
        within_timeout(lambda: api.train([fifo], tmp_path / "m", overrides={"passes": 2}), fifo)
    with pytest.raises(ConfigError, match="can be read once only"):
        within_timeout(lambda: api.train([str(A9A), fifo], tmp_path / "m"), fifo)
    with pytest.raises(ConfigError, match="can be read once only"):
        within_timeout(lambda: api.train([fifo, str(A9A)], tmp_path / "m"), fifo)
    r = CliRunner().invoke(main, ["train", fifo, "-m", str(tmp_path / "m"), "--passes", "2"])
    assert r.exit_code == 2 and "(a FIFO) can be read once only" in r.output


def test_fifo_that_is_not_libsvm_is_refused_not_hung(tmp_path):
    """Parquet needs seeking and the CSV reader opens a file twice: a clear error."""
    csv = make_fifo(tmp_path, "t.csv")
    w = Writer(csv, b"label,a\n1,x\n0,y\n")
    with pytest.raises(DataError, match="a FIFO can be read as libsvm text only, not csv"):
        within_timeout(lambda: api.train([csv], tmp_path / "m"), csv)
    w.join()
    par = make_fifo(tmp_path, "t.bin")
    buf = io.BytesIO()
    pq.write_table(pa.table({"label": [1, 0]}), buf)
    w = Writer(par, buf.getvalue())
    with pytest.raises(DataError, match="not parquet"):
        within_timeout(lambda: api.train([par], tmp_path / "m2"), par)
    w.join()  # (the refused FIFO was closed: its writer is not left waiting)
