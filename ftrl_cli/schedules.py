"""Learning rate per optimizer step: a constant alpha, or a Keras 3 schedule given as its
serialized JSON (`{"class_name": "ExponentialDecay", "config": {...}}`).

Keras evaluates schedules in float32 (their Python-float parameters become float32 tensors
whatever floatx is) at the raw step counter `_iterations` and casts the result to the
variables' dtype. Inside model.fit the schedule runs in a tf.function whose float32 graph
TensorFlow rewrites: a division by a constant becomes a multiplication by its float32
reciprocal (x / C -> x * (1/C)) and constants are pushed together (C1 * (x * C2) ->
(C1 * C2) * x). We compute the values as that rewritten graph does, bit for bit
(tests/data/keras_fixtures/keras_schedules.json): float32 NumPy arithmetic vectorized over
the steps of a batch, with pow and cos evaluated in float64 and rounded to float32 (TF's
float32 pow and cos are correctly rounded; NumPy's float32 ones are not always).
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
    "PolynomialDecay": {"initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle",
                        "name"},
}

f32 = np.float32


def check_schedule(s) -> None:
    """Validate a serialized Keras schedule; raise ConfigError naming the problem."""
    if not isinstance(s, dict) or not isinstance(s.get("class_name"), str) or not isinstance(s.get("config"), dict):
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
        v = cfg.get(k)
        # a warmup may start from 0 (that first step then changes nothing, see kernels)
        zero_ok = k == "initial_learning_rate" and cfg.get("warmup_target") is not None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (v == 0 and not zero_ok):
            raise ConfigError(f"{name}: {k} must be > 0, got {v!r}")


def _recip(c):
    """The folded float32 reciprocal of a float32 constant."""
    return f32(1) / c


def _cr(fn, x, *args):
    """A float32 function correctly rounded: evaluated in float64, rounded once."""
    return fn(np.asarray(x, np.float64), *args).astype(np.float32)


def _cosine(t, decay, frm, alpha, folded):
    """Keras's _decay_function: frm * ((1 - alpha) * 0.5 * (1 + cos(pi * t / D)) + alpha),
    (1 - alpha) computed as a Python double; folded: the argument is (pi * (1/D)) * t."""
    pi = f32(math.pi)
    arg = (pi * _recip(decay)) * t if folded else pi * (t / decay)
    cos = _cr(np.cos, arg)
    cosine_decayed = f32(0.5) * (f32(1.0) + cos)
    return frm * (f32(1 - alpha) * cosine_decayed + f32(alpha))


def schedule_values(s: dict, steps: np.ndarray) -> np.ndarray:
    """float32 values of the serialized schedule s at the integer steps (as in model.fit)."""
    name = s["class_name"].split(">")[-1]
    c = s["config"]
    istep = np.asarray(steps, np.int64)
    step = istep.astype(np.float32)
    with np.errstate(all="ignore"):
        if name == "PiecewiseConstantDecay":
            # values[0] if step <= b0, values[i+1] if b_i < step <= b_(i+1), values[-1] after
            b = np.asarray(c["boundaries"], dtype=np.float64)
            v = np.asarray(c["values"], dtype=np.float32)
            return v[np.searchsorted(b, istep, side="left")]
        lr0 = f32(c["initial_learning_rate"])
        decay = f32(c["decay_steps"])
        if name in ("ExponentialDecay", "InverseTimeDecay"):
            rate = f32(c["decay_rate"])
            if name == "ExponentialDecay":
                p = step * _recip(decay)
                if c.get("staircase"):
                    p = np.floor(p)
                return lr0 * _cr(np.power, rate, p.astype(np.float64))
            if c.get("staircase"):
                return lr0 / (f32(1) + rate * np.floor(step * _recip(decay)))
            return lr0 / (f32(1) + (rate * _recip(decay)) * step)
        if name == "PolynomialDecay":
            end = f32(c.get("end_learning_rate", 0.0001))
            power = f32(c.get("power", 1.0))
            if c.get("cycle"):
                mult = np.where(step == 0, f32(1), np.ceil(step * _recip(decay)))
                p = step / (decay * mult)
            else:
                p = np.minimum(step, decay) * _recip(decay)
            return (lr0 - end) * _cr(np.power, f32(1) - p, np.float64(power)) + end
        # CosineDecay
        alpha = c.get("alpha", 0.0) or 0.0
        target = c.get("warmup_target")
        if target is None:
            return _cosine(np.minimum(step, decay), decay, lr0, alpha, True)
        # warmup: the branches run inside ops.cond, where nothing is folded
        wsteps = f32(c.get("warmup_steps", 0) or 0)
        target = f32(target)
        t = np.minimum(step, decay + wsteps)
        warm = (target - lr0) * (t / wsteps) + lr0
        return np.where(t < wsteps, warm, _cosine(t - wsteps, decay, target, alpha, False))


def learning_rates(config, it0: int, steps: int, dtype=np.float64) -> np.ndarray:
    """The learning rate of steps it0 .. it0+steps-1, cast to the state's dtype then to
    float64 (what the kernels compute with)."""
    s = config.learning_rate_schedule
    if s is None:
        lr = np.float32(config.alpha) if config.lr_float32 else config.alpha
        return np.full(steps, np.float64(np.asarray(lr).astype(dtype)))
    out = schedule_values(s, np.arange(it0, it0 + steps, dtype=np.int64))
    return np.asarray(out, dtype=np.float32).astype(dtype).astype(np.float64)
