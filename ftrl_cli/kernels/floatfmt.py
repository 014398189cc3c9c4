"""float64 -> text as "%.17g", in Numba (`ftrl predict`'s output).

Every cache=True kernel here calls only helpers defined in this file (see libsvm.py).
"""

import numpy as np
from numba import config as _numba_config
from numba import njit, types
from numba.extending import intrinsic

__all__ = [  # the names ftrl_cli.kernels re-exports
    "BYTES_PER_VALUE", "format_g17",
]

_M32 = np.uint64(0xFFFFFFFF)

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
        return h0 << np.uint64(s)  # exact integer; < 2**60 so h1 == h2 == 0
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
        sticky = sticky or (h0 << np.uint64(64 - r)) != 0  # (uint64 shifts: also as plain Python)
        h0 = (h0 >> np.uint64(r)) | (h1 << np.uint64(64 - r))  # result < 2**61: higher bits are 0
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
    return _div_round(M << np.uint64(E), -q)  # v >= 1e17 > 2**53: E >= 0, v is M << E


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


if _numba_config.DISABLE_JIT:

    def _bits(v):
        """The float64 v's bits as a uint64 (plain Python: NUMBA_DISABLE_JIT=1)."""
        return np.float64(v).view(np.uint64)

else:

    @intrinsic
    def _bits(typingctx, v):
        """The float64 v's bits as a uint64: one bitcast. (x.view(np.uint64) in the
        kernel would do too, but its compiled code refers to numba.np.arrayobj, which a
        cache load then imports: ~40 ms of every `ftrl predict`.)

        # Assumes: v is a float64.
        """
        from llvmlite import ir

        if v != types.float64:
            return None  # (a typing error: no other type is meant)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], ir.IntType(64))

        return types.uint64(types.float64), codegen


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
    p = 0
    ns = 0
    for i in range(x.size):
        b = _bits(x[i])
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
