"""Per-region descriptors for StyleGallery matching (METHODS.md 2.2): statistical, semantic, geometric.

Every function takes a label map [h,w] with consecutive labels 0..R−1 (as `stylex.regions` produces) and
returns one row per region, in label order.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from stylex.errors import ConfigError

StatMode = Literal["mean_std", "official"]
GeometryMode = Literal["centroid", "min_enclosing"]


@dataclass(frozen=True)
class RegionDescriptors:
    """The three descriptors of every region of one image: stat [R,2C], sem [R,D], geo [R,3] (cx, cy, r)."""

    stat: Tensor
    sem: Tensor
    geo: Tensor

    def __post_init__(self) -> None:
        sizes = {self.stat.shape[0], self.sem.shape[0], self.geo.shape[0]}
        if len(sizes) != 1:
            raise ValueError(
                f"descriptors disagree on the number of regions: stat {tuple(self.stat.shape)}, "
                f"sem {tuple(self.sem.shape)}, geo {tuple(self.geo.shape)}"
            )

    @property
    def n_regions(self) -> int:
        return int(self.stat.shape[0])


def count_regions(labels: Tensor) -> int:
    """Number of regions R of a label map, checking that labels are exactly 0..R−1 (no empty region)."""
    if labels.dim() != 2:
        raise ValueError(f"expected a label map [h,w], got shape {tuple(labels.shape)}")
    present = torch.unique(labels)
    n = int(present.numel())
    if int(present.min()) != 0 or int(present.max()) != n - 1:
        raise ValueError(
            f"labels must be consecutive 0..R-1 (use stylex.regions.relabel_consecutive); got {present.tolist()[:20]}"
        )
    return n


# ---------------------------------------------------------------------------------------------- statistical


def stat_descriptors(F_mix: Tensor, labels: Tensor) -> Tensor:
    """Mean and (population) standard deviation of F_mix [C,h,w] over each region's pixels -> [R, 2C].

    Population std (divide by the pixel count) so that a one-pixel region has std 0 rather than NaN.
    """
    n = count_regions(labels)
    F_mix = _chw(F_mix, labels)
    x = F_mix.detach().reshape(F_mix.shape[0], -1).T.to(torch.float64)  # [HW, C]
    idx = labels.reshape(-1).to(device=x.device, dtype=torch.long)
    counts = torch.bincount(idx, minlength=n).to(torch.float64)[:, None]
    mean = torch.zeros(n, x.shape[1], dtype=torch.float64, device=x.device).index_add_(0, idx, x) / counts
    dev = (x - mean[idx]) ** 2
    var = torch.zeros_like(mean).index_add_(0, idx, dev) / counts
    return torch.cat([mean, var.sqrt()], dim=1).to(torch.float32)


@functools.lru_cache(maxsize=4)
def random_encoder(width: int, seed: int, layers: int, heads: int) -> nn.Sequential:
    """An untrained pre-norm transformer (`layers` blocks, GELU MLP of 4x width) with seeded weights.

    The blocks are drawn one after another from one seeded generator, each with PyTorch's default
    initialisation, so they differ from each other, as the published code's blocks do (it draws them in the same
    order from the global random state; `nn.TransformerEncoder` would instead deep-copy one block).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        blocks = [nn.TransformerEncoderLayer(d_model=width, nhead=heads, dim_feedforward=4 * width, dropout=0.0,
                                             activation="gelu", batch_first=True, norm_first=True)
                  for _ in range(layers)]
    return nn.Sequential(*blocks).eval().requires_grad_(False)


@torch.no_grad()
def stat_descriptors_official(
    F_mix: Tensor, labels: Tensor, seed: int = 0, layers: int = 8, heads: int = 4
) -> Tensor:
    """REPRODUCTION ONLY (`stat: official`): the published code's statistical descriptor -> [R, 2C].

    Each region's pixels go through an *untrained, randomly initialised* transformer (`random_encoder`; the
    published code's has 8 independent pre-norm blocks of 4 heads), are put back into a zero-padded [C,h,w]
    map, and the descriptor is [sum / n_pixels, unbiased variance over the whole padded map / n_pixels]. The random
    network carries no learned meaning; the same `seed` gives the same network for the content and every
    reference, so scores are at least consistent. Use `stat_descriptors` for real work.
    """
    n = count_regions(labels)
    F_mix = _chw(F_mix, labels).detach().to(torch.float32)
    c = F_mix.shape[0]
    if c % heads:
        raise ValueError(f"the official statistical descriptor needs channels ({c}) divisible by heads ({heads})")
    encoder = random_encoder(c, seed, layers, heads).to(F_mix.device)
    flat = F_mix.reshape(c, -1)
    lab = labels.reshape(-1).to(F_mix.device)
    rows = []
    for r in range(n):
        inside = lab == r
        count = float(inside.sum())
        attended = encoder(flat[:, inside].T[None])[0]  # [N, C]
        padded = torch.zeros_like(flat)
        padded[:, inside] = attended.T
        rows.append(torch.cat([padded.sum(1) / count, padded.var(dim=1) / count]))
    return torch.stack(rows)


# ---------------------------------------------------------------------------------------------- semantic


def overlap_1d(n_cells: int, n_patches: int) -> Tensor:
    """[n_patches, n_cells]: the exact fraction of each patch's length covered by each cell.

    Cells and patches split the same unit interval evenly; integer arithmetic in units of
    1/(n_cells·n_patches) keeps it exact when neither count divides the other.
    """
    p = torch.arange(n_patches, dtype=torch.int64)[:, None]
    i = torch.arange(n_cells, dtype=torch.int64)[None, :]
    lo = torch.maximum(p * n_cells, i * n_patches)
    hi = torch.minimum((p + 1) * n_cells, (i + 1) * n_patches)
    return (hi - lo).clamp_min(0).to(torch.float64) / n_cells


def patch_overlap(labels: Tensor, grid: tuple[int, int]) -> Tensor:
    """[R, gh, gw]: fraction of each token patch's area covered by each region (both grids span the image)."""
    n = count_regions(labels)
    h, w = labels.shape
    onehot = torch.nn.functional.one_hot(labels.to(torch.long).cpu(), n).permute(2, 0, 1).to(torch.float64)
    rows, cols = overlap_1d(h, grid[0]), overlap_1d(w, grid[1])
    return torch.einsum("pi,rij,qj->rpq", rows, onehot, cols)


def semantic_descriptors(tokens: Tensor, labels: Tensor, min_overlap: float = 0.01) -> Tensor:
    """Mean DINOv2 patch token [gh,gw,D] over the patches a region covers by more than `min_overlap` -> [R,D].

    The token grid and label grid must cover the same image (any sizes, exact area overlaps). A region that
    covers no patch above the threshold takes the patch it covers most (ties: first in raster order).
    """
    if tokens.dim() == 4 and tokens.shape[0] == 1:
        tokens = tokens[0]
    if tokens.dim() != 3:
        raise ValueError(f"expected tokens as [gh,gw,D], got shape {tuple(tokens.shape)}")
    gh, gw, d = tokens.shape
    frac = patch_overlap(labels, (gh, gw)).reshape(-1, gh * gw)  # [R, P]
    chosen = frac > min_overlap
    empty = ~chosen.any(dim=1)
    if empty.any():
        best = frac[empty].argmax(dim=1)
        chosen[empty.nonzero()[:, 0], best] = True
    weights = chosen.to(torch.float64)
    weights = weights / weights.sum(dim=1, keepdim=True)
    flat = tokens.detach().reshape(gh * gw, d).to(device="cpu", dtype=torch.float64)
    return (weights @ flat).to(device=tokens.device, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------- geometric


def pixel_centres(labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (x, y) of every pixel centre: x = (col + ½)/w, y = (row + ½)/h, both in [0, 1]."""
    h, w = labels.shape
    ys, xs = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
    return xs, ys


def _circumcircle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    """Circle through three points; for (nearly) collinear points, the circle on their farthest pair."""
    ax, ay = a
    bx, by = b
    cx, cy = c
    det = 2.0 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    if abs(det) < 1e-14:
        pairs = [(a, b), (a, c), (b, c)]
        p, q = max(pairs, key=lambda pq: float(np.linalg.norm(pq[0] - pq[1])))
        return (p + q) / 2, float(np.linalg.norm(p - q)) / 2
    a2, b2, c2 = ax * ax + ay * ay, bx * bx + by * by, cx * cx + cy * cy
    ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / det
    uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / det
    centre = np.array([ux, uy])
    return centre, float(np.linalg.norm(a - centre))


def min_enclosing_circle(points: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """Smallest circle containing all `points` [n,2] (Welzl's incremental algorithm, seeded shuffle).

    The result is unique, so the shuffle only affects the running time (expected linear).
    """
    pts = np.asarray(points, dtype=np.float64)
    pts = pts[np.random.default_rng(seed).permutation(len(pts))]
    tol = 1e-12

    def outside(p: np.ndarray, centre: np.ndarray, radius: float) -> bool:
        return float(np.linalg.norm(p - centre)) > radius + tol

    centre, radius = pts[0].copy(), 0.0
    for i in range(1, len(pts)):
        if not outside(pts[i], centre, radius):
            continue
        centre, radius = pts[i].copy(), 0.0
        for j in range(i):
            if not outside(pts[j], centre, radius):
                continue
            centre, radius = (pts[i] + pts[j]) / 2, float(np.linalg.norm(pts[i] - pts[j])) / 2
            for k in range(j):
                if outside(pts[k], centre, radius):
                    centre, radius = _circumcircle(pts[i], pts[j], pts[k])
    return centre, radius


def _row_extremes(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The leftmost and rightmost pixel centre of every row of `mask`: a superset of its convex hull."""
    rows = np.flatnonzero(mask.any(axis=1))
    first = mask[rows].argmax(axis=1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    pts = [(xs[rows, first], ys[rows, first]), (xs[rows, last], ys[rows, last])]
    return np.unique(np.concatenate([np.stack(p, axis=1) for p in pts]), axis=0)


def geometry_circles(labels: Tensor, mode: GeometryMode = "centroid") -> Tensor:
    """One circle (cx, cy, r) per region in normalised image coordinates -> [R, 3] (float64).

    "centroid" (official): the centroid of the region's pixel centres and the largest distance to it.
    "min_enclosing": the minimal enclosing circle of the pixel centres. A one-pixel region has radius 0.
    """
    if mode not in ("centroid", "min_enclosing"):
        raise ConfigError(f"matching geometry must be 'centroid' or 'min_enclosing', got {mode!r}")
    n = count_regions(labels)
    lab = labels.detach().cpu().numpy()
    xs, ys = pixel_centres(labels)
    out = np.zeros((n, 3), dtype=np.float64)
    for r in range(n):
        mask = lab == r
        if mode == "centroid":
            px, py = xs[mask], ys[mask]
            cx, cy = px.mean(), py.mean()
            out[r] = cx, cy, np.sqrt((px - cx) ** 2 + (py - cy) ** 2).max()
        else:
            centre, radius = min_enclosing_circle(_row_extremes(mask, xs, ys))
            out[r] = centre[0], centre[1], radius
    return torch.from_numpy(out)


def circle_iou(a: Tensor, b: Tensor) -> Tensor:
    """Exact intersection-over-union of every circle in a [R,3] with every circle in b [S,3] -> [R,S].

    Circles are (cx, cy, r). Two zero-area circles have IoU 0 (as in the published code).
    """
    a = a.to(torch.float64)[:, None, :]
    b = b.to(torch.float64)[None, :, :]
    r1, r2 = a[..., 2], b[..., 2]
    d = torch.sqrt((a[..., 0] - b[..., 0]) ** 2 + (a[..., 1] - b[..., 1]) ** 2)
    d_safe = d.clamp_min(1e-300)
    r1_safe, r2_safe = r1.clamp_min(1e-300), r2.clamp_min(1e-300)
    cos1 = ((d**2 + r1**2 - r2**2) / (2 * d_safe * r1_safe)).clamp(-1, 1)
    cos2 = ((d**2 + r2**2 - r1**2) / (2 * d_safe * r2_safe)).clamp(-1, 1)
    kite = ((-d + r1 + r2) * (d + r1 - r2) * (d - r1 + r2) * (d + r1 + r2)).clamp_min(0)
    lens = r1**2 * torch.arccos(cos1) + r2**2 * torch.arccos(cos2) - 0.5 * torch.sqrt(kite)
    inside = torch.pi * torch.minimum(r1, r2) ** 2
    inter = torch.where(d >= r1 + r2, torch.zeros_like(d), torch.where(d <= (r1 - r2).abs(), inside, lens))
    union = torch.pi * (r1**2 + r2**2) - inter
    return torch.where(union > 0, inter / union.clamp_min(1e-300), torch.zeros_like(union))


# ---------------------------------------------------------------------------------------------- all three


def describe_regions(
    F_mix: Tensor,
    tokens: Tensor,
    labels: Tensor,
    *,
    stat: StatMode = "mean_std",
    geometry: GeometryMode = "centroid",
    min_overlap: float = 0.01,
    seed: int = 0,
    stat_layers: int = 8,
    stat_heads: int = 4,
) -> RegionDescriptors:
    """All three descriptors of one image's regions (the matching config's `stat` and `geometry` switches;
    `stat_layers`/`stat_heads` size the random transformer of `stat: official`)."""
    if stat == "mean_std":
        stat_d = stat_descriptors(F_mix, labels)
    elif stat == "official":
        stat_d = stat_descriptors_official(F_mix, labels, seed=seed, layers=stat_layers, heads=stat_heads)
    else:
        raise ConfigError(f"matching stat must be 'mean_std' or 'official', got {stat!r}")
    return RegionDescriptors(
        stat=stat_d,
        sem=semantic_descriptors(tokens, labels, min_overlap=min_overlap),
        geo=geometry_circles(labels, mode=geometry),
    )


def _chw(values: Tensor, labels: Tensor) -> Tensor:
    if values.dim() == 4 and values.shape[0] == 1:
        values = values[0]
    if values.dim() != 3 or tuple(values.shape[-2:]) != tuple(labels.shape):
        raise ValueError(f"F_mix of shape {tuple(values.shape)} is not [C,h,w] on the label grid {tuple(labels.shape)}")
    return values
