"""Atomic file writes: a temp file beside the target, fsync, os.replace, fsync the folder.
A crash at any moment leaves either the old file or the new one, never a mix."""

import contextlib
import os
import tempfile


def _read_umask() -> int:
    mask = os.umask(0)  # (the only way to read it; done once, at import)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


@contextlib.contextmanager
def atomic_writer(path, mode="wb"):
    """Write to a temp file beside `path`; fsync and rename it over `path` on success.
    The file gets the permissions a plain open() would give: the replaced file's, or
    0666 less the umask (mkstemp alone would leave it 0600)."""
    path = os.fspath(path)
    d = os.path.dirname(path) or "."
    try:
        perm = os.stat(path).st_mode & 0o7777
    except OSError:
        perm = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, mode) as f:
            os.fchmod(f.fileno(), perm)
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
