"""Monocular depth (Depth Anything V2) for StyleGallery's depth split-and-merge (METHODS.md 2.1, step 6).

Regions that look alike but lie at very different depths (sky and lake) are split with it. The model predicts
relative inverse depth (larger = nearer); only its ordering matters here, so every map is min-max normalised.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import AutoModelForDepthEstimation, DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

from stylex.backbones.dino import IMAGENET_MEAN, IMAGENET_STD, freeze
from stylex.backbones.hub import load_pretrained


def load_depth(
    model_id: str = "depth-anything/Depth-Anything-V2-Large-hf",
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.nn.Module:
    """Load a depth model from a Hugging Face id or a local directory; missing weights raise WeightsError."""
    model = load_pretrained(
        AutoModelForDepthEstimation.from_pretrained,
        model_id,
        what="Depth Anything V2",
        config_key="method.depth.model",
    )
    return freeze(model, device, dtype)


def tiny_depth(seed: int = 0) -> DepthAnythingForDepthEstimation:
    """A randomly initialised (seeded) Depth Anything with a 4-layer, 32-wide DINOv2 backbone, for CPU tests."""
    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        image_size=56,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DepthAnythingForDepthEstimation(config)
    return freeze(model)


def input_size_for(height: int, width: int, short_side: int, patch_size: int) -> tuple[int, int]:
    """Keep the aspect ratio, shorter side ≈ `short_side`, each side rounded to a multiple of the patch size."""
    scale = short_side / min(height, width)
    return (
        max(patch_size, round(height * scale / patch_size) * patch_size),
        max(patch_size, round(width * scale / patch_size) * patch_size),
    )


def minmax_per_image(depth: Tensor) -> Tensor:
    """[B,h,w] -> each map scaled to [0, 1]; a constant map becomes zeros."""
    flat = depth.reshape(depth.shape[0], -1)
    lo = flat.min(dim=1).values[:, None, None]
    span = (flat.max(dim=1).values[:, None, None] - lo)
    return torch.where(span > 0, (depth - lo) / span.clamp_min(torch.finfo(depth.dtype).tiny), torch.zeros_like(depth))


@torch.no_grad()
def estimate_depth(model: torch.nn.Module, images: Tensor, size: Sequence[int], *, input_size: int = 518,
                   reduce: str = "area") -> Tensor:
    """Depth of `images` [B,3,H,W] in [0,1] on the grid `size` (h, w) -> [B,h,w] in [0,1], per image.

    Preprocessing follows the model card: bicubic resize (shorter side `input_size`, multiples of the patch size),
    ImageNet normalisation. `reduce` takes the prediction to `size`: "area" averages it over each grid cell;
    "nearest" (the published StyleGallery code) first resizes it bilinearly to the input image's size, as Depth
    Anything's own `infer_image` returns it, then samples it with `F.interpolate(mode="nearest")`.
    """
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images as [B,3,H,W] in [0,1], got shape {tuple(images.shape)}")
    if reduce not in ("area", "nearest"):
        raise ValueError(f"reduce must be 'area' or 'nearest', got {reduce!r}")
    patch = int(model.config.patch_size)
    param = next(model.parameters())
    x = images.to(device=param.device, dtype=torch.float32)
    image_size = tuple(x.shape[-2:])
    target = input_size_for(x.shape[-2], x.shape[-1], input_size, patch)
    if tuple(x.shape[-2:]) != target:
        x = F.interpolate(x, size=target, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device)[:, None, None]
    std = torch.tensor(IMAGENET_STD, device=x.device)[:, None, None]
    pred = model(pixel_values=((x - mean) / std).to(param.dtype)).predicted_depth.float()[:, None]  # [B,1,H',W']
    out_size = (int(size[0]), int(size[1]))
    if reduce == "nearest":
        if tuple(pred.shape[-2:]) != image_size:
            pred = F.interpolate(pred, size=image_size, mode="bilinear", align_corners=True)
        pred = F.interpolate(pred, size=out_size, mode="nearest")
    elif tuple(pred.shape[-2:]) != out_size:
        pred = F.interpolate(pred, size=out_size, mode="area")
    return minmax_per_image(pred[:, 0])
