"""Raw tables that just work (issue 14 item 4): with only --label, each column of a wide
Parquet/CSV file is typed from its type and its values in the first batch
(numeric_as="auto", the default): a column unique on every row is ignored, ids and codes
are categories, counts are log2 bins, real values are values; the decisions are reported
(stderr, --json) and recorded in the model, so predict reads data as training did; the
flags --categorical/--numeric/--ignore/--numeric-as override them."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import DATA, assert_same_state

from ftrl_cli.cli import main

AVAZU = DATA / "ctr" / "avazu_train_head1000.csv"
CRITEO_PQ = DATA / "ctr" / "criteo_train_head1000.parquet"
N = 1200


def ok(*args):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def schema_of(model):
    return json.loads((model / "config.json").read_text())["input_schema"]


def expected_kind(values):
    """A plain restatement of the documented rules over one column's non-null values
    (Python ints/floats/strings), independent of the reader's code."""
    n_rows, vals = len(values), [v for v in values if v is not None]
    distinct = len(set(vals))
    if isinstance(vals[0], str):
        return "ignore" if len(vals) == n_rows >= 1000 and distinct == n_rows else "cat"
    if any(v != int(v) for v in vals):
        return "num" if max(abs(v) for v in vals) <= 100 else "bin"
    if len(vals) == n_rows >= 1000 and distinct == n_rows:
        return "ignore"
    if distinct <= 32:
        return "cat"
    freq = {}
    for v in vals:
        freq[v] = freq.get(v, 0) + 1
    mode = min(freq, key=lambda v: (-freq[v], v))
    s = sorted(vals)
    k = len(s)
    median = s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) / 2
    return "bin" if mode in (0, 1) and max(vals) >= 10 * max(median, 1) else "cat"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A synthetic table of every kind of column, as Parquet and CSV, and its first 60 rows
    (a file on which, alone, the row id would not be found: too few rows)."""
    d = tmp_path_factory.mktemp("raw")
    rng = np.random.default_rng(7)
    cols = {
        "rowid": [str(10**19 + 7919 * i) for i in range(N)],  # above 2**63, as Avazu's id
        "code": [int(x) for x in rng.choice([1001, 1002, 1005, 1007], N)],
        "zip": [int(x) for x in rng.integers(15000, 15400, N)],  # many codes, far from 0
        "app": [int(x) for x in 3 + rng.zipf(1.6, N) % 500],  # ids, most often 4: not counts
        "count": [int(x) for x in rng.zipf(1.4, N) - 1],  # 0 most often, long tail
        "small": [round(float(x), 3) for x in rng.normal(0, 2, N)],
        "price": [round(float(x), 2) for x in rng.lognormal(6, 1, N)],
        "color": [str(x) for x in rng.choice(["red", "green", "blue"], N)],
    }
    cols["count"] = [v if i % 17 else None for i, v in enumerate(cols["count"])]
    score = np.array([c == 1002 for c in cols["code"]], float) + np.array(cols["small"]) / 2
    cols["label"] = [int(x) for x in (score + rng.normal(0, 1, N) > 0.8)]
    t = pa.table({k: pa.array(v) for k, v in cols.items()})
    pq.write_table(t, d / "t.parquet", row_group_size=N)
    # (rowid above 2**63 is text in CSV: pyarrow's inference makes it a double there)
    pcsv.write_csv(t, d / "t.csv")
    pq.write_table(t.slice(0, 60), d / "head.parquet")
    return d, cols


def test_decisions_follow_the_rules(table, tmp_path):
    d, cols = table
    ok("train", d / "t.parquet", "-m", tmp_path / "m", "--label", "label", "-q")
    got = {c: k for c, k, _ in schema_of(tmp_path / "m")["auto"]}
    want = {c: expected_kind(v) for c, v in cols.items() if c != "label"}
    assert got == want
    # (the data was made to hold one column of each kind: the rules are all exercised)
    assert want == {"rowid": "ignore", "code": "cat", "zip": "cat", "app": "cat", "count": "bin",
                    "small": "num", "price": "bin", "color": "cat"}
    singles = {c: k for c, k, _ in schema_of(tmp_path / "m")["singles"]}
    assert "rowid" not in singles and singles == {c: k for c, k in want.items() if k != "ignore"}


def test_csv_and_parquet_agree_and_runs_are_deterministic(table, tmp_path):
    d, _ = table
    for name, src in (("a", "t.parquet"), ("b", "t.parquet"), ("c", "t.csv")):
        ok("train", d / src, "-m", tmp_path / name, "--label", "label", "-q", "--passes", "2")
    assert_same_state(tmp_path / "a", tmp_path / "b")
    assert [r[:2] for r in schema_of(tmp_path / "a")["auto"]] == [r[:2] for r in schema_of(tmp_path / "c")["auto"]]
    assert_same_state(tmp_path / "a", tmp_path / "c")


def test_predict_reads_as_training_did(table, tmp_path):
    """The head file alone would be typed otherwise (60 rows: rowid is not taken for a row
    id); predict uses the model's decisions, so its rows predict as in the whole file."""
    d, _ = table
    m = tmp_path / "m"
    ok("train", d / "t.parquet", "-m", m, "--label", "label", "-q")
    whole = ok("predict", "-m", m, d / "t.parquet").stdout.split()
    head = ok("predict", "-m", m, d / "head.parquet").stdout.split()
    assert head == whole[:60]
    ok("train", d / "head.parquet", "-m", tmp_path / "h", "--label", "label", "-q")
    assert dict((c, k) for c, k, _ in schema_of(tmp_path / "h")["auto"])["rowid"] == "cat"


def test_flags_override_and_explicit_runs_are_unchanged(table, tmp_path):
    d, _ = table
    p = d / "t.parquet"
    # --numeric-as value: the typing by arrow type of before (strings and ints categorical)
    ok("train", p, "-m", tmp_path / "v", "--label", "label", "--numeric-as", "value", "-q")
    s = schema_of(tmp_path / "v")
    assert "auto" not in s
    assert {c: k for c, k, _ in s["singles"]} == {"rowid": "cat", "code": "cat", "zip": "cat", "app": "cat",
                                                  "count": "cat", "small": "num", "price": "num",
                                                  "color": "cat"}
    # a list: as before, whatever numeric_as's default
    ok("train", p, "-m", tmp_path / "l1", "--label", "label", "--numeric", "count", "--categorical", "*", "-q")
    ok("train", p, "-m", tmp_path / "l2", "--label", "label", "--numeric", "count", "--categorical", "*",
       "--numeric-as", "value", "-q")
    assert "auto" not in schema_of(tmp_path / "l1")
    assert_same_state(tmp_path / "l1", tmp_path / "l2")
    # --ignore drops a column; the others are still typed by their values
    ok("train", p, "-m", tmp_path / "i", "--label", "label", "--ignore", "color,count", "-q")
    got = {c: k for c, k, _ in schema_of(tmp_path / "i")["auto"]}
    assert "color" not in got and "count" not in got and got["price"] == "bin" and got["rowid"] == "ignore"


def test_report_on_stderr_and_json(table, tmp_path):
    d, _ = table
    r = ok("train", d / "t.parquet", "-m", tmp_path / "m", "--label", "label")
    lines = [x for x in r.stderr.splitlines() if x.startswith("  rowid ") or x.startswith("  count ")]
    assert len(lines) == 2 and "ignored" in lines[0] and "unique" in lines[0] and "log2 bins" in lines[1]
    assert all(len(x) <= 80 for x in r.stderr.splitlines()[:10])
    r = ok("train", d / "t.parquet", "-m", tmp_path / "m", "--label", "label", "--force", "-q", "--json")
    assert r.stderr == ""
    cols = json.loads(r.stdout)["columns"]
    assert [c for c, k, _ in cols if k == "ignore"] == ["rowid"]


def test_raw_avazu_csv_trains_sanely(tmp_path):
    """Avazu's id (above 2**63, read as a float by type) was a value of about 1e19: the
    model diverged. Now it is ignored, and the loss is below the constant predictor's."""
    r = ok("train", AVAZU, "-m", tmp_path / "m", "--label", "click", "-q", "--json")
    s = json.loads(r.stdout)
    assert s["columns"][0][:2] == ["id", "ignore"]
    assert s["progressive_logloss"] < s["best_constant_logloss"]
    # the same model as the explicit recipe of before (every other column is categorical)
    ok("train", AVAZU, "-m", tmp_path / "e", "--label", "click", "--ignore", "id", "--numeric-as", "value", "-q")
    assert_same_state(tmp_path / "m", tmp_path / "e")


def test_raw_criteo_counts_are_bins(tmp_path):
    r = ok("train", CRITEO_PQ, "-m", tmp_path / "m", "--label", "label", "-q", "--json")
    kinds = {c: k for c, k, _ in json.loads(r.stdout)["columns"]}
    assert all(kinds[f"C{i}"] == "cat" for i in range(1, 27))
    assert sum(kinds[f"I{i}"] == "bin" for i in range(1, 14)) >= 9
    t = pq.read_table(CRITEO_PQ)
    assert kinds == {c: expected_kind(t[c].to_pylist()) for c in t.column_names if c != "label"}
