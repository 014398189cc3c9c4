"""ftrl: sparse logistic regression with FTRL-Proximal (McMahan et al. 2013), from the shell.

The Python API is the one the `ftrl` command uses:

    from ftrl_cli import Config, train, predict, evaluate, export, load_model
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ftrl-cli")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

from .api import evaluate, export, load_model, predict, train  # noqa: E402
from .config import Config  # noqa: E402
from .errors import ConfigError, DataError, FtrlError, ModelError  # noqa: E402
from .model import Model  # noqa: E402

__all__ = ["Config", "Model", "train", "predict", "evaluate", "export", "load_model",
           "FtrlError", "DataError", "ConfigError", "ModelError", "__version__"]
