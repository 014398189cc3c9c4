"""What an input file is, cheaply: its size and a hash of samples of its bytes, recorded
with each run so that `--resume` knows whether an input is the one it trained on."""

from __future__ import annotations

import hashlib
import os
import stat

from ..errors import DataError
from . import location

SAMPLES = 16  # blocks read: the first, the last and 14 evenly spaced between
SAMPLE_BYTES = 64 << 10  # so a 1 GB file costs 1 MiB of reads (16 seeks)


def fingerprint(path: str) -> str | None:
    """blake2b of the file's size and SAMPLES blocks of SAMPLE_BYTES spread over it (the
    whole file when it is smaller than that). None for stdin, FIFOs and what cannot be read.
    It tells apart any change of size and any change inside a sampled block; an in-place
    edit that keeps the size and touches no sampled block goes unnoticed."""
    if path == "-":
        return None
    if location.is_url(path):
        return _of_url(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # (opening a FIFO would take its data)
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            return _sampled(f, st.st_size)
    except OSError:
        return None


def _of_url(url: str) -> str | None:
    """The same for an object at a URL (16 ranged reads); None when it cannot be read."""
    try:
        size = location.size(url)
        if size is None:
            return None
        with location.open_url(url) as f:
            return _sampled(f, size)
    except (OSError, DataError):
        return None


def _sampled(f, size: int) -> str:
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    if size <= SAMPLES * SAMPLE_BYTES:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    else:
        last = size - SAMPLE_BYTES
        for k in range(SAMPLES):
            f.seek(last * k // (SAMPLES - 1))
            h.update(f.read(SAMPLE_BYTES))
    return h.hexdigest()
