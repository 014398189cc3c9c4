"""ftrl against Vowpal Wabbit's --ftrl on real data (500 RCV1 TF-IDF rows of VW's own test-suite).

VW command line (vowpalwabbit 9.11.9, Python `Workspace`):

    --ftrl --ftrl_alpha A --ftrl_beta B --l1 L1 --l2 L2 --loss_function logistic -b 24 --quiet
    [--noconstant]          # ftrl bias=False
    [--link logistic]       # predictions are probabilities instead of margins

is Algorithm 1 of McMahan et al. 2013, lazy, one example at a time, with the `Constant`
feature (x = 1, regularized by the same l1/l2) as the bias (reference/semantics.md, section 6):
ftrl's alpha, beta, l1, l2 with lr_power = -0.5, initial_accumulator = 0, l2_shrinkage = 0,
bias_l1 = l1, bias_l2 = l2. VW labels are -1/+1 (ftrl: label > 0 is positive); a VW label
`y w |f ...` carries importance weight w, which multiplies the gradient in both.

Feature ids. The VW rows are `label |f id:value ...` with numeric names: VW hashes such a
feature to (id + hash("f")) & (2**b - 1), so with -b 24 the ids 1..47117 land on distinct
slots, away from the constant's slot (11650396 & mask); the tests check this 1:1 map.
VW's `get_weight(slot, k)` reads w (k=0), z (k=1) and n (k=2) of a slot.

VW keeps w, z, n in float32, so agreement is to float32 precision: measured max differences
(float64 and float32 ftrl state alike) are below 5e-7 absolute on the progressive margins
(|margin| up to ~5; relative 1e-5..1e-4 on the small ones), 1.2e-6 absolute on z, 1e-6
relative on n; through train/predict, 1.2e-7 absolute on test probabilities and 2.5e-8
relative on the progressive log loss. The tolerances below leave a few times that.
"""

import gzip
import io
import math
import os
import random
import sys

import numpy as np
import pytest

pytest.importorskip("vowpalwabbit")
from vowpalwabbit import Workspace  # noqa: E402

import ftrl_cli  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from test_kernels import read_libsvm, run_kernel  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TRAIN_SVM = os.path.join(DATA, "rcv1_small_500.libsvm.gz")
TRAIN_VW = os.path.join(DATA, "rcv1_small_500.vw.gz")
TEST_SVM = os.path.join(DATA, "rcv1_small_test_100.libsvm.gz")
TEST_VW = os.path.join(DATA, "rcv1_small_test_100.vw.gz")

VW_CONSTANT = 11650396  # VW's hash of the constant feature (vw/core/constant.h)
BITS = 24

# margins: |ftrl - vw| <= M_ATOL + M_RTOL * |vw|
M_ATOL, M_RTOL = 2e-6, 1e-5
CASES = {
    "light-reg": dict(alpha=0.5, beta=1.0, l1=0.001, l2=0.01),
    "ftrl-defaults": dict(alpha=0.1, beta=1.0, l1=1.0, l2=1.0),
    "no-reg": dict(alpha=0.5, beta=1.0, l1=0.0, l2=0.0),
    "strong-l1": dict(alpha=0.3, beta=0.2, l1=0.1, l2=0.3),
}


def vw_lines(path):
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def vw_workspace(params, bias=True, link=False):
    args = (f"--ftrl --ftrl_alpha {params['alpha']!r} --ftrl_beta {params['beta']!r} "
            f"--l1 {params['l1']!r} --l2 {params['l2']!r} --loss_function logistic -b {BITS} --quiet")
    if not bias:
        args += " --noconstant"
    if link:
        args += " --link logistic"
    return Workspace(args)


def vw_progressive(vw, lines):
    """Learn each line in order; VW's prediction for a line is made before its update."""
    out = []
    for line in lines:
        ex = vw.parse(line)
        vw.learn(ex)
        out.append(ex.get_simplelabel_prediction())
        vw.finish_example(ex)
    return np.array(out)


def vw_slots(vw, ids):
    hf = vw.hash_space("f")
    return {i: vw.hash_feature(str(i), hf) for i in ids}


def check(what, got, want, atol, rtol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    diff = np.abs(got - want)
    bad = ~(diff <= atol + rtol * np.abs(want))
    assert not bad.any(), (f"{what}: {bad.sum()} of {len(want)} differ, first at {np.flatnonzero(bad)[0]}; "
                           f"max abs diff {diff.max():.3g}")


@pytest.fixture(scope="module")
def rcv1():
    rows, labels = read_libsvm(TRAIN_SVM)
    lines = vw_lines(TRAIN_VW)
    assert len(rows) == len(lines) == 500
    # the two files hold the same rows
    for x, y, line in zip(rows, labels, lines):
        head, feats = line.split(" |f ")
        assert (float(head) > 0) == (y == 1.0)
        assert {int(t.split(":")[0]): float(t.split(":")[1]) for t in feats.split()} == x
    D = max(max(x) for x in rows if x) + 1
    return rows, labels, lines, D


def test_vw_feature_ids_are_one_to_one(rcv1):
    rows, _, _, D = rcv1
    vw = vw_workspace(CASES["light-reg"])
    slots = vw_slots(vw, range(1, D))
    assert len(set(slots.values())) == D - 1  # no collisions among the data's ids
    assert (VW_CONSTANT & (vw.num_weights() - 1)) not in set(slots.values())
    assert vw.num_weights() == 1 << BITS


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "noconstant"])
@pytest.mark.parametrize("case", list(CASES))
def test_progressive_margins_and_state_match_vw(rcv1, case, bias, dtype):
    rows, labels, lines, D = rcv1
    params = dict(CASES[case], bias=bias)
    vw = vw_workspace(params, bias)
    vw_m = vw_progressive(vw, lines)
    zn, bias_zn, margins, _ = run_kernel(rows, labels, None, params, D, dtype)

    assert vw_m[0] == 0.0 and margins[0] == 0.0
    check("progressive margins", margins, vw_m, M_ATOL, M_RTOL)

    seen = sorted({i for x in rows for i in x})
    slots = vw_slots(vw, seen)
    check("z", zn[seen, 0], [vw.get_weight(slots[i], 1) for i in seen], 5e-6, 1e-5)
    check("n", zn[seen, 1], [vw.get_weight(slots[i], 2) for i in seen], 1e-7, 5e-6)
    c = VW_CONSTANT & (vw.num_weights() - 1)
    if bias:
        check("bias z, n", bias_zn, [vw.get_weight(c, 1), vw.get_weight(c, 2)], 5e-6, 1e-5)
        assert bias_zn[1] > 50  # the bias really trained (n sums (p - y)^2 over 500 rows)
    else:
        assert vw.get_weight(c, 2) == 0.0 and list(bias_zn) == [0.0, 0.0]
    # same exact zeros from L1, except where |z| is within float32 noise of l1
    w_vw = np.array([vw.get_weight(slots[i], 0) for i in seen])
    near = np.abs(np.abs(zn[seen, 0]) - params["l1"]) <= 1e-5
    z_ftrl = np.abs(zn[seen, 0]) <= params["l1"]
    assert np.array_equal((w_vw == 0)[~near], z_ftrl[~near])
    vw.finish()


def test_importance_weights_match_vw(rcv1):
    """VW label `y w |f ...`: the gradient is multiplied by w in both."""
    rows, labels, lines, D = rcv1
    rng = random.Random(0)
    weights = [rng.choice([0.25, 0.5, 1.0, 2.0, 3.0]) for _ in rows]
    wlines = [f"{line.split(' |f ')[0]} {w!r} |f {line.split(' |f ')[1]}" for line, w in zip(lines, weights)]
    params = CASES["light-reg"]
    vw = vw_workspace(params)
    vw_m = vw_progressive(vw, wlines)
    _, bias_zn, margins, _ = run_kernel(rows, labels, weights, params, D)
    check("progressive margins", margins, vw_m, M_ATOL, M_RTOL)
    c = VW_CONSTANT & (vw.num_weights() - 1)
    check("bias z, n", bias_zn, [vw.get_weight(c, 1), vw.get_weight(c, 2)], 5e-6, 1e-5)
    # the weights matter: unweighted training predicts differently
    _, _, unweighted, _ = run_kernel(rows, labels, None, params, D)
    assert np.abs(unweighted - vw_m).max() > 1e-2
    vw.finish()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["light-reg", "strong-l1"])
def test_train_predict_api_matches_vw(tmp_path, case, dtype):
    """`ftrl_cli.train` + `ftrl_cli.predict` on the libsvm files against VW (--link logistic)
    on the VW files: progressive log loss and test-set probabilities."""
    params = CASES[case]
    vw = vw_workspace(params, link=True)
    vw_p = vw_progressive(vw, vw_lines(TRAIN_VW))  # probabilities, with --link logistic
    test_lines = vw_lines(TEST_VW)
    vw_test = np.array([vw.predict(line) for line in test_lines])
    vw.finish()

    model_dir = tmp_path / "model"
    summary = ftrl_cli.train([TRAIN_SVM], model_dir, overrides=dict(params, dtype=dtype))
    assert summary["examples"] == 500
    out = io.BytesIO()
    assert ftrl_cli.predict(model_dir, [TEST_SVM], out=out) == len(test_lines) == 100
    p = np.array([float(s) for s in out.getvalue().decode().split()])

    assert np.all((vw_test > 0) & (vw_test < 1))  # VW gave probabilities
    check("test probabilities", p, vw_test, 5e-7, 1e-6)
    # progressive log loss from VW's pre-update probabilities
    _, labels = read_libsvm(TRAIN_SVM)
    vw_loss = -sum(math.log(q if y else 1.0 - q) for q, y in zip(vw_p, labels)) / len(labels)
    assert summary["progressive_logloss"] == pytest.approx(vw_loss, rel=1e-6)
    # the comparison is about a model that learned something: test AUC well above 0.5
    _, y = read_libsvm(TEST_SVM)
    pos = [q for q, t in zip(p, y) if t == 1]
    neg = [q for q, t in zip(p, y) if t == 0]
    auc = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))
    assert auc > 0.85
