"""The one place where evaluation images are read, resized and normalised for each feature network.

A `View` says how one metric's network sees an image file: a resize rule (`squash` to size x size, `short_side`
to size keeping the aspect ratio, or `none`: the file's own pixels), the PIL filter, and an optional centre crop.
Each protocol (configs/protocol/) names one view per metric, so the papers' preprocessing is reproduced exactly
(torchvision's `Resize(512)` is `short_side` 512 bilinear on the PIL image; the DINOv2 processor is `short_side`
256 bicubic then a 224 centre crop). Each network's own input convention (ImageNet statistics, [-1, 1], 299
pixels) is a function here too, so a results file can state all of it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from stylex.data.images import load_image as _read_rgb
from stylex.data.images import to_tensor
from stylex.errors import ConfigError

EVAL_SIZE = 512
"""Default evaluation resolution: the working resolution of the SD1.5/SD2.1-base methods."""

FILTERS = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
           "bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST}
RESIZE_RULES = ("squash", "short_side", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MIN_EVAL_SIZE = 32


@dataclass(frozen=True)
class View:
    """How a network sees an image file: resize rule, size, PIL filter, centre crop (all applied with PIL on the
    8-bit image, as torchvision's transforms and the transformers image processors do)."""

    resize: str = "squash"
    size: int | None = EVAL_SIZE
    interpolation: str = "lanczos"
    crop: int | None = None

    def __post_init__(self) -> None:
        where = "the protocol's `preprocess` entry"
        if self.resize not in RESIZE_RULES:
            raise ConfigError(f"{where}: resize={self.resize!r} is not one of: {', '.join(RESIZE_RULES)}.")
        if self.interpolation not in FILTERS:
            raise ConfigError(f"{where}: interpolation={self.interpolation!r} is not one of: {', '.join(FILTERS)}.")
        if self.resize != "none" and (self.size is None or self.size < MIN_EVAL_SIZE):
            raise ConfigError(f"{where}: size={self.size} is too small for resize={self.resize}; use 256 or more "
                              f"(512 is the default).")
        if self.crop is not None and (self.resize == "none" or self.size is None or self.crop > self.size):
            raise ConfigError(f"{where}: crop={self.crop} needs resize=squash or short_side with size >= crop.")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> View:
        """A view from a config mapping (keys: resize, size, interpolation, crop)."""
        data = dict(cfg or {})
        unknown = sorted(set(data) - {"resize", "size", "interpolation", "crop"})
        if unknown:
            raise ConfigError(f"the protocol's `preprocess` entry has unknown keys {unknown}; its keys are resize, "
                              f"size, interpolation, crop.")
        return cls(**data)

    def smoke(self, size: int) -> View:
        """The same rule at most `size` pixels (tiny random networks: wiring checks, not values)."""
        side = min(self.size or size, size)
        return replace(self, resize="short_side" if self.resize == "none" else self.resize, size=side,
                       crop=None if self.crop is None else min(self.crop, side))

    def apply(self, img: Image.Image) -> Image.Image:
        """Resize (and crop) an RGB PIL image."""
        w, h = img.size
        target = resized_size(w, h, self)
        if target != (w, h):
            img = img.resize(target, FILTERS[self.interpolation])
        if self.crop is not None:
            w, h = img.size
            left, top = (w - self.crop) // 2, (h - self.crop) // 2  # transformers' centre crop (floor)
            img = img.crop((left, top, left + self.crop, top + self.crop))
        return img

    def describe(self) -> str:
        if self.resize == "none":
            text = "own resolution"
        elif self.resize == "squash":
            text = f"squashed to {self.size}x{self.size} (PIL {self.interpolation})"
        else:
            text = f"shorter side to {self.size}, aspect kept (PIL {self.interpolation})"
        return text + (f", centre crop {self.crop}" if self.crop else "")


def resized_size(w: int, h: int, view: View) -> tuple[int, int]:
    """(width, height) after the view's resize. short_side: the longer side is int(size·long/short), the
    truncation torchvision's Resize(int) and the transformers processors use."""
    if view.resize == "none" or view.size is None:
        return w, h
    if view.resize == "squash":
        return view.size, view.size
    if w <= h:
        return view.size, int(view.size * h / w)
    return int(view.size * w / h), view.size


def load_view(path: str | Path, view: View, like: tuple[int, int] | None = None) -> Tensor:
    """[3, H, W] float in [0, 1] as `view` sees the file. `like` = (H, W): squash the result to that size when it
    differs (a content image paired with a stylized image of another shape; the official scripts assume equal
    shapes and stop otherwise)."""
    img = view.apply(_read_rgb(path))
    if like is not None and (img.height, img.width) != tuple(like):
        img = img.resize((like[1], like[0]), FILTERS[view.interpolation])
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
    """Bicubic to size x size (a no-op after the protocols' 224 centre crop) and CLIP's mean/std. On a square
    image this equals CLIPImageProcessor's shortest-side resize + centre crop, without leaving tensors."""
    x = resize_square(x, size, "bicubic").clamp(0, 1)
    return (x - _channels(x, CLIP_MEAN)) / _channels(x, CLIP_STD)


def dino_input(x: Tensor, size: int = 224) -> Tensor:
    """Bicubic to size x size (the whole image; a no-op after the processor-style 224 centre crop) and ImageNet
    mean/std."""
    return imagenet_normalize(resize_square(x, size, "bicubic").clamp(0, 1))
