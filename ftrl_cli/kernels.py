"""Every Numba kernel of ftrl, in one module (Numba's file cache does not see edits to
helpers defined in other files).

Kernels take plain arrays and scalars. Callers validate; each kernel states what it
assumes. The optimizer is FTRL-Proximal, Algorithm 1 of McMahan et al., "Ad Click
Prediction: a View from the Trenches", KDD 2013, with TensorFlow/Keras's extensions
(lr_power, initial accumulator, L2 shrinkage).

Names follow the paper: alpha, beta, l1, l2 (lambda1, lambda2), z, n, w, g, sigma.
The state table `zn` is interleaved, shape (D, 2): zn[i, 0] = z_i, zn[i, 1] = n_i, so one
cache line serves both (twice as fast as separate arrays once D outgrows the cache).
"""

import math
import sys

import numpy as np
from numba import config as _numba_config
from numba import njit, types
from numba.extending import intrinsic, overload

# --------------------------------------------------------------------------------------
# Start-up
# --------------------------------------------------------------------------------------

def start_without_scipy() -> None:
    """Load Numba's CPU target now, without letting it import scipy.linalg.

    Numba's first compile or cache load imports scipy.linalg (about 0.2 s, a quarter of a
    small run) only to learn whether np.dot may call BLAS. No kernel here does. The answer
    is kept for the whole process, so only the command line calls this, never the
    library: a Python program may want Numba's linear algebra.
    """
    if _numba_config.DISABLE_JIT or "numba.np.arraymath" in sys.modules:
        return  # nothing to load, or already loaded
    blocked = [m for m in ("scipy", "scipy.linalg") if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # `import` raises ImportError
    try:
        last_newline(np.zeros(1, np.uint8), 0, 1)
    finally:
        for m in blocked:
            del sys.modules[m]


# --------------------------------------------------------------------------------------
# libsvm parsing
# --------------------------------------------------------------------------------------

# Error codes returned by parse_libsvm (messages live in readers.py).
OK = 0
ERR_LABEL = 1  # label is not a number
ERR_INDEX = 2  # feature index is not a non-negative integer
ERR_NO_VALUE = 3  # "idx" or "idx:" without a value
ERR_VALUE = 4  # feature value is not a number
ERR_INDEX_RANGE = 5  # index >= 2**62
ERR_BYTE = 6  # byte outside printable ASCII (invalid UTF-8, binary data, ...)
ERR_NO_LABEL = 7  # line starts with idx:value
ERR_ROW_TOO_BIG = 8  # one row has more features than the batch arrays hold
ERR_NAN = 9  # value or label parsed as inf (overflow) or nan
ERR_COST = 10  # cost:W with W not a number >= 0

MAX_INDEX = 1 << 62
_POW10 = np.array([10.0**k for k in range(23)])  # exact in float64 for k <= 22
_IPOW10 = np.array([10**k for k in range(19)], np.int64)
FAST_TAIL = 32  # the parser's fast path reads up to 32 bytes ahead of a token's start
_TWO53 = 1 << 53


@njit(cache=True, inline="always")
def _is_space(c):
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


@njit(cache=True, inline="always")
def _ends_token(c):
    # whitespace, newline or the start of a comment
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12 or c == 10 or c == 35


@njit(cache=True, inline="always")
def _parse_number(buf, i, end, pow10):
    """Parse a decimal float starting at buf[i].

    Returns (value, next_i, status): status 0 = exact (Clinger's fast path: an integer
    mantissa below 2**53 times or divided by an exact power of ten is correctly rounded),
    1 = syntactically valid but needs Python's float() (too many digits or a big
    exponent), -1 = not a number.
    """
    neg = False
    c = buf[i]
    if c == 45 or c == 43:  # - +
        neg = c == 45
        i += 1
    mant = np.int64(0)
    ndig = 0  # significant digits kept in mant
    dropped = 0  # digits that did not fit in mant
    exp10 = 0
    seen = False
    while i < end:
        c = buf[i]
        if 48 <= c <= 57:
            seen = True
            if ndig < 18:
                mant = mant * 10 + (np.int64(c) - 48)
                if mant != 0:
                    ndig += 1
            else:
                dropped += 1
                exp10 += 1
            i += 1
        else:
            break
    if i < end and buf[i] == 46:  # .
        i += 1
        while i < end:
            c = buf[i]
            if 48 <= c <= 57:
                seen = True
                if ndig < 18:
                    mant = mant * 10 + (np.int64(c) - 48)
                    if mant != 0:
                        ndig += 1
                    exp10 -= 1
                else:
                    dropped += 1
                i += 1
            else:
                break
    if not seen:
        return 0.0, i, -1
    if i < end and (buf[i] == 101 or buf[i] == 69):  # e E
        i += 1
        eneg = False
        if i < end and (buf[i] == 45 or buf[i] == 43):
            eneg = buf[i] == 45
            i += 1
        e = 0
        edig = 0
        while i < end and 48 <= buf[i] <= 57:
            if e < 100000:
                e = e * 10 + (np.int64(buf[i]) - 48)
            edig += 1
            i += 1
        if edig == 0:
            return 0.0, i, -1
        exp10 += -e if eneg else e
    if i < end and not _ends_token(buf[i]):
        return 0.0, i, -1
    if dropped > 0 and mant != 0:
        # Only exact when every dropped digit was a zero; let Python decide.
        return 0.0, i, 1
    if mant == 0:
        v = 0.0
    elif mant < _TWO53 and -22 <= exp10 <= 22:
        if exp10 >= 0:
            v = float(mant) * pow10[exp10]
        else:
            v = float(mant) / pow10[-exp10]
    else:
        return 0.0, i, 1
    return (-v if neg else v), i, 0


@njit(cache=True, inline="always")
def _parse_value(buf, i, end, pow10):
    """_parse_number with an inlined fast path for short plain integers ("1", "-1", "37"),
    which is what one-hot CTR data and most labels are."""
    j = i
    neg = False
    if j < end and (buf[j] == 45 or buf[j] == 43):
        neg = buf[j] == 45
        j += 1
    k = j
    iv = np.int64(0)
    while k < end and k - j < 15 and 48 <= buf[k] <= 57:
        iv = iv * 10 + (np.int64(buf[k]) - 48)
        k += 1
    if k > j and (k >= end or _ends_token(buf[k])):
        v = float(iv)
        return (-v if neg else v), k, 0
    return _parse_number(buf, i, end, pow10)


if _numba_config.DISABLE_JIT:

    def _digits8(buf, i):
        """Plain-Python twin of the SWAR version below (NUMBA_DISABLE_JIT=1)."""
        d = 0
        x = 0
        while d < 8 and 48 <= buf[i + d] <= 57:
            x = x * 10 + int(buf[i + d]) - 48
            d += 1
        return d, x

else:

    @intrinsic
    def _load_u64(typingctx, buf, i):
        """buf[i:i+8] as one little-endian uint64 (an unaligned load).

        # Assumes: buf is a C-contiguous uint8 array and i + 8 <= len(buf).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])
            return builder.load(builder.bitcast(ptr, ir.IntType(64).as_pointer()), align=1)

        return types.uint64(buf, types.intp), codegen

    @intrinsic
    def _ctz64(typingctx, x):
        """Count of trailing zero bits (LLVM's cttz; x != 0)."""
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            i64 = ir.IntType(64)
            fnty = ir.FunctionType(i64, [i64, ir.IntType(1)])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.cttz.i64")
            return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 0)])

        return types.uint64(types.uint64), codegen

    @njit(cache=True, inline="always")
    def _digits8(buf, i):
        """(d, x): d = how many of buf[i:i+8] are ASCII digits before the first non-digit
        (8: all of them), x = the integer they spell. SWAR: eight bytes per step with no
        branch per digit, as in simdjson (Lemire); the digit loop's exit branch was the
        parser's main cost, because ids have 1 to 8 digits at random.

        # Assumes: i + 8 <= len(buf).
        """
        v = _load_u64(buf, i)
        t = v - np.uint64(0x3030303030303030)  # byte - '0'
        # high bit set in each byte that is not 0..9 (borrows only run into later bytes)
        bad = (t | (t + np.uint64(0x7676767676767676))) & np.uint64(0x8080808080808080)
        if bad == 0:
            d = np.uint64(8)
            x = t
        else:
            d = _ctz64(bad) >> np.uint64(3)
            # keep the d digits, as the high bytes: the low ones become leading zeros
            x = (t << ((np.uint64(64) - d * np.uint64(8)) & np.uint64(63))) if d > 0 else np.uint64(0)
        x = x * np.uint64(10) + (x >> np.uint64(8))  # pairs of digits
        x = (((x & np.uint64(0x000000FF000000FF)) * np.uint64(100 + (1000000 << 32)))
             + (((x >> np.uint64(16)) & np.uint64(0x000000FF000000FF)) * np.uint64(1 + (10000 << 32)))
             ) >> np.uint64(32)
        return np.int64(d), np.int64(x)


@njit(cache=True, nogil=True)
def parse_libsvm(buf, start, end, labels, indptr, ids, values, slow, max_rows, weights):
    """Parse complete libsvm lines in buf[start:end] into a CSR batch.

    # Assumes: buf[start:end] ends at a line end, or at the end of the input;
    #          len(indptr) >= max_rows + 1, len(labels) >= max_rows; slow has shape (K, 3).

    Rules: `#` starts a comment (to end of line); blank and comment-only lines are
    skipped; `qid:N` tokens are skipped; values equal to 0 are not stored (the paper's
    I = {i : x_i != 0}). Rows may be unsorted or repeat an index: `unsorted` counts such
    rows, and canonicalize() fixes them.

    Fills labels[:rows], indptr[:rows+1], ids/values[:nnz]. Numbers that need Python's
    float() are listed in slow[k] = (kind 0=label 1=value 2=cost, output position, byte start).
    SVMlight's `cost:W` token sets the row's importance weight: weights[r] (1 when absent).

    Returns (pos, rows, nnz, lines, nslow, max_id, unsorted, err, err_pos): pos is the
    byte after the last complete row taken; lines counts the newlines consumed;
    err != 0 means buf[err_pos] is where the offending token starts.
    """
    nrows = 0
    nnz = 0
    lines = 0
    nslow = 0
    max_id = np.int64(-1)
    unsorted = 0
    max_nnz = len(ids)
    max_slow = slow.shape[0]
    i = start
    indptr[0] = 0
    pow10 = _POW10
    buflen = len(buf)
    while i < end and nrows < max_rows:
        line_start = i
        # leading blanks
        while i < end and _is_space(buf[i]):
            i += 1
        if i >= end:
            i = end
            break
        c = buf[i]
        if c == 10 or c == 35:  # blank or comment-only line
            while i < end and buf[i] != 10:
                i += 1
            if i < end:
                i += 1
                lines += 1
            continue
        if c > 126 or c < 32:
            return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_BYTE, i
        # label
        tok = i
        slow_at_row = nslow
        v, i, st = _parse_value(buf, i, end, pow10)
        if st < 0:
            # say "missing label" when the line starts with idx:value
            j = tok
            while j < end and 48 <= buf[j] <= 57:
                j += 1
            if j > tok and j < end and buf[j] == 58:
                return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_NO_LABEL, tok
            return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_LABEL, tok
        if st == 1:
            if nslow >= max_slow:
                if nrows == 0:
                    return line_start, 0, 0, lines, 0, max_id, 0, ERR_ROW_TOO_BIG, line_start
                i = line_start
                break  # finish the batch here; the caller resolves the slow numbers
            slow[nslow, 0] = 0
            slow[nslow, 1] = nrows
            slow[nslow, 2] = tok
            nslow += 1
        row_nnz_start = nnz
        labels[nrows] = v
        weights[nrows] = 1.0
        prev = np.int64(-1)
        is_unsorted = False
        full = False
        # features
        while True:
            while i < end and _is_space(buf[i]):
                i += 1
            if i >= end:
                break
            c = buf[i]
            if c == 10:
                break
            if c == 35:
                while i < end and buf[i] != 10:
                    i += 1
                break
            tok = i
            fast = False
            if 48 <= c <= 57 and i + FAST_TAIL <= buflen:
                # Fast path for the usual token: id of <= 8 digits ':' [-]value, the value
                # an integer or a decimal of <= 15 digits in all. Anything else (and any
                # token that would end past `end`) takes the general code below.
                d1, fid = _digits8(buf, i)
                k = i + d1
                if buf[k] == 58:
                    k += 1
                    neg = buf[k] == 45
                    if neg:
                        k += 1
                    d2, iv = _digits8(buf, k)
                    k += d2
                    c2 = buf[k]
                    ok = False
                    if d2 > 0:
                        if c2 == 46:  # '.'
                            d3, fv = _digits8(buf, k + 1)
                            k += 1 + d3
                            if d2 + d3 <= 15 and (k >= end or _ends_token(buf[k])):
                                # mantissa < 2**53 over an exact power of ten: correctly
                                # rounded, and the same bits as _parse_number gives
                                v = float(iv * _IPOW10[d3] + fv) / pow10[d3]
                                ok = True
                        elif k >= end or _ends_token(c2):
                            v = float(iv)
                            ok = True
                    if ok and k <= end:
                        i = k
                        idx = fid
                        v = -v if neg else v
                        st = 0
                        vtok = tok
                        fast = True
            if not fast:  # the general code: any token, exact errors
                if c == 113 and i + 3 < end and buf[i + 1] == 105 and buf[i + 2] == 100 and buf[i + 3] == 58:
                    # qid:N is tolerated and ignored
                    i += 4
                    while i < end and not _ends_token(buf[i]):
                        i += 1
                    continue
                if (c == 99 and i + 4 < end and buf[i + 1] == 111 and buf[i + 2] == 115 and buf[i + 3] == 116
                        and buf[i + 4] == 58):
                    # cost:W (SVMlight's per-example cost factor) is the row's weight
                    i += 5
                    wtok = i
                    if i >= end or _ends_token(buf[i]):
                        return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_COST, tok
                    v, i, st = _parse_number(buf, i, end, pow10)
                    if st < 0 or (st == 0 and v < 0) or buf[wtok] == 45:
                        return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_COST, tok
                    if st == 1:
                        if nslow >= max_slow:
                            full = True
                            break
                        slow[nslow, 0] = 2
                        slow[nslow, 1] = nrows
                        slow[nslow, 2] = wtok
                        nslow += 1
                    weights[nrows] = v
                    continue
                if c > 126 or c < 32:
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_BYTE, i
                idx = np.int64(0)
                nd = 0
                too_big = False
                while i < end and 48 <= buf[i] <= 57:
                    if idx > MAX_INDEX // 10:  # one more digit could overflow int64
                        too_big = True
                    else:
                        idx = idx * 10 + (np.int64(buf[i]) - 48)
                    nd += 1
                    i += 1
                if nd == 0:
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_INDEX, tok
                if too_big or idx >= MAX_INDEX:
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_INDEX_RANGE, tok
                if i >= end or buf[i] != 58:
                    if i >= end or _ends_token(buf[i]):
                        return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_NO_VALUE, tok
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_INDEX, tok
                i += 1
                if i >= end or _ends_token(buf[i]):
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_NO_VALUE, tok
                vtok = i
                v, i, st = _parse_value(buf, i, end, pow10)
                if st < 0:
                    if buf[vtok] > 126:
                        return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_BYTE, vtok
                    if i < end and buf[i] > 126:
                        return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_BYTE, i
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_VALUE, vtok
            if st == 0 and v == 0.0:
                continue  # explicit zero: not a feature of this row
            if nnz >= max_nnz:
                full = True
                break
            if st == 1:
                if nslow >= max_slow:
                    full = True
                    break
                slow[nslow, 0] = 1
                slow[nslow, 1] = nnz
                slow[nslow, 2] = vtok
                nslow += 1
            if idx <= prev:
                is_unsorted = True
            prev = idx
            if idx > max_id:
                max_id = idx
            ids[nnz] = idx
            values[nnz] = v
            nnz += 1
        if full:
            if nrows == 0:
                return line_start, 0, 0, lines, 0, max_id, 0, ERR_ROW_TOO_BIG, line_start
            nnz = row_nnz_start
            nslow = slow_at_row
            i = line_start
            break
        if i < end:  # at the newline
            i += 1
            lines += 1
        if is_unsorted:
            unsorted += 1
        nrows += 1
        indptr[nrows] = nnz
    return i, nrows, nnz, lines, nslow, max_id, unsorted, OK, 0


@njit(cache=True, nogil=True)
def canonicalize(indptr, ids, values, nrows):
    """Sort each row by id, sum repeated ids, drop zero values; compacts in place.

    # Assumes: indptr[:nrows+1] describes ids/values. Returns the new nnz.
    The sum rule treats a row as the vector x: `3:1 3:2` means x_3 = 3.
    """
    out = 0
    begin = indptr[0]
    for r in range(nrows):
        end = indptr[r + 1]
        # insertion sort of the row segment (rows are short; usually already sorted)
        for a in range(begin + 1, end):
            key = ids[a]
            val = values[a]
            b = a - 1
            while b >= begin and ids[b] > key:
                ids[b + 1] = ids[b]
                values[b + 1] = values[b]
                b -= 1
            ids[b + 1] = key
            values[b + 1] = val
        row_out = out
        k = begin
        while k < end:
            cur = ids[k]
            acc = values[k]
            k += 1
            while k < end and ids[k] == cur:
                acc += values[k]
                k += 1
            if acc != 0.0:
                ids[out] = cur
                values[out] = acc
                out += 1
        indptr[r] = row_out
        begin = end
    indptr[nrows] = out
    return out


@njit(cache=True, nogil=True)
def last_newline(buf, start, end):
    """Index of the last b'\\n' in buf[start:end], or -1.

    # Assumes: 0 <= start <= end <= len(buf).
    """
    for i in range(end - 1, start - 1, -1):
        if buf[i] == 10:
            return i
    return -1


# --------------------------------------------------------------------------------------
# Feature id -> table slot
# --------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _mix64(x):
    # splitmix64's finalizer: a fixed, well-spread 64-bit bijection (stable everywhere)
    x = np.uint64(x)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return x


@njit(cache=True, inline="always")
def _slot(fid, cap):
    """Ids below the table capacity keep their own slot; larger ids are hashed into it."""
    if fid < cap:
        return fid
    return np.int64(_mix64(fid) & np.uint64(cap - 1))


@njit(cache=True, nogil=True)
def slots_of(ids, cap, out):
    """out[k] = slot of ids[k] for a table of capacity cap (a power of two)."""
    for k in range(len(ids)):
        out[k] = _slot(ids[k], cap)


# --------------------------------------------------------------------------------------
# Memory prefetch
# --------------------------------------------------------------------------------------

if _numba_config.DISABLE_JIT:

    def _prefetch_intrinsic(table, i):
        """No-op without the JIT (NUMBA_DISABLE_JIT=1 runs the kernels as plain Python)."""

else:

    @intrinsic
    def _prefetch_intrinsic(typingctx, table, i):
        """Hint the CPU to fetch row i of table (1-D or 2-D) into cache for writing.

        # Assumes: table is C-contiguous and 0 <= i < table.shape[0]
        #          (a prefetch of a bad address is harmless, but keep it in range).
        The state table is far larger than the cache and feature ids are scattered, so
        most rows wait on memory; fetching the next row's slots while this row computes
        hides that wait (about 1.8x on a 2^24-slot table).
        """
        from llvmlite import ir
        from numba.core import cgutils

        def codegen(context, builder, signature, args):
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            zero = context.get_constant(types.intp, 0)
            index = [args[1]] + [zero] * (aryty.ndim - 1)
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, index)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            # (address, 1 = for a write, 3 = keep in all cache levels, 1 = data)
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1), ir.Constant(i32, 3),
                              ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(table, types.intp), codegen


@njit(cache=True, inline="always")
def prefetch_row(table, i):
    # a jitted wrapper, so that a kernel's py_func (plain Python) can call it too
    _prefetch_intrinsic(table, i)


# --------------------------------------------------------------------------------------
# FTRL-Proximal
# --------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _weight(z, n, alpha, beta, l1, l2, p):
    """Closed-form w from (z, n): 0 if |z| <= l1, else -(z - sgn(z) l1) / ((beta + n^p)/alpha + l2)."""
    if abs(z) <= l1:
        return 0.0
    if p == 0.5:
        root = np.sqrt(n)
    else:
        root = n**p
    denom = (beta + root) / alpha + l2
    if z > 0:
        return -(z - l1) / denom
    return -(z + l1) / denom


@njit(cache=True, inline="always")
def _root(n, p):
    """n^p, with sqrt for the paper's p = 0.5."""
    if p == 0.5:
        return np.sqrt(n)
    return n**p


@njit(cache=True, inline="always")
def _weight_root(z, root, alpha, beta, l1, l2):
    """_weight with n^p given, without a branch on |z| <= l1: whether a weight is zeroed
    is a coin flip for the CPU's branch predictor, and a select costs less than a miss.
    The division runs either way, so callers compile with error_model="numpy": a zero
    denominator (beta = 0, n = 0, only where z = 0 too) gives inf/nan that is not selected."""
    denom = (beta + root) / alpha + l2
    num = z - l1 if z > 0 else z + l1
    w = -num / denom
    return 0.0 if abs(z) <= l1 else w


@njit(cache=True, inline="always")
def _sigma(n, n_new, alpha, p):
    if p == 0.5:
        return (np.sqrt(n_new) - np.sqrt(n)) / alpha
    return (n_new**p - n**p) / alpha


@njit(cache=True, inline="always")
def _sigmoid(m):
    if m >= 0:
        return 1.0 / (1.0 + np.exp(-m))
    e = np.exp(m)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def _logloss(m, y):
    # -[y log p + (1-y) log(1-p)] with p = sigmoid(m), written to never overflow
    return np.log1p(np.exp(-abs(m))) + max(m, 0.0) - y * m


def _to_state(table, x):
    """x as a scalar of the state table's dtype (float32 tables do float32 math)."""
    return table.dtype.type(x)  # (plain Python; jitted code uses the overload below)


@overload(_to_state, inline="always")
def _to_state_impl(table, x):
    cast = table.dtype

    def impl(table, x):
        return cast(x)

    return impl


@njit(cache=True, nogil=True, error_model="numpy")  # IEEE division: see _weight_root
def ftrl_online(indptr, ids, values, labels, weights, zn, bias_zn, cap,
                alpha, beta, l1, l2, l2_shrinkage, p, bias_l1, bias_l2, use_bias, margins, loss0=0.0):
    """Train per example (Algorithm 1), lazily: only the coordinates present in a row.

    # Assumes: every slot of ids is < len(zn) (ids < cap keep their slot, larger ids are
    #          hashed into [0, cap) and then len(zn) == cap); labels are 0/1;
    #          p = -lr_power > 0; len(margins) == number of rows; bias_zn has zn's dtype.

    indptr, ids, values : CSR rows (int64, int64, float64); weights: float64 per-row
    importance (multiplies g). zn : (D, 2) z and n, modified in place; bias_zn : (2,)
    the bias's (z, n), modified in place. margins : out, the margin x.w used for each
    row's prediction *before* its update (progressive validation).
    Per-coordinate arithmetic runs in the state's precision: float64 is Algorithm 1 to the
    last bit; a float32 table also computes in float32 (as VW does: ~1.25x faster), while
    margins, the sigmoid and the loss stay float64.
    Returns loss0 plus the rows' progressive log loss (weighted), added row by row: pass the
    running total as loss0 and it does not depend on where batches end.
    """
    nrows = len(indptr) - 1
    loss = loss0
    maxlen = 0
    for r in range(nrows):
        ln = indptr[r + 1] - indptr[r]
        if ln > maxlen:
            maxlen = ln
    wbuf = np.empty(maxlen, zn.dtype)
    rbuf = np.empty(maxlen, zn.dtype)
    sbuf = np.empty(maxlen, np.int64)
    # the settings in the state's precision
    alpha_s, beta_s, p_s = _to_state(zn, alpha), _to_state(zn, beta), _to_state(zn, p)
    l1_s, l2_s, two_s = _to_state(zn, l1), _to_state(zn, l2), _to_state(zn, 2.0 * l2_shrinkage)
    bl1_s, bl2_s = _to_state(zn, bias_l1), _to_state(zn, bias_l2)
    for r in range(nrows):
        a = indptr[r]
        b = indptr[r + 1]
        if r + 1 < nrows:  # start fetching the next row's state now
            for k in range(b, indptr[r + 2]):
                prefetch_row(zn, _slot(ids[k], cap))
        # predict: every load is independent, so the CPU overlaps the cache misses
        m = 0.0
        for k in range(a, b):
            s = _slot(ids[k], cap)
            sbuf[k - a] = s
            root = _root(zn[s, 1], p_s)
            rbuf[k - a] = root  # n^p, reused by the update
            w = _to_state(zn, _weight_root(zn[s, 0], root, alpha_s, beta_s, l1_s, l2_s))
            wbuf[k - a] = w
            m += np.float64(w) * values[k]
        wb = _to_state(zn, 0.0)
        rb = _root(bias_zn[1], p_s)
        if use_bias:
            wb = _to_state(zn, _weight_root(bias_zn[0], rb, alpha_s, beta_s, bl1_s, bl2_s))
            m += np.float64(wb)
        margins[r] = m
        y = labels[r]
        iw = weights[r]
        # log loss and sigmoid from one exp (same formulas as _logloss and _sigmoid)
        e = np.exp(-abs(m))
        loss += iw * (np.log1p(e) + max(m, 0.0) - y * m)
        g0 = ((1.0 / (1.0 + e) if m >= 0 else e / (1.0 + e)) - y) * iw
        # update
        for k in range(a, b):
            s = sbuf[k - a]
            w = wbuf[k - a]
            g = _to_state(zn, g0 * values[k])
            n_new = zn[s, 1] + g * g
            sigma = (_root(n_new, p_s) - rbuf[k - a]) / alpha_s
            zn[s, 0] = zn[s, 0] + (g + two_s * w) - sigma * w
            zn[s, 1] = n_new
        if use_bias:
            gb = _to_state(zn, g0)
            n_new = bias_zn[1] + gb * gb
            sigma = (_root(n_new, p_s) - rb) / alpha_s
            bias_zn[0] = bias_zn[0] + (gb + two_s * wb) - sigma * wb
            bias_zn[1] = n_new
    return loss


@njit(cache=True, nogil=True)
def weights_from_state(zn, alpha, beta, l1, l2, p, out):
    """out[i] = w_i computed from (z_i, n_i), in the state's precision (as ftrl_online).

    # Assumes: zn has shape (D, >= 2) with z, n in columns 0, 1; len(out) >= D.
    """
    alpha_s, beta_s, p_s = _to_state(zn, alpha), _to_state(zn, beta), _to_state(zn, p)
    l1_s, l2_s = _to_state(zn, l1), _to_state(zn, l2)
    for i in range(zn.shape[0]):
        out[i] = _to_state(zn, _weight_root(zn[i, 0], _root(zn[i, 1], p_s), alpha_s, beta_s, l1_s, l2_s))


@njit(cache=True, nogil=True, error_model="numpy")  # IEEE division: see _weight_root
def margins_state(indptr, ids, values, st, cap, online, alpha, beta, l1, l2, p, bias_w, out):
    """out[r] = x_r . w + bias_w, w read from the optimizer state: computed from (z, n) for
    online FTRL (the same arithmetic as weights_from_state), column COL_W otherwise. Scoring
    needs no float64 copy of the whole table: for a big table, computing the touched
    weights costs less than writing every one (and saves the copy's memory).

    # Assumes: st has shape (D, K), D <= cap, cap a power of two; slots beyond D were
    #          never trained and weigh 0 (checked here: predict data may hold unseen ids).
    """
    D = st.shape[0]
    nrows = len(indptr) - 1
    alpha_s, beta_s, p_s = _to_state(st, alpha), _to_state(st, beta), _to_state(st, p)
    l1_s, l2_s = _to_state(st, l1), _to_state(st, l2)
    for r in range(nrows):
        if r + 1 < nrows:
            for k in range(indptr[r + 1], indptr[r + 2]):
                s = _slot(ids[k], cap)
                if s < D:
                    prefetch_row(st, s)
        m = bias_w
        for k in range(indptr[r], indptr[r + 1]):
            s = _slot(ids[k], cap)
            if s < D:
                if online:
                    w = np.float64(_to_state(st, _weight_root(st[s, 0], _root(st[s, 1], p_s), alpha_s,
                                                               beta_s, l1_s, l2_s)))
                else:
                    w = np.float64(st[s, COL_W])
                m += w * values[k]
        out[r] = m


@njit(cache=True, nogil=True)
def sigmoid_array(m, out):
    # Assumes: len(out) >= len(m).
    for i in range(len(m)):
        out[i] = _sigmoid(m[i])


@njit(cache=True, nogil=True)
def running_logloss(total, m, y, weights, out):
    """out[i] = total + the weighted log losses of rows 0..i, added in order with the very
    arithmetic ftrl_online and train_minibatch use (so a curve point matches their sums).

    # Assumes: m, y, weights and out have the same length.
    """
    for i in range(len(m)):
        total += weights[i] * _logloss(m[i], y[i])
        out[i] = total


@njit(cache=True, nogil=True)
def logloss_sum(m, y, weights):
    """Weighted sum of log losses from margins m and 0/1 labels y."""
    # Assumes: y and weights are as long as m.
    s = 0.0
    for i in range(len(m)):
        s += weights[i] * _logloss(m[i], y[i])
    return s


# --------------------------------------------------------------------------------------
# Mini-batch optimizers (Keras 3 / TF / MXNet FTRL, tensorflow-addons NovoGrad)
# --------------------------------------------------------------------------------------
# State for mini-batch training is one interleaved table st (D, K) plus the bias's row
# bst (K,). FTRL columns: 0 z, 1 n, 2 w; NovoGrad: 0 m (momentum), 1 unused, 2 w.
# Optional columns (index in flags): EMA of w, accumulated gradient.
# Hyperparameters travel in hp (float64) and flags (int64); NaN in hp means "off".

HP_BETA, HP_L1, HP_L2, HP_SHRINK, HP_P, HP_BIAS_L1, HP_BIAS_L2, HP_WD = 0, 1, 2, 3, 4, 5, 6, 7
HP_CLIPNORM, HP_GCLIPNORM, HP_CLIPVALUE, HP_EMA_MOM, HP_LOSS_SCALE, HP_GSCALE = 8, 9, 10, 11, 12, 13
HP_BIAS_LR, HP_BETA1, HP_BETA2, HP_EPS = 14, 15, 16, 17
N_HP = 18
FL_DENSE, FL_BIAS, FL_EMA_COL, FL_ACC_COL, FL_ACCUM, FL_EMA_FREQ = 0, 1, 2, 3, 4, 5
FL_NOVOGRAD, FL_AMSGRAD, FL_GRAD_AVG = 6, 7, 8
N_FL = 9
COL_Z, COL_N, COL_W, COL_M = 0, 1, 2, 0
# layer scalars ls: NovoGrad v and vhat for the weight vector and the bias
LS_V_W, LS_V_B, LS_VHAT_W, LS_VHAT_B = 0, 1, 2, 3


@njit(cache=True, inline="always")
def _ftrl_step(st, i, g, lr, beta, l1, l2, two_s, p):
    """One Keras/TF FTRL step on coordinate i with gradient g (stored weight in column 2).

    gs = g + 2 s w ; n' = n + g^2 ; z += gs - (n'^p - n^p)/lr * w ; w = f(z, n', lr).
    A learning rate of 0 (a schedule reaching 0, a bias_lr_mult of 0) leaves the coordinate
    as it is (Keras would divide by 0 and give NaN).
    """
    if lr == 0.0:
        return
    w = np.float64(st[i, 2])
    n = np.float64(st[i, 1])
    n_new = n + g * g
    z = np.float64(st[i, 0]) + ((g + two_s * w) - _sigma(n, n_new, lr, p) * w)
    st[i, 0] = z
    st[i, 1] = n_new
    st[i, 2] = _weight(z, n_new, lr, beta, l1, l2, p)


@njit(cache=True, inline="always")
def _clip_norm(g, sumsq, c):
    """Keras clip_by_norm of one element: g * c / max(||g||, c)."""
    return g * c / max(np.sqrt(sumsq), c)


@njit(cache=True, nogil=True)
def train_minibatch(indptr, ids, values, y, sw, cap, B, lrs, it0, st, bst, ls, hp, fl,
                    gbuf, mark, touched, margins, loss0=0.0):
    """Mini-batch training: per batch of B rows, the gradient of the mean weighted log loss,
    then one optimizer step (Keras 3 order: loss scale -> accumulation -> clip -> weight
    decay -> update -> EMA).

    # Assumes: every slot of ids is < st.shape[0] (see ftrl_online); gbuf float64[D] is all
    #          zeros and mark uint8[D] all zeros on entry (both are left so); touched int64[D];
    #          lrs holds one learning rate per step (ceil(rows / B)); the bias's lr is
    #          lr * hp[HP_BIAS_LR]. it0 = optimizer iterations before the first step.

    dense (fl[FL_DENSE]=1): every allocated coordinate is updated each step (Keras);
    lazy: only the coordinates present in the batch (TF sparse ops, MXNet row_sparse).
    Returns (loss0 + summed weighted progressive log loss, row by row; steps taken). margins[r] gets the
    margin of row r under the weights before its batch's step.
    """
    nrows = len(indptr) - 1
    D = st.shape[0]
    dense = fl[FL_DENSE] == 1
    use_bias = fl[FL_BIAS] == 1
    ema_col = fl[FL_EMA_COL]
    acc_col = fl[FL_ACC_COL]
    accum = fl[FL_ACCUM]
    ema_freq = fl[FL_EMA_FREQ]
    novograd = fl[FL_NOVOGRAD] == 1
    beta, l1, l2, p = hp[HP_BETA], hp[HP_L1], hp[HP_L2], hp[HP_P]
    two_s = 2.0 * hp[HP_SHRINK]
    wd = hp[HP_WD]
    loss = loss0
    step = 0
    r0 = 0
    while r0 < nrows:
        r1 = min(r0 + B, nrows)
        nb = np.float64(r1 - r0)
        it = it0 + step
        lr = lrs[step]
        blr = lr * hp[HP_BIAS_LR]
        # ---- forward with the stored weights, gradient of the mean loss --------------
        nt = 0
        gb = 0.0
        for r in range(r0, r1):
            if r + 1 < nrows:  # fetch the next row's state and gradient slots meanwhile
                for k in range(indptr[r + 1], indptr[r + 2]):
                    s = _slot(ids[k], cap)
                    prefetch_row(st, s)
                    prefetch_row(gbuf, s)
                    prefetch_row(mark, s)
            m = 0.0
            for k in range(indptr[r], indptr[r + 1]):
                m += st[_slot(ids[k], cap), COL_W] * values[k]
            if use_bias:
                m += bst[COL_W]
            margins[r] = m
            loss += sw[r] * _logloss(m, y[r])
            res = (_sigmoid(m) - y[r]) * sw[r] / nb
            for k in range(indptr[r], indptr[r + 1]):
                s = _slot(ids[k], cap)
                if mark[s] == 0:
                    mark[s] = 1
                    touched[nt] = s
                    nt += 1
                gbuf[s] += res * values[k]
            gb += res
        # the coordinates this step updates
        if dense:
            nt = D
            for i in range(D):
                touched[i] = i
        if not np.isnan(hp[HP_LOSS_SCALE]):  # Keras scales the loss, then unscales grads
            f = hp[HP_LOSS_SCALE]
            inv_f = 1.0 / f  # g / f, folded to g * (1/f) in TF's graph
            for t in range(nt):
                gbuf[touched[t]] = (gbuf[touched[t]] * f) * inv_f
            gb = (gb * f) * inv_f
        if hp[HP_GSCALE] != 1.0:  # MXNet rescale_grad (relative to the batch mean)
            for t in range(nt):
                gbuf[touched[t]] *= hp[HP_GSCALE]
            gb *= hp[HP_GSCALE]
        apply = True
        if accum > 1:  # Keras gradient accumulation (dense only; checked by the caller)
            if (it + 1) % accum != 0:
                apply = False
                for i in range(D):
                    st[i, acc_col] += gbuf[i]
                bst[acc_col] += gb
            else:  # (g + acc) / k, folded to (g + acc) * (1/k)
                inv_k = 1.0 / accum
                for i in range(D):
                    gbuf[i] = (gbuf[i] + st[i, acc_col]) * inv_k
                    st[i, acc_col] = 0.0
                gb = (gb + bst[acc_col]) * inv_k
                bst[acc_col] = 0.0
        if apply:
            # ---- clipping: exactly one kind is on ---------------------------------------
            if not np.isnan(hp[HP_CLIPNORM]):
                sq = 0.0
                for t in range(nt):
                    sq += gbuf[touched[t]] ** 2
                c = hp[HP_CLIPNORM]  # per tensor: the weight vector, then the bias
                for t in range(nt):
                    gbuf[touched[t]] = _clip_norm(gbuf[touched[t]], sq, c)
                gb = _clip_norm(gb, gb * gb, c)
            elif not np.isnan(hp[HP_GCLIPNORM]):
                sq = gb * gb if use_bias else 0.0
                for t in range(nt):
                    sq += gbuf[touched[t]] ** 2
                c = hp[HP_GCLIPNORM]
                if sq > 0.0:  # an all-zero gradient is left as is (Keras: scale 1)
                    f = c * min(1.0 / np.sqrt(sq), 1.0 / c)
                    for t in range(nt):
                        gbuf[touched[t]] *= f
                    gb *= f
            elif not np.isnan(hp[HP_CLIPVALUE]):
                c = hp[HP_CLIPVALUE]
                for t in range(nt):
                    gbuf[touched[t]] = min(max(gbuf[touched[t]], -c), c)
                gb = min(max(gb, -c), c)
            # ---- decoupled weight decay: w <- w - w * wd * lr --------------------------
            if wd != 0.0 and not novograd:  # (NovoGrad's wd is part of its own step)
                for t in range(nt):
                    i = touched[t]
                    st[i, COL_W] = st[i, COL_W] - st[i, COL_W] * wd * lr
                if use_bias:
                    bst[COL_W] = bst[COL_W] - bst[COL_W] * wd * blr
            # ---- update ---------------------------------------------------------------
            if not novograd:
                for t in range(nt):
                    if t + 16 < nt:  # the touched slots are scattered: fetch ahead
                        prefetch_row(st, touched[t + 16])
                        prefetch_row(gbuf, touched[t + 16])
                    _ftrl_step(st, touched[t], gbuf[touched[t]], lr, beta, l1, l2, two_s, p)
                if use_bias:
                    _ftrl_step(bst.reshape(1, -1), 0, gb, blr, beta, hp[HP_BIAS_L1], hp[HP_BIAS_L2], two_s, p)
            else:
                _novograd_layer(st, touched, nt, gbuf, lr, it, hp, fl, ls, LS_V_W, LS_VHAT_W)
                if use_bias:
                    gbb = np.empty(1)
                    gbb[0] = gb
                    one = np.zeros(1, np.int64)
                    _novograd_layer(bst.reshape(1, -1), one, 1, gbb, blr, it, hp, fl, ls, LS_V_B, LS_VHAT_B)
        # ---- exponential moving average of the weights (Keras use_ema) --------------
        # Runs on every step, also the accumulate-only ones, with Keras's *divided* counter
        # iterations = it // k: momentum 0 while it is 0, overwrite when (c + 1) % freq == 0.
        if ema_col >= 0:
            c_it = it // accum if accum > 1 else it
            mom = hp[HP_EMA_MOM] if c_it != 0 else 0.0
            for i in range(D):
                st[i, ema_col] = mom * st[i, ema_col] + (1.0 - mom) * st[i, COL_W]
            bst[ema_col] = mom * bst[ema_col] + (1.0 - mom) * bst[COL_W]
            if ema_freq > 0 and (c_it + 1) % ema_freq == 0:
                for i in range(D):
                    st[i, COL_W] = st[i, ema_col]
                bst[COL_W] = bst[ema_col]
        # ---- reset the scratch buffers ----------------------------------------------
        if dense:
            for i in range(D):
                gbuf[i] = 0.0
                mark[i] = 0
        else:
            for t in range(nt):
                gbuf[touched[t]] = 0.0
                mark[touched[t]] = 0
        step += 1
        r0 = r1
    return loss, step


@njit(cache=True)
def _novograd_layer(st, touched, nt, g, lr, it, hp, fl, ls, v_at, vhat_at):
    """tensorflow-addons NovoGrad on one layer (the weight vector, or the bias).

    v = sum(g^2) on the first step, else beta2 v + (1-beta2) sum(g^2)  (a layer scalar);
    d = sqrt(v) + eps (amsgrad: sqrt(max(vhat, v)) + eps); G = g/d + wd w;
    G *= (1-beta1) after the first step when grad_averaging; m = beta1 m - lr G; w += m.
    """
    b1, b2, eps, wd = hp[HP_BETA1], hp[HP_BETA2], hp[HP_EPS], hp[HP_WD]
    g2 = 0.0
    for t in range(nt):
        g2 += g[touched[t]] ** 2
    if it == 0:
        v = g2
    else:
        v = b2 * ls[v_at] + (1.0 - b2) * g2
    ls[v_at] = v
    if fl[FL_AMSGRAD] == 1:
        vh = max(ls[vhat_at], v)
        ls[vhat_at] = vh
        d = np.sqrt(vh) + eps
    else:
        d = np.sqrt(v) + eps
    avg = fl[FL_GRAD_AVG] == 1 and it != 0
    for t in range(nt):
        i = touched[t]
        w = np.float64(st[i, COL_W])
        G = g[i] / d
        if wd > 0:
            G += wd * w
        if avg:
            G *= 1.0 - b1
        m = b1 * np.float64(st[i, COL_M]) - lr * G
        st[i, COL_M] = m
        st[i, COL_W] = w + m


@njit(cache=True, nogil=True)
def comment_spans(buf, start, end, out):
    """For each data row in buf[start:end] (the lines parse_libsvm turns into rows), the
    byte span of its trailing `# comment` (after '#' and blanks), or (-1, -1).

    # Assumes: buf[start:end] holds whole lines that parse_libsvm accepted; out has shape
    #          (rows, 2). Returns the number of rows seen.
    """
    r = 0
    i = start
    while i < end and r < out.shape[0]:
        while i < end and _is_space(buf[i]):
            i += 1
        if i >= end:
            break
        if buf[i] == 10 or buf[i] == 35:  # blank or comment-only: not a row
            while i < end and buf[i] != 10:
                i += 1
            i += 1
            continue
        out[r, 0] = -1
        out[r, 1] = -1
        while i < end and buf[i] != 10 and buf[i] != 35:
            i += 1
        if i < end and buf[i] == 35:
            i += 1
            while i < end and (buf[i] == 32 or buf[i] == 9):
                i += 1
            s = i
            while i < end and buf[i] != 10:
                i += 1
            e = i
            while e > s and _is_space(buf[e - 1]):
                e -= 1
            out[r, 0] = s
            out[r, 1] = e
        i += 1
        r += 1
    return r


# --------------------------------------------------------------------------------------
# Feature hashing of tabular data
# --------------------------------------------------------------------------------------
# Numba kernels that hash tabular cells into feature ids.
#
# Hashing spec (stable across processes, machines and versions):
#
# - A feature's *key* is text, hashed as its UTF-8 bytes with MurmurHash3_x86_32
#   (Austin Appleby's reference `MurmurHash3_x86_32`, little-endian blocks) and seed
#   HASH_SEED = 0, i.e. `mmh3.hash(key, 0, signed=False)`. The feature id is
#   `h & (2**bits - 1)` (for bits >= 32 it is h itself).
# - Keys: a categorical cell is `column=value`; a numeric column used as a value is the
#   bare `column` (x = the cell's value); a binned numeric cell is `column=bin`; an
#   interaction of columns a, b, ... is the member keys joined with `^`, e.g.
#   `a=va^b=vb` (value = the product of the members' values).
# - Values are rendered as text inside Numba:
#   * integers: minimal decimal, `-` for negatives (`0`, `42`, `-7`); an int column and a
#     string column holding the same decimal text hash alike;
#   * floats (when categorical): `nan` is a missing cell; `inf`/`-inf`; an integral value
#     below 2**64 in magnitude is written as that integer (`3.0` -> `3`, `-0.0` -> `0`,
#     `1e19` -> `10000000000000000000`); any other value with a shortest round-trip decimal
#     m * 10**k (the digits of Python's repr()) such that m < 2**53 and k >= -22 is written
#     positionally without exponent (`0.1`, `-2.5`, `0.00012`); everything else (e.g.
#     0.1 + 0.2, which needs 17 digits, or 1e-30, or 1e300) is written as Python's
#     float.hex() (`0x1.3333333333334p-2`). The decimal is found and verified with exact
#     arithmetic (Clinger's fast path plus Dekker's product), no libm calls;
#   * bins: k = floor(log2(1 + |x|)) as an integer, with a leading `-` for x < 0
#     (so 0 -> `0`, 1 -> `1`, 3 -> `2`, -0.5 -> `-0`, 1000 -> `9`).
# - FINGERPRINT_SEED hashes the same key a second time; (id, fingerprint) pairs tell
#   distinct keys sharing an id apart (collision counting).
#
# Token arenas: a column's keys for one batch are kept as (off, data, present): the key of
# row r is data[off[r]:off[r+1]] when present[r] != 0.



HASH_SEED = 0
FINGERPRINT_SEED = 0x9747B28C

MAX_FLOAT_TEXT = 48  # bytes a rendered float may take (positional 1e22 / 1e-22, hex)
MAX_INT_TEXT = 20  # "-9223372036854775808"

_M32 = np.uint64(0xFFFFFFFF)
_C1 = np.uint64(0xCC9E2D51)
_C2 = np.uint64(0x1B873593)

# exact powers of ten (10**k is exact in float64 for k <= 22)
_POW10 = np.array([10.0**k for k in range(23)])
_TWO53 = float(1 << 53)
_TWO64 = float(1 << 64)
_HEX = np.frombuffer(b"0123456789abcdef", np.uint8).copy()

# error codes of the checking kernels
ERR_NEGATIVE = 1  # negative feature index
ERR_NONFINITE = 2  # inf / nan value
ERR_INF = 3  # infinite numeric cell


@njit(cache=True, inline="always")
def _rotl32(x, r):
    # Assumes: x < 2**32 (uint64), 0 < r < 32.
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & _M32


@njit(cache=True, inline="always")
def _fmix32(h):
    # MurmurHash3's finalizer. Assumes: h < 2**32 (uint64).
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _M32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _M32
    h ^= h >> np.uint64(16)
    return h


@njit(cache=True)
def murmur3_32(data, start, end, seed):
    """MurmurHash3_x86_32 of the bytes data[start:end].

    # Assumes: data is a uint8 array, 0 <= start <= end <= len(data), 0 <= seed < 2**32.

    Returns the hash as a non-negative int64 (< 2**32). Arithmetic is done in uint64 and
    masked to 32 bits, which equals the reference's uint32 arithmetic.
    """
    h = np.uint64(seed) & _M32
    n = end - start
    nblocks = n // 4
    i = start
    for _ in range(nblocks):
        k = (np.uint64(data[i]) | (np.uint64(data[i + 1]) << np.uint64(8))
             | (np.uint64(data[i + 2]) << np.uint64(16)) | (np.uint64(data[i + 3]) << np.uint64(24)))
        k = (k * _C1) & _M32
        k = _rotl32(k, 15)
        k = (k * _C2) & _M32
        h ^= k
        h = _rotl32(h, 13)
        h = (h * np.uint64(5) + np.uint64(0xE6546B64)) & _M32
        i += 4
    tail = n & 3
    if tail:
        k = np.uint64(0)
        if tail == 3:
            k ^= np.uint64(data[i + 2]) << np.uint64(16)
        if tail >= 2:
            k ^= np.uint64(data[i + 1]) << np.uint64(8)
        k ^= np.uint64(data[i])
        k = (k * _C1) & _M32
        k = _rotl32(k, 15)
        k = (k * _C2) & _M32
        h ^= k
    h ^= np.uint64(n) & _M32
    return np.int64(_fmix32(h))


@njit(cache=True)
def murmur3_many(off, data, seed, out):
    """out[r] = murmur3_32(data, off[r], off[r+1], seed) for every r.

    # Assumes: off is int32/int64 with len(out) + 1 entries, non-decreasing, within data.
    """
    for r in range(len(out)):
        out[r] = murmur3_32(data, off[r], off[r + 1], seed)


# --------------------------------------------------------------------------------------
# value -> text
# --------------------------------------------------------------------------------------


@njit(cache=True)
def _write_uint(mag, buf, pos):
    # Assumes: mag is uint64; buf has 20 bytes free at pos. Returns the new pos.
    if mag == 0:
        buf[pos] = 48
        return pos + 1
    nd = 0
    t = mag
    while t > 0:
        t //= np.uint64(10)
        nd += 1
    end = pos + nd
    j = end - 1
    while mag > 0:
        buf[j] = np.uint8(np.uint64(48) + mag % np.uint64(10))
        mag //= np.uint64(10)
        j -= 1
    return end


@njit(cache=True)
def write_int(v, buf, pos):
    """Decimal text of the int64 v at buf[pos:]; returns the new pos.

    # Assumes: buf (uint8) has MAX_INT_TEXT bytes free at pos.
    """
    if v < 0:
        buf[pos] = 45
        # -(v + 1) + 1 avoids overflowing at -2**63
        return _write_uint(np.uint64(-(v + 1)) + np.uint64(1), buf, pos + 1)
    return _write_uint(np.uint64(v), buf, pos)


@njit(cache=True)
def _write_hex_float(x, buf, pos):
    # Python's float.hex(): [-]0x1.<13 hex digits>p<+|-><exp>; subnormals 0x0.<...>p-1022.
    # Assumes: x finite and nonzero; buf has MAX_FLOAT_TEXT bytes free.
    bits = np.uint64(np.array([x]).view(np.uint64)[0])
    if bits >> np.uint64(63):
        buf[pos] = 45
        pos += 1
    ebits = np.int64((bits >> np.uint64(52)) & np.uint64(0x7FF))
    frac = bits & np.uint64(0xFFFFFFFFFFFFF)
    buf[pos] = 48
    buf[pos + 1] = 120  # x
    if ebits == 0:
        buf[pos + 2] = 48
        e = np.int64(-1022)
    else:
        buf[pos + 2] = 49
        e = ebits - 1023
    buf[pos + 3] = 46  # .
    pos += 4
    for d in range(13):
        nib = (frac >> np.uint64(4 * (12 - d))) & np.uint64(15)
        buf[pos] = _HEX[nib]
        pos += 1
    buf[pos] = 112  # p
    pos += 1
    if e >= 0:
        buf[pos] = 43
        pos += 1
    return write_int(e, buf, pos)


@njit(cache=True)
def _decimal_fits(a, m, k):
    # True iff the decimal m * 10**k converts to exactly a (Clinger: one correctly
    # rounded operation on exact operands when m < 2**53 and |k| <= 22).
    # Assumes: -22 <= k < 0.
    if m <= 0.0 or m >= _TWO53:
        return False
    return m / _POW10[-k] == a


@njit(cache=True, inline="always")
def _split(x):
    # Assumes: |x| < 2**996 (no overflow in c). Veltkamp split: x = hi + lo exactly, each with at most 26 significant bits
    c = 134217729.0 * x  # 2**27 + 1
    hi = c - (c - x)
    return hi, x - hi


@njit(cache=True)
def _two_prod(a, b):
    # Assumes: a, b finite, no overflow or underflow in the partial products. Dekker: a * b = p + e exactly (no overflow or underflow here: |a*b| < 2**53 * 1e22)
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, e


@njit(cache=True)
def _mid_sign(a, m, k):
    """Sign of a - (m + 0.5) * 10**k, exactly.

    # Assumes: k < 0 and the decimal m * 10**k converts to a (so a * 10**-k is within 2
    #          of m: the subtraction d below is exact, and so is 0.5 - d).
    """
    p, e = _two_prod(a, _POW10[-k])  # a * 10**-k = p + e exactly
    d = p - m
    # a * 10**-k - (m + 0.5) = e - (0.5 - d)
    h = 0.5 - d
    return 1 if e > h else (-1 if e < h else 0)


@njit(cache=True)
def write_float(x, buf, pos):
    """Text of the finite or infinite double x at buf[pos:] (module doc); returns the new pos.

    # Assumes: x is not NaN (a missing cell); buf has MAX_FLOAT_TEXT bytes free at pos.
    """
    if np.isinf(x):
        if x < 0:
            buf[pos] = 45
            pos += 1
        buf[pos] = 105
        buf[pos + 1] = 110
        buf[pos + 2] = 102
        return pos + 3
    if x == 0.0:
        buf[pos] = 48
        return pos + 1
    a = abs(x)
    if a == math.floor(a):
        if a < _TWO64:  # integral: the exact integer
            if x < 0:
                buf[pos] = 45
                pos += 1
            return _write_uint(np.uint64(a), buf, pos)
        return _write_hex_float(x, buf, pos)
    # not integral, so a < 2**52 and the decimal has k < 0 digits after the point.
    found = False
    m_best = 0.0
    k_best = 0
    if a > 1e-23:
        # decimal exponent estimate: 10**e10 <= a < 10**(e10+1), roughly (bounds the search)
        e10 = 0
        t = a
        while t >= 10.0:
            t /= 10.0
            e10 += 1
        while t < 1.0:
            t *= 10.0
            e10 -= 1
        # largest k first = fewest digits
        k = e10 + 2
        if k > -1:
            k = -1
        kmin = e10 - 17
        if kmin < -22:
            kmin = -22
        while k >= kmin and not found:
            m = math.floor(a * _POW10[-k] + 0.5)
            if m >= _TWO53:  # too many digits for an exact check: give up (hex below)
                break
            # the decimals that convert back to a form an interval: among m-1, m, m+1 keep
            # the one nearest to a (exactly; a tie takes the even one)
            c = m - 1.0
            while c <= m + 1.0:
                if _decimal_fits(a, c, k):
                    if not found:
                        found = True
                        m_best = c
                    else:
                        s = _mid_sign(a, m_best, k)
                        if s > 0 or (s == 0 and np.int64(c) % 2 == 0):
                            m_best = c
                c += 1.0
            k_best = k
            k -= 1
    if not found:
        return _write_hex_float(x, buf, pos)
    mi = np.uint64(m_best)
    k = k_best
    while mi % np.uint64(10) == 0:
        mi //= np.uint64(10)
        k += 1
    if x < 0:
        buf[pos] = 45
        pos += 1
    # here k < 0 (a is not integral): digits of mi, with a decimal point -k digits from the right
    start = pos
    end = _write_uint(mi, buf, pos)
    nd = end - start
    frac = -k
    if nd > frac:
        # shift the last `frac` digits right by one to make room for '.'
        for j in range(end - 1, end - 1 - frac, -1):
            buf[j + 1] = buf[j]
        buf[end - frac] = 46
        return end + 1
    # 0.000ddd: move the digits right by (frac - nd) + 2
    shift = frac - nd + 2
    for j in range(end - 1, start - 1, -1):
        buf[j + shift] = buf[j]
    buf[start] = 48
    buf[start + 1] = 46
    for j in range(start + 2, start + shift):
        buf[j] = 48
    return end + shift


@njit(cache=True)
def write_bin(x, buf, pos):
    """Text of the log2 bin of the finite double x: floor(log2(1 + |x|)), '-' when x < 0.

    # Assumes: x finite; buf has MAX_INT_TEXT bytes free at pos.
    """
    if x < 0:
        buf[pos] = 45
        pos += 1
    y = 1.0 + abs(x)
    _, e = math.frexp(y)  # y = f * 2**e, 0.5 <= f < 1, so floor(log2 y) = e - 1
    return write_int(np.int64(e - 1), buf, pos)


@njit(cache=True)
def write_logsq(x, buf, pos):
    """The Criteo-Kaggle bucket of a count: x itself when x <= 2 (write_float), else
    floor(ln(x)^2) (the transform of the libFFM winning solution).

    # Assumes: x finite; buf has MAX_FLOAT_TEXT bytes free at pos.
    """
    if x <= 2:
        return write_float(x, buf, pos)
    return write_int(np.int64(math.floor(math.log(x) ** 2)), buf, pos)


# --------------------------------------------------------------------------------------
# token arenas: one key per row of a column
# --------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _put_prefix(prefix, buf, pos):
    # Assumes: buf has len(prefix) bytes free at pos. Returns the new pos.
    for j in range(len(prefix)):
        buf[pos + j] = prefix[j]
    return pos + len(prefix)


@njit(cache=True, nogil=True)
def render_strings(prefix, offsets, data, valid, out_off, out_data, present):
    """Keys prefix + value for an Arrow string/binary column (offsets + data buffers).

    # Assumes: offsets (int32/int64) has n + 1 entries indexing data (uint8), as in the
    #          Arrow buffers of a possibly sliced array (offsets need not start at 0);
    #          valid is uint8[n] (0 = null); out_off int64[n + 1];
    #          len(out_data) >= n * len(prefix) + (offsets[n] - offsets[0]).
    Nulls and empty strings are absent (present[r] = 0, empty key). Returns bytes used.
    """
    n = len(present)
    pos = 0
    out_off[0] = 0
    for r in range(n):
        a = offsets[r]
        b = offsets[r + 1]
        if valid[r] and b > a:
            pos = _put_prefix(prefix, out_data, pos)
            for i in range(a, b):
                out_data[pos] = data[i]
                pos += 1
            present[r] = 1
        else:
            present[r] = 0
        out_off[r + 1] = pos
    return pos


@njit(cache=True, nogil=True)
def render_ints(prefix, values, valid, out_off, out_data, present):
    """Keys prefix + decimal text of int64 values.

    # Assumes: values int64[n]; valid uint8[n]; out_off int64[n + 1];
    #          len(out_data) >= n * (len(prefix) + MAX_INT_TEXT).
    Returns bytes used.
    """
    n = len(present)
    pos = 0
    out_off[0] = 0
    for r in range(n):
        if valid[r]:
            pos = _put_prefix(prefix, out_data, pos)
            pos = write_int(values[r], out_data, pos)
            present[r] = 1
        else:
            present[r] = 0
        out_off[r + 1] = pos
    return pos


@njit(cache=True, nogil=True)
def render_floats(prefix, values, valid, out_off, out_data, present):
    """Keys prefix + text of float64 values (write_float); NaN is a missing cell.

    # Assumes: values float64[n]; valid uint8[n]; out_off int64[n + 1];
    #          len(out_data) >= n * (len(prefix) + MAX_FLOAT_TEXT).
    Returns bytes used.
    """
    n = len(present)
    pos = 0
    out_off[0] = 0
    for r in range(n):
        x = values[r]
        if valid[r] and not np.isnan(x):
            pos = _put_prefix(prefix, out_data, pos)
            pos = write_float(x, out_data, pos)
            present[r] = 1
        else:
            present[r] = 0
        out_off[r + 1] = pos
    return pos


@njit(cache=True, nogil=True)
def render_bins(prefix, values, valid, out_off, out_data, present, logsq=False):
    """Keys prefix + log2 bin (write_bin; write_logsq with logsq) of float64 values; NaN
    is a missing cell.

    # Assumes: as render_ints, with values float64[n].
    Returns bytes used, or -(r + 1) when values[r] is infinite (the caller reports it).
    """
    n = len(present)
    pos = 0
    out_off[0] = 0
    for r in range(n):
        x = values[r]
        if valid[r] and not np.isnan(x):
            if np.isinf(x):
                return -(r + 1)
            pos = _put_prefix(prefix, out_data, pos)
            pos = write_logsq(x, out_data, pos) if logsq else write_bin(x, out_data, pos)
            present[r] = 1
        else:
            present[r] = 0
        out_off[r + 1] = pos
    return pos


@njit(cache=True, nogil=True)
def numeric_tokens(name, values, valid, out_off, out_data, present, out_vals):
    """Keys `name` with value x for a numeric column used as a value.

    # Assumes: values float64[n]; valid uint8[n]; out_off int64[n + 1];
    #          len(out_data) >= n * len(name); out_vals float64[n].
    NaN and 0 are absent (no feature). Returns bytes used, or -(r + 1) for an infinite x.
    """
    n = len(present)
    pos = 0
    out_off[0] = 0
    for r in range(n):
        x = values[r]
        if valid[r] and not np.isnan(x) and x != 0.0:
            if np.isinf(x):
                return -(r + 1)
            pos = _put_prefix(name, out_data, pos)
            present[r] = 1
            out_vals[r] = x
        else:
            present[r] = 0
            out_vals[r] = 0.0
        out_off[r + 1] = pos
    return pos


@njit(cache=True, nogil=True)
def cross_tokens(off_a, data_a, pres_a, vals_a, off_b, data_b, pres_b, vals_b,
                 out_off, out_data, present, out_vals):
    """Interaction keys a + '^' + b (present when both are), value vals_a * vals_b.

    # Assumes: both arenas describe the same n rows; out_off int64[n + 1];
    #          len(out_data) >= off_a[n] + off_b[n] + n; out_vals float64[n].
    Returns bytes used.
    """
    n = len(present)
    pos = 0
    out_off[0] = 0
    for r in range(n):
        if pres_a[r] and pres_b[r]:
            for i in range(off_a[r], off_a[r + 1]):
                out_data[pos] = data_a[i]
                pos += 1
            out_data[pos] = 94  # ^
            pos += 1
            for i in range(off_b[r], off_b[r + 1]):
                out_data[pos] = data_b[i]
                pos += 1
            present[r] = 1
            out_vals[r] = vals_a[r] * vals_b[r]
        else:
            present[r] = 0
            out_vals[r] = 0.0
        out_off[r + 1] = pos
    return pos


@njit(cache=True, nogil=True)
def hash_tokens(off, data, present, seed, mask, out_ids):
    """out_ids[r] = murmur3_32(key of row r, seed) & mask, or -1 for an absent key.

    # Assumes: off int64[n + 1] within data; present uint8[n]; 0 < mask < 2**63.
    """
    m = np.int64(mask)
    for r in range(len(out_ids)):
        if present[r]:
            out_ids[r] = murmur3_32(data, off[r], off[r + 1], seed) & m
        else:
            out_ids[r] = -1


# --------------------------------------------------------------------------------------
# CSR assembly and checks
# --------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def assemble_csr(tok_ids, tok_vals, indptr, ids, values):
    """Gather per-source features into CSR rows (unsorted; canonicalize afterwards).

    # Assumes: tok_ids int64[F, n] (-1 = absent), tok_vals float64[F, n];
    #          indptr int64[n + 1]; ids/values hold F * n entries.
    Values equal to 0 are dropped. Returns (nnz, max_id).
    """
    nsrc, n = tok_ids.shape
    nnz = 0
    max_id = np.int64(-1)
    indptr[0] = 0
    for r in range(n):
        for j in range(nsrc):
            t = tok_ids[j, r]
            v = tok_vals[j, r]
            if t >= 0 and v != 0.0:
                ids[nnz] = t
                values[nnz] = v
                nnz += 1
                if t > max_id:
                    max_id = t
        indptr[r + 1] = nnz
    return nnz, max_id


@njit(cache=True, nogil=True)
def expand_values(indptr, vptr, valid, vflat, out):
    """out = the values of every row: vflat[vptr[r]:vptr[r+1]] where valid[r], else ones
    (a null row of the sparse Parquet values column means all of that row's values are 1).

    # Assumes: indptr, vptr int64[n + 1] within len(out) and len(vflat); valid uint8[n].
    Returns the first row whose value count differs from its id count (nothing written
    from there on), or -1.
    """
    for r in range(len(indptr) - 1):
        a = indptr[r]
        b = indptr[r + 1]
        if valid[r]:
            va = vptr[r]
            if vptr[r + 1] - va != b - a:
                return r
            for k in range(b - a):
                out[a + k] = vflat[va + k]
        else:
            for k in range(a, b):
                out[k] = 1.0
    return -1


@njit(cache=True, nogil=True)
def check_sparse(indptr, ids, values):
    """Validate CSR rows from a sparse Parquet file.

    # Assumes: indptr int64[n + 1], starting at 0, within ids/values (same length).
    Returns (err, err_pos, max_id, needs_canonical): err is OK, ERR_NEGATIVE (ids[err_pos]
    < 0) or ERR_NONFINITE (values[err_pos] is inf/nan); needs_canonical is True when a row
    is not strictly increasing or holds a zero value.
    """
    max_id = np.int64(-1)
    canon = False
    for r in range(len(indptr) - 1):
        prev = np.int64(-1)
        for k in range(indptr[r], indptr[r + 1]):
            t = ids[k]
            v = values[k]
            if t < 0:
                return ERR_NEGATIVE, k, max_id, canon
            if not np.isfinite(v):
                return ERR_NONFINITE, k, max_id, canon
            if t <= prev or v == 0.0:
                canon = True
            prev = t
            if t > max_id:
                max_id = t
    return OK, 0, max_id, canon


# --------------------------------------------------------------------------------------
# Text output: %.17g
# --------------------------------------------------------------------------------------
# format_g17 writes float64 values exactly as Python's "%.17g\n" % v does, ~15x faster
# (`ftrl predict` prints 17 significant digits: every number parses back to the same float).
#
# Method: a finite double is v = M * 2**E exactly (M < 2**53).  For a decimal
# exponent X the 17 significant digits are D = round(v * 10**(16 - X)); with
# q = 16 - X >= 0 this is M * 5**q * 2**(E + q), an exact integer product
# (up to 192 bits, built from 64-bit limbs because Numba has no int128) followed
# by an exact binary shift, so round-half-even can be decided on the exact value,
# as Python's dtoa (and glibc printf) do.  For q < 0 (v >= 1e17) v is an
# integer < 2**64 and D is an exact integer division.  X is first estimated and
# then corrected so that 10**16 <= D < 10**17 (this also handles 99..9.5
# rounding up to a new decade, and re-checks a D == 10**16 that may be a
# 16-digit carry).
#
# Range done here: 0, -0, nan, +-inf and every v with |v| < 2**64 (~1.8e19)
# whose 17-digit rounding is >= 1e-41 in magnitude.  Smaller nonzero values
# (incl. subnormals) and larger ones are *skipped*: the kernel writes only their
# b"\n" and reports index and byte offset, so the caller inserts Python's text
# there (api.format_floats).
#
# Buffer: give BYTES_PER_VALUE = 25 bytes per value (the longest line is
# "-1.2345678901234567e-308\n"; the kernel's own lines are <= 24 bytes, and it
# may scribble up to 23 bytes past a value's start, so 25 * n is always enough).
BYTES_PER_VALUE = 25

_U = np.uint64
_FRAC = _U((1 << 52) - 1)
_HIDDEN = _U(1 << 52)
_ZERO = _U(0)
_ONE = _U(1)
_TEN = _U(10)
_ASCII0 = _U(48)
_HUNDRED = _U(100)
_E16 = _U(10**16)
_E17 = _U(10**17)
_P5 = np.array([5**i for i in range(28)], dtype=np.uint64)  # 5**27 < 2**63
_DIG2 = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), np.uint8).copy()
_P10 = np.array([10**i for i in range(20)], dtype=np.uint64)  # 10**19 < 2**64
_P10F_OFF = 50
_P10F = np.array([float(f"1e{k}") for k in range(-_P10F_OFF, 25)])  # nearest doubles
_MAX_Q = 58  # 54 + 4: M*5**4 < 2**63, then two factors 5**27 (see _scaled_round)
_MIN_X = 16 - _MAX_Q + 1  # -41: leaves room for the X - 1 probe in _digits17
_MIN_E2 = -150  # below this X < _MIN_X anyway; keeps _P10F indexing in bounds


@njit(cache=True, inline="always")
def _mul64(a, b):
    # Assumes: a, b are uint64.  Returns the exact 128-bit product as (hi, lo).
    a0 = a & _M32
    a1 = a >> 32
    b0 = b & _M32
    b1 = b >> 32
    p00 = a0 * b0
    p01 = a0 * b1
    p10 = a1 * b0
    mid = (p00 >> 32) + (p01 & _M32) + (p10 & _M32)  # < 3 * 2**32: no overflow
    lo = (mid << 32) | (p00 & _M32)
    hi = a1 * b1 + (p01 >> 32) + (p10 >> 32) + (mid >> 32)
    return hi, lo


@njit(cache=True, inline="always")
def _mul128x64(h1, h0, b):
    # Assumes: (h1, h0) * b < 2**192.  Returns the exact product as 3 limbs.
    l1, l0 = _mul64(h0, b)
    m1, m0 = _mul64(h1, b)
    mid = l1 + m0
    carry = _ONE if mid < l1 else _ZERO
    return m1 + carry, mid, l0


@njit(cache=True, inline="always")
def _scaled_round(M, E, q):
    # Assumes: 0 <= q <= _MAX_Q, 0 < M < 2**53, M * 10**q * 2**E < 2**60.
    # Returns round_half_even(M * 5**q * 2**(E + q)), computed exactly.
    c = max(q - 54, 0)  # pre-scale M so the rest is at most two 5**27 factors
    a = min(q - c, 27)
    h1, h0 = _mul64(M * _P5[c], _P5[a])
    h2 = _ZERO
    if q - c - a > 0:
        h2, h1, h0 = _mul128x64(h1, h0, _P5[q - c - a])
    s = E + q
    if s >= 0:
        return h0 << s  # exact integer; < 2**60 so h1 == h2 == 0
    # Shift right by -s - 1 collecting the dropped bits into `sticky`; the
    # last bit left (bit 0 of h0) is then the "half" bit of the final shift.
    r = -s - 1
    sticky = False
    while r >= 64:
        sticky = sticky or h0 != 0
        h0 = h1
        h1 = h2
        h2 = _ZERO
        r -= 64
    if r > 0:
        sticky = sticky or (h0 << (64 - r)) != 0
        h0 = (h0 >> r) | (h1 << (64 - r))  # result < 2**61: higher bits are 0
    d = h0 >> 1
    if (h0 & _ONE) != 0 and (sticky or (d & _ONE) != 0):
        d += _ONE
    return d


@njit(cache=True, inline="always")
def _div_round(n, k):
    # Assumes: n is uint64, 1 <= k <= 19.  Returns round_half_even(n / 10**k).
    p = _P10[k]
    d = n // p
    rem = n - d * p
    if rem > p - rem or (rem == p - rem and (d & _ONE) != 0):
        d += _ONE
    return d


@njit(cache=True, inline="always")
def _round_at(M, E, X):
    # Assumes: v = M * 2**E with 0 < M < 2**53, v < 2**64, q = 16 - X <= _MAX_Q,
    # and v * 10**q < 2**60.  Returns round_half_even(v * 10**q), exactly.
    q = 16 - X
    if q >= 0:
        return _scaled_round(M, E, q)
    return _div_round(M << E, -q)  # v >= 1e17 > 2**53: E >= 0, v is M << E


@njit(cache=True, inline="always")
def _digits17(M, E, X):
    # Assumes: v = M * 2**E with 2**52 <= M < 2**53, v < 2**64, and X is the
    # decimal exponent of v give or take 1.  Returns (D, X) such that
    # 10**16 <= D < 10**17 and D = round_half_even(v * 10**(16 - X)), or
    # (0, X) if that X < _MIN_X (|v| below ~1e-41).
    while True:
        if X < _MIN_X:
            return _ZERO, X
        D = _round_at(M, E, X)
        # Wrong X: retry, so we round once at the right digit (never twice).
        if D >= _E17:
            X += 1
        elif D < _E16:
            X -= 1
        else:
            break
    if D == _E16:
        # 10**16 may be a carry of a 16-digit rounding (X one too high, e.g.
        # 9.9999999999999996e-39 -> 1e-38): 17 digits at X - 1 win if they fit.
        D2 = _round_at(M, E, X - 1)
        if D2 < _E17:
            if X - 1 < _MIN_X:
                return _ZERO, X
            return D2, X - 1
    return D, X


@njit(cache=True, inline="always")
def _put_int(buf, end, u, n):
    # Assumes: u < 10**n, buf[end - n:end] is writable.  Writes the n digits
    # of u (zero-padded) ending just before `end`, two at a time via _DIG2.
    # Callers pass a constant n so the loop is fully unrolled.
    while n >= 2:
        r = np.int64(u % _HUNDRED) * 2
        u //= _HUNDRED
        buf[end - 1] = _DIG2[r + 1]
        buf[end - 2] = _DIG2[r]
        end -= 2
        n -= 2
    if n == 1:
        buf[end - 1] = _ASCII0 + u


@njit(cache=True, inline="always")
def _put_g17(buf, p, D, X):
    # Assumes: 10**16 <= D < 10**17, the value is D * 10**(X - 16), -999 <= X
    # <= 999, buf has 23 free bytes at p (bytes past the returned position
    # may be scribbled on).  Lays out %.17g: fixed notation iff -4 <= X < 17,
    # trailing zeros and a bare '.' removed.  Returns the new position.
    # All 17 digits are always written (fixed count, so fully unrolled);
    # trailing zeros are then dropped just by not advancing p over them.
    nd = 17  # significant digits left after stripping trailing zeros
    t = D
    while t % _TEN == 0:
        t //= _TEN
        nd -= 1
    small = X < 0 and X >= -4
    start = p + 1  # where the 17 digits go
    if small:  # 0.000ddd: "0." then -X-1 zeros, then the digits
        for j in range(5):
            buf[p + j] = 48
        buf[p + 1] = 46
        start = p + 1 - X
    _put_int(buf, start + 17, D, 17)  # one call site: stays unrolled
    if small:
        return start + nd
    # Otherwise the digits are at p+1..p+17 and the first k move down one
    # byte to make room for the '.' after them.
    k = 1 if X < 0 or X >= 17 else X + 1
    for j in range(k):
        buf[p + j] = buf[p + j + 1]
    buf[p + k] = 46  # '.'
    p += k if nd <= k else nd + 1  # no '.' if no fraction digits remain
    if X < 0 or X >= 17:
        buf[p] = 101  # 'e'
        buf[p + 1] = 45 if X < 0 else 43  # '-' / '+'
        ax = abs(X)
        if ax >= 100:  # at least two exponent digits, three if needed
            buf[p + 2] = 48 + ax // 100
            p += 1
        r = (ax % 100) * 2
        buf[p + 2] = _DIG2[r]
        buf[p + 3] = _DIG2[r + 1]
        p += 4
    return p


@njit(cache=True, inline="always")
def _put_special(buf, p, bits):
    # Assumes: bits is a float64 with exponent field 0x7FF (inf or nan), buf
    # has 4 free bytes at p.  Python prints nan without a sign.
    if (bits & _FRAC) != 0:
        buf[p] = 110
        buf[p + 1] = 97
        buf[p + 2] = 110
        return p + 3
    if (bits >> 63) != 0:
        buf[p] = 45
        p += 1
    buf[p] = 105
    buf[p + 1] = 110
    buf[p + 2] = 102
    return p + 3


@njit(cache=True, nogil=True)
def format_g17(x, buf, skip_idx, skip_pos):
    """Write ("%.17g\\n" % x[i]) for all i into buf; return (nbytes, nskip).

    Values outside the exact range (nonzero |v| < ~1e-41 incl. subnormals, or
    |v| >= 2**64) get only their b"\\n": skip_idx[j] = i and skip_pos[j] =
    offset where their text must be inserted, for j < nskip (ascending).
    """
    # Assumes: x 1-D C-contiguous float64; len(buf) >= 25 * len(x) (bytes
    # past the returned nbytes may be overwritten);
    # len(skip_idx) and len(skip_pos) >= len(x) (np.empty pages are lazy).
    bits = x.view(np.uint64)
    p = 0
    ns = 0
    for i in range(bits.size):
        b = bits[i]
        be = np.int64((b >> 52) & _U(0x7FF))
        if be == 0x7FF:
            p = _put_special(buf, p, b)
        elif be == 0 and (b & _FRAC) == 0:  # +-0
            if (b >> 63) != 0:
                buf[p] = 45
                p += 1
            buf[p] = 48
            p += 1
        else:
            e2 = be - 1023
            D = _ZERO
            X = 0
            if be != 0 and _MIN_E2 <= e2 < 64:
                # floor(log10(2**e2)) = floor(e2 * 78913 / 2**18) for this
                # e2 range; +1 when |v| >= 10**(k+1) (approx. is fine, the
                # loop in _digits17 corrects).
                k = (e2 * 78913) >> 18
                X = k + (1 if abs(x[i]) >= _P10F[k + 1 + _P10F_OFF] else 0)
                D, X = _digits17((b & _FRAC) | _HIDDEN, be - 1075, X)
            if D == 0:
                skip_idx[ns] = i
                skip_pos[ns] = p
                ns += 1
            else:
                if (b >> 63) != 0:
                    buf[p] = 45
                    p += 1
                p = _put_g17(buf, p, D, X)
        buf[p] = 10
        p += 1
    return p, ns
