"""What format an input is: magic bytes, then the extension, then a look at the first
lines (libsvm, CSV, TSV, Parquet), and whether a Parquet file is sparse or wide.
"""

from __future__ import annotations

import os
import re

from .arrow import _is_list, _open_parquet, _pa
from .errors import open_data
from .stream import InputStream

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
