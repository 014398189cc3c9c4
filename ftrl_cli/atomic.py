"""Atomic file writes: a temp file beside the target, fsync, os.replace, fsync the folder.
A crash at any moment leaves either the old file or the new one, never a mix."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_writer(path, mode="wb"):
    """Write to a temp file beside `path`; fsync and rename it over `path` on success."""
    path = os.fspath(path)
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
