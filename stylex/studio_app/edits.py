"""What a person changes in StyleGallery's plan, kept as the two things a batch run reads: region overrides
(`method.matching.overrides`) and a user label mask (`method.user_masks`, where each non-zero label becomes a
region; METHODS.md 2.1). Merging and splitting regions are mask edits, so the batch command reproduces them.

Label maps here are numpy arrays on the latent grid (the grid stage 1's labels live on); a stored mask on that
grid passes through the batch run's nearest-neighbour resize unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from stylex.errors import InputError

MAX_LABEL = 255  # user masks are 8-bit label images


@dataclass
class Edits:
    """The hand-made part of one content's plan."""

    overrides: dict[int, tuple[str, int]] = field(default_factory=dict)  # region -> (reference name, style region)
    mask: np.ndarray | None = None  # [h, w] uint8 user labels on the latent grid; 0 keeps the automatic regions

    @property
    def empty(self) -> bool:
        return not self.overrides and (self.mask is None or not self.mask.any())


def next_label(mask: np.ndarray) -> int:
    """A label value not used in the mask yet."""
    value = int(mask.max()) + 1 if mask.size else 1
    if value > MAX_LABEL:
        raise InputError(f"the mask already holds {MAX_LABEL} labels, the most an 8-bit label image can. Reset "
                         f"the mask, or upload a label mask made elsewhere.")
    return value


def blank_mask(grid: tuple[int, int]) -> np.ndarray:
    return np.zeros(grid, dtype=np.uint8)


def merge_regions(mask: np.ndarray | None, labels: np.ndarray, a: int, b: int) -> np.ndarray:
    """Regions a and b of the current label map become one region (a new user label over both)."""
    if a == b:
        raise InputError(f"region {a} was selected twice; select two different content regions to merge.")
    for region in (a, b):
        if not (labels == region).any():
            raise InputError(f"content region {region} does not exist (the content has {int(labels.max()) + 1}).")
    mask = blank_mask(labels.shape) if mask is None else mask.copy()
    mask[(labels == a) | (labels == b)] = next_label(mask)
    return mask


def paint_region(mask: np.ndarray | None, labels: np.ndarray, painted: np.ndarray,
                 within: int | None = None) -> np.ndarray:
    """The painted cells become a new region; with `within`, only those inside that region (a split)."""
    area = painted.astype(bool)
    if within is not None:
        area &= labels == within
    if not area.any():
        where = f" inside region {within}" if within is not None else ""
        raise InputError(f"nothing was painted{where}. Paint over the content (a stroke covers a grid cell when it "
                         f"covers at least half of it) and try again.")
    mask = blank_mask(labels.shape) if mask is None else mask.copy()
    mask[area] = next_label(mask)
    return mask


def painted_cells(layers: list[np.ndarray], grid: tuple[int, int], min_cover: float = 0.5) -> np.ndarray:
    """Brush layers (RGBA arrays at any size) -> bool [h, w]: grid cells at least `min_cover` painted."""
    painted = np.zeros(grid, dtype=bool)
    for layer in layers:
        if layer is None or layer.ndim != 3 or layer.shape[2] < 4:
            continue
        alpha = torch.from_numpy((layer[..., 3] > 0).astype(np.float32))[None, None]
        cover = torch.nn.functional.adaptive_avg_pool2d(alpha, grid)[0, 0].numpy()
        painted |= cover >= min_cover
    return painted


def read_label_mask(path: str | Path, grid: tuple[int, int]) -> np.ndarray:
    """An uploaded label image, read as a batch run reads `method.user_masks` (8-bit grey) and resized to the
    grid with the same nearest-neighbour resize."""
    from PIL import Image, UnidentifiedImageError

    from stylex.regions.refine import resize_labels

    try:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"), dtype=np.int64)
    except (UnidentifiedImageError, OSError, ValueError):
        raise InputError(f"{Path(path).name}: not an image. Upload a PNG label image (0 keeps the automatic "
                         f"regions, each other value becomes a region).") from None
    if not grey.any():
        raise InputError(f"{Path(path).name}: every pixel is 0, so the mask changes nothing. Non-zero values mark "
                         f"the regions.")
    return resize_labels(torch.from_numpy(grey), grid).numpy().astype(np.uint8)


def remap_overrides(overrides: dict[int, tuple[str, int]], old: np.ndarray,
                    new: np.ndarray) -> tuple[dict[int, tuple[str, int]], list[int]]:
    """Carry overrides across a relabelling (a mask edit renumbers regions): an override follows its region to
    the new region that received most of its pixels, if that is at least half of them. When several overridden
    regions land in one (a merge), the one that brought the most pixels keeps its override. Returns the carried
    overrides and the old regions whose override was dropped."""
    claims: dict[int, tuple[int, int]] = {}  # new region -> (pixels brought, old region)
    dropped = []
    for region in sorted(overrides):
        pixels = new[old == region]
        if pixels.size == 0:
            dropped.append(region)
            continue
        values, counts = np.unique(pixels, return_counts=True)
        successor, brought = int(values[np.argmax(counts)]), int(counts.max())
        if 2 * brought < pixels.size:
            dropped.append(region)
        elif successor not in claims or brought > claims[successor][0]:
            if successor in claims:
                dropped.append(claims[successor][1])
            claims[successor] = (brought, region)
        else:
            dropped.append(region)
    return {new_region: overrides[old_region] for new_region, (_, old_region) in sorted(claims.items())}, sorted(dropped)


def region_at(labels: np.ndarray, size: tuple[int, int], x: float, y: float) -> int:
    """The region under pixel (x, y) of a picture of `size` (h, w) showing the label map (nearest)."""
    h, w = labels.shape
    row = min(h - 1, max(0, int(y * h / size[0])))
    col = min(w - 1, max(0, int(x * w / size[1])))
    return int(labels[row, col])
