"""The model: optimizer state per table slot plus the bias, and what it can do with a CSR
batch (learn, score, list its weights).

Weight table. `bits` sets the capacity C = 2**bits. A feature id below C owns slot id;
an id >= C is hashed into [0, C) with splitmix64's finalizer (kernels._slot): stable across
runs, machines and versions, never out of bounds, never dropped. The table is allocated
lazily, as the next power of two above the largest id seen (so agaricus uses 128 slots and
url_mini's 3.2 M ids 4 M slots, without collisions), and becomes full-size once an id is
hashed. Hashed ids are remembered (up to MAX_ALIASES) so that `export` can name them and
collisions can be counted.

State layout. `st` is one interleaved table (D, K), `bst` the bias's row (K,):
- online FTRL (batch size 1, Algorithm 1):  K = 2, columns z, n; w is computed from them;
- mini-batch FTRL:                          z, n, w (the stored weight, as Keras keeps it);
- NovoGrad:                                 m, (unused), w;
then optionally the EMA of w and the accumulated gradient. Growing the table appends rows
in their initial state, which is exactly what a dense optimizer would have left there.
"""

from __future__ import annotations

import contextlib
import mmap
from dataclasses import dataclass

import numpy as np

from . import kernels as K
from . import sets
from .config import Config

MAX_ALIASES = 1 << 20


def _member(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """bool per value: whether it is in sorted_values (a sorted array), by binary search
    (fastest when values are sorted too)."""
    if not len(sorted_values):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


MIN_SLOTS = 64


def _next_pow2(x: int) -> int:
    return 1 << max(int(x) - 1, 0).bit_length()


def layout(config: Config) -> dict:
    """Column indices of the state table for a config."""
    if config.online:
        return {"K": 2, "ema": -1, "acc": -1}
    k = 3
    ema = acc = -1
    if config.ema_momentum is not None:
        ema, k = k, k + 1
    if config.gradient_accumulation_steps:
        acc, k = k, k + 1
    return {"K": k, "ema": ema, "acc": acc}


def hyperparameters(config: Config) -> tuple[np.ndarray, np.ndarray]:
    """(hp, fl): the settings as every optimizer kernel takes them (kernels/ftrl.py, the
    HP_* and FL_* indices); NaN in hp means "off"."""
    c = config
    cols = layout(c)
    nan = float("nan")
    hp = np.full(K.N_HP, nan)
    hp[K.HP_ALPHA], hp[K.HP_BETA], hp[K.HP_L1], hp[K.HP_L2] = c.alpha, c.beta, c.l1, c.l2
    hp[K.HP_SHRINK], hp[K.HP_P] = c.l2_shrinkage, c.p
    hp[K.HP_BIAS_L1], hp[K.HP_BIAS_L2] = c.resolved_bias_l1, c.resolved_bias_l2
    hp[K.HP_WD] = c.weight_decay
    for i, v in ((K.HP_CLIPNORM, c.clipnorm), (K.HP_GCLIPNORM, c.global_clipnorm),
                 (K.HP_CLIPVALUE, c.clipvalue), (K.HP_EMA_MOM, c.ema_momentum),
                 (K.HP_LOSS_SCALE, c.loss_scale_factor)):
        hp[i] = nan if v is None else v
    hp[K.HP_GSCALE], hp[K.HP_BIAS_LR] = c.grad_scale, c.bias_lr_mult
    hp[K.HP_BETA1], hp[K.HP_BETA2], hp[K.HP_EPS] = c.beta_1, c.beta_2, c.epsilon
    fl = np.zeros(K.N_FL, np.int64)
    fl[K.FL_ONLINE] = c.online
    fl[K.FL_DENSE] = c.update == "dense"
    fl[K.FL_BIAS] = c.bias
    fl[K.FL_EMA_COL], fl[K.FL_ACC_COL] = cols["ema"], cols["acc"]
    fl[K.FL_ACCUM] = c.gradient_accumulation_steps or 0
    fl[K.FL_EMA_FREQ] = c.ema_overwrite_frequency or 0
    fl[K.FL_NOVOGRAD] = c.optimizer == "novograd"
    fl[K.FL_AMSGRAD], fl[K.FL_GRAD_AVG] = c.amsgrad, c.grad_averaging
    return hp, fl


def fresh_row(config: Config, dtype=None) -> np.ndarray:
    """The state of a slot no update has touched: zeros, n = initial_accumulator for FTRL."""
    row = np.zeros(layout(config)["K"], dtype=np.dtype(dtype or config.dtype))
    if config.optimizer == "ftrl" and config.initial_accumulator != 0:
        row[K.COL_N] = config.initial_accumulator
    return row


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal shape, dtype and bytes (NaN == NaN, 0.0 != -0.0)."""
    return a.shape == b.shape and a.dtype == b.dtype and (
        a.size == 0 or np.array_equal(np.ascontiguousarray(a).view(np.uint8),
                                      np.ascontiguousarray(b).view(np.uint8)))


@dataclass(eq=False)
class State:
    """A model's optimizer state, as a value: copy(), ==, and checkpoint.save/load.

    table       (D, K) one row per slot, columns by layout(config): online FTRL z, n;
                mini-batch FTRL z, n, w; NovoGrad m, (unused), w; then optionally the
                EMA of w and the accumulated gradient. D is a power of two <= 2**bits
                (the table grows as larger ids come); rows past D are fresh rows.
    bias        (K,) the bias's row, same columns
    layer       (4,) float64: NovoGrad's per-layer second moments (v_w, v_b, vhat_w, vhat_b)
    aliases     (A, 2) int64: (slot, id) for every id seen in a slot that a hashed id uses
    iterations  optimizer steps taken (mini-batch mode; 0 online)

    Equality is bit equality of every array (NaN equals NaN).
    """

    table: np.ndarray
    bias: np.ndarray
    layer: np.ndarray
    aliases: np.ndarray
    iterations: int = 0
    alias_overflow: bool = False  # more than MAX_ALIASES aliases: the list is cut

    @classmethod
    def fresh(cls, config: Config, size: int | None = None) -> State:
        size = min(MIN_SLOTS, 1 << config.bits) if size is None else size
        return cls(table=_fresh_table(config, size, np.dtype(config.dtype)),
                   bias=fresh_row(config), layer=np.zeros(4), aliases=np.empty((0, 2), np.int64))

    def copy(self) -> State:
        return State(self.table.copy(), self.bias.copy(), self.layer.copy(), self.aliases.copy(),
                     self.iterations, self.alias_overflow)

    def __eq__(self, other) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.iterations == other.iterations and self.alias_overflow == other.alias_overflow
                and all(_same_bits(a, b) for a, b in ((self.table, other.table), (self.bias, other.bias),
                                                      (self.layer, other.layer),
                                                      (self.aliases, other.aliases))))

    def used_slots(self, fresh: np.ndarray) -> np.ndarray:
        """The slots whose row differs, bit for bit, from `fresh` (fresh_row(config)), in
        increasing order (int64): what a checkpoint stores. Bits, not "n != 0": a row an
        initial accumulator, NovoGrad or a dense step left exactly fresh is not listed, and
        one holding -0.0 or a NaN is. Reads the table in chunks (no copy of it)."""
        t = self.table
        ut = np.dtype(f"u{t.dtype.itemsize}")
        bits = t.view(ut)  # (same item size: the bytes as integers, any strides)
        f = np.ascontiguousarray(fresh, dtype=t.dtype).view(ut)
        found = [np.empty(0, np.int64)]
        step = 1 << 16  # rows per chunk: the temporaries stay in cache
        for a in range(0, len(bits), step):
            c = bits[a:a + step]
            diff = c[:, 0] != f[0]
            for k in range(1, c.shape[1]):
                diff |= c[:, k] != f[k]
            found.append(np.flatnonzero(diff).astype(np.int64) + a)
        return np.concatenate(found)

    def changed_slots(self, base: State, fresh: np.ndarray) -> np.ndarray:
        """The slots whose row differs, bit for bit, from base's: what training from base
        changed (what a worker hands back). A slot past base's table is compared with
        `fresh` (fresh_row(config)), the row it had before the table grew."""
        rows = len(self.table)
        n = min(len(base.table), rows)
        a = np.ascontiguousarray(self.table).view(np.uint8).reshape(rows, -1)
        diff = np.zeros(rows, bool)
        diff[:n] = (a[:n] != np.ascontiguousarray(base.table[:n]).view(np.uint8).reshape(n, -1)).any(axis=1)
        if rows > n:
            f = np.ascontiguousarray(fresh, dtype=self.table.dtype).view(np.uint8)
            diff[n:] = (a[n:] != f).any(axis=1)
        return np.flatnonzero(diff)


SMALL_PAGES_INPUT = 64 << 20  # inputs up to this many bytes may get a 4 KiB-page table


def small_pages(input_bytes: int | None, table_bytes: int) -> bool:
    """Whether a fresh table of table_bytes, trained on input_bytes of input (None: not
    known, e.g. stdin), is mapped in 4 KiB pages: when the input is small beside it (a
    hashed table of a small file). Its touched rows are then few and scattered, and with
    NumPy's 2 MiB pages a few thousand rows make all of it resident (256 MiB for 2**24
    slots); in 4 KiB pages its memory follows the rows touched. A big input keeps huge
    pages: an update loop over a table it fills runs up to ~1.7x slower on 4 KiB pages (TLB
    misses), which on an input this small costs little time."""
    return (input_bytes is not None and table_bytes >= (4 << 20) and input_bytes <= SMALL_PAGES_INPUT
            and input_bytes * 16 <= table_bytes)


def _zeros_in_small_pages(shape, dt) -> np.ndarray:
    """np.zeros(shape, dt) in a private anonymous mapping of 4 KiB pages: a page is backed
    once written (reading an unwritten one maps the shared zero page: a whole-table scan
    adds nothing)."""
    nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(AttributeError, OSError):  # (no madvise: the system's default)
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(buf, dt).reshape(shape)  # (the array keeps the mapping alive)


def _fresh_table(config: Config, size: int, dt, input_bytes: int | None = None) -> np.ndarray:
    shape = (size, layout(config)["K"])
    fill = config.optimizer == "ftrl" and config.initial_accumulator != 0  # (a column written: every page)
    if not fill and small_pages(input_bytes, size * shape[1] * np.dtype(dt).itemsize):
        return _zeros_in_small_pages(shape, dt)
    st = np.zeros(shape, dtype=dt)
    if fill:
        st[:, K.COL_N] = config.initial_accumulator  # (zeros cost no page until used)
    return st


def table_of_rows(config: Config, size: int, slots: np.ndarray, rows: np.ndarray, *,
                  lean: bool = False) -> np.ndarray:
    """The (size, K) table holding `rows` at `slots` and the fresh row everywhere else: a
    sparse checkpoint loaded. The caller has checked slots (unique, in [0, size)) and rows.

    NumPy asks for 2 MiB huge pages for a big array, so a few hundred scattered rows make
    all of a 2**24-slot table resident (256 MiB). lean (a table to score with, not to train
    further): a big all-zero table with few rows (under one per 1024 slots) is mapped in
    4 KiB pages instead, so that its memory follows the rows used. Training keeps huge
    pages (small_pages: an update loop over a table it fills runs up to ~1.7x slower on
    4 KiB pages)."""
    dt = np.dtype(config.dtype)
    k = layout(config)["K"]
    nbytes = size * k * dt.itemsize
    if lean and nbytes >= (4 << 20) and len(slots) * 1024 < size and not fresh_row(config).any():
        table = _zeros_in_small_pages((size, k), dt)
    else:
        table = _fresh_table(config, size, dt)
    table[slots] = rows
    return table


class Model:
    """A config and its State, and what they do with a CSR batch: learn, score, list weights."""

    def __init__(self, config: Config, state: State | None = None, *, input_bytes: int | None = None):
        self.config = config
        self.cols = layout(config)
        self.state = State.fresh(config) if state is None else state
        self._scratch = None
        self.input_bytes = input_bytes  # (the input the table grows for, None: not known; small_pages)

    # the state's arrays under the names the kernels use
    st = property(lambda self: self.state.table, lambda self, v: setattr(self.state, "table", v))
    bst = property(lambda self: self.state.bias)
    ls = property(lambda self: self.state.layer)
    alias = property(lambda self: self.state.aliases, lambda self, v: setattr(self.state, "aliases", v))
    iterations = property(lambda self: self.state.iterations,
                          lambda self, v: setattr(self.state, "iterations", v))
    alias_overflow = property(lambda self: self.state.alias_overflow,
                              lambda self, v: setattr(self.state, "alias_overflow", v))

    # ---- table ----------------------------------------------------------------------
    @property
    def cap(self) -> int:
        return 1 << self.config.bits

    @property
    def size(self) -> int:
        return self.st.shape[0]

    def _fresh(self, size: int, dt) -> np.ndarray:
        return _fresh_table(self.config, size, dt, self.input_bytes)

    def reserve(self, max_id: int) -> None:
        """Grow the table so that every id <= max_id has a valid slot."""
        need = self.cap if max_id >= self.cap else min(self.cap, _next_pow2(max_id + 1))
        if need > self.size:
            st = self._fresh(need, self.st.dtype)
            st[: self.size] = self.st
            self.st = st
            self._scratch = None

    def _record_aliases(self, ids: np.ndarray) -> None:
        """Remember which ids share the slots that hashed ids land in (naming, collisions).
        The table stays sorted by (slot, id): new pairs are sorted, found by binary search
        and merged into it (kernels.merge_pairs), so a batch costs one pass over the table,
        not a sort of all of it."""
        cap = self.cap
        alias = self.alias
        known_slots = alias[:, 0]  # (sorted: the rows are)
        big = ids >= cap
        hashed = np.empty((0, 2), np.int64)  # (slot, id) of the batch's hashed ids
        targets = np.empty(0, np.int64)  # slots they land in, sorted
        own = np.empty(0, np.int64)  # ids < cap in such a slot: (id, id) pairs
        if big.any():
            hid = sets.unique(ids[big])
            hslot = np.empty_like(hid)
            K.slots_of(hid, cap, hslot)
            order = np.argsort(hslot, kind="stable")  # (hid is sorted: ids stay in order)
            targets = hslot[order]
            hashed = np.stack([targets, hid[order]], 1)
            known = _member(targets, known_slots)
            # a slot touched before but not yet aliased was touched by its own id
            touched = np.any(self.st[targets] != self._fresh(1, self.st.dtype)[0], axis=1)
            own = targets[touched & ~known]
        if len(alias) or len(hashed):
            small = sets.unique(ids[~big])
            own = sets.union(own, small[_member(small, known_slots) | _member(small, targets)])
        if len(hashed) or len(own):
            new = np.empty((len(hashed) + len(own), 2), np.int64)
            n, _ = K.merge_pairs(hashed, np.stack([own, own], 1), new, len(new))
            out = np.empty((min(len(alias) + n, MAX_ALIASES), 2), np.int64)
            k, left_out = K.merge_pairs(alias, new[:n], out, MAX_ALIASES)
            self.alias = out[:k]
            if left_out:
                self.alias_overflow = True

    def prepare(self, ids: np.ndarray, max_id: int) -> None:
        """Validate and make room for a batch's ids before a kernel sees them."""
        if max_id >= 0:
            self.reserve(max_id)
            if max_id >= self.cap or len(self.alias):
                self._record_aliases(ids)

    # ---- learning ---------------------------------------------------------------------
    def learn(self, indptr, ids, values, y, weights, max_id: int, margins: np.ndarray,
              loss0: float = 0.0) -> float:
        """Train on the rows (in order); returns loss0 plus their summed weighted progressive
        log loss, added row by row (pass a running total as loss0: it then does not depend
        on how the rows were cut into batches).

        margins[r] receives the margin each row was predicted with before learning from it.
        """
        c = self.config
        self.prepare(ids, max_id)
        if max_id >= self.cap:
            indptr, ids, values = self.by_slot(indptr, ids, values)
        if c.online:
            return K.ftrl_online(indptr, ids, values, y, weights, self.st, self.bst, self.cap,
                                 *hyperparameters(c), margins, loss0)
        rows = len(indptr) - 1
        steps = -(-rows // c.batch_size)
        from .schedules import learning_rates  # (mini-batch runs only)

        lrs = learning_rates(c, self.iterations, steps, self.st.dtype)
        if self._scratch is None or len(self._scratch[0]) != self.size:
            self._scratch = (np.zeros(self.size), np.zeros(self.size, np.uint8),
                             np.zeros(self.size, np.int64))
        gbuf, mark, touched = self._scratch
        loss, taken = K.train_minibatch(indptr, ids, values, y, weights, self.cap, c.batch_size, lrs,
                                        self.iterations, self.st, self.bst, self.ls, *hyperparameters(c),
                                        gbuf, mark, touched, margins, loss0)
        self.iterations += taken
        return loss

    def by_slot(self, indptr, ids, values):
        """The rows as vectors over table slots (kernels.sum_by_slot): ids hashed into a
        slot that another id of the row also uses are one coordinate, their values summed,
        as a wide table's hashed columns are. Only needed when some id is >= cap (hashed):
        smaller ids keep their own slots, and the reader already sums a repeated id."""
        out_indptr = np.empty_like(indptr)
        out_ids = np.empty_like(ids)
        out_values = np.empty(len(ids), np.float64)
        nnz = K.sum_by_slot(indptr, ids, values, self.cap, out_indptr, out_ids, out_values)
        return out_indptr, out_ids[:nnz], out_values[:nnz]

    def finalize(self) -> None:
        """End of training: with an EMA, the averaged weights become the model (as Keras's
        finalize_variable_values does at the end of fit)."""
        e = self.cols["ema"]
        if e >= 0:
            self.st[:, K.COL_W] = self.st[:, e]
            self.bst[K.COL_W] = self.bst[e]

    # ---- scoring ----------------------------------------------------------------------
    def weights(self) -> np.ndarray:
        """w for every allocated slot (float64)."""
        return self._weights_of(self.st)

    def _weights_of(self, rows: np.ndarray) -> np.ndarray:
        """w of these rows of a table (float64)."""
        if not self.config.online:
            return rows[:, K.COL_W].astype(np.float64)
        w = np.empty(len(rows), np.float64)
        K.weights_from_state(rows, hyperparameters(self.config)[0], False, w)
        return w

    def used_weights(self) -> tuple:
        """(slots, w): the slots whose row is not the fresh row (State.used_slots), in
        increasing order, and their weights; every other slot's weight is 0 (a fresh row's).
        No table-sized array: the memory of inspect and export follows the rows used."""
        fresh = fresh_row(self.config, self.st.dtype)
        if self._weights_of(fresh.reshape(1, -1))[0]:
            return np.arange(self.size), self.weights()  # (no optimizer has such a fresh row)
        slots = self.state.used_slots(fresh)
        return slots, self._weights_of(self.st[slots])

    def bias_weight(self) -> float:
        c = self.config
        if not c.bias:
            return 0.0
        if not c.online:
            return float(self.bst[K.COL_W])
        # w from the bias's (z, n) under the bias's l1 and l2: margins_state's arithmetic,
        # the same as weights_from_state's, on a one-row table with one feature (id 0,
        # value 1) and bias -0.0, so the margin is w bit for bit (-0.0 + w == w, even for
        # w = -0.0). Predict uses margins_state anyway: one kernel fewer to load.
        hp, fl = hyperparameters(c)
        hp[K.HP_L1], hp[K.HP_L2] = hp[K.HP_BIAS_L1], hp[K.HP_BIAS_L2]
        w = np.empty(1, np.float64)
        K.margins_state(np.array([0, 1], np.int64), np.zeros(1, np.int64), np.ones(1, np.float64),
                        self.bst.reshape(1, -1), 1, hp, fl, -0.0, w)
        return float(w[0])

    def margins(self, indptr, ids, values, bias_w=None) -> np.ndarray:
        """x.w + bias for each row, w read from the state (no copy of the table). Pass
        bias_w (from bias_weight()) when scoring many batches."""
        c = self.config
        bias_w = self.bias_weight() if bias_w is None else bias_w
        out = np.empty(len(indptr) - 1, np.float64)
        if len(ids) and ids.max() >= self.cap:
            indptr, ids, values = self.by_slot(indptr, ids, values)
        K.margins_state(indptr, ids, values, self.st, self.cap, *hyperparameters(c), bias_w, out)
        return out

    # ---- inspection -------------------------------------------------------------------
    def collisions(self) -> int:
        """Slots shared by two or more distinct feature ids (known ones)."""
        if not len(self.alias):
            return 0
        _, counts = np.unique(self.alias[:, 0], return_counts=True)
        return int((counts > 1).sum())

    def slot_names(self) -> dict:
        """{slot: name} for the slots hashed ids share: their ids joined by '+' (other
        slots are named by their id, the slot itself)."""
        names = {}
        for slot, fid in self.alias:
            names.setdefault(int(slot), []).append(str(int(fid)))
        return {s: "+".join(ids) for s, ids in names.items()}

    def named_weights(self):
        """Yield (feature name, weight) for every nonzero weight, by slot."""
        slots, w = self.used_weights()
        names = self.slot_names()
        for i in np.flatnonzero(w):
            s = int(slots[i])
            yield names.get(s, str(s)), float(w[i])
