"""An input of a run, from its path to its Batches: globs, the checks made before any
training, the format to read it as, and `open_batches`, the one entry point that turns any
input train reads into `Batch`es with a model's settings.
"""

from __future__ import annotations

import os

from ..config import Config
from ..errors import ConfigError, DataError
from . import libsvm, location, parquet_sparse, shuffle, wide
from .batch import BATCH_ROWS, prefetch
from .crosses import id_crosses, with_crosses
from .detect import detect_format, parquet_layout
from .errors import open_data
from .stream import is_fifo, release_fifo

# what each layout is, in messages
_LAYOUTS = {"ids": "libsvm or sparse Parquet (feature ids used as written)",
            "table": "a table (CSV/TSV or wide Parquet, columns hashed into features)"}


def input_ids(inputs):
    out = []
    for path in inputs:
        out.append({"path": path, "size": location.size(path)})
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
    """Paths as given (a file:// URL as its local path); a pattern with * ? [ that is not
    itself a file expands (sorted)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    out = []
    for path in inputs:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"inputs are file paths (or '-'), not {type(path).__name__}; for a matrix "
                            "in memory use ftrl_cli.sklearn.FTRLClassifier")
        path = location.local_path(os.fspath(path))
        if path != "-" and any(ch in path for ch in "*?[") and not location.exists(path):
            matches = location.expand(path)
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


def input_layout(path, config: Config) -> str:
    """'ids' (libsvm, sparse Parquet: feature ids as written) or 'table' (CSV/TSV, wide
    Parquet: columns hashed into ids): what a model learns from is one or the other."""
    return "ids" if input_format(path, config) in ("libsvm", "parquet-sparse") else "table"


def _layout_error(path, layout, trained) -> DataError:
    if is_fifo(path):  # (its writer then sees a closed pipe instead of waiting forever)
        release_fifo(path)
    return DataError(f"{path}: this input is {_LAYOUTS[layout]}, but the model was trained on "
                     f"{_LAYOUTS[trained]}, so its features would not mean what the model learned; "
                     f"give the data as {_LAYOUTS[trained].split(' (')[0]} (or --format, if its format was "
                     "detected wrongly)")


def check_layout(inputs, config: Config) -> None:
    """Every input has the layout the model was trained on (Config.input_schema; a model
    from before it was recorded is not checked): a DataError naming the first that has not."""
    schema = config.input_schema
    if not schema:
        return
    for path in inputs:
        layout = input_layout(path, config)
        if layout != schema["layout"]:
            raise _layout_error(path, layout, schema["layout"])


def record_schema(config: Config, inputs, keep: bool = False) -> Config:
    """The config of a training run on `inputs`, with the input_schema the model keeps:
    the layout of its inputs (one for all: ids and hashed columns would share the table),
    and for a table the columns and features of the first input (wide.table_schema), so
    that predict, eval and --validation read every file the same way.
    keep: the run continues a model (--resume): its schema stays (None for a model from
    before schemas were recorded) and the inputs must match it."""
    if keep:
        check_layout(inputs, config)
        return config
    layouts = [input_layout(p, config) for p in inputs]
    for path, layout in zip(inputs, layouts):
        if layout != layouts[0]:
            raise DataError(f"{path}: this input is {_LAYOUTS[layout]}, but {inputs[0]} is "
                            f"{_LAYOUTS[layouts[0]]}; a model learns from one layout (ids of the one and "
                            "hashed columns of the other would share its table): train one model per layout")
    if layouts[0] == "ids":
        # (an interaction that is not of ids fails before training; a model that crosses ids says
        # so, since older ones were trained with --interactions ignored, and score without them)
        crossed = id_crosses(config.interactions) is not None
        return config.replace(input_schema={"layout": "ids", **({"id_crosses": True} if crossed else {})})
    path = inputs[0]
    fmt = input_format(path, config)
    schema = wide.table_schema(
        path, fmt="parquet" if fmt == "parquet-wide" else fmt, label=config.label_column,
        categorical=config.categorical, numeric=config.numeric, ignore=config.ignore or (),
        interactions=[tuple(i) for i in config.interactions or ()], numeric_as=config.numeric_as,
        header=config.header, columns=config.columns, weight=config.weight_column, id_column=config.id_column)
    return config.replace(input_schema=schema)


def validation_config(config: Config) -> Config:
    """How the --validation file is read: as the training data (header or not, the same
    names, columns and kinds), except for its header line when validation_header says."""
    if config.validation_header is None or config.validation_header == config.header:
        return config
    return config.replace(header=config.validation_header)


def convert_weights(inputs, config: Config):
    """The weight column `convert` writes: always with --weight; for libsvm and sparse
    Parquet inputs a nullable one (null = 1), since a cost: may first appear on any line;
    none for tables without --weight."""
    if config.weight_column is not None:
        return True
    return "optional" if any(input_layout(p, config) == "ids" for p in inputs) else False


def open_batches(path, config: Config, *, start_offset=0, start_line=0, batch_rows=BATCH_ROWS,
                 on_bad=None, with_ids=False, names=None, shuffle_seed=None, labels=True, block_row=None):
    """Batches from one input in any format train reads, with the model's column and
    hashing settings. Resume positions: bytes/lines for text, rows for tables.
    shuffle_seed: a Parquet file's row groups are read in an order seeded by it; with
    block_row too (the trainer's position in a block), a libsvm file's rows are shuffled in
    blocks of config.shuffle_buffer rows (readers/shuffle.py; without it, as for the
    parallel trainer's pieces, or with a buffer of 1 row, text keeps its line order).
    labels: False when they are not needed (predict): a table or sparse Parquet file
    without the label column is read, and Batch.labels is NaN.
    An input whose layout is not the model's (Config.input_schema) is a DataError."""
    fmt = input_format(path, config)
    schema = config.input_schema
    if schema:
        layout = "ids" if fmt in ("libsvm", "parquet-sparse") else "table"
        if layout != schema["layout"]:
            raise _layout_error(path, layout, schema["layout"])
    # --interactions on ids: crosses of ids (readers/crosses.py), made in the read-ahead thread
    crosses = (id_crosses(config.interactions) if fmt in ("libsvm", "parquet-sparse")
               and (not schema or schema.get("id_crosses")) else None)
    if fmt == "libsvm":
        # (skipped lines are counted as they are read: read ahead only when none can be)
        ahead = _read_ahead() and on_bad is None
        shuffled = shuffle_seed is not None and block_row is not None and config.shuffle_buffer > 1
        # (shuffled: one batch per block, exactly block_rows rows but the last)
        n = shuffle.block_rows(config) if shuffled else batch_rows
        it = libsvm.iter_libsvm(path, start_offset=start_offset, start_line=start_line, batch_rows=n,
                                 on_bad=on_bad, with_comments=with_ids,
                                 row_multiple=n if shuffled else config.batch_size, fresh=ahead or shuffled)
        if crosses is not None:
            it = with_crosses(it, crosses, path, config.interactions, rows_counted=False)
        if shuffled:
            it = shuffle.shuffled_blocks(it, shuffle_seed, start_offset=start_offset, start_line=start_line,
                                         block_row=block_row, batch_rows=batch_rows)
        return prefetch(it, copy=False) if ahead else it
    if fmt == "parquet-sparse":
        it = parquet_sparse.iter_parquet_sparse(
            path, label=config.label_column, indices=config.indices_column, values=config.values_column,
            weight=config.weight_column, id_column=config.id_column, batch_rows=batch_rows,
            start_row=start_offset, shuffle_seed=shuffle_seed, weight_default="weight", need_label=labels,
            # (batches that end with a row group, as text's end early; not where evaluations
            # every N rows fall on batch ends: they would land elsewhere than from the text)
            row_multiple=0 if config.validation_every else config.batch_size)
        if crosses is not None:
            it = with_crosses(it, crosses, path, config.interactions, rows_counted=True)
        return prefetch(it, copy=False) if _read_ahead() else it  # (its batches own their arrays)
    return wide.iter_tabular(
        path, fmt="parquet" if fmt == "parquet-wide" else fmt, label=config.label_column,
        categorical=config.categorical, numeric=config.numeric, ignore=config.ignore or (),
        interactions=[tuple(i) for i in config.interactions or ()], numeric_as=config.numeric_as,
        header=config.header, columns=config.columns, bits=config.bits, batch_rows=batch_rows,
        names=names, weight=config.weight_column, id_column=config.id_column, start_row=start_offset,
        shuffle_seed=shuffle_seed if fmt == "parquet-wide" else None, schema=schema, need_label=labels)


def _read_ahead() -> bool:
    """Parse the next batch in a thread while this one trains, when there is a second CPU
    (FTRL_READ_AHEAD=0 turns it off)."""
    if os.environ.get("FTRL_READ_AHEAD", "1") == "0":
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except AttributeError:
        return (os.cpu_count() or 1) >= 2
