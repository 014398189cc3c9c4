"""The training engine: one Trainer that every front end drives (the CLI's `train` through
api.train, the scikit-learn estimator, and what comes next: sweeps, threads, clusters).

    trainer = Trainer(config, model, log, store=ModelDir(path))    # store: optional
    model = trainer.run(sources)                                      # [Source]

A Trainer owns one Model (config + State) and its TrainingLog, and streams Sources (any
input that yields CSR Batches from a position) through it pass by pass: it learns each
batch with the model's kernel, adds up the progressive loss row by row, holds rows out,
evaluates (validation file or hold-out), keeps the best model for early stopping, writes
checkpoints through the store, and stops cleanly on a StopFlag. It changes nothing
process-wide: signal handlers are installed only by a StopFlag the caller asks for.

Where a run is (pass, file, offset, running sums) lives in log.run, so a run resumes from
any checkpoint exactly where it stood.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from . import kernels as K
from .config import Config
from .errors import ConfigError, DataError, Interrupted
from .model import Model
from .progress import Reporter
from .readers import BATCH_ROWS, Batch, display_name, iter_csr, open_batches
from .records import Best, CurvePoint, EvalRecord, InputId, PassRecord, RunProgress, RunRecord, TrainingLog

MAX_CURVE = 200
FIRST_POINT = 128


# ---------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------

@dataclass
class Source:
    """One input of a run: its name (the path as given, '-' for stdin), its size for
    progress (None: unknown), and open(start_offset=, start_line=, batch_rows=, on_bad=,
    shuffle_seed=, pass_index=, block_row=) -> Batches from a resume position (bytes/lines
    for text, rows for tables and arrays; block_row: rows of a shuffled text block already
    trained); shuffle_seed is given when the config shuffles."""

    path: str
    size: int | None
    open: Callable[..., Iterator[Batch]]

    def input_id(self) -> InputId:
        return InputId(self.path, self.size)


def file_source(path: str, config: Config, size: int | None, names=None) -> Source:
    """A file (or '-') read as the config says (format, columns, hashing into names)."""

    def open_(pass_index=0, **kw):
        return open_batches(path, config, names=names, **kw)

    return Source(path, size, open_)


def array_source(indptr, ids, values, labels, weights=None, name="<array>", order=None) -> Source:
    """CSR arrays in memory (validated by the caller: ids >= 0, values finite).
    order(pass_index) -> a permutation of the rows for that pass, or None (as given)."""

    def open_(start_offset=0, start_line=0, batch_rows=BATCH_ROWS, on_bad=None, shuffle_seed=None,
              pass_index=0, block_row=0):
        return iter_csr(indptr, ids, values, labels, weights, batch_rows=batch_rows, start_row=start_offset,
                        order=None if order is None else order(pass_index))

    return Source(name, None, open_)


class StopFlag:
    """SIGINT/SIGTERM set a flag; the Trainer stops after the current batch with a
    checkpoint. Handlers are installed only with install=True (the CLI), and only in
    the main thread; they are restored on exit."""

    def __init__(self, install: bool = False):
        self.install = install
        self.signum = None
        self.saved = {}

    def __enter__(self):
        if self.install and hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.saved[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)
        self.saved = {}


def start_run(log: TrainingLog | None, inputs: list[InputId], config: Config) -> TrainingLog:
    """The log for this run: an unfinished run continues (same inputs, sizes, passes);
    otherwise a new run begins, after the model's earlier ones (log None: a new model)."""
    fresh = RunProgress(inputs=list(inputs), passes=config.passes,
                        first_pass=log.passes_done if log is not None else 0)
    record = RunRecord(first_pass=fresh.first_pass, passes=config.passes, inputs=[e.path for e in inputs])
    if log is None:
        return TrainingLog(run=fresh, runs=[record])
    if not log.finished:
        old = log.run
        if [e.path for e in old.inputs] != [e.path for e in inputs]:
            raise ConfigError("the checkpoint is of an unfinished run on "
                              f"{', '.join(e.path for e in old.inputs)}; resume it with the same "
                              "inputs (or start a new model)")
        for a, b in zip(old.inputs, inputs):
            if a.size != b.size:
                raise ConfigError(f"{b.path} changed since the checkpoint was written "
                                  f"({a.size} bytes then, {b.size} now); cannot resume mid-file")
            if a.fingerprint and b.fingerprint and a.fingerprint != b.fingerprint:
                raise ConfigError(f"{b.path} changed since the checkpoint was written (same size, other "
                                  "content); cannot resume mid-file")
            if a.path == "-":
                raise ConfigError("the unfinished run read stdin, which cannot be replayed; "
                                  "start a new model")
        if old.passes != config.passes:
            raise ConfigError(f"the unfinished run was for --passes {old.passes}; "
                              f"resume it with the same value")
        return log
    return dataclasses.replace(log, finished=False, run=fresh, runs=log.runs + [record])


# ---------------------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------------------

class Trainer:
    """Trains one model over a stream of sources; see the module docstring.

    store: where checkpoints, the best model and names go (checkpoint.ModelDir), or None
      (in memory: no checkpoints; the best model under early stopping is kept as a copy).
    validation: a Source evaluated after each pass (and every validation_every examples);
      without one, config.holdout_every holds rows out of the stream instead.
    names: the NameMap of a wide-table run (saved beside each checkpoint).
    finalize: at the end, let the EMA replace the weights (Keras's finalize step); the
      estimator keeps training the raw state and finalizes a copy instead.
    holdout: rows to hold out instead of config.holdout_every's (a PassHoldout: the same
      rows in every pass, as `ftrl tune` holds them out).
    """

    def __init__(self, config: Config, model: Model, log: TrainingLog, *, store=None,
                 reporter: Reporter | None = None, validation: Source | None = None, names=None,
                 batch_rows: int = BATCH_ROWS, stop: StopFlag | None = None, finalize: bool = True,
                 holdout=None):
        self.config = config
        self.model = model
        self.log = log
        self.store = store
        self.reporter = reporter or Reporter()
        self.validation = validation
        self.names = names
        self.stop = stop or StopFlag()
        self.finalize = finalize
        self.features = 0  # nonzeros trained on in this run
        self.stopped_early = False
        self.seconds = 0.0
        self.loop_seconds = 0.0  # the passes alone: without the final save (set by finish)
        self._best_state = None
        self._t0 = self._last_ckpt = time.perf_counter()
        self._since_ckpt = self._since_eval = 0
        self._source = Source("<batches>", None, lambda **kw: iter(()))
        c = config
        every = c.checkpoint_every
        # Read batches hold whole optimizer batches, so that where the input is cut (and
        # where a checkpoint lands) never changes the steps taken. An input's last batch
        # may be short.
        B = c.batch_size
        rows = max(1, (min(batch_rows, every) if every else batch_rows) // B) * B
        if c.validation_every:
            rows = max(B, min(rows, (c.validation_every // B) * B or B))
        self.rows_per_batch = rows
        self._y = np.empty(rows)
        self._sw = np.empty(rows)
        self._margins = np.empty(rows)
        if holdout is not None:  # (a sweep's own hold-out: PassHoldout)
            self.holdout = holdout
        else:
            self.holdout = Holdout(c.holdout_every, log) if c.holdout_every else None

    # ---- the run ------------------------------------------------------------------------
    def run(self, sources: list[Source]) -> Model:
        """Train from log.run's position to the end of its passes; returns the model kept
        (the best one under early stopping). Raises Interrupted when the StopFlag fired
        (after a checkpoint)."""
        c, log, run, rep = self.config, self.log, self.log.run, self.reporter
        on_bad = self._bad_line_policy()
        self._t0 = self._last_ckpt = time.perf_counter()
        self._since_ckpt = self._since_eval = 0
        try:
            for p in range(run.pass_, c.passes):
                order = file_order(len(sources), c, p)
                for i in range(run.file, len(sources)):
                    src = self._source = sources[order[i]]
                    rep.start(f"pass {p + 1}/{c.passes} {display_name(src.path)}", src.size)
                    for b in src.open(start_offset=run.offset, start_line=run.line,
                                      batch_rows=self.rows_per_batch, on_bad=on_bad,
                                      shuffle_seed=(c.seed, p, order[i]) if c.shuffle else None,
                                      pass_index=p, block_row=run.block_row):
                        self.learn(b)
                        if self._after_batch():
                            self.stopped_early = True
                            break
                    rep.end_input()
                    if self.stopped_early:
                        break
                    run.file, run.offset, run.line, run.block_row = i + 1, 0, 0, 0
                self.end_pass()
                if self.stopped_early or self.evaluate(log.passes_done):
                    self.stopped_early = True
                    break
                run.pass_, run.file, run.offset, run.line, run.block_row = p + 1, 0, 0, 0, 0
                run.stream_row = 0  # (--holdout-every counts each pass's rows: the same rows every pass)
            self.finish()
        finally:
            rep.close()
            self.seconds = time.perf_counter() - self._t0
        return self.model

    def learn(self, b: Batch) -> float:
        """Train on one batch (its held-out rows only scored); returns its summed loss."""
        run = self.log.run
        held = self.holdout.held(b) if self.holdout is not None else None
        if held is not None and held.any():
            held_rows, kept_before = select_rows(b, held), np.cumsum(~held)[held]
            b = select_rows(b, ~held)
        else:
            held_rows = None
        n = b.rows
        y, sw, margins = self._y[:n], self._sw[:n], self._margins[:n]
        np.greater(b.labels, 0.0, out=y)
        row_weights(b, y, self.config.class_weight, sw)
        if held_rows is None:
            total = self.model.learn(b.indptr, b.ids, b.values, y, sw, b.max_id, margins, run.loss_sum)
        else:
            total = self._learn_around(b, y, sw, margins, held_rows, kept_before)
        if not np.isfinite(total):
            self._diverged(b)
        loss = total - run.loss_sum
        self._curve_points(margins, y, sw)
        # running sums added row by row: the same whatever the batches (no BLAS call)
        run.loss_sum = total
        run.weight_sum = running_sum(run.weight_sum, sw)
        run.pos_sum = running_sum(run.pos_sum, sw[y > 0])
        run.examples += n
        self.log.examples_seen += n
        self.features += len(b.ids)
        self._since_ckpt += n
        self._since_eval += n
        run.offset, run.line, run.block_row = b.end_offset, b.end_line, b.end_block_row
        self.reporter.advance(b.raw_bytes, n, loss)
        return loss

    def _learn_around(self, b, y, sw, margins, held_rows, kept_before) -> float:
        """Learn the batch's rows in order, scoring each held-out row with the model as it
        stands at its position in the stream: after every row before it (online), or
        before the step of the batch it falls in (mini-batch: the step holding the next
        kept row). The rows learned, and so the model, are those of one call."""
        B = self.config.batch_size
        cuts = (kept_before // B) * B  # kept rows learned before each held-out row is scored
        total, start = self.log.run.loss_sum, 0
        bounds = np.flatnonzero(np.diff(cuts)) + 1  # held-out rows scored together
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(cuts)]):
            cut = int(cuts[lo])
            if cut > start:
                total = self._learn_rows(b, start, cut, y, sw, margins, total)
                start = cut
            self.holdout.score(held_rows, int(lo), int(hi), self.model)
        if start < b.rows:
            total = self._learn_rows(b, start, b.rows, y, sw, margins, total)
        return total

    def _learn_rows(self, b, lo, hi, y, sw, margins, total) -> float:
        p0, p1 = int(b.indptr[lo]), int(b.indptr[hi])
        ids = b.ids[p0:p1]
        return self.model.learn(b.indptr[lo:hi + 1] - p0, ids, b.values[p0:p1], y[lo:hi], sw[lo:hi],
                                int(ids.max(initial=-1)), margins[lo:hi], total)

    def _diverged(self, b: Batch):
        src = self._source
        where = f"{display_name(src.path)}" + (f" (up to line {b.end_line:,})" if b.end_line else "")
        raise DataError(f"training diverged in pass {self.log.passes_done + 1}, {where}: the loss is not "
                        f"finite after {self.log.examples_seen:,} examples; nothing from this run's last "
                        "checkpoint on is kept; lower --alpha, scale large feature values, or check the data")

    def _after_batch(self) -> bool:
        """Evaluations and checkpoints due after a batch; True to stop early."""
        c = self.config
        if c.validation_every and self._since_eval >= c.validation_every:
            self._since_eval = 0
            if self.evaluate(self.log.passes_done + 1):
                return True
        due = (c.checkpoint_every and self._since_ckpt >= c.checkpoint_every) or (
            c.checkpoint_seconds and time.perf_counter() - self._last_ckpt >= c.checkpoint_seconds)
        if self.stop.signum is not None or due:
            self.checkpoint()
            if self.stop.signum is not None:
                code = 130 if self.stop.signum == signal.SIGINT else 143
                raise Interrupted(f"interrupted: checkpoint written after {self.log.examples_seen:,} "
                                  f"examples; continue with --resume", code)
        return False

    def checkpoint(self) -> None:
        self._since_ckpt = 0
        self._last_ckpt = time.perf_counter()
        if self.store is not None:
            self.store.save(self.model, self.log)

    def end_pass(self) -> None:
        """Close a pass in the history: its progressive loss and the best constant's."""
        log, run = self.log, self.log.run
        if run.examples == 0 and run.stream_row == 0:
            names = ", ".join(display_name(e.path) for e in run.inputs) or "the input"
            raise DataError(f"{names}: no rows to train on (empty, or only blank and comment lines); "
                            "give a file of labelled rows")
        ws, ps = run.weight_sum, run.pos_sum
        rate = ps / ws if ws > 0 else 0.0
        const = (-(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))) if 0 < rate < 1 else 0.0
        log.history.append(PassRecord(pass_=log.passes_done + 1, examples=run.examples,
                                      logloss=run.loss_sum / ws if ws > 0 else None,
                                      best_constant_logloss=float(const), positive_rate=rate))
        log.passes_done += 1
        run.end_pass()

    def finish(self) -> None:
        """End of the run: finalize (EMA), keep the best model, mark the log finished and
        write the final checkpoint."""
        self.loop_seconds = time.perf_counter() - self._t0
        c, log = self.config, self.log
        if self.finalize:
            self.model.finalize()
        if c.early_stop and log.best is not None:
            best = self._load_best()
            if best is not None:
                self.model = best  # the best model is the one kept
                log.kept = dataclasses.replace(log.best, reason="early stop" if self.stopped_early else "best")
        log.stopped_early = self.stopped_early
        log.finished = True
        if self.store is not None:
            self.store.save(self.model, log)

    # ---- evaluation ---------------------------------------------------------------------
    def evaluate(self, pass_no: int) -> bool:
        """One validation: record it, keep the best model, count towards early stopping.
        Returns True when early stopping says stop."""
        c, log = self.config, self.log
        if self.validation is not None:
            ms, ys = [], []
            bw = self.model.bias_weight()
            for vb in self.validation.open():
                ms.append(self.model.margins(vb.indptr, vb.ids, vb.values, bw))
                ys.append((vb.labels > 0).astype(np.float64))
            if not sum(len(y) for y in ys):
                raise DataError(f"{display_name(self.validation.path)}: the validation data has no rows; "
                                "give --validation a file of labelled rows")
            m_all, y_all = np.concatenate(ms), np.concatenate(ys)
        elif self.holdout is not None:
            m_all, y_all = self.holdout.take()
        else:
            return False
        from . import metrics  # (runs that evaluate only)

        rec = EvalRecord(pass_=pass_no, examples=log.examples_seen, rows=len(y_all),
                         logloss=float(metrics.logloss(m_all, y_all)) if len(y_all) else None,
                         auc=metrics.roc_auc(m_all, y_all) if len(y_all) else None)
        log.evals.append(rec)
        self.reporter.evaluation(rec.to_json())
        value = getattr(rec, c.metric)
        if value is None or not np.isfinite(value):
            return False
        best = log.best
        if best is None or (value < best.value if c.metric == "logloss" else value > best.value):
            log.best = Best(metric=c.metric, value=value, pass_=rec.pass_, examples=rec.examples)
            log.since_best = 0
            if c.early_stop:
                self._save_best()
        else:
            log.since_best += 1
        return bool(c.early_stop) and log.since_best >= c.early_stop

    def _save_best(self) -> None:
        if self.store is not None:
            self.store.save_best(self.model, self.log.best)
        else:
            self._best_state = self.model.state.copy()

    def _load_best(self) -> Model | None:
        if self.store is not None:
            return self.store.load_best(self.config) if self.store.has_best() else None
        return None if self._best_state is None else Model(self.config, self._best_state)

    # ---- bookkeeping --------------------------------------------------------------------
    def _bad_line_policy(self):
        """The on_bad callback for the readers: None (fail), or count/warn and skip."""
        c = self.config
        if c.on_bad_line == "fail":
            return None
        seen = [0]

        def on_bad(exc):
            seen[0] += 1
            self.log.bad_lines += 1
            if c.max_bad_lines is not None and seen[0] > c.max_bad_lines:
                raise DataError(f"more than {c.max_bad_lines} bad lines (--max-bad-lines); last: {exc}")
            if c.on_bad_line == "warn":
                self.reporter.warn(f"skipped {exc}")

        return on_bad

    def _curve_points(self, m, y, w) -> None:
        """The progressive loss of the current pass at doubling example counts (VW's
        table, the summary's sparkline, `inspect --plot`), from this batch's margins."""
        log, run = self.log, self.log.run
        curve = log.curve
        before = log.examples_seen
        target = max(FIRST_POINT, 2 * curve[-1].examples) if curve else FIRST_POINT
        while target <= before:  # (a point skipped for zero weight: go on from here)
            target *= 2
        if before + len(m) < target or len(curve) >= MAX_CURVE:
            return
        cum_loss = np.empty(len(m))
        K.running_logloss(run.loss_sum, m, y, w, cum_loss)  # (the training kernels' sums)
        cum_w = running_sums(run.weight_sum, w)
        seconds = time.perf_counter() - self._t0
        while target <= before + len(m) and len(curve) < MAX_CURVE:
            j = target - before - 1
            if cum_w[j] > 0:
                point = CurvePoint(examples=int(target), pass_=log.passes_done + 1,
                                   train_logloss=float(cum_loss[j] / cum_w[j]), seconds=seconds)
                curve.append(point)
                self.reporter.point(point.to_json())
            target *= 2


def file_order(n: int, config: Config, pass_index: int) -> list:
    """The order of the inputs in a pass: as given, or shuffled by (seed, pass)."""
    if not config.shuffle:
        return list(range(n))
    return [int(i) for i in np.random.default_rng([config.seed, pass_index]).permutation(n)]


def row_weights(batch: Batch, y, class_weight, out) -> None:
    """Per-row importance: the data's weights times the class weight of each row's label."""
    if batch.weights is None:
        out[:] = 1.0
    else:
        out[:] = batch.weights
    if class_weight is not None:
        out *= np.where(y > 0, class_weight[1], class_weight[0])


def running_sums(total: float, x: np.ndarray) -> np.ndarray:
    """total + x[0], total + x[0] + x[1], ...: added left to right (np.sum adds pairwise,
    so its result would depend on where batches end)."""
    return np.cumsum(np.concatenate([[total], x]))[1:]


def running_sum(total: float, x: np.ndarray) -> float:
    return float(running_sums(total, x)[-1]) if len(x) else total


class Holdout:
    """holdout_every N: every Nth example of each pass is scored, never trained on (the
    same rows in every pass: rows are counted from the pass's start).

    A held-out row is scored with the model as it stands at its position in the stream
    (Trainer._learn_around); its margin and label are kept until the next evaluation.
    """

    def __init__(self, every: int, log: TrainingLog):
        self.every = every
        self.log = log
        self.m, self.y = [], []

    def held(self, b: Batch) -> np.ndarray:
        """Which of the batch's rows are held out (advances the stream's row count)."""
        run = self.log.run
        start = run.stream_row
        run.stream_row = start + b.rows
        return (np.arange(start + 1, start + b.rows + 1) % self.every) == 0

    def score(self, rows: Batch, lo: int, hi: int, model: Model) -> None:
        """Score held-out rows lo..hi-1 of `rows` with the model as it stands."""
        a, c = int(rows.indptr[lo]), int(rows.indptr[hi])
        self.m.append(model.margins(rows.indptr[lo:hi + 1] - a, rows.ids[a:c], rows.values[a:c]))
        self.y.append((rows.labels[lo:hi] > 0).astype(np.float64))

    def take(self):
        m = np.concatenate(self.m) if self.m else np.empty(0)
        y = np.concatenate(self.y) if self.y else np.empty(0)
        self.m, self.y = [], []
        return m, y


class PassHoldout(Holdout):
    """The same rows held out in every pass, counted from the start of the pass (what a
    sweep ranks settings on): every Nth row of the pass (every=N), or every row from the
    0-based row `tail_from` of the pass on (the tail of a time-ordered stream). Scored like
    Holdout's rows; take() at the end of each pass also starts the count of the next.

    (Holdout holds out the same rows, counted in the run's record so that resume is exact.)
    """

    def __init__(self, log: TrainingLog, every: int = 0, tail_from: int | None = None):
        super().__init__(every, log)
        if (every > 1) == (tail_from is not None):
            raise ValueError("PassHoldout takes every (>= 2) or tail_from")
        self.tail_from = tail_from
        self.row = 0  # rows of the pass seen so far

    def held(self, b: Batch) -> np.ndarray:
        start = self.row
        self.row += b.rows
        self.log.run.stream_row += b.rows
        idx = np.arange(start, start + b.rows)
        if self.tail_from is not None:
            return idx >= self.tail_from
        return ((idx + 1) % self.every) == 0

    def take(self):
        self.row = 0
        return super().take()


def select_rows(b: Batch, keep: np.ndarray) -> Batch:
    """A new Batch with the rows where keep is True (vectorized)."""
    lengths = np.diff(b.indptr)
    feat = np.repeat(keep, lengths)
    indptr = np.zeros(int(keep.sum()) + 1, np.int64)
    np.cumsum(lengths[keep], out=indptr[1:])
    ids = b.ids[feat]
    return dataclasses.replace(b, labels=b.labels[keep], indptr=indptr, ids=ids, values=b.values[feat],
                               max_id=int(ids.max(initial=-1)),
                               weights=None if b.weights is None else b.weights[keep])
