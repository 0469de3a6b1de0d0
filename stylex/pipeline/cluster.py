"""Where this process sits when an outside launcher (srun, torchrun) started every rank of a run.

Lightning reads the same environment (`SLURMEnvironment`, `TorchElasticEnvironment`); a run needs it earlier,
before its Trainer exists: to name each rank's log file, and to check `trainer.devices` / `trainer.num_nodes`
against the processes the launcher actually started (a mismatch would otherwise hang or shard wrongly).
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stylex.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launch:
    """The processes an outside launcher started: who started them, how many nodes, how many per node."""

    launcher: str  # "torchrun" | "srun"
    nodes: int
    per_node: int
    environment: Any  # Lightning's ClusterEnvironment for the Trainer


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


def detect_launch() -> Launch | None:
    """The launch this process belongs to, or None (a single process, or Lightning starts the ranks itself).

    torchrun wins inside a SLURM allocation: its ranks are the processes it started, not SLURM's tasks. Under
    SLURM, requeueing belongs to submitit (`hydra.launcher.max_num_timeout`), so Lightning's own auto-requeue is
    off; a requeued job resumes from the outputs already written.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():
        world = _int_env("WORLD_SIZE", 1)
        per_node = _int_env("LOCAL_WORLD_SIZE", 1)
        return Launch("torchrun", _int_env("GROUP_WORLD_SIZE", max(1, world // per_node)), per_node,
                      TorchElasticEnvironment())
    if SLURMEnvironment.detect():
        try:
            environment = SLURMEnvironment(auto_requeue=False)
        except RuntimeError as exc:  # e.g. --ntasks without --ntasks-per-node, which Lightning cannot place
            raise ConfigError(f"this SLURM job cannot run as one Lightning run: {exc}") from None
        return Launch("srun", _int_env("SLURM_NNODES", 1), _int_env("SLURM_NTASKS_PER_NODE", 1), environment)
    return None


def launched_rank() -> int:
    """This process's global rank as its launcher numbered it (0 when no outside launcher started it)."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    if TorchElasticEnvironment.detect():
        return _int_env("RANK", 0)
    if SLURMEnvironment.detect():
        return _int_env("SLURM_PROCID", 0)
    return 0


def rank_suffix() -> str:
    """`.rank<N>` for ranks other than 0 of an outside launch, else "": every rank logs to its own file."""
    rank = launched_rank()
    return f".rank{rank}" if rank else ""


def register_resolvers() -> None:
    """`${stylex_rank_suffix:}` (the Hydra log file of each rank); Hydra's note about the submitit launcher
    configs in configs/hydra/launcher being checked against the plugin's schemas of the same name is expected."""
    if not OmegaConf.has_resolver("stylex_rank_suffix"):
        OmegaConf.register_new_resolver("stylex_rank_suffix", rank_suffix)
    warnings.filterwarnings("ignore", message=r"(?s).*hydra/launcher/submitit_\w+' is validated against ConfigStore")


def fit_trainer_to_launch(trainer: DictConfig, launch: Launch) -> None:
    """Under torchrun / srun the launcher has decided the processes: `devices: -1` (all visible devices) becomes
    the processes it started per node; `devices` and `num_nodes` that disagree with it are config errors."""
    devices = trainer.get("devices")
    if devices in (-1, "-1", "auto"):
        trainer.devices = devices = launch.per_node
        log.info("%s started %d process(es) per node: trainer.devices=%d", launch.launcher, launch.per_node, devices)
    count = len(devices) if isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices) else int(devices)
    nodes = int(trainer.get("num_nodes") or 1)
    if nodes != launch.nodes:
        raise ConfigError(f"trainer.num_nodes={nodes}, but {launch.launcher} started this run on {launch.nodes} "
                          f"node(s). Pass trainer.num_nodes={launch.nodes} (with trainer=ddp).")
    if count != launch.per_node:
        raise ConfigError(f"trainer.devices={devices}, but {launch.launcher} started {launch.per_node} process(es) "
                          f"per node. Pass trainer.devices={launch.per_node} (one process per device).")
