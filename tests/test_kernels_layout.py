"""Numba's file cache keys a cache=True kernel by its own file: an edit to a helper in
another file would leave a stale compiled kernel in use. So every kernel module is
self-contained: it imports no other ftrl module, and every jitted function it calls is
defined in the same file."""

import ast
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parent.parent / "ftrl_cli" / "kernels"
FILES = sorted(p for p in KERNELS.glob("*.py") if p.name != "__init__.py")


def _jitted(tree):
    """Names of the functions in a module decorated with njit/intrinsic/overload."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for d in node.decorator_list:
                f = d.func if isinstance(d, ast.Call) else d
                if isinstance(f, ast.Name) and f.id in ("njit", "jit", "intrinsic", "overload"):
                    out.add(node.name)
    return out


def test_there_are_kernel_files():
    assert {p.name for p in FILES} >= {"libsvm.py", "ftrl.py", "hashing.py", "floatfmt.py"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_kernel_file_imports_nothing_of_ftrl(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("ftrl_cli"), (
                f"{path.name}:{node.lineno} imports from ftrl: copy the helper into this file instead")
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("ftrl_cli") for a in node.names), path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_kernels_call_only_local_jitted_helpers(path):
    """A call from a jitted function to a bare name is to a helper of this file, a builtin
    Numba supports, or an imported library (np/math): never a name from elsewhere."""
    tree = ast.parse(path.read_text())
    local = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    local |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name)}  # (module aliases such as _U = np.uint64, local closures)
    imported = {a.asname or a.name for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    jitted = _jitted(tree)
    assert jitted, path.name
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in jitted):
        for call in (c for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)):
            name = call.func.id
            assert name in local or name in imported or name in dir(__builtins__) or name in (
                "range", "len", "abs", "min", "max", "int", "float", "bool"), (
                f"{path.name}: {fn.name} calls {name}, defined elsewhere")


def test_package_reexports_every_kernel():
    import ftrl_cli.kernels as K

    for path in FILES:
        tree = ast.parse(path.read_text())
        for name in _jitted(tree):
            if not name.startswith("_") and name not in ("prefetch_row",):
                assert hasattr(K, name), f"ftrl_cli.kernels does not export {path.name}:{name}"
