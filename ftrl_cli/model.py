"""The model: FTRL-Proximal state (z, n per table slot, plus the bias) and what it can do
with a CSR batch (learn, score, list its weights).

Weight table. `bits` sets the capacity C = 2**bits. A feature id below C owns slot id;
an id >= C is hashed into [0, C) with splitmix64's finalizer (kernels._slot): stable across
runs, machines and versions, never out of bounds, never dropped. The table is allocated
lazily, as the next power of two above the largest id seen (so agaricus uses 128 slots and
url_mini's 3.2 M ids 4 M slots, without collisions), and becomes full-size once an id is
hashed. Hashed ids are remembered (up to MAX_ALIASES) so that `export` can name them and
collisions can be counted.
"""

from __future__ import annotations

import numpy as np

from . import kernels as K
from .config import Config

MAX_ALIASES = 1 << 20
MIN_SLOTS = 64


def _next_pow2(x: int) -> int:
    return 1 << max(int(x) - 1, 0).bit_length()


class Model:
    def __init__(self, config: Config, zn=None, bias_zn=None, alias=None):
        self.config = config
        dt = np.dtype(config.dtype)
        if zn is None:
            zn = self._fresh(min(MIN_SLOTS, self.cap), dt)
        if bias_zn is None:
            bias_zn = np.array([0.0, config.initial_accumulator], dtype=dt)
        self.zn = zn
        self.bias_zn = bias_zn
        # alias[:, 0] = slot, alias[:, 1] = id: every id seen in a slot that a hashed id uses
        self.alias = np.empty((0, 2), np.int64) if alias is None else alias
        self.alias_overflow = False

    # ---- table ----------------------------------------------------------------------
    @property
    def cap(self) -> int:
        return 1 << self.config.bits

    @property
    def size(self) -> int:
        return self.zn.shape[0]

    def _fresh(self, size: int, dt) -> np.ndarray:
        zn = np.zeros((size, 2), dtype=dt)
        zn[:, 1] = self.config.initial_accumulator
        return zn

    def reserve(self, max_id: int) -> None:
        """Grow the table so that every id <= max_id has a valid slot."""
        need = self.cap if max_id >= self.cap else min(self.cap, _next_pow2(max_id + 1))
        if need > self.size:
            zn = self._fresh(need, self.zn.dtype)
            zn[: self.size] = self.zn
            self.zn = zn

    def _record_aliases(self, ids: np.ndarray) -> None:
        """Remember which ids share the slots that hashed ids land in (naming, collisions)."""
        cap = self.cap
        big = ids >= cap
        pairs = []
        if big.any():
            hid = np.unique(ids[big])
            hslot = np.empty_like(hid)
            K.slots_of(hid, cap, hslot)
            known = np.isin(hslot, self.alias[:, 0])
            # a slot touched before but not yet aliased was touched by its own id
            touched = (self.zn[hslot, 0] != 0) | (self.zn[hslot, 1] != self.config.initial_accumulator)
            own = hslot[touched & ~known]
            pairs += [np.stack([hslot, hid], 1), np.stack([own, own], 1)]
        if len(self.alias) or pairs:
            targets = np.concatenate([self.alias[:, 0]] + [p[:, 0] for p in pairs])
            small = np.unique(ids[~big])
            own = small[np.isin(small, targets)]
            pairs.append(np.stack([own, own], 1))
        if pairs:
            merged = np.unique(np.concatenate([self.alias] + pairs), axis=0)
            if len(merged) > MAX_ALIASES:
                merged, self.alias_overflow = merged[:MAX_ALIASES], True
            self.alias = merged

    def prepare(self, ids: np.ndarray, max_id: int) -> None:
        """Validate and make room for a batch's ids before a kernel sees them."""
        if max_id >= 0:
            self.reserve(max_id)
            if max_id >= self.cap or len(self.alias):
                self._record_aliases(ids)

    # ---- learning and scoring ---------------------------------------------------------
    def learn(self, indptr, ids, values, y, weights, max_id: int, margins: np.ndarray) -> float:
        """One online pass over the rows; returns their summed progressive log loss."""
        c = self.config
        self.prepare(ids, max_id)
        return K.ftrl_online(indptr, ids, values, y, weights, self.zn, self.bias_zn, self.cap,
                             c.alpha, c.beta, c.l1, c.l2, c.l2_shrinkage, c.p,
                             c.resolved_bias_l1, c.resolved_bias_l2, c.bias, margins)

    def weights(self) -> np.ndarray:
        """w for every allocated slot (float64), computed from (z, n)."""
        c = self.config
        w = np.empty(self.size, np.float64)
        K.weights_from_state(self.zn, c.alpha, c.beta, c.l1, c.l2, c.p, w)
        return w

    def bias_weight(self) -> float:
        c = self.config
        if not c.bias:
            return 0.0
        w = np.empty(1, np.float64)
        K.weights_from_state(self.bias_zn.reshape(1, 2), c.alpha, c.beta,
                             c.resolved_bias_l1, c.resolved_bias_l2, c.p, w)
        return float(w[0])

    def margins(self, indptr, ids, values, w=None, bias_w=None) -> np.ndarray:
        """x.w + bias for each row. Pass w/bias_w (from weights()) to score many batches."""
        w = self.weights() if w is None else w
        bias_w = self.bias_weight() if bias_w is None else bias_w
        out = np.empty(len(indptr) - 1, np.float64)
        K.margins_csr(indptr, ids, values, w, self.cap, bias_w, out)
        return out

    # ---- inspection -------------------------------------------------------------------
    def collisions(self) -> int:
        """Slots shared by two or more distinct feature ids (known ones)."""
        if not len(self.alias):
            return 0
        _, counts = np.unique(self.alias[:, 0], return_counts=True)
        return int((counts > 1).sum())

    def named_weights(self):
        """Yield (feature name, weight) for every nonzero weight, by slot."""
        w = self.weights()
        nz = np.flatnonzero(w)
        names = {}
        for slot, fid in self.alias:
            names.setdefault(int(slot), []).append(str(int(fid)))
        for s in nz:
            yield "+".join(names.get(int(s), [str(s)])), float(w[s])
