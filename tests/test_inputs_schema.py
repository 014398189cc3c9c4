"""What a model records about its inputs (Config.input_schema) and how predict, eval,
--validation and convert read data by it (issue 13 items 7, 8, 9, 11's convert OUT, 12, and
13's qid:abc): a model refuses data of the other layout, predict needs no label column, a
headerless file is named by the training columns, convert keeps cost: weights and writes
Parquet only into a Parquet name, and a qid: that is not an integer is an error."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import DATA, SAMPLE_TEST, SAMPLE_TRAIN, assert_same_state

from ftrl_cli.cli import main
from ftrl_cli.errors import DataError
from ftrl_cli.readers import iter_libsvm
from ftrl_cli.readers.names import unescape_name

AVAZU = DATA / "ctr" / "avazu_train_head1000.csv"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ok(*args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r


def one_line_error(r, code, *words):
    assert r.exit_code == code, r.output
    msg = r.stderr.strip()
    assert msg.startswith("ftrl: error: ") and "\n" not in msg and "Traceback" not in r.output, msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.fixture(scope="module")
def ctr(tmp_path_factory):
    """An Avazu sample split in two: train.csv (400 rows) and test.csv (200 rows), both with
    the header line, and the test file without its header, without its label, and both."""
    d = tmp_path_factory.mktemp("ctr")
    lines = AVAZU.read_text().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    (d / "train.csv").write_text(header + "".join(rows[:400]))
    (d / "test.csv").write_text(header + "".join(rows[400:600]))
    (d / "test_nh.csv").write_text("".join(rows[400:600]))
    drop = header.split(",").index("click")

    def no_label(line):
        f = line.rstrip("\n").split(",")
        return ",".join(f[:drop] + f[drop + 1:]) + "\n"

    (d / "test_nolabel.csv").write_text("".join(no_label(x) for x in [header] + rows[400:600]))
    (d / "test_nolabel_nh.csv").write_text("".join(no_label(x) for x in rows[400:600]))
    ok("train", d / "train.csv", "-m", d / "m", "--label", "click", "--ignore", "id", "-q")
    return d


# ---------------------------------------------------------------------------------------
# item 7: the input must have the layout the model was trained on
# ---------------------------------------------------------------------------------------

def test_a_table_model_refuses_libsvm_data(ctr):
    svm = DATA / "a9a_t_head500.svm"
    for cmd in ("eval", "predict"):
        r = run(cmd, "-m", ctr / "m", svm)
        one_line_error(r, 1, str(svm), "libsvm", "trained on a table")
        assert r.stdout == ""
    # the first input's layout being right does not let a later one through
    r = run("predict", "-m", ctr / "m", ctr / "test.csv", svm)
    one_line_error(r, 1, str(svm))
    assert r.stdout == ""  # checked before anything is printed


def test_an_ids_model_refuses_a_table(tmp_path, ctr):
    ok("train", SAMPLE_TRAIN, "-m", tmp_path / "m", "-q")
    assert json.loads((tmp_path / "m" / "config.json").read_text())["input_schema"] == {"layout": "ids"}
    one_line_error(run("eval", "-m", tmp_path / "m", ctr / "test.csv"), 1, "test.csv", "trained on libsvm")


def test_one_run_learns_from_one_layout(tmp_path, ctr):
    r = run("train", SAMPLE_TRAIN, ctr / "train.csv", "-m", tmp_path / "mixed", "--label", "click")
    one_line_error(r, 1, "train.csv", str(SAMPLE_TRAIN), "one layout")
    ok("train", SAMPLE_TRAIN, "-m", tmp_path / "m", "-q")
    r = run("train", ctr / "train.csv", "-m", tmp_path / "m", "--resume", "--label", "click")
    one_line_error(r, 1, "train.csv", "trained on libsvm")


def test_a_table_model_refuses_a_table_without_one_of_its_feature_columns(tmp_path, ctr):
    lines = (ctr / "test.csv").read_text().splitlines()
    drop = lines[0].split(",").index("C14")
    (tmp_path / "t.csv").write_text("".join(",".join(f[:drop] + f[drop + 1:]) + "\n"
                                            for f in (x.split(",") for x in lines)))
    r = run("predict", "-m", ctr / "m", tmp_path / "t.csv")
    one_line_error(r, 1, "t.csv", "no column 'C14'", "feature of the model")


def synthetic_rows(n, seed, x_as_int=False):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = int(rng.integers(0, 4)) if x_as_int else float(rng.integers(0, 16)) / 4 + 0.25
        c = "abc"[int(rng.integers(0, 3))]
        y = int(rng.random() < (0.2 + 0.15 * x + (0.2 if c == "a" else 0.0)) / 1.2)
        out.append((y, x, c))
    return out


def write_csv(path, rows, x_text):
    path.write_text("y,x,c\n" + "".join(f"{y},{x_text(x)},{c}\n" for y, x, c in rows))


def test_each_column_is_read_as_the_kind_it_had_in_training(tmp_path):
    """x is a float column in training; a test file whose x holds only integers (which
    pyarrow types int64, i.e. categorical) is still read as the numeric feature x. Oracle:
    the margin computed by hand from the exported weights."""
    write_csv(tmp_path / "train.csv", synthetic_rows(400, 1), repr)
    ok("train", tmp_path / "train.csv", "-m", tmp_path / "m", "--label", "y", "--l1", "0", "-q")
    test = synthetic_rows(50, 2, x_as_int=True)
    write_csv(tmp_path / "test.csv", test, str)
    margins = [float(v) for v in ok("predict", "-m", tmp_path / "m", tmp_path / "test.csv",
                                    "--kind", "margin").stdout.split()]
    w = dict((k, float(v)) for k, v in (ln.split("\t") for ln in ok("export", "-m", tmp_path / "m")
                                         .stdout.splitlines()))
    assert w["x"] != 0
    want = [w["bias"] + w["x"] * x + w.get(f"c={c}", 0.0) for _, x, c in test]
    assert np.allclose(margins, want, rtol=1e-12, atol=1e-15)
    # the same rows with x written as floats give the very same text
    write_csv(tmp_path / "test_f.csv", test, lambda x: f"{x}.0")
    assert ok("predict", "-m", tmp_path / "m", tmp_path / "test.csv").stdout == \
        ok("predict", "-m", tmp_path / "m", tmp_path / "test_f.csv").stdout


# ---------------------------------------------------------------------------------------
# item 8: predict needs no label column (eval does)
# ---------------------------------------------------------------------------------------

def test_predict_a_csv_without_the_label_column(ctr):
    want = ok("predict", "-m", ctr / "m", ctr / "test.csv").stdout
    assert len(want.splitlines()) == 200
    assert ok("predict", "-m", ctr / "m", ctr / "test_nolabel.csv").stdout == want
    one_line_error(run("eval", "-m", ctr / "m", ctr / "test_nolabel.csv"), 1, "no column 'click'")
    one_line_error(run("predict", "-m", ctr / "m", ctr / "test_nolabel.csv", "--with-label"), 1,
                   "no column 'click'")


def test_predict_parquet_without_the_label_column(tmp_path, ctr):
    wide = tmp_path / "test.parquet"
    pq.write_table(pcsv.read_csv(ctr / "test_nolabel.csv", convert_options=pcsv.ConvertOptions(
        column_types={"id": pa.string()})), wide)
    assert ok("predict", "-m", ctr / "m", wide).stdout == ok("predict", "-m", ctr / "m", ctr / "test.csv").stdout
    # sparse Parquet too
    ok("train", SAMPLE_TRAIN, "-m", tmp_path / "s", "-q")
    ok("convert", SAMPLE_TEST, tmp_path / "t.parquet", "-q")
    pq.write_table(pq.read_table(tmp_path / "t.parquet").drop(["label"]), tmp_path / "t_nolabel.parquet")
    assert ok("predict", "-m", tmp_path / "s", tmp_path / "t_nolabel.parquet").stdout == \
        ok("predict", "-m", tmp_path / "s", SAMPLE_TEST).stdout
    one_line_error(run("eval", "-m", tmp_path / "s", tmp_path / "t_nolabel.parquet"), 1, "no column 'label'")


# ---------------------------------------------------------------------------------------
# item 9: the training columns name a headerless file; --validation reads like training
# ---------------------------------------------------------------------------------------

def test_the_model_keeps_its_training_columns(ctr):
    schema = json.loads((ctr / "m" / "config.json").read_text())["input_schema"]
    assert schema["layout"] == "table"
    assert schema["columns"] == AVAZU.read_text().splitlines()[0].split(",")
    assert [c[0] for c in schema["singles"]] == [c for c in schema["columns"] if c not in ("id", "click")]


def test_eval_and_predict_a_headerless_file_without_columns(ctr):
    want = json.loads(ok("eval", "-m", ctr / "m", ctr / "test.csv", "--json").stdout)
    got = json.loads(ok("eval", "-m", ctr / "m", ctr / "test_nh.csv", "--no-header", "--json").stdout)
    assert got == want and got["n"] == 200
    # without the label column as well: one column fewer than the training data
    assert ok("predict", "-m", ctr / "m", ctr / "test_nolabel_nh.csv", "--no-header").stdout == \
        ok("predict", "-m", ctr / "m", ctr / "test.csv").stdout
    r = run("eval", "-m", ctr / "m", ctr / "test_nolabel_nh.csv", "--no-header")
    one_line_error(r, 1, "the label column 'click' is missing")


def test_a_headerless_file_of_another_width_asks_for_columns(tmp_path, ctr):
    (tmp_path / "t.csv").write_text("1,2,3\n4,5,6\n")
    r = run("predict", "-m", ctr / "m", tmp_path / "t.csv", "--no-header")
    one_line_error(r, 1, "t.csv", "has 3 columns", "trained on 24", "--columns")


def test_headerless_validation_file(tmp_path, ctr):
    want = json.loads(ok("eval", "-m", ctr / "m", ctr / "test.csv", "--json").stdout)
    ok("train", ctr / "train.csv", "-m", tmp_path / "v", "--label", "click", "--ignore", "id", "-q",
       "--validation", ctr / "test_nh.csv", "--validation-no-header")
    ev = json.loads(ok("inspect", "-m", tmp_path / "v", "--json").stdout)["evals"]
    assert [e["logloss"] for e in ev] == [want["logloss"]]
    assert_same_state(tmp_path / "v", ctr / "m")  # (validation changes nothing of the model)
    # a headerless training file: its validation file is read the same way by default
    (tmp_path / "train_nh.csv").write_text("".join((ctr / "train.csv").read_text().splitlines(True)[1:]))
    ok("train", tmp_path / "train_nh.csv", "-m", tmp_path / "h", "--no-header", "--label", "f1", "--ignore", "f0",
       "-q", "--validation", ctr / "test_nh.csv")
    ev = json.loads(ok("inspect", "-m", tmp_path / "h", "--json").stdout)["evals"]
    assert ev[0]["logloss"] == json.loads(ok("eval", "-m", tmp_path / "h", ctr / "test_nh.csv", "--json").stdout)[
        "logloss"]


def test_validation_columns_are_read_as_the_kind_they_had_in_training(tmp_path):
    write_csv(tmp_path / "train.csv", synthetic_rows(400, 1), repr)
    test = synthetic_rows(50, 2, x_as_int=True)
    write_csv(tmp_path / "v_int.csv", test, str)
    write_csv(tmp_path / "v_float.csv", test, lambda x: f"{x}.0")
    losses = []
    for v in ("v_int.csv", "v_float.csv"):
        m = tmp_path / ("m_" + v)
        ok("train", tmp_path / "train.csv", "-m", m, "--label", "y", "-q", "--validation", tmp_path / v)
        losses.append(json.loads(ok("inspect", "-m", m, "--json").stdout)["evals"][0]["logloss"])
    assert losses[0] == losses[1]


# ---------------------------------------------------------------------------------------
# item 11 (convert's OUT) and item 12: convert keeps cost: weights; export escapes names
# ---------------------------------------------------------------------------------------

def test_convert_writes_parquet_only_into_a_parquet_name(tmp_path):
    for name in ("out.svm", "out.csv", "out.txt", "out"):
        r = run("convert", SAMPLE_TRAIN, tmp_path / name)
        one_line_error(r, 2, name, ".parquet or .pq")
        assert not (tmp_path / name).exists()
    for name in ("out.pq", "OUT.PARQUET"):
        ok("convert", SAMPLE_TRAIN, tmp_path / name, "-q")
        assert (tmp_path / name).read_bytes()[:4] == b"PAR1"


def weighted_libsvm(tmp_path):
    """agaricus three times (19,539 rows), with cost: on every 7th line from line 17,000 on:
    the first weight shows up after the first batch (16k rows) was read without one, so the
    weight column must be there from the start."""
    lines = SAMPLE_TRAIN.read_text().splitlines() * 3
    path = tmp_path / "w.svm"
    path.write_text("".join((ln.replace(" ", f" cost:{1 + i % 3} ", 1) if i >= 17000 and i % 7 == 0 else ln)
                            + "\n" for i, ln in enumerate(lines)))
    return path


def test_convert_keeps_cost_weights_and_training_reads_them(tmp_path):
    svm = weighted_libsvm(tmp_path)
    ok("convert", svm, tmp_path / "w.parquet", "-q")
    w = pq.read_table(tmp_path / "w.parquet").column("weight").to_pylist()
    want = [float(t[5:]) if (t := ln.split()[1]).startswith("cost:") else 1.0
            for ln in svm.read_text().splitlines()]
    assert [1.0 if x is None else x for x in w] == want
    assert w[:16384] == [None] * 16384  # (a weight column of nulls costs nothing to read)
    ok("train", svm, "-m", tmp_path / "a", "-q", "--l1", "0.2")
    ok("train", tmp_path / "w.parquet", "-m", tmp_path / "b", "-q", "--l1", "0.2")
    assert_same_state(tmp_path / "a", tmp_path / "b")
    ok("train", SAMPLE_TRAIN, "-m", tmp_path / "c", "-q", "--l1", "0.2")
    with pytest.raises(AssertionError):
        assert_same_state(tmp_path / "a", tmp_path / "c")  # (the weights did change the model)
    # eval weighs rows the same way from either file
    ev = [json.loads(ok("eval", "-m", tmp_path / "a", f, "--json").stdout) for f in (svm, tmp_path / "w.parquet")]
    assert ev[0] == ev[1]


def test_export_escapes_names_with_tab_lf_nul(tmp_path):
    names = ["a\tb", "x\ny", "n\x00ul", "back\\slash", "plain"]
    pq.write_table(pa.table({"label": [1.0, 0.0, 1.0, 0.0, 1.0] * 4, "c": names * 4}), tmp_path / "t.parquet")
    ok("train", tmp_path / "t.parquet", "-m", tmp_path / "m", "--l1", "0", "-q")
    ok("export", "-m", tmp_path / "m", "-o", tmp_path / "w.tsv")
    lines = (tmp_path / "w.tsv").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(names) + 2  # one line per weight, then bias
    fields = [ln.decode().split("\t") for ln in lines[:-1]]
    assert all(len(f) == 2 for f in fields)
    assert sorted(unescape_name(f[0]) for f in fields[:-1]) == sorted(f"c={n}" for n in names)


# ---------------------------------------------------------------------------------------
# item 13: qid:abc
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("tok", [b"qid:abc", b"qid:", b"qid:3x", b"qid:1.5", b"qid:--1"])
def test_a_qid_that_is_not_an_integer_is_an_error(tmp_path, tok):
    path = tmp_path / "q.svm"
    path.write_bytes(b"1 qid:3 1:1\n0 " + tok + b" 2:1\n1 qid:-2 3:1 qid:+4\n")
    with pytest.raises(DataError) as e:
        list(iter_libsvm(str(path)))
    assert str(e.value).startswith(f"{path}:2:3: {tok.decode()!r}: a query id must be an integer"), str(e.value)
    bad = []
    rows = sum(b.rows for b in iter_libsvm(str(path), on_bad=bad.append))
    assert rows == 2 and len(bad) == 1
