"""`python -m stylex.run`: stylize content images with style references (see configs/run.yaml)."""
from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from stylex import cluster
from stylex.cli import guarded, run_entry
from stylex.data.samples import register_resolvers
from stylex.pipeline import stylize

register_resolvers()
cluster.register_resolvers()
log = logging.getLogger("stylex.run")


@hydra.main(version_base="1.3", config_path="../configs", config_name="run")
@guarded
def main(cfg: DictConfig) -> float | None:
    """Returns the objective's value (`objective.metric`) for Hydra's sweepers, None without an objective."""
    return stylize(cfg)


if __name__ == "__main__":
    run_entry(main, "run")
