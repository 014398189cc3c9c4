"""The weight table: lazy growth, identity slots, stable hashing of big ids, naming."""

import numpy as np
import pytest
from conftest import SAMPLE_TRAIN

from ftrl_cli import kernels as K
from ftrl_cli.config import Config
from ftrl_cli.model import Model
from ftrl_cli.readers import iter_libsvm


def learn_file(model, path):
    for b in iter_libsvm(str(path)):
        y = (b.labels > 0).astype(float)
        m = np.empty(b.rows)
        model.learn(b.indptr, b.ids, b.values, y, np.ones(b.rows), b.max_id, m)


def test_small_data_gets_a_small_table():
    m = Model(Config())
    learn_file(m, SAMPLE_TRAIN)
    assert m.size == 128  # agaricus ids go to 126
    assert m.st.nbytes < 4096


def test_big_ids_without_collisions_by_default():
    # url_mini-like ids (up to 3.2 M) fit the default 2**24 capacity: identity slots
    m = Model(Config())
    ids = np.array([5, 3_231_887, 1_000_000], np.int64)
    m.prepare(ids, int(ids.max()))
    assert m.size == 1 << 22
    assert m.collisions() == 0 and len(m.alias) == 0


def test_ids_beyond_capacity_are_hashed_never_dropped():
    m = Model(Config(bits=8, l1=0, l2=0))
    ids = np.array([3, 1000, 70000, 2**40], np.int64)
    indptr = np.array([0, 4], np.int64)
    vals = np.ones(4)
    out = np.empty(1)
    m.learn(indptr, ids, vals, np.array([1.0]), np.ones(1), int(ids.max()), out)
    assert m.size == 256
    slots = np.empty(4, np.int64)
    K.slots_of(ids, 256, slots)
    assert slots[0] == 3 and np.all(slots < 256) and np.all(slots >= 0)
    # every id influenced the model: its slot's n moved off the initial accumulator
    assert np.all(m.st[slots, 1] > 0)
    # the same ids map to the same slots in a fresh process-independent computation
    again = np.empty(4, np.int64)
    K.slots_of(ids, 256, again)
    assert np.array_equal(slots, again)
    names = dict(m.named_weights())
    for fid, _s in zip(ids[1:], slots[1:]):
        assert any(str(fid) in name.split("+") for name in names)


def test_collisions_are_counted():
    m = Model(Config(bits=4))
    ids = np.arange(0, 200, dtype=np.int64)  # 16 slots, 200 ids
    m.prepare(ids, 199)
    m.st[:, 1] += 1  # mark all touched
    assert m.collisions() == 16


def test_predict_ignores_slots_never_allocated():
    m = Model(Config())
    learn_file(m, SAMPLE_TRAIN)
    indptr = np.array([0, 2], np.int64)
    ids = np.array([1, 5_000_000], np.int64)  # 5e6 was never seen: weight 0, no OOB read
    out = m.margins(indptr, ids, np.ones(2))
    w = m.weights()
    assert out[0] == pytest.approx(w[1] + m.bias_weight())


def test_float32_state():
    m32, m64 = Model(Config(dtype="float32")), Model(Config())
    learn_file(m32, SAMPLE_TRAIN)
    learn_file(m64, SAMPLE_TRAIN)
    assert m32.st.dtype == np.float32
    np.testing.assert_allclose(m32.weights(), m64.weights(), rtol=1e-3, atol=1e-5)


def test_l1_gives_exact_zeros():
    m = Model(Config(l1=30.0))
    learn_file(m, SAMPLE_TRAIN)
    w = m.weights()
    assert (w == 0).sum() > 0 and (w != 0).sum() > 0


def _fit(**settings):
    m = Model(Config(**settings))
    learn_file(m, SAMPLE_TRAIN)
    m.finalize()
    return m


def test_minibatch_of_one_equals_online():
    """The mini-batch kernel with B = 1, lazy, is the per-example Algorithm 1 (up to the
    order of two additions, which follows Keras there)."""
    online = _fit(l1=0.5, l2=0.3)
    mini = _fit(l1=0.5, l2=0.3, clipvalue=1e300)  # any extra setting selects the mini-batch kernel
    assert not mini.config.online and online.config.online
    np.testing.assert_allclose(mini.weights(), online.weights(), rtol=1e-12, atol=1e-14)
    assert mini.bias_weight() == pytest.approx(online.bias_weight(), rel=1e-12)


def test_dense_equals_lazy_without_shrinkage_and_differs_with_it():
    d = _fit(l1=0.0, l2=0.3, batch_size=32, update="dense")
    lz = _fit(l1=0.0, l2=0.3, batch_size=32, update="lazy")
    assert np.array_equal(d.st, lz.st) and np.array_equal(d.bst, lz.bst)
    ds = _fit(l1=0.0, l2=0.3, batch_size=32, update="dense", l2_shrinkage=0.01)
    ls = _fit(l1=0.0, l2=0.3, batch_size=32, update="lazy", l2_shrinkage=0.01)
    assert not np.array_equal(ds.weights(), ls.weights())


def test_colliding_ids_of_a_row_are_one_coordinate_with_summed_values():
    """Issue 13 item 3: ids that share a slot in one row are summed before the update (the
    example is a vector over slots), as the wide-table path and Keras do; oracle: the
    plain-Python Algorithm 1 on the rows mapped to slots and summed."""
    from reference import ftrl_reference
    from test_kernels import py_slot

    cap = 2  # bits 1: every id >= 2 is hashed into slot 0 or 1
    rows, labels = [], []
    for b in iter_libsvm(str(SAMPLE_TRAIN)):
        for r in range(b.rows):
            lo, hi = b.indptr[r], b.indptr[r + 1]
            rows.append(list(zip(b.ids[lo:hi].tolist(), b.values[lo:hi].tolist())))
            labels.append(float(b.labels[r] > 0))
    rows, labels = rows[:1500], labels[:1500]
    c = Config(bits=1, l1=0.0, l2=1.0, alpha=0.1, beta=1.0)
    m = Model(c)
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    ids = np.array([i for r in rows for i, _ in r], np.int64)
    vals = np.array([v for r in rows for _, v in r], np.float64)
    margins = np.empty(len(rows))
    m.learn(indptr, ids, vals, np.array(labels), np.ones(len(rows)), int(ids.max()), margins)
    by_slot = []
    for r in rows:
        x = {}
        for i, v in r:
            x[py_slot(i, cap)] = x.get(py_slot(i, cap), 0.0) + v
        by_slot.append(x)
    z, n, _, ref_margins, _ = ftrl_reference(by_slot, labels, alpha=0.1, beta=1.0, l1=0.0, l2=1.0)
    np.testing.assert_allclose(margins, ref_margins, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(m.st[:2, 0], [z.get(0, 0.0), z.get(1, 0.0)], rtol=1e-12)
    np.testing.assert_allclose(m.st[:2, 1], [n.get(0, 0.0), n.get(1, 0.0)], rtol=1e-12)
    # scoring uses the same vectors
    np.testing.assert_allclose(m.margins(indptr, ids, vals)[:5],
                               [sum(m.weights()[s] * v for s, v in x.items()) + m.bias_weight()
                                for x in by_slot[:5]], rtol=1e-12)
