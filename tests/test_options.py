"""Options mean the same in every command and never silently do nothing (issue 13, items 13,
14, 17 and 18 for the command line): -o/--output FILE, --kind, -q everywhere, the old
spellings with a deprecation warning, --threshold, --per-file, --with-label, --with-id,
--validation-every, and messages that name the flag or file at fault."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ftrl_cli.cli import main

ROOT = Path(__file__).resolve().parent.parent
TRAIN = str(ROOT / "sample_data" / "agaricus.txt.train")
TEST = str(ROOT / "sample_data" / "agaricus.txt.test")
A9A = str(ROOT / "tests" / "data" / "a9a_head2000.svm")


def run(*args, cwd=None):
    """`ftrl ARGS` in a child process: exit code, stdout and stderr as the user sees them."""
    return subprocess.run([sys.executable, "-m", "ftrl_cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def invoke(*args):
    """`ftrl ARGS` in this process (faster; stdout and stderr apart)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("options") / "m"
    r = run("train", TRAIN, "-m", d, "-q")
    assert r.returncode == 0, r.stderr
    return d


@pytest.fixture(scope="module")
def kinds(model):
    """What predict prints for each kind, spelled the new way."""
    out = {}
    for kind in ("proba", "margin", "label"):
        r = invoke("predict", "-m", model, TEST, "--kind", kind)
        assert r.exit_code == 0 and r.stderr == "", r.output
        out[kind] = r.stdout
    assert out["proba"] == invoke("predict", "-m", model, TEST).stdout
    return out


def warnings(stderr):
    return [line for line in stderr.splitlines() if "warning" in line]


# ---- item 17: one scheme of option names ------------------------------------------------------

def test_output_names_the_file_in_predict_and_export(model, kinds, tmp_path):
    for flag in ("-o", "--output"):
        p = tmp_path / f"p{flag}.txt"
        r = run("predict", "-m", model, TEST, flag, p)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
        assert p.read_text() == kinds["proba"]
        w = tmp_path / f"w{flag}.tsv"
        r = run("export", "-m", model, flag, w)
        assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
        assert w.read_text() == run("export", "-m", model).stdout
    r = run("predict", "-m", model, TEST, f"--output={tmp_path / 'eq.txt'}", "--kind", "margin")
    assert r.returncode == 0 and (tmp_path / "eq.txt").read_text() == kinds["margin"]


def test_kind_and_raw(model, kinds):
    assert invoke("predict", "-m", model, TEST, "--raw").stdout == kinds["margin"]
    assert invoke("predict", "-m", model, TEST, "--raw", "--kind", "margin").stdout == kinds["margin"]
    assert set(kinds["label"].split()) == {"0", "1"}
    p = [float(x) for x in kinds["proba"].split()]
    assert kinds["label"].split() == ["1" if x >= 0.5 else "0" for x in p]


@pytest.mark.parametrize("kind", ["proba", "margin", "label"])
def test_old_output_kind_still_works_with_a_deprecation_warning(model, kinds, kind, tmp_path):
    for args in (["--output", kind], [f"--output={kind}"]):
        r = run("predict", "-m", model, TEST, *args, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout == kinds[kind]
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and "deprecated" in lines[0] and f"--kind {kind}" in lines[0], r.stderr
        assert not (tmp_path / kind).exists()
    r = run("predict", "-m", model, TEST, "--output", kind, "-q", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == kinds[kind] and r.stderr == ""


def test_old_output_file_still_works_with_a_deprecation_warning(model, kinds, tmp_path):
    p = tmp_path / "p.txt"
    r = run("predict", "-m", model, TEST, "--output-file", p)
    assert r.returncode == 0 and r.stdout == "" and p.read_text() == kinds["proba"]
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "--output-file is deprecated" in lines[0] and "-o/--output" in lines[0]
    p.unlink()
    r = run("predict", "-m", model, TEST, "--output-file", p, "--output", "label", "-q")
    assert r.returncode == 0 and r.stderr == "" and p.read_text() == kinds["label"]


def test_a_file_named_like_a_kind(model, kinds, tmp_path):
    """`-o` always named a file, so `-o proba` still writes ./proba; `--output ./proba` too."""
    r = run("predict", "-m", model, TEST, "-o", "proba", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
    assert (tmp_path / "proba").read_text() == kinds["proba"]
    r = run("predict", "-m", model, TEST, "--output", "./margin", "--kind", "margin", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stderr
    assert (tmp_path / "margin").read_text() == kinds["margin"]


@pytest.mark.parametrize("args, words", [
    (["--output", "label", "--kind", "margin"], ["--output label", "--kind margin"]),
    (["--raw", "--kind", "label"], ["--raw", "--kind label"]),
    (["--raw", "--output", "proba"], ["--raw", "--kind proba"]),
    (["--output-file", "a.txt", "-o", "b.txt"], ["--output-file", "-o/--output"]),
])
def test_contradicting_output_options_are_usage_errors(model, tmp_path, args, words):
    r = run("predict", "-m", model, TEST, *args, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    error = [line for line in r.stderr.splitlines() if "error" in line.lower()]
    assert len(error) == 1 and all(w in error[0] for w in words), r.stderr
    assert not list(tmp_path.iterdir())


def test_every_command_takes_quiet():
    for name in main.commands:
        r = invoke(name, "--help")
        assert r.exit_code == 0 and "-q, --quiet" in r.stdout, f"ftrl {name} has no -q/--quiet"


def test_quiet_inspect_and_export_print_nothing_on_stderr(tmp_path):
    """Their only stderr output, the --last-good note, is silenced by -q."""
    d = tmp_path / "m"
    assert run("train", TRAIN, "-m", d, "-q").returncode == 0
    assert run("train", TEST, "-m", d, "-q", "--resume").returncode == 0
    newest = sorted(d.glob("ckpt-*.npz"))[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x40
    newest.write_bytes(bytes(data))
    for cmd in (["inspect", "-m", d, "--last-good"], ["inspect", "-m", d, "--last-good", "--json"],
                ["export", "-m", d, "--last-good"]):
        loud = run(*cmd)
        assert loud.returncode == 0 and "newest good" in loud.stderr, loud.stderr
        quiet = run(*cmd, "-q")
        assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == loud.stdout


def test_help_examples_and_readme_use_the_new_names():
    text = invoke("predict", "--help").stdout
    example = text.split("Example:", 1)[1]
    assert "--kind label" in example and "-o p.txt" in example and "--output label" not in example
    assert "--kind [proba|margin|label]" in text and "-o, --output FILE" in text
    assert "--output-file" not in text  # a deprecated alias, not advertised
    assert "-o, --output FILE" in invoke("export", "--help").stdout
    readme = (ROOT / "README.md").read_text()
    commands = readme.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for words in ("`-o/--output FILE`", "`--kind margin`", "`--kind label`", "-q/--quiet",
                  "`predict --output-file FILE`", "`predict --output proba|margin|label`", "`--output ./proba`"):
        assert words in commands, words
    assert "--output margin|label" not in readme


# ---- item 13: small silent acceptances ----------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-0.1", "1.5", "NaN"])
def test_threshold_must_be_a_probability(model, value):
    for cmd in (["predict", "-m", model, TEST, "--kind", "label"], ["eval", "-m", model, TEST]):
        r = invoke(*cmd, "--threshold", value)
        assert r.exit_code == 2 and r.stdout == "", (cmd, r.output)
        assert "--threshold" in r.stderr and "[0, 1]" in r.stderr


def test_threshold_at_the_ends_of_the_range(model, kinds):
    p = [float(x) for x in kinds["proba"].split()]
    for t in (0.0, 1.0):
        r = invoke("predict", "-m", model, TEST, "--kind", "label", "--threshold", t)
        assert r.exit_code == 0 and r.stdout.split() == ["1" if x >= t else "0" for x in p]
        assert invoke("eval", "-m", model, TEST, "--threshold", t, "--json").exit_code == 0


def test_per_file_refuses_a_file_given_twice(model, tmp_path):
    alias = tmp_path / "link.svm"
    alias.symlink_to(TEST)
    for files in ([TEST, TEST], [TEST, TRAIN, TEST], [TEST, alias],
                  [TEST, os.path.join(os.path.dirname(TEST), ".", os.path.basename(TEST))]):
        r = invoke("eval", "-m", model, *files, "--per-file", "--json")
        assert r.exit_code == 2 and r.stdout == "", r.output
        assert "--per-file" in r.stderr and "once" in r.stderr and TEST in r.stderr
    # without --per-file, rows are counted as often as they are given (one stream of rows)
    r = invoke("eval", "-m", model, TEST, TEST, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["n"] == 2 * 1611
    r = invoke("eval", "-m", model, TEST, TRAIN, "--per-file", "--json")
    assert r.exit_code == 0 and set(json.loads(r.stdout)["files"]) == {TEST, TRAIN}


def test_with_label_prints_the_label_exactly(model, tmp_path):
    written = ["123456789", "0.5", "-1", "+1", "1e20", "1.0", "3.25", "-0.125", "1e-300", "0",
               "12345678901234567", "9007199254740993"]
    printed = ["123456789", "0.5", "-1", "1", "1e+20", "1", "3.25", "-0.125", "1e-300", "0",
               "1.2345678901234568e+16", "9007199254740992"]  # repr, less a trailing .0
    data = tmp_path / "labels.svm"
    data.write_text("".join(f"{y} 1:1\n" for y in written))
    r = invoke("predict", "-m", model, data, "--with-label")
    assert r.exit_code == 0, r.output
    labels = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert labels == printed
    assert [float(x) for x in labels] == [float(x) for x in written]  # read back: the same numbers


# ---- item 14: options that do nothing say so --------------------------------------------------

@pytest.mark.parametrize("args", [["--threshold", "0.3"], ["--kind", "proba", "--threshold", "0.5"],
                                  ["--kind", "margin", "--threshold", "0.3"], ["--raw", "--threshold", "0.3"]])
def test_threshold_without_label_kind_is_an_error(model, args):
    r = invoke("predict", "-m", model, TEST, *args)
    assert r.exit_code == 2 and r.stdout == ""
    assert "--threshold" in r.stderr and "--kind label" in r.stderr, r.stderr


def test_with_id_says_when_rows_have_no_id(model, tmp_path):
    none = run("predict", "-m", model, TEST, "--with-id")
    assert none.returncode == 0
    rows = none.stdout.splitlines()
    assert len(rows) == 1611 and all(r.split("\t")[0] == "" for r in rows)
    w = warnings(none.stderr)
    assert len(w) == 1 and "--with-id" in w[0] and "no row has an id" in w[0], none.stderr
    assert run("predict", "-m", model, TEST, "--with-id", "-q").stderr == ""

    mixed = tmp_path / "mixed.svm"
    mixed.write_text("1 1:1 # user-7\n0 2:1\n1 3:1 # user-9\n")
    r = run("predict", "-m", model, mixed, "--with-id")
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == ["user-7", "", "user-9"]
    w = warnings(r.stderr)
    assert len(w) == 1 and "1 of 3 rows have no id" in w[0], r.stderr

    ids = tmp_path / "ids.svm"
    ids.write_text("1 1:1 # a\n0 2:1 # b\n")
    r = run("predict", "-m", model, ids, "--with-id")
    assert r.returncode == 0 and r.stderr == "" and [x.split("\t")[0] for x in r.stdout.splitlines()] == ["a", "b"]


def test_with_id_on_a_table_without_id_column(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("y,a,b,rid\n" + "".join(f"{i % 2},{i % 7},{i % 3},r{i}\n" for i in range(40)))
    m = tmp_path / "m"
    assert run("train", csv, "-m", m, "-q", "--label", "y", "--ignore", "rid").returncode == 0
    r = run("predict", "-m", m, csv, "--with-id")
    assert r.returncode == 0 and all(line.startswith("\t") for line in r.stdout.splitlines())
    w = warnings(r.stderr)
    assert len(w) == 1 and "no row has an id" in w[0] and "--id" in w[0], r.stderr
    r = run("predict", "-m", m, csv, "--with-id", "--id", "rid")
    assert r.returncode == 0 and r.stderr == ""
    assert [line.split("\t")[0] for line in r.stdout.splitlines()] == [f"r{i}" for i in range(40)]


def test_an_id_holding_line_breaks_or_tabs_stays_one_field_of_one_line(tmp_path):
    """A quoted CSV field may hold TABs and line breaks: each prints as a space, so the
    output keeps one line per row and the id one TSV field."""
    odd = ["a\tb", "c\nd", "e\r\nf", "g\u2028h", "plain", "back\\slash"]
    csv = tmp_path / "t.csv"
    with open(csv, "w", newline="") as f:
        f.write("y,a,rid\n" + "".join(f'{i % 2},{i % 3},"{t}"\n' for i, t in enumerate(odd)))
    m = tmp_path / "m"
    assert run("train", csv, "-m", m, "-q", "--label", "y", "--ignore", "rid").returncode == 0
    r = run("predict", "-m", m, csv, "--with-id", "--id", "rid", "--with-label")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")[:-1]
    assert [line.split("\t")[:2] for line in lines] == [
        ["a b", "0"], ["c d", "1"], ["e  f", "0"], ["g h", "1"], ["plain", "0"], ["back\\slash", "1"]]
    assert all(len(line.split("\t")) == 3 for line in lines)


def test_validation_every_needs_something_to_evaluate(tmp_path):
    r = run("train", A9A, "-m", tmp_path / "m", "--validation-every", "500")
    assert r.returncode == 2 and not (tmp_path / "m").exists()
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ftrl: error:"), r.stderr
    assert "--validation-every" in lines[0] and "--validation FILE" in lines[0] and "--holdout-every" in lines[0]
    # with either, as a flag or in the settings it starts from, it evaluates
    r = run("train", A9A, "-m", tmp_path / "h", "--validation-every", "500", "--holdout-every", "10", "--json")
    assert r.returncode == 0, r.stderr
    r = run("train", A9A, "-m", tmp_path / "v", "--validation-every", "500", "--validation", TEST, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["validation"] is not None, r.stderr
    r = run("train", A9A, "-m", tmp_path / "c", "--validation-every", "500", "--json",
            "--config", tmp_path / "h" / "config.json")
    assert r.returncode == 0, r.stderr
    r = run("train", A9A, "-m", tmp_path / "h", "--validation-every", "700", "--resume", "--passes", "2")
    assert r.returncode == 0, r.stderr
    r = run("train", A9A, "-m", tmp_path / "m2", "--validation-every", "0")
    assert r.returncode == 0, r.stderr


# ---- item 18: messages name the flag or the file ------------------------------------------

@pytest.mark.parametrize("value", ["1e12", "1000000000000", str(2**30 + 1)])
def test_batch_size_errors_name_the_flag(tmp_path, value):
    r = run("train", A9A, "-m", tmp_path / "m", "--batch-size", value)
    assert r.returncode == 2 and "--batch-size" in r.stderr, r.stderr
    assert "memory" not in r.stderr and "--bits" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("text, words", [
    ('{"alpha": "x"}', ["alpha"]),
    ('{"batch_size": 1e12}', ["batch_size"]),
    ('{"batch_size": 1000000000000}', ["batch_size", "2**30"]),
    ('{"alphax": 1}', ["unknown", "alphax"]),
    ('{"alpha": ', ["not valid JSON"]),
    ("\xff", ["not", "UTF-8"]),
])
def test_config_json_errors_name_the_file(tmp_path, text, words):
    cfg = tmp_path / "my-config.json"
    cfg.write_bytes(text.encode("latin-1"))
    r = run("train", A9A, "-m", tmp_path / "m", "--config", cfg)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"ftrl: error: {cfg}") and all(w in lines[0] for w in words), lines[0]
