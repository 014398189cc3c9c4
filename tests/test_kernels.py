"""The Numba kernels against plain Python.

`ftrl_online` is checked against tests/reference.py (Algorithm 1 of McMahan et al. 2013,
transcribed with dict state) on random CSR data and on real data (RCV1 TF-IDF rows,
agaricus), to 1e-12 in float64. The small kernels are checked against one-line Python
versions. Where cheap, the un-jitted `kernel.py_func` is checked too.
"""

import gzip
import math
import os
import random
import sys

import numpy as np
import pytest

from ftrl_cli import kernels as K

sys.path.insert(0, os.path.dirname(__file__))
from reference import ftrl_reference, logloss, sigmoid, weight  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
RCV1 = os.path.join(DATA, "rcv1_small_500.libsvm.gz")
AGARICUS = os.path.join(HERE, os.pardir, "sample_data", "agaricus.txt.train")

TOL64 = 1e-12


def py_func(kernel):
    """The un-jitted Python source of a kernel (the kernel itself under NUMBA_DISABLE_JIT=1)."""
    return getattr(kernel, "py_func", kernel)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

def read_libsvm(path, limit=None):
    """Rows as {id: value} dicts and 0/1 labels (label > 0 is positive), parsed plainly."""
    opener = gzip.open if path.endswith(".gz") else open
    rows, labels = [], []
    with opener(path, "rt") as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            tok = line.split()
            labels.append(1.0 if float(tok[0]) > 0 else 0.0)
            rows.append({int(i): float(v) for i, v in (t.split(":") for t in tok[1:])})
    return rows, labels


def to_csr(rows):
    indptr = np.zeros(len(rows) + 1, np.int64)
    ids, values = [], []
    for r, x in enumerate(rows):
        ids.extend(x.keys())
        values.extend(x.values())
        indptr[r + 1] = len(ids)
    return indptr, np.array(ids, np.int64), np.array(values, np.float64)


def hyper(alpha, beta, l1, l2, p, l2_shrinkage=0.0, bias_l1=None, bias_l2=None, bias=True, online=True):
    """(hp, fl) in the kernels' one layout, written out here from the HP_/FL_ indices (not
    through model.hyperparameters, so that a mix-up there shows)."""
    hp = np.full(K.N_HP, np.nan)
    fl = np.zeros(K.N_FL, np.int64)
    hp[K.HP_ALPHA], hp[K.HP_BETA], hp[K.HP_L1], hp[K.HP_L2], hp[K.HP_P] = alpha, beta, l1, l2, p
    hp[K.HP_SHRINK] = l2_shrinkage
    hp[K.HP_BIAS_L1] = l1 if bias_l1 is None else bias_l1
    hp[K.HP_BIAS_L2] = l2 if bias_l2 is None else bias_l2
    fl[K.FL_BIAS], fl[K.FL_ONLINE] = bias, online
    return hp, fl


def online_hyper(params):
    p = fill(params)
    return hyper(p["alpha"], p["beta"], p["l1"], p["l2"], -p["lr_power"], p["l2_shrinkage"], p["bias_l1"],
                 p["bias_l2"], p["bias"])


def next_pow2(d):
    return 1 << max(d - 1, 0).bit_length()


def fill(params):
    """Every setting of ftrl_online, with ftrl's defaults for the ones not given."""
    p = dict(l2_shrinkage=0.0, lr_power=-0.5, initial_accumulator=0.0, bias=True,
             bias_l1=None, bias_l2=None)
    p.update(params)
    return p


def run_kernel(rows, labels, weights, params, D, dtype=np.float64, kernel=K.ftrl_online):
    """ftrl_online over the rows from a fresh state of D slots (cap >= D: identity slots)."""
    p = fill(params)
    indptr, ids, values = to_csr(rows)
    zn = np.zeros((D, 2), dtype)
    zn[:, 1] = p["initial_accumulator"]
    bias_zn = np.array([0.0, p["initial_accumulator"]], dtype)
    margins = np.empty(len(rows))
    w = np.ones(len(rows)) if weights is None else np.array(weights, np.float64)
    loss = kernel(indptr, ids, values, np.array(labels, np.float64), w, zn, bias_zn, next_pow2(D),
                  *online_hyper(params), margins)
    return zn, bias_zn, margins, loss


def max_diffs(got, want):
    """(max abs difference, max relative difference) over paired sequences."""
    got = [float(g) for g in got]
    want = [float(w) for w in want]
    assert len(got) == len(want)
    mabs = max((abs(g - w) for g, w in zip(got, want)), default=0.0)
    mrel = max((abs(g - w) / abs(w) for g, w in zip(got, want) if w != 0), default=0.0)
    return mabs, mrel


def assert_close(what, got, want, rtol, atol):
    """|got - want| <= atol + rtol * |want| elementwise, with a readable failure."""
    got = [float(g) for g in got]
    want = [float(w) for w in want]
    assert len(got) == len(want), what
    for k, (g, w) in enumerate(zip(got, want)):
        if not abs(g - w) <= atol + rtol * abs(w):  # also fails on NaN
            raise AssertionError(f"{what}[{k}]: got {g!r}, want {w!r} (diff {g - w:.3g}); "
                                 f"max abs/rel diff {max_diffs(got, want)}")


def compare_to_reference(rows, labels, weights, params, D, dtype=np.float64, rtol=TOL64,
                         atol=TOL64, kernel=K.ftrl_online):
    """Run both; compare margins, loss, every slot's (z, n) and the bias's (z, n)."""
    p = fill(params)
    zn, bias_zn, margins, loss = run_kernel(rows, labels, weights, params, D, dtype, kernel)
    z, n, bzn, ref_margins, ref_loss = ftrl_reference(rows, labels, weights=weights, **p)
    assert_close("margins", margins, ref_margins, rtol, atol)
    assert_close("loss", [loss], [ref_loss], rtol, atol)
    seen = sorted(z)
    assert_close("z", zn[seen, 0], [z[i] for i in seen], rtol, atol)
    assert_close("n", zn[seen, 1], [n[i] for i in seen], rtol, atol)
    # coordinates never present are never touched (lazy): still (0, initial_accumulator)
    untouched = np.setdiff1d(np.arange(D), seen)
    assert np.all(zn[untouched, 0] == 0)
    assert np.all(zn[untouched, 1] == dtype(p["initial_accumulator"]))
    if p["bias"]:
        assert_close("bias z,n", bias_zn, bzn, rtol, atol)
    else:
        assert list(bias_zn) == [0.0, dtype(p["initial_accumulator"])]
    return zn, bias_zn, (z, n, bzn, ref_margins)


def random_data(seed, nrows=300, D=120, max_nnz=12, weighted=True):
    """Sparse rows with skewed feature frequencies, some empty rows, mixed values
    (binary, Gaussian, a few large), labels from a hidden linear model."""
    rng = random.Random(seed)
    truth = [rng.gauss(0, 1) for _ in range(D)]
    popularity = [1.0 / (i + 1) ** 0.8 for i in range(D)]
    rows, labels, weights = [], [], []
    for _ in range(nrows):
        k = 0 if rng.random() < 0.08 else rng.randint(1, max_nnz)
        x = {}
        while len(x) < k:
            i = rng.choices(range(D), popularity)[0]
            u = rng.random()
            x[i] = 1.0 if u < 0.4 else (rng.gauss(0, 1) if u < 0.95 else rng.uniform(-20, 20))
        rows.append(x)
        m = sum(truth[i] * v for i, v in x.items())
        labels.append(1.0 if rng.random() < sigmoid(m) else 0.0)
        u = rng.random()
        weights.append(0.0 if u < 0.05 else (1.0 if u < 0.3 else rng.uniform(0.01, 3.0)))
    return rows, labels, (weights if weighted else None)


PARAMS = [
    # ftrl's defaults (the paper with l1 = l2 = 1)
    dict(alpha=0.1, beta=1.0, l1=1.0, l2=1.0),
    # no regularization, beta = 0: eta = alpha / sqrt(n)
    dict(alpha=0.5, beta=0.0, l1=0.0, l2=0.0),
    # L2 shrinkage (Keras/TF)
    dict(alpha=0.3, beta=0.5, l1=0.05, l2=0.2, l2_shrinkage=0.1),
    # lr_power and initial accumulator
    dict(alpha=0.2, beta=1.0, l1=0.1, l2=0.0, lr_power=-0.3, initial_accumulator=0.1),
    # p = 1, unregularized bias
    dict(alpha=1.0, beta=0.1, l1=0.02, l2=0.5, lr_power=-1.0, initial_accumulator=0.5,
         bias_l1=0.0, bias_l2=0.0),
    # everything at once, strongly regularized bias
    dict(alpha=0.05, beta=2.0, l1=0.5, l2=0.01, l2_shrinkage=0.02, lr_power=-0.7,
         initial_accumulator=1.0, bias_l1=2.0, bias_l2=3.0),
]


# ---------------------------------------------------------------------------------------
# ftrl_online == Algorithm 1
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("params", PARAMS, ids=[f"p{k}" for k in range(len(PARAMS))])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ftrl_online_matches_reference_random(seed, params, bias):
    D = 120
    rows, labels, weights = random_data(seed, D=D, weighted=seed != 0)
    assert any(not x for x in rows)  # empty rows are part of the test
    compare_to_reference(rows, labels, weights, dict(params, bias=bias), D)


def test_ftrl_online_padded_table_and_sparse_ids():
    """A table bigger than the ids used, ids spread out, cap a larger power of two."""
    rng = random.Random(7)
    D = 1000
    used = rng.sample(range(D), 60)
    rows = [{rng.choice(used): rng.gauss(0, 1) for _ in range(rng.randint(0, 6))} for _ in range(200)]
    labels = [float(rng.random() < 0.3) for _ in rows]
    compare_to_reference(rows, labels, None, dict(alpha=0.3, beta=1.0, l1=0.01, l2=0.1), D)


def test_ftrl_online_learns():
    """Not just equal to the reference: on separable-ish data the progressive loss drops."""
    rows, labels, _ = random_data(3, nrows=2000, D=30, max_nnz=6)
    _, _, margins, _ = run_kernel(rows, labels, None, dict(alpha=0.5, beta=1.0, l1=0.0, l2=0.0), 30)
    first = sum(logloss(m, y) for m, y in zip(margins[:200], labels[:200])) / 200
    last = sum(logloss(m, y) for m, y in zip(margins[-200:], labels[-200:])) / 200
    assert last < 0.8 * first and last < 0.8 * math.log(2)


RCV1_PARAMS = [
    dict(alpha=0.5, beta=1.0, l1=0.001, l2=0.01),
    dict(alpha=0.1, beta=1.0, l1=1.0, l2=1.0),  # ftrl's defaults: mostly zeros
    dict(alpha=0.8, beta=0.3, l1=0.002, l2=0.05, l2_shrinkage=0.01, lr_power=-0.6,
         initial_accumulator=0.01, bias_l1=0.0, bias_l2=0.5),
]


@pytest.fixture(scope="module")
def rcv1():
    rows, labels = read_libsvm(RCV1)
    assert len(rows) == 500
    return rows, labels


@pytest.mark.parametrize("params", RCV1_PARAMS, ids=["light-reg", "defaults", "extensions"])
def test_ftrl_online_matches_reference_rcv1(rcv1, params):
    rows, labels = rcv1
    D = max(max(x) for x in rows if x) + 1
    zn, _, _ = compare_to_reference(rows, labels, None, params, D)
    if params["l1"] < 0.01:  # the comparison must involve real, nonzero weights
        w = np.empty(D)
        p = fill(params)
        K.weights_from_state(zn, online_hyper(p)[0], False, w)
        assert np.count_nonzero(w) > 1000


def test_ftrl_online_matches_reference_agaricus():
    rows, labels = read_libsvm(AGARICUS)
    assert len(rows) == 6513
    D = max(max(x) for x in rows) + 1
    for params in (dict(alpha=0.1, beta=1.0, l1=1.0, l2=1.0),
                   dict(alpha=0.3, beta=0.0, l1=0.0, l2=0.0, bias=False)):
        compare_to_reference(rows, labels, None, params, D)


@pytest.mark.parametrize("params", [RCV1_PARAMS[0], RCV1_PARAMS[2]], ids=["light-reg", "extensions"])
def test_ftrl_online_float32_state(rcv1, params):
    """float32 z, n (arithmetic in float64, rounded at each store) stay within ~1e-5."""
    rows, labels = rcv1
    D = max(max(x) for x in rows if x) + 1
    zn, bias_zn, margins, _ = run_kernel(rows, labels, None, params, D, dtype=np.float32)
    assert zn.dtype == np.float32 and bias_zn.dtype == np.float32
    z, n, bzn, ref_margins, _ = ftrl_reference(rows, labels, **fill(params))
    assert_close("margins", margins, ref_margins, 1e-5, 1e-6)
    seen = sorted(z)
    assert_close("z", zn[seen, 0], [z[i] for i in seen], 1e-5, 1e-7)
    assert_close("n", zn[seen, 1], [n[i] for i in seen], 1e-5, 1e-7)
    assert_close("bias z,n", bias_zn, bzn, 1e-5, 1e-7)


def test_ftrl_online_float32_random():
    rows, labels, weights = random_data(11)
    params = dict(alpha=0.3, beta=0.5, l1=0.05, l2=0.2, l2_shrinkage=0.1)
    _, _, margins, _ = run_kernel(rows, labels, weights, params, 120, dtype=np.float32)
    ref_margins = ftrl_reference(rows, labels, weights=weights, **fill(params))[3]
    assert_close("margins", margins, ref_margins, 1e-5, 1e-5)


def test_ftrl_online_py_func():
    """The un-jitted Python source of the kernel agrees with the reference too."""
    rows, labels, weights = random_data(5, nrows=40, D=25, max_nnz=5)
    for params in (PARAMS[2], PARAMS[5]):
        compare_to_reference(rows, labels, weights, params, 25, kernel=py_func(K.ftrl_online))


def test_ftrl_online_batches_carry_state():
    """Training in pieces (including an empty batch and one of empty rows) is bitwise
    the same as one call: all state lives in zn / bias_zn."""
    rows, labels, weights = random_data(4, D=50)
    rows[100:103] = [{}, {}, {}]
    params = dict(alpha=0.3, beta=0.5, l1=0.05, l2=0.2, l2_shrinkage=0.1, lr_power=-0.6,
                  initial_accumulator=0.2)
    zn1, b1, m1, loss1 = run_kernel(rows, labels, weights, params, 50)
    p = fill(params)
    zn = np.zeros((50, 2))
    zn[:, 1] = p["initial_accumulator"]
    bz = np.array([0.0, p["initial_accumulator"]])
    m2, loss2 = [], 0.0
    for a, b in [(0, 37), (37, 37), (37, 100), (100, 103), (103, 300)]:
        indptr, ids, values = to_csr(rows[a:b])
        out = np.empty(b - a)
        loss2 += K.ftrl_online(indptr, ids, values, np.array(labels[a:b]), np.array(weights[a:b]),
                               zn, bz, 64, *online_hyper(p), out)
        m2.extend(out)
    assert np.array_equal(zn, zn1) and np.array_equal(bz, b1)
    assert list(m1) == m2
    assert loss2 == pytest.approx(loss1, rel=1e-14)


def test_ftrl_online_importance_weight_zero_is_a_no_op():
    rows, labels, _ = random_data(6, nrows=50, D=20)
    params = dict(alpha=0.3, beta=0.5, l1=0.05, l2=0.2)
    zn, bz, _, loss = run_kernel(rows, labels, [0.0] * 50, params, 20)
    assert np.all(zn == 0) and list(bz) == [0.0, 0.0] and loss == 0.0


# ---------------------------------------------------------------------------------------
# L1 gives exact zeros
# ---------------------------------------------------------------------------------------

def test_l1_gives_exact_zeros(rcv1):
    rows, labels = rcv1
    D = max(max(x) for x in rows if x) + 1
    params = dict(alpha=0.5, beta=1.0, l1=0.2, l2=0.01)
    zn, _, _, _ = run_kernel(rows, labels, None, params, D)
    w = np.empty(D)
    K.weights_from_state(zn, online_hyper(params)[0], False, w)
    inside = np.abs(zn[:, 0]) <= params["l1"]
    assert np.all(w[inside] == 0.0)  # exact zeros, not tiny numbers
    assert np.all(w[~inside] != 0.0)
    touched = zn[:, 1] > 0
    assert 0 < np.count_nonzero(w) < 0.5 * np.count_nonzero(touched)  # L1 made it sparse
    # the same coordinates are zero in the reference
    z, n, _, _, _ = ftrl_reference(rows, labels, **fill(params))
    ref_zero = {i for i in z if weight(z[i], n[i], 0.5, 1.0, 0.2, 0.01, 0.5) == 0.0}
    assert ref_zero == set(np.flatnonzero(touched & (w == 0.0)).tolist())
    # and without L1 (same data) nothing is exactly zero
    zn0, _, _, _ = run_kernel(rows, labels, None, dict(params, l1=0.0), D)
    K.weights_from_state(zn0, hyper(0.5, 1.0, 0.0, 0.01, 0.5)[0], False, w)
    assert np.all(w[zn0[:, 1] > 0] != 0.0)


# ---------------------------------------------------------------------------------------
# small kernels against plain Python
# ---------------------------------------------------------------------------------------

M64 = (1 << 64) - 1


def py_mix64(x):
    """splitmix64's finalizer (Steele, Lea, Flood 2014; Vigna's splitmix64.c)."""
    x &= M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def py_slot(fid, cap):
    return fid if fid < cap else py_mix64(fid) & (cap - 1)


def test_py_mix64_is_splitmix64():
    # splitmix64 seeded with 0 outputs mix(k * golden gamma): published first outputs
    gamma = 0x9E3779B97F4A7C15
    assert py_mix64(gamma) == 0xE220A8397B1DCDAF
    assert py_mix64(2 * gamma) == 0x6E789E6AA1B965F4
    assert py_mix64(3 * gamma) == 0x06C45D188009454F


@pytest.mark.parametrize("fn", ["jit", "py_func"])
def test_slots_of(fn):
    kernel = K.slots_of if fn == "jit" else py_func(K.slots_of)
    rng = random.Random(1)
    for bits in (1, 6, 10, 24, 40):
        cap = 1 << bits
        ids = [0, cap - 1, cap, cap + 1, 2 * cap, (1 << 62) - 1, (1 << 62) - 2]
        ids += [rng.randrange(cap) for _ in range(50)] + [rng.randrange(cap, 1 << 62) for _ in range(200)]
        arr = np.array(ids, np.int64)
        out = np.empty_like(arr)
        kernel(arr, cap, out)
        assert out.tolist() == [py_slot(i, cap) for i in ids]
        assert all(out[k] == ids[k] for k in range(len(ids)) if ids[k] < cap)  # identity below cap
        assert np.all((out >= 0) & (out < cap))
        again = np.empty_like(arr)
        kernel(arr, cap, again)
        assert np.array_equal(out, again)  # deterministic
    # hashed ids spread over the table
    cap = 1024
    big = np.arange(cap, cap + 4096, dtype=np.int64)
    out = np.empty_like(big)
    kernel(big, cap, out)
    assert len(np.unique(out)) > 900


def test_ftrl_online_hashed_ids_use_slots():
    """ids >= cap train the slot slots_of gives them (rows with distinct slots per row)."""
    cap = 64
    rng = random.Random(2)
    pool = [rng.randrange(cap, 1 << 40) for _ in range(40)] + list(range(0, cap, 3))
    rows, labels = [], []
    for _ in range(200):
        x, slots = {}, set()
        for i in rng.sample(pool, rng.randint(0, 6)):
            if py_slot(i, cap) not in slots:
                slots.add(py_slot(i, cap))
                x[i] = rng.gauss(0, 1)
        rows.append(x)
        labels.append(float(rng.random() < 0.4))
    params = dict(alpha=0.3, beta=1.0, l1=0.01, l2=0.1)
    zn, bz, margins, _ = run_kernel(rows, labels, None, params, cap)  # D == cap
    by_slot = [{py_slot(i, cap): v for i, v in x.items()} for x in rows]
    z, n, bzn, ref_margins, _ = ftrl_reference(by_slot, labels, **fill(params))
    assert_close("margins", margins, ref_margins, TOL64, TOL64)
    seen = sorted(z)
    assert_close("z", zn[seen, 0], [z[i] for i in seen], TOL64, TOL64)
    assert_close("n", zn[seen, 1], [n[i] for i in seen], TOL64, TOL64)


@pytest.mark.parametrize("fn", ["jit", "py_func"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weights_from_state(fn, dtype):
    kernel = K.weights_from_state if fn == "jit" else py_func(K.weights_from_state)
    rng = random.Random(3)
    D = 400
    zn = np.empty((D, 2), dtype)
    for i in range(D):
        zn[i] = (rng.choice([0.0, 0.1, -0.1, 1.0, -1.0]) if i < 20 else rng.gauss(0, 2),
                 0.0 if i % 17 == 0 else rng.expovariate(0.5))
    for alpha, beta, l1, l2, p in [(0.1, 1.0, 1.0, 1.0, 0.5), (0.5, 0.0, 0.0, 0.3, 0.5),
                                   (0.2, 0.5, 0.1, 0.0, 0.3), (1.0, 2.0, 0.5, 0.01, 1.0)]:
        out = np.empty(D)
        kernel(zn, hyper(alpha, beta, l1, l2, p)[0], False, out)
        # a float32 table computes in float32, its settings rounded to float32 too
        a_, b_, l1_, l2_, p_ = (float(dtype(x)) for x in (alpha, beta, l1, l2, p))
        want = [weight(float(z), float(n), a_, b_, l1_, l2_, p_) for z, n in zn]
        assert_close("w", out, want, 1e-14 if dtype == np.float64 else 1e-6, 0.0)
        assert all((o == 0.0) == (abs(float(z)) <= l1_) for o, (z, _) in zip(out, zn))


@pytest.mark.parametrize("fn", ["jit", "py_func"])
@pytest.mark.parametrize("online", [True, False])
def test_margins_state(fn, online):
    """Margins straight from the state: w from (z, n) for online FTRL, the stored column
    COL_W for mini-batch models; ids past the allocated table weigh 0."""
    kernel = K.margins_state if fn == "jit" else py_func(K.margins_state)
    rng = random.Random(4)
    cap, D = 256, 100  # a table allocated below its capacity
    alpha, beta, l1, l2, p = 0.2, 0.5, 0.1, 0.3, 0.5
    st = np.array([[rng.gauss(0, 1), rng.expovariate(0.5), rng.gauss(0, 1)] for _ in range(D)])
    if online:
        st = np.ascontiguousarray(st[:, :2])
        w = [weight(z, n, alpha, beta, l1, l2, p) for z, n in st.tolist()]
    else:
        w = st[:, K.COL_W].tolist()
    rows = []
    for _ in range(150):
        ids = rng.sample(range(cap), rng.randint(0, 8)) + [rng.randrange(cap, 1 << 50)
                                                          for _ in range(rng.randint(0, 2))]
        rows.append({i: rng.gauss(0, 1) for i in ids})
    indptr, ids, values = to_csr(rows)
    for bias_w in (0.0, -0.75):
        out = np.empty(len(rows))
        kernel(indptr, ids, values, st, cap, *hyper(alpha, beta, l1, l2, p, online=online), bias_w, out)
        want = []
        for x in rows:
            m = bias_w
            for i, v in x.items():
                s = py_slot(i, cap)
                if s < D:  # slots past the allocated table were never trained: weight 0
                    m += w[s] * v
            want.append(m)
        assert_close("margins", out, want, 1e-13, 1e-13)
    if online:  # the same bits as weights_from_state's w
        wk = np.empty(D)
        K.weights_from_state(st, hyper(alpha, beta, l1, l2, p)[0], False, wk)
        for r in range(len(rows)):
            m = bias_w  # (the loop above ended with bias_w = -0.75)
            for k in range(indptr[r], indptr[r + 1]):
                s = py_slot(int(ids[k]), cap)
                if s < D:
                    m += wk[s] * values[k]
            assert out[r] == m


EXTREME = [-1000.0, -745.2, -709.0, -50.0, -37.0, -1.0, -1e-300, -0.0, 0.0, 1e-300, 1e-17, 0.5,
           1.0, 36.0, 37.0, 50.0, 709.0, 745.2, 1000.0]


@pytest.mark.parametrize("fn", ["jit", "py_func"])
def test_sigmoid_array(fn):
    kernel = K.sigmoid_array if fn == "jit" else py_func(K.sigmoid_array)
    rng = random.Random(5)
    m = EXTREME + [rng.gauss(0, 10) for _ in range(200)]
    out = np.empty(len(m))
    kernel(np.array(m), out)
    assert_close("sigmoid", out, [sigmoid(v) for v in m], 1e-15, 0.0)
    assert np.all((out >= 0) & (out <= 1)) and not np.isnan(out).any()
    assert out[m.index(0.0)] == 0.5
    for v, s in zip(m, out):
        if abs(v) < 30:  # an independent textbook formula where it cannot overflow
            assert s == pytest.approx(1.0 / (1.0 + math.exp(-v)), rel=1e-15)


@pytest.mark.parametrize("fn", ["jit", "py_func"])
def test_logloss_sum(fn):
    kernel = K.logloss_sum if fn == "jit" else py_func(K.logloss_sum)
    rng = random.Random(6)
    m = EXTREME + [rng.gauss(0, 10) for _ in range(200)]
    y = [float(rng.random() < 0.5) for _ in m]
    wt = [rng.choice([0.0, 1.0, rng.uniform(0, 3)]) for _ in m]
    got = kernel(np.array(m), np.array(y), np.array(wt))
    assert got == pytest.approx(sum(w * logloss(a, b) for a, b, w in zip(m, y, wt)), rel=1e-13)
    for a, b in zip(m, y):  # one at a time, against the textbook formula or its asymptote
        one = kernel(np.array([a]), np.array([b]), np.array([1.0]))
        signed = a if b == 0 else -a  # loss = log(1 + exp(signed))
        want = signed + math.log1p(math.exp(-signed)) if signed > 0 else math.log1p(math.exp(signed))
        if abs(a) < 5:  # the textbook formula, where 1 - p keeps its digits
            p = 1.0 / (1.0 + math.exp(-a))
            want2 = -(b * math.log(p) + (1 - b) * math.log(1 - p))
            assert one == pytest.approx(want2, rel=1e-12, abs=1e-14)
        # max(m, 0) - y m + log1p(e^-|m|) is exact up to an ulp of |m| (a loss below
        # ~1e-16 |m|, for a confident right answer, rounds to 0)
        assert one == pytest.approx(want, rel=1e-14, abs=2.3e-16 * abs(a))
        assert math.isfinite(one) and one >= 0


START_SCRIPT = """
import sys
import numpy as np
from ftrl_cli import kernels as K
K.start_without_scipy()
assert "numba.np.arraymath" in sys.modules, "Numba's target was not loaded"
assert "scipy.linalg" not in sys.modules, "scipy.linalg was imported"
assert all(sys.modules.get(m, 1) is not None for m in ("scipy", "scipy.linalg")), "left blocked"
import scipy.linalg  # still importable afterwards
print(K.last_newline(np.frombuffer(b"a\\nb\\n", np.uint8), 0, 4))
"""


def test_start_without_scipy_loads_numba_but_not_scipy():
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    r = subprocess.run([sys.executable, "-c", START_SCRIPT], capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-800:]
    assert r.stdout.decode().strip() == "3"


@pytest.mark.parametrize("fn", ["jit", "py_func"])
def test_sum_by_slot_is_a_row_as_a_vector_over_slots(fn):
    """Colliding ids (hashed into one slot, or onto a small id's slot) become one entry with
    their values summed in the order they come; the first place of each slot is kept."""
    kernel = K.sum_by_slot if fn == "jit" else py_func(K.sum_by_slot)
    rng = random.Random(7)
    for cap in (2, 8, 64):
        pool = list(range(cap)) + [rng.randrange(cap, 1 << 62) for _ in range(3 * cap)]
        rows = [[(rng.choice(pool), rng.gauss(0, 1)) for _ in range(rng.randint(0, 40))] for _ in range(60)]
        indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
        ids = np.array([i for r in rows for i, _ in r], np.int64)
        values = np.array([v for r in rows for _, v in r], np.float64)
        oi, oids, ovals = np.empty_like(indptr), np.empty_like(ids), np.empty_like(values)
        nnz = kernel(indptr, ids, values, cap, oi, oids, ovals)
        want_indptr, want_ids, want_vals = [0], [], []
        for r in rows:
            acc = {}  # (dicts keep insertion order: the first place of each slot)
            for i, v in r:
                s = py_slot(i, cap)
                acc[s] = acc[s] + v if s in acc else v
            want_ids += list(acc)
            want_vals += list(acc.values())
            want_indptr.append(len(want_ids))
        assert nnz == len(want_ids)
        assert oi.tolist() == want_indptr
        assert oids[:nnz].tolist() == want_ids
        assert ovals[:nnz].tolist() == want_vals  # the same additions in the same order: exact
