"""`python -m stylex.bench task=NAME`: speed measurements as tables (see configs/bench.yaml).

Each task is a `run(cfg)` function in its own module of this package, so tasks can be added side by side.
"""
from __future__ import annotations

import importlib
import logging

import hydra
from omegaconf import DictConfig

from stylex.checks import check_config
from stylex.cli import CONFIG_DIR, guarded, run_entry
from stylex.data.samples import register_resolvers
from stylex.errors import ConfigError

register_resolvers()
log = logging.getLogger("stylex.bench")

# task name -> "module:function" taking the composed config
TASKS = {
    "methods": "stylex.bench.methods:run",
    "gallery": "stylex.bench.gallery:run",
    "regional": "stylex.bench.regional:run",
}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="bench")
@guarded
def main(cfg: DictConfig) -> None:
    check_config(cfg, "bench")
    task = cfg.get("task")
    if task not in TASKS:
        raise ConfigError(f"task={task!r} is not a benchmark. Choose one of: {', '.join(sorted(TASKS))}.")
    module, function = TASKS[task].split(":")
    getattr(importlib.import_module(module), function)(cfg)


def cli() -> None:
    """The `stylex-bench` console script."""
    run_entry(main, "bench")


if __name__ == "__main__":
    cli()
