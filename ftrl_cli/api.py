"""The library API shared by the CLI and Python users: train, predict, evaluate, export.

    from ftrl_cli import train, predict, evaluate, Config
    summary = train(["a9a"], "model/", overrides={"alpha": 0.1})
    metrics = evaluate("model/", ["a9a.t"])
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys

import numpy as np

from . import checkpoint
from . import kernels as K
from .atomic import atomic_writer
from .config import Config
from .engine import StopFlag, Trainer, file_source, start_run
from .errors import ConfigError, DataError
from .model import Model, fresh_row
from .progress import Reporter
from .readers import (
    BATCH_ROWS,
    check_inputs,
    check_layout,
    check_parquet_path,
    convert_to_parquet,
    convert_weights,
    display_name,
    expand_inputs,
    input_format,
    input_ids,
    open_batches,
    record_schema,
    validation_config,
)
from .readers.fingerprint import fingerprint
from .readers.stream import read_once
from .readers.wide import auto_report
from .records import InputId, input_bytes


def start_numba_for_cli() -> None:
    """Faster start and exit for the command line (see kernels.start_for_cli)."""
    K.start_for_cli()


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
        from .external import from_keras, from_mxnet, from_novograd, read_json

        kind, path = external
        mapper = {"keras": from_keras, "mxnet": from_mxnet, "novograd": from_novograd}[kind]
        extra = {"floatx": overrides.get("keras_floatx", "float32")} if kind == "keras" else {}
        overrides = {**mapper(read_json(path), source=str(path), **extra), **overrides}
    if overrides.get("keras_floatx") and not (external and external[0] == "keras"):
        raise ConfigError("--keras-floatx is the floatx of a --keras-optimizer config: give both")
    base = _resume_config(model_dir) if resume else None
    if base is not None:
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


# ---------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------

def _resume_config(model_dir) -> Config | None:
    """The settings --resume continues with: those of the run in progress (killed, even
    before its first checkpoint), else the newest finished model's; None: nothing to resume."""
    if not os.path.isdir(model_dir):
        return None
    checkpoint.check_ours(model_dir)
    pending = checkpoint.pending_config(model_dir)
    if pending is not None:
        return pending
    return checkpoint.read_config(model_dir) if checkpoint.has_checkpoint(model_dir) else None


def train(inputs, model_dir, config: Config | None = None, *, config_file=None, overrides=None,
          external=None, resume: bool = False, force: bool = False, last_good: bool = False,
          reporter: Reporter | None = None, batch_rows: int = BATCH_ROWS,
          handle_signals: bool = False, threads: int | None = None, cluster=None) -> dict:
    """Train on inputs (libsvm, Parquet, CSV/TSV paths, '-' for stdin) and write model_dir.
    threads / cluster ('local:N', 'tcp://HOST:PORT' or a distributed.Client): train the
    config's partitions in parallel (ftrl_cli.parallel, docs/parallel.md).
    For matrices in memory, use ftrl_cli.sklearn.FTRLClassifier.

    resume: continue model_dir's model: a run in progress (killed) picks up at its last
    checkpoint's position in the same inputs, with its settings; a finished model trains
    further on `inputs` (or, when they are the very inputs and passes it finished with,
    nothing is done). force: replace the model there, once the new one has finished.
    last_good: a damaged newest checkpoint is passed over (else it is an error).
    handle_signals: SIGINT/SIGTERM stop with a checkpoint (the CLI sets it; a library
    caller's own handlers are left alone by default).
    The directory is locked for the run: a second run on it fails at once.
    Returns a summary dict (examples, passes, progressive logloss, seconds, ...).
    """
    reporter = reporter or Reporter()
    inputs = expand_inputs(inputs)
    model_dir = os.fspath(model_dir)
    if config is None:
        config = resolve_config(model_dir, config_file=config_file, overrides=overrides,
                                resume=resume, external=external)
    if threads is not None or cluster is not None or config.partitions or config.merge_every:
        from .parallel import settle_config  # (Dask is imported only for a cluster)
        config = settle_config(config, threads=threads, cluster=cluster, resume=resume)
    check_inputs(inputs, config.passes)
    # (the layout and columns the model learns from: predict, eval, --validation read by them)
    keep = resume and _resume_config(model_dir) is not None
    config = record_schema(config, inputs, keep=keep)
    for line in [] if keep else auto_report(config.input_schema):  # (columns typed by their values)
        reporter.log(line)
    with checkpoint.writing(model_dir, force=force, warn=reporter.warn):
        model, log, replaces = _open_model(model_dir, config, resume=resume, force=force,
                                           last_good=last_good, reporter=reporter)
        ids = [InputId(e["path"], e["size"], fingerprint(e["path"])) for e in input_ids(inputs)]
        same_settings = model.config == config
        model = model if same_settings else Model(config, model.state)  # (--resume --alpha ...)
        model.input_bytes = input_bytes(ids)  # (the table's pages: model.small_pages)
        if log is not None and log.finished and log.run.inputs == ids and log.run.passes == config.passes \
                and same_settings:
            reporter.log(f"{model_dir}: already trained on these inputs ({config.passes} pass(es), "
                         f"{log.examples_seen:,} examples); nothing to do")
            return _train_summary(model_dir, None, model, log, log.examples_seen, log.bad_lines, None)
        log = start_run(log, ids, config)
        checkpoint.start_run(model_dir, config, replaces=replaces, resume=resume)
        wide = not all(input_format(p, config) in ("libsvm", "parquet-sparse") for p in inputs)
        names = checkpoint.names_for(model_dir, wide, resume=not replaces)
        sources = [file_source(p, config, e.size, names) for p, e in zip(inputs, ids)]
        validation = _validation_source(config)
        start_examples, start_bad = log.examples_seen, log.bad_lines
        with StopFlag(install=handle_signals) as stop:
            trainer = Trainer(config, model, log, store=checkpoint.ModelDir(model_dir, names),
                              reporter=reporter, validation=validation, names=names,
                              batch_rows=batch_rows, stop=stop)
            if config.partitions:
                from .parallel import run_parallel
                model = run_parallel(trainer, sources, threads=threads, cluster=cluster)
            else:
                model = trainer.run(sources)
    summary = _train_summary(model_dir, trainer, model, log, start_examples, start_bad, names)
    for p in summary["diverging_passes"]:
        h = next(h for h in log.history if h.pass_ == p)
        reporter.warn(f"pass {p}: progressive log loss {h.logloss:.4g} is more than {DIVERGING_NATS:g} nat above "
                      f"the best constant predictor's {h.best_constant_logloss:.4g}: the model is likely "
                      "diverging (huge feature values, an id column read as a number, too high --alpha); "
                      "check the data or use --ignore/--categorical, scale the values or lower --alpha")
    if model.alias.size and not model.alias_overflow:
        reporter.warn(f"feature ids >= 2**{config.bits} were hashed into the table; "
                      f"{summary['hashed_collisions']} slot(s) are shared; raise --bits to avoid it")
    return summary


def _validation_source(config):
    """The --validation file as a Source, checked before any training: it exists and holds
    rows (stdin is taken as it comes)."""
    if not config.validation:
        return None
    validation = file_source(config.validation, validation_config(config), None)
    if read_once(config.validation):
        if config.passes > 1 or config.validation_every:
            raise ConfigError(f"--validation {config.validation} can be read once only, but --passes or "
                              "--validation-every evaluate it several times; give a file")
    else:
        check_inputs([config.validation], 1)
        it = validation.open()
        try:
            if not any(b.rows for b in it):
                raise DataError(f"{config.validation}: the validation data has no rows; "
                                "give --validation a file of labelled rows")
        finally:
            getattr(it, "close", lambda: None)()
    return validation


def _open_model(model_dir, config, *, resume, force, last_good, reporter):
    """(model, log, replaces) to train from, with the directory locked: on resume the run
    in progress or the newest finished model, else a new model (log None); replaces: the
    directory's finished model is to be replaced once the new one finishes (--force)."""
    has_model = checkpoint.has_checkpoint(model_dir)
    pending = checkpoint.read_manifest(model_dir).get("pending")
    if resume and pending is not None and (pending.get("checkpoints") or not pending.get("replaces")) \
            and (pending.get("checkpoints") or has_model):
        model, log = checkpoint.load(model_dir, config, resume=True, fallback=last_good, warn=reporter.warn)
        return model, log, bool(pending.get("replaces"))
    if resume and pending is not None:  # killed before its first checkpoint: start it again
        return Model(config), None, bool(pending.get("replaces")) and has_model
    if resume and has_model:
        model, log = checkpoint.load(model_dir, config, resume=True, fallback=last_good, warn=reporter.warn)
        return model, log, False
    if resume:
        reporter.log(f"{model_dir}: no checkpoint yet; starting from the beginning")
    elif has_model and not force:
        raise ConfigError(f"{model_dir} already holds a model: use --resume to continue it, "
                          "--force to replace it, or another -m directory")
    return Model(config), None, has_model


# A pass whose progressive log loss is this far (in nats per example) above the best
# constant predictor's is reported as diverging: a model that learned nothing scores the
# constant's loss; 1 nat more means e times less likelihood on every example.
DIVERGING_NATS = 1.0


def _train_summary(model_dir, trainer, model, log, start_examples, start_bad, names) -> dict:
    """What `ftrl train` prints and --json reports about this run."""
    examples = log.examples_seen - start_examples
    passes_run = log.history[len(log.history) - (log.passes_done - log.run.first_pass):] if trainer else []
    seconds = trainer.seconds if trainer else 0.0
    first, last = (passes_run[0], passes_run[-1]) if passes_run else (None, None)
    return {
        "model_dir": model_dir,
        "examples": examples,
        "examples_seen": log.examples_seen,
        "passes": len(passes_run),
        "progressive_logloss": first.logloss if first else None,
        "last_pass_logloss": last.logloss if last else None,
        "best_constant_logloss": first.best_constant_logloss if first else None,
        "validation": log.evals[-1].to_json() if log.evals else None,
        "best": log.best.to_json() if log.best else None,
        "kept": log.kept.to_json() if log.kept else None,
        "stopped_early": trainer.stopped_early if trainer else False,
        "features": trainer.features if trainer else 0,
        "up_to_date": trainer is None,
        "seconds": seconds,
        # the passes alone (reading, learning, evaluations, checkpoints on the way):
        # `seconds` less the final save; the process's start-up is in neither
        "loop_seconds": trainer.loop_seconds if trainer else 0.0,
        "rows_per_second": examples / seconds if seconds > 0 else None,
        "bad_lines": log.bad_lines - start_bad,
        "diverging_passes": [h.pass_ for h in passes_run if h.logloss is not None
                             and h.logloss > h.best_constant_logloss + DIVERGING_NATS],
        "table_slots": model.size,
        "hashed_collisions": model.collisions() + (names.collisions() if names is not None else 0),
        # a table's columns typed by their values (numeric_as="auto"): [column, kind, why]
        "columns": (model.config.input_schema or {}).get("auto"),
        "curve": [{"examples": c.examples, "pass": c.pass_, "train_logloss": c.train_logloss}
                  for c in log.curve],
    }


# ---------------------------------------------------------------------------------------
# predict / evaluate / export
# ---------------------------------------------------------------------------------------

def load_model(model_dir, read_overrides=None, *, last_good: bool = False, warn=None) -> Model:
    """The newest finished model; read_overrides change how data is read (e.g. a test CSV
    without the header line: {"header": False, "columns": [...]}). A damaged newest
    checkpoint is an error (ModelError); with last_good the newest good one is used and
    warn() says which."""
    model, _ = checkpoint.load(model_dir, fallback=last_good, warn=warn or _stderr_warn)
    over = {k: v for k, v in (read_overrides or {}).items() if v is not None}
    if over:
        model.config = model.config.replace(**over)
    return model


def _stderr_warn(message: str) -> None:
    print(f"ftrl: warning: {message}", file=sys.stderr)


# what would end an id's TSV field or line: printed as spaces (what str.splitlines splits at, and TAB)
_ID_BREAKS = re.compile("[\t\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def iter_margins(model: Model, inputs, reporter: Reporter | None = None, with_ids: bool = False,
                 labels: bool = True):
    """Yield (path, margins, batch) per batch, in input order, reading every input as the
    model's config says (format, columns, hashing); every input is first checked to have
    the layout the model was trained on. labels=False: a table needs no label column."""
    reporter = reporter or Reporter()
    check_layout(inputs, model.config)
    bias_w = model.bias_weight()
    for path in inputs:
        reporter.start(display_name(path), input_ids([path])[0]["size"])
        for b in open_batches(path, model.config, with_ids=with_ids, labels=labels):
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


def _label_text(v: float) -> str:
    """A label as `predict --with-label` prints it: the shortest text that reads back to the
    same float (Python's repr), without a trailing '.0': 1, -1, 0.5, 123456789, 1e+20."""
    t = repr(float(v))
    return t[:-2] if t.endswith(".0") else t


def predict(model_dir, inputs, out=None, *, output: str = "proba", threshold: float = 0.5,
            with_id: bool = False, with_label: bool = False, raw: bool = False,
            read_overrides=None, reporter: Reporter | None = None, last_good: bool = False) -> int:
    """Write one line per row to `out` (a binary or text stream; stdout by default), in input order:
    [id TAB][label TAB]value, value being the probability (output="proba"), the margin
    ("margin", or raw=True) or the 0/1 label at `threshold` ("label", a probability in
    [0, 1]). Floats are printed so that they parse back exactly; the label as _label_text()
    writes it. The id is the text after '#' on the row's line (libsvm) or the id column
    (tables); rows without one get an empty id, and a warning says how many."""
    if output not in ("proba", "margin", "label"):
        raise ConfigError(f"output must be proba, margin or label, got {output!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be a probability in [0, 1], got {threshold}")
    output = "margin" if raw else output
    inputs = expand_inputs(inputs)
    check_inputs(inputs, 1)
    warn = reporter.warn if reporter else _stderr_warn
    model = load_model(model_dir, read_overrides, last_good=last_good, warn=warn)
    out = _binary(out)
    count = no_id = 0
    try:
        for _, m, b in iter_margins(model, inputs, reporter, with_ids=with_id, labels=with_label):
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
                cols.insert(0, [_label_text(v) for v in b.labels.tolist()])
            if with_id:
                ids = b.ids_text if b.ids_text is not None else [""] * len(m)
                ids = [_ID_BREAKS.sub(" ", str(t)) for t in ids]
                no_id += ids.count("")
                cols.insert(0, ids)
            out.write(("\n".join(["\t".join(r) for r in zip(*cols)]) + "\n").encode())
        if no_id:
            where = ("no row has an id" if no_id == count else f"{no_id:,} of {count:,} rows have no id")
            warn(f"--with-id: {where} (libsvm: the text after '#' on the line; tables: the --id column), "
                 "so their id field is empty")
    finally:
        if reporter:
            reporter.close()
    return count


def evaluate(model_dir, inputs, *, threshold: float = 0.5, per_file: bool = False, bins: int = 10,
             plot: str | None = None, read_overrides=None, reporter: Reporter | None = None,
             last_good: bool = False) -> dict:
    """Metrics of the model on labelled inputs (see metrics.summary); with per_file, also
    one summary per input under "files"."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be a probability in [0, 1], got {threshold}")
    inputs = expand_inputs(inputs)
    check_inputs(inputs, 1)
    if per_file:
        _check_distinct(inputs)
    model = load_model(model_dir, read_overrides, last_good=last_good, warn=reporter.warn if reporter else None)
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


def _check_distinct(inputs):
    """per_file reports each file once: a file given twice (by the same or another path)
    would be counted twice in its own report and in the total."""
    seen = {}
    for path in inputs:
        try:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
        except (OSError, ValueError):
            key = os.path.realpath(path)
        if key in seen:
            same = f"{path} twice" if seen[key] == path else f"{seen[key]} and {path} (the same file)"
            raise ConfigError(f"--per-file reports each file once, but DATA names {same}; give each file once")
        seen[key] = path


def _summary(m, y, w, threshold, bins):
    from . import metrics

    return metrics.summary(m, y, threshold, weights=None if np.all(w == 1) else w, bins=bins)


def inspect(model_dir, top: int = 10, *, last_good: bool = False, warn=None) -> dict:
    """What a model directory holds: settings, training history, table, top weights.
    warn(message) says which checkpoint last_good served (default: on stderr)."""
    model, log = checkpoint.load(model_dir, fallback=last_good, warn=warn or _stderr_warn)
    c = model.config
    slots, w = model.used_weights()  # (any other slot is fresh: untouched, weight 0)
    init = fresh_row(c, model.st.dtype)
    touched = np.any(model.st[slots] != init, axis=1)
    nonzero = w != 0
    order = np.argsort(w, kind="stable")  # (ties by slot, as over the whole table)
    names = model.slot_names()
    columns = checkpoint.load_names(model_dir)

    def named(idx, sign):
        out = []
        for i in idx:
            if w[i] * sign <= 0:
                break
            s = int(slots[i])
            name = names.get(s, str(s))
            if columns is not None:
                name = columns.get(s, name)
            out.append({"feature": name, "slot": s, "weight": float(w[i])})
        return out

    manifest = checkpoint.read_manifest(model_dir)
    return {
        "model_dir": os.fspath(model_dir),
        "config": c.to_dict(),
        "examples_seen": log.examples_seen,
        "passes_done": log.passes_done,
        "runs": [r.to_json() for r in log.runs],
        "finished": log.finished,
        "history": [h.to_json() for h in log.history],
        "evals": [e.to_json() for e in log.evals],
        "best": log.best.to_json() if log.best else None,
        "kept": log.kept.to_json() if log.kept else None,
        "stopped_early": log.stopped_early,
        "bad_lines": log.bad_lines,
        "curve": [p.to_json() for p in log.curve],
        "table": {"capacity": model.cap, "allocated": model.size, "touched": int(touched.sum()),
                  "nonzero": int(nonzero.sum()), "l1_zeroed": int((touched & ~nonzero).sum()),
                  "hashed_ids_known": int(len(model.alias)),
                  "collisions": model.collisions() + (columns.collisions() if columns is not None else 0),
                  "state_bytes": int(model.st.nbytes)},
        "bias": model.bias_weight(),
        "top_positive": named(order[::-1][:top], 1),
        "top_negative": named(order[:top], -1),
        "checkpoints": manifest.get("checkpoints", []),
        "pending": manifest.get("pending"),
        "iterations": model.iterations,
    }


def export(model_dir, out=None, *, last_good: bool = False, warn=None) -> int:
    """Write `feature<TAB>weight` for every nonzero weight, then `bias<TAB>weight`.

    Features are named by their id in the data; slots shared by hashed ids list every id
    seen there joined by '+'. Weights print with repr(), which parses back exactly.
    warn(message) says which checkpoint last_good served (default: on stderr).
    """
    model = load_model(model_dir, last_good=last_good, warn=warn)
    out = _binary(out)
    names = checkpoint.load_names(model_dir)
    lines = [f"{names.get(int(name), name) if names and name.isdigit() else name}\t{w!r}"
             for name, w in model.named_weights()]
    lines.append(f"bias\t{model.bias_weight()!r}")
    out.write(("\n".join(lines) + "\n").encode())
    return len(lines)


class _TextSink:
    """write(bytes) onto a text stream (io.StringIO, open(..., "w"), sys.stdout)."""

    def __init__(self, f):
        self.f = f

    def write(self, b: bytes) -> int:
        return self.f.write(b.decode())


def _binary(out):
    """Where predict/export write: stdout for None, any binary stream, or a text stream."""
    if out is None:
        return sys.stdout.buffer
    return _TextSink(out) if isinstance(out, io.TextIOBase) else out


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
    check_parquet_path(out_path)
    inputs = expand_inputs(inputs)
    check_inputs(inputs, 1)
    reporter = reporter or Reporter()
    has_weights = convert_weights(inputs, config)

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
