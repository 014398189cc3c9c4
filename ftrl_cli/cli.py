"""The `ftrl` command: parse options, call the library (api.py), print. Nothing else.

Exit codes: 0 success; 1 bad input data or I/O error; 2 bad usage or settings;
3 missing or damaged model directory; 70 internal error (a bug: please report it);
130/143 interrupted by SIGINT/SIGTERM (a checkpoint was written; continue with --resume).
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import re
import sys

# ftrl does no linear algebra; an idle BLAS thread pool only competes with the read-ahead
# thread for the second core. Set here, before numpy loads, and only for the command line:
# importing the library changes nothing process-wide.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# Arrow's allocator (mimalloc) asks for transparent huge pages; where the kernel then
# compacts memory on a fault, reading Parquet or CSV through pyarrow spent up to 1 s in
# the kernel (ctr Parquet: 0.89x the wall time without them, text-like Parquet steadier).
os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")

import click  # noqa: E402

from . import __version__  # noqa: E402
from .atomic import local_output  # noqa: E402
from .errors import ConfigError, DataError, FtrlError  # noqa: E402
from .records import json_finite  # noqa: E402


def _api():
    """The library, imported when a command runs (keeps `ftrl --help` fast)."""
    from . import kernels

    kernels.start_for_cli()  # (before the library imports Numba)
    from . import api

    return api


def make_reporter(quiet, log=True, json_lines=False):
    from .progress import make_reporter as mk

    return mk(quiet, log, json_lines)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int):
    _flush_stdout_or_drop()
    click.echo(f"ftrl: error: {message}", err=True)
    sys.exit(code)


def _flush_stdout_or_drop():
    """Flush stdout; if it cannot take the output (full disk, closed pipe), point it at
    /dev/null so that the interpreter's own flush at exit fails no more ("Exception
    ignored ...")."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        _drop_stdout()


def _drop_stdout():
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (CliRunner, StringIO)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


# OSErrors of the environment (disk, permissions, paths), not of ftrl: exit 1 with what to
# do. Any other errno (EBADF, EINVAL, ...) is a bug and stays an internal error.
_OS_ERRORS = {
    errno.ENOSPC: "no space left on device; free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded; free some space or write elsewhere",
    errno.EFBIG: "file too large for this file system; write elsewhere",
    errno.EROFS: "read-only file system; write elsewhere",
    errno.EACCES: "permission denied; check the permissions or use another path",
    errno.EPERM: "operation not permitted; check the permissions or use another path",
    errno.ENOENT: "no such file or directory; check the path",
    errno.ENOTDIR: "a part of the path is not a directory; check the path",
    errno.EISDIR: "is a directory; give a file name",
    errno.ENAMETOOLONG: "file name too long; use a shorter path",
    errno.ENOTEMPTY: "directory not empty; use another path",
    errno.EEXIST: "already exists; use another path",
    errno.EIO: "input/output error; check the disk",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n)",
    errno.ENFILE: "too many open files in the system; retry later",
    errno.EBUSY: "device or resource busy; retry later",
    errno.ETXTBSY: "file busy; retry later",
    errno.ESTALE: "stale file handle (network file system); retry",
}
# the temporary file an atomic write goes through: .NAME.RANDOM.tmp beside NAME
_TMP_NAME = re.compile(r"\.(.+)\.\w+\.tmp")


def _os_message(e: OSError) -> str:
    """One line for an OSError of the environment: the file it concerns and what to do."""
    name = e.filename2 if e.filename2 is not None else e.filename
    if name is None:
        where = "write error" if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "I/O error"
    else:
        name = os.fsdecode(name) if isinstance(name, bytes) else str(name)
        m = _TMP_NAME.fullmatch(os.path.basename(name))
        where = os.path.join(os.path.dirname(name), m.group(1)) if m else name
    return f"{where}: {_OS_ERRORS[e.errno]}"


def _memory_hint(kwargs) -> str:
    b = kwargs.get("batch_size")
    if isinstance(b, int) and b > 1:
        return (f"out of memory: --batch-size {b} holds {b:,} rows at once; lower it (or --bits, "
                "or use --dtype float32)")
    return "out of memory; lower --bits or use --dtype float32"


def handle_errors(fn):
    """Library errors become one line on stderr and an exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # a full disk is reported here, not by the interpreter at exit
            return result
        except FtrlError as e:
            _fail(str(e), e.exit_code)
        except click.ClickException as e:  # a usage error found by the command itself
            _fail(e.format_message(), e.exit_code)
        except (click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except BrokenPipeError:  # e.g. `ftrl predict ... | head`
            _drop_stdout()
            sys.exit(0)
        except MemoryError:
            _fail(_memory_hint(kwargs), 1)
        except OSError as e:
            if e.errno not in _OS_ERRORS:
                _internal(e)
            _fail(_os_message(e), 1)
        except Exception as e:  # a bug: say so in one line unless asked for the traceback
            _internal(e)

    return wrapper


def _internal(e: BaseException):
    if os.environ.get("FTRL_DEBUG"):
        raise e
    _fail(f"internal error: {type(e).__name__}: {e} (set FTRL_DEBUG=1 for the traceback)", 70)


def _check_output_path(path, what: str):
    """Before any work: an output path that is a directory, or lies in a directory that
    does not exist, is refused with a message (a read-only or full disk is reported when
    writing)."""
    local_output(path, f"{what} is written to a local path")
    if os.path.isdir(path):
        raise ConfigError(f"{what} {path}: is a directory; give the path of a file to write")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise DataError(f"{what} {path}: the directory {parent} does not exist; create it first "
                        "or write elsewhere")


def _print_json(obj):
    click.echo(json.dumps(json_finite(obj), sort_keys=False, allow_nan=False))


model_option = click.option("-m", "--model-dir", "model_dir", required=True,
                            type=click.Path(file_okay=False), help="Model directory.")
quiet_option = click.option("-q", "--quiet", is_flag=True,
                            help="Nothing on stderr but errors: no progress, logs or warnings.")
inputs_argument = click.argument("inputs", nargs=-1, required=True, metavar="DATA...")


class _OneLineUsageErrors(click.Group):
    """Click's usage errors (an unknown option, a missing value) in ftrl's one-line form,
    `ftrl: error: ... (see 'ftrl train --help')`, exit 2, instead of three lines."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # (`ftrl` alone: the help, as Click shows it)
                e.show()
                sys.exit(e.exit_code)
            where = e.ctx.command_path if e.ctx is not None else (prog_name or "ftrl")
            argv = sys.argv[1:] if args is None else list(args)
            if (e.ctx is None or e.ctx.command is self) and argv and argv[0] in self.commands:
                where = f"{where} {argv[0]}"  # (an option's missing value: Click names the group)
            _fail(f"{e.format_message()} (see '{where} --help')", e.exit_code)
        except click.ClickException as e:
            _fail(e.format_message(), e.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=_OneLineUsageErrors, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="ftrl")
def main():
    """Sparse logistic regression with FTRL-Proximal, from the shell.

    Data is libsvm/svmlight text (plain, .gz, .bz2, .xz, .zst, or '-' for stdin), sparse or
    wide Parquet, or CSV/TSV.

    \b
    Example:
      ftrl train train.svm -m model/
      ftrl eval -m model/ test.svm
    """


# Settings flags: name -> (click type, help). Defaults live in config.Config only.
_SETTINGS = [
    ("alpha", float, "Learning rate alpha: eta_i = alpha / (beta + sqrt(n_i)).  [default: 0.1]"),
    ("beta", float, "Smoothing beta of the per-coordinate rate.  [default: 1]"),
    ("l1", float, "L1 strength lambda1 (exact zeros).  [default: 1]"),
    ("l2", float, "L2 strength lambda2, penalty l2/2 * w^2 (paper convention).  [default: 1]"),
    ("l2-shrinkage", float, "Keras/TF L2 shrinkage: adds 2*s*w to the gradient in z.  [default: 0]"),
    ("lr-power", float, "Rate exponent: n^(-lr_power) replaces sqrt(n).  [default: -0.5]"),
    ("initial-accumulator", float, "Initial n_i (Keras initial_accumulator_value).  [default: 0]"),
    ("bias-l1", float, "L1 for the bias.  [default: same as --l1]"),
    ("bias-l2", float, "L2 for the bias.  [default: same as --l2]"),
    ("bits", int, "Table capacity 2**bits; larger ids are hashed into it.  [default: 24]"),
    ("dtype", click.Choice(["float64", "float32"]), "Precision of the state.  [default: float64]"),
    ("optimizer", click.Choice(["ftrl", "novograd"]), "Optimizer.  [default: ftrl]"),
    ("batch-size", int, "Rows per optimizer step (mean gradient); 1 is online.  [default: 1]"),
    ("update", click.Choice(["lazy", "dense"]),
     "lazy: update the coordinates present in a batch; dense: all of them (Keras).  [default: lazy]"),
    ("weight-decay", float, "Decoupled weight decay w -= lr*wd*w (NovoGrad: its own).  [default: 0]"),
    ("clipnorm", float, "Clip each gradient tensor (weights, bias) to this L2 norm."),
    ("global-clipnorm", float, "Clip the gradient of weights and bias together to this norm."),
    ("clipvalue", float, "Clamp every gradient element to [-v, v]."),
    ("ema-momentum", float, "Keep an exponential moving average of the weights; predict uses it."),
    ("ema-overwrite-frequency", int, "Copy the EMA into the weights every N steps."),
    ("gradient-accumulation-steps", int, "Apply the mean gradient of every N steps (dense)."),
    ("loss-scale-factor", float, "Keras loss scaling: loss *= f, gradients /= f."),
    ("grad-scale", float, "Multiply the batch-mean gradient (MXNet rescale_grad).  [default: 1]"),
    ("bias-lr-mult", float, "Learning-rate multiplier of the bias (MXNet lr_mult).  [default: 1]"),
    ("beta-1", float, "NovoGrad beta_1.  [default: 0.9]"),
    ("beta-2", float, "NovoGrad beta_2.  [default: 0.999]"),
    ("epsilon", float, "NovoGrad epsilon.  [default: 1e-7]"),
    ("validation", click.Path(dir_okay=False), "A labelled file evaluated after each pass."),
    ("validation-every", int, "Also evaluate every N examples."),
    ("holdout-every", int, "Without --validation: hold out every Nth example and evaluate on those."),
    ("early-stop", int, "Stop after K evaluations without improvement; the best model is kept."),
    ("metric", click.Choice(["logloss", "auc"]), "What --early-stop and 'best' use.  [default: logloss]"),
    ("passes", int, "Passes over the inputs.  [default: 1]"),
    ("seed", int, "Seed of --shuffle.  [default: 0]"),
    ("shuffle-buffer", int, "--shuffle on text files: rows shuffled together (memory; 1: line order).  [default: 100000]"),
    ("on-bad-line", click.Choice(["fail", "skip", "warn"]),
     "A malformed line stops the run (fail) or is skipped, silently or with a warning.  [default: fail]"),
    ("max-bad-lines", int, "With skip/warn: stop after this many bad lines."),
    ("keep-checkpoints", int, "Checkpoints kept in the model directory.  [default: 3]"),
]


def _csv_list(ctx, param, value):
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _crosses(ctx, param, value):
    """a:b,c:d:e -> [["a", "b"], ["c", "d", "e"]] (VW's -q, datatable's interactions); on
    libsvm/sparse Parquet the names are feature ids or * (readers/crosses.py checks them)."""
    if value is None:
        return None
    out = [[c.strip() for c in item.replace("^", ":").split(":")] for item in value.split(",") if item.strip()]
    if any(len(x) < 2 or not all(x) for x in out):
        raise click.BadParameter("each interaction names two or more columns (tables) or ids "
                                 "(libsvm, sparse Parquet), e.g. site:app,a:b:c or 3:7,5:*")
    return out


def input_options(fn):
    """How to read the data; stored in the model so predict/eval read the same way."""
    opts = [
        click.option("--format", "format", type=click.Choice(["auto", "libsvm", "parquet", "csv", "tsv"]),
                     default=None, help="Input format.  [default: auto, by magic bytes and extension]"),
        click.option("--label", "label_column", default=None, metavar="COL",
                     help="Parquet/CSV label column (positive iff > 0).  [default: label]"),
        click.option("--indices", "indices_column", default=None, metavar="COL",
                     help="Sparse Parquet list<int> ids column.  [default: indices]"),
        click.option("--values", "values_column", default=None, metavar="COL",
                     help="Sparse Parquet list<float> values column (absent: 1).  [default: values]"),
        click.option("--weight", "weight_column", default=None, metavar="COL", help="Per-row weight column."),
        click.option("--id", "id_column", default=None, metavar="COL", help="Row id column (predict --with-id)."),
        click.option("--categorical", default=None, metavar="A,B", callback=_csv_list,
                     help="Wide tables: columns hashed as column=value ('*' = all others)."),
        click.option("--numeric", default=None, metavar="A,B", callback=_csv_list,
                     help="Wide tables: columns used with their value."),
        click.option("--ignore", default=None, metavar="A,B", callback=_csv_list,
                     help="Wide tables: columns never used."),
        click.option("--interactions", default=None, metavar="A:B,C:D", callback=_crosses,
                     help="Crosses: of columns in tables (a:b, a:b:c), of feature ids in libsvm/sparse "
                          "Parquet (3:7, 3:* = id 3 with every other id of the row)."),
        click.option("--numeric-as", default=None,
                     type=click.Choice(["auto", "value", "categorical", "bin", "logsq"]),
                     help="Numeric columns as their value, as categories, log2 bins, or Criteo-Kaggle "
                          "buckets (x <= 2: x, else floor(ln(x)^2)); auto (no --categorical/--numeric): "
                          "each column typed from its values in the first batch.  [default: auto]"),
        click.option("--header/--no-header", default=None, help="CSV/TSV: first line names the columns."),
        click.option("--columns", default=None, metavar="A,B", callback=_csv_list,
                     help="CSV/TSV: column names (for files without a header)."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def last_good_option(fn):
    return click.option("--last-good", is_flag=True,
                        help="If the newest checkpoint is damaged, use the newest good one and say which "
                             "(by default a damaged model is an error, exit 3).")(fn)


def settings_options(fn):
    for name, typ, help_ in reversed(_SETTINGS):
        fn = click.option(f"--{name}", name.replace("-", "_"), type=typ, default=None, help=help_)(fn)
    fn = input_options(fn)
    fn = click.option("--shuffle/--no-shuffle", default=None, help="Shuffle, in each pass, the order of the input files, of Parquet row groups, and of text "
                                "rows within blocks of --shuffle-buffer rows.")(fn)
    fn = click.option("--validation-header/--validation-no-header", "validation_header", default=None,
                      help="CSV/TSV: whether the --validation file has a header line (without one, the training "
                           "columns name it).  [default: as the training data]")(fn)
    fn = click.option("--bias/--no-bias", "bias", default=None,
                      help="Learn a bias (a feature of value 1 in every row).  [default: on]")(fn)
    fn = click.option("--checkpoint-every", "checkpoint_every", default=None, metavar="N|DURATION",
                      callback=_every,
                      help="Checkpoint every N examples or every DURATION (30s, 5m, 1h).  [default: at the end]")(fn)
    fn = click.option("--grad-averaging/--no-grad-averaging", default=None, help="NovoGrad grad_averaging.")(fn)
    fn = click.option("--amsgrad/--no-amsgrad", default=None, help="NovoGrad amsgrad.")(fn)
    fn = click.option("--lr-schedule", "learning_rate_schedule", default=None, metavar="JSON|FILE",
                      help="A Keras learning-rate schedule ({\"class_name\": ..., \"config\": ...}).")(fn)
    fn = click.option("--class-weight", default=None, metavar="NEG,POS", callback=_pair,
                      help="Weights of negative and positive rows, e.g. 1,5.")(fn)
    return fn


def _json_arg(value, flag):
    """JSON given inline ({...}) or as a file name; errors name the flag (exit 2)."""
    from .config import parse_json, read_json_file

    if value is None:
        return None
    if value.lstrip().startswith("{"):
        return parse_json(value, flag)
    return read_json_file(value, flag)


def _every(ctx, param, value):
    """N examples -> {"checkpoint_every": N}; a duration -> {"checkpoint_seconds": s}."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if value[-1:] in units:
            return {"checkpoint_seconds": float(value[:-1]) * units[value[-1]]}
        return {"checkpoint_every": int(value)}
    except ValueError:
        raise click.BadParameter("expected a number of examples (10000) or a duration (30s, 5m, 1h)") from None


def _pair(ctx, param, value):
    if value is None:
        return None
    try:
        a, b = (float(x) for x in value.split(","))
    except ValueError:
        raise click.BadParameter("expected two numbers NEG,POS, e.g. 1,5") from None
    return [a, b]


@main.command()
@inputs_argument
@model_option
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Read settings from a config.json (e.g. another model's); flags override it.")
@click.option("--keras-optimizer", type=click.Path(dir_okay=False), default=None,
              help="A keras.optimizers.Ftrl get_config() JSON: train with Keras's exact semantics.")
@click.option("--keras-floatx", type=click.Choice(["float32", "float64"]), default=None,
              help="keras.config.floatx() of that Keras run: its initial accumulator is rounded to it.  "
                   "[default: float32]")
@click.option("--mxnet-optimizer", type=click.Path(dir_okay=False), default=None,
              help="MXNet Ftrl arguments as JSON (learning_rate, lamda1, beta, wd, rescale_grad, clip_gradient).")
@click.option("--novograd-optimizer", type=click.Path(dir_okay=False), default=None,
              help="A tensorflow-addons NovoGrad get_config() JSON.")
@click.option("--resume", is_flag=True, help="Continue from the model directory's last checkpoint.")
@click.option("--force", is_flag=True,
              help="Replace an existing model in the directory (once the new one has finished).")
@last_good_option
@settings_options
@quiet_option
@click.option("--json", "as_json", is_flag=True, help="Print the run summary as JSON on stdout.")
@click.option("--json-progress", is_flag=True, help="Progress as JSON lines on stderr (for pipelines).")
@click.option("--partitions", type=int, default=None, metavar="K",
              help="Cut the inputs into K partitions trained side by side and merged (a setting of the "
                   "model).  [default: the workers of --threads/--cluster]")
@click.option("--merge", type=click.Choice(["weighted", "avg", "sum"]), default=None,
              help="How partitions' changes merge.  [default: weighted]")
@click.option("--merge-every", type=int, default=None, metavar="N",
              help="Merge every N rows of each partition.  [default: once per pass]")
@click.option("--threads", type=int, default=None, metavar="N", help="Train the partitions on N threads.")
@click.option("--cluster", default=None, metavar="local[:N]|tcp://HOST:PORT",
              help="Train the partitions on Dask distributed (pip install 'ftrl-cli[cluster]').")
@handle_errors
def train(inputs, model_dir, config_file, keras_optimizer, mxnet_optimizer, novograd_optimizer,
          resume, force, last_good, quiet, as_json, json_progress, **settings):
    """Train a model on DATA (files in order, or '-' for stdin).

    \b
    Example:
      ftrl train a9a -m model/ --alpha 0.1 --l1 1
      ftrl train more.svm -m model/ --resume
      zcat big.svm.gz | ftrl train - -m model/
    """
    threads, cluster = settings.pop("threads"), settings.pop("cluster")  # (how, not what: not settings)
    if resume and config_file:
        raise ConfigError("--resume takes its settings from the model; drop --config")
    externals = [(k, p) for k, p in (("keras", keras_optimizer), ("mxnet", mxnet_optimizer),
                                      ("novograd", novograd_optimizer)) if p]
    if len(externals) > 1:
        raise ConfigError("give at most one of --keras-optimizer, --mxnet-optimizer, --novograd-optimizer")
    _check_validation(inputs, settings)
    settings["learning_rate_schedule"] = _json_arg(settings["learning_rate_schedule"], "--lr-schedule")
    every = settings.pop("checkpoint_every")
    if every:
        settings.update(every)
    _check_validation_every(model_dir, settings, config_file, resume, externals[0] if externals else None)
    reporter = make_reporter(quiet, json_lines=json_progress)
    s = _api().train(inputs, model_dir, config_file=config_file, overrides=settings,
                     external=externals[0] if externals else None,
                     resume=resume, force=force, last_good=last_good, reporter=reporter,
                     handle_signals=True, threads=threads, cluster=cluster)
    if as_json:
        _print_json(s)
    elif not quiet and not json_progress and not s.get("up_to_date"):  # (the run's log said so)
        click.echo(_summary_text(s), err=True)


def _check_validation(inputs, settings):
    """What can be known about --validation before training."""
    path = settings.get("validation")
    if path == "-":
        if "-" in inputs:
            raise ConfigError("stdin ('-') cannot be both the training data and --validation; "
                              "give the validation data as a file")
        if (settings.get("passes") or 1) > 1 or settings.get("validation_every"):
            raise ConfigError("--validation - (stdin) can be read once only, but --passes or "
                              "--validation-every evaluate it several times; give a file")
    elif path and os.path.isfile(path) and os.path.getsize(path) == 0:
        raise DataError(f"{path}: the validation file is empty; give --validation a file of labelled rows")


def _check_validation_every(model_dir, settings, config_file, resume, external):
    """--validation-every N evaluates something only with a validation file or a hold-out,
    given as a flag or in the settings --config or --resume start from."""
    n = settings.get("validation_every")
    if not n or settings.get("validation") or settings.get("holdout_every"):
        return
    if config_file or resume:
        base = _api().resolve_config(model_dir, config_file=config_file, overrides=settings, resume=resume,
                                     external=external)
        if base.validation or base.holdout_every:
            return
    raise ConfigError(f"--validation-every {n} has nothing to evaluate: give --validation FILE or "
                      "--holdout-every N as well, or drop --validation-every")


def _fmt(x, spec=".6f"):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def sparkline(values) -> str:
    """A loss curve in eight block characters."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    blocks = "▁▂▃▄▅▆▇█"
    return "".join(blocks[int((v - lo) / (hi - lo) * 7) if hi > lo else 0] for v in vals)


def _summary_text(s) -> str:
    curve = sparkline([p["train_logloss"] for p in s["curve"]])
    lines = [f"trained on {s['examples']:,} examples in {s['passes']} pass(es), {s['seconds']:.2f}s "
             f"({(s['rows_per_second'] or 0):,.0f} rows/s)",
             f"  model in {s['model_dir']}",
             f"  progressive logloss {_fmt(s['progressive_logloss'])} "
             f"(best constant {_fmt(s['best_constant_logloss'])})"
             + (f", last pass {_fmt(s['last_pass_logloss'])}" if s["passes"] > 1 else "")]
    if curve:
        lines.append(f"  loss curve {curve}")
    if s["validation"]:
        v = s["validation"]
        lines.append(f"  validation logloss {_fmt(v['logloss'])}, auc {_fmt(v['auc'])} ({v['rows']:,} rows)")
    if s["best"]:
        b = s["best"]
        kept = " - kept" if s["kept"] else ""
        lines.append(f"  best {b['metric']} {_fmt(b['value'])} at pass {b['pass']}, "
                     f"{b['examples']:,} examples{kept}" + (" (stopped early)" if s["stopped_early"] else ""))
    if s["bad_lines"]:
        lines.append(f"  {s['bad_lines']:,} bad line(s) skipped")
    return "\n".join(lines)


@main.command()
@inputs_argument
@model_option
@click.option("--grid", "grids", multiple=True, metavar="NAME=V1,V2,...",
              help="Values to sweep for one setting (repeat for several: every combination is trained), "
                   "e.g. --grid alpha=0.02,0.05,0.1 --grid l1=0,1.  [default: an automatic grid]")
@click.option("--holdout", "holdout_mode", type=click.Choice(["tail", "every", "none"]), default=None,
              help="Rows to rank on: the tail of the data, every Nth row (--holdout-every N), or none "
                   "(one pass, progressive validation loss).  [default: tail]")
@click.option("--holdout-fraction", type=float, default=None,
              help="Share of the rows in the tail hold-out.  [default: 0.1]")
@click.option("--max-passes", type=int, default=None, help="Cap of the automatic passes.  [default: 10]")
@click.option("--patience", type=int, default=None,
              help="A setting stops after this many passes without improvement.  [default: 1]")
@click.option("--min-improvement", type=float, default=None,
              help="Smallest change of --metric that counts as an improvement.  [default: 0.0001]")
@click.option("--keep", type=float, default=None,
              help="Share of the settings that go on after each pass (successive halving).  [default: 0.5]")
@click.option("--refit/--no-refit", default=None,
              help="Train the best setting again, for its best number of passes, on all the rows (hold-out "
                   "included), or keep the model the hold-out scored.  [default: --refit]")
@click.option("--select", type=click.Choice(["1se", "best"]), default=None,
              help="Winner: the most regularized candidate within one standard error of the lowest hold-out "
                   "log loss (1se), or the lowest (best).  [default: 1se]")
@click.option("--max-memory", default=None, metavar="SIZE",
              help="Memory the states may take (e.g. 2G, 500M).  [default: 80% of the memory available]")
@click.option("--threads", type=int, default=None, help="Training threads.  [default: 2 with two CPUs]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="Start every setting from a config.json's settings; flags override it.")
@click.option("--force", is_flag=True, help="Replace an existing model in the directory.")
@settings_options
@quiet_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@handle_errors
def tune(inputs, model_dir, grids, holdout_mode, holdout_fraction, max_passes, patience, min_improvement,
         keep, refit, select, max_memory, threads, config_file, force, quiet, as_json, **settings):
    """Train several settings side by side over one read of DATA per pass, rank them on a
    hold-out, and write the best model to DIR (its settings: DIR/config.json; every
    setting's results: DIR/tune.json). See docs/tune.md.

    \b
    Example:
      ftrl tune train.svm -m model/
      ftrl tune train.svm -m model/ --grid alpha=0.02,0.05,0.1,0.2,0.5 --grid l1=0,1
      ftrl tune train.svm -m model/ --holdout-every 10 --metric auc --no-refit
    """
    api = _api()
    from . import tune as T

    settings["learning_rate_schedule"] = _json_arg(settings["learning_rate_schedule"], "--lr-schedule")
    every = settings.pop("checkpoint_every")
    if every:
        settings.update(every)
    opts = T.options_from_flags(holdout=holdout_mode, holdout_every=settings.pop("holdout_every"),
                                holdout_fraction=holdout_fraction, passes=settings.pop("passes"),
                                metric=settings.pop("metric"), grid=T.parse_grid(grids), max_passes=max_passes,
                                patience=patience, min_improvement=min_improvement, keep=keep, refit=refit,
                                select=select,
                                max_memory=max_memory, threads=threads)
    base = api.resolve_config(model_dir, config_file=config_file, overrides=settings)
    r = T.tune(inputs, model_dir, opts, base, force=force, reporter=make_reporter(quiet))
    if as_json:
        _print_json(r)
    elif not quiet:
        click.echo(T.table_text(r), err=True)


KINDS = ("proba", "margin", "label")


def _threshold(ctx, param, value):
    """A probability in [0, 1]: nan, infinities and anything outside are usage errors."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise click.BadParameter(f"must be a probability in [0, 1], got {value}")
    return value


def _warn(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(f"ftrl: warning: {message}", err=True)


class _PredictCommand(click.Command):
    """`predict` with the old spelling `--output proba|margin|label` of `--kind`: before
    parsing, `--output KIND` (or `--output=KIND`) becomes the hidden `--old-output-kind KIND`,
    so that `-o/--output` otherwise always names the output file (`-o KIND` too, as it always
    did). A file named like a kind is `--output ./proba`."""

    def parse_args(self, ctx, args):
        out, i = [], 0
        while i < len(args):
            a = args[i]
            if a == "--":
                out += args[i:]
                break
            if a == "--output" and i + 1 < len(args) and args[i + 1] in KINDS:
                out += ["--old-output-kind", args[i + 1]]
                i += 2
                continue
            if a.startswith("--output=") and a[len("--output="):] in KINDS:
                out += ["--old-output-kind", a[len("--output="):]]
            else:
                out.append(a)
            i += 1
        return super().parse_args(ctx, out)


def _predict_kind(kind, old_kind, raw, threshold, quiet) -> str:
    """What predict prints, from --kind, the deprecated --output KIND and --raw; options that
    contradict each other, or --threshold for anything but labels, are usage errors."""
    if old_kind is not None:
        _warn(f"--output {old_kind} is deprecated: use --kind {old_kind} (-o/--output now names the "
              f"output file; a file named {old_kind} is --output ./{old_kind})", quiet)
        if kind is not None and kind != old_kind:
            raise click.UsageError(f"--output {old_kind} (the old spelling of --kind) contradicts --kind {kind}")
        kind = kind or old_kind
    if raw:
        if kind not in (None, "margin"):
            raise click.UsageError(f"--raw is --kind margin; it contradicts --kind {kind}")
        kind = "margin"
    kind = kind or "proba"
    if threshold is not None and kind != "label":
        what = {"proba": "probabilities", "margin": "margins"}[kind]
        raise click.UsageError(f"--threshold applies to --kind label only, and this prints {what}; "
                               "add --kind label or drop --threshold")
    return kind


@main.command(cls=_PredictCommand)
@model_option
@inputs_argument
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write here (atomically) instead of stdout.")
@click.option("--output-file", "output_file", type=click.Path(dir_okay=False), default=None, hidden=True,
              help="Deprecated: the old name of -o/--output.")
@click.option("--kind", type=click.Choice(KINDS), default=None,
              help="Probability, margin (log-odds) or 0/1 label at --threshold.  [default: proba]")
@click.option("--old-output-kind", type=click.Choice(KINDS), default=None, hidden=True,
              help="What the deprecated --output proba|margin|label becomes.")
@click.option("--raw", is_flag=True, help="Same as --kind margin.")
@click.option("--threshold", type=float, default=None, callback=_threshold,
              help="With --kind label: probability at or above which a row is 1.  [default: 0.5]")
@click.option("--with-id", is_flag=True,
              help="Prefix each line with the row's id (libsvm: the text after '#'; tables: --id COL).")
@click.option("--with-label", is_flag=True,
              help="Prefix each line with the row's label (the shortest text of its value: 1, -1, 0.5).")
@input_options
@last_good_option
@quiet_option
@handle_errors
def predict(model_dir, inputs, output, output_file, kind, old_output_kind, raw, threshold, with_id,
            with_label, last_good, quiet, **read):
    """Print one prediction per row of DATA, in input order (TSV with --with-id/--with-label).

    \b
    Example:
      ftrl predict -m model/ test.svm > p.txt
      ftrl predict -m model/ test.svm -o p.txt --kind margin
      ftrl predict -m model/ test.svm --with-id --kind label --threshold 0.3
    """
    if output_file is not None:
        _warn("--output-file is deprecated: use -o/--output FILE", quiet)
        if output is not None and output != output_file:
            raise click.UsageError(f"two output files: -o/--output {output} and --output-file {output_file} "
                                   "(its old name); give one")
        output = output_file
    kind = _predict_kind(kind, old_output_kind, raw, threshold, quiet)
    api = _api()
    reporter = make_reporter(quiet, log=False)
    with api.output_stream(output) as out:
        api.predict(model_dir, inputs, out, output=kind, threshold=0.5 if threshold is None else threshold,
                    with_id=with_id, with_label=with_label, read_overrides=read, reporter=reporter,
                    last_good=last_good)


@main.command(name="eval")
@model_option
@inputs_argument
@click.option("--threshold", type=float, default=0.5, show_default=True, callback=_threshold,
              help="Probability in [0, 1] at or above which a row is called positive.")
@click.option("--bins", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="Probability bins of the calibration table.")
@click.option("--per-file", is_flag=True,
              help="Also report each input file on its own (a file given twice is an error).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write ROC, precision-recall and reliability curves to this PNG (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
@input_options
@last_good_option
@quiet_option
@handle_errors
def eval_(model_dir, inputs, threshold, bins, per_file, plot, as_json, last_good, quiet, **read):
    """Score the model on labelled DATA: logloss, AUC, PR-AUC, accuracy, precision, recall,
    F1, calibration, normalized entropy, count, positive rate.

    \b
    Example:
      ftrl eval -m model/ test.svm --json
      ftrl eval -m model/ day1.svm day2.svm --per-file --plot curves.png
    """
    if plot:
        _check_output_path(plot, "--plot")
    r = _api().evaluate(model_dir, inputs, threshold=threshold, per_file=per_file, bins=bins, plot=plot,
                        read_overrides=read, reporter=make_reporter(quiet, log=False), last_good=last_good)
    if as_json:
        _print_json(r)
        return
    _print_metrics(r, threshold)
    for path, fr in r.get("files", {}).items():
        click.echo(f"\n{path}")
        _print_metrics(fr, threshold)


_METRIC_ROWS = [("n", "n", ",d"), ("logloss", "logloss", ".6f"), ("auc", "auc", ".6f"),
                ("pr_auc", "pr_auc", ".6f"), ("accuracy", "accuracy@{t:g}", ".6f"),
                ("precision", "precision@{t:g}", ".6f"), ("recall", "recall@{t:g}", ".6f"),
                ("f1", "f1@{t:g}", ".6f"), ("positive_rate", "positive_rate", ".6f"),
                ("mean_prediction", "mean_prediction", ".6f"),
                ("normalized_entropy", "normalized_entropy", ".6f"), ("ece", "ece", ".6f")]


def _print_metrics(r, threshold):
    rows = [(label.format(t=threshold), _fmt(r[key], spec)) for key, label, spec in _METRIC_ROWS if key in r]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k:<{width}}  {v:>12}")
    table = r.get("reliability")
    if table:
        click.echo("\ncalibration   bin       rows  mean_pred  frac_pos")
        for t in table:
            click.echo(f"          {t['lower']:.2f}-{t['upper']:.2f} {t['count']:>10,}  "
                       f"{t['mean_prediction']:9.4f} {t['fraction_positive']:9.4f}")


@main.command()
@model_option
@click.option("--top", type=click.IntRange(0), default=10, show_default=True,
              help="How many of the largest positive and negative weights to list.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write the training and validation loss curves to this PNG (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@last_good_option
@quiet_option
@handle_errors
def inspect(model_dir, top, plot, as_json, last_good, quiet):
    """Show what a model holds: settings, training history, table use, top weights.

    \b
    Example:
      ftrl inspect -m model/ --top 20
    """
    if plot:
        _check_output_path(plot, "--plot")
    r = _api().inspect(model_dir, top=top, last_good=last_good, warn=_silent if quiet else None)
    if plot:
        from .plots import plot_history

        plot_history(_history_points(r), plot)
    if as_json:
        _print_json(r)
        return
    c = r["config"]
    t = r["table"]
    runs = r.get("runs") or []
    in_runs = f" in {len(runs)} run(s)" if len(runs) > 1 else ""
    click.echo(f"model {r['model_dir']}: {r['examples_seen']:,} examples, {r['passes_done']} pass(es){in_runs}, "
               f"{'finished' if r['finished'] else 'unfinished (continue with --resume)'}")
    for i, run in enumerate(runs, 1) if len(runs) > 1 else ():
        first = run["first_pass"] + 1
        span = f"pass {first}" if run["passes"] == 1 else f"passes {first}-{first + run['passes'] - 1}"
        shown = ", ".join(run["inputs"][:3]) + (f", ... ({len(run['inputs'])} inputs)" if len(run["inputs"]) > 3 else "")
        click.echo(f"  run {i}: {span} on {shown}")
    click.echo(f"optimizer {c['optimizer']}, batch size {c['batch_size']}, update {c['update']}, "
               f"alpha {c['alpha']:g}, beta {c['beta']:g}, l1 {c['l1']:g}, l2 {c['l2']:g}, dtype {c['dtype']}")
    click.echo(f"table: capacity 2^{c['bits']}, {t['allocated']:,} slots allocated, {t['touched']:,} trained, "
               f"{t['nonzero']:,} nonzero, {t['l1_zeroed']:,} zeroed by L1, {t['collisions']:,} shared by "
               f"hashed ids, {t['state_bytes'] / 2**20:.1f} MB")
    if r.get("pending"):
        p = r["pending"]
        done = p["checkpoints"][-1]["examples_seen"] if p.get("checkpoints") else 0
        click.echo(f"a run in progress (started {p.get('started', '?')}, {done:,} examples at its last "
                   "checkpoint) is not part of this model until it finishes: continue it with --resume")
    for h in r["history"]:
        click.echo(f"pass {h['pass']}: {h['examples']:,} examples, progressive logloss {_fmt(h['logloss'])} "
                   f"(best constant {_fmt(h.get('best_constant_logloss'))})")
    for e in r["evals"]:
        click.echo(f"validation at {e['examples']:,} examples (pass {e['pass']}): logloss {_fmt(e['logloss'])}, "
                   f"auc {_fmt(e['auc'])}")
    if r["best"]:
        b = r["best"]
        click.echo(f"best {b['metric']} {_fmt(b['value'])} at pass {b['pass']} ({b['examples']:,} examples)"
                   + (" - this is the kept model" if r["kept"] else ""))
    click.echo(f"bias {r['bias']!r}")
    for title, key in (("top positive weights", "top_positive"), ("top negative weights", "top_negative")):
        if r[key]:
            click.echo(title + ":")
            for item in r[key]:
                click.echo(f"  {item['feature']:>24}  {item['weight']: .6f}")


def _history_points(r):
    pts = [{"examples": p["examples"], "train_logloss": p["train_logloss"]} for p in r["curve"]]
    pts += [{"examples": e["examples"], "validation_logloss": e["logloss"]} for e in r["evals"]]
    return sorted(pts, key=lambda p: p["examples"])


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="DATA...")
@click.argument("output", metavar="OUT.parquet")
@input_options
@click.option("--bits", type=int, default=None, help="Wide tables: hash into 2**bits ids.  [default: 24]")
@click.option("--compression", type=click.Choice(["lz4", "zstd", "snappy", "none"]), default="lz4",
              show_default=True, help="Parquet codec: lz4 reads fastest, zstd makes the smallest file.")
@quiet_option
@handle_errors
def convert(inputs, output, bits, compression, quiet, **settings):
    """Write DATA (libsvm, CSV/TSV or Parquet) as one sparse Parquet file: a parsed-data
    cache. Training from it gives the same model as training from DATA.

    \b
    Example:
      ftrl convert train.svm train.parquet
      ftrl convert train.csv train.parquet --label click --interactions site:app
    """
    from .config import Config

    _check_output_path(output, "OUT.parquet")
    settings = {k: v for k, v in settings.items() if v is not None}
    if bits is not None:
        settings["bits"] = bits
    try:
        r = _api().convert(inputs, output, Config().replace(**settings), compression=compression,
                           reporter=make_reporter(quiet, log=False))
    except OSError as e:
        if e.errno in _OS_ERRORS and e.filename is None:  # Parquet's writes name no file
            raise DataError(f"{output}: {_OS_ERRORS[e.errno]}") from None
        raise
    if not quiet:
        click.echo(f"wrote {r['rows']:,} rows, {r['nnz']:,} features in {r['row_groups']} row group(s) "
                   f"to {output}", err=True)


@main.command()
@model_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write here (atomically) instead of stdout.")
@last_good_option
@quiet_option
@handle_errors
def export(model_dir, output, last_good, quiet):
    """Write the model as TSV: `feature<TAB>weight` per nonzero weight, then `bias<TAB>w`.

    \b
    Example:
      ftrl export -m model/ -o weights.tsv
    """
    api = _api()
    with api.output_stream(output) as out:
        api.export(model_dir, out, last_good=last_good, warn=_silent if quiet else None)


def _silent(message: str) -> None:
    """Where --quiet sends warnings."""


if __name__ == "__main__":
    main()
