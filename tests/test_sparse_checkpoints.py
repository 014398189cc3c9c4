"""Sparse checkpoints (model format 3, docs/model-format.md): a checkpoint holds only the slots
whose row is not, bit for bit, the fresh row, and loading rebuilds the table exactly, so that
resume, predict, export and inspect are unchanged; dense checkpoints (formats 1 and 2) still
load; a forged slot list is refused before it is scattered."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import DATA, ROOT, assert_same_state

from ftrl_cli import api, checkpoint
from ftrl_cli.config import Config
from ftrl_cli.errors import ModelError
from ftrl_cli.model import Model
from ftrl_cli.records import TrainingLog

CONFIGS = {  # (settings, ids hashed into the table)
    "online f64 hashed": (dict(bits=10), True),
    "online float32": (dict(bits=12, dtype="float32"), False),
    "online l2 shrinkage": (dict(bits=12, l2_shrinkage=0.01), False),
    "mini-batch initial_accumulator": (dict(bits=12, batch_size=8, initial_accumulator=0.1), False),
    "mini-batch hashed f32": (dict(bits=9, batch_size=4, dtype="float32", initial_accumulator=0.5), True),
    "novograd": (dict(bits=12, batch_size=16, optimizer="novograd", alpha=0.01), False),
    "dense ema accumulation": (dict(bits=12, batch_size=32, update="dense", ema_momentum=0.9,
                                    gradient_accumulation_steps=2, initial_accumulator=0.1), False),
}


def rows_of(seed, n, hashed):
    """n rows of 1-6 features: (label, [(id, value)]), ids skewed toward small ones; hashed:
    ids up to 2**20, most of them past a 2**9..2**12 table."""
    rng = np.random.default_rng(seed)
    top = (1 << 20) if hashed else 3000
    out = []
    for _ in range(n):
        ids = sorted(set((rng.pareto(0.7, rng.integers(1, 7)) * 20).astype(np.int64) % top))
        vals = rng.choice([1.0, 0.5, 2.25, -1.5], len(ids))
        y = int(rng.random() < 0.3 + 0.4 * (ids[0] % 2))
        out.append((y, list(zip(ids, vals))))
    return out


def write_libsvm(path, rows):
    with open(path, "w") as f:
        for y, feats in rows:
            f.write(f"{y} " + " ".join(f"{int(i)}:{float(v)!r}" for i, v in feats) + "\n")
    return str(path)


def learned(config, rows):
    """A Model trained in memory on rows, through Model.learn (no checkpoint in between)."""
    indptr = np.cumsum([0] + [len(f) for _, f in rows]).astype(np.int64)
    ids = np.array([i for _, f in rows for i, _ in f], np.int64)
    values = np.array([v for _, f in rows for _, v in f], np.float64)
    y = np.array([r[0] for r in rows], np.float64)
    model = Model(config)
    model.learn(indptr, ids, values, y, np.ones(len(rows)), int(ids.max()), np.empty(len(rows)))
    return model


def fresh_bytes(config, dtype):
    """The row of an untouched slot, written out plainly: zeros, n = initial_accumulator (FTRL)."""
    k = 2 if config.online else 3 + (config.ema_momentum is not None) + bool(config.gradient_accumulation_steps)
    row = [0.0] * k
    if config.optimizer == "ftrl":
        row[1] = config.initial_accumulator
    return np.array(row, dtype).tobytes()


def used_reference(model):
    """The slots whose row's bytes differ from the fresh row's: a plain loop."""
    fresh = fresh_bytes(model.config, model.st.dtype)
    return [i for i in range(len(model.st)) if model.st[i].tobytes() != fresh]


def saved(d, model, examples=1, log=None):
    os.makedirs(d)
    checkpoint.save(str(d), model, log or TrainingLog(examples_seen=examples, finished=True))
    return d


def newest(d):
    return d / json.loads((d / "manifest.json").read_text())["checkpoints"][-1]["file"]


def forge(d, arrays, version=None):
    """Replace d's newest checkpoint by these arrays, with its sha256 forged in the manifest."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    newest(d).write_bytes(buf.getvalue())
    man = json.loads((d / "manifest.json").read_text())
    man["checkpoints"][-1]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    if version is not None:
        man["format_version"] = version
    (d / "manifest.json").write_text(json.dumps(man))


def members(d):
    with np.load(newest(d), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def as_dense(src, dst, table):
    """A copy of src whose checkpoint holds `table` dense, as format 2 wrote it (st)."""
    shutil.copytree(src, dst)
    arrays = members(dst)
    for k in ("slots", "rows", "size"):
        del arrays[k]
    forge(dst, {**arrays, "st": table}, version=2)
    return dst


def served(d, data):
    out = {}
    for kind in ("proba", "margin"):
        buf = io.BytesIO()
        api.predict(str(d), [data], buf, output=kind)
        out[kind] = buf.getvalue()
    buf = io.BytesIO()
    api.export(str(d), buf)
    out["export"] = buf.getvalue()
    out["inspect"] = {k: v for k, v in api.inspect(str(d), top=50).items()
                      if k not in ("model_dir", "checkpoints")}  # (names, sha256, bytes, times)
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_checkpoint_holds_the_used_rows_and_loads_bit_for_bit(tmp_path, name):
    over, hashed = CONFIGS[name]
    config = Config(**over)
    rows = rows_of(1, 600, hashed)
    model = learned(config, rows)
    ref = used_reference(model)
    assert 0 < len(ref) < len(model.st), "the data should leave some slots untouched"
    d = saved(tmp_path / "m", model, len(rows))
    z = members(d)
    assert "st" not in z and z["size"].tolist() == [len(model.st)]
    assert z["slots"].dtype == np.int64 and z["slots"].tolist() == ref
    assert z["rows"].dtype == model.st.dtype and z["rows"].tobytes() == model.st[ref].tobytes()
    if hashed:
        assert len(model.alias) > 0 and np.array_equal(z["alias"], model.alias)
    back, log = checkpoint.load(str(d))
    assert back.state == model.state and back.st.flags.c_contiguous
    assert back.config == config and log.examples_seen == len(rows)
    if config.optimizer == "novograd":  # n is unused: "n != 0" would have dropped these rows
        assert (model.st[ref, 1] == 0).all()
    if config.initial_accumulator:  # every slot has n != 0; only the touched ones are stored
        assert (model.st[:, 1] != 0).all()


@pytest.mark.parametrize("name", ["online f64 hashed", "mini-batch initial_accumulator", "novograd",
                                  "dense ema accumulation", "online float32"])
def test_a_sparse_model_serves_and_resumes_as_its_dense_form(tmp_path, name):
    """Against the same model stored dense (format 2's st): the same state, byte-identical
    predictions, export and inspect, and the same state after resuming on more data."""
    over, hashed = CONFIGS[name]
    rows = rows_of(2, 400, hashed)
    model = learned(Config(**over), rows)
    sparse = saved(tmp_path / "sparse", model, len(rows))
    dense = as_dense(sparse, tmp_path / "dense", model.st)
    assert checkpoint.load(str(dense))[0].state == checkpoint.load(str(sparse))[0].state == model.state
    test = write_libsvm(tmp_path / "test.svm", rows_of(3, 300, hashed))
    a, b = served(sparse, test), served(dense, test)
    assert a == b and len(a["proba"].splitlines()) == 300
    more = write_libsvm(tmp_path / "more.svm", rows_of(4, 300, hashed))
    for d in (sparse, dense):
        api.train([more], d, resume=True)
    assert_same_state(sparse, dense)
    assert "st" not in members(dense)  # (the resumed model was written sparse)
    assert json.loads((dense / "manifest.json").read_text())["format_version"] == checkpoint.MANIFEST_VERSION


def test_rows_at_other_bits_than_the_fresh_row_are_kept(tmp_path):
    """-0.0 is not 0.0, a row equal to fresh in value but not in bits is stored: exact bits."""
    config = Config(bits=6, initial_accumulator=0.25)
    model = Model(config)
    model.st[3, 0] = -0.0
    model.st[7, 1] = np.nextafter(0.25, 1.0)
    model.st[9] = [0.0, 0.25]  # (the fresh row itself: not stored)
    d = saved(tmp_path / "m", model)
    assert members(d)["slots"].tolist() == [3, 7]
    back, _ = checkpoint.load(str(d))
    assert back.state == model.state and np.signbit(back.st[3, 0])


def test_a_hashed_csv_model_is_sized_by_what_was_learned(tmp_path):
    """avazu's first 1,000 rows hashed into 2**24 slots (the default): a few hundred kB at
    most, not the 256 MiB of the table; predict serves it like the model in memory."""
    csv = str(DATA / "ctr" / "avazu_train_head1000.csv")
    d = tmp_path / "m"
    api.train([csv], d, overrides={"label_column": "click", "ignore": ["id"]})
    total = sum(p.stat().st_size for p in d.iterdir())
    before = rss_mb()
    model, _ = checkpoint.load(str(d))
    assert rss_mb() - before < 64  # (the 256 MiB table is resident only where rows were written)
    assert len(model.st) == 1 << 24 and model.st.flags.writeable and model.st.flags.c_contiguous
    used = np.flatnonzero(model.st.view(np.uint64).any(axis=1))  # (the fresh row is all zero bits)
    assert 100 < len(used) < 20000
    assert members(d)["slots"].tolist() == used.tolist()
    assert checkpoint.load(str(d), resume=True)[0].state == model.state  # (loaded to train: huge pages)
    assert total < 40 * len(used) + 200_000 < 1 << 20
    # the kernels take the table as loaded: the margins are those of a plain in-memory copy
    dense = Model(model.config, model.state.copy())
    indptr, ids = np.array([0, 3, 5]), np.r_[used[:3], used[-1], 7 << 40].astype(np.int64)
    values = np.ones(5)
    assert model.margins(indptr, ids, values).tobytes() == dense.margins(indptr, ids, values).tobytes()


def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS")) / 1024


def test_a_format_1_model_saved_again_is_the_same_model(tmp_path):
    src = tmp_path / "v1"
    shutil.copytree(DATA / "model_v1" / "finished", src)
    model, log = checkpoint.load(str(src))
    d = saved(tmp_path / "v3", model, log=log)
    assert checkpoint.load(str(d))[0].state == model.state
    test = str(ROOT / "sample_data" / "agaricus.txt.test")
    assert served(src, test) == served(d, test)


@pytest.fixture
def forged(tmp_path):
    """A small sparse checkpoint and a way to forge its members."""
    rows = rows_of(5, 200, False)
    model = learned(Config(bits=12), rows)
    d = saved(tmp_path / "m", model, len(rows))
    good = members(d)
    assert len(good["slots"]) >= 3

    def with_(**changes):
        arrays = {**good, **changes}
        for k, v in changes.items():
            if v is None:
                del arrays[k]
        forge(d, arrays)
        return d

    return good, with_


def _swap(a, i, j):
    a = a.copy()
    a[i], a[j] = a[j], a[i]
    return a


@pytest.mark.parametrize("label, change", [
    ("unsorted", lambda g: {"slots": _swap(g["slots"], 0, 1)}),
    ("duplicate", lambda g: {"slots": np.r_[g["slots"][:1], g["slots"][:-1]]}),
    ("negative", lambda g: {"slots": np.r_[-1, g["slots"][1:]]}),
    ("past the table", lambda g: {"slots": np.r_[g["slots"][:-1], g["size"][0]]}),
    ("float slots", lambda g: {"slots": g["slots"].astype(np.float64)}),
    ("2-d slots", lambda g: {"slots": g["slots"].reshape(-1, 1)}),
    ("a row too few", lambda g: {"rows": g["rows"][:-1]}),
    ("float32 rows", lambda g: {"rows": g["rows"].astype(np.float32)}),
    ("3 columns", lambda g: {"rows": np.c_[g["rows"], g["rows"][:, :1]]}),
    ("size 3", lambda g: {"size": np.array([3], np.int64)}),
    ("size 0", lambda g: {"size": np.array([0], np.int64)}),
    ("size past 2**bits", lambda g: {"size": np.array([1 << 13], np.int64)}),
    ("size 2**62", lambda g: {"size": np.array([1 << 62], np.int64)}),
    ("size float", lambda g: {"size": np.array([4096.0])}),
    ("size missing", lambda g: {"size": None}),
    ("rows missing", lambda g: {"rows": None}),
    ("dense and sparse", lambda g: {"st": np.zeros((int(g["size"][0]), 2))}),
])
def test_a_forged_slot_list_is_refused_before_it_is_scattered(forged, label, change):
    good, with_ = forged
    d = with_(**change(good))
    with pytest.raises(ModelError, match="not a valid checkpoint|do not match its settings|slot list"):
        checkpoint.load(str(d))


def test_the_command_line_says_so_in_one_line(forged, tmp_path):
    good, with_ = forged
    d = with_(slots=good["slots"][::-1].copy())
    test = write_libsvm(tmp_path / "t.svm", rows_of(6, 5, False))
    r = subprocess.run([sys.executable, "-m", "ftrl_cli", "predict", "-m", str(d), test],
                       capture_output=True, text=True)
    assert r.returncode == 3 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "slot list is not sorted, unique" in r.stderr


# ---------------------------------------------------------------------------------------
# peak RSS of a hashed run follows what it touches (issue 16 item 1)
# ---------------------------------------------------------------------------------------

def test_small_pages_only_for_a_table_far_bigger_than_its_input():
    from ftrl_cli.model import SMALL_PAGES_INPUT, small_pages

    table = 256 << 20  # (2**24 float64 slots of (z, n))
    assert small_pages(1_000_000, table) and small_pages(table // 16, table)
    assert not small_pages(table // 16 + 1, table)  # (an input that fills much of the table)
    assert not small_pages(None, table)  # (stdin: not known)
    assert not small_pages(1000, 1 << 20)  # (a small table: nothing to save)
    assert not small_pages(SMALL_PAGES_INPUT + 1, 1 << 40)  # (a long loop stays on huge pages)


def _peak_rss_mb(args) -> float:
    code = ("import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    r = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "ftrl_cli", *args],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return float(r.stdout)


def test_a_small_hashed_run_s_memory_follows_its_rows_not_the_table(tmp_path):
    """1,000 Avazu rows hashed into 2**24 slots (a 256 MiB table) touch ~22 k rows: the peak
    RSS stays far below the floor plus the table (was floor + 300 MB: 2 MiB pages, and the
    final scans of the table for the checkpoint)."""
    csv = os.path.join(DATA, "ctr", "avazu_train_head1000.csv")
    common = [csv, "--label", "click", "-q", "--force"]
    big = _peak_rss_mb(["train", *common, "-m", str(tmp_path / "b24")])
    small = _peak_rss_mb(["train", *common, "--bits", "12", "-m", str(tmp_path / "b12")])
    assert big - small < 128, (big, small)  # (half the table)


def test_small_pages_change_no_bit_of_the_model(tmp_path, monkeypatch):
    import ftrl_cli.model as model_module

    csv = os.path.join(DATA, "ctr", "avazu_train_head1000.csv")
    over = {"label_column": "click", "passes": 2}
    mapped = []
    zeros = model_module._zeros_in_small_pages
    monkeypatch.setattr(model_module, "_zeros_in_small_pages", lambda *a: mapped.append(a) or zeros(*a))
    api.train([csv], tmp_path / "small", overrides=over)
    assert mapped  # (the 2**24-slot table was mapped in small pages)
    monkeypatch.setattr(model_module, "small_pages", lambda *a: False)
    api.train([csv], tmp_path / "huge", overrides=over)
    assert len(mapped) == 1
    a, b = checkpoint.load(tmp_path / "small")[0], checkpoint.load(tmp_path / "huge")[0]
    assert len(a.state.table) == 1 << 24 and a.state == b.state
    assert_same_state(tmp_path / "small", tmp_path / "huge")  # (the files too)


@pytest.mark.parametrize("over", [{}, {"l1": 2.0}, {"batch_size": 32, "optimizer": "novograd"},
                                  {"initial_accumulator": 0.1}, {"dtype": "float32", "bits": 10}])
def test_used_weights_are_the_weights_of_the_whole_table(tmp_path, over):
    api.train([os.path.join(DATA, "a9a_head2000.svm")], tmp_path / "m", overrides=over)
    model, _ = checkpoint.load(tmp_path / "m")
    full = model.weights()
    slots, w = model.used_weights()
    spread = np.zeros_like(full)
    spread[slots] = w
    assert np.array_equal(spread.view(np.uint64), full.view(np.uint64)) and np.count_nonzero(w)


def test_inspect_and_export_of_a_small_hashed_model_read_its_rows_not_the_table(tmp_path):
    csv = os.path.join(DATA, "ctr", "avazu_train_head1000.csv")
    for bits in ("24", "12"):
        api.train([csv], tmp_path / bits, overrides={"label_column": "click", "bits": int(bits)})
    for cmd in (["inspect"], ["export", "-o", str(tmp_path / "w.tsv")]):
        big = _peak_rss_mb([*cmd, "-m", str(tmp_path / "24")])
        small = _peak_rss_mb([*cmd, "-m", str(tmp_path / "12")])
        assert big - small < 64, (cmd, big, small)  # (was + 360 MB for inspect: weights and argsort of 2**24)
