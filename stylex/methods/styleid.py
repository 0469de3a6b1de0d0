"""StyleID (CVPR 2024), METHODS.md section 3: training-free style injection into self-attention.

Content and style are DDIM-inverted (empty prompt, no CFG). Sampling starts from AdaIN(z_T^c, z_T^s) and, in
the chosen self-attention layers, the student attends with Q̃ = γ·Q_c + (1−γ)·Q to the style's K_s, V_s at
temperature T. Instead of storing every feature of both inversions (> 3 GB per image in the reference code),
only the two latent trajectories are kept: the batch at step t is [content at z_t^c | style at z_t^s |
student], so Q_c, K_s, V_s are recomputed in the same UNet call as the student's own attention.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from tqdm.auto import tqdm

from stylex.diffusion.adain import adain_latent
from stylex.diffusion.attention import Editor
from stylex.diffusion.ddim import ddim_timesteps
from stylex.diffusion.editors import CONTENT, STUDENT, STYLE, StyleIDEditor, branch_layout
from stylex.diffusion.sampling import (BatchLayout, first_references, prepare_teachers, sample_branches,
                                       sampling_grid)
from stylex.methods.base import Group, StyleTransferMethod, Stylized, Timer


class StyleID(StyleTransferMethod):
    name = "styleid"

    def __init__(self, backbone: Callable[..., Any] | None = None,
                 layers: tuple[str, ...] = ("up_blocks.2", "up_blocks.3"),
                 num_steps: int = 50, gamma: float = 0.75, temperature: float = 1.5, adain_init: bool = True,
                 inject_until_t: int = 0, guidance_scale: float = 1.0, prompt: str = "", seed: int = 0,
                 show_progress: bool = True):
        super().__init__(backbone, seed, show_progress)
        self.layer_prefixes = tuple(layers)
        self.num_steps, self.gamma, self.temperature = num_steps, gamma, temperature
        self.adain_init, self.inject_until_t = adain_init, inject_until_t
        self.guidance_scale, self.prompt = guidance_scale, prompt
        self.layers: list[str] = []
        self.control: Any = None

    def on_backbone_ready(self) -> None:
        from stylex.diffusion.attention import install_control

        self.layers = self.backbone.attention_layers(self.layer_prefixes, "attn1")
        self.control = install_control(self.backbone.unet, self.layers)

    def injects(self, t: int) -> bool:
        """The reference code injects at every step; `inject_until_t` > 0 stops injecting at small t."""
        return t > self.inject_until_t

    def layout(self, batch: int, styles: int) -> BatchLayout:
        return branch_layout(batch, styles, guided=self.guidance_scale != 1.0)

    def transfer(self, content: dict[int, Tensor], style: dict[int, Tensor], style_of: list[int],
                 on_step: Callable[[int, int, dict[str, Tensor]], None] | None = None) -> Tensor:
        """Sample the students from the two trajectories {t: latents}; returns the final latents [B,4,h,w]."""
        bb = self.backbone
        t_start = sampling_grid(bb.scheduler_config, self.num_steps, content=content, style=style)[0]
        z_c, z_s = content[t_start], style[t_start][style_of]
        init = adain_latent(z_c, z_s) if self.adain_init else z_c
        layout = self.layout(z_c.shape[0], style[t_start].shape[0])
        editor = StyleIDEditor(layout, style_of, self.gamma, self.temperature)
        text = bb.embed_prompt(["", self.prompt])
        cond = layout.conditioning(text[:1], {name: text[1:] for name in layout.names})

        def predict(x: Tensor, t: int) -> Tensor:
            with self.control.use(editor if self.injects(t) else Editor()):
                return bb.denoise(x, t, cond)

        out = sample_branches(predict, layout, {STUDENT: init}, {CONTENT: content, STYLE: style},
                              bb.scheduler_config, self.num_steps, self.guidance_scale, on_step)
        return out[STUDENT]

    def stylize(self, group: Group) -> list[Stylized]:
        bb = self.backbone
        timer = Timer()
        used, style_of = first_references(group.ref_index, self.name)
        desc, show = self.progress(group)
        bar = tqdm(total=2 * self.num_steps, desc=desc, leave=False, disable=not show, dynamic_ncols=True)
        with timer.phase("encode_invert"):
            content, style = prepare_teachers(bb, group.contents, [group.references[i] for i in used],
                                              self.num_steps, on_step=lambda i, t: bar.update())
        with timer.phase("sample"):
            latent = self.transfer(content, style, style_of, on_step=lambda i, t, x0: bar.update())
        bar.close()
        with timer.phase("decode"), torch.no_grad():
            images = bb.decode(latent).cpu()
        info = {**self.describe(), "timesteps": ddim_timesteps(bb.scheduler_config, self.num_steps),
                "layers": self.layers, "gamma": self.gamma, "temperature": self.temperature,
                "adain_init": self.adain_init, "inject_until_t": self.inject_until_t,
                "guidance_scale": self.guidance_scale, "style_size": list(group.contents.shape[-2:])}
        per_image = {k: v / len(group.items) for k, v in timer.seconds.items()}
        return [Stylized(item, images[b], [], dict(per_image), info) for b, item in enumerate(group.items)]
