"""Opening an input as bytes: a path or '-' (stdin), decompressed by its magic bytes
(gzip, bzip2, xz, zstd), with resume by byte offset.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import sys
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


class InputStream:
    """A binary stream over a path, decompressing by magic bytes. Use as a context manager."""

    def __init__(self, path: str):
        self.path = path
        self.name = display_name(path)
        self._raw = None
        if path == "-":
            self._raw = sys.stdin.buffer
            head = self._raw.peek(8)[:8] if hasattr(self._raw, "peek") else b""
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
        self.size = os.fstat(self._raw.fileno()).st_size if path != "-" else 0
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
        if self.kind == "text" and self.path != "-":
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
