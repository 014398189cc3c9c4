"""ftrl_cli.sklearn.FTRLClassifier: scikit-learn's estimator checks, bit equality with
`ftrl train` / `ftrl predict` on real data (a9a), partial_fit == fit, the model directory
round trip, pickling, and the scikit-learn tools (Pipeline, clone, GridSearchCV, CV)."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn", minversion="1.6", reason="ftrl_cli.sklearn needs scikit-learn >= 1.6")

import scipy.sparse as sp  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from conftest import DATA  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_svmlight_file  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MaxAbsScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import ftrl_cli  # noqa: E402
from ftrl_cli import checkpoint  # noqa: E402
from ftrl_cli.cli import main as cli_main  # noqa: E402
from ftrl_cli.sklearn import FTRLClassifier  # noqa: E402

A9A = DATA / "a9a_head2000.svm"

# ---------------------------------------------------------------------------------------
# scikit-learn's estimator checks
# ---------------------------------------------------------------------------------------

# check_sample_weight_equivalence_*: fitting with integer weights k must equal fitting
# with each row repeated k times, the weighted rows shuffled. An online learner cannot: a row
# of weight k is one step with gradient k*g, not k successive steps, and FTRL depends on the
# order of the rows. (Mini-batch mode is not equivalent either, since a batch's gradient is
# the mean over its rows; FTRLClassifier(batch_size=32) passes these two checks only
# vacuously: the check's 15 (or, repeated, 27) rows make one batch, and one step with the
# default l1=1 leaves every weight and the bias at exactly 0 in both fits.)
ONLINE_ORDER = ("an online, order-dependent learner: a row of weight k is one step with gradient "
                "k*g, not k steps, and the check shuffles the weighted rows")


def expected_failed_checks(estimator):
    if estimator.batch_size == 1:
        return {"check_sample_weight_equivalence_on_dense_data": ONLINE_ORDER,
                "check_sample_weight_equivalence_on_sparse_data": ONLINE_ORDER}
    return {}


@parametrize_with_checks([FTRLClassifier(), FTRLClassifier(batch_size=32), FTRLClassifier(dtype="float32")],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def a9a():
    """a9a's first 2000 rows with the file's ids as columns (zero_based=True: the file is
    one-based, so column 0 stays empty). Labels -1/+1."""
    X, y = load_svmlight_file(str(A9A), zero_based=True)
    return X.tocsr(), y


def write_libsvm(path, X, y01, sw=None):
    """The rows as libsvm text: labels 0/1, zero-based column ids, %.17g values."""
    X = sp.csr_matrix(X)
    lines = []
    for i in range(X.shape[0]):
        a, b = X.indptr[i], X.indptr[i + 1]
        toks = ["1" if y01[i] else "0"] + ([] if sw is None else [f"cost:{sw[i]:.17g}"])
        toks += [f"{j}:{v:.17g}" for j, v in zip(X.indices[a:b], X.data[a:b])]
        lines.append(" ".join(toks))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def cli_proba(model_dir, path):
    """What `ftrl predict` prints, parsed."""
    buf = io.BytesIO()
    ftrl_cli.predict(str(model_dir), [str(path)], out=buf)
    return np.array([float(t) for t in buf.getvalue().split()])


def load_dir(model_dir):
    """checkpoint.load's model and its training record as JSON."""
    model, log = checkpoint.load(str(model_dir))
    return model, log.to_json()


def assert_same_model(a, b):
    for k in ("st", "bst", "ls", "alias"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.shape == y.shape, k
        assert np.array_equal(x, y), f"{k} differs"
    assert a.iterations == b.iterations


def differ(a, b):
    return a.st.shape != b.st.shape or not np.array_equal(a.st, b.st)


# ---------------------------------------------------------------------------------------
# bit equality with the command line
# ---------------------------------------------------------------------------------------

CLI_CASES = {
    "online-float64": {},
    "online-float32": {"dtype": "float32"},
    "batch32-float64": {"batch_size": 32},
    "batch32-float32": {"batch_size": 32, "dtype": "float32"},
    "online-3passes-weights": {"max_iter": 3, "l1": 0.5, "class_weight": {-1.0: 1.0, 1.0: 2.5}},
    "batch16-dense-ema": {"batch_size": 16, "update": "dense", "ema_momentum": 0.99},
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_equals_cli_train_and_predict(case, a9a, tmp_path):
    X, y = a9a
    params = CLI_CASES[case]
    y01 = (y > 0).astype(int)
    sw = None
    if "class_weight" in params:  # also per-row weights: the file's cost: tokens
        sw = np.array([0.5, 1.0, 2.0, 3.0])[np.arange(len(y)) % 4]
    path = write_libsvm(tmp_path / "a9a.svm", X, y01, sw)
    est = FTRLClassifier(bits=16, **params).fit(X, y, sample_weight=sw)

    overrides = {"bits": 16, **{k: v for k, v in params.items() if k not in ("max_iter", "class_weight")}}
    if "max_iter" in params:
        overrides["passes"] = params["max_iter"]
    if "class_weight" in params:
        overrides["class_weight"] = [1.0, 2.5]
    ftrl_cli.train([path], str(tmp_path / "cli"), overrides=overrides)
    cli_model, meta = load_dir(tmp_path / "cli")
    assert_same_model(est.model_, cli_model)
    assert est.n_iter_ == meta["passes_done"] == params.get("max_iter", 1)
    # what save() puts in the checkpoint's meta: the CLI's history, the points of its curve
    # (the same engine: the same record, to the bit, but for the seconds of the curve)
    mine = est._log.to_json()
    assert mine["history"] == meta["history"] and mine["examples_seen"] == meta["examples_seen"]
    assert ([(c["examples"], c["train_logloss"]) for c in mine["curve"]]
            == [(c["examples"], c["train_logloss"]) for c in meta["curve"]])

    p_cli = cli_proba(tmp_path / "cli", path)
    p_est = est.predict_proba(X)[:, 1]
    assert np.array_equal(p_est, p_cli)
    assert np.array_equal(est.predict(X), np.where(est.decision_function(X) > 0, 1.0, -1.0))

    # the CLI's directory loaded as an estimator predicts the same, given every column
    # its table has (n_features_in_ = the allocated table: 128 here)
    loaded = FTRLClassifier.load(tmp_path / "cli")
    assert loaded.n_features_in_ == cli_model.size == 128
    assert list(loaded.classes_) == [0, 1]
    Xw = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], loaded.n_features_in_))
    assert np.array_equal(loaded.predict_proba(Xw)[:, 1], p_cli)
    assert loaded.get_params() == est.get_params() | {"class_weight": loaded.class_weight}


def test_zero_based_trap(a9a, tmp_path):
    """a9a is one-based: load_svmlight_file's default (zero_based="auto") shifts every id
    down by one. The estimator learns the same weights on the shifted columns, so the two
    models differ (shifted by a slot), and the shifted one no longer matches the file."""
    X, y = a9a
    X_auto, y_auto = load_svmlight_file(str(A9A))
    assert X_auto.shape[1] == X.shape[1] - 1
    zero = FTRLClassifier().fit(X, y)
    auto = FTRLClassifier().fit(X_auto, y_auto)
    assert differ(zero.model_, auto.model_)
    assert np.array_equal(auto.coef_[0], zero.coef_[0, 1:]) and zero.coef_[0, 0] == 0
    auto.save(tmp_path / "auto")
    zero.save(tmp_path / "zero")
    assert np.array_equal(cli_proba(tmp_path / "zero", A9A), zero.predict_proba(X)[:, 1])
    assert not np.array_equal(cli_proba(tmp_path / "auto", A9A), auto.predict_proba(X_auto)[:, 1])


# ---------------------------------------------------------------------------------------
# partial_fit
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("params, cuts", [
    ({}, [1, 334, 1034]),  # online: any chunks
    ({"dtype": "float32"}, [7, 999]),
    ({"batch_size": 32}, [320, 1280]),  # mini-batch: chunks of whole batches
    ({"batch_size": 16, "update": "dense", "ema_momentum": 0.9}, [16 * 40, 16 * 90]),
])
def test_partial_fit_equals_fit(params, cuts, a9a):
    X, y = a9a
    full = FTRLClassifier(**params).fit(X, y)
    part = FTRLClassifier(**params)
    bounds = [0, *cuts, X.shape[0]]
    for a, b in zip(bounds[:-1], bounds[1:]):
        part.partial_fit(X[a:b], y[a:b], classes=[-1.0, 1.0])
    assert_same_model(part.model_, full.model_)
    assert np.array_equal(part.predict_proba(X), full.predict_proba(X))
    assert part.n_iter_ == len(bounds) - 1
    if "ema_momentum" in params:  # trains the raw weights, predicts with the EMA
        assert part._learner is not part.model_ and differ(part._learner, part.model_)


def test_partial_fit_mini_batch_needs_whole_batches(a9a):
    """A chunk that is not a multiple of batch_size ends with a short batch (as a file's
    last batch in `ftrl train`): the steps, hence the model, differ."""
    X, y = a9a
    full = FTRLClassifier(batch_size=32).fit(X, y)
    part = FTRLClassifier(batch_size=32).partial_fit(X[:100], y[:100], classes=[-1, 1])
    part.partial_fit(X[100:], y[100:])
    assert differ(part.model_, full.model_)


def test_partial_fit_rules(a9a):
    X, y = a9a
    with pytest.raises(ValueError, match="classes must be passed"):
        FTRLClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="OneVsRestClassifier"):
        FTRLClassifier().partial_fit(X, y, classes=[0, 1, 2])
    est = FTRLClassifier().partial_fit(X[:10], y[:10], classes=[-1, 1])
    with pytest.raises(ValueError, match="not in classes"):
        est.partial_fit(X[:10], np.where(y[:10] > 0, 1, 7))
    with pytest.raises(ValueError, match="not the same"):
        est.partial_fit(X[:10], y[:10], classes=[0, 1])
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:10, :50], y[:10])
    with pytest.raises(ValueError, match="cannot change batch_size"):
        est.set_params(batch_size=4).partial_fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="online and mini-batch"):
        est.set_params(batch_size=1, weight_decay=0.1).partial_fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="partial_fit"):
        FTRLClassifier(class_weight="balanced").partial_fit(X, y, classes=[-1, 1])
    # a non-structural setting may change between calls, as with `ftrl train --resume`
    est.set_params(weight_decay=0.0, alpha=0.2).partial_fit(X[10:20], y[10:20])
    assert est.model_.config.alpha == 0.2 and est.n_iter_ == 2


# ---------------------------------------------------------------------------------------
# model directories: save -> CLI, CLI -> load, CLI --resume
# ---------------------------------------------------------------------------------------

def test_save_is_served_by_the_cli_and_loads_back(a9a, tmp_path):
    X, y = a9a
    est = FTRLClassifier(bits=16, l1=0.5, max_iter=2).fit(X, y)
    d = tmp_path / "m"
    est.save(d)
    runner = CliRunner()
    r = runner.invoke(cli_main, ["predict", "-m", str(d), str(A9A)])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.array([float(t) for t in r.stdout.split()]), est.predict_proba(X)[:, 1])
    r = runner.invoke(cli_main, ["inspect", "-m", str(d)])
    assert r.exit_code == 0 and "2 pass(es)" in r.stdout and "finished" in r.stdout, r.output
    r = runner.invoke(cli_main, ["export", "-m", str(d)])
    assert r.exit_code == 0 and r.stdout.splitlines()[-1] == f"bias\t{float(est.intercept_[0])!r}"

    back = FTRLClassifier.load(d)
    assert back.get_params() == est.get_params()
    assert np.array_equal(back.classes_, est.classes_) and back.classes_.dtype == est.classes_.dtype
    assert back.n_features_in_ == est.n_features_in_ == X.shape[1] and back.n_iter_ == 2
    assert_same_model(back.model_, est.model_)
    assert np.array_equal(back.predict_proba(X), est.predict_proba(X))

    with pytest.raises(ftrl_cli.ModelError):
        FTRLClassifier.load(tmp_path / "nothing")
    with pytest.raises(FileExistsError):
        est.save(d)
    est.save(d, overwrite=True)
    assert len(checkpoint.read_manifest(str(d))["checkpoints"]) == 1


def test_string_classes_round_trip(a9a, tmp_path):
    X, y = a9a
    labels = np.where(y > 0, "rich", "other")
    est = FTRLClassifier().fit(X, labels)
    est.save(tmp_path / "m")
    back = FTRLClassifier.load(tmp_path / "m")
    assert list(back.classes_) == ["other", "rich"] and np.array_equal(back.predict(X), est.predict(X))


def test_cli_resume_continues_a_saved_estimator(a9a, tmp_path):
    """fit(A), save, `ftrl train B --resume` == fit(A) then partial_fit(B) == fit(A + B)."""
    X, y = a9a
    est = FTRLClassifier(bits=16).fit(X[:1200], y[:1200])
    est.save(tmp_path / "m")
    b = write_libsvm(tmp_path / "b.svm", X[1200:], y[1200:] > 0)
    ftrl_cli.train([b], str(tmp_path / "m"), resume=True)
    est.partial_fit(X[1200:], y[1200:])
    cli_model, meta = load_dir(tmp_path / "m")
    assert_same_model(cli_model, est.model_)
    assert meta["examples_seen"] == 2000 and meta["passes_done"] == 2
    assert_same_model(FTRLClassifier(bits=16).fit(X, y).model_, est.model_)


# ---------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------

def test_input_kinds_give_the_same_model_and_stay_unchanged(a9a):
    X, y = a9a
    X, y = X[:600], y[:600]
    ref = FTRLClassifier().fit(X, y)
    # a messy copy of X: entries in reverse order, explicit zeros, and repeated entries
    # whose values add up to 1 (a libsvm row `3:1.75 3:-0.75` is x_3 = 1)
    coo = X.tocoo()
    extra = np.arange(0, coo.nnz, 7)
    first = np.ones(coo.nnz)
    first[extra] = 1.75
    messy_coo = sp.coo_matrix((np.concatenate([first, np.zeros(50), np.full(len(extra), -0.75)])[::-1],
                               (np.concatenate([coo.row, coo.row[:50], coo.row[extra]])[::-1],
                                np.concatenate([coo.col, (coo.col[:50] + 1) % X.shape[1], coo.col[extra]])[::-1])),
                              shape=X.shape)
    rev = np.concatenate([np.arange(b - 1, a - 1, -1) for a, b in zip(X.indptr[:-1], X.indptr[1:])])
    csr_unsorted = sp.csr_matrix((X.data[rev], X.indices[rev], X.indptr.copy()), shape=X.shape)
    kinds = {
        "csc": X.tocsc(), "coo": X.tocoo(), "dense": X.toarray(), "float32": X.astype(np.float32),
        "int-dense": X.toarray().astype(np.int64), "csr_array": sp.csr_array(X),
        "messy-coo": messy_coo, "unsorted-csr": csr_unsorted,
    }
    for name, Xk in kinds.items():
        arrays = ([Xk.data, Xk.indices, Xk.indptr] if sp.isspmatrix_csr(Xk) or isinstance(Xk, sp.csr_array)
                  else [Xk.data, Xk.row, Xk.col] if sp.issparse(Xk) and Xk.format == "coo"
                  else [Xk.data, Xk.indices, Xk.indptr] if sp.issparse(Xk) else [Xk])
        before = [a.copy() for a in arrays]
        est = FTRLClassifier().fit(Xk, y)
        assert_same_model(est.model_, ref.model_)
        assert np.array_equal(est.predict_proba(Xk), ref.predict_proba(X)), name
        for a, b in zip(arrays, before):
            assert a.dtype == b.dtype and np.array_equal(a, b), f"{name}: the caller's array changed"


@pytest.mark.parametrize("make", [
    lambda y: (y > 0).astype(int), lambda y: y.astype(int), lambda y: y > 0,
    lambda y: np.where(y > 0, "yes", "no"), lambda y: np.where(y > 0, 2.0, 1.0),
])
def test_any_two_labels_same_model(make, a9a):
    X, y = a9a
    ref = FTRLClassifier().fit(X[:400], (y[:400] > 0).astype(int))
    labels = make(y[:400])
    est = FTRLClassifier().fit(X[:400], labels)
    assert_same_model(est.model_, ref.model_)
    assert est.classes_[1] == np.unique(labels)[1]
    assert np.array_equal(est.predict(X[:400]), est.classes_[ref.predict(X[:400])])


def test_label_errors(a9a):
    X, y = a9a
    with pytest.raises(ValueError, match="OneVsRestClassifier"):
        FTRLClassifier().fit(X[:30], np.arange(30) % 3)
    with pytest.raises(ValueError, match="one class"):
        FTRLClassifier().fit(X[:30], np.ones(30))
    with pytest.raises(ValueError, match="Unknown label type"):
        FTRLClassifier().fit(X[:30], np.linspace(0, 1, 30))
    Xn = X[:30].toarray()
    Xn[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FTRLClassifier().fit(Xn, y[:30])


def test_coef_reads_lazy_and_hashed_tables(a9a):
    X, y = a9a
    est = FTRLClassifier().fit(X, y)
    w = est.model_.weights()
    assert est.coef_.shape == (1, X.shape[1]) and est.coef_.dtype == np.float64
    assert np.array_equal(est.coef_[0], w[:X.shape[1]])
    assert est.intercept_.shape == (1,) and est.intercept_[0] == est.model_.bias_weight()
    for params in ({"dtype": "float32"}, {"batch_size": 32}, {"fit_intercept": False}):
        other = FTRLClassifier(**params).fit(X, y)
        assert np.array_equal(other.coef_[0], other.model_.weights()[:X.shape[1]]), params
        assert other.intercept_[0] == other.model_.bias_weight()
    # more columns than the (lazily allocated) table: the others weigh 0
    wide = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], 1000))
    est_w = FTRLClassifier().fit(wide, y)
    assert est_w.model_.size == 128 and est_w.coef_.shape == (1, 1000)
    assert np.array_equal(est_w.coef_[0, :128], w) and not est_w.coef_[0, 128:].any()
    # 2**5 slots for 122 columns: columns >= 32 are hashed; each reads its slot's weight
    from ftrl_cli.kernels import slots_of

    small = FTRLClassifier(bits=5).fit(X, y)
    cols = np.arange(X.shape[1], dtype=np.int64)
    slots = np.empty_like(cols)
    slots_of(cols, 32, slots)
    assert small.model_.size == 32 and (slots[32:] != cols[32:]).any()
    assert np.array_equal(small.coef_[0], small.model_.weights()[slots])
    np.testing.assert_allclose(small.decision_function(X), X @ small.coef_[0] + small.intercept_[0], atol=1e-12)


def test_parameters_are_validated_in_fit(a9a):
    X, y = a9a
    for bad, match in [({"alpha": -1}, "alpha"), ({"bits": "x"}, "bits"), ({"max_iter": 0}, "max_iter"),
                       ({"dtype": "float16"}, "dtype"), ({"class_weight": "even"}, "class_weight"),
                       ({"class_weight": {5: 2.0}}, "class_weight"), ({"fit_intercept": 1}, "fit_intercept"),
                       ({"clipnorm": 1.0, "clipvalue": 1.0}, "only one")]:
        est = FTRLClassifier(**bad)  # __init__ only stores
        with pytest.raises(ValueError, match=match):
            est.fit(X[:50], y[:50])
    # numpy scalars (as parameter grids give them) are fine
    est = FTRLClassifier(alpha=np.float64(0.2), bits=np.int64(16), max_iter=np.int32(2)).fit(X[:50], y[:50])
    assert est.model_.config.alpha == 0.2 and est.n_iter_ == 2


def test_class_weight_balanced(a9a):
    X, y = a9a
    est = FTRLClassifier(class_weight="balanced").fit(X, y)
    n_neg, n_pos = np.sum(y < 0), np.sum(y > 0)
    assert est.model_.config.class_weight == [2000 / (2 * n_neg), 2000 / (2 * n_pos)]
    same = FTRLClassifier(class_weight={-1: 2000 / (2 * n_neg), 1: 2000 / (2 * n_pos)}).fit(X, y)
    assert_same_model(est.model_, same.model_)
    est.partial_fit(X[:10], y[:10])  # later partial_fit calls keep fit's weights
    assert est.model_.config.class_weight == same.model_.config.class_weight


def test_shuffle_is_seeded(a9a):
    X, y = a9a
    plain = FTRLClassifier(max_iter=2).fit(X, y)
    s0 = FTRLClassifier(max_iter=2, shuffle=True, random_state=0).fit(X, y)
    assert_same_model(s0.model_, FTRLClassifier(max_iter=2, shuffle=True, random_state=0).fit(X, y).model_)
    assert differ(s0.model_, plain.model_)
    assert differ(s0.model_, FTRLClassifier(max_iter=2, shuffle=True, random_state=1).fit(X, y).model_)
    # one pass over a permutation is a fit on the permuted rows
    perm = np.random.RandomState(3).permutation(X.shape[0])
    s3 = FTRLClassifier(shuffle=True, random_state=3).fit(X, y)
    assert_same_model(s3.model_, FTRLClassifier().fit(X[perm], y[perm]).model_)


# ---------------------------------------------------------------------------------------
# pickling and scikit-learn's tools
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("params", [{}, {"batch_size": 8, "ema_momentum": 0.9}])
def test_pickle_round_trip(params, a9a):
    X, y = a9a
    est = FTRLClassifier(**params).fit(X[:1000], y[:1000])
    back = pickle.loads(pickle.dumps(est))
    assert np.array_equal(back.predict_proba(X), est.predict_proba(X))
    assert_same_model(back.model_, est.model_)
    back.partial_fit(X[1000:], y[1000:])  # training continues the same way
    est.partial_fit(X[1000:], y[1000:])
    assert_same_model(back.model_, est.model_)
    assert_same_model(back._learner, est._learner)


def test_pipeline_clone_grid_search_cross_val(a9a):
    X, y = a9a
    pipe = make_pipeline(MaxAbsScaler(), FTRLClassifier(bits=16)).fit(X, y)
    assert pipe.score(X, y) > 0.8
    c = clone(FTRLClassifier(alpha=0.3, class_weight={-1: 1, 1: 2}))
    assert c.get_params()["alpha"] == 0.3 and not hasattr(c, "classes_")
    grid = GridSearchCV(FTRLClassifier(bits=16), {"alpha": [0.05, 0.2], "l1": [0.5, 2.0]}, cv=3).fit(X, y)
    assert set(grid.best_params_) == {"alpha", "l1"} and grid.best_score_ > 0.8
    scores = cross_val_score(FTRLClassifier(bits=16), X, y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and scores.min() > 0.8


def test_plain_ftrl_never_imports_sklearn():
    code = ("import sys, ftrl_cli, ftrl_cli.api, ftrl_cli.cli, ftrl_cli.checkpoint\n"
            "ftrl_cli.Config; ftrl_cli.train\n"
            "assert 'sklearn' not in sys.modules, 'sklearn imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
