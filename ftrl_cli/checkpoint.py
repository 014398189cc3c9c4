"""The model directory on disk: this module reads and writes every file in it
(docs/model-format.md is the spec), and nothing is ever half-written.

    model/
      config.json         every resolved setting + format and package versions
      ckpt-000007.npz     a State (table, bias, layer, aliases, iterations) and the
                          TrainingLog as JSON (`meta`)
      best.npz            the best model so far under early stopping
      names.tsv           slot -> column=value names of a model trained on wide tables
      manifest.json       the list of good checkpoints with sha256; written last

Every file goes to a temp file beside its target, is fsynced, then os.replace()d. A
checkpoint exists only once the manifest names it. Loading verifies the checksum, the
shapes and dtypes, and the format version, and never unpickles (allow_pickle=False).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time

import numpy as np

from .atomic import atomic_writer
from .config import FORMAT_VERSION, Config
from .errors import ConfigError, ModelError
from .model import Model, State, layout
from .records import TrainingLog

MANIFEST = "manifest.json"
CONFIG = "config.json"
MODEL_FORMAT = "ftrl-model"


def write_bytes(path, data: bytes) -> None:
    try:
        with atomic_writer(path) as f:
            f.write(data)
    except OSError as e:
        raise ModelError(f"{path}: write failed ({e.strerror or e}); the previous file is intact") from None


def write_config(model_dir, config: Config) -> None:
    write_bytes(os.path.join(model_dir, CONFIG), config.to_json().encode())


def read_config(model_dir) -> Config:
    path = os.path.join(model_dir, CONFIG)
    if not os.path.exists(path):
        raise ModelError(f"{model_dir}: not a model directory (no {CONFIG}); train one with `ftrl train DATA -m {model_dir}`")
    try:
        return Config.from_json_file(path)
    except ConfigError as e:
        raise ModelError(str(e)) from None


def read_manifest(model_dir) -> dict:
    path = os.path.join(model_dir, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            m = json.load(f)
    except FileNotFoundError:
        return {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "checkpoints": []}
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(m, dict) or m.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path}: not an ftrl model manifest")
    if not isinstance(m.get("format_version"), int) or m["format_version"] > FORMAT_VERSION:
        raise ModelError(f"{path}: model format {m.get('format_version')!r} is newer than this ftrl "
                         f"reads ({FORMAT_VERSION}); upgrade ftrl")
    return m


def has_checkpoint(model_dir) -> bool:
    return bool(read_manifest(model_dir)["checkpoints"])


def save(model_dir, model: Model, log: TrainingLog) -> str:
    """Write a new checkpoint, then the manifest naming it; prune beyond keep_checkpoints."""
    from . import __version__

    manifest = read_manifest(model_dir)
    entries = manifest["checkpoints"]
    seq = 1 + max((e["seq"] for e in entries), default=0)
    name = f"ckpt-{seq:06d}.npz"
    digest, size = _write_state(os.path.join(model_dir, name), model.state, log.to_json())
    entries.append({"seq": seq, "file": name, "sha256": digest,
                    "bytes": size, "examples_seen": log.examples_seen,
                    "finished": bool(log.finished),
                    "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    keep = model.config.keep_checkpoints
    dropped, entries = entries[:-keep], entries[-keep:]
    manifest.update({"format": MODEL_FORMAT, "format_version": FORMAT_VERSION,
                     "package_version": __version__, "checkpoints": entries})
    write_bytes(os.path.join(model_dir, MANIFEST),
                (json.dumps(manifest, indent=2) + "\n").encode())
    for e in dropped:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(model_dir, e["file"]))
    return name


BEST = "best.npz"


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


def _write_state(path, state: State, meta: dict):
    """Write the state and a JSON meta record atomically; returns (sha256 hex, bytes)."""
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    w = None
    try:
        with atomic_writer(path) as f:
            w = _HashingWriter(f)
            np.savez(w, st=state.table, bst=state.bias, ls=state.layer,
                     alias=state.aliases, iterations=np.array([state.iterations], np.int64), meta=meta_bytes)
    except OSError as e:
        raise ModelError(f"{path}: write failed ({e.strerror or e}); the previous file is intact") from None
    finally:
        if w is not None:
            w.close()
    return w.hexdigest(), w.size


def save_best(model_dir, model: Model, best) -> None:
    """Keep a copy of the best model so far (early stopping), checksummed in the manifest."""
    best = best.to_json()
    digest, _ = _write_state(os.path.join(model_dir, BEST), model.state, {"best": best})
    manifest = read_manifest(model_dir)
    manifest["best"] = {"file": BEST, "sha256": digest, **best}
    write_bytes(os.path.join(model_dir, MANIFEST), (json.dumps(manifest, indent=2) + "\n").encode())


def has_best(model_dir) -> bool:
    return "best" in read_manifest(model_dir)


def load_best(model_dir, config: Config) -> Model:
    entry = read_manifest(model_dir)["best"]
    model, _ = _load_entry(model_dir, entry, config)
    return model


def _load_entry(model_dir, entry, config: Config):
    path = os.path.join(model_dir, entry["file"])
    try:
        with open(path, "rb") as f:
            sha = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 22), b""):
                sha.update(chunk)
    except OSError as e:
        raise ModelError(f"{path}: cannot read checkpoint ({e.strerror or e})") from None
    if sha.hexdigest() != entry.get("sha256"):
        raise ModelError(f"{path}: checksum mismatch (truncated or corrupted checkpoint)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("st", "bst", "ls", "alias", "iterations", "meta")}
        meta = json.loads(arrays["meta"].tobytes().decode())
    except (KeyError, ValueError, OSError) as e:
        raise ModelError(f"{path}: not a valid checkpoint ({e})") from None
    st, bst, ls, alias = arrays["st"], arrays["bst"], arrays["ls"], arrays["alias"]
    dt = np.dtype(config.dtype)
    k = layout(config)["K"]
    size = st.shape[0] if st.ndim == 2 else -1
    if (st.ndim != 2 or st.shape[1] != k or st.dtype != dt or size < 1 or size & (size - 1)
            or size > (1 << config.bits) or bst.shape != (k,) or bst.dtype != dt
            or ls.shape != (4,) or ls.dtype != np.float64 or arrays["iterations"].shape != (1,)
            or alias.ndim != 2 or alias.shape[1] != 2 or alias.dtype != np.int64):
        raise ModelError(f"{path}: state arrays do not match config.json "
                         f"(table {st.shape} {st.dtype}, expected (2**k <= 2**{config.bits}, {k}) {dt})")
    return Model(config, State(table=st, bias=bst, layer=ls, aliases=alias,
                               iterations=int(arrays["iterations"][0]))), meta


def load(model_dir, config: Config | None = None, *, fallback: bool = True, warn=None):
    """Load the newest good checkpoint: returns (Model, TrainingLog).

    With fallback, a damaged newest checkpoint is reported through warn() and the next
    older good one is used.
    """
    if not os.path.isdir(model_dir):
        raise ModelError(f"{model_dir}: no such model directory")
    config = config or read_config(model_dir)
    entries = read_manifest(model_dir)["checkpoints"]
    if not entries:
        raise ModelError(f"{model_dir}: holds no checkpoint yet")
    last_error = None
    for entry in reversed(entries):
        try:
            model, meta = _load_entry(model_dir, entry, config)
            log = _training_log(meta, os.path.join(model_dir, entry["file"]))
        except ModelError as e:
            if not fallback:
                raise
            last_error = e
            if warn:
                warn(f"{e}; trying an older checkpoint")
            continue
        if last_error and warn:
            warn(f"using checkpoint {entry['file']} ({entry.get('examples_seen')} examples)")
        return model, log
    raise last_error


def _training_log(meta, path) -> TrainingLog:
    try:
        return TrainingLog.from_json(meta)
    except (TypeError, AttributeError) as e:
        raise ModelError(f"{path}: not a valid checkpoint (its training record: {e})") from None


# ---------------------------------------------------------------------------------------
# names.tsv, --force
# ---------------------------------------------------------------------------------------

NAMES = "names.tsv"


def load_names(model_dir):
    """The slot -> column=value map saved with a wide-table model, or None."""
    from .readers import NameMap

    path = os.path.join(model_dir, NAMES)
    return NameMap.load(path) if os.path.exists(path) else None


def names_for(model_dir, wide: bool):
    """The NameMap a run adds to: the model's own (resume), a new one for wide tables,
    None when every input is libsvm or sparse Parquet (ids are their own names)."""
    if not wide:
        return None
    from .readers import NameMap

    names = load_names(model_dir)
    return NameMap() if names is None else names


def save_names(model_dir, names) -> None:
    if names is not None:
        try:
            names.save(os.path.join(model_dir, NAMES))
        except OSError as e:
            raise ModelError(f"{model_dir}: cannot write {NAMES} ({e.strerror or e})") from None


def clear(model_dir) -> None:
    """--force: remove the files of the model in model_dir (and nothing else)."""
    for name in os.listdir(model_dir):
        if name in (MANIFEST, CONFIG, BEST, NAMES) or (name.startswith("ckpt-") and name.endswith(".npz")):
            os.unlink(os.path.join(model_dir, name))


class ModelDir:
    """A model directory as the Trainer's store: checkpoints, the best model, names.
    Each method calls this module's function of the same name (tests patch those)."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def save(self, model: Model, log: TrainingLog) -> str:
        return save(self.path, model, log)

    def save_best(self, model: Model, best) -> None:
        save_best(self.path, model, best)

    def has_best(self) -> bool:
        return has_best(self.path)

    def load_best(self, config: Config) -> Model:
        return load_best(self.path, config)

    def save_names(self, names) -> None:
        save_names(self.path, names)
