"""User-facing errors: each names the file or setting at fault and what to do about it.

Entry points print the message and exit with status 2, without a traceback.
"""
from __future__ import annotations

EXIT_USAGE = 2


class StylexError(Exception):
    """An error caused by the user's input, configuration or environment, not by a bug."""


class InputError(StylexError):
    """A content or style file, or folder, that cannot be used."""


class ConfigError(StylexError):
    """A configuration value that is missing, unknown or out of range."""


class WeightsError(StylexError):
    """Model weights that cannot be found or loaded."""


class ResourceError(StylexError):
    """The machine ran out of something (GPU memory, disk)."""
