"""What is checked right after a config is composed, before any model loads, W&B run opens or file is written:
every setting against its group's schema (schema.py), the environment values libraries read, and the folders
the command will write. Entry points call `check_config(cfg, command)` first."""
from __future__ import annotations

from omegaconf import DictConfig

from stylex.checks.environment import check_environment
from stylex.checks.folders import check_folders, folders_to_write
from stylex.checks.validate import check_settings, resolved


def check_config(cfg: DictConfig, command: str) -> None:
    """Raise a ConfigError naming every setting, environment value or folder that would fail `command`."""
    values = resolved(cfg)
    check_settings(values, command)
    check_environment(values)
    check_folders(folders_to_write(values, command))
