"""How input errors are worded, in one place: a path that cannot be opened, `file:line:col:
what is wrong; what to do` for libsvm text, one line naming the file for Arrow (Parquet/CSV)
errors. Every message that quotes data goes through `printable`: a terminal never receives
a control character (an ANSI escape sequence, a carriage return) from a data file.
"""

from __future__ import annotations

import contextlib
import os
import re

import numpy as np

from .. import kernels as K
from ..errors import ConfigError, DataError
from .location import is_url, open_url

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
    K.ERR_COST_TWICE: "{tok}: the line gives its weight twice (one cost:W per line)",
    K.ERR_QID: "{tok}: a query id must be an integer (qid:3)",
}


def printable(text: str) -> str:
    """text with every character that is not printable (controls such as ESC, CR, LF or
    DEL, C1 controls, format characters such as U+202E, lone surrogates) written as a Python
    escape (\\x1b, \\u202e): safe to print on a terminal, and still says which byte it was."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


_NUM = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_MULTILABEL = re.compile(_NUM + rb"(?:," + _NUM + rb")+")
_FEATURE = re.compile(rb"\d+:[^\s,#]+")


_TOKEN = re.compile(rb"[^\s#]*")


def _token(buf: np.ndarray, pos: int, end: int) -> bytes:
    """The token at pos, shortened for messages."""
    t = _TOKEN.match(bytes(buf[pos:min(end, pos + 41)])).group(0)
    return t if len(t) <= 40 else t[:40] + b"..."


def _error(name, code, buf, err_pos, line_start, end, line_no, what="value", first=False):
    """`name:line:col: message` for parse error `code` at buf[err_pos]. first: the line is
    the input's first data line (a CSV/TSV read as libsvm fails there: say so)."""
    tok = _token(buf, err_pos, end)
    shown = repr(tok.decode("ascii", "backslashreplace"))
    msg = _MESSAGES.get(code, "cannot parse").format(tok=shown, byte=f"0x{buf[err_pos]:02x}", what=what)
    line = _line_of(buf, line_start, end)
    if code == K.ERR_LABEL and _MULTILABEL.fullmatch(tok) and _has_feature(line):
        msg = (f"label {shown} is a list of labels (svmlight multilabel), which ftrl does not read: "
               "each line needs one numeric label (train one model per label)")
    elif _bare_cr(line[: err_pos - line_start + 1]):
        msg += ("; this file's lines end with CR alone (classic Mac OS), which ftrl does not read as a "
                "line end: convert it with tr '\\r' '\\n' < FILE > FILE.unix")
    elif first and code != K.ERR_BYTE:
        msg += _table_hint(line)
    col = err_pos - line_start + 1
    return DataError(printable(f"{name}:{line_no}:{col}: {msg}"))


def _line_of(buf, line_start: int, end: int) -> bytes:
    """The line that starts at buf[line_start] (up to 64 KB of it, without its end)."""
    stop = min(end, line_start + (1 << 16))
    nl = bytes(buf[line_start:stop]).find(b"\n")
    return bytes(buf[line_start:stop if nl < 0 else line_start + nl])


def _bare_cr(text: bytes) -> bool:
    """A CR followed by more of the line (not by LF, CR or a blank): CR-only line ends."""
    return re.search(rb"\r[^\r\n \t\x0b\x0c]", text) is not None


def _has_feature(line: bytes) -> bool:
    """Whether a token after the first one on the line (before any comment) is id:value."""
    return any(_FEATURE.fullmatch(t) for t in line.split(b"#", 1)[0].split()[1:])


def _table_hint(line: bytes) -> str:
    """'; is this CSV? ...' when a line read as libsvm looks like a CSV/TSV header or row:
    commas in its first field (or tabs between its fields), and no id:value feature."""
    toks = line.split(b"#", 1)[0].split()
    if not toks or _has_feature(line):
        return ""
    if b"," in toks[0]:
        return "; is this CSV? use --format csv"
    if b"\t" in line.strip():
        return "; is this TSV? use --format tsv"
    return ""


def _one_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    s = s[0] if s else type(e).__name__
    s = s if len(s) <= 300 else s[:300] + "..."
    return printable(s)


@contextlib.contextmanager
def _arrow_errors(name: str):
    """Turn pyarrow's read errors into one-line DataErrors naming the file."""
    import pyarrow as pa

    try:
        yield
    except DataError as e:
        clean = printable(str(e))
        if clean != str(e):
            raise DataError(clean) from None
        raise
    except ConfigError:
        raise
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{printable(name)}: {_one_line(e)}") from None


def open_data(path: str):
    """open(path, "rb"), with a missing file, a directory or no permission reported as a
    one-line DataError. A URL (s3://, gs://, ...) opens through fsspec."""
    if is_url(path):
        return open_url(path)
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
