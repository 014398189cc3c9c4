"""NameMap: which `column=value` keys landed in which table slot (names.tsv in a model
directory), for `export`/`inspect` and collision counts.
"""

from __future__ import annotations

import re

import numpy as np

from .. import sets
from ..atomic import atomic_writer
from ..errors import ModelError

NAME_MAP_ENTRIES = 1 << 20


# ---------------------------------------------------------------------------------------
# slot -> name map
# ---------------------------------------------------------------------------------------

class NameMap:
    """Names of hashed features, bounded: every distinct key seen in each slot, in the
    order first seen, plus a record of distinct keys per slot (slot, 32-bit fingerprint of
    the key) to count collisions.

    Holds at most max_entries names and max_entries keys; `overflow` tells when either
    bound was reached (later keys stay unnamed and uncounted).
    """

    def __init__(self, max_entries: int = NAME_MAP_ENTRIES):
        self.max_entries = int(max_entries)
        self._names: dict[int, list[str]] = {}
        self._n_names = 0
        self._keys = np.empty(0, np.uint64)  # sorted (slot << 32 | fingerprint)
        self._loaded: dict[int, int] = {}  # slot -> keys counted by the run that saved the file
        self.overflow = False

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, slot) -> bool:
        return int(slot) in self._names

    def name(self, slot, default=None):
        """The first name seen in the slot, as it was seen (any characters)."""
        names = self._names.get(int(slot))
        return default if not names else names[0]

    def names(self, slot) -> list:
        """Every name seen in the slot, first seen first."""
        return list(self._names.get(int(slot), []))

    def items(self):
        """(slot, first name) pairs, by slot."""
        return [(s, ns[0]) for s, ns in sorted(self._names.items())]

    @property
    def keys_seen(self) -> int:
        return len(self._keys)

    def collisions(self) -> int:
        """Slots known to hold two or more distinct keys."""
        return len(self.keys_per_slot())

    def keys_per_slot(self) -> dict:
        """slot -> number of distinct keys seen there (only slots with >= 2): counted from
        the key records, the names kept and what a saved file said, whichever knows more."""
        slots, counts = np.unique(self._keys >> np.uint64(32), return_counts=True)
        per = {int(s): int(c) for s, c in zip(slots, counts) if c > 1}
        for s, ns in self._names.items():
            if len(ns) > per.get(s, 1):
                per[s] = len(ns)
        for s, c in self._loaded.items():
            if c > per.get(s, 1):
                per[s] = c
        return per

    def add(self, slot: int, name: str) -> bool:
        """Keep one more key's name for the slot (False once the bound is reached)."""
        names = self._names.setdefault(slot, [])
        if name in names:  # (a key seen before a resume: its fingerprint was not saved)
            return True
        if self._n_names >= self.max_entries:
            if not names:
                del self._names[slot]
            self.overflow = True
            return False
        names.append(name)
        self._n_names += 1
        return True

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
            if not self.add(key >> 32, bytes(data[off[p]:off[p + 1]]).decode("utf-8", "replace")):
                break
        room = self.max_entries - len(self._keys)
        if room < len(uk):
            self.overflow = True
            uk = np.sort(uk)[:max(room, 0)]
        if len(uk):
            self._keys = sets.union(self._keys, uk)

    def get(self, slot, default=None):
        """The slot's name as export and inspect print it: every key seen there, escaped as
        in names.tsv (see save) so that it stays on one line of a TSV, joined by '+' (as the
        ids of a shared slot are); `default` when the slot has none."""
        names = self._names.get(int(slot))
        return default if not names else "+".join(escape_name(n) for n in names)

    def save(self, path: str) -> None:
        r"""Write `slot<TAB>keys<TAB>name` lines (by slot, UTF-8, each ended by LF), atomically:
        one line per name kept, so a slot that several keys share has several lines (keys:
        the distinct keys counted there, on each of them).

        A name is written escaped, so that it is one line and one field whatever it holds (a
        Parquet string or a quoted CSV field may hold any character):

            \        ->  \\
            TAB      ->  \t
            LF       ->  \n
            CR       ->  \r
            any other C0 control (NUL, VT, FF, FS, GS, RS, ...), DEL and the C1 controls
            U+0080..U+009F (NEL among them)                ->  \xHH   (two hex digits)
            U+2028, U+2029 and lone surrogates             ->  \uHHHH (four hex digits)

        Every other character is written as itself. So no line of the file holds a
        character that str.splitlines or Python's universal newlines would split at.
        `load` reads back exactly what was saved; it also reads files written before CR,
        \x and \u escapes were used (they escaped only \, TAB and LF).
        """
        with atomic_writer(path, "wb") as f:
            f.write(self.to_bytes())

    def to_bytes(self) -> bytes:
        """The file save() writes."""
        per = self.keys_per_slot()
        return "".join(f"{slot}\t{per.get(slot, 1)}\t{escape_name(name)}\n"
                       for slot, names in sorted(self._names.items()) for name in names).encode("utf-8")

    @classmethod
    def load(cls, path: str, max_entries: int = NAME_MAP_ENTRIES) -> NameMap:
        """Names from save()'s file (the key fingerprints are not saved: the names, and
        the counts of keys per slot).

        Lines end at LF only (a raw CR, NEL, U+2028 in an older file is part of a name)."""
        with open(path, "rb") as f:
            return cls.from_bytes(f.read(), path, max_entries)

    @classmethod
    def from_bytes(cls, data: bytes, path: str, max_entries: int = NAME_MAP_ENTRIES) -> NameMap:
        """load() of a file's bytes (path names it in errors)."""
        m = cls(max_entries)
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for no, raw in enumerate(lines, 1):
            try:
                slot, keys, name = raw.decode("utf-8").split("\t", 2)
                slot, keys = int(slot), int(keys)
                m.add(slot, unescape_name(name))
                if keys > 1:
                    m._loaded[slot] = max(keys, m._loaded.get(slot, 0))
            except ValueError:  # (UnicodeDecodeError is one)
                raise ModelError(f"{path}:{no}: damaged line (expected slot<TAB>keys<TAB>name); "
                                 "delete the file to lose the names, or restore it") from None
        return m


# ---------------------------------------------------------------------------------------
# names.tsv escaping
# ---------------------------------------------------------------------------------------

_SHORT = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
_NEEDS_ESCAPE = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)", re.DOTALL)
_UNSHORT = {"t": "\t", "n": "\n", "r": "\r"}


def _escape_char(m) -> str:
    c = m.group(0)
    short = _SHORT.get(c)
    if short is not None:
        return short
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def escape_name(name: str) -> str:
    """name as names.tsv and export write it (NameMap.save): one line, one TSV field."""
    return _NEEDS_ESCAPE.sub(_escape_char, name)


def _unescape_char(m) -> str:
    e = m.group(1)
    if len(e) > 1:  # xHH, uHHHH
        return chr(int(e[1:], 16))
    return _UNSHORT.get(e, e)  # \\ -> \ (and any other escaped character is itself)


def unescape_name(text: str) -> str:
    """The name escape_name(name) wrote."""
    return _ESCAPE.sub(_unescape_char, text) if "\\" in text else text
