"""Feature hashing of tabular data (MurmurHash3 of `column=value` keys rendered in Numba),
and the checks of sparse Parquet rows.

Every cache=True kernel here calls only helpers defined in this file (see libsvm.py).
"""

import math

import numpy as np
from numba import njit

__all__ = [  # the names ftrl_cli.kernels re-exports
    "OK", "HASH_SEED", "FINGERPRINT_SEED", "MAX_FLOAT_TEXT", "MAX_INT_TEXT", "ERR_NEGATIVE",
    "ERR_NONFINITE", "ERR_INF", "murmur3_32", "murmur3_many", "write_int", "write_float", "write_bin",
    "write_logsq", "render_strings", "render_ints", "render_floats", "render_bins", "numeric_tokens",
    "cross_tokens", "hash_tokens", "assemble_csr", "expand_values", "check_sparse",
]


OK = 0
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
