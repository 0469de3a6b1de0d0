"""The one place where evaluation images are read, resized and normalised for each feature network.

Every metric sees the same tensor per image: RGB, squashed to `size` x `size` (the methods squash their inputs
the same way), values in [0, 1]. Each network's own input convention (ImageNet statistics, [-1, 1], 299 or 224
pixels) is a function here, so a results file can state all of it with `describe()`.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from stylex.data.images import load_image as _read_rgb
from stylex.data.images import to_tensor
from stylex.errors import ConfigError

EVAL_SIZE = 512
"""Default evaluation resolution: the working resolution of the SD1.5/SD2.1-base methods."""

RESAMPLE = Image.Resampling.LANCZOS  # the same filter the methods use to squash their inputs
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_eval_image(path: str | Path, size: int | None = EVAL_SIZE) -> Tensor:
    """[3, size, size] float in [0, 1]; `size=None` keeps the file's own resolution."""
    img = _read_rgb(path)
    if size is not None:
        if size < 32:
            raise ConfigError(f"metrics.size={size} is too small; use 256 or more (512 is the default).")
        if img.size != (size, size):
            img = img.resize((size, size), RESAMPLE)
    return to_tensor(img)


def _channels(x: Tensor, values: tuple[float, float, float]) -> Tensor:
    return torch.tensor(values, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)


def imagenet_normalize(x: Tensor) -> Tensor:
    """[0, 1] -> ImageNet mean/std (torchvision VGG19 and AlexNet were trained on this)."""
    return (x - _channels(x, IMAGENET_MEAN)) / _channels(x, IMAGENET_STD)


def to_signed(x: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1] (LPIPS and the pytorch-fid Inception expect this)."""
    return x * 2 - 1


def resize_square(x: Tensor, size: int | None, mode: str) -> Tensor:
    """Resize a batch to size x size (no-op when already there or size is None); antialiased when shrinking."""
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    shrinking = min(x.shape[-2:]) > size
    kwargs = {"antialias": True} if shrinking and mode in ("bilinear", "bicubic") else {}
    align = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x, size=(size, size), mode=mode, **align, **kwargs)


INCEPTION_MIN_SIZE = 75  # below this Inception-v3's stride-2 convs and pools run out of pixels


def inception_input(x: Tensor, size: int | None, value_range: str) -> Tensor:
    """pytorch-fid: bilinear (no antialias, as F.interpolate there) to 299 and [-1, 1]; art_inception: as is
    (only images smaller than 75 px, which Inception cannot take, are enlarged to 75)."""
    if size is None and min(x.shape[-2:]) < INCEPTION_MIN_SIZE:
        size = INCEPTION_MIN_SIZE
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if value_range == "[-1,1]":
        return to_signed(x)
    if value_range == "[0,1]":
        return x
    raise ConfigError(f"unknown Inception input range {value_range!r}; expected '[-1,1]' or '[0,1]'.")


def clip_input(x: Tensor, size: int = 224) -> Tensor:
    """Bicubic to size x size and CLIP's mean/std. On a square image this equals CLIPImageProcessor's
    shortest-side resize + centre crop, without leaving tensors."""
    x = resize_square(x, size, "bicubic").clamp(0, 1)
    return (x - _channels(x, CLIP_MEAN)) / _channels(x, CLIP_STD)


def dino_input(x: Tensor, size: int = 224) -> Tensor:
    """Bicubic to size x size (the whole image, no centre crop) and ImageNet mean/std."""
    return imagenet_normalize(resize_square(x, size, "bicubic").clamp(0, 1))


def describe(size: int | None = EVAL_SIZE, extra: dict[str, str] | None = None) -> str:
    """A one-line statement of the evaluation convention, for results files."""
    base = (f"images RGB, squashed to {size}x{size} (PIL Lanczos, aspect not kept), values in [0,1]"
            if size else "images RGB at their own resolution, values in [0,1]")
    parts = [base] + [f"{k}: {v}" for k, v in (extra or {}).items()]
    return "; ".join(parts)
