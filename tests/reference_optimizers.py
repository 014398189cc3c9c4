"""Independent numpy oracles for three library optimizers, in mini-batch mode, for a logistic
regression ``Dense(1, sigmoid)`` trained with binary cross-entropy.

    * Keras 3 ``keras.optimizers.Ftrl`` with the whole ``BaseOptimizer`` pipeline
      (loss scale, gradient accumulation, clipping, weight decay, update, EMA) and the
      learning-rate schedules, plus a ``model.fit(..., shuffle=False)`` driver.
    * MXNet ``ftrl_update`` (dense and lazy ``row_sparse``) plus a Gluon-style fit driver.
    * tensorflow-addons ``NovoGrad`` (a legacy ``OptimizerV2``) plus a ``tf.keras`` fit driver.

Plain readable numpy, one function per rule, every operation written in the order the library
performs it and in the library's dtype (float64 or float32), so that the results agree with the
real libraries to rounding (see ``tests/data/keras_fixtures/`` and
``tests/test_reference_optimizers.py``). Spec: ``shared/reference/semantics.md`` sections 3, 5,
9, 11, 12. These are test oracles: slow, obvious and never imported by ``ftrl_cli``.

Conventions: a model is the list of its two variables ``[kernel (d,), bias (1,)]`` (Keras and
MXNet order); ``X`` is a dense (n, d) array (or anything with ``toarray()`` per batch) and ``y``
holds 0/1 labels.
"""

from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------------
# Shared: the logistic-regression gradient
# ---------------------------------------------------------------------------------------------


def sigmoid(x):
    """Overflow-free logistic function, element-wise, in x's dtype."""
    x = np.asarray(x)
    one = x.dtype.type(1)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, one / (one + e), e / (one + e))


def _dense_batch(Xb, dtype):
    if hasattr(Xb, "toarray"):
        Xb = Xb.toarray()
    return np.asarray(Xb, dtype=dtype)


def logreg_dlogit(Xb, yb, w, b, dtype, sample_weight=None):
    """d(loss)/d(logit_b) for a batch: sigmoid(x_b.w + b) - y_b (times sample weight), NOT yet
    divided by anything. Keras's TF backend gets exactly this through
    ``sigmoid_cross_entropy_with_logits`` (section 11); Gluon's SigmoidBCELoss likewise."""
    T = np.dtype(dtype).type
    logits = Xb @ w + b[0]
    d = sigmoid(logits) - np.asarray(yb, dtype=T)
    if sample_weight is not None:
        d = d * np.asarray(sample_weight, dtype=T)
    return d


def logreg_mean_grads(Xb, yb, w, b, dtype, sample_weight=None):
    """Keras (3 and 2) ``Dense(1, sigmoid)`` + ``BinaryCrossentropy()`` gradient with reduction
    ``sum_over_batch_size``: g_W = X_b^T (p - y) / B, g_b = sum(p - y) / B, where B is the number
    of rows of THIS batch (the last batch of an epoch averages over its own rows) and sample
    weights multiply each row but do not change the divisor."""
    T = np.dtype(dtype).type
    B = Xb.shape[0]
    d = logreg_dlogit(Xb, yb, w, b, dtype, sample_weight) / T(B)
    return [Xb.T @ d, np.array([d.sum()], dtype=T)]


def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


# ---------------------------------------------------------------------------------------------
# Keras 3: learning-rate schedules (keras/src/optimizers/schedules/learning_rate_schedule.py)
# ---------------------------------------------------------------------------------------------
# A schedule is called with the optimizer's raw step counter ``_iterations`` (the count of
# ``apply`` calls so far, before the increment; with gradient accumulation it is the RAW count,
# not the divided ``iterations``). Its Python-float hyper-parameters go through
# ``tf.convert_to_tensor`` without a dtype, which is always float32 (whatever floatx is), so every
# schedule computes in float32 and the optimizer then casts the result to the variable's dtype.
# model.fit runs the step in a tf.function, and Grappler rewrites the float32 graph:
#   (a) x / C  ->  x * (1/C)        division by a constant becomes a multiplication by its
#                                   float32 reciprocal (constant folding, "ReduceDivToReciprocalMul");
#   (b) C1 * (x * C2)  ->  (C1 * C2) * x    constants pushed down and folded.
# So e.g. CosineDecay's pi * (step / D) is computed as (pi * (1/D)) * step. These change the
# value by a few float32 ulps against eager evaluation. Only constants created in the same
# function body fold: CosineDecay's warmup and post-warmup branches (ops.cond) receive
# warmup_steps, decay_steps, ... as captured inputs, so nothing folds there; a schedule called
# inside the gradient-accumulation cond branch folds as usual. The functions below give the
# values bit for bit, folded=True as in model.fit, folded=False as called eagerly
# (tests/data/keras_fixtures/keras_schedules.json).

F32 = np.float32


def _f32(x):
    return np.float32(x)


def cr_power(x, p):
    """x ** p correctly rounded to x's dtype. TF's float32 pow is (the measured schedules agree bit
    for bit with the float64 pow rounded to float32); numpy's float32 power is NOT (1 ulp off for
    about 1 value in 7). For float64 this is plain np.power."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        return np.power(x.astype(np.float64), np.float64(p)).astype(np.float32)
    return np.power(x, p)


def _recip(c):
    """Grappler's folded reciprocal of a float32 constant."""
    return _f32(1) / c


def _div(x, c, folded):
    """x / C as computed: x * (1/C) when Grappler folds it (graph), x / C otherwise."""
    return x * _recip(c) if folded else x / c


def exponential_decay(cfg, step, folded=True):
    """initial * decay_rate ** (step / decay_steps)   [floor() of the exponent if staircase]."""
    init = _f32(cfg["initial_learning_rate"])
    decay_steps = _f32(cfg["decay_steps"])
    decay_rate = _f32(cfg["decay_rate"])
    p = _div(_f32(step), decay_steps, folded)
    if cfg.get("staircase", False):
        p = np.floor(p)
    return init * cr_power(decay_rate, p)


def inverse_time_decay(cfg, step, folded=True):
    """initial / (1 + decay_rate * (step / decay_steps))   [floor() if staircase];
    folded: 1 + (decay_rate * (1/decay_steps)) * step, or 1 + decay_rate * floor(step * (1/D))."""
    init = _f32(cfg["initial_learning_rate"])
    decay_steps = _f32(cfg["decay_steps"])
    decay_rate = _f32(cfg["decay_rate"])
    if cfg.get("staircase", False):
        return init / (_f32(1) + decay_rate * np.floor(_div(_f32(step), decay_steps, folded)))
    if folded:
        return init / (_f32(1) + (decay_rate * _recip(decay_steps)) * _f32(step))
    return init / (_f32(1) + decay_rate * (_f32(step) / decay_steps))


def piecewise_constant_decay(cfg, step, folded=True):
    """values[0] if step <= b[0]; values[i+1] if b[i] < step <= b[i+1]; values[-1] if
    step > b[-1] (boundaries compared as integers with the integer step)."""
    bounds = [int(b) for b in cfg["boundaries"]]
    values = [_f32(v) for v in cfg["values"]]
    if step <= bounds[0]:
        return values[0]
    if step > bounds[-1]:
        return values[-1]
    for low, high, v in zip(bounds[:-1], bounds[1:], values[1:-1]):
        if low < step <= high:
            return v
    raise AssertionError("unreachable")


def _cosine_decay_fn(step, decay_steps, decay_from_lr, alpha, folded):
    pi = _f32(math.pi)
    # pi * (step / D); folded: (pi * (1/D)) * step. cos of that float32 argument, correctly
    # rounded to float32 (TF's scalar cos agrees; numpy's float32 np.cos does not always).
    arg = (pi * _recip(decay_steps)) * step if folded else pi * (step / decay_steps)
    cos = _f32(math.cos(float(arg)))
    cosine_decayed = _f32(0.5) * (_f32(1.0) + cos)
    decayed = _f32(1 - alpha) * cosine_decayed + _f32(alpha)  # (1 - alpha) is a Python double
    return decay_from_lr * decayed


def cosine_decay(cfg, step, folded=True):
    """Without warmup: lr0 * ((1-alpha) * 0.5 * (1 + cos(pi * min(step, D)/D)) + alpha).
    With warmup_target: linear from initial to warmup_target over warmup_steps
    ((target - initial) * (step / W) + initial), then the cosine from warmup_target over the next
    decay_steps (step - W); the step is capped at D + W. The warmup form selects its branch with
    ops.cond, and nothing inside a cond branch is folded."""
    init = _f32(cfg["initial_learning_rate"])
    decay_steps = _f32(cfg["decay_steps"])
    alpha = cfg.get("alpha", 0.0)
    s = _f32(step)
    if cfg.get("warmup_target") is None:
        s = min(s, decay_steps)
        return _cosine_decay_fn(s, decay_steps, init, alpha, folded)
    target = _f32(cfg["warmup_target"])
    warmup_steps = _f32(cfg.get("warmup_steps", 0))
    s = min(s, decay_steps + warmup_steps)
    if s < warmup_steps:
        return (target - init) * (s / warmup_steps) + init
    return _cosine_decay_fn(s - warmup_steps, decay_steps, target, alpha, folded=False)


def polynomial_decay(cfg, step, folded=True):
    """(initial - end) * (1 - min(step, D)/D) ** power + end; with cycle, D is stretched to the
    first multiple of decay_steps >= step (1x at step 0): D * ceil(step / decay_steps)."""
    init = _f32(cfg["initial_learning_rate"])
    end = _f32(cfg.get("end_learning_rate", 0.0001))
    power = _f32(cfg.get("power", 1.0))
    s = _f32(step)
    decay_steps = _f32(cfg["decay_steps"])
    if cfg.get("cycle", False):
        mult = _f32(1.0) if s == 0 else np.ceil(_div(s, _f32(cfg["decay_steps"]), folded))
        p = s / (decay_steps * mult)
    else:
        p = _div(min(s, decay_steps), decay_steps, folded)
    return (init - end) * cr_power(_f32(1) - p, power) + end


SCHEDULES = {
    "ExponentialDecay": exponential_decay,
    "InverseTimeDecay": inverse_time_decay,
    "PiecewiseConstantDecay": piecewise_constant_decay,
    "CosineDecay": cosine_decay,
    "PolynomialDecay": polynomial_decay,
}


def keras_learning_rate(learning_rate, step, lr_dtype, folded=True):
    """The learning rate Keras passes to update_step / weight decay at raw step ``step``.

    ``learning_rate`` is the ``get_config()["learning_rate"]`` entry: a float (held by Keras in a
    backend Variable of dtype ``floatx()`` *at optimizer construction*, ``lr_dtype`` here; the
    config's float already shows that rounding, e.g. 0.0010000000474974513 for float32) or a
    serialized schedule dict (always float32). ``folded``: evaluated in model.fit's graph with
    Grappler's constant folding (True), or eagerly (False)."""
    if isinstance(learning_rate, dict):
        return SCHEDULES[learning_rate["class_name"]](learning_rate["config"], step, folded)
    return np.dtype(lr_dtype).type(learning_rate)


# ---------------------------------------------------------------------------------------------
# Keras 3: Ftrl.update_step (keras/src/optimizers/ftrl.py) -- dense, the whole tensor
# ---------------------------------------------------------------------------------------------


def keras_ftrl_update_step(w, accum, linear, g, lr, cfg, dtype):
    """One Keras 3 Ftrl.update_step on one variable; returns new (w, accum, linear).

    Every coordinate is updated (dense). Python-float hyper-parameters become tensors of the
    variable's dtype where they meet one; ``2 * l2_shrinkage`` is computed in Python first.
    q = 0 (iav 0, beta 0, l2 0, never-seen coordinate) gives 0/0 = NaN, as in Keras."""
    T = np.dtype(dtype).type
    lr = T(lr)  # ops.cast(learning_rate, variable.dtype)
    g = np.asarray(g, dtype=T)
    p = T(-cfg.get("learning_rate_power", -0.5))
    l1 = T(cfg.get("l1_regularization_strength", 0.0))
    l2_reg = T(cfg.get("l2_regularization_strength", 0.0)) + T(cfg.get("beta", 0.0)) / (T(2.0) * lr)
    two_s = T(2 * cfg.get("l2_shrinkage_regularization_strength", 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        grad_to_use = g + two_s * w
        new_accum = accum + np.square(g)
        linear = linear + (grad_to_use - ((cr_power(new_accum, p) - cr_power(accum, p)) / lr) * w)
        quadratic = cr_power(new_accum, p) / lr + T(2) * l2_reg
        linear_clipped = np.maximum(np.minimum(linear, l1), -l1)  # tf.clip_by_value
        w = (linear_clipped - linear) / quadratic
    return w.astype(T), new_accum.astype(T), linear.astype(T)


# ---------------------------------------------------------------------------------------------
# Keras 3: BaseOptimizer pipeline (keras/src/optimizers/base_optimizer.py, TF backend)
# ---------------------------------------------------------------------------------------------


def keras_clip_by_norm(g, clipnorm, dtype):
    """tf.clip_by_norm: (g * c) / max(||g||, c), per tensor."""
    T = np.dtype(dtype).type
    c = T(clipnorm)
    l2sum = np.sum(g * g)
    l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
    return (g * c) / np.maximum(l2norm, c)


def keras_clip_by_global_norm(grads, clipnorm, dtype):
    """base_optimizer.clip_by_global_norm: scale = c * min(1/||all||, 1/c) (1/c in Python)."""
    T = np.dtype(dtype).type
    use_norm = np.sqrt(np.sum(np.stack([np.sum(np.square(g)) for g in grads])))
    with np.errstate(divide="ignore"):
        scale_for_finite = T(clipnorm) * np.minimum(T(1.0) / use_norm, T(1.0 / clipnorm))
    scale = scale_for_finite + (use_norm - use_norm)
    return [g * scale for g in grads]


def keras_clip_gradients(grads, cfg, dtype):
    """Exactly one of clipnorm (per tensor), global_clipnorm, clipvalue; a value of 0/None is off
    (``if self.clipnorm and self.clipnorm > 0``, tested in that order)."""
    T = np.dtype(dtype).type
    clipnorm, gclip, clipvalue = cfg.get("clipnorm"), cfg.get("global_clipnorm"), cfg.get("clipvalue")
    if clipnorm and clipnorm > 0:
        return [keras_clip_by_norm(g, clipnorm, dtype) for g in grads]
    if gclip and gclip > 0:
        return keras_clip_by_global_norm(grads, gclip, dtype)
    if clipvalue and clipvalue > 0:
        v = T(clipvalue)
        return [np.maximum(np.minimum(g, v), -v) for g in grads]
    return grads


class KerasFtrl:
    """Keras 3 Ftrl with the BaseOptimizer pipeline, TF backend, for a list of variables.

    ``apply(grads)`` is one ``optimizer.apply``:
      1. g /= loss_scale_factor (if set; as g * (1/scale))
      2. gradient_accumulation_steps k: on raw steps with (it+1) % k != 0 only acc = g + acc (the
         variables are untouched); on the others g = (g + acc) * (1/k), then 3-5, then acc = 0.
         The accumulators persist across epochs; a trailing partial group is never applied.
      3. clipping (clipnorm | global_clipnorm | clipvalue)
      4. weight decay: w <- w - (w * wd) * lr, wd float32-rounded (every variable)
      5. update_step on each variable, lr evaluated at the raw step
      6. EMA (every raw step, also on accumulate-only steps), with the DIVIDED counter
         c = it // k (or it): m = ema_momentum if c != 0 else 0;
         avg = m * avg + (1 - m) * w; if ema_overwrite_frequency f and (c + 1) % f == 0: w = avg
      7. it += 1
    ``finalize()`` is ``finalize_variable_values`` (end of fit): w = avg if use_ema.
    """

    def __init__(self, config, shapes, dtype, lr_dtype=None, initial_values=None, iav_float32=True):
        self.cfg = dict(config)
        self.dtype = np.dtype(dtype)
        self.lr_dtype = np.dtype(lr_dtype or dtype)
        T = self.dtype.type
        # Constant(iav) initializer: ops.cast(python float, dtype) goes through a float32 tensor
        # on the TensorFlow backend, so a float64 accumulator starts at float32(iav)
        # (0.10000000149011612 for 0.1); iav_float32=False: a backend that builds it in dtype.
        iav = self.cfg.get("initial_accumulator_value", 0.1)
        iav = T(np.float32(iav)) if iav_float32 else T(iav)
        if initial_values is None:
            self.vars = [np.zeros(s, dtype=T) for s in shapes]
        else:
            self.vars = [np.array(v, dtype=T) for v in initial_values]
        self.accum = [np.full(v.shape, iav, dtype=T) for v in self.vars]
        self.linear = [np.zeros(v.shape, dtype=T) for v in self.vars]
        self.k = self.cfg.get("gradient_accumulation_steps") or 0
        self.acc_grads = [np.zeros(v.shape, dtype=T) for v in self.vars]
        self.use_ema = bool(self.cfg.get("use_ema", False))
        self.averages = [np.zeros(v.shape, dtype=T) for v in self.vars]
        self.iterations = 0  # raw counter: optimizer._iterations

    def learning_rate(self):
        # model.fit's graph: folded, also inside the gradient-accumulation cond branch (the
        # schedule's constants are created inside the branch).
        return keras_learning_rate(self.cfg["learning_rate"], self.iterations, self.lr_dtype)

    def _weight_decay(self):
        wd = self.cfg.get("weight_decay")
        if wd is None:
            return
        T = self.dtype.type
        lr = T(self.learning_rate())
        # tf.cast(python float, dtype) converts to a float32 tensor first: wd is float32-rounded
        # even for float64 variables (0.05 -> 0.05000000074505806).
        wd = T(np.float32(wd))
        self.vars = [v - v * wd * lr for v in self.vars]

    def _update(self, grads):
        grads = keras_clip_gradients(grads, self.cfg, self.dtype)
        self._weight_decay()
        lr = self.learning_rate()
        for i, g in enumerate(grads):
            self.vars[i], self.accum[i], self.linear[i] = keras_ftrl_update_step(
                self.vars[i], self.accum[i], self.linear[i], g, lr, self.cfg, self.dtype)

    def apply(self, grads):
        T = self.dtype.type
        grads = [np.asarray(g, dtype=T) for g in grads]
        scale = self.cfg.get("loss_scale_factor")
        if scale is not None:  # g / scale, folded to g * (1/scale) in the graph
            grads = [g * (T(1) / T(scale)) for g in grads]
        if self.k:
            if (self.iterations + 1) % self.k == 0:  # (g + acc) / k, folded to * (1/k)
                grads = [(g + a) * (T(1) / T(self.k)) for g, a in zip(grads, self.acc_grads)]
                self._update(grads)
                self.acc_grads = [np.zeros_like(a) for a in self.acc_grads]
            else:
                self.acc_grads = [g + a for g, a in zip(grads, self.acc_grads)]
        else:
            self._update(grads)
        if self.use_ema:
            c = self.iterations // self.k if self.k else self.iterations
            m = T(float(c != 0)) * T(self.cfg.get("ema_momentum", 0.99))
            self.averages = [m * a + (T(1) - m) * v for a, v in zip(self.averages, self.vars)]
            f = self.cfg.get("ema_overwrite_frequency")
            if f and (c + 1) % f == 0:
                self.vars = [a.copy() for a in self.averages]
        self.iterations += 1

    def finalize(self):
        if self.use_ema:
            self.vars = [a.copy() for a in self.averages]


def keras_logreg_fit(X, y, batch_size, epochs, optimizer_config, dtype, sample_weight=None,
                     lr_dtype=None, return_optimizer=False, iav_float32=True):
    """``model.fit(X, y, batch_size, epochs, shuffle=False)`` for
    ``Sequential([Input((d,)), Dense(1, activation="sigmoid", kernel_initializer="zeros")])``
    compiled with ``Ftrl.from_config(optimizer_config)`` and ``BinaryCrossentropy()`` (TF
    backend, no XLA on CPU). Batches in row order, the last one partial; one ``apply`` per batch;
    ``finalize_variable_values`` after the last epoch. Returns (kernel (d,), bias float)."""
    T = np.dtype(dtype).type
    n, d = X.shape
    y = np.asarray(y, dtype=T)
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=T)
    opt = KerasFtrl(optimizer_config, [(d,), (1,)], dtype, lr_dtype=lr_dtype, iav_float32=iav_float32)
    scale = optimizer_config.get("loss_scale_factor")
    for _ in range(epochs):
        for s, e in _batches(n, batch_size):
            Xb = _dense_batch(X[s:e], T)
            grads = logreg_mean_grads(Xb, y[s:e], opt.vars[0], opt.vars[1], dtype,
                                      None if sw is None else sw[s:e])
            if scale is not None:  # train_step: loss = optimizer.scale_loss(loss) before the tape
                grads = [g * T(scale) for g in grads]
            opt.apply(grads)
    if epochs > 0:
        opt.finalize()
    if return_optimizer:
        return opt
    return opt.vars[0], float(opt.vars[1][0])


# ---------------------------------------------------------------------------------------------
# MXNet ftrl_update (src/operator/optimizer_op-inl.h: FtrlUpdateKernel, FtrlDnsRspDnsKernel)
# ---------------------------------------------------------------------------------------------


def _mx_param(v, T):
    """FtrlParam fields are C ``float``; the kernel casts them to DType: float32 first."""
    return T(np.float32(v))


def _mx_clip(a, c):
    return np.where(a > c, c, np.where(a < -c, -c, a))


def mxnet_ftrl_update(weight, grad, z, n, lr, lamda1=0.01, beta=1.0, wd=0.0, rescale_grad=1.0,
                      clip_gradient=-1.0):
    """The raw dense ``ftrl_update`` op, element-wise over the whole tensor. Returns new
    (weight, z, n). Clips whenever clip_gradient >= 0 (a raw 0 clips every gradient to 0)."""
    T = weight.dtype.type
    lr, lamda1, beta, wd = (_mx_param(v, T) for v in (lr, lamda1, beta, wd))
    rescale_grad, clip_gradient = _mx_param(rescale_grad, T), _mx_param(clip_gradient, T)
    g = grad.astype(T) * rescale_grad
    if clip_gradient >= 0:
        g = _mx_clip(g, clip_gradient)
    z = z + (g - (np.sqrt(n + g * g) - np.sqrt(n)) * weight / lr)
    n = n + g * g
    out = (np.sign(z) * lamda1 - z) / ((beta + np.sqrt(n)) / lr + wd) * (np.abs(z) > lamda1).astype(T)
    return out.astype(T), z.astype(T), n.astype(T)


def mxnet_ftrl_update_lazy(weight, rows, grad_rows, z, n, lr, **kw):
    """The row_sparse ``ftrl_update`` (weight, z, n, grad all row_sparse): the same math applied to
    the rows listed in the gradient only; every other row of weight, z and n is untouched."""
    weight, z, n = weight.copy(), z.copy(), n.copy()
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size:
        weight[rows], z[rows], n[rows] = mxnet_ftrl_update(weight[rows], np.asarray(grad_rows),
                                                           z[rows], n[rows], lr, **kw)
    return weight, z, n


def gluon_sigmoid_bce_dlogit(Xb, yb, w, b, dtype):
    """d/dx of Gluon's SigmoidBinaryCrossEntropyLoss (from_sigmoid=False):
    relu(x) - x*y + softrelu(-|x|). MXNet's relu'(0) = 0 and abs'(0) = sign(0) = 0, so at a logit
    of EXACTLY 0 the gradient is -y instead of sigmoid(0) - y = 0.5 - y. With a zero-initialised
    model that is every row of the first batch (and any row whose active weights are all 0)."""
    T = np.dtype(dtype).type
    logits = Xb @ w + b[0]
    d = sigmoid(logits) - np.asarray(yb, dtype=T)
    return np.where(logits == 0, -np.asarray(yb, dtype=T), d)


def mxnet_logreg_fit(X, y, batch_size, epochs, params, dtype, lazy=False, gluon_loss=False,
                     return_state=False):
    """Mini-batch FTRL with MXNet's ``ftrl_update``: the per-row gradients of the batch are SUMMED
    (``loss.backward()``) and rescale_grad = 1/B with B the rows of this batch (Gluon
    ``Trainer.step(B)``; computed in Python, passed to the op as a C float).
    ``gluon_loss=True`` reproduces Gluon's SigmoidBinaryCrossEntropyLoss gradient exactly,
    including its zero-logit quirk (see ``gluon_sigmoid_bce_dlogit``); False uses sigmoid - y.
    NOTE: mxnet 1.9.1's Gluon ``Trainer(..., 'ftrl')`` only works for float32 parameters
    (Ftrl.create_state makes float32 z and n); float64 works with the raw op only.

    ``params``: learning_rate (default 0.1), lamda1 (0.01), beta (1), wd (0), clip_gradient
    (None; the Python optimizer passes it to the op only if truthy). wd applies to the bias too
    (Gluon Parameter.wd_mult = 1). ``lazy=True``: the kernel is row_sparse and only the columns
    with a stored entry in the batch are updated (the bias stays dense)."""
    T = np.dtype(dtype).type
    n_rows, d = X.shape
    y = np.asarray(y, dtype=T)
    kw = dict(lamda1=params.get("lamda1", 0.01), beta=params.get("beta", 1.0),
              wd=params.get("wd", 0.0))
    if params.get("clip_gradient"):
        kw["clip_gradient"] = params["clip_gradient"]
    lr = params.get("learning_rate", 0.1)
    w = [np.zeros(d, dtype=T), np.zeros(1, dtype=T)]
    z = [np.zeros_like(v) for v in w]
    nn = [np.zeros_like(v) for v in w]
    for _ in range(epochs):
        for s, e in _batches(n_rows, batch_size):
            Xb = _dense_batch(X[s:e], T)
            if gluon_loss:
                dl = gluon_sigmoid_bce_dlogit(Xb, y[s:e], w[0], w[1], dtype)
            else:
                dl = logreg_dlogit(Xb, y[s:e], w[0], w[1], dtype)
            gk, gb = Xb.T @ dl, np.array([dl.sum()], dtype=T)
            kw["rescale_grad"] = 1.0 / (e - s)
            if lazy:
                rows = np.flatnonzero((Xb != 0).any(axis=0))
                w[0], z[0], nn[0] = mxnet_ftrl_update_lazy(w[0], rows, gk[rows], z[0], nn[0], lr, **kw)
            else:
                w[0], z[0], nn[0] = mxnet_ftrl_update(w[0], gk, z[0], nn[0], lr, **kw)
            w[1], z[1], nn[1] = mxnet_ftrl_update(w[1], gb, z[1], nn[1], lr, **kw)
    if return_state:
        return w, z, nn
    return w[0], float(w[1][0])


# ---------------------------------------------------------------------------------------------
# tensorflow-addons NovoGrad (tensorflow_addons/optimizers/novograd.py, legacy OptimizerV2)
# ---------------------------------------------------------------------------------------------


def novograd_update(W, G, m, v, vhat, it, lr, cfg, dtype):
    """One ``_resource_apply_dense`` on one variable ("layer"); returns new (W, m, v, vhat).

    ``it`` is optimizer.iterations before the increment (shared by all variables of the step).
    Hyper-parameters set with _set_hyper (learning_rate, beta_1, beta_2, weight_decay) live in
    float32 variables and are cast to the variable's dtype; epsilon is converted directly.
      g2 = sum(G^2); v = g2 if it == 0 else v*b2 + g2*(1-b2)      (scalar v per variable)
      G /= sqrt(max(vhat, v) if amsgrad else v) + eps; G += wd*W if wd > 0
      G *= (1 - b1) if grad_averaging and it != 0
      m = m*b1 - G*lr; W += m                                      (ResourceApplyKerasMomentum)
    """
    T = np.dtype(dtype).type
    h = lambda x: T(np.float32(x))  # noqa: E731
    b1, b2 = h(cfg.get("beta_1", 0.9)), h(cfg.get("beta_2", 0.999))
    wd = h(cfg.get("weight_decay", 0.0))
    eps = T(cfg.get("epsilon", 1e-7) or 1e-7)
    lr = T(lr)
    G = np.asarray(G, dtype=T)
    g2 = np.sum(np.square(G))
    v = g2 if it == 0 else v * b2 + g2 * (T(1) - b2)
    if cfg.get("amsgrad", False):
        vhat = np.maximum(vhat, v)
        G = G / (np.sqrt(vhat) + eps)
    else:
        G = G / (np.sqrt(v) + eps)
    if wd > 0:
        G = G + wd * W
    if cfg.get("grad_averaging", False) and it != 0:
        G = G * (T(1) - b1)
    m = m * b1 - G * lr
    W = W + m
    return W.astype(T), m.astype(T), T(v), vhat


def novograd_logreg_fit(X, y, batch_size, epochs, config, dtype, return_state=False):
    """tf.keras (Keras 2) ``model.fit(X, y, batch_size, epochs, shuffle=False)`` for a zero-init
    ``Dense(1, sigmoid)`` + ``BinaryCrossentropy()`` with ``tfa.optimizers.NovoGrad(**config)``.
    Kernel and bias are two layers, each with its own scalar v. The learning rate (no schedule,
    no decay) is the float32 hyper cast to dtype."""
    T = np.dtype(dtype).type
    n_rows, d = X.shape
    y = np.asarray(y, dtype=T)
    lr = T(np.float32(config.get("learning_rate", 0.001)))
    W = [np.zeros(d, dtype=T), np.zeros(1, dtype=T)]
    m = [np.zeros_like(w) for w in W]
    v = [T(0), T(0)]
    vhat = [np.zeros_like(w) for w in W]  # amsgrad: W's shape, init 0
    it = 0
    for _ in range(epochs):
        for s, e in _batches(n_rows, batch_size):
            Xb = _dense_batch(X[s:e], T)
            grads = logreg_mean_grads(Xb, y[s:e], W[0], W[1], dtype)
            for i, g in enumerate(grads):
                W[i], m[i], v[i], vhat[i] = novograd_update(W[i], g, m[i], v[i], vhat[i], it, lr,
                                                            config, dtype)
            it += 1
    if return_state:
        return W, m, v, vhat
    return W[0], float(W[1][0])


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def read_libsvm_dense(path, n_rows, n_features, dtype=np.float64):
    """First ``n_rows`` lines of a libsvm file as a dense (n_rows, n_features) array, libsvm index
    i -> column i-1, and labels mapped to 0/1 (label > 0 -> 1)."""
    X = np.zeros((n_rows, n_features), dtype=dtype)
    y = np.zeros(n_rows, dtype=dtype)
    with open(path) as fh:
        for r, line in enumerate(fh):
            if r == n_rows:
                break
            parts = line.split()
            y[r] = 1.0 if float(parts[0]) > 0 else 0.0
            for tok in parts[1:]:
                i, val = tok.split(":")
                X[r, int(i) - 1] = float(val)
    return X, y
