"""How input errors are worded, in one place: a path that cannot be opened, `file:line:col:
what is wrong; what to do` for libsvm text, one line naming the file for Arrow (Parquet/CSV)
errors.
"""

from __future__ import annotations

import contextlib
import os
import re

import numpy as np

from .. import kernels as K
from ..errors import ConfigError, DataError

_MESSAGES = {
    K.ERR_LABEL: "label {tok} is not a number; each line must start with a numeric label (1/0, +1/-1)",
    K.ERR_INDEX: "feature {tok} is not id:value with a non-negative integer id",
    K.ERR_NO_VALUE: "feature {tok} has no value; write id:value (e.g. 7:1)",
    K.ERR_VALUE: "feature value in {tok} is not a number",
    K.ERR_INDEX_RANGE: "feature id in {tok} is too large (ids must be < 2**62)",
    K.ERR_BYTE: "unexpected byte {byte} (only ASCII is allowed outside # comments; is this a text libsvm file?)",
    K.ERR_NO_LABEL: "line starts with the feature {tok}: the label is missing",
    K.ERR_NAN: "{what} {tok} is not a finite number",
    K.ERR_COST: "{tok}: the weight must be a number >= 0 (cost:0.5)",
}


_TOKEN = re.compile(rb"[^\s#]*")


def _token(buf: np.ndarray, pos: int, end: int) -> bytes:
    """The token at pos, shortened for messages."""
    t = _TOKEN.match(bytes(buf[pos:min(end, pos + 41)])).group(0)
    return t if len(t) <= 40 else t[:40] + b"..."


def _error(name, code, buf, err_pos, line_start, end, line_no, what="value"):
    tok = _token(buf, err_pos, end)
    msg = _MESSAGES.get(code, "cannot parse").format(
        tok=repr(tok.decode("ascii", "backslashreplace")), byte=f"0x{buf[err_pos]:02x}", what=what
    )
    col = err_pos - line_start + 1
    return DataError(f"{name}:{line_no}:{col}: {msg}")


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    s = s[0] if s else type(e).__name__
    return s if len(s) <= 300 else s[:300] + "..."


@contextlib.contextmanager
def _arrow_errors(name: str):
    """Turn pyarrow's read errors into one-line DataErrors naming the file."""
    import pyarrow as pa

    try:
        yield
    except (DataError, ConfigError):
        raise
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{name}: {_one_line(e)}") from None


def open_data(path: str):
    """open(path, "rb"), with a missing file, a directory or no permission reported as a
    one-line DataError."""
    try:
        if os.path.isdir(path):
            raise DataError(f"{path}: is a directory, not a data file")
        return open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied") from None
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror or e})") from None
