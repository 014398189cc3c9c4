"""`ftrl tune` (ftrl_cli/tune.py): the sweep over one read of the data, against plain
`train` runs of each setting (api.train is the oracle), the ranking, the stopping rule
against a plain-Python transcription of it, and the model directory it writes."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ftrl_cli import api, checkpoint, metrics
from ftrl_cli.config import Config
from ftrl_cli.errors import ConfigError
from ftrl_cli.tune import TuneOptions, parse_grid, tune

DATA = os.path.join(os.path.dirname(__file__), "data")
A9A = os.path.join(DATA, "a9a_head2000.svm")  # 2000 rows, no blank or comment lines
FTRL = [sys.executable, "-m", "ftrl_cli"]
GRID = {"alpha": [0.05, 0.3], "l1": [0.0, 1.0]}


def settings_of(result):
    return [s["setting"] for s in result["settings"]]


def head_and_tail(tmp_path, held):
    lines = open(A9A).read().splitlines(keepends=True)
    head, tail = tmp_path / "head.svm", tmp_path / "tail.svm"
    head.write_text("".join(lines[:-held]))
    tail.write_text("".join(lines[-held:]))
    return str(head), str(tail)


def holdout_loss(model, path):
    """The log loss of a model on a file, computed here (not by the code under test)."""
    margins, labels = [], []
    for _, m, b in api.iter_margins(model, [path]):
        margins.append(m)
        labels.append((b.labels > 0).astype(float))
    return np.concatenate(margins), np.concatenate(labels)


def test_each_setting_of_the_sweep_equals_its_own_plain_run(tmp_path):
    """Four settings over one read per pass (two threads), every-10th hold-out, 2 passes:
    each setting's model is the one `train --holdout-every 10 --passes 2` gives, to the bit
    (2000 rows: the same rows are held out in both passes), and so are its losses."""
    r = tune([A9A], tmp_path / "t", TuneOptions(grid=GRID, holdout="every", holdout_every=10, passes=2,
                                               threads=2), return_models=True)
    assert [s["status"] for s in r["settings"]] == ["stopped"] * 4
    for s in r["settings"]:
        api.train([A9A], tmp_path / f"ref{s['index']}",
                  overrides={**s["setting"], "holdout_every": 10, "passes": 2})
        ref, log = checkpoint.load(tmp_path / f"ref{s['index']}")
        assert r["models"][s["index"]].state == ref.state
        assert [p["holdout_logloss"] for p in s["per_pass"]] == [e.logloss for e in log.evals]
        assert [p["holdout_auc"] for p in s["per_pass"]] == [e.auc for e in log.evals]
        assert [p["progressive_logloss"] for p in s["per_pass"]] == [h.logloss for h in log.history]


@pytest.mark.parametrize("metric", ["logloss", "auc"])
def test_tail_holdout_ranking_and_the_model_written(tmp_path, metric):
    """Default hold-out: the last 10 % of the rows. Each setting equals `train` on the head
    rows; the ranking is that of the hold-out metric computed here from those plain
    models; DIR holds the winner, which predict serves."""
    head, tail = head_and_tail(tmp_path, 200)
    r = tune([A9A], tmp_path / "t", TuneOptions(grid=GRID, passes=1, metric=metric, refit=False), return_models=True)
    assert r["holdout"]["rows"] == 200 and r["holdout"]["tail_from"] == 1800
    scores, row_losses = [], []
    for s in r["settings"]:
        api.train([head], tmp_path / f"ref{s['index']}", overrides=s["setting"])
        ref, _ = checkpoint.load(tmp_path / f"ref{s['index']}")
        assert r["models"][s["index"]].state == ref.state
        m, y = holdout_loss(ref, tail)
        row_losses.append(np.logaddexp(0, m) - y * m)
        value = float(np.mean(row_losses[-1])) if metric == "logloss" else roc_auc_score(y, m)
        assert s[metric] == pytest.approx(value, rel=1e-12, abs=1e-12)
        scores.append(value if metric == "logloss" else -value)
    lowest = int(np.argmin(scores))
    assert r["best"]["lowest"]["index"] == lowest and r["best"]["pass"] == 1
    winner = lowest if metric == "auc" else one_se_choice(row_losses, lowest, r["settings"])
    assert r["best"]["index"] == winner
    if metric == "logloss":
        assert winner != lowest  # (this grid on these rows: the rule changes the choice, and the model below
        #                          is then trained again, not the copy kept of the lowest)
    served, log = checkpoint.load(tmp_path / "t")
    assert served.state == r["models"][winner].state
    assert log.kept.metric == metric and log.finished
    out = tmp_path / "p.txt"
    with open(out, "wb") as f:
        api.predict(tmp_path / "t", [tail], f)
    p = np.loadtxt(out)
    m, _ = holdout_loss(served, tail)
    assert np.array_equal(p, 1 / (1 + np.exp(-m))) or np.allclose(p, 1 / (1 + np.exp(-m)), rtol=1e-15)
    # the reusable settings: `train --config DIR/config.json` on the rows it learned from
    cfg = Config.from_json_file(tmp_path / "t" / "config.json")
    assert {k: getattr(cfg, k) for k in GRID} == r["settings"][winner]["setting"] and cfg.passes == 1
    api.train([head], tmp_path / "again", config_file=tmp_path / "t" / "config.json")
    assert checkpoint.load(tmp_path / "again")[0].state == served.state
    # the others' results: tune.json, listed in the manifest with its checksum
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["tune"]["file"] == "tune.json"
    saved = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert [s["setting"] for s in saved["settings"]] == settings_of(r)


def one_se_choice(row_losses, lowest, settings, passes=None):
    """select "1se" written out plainly: of the candidates whose mean hold-out row loss minus the
    lowest's is at most one standard error of that difference, the largest l1, then l2, then the
    fewest passes, then the smallest alpha, then the first."""
    base = row_losses[lowest]
    tied = []
    for i, losses in enumerate(row_losses):
        d = np.asarray(losses, dtype=np.float32).astype(float) - np.asarray(base, dtype=np.float32).astype(float)
        if d.mean() <= d.std(ddof=1) / math.sqrt(len(d)):
            st = {"l1": 1.0, "l2": 1.0, **settings[i]["setting"]}  # (the defaults where the grid is silent)
            tied.append((-st["l1"], -st["l2"], passes[i] if passes else 1, st["alpha"], i))
    return min(tied)[-1]


def rule(values_by_setting, metric, patience, min_improvement, keep, cap):
    """The stopping rule written out plainly: values_by_setting[i][p] is setting i's
    hold-out value after pass p+1 (had it run). Returns (status, best pass, best value)
    per setting and the winner."""
    sign = 1 if metric == "logloss" else -1
    n = len(values_by_setting)
    best = [None] * n
    best_pass = [0] * n
    since = [0] * n
    status = ["running"] * n
    active = list(range(n))
    winner = None
    for p in range(cap):
        improved = []
        for i in active:
            v = values_by_setting[i][p]
            if best[i] is None or sign * v < sign * best[i] - (min_improvement if best[i] is not None else 0):
                best[i], best_pass[i], since[i] = v, p + 1, 0
                improved.append(i)
            else:
                since[i] += 1
        improved.sort(key=lambda i: (sign * best[i], i))
        if improved and (winner is None or sign * best[improved[0]] < sign * winner[2]):
            winner = (improved[0], p + 1, best[improved[0]])
        if p + 1 == cap:
            break
        going = [i for i in active if since[i] < patience]
        for i in active:
            if since[i] >= patience:
                status[i] = "stopped"
        going.sort(key=lambda i: (sign * best[i], i))
        k = max(1, math.ceil(len(active) * keep))
        for i in going[k:]:
            status[i] = "pruned"
        active = going[:k]
        if not active:
            break
    for i in active:
        status[i] = "stopped"
    return [(status[i], best_pass[i], best[i]) for i in range(n)], winner


@pytest.mark.parametrize("patience,min_improvement,keep,metric", [(1, 0.0, 0.5, "logloss"),
                                                                  (2, 1e-3, 0.75, "logloss"),
                                                                  (1, 1e-4, 0.5, "auc")])
def test_automatic_passes_follow_the_stopping_rule(tmp_path, patience, min_improvement, keep, metric):
    """Each setting's hold-out value per pass comes from one plain `train --passes 6
    --holdout-every 10` run; the statuses, best passes and the winner (select "best": the
    lowest) are those of the rule transcribed above."""
    grid = {"alpha": [0.03, 0.1, 0.4, 1.5], "l1": [0.0, 2.0]}
    cap = 6
    r = tune([A9A], tmp_path / "t", TuneOptions(grid=grid, holdout="every", holdout_every=10, max_passes=cap,
                                               patience=patience, min_improvement=min_improvement, keep=keep,
                                               metric=metric, select="best"))
    values = []
    for s in r["settings"]:
        api.train([A9A], tmp_path / f"ref{s['index']}",
                  overrides={**s["setting"], "holdout_every": 10, "passes": cap})
        _, log = checkpoint.load(tmp_path / f"ref{s['index']}")
        values.append([getattr(e, metric) for e in log.evals])
        ran = [p[f"holdout_{metric}"] for p in s["per_pass"]]
        assert ran == values[-1][:len(ran)]
    expected, winner = rule(values, metric, patience, min_improvement, keep, cap)
    assert [(s["status"], s["best_pass"], s[metric]) for s in r["settings"]] == expected
    assert (r["best"]["index"], r["best"]["pass"], r["best"][metric]) == winner
    assert sum(len(s["per_pass"]) for s in r["settings"]) < len(r["settings"]) * cap  # pruned early


def test_one_setting_stops_where_train_early_stop_stops(tmp_path):
    """With one setting, patience 1, no minimum improvement and select "best" the rule is
    `train --early-stop 1`: the same passes, and the same model kept."""
    over = {"alpha": 0.5, "l1": 0.0, "l2": 0.0}
    r = tune([A9A], tmp_path / "t", TuneOptions(grid={k: [v] for k, v in over.items()}, holdout="every",
                                               holdout_every=10, max_passes=12, min_improvement=0.0,
                                               refit=False, select="best"))
    api.train([A9A], tmp_path / "ref", overrides={**over, "holdout_every": 10, "passes": 12, "early_stop": 1})
    ref, log = checkpoint.load(tmp_path / "ref")
    assert log.stopped_early and len(log.evals) < 12
    assert r["best"]["pass"] == log.kept.pass_ and r["settings"][0]["passes_run"] == len(log.evals)
    assert checkpoint.load(tmp_path / "t")[0].state == ref.state


def test_a_diverging_setting_is_dropped_not_fatal(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "big.svm"
    with open(data, "w") as f:
        for _ in range(300):
            y = rng.random() < 0.5
            f.write(f"{int(y)} 1:{(1 if y else -1) * rng.uniform(1, 2) * 1e150:.6g} 2:{rng.random():.3f}\n")
    with pytest.raises(Exception, match="diverged"):
        api.train([str(data)], tmp_path / "plain", overrides={"alpha": 1e300, "l1": 0.0, "l2": 0.0})
    p = subprocess.run(FTRL + ["tune", str(data), "-m", str(tmp_path / "t"), "--grid", "alpha=0.1,1e300",
                               "--grid", "l2=0", "--l1", "0", "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert [s["status"] for s in r["settings"]][1] == "diverged" and r["best"]["index"] == 0
    assert "alpha=1e+300 l2=0 dropped" in p.stderr and "Traceback" not in p.stderr


def test_stdin_refused_and_memory_checked_before_training(tmp_path):
    p = subprocess.run(FTRL + ["tune", "-", "-m", str(tmp_path / "t")], input=open(A9A).read(),
                       capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "stdin ('-') can be read once only" in p.stderr and "save it to a file" in p.stderr
    huge = tmp_path / "huge.svm"
    huge.write_text(f"1 1:1 {2**37}:1\n0 2:1\n1 3:1\n")  # a table of 2**38 slots per state
    p = subprocess.run(FTRL + ["tune", str(huge), "-m", str(tmp_path / "h"), "--bits", "38"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "20 settings x 4.0 TiB per state" in p.stderr, p.stderr
    with pytest.raises(ConfigError, match=r"4 settings x 2\.0 KiB per state .* more than 4\.0 KiB \(--max-memory\)"):
        tune([A9A], tmp_path / "m", TuneOptions(grid=GRID, max_memory=4096))
    assert not os.path.exists(tmp_path / "m" / "manifest.json")


def test_no_flags_threads_and_rerun_are_deterministic(tmp_path):
    """`ftrl tune DATA -m DIR` alone: the automatic grid and passes; one thread or two,
    the same results and the same model; a second run needs --force; a later `train
    --force` takes tune.json away with the model it described."""
    runs = []
    for threads in ("1", "2"):
        d = tmp_path / f"t{threads}"
        p = subprocess.run(FTRL + ["tune", A9A, "-m", str(d), "--json", "--threads", threads],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout)
        r.pop("seconds"), r.pop("model_dir"), r["options"].pop("threads"), r["memory"].pop("limit", None)
        runs.append((r, checkpoint.load(d)[0].state))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    r = runs[0][0]
    assert len(r["settings"]) >= 8 and 1 <= r["best"]["pass"] <= r["options"]["max_passes"]
    assert r["passes_read"] >= 2
    d = tmp_path / "t1"
    p = subprocess.run(FTRL + ["tune", A9A, "-m", str(d), "-q"], capture_output=True, text=True)
    assert p.returncode == 2 and "already holds a model" in p.stderr
    p = subprocess.run(FTRL + ["tune", A9A, "-m", str(d), "-q", "--force", "--grid", "alpha=0.1"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "tune:" not in p.stderr and "pass 1" not in p.stderr
    api.train([A9A], d, force=True)
    assert not (d / "tune.json").exists() and "tune" not in json.loads((d / "manifest.json").read_text())


def test_refit_trains_the_winner_on_every_row(tmp_path):
    """The default: the winner, for its best number of passes, on all the rows."""
    r = tune([A9A], tmp_path / "t", TuneOptions(grid={"alpha": [0.05, 0.5]}, max_passes=3))
    api.train([A9A], tmp_path / "ref", overrides={**r["best"]["setting"], "passes": r["best"]["pass"]})
    assert checkpoint.load(tmp_path / "t")[0].state == checkpoint.load(tmp_path / "ref")[0].state


def test_progressive_loss_ranks_a_single_pass_without_holdout(tmp_path):
    r = tune([A9A], tmp_path / "t", TuneOptions(grid={"alpha": [0.05, 0.5]}, holdout="none"))
    for s in r["settings"]:
        api.train([A9A], tmp_path / f"ref{s['index']}", overrides=s["setting"])
        _, log = checkpoint.load(tmp_path / f"ref{s['index']}")
        assert s["logloss"] == log.history[0].logloss
    with pytest.raises(ConfigError, match="progressive loss of one pass"):
        TuneOptions(holdout="none", passes=2)


def test_bad_grids_are_usage_errors():
    assert parse_grid(["alpha=0.1,0.2,0.1", "l1=0"]) == {"alpha": [0.1, 0.2], "l1": [0.0]}
    for spec, words in ((["bits=20"], "cannot be swept"), (["alpha"], "expected NAME=V1"),
                        (["alpha=x"], "numbers"), (["alpha=1", "alpha=2"], "twice")):
        with pytest.raises(ConfigError, match=words):
            parse_grid(spec)
    with pytest.raises(ConfigError, match="alpha must be > 0"):
        tune([A9A], "/nonexistent/never", TuneOptions(grid={"alpha": [0.1, -1.0]}))
    assert metrics  # (imported for the reader: the metric functions the engine uses)


def test_a_setting_far_above_the_best_constant_is_dropped(tmp_path):
    """The rule `ftrl train` warns by (api.DIVERGING_NATS): a pass whose progressive log loss is
    more than 1 nat above the best constant predictor's drops the setting, finite or not."""
    over = {"l1": 0.0, "l2": 0.0, "holdout_every": 10}
    for alpha in (0.1, 1000.0):
        summary = api.train([A9A], tmp_path / f"ref{alpha}", overrides={**over, "alpha": alpha}, reporter=None)
        if alpha == 1000.0:
            assert summary["diverging_passes"] == [1] and math.isfinite(summary["progressive_logloss"])
        else:
            assert summary["diverging_passes"] == []
    r = tune([A9A], tmp_path / "t", TuneOptions(grid={"alpha": [0.1, 1000.0], "l1": [0.0], "l2": [0.0]},
                                               holdout="every", holdout_every=10, passes=1))
    assert [s["status"] for s in r["settings"]] == ["stopped", "diverged"]
    assert "nat above the best constant" in r["settings"][1]["message"] and r["best"]["index"] == 0


def test_a_tail_of_one_class_falls_back_to_every_10th_row(tmp_path):
    """Data sorted by label: its tail holds one class, which random order would give with
    probability < 1 %, so the hold-out is every 10th row; a short tail of one class (likely by
    chance) stays."""
    lines = open(A9A).read().splitlines(keepends=True)
    pos = [ln for ln in lines if not ln.startswith("-1")]
    neg = [ln for ln in lines if ln.startswith("-1")]
    data = tmp_path / "sorted.svm"
    data.write_text("".join(pos + neg))
    r = tune([str(data)], tmp_path / "t", TuneOptions(grid={"alpha": [0.1]}, passes=1))
    assert r["holdout"]["mode"] == "every" and r["holdout"]["every"] == 10 and r["holdout"]["rows"] == 200
    assert "all negative" in r["holdout"]["fallback"]
    few = tmp_path / "few.svm"
    few.write_text("".join(pos[:27] + neg[:5]))  # a tail of 4 negatives: (27/32)**4 = 0.51 by chance
    r = tune([str(few)], tmp_path / "f", TuneOptions(grid={"alpha": [0.1]}, passes=1))
    assert r["holdout"]["mode"] == "tail" and r["holdout"]["rows"] == 4
