"""Data-parallel training (ftrl_cli/parallel.py, readers/partition.py, kernels/merge.py):
one partition is the embedded run bit for bit; partitions cover every row once; the merge
rules match a plain-Python transcription of docs/parallel.md; threads and Dask give the
same model; what has no merge rule is refused."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from ftrl_cli import api, checkpoint, parallel
from ftrl_cli.cli import main
from ftrl_cli.config import Config
from ftrl_cli.errors import ConfigError, DataError
from ftrl_cli.model import State
from ftrl_cli.readers import convert_to_parquet, open_batches
from ftrl_cli.readers.partition import Position, plan, read_partition

DATA = os.path.join(os.path.dirname(__file__), "data")
A9A = os.path.join(DATA, "a9a_head2000.svm")
A9A_T = os.path.join(DATA, "a9a_t_head500.svm")
BLANK = os.path.join(DATA, "w8a_head1000_blank.svm")
GZ = os.path.join(DATA, "rcv1_small_500.libsvm.gz")


def train(tmp_path, name, inputs, **kw):
    overrides = kw.pop("overrides", {})
    summary = api.train(inputs, tmp_path / name, overrides=overrides, **kw)
    model, log = checkpoint.load(tmp_path / name)
    return model, log, summary


# ---------------------------------------------------------------------------------------
# exactness
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("settings", [
    {"passes": 2, "validation": A9A_T},
    {"passes": 2, "dtype": "float32", "l1": 0.5, "merge_every": 300},
    # (ids >= 2**8 hashed: aliases; text rows keep their order in parallel runs, and with a
    # --shuffle-buffer of 1 in embedded ones)
    {"shuffle": True, "seed": 3, "shuffle_buffer": 1, "l2_shrinkage": 0.1, "bits": 8},
])
def test_one_partition_is_the_embedded_run_bit_for_bit(tmp_path, settings):
    inputs = [A9A, BLANK]
    embedded = {k: v for k, v in settings.items() if k != "merge_every"}
    m0, log0, s0 = train(tmp_path, "embedded", inputs, overrides=embedded)
    m1, log1, s1 = train(tmp_path, "k1", inputs, overrides={**settings, "partitions": 1})
    assert m1.state == m0.state
    assert log1.history == log0.history and log1.evals == log0.evals
    assert [(c.examples, c.train_logloss) for c in log1.curve] == [(c.examples, c.train_logloss) for c in log0.curve]
    assert s1["features"] == s0["features"] and m1.config.partitions == 1


def test_threads_are_deterministic_and_mix_the_partitions(tmp_path):
    a, log_a, _ = train(tmp_path, "a", [A9A], overrides={"passes": 2}, threads=2)
    b, log_b, _ = train(tmp_path, "b", [A9A], overrides={"passes": 2, "partitions": 2})  # (one thread)
    e, _, _ = train(tmp_path, "e", [A9A], overrides={"passes": 2})
    assert a.config.partitions == 2 and a.state == b.state and log_a.history == log_b.history
    assert a.state != e.state
    assert log_a.history[0].examples == 2000  # every row, once per pass


def test_partitions_that_keep_their_state_between_rounds_give_the_copying_model(tmp_path, monkeypatch):
    """With no more partitions than threads, a partition keeps its trained state and gets
    the merged rows written into it (a Delta) instead of a copy of the state per round."""
    url = os.path.join(DATA, "url_day0_mini.svm")  # (ids hashed into 2**16 slots: collisions, growth)
    settings = {"partitions": 3, "passes": 2, "merge_every": 20, "bits": 16, "validation": url}
    applied = []
    apply = parallel.Delta.apply
    monkeypatch.setattr(parallel.Delta, "apply", lambda self, *a: applied.append(1) or apply(self, *a))
    kept, kept_log, _ = train(tmp_path, "kept", [url], overrides=settings, threads=3)
    assert len(applied) >= 2 * 3 * 3  # (2 passes x 3 partitions x at least 3 rounds after the first)
    n = len(applied)
    copied, copied_log, _ = train(tmp_path, "copied", [url], overrides=settings, threads=2)  # (3 > 2: copies)
    assert len(applied) == n
    assert kept.state == copied.state and kept_log.history == copied_log.history and kept_log.evals == copied_log.evals


def test_k_partitions_stay_close_to_the_embedded_run(tmp_path):
    """Held-out log loss on a9a within 0.5 % of the embedded run (K=2, `sum` merged every
    100 rows per partition: docs/parallel.md has the table for other settings)."""
    train(tmp_path, "e", [A9A])
    base = api.evaluate(tmp_path / "e", [A9A_T])["logloss"]
    train(tmp_path, "k2", [A9A], overrides={"partitions": 2, "merge": "sum", "merge_every": 100}, threads=2)
    ll = api.evaluate(tmp_path / "k2", [A9A_T])["logloss"]
    assert ll != base and abs(ll / base - 1) < 0.005


# ---------------------------------------------------------------------------------------
# partitions
# ---------------------------------------------------------------------------------------

def _rows(batches):
    out = []
    for b in batches:
        for r in range(b.rows):
            lo, hi = b.indptr[r], b.indptr[r + 1]
            out.append((b.labels[r], tuple(b.ids[lo:hi]), tuple(b.values[lo:hi])))
    return out


def _whole(paths, config):
    return [row for p in paths for row in _rows(open_batches(p, config))]


@pytest.mark.parametrize("paths,k,every", [([BLANK], 3, None), ([BLANK], 7, 61), ([A9A, BLANK], 5, 250),
                                           ([A9A, BLANK, A9A_T], 2, None), ([GZ], 2, 100)])
def test_partitions_hold_every_row_once_in_order(paths, k, every):
    config = Config()
    parts = plan(paths, list(range(len(paths))), config, k)
    assert len(parts) == k
    got = []
    for pieces in parts:
        pos = Position.start(pieces)
        while pos.piece < len(pieces):  # rounds of `every` rows
            rows = _rows(read_partition(pieces, config, pos, max_rows=every, batch_rows=100))
            assert every is None or len(rows) <= every
            got += rows
        if every:  # a resume skips the rows consumed: the same rows follow
            again = _rows(read_partition(pieces, config, Position.start(pieces, skip=every), batch_rows=64))
            first = _rows(read_partition(pieces, config, Position.start(pieces), batch_rows=64))
            assert again == first[every:]
    assert got == _whole(paths, config)
    if len(paths) == 1 and paths[0] != GZ:
        assert all(parts) and any(p.stop is not None for pieces in parts for p in pieces)  # cut inside


def test_parquet_partitions_are_row_groups(tmp_path):
    config = Config()
    out = str(tmp_path / "a9a.parquet")
    convert_to_parquet(open_batches(A9A, config), out, row_group_rows=300)
    parts = plan([out], [0], config, 3)
    cuts = [p.start for pieces in parts for p in pieces]
    assert all(c % 300 == 0 for c in cuts) and len(set(cuts)) == 3
    got = [row for pieces in parts for row in _rows(read_partition(pieces, config, Position.start(pieces),
                                                                   max_rows=None, batch_rows=128))]
    assert got == _whole([out], config)


def test_an_unsplittable_input_leaves_a_partition_empty_and_says_so(tmp_path):
    warnings = []

    class R(api.Reporter):
        def warn(self, message):
            warnings.append(message)

    m, _, s = train(tmp_path, "gz", [GZ], overrides={"partitions": 2}, reporter=R())
    e, _, _ = train(tmp_path, "e", [GZ])
    assert m.state == e.state and any("1 of 2 partitions are empty" in w for w in warnings)


def test_shuffle_says_which_files_keep_their_row_order_in_parallel(tmp_path):
    pq = str(tmp_path / "a9a.parquet")
    convert_to_parquet(open_batches(A9A, Config()), pq, row_group_rows=300)

    class R(api.Reporter):
        said = []

        def warn(self, message):
            self.said.append(message)

    for i, (inputs, kept) in enumerate((([A9A, pq], [A9A]), ([pq, A9A_T], [A9A_T]), ([pq], [pq]))):
        r = R()
        r.said = []
        train(tmp_path, f"s{i}", inputs, overrides={"partitions": 2, "shuffle": True}, reporter=r)
        said = [w for w in r.said if "--shuffle" in w]
        assert len(said) == 1 and all(p in said[0] for p in kept), (inputs, r.said)
    r = R()
    r.said = []
    train(tmp_path, "no-shuffle", [A9A], overrides={"partitions": 2}, reporter=r)
    assert not [w for w in r.said if "--shuffle" in w]


def test_a_bad_line_is_named_as_the_embedded_run_names_it(tmp_path):
    lines = open(A9A).read().splitlines()
    lines[1500] = "1 3:x"
    bad = tmp_path / "bad.svm"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as embedded:
        api.train([str(bad)], tmp_path / "e")
    with pytest.raises(DataError) as par:
        api.train([str(bad)], tmp_path / "p", threads=2)
    assert str(par.value) == str(embedded.value) and ":1501:" in str(par.value)


# ---------------------------------------------------------------------------------------
# the merge
# ---------------------------------------------------------------------------------------

def reference_merge(base, fresh, parts, rule, dtype):
    """docs/parallel.md, row by row in plain Python: parts = [(slots, rows)] in partition order."""
    size = max([len(base)] + [int(s.max()) + 1 for s, _ in parts if len(s)])
    out = [list(map(float, base[i])) if i < len(base) else list(map(float, fresh)) for i in range(size)]
    touched = {}
    for slots, rows in parts:
        for s, row in zip(slots, rows):
            touched.setdefault(int(s), []).append([float(x) for x in row])
    for s, rs in touched.items():
        if len(rs) == 1:
            out[s] = rs[0]
            continue
        b = [float(x) for x in (base[s] if s < len(base) else fresh)]
        dn = [r[1] - b[1] for r in rs]
        total = 0.0
        for d in dn:
            total += d
        weighted = rule == "weighted" and total > 0
        new = []
        for c in range(2):
            acc = 0.0
            for r, d_n in zip(rs, dn):
                acc += (d_n / total) * (r[c] - b[c]) if weighted else (r[c] - b[c])
            if rule == "avg" or (rule == "weighted" and not weighted):
                acc = acc / len(rs)
            new.append(b[c] + acc)
        out[s] = new
    return np.array(out, dtype=dtype)


@pytest.mark.parametrize("rule", ["weighted", "avg", "sum"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_merge_rules_match_a_plain_python_transcription(rule, dtype):
    rng = np.random.default_rng(7)
    config = Config(merge=rule, dtype=dtype)
    base = np.column_stack([rng.normal(size=40), rng.exponential(size=40)]).astype(dtype)
    fresh = np.zeros(2, dtype)
    parts = []
    for _ in range(3):
        slots = np.sort(rng.choice(48, size=20, replace=False)).astype(np.int64)  # (some past the table)
        start = np.array([base[s] if s < 40 else fresh for s in slots], np.float64)
        rows = start + np.column_stack([rng.normal(size=20), rng.exponential(size=20)])
        rows[:3, 1] = start[:3, 1]  # n did not move, z did (shrinkage, or g^2 lost to rounding)
        parts.append((slots, rows.astype(dtype)))
    # a coordinate one partition changed, where re-adding its change would not give its value
    only = 35
    z0 = float(np.asarray(0.1, dtype))
    cands = np.random.default_rng(0).normal(size=1000).astype(dtype)  # (float32: re-adding is exact in float64)
    zk = next((x for x in cands if z0 + (float(x) - z0) != float(x)), cands[0])
    base[only] = (z0, 1.0)
    parts = [(s[s != only], r[s != only]) for s, r in parts]
    parts[0] = (np.append(parts[0][0], only), np.vstack([parts[0][1], [[zk, 2.0]]]).astype(dtype))
    results = [parallel.Result(position=Position(), slots=s, rows=r, bias=np.zeros(2, dtype),
                               size=int(s.max()) + 1, aliases=None, alias_overflow=False) for s, r in parts]
    state = State(base.copy(), np.zeros(2, dtype), np.zeros(4), np.empty((0, 2), np.int64))
    merged = parallel.merge_states(state, results, config)
    want = reference_merge(base, fresh, parts, rule, dtype)
    assert merged.table.dtype == np.dtype(dtype)
    assert np.array_equal(merged.table.view(np.uint8), want.view(np.uint8))
    assert merged.table[only, 0] == zk


# ---------------------------------------------------------------------------------------
# refusals, settings, the command line
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,words", [
    ({"overrides": {"batch_size": 32}, "threads": 2}, "no merge rule"),
    ({"overrides": {"optimizer": "novograd", "batch_size": 8}, "threads": 2}, "no merge rule"),
    ({"overrides": {"holdout_every": 10}, "threads": 2}, "--validation file"),
    ({"threads": 2, "cluster": "local:2"}, "not both"),
    ({"threads": 0}, "--threads must be >= 1"),
    ({"cluster": "spark://x"}, "--cluster must be"),
    ({"cluster": "tcp://127.0.0.1:8786"}, "give --partitions K"),
    ({"overrides": {"merge_every": 100}}, "--merge-every needs"),
])
def test_what_has_no_rule_is_refused_in_one_line(tmp_path, kw, words):
    with pytest.raises(ConfigError) as e:
        api.train([A9A], tmp_path / "m", **kw)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_resume_keeps_k_and_refuses_to_add_it(tmp_path):
    api.train([A9A], tmp_path / "e")
    with pytest.raises(ConfigError, match="trained in one process .without --threads"):
        api.train([A9A_T], tmp_path / "e", resume=True, threads=2)
    api.train([A9A], tmp_path / "p", threads=2)
    with pytest.raises(ConfigError, match="cannot change partitions"):
        api.train([A9A_T], tmp_path / "p", resume=True, overrides={"partitions": 3})
    api.train([A9A_T], tmp_path / "p", resume=True)  # K = 2 from the model, on one thread
    assert checkpoint.load(tmp_path / "p")[0].config.partitions == 2


def test_a_killed_driver_resumes_from_its_last_merged_checkpoint(tmp_path, monkeypatch):
    settings = {"partitions": 2, "merge_every": 200, "checkpoint_every": 400, "passes": 2}
    whole, whole_log, _ = train(tmp_path, "whole", [A9A, BLANK], overrides=settings)
    save, calls = checkpoint.save, []

    def dies_after_third(*a, **kw):
        out = save(*a, **kw)
        calls.append(out)
        if len(calls) == 3:
            raise KeyboardInterrupt  # (the driver killed right after a checkpoint)
        return out

    monkeypatch.setattr(checkpoint, "save", dies_after_third)
    with pytest.raises(KeyboardInterrupt):
        api.train([A9A, BLANK], tmp_path / "cut", overrides=settings, threads=2)
    monkeypatch.setattr(checkpoint, "save", save)
    api.train([A9A, BLANK], tmp_path / "cut", resume=True, threads=2)
    model, log = checkpoint.load(tmp_path / "cut")
    assert model.state == whole.state and log.history == whole_log.history


def test_cli_threads_records_k(tmp_path):
    r = CliRunner().invoke(main, ["train", A9A, "-m", str(tmp_path / "m"), "--threads", "2", "--merge", "avg",
                                  "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["examples"] == 2000
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["partitions"] == 2 and cfg["merge"] == "avg" and cfg["merge_every"] == 0
    r = CliRunner().invoke(main, ["train", A9A, "-m", str(tmp_path / "n"), "--threads", "2", "--batch-size", "8"])
    assert r.exit_code == 2 and "no merge rule" in r.output


# ---------------------------------------------------------------------------------------
# Dask distributed (optional extra)
# ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") \
            as cluster, distributed.Client(cluster) as c:
        yield c


def test_threads_and_dask_give_the_same_model(tmp_path, client):
    settings = {"partitions": 3, "passes": 2, "merge_every": 150, "validation": A9A_T}
    t, t_log, _ = train(tmp_path, "threads", [A9A, BLANK], overrides=settings, threads=2)
    d, d_log, _ = train(tmp_path, "dask", [A9A, BLANK], overrides=settings, cluster=client)
    assert t.state == d.state and t_log.history == d_log.history and t_log.evals == d_log.evals


def test_dask_rounds_send_the_changed_rows_not_the_state(tmp_path, client, monkeypatch):
    """Within a pass, a round sends the workers the rows the last merge changed (a Delta);
    the whole state goes at a pass's start. The model is the threads' model, bit for bit."""
    seen = []
    close = parallel.DaskCluster.close
    monkeypatch.setattr(parallel.DaskCluster, "close", lambda self: (seen.append((self.chains, self.sent)), close(self)))
    url = os.path.join(DATA, "url_day0_mini.svm")  # (200 rows of ~115 ids < 2**22: hashed into 2**18 slots)
    settings = {"partitions": 2, "passes": 2, "merge_every": 20, "bits": 18}
    t, t_log, _ = train(tmp_path, "threads", [url], overrides=settings, threads=2)
    d, d_log, _ = train(tmp_path, "dask", [url], overrides=settings, cluster=client)
    assert t.state == d.state and t_log.history == d_log.history
    (chains, sent), = seen
    whole = d.state.table.nbytes
    assert whole == (1 << 18) * 16 and chains == 2 and len(sent) >= 10  # (a chain per pass, 5+ rounds in each)
    assert sent[len(sent) // 2] > whole  # (pass 2 starts with the whole state; pass 1 with a table not grown yet)
    assert max(sent[1:len(sent) // 2] + sent[len(sent) // 2 + 1:]) < whole // 10  # (the rest: deltas)


def test_two_runs_on_one_cluster_at_once_keep_their_states_apart(tmp_path, client):
    """Workers keep the state of the last round they ran, named by the run: two runs
    sharing the workers at the same time each get their own model."""
    import threading

    url = os.path.join(DATA, "url_day0_mini.svm")
    runs = {"a": {"partitions": 2, "merge_every": 20, "bits": 18, "passes": 2},
            "b": {"partitions": 2, "merge_every": 30, "bits": 18, "passes": 2, "alpha": 0.3}}
    errors = []

    def dask_run(name):
        try:
            api.train([url], tmp_path / f"dask-{name}", overrides=runs[name], cluster=client)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=dask_run, args=(n,)) for n in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    for name, settings in runs.items():
        expected, _, _ = train(tmp_path, f"threads-{name}", [url], overrides=settings, threads=2)
        assert checkpoint.load(tmp_path / f"dask-{name}")[0].state == expected.state, name


def test_a_scheduler_that_cannot_be_reached_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 1)
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s"):
        api.train([A9A], tmp_path / "m", cluster="tcp://127.0.0.1:9", overrides={"partitions": 2})


def test_worker_processes_give_the_threads_model(tmp_path):
    """A real LocalCluster (two worker processes, pickles between them)."""
    pytest.importorskip("distributed")
    t, _, _ = train(tmp_path, "threads", [A9A], overrides={"merge_every": 500}, threads=2)
    d, _, _ = train(tmp_path, "procs", [A9A], overrides={"merge_every": 500}, cluster="local:2")
    assert d.config.partitions == 2 and t.state == d.state


# ---------------------------------------------------------------------------------------
# faults, with real processes
# ---------------------------------------------------------------------------------------

def test_touched_slots_are_the_changed_slots():
    """Touched (what a partition hands back) against State.changed_slots (the whole table
    compared): the same slots whenever every changed slot was marked, past the table too."""
    from ftrl_cli.model import fresh_row

    rng = np.random.default_rng(5)
    for dtype, bits in (("float64", 6), ("float32", 6), ("float64", 12)):
        config = Config(dtype=dtype, bits=bits, initial_accumulator=0.5)
        fresh = fresh_row(config)
        base = State(np.tile(fresh, (40, 1)), np.zeros(2, dtype), np.zeros(4), np.empty((0, 2), np.int64))
        base.table[::3] = rng.normal(size=(14, 2))
        ids = rng.integers(0, 2 * (1 << bits), size=300)  # (some >= cap: hashed)
        big = ids[ids >= (1 << bits)]
        hashed = np.empty_like(big)
        parallel.slots_of(big, 1 << bits, hashed)
        used = np.unique(np.concatenate([ids[ids < (1 << bits)], hashed]))
        after = State(np.tile(fresh, (1 << bits, 1)), base.bias, base.layer, base.aliases)
        after.table[:40] = base.table
        write = rng.choice(used, size=len(used) // 2, replace=False)
        after.table[write] = rng.normal(size=(len(write), 2))
        for s in write[:3]:  # (written back with the same bits: unchanged)
            after.table[s] = base.table[s] if s < 40 else fresh
        after.table[write[3], 0] = -0.0  # (== 0.0, other bits: changed)
        touched = parallel.Touched(bits)
        for chunk in np.array_split(ids, 7):
            touched.add(chunk, int(chunk.max()))
        want = after.changed_slots(base, fresh)
        assert len(want) and np.array_equal(touched.changed(after, base, fresh), want)


DRIVER = """
import os, signal, sys
from ftrl_cli import checkpoint
from ftrl_cli.cli import main
save, calls = checkpoint.save, []
def save_then_die(*a, **kw):
    out = save(*a, **kw)
    calls.append(out)
    if len(calls) == int(os.environ["KILL_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)  # (no handler, no cleanup: a real kill -9)
    return out
checkpoint.save = save_then_die
main(sys.argv[1:])
"""


def test_a_driver_killed_by_sigkill_resumes_bit_identical(tmp_path):
    """A real `ftrl train --threads 2` process killed with SIGKILL right after its 3rd
    checkpoint (of 6), then `--resume`: the model of an uninterrupted run."""
    args = [A9A, BLANK, "--threads", "2", "--merge-every", "200", "--checkpoint-every", "400", "--passes", "2",
            "-q"]
    whole, whole_log, _ = train(tmp_path, "whole", [A9A, BLANK], threads=2, overrides={
        "merge_every": 200, "checkpoint_every": 400, "passes": 2})
    d = str(tmp_path / "cut")
    env = {**os.environ, "KILL_AFTER": "3"}
    r = subprocess.run([sys.executable, "-c", DRIVER, "train", *args, "-m", d], env=env, capture_output=True,
                       timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    _, meta = checkpoint.load(d, resume=True)
    assert not meta.finished and 0 < meta.examples_seen < 2 * 3000
    r = subprocess.run([sys.executable, "-m", "ftrl_cli", "train", A9A, BLANK, "-m", d, "--resume", "--threads",
                        "2", "-q"], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    model, log = checkpoint.load(d)
    assert model.state == whole.state and log.history == whole_log.history


def test_cli_unreachable_scheduler_is_one_line_within_the_timeout(tmp_path):
    pytest.importorskip("distributed")
    code = ("import sys, time; from ftrl_cli import parallel; from ftrl_cli.cli import main\n"
            "parallel.CONNECT_TIMEOUT = 2\n"
            "t = time.perf_counter()\n"
            "try: main(sys.argv[1:])\n"
            "except SystemExit as e: print(f'{time.perf_counter() - t:.2f}'); sys.exit(e.code)")
    r = subprocess.run([sys.executable, "-c", code, "train", A9A, "-m", str(tmp_path / "m"), "--cluster",
                        "tcp://127.0.0.1:9", "--partitions", "2"], capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s" in lines[0]
    assert float(r.stdout) < 2 + 3  # (the connect's timeout, plus importing Dask)


KILL_HOOK = """
# Loaded by each test worker (dask worker --preload): kills its own process (SIGKILL) when
# a control file in $FTRL_TEST_CONTROL names the partition it is given.
import os, signal
from ftrl_cli import parallel

_train = parallel.__dict__.setdefault("_unhooked_train_partition", parallel.train_partition)  # (loaded twice)
CONTROL = os.environ["FTRL_TEST_CONTROL"]

def _named(kind, task):
    try:
        with open(os.path.join(CONTROL, kind)) as f:
            return f.read() in task.name
    except FileNotFoundError:
        return False

def train_partition(task, state):
    mid_run = task.position.offset > task.pieces[0].start  # (not its first round)
    if _named("always", task) or (_named("once", task) and mid_run and _first("once.done")):
        os.kill(os.getpid(), signal.SIGKILL)
    return _train(task, state)

def _first(marker):
    try:
        os.close(os.open(os.path.join(CONTROL, marker), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False

parallel.train_partition = train_partition  # (tasks name it by reference: the worker's is this)
"""


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1 (Numba's cache warmed
    first, so that a worker starts in about a second); the scheduler allows one death per
    task (distributed.scheduler.allowed-failures = 1)."""
    distributed = pytest.importorskip("distributed")
    d = tmp_path_factory.mktemp("cluster")
    api.train([A9A], d / "warm", threads=2)  # (compiles every kernel a partition uses into the cache)
    control = d / "control"
    control.mkdir()
    hook = d / "ftrl_kill_hook.py"
    hook.write_text(KILL_HOOK)
    file = d / "scheduler.json"
    env = {**os.environ, "FTRL_TEST_CONTROL": str(control), "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}
    dask = [sys.executable, "-m", "dask"]
    log = open(d / "cluster.log", "wb")
    procs = [subprocess.Popen(dask + ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                      "--scheduler-file", str(file)], env=env, stdout=log, stderr=log,
                              start_new_session=True)]
    try:
        procs += [subprocess.Popen(dask + ["worker", "--scheduler-file", str(file), "--host", "127.0.0.1",
                                           "--nthreads", "1", "--no-dashboard", "--local-directory", str(d),
                                           "--preload", str(hook)], env=env, stdout=log, stderr=log,
                                          start_new_session=True)
                  for _ in range(2)]
        deadline, address = time.time() + 60, None
        while address is None and time.time() < deadline:  # (the file may be seen half written)
            try:
                address = json.loads(file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.05)
        assert address is not None, (d / "cluster.log").read_text()[-2000:]
        with distributed.Client(address, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
            yield address, control, c
    finally:  # (each in a process group of its own: the nanny's worker process goes too)
        for p in procs:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        log.close()


def test_a_killed_worker_s_partition_runs_again_and_the_model_is_unchanged(tmp_path, real_cluster):
    address, control, c = real_cluster
    c.wait_for_workers(2, timeout=60)
    settings = {"partitions": 2, "merge_every": 250, "passes": 2, "validation": A9A_T}
    t, t_log, _ = train(tmp_path, "threads", [A9A], overrides=settings, threads=2)
    (control / "once").write_text("[partition 2 of 2]")
    try:  # (the CLI in a process of its own: a hang would fail the test, not stall the suite)
        r = subprocess.run([sys.executable, "-m", "ftrl_cli", "train", A9A, "-m", str(tmp_path / "dask"),
                            "--cluster", address, "--partitions", "2", "--merge-every", "250", "--passes", "2",
                            "--validation", A9A_T, "-q"], capture_output=True, text=True, timeout=120)
    finally:
        (control / "once").unlink()
    assert r.returncode == 0, r.stderr
    assert (control / "once.done").exists()  # (a worker did die, mid-run)
    d, d_log = checkpoint.load(tmp_path / "dask")
    assert d.state == t.state and d_log.history == t_log.history and d_log.evals == t_log.evals


def test_a_worker_that_dies_on_every_try_is_a_one_line_error(tmp_path, real_cluster):
    address, control, c = real_cluster
    c.wait_for_workers(2, timeout=60)
    (control / "always").write_text("[partition 1 of 2]")
    try:
        r = subprocess.run([sys.executable, "-m", "ftrl_cli", "train", A9A, "-m", str(tmp_path / "m"), "--cluster",
                            address, "--partitions", "2"], capture_output=True, text=True, timeout=120)
    finally:
        (control / "always").unlink()
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    # (the scheduler says which task killed its workers, unless the round's scattered state
    # died with them first: then the round's unfinished partitions are named)
    assert ("[partition 1 of 2]: the Dask worker running it died 2 times" in lines[0]
            or re.match(r"ftrl: error: .*\[partition 1 of 2\].*: the Dask workers running this round died and "
                        r"took its state with them, 3 times;", lines[0])), lines[0]


class _LosingClient:
    """A stand-in Dask client whose first `lose` rounds end as a scheduler that lost the
    scattered state ends them: every unfinished task cancelled."""

    class _Future:
        def __init__(self, key, value):
            self.key, self.value, self.status = key, value, "pending"

        def release(self):
            self.released = True

    def __init__(self, lose):
        self.lose, self.rounds, self.scheduler = lose, 0, type("S", (), {"address": "fake://"})()

    def scatter(self, state, **kw):
        return self._Future("state", state)

    def submit(self, fn, task, *args, **kw):  # (Dask passes the values of the futures among args)
        values = [[f.value for f in a] if isinstance(a, list) else getattr(a, "value", a) for a in args]
        return self._Future(task.name, (fn, task, values))

    def gather(self, futures):
        from distributed.client import FutureCancelledError

        self.rounds += 1
        if self.rounds <= self.lose:
            futures[0].status = "finished"  # (one done before the state went)
            raise FutureCancelledError(futures[1].key, "already forgotten")
        return [fn(t, *args) for fn, t, args in (f.value for f in futures)]


@pytest.mark.parametrize("lose", [1, 2])
def test_a_round_whose_state_died_with_its_workers_runs_again(tmp_path, lose):
    pytest.importorskip("distributed")
    settings = {"partitions": 2, "merge_every": 250, "passes": 1}
    t, t_log, _ = train(tmp_path, "threads", [A9A], overrides=settings, threads=2)
    fake = _LosingClient(lose)
    d, d_log, _ = train(tmp_path, "dask", [A9A], overrides=settings, cluster=fake)
    assert fake.rounds > lose and d.state == t.state and d_log.history == t_log.history


def test_a_round_that_loses_its_state_on_every_try_is_one_error_naming_the_unfinished(tmp_path):
    pytest.importorskip("distributed")
    with pytest.raises(DataError) as e:
        train(tmp_path, "dask", [A9A], overrides={"partitions": 2}, cluster=_LosingClient(10 ** 9))
    assert re.match(r"\S+ \[partition 2 of 2\]: the Dask workers running this round died and took its "
                                   "state with them, 3 times;", str(e.value))
