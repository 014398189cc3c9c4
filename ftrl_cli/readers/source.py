"""What an input is and how to open it: paths and globs, compression and format
detection (magic bytes, extension, a look at the first lines), and `open_batches`, the
one entry point that turns any input train reads into `Batch`es with a model's settings.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import lzma
import os
import re
import sys
import zlib

from ..config import Config
from ..errors import ConfigError, DataError
from .arrow import _is_list, _open_parquet, _pa
from .batch import BATCH_ROWS, prefetch
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


FORMATS = ("parquet", "csv", "tsv", "libsvm")


_EXT = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv", ".tab": "tsv",
    ".svm": "libsvm", ".libsvm": "libsvm", ".svmlight": "libsvm",
}


_COMPRESSED_EXT = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd")


_LIBSVM_LINE = re.compile(
    rb"^[ \t]*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:[ \t]+(?:qid:\d+|\d+:\S+))*[ \t]*(?:#.*)?\r?$")


# ---------------------------------------------------------------------------------------
# format detection
# ---------------------------------------------------------------------------------------

def detect_format(path: str) -> str:
    """'parquet', 'csv', 'tsv' or 'libsvm', from magic bytes, extension, then content.

    `PAR1` at the start is Parquet. Otherwise the extension (after a .gz/.bz2/.xz/.zst
    suffix) decides: .parquet/.pq, .csv, .tsv/.tab, .svm/.libsvm/.svmlight. For .txt and
    anything else the first data line is looked at (decompressed if need be): a libsvm
    line (`label id:value ...`) is libsvm, else a tab makes it TSV, a comma CSV.
    """
    if path == "-":
        return "libsvm"
    with open_data(path) as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    name = os.path.basename(path).lower()
    for suffix in _COMPRESSED_EXT:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    ext = os.path.splitext(name)[1]
    if ext in _EXT:
        return _EXT[ext]
    return _sniff(path)


def _sniff(path: str) -> str:
    with InputStream(path) as src:
        buf = bytearray(1 << 16)
        got = src.readinto(memoryview(buf))
    for line in bytes(buf[:got]).split(b"\n")[:-1] or [bytes(buf[:got])]:
        s = line.strip()
        if not s or s.startswith(b"#"):
            continue
        if _LIBSVM_LINE.match(line):
            return "libsvm"
        if b"\t" in line:
            return "tsv"
        if b"," in line:
            return "csv"
        return "libsvm"
    return "libsvm"


def parquet_layout(path: str, indices: str = "indices") -> str:
    """'sparse' when the Parquet file has a list column named `indices`, else 'wide'."""
    pa = _pa()
    schema = _open_parquet(path).schema_arrow
    i = schema.get_field_index(indices)
    if i >= 0 and _is_list(pa, schema.field(i).type):
        return "sparse"
    return "wide"


def input_ids(inputs):
    out = []
    for path in inputs:
        size = None if path == "-" else (os.path.getsize(path) if os.path.isfile(path) else None)
        out.append({"path": path, "size": size})
    return out


def check_inputs(inputs, passes):
    if not inputs:
        raise ConfigError("no input files given")
    if "-" in inputs and (passes > 1 or len(inputs) > 1):
        raise ConfigError("stdin ('-') can be read once only: use it alone with --passes 1, "
                          "or give a file")
    for path in inputs:  # fail before any training on a missing later file
        _check_path(path)


def _check_path(path):
    if path != "-":
        open_data(path).close()


def expand_inputs(inputs) -> list:
    """Paths as given; a pattern with * ? [ that is not itself a file expands (sorted)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for path in inputs:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"inputs are file paths (or '-'), not {type(path).__name__}; for a matrix "
                            "in memory use ftrl_cli.sklearn.FTRLClassifier")
        path = os.fspath(path)
        if path != "-" and any(ch in path for ch in "*?[") and not os.path.exists(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise DataError(f"{path}: no file matches this pattern")
            out.extend(matches)
        else:
            out.append(path)
    return out


def input_format(path, config: Config) -> str:
    """libsvm, parquet-sparse, parquet-wide, csv or tsv for this input."""
    fmt = config.format
    if fmt == "auto":
        if path == "-":
            return "libsvm"
        _check_path(path)
        fmt = detect_format(path)
    if fmt == "parquet":
        return "parquet-" + parquet_layout(path, config.indices_column)
    return fmt


def open_batches(path, config: Config, *, start_offset=0, start_line=0, batch_rows=BATCH_ROWS,
                 on_bad=None, with_ids=False, names=None, shuffle_seed=None):
    """Batches from one input in any format train reads, with the model's column and
    hashing settings. Resume positions: bytes/lines for text, rows for tables.
    shuffle_seed: a Parquet file's row groups are read in an order seeded by it."""
    from . import libsvm, parquet_sparse, wide  # (they import this module)

    fmt = input_format(path, config)
    if fmt == "libsvm":
        # (skipped lines are counted as they are read: read ahead only when none can be)
        ahead = _read_ahead() and on_bad is None
        it = libsvm.iter_libsvm(path, start_offset=start_offset, start_line=start_line, batch_rows=batch_rows,
                                 on_bad=on_bad, with_comments=with_ids, row_multiple=config.batch_size, fresh=ahead)
        return prefetch(it, copy=False) if ahead else it
    if fmt == "parquet-sparse":
        it = parquet_sparse.iter_parquet_sparse(
            path, label=config.label_column, indices=config.indices_column, values=config.values_column,
            weight=config.weight_column, id_column=config.id_column, batch_rows=batch_rows,
            start_row=start_offset, shuffle_seed=shuffle_seed)
        return prefetch(it, copy=False) if _read_ahead() else it  # (its batches own their arrays)
    return wide.iter_tabular(
        path, fmt="parquet" if fmt == "parquet-wide" else fmt, label=config.label_column,
        categorical=config.categorical, numeric=config.numeric, ignore=config.ignore or (),
        interactions=[tuple(i) for i in config.interactions or ()], numeric_as=config.numeric_as,
        header=config.header, columns=config.columns, bits=config.bits, batch_rows=batch_rows,
        names=names, weight=config.weight_column, id_column=config.id_column, start_row=start_offset,
        shuffle_seed=shuffle_seed if fmt == "parquet-wide" else None)


def _read_ahead() -> bool:
    """Parse the next batch in a thread while this one trains, when there is a second CPU
    (FTRL_READ_AHEAD=0 turns it off)."""
    if os.environ.get("FTRL_READ_AHEAD", "1") == "0":
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except AttributeError:
        return (os.cpu_count() or 1) >= 2
