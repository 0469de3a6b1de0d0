"""Stage 2 over a gallery (METHODS.md 2.2, last point): retrieve, rank exactly, assign, and show candidates.

Each content region retrieves its top-k regions by cosine of the semantic vectors from the gallery's index;
the full three-term score then ranks each region's own candidates exactly, and the usual assignment picks
among them. Only the gallery images that won a match become the item's references for stage 3.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

from stylex.data.datamodule import ImageRef, Item
from stylex.data.images import to_pil
from stylex.errors import ConfigError
from stylex.matching.assign import Match, assign
from stylex.gallery.store import Candidate, Gallery
from stylex.matching.descriptors import RegionDescriptors
from stylex.matching.score import ScoreTable, match_scores
from stylex.regions.refine import resize_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranked:
    """One retrieved candidate with its exact score (and the unweighted terms)."""

    image: str
    region: int
    similarity: float  # index cosine of the semantic vectors
    score: float
    stat: float
    sem: float
    geo: float


@dataclass
class GalleryMatch:
    """Matches of one content image; `Match.reference` indexes `images`, the references to load."""

    matches: list[Match]
    table: ScoreTable  # over the candidate columns; its `reference` indexes `candidate_images`
    images: list[str]
    candidate_images: list[str]
    ranked: list[list[Ranked]]  # per content region: its own candidates, best exact score first


def describe(artifact: dict[str, Any]) -> RegionDescriptors:
    return RegionDescriptors(artifact["stat"], artifact["sem"], artifact["geo"])


def select_columns(table: ScoreTable, columns: Tensor) -> ScoreTable:
    return ScoreTable(table.score[:, columns], table.stat[:, columns], table.sem[:, columns], table.geo[:, columns],
                      table.reference[columns], table.region[columns])


def rank_candidates(content: dict[str, Any], gallery: Gallery, k: int,
                    weights: tuple[float, float, float] = (0.25, 1.0, 0.125), mode: str = "many_to_one", min_score: float | None = None,
                    overrides: dict[Any, Any] | None = None) -> GalleryMatch:
    """Retrieve top-k per content region, score every candidate with the full score, assign.

    `overrides` maps content regions to `[gallery image name or key, region]` (as `method.matching.overrides`);
    an overridden image joins the candidates.
    """
    if k < 1:
        raise ConfigError(f"gallery.top_k={k} must be at least 1.")
    hits: list[list[Candidate]] = gallery.search(content["sem"], k)
    forced: dict[int, tuple[str, int]] = {}
    for region, value in dict(overrides or {}).items():
        if isinstance(value, (str, bytes)) or len(value) != 2 or not isinstance(value[0], str):
            raise ConfigError(f"method.matching.overrides: {region!r}: {value!r} must be [gallery image name, region] "
                              f"when references come from a gallery.")
        forced[int(region)] = (gallery.key_for(value[0]), int(value[1]))
    images = list(dict.fromkeys([c.image for row in hits for c in row] + [key for key, _ in forced.values()]))
    position = {key: i for i, key in enumerate(images)}
    full = match_scores(describe(content), [describe(gallery.artifact(key)) for key in images], *weights)
    column = {(int(r), int(g)): j for j, (r, g) in enumerate(zip(full.reference, full.region))}
    own = torch.zeros(full.score.shape, dtype=torch.bool)
    for row, candidates in enumerate(hits):
        for c in candidates:
            own[row, column[(position[c.image], c.region)]] = True
    for row, (key, region) in forced.items():
        if (position[key], region) not in column:
            raise ConfigError(f"method.matching.overrides: region {region} of gallery image '{key}' does not exist "
                              f"(it has {gallery.entry(key)['regions']} regions).")
        if 0 <= row < own.shape[0]:
            own[row, column[(position[key], region)]] = True
    keep = own.any(dim=0).nonzero().flatten()
    table, own = select_columns(full, keep), own[:, keep]
    masked = ScoreTable(table.score.masked_fill(~own.to(table.score.device), float("-inf")), table.stat, table.sem,
                        table.geo, table.reference, table.region)
    resolved = {row: (position[key], region) for row, (key, region) in forced.items()}
    try:
        matches = assign(masked, mode=mode, min_score=min_score, overrides=resolved)
    except ValueError:  # one-to-one cannot be met within each region's own candidates: use all of them
        log.info("One-to-one assignment over each region's own candidates is infeasible; assigning over all "
                 "candidates of the image.")
        matches = assign(table, mode=mode, min_score=min_score, overrides=resolved)
    used = list(dict.fromkeys(m.reference for m in matches))
    matches = [replace(m, reference=used.index(m.reference)) for m in matches]
    ranked = []
    cols = {(int(r), int(g)): j for j, (r, g) in enumerate(zip(table.reference, table.region))}
    for row, candidates in enumerate(hits):
        rows = [Ranked(c.image, c.region, c.similarity, *(float(t[row, cols[(position[c.image], c.region)]])
                                                          for t in (table.score, table.stat, table.sem, table.geo)))
                for c in candidates]
        ranked.append(sorted(rows, key=lambda r: -r.score))
    return GalleryMatch(matches, table, [images[i] for i in used], images, ranked)


def gallery_item(item: Item, gallery: Gallery, keys: list[str], images: list[Tensor]) -> Item:
    """The item with the gallery images that won a match as its references."""
    entries = [gallery.entry(k) for k in keys]
    refs = [ImageRef(Path(e["path"]), e["name"], e["sha256"]) for e in entries]
    return Item(item.name, item.content, refs, item.item_hash, item.seed, item.content_image, list(images))


def candidate_rows(ranked: list[list[Ranked]], gallery: Gallery, n: int) -> list[list[dict[str, Any]]]:
    """The top-n candidates per content region as JSON-able rows (for the sidecar)."""
    return [[{"image": gallery.entry(r.image)["name"], "region": r.region, "similarity": round(r.similarity, 4),
              "score": round(r.score, 4)} for r in row[:n]] for row in ranked]


def highlight(image: Tensor, labels: Tensor, region: int, size: int) -> Image.Image:
    """A square thumbnail with everything outside `region` dimmed."""
    thumb = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)[0].clamp(0, 1)
    mask = resize_labels(labels, (size, size)) == region
    return to_pil(torch.where(mask, thumb, 0.3 * thumb))


def candidate_strips(content_image: Tensor, content_labels: Tensor, ranked: list[list[Ranked]], gallery: Gallery,
                     n: int, size: int = 96) -> list[tuple[Image.Image, str]]:
    """Per content region: [the region in the content | its top-n candidates, each with its region lit], and a
    caption naming them with their scores."""
    strips = []
    for region, row in enumerate(ranked):
        tiles = [highlight(content_image.cpu(), content_labels.cpu(), region, size)]
        for r in row[:n]:
            art = gallery.artifact(r.image)
            tiles.append(highlight(art["thumb"].float() / 255, art["labels"], r.region, size))
        strip = Image.new("RGB", (len(tiles) * (size + 4), size + 14), (255, 255, 255))
        draw = ImageDraw.Draw(strip)
        for i, tile in enumerate(tiles):
            strip.paste(tile, (i * (size + 4), 14))
            label = f"content r{region}" if i == 0 else f"{i}: {row[i - 1].score:.2f}"
            draw.text((i * (size + 4) + 2, 1), label, fill=(0, 0, 0))
        caption = f"content region {region} -> " + ", ".join(
            f"{gallery.entry(r.image)['name']} r{r.region} (score {r.score:.3f}, cos {r.similarity:.3f})"
            for r in row[:n])
        strips.append((strip, caption))
    return strips


def stack_vertically(images: list[Image.Image]) -> Image.Image:
    width, height = max(i.width for i in images), sum(i.height for i in images)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    y = 0
    for image in images:
        canvas.paste(image, (0, y))
        y += image.height
    return canvas
