"""Atomic writes, checksummed checkpoints, fallback to an older good checkpoint, resume."""

import json
import os

import numpy as np
import pytest
from conftest import assert_same_state

from ftrl_cli import api, checkpoint
from ftrl_cli.config import Config
from ftrl_cli.errors import DataError, ModelError
from ftrl_cli.model import Model
from ftrl_cli.records import TrainingLog


def test_atomic_writer_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with checkpoint.atomic_writer(target) as f:
            f.write(b"new partial")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_atomic_writer_gives_the_mode_open_would(tmp_path):
    """New files: 0666 less the umask (not mkstemp's 0600); replaced files keep their mode."""
    old = os.umask(0o022)
    try:
        import importlib

        from ftrl_cli import atomic

        importlib.reload(atomic)  # (reads the umask at import)
        new = tmp_path / "new.bin"
        with atomic.atomic_writer(new) as f:
            f.write(b"x")
        assert os.stat(new).st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.bin"
        kept.write_bytes(b"v1")
        os.chmod(kept, 0o640)
        with atomic.atomic_writer(kept) as f:
            f.write(b"v2")
        assert os.stat(kept).st_mode & 0o777 == 0o640 and kept.read_bytes() == b"v2"
    finally:
        os.umask(old)


def test_write_error_is_reported_and_previous_kept(tmp_path, monkeypatch):
    target = tmp_path / "x.bin"
    target.write_bytes(b"v1")

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(DataError, match="No space left on device.*previous file is intact"):  # exit 1
        checkpoint.write_bytes(target, b"v2")
    assert target.read_bytes() == b"v1"
    assert os.listdir(tmp_path) == ["x.bin"]


def trained(tmp_path, sample_train, **over):
    d = tmp_path / "m"
    api.train([sample_train], d, overrides=over)
    return d


def test_keep_checkpoints_prunes(tmp_path, sample_train, sample_test):
    """A run's own checkpoints (1000..6000) are pending until it finishes; the finished
    one is committed and theirs removed. Finished models are kept keep_checkpoints deep."""
    d = trained(tmp_path, sample_train, checkpoint_every=1000, keep_checkpoints=2)
    man = json.loads((d / "manifest.json").read_text())
    assert [e["seq"] for e in man["checkpoints"]] == [7] and "pending" not in man
    assert sorted(p.name for p in d.glob("ckpt-*.npz")) == ["ckpt-000007.npz"]
    assert man["checkpoints"][-1]["finished"] is True
    api.train([sample_test], d, resume=True)  # (1,611 rows: pending 8, final 9)
    api.train([sample_train], d, resume=True)  # pending 10..15, final 16: 7 is dropped
    man = json.loads((d / "manifest.json").read_text())
    assert [e["seq"] for e in man["checkpoints"]] == [9, 16]
    assert sorted(p.name for p in d.glob("ckpt-*.npz")) == ["ckpt-000009.npz", "ckpt-000016.npz"]


def test_damaged_newest_checkpoint_is_an_error_unless_last_good(tmp_path, sample_train, sample_test):
    d = trained(tmp_path, sample_train)
    api.train([sample_test], d, resume=True)
    newest = sorted(d.glob("ckpt-*.npz"))[-1]
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="checksum mismatch.*--last-good"):
        checkpoint.load(d)
    warnings = []
    model, meta = checkpoint.load(d, fallback=True, warn=warnings.append)
    assert meta.finished is True and meta.examples_seen == 6513  # the model before --resume
    assert any("checksum mismatch" in w and "ckpt-000001.npz" in w for w in warnings)


def test_all_checkpoints_bad_is_an_error(tmp_path, sample_train):
    d = trained(tmp_path, sample_train)
    for p in d.glob("ckpt-*.npz"):
        p.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="checksum"):
        checkpoint.load(d)


def test_newer_format_is_refused(tmp_path, sample_train):
    d = trained(tmp_path, sample_train)
    man = json.loads((d / "manifest.json").read_text())
    man["format_version"] = 99
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelError, match="newer than this ftrl"):
        checkpoint.load(d)


def test_other_tools_manifest_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(Config().to_json())
    (tmp_path / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(ModelError, match="not an ftrl model"):
        checkpoint.load(tmp_path)


def test_pickled_arrays_are_never_loaded(tmp_path, sample_train):
    d = trained(tmp_path, sample_train)
    entry = json.loads((d / "manifest.json").read_text())["checkpoints"][-1]
    path = d / entry["file"]
    # an object array needs pickle: forge a checkpoint with one and a valid checksum
    import hashlib
    import io

    buf = io.BytesIO()
    np.savez(buf, st=np.array([object()], dtype=object), bst=np.zeros(2), ls=np.zeros(4), iterations=np.zeros(1, np.int64), alias=np.zeros((0, 2), np.int64),
             meta=np.zeros(1, np.uint8))
    path.write_bytes(buf.getvalue())
    man = json.loads((d / "manifest.json").read_text())
    man["checkpoints"][-1]["sha256"] = hashlib.sha256(buf.getvalue()).hexdigest()
    (d / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ModelError, match="not a valid checkpoint"):
        checkpoint.load(d, fallback=False)


def test_wrong_shape_or_dtype_is_refused(tmp_path, sample_train):
    """The arrays must match the settings stored with them (a forged float32 config)."""
    import hashlib

    d = trained(tmp_path, sample_train)
    model, log = checkpoint.load(d)
    entry = json.loads((d / "manifest.json").read_text())["checkpoints"][-1]
    cfg = model.config.replace(dtype="float32")
    digest, _ = checkpoint._write_state(d / entry["file"], model.state, log.to_json(), cfg)
    man = json.loads((d / "manifest.json").read_text())
    man["checkpoints"][-1]["sha256"] = digest
    (d / "manifest.json").write_text(json.dumps(man))
    assert digest == hashlib.sha256((d / entry["file"]).read_bytes()).hexdigest()
    with pytest.raises(ModelError, match="do not match its settings"):
        checkpoint.load(d)


class Crash(Exception):
    pass


def test_crash_mid_run_then_resume_is_bit_identical(tmp_path, sample_train, monkeypatch):
    """A run that dies after its 3rd checkpoint resumes from there to the same model."""
    api.train([sample_train, sample_train], tmp_path / "ref", overrides={"checkpoint_every": 1000})
    real_save = checkpoint.save
    calls = []

    def dying_save(*a, **k):
        name = real_save(*a, **k)
        calls.append(name)
        if len(calls) == 9:  # in the second file
            raise Crash
        return name

    monkeypatch.setattr(checkpoint, "save", dying_save)
    with pytest.raises(Crash):
        api.train([sample_train, sample_train], tmp_path / "crash", overrides={"checkpoint_every": 1000})
    monkeypatch.setattr(checkpoint, "save", real_save)
    _, meta = checkpoint.load(tmp_path / "crash", resume=True)
    assert not meta.finished and meta.run.file == 1
    api.train([sample_train, sample_train], tmp_path / "crash", resume=True)
    assert_same_state(tmp_path / "crash", tmp_path / "ref")


def test_resume_unfinished_with_other_inputs_is_an_error(tmp_path, sample_train, sample_test, monkeypatch):
    from ftrl_cli.errors import ConfigError

    real_save = checkpoint.save

    def dying_save(*a, **k):
        real_save(*a, **k)
        raise Crash

    monkeypatch.setattr(checkpoint, "save", dying_save)
    with pytest.raises(Crash):
        api.train([sample_train], tmp_path / "m", overrides={"checkpoint_every": 1000})
    monkeypatch.setattr(checkpoint, "save", real_save)
    with pytest.raises(ConfigError, match="unfinished run on"):
        api.train([sample_test], tmp_path / "m", resume=True)


def test_resume_without_checkpoint_starts_fresh(tmp_path, sample_train):
    logs = []

    class R(api.Reporter):
        def log(self, m):
            logs.append(m)

    api.train([sample_train], tmp_path / "m", resume=True, reporter=R())
    assert any("starting from the beginning" in m for m in logs)
    api.train([sample_train], tmp_path / "ref")
    assert_same_state(tmp_path / "m", tmp_path / "ref")


def test_model_state_round_trip(tmp_path):
    m = Model(Config(bits=10, dtype="float32"))
    m.reserve(700)
    m.st[:, 0] = np.arange(m.size, dtype=np.float32)
    os.makedirs(tmp_path / "d")
    checkpoint.write_config(tmp_path / "d", m.config)
    checkpoint.save(tmp_path / "d", m, TrainingLog(examples_seen=0, finished=True))
    back, meta = checkpoint.load(tmp_path / "d")
    assert back.st.dtype == np.float32 and np.array_equal(back.st, m.st)
    assert meta == TrainingLog(examples_seen=0, finished=True)
