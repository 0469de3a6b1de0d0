"""Pictures a person would rather look at than read: region overlays, attention heatmaps, match tables.

Methods put raw artifacts in `Stylized.artifacts` (label maps, match rows, attention maps, ready-made pictures
under "files"); this module turns them into the PNGs of the run's `overlays/` folder and into W&B objects.
Nothing here decides anything about a method.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from stylex.data.images import to_pil
from stylex.methods.base import Stylized
from stylex.regions.refine import resize_labels

PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
], dtype=np.float32)


def upsample_labels(labels: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """Label map -> image grid (nearest), as int array [H,W]."""
    return resize_labels(labels.cpu(), size).numpy()


def region_overlay(image: torch.Tensor, labels: torch.Tensor, alpha: float = 0.45, numbered: bool = True
                   ) -> Image.Image:
    """The image with each region tinted in its own colour and (`numbered`) numbered at its centre."""
    h, w = image.shape[-2:]
    grid = upsample_labels(labels, (h, w))
    base = np.asarray(to_pil(image), dtype=np.float32)
    tinted = (1 - alpha) * base + alpha * PALETTE[grid % len(PALETTE)]
    out = Image.fromarray(tinted.clip(0, 255).astype(np.uint8))
    if not numbered:
        return out
    draw = ImageDraw.Draw(out)
    for region in np.unique(grid):
        ys, xs = np.nonzero(grid == region)
        draw.text((float(xs.mean()) - 3, float(ys.mean()) - 5), str(int(region)), fill=(255, 255, 255),
                  stroke_width=2, stroke_fill=(0, 0, 0))
    return out


def heatmap_overlay(image: torch.Tensor, heat: torch.Tensor, alpha: float = 0.6) -> Image.Image:
    """A [h,w] map in [0,1] over the image, as a red-yellow heatmap."""
    h, w = image.shape[-2:]
    up = F.interpolate(heat[None, None].float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)
    heat_rgb = torch.stack([torch.ones_like(up), up, torch.zeros_like(up)]) * up  # black -> red -> yellow
    blended = (1 - alpha * up) * image.float().cpu() + alpha * heat_rgb
    return to_pil(blended)


def render_files(result: Stylized) -> dict[str, Image.Image]:
    """The output's overlays, saved as `overlays/{name}.{kind}.png`."""
    files: dict[str, Image.Image] = dict(result.artifacts.get("files", {}))
    regions = result.artifacts.get("regions")
    item = result.item
    if regions:
        files["regions-content"] = region_overlay(item.content_image, regions["content"])
        for ref, image, labels in zip(item.styles, item.style_images, regions["references"]):
            files[f"regions-{ref.name}"] = region_overlay(image, labels)
    for ref_index, heat in (result.artifacts.get("attention") or {}).items():
        files[f"attention-{item.styles[ref_index].name}"] = heatmap_overlay(item.style_images[ref_index], heat)
    return files


def wandb_objects(result: Stylized, wandb: Any) -> dict[str, Any]:
    """W&B objects for one output: masked images with class labels, the match table, attention maps."""
    objects: dict[str, Any] = dict(result.artifacts.get("wandb", {}))
    item = result.item
    regions = result.artifacts.get("regions")
    if regions:
        def masked(image: torch.Tensor, labels: torch.Tensor, caption: str) -> Any:
            grid = upsample_labels(labels, tuple(image.shape[-2:]))
            classes = {int(r): f"region {int(r)}" for r in np.unique(grid)}
            return wandb.Image(to_pil(image), caption=caption,
                               masks={"regions": {"mask_data": grid.astype(np.uint8), "class_labels": classes}})

        objects["regions"] = [masked(item.content_image, regions["content"], f"content {item.content.name}")] + [
            masked(image, labels, f"reference {ref.name}")
            for ref, image, labels in zip(item.styles, item.style_images, regions["references"])]
    rows = result.artifacts.get("matches")
    if rows:
        columns = list(rows[0])
        objects["matches"] = wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows])
    attention = result.artifacts.get("attention") or {}
    if attention:
        objects["attention"] = [wandb.Image(heatmap_overlay(item.style_images[r], heat),
                                            caption=f"attention on {item.styles[r].name}")
                                for r, heat in attention.items()]
    return objects
