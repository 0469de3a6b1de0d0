"""The LightningModule every method stands on, and the batched latent-optimisation loop.

Nothing is trained: `predict_step` runs the method's per-image optimisation (or guided sampling) for a whole
batch (see DESIGN.md, "Why predict_step"). The frozen backbone is loaded in `setup` on the strategy's device
and is not a registered submodule, so it stays out of checkpoints and parameter counts.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import lightning as L
import torch
from torch import Tensor
from tqdm.auto import tqdm

from stylex.data.datamodule import Item

log = logging.getLogger(__name__)


@dataclass
class Group:
    """Items of one content size, processed together, with each distinct reference listed once."""

    items: list[Item]
    contents: Tensor  # [B,3,H,W] in [0,1]
    references: list[Tensor]  # distinct references, each [3,h,w]
    ref_index: list[list[int]]  # per item: its references, as indices into `references`


@dataclass
class Stylized:
    """What a method returns per item: the image and everything worth saving or showing beside it."""

    item: Item
    image: Tensor  # [3,H,W] in [0,1], on the CPU
    loss_curve: list[float] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # JSON-able facts for the sidecar
    artifacts: dict[str, Any] = field(default_factory=dict)  # pictures and tables for the loggers


def group_items(items: list[Item]) -> list[Group]:
    """Split a batch by content size (UNet calls need one size) and list shared references once."""
    by_size: dict[tuple[int, ...], list[Item]] = defaultdict(list)
    for item in items:
        by_size[tuple(item.content_image.shape)].append(item)
    groups = []
    for members in by_size.values():
        keys: dict[str, int] = {}
        references: list[Tensor] = []
        ref_index = []
        for item in members:
            indices = []
            for key, image in zip(item.style_keys, item.style_images):
                if key not in keys:
                    keys[key] = len(references)
                    references.append(image)
                indices.append(keys[key])
            ref_index.append(indices)
        groups.append(Group(members, torch.stack([i.content_image for i in members]), references, ref_index))
    return groups


def batched_by_shape(tensors: list[Tensor]) -> list[tuple[list[int], Tensor]]:
    """Stack same-shaped tensors so each shape costs one model call; returns (original indices, stack)."""
    by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for index, tensor in enumerate(tensors):
        by_shape[tuple(tensor.shape)].append(index)
    return [(indices, torch.stack([tensors[i] for i in indices])) for indices in by_shape.values()]


class Timer:
    """Wall-clock seconds per phase, synchronising CUDA so the numbers are real."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.seconds[name] += time.perf_counter() - start


def optimise_latents(
    init: Tensor,
    timesteps: list[int],
    lr: float,
    iters_per_step: int,
    references: Callable[[int], Any],
    loss: Callable[[Tensor, int, Any], Tensor],
    desc: str = "optimising",
    show_progress: bool = True,
    betas: tuple[float, float] = (0.9, 0.999),
) -> tuple[Tensor, Tensor]:
    """Optimise a batch of fp32 latents with one Adam kept across timesteps.

    At each timestep `references(t)` runs once (no grad) and its result is shared by all iterations and
    all images; `loss(latent, t, refs)` returns one loss per image. Adam's update is elementwise, so
    optimising the batch on the summed loss is exactly optimising each image on its own.
    Returns the final latent and the loss curves [B, steps].
    """
    latent = init.detach().clone().float().requires_grad_(True)
    optimiser = torch.optim.Adam([latent], lr=lr, betas=betas)
    curves: list[Tensor] = []
    bar = tqdm(total=len(timesteps) * iters_per_step, desc=desc, leave=False, disable=not show_progress,
               dynamic_ncols=True)
    for t in timesteps:
        with torch.no_grad():
            refs = references(t)
        for _ in range(iters_per_step):
            optimiser.zero_grad(set_to_none=True)
            with torch.enable_grad():  # Lightning's predict loop runs under no_grad
                per_image = loss(latent, t, refs)
                per_image.sum().backward()
            optimiser.step()
            curves.append(per_image.detach())
            bar.update()
            if bar.n % 10 == 0 or bar.n == bar.total:
                bar.set_postfix(t=t, loss=f"{per_image.mean().item():.4f}")
        del refs
    bar.close()
    return latent.detach(), torch.stack(curves, dim=1).float().cpu() if curves else torch.zeros(init.shape[0], 0)


class StyleTransferMethod(L.LightningModule):
    """Base of every method: loads the frozen backbone once; `stylize(group)` does the work."""

    name = "base"

    def __init__(self, backbone: Callable[..., Any] | None = None, seed: int = 0, show_progress: bool = True):
        super().__init__()
        self._backbone_factory = backbone
        self.backbone: Any = None
        self.seed = seed
        self.show_progress = show_progress

    # -- lifecycle ---------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        device = self.trainer.strategy.root_device if self._trainer is not None else torch.device("cpu")
        self.load_models(device)

    def load_models(self, device: torch.device) -> None:
        """Load every frozen model the method uses (once). The pipeline calls it before the run starts, so
        missing weights stop a run before any logger or output exists; Lightning's `setup` calls it again."""
        if self.backbone is None:
            self.use_backbone(self._backbone_factory(device=device))

    def use_backbone(self, backbone: Any) -> None:
        """Attach a loaded backbone (tests call this directly) and let the method install its editors."""
        self.backbone = backbone
        self.on_backbone_ready()

    def on_backbone_ready(self) -> None:
        """Install attention processors etc. Called once per loaded backbone."""

    @property
    def rank_zero(self) -> bool:
        return self._trainer is None or self.trainer.is_global_zero

    # -- the step ----------------------------------------------------------------------------------------
    def predict_step(self, batch: list[Item], batch_idx: int = 0) -> list[Stylized]:
        results: list[Stylized] = []
        for group in group_items(batch):
            torch.manual_seed(group.items[0].seed)
            results += self.stylize(group)
        return results

    def stylize(self, group: Group) -> list[Stylized]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Facts about the method and backbone for every sidecar."""
        return {"method": self.name, "backbone": getattr(self.backbone, "model_id", None)}

    def progress(self, group: Group) -> tuple[str, bool]:
        names = ", ".join(i.name for i in group.items[:2]) + (" ..." if len(group.items) > 2 else "")
        return f"{self.name} [{names}]", self.show_progress and self.rank_zero


class AttentionDistillationBase(StyleTransferMethod):
    """What AD and StyleGallery share: self-attention capture on chosen layers, reference K/V and content Q
    computed once per timestep for the whole batch, and the optimisation loop; subclasses supply the loss."""

    def __init__(self, backbone: Callable[..., Any] | None = None, layers: tuple[str, ...] = ("up_blocks.2", "up_blocks.3"),
                 prompt: str = "", seed: int = 0, show_progress: bool = True, early_exit: bool = True):
        super().__init__(backbone, seed, show_progress)
        self.layer_prefixes = tuple(layers)
        self.prompt = prompt
        self.early_exit = early_exit
        self.layers: list[str] = []
        self.control: Any = None

    def on_backbone_ready(self) -> None:
        from stylex.diffusion.attention import install_control

        self.layers = self.backbone.attention_layers(self.layer_prefixes, "attn1")
        self.control = install_control(self.backbone.unet, self.layers)

    def record(self, latents: Tensor, t: int, keep: tuple[str, ...]) -> dict[str, dict[str, Tensor]]:
        """Run the denoiser up to the last captured layer and return the kept attention tensors per layer."""
        from stylex.diffusion.attention import Recorder, StopForward

        cond = self.backbone.embed_prompt([self.prompt])
        stop = self.control.layers[-1] if self.early_exit else None
        with self.control.use(Recorder(keep, set(self.layers), stop_after=stop)) as recorder:
            try:
                self.backbone.denoise(latents, t, cond)
            except StopForward:
                pass
        return recorder.records

    def record_references(self, latents: list[Tensor], t: int, keep: tuple[str, ...] = ("k", "v")) -> list[dict[str, dict[str, Tensor]]]:
        """Per reference latent [4,h,w]: its attention tensors at t, one batched call per latent size."""
        out: list[dict[str, dict[str, Tensor]]] = [{} for _ in latents]
        for indices, stack in batched_by_shape(latents):
            records = self.record(stack, t, keep)
            for row, index in enumerate(indices):
                out[index] = {layer: {k: v[row:row + 1] for k, v in rec.items()} for layer, rec in records.items()}
        return out
