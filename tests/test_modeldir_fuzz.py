"""Fuzzing the model directory: mutate a real one, then every command must stay well-behaved.

A few real model directories are built once (a finished online model; a resumed one with two
finished checkpoints; one whose run on more data was killed after two pending checkpoints; a
wide-CSV model with names.tsv). Each example copies one into a fresh directory DIR inside a
parent directory that also holds a sentinel file (victim.txt) and a sibling directory, applies
1-4 mutations drawn by hypothesis (files removed, truncated, bit-flipped, swapped, replaced by
symlinks, FIFOs or directories; symlinks planted where a run will write; manifest.json,
config.json, names.tsv and checkpoint members rewritten, with the checkpoint's sha256 forged in
the manifest so that the loader gets past the checksum), then runs, as real
`python -m ftrl_cli` processes with a timeout (a hang fails) and a memory cap:

    predict, eval, export, inspect --json     (read-only: in parallel)
    train DATA --resume -q                    (last; DATA continues the run as it stands, or
                                               is new data for the resumed and wide models)
    predict again, when train committed a new model

and asserts, for each:
- the exit code is 0, 1, 2 or 3: never 70 (internal error), never a signal;
- on failure stderr is exactly one line, `ftrl: error: ...` (README "Exit codes": "Errors are
  one line on stderr"). Decision: warnings (`ftrl: warning: ...` lines, e.g. hashed-id
  collisions) are allowed only on success, where every stderr line must be one; a failure
  prints its error line alone. A "Traceback" is never allowed; neither is running out of
  memory (MEMORY) on a model of a few kB;
- on success the output is what the command promises (one number per row for predict; a
  log loss for eval; export ends with the bias line; inspect --json is a JSON object), and a
  train that succeeded and committed a new model (the manifest's newest finished checkpoint
  changed) leaves a model that predict serves ("a model is replaced only by a complete one");
- nothing outside DIR was written or removed: the sentinel's bytes, inode and mtime, the
  parent's listing (except DIR; a dangling link's target must not be created), the sibling
  directory's files; the targets of DIR's symlinks are not written through; and files ftrl
  did not write inside DIR (inner.txt in a directory put in place of one of ftrl's files)
  are left alone.

Which exit code a given damage gets (1, 2 or 3) is not asserted: only that it is one of them.

Budget: FTRL_FUZZ_EXAMPLES examples (default 16: ~75 s for the file on 2 cores, ~11 s of it
building the models; an example runs 5-6 processes of ~1 s start-up, ~4 s in all). In CI the
examples are derandomized and not shrunk, so that a run is reproducible and a hanging example
is not re-run dozens of times. Above 50 examples (`make fuzz` runs 300) they are random and a
failure is shrunk:

    FTRL_FUZZ_EXAMPLES=300 .venv/bin/python -m pytest -q tests/test_modeldir_fuzz.py

FTRL_FUZZ_TIMEOUT (default 30 s) bounds each command. FTRL_FUZZ_LOG=FILE appends one JSON
line per example (mutations, exit codes, first stderr line) for triage.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import io
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from ftrl_cli import api, checkpoint

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TRAIN = str(ROOT / "sample_data" / "agaricus.txt.train")
TEST = str(ROOT / "sample_data" / "agaricus.txt.test")
CSV = str(HERE / "data" / "ctr" / "avazu_train_head1000.csv")
CSV_FLAGS = ["--label", "click", "--ignore", "id", "--bits", "16"]

EXAMPLES = int(os.environ.get("FTRL_FUZZ_EXAMPLES", "16"))
TIMEOUT = float(os.environ.get("FTRL_FUZZ_TIMEOUT", "30"))
LOG = os.environ.get("FTRL_FUZZ_LOG")
LONG = EXAMPLES > 50  # `make fuzz`: explore (random seeds) and shrink what fails

_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "modeldir-ci", max_examples=EXAMPLES, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=_HEALTH,
    # no shrinking in CI: a hanging example would be re-run (TIMEOUT each) dozens of times
    phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.register_profile(
    "modeldir-long", max_examples=EXAMPLES, deadline=None, derandomize=False, print_blob=True,
    suppress_health_check=_HEALTH)
FUZZ = settings(settings.get_profile("modeldir-long" if LONG else "modeldir-ci"))


# ---------------------------------------------------------------------------------------
# the model directories
# ---------------------------------------------------------------------------------------

MEMORY = 3 << 30  # address space of each command: far more than these tiny models need


def ftrl(args, cwd=None, timeout=TIMEOUT):
    """(exit code, stdout bytes, stderr text) of `python -m ftrl_cli ARGS`; None on a hang.
    Its address space is capped (MEMORY): a command that reads without bound (a link to
    /dev/zero) fails with "out of memory" instead of taking the machine down."""
    env = {k: v for k, v in os.environ.items() if k != "FTRL_DEBUG"}
    proc = subprocess.Popen([sys.executable, "-m", "ftrl_cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    with contextlib.suppress(OSError):  # (before the interpreter has even started)
        resource.prlimit(proc.pid, resource.RLIMIT_AS, (MEMORY, MEMORY))
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return proc.returncode, out, err.decode("utf-8", "replace")


class Crash(Exception):
    pass


class Quiet(dict):
    """A dict whose repr is short (hypothesis prints the test's arguments)."""

    def __repr__(self):
        return f"<{', '.join(map(str, self))}>"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (directory, data predict and eval read, data train --resume may read: the
    first one continues the run as it stands, a second one is a run on new data)."""
    base = tmp_path_factory.mktemp("modeldir-fuzz-models")
    out = {}
    d = base / "online"
    api.train([TRAIN], d)
    out["online"] = (d, TEST, [TEST])
    d = base / "resumed"
    api.train([TRAIN], d)
    api.train([TEST], d, resume=True)
    out["resumed"] = (d, TEST, [TEST, TRAIN])  # (TEST: already trained on it, nothing to do)
    # a finished model, then a run on TEST killed after its second pending checkpoint
    d = base / "killed"
    api.train([TRAIN], d)
    real, calls = checkpoint.save, []

    def dying(*a, **k):
        calls.append(real(*a, **k))
        if len(calls) == 2:
            raise Crash

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint, "save", dying)
        with pytest.raises(Crash):
            api.train([TEST], d, resume=True, overrides={"checkpoint_every": 500})
    assert len(json.loads((d / "manifest.json").read_text())["pending"]["checkpoints"]) == 2
    out["killed"] = (d, TEST, [TEST])
    d = base / "wide"
    r = ftrl(["train", CSV, "-m", d, *CSV_FLAGS, "-q"], timeout=300)
    assert r is not None and r[0] == 0, r
    assert (d / "names.tsv").exists()
    half = base / "avazu_head500.csv"
    half.write_bytes(b"".join(Path(CSV).read_bytes().splitlines(keepends=True)[:501]))
    out["wide"] = (d, CSV, [CSV, str(half)])  # (CSV: nothing to do)
    # Unmutated, every command succeeds (else the fuzzer would test nothing). The first
    # model's run one at a time, so that Numba's cache of every kernel is warm before the
    # timed, parallel runs; then the others.
    runs = [(name, args) for name, (d, datafile, _) in out.items()
            for args in (["predict", "-m", d, datafile, "-q"], ["eval", "-m", d, datafile, "-q"],
                         ["export", "-m", d], ["inspect", "-m", d, "--json"])]
    for name, args in runs[:4]:
        r = ftrl(args, timeout=600)
        assert r is not None and r[0] == 0 and not check_run(args[0], r), (name, args[0], r)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for (name, args), r in zip(runs[4:], pool.map(lambda a: ftrl(a[1], timeout=600), runs[4:])):
            assert r is not None and r[0] == 0 and not check_run(args[0], r), (name, args[0], r)
    for d, _, _ in out.values():  # (a run leaves its .lock: it is fuzzed too)
        assert (d / "manifest.json").exists() and (d / ".lock").exists()
    return Quiet(out)


def rows(data):
    return 1000 if data == CSV else sum(1 for _ in open(data, "rb"))


# ---------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------

def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def is_reg(p) -> bool:
    try:
        return stat.S_ISREG(os.lstat(p).st_mode)
    except OSError:
        return False


def remove_any(p) -> None:
    if os.path.isdir(p) and not os.path.islink(p):
        shutil.rmtree(p)
    elif os.path.lexists(p):
        os.unlink(p)


def read_regular(p):
    """The bytes of p if it is a regular file (never through a link, a FIFO or a device:
    the test itself must not hang or read /dev/zero), else None."""
    return Path(p).read_bytes() if is_reg(p) else None


def read_manifest(d):
    try:
        m = json.loads(read_regular(d / "manifest.json") or b"")
    except (OSError, ValueError, RecursionError):
        return None
    return m if isinstance(m, dict) else None


def write_manifest(d, m) -> None:
    p = d / "manifest.json"
    remove_any(p)
    p.write_bytes(m if isinstance(m, bytes) else json.dumps(m, indent=1).encode())


def entry_lists(m):
    """The checkpoint-entry lists of a manifest that are lists (finished, pending)."""
    out = []
    if isinstance(m.get("checkpoints"), list):
        out.append(m["checkpoints"])
    p = m.get("pending")
    if isinstance(p, dict) and isinstance(p.get("checkpoints"), list):
        out.append(p["checkpoints"])
    return out


def named_checkpoints(d):
    m = read_manifest(d)
    if m is None:
        return []
    return sorted({e["file"] for lst in entry_lists(m) for e in lst
                   if isinstance(e, dict) and isinstance(e.get("file"), str) and "/" not in e["file"]
                   and is_reg(d / e["file"])})


def served_model(d):
    """(file, sha256) of the newest finished checkpoint the manifest names, or None."""
    m = read_manifest(d)
    fin = m.get("checkpoints") if m is not None else None
    if not isinstance(fin, list) or not fin or not isinstance(fin[-1], dict):
        return None
    return str(fin[-1].get("file")), str(fin[-1].get("sha256"))


def forge(d, name, data: bytes) -> None:
    """Write checkpoint `name` and make every manifest entry naming it match its sha256."""
    p = d / name
    remove_any(p)
    p.write_bytes(data)
    m = read_manifest(d)
    if m is None:
        return
    for lst in entry_lists(m):
        for e in lst:
            if isinstance(e, dict) and e.get("file") == name:
                e["sha256"], e["bytes"] = sha(data), len(data)
    write_manifest(d, m)


def deep(n: int, open_="[", close="]") -> str:
    return open_ * n + close * n


BIG_INT = "9" * 5000

# ---- JSON edits shared by config.json, a checkpoint's settings and pending.config ----

CONFIG_EDITS = [
    ("unknown key", lambda c: {**c, "learning_rate": 3}),
    ("bits 99", lambda c: {**c, "bits": 99}),
    ("bits '16'", lambda c: {**c, "bits": "16"}),
    ("bits 4", lambda c: {**c, "bits": 4}),
    ("bits true", lambda c: {**c, "bits": True}),
    ("bits 2**70", lambda c: {**c, "bits": 2**70}),
    ("dtype float32", lambda c: {**c, "dtype": "float32"}),
    ("dtype float16", lambda c: {**c, "dtype": "float16"}),
    ("batch_size 8", lambda c: {**c, "batch_size": 8}),
    ("batch_size 0", lambda c: {**c, "batch_size": 0}),
    ("optimizer novograd", lambda c: {**c, "optimizer": "novograd", "update": "dense"}),
    ("alpha 'x'", lambda c: {**c, "alpha": "x"}),
    ("alpha -1", lambda c: {**c, "alpha": -1}),
    ("alpha 1e400", lambda c: {**c, "alpha": float("inf")}),
    ("alpha NaN", lambda c: {**c, "alpha": float("nan")}),
    ("passes 0", lambda c: {**c, "passes": 0}),
    ("passes 3", lambda c: {**c, "passes": 3}),
    ("keep_checkpoints 0", lambda c: {**c, "keep_checkpoints": 0}),
    ("keep_checkpoints 1", lambda c: {**c, "keep_checkpoints": 1}),
    ("checkpoint_every 100", lambda c: {**c, "checkpoint_every": 100}),
    ("checkpoint_every -1", lambda c: {**c, "checkpoint_every": -1}),
    ("kind other", lambda c: {**c, "kind": "other"}),
    ("no kind", lambda c: {k: v for k, v in c.items() if k != "kind"}),
    ("format_version 2", lambda c: {**c, "format_version": 2}),
    ("format_version '1'", lambda c: {**c, "format_version": "1"}),
    ("empty object", lambda c: {}),
    ("a list", lambda c: []),
    ("a string", lambda c: "ftrl-config"),
    ("null", lambda c: None),
    ("ignore [5]", lambda c: {**c, "ignore": [5]}),
    ("ignore [null, {}]", lambda c: {**c, "ignore": [None, {}]}),
    ("ignore 'id'", lambda c: {**c, "ignore": "id"}),
    ("columns [1, null]", lambda c: {**c, "columns": [1, None], "header": False}),
    ("categorical ['*', 3]", lambda c: {**c, "categorical": ["*", 3]}),
    ("numeric [[]]", lambda c: {**c, "numeric": [[]]}),
    ("interactions ['ab']", lambda c: {**c, "interactions": ["ab"]}),
    ("interactions [[1, 2]]", lambda c: {**c, "interactions": [[1, 2]]}),
    ("interactions [['C1']]", lambda c: {**c, "interactions": [["C1"]]}),
    ("interactions [['C1', 'zz']]", lambda c: {**c, "interactions": [["C1", "zz"]]}),
    ("label_column 5", lambda c: {**c, "label_column": 5}),
    ("label_column missing", lambda c: {**c, "label_column": "no-such-column"}),
    ("format csv", lambda c: {**c, "format": "csv"}),
    ("format parquet", lambda c: {**c, "format": "parquet"}),
    ("format libsvm", lambda c: {**c, "format": "libsvm"}),
    ("header false", lambda c: {**c, "header": False}),
    ("class_weight [1]", lambda c: {**c, "class_weight": [1]}),
    ("class_weight ['a', 'b']", lambda c: {**c, "class_weight": ["a", "b"]}),
    ("learning_rate_schedule {}", lambda c: {**c, "learning_rate_schedule": {}}),
    ("learning_rate_schedule bad", lambda c: {**c, "learning_rate_schedule": {
        "class_name": "ExponentialDecay", "config": {"initial_learning_rate": "x"}}}),
    ("validation victim", lambda c: {**c, "validation": "../victim.txt"}),
    ("validation missing", lambda c: {**c, "validation": "/nonexistent/ftrl-fuzz.svm"}),
    ("early_stop without validation", lambda c: {**c, "early_stop": 2}),
    ("holdout_every 2", lambda c: {**c, "holdout_every": 2, "validation": None}),
    ("seed -1 shuffle", lambda c: {**c, "seed": -1, "shuffle": True}),
    ("max_bad_lines 'x'", lambda c: {**c, "max_bad_lines": "x"}),
    ("on_bad_line skip", lambda c: {**c, "on_bad_line": "skip"}),
]
CONFIG_TEXT_EDITS = [
    ("not JSON", b"{not json"),
    ("binary", b"\xff\xfe\x00garbage"),
    ("empty", b""),
    ("deeply nested", ('{"kind": "ftrl-config", "x": ' + deep(100000) + "}").encode()),
    ("nested 40", ('{"kind": "ftrl-config", "learning_rate_schedule": ' + deep(40, "[", "]") + "}").encode()),
    ("5000-digit int", ('{"kind": "ftrl-config", "bits": ' + BIG_INT + "}").encode()),
    ("NaN literal", b'{"kind": "ftrl-config", "alpha": NaN}'),
    ("BOM", b"\xef\xbb\xbf{}"),
]


def config_edit(c, data, what):
    """A config dict (or text) edited as drawn: (label, dict-or-bytes)."""
    if data.draw(st.booleans(), label=f"{what}: text edit"):
        label, text = data.draw(st.sampled_from(CONFIG_TEXT_EDITS), label=f"{what} text")
        return label, text
    label, fn = data.draw(st.sampled_from(CONFIG_EDITS), label=f"{what} edit")
    return label, fn(c if isinstance(c, dict) else {})


# ---- the manifest ----

def _entry_edit(m, data):
    lists = entry_lists(m)
    if not lists:
        return "no entry list"
    lst = data.draw(st.sampled_from(lists), label="entry list")
    if not lst:
        lst.append({"seq": 99, "file": "ckpt-000099.npz", "sha256": "0" * 64})
        return "a missing checkpoint added"
    i = data.draw(st.integers(0, len(lst) - 1), label="entry")
    e = lst[i]
    if not isinstance(e, dict):
        lst[i] = {}
        return "entry -> {}"
    field = data.draw(st.sampled_from(["seq", "file", "sha256", "examples_seen", "finished", "bytes", "extra"]),
                      label="entry field")
    values = {
        "seq": ["1", 1.5, True, None, -1, 0, 10**30, 2**63, "delete"],
        "file": ["../victim.txt", "/dev/zero", "ckpt-000001.npz/..", "best.npz", "manifest.json", "ckpt-1.npz",
                 "ckpt-999999.npz", "ckpt-000001.npz\n", "", "names.tsv", ".lock", "delete"]
        + sorted({x.get("file") for x in lst if isinstance(x, dict) and isinstance(x.get("file"), str)}),
        "sha256": [5, None, "0" * 64, "", str(e.get("sha256", "")).upper(), [], "delete"],
        "examples_seen": ["x", None, -1, [], 10**30, "delete"],
        "finished": ["yes", None, False, True, "delete"],
        "bytes": [-1, "x", 0],
        "extra": [1, None, {"x": []}],
    }[field]
    v = data.draw(st.sampled_from(values), label=f"entry {field}")
    if v == "delete":
        e.pop(field, None)
    elif field == "extra":
        e["extra"] = v
    else:
        e[field] = v
    return f"entry {i}: {field} -> {v!r}"


def _list_edit(m, data):
    fin = m.get("checkpoints") if isinstance(m.get("checkpoints"), list) else []
    pend = m.get("pending") if isinstance(m.get("pending"), dict) else None
    pend_list = pend.get("checkpoints") if pend is not None and isinstance(pend.get("checkpoints"), list) else []
    how = data.draw(st.sampled_from(["duplicate", "reverse", "oldest only", "empty", "missing file", "non-dict",
                                     "pending served", "finished as pending", "same file twice"]), label="list edit")
    if how == "duplicate" and fin:
        fin.append(dict(fin[-1]))
    elif how == "reverse":
        fin.reverse()
    elif how == "oldest only":
        del fin[1:]
    elif how == "empty":
        fin.clear()
    elif how == "missing file":
        fin.append({"seq": 99, "file": "ckpt-000099.npz", "sha256": "0" * 64, "finished": True})
    elif how == "non-dict":
        fin.append(data.draw(st.sampled_from([5, "ckpt-000001.npz", None, []]), label="non-dict entry"))
    elif how == "pending served":
        fin.extend(dict(e) for e in pend_list)
    elif how == "finished as pending":
        m["pending"] = {**(pend or {"config": {}}), "checkpoints": [dict(e) for e in fin]}
    elif how == "same file twice" and fin:
        e = fin[-1]
        m["pending"] = {**(pend or {"config": {}}), "checkpoints": [{**e, "seq": 1000, "finished": False}]}
    m["checkpoints"] = fin
    return how


def _pending_edit(m, data, cfg):
    fin = m.get("checkpoints") if isinstance(m.get("checkpoints"), list) else []
    choices = [
        ("[]", lambda: []),
        ("{config: []}", lambda: {"config": []}),
        ("{config: {}, checkpoints: 3}", lambda: {"config": {}, "checkpoints": 3}),
        ("{config: {}}", lambda: {"config": {}}),
        ("own config", lambda: {"config": cfg}),
        ("own config, replaces", lambda: {"config": cfg, "replaces": True, "checkpoints": []}),
        ("own config, replaces 'no'", lambda: {"config": cfg, "replaces": "no"}),
        ("own config, finished checkpoints", lambda: {"config": cfg, "checkpoints": [dict(e) for e in fin]}),
        ("5", lambda: 5),
        ("'x'", lambda: "x"),
        ("deleted", lambda: "delete"),
        ("edited config", None),
    ]
    label, fn = data.draw(st.sampled_from(choices), label="pending")
    if fn is None:
        p = m.get("pending") if isinstance(m.get("pending"), dict) else {"config": cfg}
        base = p.get("config") if isinstance(p.get("config"), dict) else cfg
        clabel, new = config_edit(base, data, "pending.config")
        if isinstance(new, bytes):  # (text edits do not apply inside the manifest)
            new = {"kind": "ftrl-config", "x": json.loads("[" * 40 + "]" * 40)}
            clabel = "config nested 41"
        m["pending"] = {**p, "config": new}
        return f"pending.config: {clabel}"
    v = fn()
    if v == "delete":
        m.pop("pending", None)
    else:
        m["pending"] = v
    return f"pending -> {label}"


def manifest_edit(d, data, ctx):
    """A manifest.json edit: a field retyped or deleted, entries edited, or new text."""
    m = read_manifest(d)
    kinds = ["format_version", "format", "checkpoints", "entry", "list", "pending", "best", "text"]
    kind = data.draw(st.sampled_from(kinds if m is not None else ["text"]), label="manifest edit")
    if kind == "text":
        label, text = data.draw(st.sampled_from([
            ("[]", b"[]"), ("null", b"null"), ("a string", b'"ftrl-model"'), ("binary", b"\xff\xfe\x00"),
            ("empty", b""), ("BOM", b"\xef\xbb\xbf" + (d / "manifest.json").read_bytes()
                                 if is_reg(d / "manifest.json") else b"\xef\xbb\xbf{}"),
            ("deeply nested", ('{"format": "ftrl-model", "format_version": 2, "checkpoints": [], "x": '
                               + deep(100000) + "}").encode()),
            ("nested entry", ('{"format": "ftrl-model", "format_version": 2, "checkpoints": ['
                              + '{"a":' * 3000 + "{}" + "}" * 3000 + "]}").encode()),
            ("5000-digit version", ('{"format": "ftrl-model", "format_version": ' + BIG_INT
                                    + ', "checkpoints": []}').encode()),
            ("5000-digit seq", ('{"format": "ftrl-model", "format_version": 2, "checkpoints": [{"seq": '
                                + BIG_INT + ', "file": "ckpt-000001.npz", "sha256": "0"}]}').encode()),
            ("seq 1e999", b'{"format": "ftrl-model", "format_version": 2, "checkpoints": [{"seq": 1e999, '
                          b'"file": "ckpt-000001.npz", "sha256": "0"}]}'),
            ("NaN version", b'{"format": "ftrl-model", "format_version": NaN, "checkpoints": []}'),
            ("duplicate keys", b'{"format": "ftrl-model", "format_version": 2, "checkpoints": [], '
                               b'"checkpoints": 5}'),
        ]), label="manifest text")
        write_manifest(d, text)
        return f"manifest text: {label}"
    cfg = ctx["config"]
    if kind == "format_version":
        v = data.draw(st.sampled_from(["1", None, 99, [], 0, -1, True, 1.0, 2**64, 1, "delete"]),
                      label="format_version")
        if v == "delete":
            m.pop("format_version", None)
        else:
            m["format_version"] = v
        label = f"format_version -> {v!r}"
    elif kind == "format":
        v = data.draw(st.sampled_from(["their-tool", None, 5, "delete"]), label="format")
        if v == "delete":
            m.pop("format", None)
        else:
            m["format"] = v
        label = f"format -> {v!r}"
    elif kind == "checkpoints":
        v = data.draw(st.sampled_from([{}, [], ["x"], None, 5, "ckpt-000001.npz", [{"seq": "1"}], "delete",
                                       [{"seq": 1, "file": "../victim.txt", "sha256": sha(b"precious\n")}],
                                       [{"seq": 1, "file": "/dev/zero", "sha256": "0" * 64}],
                                       [{"seq": 1, "file": "ckpt-000001.npz/..", "sha256": "0" * 64}],
                                       [{"seq": 1, "file": "ckpt-000001.npz", "sha256": 5}]]),
                      label="checkpoints")
        if v == "delete":
            m.pop("checkpoints", None)
        else:
            m["checkpoints"] = v
        label = f"checkpoints -> {v!r}"
    elif kind == "entry":
        label = _entry_edit(m, data)
    elif kind == "list":
        label = "checkpoints list: " + _list_edit(m, data)
    elif kind == "pending":
        label = _pending_edit(m, data, cfg)
    else:
        fin = m.get("checkpoints") if isinstance(m.get("checkpoints"), list) else []
        v = data.draw(st.sampled_from([
            {"file": "../victim.txt"}, {"file": "best.npz"}, {"file": "best.npz", "sha256": 5}, 5, [], None,
            {"file": "ckpt-000001.npz"}, {"file": "/dev/zero", "sha256": "0" * 64}, "best-from-newest"]),
            label="best")
        if v == "best-from-newest":  # a real best.npz: the newest finished checkpoint's copy
            e = fin[-1] if fin and isinstance(fin[-1], dict) else {}
            src = d / str(e.get("file", ""))
            if e.get("file") and is_reg(src):
                remove_any(d / "best.npz")
                shutil.copyfile(src, d / "best.npz")
                v = {"file": "best.npz", "sha256": sha((d / "best.npz").read_bytes()), "metric": "logloss",
                     "value": 0.1, "pass": 1, "examples": 10}
            else:
                v = {"file": "best.npz"}
        m["best"] = v
        label = f"best -> {v!r}"
    write_manifest(d, m)
    return label


# ---- checkpoint members ----

META_EDITS = [
    ("[]", lambda t: b"[]"),
    ("{}", lambda t: b"{}"),
    ("null", lambda t: b"null"),
    ("no run", lambda t: json.dumps({k: v for k, v in t.items() if k != "run"}).encode()),
    ("run []", lambda t: json.dumps({**t, "run": []}).encode()),
    ("run null", lambda t: json.dumps({**t, "run": None}).encode()),
    ("run.inputs 5", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "inputs": 5}}).encode()),
    ("run.inputs [5]", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "inputs": [5]}}).encode()),
    ("run.inputs [{}]", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "inputs": [{}]}}).encode()),
    ("run.inputs path 5", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "inputs": [
        {**x, "path": 5} for x in t.get("run", {}).get("inputs", [])]}}).encode()),
    ("run.inputs path victim", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "inputs": [
        {**x, "path": "../victim.txt"} for x in t.get("run", {}).get("inputs", [])]}}).encode()),
    ("run.inputs size 'x'", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "inputs": [
        {**x, "size": "x"} for x in t.get("run", {}).get("inputs", [])]}}).encode()),
    ("run.pass 'x'", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "pass": "x"}}).encode()),
    ("run.pass 5", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "pass": 5}}).encode()),
    ("run.passes 0", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "passes": 0}}).encode()),
    ("run.file 99", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "file": 99}}).encode()),
    ("run.file -1", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "file": -1}}).encode()),
    ("run.offset -5", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "offset": -5}}).encode()),
    ("run.offset 10**12", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "offset": 10**12}}).encode()),
    ("run.offset 7", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "offset": 7}}).encode()),
    ("run.offset 2**70", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "offset": 2**70}}).encode()),
    ("run.line 'x'", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "line": "x"}}).encode()),
    ("run.loss_sum 'x'", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "loss_sum": "x"}}).encode()),
    ("run.unknown", lambda t: json.dumps({**t, "run": {**t.get("run", {}), "zz": 1}}).encode()),
    ("examples_seen 'x'", lambda t: json.dumps({**t, "examples_seen": "x"}).encode()),
    ("examples_seen -1", lambda t: json.dumps({**t, "examples_seen": -1}).encode()),
    ("passes_done 'x'", lambda t: json.dumps({**t, "passes_done": "x"}).encode()),
    ("history [1]", lambda t: json.dumps({**t, "history": [1]}).encode()),
    ("history [{}]", lambda t: json.dumps({**t, "history": [{}]}).encode()),
    ("history 'x'", lambda t: json.dumps({**t, "history": "x"}).encode()),
    ("history logloss 'x'", lambda t: json.dumps({**t, "history": [
        {**h, "logloss": "x"} for h in t.get("history", [])]}).encode()),
    ("curve [[]]", lambda t: json.dumps({**t, "curve": [[]]}).encode()),
    ("curve 5", lambda t: json.dumps({**t, "curve": 5}).encode()),
    ("evals [{}]", lambda t: json.dumps({**t, "evals": [{}]}).encode()),
    ("best []", lambda t: json.dumps({**t, "best": []}).encode()),
    ("best {}", lambda t: json.dumps({**t, "best": {}}).encode()),
    ("kept 5", lambda t: json.dumps({**t, "kept": 5}).encode()),
    ("estimator []", lambda t: json.dumps({**t, "estimator": []}).encode()),
    ("finished 'yes'", lambda t: json.dumps({**t, "finished": "yes"}).encode()),
    ("finished flipped", lambda t: json.dumps({**t, "finished": not t.get("finished", True)}).encode()),
    ("unknown key", lambda t: json.dumps({**t, "zz": 1}).encode()),
    ("deeply nested", lambda t: ('{"history": ' + deep(100000) + "}").encode()),
    ("5000-digit int", lambda t: ('{"examples_seen": ' + BIG_INT + "}").encode()),
    ("invalid UTF-8", lambda t: b"\xff\xfe{}"),
    ("NaN", lambda t: b'{"examples_seen": NaN}'),
]


def member_variants(arrays, cfg):
    """(label, new value or None to delete) for each checkpoint member."""
    stt = arrays.get("st")
    size = stt.shape[0] if isinstance(stt, np.ndarray) and stt.ndim == 2 else 1
    k = stt.shape[1] if isinstance(stt, np.ndarray) and stt.ndim == 2 else 2
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = {"a": 1}, None
    common = [("object array", obj), ("deleted", None), ("0-d", np.float64(1.5)), ("string", np.array(["x"])),
              ("empty", np.zeros(0)), ("3-d", np.zeros((2, 2, 2))), ("complex", np.zeros(4, np.complex128))]
    return {
        "st": common + [("float32", np.zeros((size, k), np.float32)), ("K+1 columns", np.zeros((size, k + 1))),
                        ("3 rows", np.zeros((3, k))), ("0 rows", np.zeros((0, k))),
                        ("NaN", np.full((size, k), np.nan)), ("inf", np.full((size, k), np.inf)),
                        ("2**17 rows", np.zeros((1 << 17, k))), ("transposed", np.zeros((k, size))),
                        ("int64", np.zeros((size, k), np.int64)), ("fortran", np.asfortranarray(np.zeros((size, k))))],
        "bst": common + [("NaN", np.full(k, np.nan)), ("K+1", np.zeros(k + 1)), ("float32", np.zeros(k, np.float32))],
        "ls": common + [("NaN", np.full(4, np.nan)), ("5", np.zeros(5)), ("int", np.zeros(4, np.int64))],
        "alias": common + [("slot = size", np.array([[size, 5]], np.int64)), ("slot -1", np.array([[-1, 5]], np.int64)),
                           ("id -1", np.array([[0, -1]], np.int64)), ("id 2**63-1", np.array([[0, 2**63 - 1]], np.int64)),
                           ("(1, 3)", np.zeros((1, 3), np.int64)), ("float", np.zeros((1, 2))),
                           ("uint64 max", np.array([[0, 2**64 - 1]], np.uint64)),
                           ("many", np.stack([np.arange(size), np.arange(size) + (1 << 40)], 1).astype(np.int64))],
        "iterations": common + [("NaN", np.array([np.nan])), ("-1", np.array([-1], np.int64)),
                                ("2**63-1", np.array([2**63 - 1], np.int64)), ("[1, 2]", np.array([1, 2], np.int64)),
                                ("1.5", np.array([1.5])), ("uint64 max", np.array([2**64 - 1], np.uint64)),
                                ("bool", np.array([True]))],
        "meta": common + [(f"meta {label}", fn) for label, fn in META_EDITS],
        "config": common + [(f"config {label}", ("config", fn)) for label, fn in CONFIG_EDITS]
        + [(f"config {label}", ("text", text)) for label, text in CONFIG_TEXT_EDITS],
        "extra": [("extra member", np.zeros(3)), ("extra object member", obj)],
    }


def npz_bytes(arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def checkpoint_edit(d, data, ctx):
    """A checkpoint rewritten with its sha256 forged in the manifest: a member replaced, or
    the whole file replaced by something else."""
    names = named_checkpoints(d)
    if not names:
        return "no named checkpoint"
    name = data.draw(st.sampled_from(names), label="checkpoint")
    p = d / name
    whole = data.draw(st.sampled_from(["member", "npy", "garbage", "empty", "zip of text", "other model's",
                                       "pickled npy", "text"]), label="checkpoint edit")
    if whole == "npy":
        buf = io.BytesIO()
        np.save(buf, np.zeros((128, 2)))
        forge(d, name, buf.getvalue())
        return f"{name}: a .npy (sha forged)"
    if whole == "pickled npy":
        buf = io.BytesIO()
        obj = np.empty(1, dtype=object)
        obj[0] = {"x": 1}
        np.save(buf, obj, allow_pickle=True)
        forge(d, name, buf.getvalue())
        return f"{name}: a pickled .npy (sha forged)"
    if whole == "garbage":
        forge(d, name, data.draw(st.binary(max_size=64), label="garbage"))
        return f"{name}: garbage (sha forged)"
    if whole == "empty":
        forge(d, name, b"")
        return f"{name}: empty (sha forged)"
    if whole == "text":
        forge(d, name, b"1 3:1 5:1\n")
        return f"{name}: libsvm text (sha forged)"
    if whole == "zip of text":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("st.npy", b"not an array")
            z.writestr("readme.txt", b"hello")
        forge(d, name, buf.getvalue())
        return f"{name}: a zip of text (sha forged)"
    if whole == "other model's":
        other = data.draw(st.sampled_from(sorted(ctx["others"])), label="other model")
        forge(d, name, ctx["others"][other])
        return f"{name}: {other}'s newest checkpoint (sha forged)"
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception:  # (an earlier mutation damaged it)
        return f"{name}: unreadable, left as it is"
    try:
        meta = json.loads(arrays["meta"].tobytes())
    except Exception:
        meta = {}
    try:
        cfg = json.loads(arrays["config"].tobytes())
    except Exception:
        cfg = ctx["config"]
    variants = member_variants(arrays, cfg)
    member = data.draw(st.sampled_from(sorted(variants)), label="member")
    label, value = data.draw(st.sampled_from(variants[member]), label=f"{member} value")
    if member == "extra":
        member = "zz"
    if value is None:
        arrays.pop(member, None)
    elif callable(value):  # a meta edit
        value = np.frombuffer(value(meta if isinstance(meta, dict) else {}), np.uint8)
        arrays[member] = value
    elif isinstance(value, tuple):  # a config edit
        how, v = value
        text = v if how == "text" else json.dumps(v(cfg if isinstance(cfg, dict) else {})).encode()
        arrays[member] = np.frombuffer(text, np.uint8)
    else:
        arrays[member] = value
    forge(d, name, npz_bytes(arrays))
    return f"{name}: member {member} -> {label} (sha forged)"


def reforge(d, data, ctx):
    """Make every manifest entry's sha256 match its file as it now is (a damaged checkpoint
    then gets past the checksum)."""
    m = read_manifest(d)
    if m is None:
        return "reforge: no manifest"
    for lst in entry_lists(m):
        for e in lst:
            if isinstance(e, dict) and isinstance(e.get("file"), str) and "/" not in e["file"] \
                    and is_reg(d / e["file"]):
                e["sha256"] = sha((d / e["file"]).read_bytes())
    write_manifest(d, m)
    return "reforge every sha256"


NAMES_GARBAGE = [
    ("lines without tabs", b"abc\ndef\n"),
    ("non-integer slot", b"x\t1\tC1=1005\n"),
    ("float slot", b"1.5\t1\tC1=1005\n"),
    ("CR line ends", b"1\t1\tC1=1005\r\n2\t1\tC1=1002\r\n"),
    ("CR inside", b"1\t1\tC1=10\r05\n"),
    ("5000-digit slot", BIG_INT.encode() + b"\t1\tx\n"),
    ("negative slot", b"-5\t1\tC1=1005\n"),
    ("huge slot", b"1180591620717411303424\t1\tC1=1005\n"),
    ("two fields", b"1\t1\n"),
    ("empty", b""),
    ("NUL bytes", b"1\t1\t\x00\x00\n"),
    ("binary", b"\xff\xfe\x00\x01\n\x80"),
    ("bad escapes", b"1\t1\t\\\n2\t1\t\\x\n3\t1\t\\u12\n4\t1\t\\ud800\n"),
    ("surrogate escape", b"1\t1\t\\udc80\n"),
    ("duplicate slots", b"1\t1\ta\n1\t1\tb\n"),
    ("keys 'x'", b"1\tx\tC1=1005\n"),
    ("no final LF", b"1\t1\tC1=1005"),
    ("tab-only", b"\t\t\n"),
    ("underscored slot", b"1_0\t1\tC1=1005\n"),
    ("spaces", b" 1 \t1\tC1=1005\n"),
]


def names_edit(d, data, ctx):
    how = data.draw(st.sampled_from(["garbage", "append garbage", "random bytes"]), label="names.tsv edit")
    p = d / "names.tsv"
    old = p.read_bytes() if is_reg(p) else b""
    if how == "random bytes":
        new = data.draw(st.binary(max_size=200), label="names.tsv bytes")
        label = "random bytes"
    else:
        label, g = data.draw(st.sampled_from(NAMES_GARBAGE), label="names.tsv garbage")
        new = g if how == "garbage" else old + g
    remove_any(p)
    p.write_bytes(new)
    return f"names.tsv: {how} {label} ({new[:60]!r})"


# ---- byte-level and file-level mutations ----

def pick_file(d, data, what="file", regular=False):
    names = sorted(n for n in os.listdir(d) if not regular or is_reg(d / n))
    if not names:
        return None
    return data.draw(st.sampled_from(names), label=what)


def m_remove(d, data, ctx):
    n = pick_file(d, data)
    if n is None:
        return "remove: nothing"
    remove_any(d / n)
    return f"remove {n}"


def m_truncate(d, data, ctx):
    n = pick_file(d, data, regular=True)
    if n is None:
        return "truncate: nothing"
    size = (d / n).stat().st_size
    length = data.draw(st.integers(0, max(size - 1, 0)), label="length")
    with open(d / n, "r+b") as f:
        f.truncate(length)
    return f"truncate {n} to {length} of {size} bytes"


def m_flip(d, data, ctx):
    n = pick_file(d, data, regular=True)
    if n is None or (d / n).stat().st_size == 0:
        return "flip: nothing"
    b = bytearray((d / n).read_bytes())
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(b) - 1), st.integers(1, 255)), min_size=1, max_size=8),
                      label="flips")
    for i, x in flips:
        b[i] ^= x
    (d / n).write_bytes(bytes(b))
    return f"flip {n} at {flips}"


def m_swap(d, data, ctx):
    names = sorted(n for n in os.listdir(d) if is_reg(d / n))
    if len(names) < 2:
        return "swap: nothing"
    a = data.draw(st.sampled_from(names), label="swap a")
    b = data.draw(st.sampled_from([n for n in names if n != a]), label="swap b")
    ba, bb = (d / a).read_bytes(), (d / b).read_bytes()
    (d / a).write_bytes(bb)
    (d / b).write_bytes(ba)
    return f"swap {a} <-> {b}"


LINK_TARGETS = ["victim", "victim-rel", "/dev/zero", "/dev/null", "missing", "missing-rel", "sibling",
                "sibling-file", "self-loop", "another own file"]


def m_symlink(d, data, ctx):
    n = pick_file(d, data)
    if n is None:
        n = data.draw(st.sampled_from(["manifest.json", "ckpt-000001.npz", ".lock"]), label="link name")
    kind = data.draw(st.sampled_from(LINK_TARGETS), label="link target")
    parent = d.parent
    if kind == "another own file":
        others = sorted(x for x in os.listdir(d) if x != n)
        target = data.draw(st.sampled_from(others), label="own target") if others else "manifest.json"
    else:
        target = {"victim": str(parent / "victim.txt"), "victim-rel": "../victim.txt", "/dev/zero": "/dev/zero",
                  "/dev/null": "/dev/null", "missing": str(parent / "missing-target"),
                  "missing-rel": "../missing-target", "sibling": str(parent / "sibling"),
                  "sibling-file": str(parent / "sibling" / "keep.txt"), "self-loop": n}[kind]
    remove_any(d / n)
    os.symlink(target, d / n)
    return f"{n} -> symlink to {target}"


def m_fifo(d, data, ctx):
    n = pick_file(d, data) or "manifest.json"
    remove_any(d / n)
    os.mkfifo(d / n)
    return f"{n} -> FIFO"


def m_directory(d, data, ctx):
    n = pick_file(d, data) or "manifest.json"
    remove_any(d / n)
    (d / n).mkdir()
    (d / n / "inner.txt").write_bytes(b"not ftrl's\n")  # (must survive: ftrl did not write it)
    return f"{n} -> directory holding inner.txt"


def m_config(d, data, ctx):
    p = d / "config.json"
    try:
        c = json.loads(read_regular(p) or b"")
    except (OSError, ValueError, RecursionError):
        c = ctx["config"]
    label, new = config_edit(c, data, "config.json")
    remove_any(p)
    p.write_bytes(new if isinstance(new, bytes) else json.dumps(new, indent=2).encode())
    return f"config.json: {label}"


def m_new_file(d, data, ctx):
    """A file of one of ftrl's names that the directory does not hold."""
    n = data.draw(st.sampled_from(["ckpt-000000.npz", "ckpt-000099.npz", "best.npz", "names.tsv",
                                   ".ckpt-000005.npz.ab12cd.tmp", ".manifest.json.x9.tmp", "ckpt-1000000.npz"]),
                  label="new file")
    if os.path.lexists(d / n):
        return f"new {n}: exists"
    what = data.draw(st.sampled_from(["partial", "online's checkpoint"]), label="new file bytes")
    (d / n).write_bytes(b"partial" if what == "partial" else ctx["others"]["online"])
    return f"new file {n} ({what})"


def m_plant_link(d, data, ctx):
    """A symlink where a run will write a new file: the next checkpoint, names.tsv, best.npz,
    a temp file name."""
    m = read_manifest(d) or {}
    seqs = [e["seq"] for lst in entry_lists(m) for e in lst
            if isinstance(e, dict) and isinstance(e.get("seq"), int) and 0 <= e["seq"] < 10**6]
    nxt = f"ckpt-{max(seqs, default=0) + 1:06d}.npz"
    n = data.draw(st.sampled_from([nxt, "names.tsv", "best.npz", "ckpt-000004.npz"]), label="planted name")
    if os.path.lexists(d / n):
        return f"plant {n}: exists"
    kind = data.draw(st.sampled_from(["victim-rel", "missing", "sibling-file", "/dev/null"]), label="planted target")
    target = {"victim-rel": "../victim.txt", "missing": str(d.parent / "missing-target"),
              "sibling-file": str(d.parent / "sibling" / "keep.txt"), "/dev/null": "/dev/null"}[kind]
    os.symlink(target, d / n)
    return f"new symlink {n} -> {target}"


MUTATIONS = {
    "remove": m_remove, "truncate": m_truncate, "flip": m_flip, "swap": m_swap, "symlink": m_symlink,
    "fifo": m_fifo, "directory": m_directory, "manifest": manifest_edit, "config": m_config,
    "names": names_edit, "checkpoint": checkpoint_edit, "reforge": reforge, "new file": m_new_file,
    "planted link": m_plant_link,
}


# ---------------------------------------------------------------------------------------
# what must not change outside DIR
# ---------------------------------------------------------------------------------------

def link_targets(d) -> list:
    """Where DIR's links lead outside DIR, taken before the commands run (a command may
    replace a link with its own file, which is fine; the target must stay as it was)."""
    out = []
    real_d = os.path.realpath(d)
    for n in sorted(os.listdir(d)) if d.is_dir() else []:
        p = d / n
        if os.path.islink(p):
            target = os.path.realpath(p)
            if not (target == real_d or target.startswith(real_d + os.sep)):  # (not another of DIR's files)
                out.append((n, target))
    return out


def fingerprint_outside(parent, d, targets):
    """What the commands must leave alone: every entry of the parent but DIR (recursively,
    without following links: type, bytes, mtime), the targets of DIR's links (`targets`,
    from link_targets before the run), and the files inside directories that the mutations
    put in DIR (ftrl did not write them)."""
    def entry(p):
        s = os.lstat(p)
        if stat.S_ISLNK(s.st_mode):
            return ("link", os.readlink(p))
        if stat.S_ISDIR(s.st_mode):
            return ("dir", {n: entry(os.path.join(p, n)) for n in sorted(os.listdir(p))})
        if stat.S_ISREG(s.st_mode):
            return ("file", Path(p).read_bytes(), s.st_mtime_ns, s.st_ino)
        return ("other", stat.S_IFMT(s.st_mode))

    out = {n: entry(parent / n) for n in sorted(os.listdir(parent)) if n != d.name}
    for n, target in targets:
        out[f"DIR/{n} -> {target}"] = ("target", os.path.lexists(target) and (
            entry(target) if not target.startswith("/dev/") else "device"))
    for n in sorted(os.listdir(d)) if d.is_dir() else []:
        p = d / n
        if not os.path.islink(p) and p.is_dir():
            out[f"DIR/{n}/"] = entry(p)
    return out


# ---------------------------------------------------------------------------------------
# the property
# ---------------------------------------------------------------------------------------

def check_run(name, r, *, expect=None):
    """The well-behavedness of one command's result; returns a list of problems."""
    if r is None:
        return [f"{name}: hung (no exit within {TIMEOUT:g} s)"]
    code, out, err = r
    problems = []
    if code < 0:
        problems.append(f"{name}: killed by signal {-code}")
    elif code not in (0, 1, 2, 3):
        problems.append(f"{name}: exit {code}")
    if "Traceback" in err:
        problems.append(f"{name}: a traceback on stderr")
    if "out of memory" in err or "MemoryError" in err:
        problems.append(f"{name}: ran out of memory ({MEMORY >> 30} GiB) on a model of a few kB")
    lines = err.splitlines()
    if code != 0:
        if len(lines) != 1 or not lines[0].startswith("ftrl: error: "):
            problems.append(f"{name}: exit {code} and stderr is not one `ftrl: error:` line")
    else:
        if any(not ln.startswith("ftrl: warning: ") for ln in lines):
            problems.append(f"{name}: success with stderr lines other than `ftrl: warning:` ones")
        if expect is not None:
            problems += [f"{name}: {p}" for p in expect(out)]
    return problems


def expect_predictions(n):
    def check(out):
        lines = out.split(b"\n")
        if lines[-1] != b"" or len(lines) - 1 != n:
            return [f"printed {len(lines) - 1} lines for {n} rows"]
        try:
            [float(x) for x in lines[:-1]]
        except ValueError:
            return ["printed a line that is not a number"]
        return []
    return check


def expect_export(out):
    lines = out.decode("utf-8", "replace").split("\n")
    return [] if len(lines) >= 2 and lines[-1] == "" and lines[-2].startswith("bias\t") else [
        "export does not end with the bias line"]


def expect_inspect(out):
    try:
        ok = isinstance(json.loads(out), dict)
    except ValueError:
        ok = False
    return [] if ok else ["inspect --json printed no JSON object"]


def expect_eval(out):
    return [] if b"logloss" in out.lower() or b"log loss" in out.lower() else ["eval printed no log loss"]


def show(r, limit=300):
    if r is None:
        return "hang"
    code, out, err = r
    return f"exit {code}, stderr {err[:limit]!r}"


@pytest.fixture(scope="module")
def context(models):
    first = {}
    for name, (d, _, _) in models.items():
        m = json.loads((d / "manifest.json").read_text())
        first[name] = (d / m["checkpoints"][-1]["file"]).read_bytes()
    return Quiet(others=first, rows={data: rows(data) for _, data, _ in models.values()})


def run_example(models, context, data):
    """Draw a model and 1-4 mutations, apply them to a copy, run every command: (the
    mutations applied, {command: (exit code, stdout, stderr) or None for a hang}, problems)."""
    which = data.draw(st.sampled_from(sorted(models)), label="model")
    src, datafile, train_data = models[which]
    train_file = data.draw(st.sampled_from(train_data), label="train data")
    n_mut = data.draw(st.integers(1, 4), label="mutations")
    kinds = data.draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=n_mut, max_size=n_mut),
                      label="mutation kinds")
    parent = Path(tempfile.mkdtemp(prefix="ftrl-modeldir-fuzz-"))
    try:
        victim = parent / "victim.txt"
        victim.write_bytes(b"precious\n")
        os.utime(victim, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
        (parent / "sibling").mkdir()
        (parent / "sibling" / "keep.txt").write_bytes(b"keep me\n")
        d = parent / "m"
        shutil.copytree(src, d, symlinks=True)
        ctx = {**context, "config": json.loads((d / "config.json").read_text())}
        done = [f"model {which}, train --resume on {os.path.basename(train_file)}"]
        for kind in kinds:
            done.append(f"{kind}: {MUTATIONS[kind](d, data, ctx)}")
        note("\n".join(done))
        targets = link_targets(d)
        before = fingerprint_outside(parent, d, targets)
        n_rows = context["rows"][datafile]

        reads = {
            "predict": (["predict", "-m", d, datafile, "-q"], expect_predictions(n_rows)),
            "eval": (["eval", "-m", d, datafile, "-q"], expect_eval),
            "export": (["export", "-m", d], expect_export),
            "inspect": (["inspect", "-m", d, "--json"], expect_inspect),
        }
        with concurrent.futures.ThreadPoolExecutor(len(reads)) as pool:
            futures = {k: pool.submit(ftrl, args, parent) for k, (args, _) in reads.items()}
            results = {k: f.result() for k, f in futures.items()}
        served = served_model(d)
        results["train --resume"] = ftrl(["train", train_file, "-m", d, "--resume", "-q"], parent)
        expects = {k: e for k, (_, e) in reads.items()}
        tr = results["train --resume"]
        committed = tr is not None and tr[0] == 0 and served_model(d) != served
        if committed:  # a run that committed a new model leaves a model to serve
            results["predict after train"] = ftrl(["predict", "-m", d, datafile, "-q"], parent)
            expects["predict after train"] = expect_predictions(n_rows)
        problems = []
        for k, r in results.items():
            problems += check_run(k, r, expect=expects.get(k))
        r = results.get("predict after train")
        if r is not None and r[0] != 0:
            problems.append("predict after train --resume committed a new model: it is not servable")
        after = fingerprint_outside(parent, d, targets) if d.is_dir() else None
        if after != before:
            changed = sorted(k for k in set(before) | set(after or {})
                             if (before or {}).get(k) != (after or {}).get(k))
            problems.append(f"something outside DIR (or not ftrl's) changed: {changed}")
        if LOG:
            with open(LOG, "a") as f:
                f.write(json.dumps({"mutations": done, "results": {
                    k: (None if r is None else [r[0], r[2].splitlines()[:1]]) for k, r in results.items()},
                    "problems": problems}) + "\n")
        return done, results, problems
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(parent)


@FUZZ
@given(data=st.data())
def test_every_command_survives_a_mutated_model_directory(models, context, data):
    done, results, problems = run_example(models, context, data)
    assert not problems, "\n".join(problems + ["", *done, ""] + [f"{k}: {show(r)}" for k, r in results.items()])
