"""Decoding the pages of the sparse Parquet files ftrl writes: LZ4_RAW blocks, RLE/bit-packed
levels, dictionary indices, list rows from repetition/definition levels (readers/parquet_own.py
drives them).

These kernels read bytes that may be damaged: every read and write is checked against the
ranges the caller passes (Numba checks no bounds), and a damaged input returns an error code,
never an out-of-bounds access. Every cache=True kernel here calls only helpers defined in
this file (tests/test_kernels_layout.py).
"""

import numpy as np
from numba import config as _numba_config
from numba import njit, types
from numba.extending import intrinsic

__all__ = [  # the names ftrl_cli.kernels re-exports
    "PQ_OK", "PQ_ERR_ARGS", "PQ_ERR_LZ4", "PQ_ERR_LEVELS", "PQ_ERR_LEVEL_VALUE", "PQ_ERR_ROWS",
    "PQ_ERR_VALUES", "PQ_ERR_DICT_INDEX", "pq_lz4_raw", "pq_levels", "pq_dict_gather",
    "pq_list_rows", "pq_scatter",
]

PQ_OK = 0
PQ_ERR_ARGS = -1  # ranges outside the arrays (a caller's bug, reported rather than followed)
PQ_ERR_LZ4 = -2  # the LZ4 block is malformed, truncated, or decodes past its output
PQ_ERR_LEVELS = -3  # the RLE/bit-packed data (levels, dictionary indices) ends before its values
PQ_ERR_LEVEL_VALUE = -4  # a level above the column's maximum
PQ_ERR_ROWS = -5  # the levels hold more rows than the row group, or impossible sequences
PQ_ERR_VALUES = -6  # fewer stored values than the levels say
PQ_ERR_DICT_INDEX = -7  # a dictionary index past the dictionary, or an index bit width above 32


if _numba_config.DISABLE_JIT:

    def _copy8(dst, di, src, si):
        """Plain-Python twins of the intrinsics below (NUMBA_DISABLE_JIT=1)."""
        dst[di:di + 8] = src[si:si + 8]

    def _load_u8(buf, i):
        return int(buf[i])

    def _load_u16(buf, i):
        return int(buf[i]) | int(buf[i + 1]) << 8

    def _load_u64(buf, i):
        return int(buf[i:i + 8].view(np.int64)[0])

    def _store_u64(buf, i, v):
        buf[i:i + 8] = np.array([int(v) & 0xFFFFFFFFFFFFFFFF], np.uint64).view(np.uint8)

else:

    @intrinsic
    def _copy8(typingctx, dst, di, src, si):
        """dst[di:di+8] = src[si:si+8] as one unaligned 8-byte load and store.

        # Assumes: C-contiguous uint8 arrays, di + 8 <= len(dst), si + 8 <= len(src), and
        # the two ranges do not overlap (or are the same array 8 or more bytes apart).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            i64p = ir.IntType(64).as_pointer()
            dty, sty = signature.args[0], signature.args[2]
            d = context.make_array(dty)(context, builder, args[0])
            s = context.make_array(sty)(context, builder, args[2])
            sp = cgutils.get_item_pointer(context, builder, sty, s, [args[3]])
            dp = cgutils.get_item_pointer(context, builder, dty, d, [args[1]])
            v = builder.load(builder.bitcast(sp, i64p), align=1)
            builder.store(v, builder.bitcast(dp, i64p), align=1)
            return context.get_dummy_value()

        return types.void(dst, types.intp, src, types.intp), codegen

    @intrinsic
    def _load_u8(typingctx, buf, i):
        """buf[i] as an int64 (no negative-index wrap).

        # Assumes: a C-contiguous uint8 array, 0 <= i < len(buf).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            a = context.make_array(aty)(context, builder, args[0])
            p = cgutils.get_item_pointer(context, builder, aty, a, [args[1]])
            return builder.zext(builder.load(p), ir.IntType(64))

        return types.int64(buf, types.intp), codegen

    @intrinsic
    def _load_u64(typingctx, buf, i):
        """buf[i:i+8] as one little-endian word, an int64 (one unaligned load).

        # Assumes: a C-contiguous uint8 array, 0 <= i and i + 8 <= len(buf).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            a = context.make_array(aty)(context, builder, args[0])
            p = cgutils.get_item_pointer(context, builder, aty, a, [args[1]])
            return builder.load(builder.bitcast(p, ir.IntType(64).as_pointer()), align=1)

        return types.int64(buf, types.intp), codegen

    @intrinsic
    def _store_u64(typingctx, buf, i, v):
        """buf[i:i+8] = the 8 little-endian bytes of the int64 v (one unaligned store).

        # Assumes: a C-contiguous uint8 array, 0 <= i and i + 8 <= len(buf).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            a = context.make_array(aty)(context, builder, args[0])
            p = cgutils.get_item_pointer(context, builder, aty, a, [args[1]])
            builder.store(args[2], builder.bitcast(p, ir.IntType(64).as_pointer()), align=1)
            return context.get_dummy_value()

        return types.void(buf, types.intp, types.int64), codegen

    @intrinsic
    def _load_u16(typingctx, buf, i):
        """buf[i] | buf[i+1] << 8 as an int64 (one unaligned load, no negative-index wrap).

        # Assumes: a C-contiguous uint8 array, 0 <= i and i + 2 <= len(buf).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            a = context.make_array(aty)(context, builder, args[0])
            p = cgutils.get_item_pointer(context, builder, aty, a, [args[1]])
            v = builder.load(builder.bitcast(p, ir.IntType(16).as_pointer()), align=1)
            return builder.zext(v, ir.IntType(64))

        return types.int64(buf, types.intp), codegen


@njit(cache=True, nogil=True)
def pq_lz4_raw(src, s0, s1, dst, d0, d1):
    """Decompress the LZ4 block src[s0:s1] into dst[d0:d1]; returns the bytes written
    (which the caller compares with what it expects) or PQ_ERR_LZ4 / PQ_ERR_ARGS. Bytes
    of dst[d0:d1] past the returned length may be overwritten.

    Assumes: src and dst are C-contiguous uint8 arrays, dst not overlapping src[s0:s1];
    the ranges are checked here, and every copy stays inside them (the 8-byte copies, which
    may run up to 7 bytes past a literal run or a match, are used only with room for that).
    """
    if s0 < 0 or s1 < s0 or s1 > src.shape[0] or d0 < 0 or d1 < d0 or d1 > dst.shape[0]:
        return PQ_ERR_ARGS
    i = s0
    o = d0
    while True:
        if i >= s1:
            return PQ_ERR_LZ4  # (a block ends with a literals-only sequence, not nothing)
        token = _load_u8(src, i)
        i += 1
        lit = token >> 4
        ml = token & 15
        # Fast path (most sequences of ids): short literals and a short match with room to
        # copy 16 + 24 bytes past them in both arrays; fixed-size copies, no loops.
        if lit < 15 and ml < 15 and i + 18 <= s1 and o + 40 <= d1:
            _copy8(dst, o, src, i)
            _copy8(dst, o + 8, src, i + 8)
            i += lit
            o += lit
            off = _load_u16(src, i)
            if off >= 8 and off <= o - d0:
                i += 2
                m = o - off
                _copy8(dst, o, dst, m)
                _copy8(dst, o + 8, dst, m + 8)
                _copy8(dst, o + 16, dst, m + 16)
                o += ml + 4
                continue
            # (an offset below 8, or a bad one; not the block's end: >= 4 bytes follow)
            i += 2
            if off == 0 or off > o - d0:
                return PQ_ERR_LZ4
            ml += 4
            if ml > d1 - o:
                return PQ_ERR_LZ4
            m = o - off
            for k in range(ml):
                dst[o + k] = dst[m + k]
            o += ml
            continue
        if lit == 15:
            while True:  # (each step consumes a byte: ends within the input)
                if i >= s1:
                    return PQ_ERR_LZ4
                b = _load_u8(src, i)
                i += 1
                lit += b
                if b != 255:
                    break
        if lit > s1 - i or lit > d1 - o:
            return PQ_ERR_LZ4
        if i + lit + 8 <= s1 and o + lit + 8 <= d1:  # (room to run past: 8 bytes a step)
            k = 0
            while k < lit:
                _copy8(dst, o + k, src, i + k)
                k += 8
        else:  # (near the ends: byte by byte; a slice copy would load Numba's array module)
            for k in range(lit):
                dst[o + k] = src[i + k]
        i += lit
        o += lit
        if i == s1:
            return o - d0
        if s1 - i < 2:
            return PQ_ERR_LZ4
        off = _load_u16(src, i)
        i += 2
        if off == 0 or off > o - d0:
            return PQ_ERR_LZ4
        if ml == 15:
            while True:
                if i >= s1:
                    return PQ_ERR_LZ4
                b = _load_u8(src, i)
                i += 1
                ml += b
                if b != 255:
                    break
        ml += 4
        if ml > d1 - o:
            return PQ_ERR_LZ4
        m = o - off
        if off >= 8 and o + ml + 8 <= d1:
            # 8 bytes a step: each step reads bytes written before it (off >= 8)
            k = 0
            while k < ml:
                _copy8(dst, o + k, dst, m + k)
                k += 8
        else:
            for k in range(ml):  # (overlapping: byte by byte repeats the pattern, as LZ4 means)
                dst[o + k] = dst[m + k]
        o += ml


@njit(cache=True, nogil=True)
def pq_levels(src, s0, s1, bit_width, out, o0, count, max_level, at_level):
    """Decode `count` levels of the RLE/bit-packed hybrid src[s0:s1] (bit_width 1..8)
    into out[o0:o0 + count]. Returns (status, n_at): status = the bytes consumed (>= 0) or
    an error code; n_at = how many levels equal `at_level` (the page's stored values, when
    at_level is the maximum definition level).

    Assumes: src and out are C-contiguous uint8 arrays; the ranges are checked here.
    """
    if (s0 < 0 or s1 < s0 or s1 > src.shape[0] or o0 < 0 or count < 0 or o0 + count > out.shape[0]
            or bit_width < 1 or bit_width > 8):
        return PQ_ERR_ARGS, 0
    mask = (1 << bit_width) - 1
    i = s0
    k = 0
    n_at = 0
    while k < count:
        # run header: a ULEB128 varint of at most 32 bits
        header = np.int64(0)
        shift = 0
        while True:
            if i >= s1 or shift > 28:
                return PQ_ERR_LEVELS, 0
            b = np.int64(src[i])
            i += 1
            header |= (b & 127) << shift
            shift += 7
            if b < 128:
                break
        if header & 1 == 0:  # RLE run: one value (one byte, as bit_width <= 8) repeated
            run = header >> 1
            if i >= s1:
                return PQ_ERR_LEVELS, 0
            v = np.int64(src[i])
            i += 1
            if v > max_level:
                return PQ_ERR_LEVEL_VALUE, 0
            take = min(run, count - k)
            word = int(v) * 0x0101010101010101  # (wraps in int64; the Python twin masks it)
            j = 0
            while j + 8 <= take:  # (8 levels a store)
                _store_u64(out, o0 + k + j, word)
                j += 8
            for j in range(j, take):  # noqa: B020 (the tail)
                out[o0 + k + j] = v
            if v == at_level:
                n_at += take
            k += take
        else:  # bit-packed: groups of 8 values, least significant bits first
            n = (header >> 1) * 8
            nbytes = (header >> 1) * bit_width
            take = min(n, count - k)
            need = (take * bit_width + 7) >> 3
            if need > s1 - i:
                return PQ_ERR_LEVELS, 0
            j = 0
            top = 0
            # whole groups of 8 with an 8-byte load in range: the 8 values from one word
            while j + 8 <= take and i + (j >> 3) * bit_width + 8 <= s1:
                w = _load_u64(src, i + (j >> 3) * bit_width)
                word = 0
                for q in range(8):
                    v = (w >> (q * bit_width)) & mask
                    word |= v << (8 * q)
                    top = max(top, v)
                    n_at += v == at_level
                _store_u64(out, o0 + k + j, word)
                j += 8
            if top > max_level:
                return PQ_ERR_LEVEL_VALUE, 0
            for j in range(j, take):  # noqa: B020 (the tail after the whole groups)
                bit = j * bit_width
                p = i + (bit >> 3)
                w = np.int64(src[p])
                if p + 1 < s1:
                    w |= np.int64(src[p + 1]) << 8
                v = (w >> (bit & 7)) & mask
                if v > max_level:
                    return PQ_ERR_LEVEL_VALUE, 0
                out[o0 + k + j] = v
                if v == at_level:
                    n_at += 1
            k += take
            i += min(nbytes, s1 - i)
    return i - s0, n_at


@njit(cache=True, nogil=True)
def pq_dict_gather(src, s0, s1, dictionary, n_dict, out, o0, count):
    """A dictionary-encoded page's values: src[s0:s1] = one byte of bit width (0..32), then
    `count` indices in the RLE/bit-packed hybrid; out[o0 + k] = dictionary[index k]. Returns
    the bytes consumed (>= 0) or PQ_ERR_LEVELS (the data ends early), PQ_ERR_DICT_INDEX (an
    index >= n_dict, a bit width above 32), PQ_ERR_ARGS. An RLE run's index is checked even
    when no value of it is needed; the padding past `count` in a bit-packed run is not read.

    Assumes: src a C-contiguous uint8 array, dictionary and out C-contiguous arrays of one
    8-byte type (the caller passes int64 views: values are copied bit for bit); the ranges
    and n_dict <= len(dictionary) are checked here.
    """
    if (s0 < 0 or s1 < s0 or s1 > src.shape[0] or o0 < 0 or count < 0 or o0 + count > out.shape[0]
            or n_dict < 0 or n_dict > dictionary.shape[0]):
        return PQ_ERR_ARGS
    if s0 >= s1:
        return PQ_ERR_LEVELS if count > 0 else 0
    bit_width = _load_u8(src, s0)
    if bit_width > 32:
        return PQ_ERR_DICT_INDEX
    mask = (np.int64(1) << bit_width) - 1
    vbytes = (bit_width + 7) >> 3  # (an RLE run's index: little-endian, whole bytes)
    i = s0 + 1
    k = 0
    while k < count:
        # run header: a ULEB128 varint of at most 32 bits (each run consumes >= 1 byte: no hang)
        header = np.int64(0)
        shift = 0
        while True:
            if i >= s1 or shift > 28:
                return PQ_ERR_LEVELS
            b = _load_u8(src, i)
            i += 1
            header |= (b & 127) << shift
            shift += 7
            if b < 128:
                break
        if header & 1 == 0:  # RLE run: one index repeated
            if vbytes > s1 - i:
                return PQ_ERR_LEVELS
            v = np.int64(0)
            for q in range(vbytes):
                v |= _load_u8(src, i + q) << (8 * q)
            i += vbytes
            if v >= n_dict:
                return PQ_ERR_DICT_INDEX
            take = min(header >> 1, count - k)
            x = dictionary[v]
            for j in range(take):
                out[o0 + k + j] = x
            k += take
        else:  # bit-packed: groups of 8 indices, least significant bits first
            nbytes = (header >> 1) * bit_width
            take = min((header >> 1) * 8, count - k)
            if (take * bit_width + 7) >> 3 > s1 - i:
                return PQ_ERR_LEVELS
            # an index spans <= 5 bytes: one 8-byte load holds it while 8 bytes are left
            # (j * bit_width <= 8 * lim); the loop without that test runs ~3x faster
            lim = s1 - 8 - i
            fast = 0 if lim < 0 else (take if bit_width == 0 else min(take, (lim << 3) // bit_width + 1))
            base = o0 + k
            for j in range(fast):
                bit = j * bit_width
                v = (_load_u64(src, i + (bit >> 3)) >> (bit & 7)) & mask
                if v >= n_dict:
                    return PQ_ERR_DICT_INDEX
                out[base + j] = dictionary[v]
            for j in range(fast, take):  # (near the end: the bytes that exist, the index's all inside)
                bit = j * bit_width
                p = i + (bit >> 3)
                w = np.int64(0)
                for q in range(min(5, s1 - p)):
                    w |= _load_u8(src, p + q) << (8 * q)
                v = (w >> (bit & 7)) & mask
                if v >= n_dict:
                    return PQ_ERR_DICT_INDEX
                out[base + j] = dictionary[v]
            k += take
            i += min(nbytes, s1 - i)
    return i - s0


@njit(cache=True, nogil=True)
def pq_list_rows(rep, dl, n_levels, max_def, nullable, offsets, valid):
    """Rows of a list column from its levels rep[:n_levels], dl[:n_levels] (max repetition
    level 1; definition max_def = an element, max_def - 1 = an empty list, max_def - 2 = a
    null list when nullable). Writes offsets[:rows + 1] (from 0) and, when nullable,
    valid[:rows] (null rows: 0 and an empty range). Returns (status, rows, elements):
    status PQ_OK, PQ_ERR_ROWS (more rows than len(offsets) - 1, or levels no writer makes:
    a first level continuing a row, a row continuing after an empty or null list) or
    PQ_ERR_LEVEL_VALUE.

    Assumes: C-contiguous uint8 levels, int64 offsets, uint8 valid (len(valid) >=
    len(offsets) - 1 when nullable); checked here.
    """
    cap = offsets.shape[0] - 1
    if (n_levels < 0 or n_levels > rep.shape[0] or n_levels > dl.shape[0] or cap < 0
            or (nullable and valid.shape[0] < cap)):
        return PQ_ERR_ARGS, 0, 0
    r = -1
    e = 0
    open_row = False  # the last level was an element: the row may go on
    ones = np.int64(0x0101010101010101)
    full = ones * max_def
    i = -1
    while i + 1 < n_levels:
        i += 1
        # 8 levels that continue the row with elements: one compare of two words each
        while open_row and i + 8 <= n_levels and _load_u64(rep, i) == ones and _load_u64(dl, i) == full:
            e += 8
            i += 8
        if i >= n_levels:
            break
        rl = rep[i]
        d = np.int64(dl[i])
        if rl == 0:
            r += 1
            if r >= cap:
                return PQ_ERR_ROWS, 0, 0
            offsets[r] = e
            if nullable:
                valid[r] = 1
        elif rl == 1:
            if not open_row:
                return PQ_ERR_ROWS, 0, 0
        else:
            return PQ_ERR_LEVEL_VALUE, 0, 0
        if d == max_def:
            e += 1
            open_row = True
        elif rl != 0:
            return PQ_ERR_ROWS, 0, 0
        elif d == max_def - 1:
            open_row = False
        elif nullable and d == max_def - 2:
            valid[r] = 0
            open_row = False
        else:
            return PQ_ERR_LEVEL_VALUE, 0, 0
    offsets[r + 1] = e
    return PQ_OK, r + 1, e


@njit(cache=True, nogil=True)
def pq_scatter(dl, n, max_def, dense, n_dense, out, valid):
    """An optional flat column: out[i] = the next of dense[:n_dense] where dl[i] == max_def,
    else NaN; valid[i] = 1 or 0. Returns PQ_OK, or PQ_ERR_VALUES when the levels name
    another count of values than n_dense.

    Assumes: uint8 dl, float64 dense/out, uint8 valid; lengths checked here.
    """
    if n < 0 or n > dl.shape[0] or n > out.shape[0] or n > valid.shape[0] or n_dense > dense.shape[0]:
        return PQ_ERR_ARGS
    k = 0
    for i in range(n):
        if dl[i] == max_def:
            if k >= n_dense:
                return PQ_ERR_VALUES
            out[i] = dense[k]
            valid[i] = 1
            k += 1
        else:
            out[i] = np.nan
            valid[i] = 0
    return PQ_OK if k == n_dense else PQ_ERR_VALUES
