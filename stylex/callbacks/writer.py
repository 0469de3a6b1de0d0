"""Writes every output as `images/{name}.png` + `{name}.json` and its overlays as `overlays/{name}.{kind}.png`
(atomic), on every rank."""
from __future__ import annotations

import logging
from typing import Any

import lightning as L

from stylex.callbacks.visuals import render_files
from stylex.data.images import to_pil
from stylex.data.outputs import OutputStore
from stylex.methods.base import Stylized

log = logging.getLogger(__name__)


def sidecar(result: Stylized, config_hash: str, rank: int = 0) -> dict[str, Any]:
    item = result.item
    return {
        "name": item.name,
        "content": {"path": str(item.content.path), "sha256_16": item.content.digest},
        "styles": [{"path": str(s.path), "sha256_16": s.digest} for s in item.styles],
        "config_hash": config_hash,
        "item_hash": item.item_hash,
        "seed": item.seed,
        "rank": rank,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "loss_curve": [round(x, 6) for x in result.loss_curve],
        **result.info,
    }


def write_result(store: OutputStore, result: Stylized, config_hash: str, rank: int = 0) -> None:
    """One output as a run writes it: the image, its overlays, then its sidecar."""
    store.write(result.item.name, to_pil(result.image), sidecar(result, config_hash, rank), render_files(result))


class OutputWriter(L.Callback):
    """Saves each `Stylized` with its sidecar, and its overlays (regions, attention, candidates) in `overlays/`."""

    def __init__(self, store: OutputStore | None = None, config_hash: str = ""):
        self.store = store
        self.config_hash = config_hash
        self.written = 0

    def bind(self, store: OutputStore, config_hash: str) -> None:
        self.store, self.config_hash = store, config_hash

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        assert self.store is not None, "OutputWriter.bind(store, config_hash) must be called before the run"
        for result in outputs or []:
            write_result(self.store, result, self.config_hash, trainer.global_rank)
            self.written += 1

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.store is not None and trainer.world_size > 1:  # one run's total is logged at its end
            log.info("Rank %d wrote %d output(s) to %s", trainer.global_rank, self.written, self.store.images)
