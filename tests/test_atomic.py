"""atomic_writer (export -o, predict -o, checkpoints): regular files are replaced atomically,
a symlink's target is replaced (the link stays), and what is not a regular file (a FIFO, a
device, an open file under /proc/PID/fd such as /dev/stdout) is written straight through."""

import io
import os
import stat
import subprocess
import sys
import threading

import pytest

from ftrl_cli import api
from ftrl_cli.atomic import atomic_writer


def write(path, data, mode="wb"):
    with atomic_writer(path, mode) as f:
        f.write(data)


class FifoReader:
    """Reads a FIFO to its end in a thread (opening it blocks until a writer comes)."""

    def __init__(self, path):
        self.path = str(path)
        self.data = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        with open(self.path, "rb") as f:
            self.data = f.read()

    def result(self, timeout=20):
        self.thread.join(timeout)
        if self.thread.is_alive():  # (unblock the reader if the FIFO is still there)
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            self.thread.join(1)
        return self.data


def temp_leftovers(d):
    return [n for n in os.listdir(d) if n.endswith(".tmp")]


# ---------------------------------------------------------------------------------------
# regular files: atomic, as always
# ---------------------------------------------------------------------------------------

def test_regular_file_is_replaced_atomically(tmp_path):
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")
    ino = os.stat(target).st_ino
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as f:
            f.write(b"new partial")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.txt"]
    write(target, b"new")
    assert target.read_bytes() == b"new" and os.stat(target).st_ino != ino  # a new file, renamed
    assert os.listdir(tmp_path) == ["f.txt"]
    write(tmp_path / "fresh.txt", "text\n", "w")
    assert (tmp_path / "fresh.txt").read_text() == "text\n"


# ---------------------------------------------------------------------------------------
# symlinks: the final target is replaced, the link stays
# ---------------------------------------------------------------------------------------

def test_symlink_stays_a_link_and_its_target_is_replaced(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "weights.tsv"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.tsv"
    os.symlink("real/weights.tsv", link)  # relative
    chain = tmp_path / "chain.tsv"
    os.symlink(link, chain)  # a link to the link

    write(link, b"v2")
    assert os.path.islink(link) and os.readlink(link) == "real/weights.tsv"
    assert target.read_bytes() == b"v2" and stat.S_ISREG(os.lstat(target).st_mode)
    assert os.stat(target).st_mode & 0o777 == 0o640  # the target's mode is kept

    write(chain, b"v3")
    assert os.path.islink(chain) and os.path.islink(link) and target.read_bytes() == b"v3"

    with pytest.raises(RuntimeError):  # still atomic: a failure leaves the old content
        with atomic_writer(link) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert os.path.islink(link) and target.read_bytes() == b"v3"
    assert temp_leftovers(tmp_path) == [] and temp_leftovers(real_dir) == []


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.txt"
    os.symlink("made.txt", link)
    write(link, b"x")
    assert os.path.islink(link) and (tmp_path / "made.txt").read_bytes() == b"x"


# ---------------------------------------------------------------------------------------
# not regular files: written straight through
# ---------------------------------------------------------------------------------------

def test_fifo_is_written_straight_through(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    data = b"".join(b"%d\t0.5\n" % i for i in range(50_000))  # more than a pipe holds
    write(fifo, data)
    assert reader.result() == data
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["out.fifo"]


def test_symlink_to_a_fifo_is_written_straight_through(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    os.symlink("out.fifo", link)
    reader = FifoReader(fifo)
    write(link, "text\n", "w")
    assert reader.result() == b"text\n"
    assert os.path.islink(link) and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_export_o_fifo(tmp_path, sample_train):
    """`ftrl export -o FIFO` (api.output_stream) streams into the FIFO."""
    api.train([sample_train], tmp_path / "m")
    want = io.BytesIO()
    api.export(tmp_path / "m", want)
    fifo = tmp_path / "w.fifo"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    with api.output_stream(str(fifo)) as out:
        api.export(tmp_path / "m", out)
    assert reader.result() == want.getvalue()
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_character_device(tmp_path):
    """/dev/null stays a character device. (As root the old code replaced it: a private
    device node in tmp_path is tried first, so that a regression cannot touch the real one.)"""
    if os.geteuid() == 0:
        dev = tmp_path / "null"
        try:
            os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except OSError as e:
            pytest.skip(f"cannot make a device node here ({e}); not writing /dev/null as root")
        write(dev, b"discarded")
        assert stat.S_ISCHR(os.lstat(dev).st_mode)
        assert os.listdir(tmp_path) == ["null"]
    write("/dev/null", b"discarded")
    write("/dev/null", "discarded", "w")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_open_file_under_proc_fd_is_written_straight_through(tmp_path):
    """/proc/self/fd/N (where /dev/stdout and /dev/fd/N lead) on a pipe: the bytes go to the
    pipe; on a regular file opened for appending: they are appended, nothing is replaced."""
    r, w = os.pipe()
    try:
        write(f"/proc/self/fd/{w}", b"through the pipe\n")
        os.close(w)
        w = None
        with os.fdopen(r, "rb") as f:
            r = None
            assert f.read() == b"through the pipe\n"
    finally:
        for fd in (r, w):
            if fd is not None:
                os.close(fd)
    log = tmp_path / "log"
    with open(log, "ab") as f:
        f.write(b"header\n")
        f.flush()
        ino = os.fstat(f.fileno()).st_ino
        write(f"/proc/self/fd/{f.fileno()}", b"body\n")
    assert log.read_bytes() == b"header\nbody\n" and os.stat(log).st_ino == ino


def test_dev_stdout_onto_a_pipe():
    """`-o /dev/stdout` prints (run in a child whose stdout is a pipe; the child writes
    /proc/self/fd/1 — where /dev/stdout leads — never the /dev entry itself)."""
    code = ("import sys; from ftrl_cli.atomic import atomic_writer\n"
            "with atomic_writer(sys.argv[1]) as f: f.write(b'printed\\n')\n")
    r = subprocess.run([sys.executable, "-c", code, "/proc/self/fd/1"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"printed\n"
