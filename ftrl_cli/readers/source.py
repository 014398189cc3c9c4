"""An input of a run, from its path to its Batches: globs, the checks made before any
training, the format to read it as, and `open_batches`, the one entry point that turns any
input train reads into `Batch`es with a model's settings.
"""

from __future__ import annotations

import glob
import os

from ..config import Config
from ..errors import ConfigError, DataError
from . import libsvm, parquet_sparse, wide
from .batch import BATCH_ROWS, prefetch
from .detect import detect_format, parquet_layout
from .errors import open_data
from .stream import is_fifo, release_fifo


def input_ids(inputs):
    out = []
    for path in inputs:
        size = None if path == "-" else (os.path.getsize(path) if os.path.isfile(path) else None)
        out.append({"path": path, "size": size})
    return out


def check_inputs(inputs, passes):
    """Refuse what cannot be read as asked before any training: no input, a missing or
    unreadable file, stdin or a FIFO (read once only) with --passes > 1 or other inputs."""
    if not inputs:
        raise ConfigError("no input files given")
    if "-" in inputs and (passes > 1 or len(inputs) > 1):
        raise ConfigError("stdin ('-') can be read once only: use it alone with --passes 1, "
                          "or give a file")
    for path in inputs:
        if is_fifo(path) and (passes > 1 or len(inputs) > 1):
            raise ConfigError(f"{path} (a FIFO) can be read once only: use it alone with --passes 1, "
                              "or give a file")
    for path in inputs:  # fail before any training on a missing later file
        _check_path(path)


def _check_path(path):
    """A missing, unreadable path or a directory is a DataError. (A FIFO is not opened:
    opening waits for its writer, and it is opened once, by whoever looks at it first.)"""
    if path == "-":
        return
    if is_fifo(path):
        if not os.access(path, os.R_OK):
            raise DataError(f"{path}: permission denied")
        return
    open_data(path).close()


def expand_inputs(inputs) -> list:
    """Paths as given; a pattern with * ? [ that is not itself a file expands (sorted)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for path in inputs:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"inputs are file paths (or '-'), not {type(path).__name__}; for a matrix "
                            "in memory use ftrl_cli.sklearn.FTRLClassifier")
        path = os.fspath(path)
        if path != "-" and any(ch in path for ch in "*?[") and not os.path.exists(path):
            matches = sorted(glob.glob(path))
            if not matches:
                raise DataError(f"{path}: no file matches this pattern")
            out.extend(matches)
        else:
            out.append(path)
    return out


def input_format(path, config: Config) -> str:
    """libsvm, parquet-sparse, parquet-wide, csv or tsv for this input."""
    fmt = config.format
    if fmt == "auto":
        if path == "-":
            return "libsvm"
        _check_path(path)
        fmt = detect_format(path)
    if fmt != "libsvm" and is_fifo(path):
        # (Parquet needs seeking; the CSV/TSV reader opens a file twice, to type columns)
        release_fifo(path)
        raise DataError(f"{path}: a FIFO can be read as libsvm text only, not {fmt}; "
                        "give the data as a regular file")
    if fmt == "parquet":
        return "parquet-" + parquet_layout(path, config.indices_column)
    return fmt


def open_batches(path, config: Config, *, start_offset=0, start_line=0, batch_rows=BATCH_ROWS,
                 on_bad=None, with_ids=False, names=None, shuffle_seed=None):
    """Batches from one input in any format train reads, with the model's column and
    hashing settings. Resume positions: bytes/lines for text, rows for tables.
    shuffle_seed: a Parquet file's row groups are read in an order seeded by it."""
    fmt = input_format(path, config)
    if fmt == "libsvm":
        # (skipped lines are counted as they are read: read ahead only when none can be)
        ahead = _read_ahead() and on_bad is None
        it = libsvm.iter_libsvm(path, start_offset=start_offset, start_line=start_line, batch_rows=batch_rows,
                                 on_bad=on_bad, with_comments=with_ids, row_multiple=config.batch_size, fresh=ahead)
        return prefetch(it, copy=False) if ahead else it
    if fmt == "parquet-sparse":
        it = parquet_sparse.iter_parquet_sparse(
            path, label=config.label_column, indices=config.indices_column, values=config.values_column,
            weight=config.weight_column, id_column=config.id_column, batch_rows=batch_rows,
            start_row=start_offset, shuffle_seed=shuffle_seed)
        return prefetch(it, copy=False) if _read_ahead() else it  # (its batches own their arrays)
    return wide.iter_tabular(
        path, fmt="parquet" if fmt == "parquet-wide" else fmt, label=config.label_column,
        categorical=config.categorical, numeric=config.numeric, ignore=config.ignore or (),
        interactions=[tuple(i) for i in config.interactions or ()], numeric_as=config.numeric_as,
        header=config.header, columns=config.columns, bits=config.bits, batch_rows=batch_rows,
        names=names, weight=config.weight_column, id_column=config.id_column, start_row=start_offset,
        shuffle_seed=shuffle_seed if fmt == "parquet-wide" else None)


def _read_ahead() -> bool:
    """Parse the next batch in a thread while this one trains, when there is a second CPU
    (FTRL_READ_AHEAD=0 turns it off)."""
    if os.environ.get("FTRL_READ_AHEAD", "1") == "0":
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except AttributeError:
        return (os.cpu_count() or 1) >= 2
