"""ftrl's Numba kernels, a module per family:

    libsvm.py    libsvm/svmlight text -> CSR rows (parse_libsvm, canonicalize, comment_spans)
    ftrl.py      the optimizers over the weight table (ftrl_online, train_minibatch, NovoGrad),
                 scoring from the state (margins_state), feature id -> slot (slots_of)
    hashing.py   MurmurHash3 of tabular cells rendered as text; sparse Parquet row checks
    floatfmt.py  %.17g text output (format_g17)
    merge.py     merging the partitions' states of parallel training (merge_rows)
    crosses.py   crosses of feature ids (--interactions on libsvm and sparse Parquet)
    parquet.py   the pages of ftrl's own Parquet files: LZ4_RAW, RLE levels, list rows

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
    - Numba does not scan the installed packages for its extensions (ftrl uses none), and
      importlib.metadata, which it imports only for that scan, loads on first use instead
      of at Numba's import (~20 ms: it imports email, socket, ...).
    - The garbage collector does not run during Numba's import, and what exists after it
      (Numba's and NumPy's modules, types and registries: a few 100,000 objects that live
      until exit) is left out of every later collection (gc.freeze): each full collection
      during the imports and kernel loads that follow would walk them all (~30 ms).
    - At exit the interpreter leaves the reference cycles of Numba's and LLVM's objects to
      the operating system instead of collecting them one by one (gc.freeze; 0.1-0.2 s, a
      quarter of a small run). Every file ftrl writes is closed (and fsynced) before.
    Models and predictions do not change: the same compiled code is loaded.
    """
    global _cli_started
    if _cli_started:
        return
    _cli_started = True
    import atexit
    import gc

    if "numba" not in sys.modules:
        skip = ["scipy"] + ([] if os.path.exists(".numba_config.yaml") else ["yaml"])
        blocked = [m for m in skip if m not in sys.modules]
        for m in blocked:
            sys.modules[m] = None  # `import` raises ImportError, which Numba expects of both
        _import_on_first_use("importlib.metadata")
        collecting = gc.isenabled()
        gc.disable()
        try:
            import numba  # noqa: F401
        finally:
            for m in blocked:
                del sys.modules[m]
            if collecting:
                gc.enable()
    gc.freeze()
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
    _type_arrays_without_numpy_ma()


def _import_on_first_use(name: str) -> None:
    """Put module `name` in sys.modules as a module that loads on its first attribute look-up
    (importlib.util.LazyLoader): code that imports it and never uses it pays nothing."""
    import importlib.util

    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or not hasattr(spec.loader, "exec_module"):
        return
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    setattr(sys.modules[parent], child, module)  # (`from importlib import metadata` then just takes it)


def _type_arrays_without_numpy_ma() -> None:
    """Numba types an array argument (on a kernel's first call) after asking whether it is
    a numpy.ma.MaskedArray, and that question imports numpy.ma (~15 ms). While numpy.ma is
    not imported, no array can be one: the same typing, without the question."""
    import numpy as np
    from numba.core import errors, types
    from numba.core.typing.typeof import typeof_impl
    from numba.np import numpy_support

    numba_typeof = typeof_impl.dispatch(np.ndarray)
    if getattr(numba_typeof, "__name__", "") != "_typeof_ndarray" or not all(
            hasattr(numpy_support, a) for a in ("from_dtype", "map_layout")):
        return  # (another Numba: its own)

    def typeof_ndarray(val, c):
        if "numpy.ma" in sys.modules:
            return numba_typeof(val, c)
        try:
            dtype = numpy_support.from_dtype(val.dtype)
        except errors.NumbaNotImplementedError:
            raise errors.NumbaValueError(f"Unsupported array dtype: {val.dtype}") from None
        return types.Array(dtype, val.ndim, numpy_support.map_layout(val), readonly=not val.flags.writeable)

    typeof_impl.register(np.ndarray, typeof_ndarray)
