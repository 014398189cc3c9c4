"""Validation, hold-out, early stopping (the best model is kept), progress output."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, SAMPLE_TEST, SAMPLE_TRAIN, state_arrays

from ftrl_cli import api


def flipped(tmp_path):
    """The test file with labels flipped: the better the model fits, the worse it scores."""
    out = tmp_path / "flipped.svm"
    lines = SAMPLE_TEST.read_text().splitlines()
    out.write_text("".join(("0" if ln[0] == "1" else "1") + ln[1:] + "\n" for ln in lines))
    return str(out)


def same_arrays(a, b):
    sa, _ = state_arrays(a)
    sb, _ = state_arrays(b)
    return all(np.array_equal(sa[k], sb[k]) for k in ("st", "bst"))


@pytest.mark.parametrize("metric", ["logloss", "auc"])
def test_early_stop_keeps_the_best_model(tmp_path, metric):
    val = flipped(tmp_path)
    s = api.train([str(SAMPLE_TRAIN)], tmp_path / "es",
                  overrides={"passes": 10, "validation": val, "early_stop": 2, "metric": metric})
    assert s["stopped_early"] and s["passes"] < 10
    man = json.loads((tmp_path / "es" / "manifest.json").read_text())
    assert "best" not in man and not (tmp_path / "es" / "best.npz").exists()  # (the run's own: consumed)
    _, meta = state_arrays(tmp_path / "es")
    values = [e[metric] for e in meta["evals"]]
    best_i = int(np.argmin(values) if metric == "logloss" else np.argmax(values))
    assert meta["kept"]["pass"] == best_i + 1 == s["best"]["pass"]
    assert len(values) == best_i + 1 + 2  # stopped after 2 evaluations without improvement
    # the kept model is exactly the model after the best pass
    api.train([str(SAMPLE_TRAIN)], tmp_path / "ref", overrides={"passes": best_i + 1})
    assert same_arrays(tmp_path / "es", tmp_path / "ref")
    r = api.evaluate(tmp_path / "es", [val])
    assert r[metric] == pytest.approx(values[best_i], rel=1e-12)


def test_validation_every_n_examples(tmp_path):
    s = api.train([str(SAMPLE_TRAIN)], tmp_path / "m",
                  overrides={"validation": str(SAMPLE_TEST), "validation_every": 2000, "passes": 2})
    _, meta = state_arrays(tmp_path / "m")
    ex = [e["examples"] for e in meta["evals"]]
    assert ex == sorted(ex) and len(ex) >= 6
    assert s["validation"]["rows"] == 1611 and s["validation"]["auc"] > 0.95
    assert s["stopped_early"] is False and s["kept"] is None


def test_holdout_rows_are_never_trained_on(tmp_path):
    api.train([str(SAMPLE_TRAIN)], tmp_path / "h", overrides={"holdout_every": 5})
    lines = SAMPLE_TRAIN.read_text().splitlines(keepends=True)
    kept = tmp_path / "kept.svm"
    kept.write_text("".join(ln for i, ln in enumerate(lines) if (i + 1) % 5 != 0))
    api.train([str(kept)], tmp_path / "ref")
    assert same_arrays(tmp_path / "h", tmp_path / "ref")
    _, meta = state_arrays(tmp_path / "h")
    assert meta["evals"][-1]["rows"] == len(lines) // 5
    assert meta["examples_seen"] == len(lines) - len(lines) // 5


def test_summary_has_the_best_constant_baseline(tmp_path):
    s = api.train([str(SAMPLE_TRAIN)], tmp_path / "m")
    y = np.array([float(ln.split()[0]) > 0 for ln in SAMPLE_TRAIN.read_text().splitlines()])
    p = y.mean()
    assert s["best_constant_logloss"] == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)))
    assert s["progressive_logloss"] < s["best_constant_logloss"]
    assert len(s["curve"]) >= 2


def test_early_stop_needs_something_to_validate_on(tmp_path):
    from ftrl_cli.errors import ConfigError

    with pytest.raises(ConfigError, match="early_stop needs"):
        api.train([str(SAMPLE_TRAIN)], tmp_path / "m", overrides={"early_stop": 2})


def test_json_progress_lines(tmp_path):
    big = tmp_path / "big.svm"
    big.write_bytes(SAMPLE_TRAIN.read_bytes() * 4)
    r = subprocess.run([sys.executable, "-m", "ftrl_cli", "train", str(big), "-m", str(tmp_path / "m"),
                        "--json-progress", "--validation", str(SAMPLE_TEST)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == ""
    events = [json.loads(line) for line in r.stderr.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"progress", "validation"} <= kinds
    prog = [e for e in events if e["event"] == "progress"]
    assert all({"rows", "seconds", "progressive_logloss", "rss_mb"} <= set(e) for e in prog)
    assert [e["rows"] for e in prog] == sorted(e["rows"] for e in prog)


def test_log_table_and_summary_in_logs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ftrl_cli", "train", str(SAMPLE_TRAIN), "-m", str(tmp_path / "m"),
                        "--validation", str(SAMPLE_TEST)], capture_output=True, text=True)
    assert r.returncode == 0
    assert "pass loss" in r.stderr and "validation after 6,513 examples (pass 1" in r.stderr
    assert "best constant" in r.stderr


def test_plots_from_the_cli(tmp_path):
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from ftrl_cli.cli import main

    def run(*a):
        return CliRunner().invoke(main, [str(x) for x in a], catch_exceptions=False)

    m = tmp_path / "m"
    assert run("train", SAMPLE_TRAIN, "-m", m, "-q", "--validation", SAMPLE_TEST,
               "--validation-every", "1000").exit_code == 0
    assert run("eval", "-m", m, SAMPLE_TEST, "--plot", tmp_path / "eval.png").exit_code == 0
    assert run("inspect", "-m", m, "--plot", tmp_path / "curve.png").exit_code == 0
    for name in ("eval.png", "curve.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_minibatch_state_survives_a_crash(tmp_path, monkeypatch):
    """Every optimizer state (stored w, EMA, accumulated gradient, step counter driving the
    schedule) is in the checkpoint: a crashed mini-batch run resumes bit-identically."""
    from ftrl_cli import checkpoint

    over = {"batch_size": 32, "update": "dense", "ema_momentum": 0.9, "gradient_accumulation_steps": 3,
            "weight_decay": 0.01, "clipnorm": 1.0, "checkpoint_every": 1000, "passes": 2,
            "learning_rate_schedule": {"class_name": "ExponentialDecay",
                                       "config": {"initial_learning_rate": 0.2, "decay_steps": 50,
                                                  "decay_rate": 0.5}}}
    api.train([str(SAMPLE_TRAIN)], tmp_path / "ref", overrides=over)
    real = checkpoint.save
    calls = []

    def dying(*a, **k):
        calls.append(real(*a, **k))
        if len(calls) == 5:  # in the second pass (7 checkpoints in all, the last one final)
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", dying)
    with pytest.raises(KeyboardInterrupt):
        api.train([str(SAMPLE_TRAIN)], tmp_path / "crash", overrides=over)
    monkeypatch.setattr(checkpoint, "save", real)
    _, meta = state_arrays(tmp_path / "crash")
    assert not meta["finished"] and meta["run"]["pass"] == 1
    api.train([str(SAMPLE_TRAIN)], tmp_path / "crash", resume=True)
    assert same_arrays(tmp_path / "crash", tmp_path / "ref")
    sa, _ = state_arrays(tmp_path / "crash")
    sb, _ = state_arrays(tmp_path / "ref")
    assert sa["iterations"] == sb["iterations"] and np.array_equal(sa["ls"], sb["ls"])


@pytest.mark.parametrize("batch_size", [1, 4])
def test_reported_losses_do_not_depend_on_batch_ends(tmp_path, batch_size):
    """The progressive loss, the pass history and the curve are running sums added row by
    row, so reading the same rows in other batches (another format, another buffer size)
    reports the same numbers to the last bit, real-valued features and weights included."""
    import gzip
    import random

    rng = random.Random(5)
    rows = gzip.decompress((DATA / "rcv1_small_500.libsvm.gz").read_bytes()).decode().splitlines()
    data = tmp_path / "w.svm"
    data.write_text("".join(f"{r.split(' ', 1)[0]} cost:{rng.uniform(0.1, 3):.6f} {r.split(' ', 1)[1]}\n"
                            for r in rows))
    runs = []
    for k, batch_rows in enumerate((500, 64, 36)):
        s = api.train([str(data)], tmp_path / f"m{k}", overrides={"batch_size": batch_size, "passes": 2},
                      batch_rows=batch_rows)
        meta = json.loads((tmp_path / f"m{k}" / "manifest.json").read_text())
        runs.append((s["progressive_logloss"], s["last_pass_logloss"], s["curve"]))
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0][2]) >= 3 and meta["checkpoints"]
