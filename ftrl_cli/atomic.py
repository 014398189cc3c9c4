"""Atomic file writes: a temp file beside the target, fsync, os.replace, fsync the folder.
A crash at any moment leaves either the old file or the new one, never a mix.

Only regular files (and new paths) are replaced that way. A symlink stays a link: its final
target is what gets replaced. A device, FIFO or socket (`-o /dev/null`, `-o /dev/stdout`
onto a pipe or a terminal, a named pipe) is written straight through: it cannot be
"replaced", and replacing it with a regular file would destroy it.
"""

import contextlib
import os
import re
import stat
import tempfile


def _read_umask() -> int:
    mask = os.umask(0)  # (the only way to read it; done once, at import)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


# /proc/self/fd, /proc/thread-self/fd, /proc/PID/fd, /proc/PID/task/TID/fd (and /dev/fd,
# /dev/stdout, ... which lead there): "links" to another open file description
_PROC_FD = re.compile(r"/proc/(?:self|thread-self|\d+)(?:/task/\d+)?/fd")


def _via_open_fd(path: str) -> bool:
    """Whether path (or a link on its way) is an entry of /proc/PID/fd: an already open
    file, such as /dev/stdout, which is no path to replace, whatever it is open on."""
    p = os.path.abspath(path)
    for _ in range(40):  # (the kernel's own limit on links followed)
        parent = os.path.realpath(os.path.dirname(p))
        if _PROC_FD.fullmatch(parent):
            return True
        p = os.path.join(parent, os.path.basename(p))
        if not os.path.islink(p):
            return False
        try:
            p = os.path.join(parent, os.readlink(p))  # (an absolute target replaces parent)
        except OSError:
            return False
    return False


def _where(path: str):
    """("atomic", file to replace) or ("through", flags to open path with)."""
    try:
        os.lstat(path)
    except (OSError, ValueError):
        return "atomic", path  # a new file (or an error atomic writing reports as before)
    if _via_open_fd(path):  # add to what is already there: `{ ...; ftrl export -o /dev/stdout; } >> log`
        return "through", os.O_WRONLY | os.O_APPEND
    try:
        st = os.stat(path)
    except OSError:  # a dangling link: create its target
        return "atomic", os.path.realpath(path)
    if stat.S_ISREG(st.st_mode):
        return "atomic", os.path.realpath(path) if os.path.islink(path) else path
    return "through", os.O_WRONLY  # a device, FIFO, socket (or a directory: open says so)


URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")  # scheme://: an fsspec URL, not a local path


def local_output(path, what: str = "an output is written to a local path") -> None:
    """Outputs are local files: an atomic write renames a temp file beside its target, which
    object stores do not offer. A URL given as an output is refused (it would otherwise be
    written to a local directory named like `s3:`)."""
    if isinstance(path, str) and URL.match(path):
        from .errors import ConfigError

        raise ConfigError(f"{path}: {what}, not a URL (inputs may be URLs); write it locally, then copy "
                          "it (e.g. `aws s3 cp`, `gsutil cp`)")


@contextlib.contextmanager
def atomic_writer(path, mode="wb", *, follow_links: bool = True):
    """Write to a temp file beside `path`; fsync and rename it over `path` on success.
    The file gets the permissions a plain open() would give: the replaced file's, or
    0666 less the umask (mkstemp alone would leave it 0600).

    A symlink is followed: its final target is replaced that way and the link stays.
    A path that exists and is not a regular file (character or block device, FIFO,
    socket) is opened for writing and written straight through, without a temp file; so is
    an already open file named through /proc/PID/fd (/dev/stdout, /dev/fd/N), which is
    appended to, as the shell's `>>` would.

    follow_links=False (the files of a model directory, which are ftrl's own): whatever is
    at `path` (a link, a FIFO, a device) is itself replaced by the new regular file; nothing
    is followed or written through."""
    local_output(os.fspath(path))
    if follow_links:
        how, target = _where(os.fspath(path))
        if how == "through":
            with _straight_through(os.fspath(path), target, mode) as f:
                yield f
            return
        path = target
    path = os.fspath(path)
    d = os.path.dirname(path) or "."
    try:
        st = os.stat(path) if follow_links else os.lstat(path)
        perm = st.st_mode & 0o7777 if stat.S_ISREG(st.st_mode) else 0o666 & ~_UMASK
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


@contextlib.contextmanager
def _straight_through(path: str, flags: int, mode: str):
    """path opened for writing as it is (no temp file, no rename): nothing to undo on error."""
    fd = os.open(path, flags)
    with os.fdopen(fd, mode) as f:
        yield f
        f.flush()
        with contextlib.suppress(OSError):  # (pipes and terminals cannot be fsynced)
            os.fsync(f.fileno())
