"""Exceptions of the library; the CLI maps each to a one-line message and an exit code."""


class FtrlError(Exception):
    """Base class. `exit_code` is what the `ftrl` command exits with."""

    exit_code = 1


class DataError(FtrlError):
    """Bad input data or an unreadable input (message names file:line)."""

    exit_code = 1


class ConfigError(FtrlError):
    """Invalid settings: bad flag values, unknown config keys, incompatible resume."""

    exit_code = 2


class ModelError(FtrlError):
    """Missing, corrupt or incompatible model directory or checkpoint."""

    exit_code = 3


class Interrupted(FtrlError):
    """SIGINT/SIGTERM: a checkpoint was written before stopping."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code
