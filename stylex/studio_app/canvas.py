"""The picture of a plan: the content and every reference with their regions tinted and numbered, and a line
from each content region to the style region it takes its style from (in the content region's colour; thicker
when set by hand). One picture, so one click handler can tell which image and region was clicked."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from torch import Tensor

from stylex.callbacks.visuals import PALETTE, region_overlay, upsample_labels
from stylex.matching import Match
from stylex.studio_app.edits import region_at

GAP = 120  # room for the match lines between the content and the references
PAD = 8
CAPTION = 18  # a caption line above each image


@dataclass(frozen=True)
class Panel:
    """One image on the canvas: `reference` is None for the content."""

    reference: int | None
    name: str
    box: tuple[int, int, int, int]  # x, y, width, height on the canvas
    labels: np.ndarray  # [h, w] regions on the latent grid

    def contains(self, x: float, y: float) -> bool:
        bx, by, bw, bh = self.box
        return bx <= x < bx + bw and by <= y < by + bh

    def region(self, x: float, y: float) -> int:
        bx, by, bw, bh = self.box
        return region_at(self.labels, (bh, bw), x - bx, y - by)

    def regions(self) -> list[int]:
        return [int(r) for r in np.unique(self.labels)]

    def centroid(self, region: int) -> tuple[float, float] | None:
        ys, xs = np.nonzero(self.labels == region)
        if not len(xs):
            return None
        h, w = self.labels.shape
        bx, by, bw, bh = self.box
        return bx + (xs.mean() + 0.5) * bw / w, by + (ys.mean() + 0.5) * bh / h


@dataclass
class Canvas:
    image: Image.Image
    panels: list[Panel]

    def locate(self, x: float, y: float) -> tuple[Panel, int] | None:
        """The panel and region under canvas pixel (x, y), or None between images."""
        for panel in self.panels:
            if panel.contains(x, y):
                return panel, panel.region(x, y)
        return None


def scaled(image: Tensor, height: int) -> Tensor:
    h, w = image.shape[-2:]
    size = (height, max(1, round(w * height / h)))
    return F.interpolate(image[None].float().cpu(), size=size, mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp(0, 1)


def content_overlay(content: Tensor, labels: np.ndarray, height: int, numbered: bool = True) -> Image.Image:
    """The content at `height` px with its regions tinted and numbered (the painting background)."""
    return region_overlay(scaled(content, height), torch.from_numpy(labels), numbered=numbered)


def outline(picture: Image.Image, labels: np.ndarray, region: int, colour: tuple[int, int, int]) -> None:
    """Draw the border of one region (3 px) onto its picture."""
    grid = upsample_labels(torch.from_numpy(labels), (picture.height, picture.width)) == region
    edge = grid & ~ndimage.binary_erosion(grid, iterations=3)
    pixels = np.asarray(picture).copy()
    pixels[edge] = colour
    picture.paste(Image.fromarray(pixels))


def draw_canvas(content: Tensor, content_labels: np.ndarray, refs: list[Tensor], ref_labels: list[np.ndarray],
                ref_names: list[str], matches: list[Match], selected: list[int] = (), height: int = 384) -> Canvas:
    """The plan as one picture: content at `height` px on the left, references stacked on the right."""
    n = max(1, len(refs))
    ref_height = max(96, (height - PAD * (n - 1)) // n - CAPTION)
    content_pic = content_overlay(content, content_labels, height, numbered=False)  # numbered last, over the lines
    for region in selected:
        outline(content_pic, content_labels, region, (255, 255, 255))
    ref_pics = [region_overlay(scaled(img, ref_height), torch.from_numpy(lab), numbered=False)
                for img, lab in zip(refs, ref_labels)]
    font = ImageFont.load_default(size=14)
    left = content_pic.width + GAP
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    captions = [f"reference {r}: {name}" for r, name in enumerate(ref_names)]
    width = left + max([max(p.width, int(probe.textlength(c, font=font)) + 4) for p, c in zip(ref_pics, captions)],
                       default=0)
    total = max(height, sum(p.height + CAPTION + PAD for p in ref_pics) - PAD) + CAPTION
    canvas = Image.new("RGB", (width, total), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)
    canvas.paste(content_pic, (0, CAPTION))
    draw.text((2, 1), "content: click a region", fill=(40, 40, 40), font=font)
    panels = [Panel(None, "content", (0, CAPTION, content_pic.width, content_pic.height), content_labels)]
    y = 0
    for r, (pic, caption) in enumerate(zip(ref_pics, captions)):
        draw.text((left + 2, y + 1), caption, fill=(40, 40, 40), font=font)
        canvas.paste(pic, (left, y + CAPTION))
        panels.append(Panel(r, ref_names[r], (left, y + CAPTION, pic.width, pic.height), ref_labels[r]))
        y += pic.height + CAPTION + PAD
    for match in matches:
        if match.fallback:
            continue
        start = panels[0].centroid(match.content_region)
        end = panels[1 + match.reference].centroid(match.style_region) if 1 + match.reference < len(panels) else None
        if start is None or end is None:
            continue
        colour = tuple(int(c) for c in PALETTE[match.content_region % len(PALETTE)])
        draw.line([start, end], fill=colour, width=4 if match.how == "override" else 2)
    for panel in panels:  # region numbers on top of the lines
        for region in panel.regions():
            cx, cy = panel.centroid(region)
            draw.text((cx, cy), str(region), fill=(255, 255, 255), font=font, anchor="mm", stroke_width=3,
                      stroke_fill=(0, 0, 0))
    return Canvas(canvas, panels)
