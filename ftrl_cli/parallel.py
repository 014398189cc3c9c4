"""Data-parallel training by iterative parameter mixing (docs/parallel.md).

    model = run_parallel(trainer, sources, threads=2)            # or cluster="local:2"

The inputs are cut into K = config.partitions partitions (readers/partition.py; K is a
setting of the model, not the number of workers). A round: every partition with rows
left trains its next rows (all of them, or config.merge_every) from the current global
state, with the unchanged engine and kernel, and hands back only the rows of the table
it changed; the driver merges them (kernels/merge.py, rule config.merge), in partition
order, into the next global state. Who runs a partition does not matter: `threads`
(threads of this process; the kernels release the GIL) and `cluster` (Dask distributed)
run the same function on the same inputs, so they give the same model, bit for bit.
One partition is the embedded run, bit for bit.

The driver keeps the global state and the run's record: it validates, checkpoints (after
a round; a run resumes from rows-per-partition consumed, run.offset) and reports rows
across all workers. Dask is imported only when a cluster is asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import signal
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass, field

import numpy as np

from . import sets
from .config import Config
from .engine import Source, Trainer, file_order, start_run
from .errors import ConfigError, DataError, Interrupted
from .kernels import slots_of
from .kernels.merge import MERGE_AVG, MERGE_SUM, MERGE_WEIGHTED, changed_marked, mark_ids, merge_rows
from .model import MAX_ALIASES, Model, State, fresh_row
from .progress import Reporter
from .readers.partition import Piece, Position, plan, read_partition
from .readers.stream import read_once
from .records import CurvePoint, InputId

RULES = {"weighted": MERGE_WEIGHTED, "avg": MERGE_AVG, "sum": MERGE_SUM}
CONNECT_TIMEOUT = 10  # seconds to reach a Dask scheduler
RETRIES = 2  # a partition whose worker died runs again, twice (local:N's allowed-failures; whole rounds)
FIRST_POINT = 128
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx)://\S+$")


# ---------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------

def settle_config(config: Config, *, threads=None, cluster=None, resume: bool = False) -> Config:
    """The config of a parallel run: K defaults to the workers asked for on a new model
    (a setting from then on); refuses what has no merge rule."""
    if threads is not None and cluster is not None:
        raise ConfigError("give --threads or --cluster, not both")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    workers = threads if threads is not None else (_cluster_workers(cluster) if cluster is not None else None)
    if not config.partitions and workers is not None:
        if resume:
            raise ConfigError("this model was trained in one process (without --threads, --cluster or "
                              "--partitions) and --resume cannot change that; train a new model with "
                              "--partitions K")
        if workers == 0:
            raise ConfigError(f"--cluster {cluster}: give --partitions K as well (K is a setting of the "
                              "model, e.g. the number of workers)")
        config = config.replace(partitions=workers)
    if not config.partitions:
        if config.merge_every:
            raise ConfigError("--merge-every needs parallel training: give --partitions K, --threads N or "
                              "--cluster")
        return config
    if not config.online:
        raise ConfigError("parallel training (--partitions, --threads, --cluster) merges online FTRL states "
                          "(z, n); the mini-batch optimizers (--batch-size > 1, --optimizer novograd, EMA, "
                          "clipping, schedules, Keras/MXNet configs) have no merge rule: train them in one "
                          "process (without --threads, --cluster or --partitions)")
    if config.holdout_every:
        raise ConfigError("--holdout-every holds out rows by their place in one stream, which K partitions "
                          "do not have; give a --validation file instead")
    return config


def _cluster_workers(cluster) -> int:
    """Workers a --cluster value names: N of local:N; 0 for a scheduler address or a Client."""
    if not isinstance(cluster, str):
        return 0  # (a distributed.Client given by a Python caller)
    m = re.fullmatch(r"local(?::(\d+))?", cluster)
    if m:
        n = int(m.group(1)) if m.group(1) else (os.cpu_count() or 1)
        if n < 1:
            raise ConfigError(f"--cluster {cluster}: a local cluster needs at least one worker")
        return n
    if _ADDRESS.match(cluster):
        return 0
    raise ConfigError(f"--cluster must be local, local:N or a scheduler address such as tcp://HOST:8786, "
                      f"got {cluster!r}")


def worker_config(config: Config) -> Config:
    """What a partition trains with: one pass over its rows; the driver validates and
    checkpoints."""
    return config.replace(passes=1, validation=None, validation_every=0, holdout_every=0, early_stop=0,
                          checkpoint_every=0, checkpoint_seconds=0.0, shuffle=False, partitions=0,
                          merge_every=0)


# ---------------------------------------------------------------------------------------
# a partition's round (runs on a thread or a Dask worker)
# ---------------------------------------------------------------------------------------

@dataclass
class Task:
    config: Config  # worker_config(...)
    name: str  # for messages: the partition
    pieces: list  # [Piece]
    position: Position
    max_rows: int | None  # rows of this round (None: to the partition's end)
    batch_rows: int
    shuffle: tuple | None  # (seed, pass) when whole Parquet files shuffle their row groups
    sums: tuple | None  # (loss, weight, positives) to continue from (the first partition)
    curve: tuple | None  # (examples_seen, passes_done, [CurvePoint]) with one partition


@dataclass
class Result:
    position: Position
    slots: np.ndarray  # changed rows of the table
    rows: np.ndarray
    bias: np.ndarray
    size: int  # the table's rows after training (it grows)
    aliases: np.ndarray | None  # None: unchanged
    alias_overflow: bool
    examples: int = 0
    sums: tuple = (0.0, 0.0, 0.0)
    features: int = 0
    bad_lines: int = 0
    warnings: list = field(default_factory=list)
    curve: list = field(default_factory=list)


class _Collect(Reporter):
    """A worker's reporter: warnings go back to the driver, in order."""

    def __init__(self, out):
        self.out = out

    def warn(self, message):
        self.out.append(message)


def train_partition(task: Task, state: State) -> Result:
    """Train one partition's round from `state` (not modified) with the engine."""
    return _train(task, state, state.copy())[0]


def _train(task: Task, state: State, own: State) -> tuple:
    """(Result, the trained State): train from `own`, a State equal to `state` that this
    partition may change (it trains in place), and hand back the rows it changed."""
    c = task.config
    model = Model(c, own)
    log = start_run(None, [InputId(task.name, None)], c)
    if task.sums is not None:
        log.run.loss_sum, log.run.weight_sum, log.run.pos_sum = task.sums
    if task.curve is not None:
        log.examples_seen, log.passes_done, curve = task.curve
        log.curve = list(curve)
    warnings = []
    trainer = Trainer(c, model, log, reporter=_Collect(warnings), batch_rows=task.batch_rows)
    pos = dataclasses.replace(task.position)
    seen = {"rows": 0, "done": False}
    touched = Touched(c.bits)

    def open_(on_bad=None, **_):
        seeds = None if task.shuffle is None else (lambda piece: (*task.shuffle, piece.index))
        for b in read_partition(task.pieces, c, pos, max_rows=task.max_rows, batch_rows=trainer.rows_per_batch,
                                on_bad=on_bad, shuffle_seeds=seeds):
            seen["rows"] += b.rows
            touched.add(b.ids, b.max_id)
            yield b
        r = log.run  # every batch is learned: the sums before the pass closes them
        seen.update(done=True, sums=(r.loss_sum, r.weight_sum, r.pos_sum))

    start = (log.examples_seen, len(log.curve), log.bad_lines)
    try:
        trainer.run([Source(task.name, None, open_)])
    except DataError:
        if not (seen["done"] and seen["rows"] == 0):
            raise
    out = trainer.model.state
    slots = touched.changed(out, state, fresh_row(c))
    same_aliases = out.aliases.shape == state.aliases.shape and np.array_equal(out.aliases, state.aliases)
    return Result(position=pos, slots=slots, rows=out.table[slots], bias=out.bias.copy(), size=len(out.table),
                  aliases=None if same_aliases else out.aliases.copy(), alias_overflow=out.alias_overflow,
                  examples=log.examples_seen - start[0] if seen["rows"] else 0,
                  sums=seen.get("sums", task.sums or (0.0, 0.0, 0.0)), features=trainer.features,
                  bad_lines=log.bad_lines - start[2], warnings=warnings,
                  curve=log.curve[start[1]:] if task.curve is not None else []), out


class Touched:
    """The slots a partition's rows use, marked as its batches go by: only those rows can
    change (the online kernel writes the slots of a row's ids and nothing else), so only
    they are compared with the start state. The same slots as State.changed_slots, at a
    cost that follows the rows of a round rather than the size of the table."""

    def __init__(self, bits: int):
        self.cap = 1 << bits
        self.mark = np.zeros(0, np.uint8)

    def add(self, ids, max_id: int) -> None:
        if max_id < 0:
            return
        need = self.cap if max_id >= self.cap else max_id + 1
        if need > len(self.mark):  # (grows as the table does; never past cap)
            mark = np.zeros(min(self.cap, max(need, 2 * len(self.mark))), np.uint8)
            mark[:len(self.mark)] = self.mark
            self.mark = mark
        if mark_ids(ids, self.cap, self.mark):
            hashed = ids[ids >= self.cap]
            slots = np.empty_like(hashed)
            slots_of(hashed, self.cap, slots)
            self.mark[slots] = 1

    def changed(self, state: State, base: State, fresh: np.ndarray) -> np.ndarray:
        """The marked slots whose row of state differs from base's, bit for bit (past base's
        end: from fresh, the row it had before the table grew)."""
        t = state.table
        if t.dtype != base.table.dtype or t.shape[1] != base.table.shape[1] or len(t) < len(base.table):
            return state.changed_slots(base, fresh)  # (not a table this run grew from base)
        bits = np.dtype(f"i{t.dtype.itemsize}")
        out = np.empty(min(len(t), len(self.mark)), np.int64)
        m = changed_marked(np.ascontiguousarray(t).view(bits), np.ascontiguousarray(base.table).view(bits),
                           np.ascontiguousarray(fresh, dtype=t.dtype).view(bits), self.mark, out)
        return out[:m]


# ---------------------------------------------------------------------------------------
# keeping workers' copies of the state in step (Dask): the changed rows, not the table
# ---------------------------------------------------------------------------------------

@dataclass
class Delta:
    """What a merge changed: the global state's rows at `slots` (every slot a partition
    changed), its size, and its small parts whole. Applied in order to the state of the
    round before, it gives the state of this round, bit for bit."""

    slots: np.ndarray
    rows: np.ndarray
    size: int
    bias: np.ndarray
    layer: np.ndarray
    aliases: np.ndarray
    iterations: int
    alias_overflow: bool

    @classmethod
    def of(cls, state: State, slots: np.ndarray) -> Delta:
        return cls(slots, state.table[slots], len(state.table), state.bias.copy(), state.layer.copy(),
                   state.aliases.copy(), state.iterations, state.alias_overflow)

    @property
    def nbytes(self) -> int:
        return int(self.slots.nbytes + self.rows.nbytes + self.bias.nbytes + self.layer.nbytes + self.aliases.nbytes)

    def apply(self, state: State, fresh: np.ndarray) -> State:
        table = state.table
        if self.size > len(table):
            grown = np.empty((self.size, table.shape[1]), table.dtype)
            grown[:len(table)] = table
            grown[len(table):] = fresh
            table = grown
        if len(self.slots) and (self.slots.min() < 0 or self.slots.max() >= len(table)
                                or self.rows.dtype != table.dtype or self.rows.shape != (len(self.slots), table.shape[1])):
            raise DataError("the driver's changes do not fit this worker's table (a worker of another ftrl "
                            "version?)")
        table[self.slots] = self.rows
        return State(table, self.bias.copy(), self.layer.copy(), self.aliases.copy(), self.iterations,
                     self.alias_overflow)


_SYNCED = {}  # on a worker: {worker: (chain, deltas applied, State)}, the state of the last round it saw


def train_synced(task: Task, chain: tuple, base: State, deltas: list) -> Result:
    """train_partition from the chain's base with its deltas applied: a worker that ran the
    chain's last round applies only the new delta to the state it kept; any other (a new or
    restarted worker) starts from a copy of the base. Dask moves each delta to each worker
    once, and the base once per chain."""
    try:
        from distributed import get_worker

        me = get_worker().address  # (in-process workers share this module)
    except (ImportError, ValueError):
        me = None
    fresh = fresh_row(task.config)
    held = _SYNCED.pop(me, None)
    if held is not None and held[0] == chain and held[1] <= len(deltas):
        _, done, state = held
    else:
        done, state = 0, base.copy()  # (another chain's state, popped, is gone first)
    for d in deltas[done:]:
        state = d.apply(state, fresh)
    _SYNCED[me] = (chain, len(deltas), state)
    return train_partition(task, state)


def forget_synced() -> None:
    _SYNCED.clear()


# ---------------------------------------------------------------------------------------
# the merge
# ---------------------------------------------------------------------------------------

def merge_states(base: State, results: list, config: Config) -> State:
    """The next global state: base with the partitions' changed rows merged by
    config.merge (kernels/merge.py), in the order of `results`. base may be reused."""
    rule = RULES[config.merge]
    fresh = fresh_row(config)
    size = max([len(base.table)] + [r.size for r in results])
    if size > len(base.table):
        table = np.empty((size, base.table.shape[1]), base.table.dtype)
        table[:len(base.table)] = base.table
        table[len(base.table):] = fresh
    else:
        table = base.table  # (rows merge in place: each slot is read before it is written)
    slots = np.concatenate([np.empty(0, np.int64)] + [np.asarray(r.slots, np.int64) for r in results])
    rows = np.concatenate([np.empty((0, table.shape[1]), table.dtype)] + [r.rows for r in results])
    if len(slots) and (slots.min() < 0 or slots.max() >= size or rows.dtype != table.dtype):
        raise DataError("a partition handed back rows that do not fit the table (a worker of another ftrl "
                        "version?)")
    order = np.argsort(slots, kind="stable")
    merge_rows(base.table, fresh, slots, rows, order, rule, table)
    bias = base.bias.copy()
    moved = [r.bias for r in results if not _same(r.bias, base.bias)]
    if moved:
        k = len(moved)
        merge_rows(base.bias.reshape(1, -1), fresh, np.zeros(k, np.int64), np.stack(moved),
                   np.arange(k), rule, bias.reshape(1, -1))
    aliases, overflow = base.aliases, base.alias_overflow or any(r.alias_overflow for r in results)
    new = [r.aliases for r in results if r.aliases is not None]
    if len(new) == 1:
        aliases = new[0]
    elif new:
        aliases = sets.unique_rows(np.concatenate([base.aliases] + new))
        if len(aliases) > MAX_ALIASES:
            aliases, overflow = aliases[:MAX_ALIASES], True
    return State(table, bias, base.layer.copy(), aliases, base.iterations, overflow)


def _same(a, b) -> bool:
    return np.array_equal(np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


# ---------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------

class Threads:
    """Partitions on threads of this process (1: one after another, in this thread)."""

    def __init__(self, n: int = 1):
        from concurrent.futures import ThreadPoolExecutor

        self.n = n
        self.pool = ThreadPoolExecutor(n, thread_name_prefix="ftrl-partition") if n > 1 else None
        self.kept = {}  # partition name -> its state after the last round
        self.describe = f"{n} thread{'s' if n > 1 else ''}"

    def map(self, tasks, state, changed=None):
        """The round's Results. changed: the slots of `state` changed since the last call
        (None: not known). With no more partitions than threads, each keeps its trained
        state between rounds and only the rows of `changed` are written into it (a Delta:
        it then equals `state`), instead of a copy of the whole state per round."""
        keep = len(tasks) <= self.n
        delta = Delta.of(state, np.asarray(changed, np.int64)) if keep and changed is not None else None
        own = []
        for t in tasks:
            held = self.kept.pop(t.name, None) if delta is not None else None
            own.append(state.copy() if held is None else delta.apply(held, fresh_row(t.config)))
        if self.pool is None:
            done = [_train(t, state, o) for t, o in zip(tasks, own)]
        else:
            done = [f.result() for f in [self.pool.submit(_train, t, state, o) for t, o in zip(tasks, own)]]
        self.kept = {t.name: s for t, (_, s) in zip(tasks, done)} if keep else {}
        return [r for r, _ in done]

    def close(self):
        self.kept = {}
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


class DaskCluster:
    """Partitions as Dask tasks: `local:N` starts N worker processes here; an address
    connects to a running scheduler; a distributed.Client is used as it is."""

    def __init__(self, cluster):
        try:
            import distributed
        except ImportError:
            raise ConfigError("--cluster needs Dask distributed: pip install 'ftrl-cli[cluster]'") from None
        self.distributed = distributed
        self.own_cluster = self.own_client = None
        if not isinstance(cluster, str):
            self.client = cluster
        elif cluster.startswith("local"):
            import dask

            n = _cluster_workers(cluster)
            with dask.config.set({"distributed.scheduler.allowed-failures": RETRIES}):
                self.own_cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                            dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = self.own_client = distributed.Client(self.own_cluster)
        else:
            try:
                self.client = self.own_client = distributed.Client(cluster, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as e:
                raise ConfigError(f"cannot reach the Dask scheduler at {cluster} within {CONNECT_TIMEOUT} s "
                                  f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        self.describe = f"Dask at {self.client.scheduler.address}"
        # (a chain is named by this run's token too: two runs on one cluster share its workers)
        self.token, self.chains, self.base, self.deltas, self.delta_bytes = os.urandom(8).hex(), 0, None, [], 0
        self.sent = []  # bytes scattered per round (to each worker)

    def map(self, tasks, state, changed=None):
        """The round's Results. changed: the slots of `state` changed since the last call (the
        union of that round's changed slots), None when not known: then the state goes to the
        workers whole, else only those rows (a Delta), while the deltas since the last whole
        state stay smaller than it."""
        client, distributed = self.client, self.distributed
        # The base goes to every worker once per chain, a delta once per round. A partition whose
        # worker dies runs again on another (the scheduler's allowed-failures times): an error
        # raised by a partition (a bad line) is not retried, it would only come again. Scattered
        # data cannot be recomputed: when every worker holding it has died, the scheduler
        # cancels the round's tasks, and the round runs again from a new chain (a partition
        # is a pure function of its task and the state: the result is the same).
        for _ in range(RETRIES + 1):
            self._sync(state, changed)
            futures = [client.submit(train_synced, t, (self.token, self.chains), self.base, self.deltas, pure=False)
                       for t in tasks]
            try:
                return client.gather(futures)
            except distributed.KilledWorker as e:
                name = next((t.name for t, f in zip(tasks, futures) if f.key == getattr(e, "task", None)),
                            "a partition")
                tries = getattr(e, "allowed_failures", None)
                raise DataError(f"{name}: the Dask worker running it died "
                                f"{'' if tries is None else f'{tries + 1} times, '}"
                                "on every try the scheduler allows (distributed.scheduler.allowed-failures); "
                                "see the workers' logs; continue from the last checkpoint with --resume") from None
            except CancelledError:
                lost = [t.name for t, f in zip(tasks, futures) if f.status != "finished"] or [t.name for t in tasks]
                changed = None  # (a new chain, from the driver's state)
            finally:
                for f in futures:
                    f.release()
        raise DataError(f"{', '.join(lost)}: the Dask workers running this round died and took its state with "
                        f"them, {RETRIES + 1} times; see the workers' logs; continue from the last checkpoint "
                        "with --resume")

    def _sync(self, state, changed) -> None:
        """Scatter what the workers need to hold `state`: a Delta, or a new chain."""
        client = self.client
        whole = state.table.nbytes
        if changed is not None and self.base is not None and self.delta_bytes < whole:
            d = Delta.of(state, np.asarray(changed, np.int64))
            self.deltas.append(client.scatter(d, broadcast=True, hash=False))
            self.delta_bytes += d.nbytes
            self.sent.append(d.nbytes)
            return
        self._release_chain()
        self.chains += 1
        # (a copy: an in-process worker may hold the object itself, and the merge changes the
        # driver's state in place)
        self.base = client.scatter(state.copy(), broadcast=True, hash=False)
        self.sent.append(whole + state.bias.nbytes + state.layer.nbytes + state.aliases.nbytes)

    def _release_chain(self) -> None:
        for f in [self.base] + self.deltas:
            if f is not None:
                f.release()
        self.base, self.deltas, self.delta_bytes = None, [], 0

    def close(self):
        self._release_chain()
        with contextlib.suppress(Exception):  # (the workers' copies of the state: memory back)
            self.client.run(forget_synced)
        if self.own_client is not None:
            self.own_client.close()
        if self.own_cluster is not None:
            self.own_cluster.close()


def open_executor(threads=None, cluster=None):
    return DaskCluster(cluster) if cluster is not None else Threads(threads or 1)


# ---------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------

def run_parallel(trainer: Trainer, sources: list, *, threads=None, cluster=None) -> Model:
    """Train trainer's model over `sources` in config.partitions partitions, merging every
    round; validation, checkpoints and the record stay with `trainer` (the driver's)."""
    c, log, rep = trainer.config, trainer.log, trainer.reporter
    run = log.run
    k = c.partitions
    for s in sources:
        if s.path == "-" or read_once(s.path):
            raise ConfigError(f"{s.path}: parallel training reads its inputs from several places; "
                              "give files, not stdin or a FIFO")
    if trainer.names is not None:
        raise ConfigError("parallel training reads libsvm text and sparse Parquet; convert wide tables first "
                          "(ftrl convert DATA data.parquet)")
    wconfig = worker_config(c)
    paths = [s.path for s in sources]
    t0 = last_ckpt = time.perf_counter()
    since_ckpt = since_eval = 0
    stopped = False
    executor = open_executor(threads, cluster)
    trainer._t0 = time.perf_counter()  # (loop_seconds: the passes, not the cluster's start)
    try:
        for p in range(run.pass_, c.passes):
            order = file_order(len(paths), c, p)
            parts = plan([paths[o] for o in order], order, c, k)
            empty = sum(1 for pc in parts if not pc)
            if empty and p == run.pass_:
                rep.warn(f"{empty} of {k} partitions are empty (too few or unsplittable inputs for "
                         f"--partitions {k}); they train nothing")
            in_order = sorted({pc.path for part in parts for pc in part
                               if pc.fmt == "libsvm" or pc.start or pc.stop is not None})
            if c.shuffle and in_order and p == run.pass_:
                rep.warn(f"--shuffle in parallel training shuffles the order of the files and the row groups of "
                         f"a Parquet file read whole; the rows of {_few(in_order)} keep their order (train in one "
                         "process to shuffle them)")
            positions = [Position.start(pc, skip=run.offset) for pc in parts]
            changed = None  # (slots merged since the executor last saw the state; None: not known)
            rep.start(f"pass {p + 1}/{c.passes}: {k} partitions on {executor.describe}", None)
            while True:
                live = [j for j in range(k) if positions[j].piece < len(parts[j])]
                if not live:
                    break
                tasks = [Task(wconfig, _name(parts[j], j, k), parts[j], positions[j], c.merge_every or None,
                              trainer.rows_per_batch, (c.seed, p) if c.shuffle else None,
                              (run.loss_sum, run.weight_sum, run.pos_sum) if j == live[0] else None,
                              (log.examples_seen, log.passes_done, list(log.curve)) if k == 1 else None)
                         for j in live]
                results = executor.map(tasks, trainer.model.state, changed)
                trainer.model.state = merge_states(trainer.model.state, results, c)
                for j, r in zip(live, results):
                    positions[j] = r.position
                if any(positions[j].piece < len(parts[j]) for j in range(k)):  # (a round follows in this pass)
                    changed = sets.union(np.empty(0, np.int64), *[r.slots for r in results])
                rows = _account(trainer, results, k)
                loss_before = run.loss_sum
                run.loss_sum, run.weight_sum, run.pos_sum = _add_sums(results)
                if k > 1:
                    _curve_point(trainer, time.perf_counter() - t0)
                rep.advance(0, rows, run.loss_sum - loss_before)
                if c.merge_every:
                    run.offset += c.merge_every  # rows into every partition (a resume skips them)
                since_ckpt += rows
                since_eval += rows
                if c.validation_every and since_eval >= c.validation_every:
                    since_eval = 0
                    if trainer.evaluate(log.passes_done + 1):
                        stopped = True
                        break
                due = (c.checkpoint_every and since_ckpt >= c.checkpoint_every) or (
                    c.checkpoint_seconds and time.perf_counter() - last_ckpt >= c.checkpoint_seconds)
                if trainer.stop.signum is not None or due:
                    since_ckpt, last_ckpt = 0, time.perf_counter()
                    trainer.checkpoint()
                    if trainer.stop.signum is not None:
                        code = 130 if trainer.stop.signum == signal.SIGINT else 143
                        raise Interrupted(f"interrupted: checkpoint written after {log.examples_seen:,} "
                                          "examples; continue with --resume", code)
            rep.end_input()
            if stopped:
                break
            trainer.end_pass()
            if trainer.evaluate(log.passes_done):
                stopped = True
                break
            run.pass_, run.file, run.offset, run.line = p + 1, 0, 0, 0
        trainer.stopped_early = stopped
        trainer.finish()
    finally:
        rep.close()
        executor.close()
        trainer.seconds = time.perf_counter() - t0
    return trainer.model


def _name(pieces, j, k) -> str:
    first = pieces[0].path if pieces else "(empty)"
    return f"{first} [partition {j + 1} of {k}]"


def _few(paths) -> str:
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def _account(trainer, results, k) -> int:
    """Add the round's rows, features, skipped lines, warnings (and with one partition its
    curve points) to the driver's record; returns the rows."""
    log, rep = trainer.log, trainer.reporter
    rows = 0
    for r in results:
        rows += r.examples
        trainer.features += r.features
        log.bad_lines += r.bad_lines
        for w in r.warnings:
            rep.warn(w)
        if k == 1:
            for point in r.curve:
                log.curve.append(point)
                rep.point(point.to_json())
    log.run.examples += rows
    log.examples_seen += rows
    return rows


def _add_sums(results) -> tuple:
    """The pass's running sums: the first partition continued them; the others' are
    added in partition order."""
    loss, weight, pos = results[0].sums
    for r in results[1:]:
        loss, weight, pos = loss + r.sums[0], weight + r.sums[1], pos + r.sums[2]
    return loss, weight, pos


def _curve_point(trainer, seconds) -> None:
    """With K > 1, a curve point after a round when the example count has doubled."""
    log, run = trainer.log, trainer.log.run
    last = log.curve[-1].examples if log.curve else 0
    if log.examples_seen < max(FIRST_POINT, 2 * last) or run.weight_sum <= 0 or len(log.curve) >= 200:
        return
    point = CurvePoint(examples=int(log.examples_seen), pass_=log.passes_done + 1,
                       train_logloss=float(run.loss_sum / run.weight_sum), seconds=seconds)
    log.curve.append(point)
    trainer.reporter.point(point.to_json())


__all__ = ["RULES", "Piece", "Task", "Result", "settle_config", "worker_config", "train_partition",
           "merge_states", "Threads", "DaskCluster", "open_executor", "run_parallel"]
