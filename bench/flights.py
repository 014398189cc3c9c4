#!/usr/bin/env python3
"""The flights-like bench set: ~2.5 M rows x 10 one-hot features with small ids, and what
every `ftrl` command pays outside its loop on it (issue 16, items 2 and 4).

    .venv/bin/python bench/flights.py                       # data once, then the timed pairs
    .venv/bin/python bench/flights.py --pairs 7 --cache-dir /tmp/fl
    .venv/bin/python bench/flights.py --generate-only

The data imitates the airline-delay benchmark's one-hot encoding (month, day of month, day of
week, departure hour, departure time in 5-minute steps, carrier, origin, destination,
distance band, year): ten fields, exactly one `id:1` each, ids < 2048 (ftrl's table: 2,048 slots),
power-law frequencies inside a field, labels drawn from a logistic ground truth (~19 %
positive, as "delayed 15 min"). The same seed always gives the same bytes (~150 MB).

Timed, in alternating pairs (ftrl, then its peer, N times; medians of the per-pair values):
  train     `ftrl train DATA --json` against `vw --ftrl` from VW text (-b 18: no collisions)
  predict   `ftrl predict -m MODEL DATA` against `vw -t` (probabilities written to files)
and on a small file (the first 10,000 rows) the same two commands, whose wall time is
almost all fixed cost. `train --json` reports `loop_seconds` (the passes over the data,
without start-up and the final save), so train's fixed seconds are wall - loop_seconds;
predict has no such figure, so its fixed seconds are taken as the small file's wall time.
Wall time is measured by this process around the child, CPU and peak RSS by GNU time.

Peers as in run_bench.py: $VW, /work/.venv-peers/bin/vw, PATH; a missing vw is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_bench as rb  # noqa: E402  (measure, peers, VW text conversion)

# (name, cardinality): one-hot ids are laid out field after field from id 1
FIELDS = [("month", 12), ("day_of_month", 31), ("day_of_week", 7), ("dep_hour", 24),
          ("dep_time_5min", 288), ("carrier", 22), ("origin", 650), ("dest", 650),
          ("distance_band", 100), ("year", 22)]
ROWS = 2_500_000
SMALL_ROWS = 10_000
VW_BITS = 18
CHUNK = 100_000


def generate(out: Path, rows: int = ROWS, seed: int = 1, pos_rate: float = 0.19) -> dict:
    """Write the libsvm file (atomically); the same (rows, seed) gives the same bytes."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    sizes = np.array([c for _, c in FIELDS], np.int64)
    offs = 1 + np.concatenate([[0], np.cumsum(sizes)[:-1]])
    D = int(offs[-1] + sizes[-1])
    w = rng.normal(0.0, 0.5, size=D)  # the ground truth
    cdfs, perms = [], []
    for c in sizes.tolist():
        k = np.arange(1, c + 1, dtype=np.float64)
        cdf = np.cumsum(k ** -1.1)
        cdfs.append(cdf / cdf[-1])
        perms.append(rng.permutation(c))
    row_fmt = "%d" + " %d:1" * len(FIELDS) + "\n"
    bias = None
    pos = 0
    tmp = Path(str(out) + ".tmp")
    with open(tmp, "w", buffering=1 << 22) as f:
        for c0 in range(0, rows, CHUNK):
            n = min(CHUNK, rows - c0)
            r = np.random.default_rng([seed, c0])
            ids = np.empty((n, len(FIELDS)), np.int64)
            for j in range(len(FIELDS)):
                v = np.searchsorted(cdfs[j], r.random(n), side="right").clip(0, sizes[j] - 1)
                ids[:, j] = offs[j] + perms[j][v]
            m = w[ids].sum(axis=1)
            if bias is None:  # calibrated once, on the first chunk
                lo, hi = -30.0, 30.0
                for _ in range(60):
                    mid = 0.5 * (lo + hi)
                    lo, hi = (lo, mid) if np.mean(1 / (1 + np.exp(-(m + mid)))) > pos_rate else (mid, hi)
                bias = 0.5 * (lo + hi)
            y = (r.random(n) < 1 / (1 + np.exp(-(m + bias)))).astype(np.int64)
            pos += int(y.sum())
            f.write((row_fmt * n) % tuple(np.concatenate([y[:, None], ids], axis=1).ravel().tolist()))
    os.replace(tmp, out)
    return {"rows": rows, "fields": len(FIELDS), "max_id": D, "seed": seed, "pos_rate": pos / max(rows, 1),
            "bytes": out.stat().st_size, "seconds": round(time.perf_counter() - t0, 1)}


def head(src: Path, dst: Path, rows: int) -> None:
    if dst.exists():
        return
    with open(src, "rb") as fi, open(str(dst) + ".tmp", "wb") as fo:
        for _, line in zip(range(rows), fi):
            fo.write(line)
    os.replace(str(dst) + ".tmp", dst)


def make_data(ddir: Path, rows: int, seed: int) -> dict:
    ddir.mkdir(parents=True, exist_ok=True)
    svm = ddir / f"flights-r{rows}-s{seed}.svm"
    if not svm.exists():
        rb.log(f"generating {svm} ...")
        rb.log(f"  {generate(svm, rows, seed)}")
    small = ddir / f"flights-r{rows}-s{seed}-head{SMALL_ROWS}.svm"
    head(svm, small, SMALL_ROWS)
    d = {}
    for name, p in (("big", svm), ("small", small)):
        vw = Path(str(p)[:-4] + ".vw")
        if not vw.exists() or vw.stat().st_mtime_ns < p.stat().st_mtime_ns:
            rb.log(f"converting {p.name} to VW text (not timed) ...")
            rb.libsvm_to_vw(p, vw)
        d[name] = {"svm": str(p), "vw": str(vw), "bytes": p.stat().st_size}
    return d


def _json_tail(r):
    try:
        return json.loads(r["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def bench(data: dict, env: dict, wd: Path, pairs: int) -> dict:
    """Alternating pairs per data set: ftrl train / vw --ftrl, ftrl predict / vw -t."""
    ftrl, vw = env["ftrl"], env["vw"]
    a = rb.FTRL_ARGS
    res = {}
    for name, d in data.items():
        wdn = wd / name
        wdn.mkdir(parents=True, exist_ok=True)
        model = wdn / "ftrl-model"
        train = [ftrl, "train", d["svm"], "-m", model, "--alpha", a["alpha"], "--beta", a["beta"], "--l1", a["l1"],
                 "--l2", a["l2"], "--passes", 1, "-q", "--force", "--json"]
        predict = [ftrl, "predict", "-m", model, d["svm"], "-q"]
        pq_path, _ = rb.build_parquet(ftrl, d, env["python"])  # (ftrl's Parquet cache, built untimed)
        train_pq = [ftrl, "train", pq_path, "-m", wdn / "ftrl-model-pq", "--alpha", a["alpha"], "--beta", a["beta"],
                    "--l1", a["l1"], "--l2", a["l2"], "--passes", 1, "-q", "--force", "--json"]
        vw_train = [vw] + rb.vw_args(VW_BITS) + ["-d", d["vw"], "-f", wdn / "vw.model", "--quiet"] if vw else None
        vw_pred = [vw, "-t", "-i", wdn / "vw.model", "-d", d["vw"], "-p", wdn / "p_vw.txt", "--link", "logistic",
                   "--quiet"] if vw else None
        for f in (d["svm"], d["vw"]):  # page cache (untimed), and a warm Numba cache / VW model
            subprocess.run(["cat", f], stdout=subprocess.DEVNULL)
        rb.measure(train)
        rb.measure(train_pq)
        if vw:
            rb.measure(vw_train)
        runs = {"train": [], "vw_train": [], "train_parquet": [], "predict": [], "vw_predict": [], "import_numba": []}
        numba = [env["python"], "-c", "import numba"]  # (the yardstick of the fixed cost, in the same minute)
        for i in range(pairs):
            for key, cmd, out in (("import_numba", numba, None), ("train", train, None), ("vw_train", vw_train, None),
                                  ("train_parquet", train_pq, None),
                                  ("predict", predict, wdn / "p_ftrl.txt"), ("vw_predict", vw_pred, None)):
                if cmd is None:
                    continue
                r = rb.measure(cmd, stdout_path=out)
                if r["rc"] != 0:
                    raise RuntimeError(f"{' '.join(map(str, cmd))} failed (rc {r['rc']}): {r['stderr'][-600:]}")
                rec = {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "rss_mb": r["rss_mb"]}
                if key in ("train", "train_parquet"):
                    s = _json_tail(r)
                    rec.update(seconds=s.get("seconds"), loop_seconds=s.get("loop_seconds"),
                               logloss=s.get("progressive_logloss"), examples=s.get("examples"))
                runs[key].append(rec)
            rb.log(f"{name} pair {i + 1}/{pairs}: " + ", ".join(
                f"{k} {v[-1]['wall_s']:.2f}s" for k, v in runs.items() if v))
        res[name] = runs
    return res


def summarize(res: dict) -> dict:
    out = {}
    for name, runs in res.items():
        s = {}
        for k, v in runs.items():
            if v:
                s[k] = {"wall_s": med([x["wall_s"] for x in v]), "cpu_s": med([x["cpu_s"] for x in v]),
                        "rss_mb": med([x["rss_mb"] for x in v])}
        for key in ("train", "train_parquet"):
            tr = runs.get(key)
            if not tr:
                continue
            # (an ftrl before loop_seconds: its `seconds`, which add the final save to the loop)
            loops = [x["loop_seconds"] if x.get("loop_seconds") is not None else x.get("seconds") for x in tr]
            if all(x is not None for x in loops):
                s[key]["loop_s"] = med(loops)
                s[key]["fixed_s"] = med([x["wall_s"] - lp for x, lp in zip(tr, loops)])
            s[key]["logloss"] = tr[-1].get("logloss")
        for ours, peer in (("train", "vw_train"), ("train_parquet", "vw_train"), ("predict", "vw_predict")):
            if runs[peer]:  # per-pair ratios: peer / ftrl (> 1: ftrl is faster)
                s[ours]["vs_vw"] = med([p["wall_s"] / o["wall_s"] for o, p in zip(runs[ours], runs[peer])])
        out[name] = s
    if "small" in out and "big" in out:  # predict's fixed cost: its wall time on the small file
        out["big"]["predict"]["fixed_s"] = out["small"]["predict"]["wall_s"]
        out["big"]["predict"]["loop_s"] = out["big"]["predict"]["wall_s"] - out["small"]["predict"]["wall_s"]
    return out


def render(R: dict) -> str:
    S = R["summary"]
    lines = [f"### Flights-like set ({R['rows']:,} rows x {len(FIELDS)} one-hot features, ids < 2048, "
             f"{R['bytes'] / 1e6:.0f} MB)", "",
             f"Alternating pairs (ftrl, then its peer), {R['pairs']} pairs, medians; load average "
             f"{R['loadavg_start']} at the start, {R['loadavg_end']} at the end. Ratio = peer's wall / ftrl's "
             "(median of the per-pair ratios; > 1: ftrl is faster). Fixed = wall - loop: for train the loop is "
             "`train --json`'s `loop_seconds`; for predict, the fixed cost is its wall time on the small file.", "",
             "| data | command | wall s | loop s | fixed s | CPU s | peak RSS MB | peer | peer wall s | ratio |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for name in ("big", "small"):
        if name not in S:
            continue
        s = S[name]
        label = "flights" if name == "big" else f"flights head {SMALL_ROWS:,}"
        for ours, peer, pname in (("train", "vw_train", "vw --ftrl"), ("train_parquet", "vw_train", "vw --ftrl"),
                                  ("predict", "vw_predict", "vw -t")):
            o, p = s.get(ours), s.get(peer)
            if not o:
                continue
            what = "ftrl train (sparse Parquet)" if ours == "train_parquet" else f"ftrl {ours}"
            lines.append(f"| {label} | {what} | {rb.f(o['wall_s'])} | {rb.f(o.get('loop_s'))} | "
                         f"{rb.f(o.get('fixed_s'))} | {rb.f(o['cpu_s'])} | {rb.f(o['rss_mb'], 0)} | "
                         f"{pname if p else '-'} | {rb.f(p and p['wall_s'])} | {rb.f(o.get('vs_vw'))} |")
    big = S.get("big", {})
    n = big.get("import_numba", {}).get("wall_s")
    if n:
        fx = {k: big[k].get("fixed_s") for k in ("train", "train_parquet", "predict") if k in big}
        lines += ["", f"`python -c \"import numba\"` in the same pairs: {n:.3f} s. Fixed costs scaled to "
                  "`import numba` = 0.29 s (the issue's idle machine): " + ", ".join(
                      f"{k.replace('_', ' ')} {v * 0.29 / n:.2f} s" for k, v in fx.items() if v is not None) + "."]
    if S.get("big", {}).get("train", {}).get("logloss") is not None:
        lines += ["", f"ftrl's progressive log loss on flights: {S['big']['train']['logloss']:.6f}."]
        pq_loss = S["big"].get("train_parquet", {}).get("logloss")
        if pq_loss is not None:
            same = "the same, bit for bit" if pq_loss == S["big"]["train"]["logloss"] else "DIFFERS"
            lines[-1] += f" From the sparse Parquet cache: {pq_loss:.6f} ({same})."
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", default=str(rb.REPO / ".bench-cache"),
                    help="data, VW copies, models and results (default: .bench-cache/)")
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=5, help="alternating pairs per command (medians)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--md-out", default=None, help="also write the markdown report here")
    a = ap.parse_args(argv)
    cache = Path(a.cache_dir).resolve()
    data = make_data(cache / "data", a.rows, a.seed)
    if a.generate_only:
        print(json.dumps(data))
        return 0
    wd = cache / "work" / "flights"
    wd.mkdir(parents=True, exist_ok=True)
    rb.RUN_CWD = str(wd)
    py = rb.find_python()
    env = {"python": py, "ftrl": rb.find_ftrl(py), "vw": rb.find_vw()}
    if not env["ftrl"]:
        sys.exit("ftrl not found: install the project (pip install -e .) or set $FTRL")
    if not env["vw"]:
        rb.log("vw not found ($VW, /work/.venv-peers/bin/vw, PATH): ratios skipped")
    R = {"rows": a.rows, "bytes": data["big"]["bytes"], "pairs": a.pairs, "loadavg_start": rb._loadavg(),
         "env": env}
    R["runs"] = bench(data, env, wd, a.pairs)
    R["loadavg_end"] = rb._loadavg()
    R["summary"] = summarize(R["runs"])
    md = render(R)
    (cache / "flights.json").write_text(json.dumps(R, indent=1, default=str))
    (cache / "flights.md").write_text(md + "\n")
    if a.md_out:
        Path(a.md_out).write_text(md + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
