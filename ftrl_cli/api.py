"""The library API shared by the CLI and Python users: train, predict, evaluate, export.

    from ftrl_cli import train, predict, evaluate, Config
    summary = train(["a9a"], "model/", overrides={"alpha": 0.1})
    metrics = evaluate("model/", ["a9a.t"])
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import time

import numpy as np

from . import checkpoint, metrics
from . import kernels as K
from .atomic import atomic_writer
from .config import Config
from .errors import ConfigError, DataError, Interrupted, ModelError
from .external import from_keras, from_mxnet, from_novograd, read_json
from .model import Model
from .progress import Reporter
from .readers import (
    BATCH_ROWS,
    NameMap,
    check_inputs,
    convert_to_parquet,
    display_name,
    expand_inputs,
    input_format,
    input_ids,
    open_batches,
)


def start_numba_for_cli() -> None:
    """Faster start for the command line (see kernels.start_without_scipy)."""
    K.start_without_scipy()


# ---------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------

def resolve_config(model_dir, *, config_file=None, overrides=None, resume=False,
                   external=None) -> Config:
    """Settings for a run: the model's own config on --resume, else --config FILE or the
    defaults; then an external optimizer config (external = (kind, path) with kind keras,
    mxnet or novograd); explicit settings (`overrides`) win in every case."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if external:
        kind, path = external
        mapper = {"keras": from_keras, "mxnet": from_mxnet, "novograd": from_novograd}[kind]
        overrides = {**mapper(read_json(path), source=str(path)), **overrides}
    if resume and checkpoint.has_checkpoint(model_dir):
        base = checkpoint.read_config(model_dir)
        changed = [k for k in Config.STRUCTURAL if k in overrides and overrides[k] != getattr(base, k)]
        if changed:
            k = changed[0]
            raise ConfigError(f"--resume cannot change {k} ({getattr(base, k)!r} in {model_dir}, "
                              f"{overrides[k]!r} given); train a new model instead")
    elif config_file:
        base = Config.from_json_file(config_file)
    else:
        base = Config()
    try:
        return base.replace(**overrides)
    except TypeError as e:
        raise ConfigError(str(e)) from None


def _names_for(model_dir, config, inputs):
    """The slot -> column=value map of a model trained on wide tables (None for libsvm)."""
    if all(input_format(p, config) in ("libsvm", "parquet-sparse") for p in inputs):
        return None
    path = os.path.join(model_dir, NAMES)
    return NameMap.load(path) if os.path.exists(path) else NameMap()


NAMES = "names.tsv"


# ---------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------

class _StopFlag:
    """SIGINT/SIGTERM set a flag; training stops after the current batch with a checkpoint."""

    def __init__(self):
        self.signum = None

    def __enter__(self):
        self.saved = {}
        if hasattr(signal, "SIGTERM") and _in_main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.saved[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)


def _in_main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


def train(inputs, model_dir, config: Config | None = None, *, config_file=None, overrides=None,
          external=None, resume: bool = False, force: bool = False,
          reporter: Reporter | None = None, batch_rows: int = BATCH_ROWS) -> dict:
    """Train on inputs (libsvm, Parquet, CSV/TSV) and write model_dir (config.json + checkpoints).

    resume: continue from model_dir's newest checkpoint: an unfinished run picks up at its
    recorded input position; a finished one trains further on `inputs`.
    Returns a summary dict (examples, passes, progressive logloss, seconds, ...).
    """
    reporter = reporter or Reporter()
    inputs = expand_inputs(inputs)
    model_dir = os.fspath(model_dir)
    if config is None:
        config = resolve_config(model_dir, config_file=config_file, overrides=overrides,
                                resume=resume, external=external)
    check_inputs(inputs, config.passes)

    meta = None
    if resume and os.path.isdir(model_dir) and checkpoint.has_checkpoint(model_dir):
        model, meta = checkpoint.load(model_dir, config, warn=reporter.warn)
    else:
        if resume:
            reporter.log(f"{model_dir}: no checkpoint yet; starting from the beginning")
        elif not force and os.path.isdir(model_dir) and checkpoint.has_checkpoint(model_dir):
            raise ConfigError(f"{model_dir} already holds a model: use --resume to continue it, "
                              "--force to replace it, or another -m directory")
        elif force and os.path.isdir(model_dir):
            _clear_model_dir(model_dir)
        model = Model(config)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as e:
        raise ModelError(f"{model_dir}: cannot create model directory ({e.strerror or e})") from None
    checkpoint.write_config(model_dir, config)

    ids_of_inputs = input_ids(inputs)
    meta = _start_run(meta, ids_of_inputs, config)
    run = meta["run"]
    names = _names_for(model_dir, config, inputs)
    every = config.checkpoint_every
    # Read batches hold whole optimizer batches, so that where the input is cut (and where a
    # checkpoint lands) never changes the steps taken. An input's last batch may be short.
    B = config.batch_size
    rows_per_batch = max(1, (min(batch_rows, every) if every else batch_rows) // B) * B
    val_every = config.validation_every
    if val_every:
        rows_per_batch = max(B, min(rows_per_batch, (val_every // B) * B or B))
    y = np.empty(rows_per_batch)
    sw = np.empty(rows_per_batch)
    margins = np.empty(rows_per_batch)
    cw = config.class_weight
    on_bad = _bad_line_policy(config, meta, reporter)
    holdout = _Holdout(config.holdout_every, run) if config.holdout_every else None
    t0 = last_ckpt = time.perf_counter()
    start_examples = meta["examples_seen"]
    start_bad = meta["bad_lines"]
    features = 0
    since_ckpt = since_eval = 0
    stopped_early = False

    def evaluate_now(pass_no):
        """One validation: record it, keep the best model, count towards early stopping."""
        if config.validation:
            ms, ys = [], []
            bw = model.bias_weight()
            for vb in open_batches(config.validation, config):
                ms.append(model.margins(vb.indptr, vb.ids, vb.values, bw))
                ys.append((vb.labels > 0).astype(np.float64))
            m_all, y_all = np.concatenate(ms), np.concatenate(ys)
        elif holdout is not None:
            m_all, y_all = holdout.take()
        else:
            return False
        rec = {"pass": pass_no, "examples": meta["examples_seen"],
               "rows": len(y_all), "logloss": float(metrics.logloss(m_all, y_all)) if len(y_all) else None,
               "auc": metrics.roc_auc(m_all, y_all) if len(y_all) else None}
        meta["evals"].append(rec)
        reporter.evaluation(rec)
        value = rec[config.metric]
        if value is None or not np.isfinite(value):
            return False
        best = meta.get("best")
        better = best is None or (value < best["value"] if config.metric == "logloss" else value > best["value"])
        if better:
            meta["best"] = {"metric": config.metric, "value": value, "pass": rec["pass"],
                            "examples": rec["examples"]}
            meta["since_best"] = 0
            if config.early_stop:
                checkpoint.save_best(model_dir, model, meta["best"])
        else:
            meta["since_best"] = meta.get("since_best", 0) + 1
        return bool(config.early_stop) and meta["since_best"] >= config.early_stop

    with _StopFlag() as stop:
        try:
            for p in range(run["pass"], config.passes):
                order = _file_order(len(inputs), config, p)
                for i in range(run["file"], len(inputs)):
                    path = inputs[order[i]]
                    reporter.start(f"pass {p + 1}/{config.passes} {display_name(path)}",
                                   ids_of_inputs[order[i]]["size"])
                    for b in open_batches(path, config, start_offset=run["offset"], start_line=run["line"],
                                          batch_rows=rows_per_batch, on_bad=on_bad, names=names,
                                          shuffle_seed=(config.seed, p, order[i]) if config.shuffle else None):
                        if holdout is not None:
                            b = holdout.split(b, model)
                        n = b.rows
                        np.greater(b.labels, 0.0, out=y[:n])
                        _row_weights(b, y[:n], cw, sw[:n])
                        total = model.learn(b.indptr, b.ids, b.values, y[:n], sw[:n], b.max_id, margins[:n],
                                            run["loss_sum"])
                        loss = total - run["loss_sum"]
                        _curve_points(meta, run, margins[:n], y[:n], sw[:n], t0, reporter)
                        # running sums added row by row: the same whatever the batches (no BLAS call)
                        run["loss_sum"] = total
                        run["weight_sum"] = _running_sum(run["weight_sum"], sw[:n])
                        run["pos_sum"] = _running_sum(run["pos_sum"], sw[:n][y[:n] > 0])
                        run["examples"] += n
                        meta["examples_seen"] += n
                        features += len(b.ids)
                        since_ckpt += n
                        since_eval += n
                        run["offset"], run["line"] = b.end_offset, b.end_line
                        reporter.advance(b.raw_bytes, n, loss)
                        if val_every and since_eval >= val_every:
                            since_eval = 0
                            if evaluate_now(meta["passes_done"] + 1):
                                stopped_early = True
                                break
                        due = (every and since_ckpt >= every) or (
                            config.checkpoint_seconds and time.perf_counter() - last_ckpt >= config.checkpoint_seconds)
                        if stop.signum is not None or due:
                            _save_names(model_dir, names)
                            checkpoint.save(model_dir, model, meta)
                            since_ckpt = 0
                            last_ckpt = time.perf_counter()
                            if stop.signum is not None:
                                code = 130 if stop.signum == signal.SIGINT else 143
                                raise Interrupted(
                                    f"interrupted: checkpoint written after {meta['examples_seen']:,} "
                                    f"examples; continue with --resume", code)
                    reporter.end_input()
                    if stopped_early:
                        break
                    run.update(file=i + 1, offset=0, line=0)
                _end_pass(meta, run)
                if stopped_early or evaluate_now(meta["passes_done"]):
                    stopped_early = True
                    break
                run.update(**{"pass": p + 1, "file": 0, "offset": 0, "line": 0})
            model.finalize()
            if config.early_stop and meta.get("best") and checkpoint.has_best(model_dir):
                model = checkpoint.load_best(model_dir, config)  # the best model is the one kept
                meta["kept"] = dict(meta["best"], reason="early stop" if stopped_early else "best")
            meta["stopped_early"] = stopped_early
            meta["finished"] = True
            _save_names(model_dir, names)
            checkpoint.save(model_dir, model, meta)
        finally:
            reporter.close()

    seconds = time.perf_counter() - t0
    examples = meta["examples_seen"] - start_examples
    passes_run = meta["history"][len(meta["history"]) - (meta["passes_done"] - run.get("first_pass", 0)):]
    summary = {
        "model_dir": model_dir,
        "examples": examples,
        "examples_seen": meta["examples_seen"],
        "passes": len(passes_run),
        "progressive_logloss": passes_run[0]["logloss"] if passes_run else None,
        "last_pass_logloss": passes_run[-1]["logloss"] if passes_run else None,
        "best_constant_logloss": passes_run[0].get("best_constant_logloss") if passes_run else None,
        "validation": meta["evals"][-1] if meta["evals"] else None,
        "best": meta.get("best"),
        "kept": meta.get("kept"),
        "stopped_early": stopped_early,
        "features": features,
        "seconds": seconds,
        "rows_per_second": examples / seconds if seconds > 0 else None,
        "bad_lines": meta["bad_lines"] - start_bad,
        "table_slots": model.size,
        "hashed_collisions": model.collisions() + (names.collisions() if names is not None else 0),
        "curve": [c["train_logloss"] for c in meta["curve"]],
    }
    if model.alias.size and not model.alias_overflow:
        reporter.warn(f"feature ids >= 2**{config.bits} were hashed into the table; "
                      f"{summary['hashed_collisions']} slot(s) are shared; raise --bits to avoid it")
    return summary


def _file_order(n, config, pass_index):
    """The order of the inputs in a pass: as given, or shuffled by (seed, pass)."""
    if not config.shuffle:
        return list(range(n))
    return [int(i) for i in np.random.default_rng([config.seed, pass_index]).permutation(n)]


def _save_names(model_dir, names):
    if names is not None:
        try:
            names.save(os.path.join(model_dir, NAMES))
        except OSError as e:
            raise ModelError(f"{model_dir}: cannot write {NAMES} ({e.strerror or e})") from None


def _end_pass(meta, run):
    """Close a pass in the history: its progressive loss and the best constant's."""
    ws, ps = run["weight_sum"], run["pos_sum"]
    rate = ps / ws if ws > 0 else 0.0
    const = (-(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))) if 0 < rate < 1 else 0.0
    meta["history"].append({"pass": meta["passes_done"] + 1, "examples": run["examples"],
                            "logloss": run["loss_sum"] / ws if ws > 0 else None,
                            "best_constant_logloss": float(const), "positive_rate": rate})
    meta["passes_done"] += 1
    run.update(examples=0, loss_sum=0.0, weight_sum=0.0, pos_sum=0.0)


MAX_CURVE = 200
FIRST_POINT = 128


def _running_sums(total: float, x: np.ndarray) -> np.ndarray:
    """total + x[0], total + x[0] + x[1], ...: added left to right (np.sum adds pairwise, so
    its result would depend on where batches end)."""
    return np.cumsum(np.concatenate([[total], x]))[1:]


def _running_sum(total: float, x: np.ndarray) -> float:
    return float(_running_sums(total, x)[-1]) if len(x) else total


def _curve_points(meta, run, m, y, w, t0, reporter):
    """The progressive loss of the current pass at doubling example counts (VW's table,
    the summary's sparkline, `inspect --plot`), from this batch's per-row margins."""
    curve = meta["curve"]
    before = meta["examples_seen"]
    target = max(FIRST_POINT, 2 * curve[-1]["examples"]) if curve else FIRST_POINT
    if before + len(m) < target or len(curve) >= MAX_CURVE:
        return
    cum_loss = np.empty(len(m))
    K.running_logloss(run["loss_sum"], m, y, w, cum_loss)  # (the training kernels' sums)
    cum_w = _running_sums(run["weight_sum"], w)
    seconds = time.perf_counter() - t0
    while target <= before + len(m) and len(curve) < MAX_CURVE:
        j = target - before - 1
        if cum_w[j] > 0:
            point = {"examples": int(target), "pass": meta["passes_done"] + 1,
                     "train_logloss": float(cum_loss[j] / cum_w[j]), "seconds": seconds}
            curve.append(point)
            reporter.point(point)
        target *= 2


class _Holdout:
    """--holdout-every N: every Nth example of the stream is scored, never trained on.

    A held-out row is scored with the model as it stands at the start of its batch; its
    margin and label are kept until the next evaluation.
    """

    def __init__(self, every, run):
        self.every = every
        self.run = run
        self.m, self.y = [], []

    def split(self, b, model):
        start = self.run.get("stream_row", 0)
        n = b.rows
        idx = np.arange(start, start + n)
        self.run["stream_row"] = start + n
        held = (idx + 1) % self.every == 0
        if not held.any():
            return b
        sub = _select_rows(b, held)
        self.m.append(model.margins(sub.indptr, sub.ids, sub.values))
        self.y.append((sub.labels > 0).astype(np.float64))
        return _select_rows(b, ~held)

    def take(self):
        m = np.concatenate(self.m) if self.m else np.empty(0)
        y = np.concatenate(self.y) if self.y else np.empty(0)
        self.m, self.y = [], []
        return m, y


def _select_rows(b, keep):
    """A new Batch with the rows where keep is True (vectorized)."""
    lengths = np.diff(b.indptr)
    feat = np.repeat(keep, lengths)
    indptr = np.zeros(int(keep.sum()) + 1, np.int64)
    np.cumsum(lengths[keep], out=indptr[1:])
    ids = b.ids[feat]
    return dataclasses.replace(b, labels=b.labels[keep], indptr=indptr, ids=ids, values=b.values[feat],
                               max_id=int(ids.max(initial=-1)),
                               weights=None if b.weights is None else b.weights[keep])


def _bad_line_policy(config, meta, reporter):
    """The on_bad callback for the readers: None (fail), or count/warn and skip."""
    if config.on_bad_line == "fail":
        return None
    seen = [0]

    def on_bad(exc):
        seen[0] += 1
        meta["bad_lines"] += 1
        if config.max_bad_lines is not None and seen[0] > config.max_bad_lines:
            raise DataError(f"more than {config.max_bad_lines} bad lines (--max-bad-lines); last: {exc}")
        if config.on_bad_line == "warn":
            reporter.warn(f"skipped {exc}")

    return on_bad


def _row_weights(batch, y, class_weight, out):
    """Per-row importance: the data's weights times the class weight of each row's label."""
    if batch.weights is None:
        out[:] = 1.0
    else:
        out[:] = batch.weights
    if class_weight is not None:
        out *= np.where(y > 0, class_weight[1], class_weight[0])


def _start_run(meta, input_ids, config):
    """Meta for this run: continue an unfinished run, or begin a new one."""
    fresh_run = {"inputs": input_ids, "passes": config.passes, "pass": 0, "file": 0,
                 "offset": 0, "line": 0, "examples": 0, "loss_sum": 0.0, "weight_sum": 0.0,
                 "pos_sum": 0.0, "stream_row": 0, "first_pass": meta["passes_done"] if meta else 0}
    if meta is None:
        return {"examples_seen": 0, "passes_done": 0, "history": [], "finished": False,
                "bad_lines": 0, "evals": [], "curve": [], "run": fresh_run}
    if not meta.get("finished"):
        old = meta["run"]
        if [e["path"] for e in old["inputs"]] != [e["path"] for e in input_ids]:
            raise ConfigError("the checkpoint is of an unfinished run on "
                              f"{', '.join(e['path'] for e in old['inputs'])}; resume it with the same "
                              "inputs (or start a new model)")
        for a, b in zip(old["inputs"], input_ids):
            if a["size"] != b["size"]:
                raise ConfigError(f"{b['path']} changed since the checkpoint was written "
                                  f"({a['size']} bytes then, {b['size']} now); cannot resume mid-file")
            if a["path"] == "-":
                raise ConfigError("the unfinished run read stdin, which cannot be replayed; "
                                  "start a new model")
        if old["passes"] != config.passes:
            raise ConfigError(f"the unfinished run was for --passes {old['passes']}; "
                              f"resume it with the same value")
        return meta
    meta = dict(meta, finished=False, run=fresh_run)
    return meta


def _clear_model_dir(model_dir):
    """--force: remove the files of the model in model_dir (and nothing else)."""
    for name in os.listdir(model_dir):
        if name in (checkpoint.MANIFEST, checkpoint.CONFIG, checkpoint.BEST, NAMES) or (
                name.startswith("ckpt-") and name.endswith(".npz")):
            os.unlink(os.path.join(model_dir, name))


# ---------------------------------------------------------------------------------------
# predict / evaluate / export
# ---------------------------------------------------------------------------------------

def load_model(model_dir, read_overrides=None) -> Model:
    """The newest checkpoint's model; read_overrides change how data is read (e.g. a test
    CSV without the header line: {"header": False, "columns": [...]})."""
    model, _ = checkpoint.load(model_dir)
    over = {k: v for k, v in (read_overrides or {}).items() if v is not None}
    if over:
        model.config = model.config.replace(**over)
    return model


def iter_margins(model: Model, inputs, reporter: Reporter | None = None, with_ids: bool = False):
    """Yield (path, margins, batch) per batch, in input order, reading every input as the
    model's config says (format, columns, hashing)."""
    reporter = reporter or Reporter()
    bias_w = model.bias_weight()
    for path in inputs:
        reporter.start(display_name(path), input_ids([path])[0]["size"])
        for b in open_batches(path, model.config, with_ids=with_ids):
            m = model.margins(b.indptr, b.ids, b.values, bias_w)
            reporter.advance(b.raw_bytes, b.rows, 0.0)
            yield path, m, b
        reporter.end_input()


def format_floats(x: np.ndarray) -> bytes:
    """b"".join(b"%.17g\n" % v for v in x), formatted in Numba: 17 significant digits
    always parse back to the same float. The rare values the kernel leaves out (below
    ~1e-41 or above 2**64 in magnitude) are formatted here, by Python."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    buf = np.empty(K.BYTES_PER_VALUE * len(x), np.uint8)
    skip_idx = np.empty(len(x), np.int64)
    skip_pos = np.empty(len(x), np.int64)
    nbytes, nskip = K.format_g17(x, buf, skip_idx, skip_pos)
    if nskip == 0:
        return buf[:nbytes].tobytes()
    parts, prev = [], 0
    for i, pos in zip(skip_idx[:nskip].tolist(), skip_pos[:nskip].tolist()):
        parts += [buf[prev:pos].tobytes(), b"%.17g" % x[i]]
        prev = pos
    parts.append(buf[prev:nbytes].tobytes())
    return b"".join(parts)


def predict(model_dir, inputs, out=None, *, output: str = "proba", threshold: float = 0.5,
            with_id: bool = False, with_label: bool = False, raw: bool = False,
            read_overrides=None, reporter: Reporter | None = None) -> int:
    """Write one line per row to the binary stream `out` (stdout by default), in input order:
    [id TAB][label TAB]value, value being the probability (output="proba"), the margin
    ("margin", or raw=True) or the 0/1 label at `threshold` ("label"). Floats are printed so
    that they parse back exactly. The id is the text after '#' on the row's line."""
    if output not in ("proba", "margin", "label"):
        raise ConfigError(f"output must be proba, margin or label, got {output!r}")
    output = "margin" if raw else output
    inputs = expand_inputs(inputs)
    check_inputs(inputs, 1)
    model = load_model(model_dir, read_overrides)
    out = out or sys.stdout.buffer
    count = 0
    try:
        for _, m, b in iter_margins(model, inputs, reporter, with_ids=with_id):
            if not len(m):
                continue
            if output == "margin":
                text = format_floats(m)
            else:
                p = np.empty_like(m)
                K.sigmoid_array(m, p)
                text = format_floats(p) if output == "proba" else (
                    "\n".join(["1" if v else "0" for v in (p >= threshold).tolist()]) + "\n").encode()
            count += len(m)
            if not with_label and not with_id:
                out.write(text)
                continue
            cols = [text.decode().split("\n")[:-1]]
            if with_label:
                cols.insert(0, [f"{v:g}" for v in b.labels.tolist()])
            if with_id:
                ids = b.ids_text or [""] * len(m)
                cols.insert(0, [str(t).replace("\t", " ") for t in ids])
            out.write(("\n".join(["\t".join(r) for r in zip(*cols)]) + "\n").encode())
    finally:
        if reporter:
            reporter.close()
    return count


def evaluate(model_dir, inputs, *, threshold: float = 0.5, per_file: bool = False, bins: int = 10,
             plot: str | None = None, read_overrides=None, reporter: Reporter | None = None) -> dict:
    """Metrics of the model on labelled inputs (see metrics.summary); with per_file, also
    one summary per input under "files"."""
    inputs = expand_inputs(inputs)
    check_inputs(inputs, 1)
    model = load_model(model_dir, read_overrides)
    parts = {path: ([], [], []) for path in inputs}
    try:
        for path, m, b in iter_margins(model, inputs, reporter):
            fm, fy, fw = parts[path]
            fm.append(m)
            fy.append((b.labels > 0).astype(np.float64))
            fw.append(np.ones(b.rows) if b.weights is None else b.weights.copy())
    finally:
        if reporter:
            reporter.close()
    joined = {path: tuple(np.concatenate(a) if a else np.empty(0) for a in arrays)
              for path, arrays in parts.items()}
    files = {path: _summary(*arrays, threshold, bins) for path, arrays in joined.items()} if per_file else {}
    m, y, w = (np.concatenate([arrays[k] for arrays in joined.values()]) for k in range(3))
    result = _summary(m, y, w, threshold, bins)
    if per_file:
        result["files"] = files
    if plot:
        from .plots import plot_eval

        plot_eval(m, y, plot, weights=None if np.all(w == 1) else w)
    return result


def _summary(m, y, w, threshold, bins):
    return metrics.summary(m, y, threshold, weights=None if np.all(w == 1) else w, bins=bins)


def _load_names(model_dir):
    path = os.path.join(model_dir, NAMES)
    if not os.path.exists(path):
        return None
    return NameMap.load(path)


def inspect(model_dir, top: int = 10) -> dict:
    """What a model directory holds: settings, training history, table, top weights."""
    model, meta = checkpoint.load(model_dir)
    c = model.config
    w = model.weights()
    init = model._fresh(1, model.st.dtype)[0]
    touched = np.any(model.st != init, axis=1)
    nonzero = w != 0
    order = np.argsort(w, kind="stable")
    names = dict(model.named_weights()) if model.alias.size else None
    columns = _load_names(model_dir)

    def named(idx, sign):
        out = []
        for s in idx:
            if w[s] * sign <= 0:
                break
            name = str(s)
            if names is not None:
                name = next((n for n in names if str(s) in n.split("+")), name)
            if columns is not None:
                name = columns.get(int(s), name)
            out.append({"feature": name, "slot": int(s), "weight": float(w[s])})
        return out

    manifest = checkpoint.read_manifest(model_dir)
    return {
        "model_dir": os.fspath(model_dir),
        "config": c.to_dict(),
        "examples_seen": meta.get("examples_seen"),
        "passes_done": meta.get("passes_done"),
        "finished": meta.get("finished"),
        "history": meta.get("history", []),
        "evals": meta.get("evals", []),
        "best": meta.get("best"),
        "kept": meta.get("kept"),
        "stopped_early": meta.get("stopped_early", False),
        "bad_lines": meta.get("bad_lines", 0),
        "curve": meta.get("curve", []),
        "table": {"capacity": model.cap, "allocated": model.size, "touched": int(touched.sum()),
                  "nonzero": int(nonzero.sum()), "l1_zeroed": int((touched & ~nonzero).sum()),
                  "hashed_ids_known": int(len(model.alias)), "collisions": model.collisions(),
                  "state_bytes": int(model.st.nbytes)},
        "bias": model.bias_weight(),
        "top_positive": named(order[::-1][:top], 1),
        "top_negative": named(order[:top], -1),
        "checkpoints": manifest.get("checkpoints", []),
        "iterations": model.iterations,
    }


def export(model_dir, out=None) -> int:
    """Write `feature<TAB>weight` for every nonzero weight, then `bias<TAB>weight`.

    Features are named by their id in the data; slots shared by hashed ids list every id
    seen there joined by '+'. Weights print with repr(), which parses back exactly.
    """
    model = load_model(model_dir)
    out = out or sys.stdout.buffer
    names = _load_names(model_dir)
    lines = [f"{names.get(int(name), name) if names and name.isdigit() else name}\t{w!r}"
             for name, w in model.named_weights()]
    lines.append(f"bias\t{model.bias_weight()!r}")
    out.write(("\n".join(lines) + "\n").encode())
    return len(lines)


@contextlib.contextmanager
def output_stream(path):
    """stdout for None or '-', else an atomic writer: the file appears only when complete."""
    if path in (None, "-"):
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        with atomic_writer(path) as f:
            yield f
    except OSError as e:
        raise DataError(f"{path}: cannot write ({e.strerror or e})") from None


def convert(inputs, out_path, config: Config | None = None, *, overrides=None,
            compression: str = "lz4", reporter: Reporter | None = None) -> dict:
    """Write libsvm or CSV/TSV/Parquet inputs as one sparse Parquet file (label, indices,
    values[, weight]): the parsed-data cache. Training from it gives the same model, bit
    for bit, as training from the inputs (with the same column and hashing settings).
    compression: lz4 (the default: decodes ~1.6x faster than zstd), zstd, snappy or none."""
    config = config or Config().replace(**{k: v for k, v in (overrides or {}).items() if v is not None})
    inputs = expand_inputs(inputs)
    check_inputs(inputs, 1)
    reporter = reporter or Reporter()
    has_weights = config.weight_column is not None

    def batches():
        for path in inputs:
            reporter.start(f"convert {display_name(path)}", input_ids([path])[0]["size"])
            for b in open_batches(path, config):
                reporter.advance(b.raw_bytes, b.rows, 0.0)
                yield b
            reporter.end_input()

    try:
        return convert_to_parquet(batches(), os.fspath(out_path), weights=has_weights,
                                  compression=compression)
    finally:
        reporter.close()
