"""ftrl's Numba kernels, a module per family:

    libsvm.py    libsvm/svmlight text -> CSR rows (parse_libsvm, canonicalize, comment_spans)
    ftrl.py      the optimizers over the weight table (ftrl_online, train_minibatch, NovoGrad),
                 scoring from the state (margins_state), feature id -> slot (slots_of)
    hashing.py   MurmurHash3 of tabular cells rendered as text; sparse Parquet row checks
    floatfmt.py  %.17g text output (format_g17)
    crosses.py   crosses of feature ids in CSR rows (cross_rows, cross_id)
    merge.py     merging the partitions' states of parallel training (merge_rows)

Kernels take plain arrays and scalars; callers validate; each kernel says what it
assumes. Each cache=True kernel lives in the same file as every helper it calls, since
Numba's file cache does not see edits to helpers in other files (tests/test_kernels_layout.py).
"""

import sys

import numpy as np
from numba import config as _numba_config

from .crosses import *  # noqa: F403
from .floatfmt import *  # noqa: F403
from .ftrl import *  # noqa: F403
from .hashing import *  # noqa: F403
from .libsvm import *  # noqa: F403
from .libsvm import last_newline
from .merge import *  # noqa: F403

# --------------------------------------------------------------------------------------
# Start-up
# --------------------------------------------------------------------------------------

def start_without_scipy() -> None:
    """Load Numba's CPU target now, without letting it import scipy.linalg.

    Numba's first compile or cache load imports scipy.linalg (about 0.2 s, a quarter of a
    small run) only to learn whether np.dot may call BLAS. No kernel here does. The answer
    is kept for the whole process, so only the command line calls this, never the
    library: a Python program may want Numba's linear algebra.
    """
    if _numba_config.DISABLE_JIT or "numba.np.arraymath" in sys.modules:
        return  # nothing to load, or already loaded
    blocked = [m for m in ("scipy", "scipy.linalg") if m not in sys.modules]
    for m in blocked:
        sys.modules[m] = None  # `import` raises ImportError
    try:
        last_newline(np.zeros(1, np.uint8), 0, 1)
    finally:
        for m in blocked:
            del sys.modules[m]
