"""The number a sweep optimises: a run's outputs scored with `python -m stylex.evaluate`'s code.

`objective.metric` (set by `hparams_search=gallery_optuna`) names one metric of configs/evaluate.yaml; the run
stylizes its inputs (the validation set, `data.content` x `data.styles`), evaluates them exactly as the
evaluate command would (its config, composed with `objective.evaluate_overrides`), writes `objective.json` and
the evaluation files beside the outputs, and returns the value to Hydra's sweeper.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from stylex.data.samples import compose_config
from stylex.errors import ConfigError, settings_from_config

log = logging.getLogger(__name__)

RESULTS_SUBDIR = "evaluation"  # beside the run's images/


@dataclass
class Objective:
    """`objective.metric` of a run, and how to evaluate it."""

    metric: str
    evaluate_overrides: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Objective | None":
        """None when the run has no objective; a ConfigError for an unknown metric or a sweep that optimises it
        the wrong way round (checked before any work)."""
        node = cfg.get("objective")
        if node is None:
            if sweep_direction() is not None:
                raise ConfigError("this run is a trial of an Optuna sweep, but no `objective.metric` says what it "
                                  "returns. Use hparams_search=gallery_optuna, or add +objective.metric=artfid.")
            return None
        objective = settings_from_config(cls, OmegaConf.to_container(node, resolve=True), "objective")
        objective.check_metric()
        objective.check_sweep_direction()
        return objective

    @property
    def higher_is_better(self) -> bool:
        from stylex.metrics.evaluation import HIGHER_IS_BETTER

        return HIGHER_IS_BETTER[self.metric]

    def check_metric(self) -> None:
        from stylex.metrics.evaluation import HIGHER_IS_BETTER

        if self.metric not in HIGHER_IS_BETTER:
            raise ConfigError(f"objective.metric={self.metric!r} is not a metric of stylex.evaluate. Choose one of: "
                              f"{', '.join(HIGHER_IS_BETTER)}.")

    def check_sweep_direction(self) -> None:
        """An Optuna sweep must minimise a lower-is-better metric and maximise a higher-is-better one."""
        direction = sweep_direction()
        if direction is None:
            return
        wanted = "maximize" if self.higher_is_better else "minimize"
        if direction != wanted:
            better = "higher" if self.higher_is_better else "lower"
            raise ConfigError(f"objective.metric={self.metric} is better when {better}, but the sweep is told to "
                              f"{direction} it. Pass hydra.sweeper.direction={wanted}.")

    def evaluate(self, cfg: DictConfig, output_dir: str | Path) -> float:
        """Evaluate the run's outputs in `output_dir`; write `objective.json` there; return the metric's value."""
        from stylex.data.outputs import atomic_write_bytes
        from stylex.metrics.evaluation import run_evaluation

        output_dir = Path(output_dir)
        settings = evaluation_config(cfg, output_dir, self)
        result = run_evaluation(settings)
        value = float(result.summaries[0].get(self.metric, math.nan)) if result.summaries else math.nan
        if not math.isfinite(value):
            raise ConfigError(f"objective.metric={self.metric} could not be computed on the outputs in {output_dir} "
                              f"(value {value}). See {result.results_dir} and the log above.")
        record = {"metric": self.metric, "value": value, "higher_is_better": self.higher_is_better,
                  "outputs": str(output_dir / "images"), "evaluation": str(result.results_dir)}
        atomic_write_bytes(output_dir / "objective.json", json.dumps(record, indent=2).encode())
        log.info("Objective %s = %.6g (%s is better), from %d output(s) in %s", self.metric, value,
                 "higher" if self.higher_is_better else "lower", len(result.rows), output_dir / "images")
        return value


def sweep_direction() -> str | None:
    """`minimize` / `maximize` when this run is a trial of Hydra's Optuna sweeper, else None."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    sweeper = HydraConfig.get().sweeper
    if "optuna" not in str(sweeper.get("_target_", "")).lower():
        return None
    direction = sweeper.get("direction")
    if OmegaConf.is_list(direction) or isinstance(direction, (list, tuple)):
        raise ConfigError("hydra.sweeper.direction lists several directions, but a run returns one value "
                          "(objective.metric). Pass one direction: minimize or maximize.")
    return str(getattr(direction, "name", direction)).lower()


def compose_evaluate(overrides: list[str]) -> DictConfig:
    """configs/evaluate.yaml with `overrides`, as `python -m stylex.evaluate` composes it."""
    from hydra.errors import HydraException

    try:
        return compose_config("evaluate", overrides)
    except HydraException as exc:
        raise ConfigError(f"objective.evaluate_overrides={overrides}: the evaluation config could not be composed "
                          f"({exc}). Use the overrides `python -m stylex.evaluate` accepts.") from None


def evaluation_config(cfg: DictConfig, output_dir: Path, objective: Objective) -> DictConfig:
    """The evaluate command's config for this run: its outputs against the inputs it stylized, one metric, tiny
    random metric networks when the run used tiny models (debug=smoke), results in `output_dir/evaluation`."""
    overrides = ["logger=none", *(["debug=smoke"] if cfg.get("tiny_models") else []), *objective.evaluate_overrides]
    settings = compose_evaluate(overrides)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    assert isinstance(data, dict)
    settings.outputs = str(output_dir)
    settings.contents = data["content"]
    settings.styles = data["styles"]
    settings.metrics.names = [objective.metric]
    settings.results_dir = settings.paths.output_dir = str(output_dir / RESULTS_SUBDIR)
    settings.print_config = False
    return settings
