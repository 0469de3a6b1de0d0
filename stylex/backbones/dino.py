"""DINOv2 patch tokens for semantic region matching (METHODS.md 2.2, "Semantic").

"aligned" (default): the image is resized (not cropped) to the nearest multiple of the patch size, so the
token grid covers exactly the image the region masks cover. "official": resize the shorter side to 256 and
centre-crop 224 (16×16 tokens), as the published code does through the DINOv2 image processor; the token grid
then covers only the centre of the image that the masks describe (kept for reproduction only).
"""
from __future__ import annotations

from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import Dinov2Config, Dinov2Model

from stylex.backbones.hub import load_pretrained

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TokenMode = Literal["aligned", "official"]
M = TypeVar("M", bound=torch.nn.Module)


def freeze(model: M, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> M:
    """Eval mode, no gradients, on the requested device and dtype: these networks are feature extractors."""
    model = model.eval().requires_grad_(False)
    if device is not None or dtype is not None:
        model = model.to(device=device, dtype=dtype)
    return model


def load_dino(
    model_id: str = "facebook/dinov2-base",
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> Dinov2Model:
    """Load DINOv2 from a Hugging Face id or a local directory; missing weights raise WeightsError."""
    model = load_pretrained(Dinov2Model.from_pretrained, model_id, what="DINOv2", config_key="method.dino.model")
    return freeze(model, device, dtype)


def tiny_dino(
    seed: int = 0,
    *,
    patch_size: int = 14,
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 2,
    image_size: int = 56,
) -> Dinov2Model:
    """A randomly initialised (seeded) DINOv2 small enough for CPU tests; same interface as the real one."""
    config = Dinov2Config(
        patch_size=patch_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        image_size=image_size,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Dinov2Model(config)
    return freeze(model)


def aligned_size(height: int, width: int, patch_size: int) -> tuple[int, int]:
    """Each side rounded to the nearest multiple of the patch size (at least one patch)."""
    return (
        max(patch_size, round(height / patch_size) * patch_size),
        max(patch_size, round(width / patch_size) * patch_size),
    )


def _resize(images: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def prepare_images(
    images: Tensor,
    patch_size: int,
    mode: TokenMode = "aligned",
    *,
    official_resize: int = 256,
    official_crop: int = 224,
) -> Tensor:
    """[B,3,H,W] in [0,1] -> resized (and in "official" mode centre-cropped), ImageNet-normalised pixels."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images as [B,3,H,W] in [0,1], got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if mode == "aligned":
        x = _resize(images, aligned_size(h, w, patch_size))
    elif mode == "official":
        short, long = (h, w) if h <= w else (w, h)
        new_long = int(official_resize * long / short)
        size = (official_resize, new_long) if h <= w else (new_long, official_resize)
        x = _resize(images, size)
        top = (x.shape[-2] - official_crop) // 2
        left = (x.shape[-1] - official_crop) // 2
        x = x[..., top : top + official_crop, left : left + official_crop]
    else:
        raise ValueError(f"token mode must be 'aligned' or 'official', got {mode!r}")
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype)[:, None, None]
    return (x - mean) / std


@torch.no_grad()
def patch_tokens(
    model: Dinov2Model,
    images: Tensor,
    mode: TokenMode = "aligned",
    *,
    official_resize: int = 256,
    official_crop: int = 224,
) -> Tensor:
    """Last-layer patch tokens as a grid [B, gh, gw, D] (float32); CLS and register tokens dropped."""
    patch = int(model.config.patch_size)
    param = next(model.parameters())
    pixels = prepare_images(
        images.to(device=param.device, dtype=torch.float32),
        patch,
        mode,
        official_resize=official_resize,
        official_crop=official_crop,
    )
    gh, gw = pixels.shape[-2] // patch, pixels.shape[-1] // patch
    hidden = model(pixel_values=pixels.to(param.dtype)).last_hidden_state
    n_special = 1 + int(getattr(model.config, "num_register_tokens", 0) or 0)
    tokens = hidden[:, n_special:]
    return tokens.reshape(tokens.shape[0], gh, gw, tokens.shape[-1]).float()
