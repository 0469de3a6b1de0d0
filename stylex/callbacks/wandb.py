"""Weights & Biases: an offline-when-no-key logger, and a callback that shows outputs beside their inputs."""
from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

from stylex.callbacks.visuals import wandb_objects
from stylex.data.images import to_pil
from stylex.methods.base import Stylized

log = logging.getLogger(__name__)


def wandb_api_key_configured() -> bool:
    """An API key in the environment or in ~/.netrc (where `wandb login` puts it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc")))
        host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
        return auth.authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def make_wandb_logger(project: str = "stylex", save_dir: str = ".", name: str | None = None, mode: str = "auto",
                      tags: list[str] | None = None, group: str | None = None, init_timeout: float = 30.0,
                      **kwargs: Any) -> "StylexWandbLogger":
    """A Lightning `WandbLogger`; `mode=auto` goes offline (and says so) when no API key is configured, and an
    online run that cannot reach the server within `init_timeout` seconds falls back to offline."""
    import wandb

    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_api_key_configured() else "offline")
    if mode == "offline":
        log.info("W&B: no API key configured, logging offline to %s/wandb; upload later with "
                 "`wandb sync %s/wandb/offline-run-*`", save_dir, save_dir)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return StylexWandbLogger(project=project, save_dir=save_dir, name=name, mode=mode, tags=tags, group=group,
                             settings=wandb.Settings(init_timeout=init_timeout), **kwargs)


class StylexWandbLogger(WandbLogger):
    """Lightning's W&B logger, minus its `anonymous` argument (wandb warns on every run that it has no effect),
    plus a fallback: a run that cannot start online (no network, server down) logs offline and says so."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wandb_init.pop("anonymous", None)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None or self._wandb_init.get("mode") in ("offline", "disabled"):
            return super().experiment
        from wandb.errors import Error as WandbError

        try:
            return super().experiment
        except WandbError as exc:
            save_dir = self._wandb_init.get("dir") or "."
            reason = str(exc).splitlines()[0]
            log.warning("W&B: could not start an online run (%s); logging offline to %s/wandb instead. Upload it "
                        "later with `wandb sync %s/wandb/offline-run-*`.", reason, save_dir, save_dir)
            self._wandb_init["mode"] = "offline"
            return super().experiment


def side_by_side(images: list[torch.Tensor], height: int = 256) -> torch.Tensor:
    """Concatenate images [3,H,W] horizontally at a common height (content | styles | output)."""
    import torch.nn.functional as F

    resized = [F.interpolate(im[None].float(), size=(height, max(1, round(im.shape[2] * height / im.shape[1]))),
                             mode="bilinear", align_corners=False, antialias=True)[0] for im in images]
    return torch.cat(resized, dim=2).clamp(0, 1)


class WandbVisualiser(L.Callback):
    """Logs, on rank 0, for up to `max_items` outputs: content | styles | output, the loss curve, and any
    method artifacts that are W&B objects (mask overlays, match tables, attention maps)."""

    # Facts the method reports per output that describe the whole run (adapter, timesteps, backbone).
    RUN_FACTS = ("method", "backbone", "accel", "timesteps", "iters_per_step")

    def __init__(self, max_items: int = 32, panel_height: int = 256):
        self.max_items = max_items
        self.panel_height = panel_height
        self.logged = 0
        self.facts_recorded = False

    def _experiment(self, trainer: L.Trainer):
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                return logger.experiment
        return None

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        if not trainer.is_global_zero or self.logged >= self.max_items:
            return
        experiment = self._experiment(trainer)
        if experiment is None:
            return
        import wandb

        for result in outputs or []:
            if self.logged >= self.max_items:
                break
            self.log_result(experiment, wandb, result)
            self.logged += 1

    def log_result(self, experiment: Any, wandb: Any, result: Stylized) -> None:
        if not self.facts_recorded:
            facts = {k: result.info[k] for k in self.RUN_FACTS if k in result.info}
            experiment.config.update({"run_facts": facts}, allow_val_change=True)
            self.facts_recorded = True
        item = result.item
        panel = side_by_side([item.content_image, *item.style_images, result.image], self.panel_height)
        caption = f"{item.content.name} | {', '.join(s.name for s in item.styles)} | output"
        payload: dict[str, Any] = {f"outputs/{item.name}": wandb.Image(to_pil(panel), caption=caption)}
        if result.loss_curve:
            steps = list(range(len(result.loss_curve)))
            payload[f"loss/{item.name}"] = wandb.plot.line_series(
                xs=steps, ys=[result.loss_curve], keys=["loss"], title=f"loss: {item.name}", xname="iteration")
        for key, value in wandb_objects(result, wandb).items():
            payload[f"{key}/{item.name}"] = value
        experiment.log(payload)
