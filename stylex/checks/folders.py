"""The folders a command will write, tried before any work: a read-only or misplaced folder is found now, with
the setting that moves it, not as an OSError halfway through a run."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stylex.errors import ConfigError

RUN_DIR = "hydra.run.dir"
CACHE = "paths.cache_dir (or the STYLEX_CACHE environment variable)"


def write_problem(folder: str | Path) -> str | None:
    """Why `folder` (existing or to be created) cannot be written, or None. Probes with a nameless temporary file
    in the folder or its nearest existing parent, so nothing is left behind."""
    path = Path(folder).expanduser().absolute()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        return f"{probe}: {exc.strerror or exc}"
    return None


def folders_to_write(values: Mapping[str, Any], command: str) -> list[tuple[str, str]]:
    """(folder, the setting that moves it) for every folder the command writes."""
    paths = values.get("paths") or {}
    folders = [(paths.get("output_dir"), RUN_DIR)]
    method = values.get("method") or {}
    if command in ("run", "studio") and method.get("cache_dir"):
        folders.append((method["cache_dir"], CACHE))
    if command == "index":
        gallery = values.get("gallery") or {}
        folders.append((gallery.get("out"), "gallery.out"))
        if gallery.get("use_run_cache"):
            folders.append((paths.get("cache_dir"), CACHE))
    if command == "evaluate":
        folders.append((values.get("results_dir"), "results_dir"))
    for name, logger in (values.get("logger") or {}).items():
        if isinstance(logger, dict) and logger.get("save_dir"):
            folders.append((logger["save_dir"], f"logger.{name}.save_dir"))
    return [(str(folder), setting) for folder, setting in folders if folder]


def check_folders(folders: list[tuple[str, str]]) -> None:
    """One ConfigError naming every folder that cannot be written and the setting that moves it."""
    seen: set[str] = set()
    problems = []
    for folder, setting in folders:
        key = os.path.abspath(os.path.expanduser(folder))
        if key in seen:
            continue
        seen.add(key)
        reason = write_problem(folder)
        if reason:
            problems.append(f"{folder} cannot be written ({reason}); choose another folder with {setting}=...")
    if problems:
        raise ConfigError(" ".join(problems) + " Nothing was written.")
