"""Input: every format ftrl reads, turned into CSR `Batch`es. Nothing is done per row in
Python; pyarrow is imported only when a Parquet or CSV file is read.

    source.py          an input from its path to its Batches: globs, checks, open_batches(),
                       the one entry point: any input -> Batches, read with a model's settings
    detect.py          which format an input is (magic bytes, extension, first lines)
    stream.py          an input as bytes: files or stdin, decompressed by magic bytes
    batch.py           the Batch type; prefetch (read-ahead in a thread)
    libsvm.py          libsvm/svmlight text (parsed in kernels/libsvm.py)
    parquet_sparse.py  sparse Parquet (label, indices, values): read, and written by convert
    wide.py            wide Parquet and CSV/TSV tables, hashed column=value features
    arrow.py           pyarrow helpers shared by the two Parquet readers and CSV
    names.py           NameMap: slot -> column=value names of hashed tables (names.tsv)
    errors.py          how input errors are worded (file:line:col: ...)
    arrays.py          CSR arrays in memory (the scikit-learn estimator)
"""

from .arrays import iter_csr
from .batch import BATCH_ROWS, Batch, prefetch
from .detect import FORMATS, detect_format, parquet_layout
from .errors import open_data
from .libsvm import CHUNK_BYTES, iter_libsvm
from .names import NAME_MAP_ENTRIES, NameMap
from .parquet_sparse import check_parquet_path, convert_to_parquet, iter_parquet_sparse, sparse_schema
from .source import (
    check_inputs,
    check_layout,
    convert_weights,
    expand_inputs,
    input_format,
    input_ids,
    input_layout,
    open_batches,
    record_schema,
    validation_config,
)
from .stream import InputStream, display_name
from .wide import NUMERIC_AS, iter_tabular

__all__ = [
    "iter_csr", "BATCH_ROWS", "Batch", "prefetch", "CHUNK_BYTES", "iter_libsvm", "NAME_MAP_ENTRIES", "NameMap",
    "convert_to_parquet", "iter_parquet_sparse", "sparse_schema", "FORMATS", "InputStream",
    "check_inputs", "detect_format", "display_name", "expand_inputs", "input_format", "input_ids",
    "open_batches", "check_layout", "check_parquet_path", "convert_weights", "input_layout", "record_schema",
    "validation_config", "open_data", "parquet_layout", "NUMERIC_AS", "iter_tabular",
]
