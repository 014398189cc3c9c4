"""Settings as data: a frozen dataclass that round-trips through JSON.

`config.json` in a model directory holds every resolved setting plus the format and
package versions; `ftrl train --config FILE` reads it back (explicit flags win) and
unknown keys are an error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, fields

from .errors import ConfigError

FORMAT_VERSION = 1
# keys written beside the settings; accepted (and ignored) when a config is read back
META_KEYS = ("kind", "format_version", "package_version")
MAX_JSON_DEPTH = 32  # a settings file nests 5 levels at most (a wrapped Keras schedule)
MAX_BATCH_SIZE = 2**30  # rows per optimizer step; the trainer holds a batch in memory
MAX_INT = 2**63 - 1  # integer settings are int64 in the kernels and in NumPy
MAX_SETTINGS_BYTES = 16 << 20  # a settings file is a few kB; /dev/zero is not one


def parse_json(text: str, source) -> object:
    """json.loads(text); every way it fails is a one-line ConfigError naming `source`."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{source}:{e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise ConfigError(f"{source}: not a settings file (JSON nested too deeply)") from None
    except ValueError as e:  # an integer beyond Python's int-string limit
        if "integer string conversion" in str(e):
            raise ConfigError(f"{source}: an integer has more than {sys.get_int_max_str_digits()} "
                              "digits; no setting takes such a number") from None
        raise ConfigError(f"{source}: not valid JSON ({e})") from None
    if _nesting(d) > MAX_JSON_DEPTH:
        raise ConfigError(f"{source}: not a settings file (JSON nested more than {MAX_JSON_DEPTH} "
                          "levels deep)")
    return d


def read_json_file(path, what: str = "settings") -> object:
    """The JSON value in a settings file (a config.json, an optimizer config, a schedule):
    a missing or unreadable file, bytes that are not UTF-8 text and bad JSON are one-line
    ConfigErrors naming the file."""
    try:
        with open(path, "rb") as f:  # (a pipe is fine: `--config <(...)`)
            raw = f.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {what} file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror or e})") from None
    return parse_json_bytes(raw, path, what)


def parse_json_bytes(raw: bytes, path, what: str = "settings") -> object:
    """parse_json of a file's bytes: too long or not UTF-8 is a ConfigError naming it."""
    if len(raw) > MAX_SETTINGS_BYTES:
        raise ConfigError(f"{path}: longer than {MAX_SETTINGS_BYTES >> 20} MB; not a {what} file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a JSON {what} file (byte 0x{raw[e.start]:02x} at offset {e.start} "
                          "is not UTF-8 text)") from None
    return parse_json(text, path)


def _nesting(value) -> int:
    """How deeply lists and objects nest in a parsed JSON value (iteratively: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _show(v) -> str:
    """repr(v), shortened for a huge integer (whose str() may even be refused)."""
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
        return f"an integer of {v.bit_length()} bits"
    return repr(v)


@dataclass(frozen=True)
class Config:
    # --- FTRL-Proximal (McMahan et al. 2013, Algorithm 1) ---
    alpha: float = 0.1  # learning rate: eta_i = alpha / (beta + sqrt(n_i))
    beta: float = 1.0  # smoothing of the per-coordinate rate
    l1: float = 1.0  # lambda1: L1 strength (exact zeros when |z_i| <= l1)
    l2: float = 1.0  # lambda2: L2 strength, penalty 1/2 * l2 * w^2 (paper convention)
    l2_shrinkage: float = 0.0  # Keras/TF: adds 2*l2_shrinkage*w to the gradient used in z
    lr_power: float = -0.5  # n^(-lr_power) replaces sqrt(n); -0.5 is the paper
    initial_accumulator: float = 0.0  # n_i starts here (Keras's initial_accumulator_value)
    # --- bias: a feature of value 1 in every row, regularized like VW's constant ---
    bias: bool = True
    bias_l1: float | None = None  # None: same as l1
    bias_l2: float | None = None  # None: same as l2
    # --- weight table ---
    bits: int = 24  # ids < 2**bits get their own slot; larger ids are hashed into the table
    dtype: str = "float64"  # state precision: float64 or float32
    # --- mini-batch training and the optimizer family (Keras/TF, MXNet, NovoGrad) ---
    optimizer: str = "ftrl"  # ftrl | novograd (tensorflow-addons semantics)
    batch_size: int = 1  # rows per optimizer step (mean gradient); 1 = online
    update: str = "lazy"  # lazy: coordinates present in the batch; dense: all (Keras)
    learning_rate_schedule: dict | None = None  # a Keras schedule; replaces alpha
    lr_float32: bool = False  # use float32(alpha) as Keras does (its lr is a float32 variable)
    keras_floatx: str | None = None  # the Keras floatx a --keras-optimizer config was read under
    weight_decay: float = 0.0  # Keras: w -= lr*wd*w before each step; NovoGrad: its own wd
    clipnorm: float | None = None  # per tensor (weights, bias), Keras clip_by_norm
    global_clipnorm: float | None = None  # over weights and bias together
    clipvalue: float | None = None  # element-wise clamp (MXNet clip_gradient)
    ema_momentum: float | None = None  # keep an EMA of the weights; predict uses it
    ema_overwrite_frequency: int | None = None  # copy the EMA into the weights every N steps
    gradient_accumulation_steps: int | None = None  # apply the mean of N steps' gradients
    loss_scale_factor: float | None = None  # Keras: loss *= f, gradients /= f
    grad_scale: float = 1.0  # multiplies the batch-mean gradient (MXNet rescale_grad)
    bias_lr_mult: float = 1.0  # learning-rate multiplier of the bias (MXNet lr_mult)
    class_weight: list | None = None  # [weight of negatives, weight of positives]
    beta_1: float = 0.9  # NovoGrad
    beta_2: float = 0.999  # NovoGrad
    epsilon: float = 1e-7  # NovoGrad
    grad_averaging: bool = False  # NovoGrad
    amsgrad: bool = False  # NovoGrad
    # --- input (kept so that predict and eval read data the way training did) ---
    format: str = "auto"  # auto | libsvm | parquet | csv | tsv (auto: magic bytes, extension)
    label_column: str = "label"  # Parquet/CSV: the label (positive iff > 0)
    indices_column: str = "indices"  # sparse Parquet: list<int> feature ids
    values_column: str = "values"  # sparse Parquet: list<float> values (absent: all 1)
    weight_column: str | None = None  # Parquet/CSV: per-row importance weights
    id_column: str | None = None  # Parquet/CSV: a row id for predict --with-id
    categorical: list | None = None  # wide tables: columns hashed as column=value ("*": the rest)
    numeric: list | None = None  # wide tables: columns used with their value
    ignore: list | None = None  # wide tables: columns never used
    # crosses: of columns (tables), e.g. [["a", "b"], ["a", "b", "c"]]; of ids (libsvm, sparse
    # Parquet: readers/crosses.py), e.g. [["3", "7"], ["5", "*"]]
    interactions: list | None = None
    # value | categorical | bin (floor(log2(1+|x|))) | logsq (x<=2: x, else floor(ln(x)^2)) | auto (no
    # categorical/numeric list: each column typed from its values in the first batch; with one: value)
    numeric_as: str = "auto"
    header: bool = True  # CSV/TSV: the first line names the columns
    columns: list | None = None  # CSV/TSV: column names (for files without a header)
    # recorded by train: the inputs' layout ("ids" or "table") and, for a table, its columns
    # and features, so that predict, eval and --validation read data as training did
    input_schema: dict | None = None
    shuffle: bool = False  # shuffle the input files, Parquet row groups and text rows in each pass
    seed: int = 0  # for --shuffle
    shuffle_buffer: int = 100_000  # --shuffle on text: rows shuffled together (a block; memory)
    # --- validation and early stopping ---
    validation: str | None = None  # a labelled file evaluated after each pass
    validation_header: bool | None = None  # CSV/TSV: the validation file has a header line (None: as training's)
    validation_every: int = 0  # also every N examples (0: only after each pass)
    holdout_every: int = 0  # without a validation file: hold out every Nth example
    early_stop: int = 0  # stop after K evaluations without improvement; keep the best model
    metric: str = "logloss"  # logloss | auc: what early stopping and "best" use
    # --- run ---
    passes: int = 1
    checkpoint_every: int = 0  # examples between checkpoints; 0 = only at the end
    checkpoint_seconds: float = 0.0  # seconds between checkpoints; 0 = off
    on_bad_line: str = "fail"  # fail | skip | warn
    max_bad_lines: int | None = None  # with skip/warn: fail after this many bad lines
    keep_checkpoints: int = 3
    # --- parallel training (ftrl_cli/parallel.py, docs/parallel.md) ---
    partitions: int = 0  # K: inputs cut into K partitions, merged every round; 0 = one process
    merge: str = "weighted"  # weighted | avg | sum: how the partitions' changes are merged
    merge_every: int = 0  # rows of each partition per round (0: a round is a pass)

    def __post_init__(self):
        validate(self)

    # Settings that fix the shape or meaning of the saved state: a resumed run must keep them.
    STRUCTURAL = ("bits", "dtype", "bias", "optimizer", "ema_momentum", "gradient_accumulation_steps",
                  "batch_size", "update", "partitions")

    @property
    def online(self) -> bool:
        """True when the fast per-example kernel applies (Algorithm 1 as written)."""
        return (self.optimizer == "ftrl" and self.batch_size == 1 and self.update == "lazy"
                and self.learning_rate_schedule is None and not self.lr_float32
                and self.weight_decay == 0 and self.clipnorm is None and self.global_clipnorm is None
                and self.clipvalue is None and self.ema_momentum is None
                and self.gradient_accumulation_steps is None and self.loss_scale_factor is None
                and self.grad_scale == 1.0 and self.bias_lr_mult == 1.0)

    @property
    def p(self) -> float:
        """The exponent on n: n^p with p = -lr_power."""
        return -self.lr_power

    @property
    def resolved_bias_l1(self) -> float:
        return self.l1 if self.bias_l1 is None else self.bias_l1

    @property
    def resolved_bias_l2(self) -> float:
        return self.l2 if self.bias_l2 is None else self.bias_l2

    def to_dict(self) -> dict:
        d = {"kind": "ftrl-config", "format_version": FORMAT_VERSION}
        d.update(dataclasses.asdict(self))
        return d

    def to_json(self) -> str:
        from . import __version__

        d = self.to_dict()
        d["package_version"] = __version__
        return json.dumps(d, indent=2, sort_keys=False) + "\n"

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> Config:
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: expected a JSON object of settings")
        names = cls.field_names()
        unknown = sorted(k for k in d if k not in names and k not in META_KEYS)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(names)}"
            )
        fv = d.get("format_version", FORMAT_VERSION)
        if not isinstance(fv, int) or fv > FORMAT_VERSION:
            raise ConfigError(
                f"{source}: format_version {fv!r} is newer than this ftrl understands "
                f"({FORMAT_VERSION}); upgrade ftrl"
            )
        kwargs = {k: d[k] for k in names if k in d}
        return cls(**coerce(kwargs, source))

    @classmethod
    def from_json_file(cls, path) -> Config:
        """The settings in a config.json; every error names the file."""
        return cls.from_json_bytes(None, path)

    @classmethod
    def from_json_bytes(cls, raw: bytes | None, path) -> Config:
        """from_json_file of bytes already read (None: read the file)."""
        d = read_json_file(path, "config") if raw is None else parse_json_bytes(raw, path, "config")
        try:
            return cls.from_dict(d, source=str(path))
        except ConfigError as e:
            msg = str(e)
            if msg.startswith(f"{path}:"):
                raise
            raise ConfigError(f"{path}: {msg}") from None


def coerce(kwargs: dict, source: str) -> dict:
    """Check JSON value types against the dataclass fields (ints may stand for floats)."""
    out = {}
    for f in fields(Config):
        if f.name not in kwargs:
            continue
        v = kwargs[f.name]
        t = f.type
        if "float" in t and not isinstance(v, bool) and isinstance(v, (int, float)):
            out[f.name] = _float(v, f.name, source)
        elif t == "str | None" and isinstance(v, str):
            out[f.name] = v
        elif "None" in t and v is None:
            out[f.name] = None
        elif t in ("bool", "bool | None") and isinstance(v, bool):
            out[f.name] = v
        elif t == "int" and isinstance(v, int) and not isinstance(v, bool):
            out[f.name] = v
        elif t == "str" and isinstance(v, str):
            out[f.name] = v
        elif t == "int | None" and isinstance(v, int) and not isinstance(v, bool):
            out[f.name] = v
        elif t == "dict | None" and isinstance(v, dict):
            out[f.name] = v
        elif t == "list | None" and isinstance(v, list):
            out[f.name] = [_list_item(x, f.name, source) for x in v]
        else:
            raise ConfigError(f"{source}: {f.name} must be {t}, got {v!r}")
    return out


# what the elements of a list setting are (the rest: column names, strings)
_LIST_ITEMS = {"class_weight": "number", "interactions": "list of column names"}


def _list_item(x, name, source):
    """One element of a list setting, checked (numbers become floats)."""
    kind = _LIST_ITEMS.get(name, "column name")
    if kind == "number" and isinstance(x, (int, float)) and not isinstance(x, bool):
        return _float(x, name, source)
    if kind == "column name" and isinstance(x, str):
        return x
    if kind == "list of column names" and isinstance(x, list) and all(isinstance(c, str) for c in x):
        return x
    raise ConfigError(f"{source}: every element of {name} must be a {kind}, got {_show(x)}")


def _float(v, name, source) -> float:
    try:
        return float(v)
    except OverflowError:  # a JSON integer beyond any float
        raise ConfigError(f"{source}: {name} must be a finite number, got {_show(v)}") from None


def _input_schema_ok(s) -> bool:
    """Whether a (possibly hand-edited) input_schema has the shape train writes."""
    def col(x):
        return (isinstance(x, list) and len(x) == 3 and isinstance(x[0], str)
                and x[1] in ("cat", "num", "bin", "logsq") and isinstance(x[2], bool))

    if not isinstance(s, dict) or s.get("layout") not in ("ids", "table"):
        return False
    if s["layout"] == "ids" or set(s) == {"layout"}:
        # (id_crosses: trained with --interactions of ids; older models ignored them)
        return set(s) == {"layout"} or (s["layout"] == "ids" and s == {"layout": "ids", "id_crosses": True})
    return (set(s) - {"auto"} == {"layout", "columns", "singles", "crosses", "options"}
            and isinstance(s.get("auto", []), list)
            and isinstance(s["columns"], list) and all(isinstance(x, str) for x in s["columns"])
            and isinstance(s["singles"], list) and all(col(x) for x in s["singles"])
            and isinstance(s["crosses"], list)
            and all(isinstance(cr, list) and len(cr) >= 2 and all(col(x) for x in cr) for cr in s["crosses"])
            and isinstance(s["options"], dict))


def validate(c: Config) -> None:
    def need(cond, msg):
        if not cond:
            raise ConfigError(msg)

    need(not isinstance(c.batch_size, int) or c.batch_size <= MAX_BATCH_SIZE,
         f"batch_size (--batch-size) must be at most 2**30 = {MAX_BATCH_SIZE:,} rows per step, "
         f"got {_show(c.batch_size)}")
    # integers first: a huge one would fail inside NumPy or Numba, or not even print
    for f in fields(c):
        v = getattr(c, f.name)
        if f.type in ("int", "int | None") and isinstance(v, int) and not isinstance(v, bool) \
                and f.name != "seed":
            need(abs(v) <= MAX_INT, f"{f.name} must be at most 2**63 - 1, got {_show(v)}")
    need(not c.shuffle or (isinstance(c.seed, int) and c.seed >= 0),
         f"seed (--seed) must be an integer >= 0 for shuffle, got {_show(c.seed)}")
    need(isinstance(c.shuffle_buffer, int) and not isinstance(c.shuffle_buffer, bool)
         and 1 <= c.shuffle_buffer <= MAX_BATCH_SIZE,
         f"shuffle_buffer (--shuffle-buffer) must be an integer in 1..2**30 rows, got {_show(c.shuffle_buffer)}")
    for name in ("alpha", "beta", "l1", "l2", "l2_shrinkage", "lr_power", "initial_accumulator"):
        v = getattr(c, name)
        need(isinstance(v, (int, float)) and math.isfinite(v), f"{name} must be a finite number, got {v!r}")
    need(c.alpha > 0, f"alpha must be > 0, got {c.alpha}")
    for name in ("beta", "l1", "l2", "l2_shrinkage", "initial_accumulator"):
        need(getattr(c, name) >= 0, f"{name} must be >= 0, got {getattr(c, name)}")
    need(c.lr_power <= 0, f"lr_power must be <= 0 (n^-lr_power is the rate's denominator), got {c.lr_power}")
    for name in ("bias_l1", "bias_l2"):
        v = getattr(c, name)
        need(v is None or (math.isfinite(v) and v >= 0), f"{name} must be >= 0, got {v}")
    need(isinstance(c.bits, int) and 1 <= c.bits <= 40, f"bits must be an integer in 1..40, got {c.bits}")
    need(c.dtype in ("float64", "float32"), f"dtype must be float64 or float32, got {c.dtype!r}")
    need(isinstance(c.passes, int) and c.passes >= 1, f"passes must be >= 1, got {c.passes}")
    need(c.optimizer in ("ftrl", "novograd"), f"optimizer must be ftrl or novograd, got {c.optimizer!r}")
    need(isinstance(c.batch_size, int) and c.batch_size >= 1, f"batch_size must be >= 1, got {c.batch_size}")
    need(c.update in ("lazy", "dense"), f"update must be lazy or dense, got {c.update!r}")
    for name in ("clipnorm", "global_clipnorm", "clipvalue", "loss_scale_factor"):
        v = getattr(c, name)
        need(v is None or (isinstance(v, (int, float)) and math.isfinite(v) and v > 0),
             f"{name} must be > 0, got {v!r}")
    clips = [n for n in ("clipnorm", "global_clipnorm", "clipvalue") if getattr(c, n) is not None]
    need(len(clips) <= 1, f"only one of clipnorm, global_clipnorm, clipvalue may be set (got {', '.join(clips)})")
    need(math.isfinite(c.weight_decay) and c.weight_decay >= 0, f"weight_decay must be >= 0, got {c.weight_decay}")
    need(c.ema_momentum is None or 0 <= c.ema_momentum <= 1,
         f"ema_momentum must be in [0, 1], got {c.ema_momentum}")
    need(c.ema_overwrite_frequency is None or (c.ema_momentum is not None and c.ema_overwrite_frequency >= 1),
         "ema_overwrite_frequency needs ema_momentum and must be >= 1")
    g = c.gradient_accumulation_steps
    need(g is None or g >= 2, f"gradient_accumulation_steps must be >= 2, got {g}")
    need(g is None or c.update == "dense", "gradient accumulation needs --update dense (Keras semantics)")
    need(math.isfinite(c.grad_scale) and c.grad_scale > 0, f"grad_scale must be > 0, got {c.grad_scale}")
    need(math.isfinite(c.bias_lr_mult) and c.bias_lr_mult >= 0, f"bias_lr_mult must be >= 0, got {c.bias_lr_mult}")
    need(c.class_weight is None or (len(c.class_weight) == 2 and all(
        isinstance(x, float) and math.isfinite(x) and x >= 0 for x in c.class_weight)),
         f"class_weight must be [negative, positive] weights >= 0, got {c.class_weight!r}")
    for name in ("beta_1", "beta_2"):
        need(0 <= getattr(c, name) < 1, f"{name} must be in [0, 1), got {getattr(c, name)}")
    need(c.epsilon > 0, f"epsilon must be > 0, got {c.epsilon}")
    if c.learning_rate_schedule is not None:
        from .schedules import check_schedule

        check_schedule(c.learning_rate_schedule)
    need(c.format in ("auto", "libsvm", "parquet", "csv", "tsv"),
         f"format must be auto, libsvm, parquet, csv or tsv, got {c.format!r}")
    need(c.numeric_as in ("value", "categorical", "bin", "logsq", "auto"),
         f"numeric_as must be auto, value, categorical, bin or logsq, got {c.numeric_as!r}")
    need(c.keras_floatx in (None, "float32", "float64"),
         f"keras_floatx must be float32 or float64, got {c.keras_floatx!r}")
    need(c.metric in ("logloss", "auc"), f"metric must be logloss or auc, got {c.metric!r}")
    need(c.input_schema is None or _input_schema_ok(c.input_schema),
         "input_schema must be what ftrl train records: {\"layout\": \"ids\"} or {\"layout\": \"table\", ...}; "
         "remove it to read inputs without checks")
    need(c.validation_every >= 0 and c.holdout_every >= 0 and c.early_stop >= 0,
         "validation_every, holdout_every and early_stop must be >= 0")
    need(c.holdout_every != 1, "holdout_every 1 would hold out every example; use 2 or more")
    need(not (c.validation and c.holdout_every), "give either a validation file or holdout_every, not both")
    need(not c.early_stop or c.validation or c.holdout_every,
         "early_stop needs a validation file (--validation) or --holdout-every")
    need(c.on_bad_line in ("fail", "skip", "warn"), f"on_bad_line must be fail, skip or warn, got {c.on_bad_line!r}")
    need(c.max_bad_lines is None or c.max_bad_lines >= 0, f"max_bad_lines must be >= 0, got {c.max_bad_lines}")
    need(math.isfinite(c.checkpoint_seconds) and c.checkpoint_seconds >= 0,
         f"checkpoint_seconds must be >= 0, got {c.checkpoint_seconds}")
    need(c.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {c.checkpoint_every}")
    need(c.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {c.keep_checkpoints}")
    need(isinstance(c.partitions, int) and c.partitions >= 0, f"partitions must be >= 0, got {c.partitions!r}")
    need(c.merge in ("weighted", "avg", "sum"), f"merge must be weighted, avg or sum, got {c.merge!r}")
    need(isinstance(c.merge_every, int) and c.merge_every >= 0, f"merge_every must be >= 0, got {c.merge_every!r}")
