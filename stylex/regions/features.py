"""Time-weighted mixing of diffusion features recorded along a DDIM inversion (METHODS.md 2.1, step 3).

Early (low-noise) steps carry sharp layout, late steps carry coarse semantics; a sigmoid decay over the step
index favours the early ones while keeping some of the late ones.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def time_weights(
    n_steps: int = 15, sharpness: float = 5.0, center: float = 0.7, *, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Weights d̂(i) ∝ 1/(1+exp(sharpness·(i/n − center))) over step indices i = 0..n−1, summing to 1.

    With sharpness > 0 they decrease with i: the least noisy inversion steps weigh most.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    i = torch.arange(n_steps, dtype=torch.float64)
    d = torch.sigmoid(-sharpness * (i / n_steps - center))  # = 1/(1+exp(sharpness·(i/n − center)))
    return (d / d.sum()).to(dtype)


def mix_features(features: Sequence[Tensor] | Tensor, weights: Tensor | None = None) -> Tensor:
    """F_mix = Σ_i w_i·F_i over the per-step feature maps ([C,h,w] each, or one [T,C,h,w] stack).

    `weights` defaults to `time_weights(T)` with the METHODS.md parameters. A leading batch axis of size 1
    on each map ([1,C,h,w], as a UNet hook records it) is accepted and dropped.
    """
    stack = features if isinstance(features, Tensor) else torch.stack(list(features))
    if stack.dim() == 5 and stack.shape[1] == 1:
        stack = stack[:, 0]
    if stack.dim() != 4:
        raise ValueError(f"expected features as [T,C,h,w] (or a list of [C,h,w]), got shape {tuple(stack.shape)}")
    n = stack.shape[0]
    if weights is None:
        weights = time_weights(n)
    if weights.shape != (n,):
        raise ValueError(f"{n} feature maps but weights of shape {tuple(weights.shape)}")
    w = weights.to(device=stack.device, dtype=stack.dtype if stack.is_floating_point() else torch.float32)
    return torch.einsum("t,tchw->chw", w, stack.to(w.dtype))
