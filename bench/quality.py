#!/usr/bin/env python3
"""Model quality on the shared data sets: `ftrl train` at its defaults, `ftrl tune` with no
flags, and the peers (Vowpal Wabbit, LIBLINEAR, scikit-learn), held-out log loss and AUC on
each set's test file, in one table (issue 14 item 5).

    .venv/bin/python bench/quality.py                     # every set, writes the report (~15 min)
    .venv/bin/python bench/quality.py --datasets a9a,avazu_9k --no-write
    .venv/bin/python bench/quality.py --render             # re-print (and re-write) the last results
    make quality                                           # the same as the first line

What it does, per data set (train -> test files as ../shared/data/README.md says; a set
without a test file is split here, see DATASETS):
  * ftrl train TRAIN -m DIR            (the defaults: one pass, alpha 0.1, beta 1, l1 1, l2 1)
  * ftrl tune TRAIN -m DIR             (no flags)
  * both timed as whole processes, --repeat times in interleaved rounds (median); the tune
    column says tune's time as a multiple of one plain `ftrl train` pass;
  * peers, on the same libsvm files:
      vw        vw --ftrl (its defaults: alpha 0.5, beta 1, no l1/l2), one pass, -b 24
      vw-p10    vw --ftrl --passes 10 (VW's own hold-out, every 10th row, early stop after 3)
      ll-l2     liblinear-train -s 0 -c 1 -B 1 (L2 logistic regression, to convergence)
      ll-l1     liblinear-train -s 6 -c 1 -B 1 (L1 logistic regression)
      sk-lr     scikit-learn LogisticRegression() (lbfgs, C=1, unpenalised intercept, max_iter 1000)
  * every model's test-set probabilities are scored here: log loss (p clipped to
    [1e-15, 1 - 1e-15]) and ROC AUC (scikit-learn), the same code for every tool.

Peers: vw from $VW, else /work/.venv-peers/bin/vw, else PATH; liblinear-train/-predict on
PATH (Debian liblinear-tools); scikit-learn through $PEERS_PYTHON, else
/work/.venv-peers/bin/python, else this python. A missing peer is reported, not fatal.
Derived files, models and results live under --cache-dir (default .bench-cache/quality/);
peers' results are cached there by their command and input files (--rerun-peers to redo).
The report goes to BENCHMARKS.md, between the markers of its "Model quality" section (added
before the appendix when absent), and to CACHE/results.md / results.json.
Not part of `make test`: it takes minutes and needs the peers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = REPO.parent / "shared" / "data"
START, END = "<!-- quality:start -->", "<!-- quality:end -->"

# name -> train files, test file (relative to DATA); "split": (file, k): no test file, so every
# k-th row is the test set and the others the training set (w8a is sorted by label in blocks,
# so a tail split would leave a test set of one class)
DATASETS = {
    "a9a": {"train": ["a9a/a9a"], "test": "a9a/a9a.t"},
    "agaricus": {"train": ["agaricus/agaricus.txt.train"], "test": "agaricus/agaricus.txt.test"},
    "w8a": {"split": ("w8a/w8a", 5)},
    "avazu_9k": {"train": ["avazu_9k/train.hashed.libsvm"], "test": "avazu_9k/test.hashed.libsvm"},
    "criteo_kaggle_8k": {"train": ["criteo_kaggle_8k/train.hashed.libsvm"],
                         "test": "criteo_kaggle_8k/test.hashed.libsvm"},
    "ipinyou_sample": {"train": ["ipinyou_sample/train.fm.txt"], "test": "ipinyou_sample/test.fm.txt"},
    "rcv1_vw_small": {"train": ["rcv1_vw_small/rcv1_small.libsvm"], "test": "rcv1_vw_small/rcv1_small_test.libsvm"},
    # six days: the first five train, the last one tests (the order the data came in)
    "url_mini": {"train": [f"url_mini/Day{d}_mini.svm" for d in range(5)], "test": "url_mini/Day5_mini.svm"},
    "talkingdata_100k": {"split": ("talkingdata_100k/train_sample.hashed.libsvm", 5)},
    "lightgbm_binary": {"train": ["lightgbm_binary/binary.train.libsvm"], "test": "lightgbm_binary/binary.test.libsvm"},
}
# issue 14, "Done means": tune within 1 % of the best peer's log loss, or 0.005 of its AUC
TARGETS = {"a9a": ("logloss", 0.01), "criteo_kaggle_8k": ("logloss", 0.01), "avazu_9k": ("logloss", 0.01),
           "ipinyou_sample": ("auc", 0.005)}
PEERS = ["vw", "vw-p10", "ll-l2", "ll-l1", "sk-lr"]
PEER_TEXT = {"vw": "vw --ftrl", "vw-p10": "vw --ftrl --passes 10", "ll-l2": "LIBLINEAR -s 0",
             "ll-l1": "LIBLINEAR -s 6", "sk-lr": "sklearn LR"}


def log(msg):
    print(f"[quality {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _exe(p):
    return str(p) if p and os.path.isfile(p) and os.access(p, os.X_OK) else None


def find_tools():
    ftrl = _exe(os.environ.get("FTRL")) or _exe(Path(sys.executable).parent / "ftrl") or \
        _exe(REPO / ".venv" / "bin" / "ftrl") or shutil.which("ftrl")
    vw = _exe(os.environ.get("VW")) or _exe("/work/.venv-peers/bin/vw") or shutil.which("vw")
    peers_py = _exe(os.environ.get("PEERS_PYTHON")) or _exe("/work/.venv-peers/bin/python") or sys.executable
    return {"ftrl": ftrl, "vw": vw, "ll_train": shutil.which("liblinear-train"),
            "ll_predict": shutil.which("liblinear-predict"), "peers_python": peers_py}


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------

def _rows(path):
    with open(path, "rb") as f:
        return [ln for ln in f if ln.strip() and not ln.lstrip().startswith(b"#")]


def _write(path: Path, lines):
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        for ln in lines:
            f.write(ln if ln.endswith(b"\n") else ln + b"\n")
    os.replace(tmp, path)


def prepare(name: str, cache: Path) -> dict:
    """{"train": path, "test": path} of one set: the shared files themselves where there is one
    of each, else derived files (concatenated days, or the every-k-th split) under cache/data."""
    spec = DATASETS[name]
    out = cache / "data"
    out.mkdir(parents=True, exist_ok=True)
    if "split" in spec:
        src, k = spec["split"]
        train, test = out / f"{name}.train.svm", out / f"{name}.test.svm"
        if not (train.exists() and test.exists()):
            rows = _rows(DATA / src)
            _write(train, [r for i, r in enumerate(rows) if (i + 1) % k])
            _write(test, [r for i, r in enumerate(rows) if (i + 1) % k == 0])
        return {"train": str(train), "test": str(test), "how": f"{src}: every {k}th row is the test set"}
    files = [DATA / f for f in spec["train"]]
    if len(files) == 1:
        train = files[0]
    else:
        train = out / f"{name}.train.svm"
        if not train.exists():
            _write(train, [r for f in files for r in _rows(f)])
    return {"train": str(train), "test": str(DATA / spec["test"]),
            "how": f"{' + '.join(spec['train'])} -> {spec['test']}"}


def labels(path) -> np.ndarray:
    return np.array([1 if float(r.split(None, 1)[0]) > 0 else 0 for r in _rows(path)], dtype=np.int8)


def score(y, p) -> dict:
    from sklearn.metrics import roc_auc_score
    p = np.asarray(p, dtype=np.float64)
    if len(p) != len(y) or not np.isfinite(p).all():
        raise ValueError(f"{len(p)} predictions (finite: {np.isfinite(p).all()}) for {len(y)} rows")
    pc = np.clip(p, 1e-15, 1 - 1e-15)
    return {"logloss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
            "auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None}


def read_floats(path, col=0):
    with open(path) as f:
        return np.array([float(ln.split()[col]) for ln in f if ln.strip()])


# ---------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------

def run(cmd, timeout=3600, stdout=None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {p.returncode}: {p.stderr.decode()[-1500:]}")
    run.last_stdout = p.stdout
    return wall


def ftrl_runs(name, files, tools, work: Path, repeat: int) -> dict:
    """ftrl train (defaults) and ftrl tune (no flags): timed in interleaved rounds, scored once
    (both are deterministic)."""
    ftrl, y = tools["ftrl"], labels(files["test"])
    cmds = {"train": [ftrl, "train", files["train"], "-m", str(work / "train"), "--force", "-q", "--json"],
            "tune": [ftrl, "tune", files["train"], "-m", str(work / "tune"), "--force", "-q", "--json"]}
    walls = {k: [] for k in cmds}
    seconds = {k: [] for k in cmds}
    info = {}
    for _ in range(repeat):
        for k, cmd in cmds.items():
            walls[k].append(run(cmd))
            info[k] = json.loads(run.last_stdout)
            seconds[k].append(info[k]["seconds"])
    out = {}
    for k in cmds:
        preds = work / f"{k}.pred"
        run([ftrl, "predict", "-m", str(work / k), files["test"], "-o", str(preds), "-q"])
        out[k] = score(y, read_floats(preds)) | {"wall_s": statistics.median(walls[k]), "walls": walls[k]}
    t = info["tune"]
    b = t["best"]
    out["tune"] |= {"setting": b["setting"], "passes": b["pass"], "refit": b["refit"],
                    "holdout": t["holdout"]["description"], "passes_read": t["passes_read"],
                    "holdout_value": b.get(t["metric"]),
                    "setting_passes": sum(len(s["per_pass"]) for s in t["settings"])}
    out["tune"]["x_one_pass"] = out["tune"]["wall_s"] / out["train"]["wall_s"]
    # in-process: the commands' own timers (no process start-up), median over the runs
    out["train"]["seconds"] = statistics.median(seconds["train"])
    out["tune"]["seconds"] = statistics.median(seconds["tune"])
    out["tune"]["x_one_pass_inner"] = out["tune"]["seconds"] / out["train"]["seconds"]
    return out


def _vw_file(src, cache: Path) -> str:
    h = hashlib.sha1(f"{os.path.abspath(src)}:{os.path.getsize(src)}:{os.path.getmtime(src)}".encode()).hexdigest()[:10]
    dst = cache / "vw" / f"{Path(src).name}.{h}.vw"
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(dst.with_suffix(".tmp"), "wb") as f:
            for r in _rows(src):
                lab, _, feats = r.split(b"#", 1)[0].strip().partition(b" ")
                f.write((b"1" if float(lab) > 0 else b"-1") + b" |f " + feats.strip() + b"\n")
        os.replace(dst.with_suffix(".tmp"), dst)
    return str(dst)


def peer_run(peer, files, tools, work: Path, cache: Path) -> dict:
    """One peer trained on the training file, its test probabilities scored here."""
    y = labels(files["test"])
    model, preds = work / f"{peer}.model", work / f"{peer}.pred"
    if peer.startswith("vw"):
        if not tools["vw"]:
            raise RuntimeError("no vw (set $VW or build /work/.venv-peers/bin/vw)")
        tr, te = _vw_file(files["train"], cache), _vw_file(files["test"], cache)
        cmd = [tools["vw"], "--ftrl", "--loss_function", "logistic", "-b", "24", "-d", tr, "-f", str(model),
               "--quiet"]
        if peer == "vw-p10":
            cache_file = work / "vw.cache"
            cache_file.unlink(missing_ok=True)
            cmd += ["--passes", "10", "--cache_file", str(cache_file), "-k"]
        wall = run(cmd)
        run([tools["vw"], "-t", "-i", str(model), "-d", te, "-p", str(preds), "--link", "logistic", "--quiet"])
        p = read_floats(preds)
    elif peer.startswith("ll"):
        if not (tools["ll_train"] and tools["ll_predict"]):
            raise RuntimeError("no liblinear-train/-predict on PATH (apt-get install liblinear-tools)")
        cmd = [tools["ll_train"], "-s", "0" if peer == "ll-l2" else "6", "-c", "1", "-B", "1", "-q",
               files["train"], str(model)]
        wall = run(cmd)
        run([tools["ll_predict"], "-b", "1", "-q", files["test"], str(model), str(preds)])
        with open(preds) as f:
            head = f.readline().split()  # "labels 0 1" (or "labels 1 -1"): the columns' labels
            col = 1 + [float(x) > 0 for x in head[1:]].index(True)  # the positive label's column
            p = np.array([float(ln.split()[col]) for ln in f if ln.strip()])
    elif peer == "sk-lr":
        cmd = [tools["peers_python"], __file__, "_sklearn", files["train"], files["test"], str(preds) + ".npy"]
        wall = run(cmd)
        p = np.load(str(preds) + ".npy")
    else:
        raise ValueError(peer)
    return score(y, p) | {"wall_s": wall, "cmd": " ".join(map(str, cmd))}


def _sklearn_worker(train, test, out):
    """(run with the peers' python) LogisticRegression() at its defaults, max_iter raised."""
    import warnings

    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    X, y = load_svmlight_file(train, zero_based=True)
    Xt, _ = load_svmlight_file(test, zero_based=True, n_features=max(X.shape[1], _max_col(test)))
    Xt = Xt[:, :X.shape[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = LogisticRegression(max_iter=1000).fit(X, (y > 0).astype(int))
    np.save(out, clf.predict_proba(Xt)[:, 1])


def _max_col(path):
    m = 0
    for r in _rows(path):
        for tok in r.split(b"#", 1)[0].split()[1:]:
            m = max(m, int(tok.split(b":")[0]) + 1)
    return m


def _peer_cache(peer, files, tools, cache) -> Path:
    """Where a peer's result is cached: keyed by the peer, its inputs and the tools."""
    key = json.dumps([peer, {k: [files[k], os.path.getsize(files[k]), os.path.getmtime(files[k])]
                             for k in ("train", "test")}, tools.get("vw"), tools.get("ll_train")])
    return cache / "peers" / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".json")


def peer_cached(peer, files, tools, work, cache, rerun) -> dict:
    path = _peer_cache(peer, files, tools, cache)
    if path.exists() and not rerun:
        return json.loads(path.read_text())
    try:
        r = peer_run(peer, files, tools, work, cache)
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
        return {"error": str(e).splitlines()[0][:300]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r))
    return r


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------

def _cell(r):
    if not r or "error" in r:
        return "–"
    auc = "–" if r.get("auc") is None else f"{r['auc']:.4f}"
    return f"{r['logloss']:.4f} / {auc}"


def best_peer(res, metric):
    ok = [(p, res["peers"][p]) for p in PEERS if res["peers"].get(p) and "error" not in res["peers"][p]
          and res["peers"][p].get(metric) is not None]
    if not ok:
        return None, None
    p, r = (min if metric == "logloss" else max)(ok, key=lambda x: x[1][metric])
    return p, r[metric]


def render(results: dict) -> str:
    meta = results["meta"]
    sets = [n for n in DATASETS if n in results["sets"]]
    lines = [
        "## Model quality: `ftrl train`, `ftrl tune` and the peers (issue 14)",
        "",
        f"`make quality` (bench/quality.py) at commit {meta['commit']}, {meta['date']}; load average "
        f"{meta['load_start']} at the start, {meta['load_end']} at the end (2 vCPUs; timings are whole "
        f"processes, median of {meta['repeat']} interleaved runs). Every cell is **test-set log loss / AUC**; "
        "each tool learns from the training file only, and its test probabilities are scored by the "
        "same code. `train`: `ftrl train TRAIN -m DIR` (one pass, alpha 0.1, beta 1, l1 1, l2 1); "
        "`tune`: `ftrl tune TRAIN -m DIR` with no other flag; ×pass: tune's time over one plain "
        "`ftrl train` pass, in the commands (their own timers: reading, training, saving) / as whole "
        "processes (with ~0.6 s of start-up each, and the fsyncs of the saves, which are slow when other "
        "work writes to the disk). Peers: `vw --ftrl` (VW's defaults: alpha 0.5, beta 1, no l1/l2, one pass, "
        "-b 24); `vw --ftrl --passes 10` (VW's own hold-out, every 10th row, early stop); LIBLINEAR "
        "`-s 0` (L2) and `-s 6` (L1) with `-c 1 -B 1`; scikit-learn `LogisticRegression()` (lbfgs, "
        "C=1). **Bold**: the best log loss and AUC of the row.",
        "",
        "| set | rows train / test | ftrl train | ftrl tune | tune's choice | ×pass | "
        + " | ".join(PEER_TEXT[p] for p in PEERS) + " |",
        "|---|---:|---|---|---|---:|" + "---|" * len(PEERS),
    ]
    for n in sets:
        r = results["sets"][n]
        cols = {"train": r["ftrl"].get("train"), "tune": r["ftrl"].get("tune")} | r["peers"]
        okv = [v for v in cols.values() if v and "error" not in v]
        best_ll = min((v["logloss"] for v in okv), default=None)
        best_auc = max((v["auc"] for v in okv if v.get("auc") is not None), default=None)

        def cell(v, best_ll=best_ll, best_auc=best_auc):
            if not v or "error" in v:
                return "–"
            ll = f"{v['logloss']:.4f}"
            ll = f"**{ll}**" if v["logloss"] == best_ll else ll
            auc = "–" if v.get("auc") is None else f"{v['auc']:.4f}"
            auc = f"**{auc}**" if v.get("auc") is not None and v["auc"] == best_auc else auc
            return f"{ll} / {auc}"

        t = cols["tune"] or {}
        choice = "–" if not t or "error" in t else (
            " ".join(f"{k}={v:g}" for k, v in t["setting"].items()) + f", {t['passes']} pass"
            + ("es" if t["passes"] > 1 else ""))
        xp = "–" if not t or "error" in t else f"{t['x_one_pass_inner']:.1f} / {t['x_one_pass']:.1f}"
        lines.append(f"| {n} | {r['rows'][0]:,} / {r['rows'][1]:,} | {cell(cols['train'])} | {cell(cols['tune'])} | "
                     f"{choice} | {xp} | " + " | ".join(cell(r["peers"].get(p)) for p in PEERS) + " |")
    lines += ["", "Targets (issue 14, Done means): `ftrl tune` with no flags against the best peer on the test file.", "",
              "| set | target | ftrl tune | best peer | gap | verdict |", "|---|---|---:|---:|---:|---|"]
    for n, (metric, tol) in TARGETS.items():
        if n not in results["sets"]:
            continue
        r = results["sets"][n]
        t = r["ftrl"].get("tune") or {}
        p, v = best_peer(r, metric)
        if p is None or not t or "error" in t:
            continue
        mine = t[metric]
        if metric == "logloss":
            gap, ok, what = mine / v - 1, mine <= v * (1 + tol), f"log loss within {tol:.0%}"
            gs = f"{gap:+.2%}"
        else:
            gap, ok, what = mine - v, mine >= v - tol, f"AUC within {tol}"
            gs = f"{gap:+.4f}"
        lines.append(f"| {n} | {what} | {mine:.4f} | {v:.4f} ({PEER_TEXT[p]}) | {gs} | {'PASS' if ok else 'MISS'} |")
    lines += ["", "Data: " + "; ".join(f"{n}: {results['sets'][n]['how']}" for n in sets) + ".",
              "Times (median wall s, train / tune): " + "; ".join(
                  f"{n} {results['sets'][n]['ftrl']['train']['wall_s']:.2f} / {results['sets'][n]['ftrl']['tune']['wall_s']:.2f}"
                  for n in sets if "error" not in results["sets"][n]["ftrl"].get("tune", {"error": 1}))
              + "."]
    lines += ["", "Noise: the test files of criteo_kaggle_8k (391 rows), avazu_9k (432) and ipinyou_sample (50 "
              "positives) are small, so differences there below ~0.01 in log loss or ~0.02 in AUC are within "
              "their noise; the targets are met, but not by a margin that noise could not erase. w8a is sorted "
              "by label (740 negatives, 1,479 positives, 47,530 negatives): every online learner here does worse "
              "than the constant predictor on it, tune included (its tail hold-out is all negative, so it falls "
              "back to every 10th row, which an online learner scores where it stands in the stream, and that "
              "rewards tracking the label blocks); such data must be shuffled first. On the small dense sets "
              "(agaricus, rcv1_vw_small, url_mini, lightgbm_binary) tune stops at the grid's largest alpha (0.5) "
              "or at the 10-pass cap."]
    errors = [f"{n} {p}: {v['error']}" for n in sets for p, v in results["sets"][n]["peers"].items() if "error" in v]
    if errors:
        lines += ["", "Peers that did not run: " + "; ".join(errors)]
    return "\n".join(lines) + "\n"


def write_benchmarks(text: str, path: Path):
    doc = path.read_text()
    block = f"{START}\n{text}{END}"
    if START in doc and END in doc:
        a, b = doc.index(START), doc.index(END) + len(END)
        doc = doc[:a] + block + doc[b:]
    else:
        anchor = doc.find("\n## Appendix")
        anchor = len(doc) if anchor < 0 else anchor + 1
        doc = doc[:anchor] + block + "\n\n" + doc[anchor:]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(doc)
    os.replace(tmp, path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_sklearn":
        _sklearn_worker(*argv[1:4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma list")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of train and tune (median)")
    ap.add_argument("--cache-dir", default=str(REPO / ".bench-cache" / "quality"))
    ap.add_argument("--no-peers", action="store_true", help="ftrl only (peers from an earlier run's cache)")
    ap.add_argument("--rerun-peers", action="store_true", help="ignore the peers' cached results")
    ap.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--render", action="store_true", help="re-print CACHE/results.json")
    a = ap.parse_args(argv)
    cache = Path(a.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    if a.render:
        text = render(json.loads((cache / "results.json").read_text()))
        print(text, end="")
        if not a.no_write:
            write_benchmarks(text, REPO / "BENCHMARKS.md")
        return 0
    names = [n.strip() for n in a.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        ap.error(f"unknown data set(s) {unknown}; known: {', '.join(DATASETS)}")
    tools = find_tools()
    if not tools["ftrl"]:
        ap.error("no ftrl executable (set $FTRL or make install)")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "ftrl_cli"], capture_output=True,
                           text=True).stdout.strip()
    meta = {"commit": commit + (" + uncommitted ftrl_cli changes" if dirty else ""),
            "date": time.strftime("%Y-%m-%d"), "load_start": loadavg(), "repeat": a.repeat,
            "tools": tools}
    results = {"meta": meta, "sets": {}}
    for n in names:
        files = prepare(n, cache)
        rows = (len(_rows(files["train"])), len(_rows(files["test"])))
        work = cache / "runs" / n
        work.mkdir(parents=True, exist_ok=True)
        log(f"{n}: {rows[0]:,} / {rows[1]:,} rows; ftrl train and tune x{a.repeat} (load {loadavg()})")
        res = {"how": files["how"], "rows": rows, "files": files, "peers": {}}
        res["ftrl"] = ftrl_runs(n, files, tools, work, a.repeat)
        for p in PEERS:
            if a.no_peers and not _peer_cache(p, files, tools, cache).exists():
                res["peers"][p] = {"error": "not run (--no-peers)"}
            else:
                res["peers"][p] = peer_cached(p, files, tools, work, cache, a.rerun_peers)
        results["sets"][n] = res
        t, tr = res["ftrl"]["tune"], res["ftrl"]["train"]
        log(f"{n}: train {_cell(tr)}; tune {_cell(t)} {t['setting']} x{t['passes']} ({t['x_one_pass']:.1f}x); "
            + "; ".join(f"{p} {_cell(v)}" for p, v in res["peers"].items()))
    meta["load_end"] = loadavg()
    (cache / "results.json").write_text(json.dumps(results, indent=1))
    text = render(results)
    (cache / "results.md").write_text(text)
    print(text, end="")
    if not a.no_write and set(names) == set(DATASETS):
        write_benchmarks(text, REPO / "BENCHMARKS.md")
        log("BENCHMARKS.md: section 'Model quality' written")
    elif not a.no_write:
        log("BENCHMARKS.md not written: only a subset of the sets was run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
