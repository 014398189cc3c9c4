"""End to end through the `ftrl` command (Click's CliRunner and real subprocesses)."""

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import assert_same_state
from sklearn.datasets import load_svmlight_file
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from ftrl_cli.cli import main


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.mark.parametrize("cmd", [[], ["train"], ["predict"], ["eval"], ["export"]])
def test_help(cmd):
    r = run(*cmd, "--help")
    assert r.exit_code == 0
    assert "Usage:" in r.stdout
    if cmd:
        assert "Example:" in r.stdout


def test_train_predict_eval_export_agree_with_sklearn(tmp_path, sample_train, sample_test):
    m = tmp_path / "m"
    r = run("train", sample_train, "-m", m, "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["examples"] == 6513 and summary["passes"] == 1
    assert (m / "config.json").exists() and (m / "manifest.json").exists()

    r = run("predict", "-m", m, sample_test)
    assert r.exit_code == 0
    p = np.array([float(x) for x in r.stdout.split()])
    X, y = load_svmlight_file(sample_test, zero_based=True, n_features=200)
    assert len(p) == len(y) == 1611
    assert np.all((p > 0) & (p < 1))

    r = run("eval", "-m", m, sample_test, "--json")
    assert r.exit_code == 0
    ev = json.loads(r.stdout)
    assert ev["n"] == 1611
    assert ev["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert ev["logloss"] == pytest.approx(log_loss(y, p), rel=1e-9)
    assert ev["accuracy"] == pytest.approx(accuracy_score(y, p >= 0.5))
    assert ev["positive_rate"] == pytest.approx(y.mean())
    assert ev["auc"] > 0.98  # agaricus is (almost) separable

    # export: recompute every prediction by hand from the TSV
    r = run("export", "-m", m)
    assert r.exit_code == 0
    w = np.zeros(X.shape[1])
    bias = None
    for line in r.stdout.splitlines():
        name, val = line.split("\t")
        if name == "bias":
            bias = float(val)
        else:
            assert float(val) != 0.0
            w[int(name)] = float(val)
    assert bias is not None
    margin = X @ w + bias
    np.testing.assert_allclose(1 / (1 + np.exp(-margin)), p, rtol=1e-12, atol=1e-15)

    r = run("predict", "-m", m, sample_test, "--raw")
    np.testing.assert_allclose([float(x) for x in r.stdout.split()], margin, rtol=1e-12, atol=1e-12)


def test_eval_table_is_readable(tmp_path, sample_train, sample_test):
    run("train", sample_train, "-m", tmp_path / "m", "-q")
    r = run("eval", "-m", tmp_path / "m", sample_test)
    assert r.exit_code == 0
    keys = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    assert keys[:5] == ["n", "logloss", "auc", "pr_auc", "accuracy@0.5"]
    assert "positive_rate" in keys and "calibration" in keys


def test_predict_output_file_is_full_precision(tmp_path, sample_train, sample_test):
    run("train", sample_train, "-m", tmp_path / "m", "-q")
    out = tmp_path / "p.txt"
    assert run("predict", "-m", tmp_path / "m", sample_test, "-o", out).exit_code == 0
    stdout = run("predict", "-m", tmp_path / "m", sample_test).stdout
    assert out.read_text() == stdout
    assert not list(tmp_path.glob(".p.txt*"))  # no temp file left behind
    # every printed probability parses back to exactly the float the model computed
    from ftrl_cli import kernels as K
    from ftrl_cli import load_model
    from ftrl_cli.readers import iter_libsvm

    model = load_model(tmp_path / "m")
    exact = []
    for b in iter_libsvm(sample_test):
        m = model.margins(b.indptr, b.ids, b.values)
        p = np.empty_like(m)
        K.sigmoid_array(m, p)
        exact.extend(p.tolist())
    assert [float(line) for line in stdout.splitlines()] == exact


def test_deterministic(tmp_path, sample_train, sample_test):
    for d in ("a", "b"):
        run("train", sample_train, "-m", tmp_path / d, "-q", "--l1", "0.5")
    assert_same_state(tmp_path / "a", tmp_path / "b")
    pa = run("predict", "-m", tmp_path / "a", sample_test).stdout
    pb = run("predict", "-m", tmp_path / "b", sample_test).stdout
    assert pa == pb


def split_file(src, tmp_path, at):
    lines = open(src).read().splitlines(keepends=True)
    a, b = tmp_path / "A.svm", tmp_path / "B.svm"
    a.write_text("".join(lines[:at]))
    b.write_text("".join(lines[at:]))
    return a, b


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_resume_on_new_data_is_bit_identical(tmp_path, sample_train, dtype):
    a, b = split_file(sample_train, tmp_path, 4000)
    assert run("train", a, "-m", tmp_path / "r", "-q", "--dtype", dtype).exit_code == 0
    r = run("train", b, "-m", tmp_path / "r", "--resume", "-q")
    assert r.exit_code == 0, r.output
    run("train", a, b, "-m", tmp_path / "one", "-q", "--dtype", dtype)
    assert_same_state(tmp_path / "r", tmp_path / "one")
    run("train", sample_train, "-m", tmp_path / "whole", "-q", "--dtype", dtype)
    assert_same_state(tmp_path / "r", tmp_path / "whole")


def test_passes_equal_repeated_inputs(tmp_path, sample_train):
    run("train", sample_train, "-m", tmp_path / "p2", "-q", "--passes", "2")
    run("train", sample_train, sample_train, "-m", tmp_path / "twice", "-q")
    assert_same_state(tmp_path / "p2", tmp_path / "twice")


def test_config_reproduces_a_run_and_flags_override(tmp_path, sample_train):
    run("train", sample_train, "-m", tmp_path / "a", "-q", "--alpha", "0.3", "--l1", "0.2", "--bits", "20")
    cfg = tmp_path / "a" / "config.json"
    d = json.loads(cfg.read_text())
    assert d["alpha"] == 0.3 and d["l1"] == 0.2 and d["bits"] == 20
    assert d["format_version"] == 1 and "package_version" in d
    run("train", sample_train, "-m", tmp_path / "b", "-q", "--config", cfg)
    assert_same_state(tmp_path / "a", tmp_path / "b")
    run("train", sample_train, "-m", tmp_path / "c", "-q", "--config", cfg, "--l1", "0")
    c = json.loads((tmp_path / "c" / "config.json").read_text())
    assert c["l1"] == 0.0 and c["alpha"] == 0.3


def test_config_unknown_key_is_an_error(tmp_path, sample_train):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"alpha": 0.1, "lamda1": 2}))
    r = run("train", sample_train, "-m", tmp_path / "m", "--config", cfg)
    assert r.exit_code == 2
    assert "unknown key(s) lamda1" in r.stderr and "Traceback" not in r.output


def test_existing_model_needs_resume_or_force(tmp_path, sample_train):
    run("train", sample_train, "-m", tmp_path / "m", "-q")
    r = run("train", sample_train, "-m", tmp_path / "m", "-q")
    assert r.exit_code == 2 and "--resume" in r.stderr
    assert run("train", sample_train, "-m", tmp_path / "m", "-q", "--force").exit_code == 0
    # --force replaces even a model this version cannot read (a newer format)
    man = tmp_path / "m" / "manifest.json"
    man.write_text(man.read_text().replace('"format_version": 3', '"format_version": 99'))
    assert run("train", sample_train, "-m", tmp_path / "m", "-q").exit_code == 3
    assert run("train", sample_train, "-m", tmp_path / "m", "-q", "--force").exit_code == 0
    assert '"format_version": 3' in man.read_text()


def test_resume_cannot_change_table(tmp_path, sample_train):
    run("train", sample_train, "-m", tmp_path / "m", "-q")
    r = run("train", sample_train, "-m", tmp_path / "m", "-q", "--resume", "--bits", "12")
    assert r.exit_code == 2 and "bits" in r.stderr


def test_bad_data_is_one_line_with_file_and_line(tmp_path):
    f = tmp_path / "bad.svm"
    f.write_text("1 1:1 2:1\n0 3:x\n")
    r = run("train", f, "-m", tmp_path / "m")
    assert r.exit_code == 1
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1
    assert f"{f}:2:" in err and "Traceback" not in r.output


def test_missing_model_exit_code(tmp_path, sample_test):
    r = run("predict", "-m", tmp_path / "nope", sample_test)
    assert r.exit_code == 3 and "nope" in r.stderr


def test_missing_input_exit_code(tmp_path):
    r = run("train", tmp_path / "missing.svm", "-m", tmp_path / "m")
    assert r.exit_code == 1 and "no such file" in r.stderr


def test_invalid_setting_is_a_usage_error(tmp_path, sample_train):
    r = run("train", sample_train, "-m", tmp_path / "m", "--alpha", "-1")
    assert r.exit_code == 2 and "alpha" in r.stderr


def ftrl(*args, **kw):
    return subprocess.run([sys.executable, "-m", "ftrl_cli", *map(str, args)],
                          capture_output=True, **kw)


def test_stdin_and_gzip_give_the_same_model(tmp_path, sample_train):
    data = open(sample_train, "rb").read()
    r = ftrl("train", "-", "-m", tmp_path / "stdin", "-q", input=data)
    assert r.returncode == 0, r.stderr
    gz = tmp_path / "train.svm.gz"
    gz.write_bytes(gzip.compress(data))
    assert ftrl("train", gz, "-m", tmp_path / "gz", "-q").returncode == 0
    run("train", sample_train, "-m", tmp_path / "plain", "-q")
    assert_same_state(tmp_path / "stdin", tmp_path / "plain")
    assert_same_state(tmp_path / "gz", tmp_path / "plain")


def test_stdin_cannot_be_read_twice(tmp_path):
    r = ftrl("train", "-", "-m", tmp_path / "m", "--passes", "2", input=b"1 1:1\n")
    assert r.returncode == 2 and b"stdin" in r.stderr


def test_log_output_goes_to_stderr_only(tmp_path, sample_train):
    r = ftrl("train", sample_train, "-m", tmp_path / "m")
    assert r.returncode == 0
    assert r.stdout == b""
    assert b"trained on 6,513 examples" in r.stderr
    r = ftrl("train", sample_train, "-m", tmp_path / "q", "-q")
    assert r.stdout == b"" and r.stderr == b""


def test_json_summary_is_finite(tmp_path, sample_train):
    r = run("train", sample_train, "-m", tmp_path / "m", "--json", "--passes", "2")
    s = json.loads(r.stdout)
    assert s["examples"] == 2 * 6513 and s["passes"] == 2
    assert math.isfinite(s["progressive_logloss"]) and s["last_pass_logloss"] < s["progressive_logloss"]


def test_predict_broken_pipe_is_quiet(tmp_path, sample_train, sample_test):
    run("train", sample_train, "-m", tmp_path / "m", "-q")
    big = tmp_path / "big.svm"
    with open(big, "wb") as f:
        for _ in range(30):
            f.write(open(sample_test, "rb").read())
    p = subprocess.run(f"{sys.executable} -m ftrl_cli predict -m {tmp_path / 'm'} {big} | head -1",
                       shell=True, capture_output=True, executable="/bin/bash")
    assert len(p.stdout.splitlines()) == 1
    assert b"Traceback" not in p.stderr


def test_predict_output_kinds_and_passthrough(tmp_path, sample_train):
    run("train", sample_train, "-m", tmp_path / "m", "-q")
    data = tmp_path / "ids.svm"
    data.write_text("1 1:1 3:1 # user-7\n0 2:1\n-1 5:1 #  q 9\n")
    p = [float(x) for x in run("predict", "-m", tmp_path / "m", data).stdout.split()]
    m = [float(x) for x in run("predict", "-m", tmp_path / "m", data, "--output", "margin").stdout.split()]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-np.array(m))), rtol=1e-14)
    lab = run("predict", "-m", tmp_path / "m", data, "--output", "label", "--threshold", "0.4").stdout.split()
    assert lab == ["1" if x >= 0.4 else "0" for x in p]
    rows = run("predict", "-m", tmp_path / "m", data, "--with-id", "--with-label").stdout.splitlines()
    assert [r.split("\t")[:2] for r in rows] == [["user-7", "1"], ["", "0"], ["q 9", "-1"]]
    assert [float(r.split("\t")[2]) for r in rows] == p


def test_inspect(tmp_path, sample_train, sample_test):
    run("train", sample_train, "-m", tmp_path / "m", "-q", "--validation", sample_test, "--l1", "5")
    r = run("inspect", "-m", tmp_path / "m", "--json", "--top", "3")
    assert r.exit_code == 0
    info = json.loads(r.stdout)
    assert info["examples_seen"] == 6513 and info["finished"] is True
    t = info["table"]
    assert t["allocated"] == 128 and t["nonzero"] + t["l1_zeroed"] == t["touched"] <= 127
    assert t["l1_zeroed"] > 0
    exported = {}
    for line in run("export", "-m", tmp_path / "m").stdout.splitlines():
        k, v = line.split("\t")
        exported[k] = float(v)
    assert t["nonzero"] == len(exported) - 1  # export lists every nonzero weight + the bias
    top = info["top_positive"]
    assert len(top) == 3 and top[0]["weight"] == max(v for k, v in exported.items() if k != "bias")
    assert info["top_negative"][0]["weight"] == min(v for k, v in exported.items() if k != "bias")
    assert len(info["evals"]) == 1 and info["history"][0]["examples"] == 6513
    text = run("inspect", "-m", tmp_path / "m").stdout
    assert "zeroed by L1" in text and "top positive weights" in text


def test_eval_per_file(tmp_path, sample_train, sample_test):
    run("train", sample_train, "-m", tmp_path / "m", "-q")
    r = json.loads(run("eval", "-m", tmp_path / "m", sample_test, sample_train, "--per-file", "--json").stdout)
    assert r["n"] == 1611 + 6513
    assert r["files"][sample_test]["n"] == 1611 and r["files"][sample_train]["n"] == 6513
    whole = json.loads(run("eval", "-m", tmp_path / "m", sample_test, "--json").stdout)
    assert r["files"][sample_test]["auc"] == whole["auc"]


def test_every_command_has_help_with_an_example_and_a_readme_section():
    from click.testing import CliRunner

    from ftrl_cli.cli import main

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert len(main.commands) >= 6
    for name in main.commands:
        r = CliRunner().invoke(main, [name, "--help"])
        assert r.exit_code == 0, name
        example = r.output.split("Example:", 1)
        assert len(example) == 2 and f"ftrl {name}" in example[1], f"`ftrl {name} --help` shows no example"
        assert f"### `ftrl {name}`" in readme, f"README has no section for ftrl {name}"


@pytest.mark.parametrize("args, where", [
    (["train", "{f}", "-m", "{m}", "--bogus"], "ftrl train"),
    (["train", "{f}", "-m", "{m}", "--alpha"], "ftrl train"),
    (["train"], "ftrl train"),
    (["predict", "-m", "{m}", "{f}", "--kind", "x"], "ftrl predict"),
    (["frob"], "ftrl"),
])
def test_usage_errors_are_one_line_naming_the_help(tmp_path, sample_train, args, where):
    args = [a.format(f=sample_train, m=tmp_path / "m") for a in args]
    r = CliRunner().invoke(main, args, prog_name="ftrl")
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ftrl: error: "), r.stderr
    assert lines[0].endswith(f"(see '{where} --help')")


def test_ftrl_alone_shows_the_help_and_exits_2():
    r = CliRunner().invoke(main, [], prog_name="ftrl")
    assert r.exit_code == 2 and "Usage: ftrl" in r.stderr and "Commands:" in r.stderr
