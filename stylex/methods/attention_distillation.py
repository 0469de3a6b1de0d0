"""Attention Distillation (AD, CVPR 2025), METHODS.md section 1: energy-guided latent optimisation.

At each timestep t the clean style latents give K_s, V_s and the clean content latent gives Q_c (no grad,
once per t for the whole batch); the optimised latent gives Q and the attention output O. The loss is
Σ_l mean|O_l − SDPA(s·Q_l, K_s, V_s)| + w_c · Σ_l mean|Q_l − Q_c,l|, several styles concatenated along tokens.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

import torch
from torch import Tensor

from stylex.diffusion.attention import sdpa
from stylex.diffusion.ddim import ddim_timesteps
from stylex.methods.base import AttentionDistillationBase, Group, Stylized, Timer, optimise_latents


def style_targets(q: Tensor, style_kv: list[tuple[Tensor, Tensor]], temperature: float) -> Tensor:
    """SDPA(s·Q, K_s, V_s) per image; `style_kv[b]` is image b's (K, V) with its references concatenated.

    Images sharing the same reference tensors are computed in one SDPA call. The result is detached.
    """
    with torch.no_grad():
        out = torch.empty_like(q)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for b, (k, v) in enumerate(style_kv):
            groups[(id(k), id(v))].append(b)
        for rows in groups.values():
            k, v = style_kv[rows[0]]
            idx = torch.tensor(rows, device=q.device)
            out[idx] = sdpa(q[idx], k.expand(len(rows), -1, -1, -1), v.expand(len(rows), -1, -1, -1), temperature)
        return out


def l1_per_image(a: Tensor, b: Tensor) -> Tensor:
    """mean |a − b| over everything but the batch axis -> [B]."""
    return (a - b).abs().flatten(1).mean(dim=1)


def concat_reference_kv(refs: list[dict[str, dict[str, Tensor]]], indices: list[int], layer: str) -> tuple[Tensor, Tensor]:
    """K/V of several references joined along the token axis (AD's multi-style rule)."""
    if len(indices) == 1:
        rec = refs[indices[0]][layer]
        return rec["k"], rec["v"]
    return (torch.cat([refs[i][layer]["k"] for i in indices], dim=2),
            torch.cat([refs[i][layer]["v"] for i in indices], dim=2))


class AttentionDistillation(AttentionDistillationBase):
    name = "ad"

    def __init__(self, backbone: Callable[..., Any] | None = None, layers: tuple[str, ...] = ("up_blocks.2", "up_blocks.3"),
                 num_steps: int = 200, iters_per_step: int = 1, lr: float = 0.05, style_temperature: float = 1.0,
                 content_weight: float = 0.25, prompt: str = "", init: str = "content", seed: int = 0,
                 show_progress: bool = True, early_exit: bool = True):
        super().__init__(backbone, layers, prompt, seed, show_progress, early_exit)
        if init not in ("content", "noise"):
            from stylex.errors import ConfigError

            raise ConfigError(f"method.init={init!r} is not one of: content, noise.")
        self.num_steps, self.iters_per_step, self.lr = num_steps, iters_per_step, lr
        self.style_temperature, self.content_weight, self.init = style_temperature, content_weight, init

    def ad_loss(self, latent: Tensor, t: int, refs: dict[str, Any]) -> Tensor:
        """Per-image AD loss at timestep t; `refs` holds the per-image style K/V and the content Q per layer."""
        student = self.record(latent, t, ("q", "out"))
        style = latent.new_zeros(latent.shape[0])
        content = latent.new_zeros(latent.shape[0])
        for layer in self.layers:
            q, out = student[layer]["q"], student[layer]["out"]
            target = style_targets(q.detach(), refs["style_kv"][layer], self.style_temperature)
            style = style + l1_per_image(out.float(), target.float())
            content = content + l1_per_image(q.float(), refs["content_q"][layer].float())
        return style + self.content_weight * content

    def stylize(self, group: Group) -> list[Stylized]:
        bb = self.backbone
        timer = Timer()
        with timer.phase("encode"):
            content_latents = bb.encode(group.contents)
            ref_latents = [bb.encode(r[None])[0] for r in group.references]
        timesteps = ddim_timesteps(bb.scheduler_config, self.num_steps)

        def references(t: int) -> dict[str, Any]:
            style = self.record_references(ref_latents, t, ("k", "v"))
            content = self.record(content_latents, t, ("q",))
            return {
                "style_kv": {layer: [concat_reference_kv(style, idx, layer) for idx in group.ref_index]
                             for layer in self.layers},
                "content_q": {layer: content[layer]["q"] for layer in self.layers},
            }

        if self.init == "content":
            init = content_latents
        else:
            init = torch.randn(content_latents.shape, generator=torch.Generator().manual_seed(group.items[0].seed)).to(content_latents)
        desc, show = self.progress(group)
        with timer.phase("optimise"):
            latent, curves = optimise_latents(init, timesteps, self.lr, self.iters_per_step, references,
                                              self.ad_loss, desc, show)
        with timer.phase("decode"), torch.no_grad():
            images = bb.decode(latent).cpu()
        info = {**self.describe(), "timesteps": timesteps, "iters_per_step": self.iters_per_step, "lr": self.lr}
        per_image = {k: v / len(group.items) for k, v in timer.seconds.items()}
        return [Stylized(item, images[b], curves[b].tolist(), dict(per_image), info)
                for b, item in enumerate(group.items)]
