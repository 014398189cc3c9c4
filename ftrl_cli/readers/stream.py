"""Opening an input as bytes: a path or '-' (stdin), decompressed by its magic bytes
(gzip, bzip2, xz, zstd), with resume by byte offset.

A FIFO (named pipe) is a stream like stdin: it is opened once only. Whoever looks at it
first (format detection: `peek_fifo`) opens it and keeps the stream, looked-at bytes
included, for the InputStream that reads it; that one owns it and closes it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import sys
import threading
import zlib

from ..errors import DataError
from .errors import open_data

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PAR1", "parquet"),
)


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def is_fifo(path) -> bool:
    """Whether path (not '-') is a FIFO: like stdin, it can be read once only."""
    if path == "-":
        return False
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_once(path) -> bool:
    """'-' or a FIFO: an input that cannot be read twice (nor sought in)."""
    return path == "-" or is_fifo(path)


class _Lookahead(io.RawIOBase):
    """A FIFO's one stream: peek(n) looks at the first n bytes without consuming them
    (reading as often as it takes); reads return the looked-at bytes first."""

    def __init__(self, raw, name: str):
        self._raw = raw
        self._head = bytearray()
        self._pos = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            chunk = self._raw.read(n - len(self._head))
            if not chunk:
                break
            self._head += chunk
        return bytes(self._head[:n])

    def readinto(self, b) -> int:
        if self._head:
            k = min(len(b), len(self._head))
            memoryview(b).cast("B")[:k] = self._head[:k]
            del self._head[:k]
        else:
            k = self._raw.readinto(b)
        self._pos += k
        return k

    def tell(self) -> int:
        return self._pos  # bytes consumed (for progress)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


_held: dict = {}  # (st_dev, st_ino) -> the _Lookahead of a FIFO looked at, not yet read
_held_lock = threading.Lock()


def _fifo_key(path):
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None  # (then opening it says what is wrong)
    return st.st_dev, st.st_ino


def _open_fifo(path: str) -> _Lookahead:
    return _Lookahead(open_data(path).detach(), path)  # (blocks until a writer opens it)


def peek_fifo(path: str, n: int) -> bytes:
    """The first n bytes of FIFO `path` (fewer at its end), not consumed: the FIFO is opened
    on the first call and the stream kept for the InputStream that will read it."""
    key = _fifo_key(path)
    with _held_lock:
        src = _held.get(key)
        if src is None:
            src = _open_fifo(path)
            if key is not None:
                _held[key] = src
    try:
        return src.peek(n)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def release_fifo(path: str) -> None:
    """Close the stream peek_fifo kept for FIFO `path`, if any (an input refused after a
    look at it: its writer then sees a closed pipe instead of waiting forever)."""
    key = _fifo_key(path)
    with _held_lock:
        src = _held.pop(key, None) if key is not None else None
    if src is not None:
        src.close()


def _take_fifo(path: str) -> _Lookahead:
    """The FIFO's stream for its reader: the one peek_fifo opened, else a new one."""
    with _held_lock:
        src = _held.pop(_fifo_key(path), None)
    return src if src is not None else _open_fifo(path)


class InputStream:
    """A binary stream over a path, decompressing by magic bytes. Use as a context manager."""

    def __init__(self, path: str):
        self.path = path
        self.name = display_name(path)
        self._raw = None
        self.once = read_once(path)  # (a stream: read once, never seek)
        if path == "-":
            self._raw = sys.stdin.buffer
            head = self._raw.peek(8)[:8] if hasattr(self._raw, "peek") else b""
        elif self.once:
            self._raw = _take_fifo(path)
            try:
                head = self._raw.peek(8)
            except OSError as e:
                self._raw.close()
                raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
        else:
            self._raw = open_data(path)
            try:
                head = self._raw.read(8)
                self._raw.seek(0)
            except OSError as e:
                self._raw.close()
                raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
        self.kind = "text"
        for magic, kind in _MAGIC:
            if head.startswith(magic):
                self.kind = kind
        if self.kind == "parquet":
            self.close()
            raise DataError(f"{self.name}: this is a Parquet file, not libsvm text")
        self.size = os.fstat(self._raw.fileno()).st_size if not self.once else 0
        if self.kind == "gzip":
            self.f = gzip.GzipFile(fileobj=self._raw, mode="rb")
        elif self.kind == "bzip2":
            self.f = bz2.BZ2File(self._raw, mode="rb")
        elif self.kind == "xz":
            self.f = lzma.LZMAFile(self._raw, mode="rb")
        elif self.kind == "zstd":
            import pyarrow as pa  # zstd without another dependency

            self.f = pa.CompressedInputStream(pa.PythonFile(self._raw, mode="r"), "zstd")
        else:
            self.f = self._raw

    def raw_pos(self) -> int:
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return 0

    def readinto(self, mv) -> int:
        try:
            return self.f.readinto(mv)
        except EOFError:
            raise DataError(f"{self.name}: {self.kind} stream ends early (truncated file?)") from None
        except (OSError, zlib.error, lzma.LZMAError, ValueError) as e:
            if self.kind == "text":
                raise DataError(f"{self.name}: read error ({e})") from None
            raise DataError(f"{self.name}: corrupt {self.kind} data ({e})") from None

    def skip(self, nbytes: int) -> None:
        """Advance nbytes into the decompressed stream (resume)."""
        if nbytes <= 0:
            return
        if self.kind == "text" and not self.once:
            self.f.seek(nbytes)
            return
        scratch = bytearray(1 << 20)
        mv = memoryview(scratch)
        left = nbytes
        while left > 0:
            got = self.readinto(mv[: min(left, len(scratch))])
            if got == 0:
                raise DataError(f"{self.name}: ends before the resume position (byte {nbytes})")
            left -= got

    def close(self):
        if self._raw is not None and self._raw is not sys.stdin.buffer:
            self._raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
