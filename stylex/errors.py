"""User-facing errors: each names the file or setting at fault and what to do about it.

Entry points print the message and exit with status 2, without a traceback.
"""
from __future__ import annotations

from typing import Any, TypeVar

EXIT_USAGE = 2
T = TypeVar("T")


class StylexError(Exception):
    """An error caused by the user's input, configuration or environment, not by a bug."""


class InputError(StylexError):
    """A content or style file, or folder, that cannot be used."""


class ConfigError(StylexError):
    """A configuration value that is missing, unknown or out of range."""


class WeightsError(StylexError):
    """Model weights that cannot be found or loaded."""


class WriteError(StylexError):
    """A file stylex must write that cannot be written (a full disk, a read-only folder)."""


def settings_from_config(cls: type[T], config: dict[str, Any], key: str) -> T:
    """Build a settings dataclass from a config node; an unknown option is a ConfigError listing the known ones."""
    try:
        return cls(**config)
    except TypeError as exc:
        known = ", ".join(getattr(cls, "__dataclass_fields__", {}))
        raise ConfigError(f"{key}: {exc}. Known options: {known}.") from None
