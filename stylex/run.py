"""`python -m stylex.run`: stylize content images with style references (see configs/run.yaml)."""
from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from stylex.pipeline import cluster
from stylex.checks import check_config
from stylex.cli import CONFIG_DIR, guarded, run_entry
from stylex.data.samples import register_resolvers
from stylex.pipeline import stylize

register_resolvers()
cluster.register_resolvers()
log = logging.getLogger("stylex.run")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="run")
@guarded
def main(cfg: DictConfig) -> float | None:
    """Returns the objective's value (`objective.metric`) for Hydra's sweepers, None without an objective."""
    check_config(cfg, "run")
    return stylize(cfg)


def cli() -> None:
    """The `stylex-run` console script."""
    run_entry(main, "run")


if __name__ == "__main__":
    cli()
