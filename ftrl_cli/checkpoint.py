"""The model directory on disk: this module reads and writes every file in it
(docs/model-format.md is the spec). Nothing is ever half-written, nothing outside it is
touched, and a model is replaced only by a complete one.

    model/
      manifest.json       the commit point: the finished models' checkpoints (sha256), and
                          the run in progress ("pending": its settings and checkpoints)
      ckpt-000007.npz     a State, the TrainingLog and the settings it was trained with
      config.json         the settings of the newest finished model (a Makefile's target:
                          it changes only when a run has finished and been committed)
      best.npz            the best model so far of a run under early stopping
      names.tsv           slot -> column=value names of a model trained on wide tables
      .lock               held (flock) by the one run writing the directory

Every file goes to a temp file beside its target, is fsynced, then os.replace()d. A
checkpoint exists only once the manifest names it. Loading verifies the checksum, the
shapes and dtypes, and the format version, and never unpickles (allow_pickle=False).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import sys
import time
import zipfile
import zlib

import numpy as np

from .atomic import atomic_writer, local_output
from .config import Config
from .errors import ConfigError, DataError, ModelError
from .model import Model, State, fresh_row, layout, table_of_rows
from .records import TrainingLog

MANIFEST = "manifest.json"
CONFIG = "config.json"
BEST = "best.npz"
NAMES = "names.tsv"
TUNE = "tune.json"  # `ftrl tune`: every setting's results (the model is the best one)
LOCK = ".lock"
MODEL_FORMAT = "ftrl-model"
# 3: checkpoints hold the used slots only (slots, rows, size); 2: dense st, settings in each
# checkpoint, a run in progress is "pending"; 1: every checkpoint in "checkpoints" (ftrl 0.1)
MANIFEST_VERSION = 3
_CKPT = re.compile(r"ckpt-(\d{6,})\.npz\Z")
_OWN_FILES = (MANIFEST, CONFIG, BEST, NAMES, LOCK, TUNE)
_TMP = re.compile(r"\.(ckpt-\d{6,}\.npz|manifest\.json|config\.json|best\.npz|names\.tsv|tune\.json)\.\w+\.tmp\Z")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_error(path, e: OSError) -> Exception:
    """A failed write: the disk's fault (full, quota, I/O: exit 1) or the directory's (3)."""
    kind = DataError if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO) else ModelError
    return kind(f"{path}: write failed ({e.strerror or e}); the previous file is intact")


def write_bytes(path, data: bytes) -> None:
    """Write one of the model directory's own files: atomically, and whatever stands at its
    name (a symlink, a FIFO) is replaced, never followed or written through."""
    try:
        with atomic_writer(path, follow_links=False) as f:
            f.write(data)
    except OSError as e:
        raise _write_error(path, e) from None


MAX_OWN_BYTES = 1 << 24  # manifest.json and config.json: a few kB in practice


def read_own(model_dir, name, limit: int | None = MAX_OWN_BYTES) -> bytes | None:
    """The bytes of one of ftrl's own files in model_dir, None when there is none. Only a
    regular file is read: a symlink is not followed (O_NOFOLLOW: a link could lead outside
    the directory, or to /dev/zero), a FIFO or device is refused without waiting on it
    (O_NONBLOCK), and at most `limit` bytes are read."""
    path = os.path.join(model_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ModelError(f"{path}: is a symbolic link; ftrl reads only its own regular files in a "
                             "model directory (remove the link)") from None
        raise ModelError(f"{path}: cannot read ({e.strerror or e})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ModelError(f"{path}: not a regular file (ftrl wrote a file there); remove it")
        try:
            data = f.read() if limit is None else f.read(limit + 1)
        except OSError as e:
            raise ModelError(f"{path}: cannot read ({e.strerror or e})") from None
    if limit is not None and len(data) > limit:
        raise ModelError(f"{path}: larger than {limit:,} bytes; not a file ftrl wrote")
    return data


# ---------------------------------------------------------------------------------------
# the manifest
# ---------------------------------------------------------------------------------------

def _empty_manifest() -> dict:
    return {"format": MODEL_FORMAT, "format_version": MANIFEST_VERSION, "checkpoints": []}


def read_manifest(model_dir) -> dict:
    """The manifest, checked: its shape, and that every file it names is one of ftrl's own
    names inside the directory (never a path). A missing manifest is an empty one."""
    path = os.path.join(model_dir, MANIFEST)
    raw = read_own(model_dir, MANIFEST)
    if raw is None:
        return _empty_manifest()
    try:
        m = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise ModelError(f"{path}: unreadable manifest ({str(e)[:200]})") from None
    if not isinstance(m, dict) or m.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path}: not an ftrl model manifest")
    v = m.get("format_version")
    if not isinstance(v, int) or isinstance(v, bool):
        raise ModelError(f"{path}: format_version must be an integer, not {v!r}")
    if v > MANIFEST_VERSION:
        raise ModelError(f"{path}: model format {v} is newer than this ftrl reads ({MANIFEST_VERSION}); "
                         "upgrade ftrl")
    _check_entries(m.get("checkpoints"), path, "checkpoints")
    pending = m.get("pending")
    if pending is not None:
        if not isinstance(pending, dict) or not isinstance(pending.get("config"), dict):
            raise ModelError(f"{path}: 'pending' is not a run record")
        _check_entries(pending.get("checkpoints", []), path, "pending checkpoints")
    best = m.get("best")
    if best is not None and (not isinstance(best, dict) or best.get("file") != BEST):
        raise ModelError(f"{path}: 'best' must name {BEST}")
    tune = m.get("tune")
    if tune is not None and (not isinstance(tune, dict) or tune.get("file") != TUNE):
        raise ModelError(f"{path}: 'tune' must name {TUNE}")
    return m


def _check_entries(entries, path, what) -> None:
    if not isinstance(entries, list):
        raise ModelError(f"{path}: {what} is not a list")
    for e in entries:
        ok = (isinstance(e, dict) and isinstance(e.get("seq"), int) and not isinstance(e.get("seq"), bool)
              and isinstance(e.get("file"), str) and _CKPT.fullmatch(e["file"])
              and isinstance(e.get("sha256"), str))
        if not ok:
            raise ModelError(f"{path}: {what}: {str(e)[:80]} is not a checkpoint entry "
                             "(seq, file ckpt-NNNNNN.npz, sha256)")


def _write_manifest(model_dir, m: dict) -> None:
    from . import __version__

    m.update({"format": MODEL_FORMAT, "format_version": MANIFEST_VERSION, "package_version": __version__})
    write_bytes(os.path.join(model_dir, MANIFEST), (json.dumps(m, indent=2) + "\n").encode())


def _finished_entries(m: dict) -> list:
    """The served models' checkpoints, oldest first (format 1: all of them)."""
    return m["checkpoints"]


def has_checkpoint(model_dir) -> bool:
    """A finished model to serve (or, format 1, any checkpoint)."""
    return bool(read_manifest(model_dir)["checkpoints"])


def has_pending(model_dir) -> bool:
    return read_manifest(model_dir).get("pending") is not None


def pending_config(model_dir) -> Config | None:
    """The settings of the run in progress (killed before it finished), if any."""
    p = read_manifest(model_dir).get("pending")
    if p is None:
        return None
    try:
        return Config.from_dict(p["config"], source=os.path.join(model_dir, MANIFEST))
    except ConfigError as e:
        raise ModelError(str(e)) from None


# ---------------------------------------------------------------------------------------
# whose directory, who writes it
# ---------------------------------------------------------------------------------------

def check_ours(model_dir, force: bool = False) -> None:
    """Refuse a directory ftrl did not make: an existing one must be empty, or hold an
    ftrl manifest, or only ftrl's own file names (a run killed before its first commit).
    force: an ftrl manifest this version cannot read (damaged, newer) is let through, to be
    replaced (reset_unreadable)."""
    try:
        names = os.listdir(model_dir)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise ModelError(f"{model_dir}: not a directory; give -m a directory") from None
    except OSError as e:
        raise ModelError(f"{model_dir}: cannot read the directory ({e.strerror or e})") from None
    if MANIFEST in names:
        try:
            read_manifest(model_dir)  # (raises unless it is ftrl's)
        except ModelError:
            if not (force and _says_ftrl(model_dir)):
                raise
        return
    foreign = sorted(n for n in names if not (n in _OWN_FILES or _CKPT.fullmatch(n) or _TMP.fullmatch(n)))
    if CONFIG in names and not foreign:
        try:
            kind = json.loads(read_own(model_dir, CONFIG)).get("kind")
        except (ModelError, ValueError, TypeError, AttributeError, RecursionError):
            kind = None
        if kind != "ftrl-config":
            foreign = [CONFIG]
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ModelError(f"{model_dir}: not an ftrl model directory (it holds {shown}, which ftrl did not "
                         "write); give -m a new or empty directory")
    orphans = sorted(n for n in names if _CKPT.fullmatch(n))
    if orphans and not force:  # (ftrl writes the manifest before any checkpoint)
        raise ModelError(f"{model_dir}: holds checkpoints ({orphans[-1]}, ...) but no {MANIFEST}, which says "
                         "which are complete; restore it, or give --force to start a new model there")


def _says_ftrl(model_dir) -> bool:
    try:
        return f'"{MODEL_FORMAT}"'.encode() in (read_own(model_dir, MANIFEST) or b"")[: 1 << 16]
    except ModelError:
        return False


def reset_unreadable(model_dir) -> bool:
    """--force over an ftrl manifest this version cannot read: start from an empty one
    (the old checkpoints become leftovers). Call with the lock held; True if it did."""
    try:
        read_manifest(model_dir)
        return False
    except ModelError:
        if not _says_ftrl(model_dir):
            raise
    _write_manifest(model_dir, _empty_manifest())
    return True


class DirLock:
    """An exclusive flock on model_dir/.lock for the one run that writes the directory.
    The kernel releases it when the holder exits or dies; the file records the holder."""

    def __init__(self, model_dir):
        self.path = os.path.join(model_dir, LOCK)
        self.fd = None

    def __enter__(self):
        import fcntl

        try:  # (never through a link; a FIFO is opened without waiting, then refused)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as e:
            why = "is a symbolic link" if e.errno == errno.ELOOP else (e.strerror or str(e))
            raise ModelError(f"{os.path.dirname(self.path)}: cannot write the model directory "
                             f"({LOCK} {why}); remove it or use another -m directory") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ModelError(f"{self.path}: not a regular file (ftrl's lock file); remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.pread(fd, 400, 0).decode("utf-8", "replace").strip() or "another process"
            except OSError:
                holder = "another process"
            os.close(fd)
            raise ModelError(f"{os.path.dirname(self.path)}: in use by {holder}; wait for it to finish "
                             "or use another -m directory") from None
        os.ftruncate(fd, 0)
        cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]
        os.pwrite(fd, f"pid {os.getpid()} ({cmd}) since {_now()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # (releases the lock; the file stays, empty of meaning)
            self.fd = None


@contextlib.contextmanager
def writing(model_dir, *, force: bool = False, warn=None):
    """Claim model_dir for one run that writes it: refuse a directory ftrl did not make,
    create it, hold its lock for the block, replace (with force) a manifest this version
    cannot read, and remove what killed runs left. warn(message) says when a manifest was
    replaced."""
    local_output(os.fspath(model_dir), "a model directory is a local path")
    check_ours(model_dir, force=force)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as e:
        raise ModelError(f"{model_dir}: cannot create model directory ({e.strerror or e})") from None
    with DirLock(model_dir) as lock:
        if force and reset_unreadable(model_dir) and warn is not None:
            warn(f"{model_dir}: its manifest is unreadable or from a newer ftrl; replacing the model")
        clean_leftovers(model_dir)
        yield lock


def clean_leftovers(model_dir) -> list:
    """Remove what killed runs left: temp files of ftrl's own files, and checkpoint files
    the manifest does not name. Call with the lock held. Returns the names removed."""
    m = read_manifest(model_dir)
    named = {e["file"] for e in m["checkpoints"]} | {e["file"] for e in (m.get("pending") or {}).get(
        "checkpoints", [])}
    removed = []
    for n in os.listdir(model_dir):
        if _TMP.fullmatch(n) or (_CKPT.fullmatch(n) and n not in named):
            p = os.path.join(model_dir, n)
            if stat.S_ISREG(os.lstat(p).st_mode):
                with contextlib.suppress(OSError):
                    os.unlink(p)
                    removed.append(n)
    return removed


# ---------------------------------------------------------------------------------------
# config.json
# ---------------------------------------------------------------------------------------

def write_config(model_dir, config: Config) -> None:
    write_bytes(os.path.join(model_dir, CONFIG), config.to_json().encode())


def read_config(model_dir) -> Config:
    """The settings of the model served: those stored in its newest finished checkpoint
    (config.json for checkpoints written before they carried their settings)."""
    m = read_manifest(model_dir) if os.path.isdir(model_dir) else None
    if m and m["checkpoints"]:
        path = _entry_path(model_dir, m["checkpoints"][-1])
        with contextlib.suppress(ModelError, *_NPZ_ERRORS):
            with _open_npz(path) as z:
                if "config" in z.files:
                    return _config_from_bytes(z["config"], path)
    path = os.path.join(model_dir, CONFIG)
    raw = read_own(model_dir, CONFIG)
    if raw is None:
        raise ModelError(f"{model_dir}: not a model directory (no {CONFIG}); train one with "
                         f"`ftrl train DATA -m {model_dir}`")
    try:
        return Config.from_json_bytes(raw, path)
    except ConfigError as e:
        raise ModelError(str(e)) from None


# what reading a damaged .npz can raise (zipfile's BadZipFile for a bad CRC or directory,
# zlib.error for a bad deflate stream)
_NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, RecursionError, zipfile.BadZipFile, zlib.error)


def _open_npz(path):
    """np.load of an .npz archive, never unpickling; anything else (an .npy, garbage) is a
    ValueError."""
    z = np.load(path, allow_pickle=False)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError("not an .npz archive")
    return z


def _config_from_bytes(arr, path) -> Config:
    try:
        return Config.from_dict(json.loads(arr.tobytes().decode()), source=path)
    except (ValueError, ConfigError, RecursionError) as e:
        raise ModelError(f"{path}: the settings stored in the checkpoint are invalid ({e})") from None


# ---------------------------------------------------------------------------------------
# writing: a run's checkpoints are pending until it finishes
# ---------------------------------------------------------------------------------------

def start_run(model_dir, config: Config, *, replaces: bool = False, resume: bool = False) -> None:
    """Record the settings of the run that starts (so a run killed before its first
    checkpoint resumes with them). resume: a pending run continues with its own record;
    replaces: the run will replace the finished model only when it finishes (--force)."""
    m = read_manifest(model_dir)
    pending = m.get("pending")
    if resume and pending is not None:
        pending["config"] = config.to_dict()
    else:
        old = (pending or {}).get("checkpoints", [])
        m["pending"] = {"config": config.to_dict(), "replaces": bool(replaces), "started": _now(),
                        "checkpoints": []}
        m.pop("best", None)
        _write_manifest(model_dir, m)
        for e in old:  # a pending run that is not resumed is abandoned
            _unlink(model_dir, e["file"])
        return
    _write_manifest(model_dir, m)


def save(model_dir, model: Model, log: TrainingLog, names=None) -> str:
    """Write a checkpoint, then the manifest naming it (the commit). An unfinished one joins
    the pending run; a finished one becomes the model served: the manifest lists it, the
    pending run ends, and only then config.json and names.tsv are rewritten."""
    m = read_manifest(model_dir)
    pending = m.get("pending") or {"config": model.config.to_dict(), "replaces": False, "checkpoints": []}
    all_entries = m["checkpoints"] + pending.get("checkpoints", [])
    seq = 1 + max((e["seq"] for e in all_entries), default=0)
    name = f"ckpt-{seq:06d}.npz"
    digest, size = _write_state(os.path.join(model_dir, name), model.state, log.to_json(), model.config)
    entry = {"seq": seq, "file": name, "sha256": digest, "bytes": size, "examples_seen": log.examples_seen,
             "finished": bool(log.finished), "written": _now()}
    keep = model.config.keep_checkpoints
    if not log.finished:
        entries = pending.setdefault("checkpoints", []) + [entry]
        dropped, pending["checkpoints"] = entries[:-keep], entries[-keep:]
        m["pending"] = pending
        _write_manifest(model_dir, m)
    else:
        served = ([] if pending.get("replaces") else m["checkpoints"]) + [entry]
        dropped = [e for e in m["checkpoints"] + pending.get("checkpoints", []) if e not in served[-keep:]]
        m["checkpoints"] = served[-keep:]
        m.pop("pending", None)
        best = m.pop("best", None)
        tune = m.pop("tune", None) if pending.get("replaces") else None  # (a replaced model's sweep)
        _write_manifest(model_dir, m)  # the commit
        write_config(model_dir, model.config)
        if names is not None:
            save_names(model_dir, names)
        elif pending.get("replaces"):
            _unlink(model_dir, NAMES)
        if best is not None:
            _unlink(model_dir, BEST)
        if tune is not None:
            _unlink(model_dir, TUNE)
    for e in dropped:
        _unlink(model_dir, e["file"])
    return name


def _unlink(model_dir, name) -> None:
    """Remove one of ftrl's own files (a regular file, never through a link)."""
    p = os.path.join(model_dir, name)
    with contextlib.suppress(OSError):
        if stat.S_ISREG(os.lstat(p).st_mode):
            os.unlink(p)


def check_finite(model: Model, log: TrainingLog, where: str) -> None:
    """A state that is not finite is an error, before it reaches a checkpoint."""
    st = model.state
    step = 1 << 16  # (in chunks: no table-sized temporary)
    table_finite = all(np.isfinite(st.table[a:a + step]).all() for a in range(0, len(st.table), step))
    if not (table_finite and np.isfinite(st.bias).all() and np.isfinite(st.layer).all()):
        raise DataError(f"training diverged: the model's state is not finite after {log.examples_seen:,} "
                        f"examples ({where}); nothing was saved from this point, the last checkpoint is "
                        "intact; lower --alpha, scale large feature values, or check the data")


class _HashingWriter:
    """A write-only stream that hashes what passes through it, in a second thread: sha256
    releases the GIL, so it runs beside zipfile's crc32 and the file writes. It cannot seek,
    so zipfile (np.savez) streams: the state goes to disk once, without a copy in memory."""

    def __init__(self, f):
        import queue
        import threading

        self.f = f
        self.size = 0
        self._sha = hashlib.sha256()
        self._q = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._hash, name="ftrl-sha256", daemon=True)
        self._thread.start()

    def _hash(self):
        while (b := self._q.get()) is not None:
            self._sha.update(b)

    def write(self, b):
        b = b if isinstance(b, bytes) else bytes(b)  # (a buffer could change once written)
        self._q.put(b)
        self.size += len(b)
        return self.f.write(b)

    def hexdigest(self) -> str:
        """The digest of everything written (ends the hashing thread)."""
        self.close()
        return self._sha.hexdigest()

    def close(self):
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()

    def tell(self):
        return self.size

    def read(self, *args):  # np.savez takes objects with read() for files
        raise OSError("write-only stream")

    def flush(self):
        self.f.flush()


def _write_state(path, state: State, meta: dict, config: Config):
    """Write the state, a JSON meta record and the settings atomically; returns (sha256
    hex, bytes). The table is stored sparse: the slots whose row is not bit for bit the
    fresh row (sorted), their rows, and the table's size, so that a file's size follows
    what was learned, not 2**bits (format 3; docs/model-format.md)."""
    slots = state.used_slots(fresh_row(config, state.table.dtype))
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    w = None
    try:
        with atomic_writer(path, follow_links=False) as f:
            w = _HashingWriter(f)
            np.savez(w, slots=slots, rows=state.table[slots], size=np.array([len(state.table)], np.int64),
                     bst=state.bias, ls=state.layer, alias=state.aliases,
                     iterations=np.array([state.iterations], np.int64), meta=meta_bytes,
                     config=np.frombuffer(config.to_json().encode(), np.uint8))
    except OSError as e:
        raise _write_error(path, e) from None
    finally:
        if w is not None:
            w.close()
    return w.hexdigest(), w.size


def save_best(model_dir, model: Model, best) -> None:
    """Keep a copy of the best model so far (early stopping), checksummed in the manifest."""
    best = best.to_json()
    digest, _ = _write_state(os.path.join(model_dir, BEST), model.state, {"best": best}, model.config)
    m = read_manifest(model_dir)
    m["best"] = {"file": BEST, "sha256": digest, **best}
    _write_manifest(model_dir, m)


def save_tune(model_dir, results: dict) -> None:
    """`ftrl tune`'s results for every setting, beside the best model it committed; listed
    in the manifest with its checksum (a later --force run removes it)."""
    data = (json.dumps(results, indent=2, allow_nan=False) + "\n").encode()
    write_bytes(os.path.join(model_dir, TUNE), data)
    m = read_manifest(model_dir)
    m["tune"] = {"file": TUNE, "sha256": hashlib.sha256(data).hexdigest()}
    _write_manifest(model_dir, m)


def has_best(model_dir) -> bool:
    return "best" in read_manifest(model_dir)


def load_best(model_dir, config: Config) -> Model:
    entry = read_manifest(model_dir)["best"]
    model, _ = _load_entry(model_dir, entry, config)
    return model


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------

def _entry_path(model_dir, entry) -> str:
    """The path of a manifest entry's file: one of ftrl's own names, a regular file inside
    the directory (not a link, a device or a FIFO)."""
    name = entry["file"]
    if not (_CKPT.fullmatch(name) or name == BEST):
        raise ModelError(f"{model_dir}: the manifest names {name!r}, which is not a checkpoint file")
    path = os.path.join(model_dir, name)
    try:
        mode = os.lstat(path).st_mode
    except OSError as e:
        raise ModelError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise ModelError(f"{path}: not a regular file")
    return path


def _load_entry(model_dir, entry, config: Config | None, lean: bool = False):
    """(Model, meta dict) of a manifest entry, checked: sha256, arrays, settings. lean: the
    model is for scoring, not training (model.table_of_rows)."""
    path = _entry_path(model_dir, entry)
    try:
        with open(path, "rb", opener=lambda p, fl: os.open(p, fl | os.O_NOFOLLOW)) as f:
            sha = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 22), b""):
                sha.update(chunk)
    except OSError as e:
        raise ModelError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None
    if sha.hexdigest() != entry.get("sha256"):
        raise ModelError(f"{path}: checksum mismatch (truncated or corrupted checkpoint)")
    try:
        with _open_npz(path) as z:
            sparse = "slots" in z.files  # format 3: the used slots; 1 and 2: the dense table st
            if sparse and "st" in z.files:
                raise ValueError("it holds both a dense table (st) and a sparse one (slots)")
            table_keys = ("slots", "rows", "size") if sparse else ("st",)
            arrays = {k: z[k] for k in table_keys + ("bst", "ls", "alias", "iterations", "meta")}
            stored = z["config"] if "config" in z.files else None
        meta = json.loads(arrays["meta"].tobytes().decode())
    except _NPZ_ERRORS as e:
        raise ModelError(f"{path}: not a valid checkpoint ({str(e)[:200]})") from None
    if stored is not None:
        config = _config_from_bytes(stored, path)
    elif config is None:
        config = read_config(model_dir)
    bst, ls, alias = arrays["bst"], arrays["ls"], arrays["alias"]
    dt = np.dtype(config.dtype)
    k = layout(config)["K"]
    if sparse:
        slots, rows, n = arrays["slots"], arrays["rows"], arrays["size"]
        size = int(n[0]) if n.shape == (1,) and n.dtype == np.int64 else -1
        table_ok = slots.ndim == 1 and slots.dtype == np.int64 and rows.shape == (len(slots), k) and rows.dtype == dt
        shown = f"{len(slots) if slots.ndim == 1 else slots.shape} slots, rows {rows.shape} {rows.dtype}, size {size}"
    else:
        st = arrays["st"]
        size = st.shape[0] if st.ndim == 2 else -1
        table_ok = st.ndim == 2 and st.shape[1] == k and st.dtype == dt
        shown = f"{st.shape} {st.dtype}"
    if (not table_ok or size < 1 or size & (size - 1)
            or size > (1 << config.bits) or bst.shape != (k,) or bst.dtype != dt
            or ls.shape != (4,) or ls.dtype != np.float64 or arrays["iterations"].shape != (1,)
            or arrays["iterations"].dtype != np.int64 or arrays["iterations"][0] < 0
            or alias.ndim != 2 or alias.shape[1] != 2 or alias.dtype != np.int64):
        raise ModelError(f"{path}: state arrays do not match its settings "
                         f"(table {shown}, expected (2**k <= 2**{config.bits}, {k}) {dt})")
    if alias.size and (alias.min() < 0 or alias[:, 0].max() >= size):
        raise ModelError(f"{path}: hashed-id records point outside the table")
    if sparse:  # checked before they are scattered: sorted, unique, inside the table
        if len(slots) and (slots[0] < 0 or slots[-1] >= size or not (slots[1:] > slots[:-1]).all()):
            raise ModelError(f"{path}: the stored slot list is not sorted, unique and inside the table "
                             f"of {size:,} slots")
        st = table_of_rows(config, size, slots, rows, lean=lean)  # (the rows not stored are fresh)
    return Model(config, State(table=st, bias=bst, layer=ls, aliases=alias,
                               iterations=int(arrays["iterations"][0]))), meta


def load(model_dir, config: Config | None = None, *, resume: bool = False, fallback: bool = False,
         warn=None):
    """(Model, TrainingLog) of the newest finished model; with resume, of the newest
    checkpoint of the run in progress when there is one (a killed run continues there).

    Each checkpoint carries its settings; config is used only for older ones that do not.
    Without resume the model is for scoring: a big table with few rows used is mapped so
    that its memory follows those rows (model.table_of_rows); the values are the same.
    A damaged newest checkpoint is an error (exit 3); with fallback, the newest good one
    is used instead and warn() says which.
    """
    if not os.path.isdir(model_dir):
        raise ModelError(f"{model_dir}: no such model directory")
    m = read_manifest(model_dir)
    pending = (m.get("pending") or {}).get("checkpoints", [])
    entries = pending if (resume and pending) else _finished_entries(m)
    if not entries:
        if pending:
            raise ModelError(f"{model_dir}: holds no finished model yet: a run was stopped after "
                             f"{pending[-1].get('examples_seen')} examples; finish it with "
                             f"`ftrl train ... -m {model_dir} --resume`")
        raise ModelError(f"{model_dir}: holds no model yet" + (
            "" if os.path.exists(os.path.join(model_dir, MANIFEST)) else
            f" (no {MANIFEST}); train one with `ftrl train DATA -m {model_dir}`"))
    first_error = None
    for entry in reversed(entries):
        path = os.path.join(model_dir, entry["file"])
        try:
            model, meta = _load_entry(model_dir, entry, config, lean=not resume)
            log = _training_log(meta, path)
        except ModelError as e:
            if not fallback:
                raise ModelError(f"{e}; `--last-good` uses the newest good checkpoint instead") from None
            first_error = first_error or e
            continue
        if first_error and warn:
            warn(f"{first_error}; using the newest good checkpoint, {entry['file']} "
                 f"({entry.get('examples_seen')} examples)")
        return model, log
    raise first_error


def _training_log(meta, path) -> TrainingLog:
    try:
        return TrainingLog.from_json(meta)
    except (TypeError, AttributeError, ValueError, ModelError) as e:
        raise ModelError(f"{path}: not a valid checkpoint (its training record: {e})") from None


# ---------------------------------------------------------------------------------------
# names.tsv
# ---------------------------------------------------------------------------------------

def load_names(model_dir):
    """The slot -> column=value map saved with a wide-table model, or None."""
    from .readers import NameMap

    path = os.path.join(model_dir, NAMES)
    raw = read_own(model_dir, NAMES, limit=None)
    if raw is None:
        return None
    return NameMap.from_bytes(raw, path)


def names_for(model_dir, wide: bool, resume: bool = True):
    """The NameMap a run adds to: the model's own (resume), a new one for wide tables,
    None when every input is libsvm or sparse Parquet (ids are their own names)."""
    if not wide:
        return None
    from .readers import NameMap

    names = load_names(model_dir) if resume else None
    return NameMap() if names is None else names


def save_names(model_dir, names) -> None:
    if names is not None:
        write_bytes(os.path.join(model_dir, NAMES), names.to_bytes())


class ModelDir:
    """A model directory as the Trainer's store: checkpoints, the best model.
    Each method calls this module's function of the same name (tests patch those)."""

    def __init__(self, path, names=None):
        self.path = os.fspath(path)
        self.names = names

    def save(self, model: Model, log: TrainingLog) -> str:
        if not log.finished:
            check_finite(model, log, f"pass {log.passes_done + 1}")
        else:
            check_finite(model, log, "at the end")
        return save(self.path, model, log, self.names)

    def save_best(self, model: Model, best) -> None:
        save_best(self.path, model, best)

    def has_best(self) -> bool:
        return has_best(self.path)

    def load_best(self, config: Config) -> Model:
        return load_best(self.path, config)
