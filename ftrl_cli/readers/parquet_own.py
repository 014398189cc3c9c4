"""A small decoder for the sparse Parquet files ftrl itself writes (`ftrl convert` with
WRITER_OPTIONS), without pyarrow: importing pyarrow costs ~0.09 s a process, and its
allocations and list decoding cost more than the file's bytes do.

Only what those files hold is read: flat double columns (required or optional) and lists
of int64 or double in the standard 3-level form, with non-null elements, PLAIN or
dictionary-encoded values (a PLAIN dictionary page first, then RLE_DICTIONARY or
PLAIN_DICTIONARY data pages, PLAIN ones after a writer's fallback), RLE levels, data pages
v1 or v2, uncompressed or LZ4_RAW. open_own() returns None for any other file (the caller
reads it with pyarrow, which reads it or says why not); a file that claims this form but
whose pages do not hold it raises a one-line DataError.

Parquet layout, for the reader: "PAR1", column chunks (each a run of pages, a page = a
Thrift compact-protocol PageHeader and its bytes), the footer (a Thrift FileMetaData), the
footer's length (4 bytes, little-endian) and "PAR1".
"""

from __future__ import annotations

import os
import stat

import numpy as np

from ..errors import DataError
from ..kernels import parquet as KP

# Options for pyarrow.parquet.ParquetWriter that make files this module reads (measured on
# the bench sets, medians of fresh processes): a dictionary with pyarrow's 1 MB pages
# (one-hot files with few distinct ids 2x smaller: flights-like 40 MB against 76, a9a x20
# 7.7 against 16.5, CTR rows hashed to 2^14 51 against 99; text- and CTR-like ids with
# more distinct ids overflow the page and pyarrow goes on with PLAIN pages: 2-5% smaller;
# every set decodes as fast or faster, 3-30%. Costs: convert ~1.4x slower where the page
# overflows (ctr 8.4 s against 6.0), once; 64 KB pages would avoid that but lose the
# 2^14 case; 8 MB pages save 8-10% more on text and CTR but decode text ~25% slower),
# LZ4_RAW (pyarrow's "lz4" writes Parquet codec 7), data pages v2 (levels stay
# uncompressed, so LZ4 decompresses PLAIN values straight into the output array:
# text-like rows decode 1.7x faster than from v1 pages), no statistics (nothing reads them).
WRITER_OPTIONS = {
    "use_dictionary": True,
    "compression": "lz4",
    "data_page_version": "2.0",
    "write_statistics": False,
}

MAGIC = b"PAR1"
MAX_FOOTER = 64 << 20  # (ftrl's footers are a few KB; anything larger goes to pyarrow)
MAX_ROWS = (1 << 31) - 1  # rows of one row group (Parquet's page counts are int32)
_DEPTH = 24  # Thrift nesting read at most (FileMetaData is ~6 deep)

# Parquet enums (parquet.thrift)
_T_INT64, _T_DOUBLE = 2, 5
_REQUIRED, _OPTIONAL, _REPEATED = 0, 1, 2
_CONVERTED_LIST = 3
_ENC_PLAIN, _ENC_PLAIN_DICT, _ENC_RLE, _ENC_RLE_DICT = 0, 2, 3, 8
_DICT_ENCODINGS = (_ENC_PLAIN_DICT, _ENC_RLE_DICT)  # (data pages of dictionary indices)
_UNCOMPRESSED, _LZ4_RAW = 0, 7
_DATA_PAGE, _DICTIONARY_PAGE, _DATA_PAGE_V2 = 0, 2, 3


_preadv = getattr(os, "preadv", None)  # (reads into the reused buffer; not on every OS)


class _Reject(Exception):
    """Not a file this module reads (open_own returns None)."""


class _Damage(Exception):
    """Bytes that do not parse (Thrift past its end, impossible values)."""


# ---------------------------------------------------------------------------------------
# Thrift compact protocol: structs as {field id: value}, lists as lists, binary as bytes,
# unknown fields read and dropped. Every length is checked against the bytes left.
# ---------------------------------------------------------------------------------------

def _varint(b, i, end):
    """(value, next i) of the ULEB128 varint at b[i]."""
    out = shift = 0
    while True:
        if i >= end:
            raise _Damage("Thrift data ends early")
        v = b[i]
        i += 1
        out |= (v & 127) << shift
        if v < 128:
            return out, i
        shift += 7
        if shift > 63:
            raise _Damage("Thrift varint too long")


def _value(b, i, end, t, depth, spec):
    """(value, next i) of a value of compact type t; spec: for a struct (or a list of
    structs) the fields to keep ({field id: spec of its value}), None = keep all."""
    if t == 5 or t == 6 or t == 4:  # i32, i64, i16: zigzag varints
        if i < end and b[i] < 128:
            n = b[i]
            i += 1
        else:
            n, i = _varint(b, i, end)
        return (n >> 1) ^ -(n & 1), i
    if t == 8:  # binary
        n, i = _varint(b, i, end)
        if n > end - i:
            raise _Damage("Thrift string longer than its data")
        return bytes(b[i:i + n]), i + n
    if t == 1 or t == 2:
        return t == 1, i
    if t == 3:
        if i >= end:
            raise _Damage("Thrift data ends early")
        return (b[i] ^ 128) - 128, i + 1
    if t == 7:
        if end - i < 8:
            raise _Damage("Thrift data ends early")
        return float(np.frombuffer(bytes(b[i:i + 8]), "<f8")[0]), i + 8
    if depth >= _DEPTH:
        raise _Damage("Thrift data nested too deep")
    if t == 12:
        return _struct(b, i, end, depth + 1, spec)
    if t == 9 or t == 10:  # list, set
        if i >= end:
            raise _Damage("Thrift data ends early")
        h = b[i]
        i += 1
        n, et = h >> 4, h & 15
        if n == 15:
            n, i = _varint(b, i, end)
        if n > end - i:  # (each element takes >= 1 byte)
            raise _Damage("Thrift list longer than its data")
        out = []
        if et == 1 or et == 2:  # (booleans in a list: a byte each)
            out = [x == 1 for x in b[i:i + n]]
            return out, i + n
        if et == 5 or et == 6 or et == 4:  # (ints: inline, the footer's most common list)
            for _ in range(n):
                if i < end and b[i] < 128:
                    v = b[i]
                    i += 1
                else:
                    v, i = _varint(b, i, end)
                out.append((v >> 1) ^ -(v & 1))
            return out, i
        for _ in range(n):
            v, i = _value(b, i, end, et, depth + 1, spec)
            out.append(v)
        return out, i
    if t == 11:  # map
        n, i = _varint(b, i, end)
        if n == 0:
            return {}, i
        if i >= end or 2 * n > end - i - 1:  # (each entry takes >= 2 bytes)
            raise _Damage("Thrift map longer than its data")
        kv = b[i]
        i += 1
        out = {}
        for _ in range(n):
            k, i = _value(b, i, end, kv >> 4, depth + 1, None)
            v, i = _value(b, i, end, kv & 15, depth + 1, None)
            out[k if isinstance(k, (int, float, bytes, bool)) else repr(k)] = v
        return out, i
    raise _Damage(f"Thrift type {t} unknown")


def _struct(b, i, end, depth=0, spec=None):
    """(struct as {field id: value}, next i) of the struct at b[i]; with a spec, the
    other fields are read past and dropped."""
    out = {}
    fid = 0
    while True:
        if i >= end:
            raise _Damage("Thrift data ends early")
        h = b[i]
        i += 1
        if h == 0:
            return out, i
        t = h & 15
        if h >> 4:
            fid += h >> 4
        else:
            n, i = _varint(b, i, end)
            fid = (n >> 1) ^ -(n & 1)
        if t == 5 or t == 6 or t == 4:  # (ints: inline, the footer's most common field)
            if i < end and b[i] < 128:
                v = b[i]
                i += 1
            else:
                v, i = _varint(b, i, end)
            if spec is None or fid in spec:
                out[fid] = (v >> 1) ^ -(v & 1)
        elif spec is None:
            out[fid], i = _value(b, i, end, t, depth, None)
        elif fid in spec:
            out[fid], i = _value(b, i, end, t, depth, spec[fid])
        else:
            i = _value(b, i, end, t, depth, _DROP)[1]


# What is kept of the footer and page headers (parquet.thrift's field ids; None = all).
_DROP = {}
_COLUMN_META = dict.fromkeys((1, 2, 3, 4, 5, 6, 7, 9, 10, 11))  # (type .. dictionary_page_offset)
_FILE_META = {1: None, 2: None, 3: None, 5: None, 8: None, 9: None,
              4: {1: {1: None, 3: _COLUMN_META, 8: None, 9: None}, 3: None}}  # row groups, chunks
_PAGE_HEADER = {1: None, 2: None, 3: None, 5: dict.fromkeys((1, 2, 3, 4)), 7: None,
                8: dict.fromkeys((1, 2, 3, 4, 5, 6, 7))}


def _int(d, fid, default=None, lo=0, hi=(1 << 63) - 1):
    """Field fid of a parsed struct as an int in [lo, hi]; absent: default (None = a field
    required here). Absent when required, or another type or range: not a file read here."""
    if fid not in d:
        if default is None:
            raise _Reject
        return default
    v = d[fid]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _Reject
    return v


# ---------------------------------------------------------------------------------------
# the file
# ---------------------------------------------------------------------------------------

class _Column:
    """A top-level column: its kind, levels and per-row-group chunk ranges."""

    __slots__ = ("name", "kind", "ptype", "max_rep", "max_def", "nullable", "chunks", "path")

    def __init__(self, name, kind, ptype, max_rep, max_def, nullable, path):
        self.name, self.kind, self.ptype, self.path = name, kind, ptype, path
        self.max_rep, self.max_def, self.nullable = max_rep, max_def, nullable
        self.chunks = []  # per row group: (codec, num_values, offset, compressed, uncompressed,
        #                                  has a dictionary page)


class OwnFile:
    """An open sparse Parquet file of the supported form (see open_own)."""

    def __init__(self, path, fd, footer_start, meta):
        self.path = path
        self._fd = fd
        self._footer_start = footer_start
        self._buf = np.empty(0, np.uint8)  # (a chunk's bytes; reused, as outputs are not views of it)
        self._scratch = np.empty(0, np.uint8)  # (a v1 page decompressed)
        self._levels = np.empty((2, 0), np.uint8)  # (repetition and definition levels)
        self._dict = np.empty(0, np.int64)  # (a chunk's dictionary, its values' bits)
        self._cols = {}
        self._parse(meta)

    # -- footer --------------------------------------------------------------------------
    def _parse(self, meta):
        schema = meta.get(2)
        if not isinstance(schema, list) or not schema or not all(isinstance(s, dict) for s in schema):
            raise _Reject
        root = schema[0]
        n_top = _int(root, 5, 0, 0, len(schema))
        if 1 in root or _int(root, 3, _REQUIRED, 0, 2) != _REQUIRED:
            raise _Reject
        k = 1
        cols = []
        for _ in range(n_top):
            col, k = self._column(schema, k)
            cols.append(col)
        if k != len(schema) or len({c.name for c in cols}) != len(cols):
            raise _Reject
        self.columns = [c.name for c in cols]
        self._cols = {c.name: c for c in cols}
        self.num_rows = _int(meta, 3)
        groups = meta.get(4, [])
        if not isinstance(groups, list):
            raise _Reject
        self.row_group_rows = []
        for rg in groups:
            if not isinstance(rg, dict) or not isinstance(rg.get(1), list) or len(rg[1]) != len(cols):
                raise _Reject
            rows = _int(rg, 3, None, 0, MAX_ROWS)
            for col, cc in zip(cols, rg[1]):
                col.chunks.append(self._chunk(col, cc, rows))
            self.row_group_rows.append(rows)
        if sum(self.row_group_rows) != self.num_rows:
            raise _Reject
        kv = meta.get(5, [])
        if not isinstance(kv, list):
            raise _Reject
        self.key_value = {}
        for e in kv:
            if not isinstance(e, dict) or not isinstance(e.get(1), bytes) or not isinstance(e.get(2, b""), bytes):
                raise _Reject
            self.key_value[e[1].decode("utf-8", "replace")] = e.get(2, b"").decode("utf-8", "replace")
        if 8 in meta or 9 in meta:  # (encryption)
            raise _Reject

    @staticmethod
    def _leaf_type(el, nullable_ok):
        """(physical type, nullable) of a plain INT64/DOUBLE leaf without annotations."""
        if 5 in el or 6 in el or 10 in el or 2 in el:  # (children, converted/logical type, length)
            raise _Reject
        t = _int(el, 1, None, 0, 7)
        rep = _int(el, 3, None, 0, 2)
        if t not in (_T_INT64, _T_DOUBLE) or rep == _REPEATED or (rep == _OPTIONAL and not nullable_ok):
            raise _Reject
        return t, rep == _OPTIONAL

    def _column(self, schema, k):
        el = schema[k]
        name = el.get(4)
        if not isinstance(name, bytes):
            raise _Reject
        try:
            name = name.decode("utf-8")
        except UnicodeDecodeError:
            raise _Reject from None
        if 5 not in el:  # a flat column: double or double?
            t, nullable = self._leaf_type(el, True)
            if t != _T_DOUBLE:
                raise _Reject
            return _Column(name, "double?" if nullable else "double", t, 0, int(nullable), nullable,
                           [name]), k + 1
        # a list: <required|optional> group (LIST) { repeated group list { required leaf } }
        if (_int(el, 5, None, 0, 1 << 30) != 1 or 1 in el or 2 in el
                or not (el.get(6) == _CONVERTED_LIST or (isinstance(el.get(10), dict) and 3 in el[10]))
                or k + 2 >= len(schema)):
            raise _Reject
        rep = _int(el, 3, None, 0, 2)
        if rep == _REPEATED:
            raise _Reject
        mid = schema[k + 1]
        if (1 in mid or 6 in mid or 10 in mid or _int(mid, 3, None, 0, 2) != _REPEATED
                or _int(mid, 5, None, 0, 1 << 30) != 1):
            raise _Reject
        leaf = schema[k + 2]
        t, _ = self._leaf_type(leaf, False)
        nullable = rep == _OPTIONAL
        kind = ("list<int64>" if t == _T_INT64 else "list<double>") + ("?" if nullable else "")
        if not isinstance(mid.get(4), bytes) or not isinstance(leaf.get(4), bytes):
            raise _Reject
        path = [name, mid[4].decode("utf-8", "replace"), leaf[4].decode("utf-8", "replace")]
        return _Column(name, kind, t, 1, 1 + int(nullable), nullable, path), k + 3

    def _chunk(self, col, cc, rows):
        if not isinstance(cc, dict) or 1 in cc or 8 in cc or 9 in cc or not isinstance(cc.get(3), dict):
            raise _Reject  # (data in another file, encrypted)
        md = cc[3]
        if _int(md, 1, None, 0, 7) != col.ptype:
            raise _Reject
        encs = md.get(2)
        if not isinstance(encs, list) or not all(e in (_ENC_PLAIN, _ENC_RLE, *_DICT_ENCODINGS) for e in encs):
            raise _Reject
        path = md.get(3)
        if not isinstance(path, list) or [p.decode("utf-8", "replace") if isinstance(p, bytes) else None
                                          for p in path] != col.path:
            raise _Reject
        codec = _int(md, 4, None, 0, 1 << 20)
        if codec not in (_UNCOMPRESSED, _LZ4_RAW):
            raise _Reject
        nv = _int(md, 5, None, 0, 1 << 62)
        usize = _int(md, 6, None, 0, 1 << 62)
        csize = _int(md, 7, None, 0, 1 << 62)
        off = _int(md, 9, None, 0, 1 << 62)
        has_dict = 11 in md
        if has_dict:  # (the dictionary page comes first: the chunk starts there)
            doff = _int(md, 11, None, 4, 1 << 62)
            if doff >= off and not (off == 0 and nv == 0):  # (an empty row group: a dictionary page only)
                raise _Reject
            off = doff
        if csize == 0 and nv == 0:  # (an empty row group: pyarrow writes no page, offset 0)
            off = 4
        if off < 4 or off + csize > self._footer_start:
            raise _Reject
        if col.max_rep == 0 and nv != rows:
            raise _Reject
        return (codec, nv, off, csize, usize, has_dict)

    # -- public --------------------------------------------------------------------------
    def kind(self, name):
        """"double", "double?", "list<int64>", "list<int64>?", "list<double>" or "list<double>?"."""
        return self._cols[name].kind

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read_row_group(self, g, names):
        """Decode row group g's columns `names` into fresh arrays: {name: value}, value =
        (values float64[n], valid uint8[n] | None) for a flat column (a null is NaN, valid
        None when no row is null) and (offsets int64[n + 1] from 0, elements int64|float64,
        valid uint8[n] | None) for a list column (a null row has an empty range).
        Damaged data raises a one-line DataError."""
        if not 0 <= g < len(self.row_group_rows):
            raise IndexError(f"row group {g} of {len(self.row_group_rows)}")
        rows = self.row_group_rows[g]
        out = {}
        for name in names:
            col = self._cols[name]
            try:
                out[name] = self._read_chunk(col, col.chunks[g], rows)
            except _Damage as e:
                raise DataError(f"{self.path}: row group {g + 1} of {len(self.row_group_rows)}, column "
                                f"'{name}': damaged Parquet data ({e})") from None
            except MemoryError:
                raise DataError(f"{self.path}: row group {g + 1} of {len(self.row_group_rows)}, column "
                                f"'{name}': too large to decode in memory") from None
            except OSError as e:
                raise DataError(f"{self.path}: row group {g + 1} of {len(self.row_group_rows)}, column "
                                f"'{name}': cannot read ({e.strerror or e})") from None
        return out

    # -- chunks --------------------------------------------------------------------------
    def _read(self, off, n):
        if self._fd is None:
            raise ValueError("read from a closed file")
        if self._buf.shape[0] < n:
            self._buf = np.empty(max(n, self._buf.shape[0] * 5 // 4), np.uint8)
        buf = self._buf
        got = 0
        while got < n:
            if _preadv is not None:
                k = _preadv(self._fd, [memoryview(buf[got:n])], off + got)
            else:
                b = os.pread(self._fd, n - got, off + got)
                k = len(b)
                buf[got:got + k] = np.frombuffer(b, np.uint8)
            if k <= 0:
                raise _Damage("the file ends early (truncated since it was opened?)")
            got += k
        return buf

    def _read_chunk(self, col, chunk, rows):
        codec, nv, off, csize, usize, has_dict = chunk
        is_list = col.max_rep > 0
        if usize > 256 * csize + 4096:  # (LZ4 expands 255 times at most)
            raise _Damage(f"{usize} bytes said to decompress from {csize}")
        if is_list:
            # (a row holds >= 1 level; a PLAIN element 8 bytes; a dictionary-encoded one may
            # take no byte at all, but a row group's elements fit pyarrow's int32 list offsets)
            if nv < rows or nv > rows + (MAX_ROWS if has_dict else usize // 8):
                raise _Damage(f"{nv} levels for {rows} rows")
        buf = self._read(off, csize)
        mv = memoryview(buf)[:csize]
        if self._levels.shape[1] < nv:  # (levels stay inside: scratch reused by every chunk)
            self._levels = np.empty((2, max(nv, self._levels.shape[1] * 5 // 4)), np.uint8)
        rep, dl = self._levels[0], self._levels[1]
        vals = np.empty(nv, np.int64 if col.ptype == _T_INT64 else np.float64)
        vbytes = vals.view(np.uint8)
        pos = 0
        n_lev = 0  # levels decoded
        n_val = 0  # values stored
        n_dict = -1  # the dictionary's size (-1: no dictionary page read)
        while pos < csize:
            first = pos == 0
            h, pos = _struct(mv, pos, csize, 0, _PAGE_HEADER)
            ptype = h.get(1)
            psize = h.get(2)
            pcsize = h.get(3)
            if not (isinstance(psize, int) and isinstance(pcsize, int) and 0 <= psize <= usize
                    and 0 <= pcsize <= csize - pos):
                raise _Damage("page sizes out of range")
            p0, p1 = pos, pos + pcsize
            pos = p1
            if ptype == _DATA_PAGE:
                d = h.get(5)
                if not isinstance(d, dict):
                    raise _Damage("data page without its header")
                pnv = d.get(1)
                if not isinstance(pnv, int) or not 0 <= pnv <= nv - n_lev:
                    raise _Damage("more levels than the column chunk holds")
                enc = d.get(2)
                if (enc != _ENC_PLAIN and (n_dict < 0 or enc not in _DICT_ENCODINGS)) or (
                        col.max_def and d.get(3) != _ENC_RLE) or (col.max_rep and d.get(4) != _ENC_RLE):
                    raise _Damage("page encoding other than PLAIN/RLE (or dictionary indices "
                                  "without a dictionary)")
                if codec == _LZ4_RAW:
                    if self._scratch.shape[0] < psize:
                        self._scratch = np.empty(max(psize, self._scratch.shape[0] * 5 // 4), np.uint8)
                    src = self._scratch
                    got = KP.pq_lz4_raw(buf, p0, p1, src, 0, psize)
                    if got != psize:
                        raise _Damage("LZ4 data does not decode to the page's size")
                    s, e = 0, psize
                else:
                    if psize != pcsize:
                        raise _Damage("uncompressed page with two sizes")
                    src, s, e = buf, p0, p1
                n_at = pnv
                if col.max_rep:
                    s = self._levels_v1(src, s, e, rep, n_lev, pnv, col.max_rep, -1)[0]
                if col.max_def:
                    s, n_at = self._levels_v1(src, s, e, dl, n_lev, pnv, col.max_def, col.max_def)
                if enc != _ENC_PLAIN:
                    self._indices(src, s, e, n_dict, vals, n_val, n_at)
                elif e - s != 8 * n_at:
                    raise _Damage(f"{e - s} bytes of values for {n_at} values")
                else:
                    vbytes[8 * n_val:8 * (n_val + n_at)] = src[s:e]
            elif ptype == _DATA_PAGE_V2:
                d = h.get(8)
                if not isinstance(d, dict):
                    raise _Damage("data page without its header")
                pnv = d.get(1)
                dlen = d.get(5)
                rlen = d.get(6)
                if not isinstance(pnv, int) or not 0 <= pnv <= nv - n_lev:
                    raise _Damage("more levels than the column chunk holds")
                if not (isinstance(dlen, int) and isinstance(rlen, int) and 0 <= dlen and 0 <= rlen
                        and dlen + rlen <= min(pcsize, psize)):
                    raise _Damage("level sizes out of range")
                enc = d.get(4)
                if enc != _ENC_PLAIN and (n_dict < 0 or enc not in _DICT_ENCODINGS):
                    raise _Damage("page encoding other than PLAIN (or dictionary indices "
                                  "without a dictionary)")
                s = p0
                n_at = pnv
                if col.max_rep:
                    self._levels_v2(buf, s, s + rlen, rep, n_lev, pnv, col.max_rep, -1)
                elif rlen:
                    raise _Damage("repetition levels in a flat column")
                s += rlen
                if col.max_def:
                    n_at = self._levels_v2(buf, s, s + dlen, dl, n_lev, pnv, col.max_def, col.max_def)
                elif dlen:
                    raise _Damage("definition levels in a required column")
                s += dlen
                want = 8 * n_at
                if enc != _ENC_PLAIN:  # (indices, compressed or not, then the values they name)
                    isize = psize - rlen - dlen
                    if codec == _LZ4_RAW and d.get(7, True) is not False:
                        if self._scratch.shape[0] < isize:
                            self._scratch = np.empty(max(isize, self._scratch.shape[0] * 5 // 4), np.uint8)
                        if KP.pq_lz4_raw(buf, s, p1, self._scratch, 0, isize) != isize:
                            raise _Damage("LZ4 data does not decode to the page's size")
                        self._indices(self._scratch, 0, isize, n_dict, vals, n_val, n_at)
                    else:
                        if p1 - s != isize:
                            raise _Damage("uncompressed page with two sizes")
                        self._indices(buf, s, p1, n_dict, vals, n_val, n_at)
                elif psize - rlen - dlen != want:
                    raise _Damage(f"{psize - rlen - dlen} bytes of values for {n_at} values")
                elif codec == _LZ4_RAW and d.get(7, True) is not False:
                    got = KP.pq_lz4_raw(buf, s, p1, vbytes, 8 * n_val, 8 * n_val + want)
                    if got != want:
                        raise _Damage("LZ4 data does not decode to the page's size")
                else:
                    if p1 - s != want:
                        raise _Damage("uncompressed page with two sizes")
                    vbytes[8 * n_val:8 * n_val + want] = buf[s:p1]
            elif ptype == _DICTIONARY_PAGE and has_dict and first:
                n_dict = self._dictionary(h, buf, p0, p1, psize, codec)
                continue
            else:
                raise _Damage(f"page type {ptype} (only data pages, after one dictionary page, expected)")
            n_lev += pnv
            n_val += n_at
        if n_lev != nv:
            raise _Damage(f"{n_lev} levels in the pages, {nv} in the footer")
        if is_list:
            offsets = np.empty(rows + 1, np.int64)
            valid = np.empty(rows if col.nullable else 0, np.uint8)
            st, got_rows, n_el = KP.pq_list_rows(rep, dl, nv, col.max_def, col.nullable, offsets, valid)
            if st != KP.PQ_OK or got_rows != rows:
                raise _Damage(f"list levels hold {got_rows if st == KP.PQ_OK else 'impossible'} rows, "
                              f"{rows} expected")
            if n_el != n_val:
                raise _Damage("values and levels disagree")
            elements = vals[:n_val] if n_val >= nv // 2 else vals[:n_val].copy()
            if col.nullable and valid.all():
                valid = None
            return offsets, elements, (valid if col.nullable else None)
        if col.max_def:  # optional double
            if n_val == rows:
                return vals, None
            if n_val == 0:  # (all null, as convert's weight column without cost: -- no kernel to load)
                return np.full(rows, np.nan), np.zeros(rows, np.uint8)
            out = np.empty(rows, np.float64)
            valid = np.empty(rows, np.uint8)
            if KP.pq_scatter(dl, rows, col.max_def, vals, n_val, out, valid) != KP.PQ_OK:
                raise _Damage("values and levels disagree")
            return out, valid
        return vals, None

    def _dictionary(self, h, buf, p0, p1, psize, codec):
        """Read a dictionary page (PLAIN values) into self._dict; returns its size."""
        d = h.get(7)
        if not isinstance(d, dict):
            raise _Damage("dictionary page without its header")
        n = d.get(1)
        if not isinstance(n, int) or not 0 <= n <= MAX_ROWS or psize != 8 * n:
            raise _Damage("dictionary size out of range")
        if d.get(2) not in (_ENC_PLAIN, _ENC_PLAIN_DICT):  # (PLAIN_DICTIONARY: PLAIN, as named by v1 writers)
            raise _Damage("dictionary encoding other than PLAIN")
        if self._dict.shape[0] < n:
            self._dict = np.empty(max(n, self._dict.shape[0] * 5 // 4), np.int64)
        dbytes = self._dict.view(np.uint8)
        if codec == _LZ4_RAW:  # (a dictionary page is compressed whole, in v1 and v2 alike)
            if KP.pq_lz4_raw(buf, p0, p1, dbytes, 0, psize) != psize:
                raise _Damage("LZ4 data does not decode to the page's size")
        else:
            if p1 - p0 != psize:
                raise _Damage("uncompressed page with two sizes")
            dbytes[:psize] = buf[p0:p1]
        return n

    def _indices(self, src, s, e, n_dict, vals, at, count):
        """Dictionary indices src[s:e] (bit width, RLE/bit-packed) -> vals[at:at + count]."""
        st = KP.pq_dict_gather(src, s, e, self._dict, n_dict, vals.view(np.int64), at, count)
        if st < 0:
            raise _Damage("dictionary indices do not decode" if st != KP.PQ_ERR_DICT_INDEX
                          else "a dictionary index past the dictionary (or a bad bit width)")

    @staticmethod
    def _levels_v1(src, s, e, out, at, count, max_level, at_level):
        """v1: a 4-byte length, then the RLE levels. Returns (end, n at at_level)."""
        if e - s < 4:
            raise _Damage("levels past the page's end")
        n = int(src[s]) | int(src[s + 1]) << 8 | int(src[s + 2]) << 16 | int(src[s + 3]) << 24
        if n > e - s - 4:
            raise _Damage("levels past the page's end")
        st, n_at = KP.pq_levels(src, s + 4, s + 4 + n, max_level.bit_length(), out, at, count,
                                max_level, at_level)
        if st < 0:
            raise _Damage("level data does not decode")
        return s + 4 + n, n_at

    @staticmethod
    def _levels_v2(src, s, e, out, at, count, max_level, at_level):
        st, n_at = KP.pq_levels(src, s, e, max_level.bit_length(), out, at, count, max_level, at_level)
        if st < 0:
            raise _Damage("level data does not decode")
        return n_at


# Decoded footers by file identity (device, inode, size, mtime), or None for a file this
# module does not read: a run opens an input for its layout and once per pass, and the
# footer of a large cache takes milliseconds of Python to decode (~17 ms for ctr's 123 row
# groups). OwnFile only reads the decoded footer.
_FOOTERS: dict = {}


def open_own(path) -> OwnFile | None:
    """Open a local Parquet file that this module decodes in full, or return None (any
    other file, one it cannot open, or a footer that does not parse: the caller falls back
    to pyarrow, which reads the file or says what is wrong)."""
    try:
        # (O_NONBLOCK: a FIFO opens at once, without waiting for a writer, and is refused below)
        fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except (OSError, TypeError, ValueError):
        return None
    ok = False
    try:
        st = os.fstat(fd)
        size = st.st_size
        if not stat.S_ISREG(st.st_mode) or size < 12:
            return None
        tail = os.pread(fd, 8, size - 8)
        head = os.pread(fd, 4, 0)
        if head != MAGIC or len(tail) != 8 or tail[4:] != MAGIC:
            return None
        n = int.from_bytes(tail[:4], "little")
        if n < 2 or n > MAX_FOOTER or n > size - 12:
            return None
        start = size - 8 - n
        key = (st.st_dev, st.st_ino, size, st.st_mtime_ns)
        if key in _FOOTERS:
            if _FOOTERS[key] is None:
                return None
            meta = _FOOTERS[key]
        else:
            raw = os.pread(fd, n, start)
            if len(raw) != n:
                return None
            meta, end = _struct(raw, 0, n, 0, _FILE_META)
            if end != n:
                return None
            if len(_FOOTERS) >= 64:
                _FOOTERS.clear()
            _FOOTERS[key] = None  # (until it proves to be a file this module reads)
        f = OwnFile(os.fspath(path), fd, start, meta)
        _FOOTERS[key] = meta
        ok = True
        return f
    except (_Reject, _Damage, OSError, RecursionError):
        return None
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError):
        return None  # (a footer of unexpected shapes the checks above missed: pyarrow's to judge)
    finally:
        if not ok:
            os.close(fd)
