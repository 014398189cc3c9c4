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


def _aliases_by_the_rule(batches, cap, limit, touched_before):
    """The alias table as documented, plainly: after each batch, the sorted distinct
    (slot, id) pairs of every hashed id (id >= cap) seen, plus (s, s) for an id s < cap
    seen in a slot that a hashed id lands in (or that had been touched before the first
    hashed id came to it), cut to the first `limit` pairs."""
    table, overflow = [], False
    slot_of = {}
    for ids in batches:
        ids = [int(i) for i in ids]
        for i in ids:
            if i >= cap:
                s = np.empty(1, np.int64)
                K.slots_of(np.array([i], np.int64), cap, s)
                slot_of[i] = int(s[0])
        known = {s for s, _ in table}
        pairs = {(slot_of[i], i) for i in ids if i >= cap}
        hashed_slots = {s for s, _ in pairs}
        pairs |= {(s, s) for s in hashed_slots if s in touched_before and s not in known}
        pairs |= {(i, i) for i in ids if i < cap and (i in known or i in hashed_slots)}
        merged = sorted(set(table) | pairs)
        if len(merged) > limit:
            merged, overflow = merged[:limit], True
        table = merged
        touched_before |= set(ids) - {i for i in ids if i >= cap} | hashed_slots
    return table, overflow


@pytest.mark.parametrize("limit", [1 << 20, 40])
def test_alias_table_follows_its_rule_batch_after_batch(monkeypatch, limit):
    import ftrl_cli.model as model_module

    monkeypatch.setattr(model_module, "MAX_ALIASES", limit)
    rng = np.random.default_rng(7)
    cap = 1 << 6
    batches = [np.concatenate([rng.integers(0, cap, 5), rng.integers(cap, 1 << 40, 9), rng.integers(0, 3 * cap, 7)])
               for _ in range(12)]
    m = Model(Config(bits=6, l1=0, l2=0))
    m.prepare(np.array([3, 17], np.int64), 17)  # two small ids touched before any hashed id
    m.st[[3, 17], 1] += 1
    for ids in batches:
        ids = np.asarray(ids, np.int64)
        m.prepare(ids, int(ids.max()))
        slots = np.empty(len(ids), np.int64)
        K.slots_of(ids, cap, slots)
        m.st[np.unique(slots), 1] += 1  # as learning would: every slot of the batch touched
    want, overflow = _aliases_by_the_rule(batches, cap, limit, {3, 17})
    assert [tuple(r) for r in m.alias.tolist()] == want
    assert m.alias_overflow == overflow
    assert overflow == (limit == 40)


def test_merge_pairs_is_a_sorted_distinct_union_cut_at_the_limit():
    rng = np.random.default_rng(3)
    for _ in range(200):
        a = sorted({(int(s), int(i)) for s, i in rng.integers(0, 6, (rng.integers(0, 12), 2))})
        b = sorted((int(s), int(i)) for s, i in rng.integers(0, 6, (rng.integers(0, 12), 2)))
        limit = int(rng.integers(0, 20))
        out = np.empty((len(a) + len(b), 2), np.int64)
        k, left_out = K.merge_pairs(np.array(a, np.int64).reshape(-1, 2), np.array(b, np.int64).reshape(-1, 2),
                                    out, limit)
        union = sorted(set(a) | set(b))
        assert [tuple(r) for r in out[:k].tolist()] == union[:limit]
        assert left_out == (len(union) > limit)
