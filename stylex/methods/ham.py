"""HAM (CVPR 2026), METHODS.md section 4: heterogeneous attention modulation, on SD1.x/2.x UNets.

Three branches share one batch per step: the content and style teachers replay their DDIM inversions, the
student starts from SINI (γ·z_T^c + (1−γ)·AdaIN(z_T^c, z_T^s)) and is DDIM-sampled with CFG on every branch.
GAR blends the student's self-attention q/k/v towards AdaIN(X^c, X^s); LAT gives the student the style
teacher's cross-attention K/V and a query blended towards the content's.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from stylex.diffusion.adain import sini
from stylex.diffusion.attention import Editor
from stylex.diffusion.ddim import ddim_timesteps
from stylex.diffusion.editors import CONTENT, STUDENT, STYLE, ByKind, GAREditor, LATEditor, branch_layout
from stylex.diffusion.sampling import (BatchLayout, evenly_spaced, first_references, prepare_teachers,
                                       sample_branches, sampling_grid)
from stylex.errors import ConfigError
from stylex.methods.base import Group, StyleTransferMethod, Stylized, Timer

log = logging.getLogger(__name__)

BRANCHES = (CONTENT, STYLE, STUDENT)


def branch_grid(previews: list[dict[str, Tensor]], rows: dict[str, int]) -> Tensor:
    """One item's previews as an image grid [3, branches·H, steps·W]: a row per branch, a column per step.

    `previews[j][branch]` holds decoded images [n,3,H,W] of step j; `rows[branch]` picks this item's row."""
    return torch.cat([torch.cat([p[name][rows[name]] for p in previews], dim=2) for name in BRANCHES], dim=1)


class HAM(StyleTransferMethod):
    name = "ham"

    def __init__(self, backbone: Callable[..., Any] | None = None,
                 gar_layers: Sequence[str] = ("up_blocks.1", "up_blocks.2", "up_blocks.3"),
                 lat_layers: Sequence[str] = ("up_blocks.1", "up_blocks.2", "up_blocks.3"),
                 gar_targets: Sequence[str] = ("q", "k", "v"), t_range: Sequence[int] = (0, 1000),
                 num_steps: int = 50, alpha: float = 0.75, beta: float = 0.25, gamma: float = 0.5,
                 guidance_scale: float = 7.5, temperature: float = 1.0, prompt: str = "",
                 style_prompt: str | None = None, log_timesteps: int = 3, seed: int = 0, show_progress: bool = True):
        super().__init__(backbone, seed, show_progress)
        if set(gar_targets) - {"q", "k", "v"}:
            raise ConfigError(f"method.gar_targets={list(gar_targets)} must be a subset of [q, k, v].")
        if len(t_range) != 2 or t_range[0] > t_range[1]:
            raise ConfigError(f"method.t_range={list(t_range)} must be [low, high] with low <= high.")
        self.gar_prefixes, self.lat_prefixes = tuple(gar_layers), tuple(lat_layers)
        self.gar_targets, self.t_range = tuple(gar_targets), (int(t_range[0]), int(t_range[1]))
        self.num_steps, self.alpha, self.beta, self.gamma = num_steps, alpha, beta, gamma
        self.guidance_scale, self.temperature = guidance_scale, temperature
        self.prompt, self.style_prompt = prompt, style_prompt or None
        self.log_timesteps = log_timesteps
        self.gar_layers: list[str] = []
        self.lat_layers: list[str] = []
        self.control: Any = None

    def on_backbone_ready(self) -> None:
        from stylex.diffusion.attention import install_control

        bb = self.backbone
        self.gar_layers = bb.attention_layers(self.gar_prefixes, "attn1") if self.gar_prefixes else []
        self.lat_layers = bb.attention_layers(self.lat_prefixes, "attn2") if self.lat_prefixes else []
        self.control = install_control(bb.unet, self.gar_layers + self.lat_layers)
        if self.lat_layers and self.style_prompt is None:
            log.warning("HAM: no method.style_prompt given, so LAT reduces to its query blend: in SD1.x/2.x "
                        "cross-attention K/V depend only on the prompt, and the style teacher's prompt is then the "
                        "content prompt. Set method.style_prompt='a painting in the style of ...' to transplant style.")

    def edits(self, t: int) -> bool:
        return self.t_range[0] <= t <= self.t_range[1]

    def layout(self, batch: int, styles: int) -> BatchLayout:
        return branch_layout(batch, styles, guided=self.guidance_scale != 1.0)

    def editor(self, layout: BatchLayout, style_of: list[int]) -> Editor:
        gar = GAREditor(layout, style_of, self.alpha, self.gar_targets, self.temperature)
        lat = LATEditor(layout, style_of, self.beta, self.temperature)
        return ByKind(gar, lat)

    def transfer(self, content: dict[int, Tensor], style: dict[int, Tensor], style_of: list[int],
                 on_step: Callable[[int, int, dict[str, Tensor]], None] | None = None) -> Tensor:
        """Sample the students from the teachers' trajectories {t: latents}; returns the final latents."""
        bb = self.backbone
        t_start = sampling_grid(bb.scheduler_config, self.num_steps, content=content, style=style)[0]
        z_c = content[t_start]
        init = sini(z_c, style[t_start][style_of], self.gamma)
        layout = self.layout(z_c.shape[0], style[t_start].shape[0])
        editor = self.editor(layout, style_of)
        text = bb.embed_prompt(["", self.prompt, self.style_prompt or self.prompt])
        cond = layout.conditioning(text[0:1], {CONTENT: text[1:2], STUDENT: text[1:2], STYLE: text[2:3]})

        def predict(x: Tensor, t: int) -> Tensor:
            with self.control.use(editor if self.edits(t) else Editor()):
                return bb.denoise(x, t, cond)

        out = sample_branches(predict, layout, {STUDENT: init}, {CONTENT: content, STYLE: style},
                              bb.scheduler_config, self.num_steps, self.guidance_scale, on_step)
        return out[STUDENT]

    def wants_wandb(self) -> bool:
        """Branch previews cost VAE decodes: make them only when a W&B logger will show them."""
        if self.log_timesteps <= 0 or self._trainer is None or not self.rank_zero:
            return False
        from lightning.pytorch.loggers import WandbLogger

        return any(isinstance(logger, WandbLogger) for logger in self.trainer.loggers)

    def stylize(self, group: Group) -> list[Stylized]:
        bb = self.backbone
        timer = Timer()
        used, style_of = first_references(group.ref_index, self.name)
        timesteps = ddim_timesteps(bb.scheduler_config, self.num_steps)
        shown = set(evenly_spaced(timesteps, self.log_timesteps)) if self.wants_wandb() else set()
        x0s: list[tuple[int, dict[str, Tensor]]] = []
        desc, show = self.progress(group)
        bar = tqdm(total=2 * self.num_steps, desc=desc, leave=False, disable=not show, dynamic_ncols=True)

        def on_step(i: int, t: int, x0: dict[str, Tensor]) -> None:
            bar.update()
            if t in shown:
                x0s.append((t, x0))

        with timer.phase("encode_invert"):
            content, style = prepare_teachers(bb, group.contents, [group.references[i] for i in used],
                                              self.num_steps, on_step=lambda i, t: bar.update())
        with timer.phase("sample"):
            latent = self.transfer(content, style, style_of, on_step)
        bar.close()
        with timer.phase("decode"), torch.no_grad():
            images = bb.decode(latent).cpu()
        artifacts: list[dict[str, Any]] = [{} for _ in group.items]
        if x0s:
            with timer.phase("previews"):
                artifacts = self.branch_artifacts(x0s, style_of)
        info = {**self.describe(), "timesteps": timesteps, "gar_layers": self.gar_layers,
                "lat_layers": self.lat_layers, "gar_targets": list(self.gar_targets), "t_range": list(self.t_range),
                "alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "guidance_scale": self.guidance_scale,
                "temperature": self.temperature, "prompt": self.prompt, "style_prompt": self.style_prompt,
                "lat_kv_transplant": self.style_prompt is not None and bool(self.lat_layers),
                "style_size": list(group.contents.shape[-2:])}
        per_image = {k: v / len(group.items) for k, v in timer.seconds.items()}
        return [Stylized(item, images[b], [], dict(per_image), info, artifacts[b])
                for b, item in enumerate(group.items)]

    @torch.no_grad()
    def branch_artifacts(self, x0s: list[tuple[int, dict[str, Tensor]]], style_of: list[int]) -> list[dict[str, Any]]:
        """Per item: the three branches' predicted clean images at the logged steps, as one W&B image grid."""
        import wandb

        from stylex.data.images import to_pil

        previews = [{name: self.backbone.decode(x0[name]).cpu() for name in BRANCHES} for _, x0 in x0s]
        caption = ("rows: content teacher, style teacher, student; columns: predicted x0 at t = "
                   + ", ".join(str(t) for t, _ in x0s))
        return [{"wandb": {"branches": wandb.Image(to_pil(branch_grid(previews, {CONTENT: b, STYLE: s, STUDENT: b})),
                                                   caption=caption)}}
                for b, s in enumerate(style_of)]
