"""ftrl's Numba kernels, a module per family:

    libsvm.py    libsvm/svmlight text -> CSR rows (parse_libsvm, canonicalize, comment_spans)
    ftrl.py      the optimizers over the weight table (ftrl_online, train_minibatch, NovoGrad),
                 scoring from the state (margins_state), feature id -> slot (slots_of)
    hashing.py   MurmurHash3 of tabular cells rendered as text; sparse Parquet row checks
    floatfmt.py  %.17g text output (format_g17)
    merge.py     merging the partitions' states of parallel training (merge_rows)

Kernels take plain arrays and scalars; callers validate; each kernel says what it
assumes. Each cache=True kernel lives in the same file as every helper it calls, since
Numba's file cache does not see edits to helpers in other files (tests/test_kernels_layout.py).
"""

import ast
import os
import re
import sys
from importlib import import_module

# Each family is imported on first use of one of its names (`K.parse_libsvm`,
# `from .kernels import format_g17`): importing a module creates its Numba dispatchers,
# and a command needs two or three families of five. The names are each module's
# __all__, read from its source (importing the modules to ask them would cost what the
# laziness saves; ~1 ms).


def _families() -> dict:
    here = os.path.dirname(__file__)
    out = {}
    for f in sorted(os.listdir(here)):
        if f.endswith(".py") and f != "__init__.py":
            with open(os.path.join(here, f), encoding="utf-8") as fh:
                m = re.search(r"^__all__ = (\[.*?\])", fh.read(), re.M | re.S)
            fam = f[:-3]
            out[fam] = tuple(ast.literal_eval(m.group(1)) if m else import_module(f".{fam}", __name__).__all__)
    return out


_FAMILIES = _families()
# (a name in two families, OK = 0 in hashing and libsvm: the later family's, as star imports gave)
_FAMILY_OF = {name: fam for fam, names in _FAMILIES.items() for name in names}
__all__ = [*_FAMILY_OF, "start_without_scipy", "start_for_cli"]


def __getattr__(name):
    fam = _FAMILY_OF.get(name)
    if fam is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{fam}", __name__), name)
    globals()[name] = value  # (the next look-up is a plain one)
    return value


def __dir__():
    return sorted(set(globals()) | set(_FAMILY_OF))


# --------------------------------------------------------------------------------------
# Start-up
# --------------------------------------------------------------------------------------

def start_without_scipy() -> None:
    """Load Numba's CPU target now, without letting it import scipy.linalg.

    Numba's first compile or cache load imports scipy.linalg (about 0.2 s, a quarter of a
    small run) only to learn whether np.dot may call BLAS. No kernel here does. The answer
    is kept for the whole process, so the library never calls this (a Python program may
    want Numba's linear algebra); the command line's start_for_cli does, under a Numba
    whose cache it does not know.
    """
    from numba import config

    if config.DISABLE_JIT or "numba.np.arraymath" in sys.modules:
        return  # nothing to load, or already loaded
    import numpy as np

    from .libsvm import last_newline

    blocked = [m for m in ("scipy", "scipy.linalg") if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # `import` raises ImportError
    try:
        last_newline(np.zeros(1, np.uint8), 0, 1)
    finally:
        for m in blocked:
            del sys.modules[m]


_cli_started = False


def start_for_cli() -> None:
    """The command line's start, best called before anything imports Numba. It changes the
    process in ways a library must not (a Python program may want Numba's whole target,
    its extensions, SciPy, a thorough exit), so only the command line calls it:

    - Numba is imported without SciPy and PyYAML, which it imports only to check SciPy's
      version and to read a .numba_config.yaml (PyYAML stays when the current directory
      has one).
    - A cached kernel loads without Numba's whole target. Numba's cache load first
      "refreshes" the target: it imports ~100 modules of typing and lowering code and
      probes scipy.linalg for BLAS (~0.2 s), which only compiling needs; a compiled kernel
      needs the runtime (NRT) it links to. A kernel that must be compiled (no cache yet, or
      a stale one) still gets the whole target: Numba's compiler refreshes it itself.
    - Numba does not scan the installed packages for its extensions (ftrl uses none).
    - At exit the interpreter leaves the reference cycles of Numba's and LLVM's objects to
      the operating system instead of collecting them one by one (gc.freeze; 0.1-0.2 s, a
      quarter of a small run). Every file ftrl writes is closed (and fsynced) before.
    Models and predictions do not change: the same compiled code is loaded.
    """
    global _cli_started
    if _cli_started:
        return
    _cli_started = True
    if "numba" not in sys.modules:
        skip = ["scipy"] + ([] if os.path.exists(".numba_config.yaml") else ["yaml"])
        blocked = [m for m in skip if m not in sys.modules]
        for m in blocked:
            sys.modules[m] = None  # `import` raises ImportError, which Numba expects of both
        try:
            import numba  # noqa: F401
        finally:
            for m in blocked:
                del sys.modules[m]
    import atexit
    import gc

    from numba import config
    from numba.core import caching, entrypoints
    from numba.core.runtime import nrt

    atexit.register(gc.freeze)
    if config.DISABLE_JIT:
        return
    entrypoints._already_initialized = True
    cache = caching.Cache
    if not all(hasattr(cache, a) for a in ("_load_overload", "_guard_against_spurious_io_errors")) \
            or not hasattr(nrt, "rtsys"):  # (another Numba: its usual start)
        start_without_scipy()
        return

    def load_overload(self, sig, target_context):  # Numba's, without target_context.refresh()
        nrt.rtsys.initialize(target_context)
        with self._guard_against_spurious_io_errors():
            return self._load_overload(sig, target_context)

    cache.load_overload = load_overload
