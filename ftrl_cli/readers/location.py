"""Where an input lives: a local path, or a URL that fsspec knows (s3://, gs://, hdfs://,
abfs://, http(s)://, memory://, ...). Readers open both the same way; a URL's bytes are
read where the reader runs (a Dask worker reads its own partition), never through the
driver. fsspec is optional: it comes with `ftrl-cli[remote]` (and with `[cluster]`), the
filesystem's own package (s3fs, gcsfs, ...) with the user, and so do its credentials.
"""

from __future__ import annotations

import glob
import io
import os

from ..atomic import URL as _URL  # (one pattern: outputs refuse what inputs open as URLs)
from ..errors import ConfigError, DataError


def is_url(path) -> bool:
    return isinstance(path, str) and _URL.match(path) is not None


def local_path(path):
    """A file:// URL as the local path it names, percent-escapes decoded (file:///tmp/a%20b.svm
    is '/tmp/a b.svm'), so that it is read, compared and fingerprinted as that path (and a
    FIFO stays a FIFO); anything else as given."""
    if isinstance(path, str) and path[:7].lower() == "file://":
        from urllib.parse import unquote

        rest = path[7:]
        if rest[:10].lower() == "localhost/":
            rest = rest[9:]
        return unquote(rest) or path
    return path


def _filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL; a one-line error when fsspec or the
    filesystem's package is missing, or the protocol is unknown."""
    scheme = _URL.match(url).group(1)
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise ConfigError(f"{url}: reading {scheme}:// URLs needs fsspec: pip install 'ftrl-cli[remote]' "
                          "(and the filesystem's package, e.g. s3fs for s3://, gcsfs for gs://)") from None
    try:
        return url_to_fs(url)
    except ImportError as e:  # (fsspec knows the protocol; its package is not installed)
        raise ConfigError(f"{url}: {str(e).splitlines()[0] if str(e) else 'a package is missing'} "
                          f"(fsspec's {scheme}:// filesystem)") from None
    except ValueError as e:
        raise ConfigError(f"{url}: {scheme}:// is not a filesystem fsspec knows ({e})") from None


def _oserror(url: str, e: OSError) -> DataError:
    if isinstance(e, FileNotFoundError):
        return DataError(f"{url}: no such file")
    if isinstance(e, IsADirectoryError):
        return DataError(f"{url}: is a directory, not a data file")
    if isinstance(e, PermissionError):
        return DataError(f"{url}: permission denied")
    return DataError(f"{url}: cannot open ({str(e).splitlines()[0] if str(e) else type(e).__name__})")


def open_url(url: str):
    """A seekable binary file over the URL's bytes."""
    fs, path = _filesystem(url)
    try:
        if fs.isdir(path):
            raise DataError(f"{url}: is a directory, not a data file")
        f = fs.open(path, "rb")
    except OSError as e:
        raise _oserror(url, e) from None
    if isinstance(f, io.BytesIO):  # (memory:// hands out its one stored object: each reader its own position)
        f = io.BytesIO(f.getbuffer())
    return f


def size(path) -> int | None:
    """Bytes of a regular file or an object at a URL; None for stdin, FIFOs, devices and
    what cannot be seen."""
    if path == "-":
        return None
    if is_url(path):
        fs, inner = _filesystem(path)
        try:
            return int(fs.size(inner))
        except (OSError, TypeError, ValueError):
            return None
    try:
        return os.path.getsize(path) if os.path.isfile(path) else None
    except OSError:
        return None


def expand(pattern: str) -> list:
    """The paths or URLs a glob pattern matches, sorted; [] when none does."""
    if not is_url(pattern):
        return sorted(glob.glob(pattern))
    fs, inner = _filesystem(pattern)
    try:
        return sorted(fs.unstrip_protocol(p) for p in fs.glob(inner))
    except OSError as e:
        raise _oserror(pattern, e) from None


def exists(path) -> bool:
    if is_url(path):
        fs, inner = _filesystem(path)
        try:
            return bool(fs.exists(inner))
        except OSError:
            return False
    return os.path.exists(path)
