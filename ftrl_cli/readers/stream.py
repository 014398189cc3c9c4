"""Opening an input as bytes: a path or '-' (stdin), decompressed by its magic bytes
(gzip, bzip2, xz, zstd), with resume by byte offset. Compressed streams may be concatenated
(`cat a.gz b.gz`); bytes after the last one that are not another stream are an error, in
every format (xz may end with zero padding, as its format allows).

A FIFO (named pipe) is a stream like stdin: it is opened once only. Whoever looks at it
first (format detection: `peek_fifo`) opens it and keeps the stream, looked-at bytes
included, for the InputStream that reads it; that one owns it and closes it.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
import stat
import sys
import threading
import zlib

from ..errors import DataError
from . import location
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


def _magic_known(head: bytes) -> bool:
    """Whether head (the first bytes of an input, all of them at its end) tells whether it
    starts with one of _MAGIC: it does, or no magic begins with it."""
    return any(head.startswith(m) for m, _ in _MAGIC) or not any(m.startswith(head) for m, _ in _MAGIC)


def _peek_magic(src: _Lookahead) -> bytes:
    """The first bytes of a stream, as many as decide its magic (a pipe may hand them over one
    at a time: a gzip stream whose first read returns one byte is still gzip)."""
    n = 1
    head = src.peek(n)
    while len(head) == n and not _magic_known(head):
        n += 1
        head = src.peek(n)
    return head


class _NotClosing(io.RawIOBase):
    """stdin's binary stream, read through _Lookahead, never closed by ftrl. read() (what
    peeking uses) returns what has arrived; readinto() fills the buffer, as stdin's own
    buffered reader does (fewer, larger chunks to parse)."""

    def __init__(self, raw):
        self._raw = raw

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._raw.fileno()

    def read(self, n: int = -1) -> bytes:
        return self._raw.read1(n) if hasattr(self._raw, "read1") else self._raw.read(n)

    def readinto(self, b) -> int:
        return self._raw.readinto(b)

    def close(self) -> None:
        super().close()  # (not the stream it reads)


class _Streams(io.RawIOBase):
    """bzip2 or xz data decompressed: one stream, or several one after another (`cat a.bz2
    b.bz2`, as the tools write them). Unlike bz2.BZ2File and lzma.LZMAFile, which stop
    quietly at bytes that do not start another stream, such trailing bytes are an error here,
    as gzip and zstd make them; xz's stream padding (zero bytes) is allowed."""

    _READ = 1 << 16

    def __init__(self, raw, kind: str):
        self._raw = raw
        self._kind = kind
        self._d = self._new()
        self._done = False

    def _new(self):
        return bz2.BZ2Decompressor() if self._kind == "bzip2" else lzma.LZMADecompressor()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        out = memoryview(b).cast("B")
        while not self._done and len(out):
            d = self._d
            if d.eof:
                rest = d.unused_data or self._raw.read(self._READ)
                if self._kind == "xz":  # stream padding: zero bytes between or after streams
                    while rest and not rest.strip(b"\0"):
                        rest = self._raw.read(self._READ)
                    rest = rest.lstrip(b"\0")
                if not rest:
                    self._done = True
                    break
                self._d = self._new()
                try:
                    data = self._d.decompress(rest, len(out))
                except (OSError, lzma.LZMAError):
                    raise OSError("trailing garbage after the end of the compressed stream") from None
            elif d.needs_input:
                block = self._raw.read(self._READ)
                if not block:
                    raise EOFError("compressed data ends before its end-of-stream marker")
                data = d.decompress(block, len(out))
            else:
                data = d.decompress(b"", len(out))
            if data:
                out[: len(data)] = data
                return len(data)
        return 0


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
        if self.once:
            self._raw = _Lookahead(_NotClosing(sys.stdin.buffer), "<stdin>") if path == "-" else _take_fifo(path)
            try:
                head = _peek_magic(self._raw)
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
        self.size = (location.size(path) or 0) if not self.once else 0
        if self.kind == "gzip":
            self.f = gzip.GzipFile(fileobj=self._raw, mode="rb")
        elif self.kind in ("bzip2", "xz"):
            self.f = _Streams(self._raw, self.kind)
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
        f = getattr(self, "f", None)
        if f is not None and f is not self._raw:
            with contextlib.suppress(Exception):  # (the decompressor; zstd's holds a pyarrow stream)
                f.close()
        if self._raw is not None:
            self._raw.close()  # (stdin's _Lookahead leaves stdin open)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
