"""The library API shared by the CLI and Python users: train, predict, evaluate, export.

    from ftrl_cli import train, predict, evaluate, Config
    summary = train(["a9a"], "model/", overrides={"alpha": 0.1})
    metrics = evaluate("model/", ["a9a.t"])
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np

from . import checkpoint, metrics
from . import kernels as K
from .atomic import atomic_writer
from .config import Config
from .engine import StopFlag, Trainer, file_source, start_run
from .errors import ConfigError, DataError, ModelError
from .external import from_keras, from_mxnet, from_novograd, read_json
from .model import Model, fresh_row
from .progress import Reporter
from .readers import (
    BATCH_ROWS,
    check_inputs,
    convert_to_parquet,
    display_name,
    expand_inputs,
    input_format,
    input_ids,
    open_batches,
)
from .records import InputId


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


# ---------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------

def train(inputs, model_dir, config: Config | None = None, *, config_file=None, overrides=None,
          external=None, resume: bool = False, force: bool = False,
          reporter: Reporter | None = None, batch_rows: int = BATCH_ROWS,
          handle_signals: bool = False) -> dict:
    """Train on inputs (libsvm, Parquet, CSV/TSV paths, '-' for stdin) and write model_dir
    (config.json + checkpoints). For matrices in memory, use ftrl_cli.sklearn.FTRLClassifier.

    resume: continue from model_dir's newest checkpoint: an unfinished run picks up at its
    recorded input position; a finished one trains further on `inputs`.
    handle_signals: SIGINT/SIGTERM stop with a checkpoint (the CLI sets it; a library
    caller's own handlers are left alone by default).
    Returns a summary dict (examples, passes, progressive logloss, seconds, ...).
    """
    reporter = reporter or Reporter()
    inputs = expand_inputs(inputs)
    model_dir = os.fspath(model_dir)
    if config is None:
        config = resolve_config(model_dir, config_file=config_file, overrides=overrides,
                                resume=resume, external=external)
    check_inputs(inputs, config.passes)
    model, log = _open_model(model_dir, config, resume=resume, force=force, reporter=reporter)
    ids = input_ids(inputs)
    log = start_run(log, [InputId(e["path"], e["size"]) for e in ids], config)
    wide = not all(input_format(p, config) in ("libsvm", "parquet-sparse") for p in inputs)
    names = checkpoint.names_for(model_dir, wide)
    sources = [file_source(p, config, e["size"], names) for p, e in zip(inputs, ids)]
    validation = file_source(config.validation, config, None) if config.validation else None
    start_examples, start_bad = log.examples_seen, log.bad_lines
    with StopFlag(install=handle_signals) as stop:
        trainer = Trainer(config, model, log, store=checkpoint.ModelDir(model_dir), reporter=reporter,
                          validation=validation, names=names, batch_rows=batch_rows, stop=stop)
        model = trainer.run(sources)
    summary = _train_summary(model_dir, trainer, model, log, start_examples, start_bad, names)
    if model.alias.size and not model.alias_overflow:
        reporter.warn(f"feature ids >= 2**{config.bits} were hashed into the table; "
                      f"{summary['hashed_collisions']} slot(s) are shared; raise --bits to avoid it")
    return summary


def _open_model(model_dir, config, *, resume, force, reporter):
    """(model, log) to train: the newest checkpoint on resume, else a new model (None log)
    in a directory made ready for it; config.json is written either way."""
    log = None
    if resume and os.path.isdir(model_dir) and checkpoint.has_checkpoint(model_dir):
        model, log = checkpoint.load(model_dir, config, warn=reporter.warn)
    else:
        if resume:
            reporter.log(f"{model_dir}: no checkpoint yet; starting from the beginning")
        elif not force and os.path.isdir(model_dir) and checkpoint.has_checkpoint(model_dir):
            raise ConfigError(f"{model_dir} already holds a model: use --resume to continue it, "
                              "--force to replace it, or another -m directory")
        elif force and os.path.isdir(model_dir):
            checkpoint.clear(model_dir)
        model = Model(config)
    try:
        os.makedirs(model_dir, exist_ok=True)
    except OSError as e:
        raise ModelError(f"{model_dir}: cannot create model directory ({e.strerror or e})") from None
    checkpoint.write_config(model_dir, config)
    return model, log


def _train_summary(model_dir, trainer, model, log, start_examples, start_bad, names) -> dict:
    """What `ftrl train` prints and --json reports about this run."""
    examples = log.examples_seen - start_examples
    passes_run = log.history[len(log.history) - (log.passes_done - log.run.first_pass):]
    seconds = trainer.seconds
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
        "stopped_early": trainer.stopped_early,
        "features": trainer.features,
        "seconds": seconds,
        "rows_per_second": examples / seconds if seconds > 0 else None,
        "bad_lines": log.bad_lines - start_bad,
        "table_slots": model.size,
        "hashed_collisions": model.collisions() + (names.collisions() if names is not None else 0),
        "curve": [c.train_logloss for c in log.curve],
    }


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
    """Write one line per row to `out` (a binary or text stream; stdout by default), in input order:
    [id TAB][label TAB]value, value being the probability (output="proba"), the margin
    ("margin", or raw=True) or the 0/1 label at `threshold` ("label"). Floats are printed so
    that they parse back exactly. The id is the text after '#' on the row's line."""
    if output not in ("proba", "margin", "label"):
        raise ConfigError(f"output must be proba, margin or label, got {output!r}")
    output = "margin" if raw else output
    inputs = expand_inputs(inputs)
    check_inputs(inputs, 1)
    model = load_model(model_dir, read_overrides)
    out = _binary(out)
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


def inspect(model_dir, top: int = 10) -> dict:
    """What a model directory holds: settings, training history, table, top weights."""
    model, log = checkpoint.load(model_dir)
    c = model.config
    w = model.weights()
    init = fresh_row(c, model.st.dtype)
    touched = np.any(model.st != init, axis=1)
    nonzero = w != 0
    order = np.argsort(w, kind="stable")
    names = dict(model.named_weights()) if model.alias.size else None
    columns = checkpoint.load_names(model_dir)

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
        "examples_seen": log.examples_seen,
        "passes_done": log.passes_done,
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
