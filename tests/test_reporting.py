"""Numbers a user reads are true (issue 13, item 4): the summary, the JSON, empty inputs."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TRAIN = str(HERE.parent / "sample_data" / "agaricus.txt.train")


def ftrl(*args):
    return subprocess.run([sys.executable, "-m", "ftrl_cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def strict_json(text):
    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=no_constants)


@pytest.mark.parametrize("content", ["", "# only a comment\n\n   \n# another\n"])
def test_a_training_file_without_rows_is_an_error_naming_it(tmp_path, content):
    p = tmp_path / "empty.svm"
    p.write_text(content)
    r = ftrl("train", p, "-m", tmp_path / "m", "-q")
    assert r.returncode == 1 and str(p) in r.stderr and "no rows" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m" / "config.json").exists()


def test_json_has_null_where_a_number_is_undefined(tmp_path):
    """A validation set of one class has no AUC: null, never NaN (invalid JSON)."""
    val = tmp_path / "pos.svm"
    val.write_text("".join(line for line in open(TRAIN) if line.startswith("1")))
    r = ftrl("train", TRAIN, "-m", tmp_path / "m", "--validation", val, "--json", "-q")
    assert r.returncode == 0, r.stderr
    s = strict_json(r.stdout)
    assert s["validation"]["auc"] is None and s["validation"]["logloss"] > 0


def test_summary_counts_examples_once_and_the_curve_has_its_x(tmp_path):
    r = ftrl("train", TRAIN, "-m", tmp_path / "m", "--passes", "2")
    assert "trained on 13,026 examples in 2 pass(es)" in r.stderr, r.stderr
    r = ftrl("train", TRAIN, "-m", tmp_path / "j", "--passes", "2", "--json", "-q")
    s = strict_json(r.stdout)
    xs = [p["examples"] for p in s["curve"]]
    assert xs == sorted(xs) and xs[0] == 128 and {p["pass"] for p in s["curve"]} == {1, 2}
    assert all(0 < p["train_logloss"] < 1 for p in s["curve"])


def test_the_log_table_says_its_loss_is_the_pass_s(tmp_path):
    r = ftrl("train", TRAIN, "-m", tmp_path / "m", "--passes", "2")
    assert "pass loss" in r.stderr and "of the pass so far" in r.stderr
