"""Kill -9 and Ctrl-C at several points of a real `ftrl train` process; resume must give a
model bit-identical to an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import SAMPLE_TRAIN, assert_same_state

from ftrl_cli import api, checkpoint

EVERY = 4000


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash")
    path = d / "big.svm"
    data = SAMPLE_TRAIN.read_bytes()
    with open(path, "wb") as f:
        for _ in range(20):  # 130k rows: long enough to be interrupted
            f.write(data)
    ref = d / "ref"
    api.train([str(path)], ref, overrides={"checkpoint_every": EVERY})
    return path, ref


def start(path, model_dir):
    return subprocess.Popen([sys.executable, "-m", "ftrl_cli", "train", str(path), "-m", str(model_dir),
                             "--checkpoint-every", str(EVERY), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_checkpoints(model_dir, proc, k, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            m = json.loads((model_dir / "manifest.json").read_text())
            # (a run's own checkpoints are pending until it finishes: docs/model-format.md)
            seqs = [e["seq"] for e in m["checkpoints"] + (m.get("pending") or {}).get("checkpoints", [])]
            if seqs and max(seqs) >= k:
                return True
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.002)
    return False


@pytest.mark.parametrize("k", [1, 6, 25])
def test_sigkill_then_resume_is_bit_identical(big_file, tmp_path, k):
    path, ref = big_file
    d = tmp_path / "m"
    proc = start(path, d)
    reached = wait_for_checkpoints(d, proc, k)
    proc.kill()
    proc.wait()
    if not reached:
        pytest.skip("the run finished before it could be killed")
    _, meta = checkpoint.load(d, resume=True)
    r = subprocess.run([sys.executable, "-m", "ftrl_cli", "train", str(path), "-m", str(d), "--resume", "-q"],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    assert_same_state(d, ref)
    assert meta.examples_seen >= k * EVERY or meta.finished


def test_sigint_writes_a_checkpoint_and_exits_130(big_file, tmp_path):
    path, ref = big_file
    d = tmp_path / "m"
    proc = start(path, d)
    if not wait_for_checkpoints(d, proc, 3):
        proc.kill()
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == 130, err
    assert b"interrupted: checkpoint written" in err and b"Traceback" not in err
    _, meta = checkpoint.load(d, resume=True)
    assert not meta.finished
    api.train([str(path)], d, resume=True)
    assert_same_state(d, ref)


def test_sigterm_exits_143(big_file, tmp_path):
    path, _ = big_file
    d = tmp_path / "m"
    proc = start(path, d)
    if not wait_for_checkpoints(d, proc, 2):
        proc.kill()
        pytest.skip("the run finished before it could be interrupted")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode in (143, 0)
    assert os.path.exists(d / "manifest.json")
