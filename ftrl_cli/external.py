"""Optimizer configs of other libraries, read verbatim and mapped onto ftrl's settings.

- Keras 3 `keras.optimizers.Ftrl(...).get_config()` (also wrapped as
  `{"class_name": "Ftrl", "config": {...}}`): dense updates, Keras's L2 convention
  (paper l2 = 2 x Keras l2; beta/(2 lr) folded into l2 is the paper's (beta + sqrt n)/lr),
  clip -> weight decay -> update -> EMA. A float learning rate is used as written, in the
  model's dtype: Keras keeps it in a Variable of the floatx in force when the optimizer was
  built, and get_config() already shows that rounding (0.0010000000474974513 for float32).
  `initial_accumulator_value` is rounded to the Keras floatx the config was used under
  (`--keras-floatx`, default float32: Keras's Constant initializer makes it a tensor of the
  accumulator's dtype, so 0.1 -> 0.10000000149011612 under float32 and stays 0.1 under
  float64); the floatx is recorded as `keras_floatx`. `weight_decay` is rounded to float32
  whatever the floatx (TensorFlow's tf.cast of a Python float goes through a float32
  tensor). A clip value of 0 means off, as in Keras.
- MXNet `mx.optimizer.Ftrl` arguments: lazy (row_sparse) updates, `wd` is the paper's l2
  (applied to the bias too, as Gluon's Trainer and the raw `ftrl_update` op do), `rescale_grad`
  multiplies the batch-mean gradient, `clip_gradient` clamps it. Every number is rounded to
  float32 first (FtrlParam's fields are C floats).
- tensorflow-addons `NovoGrad(...).get_config()` (or its constructor arguments): learning
  rate, beta_1, beta_2 and weight_decay are float32 variables there, so they are rounded to
  float32; epsilon is used as written.

Every key is either mapped or refused with a message: nothing is silently ignored.
"""

from __future__ import annotations

import numpy as np

from .config import read_json_file
from .errors import ConfigError


def _f32(v):
    """v rounded to float32, as a Python float (None stays None)."""
    return None if v is None else float(np.float32(v))


def read_json(path) -> dict:
    """The JSON object in an optimizer config file; a missing or unreadable file, bytes that
    are not UTF-8 text, bad or absurd JSON (nested too deeply, giant integers) and a value
    that is not an object are one-line ConfigErrors naming the file."""
    d = read_json_file(path, "optimizer config")
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    return d


def _schedule_alpha(lr: dict) -> float:
    """A schedule's initial learning rate as alpha (0.001, Keras's default, when it has none
    or it is not a number: the schedule itself is checked with the other settings)."""
    cfg = lr.get("config")
    v = cfg.get("initial_learning_rate") if isinstance(cfg, dict) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v or abs(v) > 1e300:
        return 0.001
    return float(v)


def _unwrap(d: dict, class_names: tuple, source: str) -> dict:
    if "class_name" in d and isinstance(d.get("config"), dict):
        if d["class_name"] not in class_names:
            raise ConfigError(f"{source}: optimizer class {d['class_name']!r} is not "
                              f"{' or '.join(class_names)}")
        return d["config"]
    return d


def _number(d, key, source, *, allow_none=False):
    v = d.get(key)
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{source}: {key} must be a number, got {v!r}")
    try:
        return float(v)
    except OverflowError:  # an integer beyond any float
        raise ConfigError(f"{source}: {key} is too large ({v.bit_length()}-bit integer)") from None


def _refuse_unknown(d, known, source):
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


KERAS_KEYS = ("name", "learning_rate", "learning_rate_power", "initial_accumulator_value",
              "l1_regularization_strength", "l2_regularization_strength",
              "l2_shrinkage_regularization_strength", "beta", "weight_decay", "clipnorm",
              "clipvalue", "global_clipnorm", "use_ema", "ema_momentum", "ema_overwrite_frequency",
              "loss_scale_factor", "gradient_accumulation_steps",
              # Keras 2 get_config extras that do not change the arithmetic
              "jit_compile", "is_legacy_optimizer", "decay")


def from_keras(d: dict, source: str = "keras optimizer", floatx: str = "float32") -> dict:
    """Settings (a dict of Config fields) equivalent to a Keras Ftrl config used under
    keras.config.floatx() == floatx."""
    d = _unwrap(d, ("Ftrl", "keras.optimizers.Ftrl", "Addons>Ftrl"), source)
    _refuse_unknown(d, KERAS_KEYS, source)
    if d.get("decay"):
        raise ConfigError(f"{source}: legacy 'decay' is not supported; give a learning-rate schedule")

    def checked(key, default, *, sign=">=0"):
        v = d.get(key, default)
        v = default if v is None else _number({key: v}, key, source)
        # Keras's own argument checks, with its wording
        if sign == ">=0" and v < 0:
            raise ConfigError(f"{source}: `{key}` needs to be positive or zero. Received: {key}={v}")
        if sign == "<=0" and v > 0:
            raise ConfigError(f"{source}: `{key}` needs to be negative or zero. Received: {key}={v}")
        return v

    lr = d.get("learning_rate", 0.001)
    out = {"optimizer": "ftrl", "update": "dense", "lr_float32": False,
           "lr_power": checked("learning_rate_power", -0.5, sign="<=0"),
           "initial_accumulator": (_f32 if floatx == "float32" else float)(
               checked("initial_accumulator_value", 0.1)), "keras_floatx": floatx,
           "l1": checked("l1_regularization_strength", 0.0),
           "l2": 2.0 * checked("l2_regularization_strength", 0.0),
           "l2_shrinkage": checked("l2_shrinkage_regularization_strength", 0.0),
           "beta": _number(d, "beta", source) if d.get("beta") is not None else 0.0,
           "bias_l1": None, "bias_l2": None, "bias_lr_mult": 1.0, "grad_scale": 1.0}
    if isinstance(lr, dict):
        out["learning_rate_schedule"] = lr
        out["alpha"] = _schedule_alpha(lr)
    else:
        out["alpha"] = _number({"learning_rate": lr}, "learning_rate", source)
        out["learning_rate_schedule"] = None
    out["weight_decay"] = _f32(_number(d, "weight_decay", source, allow_none=True) or 0.0)
    for k in ("clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor"):
        out[k] = _number(d, k, source, allow_none=True)
    clips = [k for k in ("clipnorm", "clipvalue", "global_clipnorm") if out[k] is not None]
    if len(clips) > 1:
        raise ConfigError(f"{source}: only one of `clipnorm`, `clipvalue` and `global_clipnorm` can "
                          f"be set. Received: {', '.join(clips)}")
    for k in clips:  # Keras clips only `if self.clipnorm and self.clipnorm > 0`
        if out[k] <= 0:
            out[k] = None
    gas = d.get("gradient_accumulation_steps")
    if gas is not None and (not isinstance(gas, int) or gas < 2):
        raise ConfigError(f"{source}: `gradient_accumulation_steps` must be an integer >= 2. "
                          f"Received: gradient_accumulation_steps={gas}")
    out["gradient_accumulation_steps"] = gas
    if d.get("use_ema"):
        mom = _number(d, "ema_momentum", source) if d.get("ema_momentum") is not None else 0.99
        if not 0 <= mom <= 1:
            raise ConfigError(f"{source}: `ema_momentum` must be in the range [0, 1]. Received: {mom}")
        freq = d.get("ema_overwrite_frequency")
        if freq is not None and (not isinstance(freq, int) or freq < 1):
            raise ConfigError(f"{source}: `ema_overwrite_frequency` must be an integer >= 1 or None. "
                              f"Received: {freq}")
        out["ema_momentum"], out["ema_overwrite_frequency"] = mom, freq
    else:
        out["ema_momentum"] = out["ema_overwrite_frequency"] = None
    return out


MXNET_KEYS = ("learning_rate", "lamda1", "beta", "wd", "rescale_grad", "clip_gradient",
              "multi_precision", "use_fused_step", "begin_num_update", "lr_scheduler")


def from_mxnet(d: dict, source: str = "mxnet optimizer") -> dict:
    """Settings equivalent to `mx.optimizer.Ftrl(**d)` driven by Module/Gluon (which set
    rescale_grad to scale/batch_size: ftrl applies `rescale_grad` to the batch mean)."""
    d = _unwrap(d, ("Ftrl", "ftrl"), source)
    _refuse_unknown(d, MXNET_KEYS, source)
    if d.get("lr_scheduler") is not None:
        raise ConfigError(f"{source}: lr_scheduler objects cannot be read from JSON; give a "
                          "Keras-style schedule with --lr-schedule")
    if d.get("begin_num_update", 0) not in (0, None):
        raise ConfigError(f"{source}: begin_num_update must be 0")
    clip = _number(d, "clip_gradient", source, allow_none=True)
    # FtrlParam's lr, lamda1, beta, wd, rescale_grad and clip_gradient are C floats
    return {"optimizer": "ftrl", "update": "lazy", "lr_float32": False,
            "alpha": _f32(_number(d, "learning_rate", source) if "learning_rate" in d else 0.1),
            "l1": _f32(_number(d, "lamda1", source) if "lamda1" in d else 0.01),
            "beta": _f32(_number(d, "beta", source) if "beta" in d else 1.0),
            "l2": _f32(_number(d, "wd", source) if "wd" in d else 0.0),
            # Gluon's Trainer (Parameter.wd_mult = 1) and the raw op apply wd to the bias too;
            # lamda1 applies to all. (Module's optimizer gives *_bias parameters wd_mult 0:
            # add bias_l2 = 0 for that.)
            "bias_l1": None, "bias_l2": None,
            "grad_scale": _f32(_number(d, "rescale_grad", source)) if "rescale_grad" in d else 1.0,
            # the Python optimizer passes clip_gradient to the op only if it is truthy
            "clipvalue": _f32(clip) if clip is not None and clip > 0 else None,
            "lr_power": -0.5, "initial_accumulator": 0.0, "l2_shrinkage": 0.0,
            "learning_rate_schedule": None}


NOVOGRAD_KEYS = ("name", "learning_rate", "lr", "beta_1", "beta_2", "epsilon", "weight_decay",
                 "grad_averaging", "amsgrad", "clipnorm", "clipvalue", "global_clipnorm", "decay")


def from_novograd(d: dict, source: str = "novograd optimizer") -> dict:
    """Settings equivalent to tensorflow-addons `NovoGrad(**d)`."""
    d = _unwrap(d, ("NovoGrad", "Addons>NovoGrad"), source)
    _refuse_unknown(d, NOVOGRAD_KEYS, source)
    if d.get("decay"):
        raise ConfigError(f"{source}: legacy 'decay' is not supported; give a learning-rate schedule")
    wd = _number(d, "weight_decay", source) if d.get("weight_decay") is not None else 0.0
    if wd < 0:
        raise ConfigError(f"{source}: Weight decay rate cannot be negative")
    lr = d.get("learning_rate", d.get("lr", 0.001))
    # learning_rate, beta_1, beta_2 and weight_decay are float32 hyper Variables (_set_hyper);
    # get_config() already shows them rounded, constructor arguments are rounded here
    out = {"optimizer": "novograd", "update": "dense", "lr_float32": True,
           "beta_1": _f32(_number(d, "beta_1", source) if "beta_1" in d else 0.9),
           "beta_2": _f32(_number(d, "beta_2", source) if "beta_2" in d else 0.999),
           "epsilon": _number(d, "epsilon", source, allow_none=True) or 1e-7,
           "weight_decay": _f32(wd), "grad_averaging": bool(d.get("grad_averaging", False)),
           "amsgrad": bool(d.get("amsgrad", False))}
    if isinstance(lr, dict):
        out["learning_rate_schedule"] = lr
        out["alpha"] = _schedule_alpha(lr)
    else:
        out["alpha"] = _f32(_number({"learning_rate": lr}, "learning_rate", source))
    for k in ("clipnorm", "clipvalue", "global_clipnorm"):
        out[k] = _number(d, k, source, allow_none=True)
    return out
