"""Settings as data: a frozen dataclass that round-trips through JSON.

`config.json` in a model directory holds every resolved setting plus the format and
package versions; `ftrl train --config FILE` reads it back (explicit flags win) and
unknown keys are an error.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, fields

from .errors import ConfigError

FORMAT_VERSION = 1
# keys written beside the settings; accepted (and ignored) when a config is read back
META_KEYS = ("format", "format_version", "package_version")


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
    # --- run ---
    passes: int = 1
    checkpoint_every: int = 0  # examples between checkpoints; 0 = only at the end
    keep_checkpoints: int = 3

    def __post_init__(self):
        validate(self)

    # Settings that fix the shape or meaning of the saved state: a resumed run must keep them.
    STRUCTURAL = ("bits", "dtype", "bias")

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
        d = {"format": "ftrl-config", "format_version": FORMAT_VERSION}
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
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot read config ({e})") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
        return cls.from_dict(d, source=str(path))


def coerce(kwargs: dict, source: str) -> dict:
    """Check JSON value types against the dataclass fields (ints may stand for floats)."""
    out = {}
    for f in fields(Config):
        if f.name not in kwargs:
            continue
        v = kwargs[f.name]
        t = f.type
        if "float" in t and not isinstance(v, bool) and isinstance(v, (int, float)):
            out[f.name] = float(v)
        elif "None" in t and v is None:
            out[f.name] = None
        elif t == "bool" and isinstance(v, bool):
            out[f.name] = v
        elif t == "int" and isinstance(v, int) and not isinstance(v, bool):
            out[f.name] = v
        elif t == "str" and isinstance(v, str):
            out[f.name] = v
        else:
            raise ConfigError(f"{source}: {f.name} must be {t}, got {v!r}")
    return out


def validate(c: Config) -> None:
    def need(cond, msg):
        if not cond:
            raise ConfigError(msg)

    for name in ("alpha", "beta", "l1", "l2", "l2_shrinkage", "lr_power", "initial_accumulator"):
        v = getattr(c, name)
        need(isinstance(v, (int, float)) and math.isfinite(v), f"{name} must be a finite number, got {v!r}")
    need(c.alpha > 0, f"alpha must be > 0, got {c.alpha}")
    for name in ("beta", "l1", "l2", "l2_shrinkage", "initial_accumulator"):
        need(getattr(c, name) >= 0, f"{name} must be >= 0, got {getattr(c, name)}")
    need(c.lr_power < 0, f"lr_power must be < 0 (n^-lr_power is the rate's denominator), got {c.lr_power}")
    for name in ("bias_l1", "bias_l2"):
        v = getattr(c, name)
        need(v is None or (math.isfinite(v) and v >= 0), f"{name} must be >= 0, got {v}")
    need(isinstance(c.bits, int) and 1 <= c.bits <= 40, f"bits must be an integer in 1..40, got {c.bits}")
    need(c.dtype in ("float64", "float32"), f"dtype must be float64 or float32, got {c.dtype!r}")
    need(isinstance(c.passes, int) and c.passes >= 1, f"passes must be >= 1, got {c.passes}")
    need(c.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {c.checkpoint_every}")
    need(c.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1, got {c.keep_checkpoints}")
