"""The Numba hashing kernels: MurmurHash3_x86_32, value -> text rendering, token arenas."""

import math
import struct
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftrl_cli import kernels as H


def mm(key, seed=0):
    b = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    a = np.frombuffer(b, np.uint8) if b else np.zeros(0, np.uint8)
    return int(H.murmur3_32(a, 0, len(b), seed))


# Published MurmurHash3_x86_32 test vectors (reference implementation / smhasher; the
# same table is quoted by many ports, e.g. the StackOverflow answer "MurmurHash3 test
# vectors" and Wikipedia's example values).
VECTORS = [
    (b"", 0, 0x00000000),
    (b"", 1, 0x514E28B7),
    (b"", 0xFFFFFFFF, 0x81F16F39),
    (b"\xff\xff\xff\xff", 0, 0x76293B50),
    (b"\x21\x43\x65\x87", 0, 0xF55B516B),
    (b"\x21\x43\x65\x87", 0x5082EDEE, 0x2362F9DE),
    (b"\x21\x43\x65", 0, 0x7E4A8634),
    (b"\x21\x43", 0, 0xA0F7B07A),
    (b"\x21", 0, 0x72661CF4),
    (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
    (b"\x00\x00\x00", 0, 0x85F0B427),
    (b"\x00\x00", 0, 0x30F4C306),
    (b"\x00", 0, 0x514E28B7),
    (b"aaaa", 0x9747B28C, 0x5A97808A),
    (b"aaa", 0x9747B28C, 0x283E0130),
    (b"aa", 0x9747B28C, 0x5D211726),
    (b"a", 0x9747B28C, 0x7FA09EA6),
    (b"abcd", 0x9747B28C, 0xF0478627),
    (b"abc", 0x9747B28C, 0xC84A62DD),
    (b"ab", 0x9747B28C, 0x74875592),
    (b"Hello, world!", 0x9747B28C, 0x24884CBA),
    ("ππππππππ".encode(), 0x9747B28C, 0xD58063C1),
    (b"a" * 256, 0x9747B28C, 0x37405BDC),
    (b"abc", 0, 0xB3DD93FA),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 0, 0xEE925B90),
    (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
]


@pytest.mark.parametrize("key,seed,expected", VECTORS)
def test_murmur3_published_vectors(key, seed, expected):
    assert mm(key, seed) == expected


def test_murmur3_smhasher_verification_value():
    # smhasher's VerificationTest: hash keys {0}, {0,1}, ..., {0..254} with seed 256 - len,
    # hash the concatenated little-endian results with seed 0; MurmurHash3_x86_32's
    # published verification value is 0xB0F57EE3.
    key = np.arange(256, dtype=np.uint8)
    hashes = bytearray()
    for i in range(256):
        hashes += struct.pack("<I", int(H.murmur3_32(key, 0, i, 256 - i)))
    h = mm(bytes(hashes), 0)
    assert h == 0xB0F57EE3


def test_murmur3_of_a_slice_ignores_the_bytes_around_it():
    data = np.frombuffer(b"xxHello, world!yy", np.uint8)
    assert H.murmur3_32(data, 2, 15, 0x9747B28C) == 0x24884CBA


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 2**32 - 1))
def test_murmur3_matches_mmh3(key, seed):
    mmh3 = pytest.importorskip("mmh3")  # test-only oracle (the reference C code)
    assert mm(key, seed) == mmh3.hash(key, seed, signed=False)


def test_pinned_feature_ids_never_change():
    # ids of `column=value` keys with seed 0: a model trained today must read tomorrow's data
    assert mm("I6=164") == 1625292828
    assert mm("C1=68fd1e64") == 27046445
    assert mm("app=12^channel=497") == 2787738483
    assert mm("hour") == 446617493
    assert mm("x=0.1") == 778851367
    assert mm("I6=164") & ((1 << 20) - 1) == 28


def test_murmur3_many():
    keys = [b"", b"a", b"ab", b"abc", b"Hello, world!"]
    off = np.cumsum([0] + [len(k) for k in keys]).astype(np.int64)
    data = np.frombuffer(b"".join(keys), np.uint8)
    out = np.empty(len(keys), np.int64)
    H.murmur3_many(off, data, 0x9747B28C, out)
    assert list(out) == [mm(k, 0x9747B28C) for k in keys]


# --------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------

BUF = np.zeros(64, np.uint8)


def render_int(v):
    return bytes(BUF[: H.write_int(np.int64(v), BUF, 0)]).decode()


def render_float(x):
    return bytes(BUF[: H.write_float(float(x), BUF, 0)]).decode()


def render_bin(x):
    return bytes(BUF[: H.write_bin(float(x), BUF, 0)]).decode()


def reference_float_text(x):
    """The rendering rule of kernels.py's hashing section, written with Python's repr and Decimal."""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a == math.floor(a):
        return str(int(x)) if a < 2.0**64 else x.hex()
    _sign, digits, exp = Decimal(repr(x)).as_tuple()
    m = int("".join(map(str, digits)))
    while m % 10 == 0:
        m //= 10
        exp += 1
    if m < 2**53 and exp >= -22:
        return format(Decimal((int(x < 0), tuple(int(c) for c in str(m)), exp)), "f")
    return x.hex()


@pytest.mark.parametrize("v", [0, 1, -1, 9, 10, 42, -7, 1234567890123, 2**63 - 1, -(2**63)])
def test_write_int(v):
    assert render_int(v) == str(v)


@given(st.integers(-(2**63), 2**63 - 1))
def test_write_int_any(v):
    assert render_int(v) == str(v)


@pytest.mark.parametrize("x,text", [
    (0.0, "0"), (-0.0, "0"), (3.0, "3"), (-3.0, "-3"), (1e19, "10000000000000000000"), (1e20, (1e20).hex()),
    (0.1, "0.1"), (-2.5, "-2.5"), (0.00012, "0.00012"), (1e-5, "0.00001"), (123.25, "123.25"),
    (1e-22, "0.0000000000000000000001"), (1 / 3, "0.3333333333333333"),
    (0.1 + 0.2, (0.1 + 0.2).hex()), (1e-30, (1e-30).hex()), (1e300, (1e300).hex()),
    (5e-324, (5e-324).hex()), (float("inf"), "inf"), (float("-inf"), "-inf"),
    (2.0**64, (2.0**64).hex()), (2.0**64 - 2048, "18446744073709549568"),
])
def test_write_float_examples(x, text):
    assert render_float(x) == text


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False))
def test_write_float_matches_reference(x):
    assert render_float(x) == reference_float_text(x)


@settings(max_examples=1000, deadline=None)
@given(st.integers(-(10**15), 10**15), st.integers(-24, 4))
def test_write_float_short_decimals_round_trip(m, k):
    x = float(Decimal(m).scaleb(k))
    text = render_float(x)
    assert float.fromhex(text) == x if text.lstrip("-").startswith("0x") else float(text) == x
    assert text == reference_float_text(x)


@pytest.mark.parametrize("x,text", [
    (0, "0"), (0.99, "0"), (1, "1"), (2, "1"), (3, "2"), (6.9, "2"), (7, "3"), (1000, "9"),
    (-0.5, "-0"), (-3, "-2"), (2.0**60, "60"),
])
def test_write_bin(x, text):
    assert render_bin(x) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_write_bin_is_floor_log2(x):
    y = 1.0 + abs(x)
    expected = math.frexp(y)[1] - 1
    assert render_bin(x) == ("-" if x < 0 else "") + str(expected)


# --------------------------------------------------------------------------------------
# arenas
# --------------------------------------------------------------------------------------

def arena_keys(off, data, present):
    return [bytes(data[off[r]:off[r + 1]]).decode() if present[r] else None for r in range(len(present))]


def test_render_strings_with_sliced_offsets_nulls_and_empties():
    import pyarrow as pa

    arr = pa.array(["zz", "a", None, "", "héllo", "b"]).slice(1, 4)  # a, None, "", héllo
    bufs = arr.buffers()
    off = np.frombuffer(bufs[1], np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    data = np.frombuffer(bufs[2], np.uint8)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False)).view(np.uint8)
    prefix = np.frombuffer(b"col=", np.uint8)
    out_off = np.empty(5, np.int64)
    out = np.empty(64, np.uint8)
    present = np.empty(4, np.uint8)
    H.render_strings(prefix, off, data, valid, out_off, out, present)
    assert arena_keys(out_off, out, present) == ["col=a", None, None, "col=héllo"]
    ids = np.empty(4, np.int64)
    H.hash_tokens(out_off, out, present, 0, (1 << 20) - 1, ids)
    assert ids[1] == ids[2] == -1
    assert ids[0] == mm("col=a") & ((1 << 20) - 1)
    assert ids[3] == mm("col=héllo") & ((1 << 20) - 1)


def test_render_ints_floats_bins_and_numeric_values():
    prefix = np.frombuffer(b"n=", np.uint8)
    valid = np.array([1, 1, 0, 1], np.uint8)
    off = np.empty(5, np.int64)
    out = np.empty(4 * (2 + H.MAX_FLOAT_TEXT), np.uint8)
    present = np.empty(4, np.uint8)
    H.render_ints(prefix, np.array([5, -12, 7, 0], np.int64), valid, off, out, present)
    assert arena_keys(off, out, present) == ["n=5", "n=-12", None, "n=0"]
    H.render_floats(prefix, np.array([5.0, 0.25, 7.0, np.nan]), valid, off, out, present)
    assert arena_keys(off, out, present) == ["n=5", "n=0.25", None, None]
    assert H.render_bins(prefix, np.array([5.0, -0.25, 7.0, 0.0]), valid, off, out, present) > 0
    assert arena_keys(off, out, present) == ["n=2", "n=-0", None, "n=0"]
    assert H.render_bins(prefix, np.array([5.0, np.inf, 7.0, 0.0]), valid, off, out, present) == -2
    vals = np.empty(4)
    name = np.frombuffer(b"n", np.uint8)
    H.numeric_tokens(name, np.array([5.0, 0.0, 7.0, np.nan]), valid, off, out, present, vals)
    assert arena_keys(off, out, present) == ["n", None, None, None]
    assert vals[0] == 5.0
    assert H.numeric_tokens(name, np.array([1.0, -np.inf, 0, 0]), valid, off, out, present, vals) == -2


def test_cross_tokens():
    def arena(keys):
        present = np.array([k is not None for k in keys], np.uint8)
        bs = [(k or "").encode() for k in keys]
        off = np.cumsum([0] + [len(b) for b in bs]).astype(np.int64)
        return off, np.frombuffer(b"".join(bs) or b"\0", np.uint8), present

    oa, da, pa_ = arena(["a=1", None, "a=3"])
    ob, db, pb = arena(["b=x", "b=y", "b"])
    off = np.empty(4, np.int64)
    out = np.empty(64, np.uint8)
    present = np.empty(3, np.uint8)
    vals = np.empty(3)
    H.cross_tokens(oa, da, pa_, np.ones(3), ob, db, pb, np.array([1.0, 1.0, 2.5]), off, out, present, vals)
    assert arena_keys(off, out, present) == ["a=1^b=x", None, "a=3^b"]
    assert vals[0] == 1.0 and vals[2] == 2.5


def test_assemble_and_check_sparse():
    tok_ids = np.array([[3, -1, 7], [1, 2, 7]], np.int64)
    tok_vals = np.array([[1.0, 1.0, 1.0], [2.0, 0.0, 1.0]])
    indptr = np.empty(4, np.int64)
    ids = np.empty(6, np.int64)
    vals = np.empty(6)
    nnz, max_id = H.assemble_csr(tok_ids, tok_vals, indptr, ids, vals)
    assert nnz == 4 and max_id == 7
    assert list(indptr) == [0, 2, 2, 4] and list(ids[:4]) == [3, 1, 7, 7]
    err, pos, mx, canon = H.check_sparse(indptr, ids[:4], vals[:4])
    assert err == H.OK and mx == 7 and canon  # unsorted and repeated
    err, pos, _, _ = H.check_sparse(np.array([0, 2], np.int64), np.array([1, -4]), np.array([1.0, 1.0]))
    assert (err, pos) == (H.ERR_NEGATIVE, 1)
    err, pos, _, _ = H.check_sparse(np.array([0, 2], np.int64), np.array([1, 4]), np.array([1.0, np.nan]))
    assert (err, pos) == (H.ERR_NONFINITE, 1)


# --------------------------------------------------------------------------------------
# stability across processes
# --------------------------------------------------------------------------------------

_CHILD = r"""
import json, sys
import numpy as np
from ftrl_cli import kernels as H
keys = json.loads(sys.argv[1])
out = []
for k in keys:
    b = k.encode("utf-8")
    a = np.frombuffer(b, np.uint8) if b else np.zeros(0, np.uint8)
    out.append(int(H.murmur3_32(a, 0, len(b), H.HASH_SEED)))
buf = np.zeros(64, np.uint8)
floats = [bytes(buf[:H.write_float(x, buf, 0)]).decode() for x in (0.1, 1/3, 1e-7, 2.5e15 + 0.5)]
print(json.dumps([out, floats]))
"""


def test_identical_across_processes():
    import json
    import os

    keys = ["", "a", "C1=68fd1e64", "app=12^channel=497", "é=ü", "x" * 1000]
    results = []
    for hashseed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(keys)], capture_output=True,
                             text=True, env=env, check=True)
        results.append(json.loads(out.stdout))
    here = [[mm(k, H.HASH_SEED) for k in keys],
            [render_float(x) for x in (0.1, 1 / 3, 1e-7, 2.5e15 + 0.5)]]
    assert results[0] == results[1] == here
