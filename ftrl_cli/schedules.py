"""Learning rate per optimizer step: a constant alpha, or a Keras 3 schedule given as its
serialized JSON (`{"class_name": "ExponentialDecay", "config": {...}}`).

Keras evaluates schedules in float32 at the step counter `iterations` and casts the result
to the variables' dtype; we do the same with NumPy float32 arithmetic, vectorized over the
steps of a batch.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ConfigError

_KEYS = {
    "ExponentialDecay": {"initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name"},
    "InverseTimeDecay": {"initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name"},
    "PiecewiseConstantDecay": {"boundaries", "values", "name"},
    "CosineDecay": {"initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target",
                    "warmup_steps"},
}


def check_schedule(s) -> None:
    """Validate a serialized Keras schedule; raise ConfigError naming the problem."""
    if not isinstance(s, dict) or "class_name" not in s or not isinstance(s.get("config"), dict):
        raise ConfigError('a learning-rate schedule is {"class_name": ..., "config": {...}}')
    name = s["class_name"].split(">")[-1]
    if name not in _KEYS:
        raise ConfigError(f"unsupported learning-rate schedule {s['class_name']!r}; "
                          f"supported: {', '.join(_KEYS)}")
    cfg = s["config"]
    unknown = sorted(set(cfg) - _KEYS[name])
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {', '.join(unknown)}")
    if name == "PiecewiseConstantDecay":
        b, v = cfg.get("boundaries"), cfg.get("values")
        if not isinstance(b, list) or not isinstance(v, list) or len(v) != len(b) + 1:
            raise ConfigError("PiecewiseConstantDecay needs len(values) == len(boundaries) + 1")
        return
    for k in ("initial_learning_rate", "decay_steps"):
        if not isinstance(cfg.get(k), (int, float)) or cfg[k] <= 0:
            raise ConfigError(f"{name}: {k} must be > 0, got {cfg.get(k)!r}")


def learning_rates(config, it0: int, steps: int, dtype=np.float64) -> np.ndarray:
    """The learning rate of steps it0 .. it0+steps-1, cast to the state's dtype then to
    float64 (what the kernels compute with)."""
    s = config.learning_rate_schedule
    if s is None:
        lr = np.float32(config.alpha) if config.lr_float32 else config.alpha
        return np.full(steps, np.float64(np.asarray(lr).astype(dtype)))
    step = np.arange(it0, it0 + steps, dtype=np.float32)
    name = s["class_name"].split(">")[-1]
    c = s["config"]
    f32 = np.float32
    with np.errstate(all="ignore"):
        if name in ("ExponentialDecay", "InverseTimeDecay"):
            p = step / f32(c["decay_steps"])
            if c.get("staircase"):
                p = np.floor(p)
            lr0 = f32(c["initial_learning_rate"])
            if name == "ExponentialDecay":
                out = lr0 * np.power(f32(c["decay_rate"]), p)
            else:
                out = lr0 / (f32(1) + f32(c["decay_rate"]) * p)
        elif name == "PiecewiseConstantDecay":
            b = np.asarray(c["boundaries"], dtype=np.float32)
            v = np.asarray(c["values"], dtype=np.float32)
            out = v[np.searchsorted(b, step, side="left")]  # x <= b[0] -> v[0], ...
        else:  # CosineDecay
            lr0 = f32(c["initial_learning_rate"])
            decay = f32(c["decay_steps"])
            alpha = f32(c.get("alpha", 0.0))
            target = c.get("warmup_target")
            wsteps = f32(c.get("warmup_steps", 0) or 0)

            def cosine(t, frm):
                frac = t / decay
                cos = f32(0.5) * (f32(1.0) + np.cos(f32(math.pi) * frac))
                return frm * ((f32(1) - alpha) * cos + alpha)

            if target is None:
                out = cosine(np.minimum(step, decay), lr0)
            else:
                t = np.minimum(step, decay + wsteps)
                target = f32(target)
                warm = (target - lr0) * (t / wsteps) + lr0 if wsteps > 0 else t * 0
                out = np.where(t < wsteps, warm, cosine(t - wsteps, target))
    return np.asarray(out, dtype=np.float32).astype(dtype).astype(np.float64)
