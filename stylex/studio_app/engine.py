"""The studio's work, done with the batch run's own code: the datamodule makes the item, StyleGallery's stage 1
(`dfcc_regions`, through the content-addressed cache) and stage 2 (`match_regions`) make the plan the page
shows, and "Stylize" is the batch step itself (`predict_step`) with the plan's files as its settings, its
output written as the run's writer writes it. So a plan gives the same image here and in `stylex.run`."""
from __future__ import annotations

import copy
import dataclasses
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Sequence

import numpy as np
import torch
from omegaconf import DictConfig, open_dict
from torch import Tensor

from stylex.errors import ConfigError, InputError
from stylex.matching import Match, read_overrides
from stylex.studio_app.edits import Edits
from stylex.studio_app.inputs import Source
from stylex.studio_app.plan_files import PlanFiles, batch_command, save_plan

Progress = Callable[[float, str], None]


@dataclass
class View:
    """One analysed plan, as the page shows it."""

    name: str  # the output's name, {content}__{references}
    content: Tensor  # [3,H,W] in [0,1]
    content_labels: np.ndarray  # [h, w] on the latent grid
    refs: list[Tensor]
    ref_labels: list[np.ndarray]
    ref_names: list[str]
    matches: list[Match]
    rows: list[dict[str, Any]]  # the match table
    plan: PlanFiles
    command: str


@dataclass
class Result:
    image: Path
    sidecar: Path
    reused: bool  # already made with this plan and config (nothing recomputed)


def no_progress(fraction: float, text: str) -> None:
    pass


def load_method(cfg: DictConfig) -> Any:
    """StyleGallery as `stylex.run` builds it (stage-1 cache on), its models loaded on the device a run with
    this trainer config computes on (debug=smoke: the CPU)."""
    from stylex.backbones import resolve_device
    from stylex.pipeline import instantiate

    if not str(cfg.method.get("_target_", "")).endswith("StyleGallery"):
        raise ConfigError(f"the studio edits StyleGallery's regions and matches, but method is "
                          f"{cfg.method.get('_target_')}. Use a StyleGallery experiment, e.g. experiment=gallery_lcm.")
    if cfg.data.get("pairing") != "gallery":
        raise ConfigError(f"data.pairing={cfg.data.get('pairing')}: the studio shows one content against all its "
                          f"references (data.pairing=gallery, as the StyleGallery experiments set it).")
    method = instantiate(cfg.method, "method")
    method.load_models(torch.device("cpu" if cfg.trainer.get("accelerator") == "cpu" else resolve_device("auto")))
    method.eval()  # as Lightning's predict loop leaves it
    return method


class Studio:
    """One loaded method shared by every page session; calls into it are serialised."""

    def __init__(self, cfg: DictConfig, root: Path, method: Any, base_overrides: Sequence[str] = ()):
        self.cfg, self.root, self.method = cfg, Path(root).resolve(), method
        self.base = list(base_overrides)
        self.gallery_mode = bool((cfg.get("gallery") or {}).get("path"))
        self.lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)

    # -- the batch run's view of a plan ------------------------------------------------------------------
    def run_config(self, plan: PlanFiles) -> DictConfig:
        """The config `stylex.run` composes from the page's command: this config with the plan's files."""
        cfg = copy.deepcopy(self.cfg)
        with open_dict(cfg):
            cfg.method.matching.overrides = str(plan.overrides) if plan.overrides else {}
            cfg.method.user_masks = str(plan.masks) if plan.masks else None
        return cfg

    def use_plan(self, plan: PlanFiles) -> None:
        """Give the loaded method the plan's settings, read from the files as a run reads them."""
        overrides = read_overrides(plan.overrides) if plan.overrides else {}
        self.method.matching = dataclasses.replace(self.method.matching, overrides=overrides)
        self.method.user_masks = plan.masks

    def datamodule(self, content: Source, styles: Sequence[Source], cfg: DictConfig) -> Any:
        from stylex.pipeline import instantiate

        if not self.gallery_mode and not styles:
            raise InputError("no style reference chosen. Tick one or more references, or upload some.")
        return instantiate(cfg.data, "data", content=str(content.path),
                           styles=None if self.gallery_mode else [str(s.path) for s in styles])

    def command(self, content: Source, styles: Sequence[Source], plan: PlanFiles) -> str:
        return batch_command(self.base, content.path, None if self.gallery_mode else [s.path for s in styles], plan)

    # -- stages 1 and 2, for the page --------------------------------------------------------------------
    def analyse(self, content: Source, styles: Sequence[Source], edits: Edits,
                progress: Progress = no_progress) -> View:
        """Regions of the content and every reference, and the matches, under the page's edits."""
        from stylex.methods.base import group_items
        from stylex.methods.region_plan import match_rows

        plan = save_plan(self.root, content.name, edits)
        with self.lock, torch.no_grad():
            self.use_plan(plan)
            datamodule = self.datamodule(content, styles, self.run_config(plan))
            batch = next(iter(datamodule.predict_dataloader()))
            group = group_items(batch)[0]
            stages = {"regions": (0.1, f"Stage 1: regions of {1 + len(group.references)} image(s) (cached after "
                                       f"the first time)"), "matching": (0.8, "Stage 2: matching regions")}

            def phase(name: str) -> ContextManager[None]:
                progress(*stages[name])
                return nullcontext()

            group, _, _, plans = self.method.plan_group(group, phase)
        item, region_plan = group.items[0], plans[0]
        names = [s.name for s in item.styles]
        return View(item.name, item.content_image, region_plan.content_labels.cpu().numpy(), list(item.style_images),
                    [lab.cpu().numpy() for lab in region_plan.ref_labels], names, region_plan.matches,
                    match_rows(region_plan.matches, names), plan, self.command(content, styles, plan))

    # -- stage 3: the batch step -------------------------------------------------------------------------
    def stylize(self, content: Source, styles: Sequence[Source], plan: PlanFiles) -> Result:
        """The run's predict step on the plan's item, written into the plan's folder as the run's writer
        writes it; a result already there for this config and inputs is reused (as a run resumes)."""
        import lightning as L

        from stylex.callbacks.writer import write_result
        from stylex.data.outputs import OutputStore
        from stylex.pipeline import config_hash

        cfg = self.run_config(plan)
        store, chash = OutputStore(plan.folder), config_hash(cfg)
        with self.lock, torch.no_grad():
            self.use_plan(plan)
            datamodule = self.datamodule(content, styles, cfg)
            datamodule.bind(store, chash)
            if not datamodule.prepare_items():
                name = datamodule.skipped[0]
                return Result(store.image_path(name), store.sidecar_path(name), reused=True)
            batch = next(iter(datamodule.predict_dataloader()))
            L.seed_everything(cfg.seed, verbose=False)
            results = self.method.predict_step(batch, 0)
        for result in results:
            write_result(store, result, chash)
        name = results[0].item.name
        return Result(store.image_path(name), store.sidecar_path(name), reused=False)
