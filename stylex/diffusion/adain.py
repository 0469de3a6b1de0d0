"""AdaIN (METHODS.md 0.5) for latents and attention tensors, and HAM's SINI initialisation.

`AdaIN(x, y) = σ(y)·(x − μ(x))/σ(x) + μ(y)`. Statistics are population moments (σ² = mean of squared
deviations) with `eps` inside the square root, so the output's moments equal y's (up to eps) whatever the
two sizes are. Statistics are taken in fp32 and the result is cast back to x's dtype (bf16 runs).
"""
from __future__ import annotations

from torch import Tensor


def moments(x: Tensor, dims: tuple[int, ...], eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Mean and σ = √(var + eps) of x over `dims` (kept for broadcasting), in fp32."""
    x = x.float()
    mean = x.mean(dim=dims, keepdim=True)
    var = (x - mean).pow(2).mean(dim=dims, keepdim=True)
    return mean, (var + eps).sqrt()


def adain(x: Tensor, y: Tensor, dims: tuple[int, ...], eps: float = 1e-5) -> Tensor:
    """x with its statistics over `dims` replaced by y's; other axes (images, channels) are kept apart."""
    mx, sx = moments(x, dims, eps)
    my, sy = moments(y, dims, eps)
    return ((x.float() - mx) / sx * sy + my).to(x.dtype)


def adain_latent(x: Tensor, y: Tensor, eps: float = 1e-5) -> Tensor:
    """Latents [..., C, H, W]: per image and channel, over H×W."""
    return adain(x, y, (-2, -1), eps)


def adain_tokens(x: Tensor, y: Tensor, eps: float = 1e-5) -> Tensor:
    """Attention tensors [..., heads, N, d]: per image and channel (head × d), over the token axis N.

    x and y may have different token counts (a style image of another size).
    """
    return adain(x, y, (-2,), eps)


def sini(z_content: Tensor, z_style: Tensor, gamma: float, eps: float = 1e-5) -> Tensor:
    """HAM's style-injected noise init: γ·z_c + (1−γ)·AdaIN(z_c, z_s) (= γ·(z_c − A) + A)."""
    return gamma * z_content + (1 - gamma) * adain_latent(z_content, z_style, eps)
