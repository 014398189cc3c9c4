"""What a command loads before and after its loop (issue 16, fixed costs), not how long it
takes (the machine is shared; BENCHMARKS.md has the timings): which modules and kernel
families `train` and `predict` import, that the command line's faster start
(kernels.start_for_cli) gives the library's models and predictions bit for bit, that the
library itself changes nothing process-wide, and `train --json`'s `loop_seconds`."""

import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, assert_same_state
from reference import weight

import ftrl_cli.kernels as K
from ftrl_cli import api
from ftrl_cli.config import Config
from ftrl_cli.model import Model, hyperparameters

TRAIN = DATA / "a9a_head2000.svm"
TEST = DATA / "a9a_t_head500.svm"
ENV = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
jit_only = pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="about Numba's start")


def child(code: str, *args) -> dict:
    """Run code in a fresh interpreter (outside the repo, so the installed ftrl_cli is the
    one imported); it prints one JSON object last."""
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=ENV,
                       cwd="/", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


# A command run through the command line's own entry point, in process; then which of the
# modules that matter here are loaded.
COMMAND = """
import json, sys
from ftrl_cli.cli import main
try:
    main(sys.argv[1:], prog_name="ftrl")
except SystemExit as e:
    assert e.code in (0, None), e.code
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("ftrl_cli", "numba", "pyarrow", "scipy", "yaml",
      "sklearn", "matplotlib", "dask", "distributed", "fsspec", "pandas", "numpy.ma", "email")))))
"""


def loaded_by(*args) -> set:
    child(COMMAND, *args)  # (the first run compiles what the Numba cache lacks)
    return set(child(COMMAND, *args))


# --------------------------------------------------------------------------------------
# kernel families, loaded on first use
# --------------------------------------------------------------------------------------

def test_every_kernel_name_is_listed_with_its_family():
    files = {p.stem for p in Path(K.__file__).parent.glob("*.py") if p.stem != "__init__"}
    assert set(K._FAMILIES) == files
    for fam, names in K._FAMILIES.items():
        mod = importlib.import_module(f"ftrl_cli.kernels.{fam}")
        assert sorted(names) == sorted(mod.__all__), fam
        for name in names:
            assert getattr(K, name) is getattr(importlib.import_module(f"ftrl_cli.kernels.{K._FAMILY_OF[name]}"),
                                                name)


def test_a_name_loads_its_family_only():
    got = child("""
import json, sys
import ftrl_cli.kernels as K
fams = lambda: sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("ftrl_cli.kernels."))
out = {"import": fams()}
K.format_g17
out["format_g17"] = fams()
from ftrl_cli.kernels import slots_of
out["from-import"] = fams()
out["same"] = K.slots_of is sys.modules["ftrl_cli.kernels.ftrl"].slots_of
out["OK"] = [K.OK, fams()]
try:
    K.no_such_kernel
except AttributeError as e:
    out["missing"] = str(e)
out["dir"] = "parse_libsvm" in dir(K)
print(json.dumps(out))
""")
    assert got["import"] == [] and got["format_g17"] == ["floatfmt"]
    assert got["from-import"] == ["floatfmt", "ftrl"] and got["same"]
    assert got["OK"] == [0, ["floatfmt", "ftrl", "libsvm"]]  # (libsvm's OK, as the star imports gave)
    assert "no_such_kernel" in got["missing"] and got["dir"]


# --------------------------------------------------------------------------------------
# what train and predict import
# --------------------------------------------------------------------------------------

NEVER = {"ftrl_cli.kernels.hashing", "ftrl_cli.kernels.merge", "ftrl_cli.parallel", "ftrl_cli.tune",
         "ftrl_cli.plots", "ftrl_cli.sklearn", "pyarrow", "sklearn", "matplotlib", "dask",
         "distributed", "fsspec", "scipy", "yaml"}  # (Numba imports these two only to check SciPy's version and read a config file)


@jit_only
def test_train_on_libsvm_loads_the_parser_and_the_optimizer_only(tmp_path):
    mods = loaded_by("train", TRAIN, "-m", tmp_path / "m", "-q", "--force")
    assert {"ftrl_cli.kernels.libsvm", "ftrl_cli.kernels.ftrl"} <= mods
    assert not mods & (NEVER | {"ftrl_cli.kernels.floatfmt"}), mods & NEVER
    # cached kernels load without Numba's whole target (its typing and lowering code)
    assert "numba.np.arraymath" not in mods and "numba.np.linalg" not in mods


@jit_only
def test_train_and_predict_on_a_convert_file_never_import_pyarrow(tmp_path):
    """The files `ftrl convert` writes are decoded by readers/parquet_own: no pyarrow
    import (~0.1 s a process) and none of its allocations."""
    out = tmp_path / "a.parquet"
    api.convert([str(TRAIN)], str(out))
    mods = loaded_by("train", out, "-m", tmp_path / "m", "-q", "--force")
    assert {"ftrl_cli.kernels.parquet", "ftrl_cli.readers.parquet_own", "ftrl_cli.kernels.ftrl"} <= mods
    assert not mods & NEVER - {"ftrl_cli.kernels.hashing"}, mods & NEVER
    mods = loaded_by("predict", "-m", tmp_path / "m", out, "-o", tmp_path / "p.txt", "-q")
    assert "ftrl_cli.kernels.parquet" in mods and not mods & NEVER - {"ftrl_cli.kernels.hashing"}, mods & NEVER


def test_threads_load_neither_dask_nor_fsspec(tmp_path):
    """The optional extras are for --cluster and URLs only: `--threads 2` on a local file
    imports neither."""
    mods = loaded_by("train", TRAIN, "-m", tmp_path / "m", "-q", "--force", "--threads", "2")
    assert "ftrl_cli.parallel" in mods
    assert not {m.split(".")[0] for m in mods} & {"dask", "distributed", "fsspec"}, mods


@jit_only
def test_predict_loads_the_text_writer_too(tmp_path):
    api.train([str(TRAIN)], tmp_path / "m")
    mods = loaded_by("predict", "-m", tmp_path / "m", TEST, "-o", tmp_path / "p.txt", "-q")
    assert {"ftrl_cli.kernels.libsvm", "ftrl_cli.kernels.ftrl", "ftrl_cli.kernels.floatfmt"} <= mods
    assert not mods & NEVER, mods & NEVER
    assert "numba.np.arraymath" not in mods
    # nor what a cached kernel's code or Numba's typing of its arguments can drag in:
    # numba.np.arrayobj (format_g17's bits through x.view) and numpy.ma (is it a masked array?);
    # nor importlib.metadata's email package (Numba imports it for the extension scan, not done)
    assert not mods & {"numba.np.arrayobj", "numpy.ma", "email"}, mods & {"numba.np.arrayobj", "numpy.ma", "email"}


# --------------------------------------------------------------------------------------
# the command line's start changes nothing in the results, the library's nothing at all
# --------------------------------------------------------------------------------------

CLI = """
import json, subprocess, sys
args = sys.argv[1:]
r = subprocess.run([sys.executable, "-m", "ftrl_cli", *args], capture_output=True, text=True)
assert r.returncode == 0, r.stderr
print(json.dumps(r.stdout.strip().splitlines()[-1] if "--json" in args else ""))
"""


@jit_only
def test_the_command_line_gives_the_library_s_models_and_predictions(tmp_path):
    summary = json.loads(child(CLI, "train", TRAIN, "-m", tmp_path / "cli", "--passes", "2", "--json", "-q"))
    child(CLI, "predict", "-m", tmp_path / "cli", TEST, "-o", tmp_path / "cli.txt", "-q")
    mine = api.train([str(TRAIN)], tmp_path / "lib", overrides={"passes": 2})
    assert_same_state(tmp_path / "cli", tmp_path / "lib")
    buf = io.BytesIO()
    api.predict(tmp_path / "lib", [str(TEST)], buf)
    assert (tmp_path / "cli.txt").read_bytes() == buf.getvalue()
    assert summary["progressive_logloss"] == mine["progressive_logloss"]
    # the passes' own seconds: part of the run's, which adds the final save
    assert 0 < summary["loop_seconds"] <= summary["seconds"]


def test_loop_seconds_is_part_of_seconds_and_zero_when_nothing_is_done(tmp_path):
    s = api.train([str(TRAIN)], tmp_path / "m", overrides={"validation": str(TEST), "passes": 2})
    assert 0 < s["loop_seconds"] <= s["seconds"]
    again = api.train([str(TRAIN)], tmp_path / "m", overrides={"validation": str(TEST), "passes": 2}, resume=True)
    assert again["up_to_date"] and again["loop_seconds"] == again["seconds"] == 0.0


@jit_only
def test_the_library_changes_nothing_at_start(tmp_path):
    got = child("""
import gc, json, sys
from numba.core import caching
original = caching.Cache.load_overload
from ftrl_cli import api
api.train([sys.argv[1]], sys.argv[2])
print(json.dumps({"loader": caching.Cache.load_overload is original, "frozen": gc.get_freeze_count()}))
""", TRAIN, tmp_path / "m")
    assert got == {"loader": True, "frozen": 0}


@jit_only
def test_kernels_still_compile_after_the_command_line_start():
    """A kernel missing from the cache is compiled with Numba's whole target, as without
    start_for_cli (Numba's compiler loads it itself)."""
    code = """
import json, sys
import numpy as np
from numba import njit
import ftrl_cli.kernels as K
K.start_for_cli()
K.start_for_cli()  # (once is enough; a second call changes nothing)
cached = int(K.last_newline(np.frombuffer(b"a\\nb\\nc", np.uint8), 0, 5))  # (index of the last newline)
light = "numba.np.arraymath" not in sys.modules

@njit
def f(a):  # not cached: compiled here
    return np.sum(a * 2.0) + np.sqrt(a).max()

print(json.dumps({"cached": cached, "light": light, "f": f(np.arange(4.0)),
                  "full": "numba.np.arraymath" in sys.modules}))
"""
    child(code)  # (the first run fills the cache, if last_newline's was missing or stale)
    got = child(code)
    assert got == {"cached": 3, "light": True, "f": 12.0 + 3.0 ** 0.5, "full": True}


@jit_only
def test_what_the_command_line_start_defers_still_works():
    """start_for_cli leaves importlib.metadata to load on first use (Numba imports it for
    the extension scan that the start turns off), and the garbage collector on, with
    Numba's objects frozen out of its collections."""
    got = child("""
import gc, json, sys
import ftrl_cli.kernels as K
K.start_for_cli()
deferred = "email" not in sys.modules and "importlib.metadata" in sys.modules
import importlib.metadata
import numpy
print(json.dumps({"deferred": deferred, "version": importlib.metadata.version("numpy") == numpy.__version__,
                  "email": "email" in sys.modules, "frozen": gc.get_freeze_count() > 10000,
                  "collecting": gc.isenabled()}))
""")
    assert got == {"deferred": True, "version": True, "email": True, "frozen": True, "collecting": True}


@jit_only
def test_the_command_line_types_arrays_as_numba_does(tmp_path):
    """start_for_cli types array arguments without importing numpy.ma, since no masked
    array exists before it is imported; the types are Numba's own, and once numpy.ma is
    imported Numba's own typing answers (a masked array stays an error)."""
    got = child("""
import json, sys
import numpy as np
import ftrl_cli.kernels as K
K.start_for_cli()
from numba import typeof
from numba.core import errors
from numba.core.typing.typeof import _typeof_ndarray, Purpose
base = np.arange(24.0).reshape(4, 6)
ro = np.zeros(3, np.int32)
ro.flags.writeable = False
arrays = [base, base.T, base[:, ::2], base[1], np.zeros((2, 0), np.float32), ro, np.zeros(3, np.uint8),
          np.array(5.0), np.zeros(4, np.complex128), np.zeros(2, "U3"), np.zeros(2, object),
          np.memmap(sys.argv[1], np.int64, "w+", shape=(5,))]
mine = [str(typeof(a, Purpose.argument)) for a in arrays]
try:
    typeof(np.zeros(2, "V3"), Purpose.argument)
    bad = "typed"
except errors.NumbaValueError as e:
    bad = str(e)
ma_after_mine = "numpy.ma" in sys.modules
numba_s = [str(_typeof_ndarray(a, None)) for a in arrays]  # (imports numpy.ma)
try:
    typeof(np.ma.masked_array([1.0, 2.0], [0, 1]), Purpose.argument)
    masked = "typed"
except errors.NumbaTypeError as e:
    masked = str(e)
print(json.dumps({"mine": mine, "numba": numba_s, "ma": ma_after_mine, "bad": bad, "masked": masked}))
""", tmp_path / "memmap.bin")
    assert got["mine"] == got["numba"] and not got["ma"]
    assert "array(float64, 2d, F)" in got["mine"] and "readonly array(int32, 1d, C)" in got["mine"]
    assert "Unsupported array dtype: |V3" in got["bad"] and "MaskedArray" in got["masked"]


def test_the_bias_weight_is_weights_from_state_s_bit_for_bit():
    """Model.bias_weight computes the bias's w with margins_state (which predict loads
    anyway) on a one-row table: the same bits as weights_from_state, for random states in
    both precisions, and Algorithm 1's closed form (tests/reference.py) to 1e-12."""
    rng = np.random.default_rng(16)
    for dtype in ("float64", "float32"):
        for lr_power in (-0.5, -0.25):
            for l1, l2, bias_l1, bias_l2 in ((0.0, 0.0, None, None), (2.0, 1.0, 0.3, 0.0), (0.0, 0.5, 1.5, 2.0)):
                c = Config(dtype=dtype, lr_power=lr_power, alpha=0.2, beta=0.7, l1=l1, l2=l2,
                           bias_l1=bias_l1, bias_l2=bias_l2)
                m = Model(c)
                hp = hyperparameters(c)[0]
                zs = np.concatenate([rng.normal(0, 3, 40), [0.0, -0.0, 0.3, -0.3, 1.5, -1.5]])
                ns = np.concatenate([rng.exponential(5, 40), [0.0, 0.0, 0.0, 2.0, 1e-30, 1e30]])
                for z, n in zip(zs, ns):
                    m.bst[0], m.bst[1] = z, n
                    want = np.empty(1)
                    K.weights_from_state(m.bst.reshape(1, -1), hp, True, want)
                    got = m.bias_weight()
                    assert np.float64(got).tobytes() == want.tobytes(), (dtype, lr_power, l1, z, n, got, want)
                    if dtype == "float64":
                        ref = weight(float(z), float(n), c.alpha, c.beta, c.resolved_bias_l1, c.resolved_bias_l2,
                                     c.p)
                        assert got == pytest.approx(ref, rel=1e-12, abs=1e-30)
    assert Model(Config(bias=False)).bias_weight() == 0.0
