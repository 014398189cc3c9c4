"""The numpy oracles in tests/reference_optimizers.py against ground truth from the real libraries
(tests/data/keras_fixtures/*.json, written by make_fixtures.py with keras 3.15.1 + tensorflow-cpu
2.21.0, tensorflow-addons 0.23.0 + tensorflow-cpu 2.15.1, mxnet 1.9.1), plus property tests.

Tolerances: 1e-12 absolute in float64 (asked: 1e-9), 1e-5 in float32. Measured max |diff| over
kernel and bias: Keras 4.4e-16 / 2.5e-7, MXNet 1.7e-16 / 6.8e-8, NovoGrad 2.2e-16 / 1.3e-7
(float64 / float32).
"""

import json
import math
import pathlib

import numpy as np
import pytest
import reference_optimizers as ro

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "data" / "keras_fixtures"
TOL = {"float64": 1e-12, "float32": 1e-5}


def _load(name):
    with open(FIX / name) as fh:
        return json.load(fh)["cases"]


KERAS = _load("keras_ftrl.json")
MXNET = _load("mxnet_ftrl.json")
NOVOGRAD = _load("tfa_novograd.json")
SCHEDULES = _load("keras_schedules.json")

_DATA_CACHE = {}


def data(case, dtype=None):
    dtype = dtype or case["dtype"]
    key = (case["data"], case["rows"], case["n_features"], dtype)
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = ro.read_libsvm_dense(ROOT / case["data"], case["rows"], case["n_features"], dtype)
    return _DATA_CACHE[key]


def max_diff(kernel, bias, case):
    expect_k = np.array(case["kernel"], dtype=np.float64)
    return max(np.max(np.abs(np.asarray(kernel, np.float64) - expect_k)), abs(bias - case["bias"]))


def run_keras(case, **kw):
    X, y = data(case)
    sw = case.get("sample_weight")
    return ro.keras_logreg_fit(X, y, case["batch_size"], case["epochs"], case["optimizer_config"],
                               np.dtype(case["dtype"]), sample_weight=sw,
                               lr_dtype=case.get("lr_variable_dtype"), **kw)


# ------------------------------------------------------------------------------------------------
# Real-library fixtures
# ------------------------------------------------------------------------------------------------


def test_fixtures_are_small():
    total = sum(p.stat().st_size for p in FIX.iterdir() if p.is_file())
    assert total < 300_000, total


@pytest.mark.parametrize("case", [c for c in KERAS if not c["name"].startswith("nan_")],
                         ids=lambda c: c["name"])
def test_keras_ftrl_matches_keras(case):
    kernel, bias = run_keras(case)
    assert kernel.dtype == np.dtype(case["dtype"])
    assert max_diff(kernel, bias, case) <= TOL[case["dtype"]]


@pytest.mark.parametrize("case", [c for c in KERAS if c["name"].startswith("nan_")], ids=lambda c: c["name"])
def test_keras_nan_degenerate_case_matches_keras(case):
    """iav 0, beta 0, l2 0: q = n'^p/lr = 0 for every coordinate never seen, and Keras's
    (clip(z) - z)/q gives 0/0 = NaN there (the TF C++ kernels would give 0). One step, so only
    the features absent from all 200 rows are NaN."""
    kernel, bias = run_keras(case)
    expect = np.array(case["kernel"], dtype=np.float64)
    assert np.isnan(expect).any() and not np.isnan(expect).all()
    assert np.array_equal(np.isnan(kernel), np.isnan(expect))
    X, _ = data(case)
    assert np.array_equal(np.isnan(expect), ~(X != 0).any(axis=0))
    ok = ~np.isnan(expect)
    assert np.max(np.abs(kernel[ok] - expect[ok])) <= TOL[case["dtype"]]
    assert abs(bias - case["bias"]) <= TOL[case["dtype"]]


@pytest.mark.parametrize("case", SCHEDULES, ids=lambda c: c["schedule"]["class_name"])
@pytest.mark.parametrize("mode", ["values", "in_cond", "eager"])
def test_schedules_bit_exact(case, mode):
    """The schedule value at steps 0..59 equals Keras's float32, bit for bit: in model.fit's
    graph (also inside a cond branch) with Grappler's folding, and eagerly without it."""
    sched = case["schedule"]
    for step, hexval in enumerate(case[f"{mode}_float32_hex"]):
        expect = np.frombuffer(bytes.fromhex(hexval), np.float32)[0]
        got = ro.keras_learning_rate(sched, step, np.float32, folded=mode != "eager")
        assert np.asarray(got).dtype == np.float32
        assert got.tobytes() == expect.tobytes(), (step, got, expect)


def test_graph_folding_is_visible():
    """Folded (graph) and eager values differ somewhere, so the distinction is tested."""
    assert any(c["values_float32_hex"] != c["eager_float32_hex"] for c in SCHEDULES)


@pytest.mark.parametrize("case", MXNET, ids=lambda c: c["name"])
def test_mxnet_ftrl_matches_mxnet(case):
    X, y = data(case)
    kernel, bias = ro.mxnet_logreg_fit(X, y, case["batch_size"], case["epochs"], case["optimizer_config"],
                                       np.dtype(case["dtype"]), lazy=case["mode"] == "lazy",
                                       gluon_loss=case["mode"] == "gluon")
    assert max_diff(kernel, bias, case) <= TOL[case["dtype"]]


@pytest.mark.parametrize("case", NOVOGRAD, ids=lambda c: c["name"])
def test_novograd_matches_tensorflow_addons(case):
    X, y = data(case)
    kernel, bias = ro.novograd_logreg_fit(X, y, case["batch_size"], case["epochs"], case["novograd_kwargs"],
                                          np.dtype(case["dtype"]))
    assert max_diff(kernel, bias, case) <= TOL[case["dtype"]]


# ------------------------------------------------------------------------------------------------
# The subtleties matter: getting one wrong moves the float64 result past the tolerance
# ------------------------------------------------------------------------------------------------


def _case(cases, name):
    return next(c for c in cases if c["name"] == name)


def test_schedule_in_float64_would_be_wrong(monkeypatch):
    """Keras evaluates schedules in float32 even for a float64 model."""
    case = _case(KERAS, "exponential_decay/float64")
    real = ro.exponential_decay

    def f64(cfg, step, folded=True):
        return cfg["initial_learning_rate"] * cfg["decay_rate"] ** (step / cfg["decay_steps"])

    monkeypatch.setitem(ro.SCHEDULES, "ExponentialDecay", f64)
    kernel, bias = run_keras(case)
    assert max_diff(kernel, bias, case) > 1e-9
    monkeypatch.setitem(ro.SCHEDULES, "ExponentialDecay", real)
    assert max_diff(*run_keras(case), case) <= 1e-9


def test_float32_learning_rate_variable():
    """A float lr lives in a Variable of floatx-at-construction: the config then shows the float32
    rounding (0.30000001192092896) and that value, used as is, is right in float64; 0.3 is not."""
    case = _case(KERAS, "lr_variable_float32/float64")
    assert case["optimizer_config"]["learning_rate"] == float(np.float32(0.3))
    assert max_diff(*run_keras(case), case) <= 1e-9
    cfg = dict(case["optimizer_config"], learning_rate=0.3)
    X, y = data(case)
    kernel, bias = ro.keras_logreg_fit(X, y, case["batch_size"], case["epochs"], cfg, np.float64)
    assert max_diff(kernel, bias, case) > 1e-9


def _fit_with_state_edit(case, edit):
    """keras_logreg_fit, with ``edit(opt)`` applied to the optimizer before training."""
    X, y = data(case)
    T = np.float64
    opt = ro.KerasFtrl(case["optimizer_config"], [(X.shape[1],), (1,)], T)
    edit(opt)
    B = case["batch_size"]
    for _ in range(case["epochs"]):
        for s in range(0, len(y), B):
            opt.apply(ro.logreg_mean_grads(X[s:s + B], y[s:s + B], opt.vars[0], opt.vars[1], T))
    opt.finalize()
    return opt.vars[0], float(opt.vars[1][0])


def test_initial_accumulator_is_float32_rounded():
    """Constant(0.1) goes through a float32 tensor: a float64 accumulator starts at
    0.10000000149011612, and an exact 0.1 is visibly wrong (lr_power -0.7, no beta)."""
    case = _case(KERAS, "lr_power_-0.7/float64")
    assert max_diff(*_fit_with_state_edit(case, lambda opt: None), case) <= 1e-12

    def exact(opt):
        opt.accum = [np.full_like(a, 0.1) for a in opt.accum]

    assert max_diff(*_fit_with_state_edit(case, exact), case) > 1e-9


def test_weight_decay_is_float32_rounded():
    """tf.cast(0.05, float64) goes through float32: wd = 0.05000000074505806. An exact wd moves
    the result by ~4e-12."""
    case = _case(KERAS, "weight_decay/float64")
    assert max_diff(*_fit_with_state_edit(case, lambda opt: None), case) <= 1e-12

    def exact_wd(opt):
        def weight_decay():
            lr, wd = np.float64(opt.learning_rate()), opt.cfg["weight_decay"]
            opt.vars = [v - v * wd * lr for v in opt.vars]
        opt._weight_decay = weight_decay

    assert max_diff(*_fit_with_state_edit(case, exact_wd), case) > 1e-12


def test_ema_overwrite_timing_matters():
    case = _case(KERAS, "ema_overwrite_5/float64")
    assert max_diff(*run_keras(case), case) <= 1e-9
    for f in (4, 6):
        cfg = dict(case["optimizer_config"], ema_overwrite_frequency=f)
        X, y = data(case)
        kernel, bias = ro.keras_logreg_fit(X, y, case["batch_size"], case["epochs"], cfg, np.float64)
        assert max_diff(kernel, bias, case) > 1e-6


def test_mxnet_params_are_c_floats(monkeypatch):
    """FtrlParam fields are C floats: rescale_grad = 1/60, lr 0.3 ... are float32-rounded."""
    case = _case(MXNET, "batch_60/dense/float64")
    X, y = data(case)
    monkeypatch.setattr(ro, "_mx_param", lambda v, T: T(v))
    kernel, bias = ro.mxnet_logreg_fit(X, y, case["batch_size"], case["epochs"], case["optimizer_config"],
                                       np.float64)
    assert max_diff(kernel, bias, case) > 1e-9


def test_gluon_zero_logit_quirk_matters():
    case = _case(MXNET, "defaults/gluon/float32")
    X, y = data(case)
    kernel, bias = ro.mxnet_logreg_fit(X, y, case["batch_size"], case["epochs"], case["optimizer_config"],
                                       np.float32, gluon_loss=False)
    assert max_diff(kernel, bias, case) > 1e-3


def test_novograd_hypers_are_float32_variables():
    case = _case(NOVOGRAD, "lr_0.05/float64")
    X, y = data(case)
    W = [np.zeros(X.shape[1]), np.zeros(1)]
    m, v, vh = [np.zeros_like(w) for w in W], [0.0, 0.0], [np.zeros_like(w) for w in W]
    it = 0
    for _ in range(case["epochs"]):
        for s in range(0, len(y), case["batch_size"]):
            grads = ro.logreg_mean_grads(X[s:s + case["batch_size"]], y[s:s + case["batch_size"]],
                                         W[0], W[1], np.float64)
            for i, g in enumerate(grads):  # exact 0.05 instead of float32(0.05)
                W[i], m[i], v[i], vh[i] = ro.novograd_update(W[i], g, m[i], v[i], vh[i], it, 0.05,
                                                             dict(case["novograd_kwargs"]), np.float64)
            it += 1
    assert max_diff(W[0], float(W[1][0]), case) > 1e-9


def test_novograd_grad_averaging_is_active():
    case = _case(NOVOGRAD, "grad_averaging/float64")
    X, y = data(case)
    cfg = dict(case["novograd_kwargs"], grad_averaging=False)
    kernel, bias = ro.novograd_logreg_fit(X, y, case["batch_size"], case["epochs"], cfg, np.float64)
    assert max_diff(kernel, bias, case) > 1e-3


# ------------------------------------------------------------------------------------------------
# Property tests
# ------------------------------------------------------------------------------------------------


def paper_ftrl(X, y, alpha, beta, l1, l2, epochs=1):
    """McMahan et al. 2013, Algorithm 1, with the bias as a feature x = 1 (same l1, l2)."""
    Xb = np.hstack([X, np.ones((X.shape[0], 1))])
    z, n = np.zeros(Xb.shape[1]), np.zeros(Xb.shape[1])
    for _ in range(epochs):
        for x, yt in zip(Xb, y):
            idx = np.flatnonzero(x)
            w = np.where(np.abs(z[idx]) <= l1, 0.0,
                         -(z[idx] - np.sign(z[idx]) * l1) / ((beta + np.sqrt(n[idx])) / alpha + l2))
            p = 1.0 / (1.0 + math.exp(-float(x[idx] @ w)))
            g = (p - yt) * x[idx]
            sigma = (np.sqrt(n[idx] + g * g) - np.sqrt(n[idx])) / alpha
            z[idx] += g - sigma * w
            n[idx] += g * g
    w = np.where(np.abs(z) <= l1, 0.0, -(z - np.sign(z) * l1) / ((beta + np.sqrt(n)) / alpha + l2))
    return w[:-1], w[-1]


@pytest.mark.parametrize("alpha,beta,l1,l2", [(0.1, 1.0, 0.0, 0.0), (0.5, 0.5, 0.01, 0.2), (0.05, 1.0, 0.1, 1.0)])
def test_keras_reduces_to_paper_algorithm_1(alpha, beta, l1, l2):
    """iav 0, l2_keras = l2_paper / 2, no shrinkage, batch size 1, zero init: Keras == paper."""
    X, y = ro.read_libsvm_dense(ROOT / "sample_data" / "agaricus.txt.train", 200, 126)
    cfg = {"learning_rate": alpha, "initial_accumulator_value": 0.0, "beta": beta,
           "l1_regularization_strength": l1, "l2_regularization_strength": l2 / 2}
    kernel, bias = ro.keras_logreg_fit(X, y, 1, 2, cfg, np.float64)
    pk, pb = paper_ftrl(X, y, alpha, beta, l1, l2, epochs=2)
    assert np.max(np.abs(kernel - pk)) < 1e-12 and abs(bias - pb) < 1e-12
    assert np.count_nonzero(kernel) > 10


def _keras_lazy_fit(X, y, batch_size, epochs, cfg, dtype):
    """Keras's update_step applied only to the columns present in the batch (and the bias)."""
    T = np.dtype(dtype).type
    opt = ro.KerasFtrl(cfg, [(X.shape[1],), (1,)], dtype)
    for _ in range(epochs):
        for s in range(0, len(y), batch_size):
            Xb = X[s:s + batch_size]
            gk, gb = ro.logreg_mean_grads(Xb, y[s:s + batch_size], opt.vars[0], opt.vars[1], dtype)
            rows = np.flatnonzero((Xb != 0).any(axis=0))
            lr = opt.learning_rate()
            w, a, z = ro.keras_ftrl_update_step(opt.vars[0][rows], opt.accum[0][rows], opt.linear[0][rows],
                                                gk[rows], lr, cfg, dtype)
            opt.vars[0][rows], opt.accum[0][rows], opt.linear[0][rows] = w, a, z
            opt.vars[1], opt.accum[1], opt.linear[1] = ro.keras_ftrl_update_step(
                opt.vars[1], opt.accum[1], opt.linear[1], gb, lr, cfg, dtype)
            opt.iterations += 1
    return opt.vars[0], T(opt.vars[1][0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_keras_dense_equals_lazy_without_shrinkage(dtype):
    """Zero init, constant lr, no shrinkage: an idle coordinate's dense update rewrites the same
    bits (z' = z + 0, w' = f(z, n) = w), so dense == lazy exactly."""
    X, y = ro.read_libsvm_dense(FIX / "a9a_head200.svm", 200, 123, dtype)
    cfg = {"learning_rate": 0.3, "l1_regularization_strength": 0.002, "l2_regularization_strength": 0.01,
           "beta": 0.5}
    dk, db = ro.keras_logreg_fit(X, y, 16, 2, cfg, dtype)
    lk, lb = _keras_lazy_fit(X, y, 16, 2, cfg, dtype)
    assert np.array_equal(dk, lk) and dk.dtype == lk.dtype and db == lb
    cfg["l2_shrinkage_regularization_strength"] = 0.05  # dense now shrinks idle coordinates too
    dk, db = ro.keras_logreg_fit(X, y, 16, 2, cfg, dtype)
    lk, lb = _keras_lazy_fit(X, y, 16, 2, cfg, dtype)
    assert np.max(np.abs(dk - lk)) > 1e-4


def test_mxnet_dense_equals_lazy():
    X, y = ro.read_libsvm_dense(FIX / "a9a_head200.svm", 200, 123)
    params = {"learning_rate": 0.4, "lamda1": 0.003, "beta": 0.5, "wd": 0.02, "clip_gradient": 0.05}
    dense = ro.mxnet_logreg_fit(X, y, 32, 2, params, np.float64, return_state=True)
    lazy = ro.mxnet_logreg_fit(X, y, 32, 2, params, np.float64, lazy=True, return_state=True)
    for a, b in zip(dense, lazy):
        for u, v in zip(a, b):
            assert np.array_equal(u, v)


def test_keras_nan_single_step():
    """semantics.md section 12, case 5: [-0.2, nan, 1.0, nan] after one step with g = 0 at 1, 3."""
    cfg = {"learning_rate": 0.5, "initial_accumulator_value": 0.0}
    w, n, z = (np.zeros(4) for _ in range(3))
    w, n, z = ro.keras_ftrl_update_step(w, n, z, np.array([0.2, 0.0, -1.0, 0.0]), 0.5, cfg, np.float64)
    assert np.isnan(w[[1, 3]]).all() and np.all(np.isfinite(w[[0, 2]]))
    np.testing.assert_allclose(w[[0, 2]], [-0.5, 0.5])


def test_mxnet_raw_clip_quirk():
    """The op clips when clip_gradient >= 0: a raw 0 zeroes every gradient (Python passes it only
    if truthy, so 0 means off there)."""
    w = np.array([0.0, 0.0])
    out, z, n = ro.mxnet_ftrl_update(w, np.array([1.0, -2.0]), w.copy(), w.copy(), 0.1, clip_gradient=0.0)
    assert np.all(out == 0) and np.all(z == 0) and np.all(n == 0)
    out, z, n = ro.mxnet_ftrl_update(w, np.array([1.0, -2.0]), w.copy(), w.copy(), 0.1)
    np.testing.assert_array_equal(z, [1.0, -2.0])
    np.testing.assert_array_equal(n, [1.0, 4.0])


def test_keras_gradient_accumulation_leftover_is_dropped():
    """With k = 3 and 13 batches, the 13th batch's gradient stays in the accumulator: fit ends with
    4 updates, and the variables equal those after 12 batches; the counter is 13."""
    X, y = ro.read_libsvm_dense(ROOT / "sample_data" / "agaricus.txt.train", 200, 126)
    cfg = {"learning_rate": 0.2, "gradient_accumulation_steps": 3}
    opt = ro.keras_logreg_fit(X, y, 16, 1, cfg, np.float64, return_optimizer=True)
    ref = ro.keras_logreg_fit(X[:192], y[:192], 16, 1, cfg, np.float64, return_optimizer=True)
    assert opt.iterations == 13 and np.array_equal(opt.vars[0], ref.vars[0])
    assert np.any(opt.acc_grads[0] != 0)
