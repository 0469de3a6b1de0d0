"""`python -m stylex.evaluate outputs=<run dir>`: the papers' metrics as tables, a grid and W&B.

Settings: configs/evaluate.yaml; the work: stylex.metrics.evaluation.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from stylex.checks import check_config
from stylex.cli import CONFIG_DIR, guarded, run_entry
from stylex.data.samples import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="evaluate")
@guarded
def main(cfg: DictConfig) -> None:
    check_config(cfg, "evaluate")
    from stylex.metrics.evaluation import run_evaluation
    from stylex.pipeline import build_loggers, quiet_libraries

    quiet_libraries()
    run_evaluation(cfg, build_loggers(cfg))


def cli() -> None:
    """The `stylex-evaluate` console script."""
    run_entry(main, "evaluate")


if __name__ == "__main__":
    cli()
