"""`--interactions` on libsvm and sparse Parquet (issue 13, item 14): crosses of feature ids,
checked against a plain pure-Python reference of the spec in kernels/crosses.py, through
the readers (libsvm, sparse Parquet), training, predict, convert, and the errors."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import DATA

from ftrl_cli import api
from ftrl_cli import kernels as K
from ftrl_cli.cli import main
from ftrl_cli.config import Config
from ftrl_cli.errors import ConfigError, DataError
from ftrl_cli.readers import open_batches

A9A = DATA / "a9a_head2000.svm"
RCV1 = DATA / "rcv1_head80.svm"
M64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------
# the reference: the spec written plainly
# ---------------------------------------------------------------------------------------

def ref_mix64(x):
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def ref_cross_id(members):
    h = 0x9E3779B97F4A7C15
    for m in sorted(members):
        h = ref_mix64(h ^ m)
    return (1 << 61) | (h & ((1 << 61) - 1))


def ref_cross_row(row, interactions):
    """row: [(id, value)] ascending; interactions: lists of ids as text and '*'."""
    own = dict(row)
    crosses = {}
    for item in interactions:
        listed = [int(m) for m in item if m != "*"]
        if not all(m in own for m in listed):
            continue
        if "*" in item:
            groups = [listed + [j] for j, _ in row if j not in listed]
        else:
            groups = [listed]
        for g in groups:
            v = 1.0
            for m in sorted(g):
                v *= own[m]
            crosses.setdefault(ref_cross_id(g), v)  # a cross made twice counts once
    out = dict(own)
    for cid, v in crosses.items():
        out[cid] = out[cid] + v if cid in out else v
    return sorted((i, v) for i, v in out.items() if v != 0.0)


def rows_of(indptr, ids, values):
    return [list(zip(ids[indptr[r]:indptr[r + 1]].tolist(), values[indptr[r]:indptr[r + 1]].tolist()))
            for r in range(len(indptr) - 1)]


def read_rows(path, config):
    out, labels = [], []
    for b in open_batches(str(path), config):
        out += rows_of(b.indptr, b.ids, b.values)
        labels += b.labels.tolist()
        assert b.max_id == max((int(b.ids.max()) if len(b.ids) else -1), -1)
    return labels, out


def spec_arrays(interactions):
    from ftrl_cli.readers.crosses import id_crosses
    return id_crosses(interactions)


def as_csr(rows):
    indptr = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    ids = np.array([i for r in rows for i, _ in r], np.int64)
    values = np.array([v for r in rows for _, v in r], np.float64)
    return indptr, ids, values


# ---------------------------------------------------------------------------------------
# the kernel against the reference
# ---------------------------------------------------------------------------------------

def test_cross_id_is_the_spec_and_stable():
    rng = np.random.default_rng(5)
    for k in (2, 3, 4):
        for _ in range(50):
            m = sorted(set(rng.integers(0, 1 << 62, k).tolist()))
            cid = int(K.cross_id(np.array(m, np.int64)))
            assert cid == ref_cross_id(m)
            assert (1 << 61) <= cid < (1 << 62)
    assert int(K.cross_id(np.array([3, 7], np.int64))) == ref_cross_id([7, 3])
    # pinned: a cross's id must not change between versions (saved models use it)
    assert ref_cross_id([3, 7]) == 3743304456203843750


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_the_reference_on_random_rows(seed):
    rng = np.random.default_rng(seed)
    pool = list(range(12)) + [(1 << 61) + 5, (1 << 62) - 1]
    rows = []
    for _ in range(60):
        k = int(rng.integers(0, 9))
        ids = sorted(set(rng.choice(pool, k).tolist()))
        vals = rng.choice([0.5, -1.25, 2.0, 3.0, 1e-300, 7.0, -0.1], len(ids)).tolist()
        rows.append(list(zip(ids, vals)))
    # a row whose own id is the id of one of its crosses: one entry, the sum
    rows.append(sorted([(3, 2.0), (7, 5.0), (ref_cross_id([3, 7]), 1.5)]))
    interactions = [["3", "7"], ["3", "*"], ["1", "2", "5"], ["*", "4", "9"], ["7", "3"],
                    ["0", str((1 << 62) - 1)]]
    for n_items in range(1, len(interactions) + 1):
        items = interactions[:n_items]
        indptr, ids, values = as_csr(rows)
        err, _, _, oi, oid, ov, max_id = K.cross_rows(indptr, ids, values, *spec_arrays(items))
        assert err == 0
        got = rows_of(oi, oid, ov)
        want = [ref_cross_row(r, items) for r in rows]
        assert got == want  # ids, order and values, bit for bit
        assert max_id == max((i for r in want for i, _ in r), default=-1)
    assert (ref_cross_id([3, 7]), 1.5 + 10.0) in got[-1]


def test_kernel_rejects_unsorted_rows_and_overflow():
    sp = spec_arrays([["1", "2"]])
    err, pos, *_ = K.cross_rows(np.array([0, 2]), np.array([2, 1]), np.array([1.0, 1.0]), *sp)
    assert err == K.ERR_CROSS_UNSORTED and pos == 1
    err, pos, spec, *_ = K.cross_rows(np.array([0, 0, 2]), np.array([1, 2]), np.array([1e200, 1e200]), *sp)
    assert err == K.ERR_CROSS_NONFINITE and pos == 1 and spec == 0


# ---------------------------------------------------------------------------------------
# the readers
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("items", [[["3", "*"]], [["14", "19"], ["5", "*"], ["39", "73", "76"]]])
def test_libsvm_rows_are_crossed_as_the_reference_says(items):
    plain = Config()
    labels0, rows0 = read_rows(A9A, plain)
    labels, rows = read_rows(A9A, plain.replace(interactions=items))
    assert labels == labels0
    assert rows == [ref_cross_row(r, items) for r in rows0]
    assert sum(len(r) for r in rows) > sum(len(r) for r in rows0) + 1000  # crosses were made


def test_libsvm_with_values_and_sparse_parquet_alike(tmp_path):
    items = [["*", "1"], ["2", "3"]]  # rcv1: tf-idf values, so the products are not all 1
    pq_path = tmp_path / "r.parquet"
    api.convert([str(RCV1)], str(pq_path))
    plain = Config()
    _, rows0 = read_rows(RCV1, plain)
    want = [ref_cross_row(r, items) for r in rows0]
    assert any(i >= 1 << 61 for r in want for i, _ in r)
    for path in (RCV1, pq_path):
        _, rows = read_rows(path, plain.replace(interactions=items))
        assert rows == want


# ---------------------------------------------------------------------------------------
# training, predict, convert
# ---------------------------------------------------------------------------------------

def weights_of(m):
    model = api.load_model(m)
    return model.state.table, model.state.bias


def test_training_predict_and_convert_see_the_crosses(tmp_path):
    items = [["14", "*"], ["39", "73"]]
    overrides = {"bits": 16, "interactions": items}
    train_rows = tmp_path / "head.svm"
    lines = A9A.read_text().splitlines()
    train_rows.write_text("\n".join(lines[:1500]) + "\n")
    test_rows = tmp_path / "tail.svm"
    test_rows.write_text("\n".join(lines[1500:]) + "\n")

    # the oracle: the reference's crossed rows, written as sparse Parquet, trained without crosses
    def crossed_parquet(src, dst):
        labels, rows0 = read_rows(src, Config())
        rows = [ref_cross_row(r, items) for r in rows0]
        pq.write_table(pa.table({
            "label": pa.array(labels, pa.float64()),
            "indices": pa.array([[i for i, _ in r] for r in rows], pa.list_(pa.int64())),
            "values": pa.array([[v for _, v in r] for r in rows], pa.list_(pa.float64()))}), dst)
        return str(dst)

    m_cross, m_ref, m_plain = tmp_path / "cross", tmp_path / "ref", tmp_path / "plain"
    api.train([str(train_rows)], m_cross, overrides=overrides)
    api.train([crossed_parquet(train_rows, tmp_path / "x.parquet")], m_ref, overrides={"bits": 16})
    api.train([str(train_rows)], m_plain, overrides={"bits": 16})
    (t1, b1), (t2, b2), (t3, _) = weights_of(m_cross), weights_of(m_ref), weights_of(m_plain)
    assert np.array_equal(t1, t2) and np.array_equal(b1, b2)
    assert not np.array_equal(t1[: len(t3)], t3)  # crosses changed the model
    assert json.loads((m_cross / "config.json").read_text())["interactions"] == items

    # predict reads the test rows with the model's crosses
    def margins(m, path):
        return np.concatenate([x for _, x, _ in api.iter_margins(api.load_model(m), [str(path)])])

    assert np.array_equal(margins(m_cross, test_rows), margins(m_ref, crossed_parquet(test_rows, tmp_path / "t.pq")))

    # convert writes the crosses: training from its output without them is the same model
    conv = tmp_path / "conv.parquet"
    api.convert([str(train_rows)], str(conv), overrides={"interactions": items})
    m_conv = tmp_path / "conv"
    api.train([str(conv)], m_conv, overrides={"bits": 16})
    t4, b4 = weights_of(m_conv)
    assert np.array_equal(t1, t4) and np.array_equal(b1, b4)


def test_no_interactions_reads_rows_unchanged():
    # without --interactions the readers yield what they always did (the models stay bit-identical)
    _, rows = read_rows(A9A, Config())
    _, again = read_rows(A9A, Config(interactions=None))
    assert rows == again and max(i for r in rows for i, _ in r) < 124


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, words", [
    ("site:app", "'site' is not a feature id"),
    ("3:3", "listed twice"),
    ("*:*", "at most one *"),
    (f"3:{1 << 62}", "not below 2**62"),
    ("-1:3", "'-1' is not a feature id"),
])
def test_bad_interactions_on_ids_are_one_line_errors_before_training(tmp_path, spec, words):
    m = tmp_path / "m"
    r = CliRunner().invoke(main, ["train", str(A9A), "-m", str(m), "--interactions", spec])
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output
    assert not (m / "config.json").exists()
    with pytest.raises(ConfigError, match="interaction"):
        list(open_batches(str(A9A), Config(interactions=[spec.split(":")])))


def test_overflowing_cross_names_the_file_and_row(tmp_path):
    p = tmp_path / "big.parquet"
    pq.write_table(pa.table({"label": [1.0, 0.0, 1.0], "indices": [[1, 2], [1, 2], [1]],
                             "values": [[1.0, 2.0], [1e200, 1e200], [3.0]]}), p)
    with pytest.raises(DataError) as e:
        list(open_batches(str(p), Config(interactions=[["1", "2"]])))
    msg = str(e.value)
    assert "big.parquet" in msg and "row 2" in msg and "1:2" in msg and "\n" not in msg
    svm = tmp_path / "big.svm"
    svm.write_text("1 1:1 2:2\n0 1:1e200 2:1e200\n")
    with pytest.raises(DataError, match="overflows"):
        list(open_batches(str(svm), Config(interactions=[["1", "2"]])))


def test_a_cross_learns_what_no_linear_model_can(tmp_path):
    # y = x1 XOR x2: no weights on ids 1, 2 (and 3, always on) separate it; the cross 1:2 does
    rng = np.random.default_rng(0)

    def write(path, n):
        lines = []
        for _ in range(n):
            a, b = rng.random() < 0.5, rng.random() < 0.5
            lines.append(f"{int(a != b)} 3:1" + (" 1:1" if a else "") + (" 2:1" if b else ""))
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    train, test = write(tmp_path / "xor.svm", 3000), write(tmp_path / "xor_t.svm", 500)
    auc = {}
    for name, items in (("plain", None), ("cross", [["1", "2"]])):
        api.train([train], tmp_path / name, overrides={"bits": 12, "passes": 3, "interactions": items})
        auc[name] = api.evaluate(tmp_path / name, [test])["auc"]
    assert auc["plain"] < 0.6 and auc["cross"] > 0.99, auc


def test_a_model_from_before_id_crosses_scores_without_them(tmp_path):
    # before, --interactions on ids was ignored but recorded: such a model (input_schema
    # without id_crosses) keeps scoring without crosses; a model trained with them says so
    from ftrl_cli.model import Model

    api.train([str(A9A)], tmp_path / "plain", overrides={"bits": 16})
    api.train([str(A9A)], tmp_path / "cross", overrides={"bits": 16, "interactions": [["14", "*"]]})
    plain, cross = api.load_model(tmp_path / "plain"), api.load_model(tmp_path / "cross")
    assert plain.config.input_schema == {"layout": "ids"}
    assert cross.config.input_schema == {"layout": "ids", "id_crosses": True}
    old = Model(plain.config.replace(interactions=[["14", "*"]]), plain.state)

    def margins(model):
        return np.concatenate([m for _, m, _ in api.iter_margins(model, [str(A9A)])])

    assert np.array_equal(margins(old), margins(plain))
    stripped = Model(cross.config.replace(input_schema={"layout": "ids"}), cross.state)
    assert not np.array_equal(margins(cross), margins(stripped))
