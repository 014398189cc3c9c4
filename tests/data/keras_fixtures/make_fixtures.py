"""Ground truth from the REAL libraries for tests/test_reference_optimizers.py.

NOT run in CI (CI has none of these libraries): run by hand, each part in its own venv outside
the repo, and commit the JSON it writes beside this file.

    python3 -m venv /work/.venv-keras
    /work/.venv-keras/bin/pip install keras==3.15.1 tensorflow-cpu==2.21.0
    /work/.venv-keras/bin/python tests/data/keras_fixtures/make_fixtures.py keras
    /work/.venv-keras/bin/python tests/data/keras_fixtures/make_fixtures.py schedules

    python3 -m venv /work/.venv-tfa      # tensorflow-addons 0.23 needs Keras 2 (keras.src.engine)
    /work/.venv-tfa/bin/pip install tensorflow-cpu==2.15.1 tensorflow-addons==0.23.0
    /work/.venv-tfa/bin/python tests/data/keras_fixtures/make_fixtures.py novograd

    python3 -m venv /work/.venv-mxnet    # mxnet 1.9.1 needs numpy < 1.24 (np.bool)
    /work/.venv-mxnet/bin/pip install mxnet==1.9.1 numpy==1.23.5
    /work/.venv-mxnet/bin/python tests/data/keras_fixtures/make_fixtures.py mxnet

Run from the repository root. Data: the first 200 rows of sample_data/agaricus.txt.train
(126 features) and of a9a (a9a_head200.svm beside this file = `head -200` of
shared/data/a9a/a9a; 123 features), dense, libsvm index i -> column i-1, label > 0 -> 1.

Each case stores the data, batch size, epochs, dtype, the optimizer config and the final kernel
and bias. Keras: the config is ``optimizer.get_config()`` verbatim (what ``ftrl --keras-optimizer
FILE.json`` must accept). float64 results are stored with full repr, float32 ones with the
shortest repr that round-trips in float32.
"""

import json
import os
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
DATA = {
    "agaricus": ("sample_data/agaricus.txt.train", 126),
    "a9a": ("tests/data/keras_fixtures/a9a_head200.svm", 123),
}
ROWS = 200


def load(name, dtype):
    path, d = DATA[name]
    X = np.zeros((ROWS, d), dtype=dtype)
    y = np.zeros(ROWS, dtype=dtype)
    with open(ROOT / path) as fh:
        for r, line in enumerate(fh):
            if r == ROWS:
                break
            parts = line.split()
            y[r] = 1.0 if float(parts[0]) > 0 else 0.0
            for tok in parts[1:]:
                i, v = tok.split(":")
                X[r, int(i) - 1] = float(v)
    return X, y


def floats(a, dtype):
    a = np.asarray(a).ravel()
    if dtype == "float32":
        return [float(str(np.float32(v))) for v in a]
    return [float(v) for v in a]


def sample_weights():
    return [0.5 + 0.25 * (i % 4) for i in range(ROWS)]


def case_record(name, data, dtype, batch_size, epochs, config, kernel, bias, **extra):
    rec = {
        "name": name,
        "data": DATA[data][0],
        "rows": ROWS,
        "n_features": DATA[data][1],
        "batch_size": batch_size,
        "epochs": epochs,
        "dtype": dtype,
        "optimizer_config": config,
    }
    rec.update(extra)
    rec["kernel"] = floats(kernel, dtype)
    rec["bias"] = floats(bias, dtype)[0]
    return rec


def write(fname, meta, cases):
    out = HERE / fname
    with open(out, "w") as fh:
        fh.write("{\n" + f'"generator": {json.dumps(meta)},\n"cases": [\n')
        fh.write(",\n".join(json.dumps(c, separators=(",", ":")) for c in cases))
        fh.write("\n]}\n")
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(cases)} cases)")


# ---------------------------------------------------------------------------------------------
# Keras 3 Ftrl
# ---------------------------------------------------------------------------------------------

def keras_cases():
    """(name, data, dtypes, batch_size, epochs, Ftrl kwargs or callable(keras) -> kwargs, extra)."""
    def sched(cls, **kw):
        return lambda keras: {"learning_rate": getattr(keras.optimizers.schedules, cls)(**kw)}

    both, f64 = ("float64", "float32"), ("float64",)
    cases = [
        ("defaults", "agaricus", both, 32, 2, {}, {}),
        ("l1_l2_shrink_beta", "agaricus", both, 32, 2,
         dict(learning_rate=0.1, l1_regularization_strength=0.01, l2_regularization_strength=0.02,
              l2_shrinkage_regularization_strength=0.05, beta=0.5), {}),
        ("l1_l2_shrink_beta_a9a_b64", "a9a", both, 64, 2,
         dict(learning_rate=0.2, l1_regularization_strength=0.005, l2_regularization_strength=0.01,
              l2_shrinkage_regularization_strength=0.02, beta=1.0), {}),
        ("lr_power_-0.7", "agaricus", both, 32, 2, dict(learning_rate=0.1, learning_rate_power=-0.7), {}),
        ("lr_power_0", "a9a", f64, 32, 2, dict(learning_rate=0.01, learning_rate_power=0.0), {}),
        ("iav_0.1_lr_0.5", "a9a", both, 32, 2, dict(learning_rate=0.5, initial_accumulator_value=0.1), {}),
        ("iav_0.5", "agaricus", both, 64, 2, dict(learning_rate=0.3, initial_accumulator_value=0.5), {}),
        ("iav_0_beta_1", "agaricus", f64, 32, 2,
         dict(learning_rate=0.3, initial_accumulator_value=0.0, beta=1.0), {}),
        ("clipnorm", "agaricus", both, 32, 2, dict(learning_rate=0.2, clipnorm=0.05), {}),
        ("global_clipnorm", "agaricus", both, 32, 2, dict(learning_rate=0.2, global_clipnorm=0.05), {}),
        ("clipvalue", "a9a", both, 32, 2, dict(learning_rate=0.2, clipvalue=0.02), {}),
        ("weight_decay", "agaricus", both, 32, 2,
         dict(learning_rate=0.2, weight_decay=0.05, l2_shrinkage_regularization_strength=0.01), {}),
        ("ema_overwrite_5", "agaricus", both, 32, 2,
         dict(learning_rate=0.2, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=5), {}),
        ("ema_no_overwrite", "a9a", f64, 32, 2, dict(learning_rate=0.2, use_ema=True, ema_momentum=0.8), {}),
        ("grad_accum_2", "agaricus", both, 32, 2, dict(learning_rate=0.2, gradient_accumulation_steps=2), {}),
        ("grad_accum_3_ema_wd_sched", "a9a", f64, 16, 2,
         lambda keras: dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.3, 4, 0.8),
                            gradient_accumulation_steps=3, use_ema=True, ema_momentum=0.7,
                            ema_overwrite_frequency=2, weight_decay=0.1, l1_regularization_strength=0.001),
         {}),
        ("grad_accum_2_cosine", "agaricus", both, 16, 2,
         lambda keras: dict(learning_rate=keras.optimizers.schedules.CosineDecay(0.5, 10, alpha=0.1),
                            gradient_accumulation_steps=2), {}),
        ("exponential_decay", "agaricus", both, 32, 2, sched("ExponentialDecay", initial_learning_rate=0.5,
                                                             decay_steps=5, decay_rate=0.9), {}),
        ("exponential_decay_staircase", "a9a", f64, 32, 2,
         sched("ExponentialDecay", initial_learning_rate=0.5, decay_steps=3, decay_rate=0.7, staircase=True), {}),
        ("inverse_time_decay", "agaricus", both, 32, 2,
         sched("InverseTimeDecay", initial_learning_rate=0.5, decay_steps=3, decay_rate=0.7), {}),
        ("piecewise_constant_decay", "agaricus", both, 32, 2,
         sched("PiecewiseConstantDecay", boundaries=[3, 9], values=[0.5, 0.2, 0.05]), {}),
        ("cosine_decay", "agaricus", both, 32, 2,
         sched("CosineDecay", initial_learning_rate=0.5, decay_steps=10, alpha=0.1), {}),
        ("cosine_decay_warmup", "a9a", both, 32, 2,
         sched("CosineDecay", initial_learning_rate=0.05, decay_steps=8, alpha=0.1, warmup_target=0.5,
               warmup_steps=5), {}),
        ("polynomial_decay", "agaricus", f64, 32, 2,
         sched("PolynomialDecay", initial_learning_rate=0.5, decay_steps=10, end_learning_rate=0.01, power=2.0),
         {}),
        ("batch_1", "agaricus", both, 1, 2,
         dict(learning_rate=0.1, l1_regularization_strength=0.001, l2_regularization_strength=0.001), {}),
        ("batch_64_partial", "a9a", both, 64, 2, dict(learning_rate=0.2, beta=0.3), {}),
        ("loss_scale_128", "agaricus", f64, 32, 2, dict(learning_rate=0.2, loss_scale_factor=128.0), {}),
        ("loss_scale_3", "agaricus", both, 32, 2, dict(learning_rate=0.2, loss_scale_factor=3.0), {}),
        ("sample_weight", "a9a", both, 32, 2, dict(learning_rate=0.2, l1_regularization_strength=0.002),
         {"sample_weight": True}),
        ("lr_variable_float32", "agaricus", f64, 32, 2, dict(learning_rate=0.3, beta=0.1),
         {"lr_variable_dtype": "float32"}),
        ("nan_iav0_beta0_l2_0_one_step", "agaricus", both, 200, 1,
         dict(learning_rate=0.1, initial_accumulator_value=0.0), {}),
        ("epochs_3_b50", "a9a", f64, 50, 3,
         dict(learning_rate=0.25, l1_regularization_strength=0.003, l2_shrinkage_regularization_strength=0.01), {}),
    ]
    return cases


def run_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    out = []
    for name, data, dtypes, B, E, kw, extra in keras_cases():
        for dtype in dtypes:
            keras.backend.clear_session()
            lr_var_dtype = extra.get("lr_variable_dtype", dtype)
            keras.backend.set_floatx(lr_var_dtype)  # the lr Variable takes floatx at construction
            kwargs = kw(keras) if callable(kw) else dict(kw)
            opt = keras.optimizers.Ftrl(**kwargs)
            config = opt.get_config()
            keras.backend.set_floatx(dtype)
            X, y = load(data, dtype)
            model = keras.Sequential([
                keras.Input((X.shape[1],), dtype=dtype),
                keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros"),
            ])
            model.compile(optimizer=opt, loss=keras.losses.BinaryCrossentropy())
            sw = np.asarray(sample_weights(), dtype=dtype) if extra.get("sample_weight") else None
            model.fit(X, y, batch_size=B, epochs=E, shuffle=False, verbose=0, sample_weight=sw)
            kernel, bias = model.get_weights()
            assert kernel.dtype == np.dtype(dtype), kernel.dtype
            rec_extra = {}
            if sw is not None:
                rec_extra["sample_weight"] = sample_weights()
            if lr_var_dtype != dtype:
                rec_extra["lr_variable_dtype"] = lr_var_dtype
            out.append(case_record(f"{name}/{dtype}", data, dtype, B, E, json.loads(json.dumps(config)),
                                   kernel, bias, **rec_extra))
            print(out[-1]["name"], out[-1]["bias"], flush=True)
    meta = {"library": "keras", "keras": keras.__version__, "tensorflow": tf.__version__,
            "backend": keras.backend.backend(),
            "model": "Sequential([Input((d,)), Dense(1, activation='sigmoid', kernel_initializer='zeros')])",
            "loss": "keras.losses.BinaryCrossentropy()",
            "fit": "model.fit(X, y, batch_size, epochs, shuffle=False, sample_weight=...)",
            "floatx": "set to dtype before building (lr_variable_dtype: floatx when the optimizer was built)"}
    write("keras_ftrl.json", meta, out)


SCHEDULE_CASES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.5, decay_steps=5, decay_rate=0.9)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.7, staircase=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.5, decay_steps=4, decay_rate=0.5)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=1.3, staircase=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.3, decay_steps=7, decay_rate=1.3)),
    ("PiecewiseConstantDecay", dict(boundaries=[3, 9], values=[0.5, 0.2, 0.05])),
    ("PiecewiseConstantDecay", dict(boundaries=[10], values=[0.1, 0.01])),
    ("CosineDecay", dict(initial_learning_rate=0.5, decay_steps=10, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.3, decay_steps=37)),
    ("CosineDecay", dict(initial_learning_rate=0.4, decay_steps=23, alpha=0.02)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=8, warmup_target=0.5, warmup_steps=4)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=20, alpha=0.05, warmup_target=0.7,
                         warmup_steps=13)),
    ("PolynomialDecay", dict(initial_learning_rate=0.5, decay_steps=10, end_learning_rate=0.01, power=2.0)),
    ("PolynomialDecay", dict(initial_learning_rate=0.5, decay_steps=6, power=0.5, cycle=True)),
    ("PolynomialDecay", dict(initial_learning_rate=0.5, decay_steps=7, power=1.5, cycle=True)),
    ("ExponentialDecay", dict(initial_learning_rate=0.2, decay_steps=7, decay_rate=0.6, staircase=True)),
]


def run_schedules():
    """Each schedule's value (float32) at steps 0..59, bit for bit, plus its serialized form."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    out = []
    for cls, kw in SCHEDULE_CASES:
        sch = getattr(keras.optimizers.schedules, cls)(**kw)
        # As inside model.fit: a tf.function reading the int64 iterations variable. Grappler's
        # constant push-down then rewrites c1 * (x / c2) as (c1 / c2) * x, which eager does not.
        step_var = tf.Variable(0, dtype=tf.int64)
        graph_sch = tf.function(lambda sch=sch, v=step_var: sch(v))
        # Inside an ops.cond branch (where the update runs with gradient_accumulation_steps).
        cond_sch = tf.function(lambda sch=sch, v=step_var: keras.ops.cond(
            v >= 0, lambda: sch(v), lambda: tf.constant(0.0)))
        vals, cvals, evals = [], [], []
        for step in range(60):
            step_var.assign(step)
            vals.append(graph_sch())
            cvals.append(cond_sch())
            evals.append(sch(tf.constant(step, dtype=tf.int64)))
        assert all(v.dtype == tf.float32 for v in vals)
        ser = keras.optimizers.serialize(keras.optimizers.Ftrl(learning_rate=sch))["config"]["learning_rate"]
        out.append({"schedule": json.loads(json.dumps(ser)),
                    "values_float32_hex": [np.float32(v.numpy()).tobytes().hex() for v in vals],
                    "in_cond_float32_hex": [np.float32(v.numpy()).tobytes().hex() for v in cvals],
                    "eager_float32_hex": [np.float32(v.numpy()).tobytes().hex() for v in evals]})
    meta = {"library": "keras", "keras": keras.__version__, "tensorflow": tf.__version__,
            "note": "schedule(step) for step = 0..59: values = inside a tf.function reading an int64 "
                    "Variable (as in model.fit); in_cond = the same inside an ops.cond branch (as the "
                    "update with gradient_accumulation_steps); eager = called eagerly. float32 "
                    "little-endian bytes in hex"}
    write("keras_schedules.json", meta, out)


# ---------------------------------------------------------------------------------------------
# tensorflow-addons NovoGrad (tf.keras 2.15)
# ---------------------------------------------------------------------------------------------

NOVOGRAD_CASES = [
    ("defaults", "agaricus", ("float64", "float32"), 32, 2, {}),
    ("lr_0.05", "a9a", ("float64", "float32"), 32, 2, dict(learning_rate=0.05)),
    ("amsgrad", "agaricus", ("float64", "float32"), 32, 2, dict(learning_rate=0.05, amsgrad=True)),
    ("grad_averaging", "agaricus", ("float64",), 32, 2, dict(learning_rate=0.05, grad_averaging=True)),
    ("weight_decay", "a9a", ("float64", "float32"), 32, 2, dict(learning_rate=0.05, weight_decay=0.01)),
    ("epsilon_betas", "agaricus", ("float64",), 64, 2,
     dict(learning_rate=0.02, beta_1=0.8, beta_2=0.9, epsilon=1e-3)),
    ("all_batch_1", "a9a", ("float64",), 1, 2,
     dict(learning_rate=0.01, amsgrad=True, grad_averaging=True, weight_decay=0.001)),
]


def run_novograd():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tensorflow_addons as tfa

    out = []
    for name, data, dtypes, B, E, kw in NOVOGRAD_CASES:
        for dtype in dtypes:
            tf.keras.backend.clear_session()
            tf.keras.backend.set_floatx(dtype)
            X, y = load(data, dtype)
            opt = tfa.optimizers.NovoGrad(**kw)
            model = tf.keras.Sequential([
                tf.keras.Input((X.shape[1],), dtype=dtype),
                tf.keras.layers.Dense(1, activation="sigmoid", kernel_initializer="zeros"),
            ])
            model.compile(optimizer=opt, loss=tf.keras.losses.BinaryCrossentropy())
            model.fit(X, y, batch_size=B, epochs=E, shuffle=False, verbose=0)
            kernel, bias = model.get_weights()
            assert kernel.dtype == np.dtype(dtype), kernel.dtype
            config = json.loads(json.dumps(opt.get_config(), default=float))
            out.append(case_record(f"{name}/{dtype}", data, dtype, B, E, config, kernel, bias,
                                   novograd_kwargs=kw))
            print(out[-1]["name"], out[-1]["bias"], flush=True)
    meta = {"library": "tensorflow-addons", "tensorflow_addons": tfa.__version__,
            "tensorflow": tf.__version__, "keras": __import__("keras").__version__,
            "model": "tf.keras Sequential([Input((d,)), Dense(1, activation='sigmoid', kernel_initializer='zeros')])",
            "loss": "tf.keras.losses.BinaryCrossentropy()",
            "fit": "model.fit(X, y, batch_size, epochs, shuffle=False)",
            "note": "novograd_kwargs are the constructor arguments; get_config omits amsgrad"}
    write("tfa_novograd.json", meta, out)


# ---------------------------------------------------------------------------------------------
# MXNet ftrl (Gluon Trainer, dense) and the row_sparse ftrl_update op (lazy)
# ---------------------------------------------------------------------------------------------

MXNET_CASES = [
    # (name, data, dtypes, batch_size, epochs, params, mode); mode "gluon" | "dense" | "lazy"
    ("defaults", "agaricus", ("float32",), 32, 2, {}, "gluon"),
    ("defaults", "agaricus", ("float64",), 32, 2, {}, "dense"),
    ("lr_0.5_l1_beta_wd", "a9a", ("float32",), 32, 2,
     dict(learning_rate=0.5, lamda1=0.002, beta=0.5, wd=0.01), "gluon"),
    ("lr_0.5_l1_beta_wd", "a9a", ("float64", "float32"), 32, 2,
     dict(learning_rate=0.5, lamda1=0.002, beta=0.5, wd=0.01), "dense"),
    ("clip_gradient", "agaricus", ("float32",), 32, 2,
     dict(learning_rate=0.3, lamda1=0.001, clip_gradient=0.1), "gluon"),
    ("clip_gradient", "agaricus", ("float64",), 32, 2,
     dict(learning_rate=0.3, lamda1=0.001, clip_gradient=0.1), "dense"),
    ("batch_60", "a9a", ("float32",), 60, 2, dict(learning_rate=0.3, lamda1=0.001, beta=0.2), "gluon"),
    ("batch_60", "a9a", ("float64",), 60, 2, dict(learning_rate=0.3, lamda1=0.001, beta=0.2), "dense"),
    ("batch_1", "agaricus", ("float64",), 1, 2, dict(learning_rate=0.05, lamda1=0.01, wd=0.001), "dense"),
    ("lazy_row_sparse", "a9a", ("float64", "float32"), 32, 2,
     dict(learning_rate=0.4, lamda1=0.003, beta=0.5, wd=0.02, clip_gradient=0.05), "lazy"),
]


def run_mxnet():
    """Gluon (float32 only: in mxnet 1.9.1 Ftrl.create_state makes z and n float32 whatever the
    weight's dtype, so a float64 Gluon model fails with "expected float64, got float32"), and
    raw nd.ftrl_update calls (dense, both dtypes) / nd.sparse.ftrl_update (lazy)."""
    import mxnet as mx
    from mxnet import autograd, gluon, nd

    out = []
    for name, data, dtypes, B, E, params, mode in MXNET_CASES:
        for dtype in dtypes:
            X, y = load(data, dtype)
            n, d = X.shape
            if mode == "gluon":
                net = gluon.nn.Dense(1, in_units=d, weight_initializer=mx.init.Zero(),
                                     bias_initializer=mx.init.Zero(), dtype=dtype)
                net.initialize()
                trainer = gluon.Trainer(net.collect_params(), "ftrl", dict(params))
                loss_fn = gluon.loss.SigmoidBinaryCrossEntropyLoss()
                for _ in range(E):
                    for s in range(0, n, B):
                        xb = nd.array(X[s:s + B], dtype=dtype)
                        yb = nd.array(y[s:s + B], dtype=dtype)
                        with autograd.record():
                            loss = loss_fn(net(xb), yb)
                        loss.backward()
                        trainer.step(xb.shape[0])
                kernel = net.weight.data().asnumpy().ravel()
                bias = net.bias.data().asnumpy().ravel()
            else:
                # Raw op calls, as the Python Ftrl optimizer makes them (clip_gradient only if
                # truthy; rescale_grad = 1/rows; the same lr/lamda1/beta/wd for kernel and bias).
                # lazy: kernel (d,1) row_sparse with every row stored, gradient row_sparse with
                # the columns that have a stored entry in the batch; bias dense.
                def rsp_full(a, d=d, dtype=dtype):
                    return nd.sparse.row_sparse_array((a, np.arange(d)), shape=(d, 1), dtype=dtype)

                zeros = np.zeros((d, 1), dtype=dtype)
                if mode == "lazy":
                    w, z, nn = rsp_full(zeros), rsp_full(zeros), rsp_full(zeros)
                else:
                    w, z, nn = (nd.array(zeros, dtype=dtype) for _ in range(3))
                b, bz, bn = (nd.zeros((1,), dtype=dtype) for _ in range(3))
                kw = dict(lr=params.get("learning_rate", 0.1), lamda1=params.get("lamda1", 0.01),
                          beta=params.get("beta", 1.0), wd=params.get("wd", 0.0))
                if params.get("clip_gradient"):
                    kw["clip_gradient"] = params["clip_gradient"]
                for _ in range(E):
                    for s in range(0, n, B):
                        Xb = X[s:s + B]
                        xb = nd.array(Xb, dtype=dtype)
                        wd_ = w.tostype("default") if mode == "lazy" else w
                        logits = nd.dot(xb, wd_).reshape((-1,)) + b
                        dl = nd.sigmoid(logits) - nd.array(y[s:s + B], dtype=dtype)
                        kw["rescale_grad"] = 1.0 / Xb.shape[0]
                        if mode == "lazy":
                            rows = np.flatnonzero((Xb != 0).any(axis=0))
                            gvals = nd.dot(nd.array(Xb[:, rows], dtype=dtype), dl, transpose_a=True)
                            g = nd.sparse.row_sparse_array((gvals.asnumpy().reshape(-1, 1), rows),
                                                           shape=(d, 1), dtype=dtype)
                            nd.sparse.ftrl_update(w, g, z, nn, out=w, **kw)
                        else:
                            g = nd.dot(xb, dl.reshape((-1, 1)), transpose_a=True)
                            nd.ftrl_update(w, g, z, nn, out=w, **kw)
                        nd.ftrl_update(b, nd.sum(dl).reshape((1,)), bz, bn, out=b, **kw)
                kernel = w.tostype("default").asnumpy().ravel()
                bias = b.asnumpy().ravel()
            assert kernel.dtype == np.dtype(dtype), kernel.dtype
            out.append(case_record(f"{name}/{mode}/{dtype}", data, dtype, B, E, params, kernel, bias,
                                   mode=mode))
            print(out[-1]["name"], out[-1]["bias"], flush=True)
    meta = {"library": "mxnet", "mxnet": mx.__version__,
            "gluon": "gluon.nn.Dense(1, in_units=d, zero init) + gluon.loss.SigmoidBinaryCrossEntropyLoss(); "
                     "loss.backward(); trainer.step(rows in batch) with gluon.Trainer(params, 'ftrl', config) "
                     "(float32 only)",
            "dense": "raw nd.ftrl_update on kernel (d,1) and bias (1,), gradient X^T(p-y) summed, "
                     "rescale_grad = 1/rows",
            "lazy": "raw nd.sparse.ftrl_update on a row_sparse kernel; gradient rows = columns with a stored "
                    "entry in the batch; bias with nd.ftrl_update"}
    write("mxnet_ftrl.json", meta, out)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    {"keras": run_keras, "schedules": run_schedules, "novograd": run_novograd, "mxnet": run_mxnet}[which]()
