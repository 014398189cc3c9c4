#!/usr/bin/env python3
"""Deterministic synthetic libsvm data for the benchmarks (self-contained: numpy only).

Two layouts, both with labels drawn from a logistic ground truth
y ~ Bernoulli(sigmoid(w.x + b)), w ~ N(0, sigma^2) on half of the ids:

  ctr   CTR-like: F fields, exactly one active feature per field, value 1 (`id:1`).
        Field f owns ids [1 + f*S, 1 + (f+1)*S) with S = (2**bits - 1) // F; inside a
        field ids follow a power law (a few very frequent values, a long tail), scattered
        over the range by a random permutation, as in hashed click logs.  Labels 0/1.
  text  text-like (TF-IDF): Poisson(F) distinct ids per row (>= 1) drawn from a power law
        over [1, 2**bits), ascending, real values (gamma draws, each row L2-normalised,
        printed with 6 significant digits, e.g. `5012:0.0712345`).  Labels -1/+1.

The same (layout, rows, fields, bits, seed) always gives the same bytes.  Rows are
written in chunks with one C-level `%` format per chunk, so a 2 M-row CTR file takes
well under a minute.

  python bench/synth.py ctr  --rows 2000000 --fields 40 --bits 24 --out ctr.svm
  python bench/synth.py text --rows 100000 --fields 200 --bits 20 --out text.svm
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

CHUNK = 50_000


def _powerlaw(rng, size, exponent):
    """Sampler of ints in [0, size) with P(k) ~ (k+1)^-exponent, through a random permutation."""
    k = np.arange(1, size + 1, dtype=np.float64)
    cdf = np.cumsum(k ** (-exponent))
    cdf /= cdf[-1]
    perm = rng.permutation(size).astype(np.int64)

    def draw(n, r):
        return perm[np.searchsorted(cdf, r.random(n), side="right").clip(0, size - 1)]

    return draw


def _true_weights(rng, size, sigma):
    w = rng.normal(0.0, sigma, size=size).astype(np.float32)
    w *= rng.random(size) < 0.5
    w[0] = 0.0
    return w


def _calibrate(margins, pos_rate):
    lo, hi = -30.0, 30.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if np.mean(1.0 / (1.0 + np.exp(-(margins + mid)))) > pos_rate:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def generate(layout, out, rows, fields, bits, seed=1, exponent=1.1, sigma=0.6, pos_rate=0.3):
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    D = 1 << bits
    w = _true_weights(rng, D, sigma)
    tmp = out + ".tmp"
    nnz_total = 0
    pos = 0
    bias = None
    if layout == "ctr":
        S = (D - 1) // fields
        draws = [_powerlaw(rng, S, exponent) for _ in range(fields)]
        offs = 1 + S * np.arange(fields, dtype=np.int64)
        row_fmt = "%d" + " %d:1" * fields + "\n"
    else:
        draw = _powerlaw(rng, D - 1, exponent)
        fmt_cache = {}
    with open(tmp, "w", buffering=1 << 22) as f:
        for c0 in range(0, rows, CHUNK):
            n = min(CHUNK, rows - c0)
            r = np.random.default_rng([seed, c0])  # per-chunk stream: chunks are independent
            if layout == "ctr":
                ids = np.empty((n, fields), np.int64)
                for j in range(fields):
                    ids[:, j] = offs[j] + draws[j](n, r)
                m = w[ids].sum(axis=1, dtype=np.float64)
            else:
                lens = np.maximum(1, r.poisson(fields, size=n))
                raw = draw(int(lens.sum()), r) + 1
                row = np.repeat(np.arange(n), lens)
                order = np.lexsort((raw, row))
                row, raw = row[order], raw[order]
                keep = np.ones(len(raw), bool)
                keep[1:] = (row[1:] != row[:-1]) | (raw[1:] != raw[:-1])
                row, raw = row[keep], raw[keep]
                lens = np.bincount(row, minlength=n)
                vals = r.gamma(2.0, 1.0, size=len(raw))
                norms = np.sqrt(np.bincount(row, weights=vals * vals, minlength=n))
                vals = vals / norms[row]
                m = np.bincount(row, weights=w[raw] * vals, minlength=n)
            if bias is None:
                bias = _calibrate(m, pos_rate)
            p = 1.0 / (1.0 + np.exp(-(m + bias)))
            y = (r.random(n) < p).astype(np.int64)
            pos += int(y.sum())
            if layout == "ctr":
                flat = np.concatenate([y[:, None], ids], axis=1).ravel().tolist()
                f.write((row_fmt * n) % tuple(flat))
                nnz_total += n * fields
            else:
                lab = np.where(y > 0, 1, -1)
                total = n + 2 * len(raw)
                starts = np.zeros(n + 1, np.int64)
                np.cumsum(lens, out=starts[1:])
                lab_pos = 2 * starts[:-1] + np.arange(n)
                k = np.arange(len(raw))
                id_pos = 2 * k + row + 1
                arr = np.empty(total, object)
                arr[lab_pos] = lab.tolist()
                arr[id_pos] = raw.tolist()
                arr[id_pos + 1] = vals.tolist()
                parts = []
                for ln in lens.tolist():
                    s = fmt_cache.get(ln)
                    if s is None:
                        s = fmt_cache[ln] = "%d" + " %d:%.6g" * ln + "\n"
                    parts.append(s)
                f.write("".join(parts) % tuple(arr.tolist()))
                nnz_total += len(raw)
    os.replace(tmp, out)
    meta = {"layout": layout, "rows": rows, "fields": fields, "bits": bits, "seed": seed,
            "exponent": exponent, "nnz": nnz_total, "pos_rate": pos / max(rows, 1),
            "bytes": os.path.getsize(out), "seconds": round(time.perf_counter() - t0, 2)}
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("layout", choices=["ctr", "text"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--fields", type=int, default=40, help="features per row (ctr) or Poisson mean (text)")
    ap.add_argument("--bits", type=int, default=24, help="ids are in [1, 2**bits)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--exponent", type=float, default=1.1)
    a = ap.parse_args(argv)
    meta = generate(a.layout, a.out, a.rows, a.fields, a.bits, a.seed, a.exponent)
    json.dump(meta, sys.stdout)
    print()


if __name__ == "__main__":
    main()
