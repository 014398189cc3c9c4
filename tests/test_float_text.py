"""kernels.format_g17 and api.format_floats (the text of `ftrl predict`) against Python's
"%.17g" % v, byte for byte."""
import math
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrl_cli.api import format_floats
from ftrl_cli.kernels import BYTES_PER_VALUE, format_g17
from ftrl_cli.kernels.floatfmt import _digits17


def py_bytes(x):
    return "".join("%.17g\n" % v for v in x.tolist()).encode()  # noqa: UP031 (the oracle)


def expected_skip(v):
    """The kernel's documented range: skip nonzero finite v with |v| >= 2**64
    or whose 17-digit rounding is < 1e-41."""
    if not math.isfinite(v) or v == 0.0:
        return False
    return abs(v) >= 2.0**64 or int(("%.16e" % v).split("e")[1]) < -41  # noqa: UP031


def check(x):
    """Kernel output (without Python fallback) must match Python line by line,
    skips must be exactly the out-of-range values, and the spliced bytes must
    equal the Python join."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    n = x.size
    buf = np.full(BYTES_PER_VALUE * n, 0xFF, dtype=np.uint8)
    idx = np.empty(n, np.int64)
    pos = np.empty(n, np.int64)
    nbytes, ns = format_g17(x, buf, idx, pos)
    lines = buf[:nbytes].tobytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == n + 1
    skipped = set(idx[:ns].tolist())
    for i, v in enumerate(x.tolist()):
        assert (i in skipped) == expected_skip(v), (v, i in skipped)
        if i not in skipped:
            assert lines[i] == b"%.17g" % v, (repr(v), lines[i])
        else:
            assert lines[i] == b""
    assert max(map(len, lines)) + 1 <= BYTES_PER_VALUE
    assert format_floats(x) == py_bytes(x)


def from_bits(b):
    return np.asarray(b, dtype=np.uint64).view(np.float64)


# (a) hypothesis across the whole double range -------------------------------

@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=200))
def test_hypothesis_any_float(vals):
    check(np.array(vals))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=200))
def test_hypothesis_any_bit_pattern(bits):
    check(from_bits(bits))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=1e-41, max_value=2.0**64, exclude_max=True),
                min_size=1, max_size=200))
def test_hypothesis_kernel_range(vals):
    check(np.array(vals))


def test_random_bits_in_range():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**63, size=200_000, dtype=np.uint64)
    bits |= rng.integers(0, 2, size=bits.size, dtype=np.uint64) << np.uint64(63)
    x = from_bits(bits)
    x = x[np.isfinite(x)]
    # every binary exponent from 2**-150 to 2**70 equally often
    x = np.ldexp(np.frexp(x)[0], rng.integers(-150, 70, size=x.size))
    check(x)


# (b) probabilities and margins ----------------------------------------------

@pytest.mark.parametrize("k", [0.01, 0.3, 1.0, 3.0, 10.0, 40.0])
def test_probabilities(k):
    rng = np.random.default_rng(int(k * 1000))
    m = rng.normal(size=200_000) * k
    check(1.0 / (1.0 + np.exp(-m)))
    check(m[:50_000])


# (c) edge cases ----------------------------------------------------------

def neighbours(v):
    return [math.nextafter(v, -math.inf), v, math.nextafter(v, math.inf)]


def test_edge_cases():
    vals = [0.0, -0.0, 0.1, 1 / 3, 2 / 3, 0.5, 1.0, 0.0001, 9.9999999999999991e-05,
            5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
            1.7976931348623157e308, -1.7976931348623157e308,
            math.inf, -math.inf, math.nan, -math.nan,
            0.99999999999999989, 0.99999999999999994, 9.9999999999999995e-1,
            562949953421312.125, 12345678901234567.0, 99999999999999984.0]
    for b in [1e-4, 1e-5, 1e16, 1e17, 2.0**53, 2.0**64, 1e-41, 1e-42, 1e-14, 1.0, 0.1]:
        vals += neighbours(b)
    for e in range(-1074, 1024):  # all powers of 2
        vals.append(math.ldexp(1.0, e))
    for n in range(-323, 309):  # nearest doubles to all powers of 10, +-1 ulp
        vals += neighbours(float(f"1e{n}"))
    x = np.array(vals)
    check(np.concatenate([x, -x]))
    assert b"%.17g" % 1e-14 == b"1e-14" and Decimal(1e-14) < Decimal("1e-14")  # rounds up a decade


def exact_ties(rng, count):
    """Doubles m * 2**-k (m odd) whose exact decimal has 18 significant digits
    ending in 5: the 17-digit rounding is an exact half-way case."""
    out = []
    for k in range(1, 60):
        lo, hi = -(-10**17 // 5**k), 10**18 // 5**k  # m * 5**k has 18 digits
        hi = min(hi, 2**53)
        if lo >= hi:
            continue
        for m in rng.integers(lo, hi, size=count).tolist():
            m |= 1
            v = math.ldexp(float(m), -k)
            digits = str(m * 5**k)
            if len(digits) == 18 and float(m) == m:
                assert digits.endswith("5") and Decimal(v) == Decimal(m) / 2**k
                out.append(v)
    return out


def test_exact_ties_round_half_even():
    ties = exact_ties(np.random.default_rng(5), 100)
    assert len(ties) > 1000
    x = np.array(ties + [2.0**-25, 562949953421312.125])
    check(np.concatenate([x, -x]))
    # both directions of half-even occur (not just round-half-up)
    downs = sum(Decimal("%.17g" % v) < Decimal(v) for v in ties)  # noqa: UP031
    assert 0 < downs < len(ties)


def test_digits17_corrects_bad_exponent_estimates():
    """_digits17 must give the same (D, X) when the estimate is off by one in
    either direction, incl. values that round up to 10**17 (carry)."""
    rng = np.random.default_rng(7)
    vals = np.concatenate([rng.uniform(0, 1, 2000), rng.uniform(0, 2e16, 2000),
                           [float(f"1e{n}") for n in range(-39, 20)],
                           [math.nextafter(float(f"1e{n}"), 0) for n in range(-39, 20)]])
    for v in vals.tolist():
        b = int(np.float64(v).view(np.uint64))
        M, E = (b & (2**52 - 1)) | 2**52, ((b >> 52) & 0x7FF) - 1075
        mant, ex = ("%.16e" % v).split("e")  # noqa: UP031
        want = (int(mant.replace(".", "")), int(ex))
        for X in (want[1] - 1, want[1], want[1] + 1):
            got = _digits17(np.uint64(M), E, X)
            assert (int(got[0]), int(got[1])) == want, (v, X, got)
