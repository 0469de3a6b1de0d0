"""One run over many ranks and nodes: one output folder, one config, one list of items, shards from it."""
from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

import lightning as L

from stylex.errors import ConfigError

log = logging.getLogger(__name__)


class SharedRun(L.Callback):
    """Each rank logs where it runs (node, rank, output folder, W&B group). With several ranks, every rank
    checks that all of them write to the same folder with the same config, then takes rank 0's item list, so
    Lightning's predict sampler splits one list into disjoint shards that cover it even when the nodes listed
    their inputs (and the outputs already done) at different moments."""

    def __init__(self, output_dir: str | Path, config_hash: str, group: str | None = None):
        self.output_dir = str(Path(output_dir).resolve())
        self.config_hash = config_hash
        self.group = group

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        host = socket.gethostname()
        log.info("Rank %d of %d on node %s (node rank %d, local rank %d, pid %d), output folder %s%s",
                 trainer.global_rank, trainer.world_size, host, trainer.node_rank, trainer.local_rank, os.getpid(),
                 self.output_dir, f", W&B group {self.group}" if self.group else "")
        if trainer.world_size == 1:
            return
        import torch.distributed as dist

        facts: list[Any] = [None] * trainer.world_size
        dist.all_gather_object(facts, (host, trainer.global_rank, self.output_dir, self.config_hash))
        for field, what, fix in ((2, "output folders", "Pass the same hydra.run.dir=... to every node (a shared "
                                  "filesystem path)"),
                                 (3, "configs", "Start every node with the same overrides")):
            if len({f[field] for f in facts}) > 1:
                listed = "; ".join(f"rank {f[1]} on {f[0]}: {f[field]}" for f in facts)
                raise ConfigError(f"the ranks of this run have different {what} ({listed}). {fix}.")
        datamodule = trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "items"):
            datamodule.items = trainer.strategy.broadcast(datamodule.prepare_items(), src=0)
