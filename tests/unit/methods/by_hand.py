"""Independent computations the method tests compare against, written with plain torch ops.

Attention tensors are captured with forward hooks on each layer's own projections (`to_q`, `to_k`, `to_v`, and
the input of `to_out[0]`, which is the attention output), so they do not go through stylex's processors or
recorders; attention, masks and L1 losses are written out.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor


def self_attention_layers(unet: torch.nn.Module, prefixes: tuple[str, ...] = ("up_blocks.2.", "up_blocks.3.")
                          ) -> list[str]:
    """The `attn1` modules under the prefixes, in registration (= execution) order."""
    return [name for name, _ in unet.named_modules() if name.endswith(".attn1") and name.startswith(prefixes)]


@contextmanager
def captured(unet: torch.nn.Module, layers: list[str]) -> Iterator[dict[str, dict[str, Tensor]]]:
    """While active, each forward fills {layer: {"q", "k", "v", "out"}} with [B, heads, N, d] tensors."""
    store: dict[str, dict[str, Tensor]] = {}
    handles = []
    for name in layers:
        attn = unet.get_submodule(name)

        def split(x: Tensor, heads: int = attn.heads) -> Tensor:
            b, n, c = x.shape
            return x.view(b, n, heads, c // heads).transpose(1, 2)

        for proj in ("q", "k", "v"):
            handles.append(getattr(attn, f"to_{proj}").register_forward_hook(
                lambda _m, _i, out, name=name, proj=proj, split=split: store.setdefault(name, {}).__setitem__(
                    proj, split(out))))
        handles.append(attn.to_out[0].register_forward_pre_hook(
            lambda _m, args, name=name, split=split: store.setdefault(name, {}).__setitem__("out", split(args[0]))))
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def empty_prompt(backbone) -> Tensor:
    """The text encoder's hidden states for "" (METHODS.md: the empty prompt)."""
    tok = backbone.tokenizer
    ids = tok([""], padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return backbone.text_encoder(ids.input_ids)[0]


def attention_tensors(backbone, latent: Tensor, t: int) -> dict[str, dict[str, Tensor]]:
    """One UNet call on `latent` at t with the empty prompt; the captured tensors of the last six self-attention
    layers (with their graph when grad is on)."""
    unet = backbone.unet
    cond = empty_prompt(backbone).expand(latent.shape[0], -1, -1)
    with captured(unet, self_attention_layers(unet)) as store:
        unet(latent, torch.full((latent.shape[0],), t), encoder_hidden_states=cond)
    return store


def softmax_attention(q: Tensor, k: Tensor, v: Tensor, temperature: float) -> Tensor:
    """softmax(temperature · q kᵀ / √d) v."""
    return torch.softmax(temperature * q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ v


def nearest(labels: Tensor, grid: tuple[int, int]) -> Tensor:
    """The label map sampled on a coarser or finer grid: cell i takes input cell floor(i·h/gh) (METHODS.md 2.3)."""
    h, w = labels.shape
    rows = torch.arange(grid[0]) * h // grid[0]
    cols = torch.arange(grid[1]) * w // grid[1]
    return labels[rows][:, cols]


def grid_of(n_tokens: int, hw: tuple[int, int]) -> tuple[int, int]:
    """The token grid of a layer with n_tokens over a latent of size hw (a power-of-two downsampling)."""
    factor = 1
    while (hw[0] // factor) * (hw[1] // factor) > n_tokens:
        factor *= 2
    return hw[0] // factor, hw[1] // factor


def adam(x: Tensor, grads_of, steps: list[int], lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> Tensor:
    """Adam written out: one state (m, v, step count) over the whole list of steps; `grads_of(x, t)`."""
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    for k, t in enumerate(steps, start=1):
        g = grads_of(x, t)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        x = x - lr * (m / (1 - betas[0] ** k)) / ((v / (1 - betas[1] ** k)).sqrt() + eps)
    return x
