#!/usr/bin/env python3
"""Parallel training measured (issue 15, item 7): rows/s of one thread, `--threads 2` and
`--cluster local:2` against `vw --ftrl` in the same run; what a merge round sends; held-out
log loss against K.

    .venv/bin/python bench/parallel_scaling.py                      # ctr and flights, 3 rounds
    .venv/bin/python bench/parallel_scaling.py --data flights --rounds 5
    .venv/bin/python bench/parallel_scaling.py --skip-quality --skip-costs

Data (bench cache, $BENCH_DATA or /work/bench-cache/data): the ctr file
(ctr-r2000000-f40-b24-s1.svm: 2 M rows x 40 hashed ids < 2^24, table 2^24 slots) and the
flights-like file (bench/flights.py: 2.5 M rows x 10 one-hot ids < 2048), each with its VW
text next to it (run_bench.py / flights.py write them).

Timings: whole processes, wall time from this process's clock (GNU time for CPU when it is
installed), in rounds: each round runs every command once, the order rotating from round to
round, so a drift of the machine's speed hits all of them alike; each figure is the median
over rounds, and a speed-up is the median of the per-round ratios to the one-thread run of
the same round. Same settings everywhere: alpha 0.1, beta 1, l1 1, l2 1, one pass, logistic
loss; `-b` as the table (24 for ctr; 18 for flights, no collisions).

Bytes per merge: from an in-process `--threads 2` run, what a round moves: each worker hands
back the rows it changed (slot int64 + row) and its bias; on Dask the driver sends the
global state to every worker at a pass's start (broadcast) and, after each merge, a delta:
the merged rows of every slot a partition changed (slot int64 + row).

Per-round costs: copy of the state (each partition trains its own), finding the changed
rows (the touched slots only, and the old whole-table comparison for reference), the merge,
and a Dask broadcast of the state to 2 local worker processes.

Log loss against K: the file's last 10 % of rows held out (written once to --work), one pass
of `weighted` merged per pass, K = 1 (embedded), 2, 4, 8, then `ftrl eval` on the held-out
rows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_bench as rb  # noqa: E402  (measure, peers)

DATA_DIR = Path(os.environ.get("BENCH_DATA", "/work/bench-cache/data"))
SETS = {
    "ctr": dict(svm="ctr-r2000000-f40-b24-s1.svm", rows=2_000_000, bits=24),
    "flights": dict(svm="flights-r2500000-s1.svm", rows=2_500_000, bits=18),
}
HP = ["--alpha", "0.1", "--beta", "1", "--l1", "1", "--l2", "1"]


def ftrl_exe():
    exe = Path(sys.executable).with_name("ftrl")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ftrl_cli"]


def commands(ds, wd, vw):
    ftrl = ftrl_exe()
    base = ftrl + ["train", ds["path"], "--bits", str(ds["bits"]), *HP, "--passes", "1", "-q", "--force", "--json"]
    cmds = {
        "ftrl, 1 thread": base + ["-m", str(wd / "m1")],
        "ftrl --threads 2": base + ["-m", str(wd / "mt2"), "--threads", "2"],
        "ftrl --cluster local:2": base + ["-m", str(wd / "ml2"), "--cluster", "local:2"],
        # (rounds of 100 k rows per partition: what the deltas and kept states save)
        "ftrl --threads 2 --merge-every 100000": base + ["-m", str(wd / "mt2r"), "--threads", "2",
                                                         "--merge-every", "100000"],
        "ftrl --cluster local:2 --merge-every 100000": base + ["-m", str(wd / "ml2r"), "--cluster", "local:2",
                                                               "--merge-every", "100000"],
    }
    vwfile = ds["path"][:-4] + ".vw"
    if vw and os.path.exists(vwfile):
        cmds["vw --ftrl"] = [vw, "--ftrl", "--ftrl_alpha", "0.1", "--ftrl_beta", "1", "--l1", "1", "--l2", "1",
                             "--loss_function", "logistic", "-b", str(ds["bits"]), "-d", vwfile, "--quiet",
                             "-f", str(wd / "vw.model")]
    return cmds


def timings(ds, wd, vw, rounds):
    cmds = commands(ds, wd, vw)
    names = list(cmds)
    runs = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            m = rb.measure(cmds[n])
            if m["rc"] != 0:
                raise SystemExit(f"{n} failed ({m['rc']}): {m['stderr'][-600:]}")
            runs[n].append(m)
            print(f"  round {r + 1} {n}: {m['wall_s']:.2f} s", file=sys.stderr)
    one = [m["wall_s"] for m in runs["ftrl, 1 thread"]]
    out = {}
    for n in names:
        walls = [m["wall_s"] for m in runs[n]]
        cpus = [m["cpu_s"] for m in runs[n] if m["cpu_s"] is not None]
        loops = [_loop_seconds(m) for m in runs[n]]
        loops = [x for x in loops if x is not None]
        out[n] = dict(wall_s=statistics.median(walls), wall_min=min(walls), wall_max=max(walls),
                      loop_s=statistics.median(loops) if loops else None,
                      loop_rows_per_s=ds["rows"] / statistics.median(loops) if loops else None,
                      rows_per_s=ds["rows"] / statistics.median(walls),
                      cpu_s=statistics.median(cpus) if cpus else None,
                      speedup=statistics.median(a / b for a, b in zip(one, walls)))
    return out


def _loop_seconds(m):
    """ftrl train --json's loop_seconds: the passes, without start-up, a cluster's start
    and the final save."""
    try:
        return float(json.loads(m["stdout"].strip().splitlines()[-1])["loop_seconds"])
    except (ValueError, IndexError, KeyError, TypeError):
        return None


def merge_bytes(ds, wd, merge_every=0):
    """What the rounds of an in-process --threads 2 run move (counted at the merge)."""
    from ftrl_cli import api, parallel

    seen = []
    merge = parallel.merge_states

    def counting(base, results, config):
        import numpy as np

        union = np.unique(np.concatenate([r.slots for r in results]))  # (a Delta's rows: Dask sends them)
        row = base.table.itemsize * base.table.shape[1]
        seen.append(dict(state=base.table.nbytes + base.bias.nbytes + base.aliases.nbytes,
                         back=sum(r.slots.nbytes + r.rows.nbytes + r.bias.nbytes for r in results),
                         rows=sum(len(r.slots) for r in results), partitions=len(results),
                         delta=len(union) * (8 + row)))
        return merge(base, results, config)

    parallel.merge_states = counting
    try:
        api.train([ds["path"]], wd / "bytes", overrides=dict(bits=ds["bits"], alpha=0.1, beta=1.0, l1=1.0, l2=1.0,
                                                            merge_every=merge_every), threads=2, force=True)
    finally:
        parallel.merge_states = merge
    return dict(rounds=len(seen), merge_every=merge_every,
                state_bytes=max(s["state"] for s in seen),
                back_bytes_per_round=statistics.median(s["back"] for s in seen),
                delta_bytes_per_round=statistics.median(s["delta"] for s in seen),
                back_rows_per_round=statistics.median(s["rows"] for s in seen))


def round_costs(ds, wd):
    """Seconds of the serial parts of a round on this data's final table."""
    import numpy as np

    from ftrl_cli import checkpoint, parallel
    from ftrl_cli.model import fresh_row

    model, _ = checkpoint.load(wd / "mt2")
    state, c = model.state, model.config
    fresh = fresh_row(c)
    rng = np.random.default_rng(0)
    touched_rows = min(len(state.table), 400_000)  # (about what a round of 100k ctr rows touches)
    slots = np.sort(rng.choice(len(state.table), touched_rows, replace=False)).astype(np.int64)

    def best(f, n=3):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return min(ts)

    out = dict(table_rows=len(state.table), table_bytes=state.table.nbytes, touched=touched_rows)
    out["copy_s"] = best(state.copy)
    after = state.copy()
    after.table[slots[::2], 0] += 1.0
    mark = parallel.Touched(c.bits)
    mark.add(slots, int(slots.max()))
    out["changed_touched_s"] = best(lambda: mark.changed(after, state, fresh))
    out["changed_whole_table_s"] = best(lambda: after.changed_slots(state, fresh))
    res = [parallel.Result(position=None, slots=slots[::2], rows=after.table[slots[::2]], bias=state.bias.copy(),
                           size=len(state.table), aliases=None, alias_overflow=False)] * 2
    out["merge_s"] = best(lambda: parallel.merge_states(state.copy(), res, c), 2) - out["copy_s"]
    try:
        import distributed

        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=50) as cl, distributed.Client(cl) as client:
            def scatter():
                f = client.scatter(state, broadcast=True, hash=False)
                client.replicate(f)  # (returns when every worker holds it)
                f.release()
            out["dask_broadcast_2_workers_s"] = best(scatter, 2)
    except ImportError:
        pass
    return out


def split(ds, wd):
    """The file's rows cut 90/10 (written once)."""
    train, test = wd / f"{ds['name']}.train.svm", wd / f"{ds['name']}.test.svm"
    if not test.exists():
        cut = ds["rows"] - ds["rows"] // 10
        with open(ds["path"], "rb") as f, open(str(train) + ".tmp", "wb") as a, open(str(test) + ".tmp", "wb") as b:
            for i, line in enumerate(f):
                (a if i < cut else b).write(line)
        os.replace(str(train) + ".tmp", train)
        os.replace(str(test) + ".tmp", test)
    return str(train), str(test)


def quality(ds, wd, ks=(1, 2, 4, 8)):
    from ftrl_cli import api

    train, test = split(ds, wd)
    out = {}
    for k in ks:
        d = wd / f"q{k}"
        over = dict(bits=ds["bits"], alpha=0.1, beta=1.0, l1=1.0, l2=1.0)
        if k == 1:
            api.train([train], d, overrides=over, force=True)
        else:
            api.train([train], d, overrides=dict(over, partitions=k), threads=2, force=True)
        out[k] = api.evaluate(d, [test])["logloss"]
    return {k: dict(logloss=v, vs_embedded=v / out[1] - 1) for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="ctr,flights")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default="/tmp/ftrl-parallel-bench")
    ap.add_argument("--skip-times", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-costs", action="store_true")
    a = ap.parse_args()
    vw = rb.find_vw()
    results = {"load_before": os.getloadavg(), "cpus": os.cpu_count(), "vw": vw}
    for name in a.data.split(","):
        spec = SETS[name]
        path = DATA_DIR / spec["svm"]
        if not path.exists():
            print(f"{name}: {path} missing (bench/run_bench.py or bench/flights.py writes it)", file=sys.stderr)
            continue
        ds = dict(spec, name=name, path=str(path))
        wd = Path(a.work) / name
        wd.mkdir(parents=True, exist_ok=True)
        r = results[name] = {}
        print(f"{name}:", file=sys.stderr)
        if not a.skip_times:
            r["times"] = timings(ds, wd, vw, a.rounds)
        if not a.skip_costs:
            r["bytes_per_pass_merge"] = merge_bytes(ds, wd)
            r["bytes_per_100k_merge"] = merge_bytes(ds, wd, 100_000)
            if (wd / "mt2").exists():
                r["round_costs"] = round_costs(ds, wd)
        if not a.skip_quality:
            r["logloss_vs_k"] = quality(ds, wd)
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
