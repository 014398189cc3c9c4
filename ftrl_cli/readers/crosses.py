"""`--interactions` on libsvm and sparse Parquet: crosses of feature ids (VW's `-q` for
data without namespaces). `3:7` adds, to every row holding ids 3 and 7, a feature with value
x3 * x7; `3:*` crosses id 3 with every other id of the row; `3:7:9` crosses three ids. A
cross's id is a fixed 64-bit hash of its ids in [2**61, 2**62), so it goes through the
table's slot hashing (kernels/crosses.py has the spec). The crosses are made as the input is
read (open_batches), so train, predict, eval, --validation and convert see the same rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import kernels as K
from ..errors import ConfigError, DataError

MAX_ID = 1 << 62


def _show(item) -> str:
    return ":".join(item)


def id_crosses(interactions):
    """The kernel's arrays (mptr, members, wild) for `interactions` (lists of ids as text
    and '*'), or None for none. Anything else is a ConfigError naming the interaction."""
    if not interactions:
        return None
    mptr, members, wild = [0], [], []
    for item in interactions:
        item = [str(m).strip() for m in item]
        what = f"--interactions {_show(item)}"
        if len(item) < 2:
            raise ConfigError(f"{what}: an interaction crosses two or more ids, e.g. 3:7 or 3:*")
        ids = []
        for m in item:
            if m == "*":
                continue
            if not (m.isascii() and m.isdigit()):
                raise ConfigError(f"{what}: {m!r} is not a feature id; on libsvm or sparse Parquet an "
                                  "interaction crosses feature ids (decimal, or * for every other id of "
                                  "the row), e.g. 3:7 or 3:*")
            if int(m) >= MAX_ID:
                raise ConfigError(f"{what}: id {m} is not below 2**62")
            ids.append(int(m))
        stars = len(item) - len(ids)
        if stars > 1:
            raise ConfigError(f"{what}: at most one * per interaction (3:* crosses id 3 with every other id)")
        if len(set(ids)) != len(ids):
            raise ConfigError(f"{what}: an id is listed twice; an interaction crosses distinct ids")
        members.extend(sorted(ids))
        mptr.append(len(members))
        wild.append(stars)
    return (np.array(mptr, np.int64), np.array(members, np.int64), np.array(wild, np.uint8))


def with_crosses(batches, crosses, path: str, interactions, rows_counted: bool):
    """The batches with their rows' crosses merged in (kernels.cross_rows); every other
    field as read. rows_counted: Batch.end_offset counts rows (Parquet), else bytes."""
    mptr, members, wild = crosses
    try:
        for b in batches:
            err, pos, spec, indptr, ids, values, max_id = K.cross_rows(b.indptr, b.ids, b.values,
                                                                        mptr, members, wild)
            if err:
                raise _error(b, err, pos, spec, path, interactions, rows_counted)
            yield dataclasses.replace(b, indptr=indptr, ids=ids, values=values, max_id=int(max_id))
    finally:  # (closing this closes the reader: its file, its threads)
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _error(b, err, pos, spec, path, interactions, rows_counted) -> DataError:
    if err == K.ERR_CROSS_UNSORTED:  # (the readers yield canonical rows: a reader's bug)
        return DataError(f"{path}: a row's ids are not in increasing order; cannot cross them")
    where = (f"row {b.end_offset - b.rows + pos + 1:,}" if rows_counted
             else f"a row before line {b.end_line + 1:,}")
    what = f"--interactions {_show(interactions[spec])}" if spec >= 0 else "--interactions"
    return DataError(f"{path}: {what}: the product of the values overflows in {where}; "
                     "scale the feature values")
