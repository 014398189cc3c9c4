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

import numpy as np
from numba import njit

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

MAX_INDEX = 1 << 62
_POW10 = np.array([10.0**k for k in range(23)])  # exact in float64 for k <= 22
_TWO53 = 1 << 53


@njit(cache=True, inline="always")
def _is_space(c):
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


@njit(cache=True, inline="always")
def _ends_token(c):
    # whitespace, newline or the start of a comment
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12 or c == 10 or c == 35


@njit(cache=True)
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
                mant = mant * 10 + (c - 48)
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
                    mant = mant * 10 + (c - 48)
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
                e = e * 10 + (buf[i] - 48)
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


@njit(cache=True, nogil=True)
def parse_libsvm(buf, start, end, labels, indptr, ids, values, slow, max_rows):
    """Parse complete libsvm lines in buf[start:end] into a CSR batch.

    # Assumes: buf[start:end] ends at a line end, or at the end of the input;
    #          len(indptr) >= max_rows + 1, len(labels) >= max_rows; slow has shape (K, 3).

    Rules: `#` starts a comment (to end of line); blank and comment-only lines are
    skipped; `qid:N` tokens are skipped; values equal to 0 are not stored (the paper's
    I = {i : x_i != 0}). Rows may be unsorted or repeat an index: `unsorted` counts such
    rows, and canonicalize() fixes them.

    Fills labels[:rows], indptr[:rows+1], ids/values[:nnz]. Numbers that need Python's
    float() are listed in slow[k] = (kind 0=label 1=value, output position, byte start).

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
        v, i, st = _parse_number(buf, i, end, pow10)
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
                i = line_start
                break  # finish the batch here; the caller resolves the slow numbers
            slow[nslow, 0] = 0
            slow[nslow, 1] = nrows
            slow[nslow, 2] = tok
            nslow += 1
        row_nnz_start = nnz
        labels[nrows] = v
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
            if c == 113 and i + 3 < end and buf[i + 1] == 105 and buf[i + 2] == 100 and buf[i + 3] == 58:
                # qid:N is tolerated and ignored
                i += 4
                while i < end and not _ends_token(buf[i]):
                    i += 1
                continue
            if c > 126 or c < 32:
                return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_BYTE, i
            idx = np.int64(0)
            nd = 0
            while i < end and 48 <= buf[i] <= 57:
                if idx < MAX_INDEX:
                    idx = idx * 10 + (buf[i] - 48)
                nd += 1
                i += 1
            if nd == 0:
                return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_INDEX, tok
            if idx >= MAX_INDEX:
                return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_INDEX_RANGE, tok
            if i >= end or buf[i] != 58:
                if i >= end or _ends_token(buf[i]):
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_NO_VALUE, tok
                return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_INDEX, tok
            i += 1
            if i >= end or _ends_token(buf[i]):
                return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_NO_VALUE, tok
            vtok = i
            v, i, st = _parse_number(buf, i, end, pow10)
            if st < 0:
                if buf[vtok] > 126 or (i < end and buf[i] > 126):
                    return line_start, nrows, nnz, lines, nslow, max_id, unsorted, ERR_BYTE, vtok
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
    """Index of the last b'\\n' in buf[start:end], or -1."""
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


@njit(cache=True, nogil=True)
def ftrl_online(indptr, ids, values, labels, weights, zn, bias_zn, cap,
                alpha, beta, l1, l2, l2_shrinkage, p, bias_l1, bias_l2, use_bias, margins):
    """Train per example (Algorithm 1), lazily: only the coordinates present in a row.

    # Assumes: every slot of ids is < len(zn) (ids < cap keep their slot, larger ids are
    #          hashed into [0, cap) and then len(zn) == cap); labels are 0/1;
    #          p = -lr_power > 0; len(margins) == number of rows.

    indptr, ids, values : CSR rows (int64, int64, float64); weights: float64 per-row
    importance (multiplies g). zn : (D, 2) z and n, modified in place; bias_zn : (2,)
    the bias's (z, n), modified in place. margins : out, the margin x.w used for each
    row's prediction *before* its update (progressive validation).
    Returns the sum of the rows' progressive log loss (weighted).
    """
    nrows = len(indptr) - 1
    loss = 0.0
    maxlen = 0
    for r in range(nrows):
        ln = indptr[r + 1] - indptr[r]
        if ln > maxlen:
            maxlen = ln
    wbuf = np.empty(maxlen, np.float64)
    sbuf = np.empty(maxlen, np.int64)
    two_s = 2.0 * l2_shrinkage
    for r in range(nrows):
        a = indptr[r]
        b = indptr[r + 1]
        # predict: every load is independent, so the CPU overlaps the cache misses
        m = 0.0
        for k in range(a, b):
            s = _slot(ids[k], cap)
            sbuf[k - a] = s
            w = _weight(np.float64(zn[s, 0]), np.float64(zn[s, 1]), alpha, beta, l1, l2, p)
            wbuf[k - a] = w
            m += w * values[k]
        wb = 0.0
        if use_bias:
            wb = _weight(np.float64(bias_zn[0]), np.float64(bias_zn[1]), alpha, beta, bias_l1, bias_l2, p)
            m += wb
        margins[r] = m
        y = labels[r]
        iw = weights[r]
        loss += iw * _logloss(m, y)
        g0 = (_sigmoid(m) - y) * iw
        # update
        for k in range(a, b):
            s = sbuf[k - a]
            w = wbuf[k - a]
            g = g0 * values[k]
            n = np.float64(zn[s, 1])
            n_new = n + g * g
            sigma = _sigma(n, n_new, alpha, p)
            zn[s, 0] = np.float64(zn[s, 0]) + (g + two_s * w) - sigma * w
            zn[s, 1] = n_new
        if use_bias:
            n = np.float64(bias_zn[1])
            n_new = n + g0 * g0
            sigma = _sigma(n, n_new, alpha, p)
            bias_zn[0] = np.float64(bias_zn[0]) + (g0 + two_s * wb) - sigma * wb
            bias_zn[1] = n_new
    return loss


@njit(cache=True, nogil=True)
def weights_from_state(zn, alpha, beta, l1, l2, p, out):
    """out[i] = w_i computed from (z_i, n_i)."""
    for i in range(zn.shape[0]):
        out[i] = _weight(np.float64(zn[i, 0]), np.float64(zn[i, 1]), alpha, beta, l1, l2, p)


@njit(cache=True, nogil=True)
def margins_csr(indptr, ids, values, w, cap, bias_w, out):
    """out[r] = x_r . w + bias_w.

    # Assumes: w has len <= cap and cap is a power of two. Slots beyond len(w) were never
    #          trained and weigh 0 (checked here: predict data may hold unseen ids).
    """
    D = len(w)
    for r in range(len(indptr) - 1):
        m = bias_w
        for k in range(indptr[r], indptr[r + 1]):
            s = _slot(ids[k], cap)
            if s < D:
                m += w[s] * values[k]
        out[r] = m


@njit(cache=True, nogil=True)
def sigmoid_array(m, out):
    for i in range(len(m)):
        out[i] = _sigmoid(m[i])


@njit(cache=True, nogil=True)
def logloss_sum(m, y, weights):
    """Weighted sum of log losses from margins m and 0/1 labels y."""
    s = 0.0
    for i in range(len(m)):
        s += weights[i] * _logloss(m[i], y[i])
    return s
