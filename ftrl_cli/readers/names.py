"""NameMap: which `column=value` keys landed in which table slot (names.tsv in a model
directory), for `export`/`inspect` and collision counts.
"""

from __future__ import annotations

import re

import numpy as np

from ..atomic import atomic_writer

NAME_MAP_ENTRIES = 1 << 20


# ---------------------------------------------------------------------------------------
# slot -> name map
# ---------------------------------------------------------------------------------------

class NameMap:
    """Names of hashed features, bounded: the first name seen for each slot, plus a record
    of distinct keys per slot (slot, 32-bit fingerprint of the key) to count collisions.

    Holds at most max_entries names and max_entries keys; `overflow` tells when either
    bound was reached (later slots stay unnamed, later keys uncounted).
    """

    def __init__(self, max_entries: int = NAME_MAP_ENTRIES):
        self.max_entries = int(max_entries)
        self._names: dict[int, str] = {}
        self._keys = np.empty(0, np.uint64)  # sorted (slot << 32 | fingerprint)
        self.overflow = False

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, slot) -> bool:
        return int(slot) in self._names

    def name(self, slot, default=None):
        return self._names.get(int(slot), default)

    get = name

    def items(self):
        """(slot, name) pairs, by slot."""
        return sorted(self._names.items())

    @property
    def keys_seen(self) -> int:
        return len(self._keys)

    def collisions(self) -> int:
        """Slots known to hold two or more distinct keys."""
        if not len(self._keys):
            return 0
        _, counts = np.unique(self._keys >> np.uint64(32), return_counts=True)
        return int((counts > 1).sum())

    def keys_per_slot(self) -> dict:
        """slot -> number of distinct keys seen there (only slots with >= 2)."""
        slots, counts = np.unique(self._keys >> np.uint64(32), return_counts=True)
        return {int(s): int(c) for s, c in zip(slots, counts) if c > 1}

    def observe(self, ids, fingerprints, off, data) -> None:
        """Record one batch of one feature source: ids[r] (-1 = none) with the key bytes
        data[off[r]:off[r+1]] and its fingerprint."""
        sel = np.flatnonzero(ids >= 0)
        if not len(sel):
            return
        keys = (ids[sel].astype(np.uint64) << np.uint64(32)) | fingerprints[sel].astype(np.uint64)
        uk, first = np.unique(keys, return_index=True)
        known = np.zeros(len(uk), bool)
        if len(self._keys):
            at = np.searchsorted(self._keys, uk)
            at[at >= len(self._keys)] = 0
            known = self._keys[at] == uk
        if known.all():
            return
        uk, pos = uk[~known], sel[first[~known]]
        order = np.argsort(pos, kind="stable")  # first seen in row order
        uk, pos = uk[order], pos[order]
        for key, p in zip(uk.tolist(), pos.tolist()):
            slot = key >> 32
            if slot not in self._names:
                if len(self._names) >= self.max_entries:
                    self.overflow = True
                    break
                self._names[slot] = bytes(data[off[p]:off[p + 1]]).decode("utf-8", "replace")
        room = self.max_entries - len(self._keys)
        if room < len(uk):
            self.overflow = True
            uk = np.sort(uk)[:max(room, 0)]
        if len(uk):
            self._keys = np.union1d(self._keys, uk)

    def save(self, path: str) -> None:
        """Write `slot<TAB>keys<TAB>name` lines (by slot), atomically."""
        per = self.keys_per_slot()
        with atomic_writer(path, "w") as f:
            for slot, name in self.items():
                clean = name.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                f.write(f"{slot}\t{per.get(slot, 1)}\t{clean}\n")

    @classmethod
    def load(cls, path: str, max_entries: int = NAME_MAP_ENTRIES) -> NameMap:
        """Names from save()'s file (collision records are not kept: only the names)."""
        m = cls(max_entries)
        with open(path, encoding="utf-8") as f:
            for line in f:
                slot, _keys, name = line.rstrip("\n").split("\t", 2)
                name = re.sub(r"\\(.)", lambda g: {"t": "\t", "n": "\n"}.get(g.group(1), g.group(1)), name)
                m._names[int(slot)] = name
        return m
