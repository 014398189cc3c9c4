#!/usr/bin/env python3
"""Where an `ftrl` command's fixed cost goes: the seconds before and after its loop.

    .venv/bin/python bench/fixed_costs.py train DATA.svm          # medians of 5 runs
    .venv/bin/python bench/fixed_costs.py predict DATA.svm --runs 7
    .venv/bin/python bench/fixed_costs.py --json train DATA.svm
    .venv/bin/python bench/fixed_costs.py predict DATA.svm --pycache /tmp/pyc   # with .pyc files

Each run is a fresh process (`python fixed_costs.py --child ...`) that imports the
command's modules step by step, then runs the command line (ftrl_cli.cli.main) with a few
functions wrapped to time them: Numba's cache loads (one per kernel and signature, named
by kernel module), the training loop (engine.Trainer.run up to its final save), the time to
the first batch learned, the final save (checkpoint writes: state, sha256, manifest,
config), and predict's model load. The parent reports the medians and the process's wall
time measured from outside, so "python start-up" is the wall time before the child's first
line ran, and "other" is what no bucket holds (option parsing, input checks, exit).

The loop is the per-row work: train's is Trainer.run up to its final save (what `train
--json` reports as loop_seconds); predict's is api.predict less its model load and less
the first call of each Numba kernel (typing the arguments, the cache load, the import of
the kernel's family), which are paid once whatever the input's size. Also timed: the
compiling of .py files that have no .pyc (under PYTHONDONTWRITEBYTECODE=1 an editable
install compiles every ftrl_cli module in every run; an installed package has its .pyc
files: --pycache DIR runs the children so, the .pyc files under DIR), and every
os.fsync and os.replace (predict: its output's atomic finish).

The wrapping adds a few microseconds a call; the buckets are wall-clock intervals and
may overlap (a cache load inside the loop counts in both).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

T0 = time.perf_counter()


def child(cmd: str, data: str, model: str, out: str) -> None:
    marks = {}
    acc = {}

    def timed(owner, name, key):
        fn = getattr(owner, name)

        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                acc[key] = acc.get(key, 0.0) + time.perf_counter() - t
        setattr(owner, name, wrapper)

    import importlib.machinery
    timed(importlib.machinery.SourceFileLoader, "source_to_code", "compiling .py without a .pyc")
    t = time.perf_counter()
    import numpy  # noqa: F401
    marks["import numpy"] = time.perf_counter() - t
    t = time.perf_counter()
    import ftrl_cli.cli as cli
    marks["import ftrl_cli.cli (click)"] = time.perf_counter() - t
    t = time.perf_counter()
    from ftrl_cli import kernels  # (Numba too, in an ftrl_cli before start_for_cli)
    if hasattr(kernels, "start_for_cli"):  # (imports Numba as the command line does)
        kernels.start_for_cli()
        marks["import numba + kernels.start_for_cli()"] = time.perf_counter() - t
        t = time.perf_counter()
        from ftrl_cli import api
        marks["import ftrl_cli.api (readers, engine, ...)"] = time.perf_counter() - t
    else:  # (an ftrl_cli before it)
        import numba  # noqa: F401
        marks["import numba + kernels.start_for_cli()"] = time.perf_counter() - t
        t = time.perf_counter()
        from ftrl_cli import api
        marks["import ftrl_cli.api (readers, engine, ...)"] = time.perf_counter() - t
        t = time.perf_counter()
        api.start_numba_for_cli()
        marks["Numba's CPU target (api.start_numba_for_cli)"] = time.perf_counter() - t

    from numba.core import caching, dispatcher

    from ftrl_cli import checkpoint, engine
    loads = {}
    first_calls = "Numba first calls (typing, cache load)"
    timed(dispatcher.Dispatcher, "_compile_for_args", first_calls)
    family_imports = "kernel family imports"
    if hasattr(kernels, "_FAMILY_OF"):  # (lazy families: imported on first use of a name)
        get = kernels.__getattr__

        def kernel_attr(name):
            t = time.perf_counter()
            try:
                return get(name)
            finally:
                acc[family_imports] = acc.get(family_imports, 0.0) + time.perf_counter() - t
        kernels.__getattr__ = kernel_attr
    timed(os, "fsync", "os.fsync (output, checkpoint files, folders)")
    timed(os, "replace", "os.replace")

    orig_load = caching.Cache.load_overload

    def load_overload(self, sig, target_context):
        t = time.perf_counter()
        try:
            return orig_load(self, sig, target_context)
        finally:
            mod = getattr(self._py_func, "__module__", "?").rsplit(".", 1)[-1]
            k = f"{mod}.{self._py_func.__name__}"
            loads[k] = loads.get(k, 0.0) + time.perf_counter() - t
    caching.Cache.load_overload = load_overload

    first = {}
    orig_learn = engine.Trainer.learn

    def learn(self, b):
        first.setdefault("t", time.perf_counter())
        return orig_learn(self, b)
    engine.Trainer.learn = learn
    orig_run = engine.Trainer.run
    orig_finish = engine.Trainer.finish

    def finish(self):
        acc["loop (Trainer.run before finish)"] = time.perf_counter() - acc.pop("_run0")
        t = time.perf_counter()
        try:
            return orig_finish(self)
        finally:
            acc["final save (Trainer.finish)"] = time.perf_counter() - t

    def run(self, sources):
        acc["_run0"] = time.perf_counter()
        first["run0"] = acc["_run0"]
        return orig_run(self, sources)
    engine.Trainer.run = run
    engine.Trainer.finish = finish
    timed(checkpoint, "_write_state", "  of which state file (npz, sha256, fsync)")
    timed(checkpoint, "_write_manifest", "  of which manifest writes")
    timed(checkpoint, "write_config", "  of which config.json")
    timed(checkpoint, "start_run", "manifest: start_run (pending)")
    timed(api, "load_model", "load_model (read, sha256, npz)")
    timed(api, "predict", "loop (api.predict, its model load included)")
    before = {}

    def predict(*a, **kw):  # (the first calls made before api.predict are not its)
        before.update({k: acc.get(k, 0.0) for k in (first_calls, family_imports)})
        return api_predict(*a, **kw)
    api_predict, api.predict = api.predict, predict

    argv = [cmd, data, "-m", model, "-q"]
    if cmd == "train":
        argv += ["--force", "--passes", "1"]
    else:
        argv += ["-o", out]
    t = time.perf_counter()
    try:
        cli.main(argv, prog_name="ftrl")
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    marks["command (cli.main)"] = time.perf_counter() - t
    if cmd == "predict":  # (predict's loop: api.predict less its model load and the kernels' first calls)
        loop = acc.pop("loop (api.predict, its model load included)") - acc.get("load_model (read, sha256, npz)", 0.0)
        acc["loop as counted before (api.predict after load_model)"] = loop
        once = sum(acc.get(k, 0.0) - before.get(k, 0.0) for k in (first_calls, family_imports))
        acc["loop (api.predict after load_model, less first calls)"] = loop - once
    if "t" in first:
        acc["time to first batch (run start -> first learn)"] = first["t"] - first["run0"]
    res = {"marks": marks, "acc": acc, "loads": loads, "child_total": time.perf_counter() - T0}
    print("FIXED_COSTS " + json.dumps(res))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("command", choices=["train", "predict"])
    ap.add_argument("data")
    ap.add_argument("--model", default=None, help="model directory (default: a temp dir; predict trains it first)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--pycache", metavar="DIR", help="children write and use .pyc files under DIR "
                    "(PYTHONPYCACHEPREFIX), as an installed package has them; default: the environment's way")
    a = ap.parse_args(argv)
    model = a.model or os.path.join("/tmp", f"ftrl-fixed-costs-{os.getuid()}")
    out = model + ".pred"
    if a.child:
        child(a.command, a.data, model, out)
        return 0
    env = dict(os.environ)
    if a.pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = os.path.abspath(a.pycache)
    if a.command == "predict" and not os.path.exists(os.path.join(model, "manifest.json")):
        subprocess.run([sys.executable, __file__, "--child", "train", a.data, "--model", model], check=True,
                       capture_output=True, env=env)
    runs = []
    for i in range(a.runs + 1):  # the first run warms the caches, not counted
        t = time.perf_counter()
        p = subprocess.run([sys.executable, __file__, "--child", a.command, a.data, "--model", model],
                           capture_output=True, text=True, env=env, cwd="/")
        wall = time.perf_counter() - t
        if p.returncode != 0:
            sys.exit(p.stderr[-2000:])
        line = [x for x in p.stdout.splitlines() if x.startswith("FIXED_COSTS ")][-1]
        r = json.loads(line[len("FIXED_COSTS "):])
        r["wall"] = wall
        if i:
            runs.append(r)

    def m(f):
        return statistics.median(f(r) for r in runs)
    rows = [("process wall (from outside)", m(lambda r: r["wall"])),
            ("python start-up + interpreter exit", m(lambda r: r["wall"] - r["child_total"]))]
    for k in runs[0]["marks"]:
        rows.append((k, m(lambda r, k=k: r["marks"].get(k, 0.0))))
    keys = sorted({k for r in runs for k in r["acc"]})
    order = ["time to first batch", "loop", "final save", "  of which", "manifest", "load_model"]
    keys.sort(key=lambda k: next((i for i, p in enumerate(order) if k.startswith(p)), 99))
    for k in keys:
        rows.append((k, m(lambda r, k=k: r["acc"].get(k, 0.0))))
    loop = next((k for k in keys if k.startswith("loop (")), None)
    if loop:
        rows.insert(1, ("wall - loop (the fixed cost)", m(lambda r: r["wall"] - r["acc"].get(loop, 0.0))))
    old = "loop as counted before (api.predict after load_model)"
    if old in keys:
        rows.insert(2, ("wall - loop as counted before (first calls in the loop)",
                        m(lambda r: r["wall"] - r["acc"].get(old, 0.0))))
    lk = sorted({k for r in runs for k in r["loads"]})
    rows.append((f"Numba cache loads ({len(lk)} kernels)", m(lambda r: sum(r["loads"].values()))))
    fam = {}
    for k in lk:
        fam.setdefault(k.split(".")[0], []).append(k)
    for f_, ks in sorted(fam.items()):
        rows.append((f"  {f_}: {', '.join(k.split('.', 1)[1] for k in ks)}",
                     m(lambda r, ks=ks: sum(r["loads"].get(k, 0.0) for k in ks))))
    if a.json:
        print(json.dumps({"command": a.command, "data": a.data, "runs": runs, "medians": dict(rows),
                          "loadavg": os.getloadavg()}))
        return 0
    pyc = f", .pyc files under {a.pycache}" if a.pycache else (
        ", no .pyc written (PYTHONDONTWRITEBYTECODE)" if env.get("PYTHONDONTWRITEBYTECODE") else "")
    print(f"ftrl {a.command} {a.data}: medians of {a.runs} runs, load average {os.getloadavg()[0]:.1f}{pyc}")
    print("| part | s |\n|---|---:|")
    for k, v in rows:
        print(f"| {k} | {v:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
