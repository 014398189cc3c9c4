#!/usr/bin/env python3
"""Stage timings for `ftrl` (run with the project's python; imports ftrl_cli).

Each sub-command prints one JSON object on stdout.  Times are measured inside the
process with perf_counter, so they exclude interpreter start-up and imports (those are
measured separately by run_bench.py).

  read FILE                 page-cache read speed: readinto() into one reused 8 MB buffer
  parse FILE                parse only: iterate ftrl_cli.readers.iter_libsvm, no training
  kernel FILE               FTRL update only: parse (up to --max-nnz) into RAM first, then
                            time Model.learn over the in-memory batches (fresh model per rep)
  predict-stages MODEL FILE per-stage cost of `ftrl predict` on in-memory batches:
                            load, margins, sigmoid, %.17g formatting, write
  baseline TINY             RSS (anonymous / file-backed) after numpy+numba, ftrl_cli.api,
                            and the first cached-kernel call
  rss FILE                  peak RSS (VmHWM, reset between phases through
                            /proc/self/clear_refs) of import / train loop / checkpoint save
  prep FILE [--ctr-npy P]   rows, nnz, max id; optionally the (rows, F) id matrix + labels
                            as .npy for the datatable peer (CTR layout: F ids per row)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

T_START = time.perf_counter()
import numpy as np  # noqa: E402


def _hwm_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cmd_read(a):
    buf = bytearray(8 << 20)
    mv = memoryview(buf)
    times = []
    total = 0
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        total = 0
        with open(a.file, "rb", buffering=0) as f:
            while True:
                n = f.readinto(mv)
                if not n:
                    break
                total += n
        times.append(time.perf_counter() - t0)
    return {"bytes": total, "seconds_all": times, "seconds": statistics.median(times)}


def _iter(path):
    from ftrl_cli.readers import iter_libsvm

    return iter_libsvm(path)


def cmd_parse(a):
    t0 = time.perf_counter()
    from ftrl_cli import readers  # noqa: F401  (numba + cached kernels load here)

    import_s = time.perf_counter() - t0
    # warm-up on a tiny prefix so the kernels' cache load is not counted
    for _ in _iter(a.warmup) if a.warmup else ():
        pass
    times = []
    rows = nnz = 0
    max_id = -1
    for _ in range(a.repeat):
        rows = nnz = 0
        t0 = time.perf_counter()
        for b in _iter(a.file):
            rows += b.rows
            nnz += len(b.ids)
            max_id = max(max_id, b.max_id)
        times.append(time.perf_counter() - t0)
    return {"import_s": import_s, "rows": rows, "nnz": nnz, "max_id": max_id,
            "bytes": os.path.getsize(a.file), "seconds_all": times, "seconds": statistics.median(times)}


def _load_batches(path, max_nnz):
    out = []
    nnz = 0
    for b in _iter(path):
        out.append((b.indptr.copy(), b.ids.copy(), b.values.copy(), (b.labels > 0).astype(np.float64),
                    b.max_id))
        nnz += len(b.ids)
        if nnz >= max_nnz:
            break
    return out, nnz


def cmd_kernel(a):
    from ftrl_cli.config import Config
    from ftrl_cli.model import Model

    batches, nnz = _load_batches(a.file, a.max_nnz)
    rows = sum(len(b[0]) - 1 for b in batches)
    max_id = max(b[4] for b in batches)
    res = {"rows": rows, "nnz": nnz}
    for dtype in a.dtypes.split(","):
        cfg = Config(bits=a.bits, dtype=dtype, alpha=a.alpha, beta=a.beta, l1=a.l1, l2=a.l2)
        learn_t, alloc_t = [], []
        for rep in range(a.repeat + 1):  # rep 0 is a warm-up (cache load), not counted
            m = Model(cfg)
            t0 = time.perf_counter()
            m.reserve(max_id)
            t1 = time.perf_counter()
            loss = 0.0
            for indptr, ids, values, y, mid in batches:
                n = len(indptr) - 1
                loss += m.learn(indptr, ids, values, y, np.ones(n), mid, np.empty(n))
            t2 = time.perf_counter()
            if rep:
                alloc_t.append(t1 - t0)
                learn_t.append(t2 - t1)
        res[dtype] = {"learn_s_all": learn_t, "learn_s": statistics.median(learn_t),
                      "alloc_s": statistics.median(alloc_t), "table_slots": m.size,
                      "feat_per_s": nnz / statistics.median(learn_t), "logloss": loss / max(rows, 1)}
    return res


def cmd_predict_stages(a):
    from ftrl_cli import kernels as K
    from ftrl_cli.api import format_floats, load_model

    batches, nnz = _load_batches(a.file, a.max_nnz)
    rows = sum(len(b[0]) - 1 for b in batches)
    t = {}
    t0 = time.perf_counter()
    model = load_model(a.model)
    t["load_model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bias_w = model.bias_weight()
    t["weights"] = time.perf_counter() - t0  # (scoring reads w from the state: no table copy)
    # one warm-up call so no cache load is counted
    ip, ids, vals, _, _ = batches[0]
    format_floats(model.margins(ip, ids, vals, bias_w))
    K.sigmoid_array(np.zeros(4), np.empty(4))
    t.update(margins=0.0, sigmoid=0.0, format_repr=0.0, encode_write=0.0)
    with open(os.devnull, "wb") as out:
        for ip, ids, vals, _, _ in batches:
            t0 = time.perf_counter()
            m = model.margins(ip, ids, vals, bias_w)
            t1 = time.perf_counter()
            p = np.empty_like(m)
            K.sigmoid_array(m, p)
            t2 = time.perf_counter()
            s = format_floats(p)  # (key kept as format_repr: the report reads it)
            t3 = time.perf_counter()
            out.write(s)
            t4 = time.perf_counter()
            t["margins"] += t1 - t0
            t["sigmoid"] += t2 - t1
            t["format_repr"] += t3 - t2
            t["encode_write"] += t4 - t3
        # an alternative for comparison: fixed 6-decimal text (what vw -p prints)
        t0 = time.perf_counter()
        for ip, ids, vals, _, _ in batches:
            m = model.margins(ip, ids, vals, bias_w)
            p = np.empty_like(m)
            K.sigmoid_array(m, p)
            np.savetxt(out, p, fmt="%.6f")
        t["alt_savetxt_6f_total"] = time.perf_counter() - t0
    return {"rows": rows, "nnz": nnz, "table_slots": model.size, "seconds": t,
            "per_row_ns": {k: 1e9 * v / max(rows, 1) for k, v in t.items()
                           if k not in ("load_model", "weights")}}


def cmd_rss(a):
    """Peak RSS of the phases of a train run, rebuilt from the library's pieces."""
    res = {"start_mb": _hwm_mb()}
    t0 = time.perf_counter()
    from ftrl_cli import api, checkpoint  # noqa: F401
    from ftrl_cli.config import Config
    from ftrl_cli.model import Model

    res["after_import_hwm_mb"] = _hwm_mb()
    res["import_s"] = time.perf_counter() - t0
    res["clear_refs"] = _reset_hwm()
    cfg = Config(bits=a.bits, dtype=a.dtype)
    model = Model(cfg)
    n_b = 0
    for b in _iter(a.file):
        n = b.rows
        y = (b.labels > 0).astype(np.float64)
        model.learn(b.indptr, b.ids, b.values, y, np.ones(n), b.max_id, np.empty(n))
        n_b += 1
    res["table_mb"] = model.st.nbytes / 2**20
    res["train_loop_hwm_mb"] = _hwm_mb()
    res["rss_after_train_mb"] = _rss_mb()
    _reset_hwm()
    d = a.model_dir
    os.makedirs(d, exist_ok=True)
    from ftrl_cli.engine import start_run
    from ftrl_cli.records import InputId

    log = start_run(None, [InputId(a.file)], cfg)
    log.finished = True
    checkpoint.start_run(d, cfg)
    t0 = time.perf_counter()
    checkpoint.save(d, model, log)
    res["save_s"] = time.perf_counter() - t0
    res["save_hwm_mb"] = _hwm_mb()
    del model
    _reset_hwm()
    base = _rss_mb()
    t0 = time.perf_counter()
    m2 = api.load_model(d)
    res["load_s"] = time.perf_counter() - t0
    res["load_rss_before_mb"] = base
    res["load_hwm_mb"] = _hwm_mb()
    _reset_hwm()
    t0 = time.perf_counter()
    m2.weights()
    res["weights_s"] = time.perf_counter() - t0
    res["weights_hwm_mb"] = _hwm_mb()
    return res


def _rss_split():
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                d[k] = int(line.split()[1]) / 1024.0
    return d


def cmd_baseline(a):
    """RSS floor of any ftrl process: numpy, numba, ftrl_cli.api, then the first (cached)
    kernel call on a tiny file (Numba initialises LLVM when it loads cached machine code)."""
    out = {"python + numpy": _rss_split()}
    import numba  # noqa: F401

    out["import numpy + numba"] = _rss_split()
    from ftrl_cli import api  # noqa: F401

    out["import ftrl_cli.api"] = _rss_split()
    for _ in _iter(a.tiny):
        pass
    out["first parse of a tiny file (cached kernels loaded)"] = _rss_split()
    return {"steps": out}


def cmd_prep(a):
    rows = nnz = 0
    max_id = -1
    xs, ys = [], []
    F = None
    for b in _iter(a.file):
        rows += b.rows
        nnz += len(b.ids)
        max_id = max(max_id, b.max_id)
        if a.ctr_npy:
            lens = np.diff(b.indptr)
            F = F or int(lens[0])
            if not (lens == F).all():
                raise SystemExit("prep --ctr-npy needs exactly F ids per row")
            xs.append(b.ids.reshape(-1, F).astype(np.int32))
            ys.append(b.labels > 0)
    res = {"rows": rows, "nnz": nnz, "max_id": int(max_id), "bytes": os.path.getsize(a.file)}
    if a.ctr_npy:
        np.save(a.ctr_npy + ".X.npy", np.concatenate(xs))
        np.save(a.ctr_npy + ".y.npy", np.concatenate(ys))
        res["fields"] = F
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("read")
    p.add_argument("file")
    p.add_argument("--repeat", type=int, default=3)
    p = sub.add_parser("parse")
    p.add_argument("file")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", default=None, help="tiny file parsed first (loads the kernels)")
    p = sub.add_parser("kernel")
    p.add_argument("file")
    p.add_argument("--max-nnz", type=int, default=20_000_000)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--bits", type=int, default=24)
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--l1", type=float, default=1.0)
    p.add_argument("--l2", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=3)
    p = sub.add_parser("predict-stages")
    p.add_argument("model")
    p.add_argument("file")
    p.add_argument("--max-nnz", type=int, default=20_000_000)
    p = sub.add_parser("rss")
    p.add_argument("file")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--bits", type=int, default=24)
    p.add_argument("--dtype", default="float32")
    p = sub.add_parser("baseline")
    p.add_argument("tiny")
    p = sub.add_parser("prep")
    p.add_argument("file")
    p.add_argument("--ctr-npy", default=None)
    a = ap.parse_args(argv)
    fn = {"read": cmd_read, "parse": cmd_parse, "kernel": cmd_kernel, "predict-stages": cmd_predict_stages,
          "rss": cmd_rss, "prep": cmd_prep, "baseline": cmd_baseline}[a.cmd]
    res = fn(a)
    res["cmd"] = a.cmd
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
