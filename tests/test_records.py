"""The training record (ftrl_cli/records.py): JSON round trip, old checkpoints, strictness."""

import json

import pytest

from ftrl_cli.errors import ModelError
from ftrl_cli.records import (
    Best,
    CurvePoint,
    EvalRecord,
    InputId,
    PassRecord,
    RunProgress,
    RunRecord,
    TrainingLog,
)


def full_log():
    return TrainingLog(
        examples_seen=10, passes_done=1, finished=False, bad_lines=2,
        history=[PassRecord(pass_=1, examples=10, logloss=0.5, best_constant_logloss=0.6, positive_rate=0.3)],
        evals=[EvalRecord(pass_=1, examples=10, rows=3, logloss=None, auc=None)],
        curve=[CurvePoint(examples=128, pass_=1, train_logloss=0.4, seconds=0.1)],
        run=RunProgress(inputs=[InputId("a.svm", 5), InputId("-", None)], passes=2, pass_=1, file=1,
                        offset=7, line=3, examples=4, loss_sum=1.5, weight_sum=4.0, pos_sum=1.0,
                        stream_row=9, first_pass=1),
        best=Best("logloss", 0.3, 1, 10), since_best=1, kept=Best("auc", 0.9, 2, 20, reason="best"),
        stopped_early=True, estimator={"classes": ["a", "b"], "n_features_in": 3},
        runs=[RunRecord(first_pass=0, passes=1, inputs=["x.svm"]), RunRecord(1, 2, ["a.svm", "-"])])


def test_round_trip_through_json_text():
    log = full_log()
    back = TrainingLog.from_json(json.loads(json.dumps(log.to_json())))
    assert back == log and back is not log
    assert log.copy() == log


def test_json_keys_are_the_documented_ones():
    d = full_log().to_json()
    assert d["history"][0]["pass"] == 1 and "pass_" not in d["history"][0]
    assert d["run"]["pass"] == 1 and d["run"]["inputs"] == [{"path": "a.svm", "size": 5, "fingerprint": None},
                                                          {"path": "-", "size": None, "fingerprint": None}]
    assert "reason" not in d["best"] and d["kept"]["reason"] == "best"
    assert set(d) == {"examples_seen", "passes_done", "finished", "bad_lines", "history", "evals", "curve",
                      "run", "best", "since_best", "kept", "stopped_early", "estimator", "runs"}
    assert d["runs"][1] == {"first_pass": 1, "passes": 2, "inputs": ["a.svm", "-"]}


def test_a_record_written_by_the_previous_version_loads():
    """ftrl 0.1 before the engine wrote only the keys it had set (no best/kept/estimator)."""
    old = {"examples_seen": 6000, "passes_done": 0, "history": [], "finished": False, "bad_lines": 0,
           "evals": [], "curve": [{"examples": 128, "pass": 1, "train_logloss": 0.6, "seconds": 0.0}],
           "run": {"inputs": [{"path": "x.svm", "size": 100}], "passes": 1, "pass": 0, "file": 0,
                   "offset": 50, "line": 2, "examples": 6000, "loss_sum": 1.0, "weight_sum": 6000.0,
                   "pos_sum": 10.0, "stream_row": 0, "first_pass": 0}}
    log = TrainingLog.from_json(old)
    assert log.run.offset == 50 and log.best is None and log.curve[0].pass_ == 1
    back = {k: v for k, v in log.to_json().items() if k in old}
    back["run"]["inputs"] = [{k: v for k, v in e.items() if k != "fingerprint"} for e in back["run"]["inputs"]]
    assert back == old


def test_unknown_keys_are_an_error():
    with pytest.raises(ModelError, match="unknown key"):
        TrainingLog.from_json({"examples_seen": 1, "surprise": 2})
    with pytest.raises(ModelError, match="RunProgress"):
        TrainingLog.from_json({"run": {"pass": 0, "nope": 1}})
    with pytest.raises(ModelError, match="expected an object"):
        TrainingLog.from_json([])


def test_inspect_tells_the_runs_apart(tmp_path):
    """Issue 13 item 4: after --resume onto a second file, inspect says which passes each
    run made on which inputs (not a bare '2 pass(es)')."""
    import subprocess
    import sys
    from pathlib import Path

    from ftrl_cli import api

    data = Path(__file__).resolve().parent.parent / "sample_data"
    a, b = str(data / "agaricus.txt.train"), str(data / "agaricus.txt.test")
    m = tmp_path / "m"
    api.train([a], m, overrides={"passes": 2, "bits": 12})
    api.train([b], m, resume=True, overrides={"passes": 1})
    r = api.inspect(m)
    assert r["passes_done"] == 3
    assert r["runs"] == [{"first_pass": 0, "passes": 2, "inputs": [a]}, {"first_pass": 2, "passes": 1, "inputs": [b]}]
    out = subprocess.run([sys.executable, "-m", "ftrl_cli", "inspect", "-m", m], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert "3 pass(es) in 2 run(s)" in out[0]
    assert out[1] == f"  run 1: passes 1-2 on {a}" and out[2] == f"  run 2: pass 3 on {b}"
