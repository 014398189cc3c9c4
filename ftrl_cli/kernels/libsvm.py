"""libsvm/svmlight text parsing: bytes in, CSR rows out, inside Numba.

Every cache=True kernel here calls only helpers defined in this file: Numba's file cache
does not notice edits to helpers in other files (tests/test_kernels_layout.py guards it).
Error messages for the codes below live in readers/libsvm.py.
"""

import numpy as np
from numba import config as _numba_config
from numba import njit, types
from numba.extending import intrinsic

# Error codes returned by parse_libsvm (messages live in readers/errors.py).
__all__ = [  # the names ftrl_cli.kernels re-exports
    "OK", "ERR_LABEL", "ERR_INDEX", "ERR_NO_VALUE", "ERR_VALUE", "ERR_INDEX_RANGE", "ERR_BYTE",
    "ERR_NO_LABEL", "ERR_ROW_TOO_BIG", "ERR_NAN", "ERR_COST", "ERR_COST_TWICE", "ERR_QID", "MAX_INDEX",
    "FAST_TAIL", "parse_libsvm", "canonicalize", "last_newline", "comment_spans", "csv_quote_scan",
]


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
ERR_COST_TWICE = 11  # a second cost:W on one line
ERR_QID = 12  # qid:N with N not an integer

MAX_INDEX = 1 << 62
_POW10 = np.array([10.0**k for k in range(23)])  # exact in float64 for k <= 22
_IPOW10 = np.array([10**k for k in range(19)], np.int64)
FAST_TAIL = 32  # the parser's fast path reads up to 32 bytes ahead of a token's start
_TWO53 = float(1 << 53)  # (compared with integer mantissas; exact either way)


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
    skipped; `qid:N` tokens (N an integer, optionally signed) are skipped; values equal to
    0 are not stored (the paper's I = {i : x_i != 0}). Rows may be unsorted or repeat an
    index: `unsorted` counts such rows, and canonicalize() fixes them.

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
        has_cost = False
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
                    # qid:N (SVMlight's query id, an integer) is checked and ignored
                    i += 4
                    if i < end and (buf[i] == 43 or buf[i] == 45):
                        i += 1
                    d0 = i
                    while i < end and 48 <= buf[i] <= 57:
                        i += 1
                    if i == d0 or (i < end and not _ends_token(buf[i])):
                        return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_QID, tok
                    continue
                if (c == 99 and i + 4 < end and buf[i + 1] == 111 and buf[i + 2] == 115 and buf[i + 3] == 116
                        and buf[i + 4] == 58):
                    # cost:W (SVMlight's per-example cost factor) is the row's weight, once
                    if has_cost:
                        return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_COST_TWICE, tok
                    has_cost = True
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


@njit(cache=True, nogil=True)
def csv_quote_scan(buf, delim, quote, state):
    """Follow CSV quoting through buf, one block of a CSV file after another, as pyarrow's
    parser does (double quotes, no escape character): a quote opens a quoted value only at
    the start of a field; inside one, a doubled quote stands for a quote and a single one
    ends it (the rest of the field is plain text). Used to tell a quote that is never closed.

    # Assumes: state is int64[2]. state[0] is the state before buf (0: at the start of a
    #          field, 1: in a plain field, 2: in a quoted value, 3: after a quote in a quoted
    #          value) and becomes the state after it; when a quoted value opens in buf,
    #          state[1] becomes the index of its quote (else it is left as it is).
    """
    s = state[0]
    for i in range(len(buf)):
        c = buf[i]
        if s == 2:
            if c == quote:
                s = 3
            continue
        if s == 3:
            if c == quote:
                s = 2
                continue
            s = 1
        if s == 0 and c == quote:
            s = 2
            state[1] = i
            continue
        s = 0 if (c == delim or c == 10 or c == 13) else 1
    state[0] = s
