"""A scikit-learn estimator over ftrl's model and kernels: ``FTRLClassifier``.

    from ftrl_cli.sklearn import FTRLClassifier
    clf = FTRLClassifier(alpha=0.1, l1=1.0).fit(X, y)      # X: scipy sparse or numpy
    clf.predict_proba(X_test)[:, 1]
    clf.save("model/")                                    # `ftrl predict -m model/ ...` serves it
    FTRLClassifier.load("model/")                         # also a model `ftrl train` wrote

Needs scikit-learn >= 1.6 (an optional dependency: only this module imports it).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import numbers
import os

import numpy as np
import scipy.sparse as sp

try:
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("ftrl_cli.sklearn needs scikit-learn >= 1.6 (pip install 'scikit-learn>=1.6'); "
                      f"importing it failed: {e}") from e

from . import checkpoint
from .config import Config
from .engine import Trainer, array_source, start_run
from .errors import ConfigError
from .model import Model, State
from .records import InputId, TrainingLog

__all__ = ["FTRLClassifier"]

# estimator parameter -> Config field (the optimizer's settings; I/O settings stay out)
_RENAMED = {"fit_intercept": "bias", "max_iter": "passes"}
_CONFIG_PARAMS = (
    "alpha", "beta", "l1", "l2", "l2_shrinkage", "lr_power", "initial_accumulator",
    "fit_intercept", "bias_l1", "bias_l2", "bits", "dtype",
    "optimizer", "batch_size", "update", "learning_rate_schedule", "lr_float32", "weight_decay",
    "clipnorm", "global_clipnorm", "clipvalue", "ema_momentum", "ema_overwrite_frequency",
    "gradient_accumulation_steps", "loss_scale_factor", "grad_scale", "bias_lr_mult",
    "beta_1", "beta_2", "epsilon", "grad_averaging", "amsgrad", "max_iter",
)
_SPARSE = ["csr", "csc", "coo"]  # other formats are converted to CSR (then checked for NaN/inf)
_DTYPES = [np.float64, np.float32]  # ints become float64
_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(Config)}
_NOT_BINARY = ("FTRLClassifier does binary classification only; wrap it in "
               "sklearn.multiclass.OneVsRestClassifier for more classes")


# ---------------------------------------------------------------------------------------
# training: the engine's Trainer, over the matrix's rows
# ---------------------------------------------------------------------------------------

def _train(config: Config, model: Model, log, rows, order=None) -> None:
    """config.passes passes over rows = (indptr, ids, values, y01, sw) with the engine,
    exactly as `ftrl train` takes them from a file: the same batches, steps and record
    (log: its history, curve, examples). order(pass) permutes the rows of a pass. The
    raw state is kept (no EMA finalize: the estimator predicts with a finalized copy)."""
    log = start_run(log, [InputId("<array>")], config)
    Trainer(config, model, log, finalize=False).run([array_source(*rows, order=order)])
    return log


def _sigmoid(m: np.ndarray) -> np.ndarray:
    """The probabilities `ftrl predict` prints (its own kernel, so equal to the bit)."""
    from . import kernels

    out = np.empty_like(m)
    kernels.sigmoid_array(m, out)
    return out


def _model_from_arrays(config: Config, st, bst, ls, alias, iterations, alias_overflow) -> Model:
    """A Model holding copies of these state arrays (writable, contiguous, plain ndarrays:
    a pickle may come back as read-only memmaps)."""
    own = np.array  # (copies, C order)
    return Model(config, State(table=own(st, order="C"), bias=own(bst, order="C"), layer=own(ls, order="C"),
                               aliases=own(alias, dtype=np.int64, order="C"), iterations=int(iterations),
                               alias_overflow=bool(alias_overflow)))


def _copy_model(model: Model) -> Model:
    return Model(model.config, model.state.copy())


def _model_state(model: Model) -> dict:
    return {"config": model.config.to_dict(), "st": model.st, "bst": model.bst, "ls": model.ls,
            "alias": model.alias, "iterations": int(model.iterations),
            "alias_overflow": bool(model.alias_overflow)}


def _model_from_state(s: dict) -> Model:
    return _model_from_arrays(Config.from_dict(s["config"]), s["st"], s["bst"], s["ls"], s["alias"],
                              s["iterations"], s["alias_overflow"])


# ---------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------

class FTRLClassifier(ClassifierMixin, BaseEstimator):
    """Binary logistic regression trained by FTRL-Proximal (McMahan et al. 2013), with the
    model and kernels of the ``ftrl`` command: the same settings on the same rows give the
    same model, to the bit, as ``ftrl train``.

    **Column j is feature id j** (zero-based): a model trained here and ``ftrl train`` on
    a libsvm file agree when the file's ids are the matrix's column indices. The zero_based
    trap: ``load_svmlight_file(f)`` (``zero_based="auto"``) shifts the ids of a one-based
    file such as a9a down by one, so column j is the file's id j + 1 and a saved model no
    longer matches the file for ``ftrl predict``; load with ``zero_based=True`` (column 0
    then stays empty) to keep the ids as written.

    Input: scipy sparse (CSR, CSC, COO, ...) or dense arrays of floats or ints, never
    modified (the estimator works on a canonical CSR copy: indices sorted within rows,
    repeated entries summed, explicit zeros dropped, as ftrl's libsvm reader does). NaN and
    inf are rejected. Only two classes: ``classes_[1]`` is the positive class (label 1 for
    the optimizer), the other one label 0. More classes raise ``ValueError``: use
    ``sklearn.multiclass.OneVsRestClassifier``.

    FTRL is an online learner: rows are learned in the given order (deterministic), each
    example once per pass. ``partial_fit`` over chunks in order gives, bit for bit, the
    model of one ``fit`` (``max_iter=1``, no ``shuffle``) over their concatenation (and N
    calls on the same data the model of ``max_iter=N``), with ``batch_size=1``
    (online FTRL) always, and in mini-batch mode (``batch_size > 1``) when every chunk but
    the last holds a multiple of ``batch_size`` rows (each chunk's last batch is averaged
    over its own rows, as each input file's is in ``ftrl train``). ``partial_fit`` never
    shuffles. With ``ema_momentum`` the estimator keeps training the raw weights and
    predicts with a copy in which the EMA replaced them (Keras's finalize step, done by
    ``ftrl train`` at the end of a run); ``save`` writes that finalized model, so a
    loaded model, like ``ftrl train --resume``, continues from the averaged weights.

    Parameters
    ----------
    alpha : float, default=0.1
        Learning rate: eta_i = alpha / (beta + n_i^(-lr_power)).
    beta : float, default=1.0
        Smoothing of the per-coordinate rate.
    l1 : float, default=1.0
        L1 strength (weights with |z_i| <= l1 are exactly 0).
    l2 : float, default=1.0
        L2 strength, penalty ``l2/2 * w^2`` (the paper's convention; Keras's is half of it).
    l2_shrinkage : float, default=0.0
        Keras/TF L2 shrinkage: adds ``2*l2_shrinkage*w`` to the gradient used in z.
    lr_power : float, default=-0.5
        ``n^(-lr_power)`` replaces ``sqrt(n)``; must be <= 0.
    initial_accumulator : float, default=0.0
        Starting value of every n_i.
    fit_intercept : bool, default=True
        Learn a bias (a feature of value 1 in every row); ``--bias`` of the CLI.
    bias_l1, bias_l2 : float or None, default=None
        Regularization of the bias (None: ``l1``, ``l2``; 0 leaves it unregularized).
    bits : int, default=24
        Table capacity 2**bits: column j < 2**bits owns slot j, larger ones are hashed.
        The table is allocated lazily (next power of two above the largest column seen).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the optimizer state.
    optimizer : {"ftrl", "novograd"}, default="ftrl"
    batch_size : int, default=1
        Rows per optimizer step (mean gradient); 1 is online FTRL (Algorithm 1).
    update : {"lazy", "dense"}, default="lazy"
        Mini-batch: update the coordinates present in the batch, or all (Keras).
    learning_rate_schedule : dict or None, default=None
        A Keras learning-rate schedule (mini-batch), replacing ``alpha``.
    lr_float32, weight_decay, clipnorm, global_clipnorm, clipvalue, ema_momentum, \
ema_overwrite_frequency, gradient_accumulation_steps, loss_scale_factor, grad_scale, \
bias_lr_mult, beta_1, beta_2, epsilon, grad_averaging, amsgrad
        The mini-batch / Keras / MXNet / NovoGrad settings of ``ftrl train`` (same names,
        defaults and meaning; see the README). Rarely needed; kept so that every model
        ``ftrl train`` writes loads here with all its settings.
    class_weight : dict, "balanced" or None, default=None
        Weight of each class's rows ({label: weight}; missing labels weigh 1). "balanced":
        ``n_samples / (2 * count_c)`` from ``y`` at ``fit`` (a first ``partial_fit``
        rejects it; later ones keep fit's weights). Stored as the CLI's
        ``class_weight = [negative, positive]``.
    max_iter : int, default=1
        Passes over the data in ``fit`` (the CLI's ``--passes``); ``n_iter_`` counts them.
    shuffle : bool, default=False
        Permute the rows before each pass of ``fit`` (seeded by ``random_state``). Off by
        default: FTRL is order dependent, and the order given is kept.
    random_state : int, RandomState or None, default=None
        Seed of ``shuffle``; unused without it.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    coef_ : ndarray of shape (1, n_features_in_)
        The float64 weight of each column (its slot's weight when columns are hashed).
    intercept_ : ndarray of shape (1,)
    n_features_in_ : int
        Columns seen in fit; for a directory ``ftrl train`` wrote, its table size (see load).
    n_iter_ : int
        Passes run: ``max_iter`` after ``fit``; each ``partial_fit`` adds one.
    model_ : ftrl_cli.model.Model
        The model that predicts (and that ``save`` writes).
    """

    def __init__(self, *, alpha=0.1, beta=1.0, l1=1.0, l2=1.0, l2_shrinkage=0.0, lr_power=-0.5,
                 initial_accumulator=0.0, fit_intercept=True, bias_l1=None, bias_l2=None, bits=24,
                 dtype="float64", optimizer="ftrl", batch_size=1, update="lazy",
                 learning_rate_schedule=None, lr_float32=False, weight_decay=0.0, clipnorm=None,
                 global_clipnorm=None, clipvalue=None, ema_momentum=None, ema_overwrite_frequency=None,
                 gradient_accumulation_steps=None, loss_scale_factor=None, grad_scale=1.0,
                 bias_lr_mult=1.0, beta_1=0.9, beta_2=0.999, epsilon=1e-7, grad_averaging=False,
                 amsgrad=False, class_weight=None, max_iter=1, shuffle=False, random_state=None):
        self.alpha = alpha
        self.beta = beta
        self.l1 = l1
        self.l2 = l2
        self.l2_shrinkage = l2_shrinkage
        self.lr_power = lr_power
        self.initial_accumulator = initial_accumulator
        self.fit_intercept = fit_intercept
        self.bias_l1 = bias_l1
        self.bias_l2 = bias_l2
        self.bits = bits
        self.dtype = dtype
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.update = update
        self.learning_rate_schedule = learning_rate_schedule
        self.lr_float32 = lr_float32
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.clipvalue = clipvalue
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.loss_scale_factor = loss_scale_factor
        self.grad_scale = grad_scale
        self.bias_lr_mult = bias_lr_mult
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.grad_averaging = grad_averaging
        self.amsgrad = amsgrad
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = False
        return tags

    # ---- settings ---------------------------------------------------------------------
    def _config(self, class_weight, base: Config | None = None) -> Config:
        """The Config of these parameters (validated: ValueError names what is wrong).
        base: an existing model's config, whose other (I/O) settings are kept."""
        settings = {}
        for name in _CONFIG_PARAMS:
            field = _RENAMED.get(name, name)
            settings[field] = _check_type(name, getattr(self, name), _FIELD_TYPES[field])
        if settings["passes"] < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter!r}")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be a bool, got {self.shuffle!r}")
        settings["class_weight"] = class_weight
        try:
            return (base or Config()).replace(**settings)
        except ConfigError as e:
            raise ValueError(f"invalid parameter: {e}") from None

    def _class_weight_list(self, classes, y=None, learner=None):
        """[weight of classes[0], weight of classes[1]] for Config.class_weight, or None."""
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, str):
            if cw != "balanced":
                raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {cw!r}")
            if y is None:
                if learner is not None:  # partial_fit after fit: the weights fit computed
                    return learner.config.class_weight
                raise ValueError("class_weight='balanced' is not supported by partial_fit (the "
                                 "class counts of the whole stream are unknown): pass a dict, e.g. "
                                 "from sklearn.utils.class_weight.compute_class_weight on a sample")
            counts = np.array([np.sum(y == c) for c in classes], dtype=np.float64)
            return [float(len(y) / (2.0 * n)) for n in counts]
        if not isinstance(cw, dict):
            raise ValueError(f"class_weight must be a dict, 'balanced' or None, got {cw!r}")
        for key in cw:
            if not any(_same_label(key, c) for c in classes):
                raise ValueError(f"class_weight has label {key!r}, which is not a class ({list(classes)})")
        out = []
        for c in classes:
            v = next((w for k, w in cw.items() if _same_label(k, c)), 1.0)
            if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)):
                raise ValueError(f"class_weight[{c!r}] must be a number, got {v!r}")
            out.append(float(v))
        return out

    # ---- data -------------------------------------------------------------------------
    def _X(self, X, reset: bool):
        """Validated canonical CSR copy: (indptr int64, ids int64, values float64)."""
        X = validate_data(self, X, reset=reset, accept_sparse=_SPARSE, dtype=_DTYPES, ensure_all_finite=True)
        return _canonical(X)

    def _Xy(self, X, y, reset: bool):
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=_SPARSE, dtype=_DTYPES,
                             ensure_all_finite=True)
        check_classification_targets(y)
        return _canonical(X), y

    def _sample_weight(self, sample_weight, n):
        if sample_weight is None:
            return np.ones(n)
        if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, (bool, np.bool_)):
            sw = np.full(n, float(sample_weight))
        else:
            sw = np.array(sample_weight, dtype=np.float64)  # (a copy)
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(f"sample_weight.shape == {sw.shape}, expected ({n},)")
        if not np.all(np.isfinite(sw)):
            raise ValueError("sample_weight must be finite")
        if np.any(sw < 0):
            raise ValueError("sample_weight must be >= 0 (negative weights are not supported)")
        if n and not np.any(sw > 0):
            raise ValueError("Sample weights must contain at least one non-zero number.")
        return sw

    # ---- fitting ----------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Train a new model on (X, y): ``max_iter`` passes over the rows in order
        (permuted each pass with ``shuffle``). Returns self."""
        (indptr, ids, values), y = self._Xy(X, y, reset=True)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is "
                             f"{y_type}. {_NOT_BINARY}.")
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"FTRLClassifier needs samples of two classes; the data holds only one "
                             f"class: {classes[0]!r}")
        sw = self._sample_weight(sample_weight, len(y))
        config = self._config(self._class_weight_list(classes, y))
        y01 = (y == classes[1]).astype(np.float64)
        model = Model(config)
        order = None
        if self.shuffle:
            rng = check_random_state(self.random_state)
            order = functools.cache(lambda _pass: rng.permutation(len(y01)))  # (passes come in order)
        log = _train(config, model, None, (indptr, ids, values, y01, sw), order)
        self.classes_ = classes
        self.n_iter_ = config.passes
        self._log = log
        self._set_model(model)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Continue training on (X, y), one pass in order (never shuffled). The first call
        needs ``classes`` (both labels); a fitted or loaded estimator continues its model.
        Parameters changed since (set_params) apply from here on, except those that fix the
        state's layout (bits, dtype, fit_intercept, optimizer, batch_size, update, ...)."""
        first = not hasattr(self, "classes_")
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            known = np.unique(np.asarray(classes))
            if len(known) != 2:
                raise ValueError(f"Only binary classification is supported: classes must hold two "
                                 f"labels, got {len(known)}. {_NOT_BINARY}.")
        else:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), known):
                raise ValueError(f"classes={classes!r} is not the same as on the first call to "
                                 f"partial_fit, was: {known!r}")
        (indptr, ids, values), y = self._Xy(X, y, reset=first)
        unknown = ~np.isin(y, known)
        if unknown.any():
            raise ValueError(f"y holds label(s) {np.unique(y[unknown])!r} not in classes {known!r}")
        sw = self._sample_weight(sample_weight, len(y))
        learner = None if first else self._learner
        config = self._config(self._class_weight_list(known, learner=learner),
                              base=None if first else learner.config)
        if first:
            learner = Model(config)
            log = None
        else:
            old = learner.config
            changed = [_PARAM_OF.get(k, k) for k in Config.STRUCTURAL if getattr(config, k) != getattr(old, k)]
            if changed or config.online != old.online:
                what = ", ".join(changed) or "settings that switch between online and mini-batch FTRL"
                raise ValueError(f"partial_fit cannot change {what} of a trained model; use fit")
            learner.config = config
            log = self._log.copy()
        y01 = (y == known[1]).astype(np.float64)
        log = _train(config.replace(passes=1), learner, log, (indptr, ids, values, y01, sw))
        self.classes_ = known
        self.n_iter_ = 1 if first else self.n_iter_ + 1
        self._log = log
        self._set_model(learner)
        return self

    def _set_model(self, learner: Model) -> None:
        """Keep the trained state; predict with it, or with its EMA-finalized copy."""
        self._learner = learner
        if learner.cols["ema"] >= 0:
            model = _copy_model(learner)
            model.finalize()
        else:
            model = learner
        self.model_ = model

    # ---- prediction -------------------------------------------------------------------
    def decision_function(self, X):
        """The margin x.w + b of each row (float64, shape (n_samples,))."""
        check_is_fitted(self)
        indptr, ids, values = self._X(X, reset=False)
        return self.model_.margins(indptr, ids, values)

    def predict_proba(self, X):
        """[P(classes_[0]), P(classes_[1])] per row; the second column equals what
        ``ftrl predict`` prints for the same rows, to the bit."""
        m = self.decision_function(X)
        return np.column_stack([_sigmoid(-m), _sigmoid(m)])

    def predict(self, X):
        """classes_[1] where the margin is > 0, else classes_[0]."""
        m = self.decision_function(X)
        return self.classes_[(m > 0).astype(np.intp)]

    @property
    def coef_(self):
        check_is_fitted(self)
        n = self.n_features_in_
        cols = np.arange(n, dtype=np.int64)
        # a unit row per column, scored with bias 0: exactly the weight of the column's slot
        # (hashed columns included) by the kernels' own slot and weight arithmetic
        w = self.model_.margins(np.arange(n + 1, dtype=np.int64), cols, np.ones(n), 0.0)
        return w.reshape(1, n)

    @property
    def intercept_(self):
        check_is_fitted(self)
        return np.array([self.model_.bias_weight()])

    # ---- model directory --------------------------------------------------------------
    def save(self, model_dir, *, overwrite: bool = False) -> None:
        """Write the model as an ftrl model directory (config.json, a checkpoint, the
        manifest), which ``ftrl predict|eval|export|inspect -m DIR`` serve and
        ``ftrl train --resume`` continues. An existing model there is replaced only with
        overwrite=True."""
        check_is_fitted(self)
        model_dir = os.fspath(model_dir)
        with checkpoint.writing(model_dir):
            if checkpoint.has_checkpoint(model_dir) or checkpoint.has_pending(model_dir):
                if not overwrite:
                    raise FileExistsError(f"{model_dir} already holds a model; pass overwrite=True to replace it")
            # (the directory's model is replaced when the new one is committed, not before)
            checkpoint.start_run(model_dir, self.model_.config, replaces=True)
            checkpoint.save(model_dir, self.model_, self._training_log())

    def _training_log(self) -> TrainingLog:
        """The record of the training so far (as `ftrl train` keeps it), with what the
        estimator needs under "estimator"."""
        passes = int(self.n_iter_)
        classes = self.classes_.tolist()
        try:
            json.dumps(classes)
        except TypeError:
            raise ValueError(f"save needs JSON-representable class labels, got {classes!r}") from None
        rs = self.random_state if self.random_state is None or _is_int(self.random_state) else None
        return dataclasses.replace(self._log.copy(), estimator={"classes": classes, "classes_dtype": self.classes_.dtype.str,
                        "n_features_in": int(self.n_features_in_), "n_iter": passes,
                        "class_weight": "balanced" if self.class_weight == "balanced" else None,
                        "shuffle": bool(self.shuffle),
                        "random_state": None if rs is None else int(rs),
                        "sklearn_version": sklearn.__version__})

    @classmethod
    def load(cls, model_dir) -> FTRLClassifier:
        """A fitted estimator from an ftrl model directory (written by ``save`` or by
        ``ftrl train``); its predictions equal ``ftrl predict``'s. For a directory
        ``ftrl train`` wrote: classes_ = [0, 1] (the CLI's negative and positive labels) and
        n_features_in_ = the allocated table size (a power of two above the largest id
        trained: every column below it owns its slot), so test data needs that many
        columns (``load_svmlight_file(f, zero_based=True, n_features=clf.n_features_in_)``).
        Raises ftrl_cli.errors.ModelError for a missing or damaged directory."""
        model_dir = os.fspath(model_dir)
        model, log = checkpoint.load(model_dir)
        config = model.config
        ours = log.estimator or {}
        params = {name: getattr(config, _RENAMED.get(name, name)) for name in _CONFIG_PARAMS}
        if ours.get("classes") is not None:
            dt = ours.get("classes_dtype")
            classes = np.array(ours["classes"], dtype=None if dt is None else np.dtype(dt))
        else:
            classes = np.array([0, 1])
        if ours.get("class_weight") == "balanced":
            params["class_weight"] = "balanced"
        elif config.class_weight is not None:
            params["class_weight"] = {classes[0].item(): config.class_weight[0],
                                      classes[1].item(): config.class_weight[1]}
        params["shuffle"] = bool(ours.get("shuffle", False))
        params["random_state"] = ours.get("random_state")
        est = cls(**params)
        est.classes_ = classes
        est.n_features_in_ = int(ours.get("n_features_in", model.size))
        est.n_iter_ = int(ours.get("n_iter", log.passes_done))
        est._log = dataclasses.replace(log, estimator=None)
        est._learner = est.model_ = model
        return est

    # ---- pickling: plain arrays and the config as a dict, never the Model object ------
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        if "_learner" in state:
            learner, model = state.pop("_learner"), state.pop("model_")
            state["_learner_state"] = _model_state(learner)
            state["_model_state"] = None if model is learner else _model_state(model)
        return state

    def __setstate__(self, state):
        state = dict(state)
        if "_learner_state" in state:
            learner = _model_from_state(state.pop("_learner_state"))
            ms = state.pop("_model_state")
            state["_learner"] = learner
            state["model_"] = learner if ms is None else _model_from_state(ms)
        super().__setstate__(state)


_PARAM_OF = {v: k for k, v in _RENAMED.items()}


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _same_label(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _check_type(name, v, ftype: str):
    """A parameter as the Config field's type wants it (numpy scalars become Python ones;
    ints stand for floats); ValueError otherwise."""
    if v is None and "None" in ftype:
        return None
    base = ftype.replace(" | None", "")
    ok = None
    if base == "float" and isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)):
        ok = float(v)
    elif base == "int" and _is_int(v):
        ok = int(v)
    elif base == "bool" and isinstance(v, (bool, np.bool_)):
        ok = bool(v)
    elif base == "str" and isinstance(v, str):
        ok = v
    elif base == "dict" and isinstance(v, dict):
        ok = copy.deepcopy(v)
    if ok is None:
        raise ValueError(f"{name} must be {ftype.replace('|', 'or')}, got {v!r}")
    return ok


def _canonical(X):
    """Canonical CSR arrays of a validated matrix, in new memory (the caller's arrays are
    never touched): int64 indptr and ids, float64 values; entries of a row sorted by
    column, repeated entries summed, zeros dropped (ftrl's libsvm reader does the same)."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64, copy=True)
        X.sum_duplicates()  # (sorts the indices)
        X.eliminate_zeros()
    else:
        X = sp.csr_matrix(np.asarray(X, dtype=np.float64))  # (keeps the nonzeros only)
        X.sort_indices()
    return (np.ascontiguousarray(X.indptr, dtype=np.int64), np.ascontiguousarray(X.indices, dtype=np.int64),
            np.ascontiguousarray(X.data, dtype=np.float64))
