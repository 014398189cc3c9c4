"""What format an input is: magic bytes, then the extension, then a look at the first
lines (libsvm, CSV, TSV, Parquet), and whether a Parquet file is sparse or wide.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import os
import re
import zlib

from .arrow import _is_list, _open_parquet, _pa
from .errors import open_data
from .stream import InputStream, is_fifo, peek_fifo

FORMATS = ("parquet", "csv", "tsv", "libsvm")


_EXT = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv", ".tab": "tsv",
    ".svm": "libsvm", ".libsvm": "libsvm", ".svmlight": "libsvm",
}


_COMPRESSED_EXT = (".gz", ".gzip", ".bz2", ".xz", ".zst", ".zstd")


_NUM = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TOKEN = rb"(?:qid:\S*|cost:\S*|\d+:[^\s,#]+)"
_END = rb"[ \t]*(?:#.*)?\r?$"
# a libsvm line: a label then id:value, qid: and cost: tokens; also an svmlight multilabel
# line (`1,3 5:1`), which the parser then refuses with a message that says what it is
_LIBSVM_LINE = re.compile(
    rb"^[ \t]*(?:" + _NUM + rb"(?:[ \t]+" + _TOKEN + rb")*|" + _NUM + rb"(?:," + _NUM + rb")+(?:[ \t]+"
    + _TOKEN + rb")+)(?=[ \t#\r]|$)" + _END)
_SNIFF_LINES = 64  # data lines looked at, at most


# ---------------------------------------------------------------------------------------
# format detection
# ---------------------------------------------------------------------------------------

def detect_format(path: str) -> str:
    """'parquet', 'csv', 'tsv' or 'libsvm', from magic bytes, extension, then content.

    `PAR1` at the start is Parquet. Otherwise the extension (after a .gz/.bz2/.xz/.zst
    suffix) decides: .parquet/.pq, .csv, .tsv/.tab, .svm/.libsvm/.svmlight. For .txt and
    anything else the first data lines are looked at (decompressed if need be): if one is a
    libsvm line (`label id:value ...`) the input is libsvm, else a tab in the first one makes
    it TSV, a comma CSV (_classify).
    stdin is libsvm; a FIFO is looked at without consuming anything (stream.peek_fifo:
    it is opened once, and its reader gets the same stream).
    """
    if path == "-":
        return "libsvm"
    if is_fifo(path):
        head = peek_fifo(path, 4)
    else:
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


_SNIFF_BYTES = 1 << 16


def _sniff(path: str) -> str:
    if is_fifo(path):
        return _sniff_fifo(path)
    with InputStream(path) as src:
        buf = bytearray(_SNIFF_BYTES)
        got = src.readinto(memoryview(buf))
    return _classify(bytes(buf[:got]), final=True)


def _sniff_fifo(path: str) -> str:
    """_sniff on bytes peeked at, as few as tell the format (a writer may be slow)."""
    n = 1 << 12
    while True:
        raw = peek_fifo(path, n)
        final = len(raw) < n or n >= _SNIFF_BYTES
        kind = _classify(_decompress_head(raw), final)
        if kind is not None:
            return kind
        n *= 4


def _classify(data: bytes, final: bool) -> str | None:
    """The format the first data lines of `data` tell, None when more bytes are needed
    (final: no more: then a partial last line counts too).

    libsvm when one of the first _SNIFF_LINES data lines is a libsvm line (so a libsvm file
    whose first line is bad, or holds commas, is still read as libsvm, and its error says
    file:line:col); otherwise a tab in the first data line makes it TSV, a comma CSV."""
    parts = data.split(b"\n")
    lines = parts if final else parts[:-1]
    seen = []
    for line in lines:
        s = line.strip()
        if not s or s.startswith(b"#"):
            continue
        if _LIBSVM_LINE.match(line):
            return "libsvm"
        seen.append(line)
        if len(seen) == _SNIFF_LINES:
            break
    if not seen:
        return "libsvm" if final else None
    if len(seen) < _SNIFF_LINES and not final:
        return None
    first = seen[0]
    if b"\t" in first:
        return "tsv"
    if b"," in first:
        return "csv"
    return "libsvm"


def _decompress_head(raw: bytes) -> bytes:
    """As much of the decompressed text as the first bytes of a compressed stream give
    (raw itself when it is not compressed)."""
    try:
        if raw.startswith(b"\x1f\x8b"):
            return zlib.decompressobj(wbits=31).decompress(raw)
        if raw.startswith(b"BZh"):
            return bz2.BZ2Decompressor().decompress(raw)
        if raw.startswith(b"\xfd7zXZ\x00"):
            return lzma.LZMADecompressor().decompress(raw)
        if raw.startswith(b"\x28\xb5\x2f\xfd"):
            import pyarrow as pa

            out = pa.CompressedInputStream(pa.BufferReader(raw), "zstd")
            parts = []
            with contextlib.suppress(pa.ArrowException, OSError):
                while chunk := out.read(1 << 12):
                    parts.append(chunk)
            return b"".join(parts)
    except (zlib.error, OSError, EOFError, lzma.LZMAError):
        return b""
    return raw


_LAYOUTS: dict = {}  # (path, indices, file identity) -> layout: a run asks once per input and pass


def parquet_layout(path: str, indices: str = "indices") -> str:
    """'sparse' when the Parquet file has a list column named `indices`, else 'wide'."""
    try:
        st = os.stat(path)
        key = (path, indices, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except (OSError, TypeError, ValueError):  # (a URL: asked each time)
        key = None
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    layout = _parquet_layout(path, indices)
    if key is not None:
        if len(_LAYOUTS) >= 256:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


def _parquet_layout(path, indices):
    from .parquet_sparse import own_file

    own = own_file(path)
    if own is not None:  # (a file convert wrote: no pyarrow needed to tell)
        with own:
            return "sparse" if indices in own.columns and own.kind(indices).startswith("list<") else "wide"
    pa = _pa()
    pf = _open_parquet(path)
    try:
        schema = pf.schema_arrow
    finally:
        pf.close()
    i = schema.get_field_index(indices)
    if i >= 0 and _is_list(pa, schema.field(i).type):
        return "sparse"
    return "wide"
