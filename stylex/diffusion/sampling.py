"""DDIM sampling of several branches in one batch (teachers replaying inversions beside students), with CFG.

StyleID and HAM run a content teacher, a style teacher and a student side by side so that the student's
attention can use the teachers' q/k/v of the same step, layer and guidance half. `BatchLayout` makes the row
order explicit: [uncond | cond] halves outermost (diffusers' CFG convention, only when guided), then the
branches in order, each with its own number of rows. Teachers are not sampled: at each timestep t they take
their stored inversion latent at t (METHODS.md 0.3: trajectories keyed by timestep).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from stylex.diffusion.ddim import ddim_invert, ddim_timesteps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchLayout:
    """Row layout of one denoiser batch: halves × branches × rows (`branches` = ((name, rows), ...))."""

    branches: tuple[tuple[str, int], ...]
    guided: bool = False

    @classmethod
    def of(cls, guided: bool = False, **rows: int) -> "BatchLayout":
        """`BatchLayout.of(guided=True, content=2, style=1, student=2)`; keyword order is row order."""
        return cls(tuple(rows.items()), guided)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.branches)

    @property
    def halves(self) -> int:
        return 2 if self.guided else 1

    @property
    def rows(self) -> int:
        """Rows in one half."""
        return sum(n for _, n in self.branches)

    @property
    def total(self) -> int:
        return self.halves * self.rows

    def size(self, name: str) -> int:
        return dict(self.branches)[name]

    def stack(self, parts: Mapping[str, Tensor]) -> Tensor:
        """One half: the branches' tensors [n, ...] concatenated in layout order -> [rows, ...]."""
        for name, n in self.branches:
            if parts[name].shape[0] != n:
                raise ValueError(f"branch {name!r} has {parts[name].shape[0]} rows, the layout says {n}")
        return torch.cat([parts[name] for name in self.names])

    def unstack(self, x: Tensor) -> dict[str, Tensor]:
        """Inverse of `stack`: [rows, ...] -> {branch: [n, ...]}."""
        return dict(zip(self.names, x.split([n for _, n in self.branches])))

    def expand(self, parts: Mapping[str, Tensor]) -> Tensor:
        """The same rows in every half -> [total, ...] (latents: each branch is denoised once per half)."""
        half = self.stack(parts)
        return half.repeat(self.halves, *([1] * (half.dim() - 1))) if self.guided else half

    def split(self, x: Tensor) -> dict[str, Tensor]:
        """A batch tensor [total, ...] -> {branch: [halves, n, ...]} (views), for editors."""
        y = x.unflatten(0, (self.halves, self.rows))
        return dict(zip(self.names, y.split([n for _, n in self.branches], dim=1)))

    def join(self, parts: Mapping[str, Tensor]) -> Tensor:
        """Inverse of `split`: {branch: [halves, n, ...]} -> [total, ...]."""
        return torch.cat([parts[name] for name in self.names], dim=1).flatten(0, 1)

    def guide(self, prediction: Tensor, scale: float) -> Tensor:
        """Classifier-free guidance: [total, ...] -> [rows, ...] = u + scale·(c − u) (or the single half)."""
        if not self.guided:
            return prediction
        uncond, cond = prediction.unflatten(0, (2, self.rows)).unbind(0)
        return uncond + scale * (cond - uncond)

    def conditioning(self, uncond: Tensor, cond: Mapping[str, Tensor]) -> Tensor:
        """Text states for the batch: `uncond` [1, L, D] in the first half (when guided), each branch's
        `cond[name]` [1, L, D] for its rows in the last half -> [total, L, D]."""
        half = torch.cat([cond[name].expand(n, -1, -1) for name, n in self.branches])
        return torch.cat([uncond.expand(self.rows, -1, -1), half]) if self.guided else half


def sampling_grid(scheduler_config: dict, num_steps: int, **trajectories: Mapping[int, Tensor]) -> list[int]:
    """The DDIM sampling grid (descending), checked against the trajectories that teachers replay on it."""
    timesteps = ddim_timesteps(scheduler_config, num_steps)
    for name, trajectory in trajectories.items():
        missing = [t for t in timesteps if t not in trajectory]
        if missing:
            raise ValueError(f"the {name} trajectory has no latent at t={missing[:3]}...: invert with the same "
                             f"number of steps and scheduler config as sampling ({num_steps})")
    return timesteps


@torch.no_grad()
def sample_branches(
    predict: Callable[[Tensor, int], Tensor],
    layout: BatchLayout,
    students: Mapping[str, Tensor],
    teachers: Mapping[str, Mapping[int, Tensor]],
    scheduler_config: dict,
    num_steps: int,
    guidance_scale: float = 1.0,
    on_step: Callable[[int, int, dict[str, Tensor]], None] | None = None,
) -> dict[str, Tensor]:
    """DDIM-sample the `students` (latents at the first grid timestep) for `num_steps` steps.

    At each t the batch is every branch's latent (teachers: `teachers[name][t]`), repeated per guidance half;
    `predict(batch, t)` returns the model prediction for it (the caller binds prompts and editors).
    `on_step(i, t, x0)` gets every branch's predicted clean latent (after guidance) for previews.
    Returns the students' final latents.
    """
    from diffusers import DDIMScheduler

    if set(students) | set(teachers) != set(layout.names) or set(students) & set(teachers):
        raise ValueError(f"every branch of {layout.names} must be a student or a teacher, not both")
    if guidance_scale != 1.0 and not layout.guided:
        raise ValueError(f"guidance_scale={guidance_scale} needs a guided layout (an unconditional half)")
    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(num_steps)
    timesteps = sampling_grid(scheduler_config, num_steps, **teachers)
    state = {name: x.float() for name, x in students.items()}
    for i, t in enumerate(timesteps):
        current = {name: teachers[name][t].float() if name in teachers else state[name] for name in layout.names}
        prediction = layout.guide(predict(layout.expand(current), t).float(), guidance_scale)
        out = scheduler.step(prediction, t, layout.stack(current))
        stepped = layout.unstack(out.prev_sample)
        state = {name: stepped[name] for name in students}
        if on_step is not None:
            on_step(i, t, layout.unstack(out.pred_original_sample))
    return state


def encode_branches(backbone: Any, contents: Tensor, references: list[Tensor]) -> Tensor:
    """Latents of contents [B,3,H,W] then references (each [3,h,w]), the references resized to the contents'
    size so every branch shares one denoiser call per step (the reference codes run both at 512²)."""
    size = tuple(contents.shape[-2:])
    styles = torch.stack([r if tuple(r.shape[-2:]) == size else
                          F.interpolate(r[None].float(), size=size, mode="bilinear", align_corners=False,
                                        antialias=True)[0].clamp(0, 1) for r in references])
    return backbone.encode(torch.cat([contents.to(styles.dtype), styles]))


def prepare_teachers(
    backbone: Any,
    contents: Tensor,
    references: list[Tensor],
    num_steps: int,
    prompt: str = "",
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[dict[int, Tensor], dict[int, Tensor]]:
    """Encode contents [B,3,H,W] and references (each [3,h,w]) and DDIM-invert them all in one batch.

    References are resized to the contents' size so that every branch shares one UNet call per step (the
    reference codes run both at 512²). Returns the content and style trajectories {t: [B|R,4,h,w]}.
    """
    latents = encode_branches(backbone, contents, references)
    cond = backbone.embed_prompt([prompt])
    trajectory = ddim_invert(latents, lambda x, t: backbone.denoise(x, t, cond), backbone.scheduler_config,
                             num_steps, on_step)
    b = contents.shape[0]
    return {t: z[:b] for t, z in trajectory.items()}, {t: z[b:] for t, z in trajectory.items()}


def evenly_spaced(values: list[int], count: int) -> list[int]:
    """`count` entries of `values` spread from first to last (for preview timesteps)."""
    if count <= 0 or not values:
        return []
    if count == 1:
        return [values[-1]]
    picks = sorted({round(i * (len(values) - 1) / (count - 1)) for i in range(count)})
    return [values[i] for i in picks]


def first_references(ref_index: list[list[int]], method: str) -> tuple[list[int], list[int]]:
    """One style per output (each item's first reference): the distinct references used, and per item its row
    among them, so each reference is one style-teacher row shared by every item that uses it."""
    if any(len(idx) > 1 for idx in ref_index):
        log.warning("%s uses one style per output; items with several references use their first one.", method)
    used = sorted({idx[0] for idx in ref_index})
    return used, [used.index(idx[0]) for idx in ref_index]
