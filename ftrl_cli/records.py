"""What a training run records, as dataclasses with a documented JSON form.

A checkpoint holds the model's State and one TrainingLog (stored as JSON in its `meta`
entry; see docs/model-format.md). Field names are the JSON keys, except `pass_`, which is
"pass" in JSON. Reading is lenient about keys that older checkpoints lack (they take the
defaults below) and strict about unknown ones.

    TrainingLog             everything the model has been through, over all runs
      .run: RunProgress     where the current (or last) run is: pass, file, byte/row
                            offset, and the running sums of the pass in progress
      .history: [PassRecord]   one per finished pass: progressive log loss, best constant
      .evals: [EvalRecord]     each validation / hold-out evaluation
      .curve: [CurvePoint]     progressive loss at doubling example counts
      .best: Best | None       the best evaluation so far (early stopping keeps it)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import ModelError

_RENAMES = {"pass_": "pass"}


def _to_json(obj):
    if dataclasses.is_dataclass(obj):
        return {_RENAMES.get(f.name, f.name): _value_json(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    return _value_json(obj)


def _value_json(obj):
    if isinstance(obj, Record):
        return obj.to_json()
    if isinstance(obj, list):
        return [_to_json(x) for x in obj]
    return obj


def json_finite(x):
    """x with every float that is not finite replaced by None: JSON has no NaN or infinity,
    and a number that is not defined is null (lists, tuples and dicts at any depth)."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: json_finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_finite(v) for v in x]
    return x


def _kwargs(cls, d: dict, nested: dict | None = None) -> dict:
    """Constructor arguments of cls from its JSON dict d (nested: key -> converter)."""
    if not isinstance(d, dict):
        raise ModelError(f"checkpoint record {cls.__name__}: expected an object, got {type(d).__name__}")
    names = {_RENAMES.get(f.name, f.name): f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(names))
    if unknown:
        raise ModelError(f"checkpoint record {cls.__name__}: unknown key(s) {', '.join(unknown)}")
    out = {}
    types = {f.name: f.type for f in dataclasses.fields(cls)}
    for key, value in d.items():
        conv = (nested or {}).get(key)
        if conv is None:
            _check_value(cls, key, value, types[names[key]])
        elif not isinstance(value, list if types[names[key]] == "list" else (dict, type(None))):
            raise ModelError(f"checkpoint record {cls.__name__}.{key}: expected "
                             f"{types[names[key]]}, got {type(value).__name__}")
        out[names[key]] = conv(value) if conv is not None and value is not None else value
    return out


_MAX_COUNT = 2**63 - 1  # counts and offsets are int64 in the engine and its kernels


def _check_value(cls, key, value, t: str) -> None:
    """A record's plain value has its field's type: counts are ints in [0, 2**63), numbers
    are finite or null where allowed; a damaged record fails here, not deep in the engine."""
    if value is None and t.endswith("| None"):
        return
    base = t.split(" |")[0]
    ok = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _MAX_COUNT,
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "dict": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
    }[base](value)
    if not ok:
        want = f"{t} (>= 0, < 2**63)" if base == "int" else t
        raise ModelError(f"checkpoint record {cls.__name__}.{key}: expected {want}, got {str(value)[:40]!r}")


class Record:
    """JSON round trip for the flat records: to_json() -> dict, from_json(dict)."""

    def to_json(self) -> dict:
        return _to_json(self)

    @classmethod
    def from_json(cls, d: dict):
        return cls(**_kwargs(cls, d))


@dataclass
class InputId(Record):
    """One input of a run, as given, with its size then (None for stdin)."""

    path: str
    size: int | None = None
    fingerprint: str | None = None  # readers.fingerprint: size + sampled content


def input_bytes(ids) -> int | None:
    """The bytes of a run's inputs (InputIds), None when one's size is not known (stdin)."""
    sizes = [i.size for i in ids]
    return None if None in sizes else sum(sizes)


@dataclass
class PassRecord(Record):
    pass_: int  # 1-based, counted over the model's whole life
    examples: int  # rows trained on in this pass (held-out rows excluded)
    logloss: float | None  # progressive validation log loss of the pass (weighted mean)
    best_constant_logloss: float  # the log loss of predicting the pass's positive rate
    positive_rate: float


@dataclass
class EvalRecord(Record):
    pass_: int
    examples: int  # examples_seen when it was evaluated
    rows: int  # rows evaluated
    logloss: float | None
    auc: float | None


@dataclass
class CurvePoint(Record):
    examples: int  # examples_seen at this point (doubling: 128, 256, ...)
    pass_: int
    train_logloss: float  # progressive log loss of the pass so far
    seconds: float  # since the run began


@dataclass
class Best(Record):
    metric: str  # logloss | auc
    value: float
    pass_: int
    examples: int
    reason: str | None = None  # on the kept model: "early stop" | "best"

    def to_json(self) -> dict:
        d = _to_json(self)
        if self.reason is None:
            del d["reason"]
        return d


@dataclass
class RunRecord(Record):
    """One run (one `ftrl train` invocation, resumed or not) in the model's life."""

    first_pass: int  # passes the model had done when the run began
    passes: int  # passes the run was asked for
    inputs: list = field(default_factory=list)  # [path] as given


@dataclass
class RunProgress(Record):
    """The position of a run in its inputs, so a killed run resumes exactly."""

    inputs: list = field(default_factory=list)  # [InputId]
    passes: int = 1  # passes this run makes
    pass_: int = 0  # 0-based pass in progress
    file: int = 0  # index into the pass's file order
    offset: int = 0  # bytes (text) or rows (tables) of that file consumed
    line: int = 0  # lines of that file consumed (text)
    block_row: int = 0  # --shuffle on text: rows trained of the block that starts at offset/line
    examples: int = 0  # rows trained on in this pass so far
    loss_sum: float = 0.0  # running sums of the pass, added row by row
    weight_sum: float = 0.0
    pos_sum: float = 0.0
    stream_row: int = 0  # rows seen in this pass (hold-out counting)
    first_pass: int = 0  # passes_done when the run began

    @classmethod
    def from_json(cls, d: dict) -> RunProgress:
        r = cls(**_kwargs(cls, d, {"inputs": lambda xs: [InputId.from_json(x) for x in xs]}))
        if r.inputs and not (r.file <= len(r.inputs) and r.pass_ <= r.passes):
            raise ModelError(f"checkpoint record RunProgress: file {r.file} of {len(r.inputs)} inputs, "
                             f"pass {r.pass_} of {r.passes}: not a position in the run")
        return r

    def end_pass(self) -> None:
        self.examples, self.loss_sum, self.weight_sum, self.pos_sum = 0, 0.0, 0.0, 0.0

    def to_json(self) -> dict:
        d = _to_json(self)
        if not self.block_row:  # (written only inside a shuffled text block: older readers read the rest)
            del d["block_row"]
        return d


@dataclass
class TrainingLog(Record):
    examples_seen: int = 0  # rows trained on, over all runs
    passes_done: int = 0
    finished: bool = False  # the last run ended (a checkpoint of a killed run is unfinished)
    bad_lines: int = 0  # lines skipped by --on-bad-line skip|warn, over all runs
    history: list = field(default_factory=list)  # [PassRecord]
    evals: list = field(default_factory=list)  # [EvalRecord]
    curve: list = field(default_factory=list)  # [CurvePoint]
    run: RunProgress = field(default_factory=RunProgress)
    best: Best | None = None
    since_best: int = 0  # evaluations since the best one (early stopping)
    kept: Best | None = None  # the model kept at the end, when it is the best one
    stopped_early: bool = False
    estimator: dict | None = None  # what the scikit-learn estimator needs (classes, n_features)
    runs: list = field(default_factory=list)  # [RunRecord], oldest first (empty in older checkpoints)

    @classmethod
    def from_json(cls, d: dict) -> TrainingLog:
        return cls(**_kwargs(cls, d, {
            "history": lambda xs: [PassRecord.from_json(x) for x in xs],
            "evals": lambda xs: [EvalRecord.from_json(x) for x in xs],
            "curve": lambda xs: [CurvePoint.from_json(x) for x in xs],
            "run": RunProgress.from_json,
            "runs": lambda xs: [RunRecord.from_json(x) for x in xs],
            "best": Best.from_json,
            "kept": Best.from_json,
        }))

    def copy(self) -> TrainingLog:
        return TrainingLog.from_json(self.to_json())
