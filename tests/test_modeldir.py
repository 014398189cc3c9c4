"""The model directory is a safe place (docs/model-format.md): a model is replaced only by a
complete one, settings belong to their checkpoint, one run at a time, foreign directories and
manifests are refused, leftovers are cleaned, damaged models are errors, nothing outside the
directory is touched."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import state_arrays

from ftrl_cli import api, checkpoint, engine
from ftrl_cli.errors import ConfigError, DataError, ModelError

HERE = Path(__file__).resolve().parent
TRAIN = str(HERE.parent / "sample_data" / "agaricus.txt.train")
TEST = str(HERE.parent / "sample_data" / "agaricus.txt.test")
A9A = str(HERE / "data" / "a9a_head2000.svm")


def ftrl(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "ftrl_cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(r, code):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("ftrl: error:") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def snapshot(d):
    """Every file of the directory and its bytes."""
    return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir()) if p.name != ".lock"}


def predictions(d, data=TEST):
    import io

    out = io.BytesIO()
    api.predict(d, [data], out)
    return out.getvalue()


def bad_late(tmp_path, good_rows=1000):
    """A9A's rows with a bad line after `good_rows` of them."""
    lines = Path(A9A).read_text().splitlines()
    p = tmp_path / "bad_late.svm"
    p.write_text("\n".join(lines[:good_rows] + ["1 3:abc"] + lines[good_rows:]) + "\n")
    return p


# ---- 1, 2, 9: the manifest is the commit point; settings live with their checkpoint ----

@pytest.mark.parametrize("how", ["bad data", "missing validation"])
def test_force_keeps_the_old_model_until_the_new_one_is_complete(tmp_path, how):
    d = tmp_path / "m"
    api.train([A9A], d)
    before, preds = snapshot(d), predictions(d, A9A)
    args = ({"inputs": [str(bad_late(tmp_path))]} if how == "bad data"
            else {"inputs": [A9A], "overrides": {"validation": str(tmp_path / "missing.svm")}})
    with pytest.raises(DataError):
        api.train(args["inputs"], d, overrides=args.get("overrides"), force=True)
    assert snapshot(d) == before or {k: v for k, v in snapshot(d).items() if k != "manifest.json"} == {
        k: v for k, v in before.items() if k != "manifest.json"}
    assert (d / "config.json").read_bytes() == before["config.json"]  # a Makefile's target
    assert predictions(d, A9A) == preds


def test_force_replaces_once_finished(tmp_path):
    d = tmp_path / "m"
    api.train([A9A], d, overrides={"checkpoint_every": 500})
    old = predictions(d, A9A)
    api.train([TRAIN], d, force=True, overrides={"checkpoint_every": 2000, "alpha": 0.3})
    man = json.loads((d / "manifest.json").read_text())
    assert len(man["checkpoints"]) == 1 and "pending" not in man
    assert sorted(p.name for p in d.glob("ckpt-*.npz")) == [man["checkpoints"][0]["file"]]
    assert checkpoint.read_config(d).alpha == 0.3 and predictions(d, A9A) != old


def test_resume_with_new_settings_that_fails_changes_nothing(tmp_path):
    d = tmp_path / "m"
    api.train([A9A], d)
    before, preds = snapshot(d), predictions(d)
    with pytest.raises(DataError, match=":1001:"):
        api.train([str(bad_late(tmp_path))], d, resume=True, overrides={"l1": 50.0, "alpha": 2.0})
    assert (d / "config.json").read_bytes() == before["config.json"]
    assert predictions(d) == preds
    model, _ = checkpoint.load(d)
    assert model.config.l1 == 1.0 and model.config.alpha == 0.1  # its own settings


def test_config_json_is_not_what_predict_trusts(tmp_path):
    """Each checkpoint carries its settings: a stale or edited config.json cannot make the
    served model predict with other ones."""
    d = tmp_path / "m"
    api.train([A9A], d)
    preds = predictions(d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["l1"], cfg["alpha"] = 50.0, 2.0
    (d / "config.json").write_text(json.dumps(cfg))
    assert predictions(d) == preds


def test_killed_before_its_first_checkpoint_resumes_with_its_settings(tmp_path, monkeypatch):
    class Crash(Exception):
        pass

    real = engine.Trainer.run

    def dying(self, sources):
        raise Crash

    monkeypatch.setattr(engine.Trainer, "run", dying)
    with pytest.raises(Crash):
        api.train([A9A], tmp_path / "m", overrides={"passes": 3, "alpha": 0.3})
    monkeypatch.setattr(engine.Trainer, "run", real)
    s = api.train([A9A], tmp_path / "m", resume=True)
    assert s["passes"] == 3 and checkpoint.read_config(tmp_path / "m").alpha == 0.3
    api.train([A9A], tmp_path / "ref", overrides={"passes": 3, "alpha": 0.3})
    a, _ = state_arrays(tmp_path / "m")
    b, _ = state_arrays(tmp_path / "ref")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_an_unfinished_run_is_not_served_until_it_finishes(tmp_path, monkeypatch):
    class Crash(Exception):
        pass

    real = checkpoint.save
    calls = []

    def dying(*a, **k):
        calls.append(real(*a, **k))
        if len(calls) == 2:
            raise Crash

    d = tmp_path / "m"
    api.train([TRAIN], d)
    preds = predictions(d)
    monkeypatch.setattr(checkpoint, "save", dying)
    with pytest.raises(Crash):
        api.train([A9A], d, resume=True, overrides={"checkpoint_every": 500})
    monkeypatch.setattr(checkpoint, "save", real)
    assert predictions(d) == preds  # still the finished model
    info = api.inspect(d)
    assert info["pending"]["checkpoints"] and info["finished"]
    api.train([A9A], d, resume=True)  # finishes the run in progress
    api.train([TRAIN], tmp_path / "ref")
    api.train([A9A], tmp_path / "ref", resume=True, overrides={"checkpoint_every": 500})
    a, _ = state_arrays(d)
    b, _ = state_arrays(tmp_path / "ref")
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ---- 3: one run at a time -----------------------------------------------------------------

def test_a_second_run_on_a_locked_directory_fails_at_once_naming_the_holder(tmp_path):
    d = tmp_path / "m"
    api.train([TRAIN], d)
    with checkpoint.DirLock(d):
        r = ftrl("train", TRAIN, "-m", d, "--resume", "-q")
        line = one_line_error(r, 3)
        assert "in use by pid" in line and str(os.getpid()) in line
        with pytest.raises(ModelError, match="in use"):
            api.train([TEST], d, resume=True)
    api.train([TEST], d, resume=True)  # released with its holder


def test_the_kernel_releases_the_lock_of_a_killed_holder(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys, time
from ftrl_cli import checkpoint
with checkpoint.DirLock({str(d)!r}):
    print("held", flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(ModelError, match="in use"):
        api.train([TRAIN], d)
    holder.kill()
    holder.wait()
    api.train([TRAIN], d)


# ---- 4: directories ftrl did not make -------------------------------------------------------

@pytest.mark.parametrize("force", [False, True])
def test_a_foreign_directory_is_refused_and_left_alone(tmp_path, force):
    d = tmp_path / "theirs"
    d.mkdir()
    (d / "config.json").write_text('{"learning_rate": 3}')
    (d / "names.tsv").write_text("their names\n")
    before = snapshot(d)
    with pytest.raises(ModelError, match="not an ftrl model directory"):
        api.train([TRAIN], d, force=force)
    assert snapshot(d) == before
    (d / "manifest.json").write_text('{"format": "their-tool"}')
    before = snapshot(d)
    with pytest.raises(ModelError, match="not an ftrl model"):
        api.train([TRAIN], d, force=force)
    assert snapshot(d) == before


# ---- 5: leftovers of killed runs ----------------------------------------------------------

def test_the_next_run_cleans_what_killed_runs_left(tmp_path):
    d = tmp_path / "m"
    api.train([TRAIN], d)
    junk = [".ckpt-000005.npz.ab12cd.tmp", ".manifest.json.x9.tmp", "ckpt-000004.npz"]
    for n in junk:
        (d / n).write_bytes(b"partial")
    (d / "notes.txt").write_text("mine")  # not ftrl's: kept
    api.train([TEST], d, resume=True)
    names = {p.name for p in d.iterdir()}
    assert not names & set(junk) and "notes.txt" in names


# ---- 7: damaged models are errors in every command ----------------------------------------

def test_a_damaged_newest_checkpoint_is_exit_3_everywhere_unless_last_good(tmp_path):
    d = tmp_path / "m"
    api.train([TRAIN], d)
    good = predictions(d)
    api.train([TEST], d, resume=True)
    newest = sorted(d.glob("ckpt-*.npz"))[-1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit
    newest.write_bytes(bytes(data))
    for args in (["predict", "-m", d, TEST], ["eval", "-m", d, TEST], ["export", "-m", d],
                 ["inspect", "-m", d], ["train", TEST, "-m", d, "--resume"]):
        line = one_line_error(ftrl(*args, "-q") if args[0] in ("predict", "eval", "train") else ftrl(*args), 3)
        assert "checksum mismatch" in line and "--last-good" in line
    r = ftrl("predict", "-m", d, TEST, "--last-good")
    assert r.returncode == 0 and r.stdout.encode() == good
    assert "ckpt-000001.npz" in r.stderr and "newest good" in r.stderr


# ---- 8: --resume of a finished run ----------------------------------------------------------

def test_resume_of_a_finished_run_on_its_inputs_changes_nothing(tmp_path):
    d = tmp_path / "m"
    api.train([A9A], d, overrides={"passes": 2})
    before = snapshot(d)
    s = api.train([A9A], d, resume=True)
    assert s["up_to_date"] and s["examples"] == 0
    assert snapshot(d) == before
    r = ftrl("train", A9A, "-m", d, "--resume")
    assert r.returncode == 0 and r.stdout == "" and r.stderr.count("nothing to do") == 1, r.stderr
    assert snapshot(d) == before
    s = api.train([TRAIN], d, resume=True)  # new data: training goes on
    assert s["examples"] == 2 * 6513 and not s["up_to_date"]


def test_an_input_changed_in_place_with_the_same_size_is_noticed(tmp_path, monkeypatch):
    src = tmp_path / "a.svm"
    src.write_bytes(Path(A9A).read_bytes())
    d = tmp_path / "m"
    api.train([str(src)], d)
    data = bytearray(src.read_bytes())
    i = data.index(b"1:1")  # same length, other content
    data[i:i + 3] = b"2:1"
    src.write_bytes(bytes(data))
    s = api.train([str(src)], d, resume=True)
    assert not s["up_to_date"] and s["examples"] == 2000

    class Crash(Exception):
        pass

    real, calls = checkpoint.save, []

    def dying(*a, **k):
        calls.append(real(*a, **k))
        raise Crash

    monkeypatch.setattr(checkpoint, "save", dying)
    with pytest.raises(Crash):
        api.train([str(src)], tmp_path / "k", overrides={"checkpoint_every": 500})
    monkeypatch.setattr(checkpoint, "save", real)
    data[i:i + 3] = b"1:1"
    src.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="same size, other content"):
        api.train([str(src)], tmp_path / "k", resume=True)


# ---- 11: a state that is not finite is an error -------------------------------------------

@pytest.mark.parametrize("value,dtype", [("1e200", "float64"), ("1e20", "float32")])
def test_divergence_stops_and_keeps_the_last_good_model(tmp_path, value, dtype):
    d = tmp_path / "m"
    api.train([TRAIN], d, overrides={"dtype": dtype})
    before, preds = snapshot(d), predictions(d)
    bad = tmp_path / "huge.svm"
    bad.write_text("".join(f"{i % 2} 1:{value} 2:1\n" for i in range(50)))
    with pytest.raises(DataError, match="diverged"):
        api.train([str(bad)], d, resume=True)
    assert predictions(d) == preds and (d / "config.json").read_bytes() == before["config.json"]
    r = ftrl("train", bad, "-m", tmp_path / "n", "--dtype", dtype, "-q")
    assert "diverged" in one_line_error(r, 1)
    assert not checkpoint.has_checkpoint(tmp_path / "n")


# ---- 12: the manifest is not trusted with paths -----------------------------------------

@pytest.mark.parametrize("target", ["../victim.txt", "/dev/zero", "ckpt-000001.npz/../../victim.txt"])
def test_manifest_entries_outside_the_directory_are_refused(tmp_path, target):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    d = tmp_path / "m"
    api.train([TRAIN], d)
    man = json.loads((d / "manifest.json").read_text())
    man["checkpoints"].insert(0, {"seq": 0, "file": target, "sha256": "0" * 64})
    (d / "manifest.json").write_text(json.dumps(man))
    for args in (["predict", "-m", d, TEST], ["inspect", "-m", d], ["train", TEST, "-m", d, "--resume"]):
        r = ftrl(*args, timeout=60)
        assert "not a checkpoint entry" in one_line_error(r, 3)
    assert victim.read_text() == "precious"


def test_a_checkpoint_that_is_a_link_or_a_device_is_refused(tmp_path):
    d = tmp_path / "m"
    api.train([TRAIN], d)
    entry = json.loads((d / "manifest.json").read_text())["checkpoints"][-1]
    (tmp_path / "elsewhere.npz").write_bytes((d / entry["file"]).read_bytes())
    (d / entry["file"]).unlink()
    os.symlink(tmp_path / "elsewhere.npz", d / entry["file"])
    with pytest.raises(ModelError, match="not a regular file"):
        checkpoint.load(d)
    (d / entry["file"]).unlink()
    os.symlink("/dev/zero", d / entry["file"])
    r = ftrl("predict", "-m", d, TEST, timeout=60)
    assert "not a regular file" in one_line_error(r, 3)


# ---- directories written before format 2 ---------------------------------------------------

def copy_v1(tmp_path, name):
    import shutil

    d = tmp_path / name
    shutil.copytree(HERE / "data" / "model_v1" / name, d)
    return d


def test_a_format_1_model_still_serves_and_resumes(tmp_path):
    """tests/data/model_v1 was written by ftrl at 2ed4d91 (format 1, settings in config.json)."""
    d = copy_v1(tmp_path, "finished")
    api.train([TRAIN], tmp_path / "now", overrides={"passes": 2})
    assert predictions(d) == predictions(tmp_path / "now")
    assert api.inspect(d)["passes_done"] == 2
    api.train([TEST], d, resume=True)
    api.train([TEST], tmp_path / "now", resume=True)
    a, _ = state_arrays(d)
    b, _ = state_arrays(tmp_path / "now")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert json.loads((d / "manifest.json").read_text())["format_version"] == checkpoint.MANIFEST_VERSION


def test_a_killed_format_1_run_resumes_to_the_uninterrupted_model(tmp_path, monkeypatch):
    d = copy_v1(tmp_path, "killed")
    monkeypatch.chdir(HERE.parent)  # (it recorded its input as sample_data/agaricus.txt.train)
    api.train(["sample_data/agaricus.txt.train"], d, resume=True)
    settings = {"checkpoint_every": 2000, "batch_size": 8, "ema_momentum": 0.9}
    api.train([TRAIN], tmp_path / "ref", overrides=settings)
    a, _ = state_arrays(d)
    b, _ = state_arrays(tmp_path / "ref")
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ---- 10: what --resume does not reproduce, exactly ----------------------------------------

@pytest.mark.parametrize("ema", [None, 0.9])
def test_resume_is_exact_except_after_an_ema_finalize(tmp_path, ema):
    """Documented in the README: at the end of a run with --ema-momentum and no
    --ema-overwrite-frequency the EMA replaces the weights (Keras's finalize), so A then
    --resume B continues from the averaged weights and differs from A+B in one run; every
    other setting resumes bit for bit."""
    settings = {"batch_size": 8, "ema_momentum": ema}
    api.train([TRAIN], tmp_path / "ab", overrides=settings)
    api.train([TEST], tmp_path / "ab", resume=True)
    api.train([TRAIN, TEST], tmp_path / "one", overrides=settings)
    a, _ = state_arrays(tmp_path / "ab")
    b, _ = state_arrays(tmp_path / "one")
    same = all(np.array_equal(a[k], b[k]) for k in a)
    assert same == (ema is None)


# ---------------------------------------------------------------------------------------
# ftrl's own files are read and written as regular files in the directory, nothing else
# (found by tests/test_modeldir_fuzz.py)
# ---------------------------------------------------------------------------------------

@pytest.fixture
def trained(tmp_path):
    m = tmp_path / "m"
    api.train([TRAIN], m, overrides={"bits": 12})
    return m


@pytest.mark.parametrize("name", ["manifest.json", "config.json"])
def test_a_symlinked_own_file_is_refused_and_its_target_untouched(trained, tmp_path, name):
    outside = tmp_path / "outside.json"
    outside.write_bytes((trained / name).read_bytes())
    before = outside.read_bytes(), outside.stat().st_mtime_ns
    (trained / name).unlink()
    (trained / name).symlink_to(outside)
    if name == "manifest.json":  # the commit record must be ftrl's own: refused by every command
        err = one_line_error(ftrl("predict", "-m", trained, TEST, "-q"), 3)
        assert "symbolic link" in err
        one_line_error(ftrl("train", TRAIN, "-m", trained, "--resume", "--passes", "2", "-q"), 3)
    else:  # config.json is written, not read, once checkpoints carry their settings: replaced
        r = ftrl("train", TRAIN, "-m", trained, "--resume", "--passes", "2", "-q")
        assert r.returncode == 0, r.stderr
        assert not (trained / name).is_symlink()
        assert json.loads((trained / name).read_text())["passes"] == 2
    assert (outside.read_bytes(), outside.stat().st_mtime_ns) == before


def test_a_link_planted_at_the_next_checkpoint_name_is_replaced_not_written_through(trained, tmp_path):
    outside = tmp_path / "victim.bin"
    outside.write_bytes(b"precious")
    nxt = 1 + max(int(p.name[5:11]) for p in trained.glob("ckpt-*.npz"))
    (trained / f"ckpt-{nxt:06d}.npz").symlink_to(outside)
    model, log = checkpoint.load(trained)
    log.finished = True
    checkpoint.save(trained, model, log)
    assert outside.read_bytes() == b"precious"
    assert not (trained / f"ckpt-{nxt:06d}.npz").is_symlink()
    assert checkpoint.load(trained)[0].state == model.state


def test_config_json_linked_to_dev_zero_is_refused_not_read_forever(tmp_path):
    # a format-1 model (no settings in its checkpoint): config.json is the settings read
    import shutil
    d = tmp_path / "v1"
    shutil.copytree(HERE / "data" / "model_v1" / "finished", d)
    (d / "config.json").unlink()
    (d / "config.json").symlink_to("/dev/zero")
    with pytest.raises(ModelError, match="symbolic link"):
        checkpoint.read_own(d, "config.json")
    assert "symbolic link" in one_line_error(ftrl("export", "-m", d, timeout=60), 3)


@pytest.mark.parametrize("name", ["manifest.json", "config.json", ".lock"])
def test_a_fifo_in_place_of_an_own_file_is_an_error_not_a_hang(trained, name):
    (trained / name).unlink(missing_ok=True)
    os.mkfifo(trained / name)
    r = ftrl("train", TRAIN, "-m", trained, "--resume", "--passes", "2", "-q", timeout=60)
    if name == "config.json":  # not read (the checkpoint has the settings): replaced at the commit
        assert r.returncode == 0, r.stderr
        assert (trained / name).is_file()
    else:
        assert "not a regular file" in one_line_error(r, 3)


def test_a_checkpoint_with_a_bad_crc_is_damaged_exit_3(trained):
    m = json.loads((trained / "manifest.json").read_text())
    entry = m["checkpoints"][-1]
    p = trained / entry["file"]
    raw = bytearray(p.read_bytes())
    i = raw.index(b"rows.npy") + 200  # inside the table's stored bytes
    raw[i] ^= 0xFF
    p.write_bytes(bytes(raw))
    import hashlib
    entry["sha256"] = hashlib.sha256(bytes(raw)).hexdigest()  # forged: get past the checksum
    (trained / "manifest.json").write_text(json.dumps(m))
    for cmd in (["predict", "-m", trained, TEST], ["export", "-m", trained], ["inspect", "-m", trained]):
        one_line_error(ftrl(*cmd, "-q"), 3)


@pytest.mark.parametrize("field, value", [("examples_seen", "x"), ("run.offset", 2**70),
                                          ("run.loss_sum", "x"), ("run.file", 99), ("passes_done", -1)])
def test_a_training_record_of_the_wrong_type_is_damage_naming_the_file(trained, field, value):
    model, log = checkpoint.load(trained)
    meta = log.to_json()
    obj, key = (meta["run"], field[4:]) if field.startswith("run.") else (meta, field)
    obj[key] = value
    with pytest.raises(ModelError, match=r"ckpt-\d+\.npz.*training record"):
        checkpoint._training_log(meta, str(trained / "ckpt-000001.npz"))


def test_iterations_of_the_wrong_dtype_is_damage(trained, tmp_path):
    import hashlib
    m = json.loads((trained / "manifest.json").read_text())
    entry = m["checkpoints"][-1]
    p = trained / entry["file"]
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["iterations"] = np.array([1.5])
    np.savez(p, **arrays)
    entry["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (trained / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError, match="state arrays do not match"):
        checkpoint.load(trained)


@pytest.mark.parametrize("key, value", [("columns", [1, None]), ("ignore", ["a", 3]),
                                        ("interactions", [["a", 1]]), ("class_weight", [1, "x"])])
def test_list_settings_check_their_elements(key, value):
    from ftrl_cli.config import Config
    with pytest.raises(ConfigError, match=f"every element of {key}"):
        Config.from_dict({key: value})


def test_checkpoints_without_a_manifest_are_not_deleted(trained):
    ckpts = sorted(p.name for p in trained.glob("ckpt-*.npz"))
    (trained / "manifest.json").unlink()
    err = one_line_error(ftrl("train", TRAIN, "-m", trained, "--resume", "-q"), 3)
    assert "no manifest.json" in err
    assert sorted(p.name for p in trained.glob("ckpt-*.npz")) == ckpts
    r = ftrl("train", TRAIN, "-m", trained, "--force", "-q")  # starting over is explicit
    assert r.returncode == 0, r.stderr
