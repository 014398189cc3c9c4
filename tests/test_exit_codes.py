"""A user's (or the environment's) mistake is never exit 70 "internal error".

Every case runs the real command in a subprocess and checks the exit code of README's
"Exit codes" table (1 bad input data or I/O error, disk full included; 2 bad usage or
settings; 3 missing/damaged/incompatible model directory) and that stderr is exactly one
line `ftrl: error: ...` naming what is wrong, with no traceback and no "Exception ignored"
noise from the interpreter's exit.

Read-only and full file systems are made in a private mount namespace (`unshare -m`, a
tmpfs or a read-only bind mount that vanishes with the process): the tests run as root,
whom chmod does not stop. Without that privilege those cases are skipped.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import DATA, SAMPLE_TRAIN

A9A = DATA / "a9a_head2000.svm"
TIMEOUT = 180


def ftrl(*args, stdin=None, stdout=subprocess.PIPE, wrap=(), cwd=None):
    env = {k: v for k, v in os.environ.items() if k != "FTRL_DEBUG"}
    cmd = [*wrap, sys.executable, "-m", "ftrl_cli", *map(str, args)]
    return subprocess.run(cmd, stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=stdout,
                          stderr=subprocess.PIPE, timeout=TIMEOUT, env=env, cwd=cwd)


def assert_one_line_error(r, code, *words):
    err = r.stderr.decode("utf-8", "replace")
    lines = err.splitlines()
    assert r.returncode == code, err
    assert len(lines) == 1 and lines[0].startswith("ftrl: error: "), err
    for bad in ("Traceback", "Exception ignored", "internal error"):
        assert bad not in err, err
    for w in words:
        assert w in lines[0], (w, err)
    return lines[0]


@pytest.fixture(scope="module")
def f(tmp_path_factory):
    """The files the cases need, made once: a trained model and bad settings files."""
    d = tmp_path_factory.mktemp("exit_codes")
    model = d / "model"
    r = ftrl("train", SAMPLE_TRAIN, "-m", model, "-q")
    assert r.returncode == 0, r.stderr
    w = {}

    def write(name, content):
        p = d / name
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        w[name.replace(".", "_")] = p
        return p

    write("keras.json", json.dumps({"learning_rate": 0.1}))
    write("binary.json", bytes(range(128, 256)) * 4)
    write("deep.json", "[" * 100_000 + "]" * 100_000)  # RecursionError in the json module
    write("deep_value.json", '{"alpha": ' + "[" * 100_000 + "]" * 100_000 + "}")
    write("nested900.json", '{"categorical": ' + "[" * 900 + "]" * 900 + "}")  # parses, too deep
    write("bigint.json", '{"bits": ' + "9" * 5000 + "}")  # ValueError: int-string limit
    write("bigint_keras.json", '{"learning_rate": ' + "9" * 5000 + "}")
    write("hugeint_keras.json", '{"learning_rate": ' + "9" * 400 + "}")  # OverflowError in float()
    write("bad_value.json", json.dumps({"alpha": -1}))
    write("schedule_list.json", json.dumps({"learning_rate": {"class_name": "ExponentialDecay",
                                                              "config": [1, 2]}}))
    write("empty.svm", b"")
    (d / "a_directory").mkdir()
    return SimpleNamespace(dir=d, model=model, a_directory=d / "a_directory", **w)


# ---------------------------------------------------------------------------------------
# usage and settings: exit 2
# ---------------------------------------------------------------------------------------

USAGE = {
    "resume_with_config": (lambda f: ["train", A9A, "-m", f.dir / "r1", "--resume", "--config",
                                      f.model / "config.json"], ["--resume", "--config"]),
    "keras_and_mxnet_optimizers": (lambda f: ["train", A9A, "-m", f.dir / "r2", "--keras-optimizer", f.keras_json,
                                              "--mxnet-optimizer", f.keras_json], ["at most one"]),
    "mxnet_and_novograd_optimizers": (lambda f: ["train", A9A, "-m", f.dir / "r2", "--mxnet-optimizer",
                                                 f.keras_json, "--novograd-optimizer", f.keras_json],
                                      ["at most one"]),
    "negative_seed_with_shuffle": (lambda f: ["train", A9A, "-m", f.dir / "r3", "--seed", "-1", "--shuffle"],
                                   ["--seed", ">= 0"]),
    "batch_size_2_62": (lambda f: ["train", A9A, "-m", f.dir / "r4", "--batch-size", 2**62], ["--batch-size"]),
    "batch_size_1e11": (lambda f: ["train", A9A, "-m", f.dir / "r4", "--batch-size", 10**11], ["--batch-size"]),
    "batch_size_beyond_int64": (lambda f: ["train", A9A, "-m", f.dir / "r4", "--batch-size", 10**23],
                                ["--batch-size"]),
    "holdout_every_beyond_int64": (lambda f: ["train", A9A, "-m", f.dir / "r4", "--holdout-every", 10**23],
                                   ["holdout_every"]),
    "ema_overwrite_frequency_beyond_int64": (
        lambda f: ["train", A9A, "-m", f.dir / "r4", "--ema-momentum", "0.9", "--ema-overwrite-frequency",
                   10**23], ["ema_overwrite_frequency"]),
    "gradient_accumulation_beyond_int64": (
        lambda f: ["train", A9A, "-m", f.dir / "r4", "--update", "dense", "--gradient-accumulation-steps",
                   10**23], ["gradient_accumulation_steps"]),
    "convert_into_a_directory": (lambda f: ["convert", SAMPLE_TRAIN, f.a_directory], ["a_directory",
                                                                                       "is a directory"]),
    "binary_keras_optimizer": (lambda f: ["train", A9A, "-m", f.dir / "r5", "--keras-optimizer", f.binary_json],
                               ["binary.json", "UTF-8"]),
    "binary_mxnet_optimizer": (lambda f: ["train", A9A, "-m", f.dir / "r5", "--mxnet-optimizer", f.binary_json],
                               ["binary.json"]),
    "binary_novograd_optimizer": (lambda f: ["train", A9A, "-m", f.dir / "r5", "--novograd-optimizer",
                                             f.binary_json], ["binary.json"]),
    "binary_config": (lambda f: ["train", A9A, "-m", f.dir / "r5", "--config", f.binary_json], ["binary.json"]),
    "binary_lr_schedule": (lambda f: ["train", A9A, "-m", f.dir / "r5", "--batch-size", "2", "--lr-schedule",
                                      f.binary_json], ["binary.json", "--lr-schedule"]),
    "deep_config": (lambda f: ["train", A9A, "-m", f.dir / "r6", "--config", f.deep_json], ["deep.json"]),
    "deep_config_value": (lambda f: ["train", A9A, "-m", f.dir / "r6", "--config", f.deep_value_json],
                          ["deep_value.json"]),
    "nested_900_config": (lambda f: ["train", A9A, "-m", f.dir / "r6", "--config", f.nested900_json],
                          ["nested900.json"]),
    "deep_keras_optimizer": (lambda f: ["train", A9A, "-m", f.dir / "r6", "--keras-optimizer", f.deep_json],
                             ["deep.json"]),
    "deep_lr_schedule": (lambda f: ["train", A9A, "-m", f.dir / "r6", "--batch-size", "2", "--lr-schedule",
                                    f.deep_json], ["deep.json"]),
    "5000_digit_int_config": (lambda f: ["train", A9A, "-m", f.dir / "r7", "--config", f.bigint_json],
                              ["bigint.json", "digits"]),
    "5000_digit_int_keras": (lambda f: ["train", A9A, "-m", f.dir / "r7", "--keras-optimizer",
                                        f.bigint_keras_json], ["bigint_keras.json", "digits"]),
    "400_digit_int_keras": (lambda f: ["train", A9A, "-m", f.dir / "r7", "--keras-optimizer",
                                       f.hugeint_keras_json], ["hugeint_keras.json", "learning_rate"]),
    "keras_schedule_config_not_an_object": (lambda f: ["train", A9A, "-m", f.dir / "r7", "--keras-optimizer",
                                                       f.schedule_list_json], ["schedule"]),
    "bad_value_in_config_names_the_file": (lambda f: ["train", A9A, "-m", f.dir / "r8", "--config",
                                                      f.bad_value_json], ["bad_value.json", "alpha"]),
}


@pytest.mark.parametrize("case", list(USAGE))
def test_usage_and_settings_exit_2(f, case):
    args, words = USAGE[case]
    assert_one_line_error(ftrl(*args(f)), 2, *words)


def test_stdin_cannot_be_training_data_and_validation(f):
    with open(A9A, "rb") as stdin:
        r = ftrl("train", "-", "-m", f.dir / "v1", "--validation", "-", stdin=stdin)
    assert_one_line_error(r, 2, "stdin", "--validation")
    assert not (f.dir / "v1").exists()  # refused before training


def test_stdin_validation_read_twice(f):
    with open(A9A, "rb") as stdin:
        r = ftrl("train", A9A, "-m", f.dir / "v2", "--validation", "-", "--passes", "2", stdin=stdin)
    assert_one_line_error(r, 2, "--validation", "once")


# ---------------------------------------------------------------------------------------
# input data and I/O: exit 1
# ---------------------------------------------------------------------------------------

def test_empty_validation_file(f):
    r = ftrl("train", A9A, "-m", f.dir / "v3", "--validation", f.empty_svm)
    assert_one_line_error(r, 1, "empty.svm", "empty")
    assert not (f.dir / "v3").exists()  # refused before training


@pytest.mark.parametrize("cmd", ["eval", "inspect"])
def test_plot_into_a_missing_directory(f, cmd):
    data = [SAMPLE_TRAIN] if cmd == "eval" else []
    r = ftrl(cmd, "-m", f.model, *data, "--plot", "/missing/dir/x.png")
    assert_one_line_error(r, 1, "/missing/dir/x.png", "does not exist")


def test_convert_into_a_missing_directory(f):
    out = f.dir / "no" / "such" / "x.parquet"
    assert_one_line_error(ftrl("convert", SAMPLE_TRAIN, out), 1, str(out), "does not exist")


def test_convert_replaces_an_existing_file(f):
    out = f.dir / "existing.parquet"
    out.write_bytes(b"old")
    r = ftrl("convert", SAMPLE_TRAIN, out, "-q")
    assert r.returncode == 0 and r.stderr == b""
    assert out.read_bytes()[:4] == b"PAR1"


FULL = Path("/dev/full")


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full on this system")
@pytest.mark.parametrize("cmd", ["predict", "eval", "export", "inspect-json", "train-json"])
def test_stdout_on_a_full_disk(f, cmd):
    args = {"predict": ["predict", "-m", f.model, SAMPLE_TRAIN],
            "eval": ["eval", "-m", f.model, SAMPLE_TRAIN],
            "export": ["export", "-m", f.model],
            "inspect-json": ["inspect", "-m", f.model, "--json"],
            "train-json": ["train", SAMPLE_TRAIN, "-m", f.dir / "full", "-q", "--json", "--force"]}[cmd]
    with open(FULL, "wb") as out:
        r = ftrl(*args, stdout=out)
    assert_one_line_error(r, 1, "write error", "no space left")


# ---------------------------------------------------------------------------------------
# read-only and full file systems, in a private mount namespace
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mount_ns(tmp_path_factory):
    """A function (setup shell commands) -> a command prefix that runs the command in a
    private mount namespace after them; skips when namespaces cannot be made here."""
    probe = tmp_path_factory.mktemp("probe")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to make a read-only file system (chmod does not stop root)")
    r = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro,size=64k tmpfs {probe}"],
                       capture_output=True, timeout=60)
    if r.returncode != 0:
        pytest.skip("cannot make a private mount namespace (unshare -m needs CAP_SYS_ADMIN): "
                    + r.stderr.decode(errors="replace").strip())

    def wrap(setup: str):
        return ["unshare", "-m", "sh", "-c", f'{setup} && exec "$@"', "sh"]

    return wrap


def _tmpfs(path, opts):
    return f"mount -t tmpfs -o {opts} tmpfs {shlex.quote(str(path))}"


def test_convert_onto_a_read_only_file_system(f, mount_ns):
    mnt = f.dir / "ro_convert"
    mnt.mkdir()
    r = ftrl("convert", SAMPLE_TRAIN, mnt / "x.parquet", wrap=mount_ns(_tmpfs(mnt, "ro,size=64k")))
    assert_one_line_error(r, 1, f"{mnt / 'x.parquet'}:", "read-only file system")


def test_convert_onto_a_full_file_system(f, mount_ns):
    mnt = f.dir / "full_convert"
    mnt.mkdir()
    r = ftrl("convert", A9A, mnt / "x.parquet", "--compression", "none", wrap=mount_ns(_tmpfs(mnt, "size=16k")))
    assert_one_line_error(r, 1, f"{mnt / 'x.parquet'}:", "no space left")


def test_plot_onto_a_read_only_file_system(f, mount_ns):
    mnt = f.dir / "ro_plot"
    mnt.mkdir()
    r = ftrl("eval", "-m", f.model, SAMPLE_TRAIN, "--plot", mnt / "x.png", wrap=mount_ns(_tmpfs(mnt, "ro,size=64k")))
    assert_one_line_error(r, 1, str(mnt / "x.png"), "Read-only file system")


def test_force_on_a_read_only_model_directory(f, mount_ns):
    m = f.dir / "ro_model"
    shutil.copytree(f.model, m)
    q = shlex.quote(str(m))
    r = ftrl("train", A9A, "-m", m, "--force", wrap=mount_ns(f"mount --bind {q} {q} && mount -o remount,ro,bind {q}"))
    line = assert_one_line_error(r, r.returncode if r.returncode in (1, 3) else 1, str(m))
    assert "read-only" in line.lower()
    # the model is intact
    assert ftrl("inspect", "-m", m).returncode == 0
