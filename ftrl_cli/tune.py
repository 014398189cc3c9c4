"""`ftrl tune`: several settings trained side by side over one read of the data, ranked on
a hold-out, with automatic passes and successive halving; the best model is written as a
normal model directory (docs/tune.md).

    result = tune(["train.svm"], "model/", TuneOptions(grid={"alpha": [0.05, 0.1]}))

How a run goes:
1. A first read (parse only, no training) counts the rows and finds the largest feature
   id: it places the hold-out (by default the last 10 % of the rows: the tail, which is what a
   time-ordered data set needs) and sizes each setting's table, so a sweep whose states
   would not fit in memory is refused before any training.
2. Each pass reads the data once; every batch is handed to one engine Trainer per setting
   still running (on two threads when there are two CPUs: the kernels release the GIL).
   The hold-out rows are the same in every pass (engine.PassHoldout); each Trainer scores
   them where they stand in the stream and evaluates them at the end of the pass.
3. After each pass: a setting whose hold-out metric did not improve by --min-improvement
   for --patience passes stops; a setting whose loss or state is not finite is dropped
   (diverged); of the others, the better half (--keep) goes on (successive halving). The
   run stops when no setting goes on or after --max-passes passes.
4. The winner: of the (setting, pass) candidates whose hold-out log loss is within one
   standard error (paired, row by row) of the lowest, the most regularized (largest l1, then
   l2, then the fewest passes, then the smallest alpha): the one-standard-error rule, since
   the lowest of many candidates within noise is mostly luck (metric auc: the best value).
   That setting is then trained again for that many passes on all the rows, hold-out
   included (--no-refit keeps the model the hold-out scored instead). DIR gets it as a
   normal model (predict, eval, --resume and --config use it) and every setting's results
   in tune.json.
   A tail hold-out of one class that random order would rarely give (the data is sorted by
   label) is replaced by every 10th row; a pass more than DIVERGING_NATS above the best
   constant predictor's progressive log loss drops its setting.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from . import checkpoint, metrics
from .api import DIVERGING_NATS
from .config import Config
from .engine import PassHoldout, Trainer, file_source, start_run
from .errors import ConfigError, DataError
from .model import MIN_SLOTS, Model, _next_pow2, layout
from .progress import Reporter
from .readers import check_inputs, display_name, expand_inputs, input_format, input_ids, record_schema
from .readers.fingerprint import fingerprint
from .readers.stream import read_once
from .readers.wide import auto_report
from .records import Best, InputId, input_bytes, json_finite

TUNE_FORMAT = 1
# settings a grid may vary: per-coordinate optimizer settings that keep the table's shape
GRID_NAMES = ("alpha", "beta", "l1", "l2", "l2_shrinkage", "lr_power", "initial_accumulator",
              "bias_l1", "bias_l2")
# `ftrl tune` without --grid: the learning rate matters most, then L1 (sparse features
# want little of it when passes are few) and L2 (more passes want more of it)
DEFAULT_GRID = {"alpha": [0.02, 0.05, 0.1, 0.2, 0.5], "l1": [0.0, 1.0], "l2": [1.0, 10.0]}
HOLDOUT_FRACTION = 0.1  # the default tail
SE_RULE = 1.0  # select "1se": candidates within this many standard errors of the best are tied
MEMORY_SHARE = 0.8  # of the memory available, what the states may take


@dataclass
class TuneOptions:
    """How `tune` searches (defaults are those of `ftrl tune` without flags).

    grid: name -> values (GRID_NAMES); None: DEFAULT_GRID. Other settings come from the
      base config. metric: logloss | auc, on the hold-out.
    holdout: "tail" (the last holdout_fraction of the rows), "every" (every
      holdout_every-th row of each pass) or "none" (one pass, ranked on progressive
      validation loss, which is held out in the first pass only).
    passes: a fixed number of passes for every setting (no stopping, no halving; the model
      after that pass); None: automatic, up to max_passes.
    patience, min_improvement: a setting stops after `patience` passes that did not improve
      its best hold-out metric by at least min_improvement (absolute, in the metric's units).
    keep: after each pass the better ceil(keep * n) of the n settings that ran go on.
    refit: train the winner again on all the rows (hold-out included) for its best pass count
      (False: keep the model the hold-out chose, trained without the hold-out rows).
    select: "1se": of the (setting, pass) candidates whose hold-out log loss is within one
      standard error (SE_RULE) of the best's, the most regularized (largest l1, then l2, then the
      fewest passes, then the smallest alpha); "best": the best hold-out value. (metric auc and
      holdout none rank on one number per candidate: "best".)
    max_memory: bytes the states may take (None: 80 % of the memory available).
    threads: training threads (None: 2 when two CPUs are available).
    """

    grid: dict | None = None
    metric: str = "logloss"
    holdout: str = "tail"
    holdout_fraction: float = HOLDOUT_FRACTION
    holdout_every: int = 0
    passes: int | None = None
    max_passes: int = 10
    patience: int = 1
    min_improvement: float = 1e-4
    keep: float = 0.5
    refit: bool = True
    select: str = "1se"
    max_memory: int | None = None
    threads: int | None = None

    def __post_init__(self):
        def need(cond, msg):
            if not cond:
                raise ConfigError(msg)

        need(self.metric in ("logloss", "auc"), f"--metric must be logloss or auc, got {self.metric!r}")
        need(self.holdout in ("tail", "every", "none"), f"--holdout must be tail, every or none, got "
             f"{self.holdout!r}")
        need(0 < self.holdout_fraction < 1, f"--holdout-fraction must be in (0, 1), got {self.holdout_fraction}")
        need(self.holdout != "every" or self.holdout_every >= 2, "--holdout-every must be >= 2")
        need(self.passes is None or self.passes >= 1, f"--passes must be >= 1, got {self.passes}")
        need(self.holdout != "none" or (self.passes or 1) == 1,
             "without a hold-out (--holdout none) settings are ranked on the progressive loss of one "
             "pass, which is held out in the first pass only: use --passes 1, or a hold-out")
        need(self.max_passes >= 1, f"--max-passes must be >= 1, got {self.max_passes}")
        need(self.patience >= 1, f"--patience must be >= 1, got {self.patience}")
        need(math.isfinite(self.min_improvement) and self.min_improvement >= 0,
             f"--min-improvement must be >= 0, got {self.min_improvement}")
        need(0 < self.keep <= 1, f"--keep must be in (0, 1], got {self.keep}")
        need(self.select in ("1se", "best"), f"--select must be 1se or best, got {self.select!r}")
        need(self.max_memory is None or self.max_memory > 0, "--max-memory must be > 0")
        need(self.threads is None or self.threads >= 1, "--threads must be >= 1")

    @property
    def fixed(self) -> bool:
        return self.passes is not None or self.holdout == "none"

    @property
    def pass_cap(self) -> int:
        return 1 if self.holdout == "none" else (self.passes or self.max_passes)


def options_from_flags(*, holdout=None, holdout_every=None, holdout_fraction=None, passes=None, metric=None,
                       grid=None, max_passes=None, patience=None, min_improvement=None, keep=None,
                       refit=None, max_memory=None, threads=None, select=None) -> TuneOptions:
    """TuneOptions from the command line's flags (None: not given)."""
    if holdout_every is not None and holdout not in (None, "every"):
        raise ConfigError(f"--holdout-every goes with --holdout every, not --holdout {holdout}")
    if holdout_fraction is not None and holdout not in (None, "tail") or (
            holdout_fraction is not None and holdout_every is not None):
        raise ConfigError("--holdout-fraction sizes the tail hold-out; it does not go with "
                          f"{'--holdout-every' if holdout_every is not None else '--holdout ' + str(holdout)}")
    mode = holdout or ("every" if holdout_every is not None else "tail")
    if mode == "every" and holdout_every is None:
        raise ConfigError("--holdout every needs --holdout-every N")
    if passes is not None and max_passes is not None:
        raise ConfigError("--passes fixes the number of passes; --max-passes caps the automatic ones: give one")
    given = {"metric": metric, "holdout_fraction": holdout_fraction, "holdout_every": holdout_every,
             "passes": passes, "max_passes": max_passes, "patience": patience,
             "min_improvement": min_improvement, "keep": keep, "threads": threads, "refit": refit,
             "select": select,
             "max_memory": None if max_memory is None else parse_size(max_memory)}
    return TuneOptions(grid=grid, holdout=mode, **{k: v for k, v in given.items() if v is not None})


def parse_size(text) -> int:
    """'2G', '500M', '64k', '1000000' -> bytes (powers of 1024)."""
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
    try:
        n = float(t[:-1] if mult > 1 else t)
    except ValueError:
        n = float("nan")
    if not (math.isfinite(n) and n > 0):
        raise ConfigError(f"--max-memory {text!r}: expected a size such as 2G, 500M or 1000000 (bytes)")
    return int(n * mult)


# ---------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------

def parse_grid(specs) -> dict | None:
    """["alpha=0.05,0.1", "l1=0,1"] -> {"alpha": [0.05, 0.1], "l1": [0.0, 1.0]}; None if empty."""
    grid = {}
    for spec in specs or ():
        name, sep, values = str(spec).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise ConfigError(f"--grid {spec!r}: expected NAME=V1,V2,..., e.g. alpha=0.05,0.1,0.2")
        if name not in GRID_NAMES:
            raise ConfigError(f"--grid {spec!r}: {name} cannot be swept; the settings a grid may vary "
                              f"are {', '.join(GRID_NAMES)}")
        if name in grid:
            raise ConfigError(f"--grid names {name} twice; give all its values in one --grid {name}=...")
        try:
            vals = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--grid {spec!r}: the values must be numbers separated by commas") from None
        if not vals:
            raise ConfigError(f"--grid {spec!r}: give at least one value")
        grid[name] = list(dict.fromkeys(vals))  # (a value given twice is one setting)
    return grid or None


def expand_grid(base: Config, grid: dict) -> list[tuple[dict, Config]]:
    """Every combination of the grid's values, on top of base, in a fixed order; each is
    checked as a Config (an invalid value is an error naming it)."""
    names = list(grid)
    out = []
    for combo in itertools.product(*(grid[n] for n in names)):
        setting = dict(zip(names, combo))
        try:
            out.append((setting, base.replace(**setting)))
        except ConfigError as e:
            raise ConfigError(f"--grid: {_label(setting)}: {e}") from None
    return out


def _label(setting: dict) -> str:
    return " ".join(f"{k}={v:g}" for k, v in setting.items()) or "(base settings)"


# ---------------------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------------------

def table_slots(config: Config, max_id: int) -> int:
    """The table a model of this config has after seeing ids up to max_id (Model.reserve)."""
    cap = 1 << config.bits
    if max_id >= cap:
        return cap
    return max(min(MIN_SLOTS, cap), min(cap, _next_pow2(max_id + 1)))


def state_bytes(config: Config, max_id: int) -> int:
    """Bytes of one setting's state (and the mini-batch kernels' per-slot scratch)."""
    slots = table_slots(config, max_id)
    per_slot = layout(config)["K"] * np.dtype(config.dtype).itemsize
    if not config.online:
        per_slot += 8 + 1 + 8  # gradient buffer, marks, touched list
    return slots * per_slot


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (bytes), or None where there is none."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def check_memory(configs: list[Config], max_id: int, limit: int | None) -> dict:
    """Memory is states x table size (plus one copy: the best model so far). Refuses
    (ConfigError) a sweep that will not fit in `limit` bytes (None: 80 % of MemAvailable)."""
    per = state_bytes(configs[0], max_id)
    total = per * (len(configs) + 1)
    info = {"settings": len(configs), "bytes_per_state": per, "bytes": total,
            "table_slots": table_slots(configs[0], max_id)}
    if limit is None:
        avail = available_memory()
        if avail is None:
            return info
        limit, where = int(avail * MEMORY_SHARE), f"{MEMORY_SHARE:.0%} of the {_size(avail)} available"
    else:
        where = "--max-memory"
    info["limit"] = limit
    if total > limit:
        c = configs[0]
        raise ConfigError(
            f"tune needs {len(configs)} settings x {_size(per)} per state (+1 for the best model) = "
            f"{_size(total)}, more than {_size(limit)} ({where}); each state is a table of "
            f"{info['table_slots']:,} slots of {layout(c)['K']} x {c.dtype}: sweep fewer settings (--grid), "
            "lower --bits, or use --dtype float32")
    return info


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------

@dataclass
class _Entry:
    """One setting in the race."""

    index: int
    setting: dict
    config: Config
    trainer: Trainer | None = None
    status: str = "running"  # running | stopped | pruned | diverged
    passes: list = field(default_factory=list)  # per pass: {"pass", "progressive_logloss", ...}
    best_value: float | None = None
    best_pass: int = 0
    since_best: int = 0
    message: str | None = None
    margins: list | None = None  # holdout none + auc: progressive margins and labels
    labels: list | None = None
    row_losses: dict = field(default_factory=dict)  # pass -> the hold-out rows' log losses (float32)

    def to_json(self, metric: str) -> dict:
        return {"index": self.index, "setting": dict(self.setting), "status": self.status,
                "passes_run": len(self.passes), "best_pass": self.best_pass or None,
                metric: self.best_value, "per_pass": self.passes,
                **({"message": self.message} if self.message else {})}


class _TuneHoldout(PassHoldout):
    """PassHoldout that keeps the margins and labels of its last evaluation (each hold-out
    row's log loss: the standard errors of select "1se")."""

    last = None

    def take(self):
        m, y = super().take()
        self.last = (m, y)
        return m, y


def _better(a: float, b: float | None, metric: str, by: float = 0.0) -> bool:
    """a beats b by more than `by` (b None: a first value)."""
    if b is None:
        return True
    return a < b - by if metric == "logloss" else a > b + by


def _check_readable_twice(inputs) -> None:
    for path in inputs:
        if read_once(path):
            what = "stdin ('-')" if path == "-" else f"{path} (a FIFO)"
            raise ConfigError(f"{what} can be read once only, and tune reads its data several times (a "
                              "first read to count the rows, then one per pass); save it to a file first, "
                              "e.g. `zcat data.svm.gz > data.svm`")


@dataclass
class RowLabels:
    """Which rows are positive, 1 bit a row, by batch (kept by the count read: they place
    the hold-out)."""

    starts: list = field(default_factory=list)  # the first row of each batch
    bits: list = field(default_factory=list)  # np.packbits(labels > 0) of each batch
    rows: list = field(default_factory=list)

    def add(self, at: int, labels: np.ndarray) -> None:
        self.starts.append(at)
        self.bits.append(np.packbits(labels > 0))
        self.rows.append(len(labels))

    def positives(self, lo: int, hi: int) -> int:
        """Positive rows among rows lo..hi-1."""
        n = 0
        for at, bits, rows in zip(self.starts, self.bits, self.rows):
            a, b = max(lo, at), min(hi, at + rows)
            if a < b:
                n += int(np.unpackbits(bits, count=rows)[a - at:b - at].sum())
        return n


def count_rows(sources) -> tuple[int, int, RowLabels]:
    """(rows, largest feature id, which rows are positive) of the inputs, read once
    without training."""
    rows, max_id, labels = 0, -1, RowLabels()
    for src in sources:
        for b in src.open():
            labels.add(rows, b.labels)
            rows += b.rows
            max_id = max(max_id, int(b.max_id))
    return rows, max_id, labels


def tune(inputs, model_dir, options: TuneOptions | None = None, base: Config | None = None, *,
         force: bool = False, reporter: Reporter | None = None, return_models: bool = False) -> dict:
    """Sweep settings over inputs and write the best model to model_dir (see the module
    docstring). base: the settings every candidate starts from (data format, bits, dtype,
    the values the grid does not vary). Returns the results (what tune.json holds); with
    return_models also "models": setting index -> its Model after its last pass (kept in
    memory until the end: for comparing settings in Python)."""
    t0 = time.perf_counter()
    options = options or TuneOptions()
    base = base or Config()
    reporter = reporter or Reporter()
    inputs = expand_inputs(inputs)
    model_dir = os.fspath(model_dir)
    _check_readable_twice(inputs)
    if base.validation or base.holdout_every or base.early_stop:
        raise ConfigError("tune holds its own rows out and stops on its own: use --holdout tail|every "
                          "and --patience instead of --validation, --holdout-every or --early-stop")
    check_inputs(inputs, 2)
    base = record_schema(base, inputs)  # (what predict, eval and --resume check the data against)
    for line in auto_report(base.input_schema):  # (a table's columns typed by their values)
        reporter.log(line)
    grid = options.grid if options.grid is not None else DEFAULT_GRID
    candidates = expand_grid(base.replace(metric=options.metric, passes=options.pass_cap), grid)
    with checkpoint.writing(model_dir, force=force, warn=reporter.warn):
        has_model = checkpoint.has_checkpoint(model_dir)
        if has_model and not force:
            raise ConfigError(f"{model_dir} already holds a model: use --force to replace it, or another "
                              "-m directory")
        result = _run(inputs, model_dir, options, base, candidates, grid, reporter, has_model, t0,
                      return_models)
    return result


def _run(inputs, model_dir, options, base, candidates, grid, reporter, has_model, t0, return_models) -> dict:
    ids = [InputId(e["path"], e["size"], fingerprint(e["path"])) for e in input_ids(inputs)]
    wide = not all(input_format(p, base) in ("libsvm", "parquet-sparse") for p in inputs)
    names = checkpoint.names_for(model_dir, wide, resume=False)
    sources = [file_source(p, base, e.size, names) for p, e in zip(inputs, ids)]
    count_sources = [file_source(p, base, e.size) for p, e in zip(inputs, ids)]

    reporter.log(f"tune: counting the rows of {', '.join(display_name(p) for p in inputs)}")
    rows, max_id, labels = count_rows(count_sources)
    if rows < 2:
        raise DataError(f"{', '.join(inputs)}: {rows} row(s); tune needs rows to train on and rows to hold out")
    holdout = _holdout_plan(options, rows, labels)
    if holdout.get("fallback"):
        reporter.warn(f"tune: {holdout['fallback']}")
    memory = check_memory([c for _, c in candidates], max_id, options.max_memory)
    reporter.log(f"tune: {rows:,} rows; hold-out: {holdout['text']}; {len(candidates)} settings x "
                 f"{_size(memory['bytes_per_state'])} per state = {_size(memory['bytes'])} (with the best copy)")

    entries = []
    for i, (setting, config) in enumerate(candidates):
        log = start_run(None, ids, config)
        hold = None
        if holdout["mode"] == "tail":
            hold = _TuneHoldout(log, tail_from=holdout["tail_from"])
        elif holdout["mode"] == "every":
            hold = _TuneHoldout(log, every=holdout["every"])
        e = _Entry(i, setting, config, Trainer(config, Model(config, input_bytes=input_bytes(ids)), log,
                                               holdout=hold))
        if options.holdout == "none" and options.metric == "auc":
            e.margins, e.labels = [], []
        entries.append(e)
    rows_per_batch = entries[0].trainer.rows_per_batch
    kept = None  # (entry index, pass, value, State copy, TrainingLog copy)
    models = {}
    threads = options.threads or min(2, _cpus())
    active = list(entries)
    pool = concurrent.futures.ThreadPoolExecutor(threads) if threads > 1 else None
    try:
        for p in range(options.pass_cap):
            tp = time.perf_counter()
            _one_pass(active, sources, rows_per_batch, pool, threads, reporter, p, options)
            for e in active:
                if e.status == "running":
                    _end_pass(e, p, options)
                if e.status == "diverged":
                    reporter.warn(f"tune: {_label(e.setting)} dropped: {e.message}")
                elif return_models:
                    models[e.index] = e.trainer.model
            scored = sum(1 for e in active if len(e.passes) == p + 1 and e.status != "diverged")
            kept = _keep_best(entries, kept, p, options)
            active = _next_round(active, p, options)
            lead = entries[kept[0]] if kept else None
            reporter.log(f"tune: pass {p + 1} ({time.perf_counter() - tp:.1f}s): "
                         f"{scored} setting(s) scored, {len(active)} go on; best so far "
                         + (f"{_label(lead.setting)} at pass {kept[1]}: {options.metric} {kept[2]:.6f}"
                            if lead else "none"))
            if not active:
                break
    finally:
        if pool is not None:
            pool.shutdown()
    for e in entries:
        if e.status == "running":
            e.status = "stopped"  # (the pass cap)
        e.trainer = None  # (frees its state)
    if kept is None:
        raise DataError("tune: every setting diverged (the loss or the state stopped being finite); lower "
                        "alpha in the grid, scale large feature values, or check the data")
    kept, selection = _select(entries, kept, options)
    if selection["rule"] == "1se" and (selection["index"], selection["pass"]) != (
            selection["best"]["index"], selection["best"]["pass"]):
        reporter.log(f"tune: within {SE_RULE:g} standard error of the best ({selection['tied']} candidates), the most "
                     f"regularized: {_label(entries[kept[0]].setting)} at pass {kept[1]}")
        if not options.refit:  # (the model the hold-out scored, trained again: deterministic)
            kept = _retrain(entries[kept[0]], kept, ids, holdout, sources, rows_per_batch, reporter, options)
    result = _write(inputs, model_dir, options, base, entries, kept, holdout, memory, names, sources, ids,
                    rows, grid, reporter, has_model, t0, selection)
    if return_models:
        result["models"] = models
    return result


def _select(entries, kept, options):
    """The final (setting, pass): kept, the best on the hold-out, or with select "1se" the most
    regularized candidate within SE_RULE standard errors of it. The standard error is that of
    the mean difference of the hold-out rows' log losses, the candidate's minus the best's (paired:
    the same rows). Most regularized: the largest l1, then the largest l2, then the fewest passes,
    then the smallest alpha (then the grid's order). Returns (kept, what tune.json says)."""
    index, best_pass, value = kept[0], kept[1], kept[2]
    info = {"rule": "best", "index": index, "pass": best_pass,
            "best": {"index": index, "pass": best_pass, options.metric: value}}
    base = entries[index].row_losses.get(best_pass)
    if options.select != "1se" or base is None:
        return kept, info
    base = base.astype(np.float64)
    n = len(base)
    tied = []
    for e in entries:
        if e.status == "diverged":
            continue
        for q, losses in e.row_losses.items():
            d = losses.astype(np.float64) - base
            se = float(d.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
            if float(d.mean()) <= SE_RULE * se:
                c = e.config
                tied.append(((-c.l1, -c.l2, q, c.alpha, e.index), e, q))
    _, e, q = min(tied, key=lambda t: t[0])
    info.update(rule="1se", index=e.index, **{"pass": q}, tied=len(tied), se_rule=SE_RULE)
    if (e.index, q) == (index, best_pass):
        return kept, info
    return (e.index, q, e.passes[q - 1][f"holdout_{options.metric}"], None, None), info


def _retrain(e: _Entry, kept, ids, holdout, sources, rows_per_batch, reporter, options):
    """Setting e trained again for kept[1] passes with the sweep's hold-out: the very model
    the hold-out scored (the sweep keeps the state of its best candidate only)."""
    log = start_run(None, ids, e.config)
    hold = _TuneHoldout(log, tail_from=holdout["tail_from"]) if holdout["mode"] == "tail" else \
        _TuneHoldout(log, every=holdout["every"])
    r = _Entry(e.index, e.setting, e.config, Trainer(e.config, Model(e.config), log, holdout=hold))
    for p in range(kept[1]):
        _one_pass([r], sources, rows_per_batch, None, 1, reporter, p, options)
        _end_pass(r, p, options)
    return (e.index, kept[1], kept[2], r.trainer.model.state, r.trainer.log)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _holdout_plan(options: TuneOptions, rows: int, labels: RowLabels | None = None) -> dict:
    fallback = None
    k = options.holdout_every
    if options.holdout == "tail":
        held = min(rows - 1, max(1, math.ceil(rows * options.holdout_fraction)))
        pos = labels.positives(rows - held, rows) if labels is not None else 1
        total = labels.positives(0, rows) if labels is not None else 1
        q = total / rows
        if 0 < total < rows and pos in (0, held) and (1 - q) ** held + q ** held < 0.01:
            # a hold-out of one class ranks nothing (no AUC; the log loss favours the model that
            # predicts that class); when rows in random order would give one so rarely (< 1 %),
            # the data is sorted by label, or its tail is unlike the rest
            k = max(2, round(1 / options.holdout_fraction))
            fallback = (f"the last {held:,} rows are all {'positive' if pos else 'negative'} (is the data "
                        f"sorted by label?), so they cannot rank the settings: holding out every {k}th row "
                        "instead. An online learner needs such data shuffled first (e.g. `shuf DATA > "
                        "shuffled`)")
        else:
            return {"mode": "tail", "rows": held, "tail_from": rows - held, "positives": pos,
                    "text": f"the last {held:,} rows ({options.holdout_fraction:.0%}), the same in every pass"}
    if options.holdout == "every" or fallback:
        if rows < k:
            raise DataError(f"--holdout-every {k}: the data has {rows} row(s), so none would be held out")
        plan = {"mode": "every", "rows": rows // k, "every": k,
                "text": f"every {k}th row of each pass ({rows // k:,} rows), the same in every pass"}
        return plan | ({"fallback": fallback} if fallback else {})
    return {"mode": "none", "rows": 0, "text": "none: one pass, ranked on progressive validation loss"}


def _one_pass(active, sources, rows_per_batch, pool, threads, reporter, p, options) -> None:
    """Read the data once and hand each batch to every running setting's Trainer."""
    running = [e for e in active if e.status == "running"]
    groups = [running[i::threads] for i in range(threads)] if pool is not None else [running]
    on_bad = running[0].trainer._bad_line_policy() if running else None
    for src in sources:
        reporter.start(f"tune pass {p + 1}: {len(running)} setting(s), {display_name(src.path)}", src.size)
        for e in running:
            if e.status == "running":
                e.trainer._source = src  # (named if it diverges)
        for b in src.open(batch_rows=rows_per_batch, on_bad=on_bad, pass_index=p):
            if pool is None:
                _learn_group(groups[0], b)
            else:
                for f in [pool.submit(_learn_group, g, b) for g in groups if g]:
                    f.result()
            reporter.advance(b.raw_bytes, b.rows, 0.0)
        reporter.end_input()
        for e in running:
            if e.status != "running":
                continue
            e.trainer.log.run.file += 1
            e.trainer.log.run.offset = e.trainer.log.run.line = 0


def _learn_group(group, b) -> None:
    for e in group:
        if e.status != "running":
            continue
        try:
            e.trainer.learn(b)
        except DataError as exc:  # (Trainer._diverged: the loss stopped being finite)
            _diverge(e, str(exc))
            continue
        if e.margins is not None:
            e.margins.append(e.trainer._margins[:b.rows].copy())
            e.labels.append((b.labels > 0).astype(np.float64))


def _diverge(e: _Entry, why: str) -> None:
    e.status, e.message = "diverged", why
    e.trainer = None  # (frees its state)


def _end_pass(e: _Entry, p: int, options: TuneOptions) -> None:
    """Close the pass of one setting: its progressive loss, its hold-out evaluation, its best."""
    t = e.trainer
    t.end_pass()
    run = t.log.run
    run.pass_, run.file, run.offset, run.line = p + 1, 0, 0, 0
    rec = {"pass": p + 1, "progressive_logloss": t.log.history[-1].logloss}
    if options.holdout == "none":
        if options.metric == "auc":
            value = metrics.roc_auc(np.concatenate(e.margins), np.concatenate(e.labels))
            e.margins = e.labels = None
        else:
            value = rec["progressive_logloss"]
        rec[f"progressive_{options.metric}"] = value
    else:
        t.evaluate(p + 1)
        ev = t.log.evals[-1]
        rec.update({"holdout_logloss": ev.logloss, "holdout_auc": ev.auc})
        value = getattr(ev, options.metric)
        if options.select == "1se" and options.metric == "logloss":
            m, y = t.holdout.last
            e.row_losses[p + 1] = (np.logaddexp(0.0, m) - y * m).astype(np.float32)
    e.passes.append(rec)
    finite = value is not None and math.isfinite(value) and rec["progressive_logloss"] is not None \
        and math.isfinite(rec["progressive_logloss"])
    if not finite or not _state_finite(t.model):
        _diverge(e, f"pass {p + 1}: the {'state' if finite else options.metric} is not finite")
        return
    h = t.log.history[-1]
    if h.logloss > h.best_constant_logloss + DIVERGING_NATS:  # (the rule `ftrl train` warns by)
        _diverge(e, f"pass {p + 1}: progressive log loss {h.logloss:.4g} is more than {DIVERGING_NATS:g} nat above "
                 f"the best constant predictor's {h.best_constant_logloss:.4g}")
        return
    if options.fixed:  # the model after the last pass, as `ftrl train --passes N` gives it
        e.best_value, e.best_pass = value, p + 1
    elif _better(value, e.best_value, options.metric, options.min_improvement if e.best_value is not None else 0):
        e.best_value, e.best_pass, e.since_best = value, p + 1, 0
    else:
        e.since_best += 1


def _state_finite(model: Model) -> bool:
    st = model.state
    return bool(np.isfinite(st.table).all() and np.isfinite(st.bias).all() and np.isfinite(st.layer).all())


def _keep_best(entries, kept, p, options):
    """The best (setting, pass) so far; its state is copied when this pass set it."""
    fresh = [e for e in entries if e.status == "running" and e.best_pass == p + 1]
    fresh.sort(key=lambda e: (e.best_value if options.metric == "logloss" else -e.best_value, e.index))
    if fresh and (kept is None or _better(fresh[0].best_value, kept[2], options.metric)):
        e = fresh[0]
        return (e.index, p + 1, e.best_value, e.trainer.model.state.copy(), e.trainer.log.copy())
    return kept


def _next_round(active, p, options):
    """Who runs the next pass: the settings still improving (patience), the better
    ceil(keep * n) of them (successive halving); none after the last pass."""
    ran = [e for e in active if e.status == "running"]
    if p + 1 >= options.pass_cap:
        return []
    if options.fixed:
        return ran
    going = [e for e in ran if e.since_best < options.patience]
    for e in ran:
        if e.since_best >= options.patience:
            e.status = "stopped"
    n_keep = max(1, math.ceil(len(ran) * options.keep))
    going.sort(key=lambda e: (e.best_value if options.metric == "logloss" else -e.best_value, e.index))
    for e in going[n_keep:]:
        e.status = "pruned"
        e.trainer = None
    return going[:n_keep]


def _write(inputs, model_dir, options, base, entries, kept, holdout, memory, names, sources, ids, rows,
           grid, reporter, has_model, t0, selection) -> dict:
    """The winner (or its refit) as DIR's model, and every setting's results in tune.json."""
    index, best_pass, value, state, log = kept
    win = entries[index]
    config = win.config.replace(passes=best_pass)  # the reusable settings: `--config DIR/config.json`
    refit = options.refit and options.holdout != "none"  # (without a hold-out it saw every row)
    if refit:
        reporter.log(f"tune: refitting {_label(win.setting)} on all {rows:,} rows for {best_pass} pass(es)")
        refit_log = start_run(None, ids, config)
        trainer = Trainer(config, Model(config, input_bytes=input_bytes(ids)), refit_log, names=names)
        model = trainer.run(sources)
        log = trainer.log
    else:
        model = Model(config, state)
        log.run.passes = best_pass
    log.finished = True
    log.kept = Best(metric=options.metric, value=value, pass_=best_pass,
                    examples=log.examples_seen, reason="refit" if refit else "best")
    checkpoint.start_run(model_dir, config, replaces=has_model)
    checkpoint.ModelDir(model_dir, names).save(model, log)
    seconds = time.perf_counter() - t0
    result = {
        "kind": "ftrl-tune", "format_version": TUNE_FORMAT,
        "model_dir": model_dir,
        "inputs": [i.path for i in ids],
        "rows": rows,
        "metric": options.metric,
        "holdout": {k: v for k, v in holdout.items() if k != "text"} | {"description": holdout["text"]},
        "grid": grid,
        "options": {k: v for k, v in dataclasses.asdict(options).items() if k != "grid"},
        "memory": memory,
        "best": {"index": index, "setting": dict(win.setting), "pass": best_pass, options.metric: value,
                 "refit": refit, "config": {n: getattr(config, n) for n in GRID_NAMES} | {
                     "passes": best_pass},
                 "rule": selection["rule"],
                 "lowest": selection["best"] | {"setting": dict(entries[selection["best"]["index"]].setting)},
                 **({"tied": selection["tied"], "se_rule": selection["se_rule"]} if selection["rule"] == "1se"
                    else {})},
        "passes_read": max((len(e.passes) for e in entries), default=0),
        "settings": [e.to_json(options.metric) for e in entries],
        "columns": (base.input_schema or {}).get("auto"),
        "seconds": seconds,
    }
    result = json_finite(result)
    checkpoint.save_tune(model_dir, result)
    return result


def table_text(result: dict) -> str:
    """Every setting's hold-out losses per pass, the best marked (what `ftrl tune` prints)."""
    metric = result["metric"]
    key = "holdout" if result["holdout"]["mode"] != "none" else "progressive"
    names = list(result["grid"])
    npass = result["passes_read"]
    head = [f"{n:>10}" for n in names] + [f"{'pass ' + str(p + 1):>9}" for p in range(npass)] + [
        f"{'best':>9}", " status"]
    lines = [f"{key} {metric} per pass ({result['holdout']['description']}):", "".join(head)]
    best = result["best"]
    for s in result["settings"]:
        vals = {r["pass"]: r.get(f"{key}_{metric}") for r in s["per_pass"]}
        cells = [f"{s['setting'][n]:>10g}" for n in names]
        for p in range(1, npass + 1):
            v = vals.get(p)
            mark = "*" if s["index"] == best["index"] and p == best["pass"] else " "
            cells.append(f"{'':>9}" if p not in vals else (f"{'n/a':>8}" if v is None or not math.isfinite(v)
                                                             else f"{v:>8.5f}") + mark)
        bv = s.get(metric)
        cells.append(f"{bv:>9.5f}" if bv is not None and math.isfinite(bv) else f"{'-':>9}")
        cells.append(" " + s["status"] + ("" if s["index"] != best["index"] else " (kept)"))
        lines.append("".join(cells))
    b = result["best"]
    low = b.get("lowest", {})
    why = ""
    if b.get("rule") == "1se" and (low.get("index"), low.get("pass")) != (b["index"], b["pass"]):
        why = (f" (the most regularized of the {b['tied']} within {b['se_rule']:g} standard error of the lowest, "
               f"{_label(low['setting'])} at pass {low['pass']}: {low[metric]:.6f})")
    lines.append(f"best: {_label(b['setting'])}, {b['pass']} pass(es): {metric} {b[metric]:.6f}{why}"
                 + (" (refit on all rows)" if b["refit"] else "") + f"; model in {result['model_dir']} "
                 f"({result['seconds']:.1f}s)")
    return "\n".join(lines)
