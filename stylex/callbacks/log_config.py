"""Logs the resolved config to every logger once the models have loaded."""
from __future__ import annotations

from typing import Any

import lightning as L


class LogConfig(L.Callback):
    """Deferred to `on_predict_start` (after `setup` has loaded the models), so a run that stops on missing
    weights or a bad setting opens no logger run and leaves no W&B files behind."""

    def __init__(self, config: dict[str, Any]):
        self.config = config

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.config)
