"""The library API (ftrl_cli.api) as a Python user calls it: paths in, dicts and streams out,
and nothing changed process-wide."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file
from sklearn.metrics import log_loss, roc_auc_score

import ftrl_cli
from ftrl_cli import api

DATA = os.path.join(os.path.dirname(__file__), "data")
A9A = os.path.join(DATA, "a9a_head2000.svm")
A9AT = os.path.join(DATA, "a9a_t_head500.svm")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("api") / "m"
    s = ftrl_cli.train([A9A], d, overrides={"passes": 2})
    assert s["examples"] == 4000 and s["passes"] == 2
    return d


def test_predict_writes_to_any_binary_stream_and_matches_the_model(model_dir):
    out, margins = io.BytesIO(), io.BytesIO()
    n = api.predict(model_dir, [A9AT], out)
    api.predict(model_dir, [A9AT], margins, output="margin")
    p = np.array([float(x) for x in out.getvalue().split()])
    X, _ = load_svmlight_file(A9AT, zero_based=True)
    X.sort_indices()
    model = api.load_model(model_dir)
    m = model.margins(X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data)
    assert n == 500 and np.array_equal([float(x) for x in margins.getvalue().split()], m)
    assert np.allclose(p, 1 / (1 + np.exp(-m)), rtol=1e-15, atol=0)


def test_evaluate_agrees_with_scikit_learn(model_dir):
    r = ftrl_cli.evaluate(model_dir, [A9AT])
    out = io.BytesIO()
    api.predict(model_dir, [A9AT], out)
    p = np.array([float(x) for x in out.getvalue().split()])
    _, y = load_svmlight_file(A9AT)
    y = (y > 0).astype(float)
    assert r["n"] == 500
    assert r["logloss"] == pytest.approx(log_loss(y, p), abs=1e-12)
    assert r["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_export_and_inspect(model_dir):
    out = io.BytesIO()
    n = api.export(model_dir, out)
    lines = out.getvalue().decode().splitlines()
    assert n == len(lines) and lines[-1].startswith("bias\t")
    info = api.inspect(model_dir)
    assert info["passes_done"] == 2 and info["finished"] and len(info["history"]) == 2
    assert info["table"]["nonzero"] == len(lines) - 1


def test_train_summary_fields(model_dir, tmp_path):
    s = api.train([A9A], tmp_path / "v", overrides={"validation": A9AT, "early_stop": 2, "passes": 3})
    assert s["validation"]["rows"] == 500 and s["kept"]["reason"] in ("best", "early stop")
    assert s["features"] > 0 and s["table_slots"] >= 64 and s["curve"]


def test_convert_round_trip(tmp_path):
    info = api.convert([A9A], tmp_path / "a.parquet")
    assert info["rows"] == 2000
    api.train([str(tmp_path / "a.parquet")], tmp_path / "p")
    api.train([A9A], tmp_path / "t")
    from conftest import state_arrays

    a, _ = state_arrays(tmp_path / "p")
    b, _ = state_arrays(tmp_path / "t")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_the_library_changes_nothing_process_wide(tmp_path):
    """No BLAS variables on import, no signal handlers while training (only the CLI asks)."""
    code = f"""
import os, signal, sys
before = signal.getsignal(signal.SIGINT)
import ftrl_cli, ftrl_cli.api
assert not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")), os.environ
seen = []
class R(ftrl_cli.api.Reporter):
    def advance(self, *a):
        seen.append(signal.getsignal(signal.SIGINT))
ftrl_cli.api.train([{A9A!r}], {str(tmp_path / 'm')!r}, reporter=R())
assert seen and all(h is before for h in seen), seen
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                             "MKL_NUM_THREADS")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_paths_only_with_a_clear_error_for_matrices(tmp_path):
    X, _ = load_svmlight_file(A9A)
    with pytest.raises(TypeError, match="FTRLClassifier"):
        api.train([X], tmp_path / "m")


def test_predict_and_export_write_to_text_streams_too(model_dir):
    binary, text = io.BytesIO(), io.StringIO()
    api.predict(model_dir, [A9AT], binary)
    api.predict(model_dir, [A9AT], text)
    assert text.getvalue() == binary.getvalue().decode() and text.getvalue().count("\n") == 500
    binary, text = io.BytesIO(), io.StringIO()
    api.export(model_dir, binary)
    api.export(model_dir, text)
    assert text.getvalue() == binary.getvalue().decode()


def test_a_diverging_pass_is_reported_not_silent(tmp_path):
    """Issue 13 item 2: raw Avazu CSV with only --label and the typing by type alone
    (--numeric-as value; the default now ignores that column) reads the id column (> 2^63)
    as a number of ~1e19; the pass's loss is astronomically above the best constant's: a
    warning on stderr and `diverging_passes` in the summary. A sane run reports none."""
    import json

    csv = os.path.join(DATA, "ctr", "avazu_train_head1000.csv")
    r = subprocess.run([sys.executable, "-m", "ftrl_cli", "train", csv, "--label", "click", "--numeric-as", "value",
                        "-m", tmp_path / "bad", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["diverging_passes"] == [1]
    assert s["progressive_logloss"] > s["best_constant_logloss"] + api.DIVERGING_NATS
    assert "pass 1: progressive log loss" in r.stderr and "diverging" in r.stderr
    ok = api.train([csv], tmp_path / "ok", overrides={"label_column": "click", "ignore": ["id"], "bits": 16})
    assert ok["diverging_passes"] == [] and ok["progressive_logloss"] < ok["best_constant_logloss"] + 1
    ok = api.train([A9A], tmp_path / "ok2", overrides={"passes": 3})
    assert ok["diverging_passes"] == []


def test_inspect_names_a_hashed_slot_by_its_ids(tmp_path):
    """Ids beyond 2**bits share slots: inspect names each slot by the ids in it, as export
    does (it named a slot holding only hashed ids by the slot's number)."""
    data = tmp_path / "h.svm"
    rng = np.random.default_rng(5)
    data.write_text("".join(f"{int(rng.integers(0, 2))} 3:1 {1000 + int(rng.integers(0, 40))}:1\n"
                            for _ in range(400)))
    api.train([str(data)], tmp_path / "m", overrides={"bits": 4, "l1": 0, "l2": 0})
    exported = {}
    out = io.StringIO()
    api.export(tmp_path / "m", out)
    for line in out.getvalue().splitlines():
        name, w = line.rsplit("\t", 1)
        exported[name] = float(w)
    info = api.inspect(tmp_path / "m", top=16)
    shown = info["top_positive"] + info["top_negative"]
    assert shown and any("+" in f["feature"] or int(f["feature"].split("+")[0]) >= 16 for f in shown)
    for f in shown:
        assert f["feature"] in exported and exported[f["feature"]] == f["weight"], f
