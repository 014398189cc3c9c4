#!/usr/bin/env python3
"""Speed and memory benchmark of `ftrl` against Vowpal Wabbit and datatable, on this machine.

    .venv/bin/python bench/run_bench.py                 # full run (< 10 min here, data cached)
    .venv/bin/python bench/run_bench.py --quick         # small files, for a smoke test
    .venv/bin/python bench/run_bench.py --datasets ctr --repeat 5

What it does
  1. Makes the data once, cached under --cache-dir (default .bench-cache/, gitignored):
       ctr   CTR-like synthetic, 2 M rows x 40 one-hot features, ids < 2**24 with power-law
             frequencies (bench/synth.py);
       text  text-like synthetic, ~130 real-valued TF-IDF features per row (bench/synth.py);
       a9a   the real a9a file (../shared/data/a9a/a9a) repeated N times (skipped when absent);
       ctr-head  the first tenth of ctr (for the RSS flatness check).
     Each file is converted once to VW text (`<-1|1> |f id:v ...`) and, for ctr, to a .npy id
     matrix for datatable; VW's binary cache is built once per file (-b 24), and ftrl's sparse
     Parquet cache once per file (`ftrl convert DATA.svm DATA.parquet -q`, under
     CACHE/data/parquet/, rebuilt when the .svm's size or mtime changes).  None of this is
     timed.
  2. Runs every timed command (ftrl train from text and from the Parquet cache, mini-batch
     `--batch-size 256` trains, lazy and dense, vw from text and from its cache, datatable,
     predict) >= --repeat times, in interleaved rounds (round 1 runs every
     tool once, then round 2, ...), so slow drifts of this noisy machine hit every tool alike.
     Wall time is measured by this process around the child; peak RSS and CPU time come from
     GNU time (%M %U %S) wrapped around the child.  Reported: the median.
  3. Measures where the time goes: page-cache read speed (cat, readinto), parse-only speed
     (iterate ftrl_cli.readers.iter_libsvm), update-only speed (Model.learn on batches in
     RAM), the stages of predict, the peak RSS of each phase of a train, a cProfile of
     `ftrl train` and `ftrl predict`, `ftrl --help`, imports, and start-up on a tiny file
     (with NUMBA_DEBUG_CACHE=1 to see whether anything is compiled).
  4. Prints a markdown report (also written to CACHE/results.md; raw numbers to
     CACHE/results.json).

Peers: vw from $VW, else /work/.venv-peers/bin/vw, else PATH; datatable through the python
in $PEERS_PYTHON or /work/.venv-peers/bin/python.  A missing peer is reported, not fatal.
ftrl is $FTRL, else the `ftrl` next to this python, else .venv/bin/ftrl, else PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

FTRL_ARGS = dict(alpha=0.1, beta=1.0, l1=1.0, l2=1.0)
TARGET_SPEEDUP = 3.0
PARQUET_VS_VW_TEXT = 5.0   # ftrl train from its sparse Parquet cache vs vw --ftrl from text
PARQUET_VS_VW_CACHE = 2.0  # ... vs vw --ftrl from its binary cache
BATCH_SIZE = 256           # the mini-batch rows (Keras-style FTRL, one step per 256 rows)
# --update dense touches every slot of the table once per step: skip it where
# steps * slots would be far beyond the budget (ctr: 7,813 steps x 2^24 slots = 1.3e11)
DENSE_MAX_SLOT_UPDATES = 2e9
RSS_HEADROOM_MB = 150.0
HELP_TARGET_S = 0.5


# ---------------------------------------------------------------------------------------
# tools
# ---------------------------------------------------------------------------------------

def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _exe(p):
    return p if p and os.path.isfile(p) and os.access(p, os.X_OK) else None


def find_python():
    return (_exe(os.environ.get("FTRL_PYTHON")) or _exe(str(REPO / ".venv/bin/python"))
            or sys.executable)


def find_ftrl(py):
    return (_exe(os.environ.get("FTRL")) or _exe(str(Path(py).parent / "ftrl"))
            or _exe(str(REPO / ".venv/bin/ftrl")) or shutil.which("ftrl"))


def find_vw():
    return (_exe(os.environ.get("VW")) or _exe("/work/.venv-peers/bin/vw") or shutil.which("vw"))


def find_peers_python():
    for p in (os.environ.get("PEERS_PYTHON"), "/work/.venv-peers/bin/python"):
        if _exe(p):
            r = subprocess.run([p, "-c", "import datatable, numpy; print(datatable.__version__)"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                return p, r.stdout.strip()
    return None, None


RUN_CWD = None  # children run here (outside the repo, so `python -m/-c` cannot pick up ./ftrl_cli)


def measure(cmd, stdout_path=None, env=None, timeout=1800):
    """Run cmd; return wall_s (parent's clock), rss_mb, cpu_s (user+sys), rc, out/err tails."""
    full = list(map(str, cmd))
    tfile = None
    if GNU_TIME:
        fd, tfile = tempfile.mkstemp(prefix="bench_time_")
        os.close(fd)
        full = [GNU_TIME, "-f", "%M %U %S", "-o", tfile, "--"] + full
    out = open(stdout_path, "wb") if stdout_path else subprocess.PIPE
    t0 = time.perf_counter()
    try:
        p = subprocess.run(full, stdout=out, stderr=subprocess.PIPE, env=env, timeout=timeout, cwd=RUN_CWD)
        rc = p.returncode
        err = p.stderr.decode("utf-8", "replace")
        sout = "" if stdout_path else p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        rc, err, sout = "timeout", "", ""
    wall = time.perf_counter() - t0
    if stdout_path:
        out.close()
    rss = cpu = None
    if tfile:
        try:
            lines = [ln for ln in Path(tfile).read_text().splitlines() if ln.strip()]
            m, u, s = lines[-1].split()
            rss, cpu = int(m) / 1024.0, float(u) + float(s)
        except (OSError, ValueError, IndexError):
            pass
        os.unlink(tfile)
    return {"wall_s": wall, "rss_mb": rss, "cpu_s": cpu, "rc": rc, "stdout": sout[-4000:],
            "stderr": err[-4000:]}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def run_json(cmd, env=None):
    r = measure(cmd, env=env)
    if r["rc"] != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed (rc {r['rc']}): {r['stderr'][-600:]}")
    return json.loads(r["stdout"].strip().splitlines()[-1]), r


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------

def dataset_specs(quick):
    if quick:
        return [
            {"name": "ctr", "kind": "ctr", "rows": 300_000, "fields": 40, "bits": 24},
            {"name": "text", "kind": "text", "rows": 10_000, "fields": 200, "bits": 20},
            {"name": "a9a", "kind": "repeat", "src": SHARED / "data/a9a/a9a", "times": 4},
        ]
    return [
        {"name": "ctr", "kind": "ctr", "rows": 2_000_000, "fields": 40, "bits": 24},
        {"name": "text", "kind": "text", "rows": 60_000, "fields": 200, "bits": 20},
        {"name": "a9a", "kind": "repeat", "src": SHARED / "data/a9a/a9a", "times": 20},
    ]


def libsvm_to_vw(src, dst):
    """'<label> i:v ...' -> '<1|-1> |f i:v ...' (label > 0 is positive); comments dropped."""
    tmp = str(dst) + ".tmp"
    pos_labels = {b"1", b"+1", b"1.0"}
    neg_labels = {b"0", b"-1", b"0.0", b"-1.0"}
    with open(src, "rb") as fi, open(tmp, "wb", buffering=1 << 22) as fo:
        out = []
        for line in fi:
            if b"#" in line:
                line = line[: line.index(b"#")] + b"\n"
            s = line.lstrip()
            if not s.strip():
                continue
            sp = s.find(b" ")
            tab = s.find(b"\t")
            if tab >= 0 and (sp < 0 or tab < sp):
                sp = tab
            lab, rest = (s[:sp], s[sp:]) if sp >= 0 else (s.rstrip(), b"\n")
            if lab in pos_labels:
                positive = True
            elif lab in neg_labels:
                positive = False
            else:
                positive = float(lab) > 0
            out.append((b"1 |f" if positive else b"-1 |f") + rest)
            if len(out) >= 100_000:
                fo.write(b"".join(out))
                out.clear()
        fo.write(b"".join(out))
    os.replace(tmp, dst)


def make_dataset(spec, ddir, py):
    """Create (if needed) the libsvm file, its VW copy and its stats; return a dict."""
    name = spec["name"]
    if spec["kind"] == "repeat":
        src = Path(spec["src"])
        if not src.exists():
            return {"name": name, "missing": f"{src} not found (needs ../shared/data)"}
        base = f"{name}-x{spec['times']}"
        svm = ddir / f"{base}.svm"
        if not svm.exists():
            data = src.read_bytes()
            if not data.endswith(b"\n"):
                data += b"\n"
            with open(str(svm) + ".tmp", "wb") as f:
                for _ in range(spec["times"]):
                    f.write(data)
            os.replace(str(svm) + ".tmp", svm)
    else:
        base = f"{name}-r{spec['rows']}-f{spec['fields']}-b{spec['bits']}-s1"
        svm = ddir / f"{base}.svm"
        if not svm.exists():
            log(f"generating {svm.name} ...")
            r = measure([py, HERE / "synth.py", spec["kind"], "--rows", spec["rows"], "--fields",
                         spec["fields"], "--bits", spec["bits"], "--seed", 1, "--out", svm])
            if r["rc"] != 0:
                raise RuntimeError(f"synth.py failed: {r['stderr']}")
    return finish_dataset(name, svm, py, ctr_npy=spec["kind"] == "ctr", desc=spec)


def finish_dataset(name, svm, py, ctr_npy=False, desc=None):
    meta_path = Path(str(svm) + ".meta.json")
    st = svm.stat()
    sig = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    meta = None
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("sig") != sig:
            meta = None
    vw = Path(str(svm)[:-4] + ".vw")
    npy = str(svm)[:-4] if ctr_npy else None
    if meta is None or not vw.exists() or (npy and not Path(npy + ".X.npy").exists()):
        log(f"converting {svm.name} to VW text and counting (not timed) ...")
        libsvm_to_vw(svm, vw)
        cmd = [py, HERE / "stages.py", "prep", svm] + (["--ctr-npy", npy] if npy else [])
        stats, _ = run_json(cmd)
        meta = {"sig": sig, "stats": stats}
        meta_path.write_text(json.dumps(meta))
    s = meta["stats"]
    d = {"name": name, "svm": str(svm), "vw": str(vw), "npy": npy, "rows": s["rows"], "nnz": s["nnz"],
         "max_id": s["max_id"], "bytes": s["bytes"], "vw_bytes": vw.stat().st_size}
    if desc:
        d["spec"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in desc.items()}
    return d


def make_head(ds, ddir, frac_den, py):
    """The first rows/frac_den lines of a dataset (same distribution, 10x smaller)."""
    n = ds["rows"] // frac_den
    svm = ddir / (Path(ds["svm"]).stem + f"-head{n}.svm")
    if not svm.exists():
        with open(ds["svm"], "rb") as fi, open(str(svm) + ".tmp", "wb") as fo:
            for i, line in enumerate(fi):
                if i >= n:
                    break
                fo.write(line)
        os.replace(str(svm) + ".tmp", svm)
    return finish_dataset(ds["name"] + "-head", svm, py)


def state_mb(max_id, bits, itemsize):
    """Size of ftrl's (z, n) table: next power of two above the largest id, capped at 2**bits."""
    cap = 1 << bits
    slots = cap if max_id >= cap else min(cap, max(64, 1 << max(max_id, 0).bit_length()))
    return slots * 2 * itemsize / 2**20, slots


# ---------------------------------------------------------------------------------------
# timed jobs
# ---------------------------------------------------------------------------------------

def ftrl_train_cmd(ftrl, svm, mdir, dtype, bits):
    a = FTRL_ARGS
    return [ftrl, "train", svm, "-m", mdir, "--bits", bits, "--alpha", a["alpha"], "--beta", a["beta"],
            "--l1", a["l1"], "--l2", a["l2"], "--dtype", dtype, "--passes", 1, "-q", "--force", "--json"]


def vw_args(bits):
    a = FTRL_ARGS
    return ["--ftrl", "--ftrl_alpha", a["alpha"], "--ftrl_beta", a["beta"], "--l1", a["l1"], "--l2", a["l2"],
            "--loss_function", "logistic", "-b", bits]


def build_vw_cache(vw, ds, bits, wd):
    """VW's binary cache for this file (kept next to the VW text, keyed by -b); not timed.
    VW writes the cache while it trains from text with --cache_file, and later reads only
    the cache when given --cache_file without -d.  The build run is also our sanity check
    that VW and ftrl learn the same thing (VW's progressive average loss)."""
    cache = ds["vw"] + f".b{bits}.cache"
    info_path = Path(cache + ".json")
    st = os.stat(ds["vw"])
    sig = [st.st_size, st.st_mtime_ns]
    if Path(cache).exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("vw_sig") == sig:  # VW itself would happily reuse a stale cache
            return cache, info
    log(f"building VW cache for {ds['name']} (not timed) ...")
    if Path(cache).exists():
        os.unlink(cache)
    r = measure([vw] + vw_args(bits) + ["-d", ds["vw"], "--cache_file", cache, "-f", wd / "vw_cache_build.model"])
    info = {"build_wall_s": r["wall_s"], "rc": r["rc"], "vw_sig": sig}
    for line in r["stderr"].splitlines():
        if line.startswith("average loss"):
            info["vw_average_loss"] = float(line.split("=")[1])
    if r["rc"] != 0:
        raise RuntimeError(f"vw cache build failed: {r['stderr'][-800:]}")
    info_path.write_text(json.dumps(info))
    return cache, info


def build_parquet(ftrl, ds, py):
    """ftrl's sparse Parquet cache of this file (CACHE/data/parquet/<name>.parquet, default codec);
    not timed.  Keyed by the .svm's size and mtime (a sidecar .json), like the VW cache, and by
    the writer's source (ftrl_cli/readers/parquet_sparse.py, and parquet_own.py's WRITER_OPTIONS):
    a cache written by an older layout (say, before one-hot rows became null values lists)
    would time that layout, not today's."""
    svm = Path(ds["svm"])
    pq = svm.parent / "parquet" / (svm.stem + ".parquet")
    info_path = Path(str(pq) + ".json")
    st = svm.stat()
    readers = HERE.parent / "ftrl_cli" / "readers"
    writer = b"".join((readers / f).read_bytes() for f in ("parquet_sparse.py", "parquet_own.py"))
    sig = [st.st_size, st.st_mtime_ns, hashlib.sha256(writer).hexdigest()[:16]]
    if pq.exists() and info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("svm_sig") == sig:
            return str(pq), info
    log(f"converting {svm.name} to sparse Parquet (not timed) ...")
    pq.parent.mkdir(parents=True, exist_ok=True)
    if pq.exists():
        os.unlink(pq)
    r = measure([ftrl, "convert", svm, pq, "-q"])
    if r["rc"] != 0:
        raise RuntimeError(f"ftrl convert failed: {r['stderr'][-800:]}")
    info = {"build_wall_s": r["wall_s"], "svm_sig": sig, "bytes": pq.stat().st_size}
    r = measure([py, "-c", "import sys, pyarrow.parquet as q; m = q.ParquetFile(sys.argv[1]).metadata; "
                 "print(m.num_row_groups, m.row_group(0).column(0).compression if m.num_row_groups else '-')", pq])
    if r["rc"] == 0 and len(r["stdout"].split()) == 2:
        info["row_groups"], info["codec"] = int(r["stdout"].split()[0]), r["stdout"].split()[1]
    info_path.write_text(json.dumps(info))
    return str(pq), info


def dense_work(ds, bits):
    """Slot updates of `--update dense` (every slot of the table, once per step of BATCH_SIZE rows)."""
    _, slots = state_mb(ds["max_id"], bits, 4)
    return -(-ds["rows"] // BATCH_SIZE) * slots


def run_dataset(ds, env, a, wd, with_vw=True, with_dt=True, with_predict=True, with_extra=True):
    """The timed comparison on one dataset; returns {job: {...}}."""
    ftrl, vw, peers_py = env["ftrl"], env["vw"], env["peers_python"]
    bits = a.bits
    wd = wd / ds["name"]
    wd.mkdir(parents=True, exist_ok=True)
    jobs = {}  # name -> dict(cmd, stdout, kind, input_bytes, group)
    jobs["ftrl train f32"] = dict(cmd=ftrl_train_cmd(ftrl, ds["svm"], wd / "ftrl32", "float32", bits),
                                  group="train", input_bytes=ds["bytes"], tool="ftrl")
    jobs["ftrl train f64"] = dict(cmd=ftrl_train_cmd(ftrl, ds["svm"], wd / "ftrl64", "float64", bits),
                                  group="train", input_bytes=ds["bytes"], tool="ftrl")
    if ds["name"] == "ctr":  # the single-threaded path (ftrl reads ahead in a thread when it sees 2+ CPUs)
        jobs["ftrl train f32, FTRL_READ_AHEAD=0"] = dict(
            cmd=ftrl_train_cmd(ftrl, ds["svm"], wd / "ftrl32-ra0", "float32", bits), env={"FTRL_READ_AHEAD": "0"},
            group="train", input_bytes=ds["bytes"], tool="ftrl")
        # diagnostic: numpy's OpenBLAS worker threads spin after every BLAS call (e.g. a per-batch
        # `a @ b`), stealing the second vCPU from the read-ahead thread
        jobs["ftrl train f32, OPENBLAS_NUM_THREADS=1"] = dict(
            cmd=ftrl_train_cmd(ftrl, ds["svm"], wd / "ftrl32-ob1", "float32", bits),
            env={"OPENBLAS_NUM_THREADS": "1"}, group="train", input_bytes=ds["bytes"], tool="ftrl")
    notes = {}
    if with_extra:
        pq, info = build_parquet(ftrl, ds, env["python"])
        notes["parquet"] = dict(info, path=pq)
        jobs["ftrl train f32 (sparse Parquet)"] = dict(
            cmd=ftrl_train_cmd(ftrl, pq, wd / "ftrl32-pq", "float32", bits), group="train",
            input_bytes=info["bytes"], tool="ftrl", parquet=True)
        jobs[f"ftrl train f32 --batch-size {BATCH_SIZE} (lazy)"] = dict(
            cmd=ftrl_train_cmd(ftrl, ds["svm"], wd / "ftrl32-mb", "float32", bits) + ["--batch-size", BATCH_SIZE],
            group="train", input_bytes=ds["bytes"], tool="ftrl", minibatch=True)
        work = dense_work(ds, bits)
        if work <= DENSE_MAX_SLOT_UPDATES:
            jobs[f"ftrl train f32 --batch-size {BATCH_SIZE} --update dense"] = dict(
                cmd=ftrl_train_cmd(ftrl, ds["svm"], wd / "ftrl32-mbd", "float32", bits)
                + ["--batch-size", BATCH_SIZE, "--update", "dense"],
                group="train", input_bytes=ds["bytes"], tool="ftrl", minibatch=True)
        else:
            _, slots = state_mb(ds["max_id"], bits, 4)
            notes["dense"] = (f"--update dense skipped: {-(-ds['rows'] // BATCH_SIZE):,} steps x 2^{slots.bit_length() - 1} "
                              f"slots = {work:.1e} slot updates (> {DENSE_MAX_SLOT_UPDATES:.0e}; ~{work / 1e8 / 60:.0f} min "
                              "at ~1e8 slot updates/s)")
    if with_vw and vw:
        cache, info = build_vw_cache(vw, ds, bits, wd)
        notes["vw_cache"] = dict(info, path=cache, bytes=os.path.getsize(cache))
        jobs["vw --ftrl (text)"] = dict(cmd=[vw] + vw_args(bits) + ["-d", ds["vw"], "-f", wd / "vw.model", "--quiet"],
                                        group="train", input_bytes=ds["vw_bytes"], tool="vw")
        jobs["vw --ftrl (cache)"] = dict(cmd=[vw] + vw_args(bits) + ["--cache_file", cache, "-f",
                                                                     wd / "vwc.model", "--quiet"],
                                         group="train", input_bytes=os.path.getsize(cache), tool="vw")
    elif with_vw:
        notes["vw"] = "vw not found ($VW, /work/.venv-peers/bin/vw, PATH): skipped"
    if with_dt and ds.get("npy"):
        if peers_py:
            jobs["datatable Ftrl (1 thread, f64)"] = dict(
                cmd=[peers_py, HERE / "dt_ftrl.py", ds["npy"], "--bits", bits, "--alpha", FTRL_ARGS["alpha"],
                     "--beta", FTRL_ARGS["beta"], "--l1", FTRL_ARGS["l1"], "--l2", FTRL_ARGS["l2"],
                     "--threads", 1, "--double"],
                group="train", input_bytes=None, tool="dt")
        else:
            notes["datatable"] = "datatable not importable ($PEERS_PYTHON, /work/.venv-peers/bin/python): skipped"
    if with_predict:
        jobs["ftrl predict (f32 model)"] = dict(cmd=[ftrl, "predict", "-m", wd / "ftrl32", ds["svm"]],
                                                stdout=wd / "p_ftrl.txt", group="predict",
                                                input_bytes=ds["bytes"], tool="ftrl")
        if with_vw and vw:
            jobs["vw -t (text)"] = dict(cmd=[vw, "-t", "-i", wd / "vw.model", "-d", ds["vw"], "-p", wd / "p_vw.txt",
                                             "--link", "logistic", "--quiet"],
                                        group="predict", input_bytes=ds["vw_bytes"], tool="vw")
    # page cache warm-up (untimed)
    for f in (ds["svm"], ds["vw"]) + ((notes["parquet"]["path"],) if "parquet" in notes else ()):
        subprocess.run(["cat", f], stdout=subprocess.DEVNULL)
    results = {k: dict(v, runs=[]) for k, v in jobs.items()}
    for rnd in range(a.repeat):
        for name, j in jobs.items():
            r = measure(j["cmd"], stdout_path=j.get("stdout"),
                        env=dict(os.environ, **j["env"]) if j.get("env") else None)
            log(f"{ds['name']} round {rnd + 1}/{a.repeat}: {name}: {r['wall_s']:.2f}s rc={r['rc']} "
                f"rss={r['rss_mb'] and round(r['rss_mb'])}MB")
            if r["rc"] != 0:
                log(f"  stderr: {r['stderr'][-500:]}")
            results[name]["runs"].append(r)
    out = {}
    for name, j in results.items():
        ok = [r for r in j["runs"] if r["rc"] == 0]
        envp = "".join(f"{k}={v} " for k, v in (j.get("env") or {}).items())
        rec = {"cmd": envp + " ".join(map(str, j["cmd"])) + (f" > {j['stdout']}" if j.get("stdout") else ""),
               "group": j["group"], "tool": j["tool"], "input_bytes": j["input_bytes"],
               "n_ok": len(ok), "n": len(j["runs"])}
        for k in ("parquet", "minibatch"):
            if j.get(k):
                rec[k] = True
        if not ok:
            rec["error"] = j["runs"][-1]["stderr"][-800:]
            out[name] = rec
            continue
        rec["wall_rounds"] = [r["wall_s"] if r["rc"] == 0 else None for r in j["runs"]]
        rec.update(wall_s=med([r["wall_s"] for r in ok]), wall_all=[round(r["wall_s"], 3) for r in ok],
                   rss_mb=med([r["rss_mb"] for r in ok]), rss_max_mb=max((r["rss_mb"] or 0) for r in ok),
                   cpu_s=med([r["cpu_s"] for r in ok]))
        if j["tool"] == "ftrl" and j["group"] == "train":
            try:
                s = json.loads(ok[-1]["stdout"].strip().splitlines()[-1])
                rec["progressive_logloss"] = s.get("progressive_logloss")
                rec["inner_seconds"] = med([json.loads(r["stdout"].strip().splitlines()[-1]).get("seconds")
                                            for r in ok])
            except (ValueError, IndexError):
                pass
        if j["tool"] == "dt":
            inner = [json.loads(r["stdout"].strip().splitlines()[-1]) for r in ok]
            rec["fit_s"] = med([x["fit_s"] for x in inner])
            rec["load_s"] = med([x["load_s"] for x in inner])
            rec["import_s"] = med([x["import_s"] for x in inner])
        out[name] = rec
    return {"jobs": out, "notes": notes}


# ---------------------------------------------------------------------------------------
# stages, start-up, profiles
# ---------------------------------------------------------------------------------------

def stages_for(ds, env, a, wd, tiny, full=True):
    py = env["python"]
    res = {}
    r = [measure(["cat", ds["svm"]], stdout_path=os.devnull)["wall_s"] for _ in range(3)]
    res["cat_s"] = med(r)
    res["cat_all"] = r
    res["read"], _ = run_json([py, HERE / "stages.py", "read", ds["svm"], "--repeat", 3])
    res["parse"], _ = run_json([py, HERE / "stages.py", "parse", ds["svm"], "--repeat", 3, "--warmup", tiny])
    if full:
        res["kernel"], _ = run_json([py, HERE / "stages.py", "kernel", ds["svm"], "--max-nnz", a.kernel_nnz,
                                     "--bits", a.bits, "--repeat", 3])
        model = wd / ds["name"] / "ftrl32"
        if (model / "config.json").exists():
            try:
                res["predict_stages"], _ = run_json([py, HERE / "stages.py", "predict-stages", model, ds["svm"],
                                                     "--max-nnz", a.kernel_nnz])
            except RuntimeError as e:
                res["predict_stages_error"] = str(e)
    return res


def rss_phases(ds, env, a, wd):
    out = {}
    for dtype in ("float32", "float64"):
        try:
            out[dtype], _ = run_json([env["python"], HERE / "stages.py", "rss", ds["svm"], "--model-dir",
                                      wd / f"rss-{dtype}", "--dtype", dtype, "--bits", a.bits])
        except RuntimeError as e:
            out[dtype] = {"error": str(e)}
    return out


# (label, "tot"|"cum", file basename, package folder or None, function-name test) -- disjoint buckets of a profile
BUCKETS = [
    ("imports", "cum", None, lambda f: f == "_find_and_load"),
    ("Numba cache loads", "cum", None, lambda f: f == "_compile_for_args"),
    ("parse_libsvm (Numba)", "tot", "kernels", lambda f: f == "parse_libsvm"),
    ("ftrl_online (Numba)", "tot", "kernels", lambda f: f == "ftrl_online"),
    ("margins_state (Numba)", "tot", "kernels", lambda f: f == "margins_state"),
    ("weights_from_state (Numba)", "tot", "kernels", lambda f: f == "weights_from_state"),
    ("format_g17 (Numba, predict's text)", "tot", "kernels", lambda f: f == "format_g17"),
    ("file reads (readinto)", "tot", None, lambda f: "readinto" in f),
    ("main thread waiting on the reader thread", "tot", None, lambda f: "acquire" in f and "lock" in f),
    ("checkpoint save (npz, sha256, fsync)", "cum", "checkpoint.py", lambda f: f == "save"),
    ("checkpoint load (read, sha256, npz)", "cum", "checkpoint.py", lambda f: f == "load"),
    ("output formatting (api.format_floats)", "cum", "api.py", lambda f: f == "format_floats"),
    ("table allocation (Model._fresh)", "cum", "model.py", lambda f: f == "_fresh"),
]


def profile(cmd_args, env, wd, name, stdout_path=None, top=12):
    """One run of `python -m cProfile -m ftrl_cli ...`: top functions and a bucketed split."""
    prof = wd / f"{name}.prof"
    # FTRL_READ_AHEAD=0: parse in the main thread, where cProfile sees it
    r = measure([env["python"], "-m", "cProfile", "-o", prof, "-m", "ftrl_cli"] + cmd_args,
                stdout_path=stdout_path, env=dict(os.environ, FTRL_READ_AHEAD="0"))
    if r["rc"] != 0 or not prof.exists():
        return {"error": r["stderr"][-600:]}
    st = pstats.Stats(str(prof))
    rows = []
    total = st.total_tt
    buckets = {b[0]: 0.0 for b in BUCKETS}
    for (fn, line, func), (_cc, nc, tt, ct, _) in st.stats.items():
        base = Path(fn).name
        rows.append({"func": f"{base}:{line}({func})" if line else func, "ncalls": nc, "tottime": tt, "cumtime": ct})
        for label, kind, file_, test in BUCKETS:
            if (file_ is None or file_ in (base, Path(fn).parent.name)) and test(func):
                buckets[label] += tt if kind == "tot" else ct
    rows.sort(key=lambda x: -x["tottime"])
    split = [(k, v) for k, v in buckets.items() if v > 0.005]
    # buckets can overlap a little (imports done inside a cache load): clamp the remainder
    split.append(("everything else", max(0.0, total - sum(v for _, v in split))))
    return {"wall_s": r["wall_s"], "total_s": total, "top_tottime": rows[:top], "split": split}


def source_stamp():
    """mtimes of the measured ftrl_cli/**/*.py (the working tree, or the snapshot, which never
    changes): a change during the run means the results mix versions."""
    pp = os.environ.get("PYTHONPATH", "").split(os.pathsep)[0]
    root = Path(pp) if pp and (Path(pp) / "ftrl_cli").is_dir() else REPO
    pkg = root / "ftrl_cli"
    return {str(p.relative_to(pkg)): p.stat().st_mtime_ns for p in sorted(pkg.rglob("*.py"))}


def make_snapshot(rev, root):
    """git archive REV ftrl_cli into root/<sha>/ (once) and return its description."""
    r = subprocess.run(["git", "-C", str(REPO), "rev-parse", rev], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"--snapshot: unknown revision {rev}: {r.stderr.strip()}")
    sha = r.stdout.strip()
    d = root / sha[:12]
    if not (d / "ftrl_cli" / "__init__.py").exists():
        d.mkdir(parents=True, exist_ok=True)
        arch = subprocess.run(["git", "-C", str(REPO), "archive", sha, "ftrl_cli"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(d)], input=arch.stdout, check=True)
    # name it by the last commit that touched ftrl_cli (REV itself may only have touched other files)
    subj = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%h %s", sha, "--", "ftrl_cli"],
                          capture_output=True, text=True).stdout.strip()
    return {"rev": sha[:12], "subject": subj, "dir": str(d)}


def startup(env, wd, tiny, tiny_ctr=None):
    py, ftrl = env["python"], env["ftrl"]
    res = {}
    stamp0 = source_stamp()
    res["help_s_all"] = [measure([ftrl, "--help"])["wall_s"] for _ in range(5)]
    res["help_s"] = med(res["help_s_all"])
    r = measure([ftrl, "--help"])
    res["help_rss_mb"] = r["rss_mb"]
    imports = {"python -c pass": "pass", "import numpy": "import numpy", "import numba": "import numba",
               "import scipy.stats": "import scipy.stats", "import ftrl_cli.cli": "import ftrl_cli.cli",
               "import ftrl_cli.api": "import ftrl_cli.api"}
    res["imports"] = {}
    for label, code in imports.items():
        runs = [measure([py, "-c", code]) for _ in range(3)]
        ok = [x for x in runs if x["rc"] == 0]
        res["imports"][label] = {"s": med([x["wall_s"] for x in ok]), "rss_mb": med([x["rss_mb"] for x in ok]),
                                 "ok": bool(ok)}
    # importtime of the library: which modules are heavy
    r = measure([py, "-X", "importtime", "-c", "import ftrl_cli.api"])
    heavy = []
    for line in r["stderr"].splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            heavy.append((int(parts[1]), parts[2].rstrip()))
    top_level = sorted(heavy, reverse=True)
    res["importtime_top"] = [{"module": m.strip(), "cum_ms": us / 1000, "depth": (len(m) - len(m.lstrip())) // 2}
                             for us, m in top_level[:12]]
    # tiny-file train / predict: first run, then more runs; count cache saves (= compiles)
    menv = dict(os.environ, NUMBA_DEBUG_CACHE="1")
    mdir = wd / "tiny-model"
    runs = []
    for _ in range(4):
        r = measure(ftrl_train_cmd(ftrl, tiny, mdir, "float32", 24)[:-1], env=menv)
        txt = r["stdout"] + r["stderr"]
        runs.append({"wall_s": r["wall_s"], "rss_mb": r["rss_mb"], "rc": r["rc"],
                     "cache_saved": txt.count("data saved to"), "cache_loaded": txt.count("data loaded from")})
    res["tiny_train"] = runs
    res["tiny_train_later_s"] = med([x["wall_s"] for x in runs[1:]])
    pruns = []
    for _ in range(4):
        r = measure([ftrl, "predict", "-m", mdir, tiny], env=menv)
        txt = r["stdout"] + r["stderr"]
        pruns.append({"wall_s": r["wall_s"], "rss_mb": r["rss_mb"], "rc": r["rc"],
                      "cache_saved": txt.count("data saved to"), "cache_loaded": txt.count("data loaded from")})
    res["tiny_predict"] = pruns
    res["tiny_predict_later_s"] = med([x["wall_s"] for x in pruns[1:]])
    if tiny_ctr:  # 100 CTR rows: ids up to 2**24, so a full 2**24 table is allocated and saved
        mdir2 = wd / "tiny-ctr-model"
        rr = [measure(ftrl_train_cmd(ftrl, tiny_ctr, mdir2, "float32", 24)[:-1]) for _ in range(3)]
        res["tiny_ctr_train_s"] = med([x["wall_s"] for x in rr])
        res["tiny_ctr_train_rss_mb"] = med([x["rss_mb"] for x in rr])
        rr = [measure([ftrl, "predict", "-m", mdir2, tiny_ctr]) for _ in range(3)]
        res["tiny_ctr_predict_s"] = med([x["wall_s"] for x in rr])
        res["tiny_ctr_predict_rss_mb"] = med([x["rss_mb"] for x in rr])
    stamp1 = source_stamp()
    res["sources_changed_during"] = sorted(k for k in set(stamp0) | set(stamp1) if stamp0.get(k) != stamp1.get(k))
    return res


# ---------------------------------------------------------------------------------------
# machine
# ---------------------------------------------------------------------------------------

def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(env):
    info = {"nproc": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "loadavg_start": _loadavg()}
    try:
        info["affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        info["thp"] = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text().strip()
    except OSError:
        pass
    r = subprocess.run([env["python"], "-c", "import numba, numpy; print(numba.__version__, numpy.__version__)"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        info["numba"], info["numpy"] = r.stdout.split()
    if env["vw"]:
        r = subprocess.run([env["vw"], "--version"], capture_output=True, text=True)
        info["vw"] = r.stdout.strip().splitlines()[0] if r.stdout else None
    info["datatable"] = env.get("dt_version")
    r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    info["git"] = r.stdout.strip() if r.returncode == 0 else None
    r = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "ftrl_cli"], capture_output=True,
                       text=True)
    info["ftrl_cli_dirty"] = bool(r.stdout.strip()) if r.returncode == 0 else None
    return info


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------

def f(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def ratio(peer, ours):
    if peer is None or ours is None or ours <= 0:
        return None
    return peer / ours


def render(R):
    L = []
    m = R["machine"]
    snap = R["env"].get("snapshot")
    if snap:
        version = (f"ftrl_cli as committed at {snap['rev'][:7]} (last ftrl_cli change: {snap['subject']!r}; "
                   "git archive, first on PYTHONPATH)")
    else:
        version = f"ftrl at git {m.get('git')}" + (" (+ uncommitted ftrl_cli changes)" if m.get("ftrl_cli_dirty") else "")
    L.append(f"Machine: {m.get('nproc')} vCPU ({m.get('cpu')}), {m.get('mem_gib')} GiB RAM, Linux "
             f"{m.get('kernel')}, THP {m.get('thp')}; Python {m.get('python')}, numba {m.get('numba')}, "
             f"numpy {m.get('numpy')}; {m.get('vw') and 'vw ' + m['vw']}; datatable {m.get('datatable')}; "
             f"{version}. Started {R['started']}, took {R['elapsed_s'] / 60:.1f} min, --repeat {R['args']['repeat']}"
             f"{', --quick' if R['args']['quick'] else ''}; load average (1/5/15 min) {m.get('loadavg_start')} "
             f"at the start, {R.get('loadavg_end')} at the end.")
    if R.get("sources_changed"):
        L.append("")
        L.append(f"**Warning: ftrl_cli/{', ftrl_cli/'.join(R['sources_changed'])} changed during this run, so the "
                 "numbers mix versions of ftrl. Re-run, or use --snapshot.**")
    L.append("")
    L.append("### Data")
    L.append("")
    L.append("| data | rows | nonzeros | nnz/row | max id | libsvm MB | VW text MB | ftrl table (f32 / f64) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for d in R["datasets"]:
        if d.get("missing"):
            L.append(f"| {d['name']} | skipped: {d['missing']} | | | | | | |")
            continue
        s32, slots = state_mb(d["max_id"], R["args"]["bits"], 4)
        s64, _ = state_mb(d["max_id"], R["args"]["bits"], 8)
        nd = 0 if s32 >= 10 else 3
        L.append(f"| {d['name']} | {f(d['rows'])} | {f(d['nnz'])} | {d['nnz'] / max(d['rows'], 1):.1f} | "
                 f"{f(d['max_id'])} | {d['bytes'] / 1e6:.0f} | {d['vw_bytes'] / 1e6:.0f} | "
                 f"2^{slots.bit_length() - 1} slots: {s32:.{nd}f} / {s64:.{nd}f} MiB |")
    L.append("")
    for d in R["datasets"]:
        if d.get("missing") or d["name"] not in R["runs"]:
            continue
        run = R["runs"][d["name"]]
        J = run["jobs"]
        L.append(f"### {d['name']}: {f(d['rows'])} rows, {d['nnz'] / 1e6:.1f} M features, "
                 f"{d['bytes'] / 1e6:.0f} MB libsvm")
        L.append("")
        L.append("| command | median wall s | runs (s) | M feat/s | in-loop M feat/s | input MB/s | peak RSS MB "
                 "| CPU s | ftrl f32 speed-up | ftrl f64 speed-up | vw text / this | vw cache / this |")
        L.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        t32 = J.get("ftrl train f32", {}).get("wall_s")
        t64 = J.get("ftrl train f64", {}).get("wall_s")
        tp = J.get("ftrl predict (f32 model)", {}).get("wall_s")
        vw_t = J.get("vw --ftrl (text)", {}).get("wall_s")
        vw_c = J.get("vw --ftrl (cache)", {}).get("wall_s")
        for name, j in J.items():
            if "error" in j:
                L.append(f"| {name} | FAILED: {' '.join(j['error'].split())[:200]} | | | | | | | | | | |")
                continue
            w = j["wall_s"]
            mbs = j["input_bytes"] / 1e6 / w if j.get("input_bytes") else None
            extra = ""
            if j["tool"] == "dt":
                extra = f" (fit only {j['fit_s']:.2f} s; load .npy + Frame {j['load_s']:.2f} s)"
            if j["group"] == "train":
                r32 = "1" if name == "ftrl train f32" else f(ratio(w, t32))
                r64 = "1" if name == "ftrl train f64" else f(ratio(w, t64))
            else:
                r32 = "1" if name.startswith("ftrl predict") else f(ratio(w, tp))
                r64 = ""
            # peers' time over this row's: only for ftrl's trains of the same (online) algorithm
            same_algo = j["tool"] == "ftrl" and j["group"] == "train" and not j.get("minibatch")
            rvt = f(ratio(vw_t, w)) if same_algo else ""
            rvc = f(ratio(vw_c, w)) if same_algo else ""
            inner = j.get("inner_seconds")
            loop = f"{d['nnz'] / inner / 1e6:.1f}" if inner else ""
            runs = ", ".join(f"{x:.2f}" for x in j["wall_all"])
            if j["n_ok"] < j["n"]:
                runs += f" ({j['n'] - j['n_ok']} of {j['n']} failed)"
            L.append(f"| {name}{extra} | {w:.2f} | {runs} | {d['nnz'] / w / 1e6:.1f} | {loop} | "
                     f"{f(mbs, 0)} | {f(j['rss_mb'], 0)} | {f(j['cpu_s'])} | {r32} | {r64} | {rvt} | {rvc} |")
        notes = []
        for k, j in J.items():
            if j["tool"] != "ftrl" or j.get("progressive_logloss") is None:
                continue
            if k in ("ftrl train f32", "ftrl train f64") or j.get("minibatch"):
                notes.append(f"{k} progressive logloss {j['progressive_logloss']:.6f}")
            elif j.get("parquet"):
                notes.append(f"{k} progressive logloss {j['progressive_logloss']:.6f} "
                             f"({parquet_vs_text(J, k)})")
        pq = run["notes"].get("parquet")
        if pq:
            notes.append(f"Parquet cache {pq['bytes'] / 1e6:.0f} MB ({pq.get('codec', '?')}, "
                         f"{pq.get('row_groups', '?')} row groups), built once by `ftrl convert` in "
                         f"{pq['build_wall_s']:.1f} s (not timed)")
        if run["notes"].get("dense"):
            notes.append(run["notes"]["dense"])
        vc = run["notes"].get("vw_cache")
        if vc and vc.get("vw_average_loss") is not None:
            notes.append(f"vw average (progressive) loss {vc['vw_average_loss']:.6f}")
            notes.append(f"VW cache {vc['bytes'] / 1e6:.0f} MB, built once in {vc['build_wall_s']:.1f} s (not timed)")
        for k in ("vw", "datatable"):
            if run["notes"].get(k):
                notes.append(run["notes"][k])
        if notes:
            L.append("")
            L.append("Notes: " + "; ".join(notes) + ".")
        L.append("")
    # flatness
    if R.get("flat"):
        L.append("### Peak RSS flatness (same command, 10x smaller file = first tenth of ctr)")
        L.append("")
        L.append("| command | ctr-head wall s | ctr-head peak RSS MB | ctr wall s | ctr peak RSS MB | growth MB |")
        L.append("|---|---:|---:|---:|---:|---:|")
        big = R["runs"]["ctr"]["jobs"]
        for name, j in R["flat"]["jobs"].items():
            b = big.get(name, {})
            if "error" in j or "wall_s" not in b:
                continue
            L.append(f"| {name} | {j['wall_s']:.2f} | {f(j['rss_mb'], 0)} | {b['wall_s']:.2f} | {f(b['rss_mb'], 0)} | "
                     f"{f((b['rss_mb'] or 0) - (j['rss_mb'] or 0), 0)} |")
        L.append("")
    # stages
    if R.get("stages"):
        L.append("### Where the time goes (in-process timings, imports excluded)")
        L.append("")
        L.append("| data | cat > /dev/null | readinto 8 MB | parse only (iter_libsvm) | FTRL update only, f32 | "
                 "FTRL update only, f64 | predict: margins | predict: repr formatting |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, s in R["stages"].items():
            d = next(x for x in R["datasets"] if x["name"] == name)
            mb = d["bytes"] / 1e6
            p = s.get("parse", {})
            k = s.get("kernel", {})
            ps = s.get("predict_stages", {}).get("per_row_ns", {})

            def kr(dt, k=k):
                x = k.get(dt)
                return f"{x['feat_per_s'] / 1e6:.1f} M feat/s" if x else "-"

            L.append(f"| {name} | {mb / s['cat_s']:,.0f} MB/s | {mb / s['read']['seconds']:,.0f} MB/s | "
                     f"{mb / p['seconds']:,.0f} MB/s = {p['nnz'] / p['seconds'] / 1e6:.1f} M feat/s ({p['seconds']:.2f} s) | "
                     f"{kr('float32')} | {kr('float64')} | "
                     f"{f(ps.get('margins'), 0)} ns/row | {f(ps.get('format_repr'), 0)} ns/row |")
        L.append("")
        L.append("Decomposition of `ftrl train` (medians): start-up = wall minus the `seconds` that "
                 "`ftrl train --json` reports for its own training loop (interpreter, imports, option "
                 "and input checks); inside the loop, parse = the parse-only time of the file, update = "
                 "nonzeros / update-only rate, rest = the loop's remainder (table allocation, kernel cache "
                 "loads, Python glue per batch, checkpoint write). Ideal = parse + update.")
        L.append("")
        L.append("| data | dtype | wall s | start-up s | loop s | parse s | update s | rest s | ideal s |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, s in R["stages"].items():
            d = next(x for x in R["datasets"] if x["name"] == name)
            J = R["runs"].get(name, {}).get("jobs", {})
            for dt, key in (("float32", "ftrl train f32"), ("float64", "ftrl train f64")):
                if key not in J or "wall_s" not in J[key] or dt not in s.get("kernel", {}):
                    continue
                w = J[key]["wall_s"]
                inner = J[key].get("inner_seconds")
                ps = s["parse"]["seconds"]
                us = d["nnz"] / s["kernel"][dt]["feat_per_s"]
                su = w - inner if inner is not None else None
                rest = inner - ps - us if inner is not None else None
                L.append(f"| {name} | {dt} | {w:.2f} | {f(su)} | {f(inner)} | {ps:.2f} | {us:.2f} | {f(rest)} | "
                         f"{ps + us:.2f} |")
        L.append("")
        for name, s in R["stages"].items():
            ps = s.get("predict_stages")
            if not ps:
                continue
            t = ps["seconds"]
            L.append(f"`ftrl predict` stages on {name} ({f(ps['rows'])} rows in RAM): load_model {t['load_model']:.2f} s, "
                     f"weights() {t['weights']:.2f} s (table of {f(ps['table_slots'])} slots), margins "
                     f"{ps['per_row_ns']['margins']:.0f} ns/row, sigmoid {ps['per_row_ns']['sigmoid']:.0f} ns/row, "
                     f"%.17g text (format_floats) {ps['per_row_ns']['format_repr']:.0f} ns/row, write "
                     f"{ps['per_row_ns']['encode_write']:.0f} ns/row (np.savetxt '%.6f' for comparison: "
                     f"{ps['per_row_ns']['alt_savetxt_6f_total']:.0f} ns/row including margins).")
            L.append("")
    if R.get("rss_phases"):
        L.append("### Peak RSS by phase of a train on ctr (VmHWM, reset between phases)")
        L.append("")
        L.append("| dtype | table MiB | after imports | parse + learn loop | checkpoint save | load_model (RSS before -> peak) | weights() |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for dt, x in R["rss_phases"].items():
            if "error" in x:
                L.append(f"| {dt} | error: {' '.join(x['error'].split())[:150]} | | | | | |")
                continue
            L.append(f"| {dt} | {x['table_mb']:.0f} | {x['after_import_hwm_mb']:.0f} | {x['train_loop_hwm_mb']:.0f} | "
                     f"{x['save_hwm_mb']:.0f} ({x['save_s']:.2f} s) | {x['load_rss_before_mb']:.0f} -> {x['load_hwm_mb']:.0f} ({x['load_s']:.2f} s) | "
                     f"{x['weights_hwm_mb']:.0f} ({x['weights_s']:.2f} s) |")
        L.append("")
    B = R.get("rss_baseline")
    if B and "steps" in B:
        L.append("RSS floor of any ftrl process (a tiny file with small ids, so the table is 64 slots):")
        L.append("")
        L.append("| step | RSS MB | of which anonymous | of which file-backed (shared libraries) |")
        L.append("|---|---:|---:|---:|")
        for k, v in B["steps"].items():
            L.append(f"| {k} | {v.get('VmRSS', 0):.0f} | {v.get('RssAnon', 0):.0f} | {v.get('RssFile', 0):.0f} |")
        L.append("")
    # start-up
    S = R.get("startup")
    if S:
        L.append("### Start-up")
        L.append("")
        L.append(f"`ftrl --help`: median {S['help_s']:.3f} s over 5 runs ({', '.join(f'{x:.3f}' for x in S['help_s_all'])}), "
                 f"peak RSS {f(S['help_rss_mb'], 0)} MB.")
        L.append("")
        L.append("| import (python -c) | median s | peak RSS MB |")
        L.append("|---|---:|---:|")
        for k, v in S["imports"].items():
            L.append(f"| `{k}` | {f(v['s'], 3)} | {f(v['rss_mb'], 0)} |")
        L.append("")
        tt = S["tiny_train"]
        tp = S["tiny_predict"]
        L.append("Tiny file (100 rows, ids < 4, so a 64-slot table), `NUMBA_DEBUG_CACHE=1`: train runs "
                 + ", ".join(f"{x['wall_s']:.2f} s ({x['cache_saved']} compiled, {x['cache_loaded']} loaded)" for x in tt)
                 + "; predict runs "
                 + ", ".join(f"{x['wall_s']:.2f} s ({x['cache_saved']} compiled, {x['cache_loaded']} loaded)" for x in tp)
                 + ".")
        L.append("")
        if S.get("tiny_ctr_train_s") is not None:
            L.append(f"The first 100 rows of ctr (ids up to 2^24, so the full 2^24 table is allocated, written "
                     f"and read back): train {S['tiny_ctr_train_s']:.2f} s / {f(S['tiny_ctr_train_rss_mb'], 0)} MB, "
                     f"predict {S['tiny_ctr_predict_s']:.2f} s / {f(S['tiny_ctr_predict_rss_mb'], 0)} MB (medians of 3).")
            L.append("")
        if S.get("importtime_top"):
            L.append("Heaviest imports under `import ftrl_cli.api` (python -X importtime, cumulative): "
                     + ", ".join(f"{x['module']} {x['cum_ms']:.0f} ms" for x in S["importtime_top"][:8]) + ".")
            L.append("")
    # profiles
    if R.get("profiles"):
        L.append("### cProfile (one run each, ctr, FTRL_READ_AHEAD=0 so that parsing runs in the profiled thread)")
        L.append("")
        for name, p in R["profiles"].items():
            if "error" in p:
                L.append(f"{name}: profile failed: {p['error'][:200]}")
                continue
            L.append(f"`{name}`: wall {p['wall_s']:.2f} s under cProfile, {p['total_s']:.2f} s profiled. Split "
                     "(buckets can overlap slightly, e.g. imports made while loading cached kernels count in both):")
            L.append("")
            L.append("| part | s | share |")
            L.append("|---|---:|---:|")
            for k, v in p["split"]:
                L.append(f"| {k} | {v:.2f} | {100 * v / p['total_s']:.0f} % |")
            L.append("")
            L.append("Top functions by own time:")
            L.append("")
            L.append("| function | calls | own s | cumulative s |")
            L.append("|---|---:|---:|---:|")
            for x in p["top_tottime"][:10]:
                L.append(f"| `{x['func']}` | {x['ncalls']} | {x['tottime']:.3f} | {x['cumtime']:.3f} |")
            L.append("")
    # targets
    L.append("### Targets")
    L.append("")
    L.append("| target | measured | verdict |")
    L.append("|---|---|---|")
    for t in R["targets"]:
        L.append(f"| {t['target']} | {t['measured']} | {t['verdict']} |")
    L.append("")
    return "\n".join(L)


def parquet_vs_text(J, key):
    """Whether the Parquet run's progressive logloss equals the text run's (same data, same model)."""
    a = J.get(key, {}).get("progressive_logloss")
    b = J.get("ftrl train f32", {}).get("progressive_logloss")
    if a is None or b is None:
        return "text run's: -"
    return "= text run's, bit for bit" if a == b else f"text run's {b:.17g}: DIFFERS by {a - b:+.3g}"


def round_ratio(peer, ours):
    """Median over rounds of peer/ours measured in the same round (cancels slow drifts)."""
    if not peer.get("wall_rounds") or not ours.get("wall_rounds"):
        return None
    rs = [p / o for p, o in zip(peer["wall_rounds"], ours["wall_rounds"]) if p and o]
    return med(rs)


def judge(R, bits):
    T = []
    for d in R["datasets"]:
        if d.get("missing") or d["name"] not in R["runs"]:
            continue
        J = R["runs"][d["name"]]["jobs"]
        vw_t = J.get("vw --ftrl (text)", {}).get("wall_s")
        vw_c = J.get("vw --ftrl (cache)", {}).get("wall_s")
        for key in ("ftrl train f32", "ftrl train f64"):
            w = J.get(key, {}).get("wall_s")
            r = ratio(vw_t, w)
            if r is not None:
                rr = round_ratio(J["vw --ftrl (text)"], J[key])
                T.append({"target": f"{key} >= 3x vw --ftrl text ({d['name']})",
                          "measured": f"{w:.2f} s vs {vw_t:.2f} s: {r:.2f}x (median of per-round ratios {f(rr)}x; "
                                      f"vs VW cache {f(ratio(vw_c, w))}x)",
                          "verdict": "PASS" if r >= TARGET_SPEEDUP else f"MISS (needs {w * r / TARGET_SPEEDUP:.2f} s)"})
        key = "ftrl train f32 (sparse Parquet)"
        w = J.get(key, {}).get("wall_s")
        same = parquet_vs_text(J, key)
        for peer, label, target in (("vw --ftrl (text)", "vw from text", PARQUET_VS_VW_TEXT),
                                    ("vw --ftrl (cache)", "vw from its cache", PARQUET_VS_VW_CACHE)):
            vt = J.get(peer, {}).get("wall_s")
            r = ratio(vt, w)
            if r is None:
                continue
            rr = round_ratio(J[peer], J[key])
            verdict = "PASS" if r >= target else f"MISS (needs {w * r / target:.2f} s)"
            if not same.startswith("="):
                verdict += "; MISS: logloss differs from text"
            T.append({"target": f"ftrl train from sparse Parquet >= {target:g}x faster than {label} ({d['name']})",
                      "measured": f"{w:.2f} s vs {vt:.2f} s: {r:.2f}x (median of per-round ratios {f(rr)}x); "
                                  f"progressive logloss {same}",
                      "verdict": verdict})
        mb = []
        for k, j in J.items():
            if not j.get("minibatch"):
                continue
            label = k.replace("ftrl train f32 ", "")
            if "wall_s" not in j:
                mb.append(f"{label}: failed")
                continue
            inner = j.get("inner_seconds")
            mb.append(f"{label}: {d['nnz'] / j['wall_s'] / 1e6:.1f} M feat/s wall ({j['wall_s']:.2f} s)"
                      + (f", {d['nnz'] / inner / 1e6:.1f} M feat/s in the loop ({inner:.2f} s)" if inner else ""))
        if R["runs"][d["name"]]["notes"].get("dense"):
            mb.append("dense: skipped (table too large for the time budget)")
        if mb:
            T.append({"target": f"mini-batch / dense: features/s reached ({d['name']})", "measured": "; ".join(mb),
                      "verdict": "INFO"})
        w = J.get("ftrl predict (f32 model)", {}).get("wall_s")
        vp = J.get("vw -t (text)", {}).get("wall_s")
        r = ratio(vp, w)
        if r is not None:
            rr = round_ratio(J["vw -t (text)"], J["ftrl predict (f32 model)"])
            T.append({"target": f"ftrl predict >= 3x vw -t ({d['name']})",
                      "measured": f"{w:.2f} s vs {vp:.2f} s: {r:.2f}x (median of per-round ratios {f(rr)}x)",
                      "verdict": "PASS" if r >= TARGET_SPEEDUP else f"MISS (needs {w * r / TARGET_SPEEDUP:.2f} s)"})
        for key, item in (("ftrl train f32", 4), ("ftrl train f64", 8), ("ftrl predict (f32 model)", 4)):
            j = J.get(key, {})
            if j.get("rss_mb") is None:
                continue
            st, _ = state_mb(d["max_id"], bits, item)
            lim = st + RSS_HEADROOM_MB
            T.append({"target": f"{key} peak RSS <= state + 150 MB ({d['name']})",
                      "measured": f"{j['rss_mb']:.0f} MB vs {st:.0f} + 150 = {lim:.0f} MB",
                      "verdict": "PASS" if j["rss_mb"] <= lim else f"MISS by {j['rss_mb'] - lim:.0f} MB"})
    if R.get("flat"):
        big = R["runs"]["ctr"]["jobs"]
        for name, j in R["flat"]["jobs"].items():
            b = big.get(name, {})
            if j.get("rss_mb") is None or b.get("rss_mb") is None:
                continue
            g = b["rss_mb"] - j["rss_mb"]
            T.append({"target": f"{name} peak RSS flat for a 10x larger file",
                      "measured": f"{j['rss_mb']:.0f} MB -> {b['rss_mb']:.0f} MB ({g:+.0f} MB)",
                      # tolerance: the read-ahead queue holds up to ~2 batch copies (2**21 nonzeros,
                      # 16 B each = 32 MB) and how full it is at the peak varies from run to run
                      "verdict": "PASS" if g <= 32.0 else "MISS"})
    S = R.get("startup")
    if S:
        T.append({"target": "`ftrl --help` < 0.5 s", "measured": f"{S['help_s']:.3f} s",
                  "verdict": "PASS" if S["help_s"] < HELP_TARGET_S else "MISS"})
        later = S["tiny_train"][1:] + S["tiny_predict"][1:]
        comp = sum(x["cache_saved"] for x in later)
        changed = S.get("sources_changed_during")
        T.append({"target": "second `ftrl train`/`predict` on a tiny file pays no JIT compile",
                  "measured": f"{comp} kernels compiled in runs 2-4; tiny train {S['tiny_train_later_s']:.2f} s, "
                              f"tiny predict {S['tiny_predict_later_s']:.2f} s"
                              + (f" (ftrl_cli/{', '.join(changed)} edited during these runs)" if changed else ""),
                  "verdict": "PASS (no compile)" if comp == 0 else
                             ("INCONCLUSIVE (sources edited meanwhile)" if changed else "MISS")})
    return T


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache-dir", default=str(REPO / ".bench-cache"),
                    help="generated data, VW copies/caches, models, results (default: .bench-cache/)")
    ap.add_argument("--quick", action="store_true", help="small files (a smoke test of the harness)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per command (median reported)")
    ap.add_argument("--datasets", default="ctr,text,a9a", help="comma list of ctr,text,a9a")
    ap.add_argument("--bits", type=int, default=24)
    ap.add_argument("--kernel-nnz", type=int, default=20_000_000,
                    help="nonzeros held in RAM for the update-only and predict-stage timings")
    ap.add_argument("--no-startup", dest="startup", action="store_false")
    ap.add_argument("--no-stages", dest="stages", action="store_false")
    ap.add_argument("--no-profile", dest="profile", action="store_false")
    ap.add_argument("--no-flat", dest="flat", action="store_false")
    ap.add_argument("--md-out", default=None, help="also write the markdown report here")
    ap.add_argument("--snapshot", nargs="?", const="HEAD", default=None, metavar="REV",
                    help="benchmark ftrl_cli as committed at REV (default HEAD), extracted with git archive "
                         "into CACHE/snapshots/ and put first on PYTHONPATH, so that edits made to the "
                         "working tree during the run do not mix versions")
    ap.add_argument("--render", metavar="RESULTS_JSON", default=None,
                    help="only print the markdown report of an earlier run's results.json")
    a = ap.parse_args(argv)
    if a.render:
        print(render(json.loads(Path(a.render).read_text())))
        return 0
    if a.repeat < 1:
        ap.error("--repeat must be >= 1")
    t_start = time.perf_counter()
    cache = Path(a.cache_dir).resolve()
    ddir = cache / "data"
    wd = cache / "work"
    ddir.mkdir(parents=True, exist_ok=True)
    wd.mkdir(parents=True, exist_ok=True)
    global RUN_CWD
    RUN_CWD = str(wd)
    snapshot = None
    if a.snapshot:
        snapshot = make_snapshot(a.snapshot, cache / "snapshots")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [snapshot["dir"]] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    py = find_python()
    env = {"python": py, "ftrl": find_ftrl(py), "vw": find_vw(), "snapshot": snapshot}
    env["peers_python"], env["dt_version"] = find_peers_python()
    if not env["ftrl"]:
        sys.exit("ftrl not found: install the project (pip install -e .) or set $FTRL")
    log(f"ftrl={env['ftrl']} python={py} vw={env['vw']} peers_python={env['peers_python']}")
    if snapshot:  # fill the snapshot's Numba cache (its first run compiles), not timed
        log(f"snapshot of ftrl_cli at {snapshot['rev']} in {snapshot['dir']}; warming its Numba cache ...")
        warm = ddir / "tiny-small-ids.svm"
        warm.write_bytes(b"1 1:1 3:0.5\n0 2:1\n" * 50)
        measure(ftrl_train_cmd(env["ftrl"], warm, wd / "warm-model", "float32", 24))
        measure(ftrl_train_cmd(env["ftrl"], warm, wd / "warm-model64", "float64", 24))
        for extra in (["--batch-size", BATCH_SIZE], ["--batch-size", BATCH_SIZE, "--update", "dense"]):
            measure(ftrl_train_cmd(env["ftrl"], warm, wd / "warm-model-mb", "float32", 24) + extra)
        measure([env["ftrl"], "convert", warm, wd / "warm.parquet", "-q"])
        measure(ftrl_train_cmd(env["ftrl"], wd / "warm.parquet", wd / "warm-model-pq", "float32", 24))
        measure([env["ftrl"], "predict", "-m", wd / "warm-model", warm])
        r = measure([py, "-c", "import ftrl_cli, os; print(os.path.dirname(ftrl_cli.__file__))"])
        snapshot["imported_from"] = r["stdout"].strip()
    stamp0 = source_stamp()
    R = {"args": vars(a), "env": env, "machine": machine_info(env),
         "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "datasets": [], "runs": {}}
    wanted = [s.strip() for s in a.datasets.split(",") if s.strip()]
    tiny = ddir / "tiny-100.svm"
    for spec in dataset_specs(a.quick):
        if spec["name"] not in wanted:
            continue
        ds = make_dataset(spec, ddir, py)
        R["datasets"].append(ds)
        if spec["name"] == "ctr" and not tiny.exists():
            with open(ds["svm"], "rb") as fi, open(tiny, "wb") as fo:
                for _, line in zip(range(100), fi):
                    fo.write(line)
    if not tiny.exists():
        tiny.write_bytes(b"1 1:1 3:0.5\n0 2:1\n" * 50)
    (ddir / "tiny-small-ids.svm").write_bytes(b"1 1:1 3:0.5\n0 2:1\n" * 50)

    if a.startup:
        log("start-up measurements ...")
        R["startup"] = startup(env, wd, ddir / "tiny-small-ids.svm", tiny)

    for ds in R["datasets"]:
        if ds.get("missing"):
            log(f"skipping {ds['name']}: {ds['missing']}")
            continue
        log(f"timed runs on {ds['name']} ({ds['rows']:,} rows, {ds['nnz']:,} nonzeros) ...")
        R["runs"][ds["name"]] = run_dataset(ds, env, a, wd)

    ctr = next((d for d in R["datasets"] if d["name"] == "ctr" and not d.get("missing")), None)
    if a.flat and ctr:
        head = make_head(ctr, ddir, 10, py)
        log(f"RSS flatness on {Path(head['svm']).name} ...")
        R["flat"] = run_dataset(dict(head, name="ctr-head"), env, a, wd, with_vw=False, with_dt=False,
                                with_extra=False)
        R["datasets_aux"] = [head]
    if a.stages:
        R["stages"] = {}
        for ds in R["datasets"]:
            if ds.get("missing"):
                continue
            log(f"stage timings on {ds['name']} ...")
            R["stages"][ds["name"]] = stages_for(ds, env, a, wd, tiny)
        if ctr:
            R["rss_phases"] = rss_phases(ctr, env, a, wd)
        try:
            R["rss_baseline"], _ = run_json([py, HERE / "stages.py", "baseline", ddir / "tiny-small-ids.svm"])
        except RuntimeError as e:
            R["rss_baseline"] = {"error": str(e)}
    if a.profile and ctr:
        log("cProfile of train and predict on ctr ...")
        R["profiles"] = {
            "ftrl train --dtype float32": profile(
                [str(x) for x in ftrl_train_cmd("x", ctr["svm"], wd / "prof-model", "float32", a.bits)[1:]],
                env, wd, "train32"),
            "ftrl predict": profile(["predict", "-m", str(wd / "prof-model"), ctr["svm"]], env, wd, "predict",
                                    stdout_path=wd / "prof-pred.txt"),
        }
    R["loadavg_end"] = _loadavg()
    stamp1 = source_stamp()
    R["sources_changed"] = sorted(k for k in set(stamp0) | set(stamp1) if stamp0.get(k) != stamp1.get(k))
    R["targets"] = judge(R, a.bits)
    R["elapsed_s"] = time.perf_counter() - t_start
    md = render(R)
    (cache / "results.json").write_text(json.dumps(R, indent=1, default=str))
    (cache / "results.md").write_text(md + "\n")
    if a.md_out:
        Path(a.md_out).write_text(md + "\n")
    print(md)
    log(f"done in {R['elapsed_s'] / 60:.1f} min; results in {cache}/results.md and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
