"""ftrl: sparse logistic regression with FTRL-Proximal (McMahan et al. 2013), from the shell.

The Python API is the one the `ftrl` command uses:

    from ftrl_cli import Config, train, predict, evaluate, export, load_model

Names are imported on first use, so `ftrl --help` does not pay for Numba and SciPy.
"""

from importlib import import_module

# The one place the version is written (pyproject.toml reads it from here): asking
# importlib.metadata instead would cost every command ~40 ms of imports.
__version__ = "0.1.0"

_EXPORTS = {
    "train": "api", "predict": "api", "evaluate": "api", "export": "api", "load_model": "api",
    "Config": "config", "Model": "model",
    "FtrlError": "errors", "DataError": "errors", "ConfigError": "errors", "ModelError": "errors",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'ftrl_cli' has no attribute {name!r}")
