"""Region refinement after clustering (METHODS.md 2.1, steps 5–8): merge, depth split-and-merge, clean-up,
user masks, and moving maps onto the latent grid.

Label maps are [h,w] integer tensors. The merge, split and clean-up steps return labels renumbered 0..n−1 in
order of first appearance in raster order, so that the same partition always gets the same numbers
(`apply_user_mask` numbers the user's regions last; see there).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from torch import Tensor

# 4-connectivity: a pixel touches its left, right, upper and lower neighbours only.
_CROSS = ndimage.generate_binary_structure(2, 1)


# ---------------------------------------------------------------------------------------------- helpers


def relabel_consecutive(labels: Tensor) -> Tensor:
    """Renumber labels 0..n−1 by first appearance in raster order (independent of the input numbering)."""
    flat = labels.reshape(-1)
    if flat.numel() == 0:
        return labels.to(torch.long)
    uniq, inverse = torch.unique(flat, return_inverse=True)
    first = torch.full((uniq.numel(),), flat.numel(), dtype=torch.long, device=flat.device)
    first.scatter_reduce_(0, inverse, torch.arange(flat.numel(), device=flat.device), reduce="amin")
    rank = torch.empty_like(first)
    rank[torch.argsort(first)] = torch.arange(uniq.numel(), device=flat.device)
    return rank[inverse].reshape(labels.shape)


def region_means(labels: Tensor, values: Tensor) -> Tensor:
    """Mean of `values` [C,h,w] over each region of consecutive `labels` [h,w] -> [R, C] (float64)."""
    values = _chw(values, labels)
    n_regions = int(labels.max()) + 1
    flat = labels.reshape(-1).to(torch.long)
    x = values.reshape(values.shape[0], -1).T.to(torch.float64)
    sums = torch.zeros(n_regions, x.shape[1], dtype=torch.float64).index_add_(0, flat, x)
    counts = torch.bincount(flat, minlength=n_regions).to(torch.float64)
    return sums / counts.clamp_min(1)[:, None]


def normalize_depth(depth: Tensor) -> Tensor:
    """Min-max normalise to [0, 1]; a constant map becomes all zeros (no depth structure to split on)."""
    d = depth.to(torch.float64)
    lo, hi = d.min(), d.max()
    if hi - lo <= 0:
        return torch.zeros_like(d)
    return (d - lo) / (hi - lo)


def resize_labels(labels: Tensor, size: Sequence[int]) -> Tensor:
    """Nearest-neighbour resize of a label map [h,w] to `size` (h, w): stylex's one convention for every label
    map, `F.interpolate(mode="nearest")` (output cell i samples input cell floor(i·h_in/h_out)), as the published
    StyleGallery code resizes its masks (METHODS.md 2.3)."""
    size = (int(size[0]), int(size[1]))
    if tuple(labels.shape[-2:]) == size:
        return labels.to(torch.long)
    x = labels.to(torch.float64)[None, None]
    return F.interpolate(x, size=size, mode="nearest")[0, 0].round().to(torch.long)


def resize_depth(depth: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize of a depth map [h,w] or [B,h,w] to `size` (h, w); antialiased when shrinking."""
    size = (int(size[0]), int(size[1]))
    squeeze = depth.dim() == 2
    x = (depth[None] if squeeze else depth)[:, None]
    if not x.is_floating_point():
        x = x.to(torch.float32)
    if tuple(x.shape[-2:]) != size:
        shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    out = x[:, 0]
    return out[0] if squeeze else out


def _chw(values: Tensor, labels: Tensor) -> Tensor:
    """Accept [C,h,w] or [1,C,h,w] on the same grid as `labels`."""
    if values.dim() == 4 and values.shape[0] == 1:
        values = values[0]
    if values.dim() == 2:
        values = values[None]
    if values.dim() != 3 or tuple(values.shape[-2:]) != tuple(labels.shape):
        raise ValueError(
            f"values of shape {tuple(values.shape)} are not a [C,h,w] map on the label grid {tuple(labels.shape)}"
        )
    return values


def _merge_groups(labels: Tensor, adjacent: np.ndarray) -> Tensor:
    """Merge regions joined by `adjacent` [R,R] (bool), chains included (connected components = union-find)."""
    n_comp, comp = connected_components(csr_matrix(adjacent), directed=False)
    del n_comp
    return relabel_consecutive(torch.as_tensor(comp, dtype=torch.long)[labels.to(torch.long)])


# ---------------------------------------------------------------------------------------------- merging


def merge_by_latent(labels: Tensor, latent: Tensor, threshold: float = 0.85) -> Tensor:
    """Merge clusters whose mean clean latent (4 channels) lies closer than `threshold` (L2).

    Over-segmentation by K-means often splits one colour region in two; the latent mean is a cheap colour
    proxy. Chains (A~B, B~C) end in one region even when A and C are far apart.
    """
    labels = relabel_consecutive(labels)
    means = region_means(labels, latent)
    adjacent = (torch.cdist(means, means) < threshold).numpy()
    return _merge_groups(labels, adjacent)


def two_means_1d(values: np.ndarray) -> float | None:
    """Exact 1-D 2-means: the threshold (midway between the groups) of the split with least within-group SSE.

    Deterministic (no random init): all splits of the sorted values are scanned. None if all values are equal.
    """
    s = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    n = s.size
    if n < 2 or s[0] == s[-1]:
        return None
    c1, c2 = np.cumsum(s), np.cumsum(s * s)
    k = np.arange(1, n)  # size of the lower group
    sse_low = c2[k - 1] - c1[k - 1] ** 2 / k
    sse_high = (c2[-1] - c2[k - 1]) - (c1[-1] - c1[k - 1]) ** 2 / (n - k)
    sse = sse_low + sse_high
    sse[s[k - 1] == s[k]] = np.inf  # equal values must not be separated
    best = int(np.argmin(sse)) + 1
    return float((s[best - 1] + s[best]) / 2)


def depth_split_merge(
    labels: Tensor,
    latent: Tensor,
    depth: Tensor,
    *,
    min_pixels: int = 20,
    span: float = 0.75,
    low_pct: float = 5.0,
    high_pct: float = 95.0,
    remerge_latent: float = 0.35,
    remerge_depth: float = 0.3,
) -> Tensor:
    """Split clusters that straddle very different depths, then re-merge near-identical neighbours in depth.

    A cluster with ≥ `min_pixels` pixels whose `low_pct`–`high_pct` percentile depth span is ≥ `span` is cut
    in two by exact 1-D 2-means on depth (e.g. a blue sky and a blue lake). Then any two clusters with
    latent-mean L2 < `remerge_latent` AND mean-depth gap < `remerge_depth` merge again (chains resolved).
    `depth` must already be on the label grid; any range, min-max normalised here.
    """
    labels = relabel_consecutive(labels)
    if tuple(depth.shape) != tuple(labels.shape):
        raise ValueError(
            f"depth {tuple(depth.shape)} is not on the label grid {tuple(labels.shape)}; use resize_depth first"
        )
    d = normalize_depth(depth)
    out = labels.clone()
    next_id = int(labels.max()) + 1
    for r in range(next_id):
        inside = labels == r
        if int(inside.sum()) < min_pixels:
            continue
        vals = d[inside].numpy()
        lo, hi = np.percentile(vals, [low_pct, high_pct])
        if hi - lo < span:
            continue
        cut = two_means_1d(vals)
        if cut is None:
            continue
        out[inside & (d > cut)] = next_id
        next_id += 1
    out = relabel_consecutive(out)
    lat_means = region_means(out, latent)
    depth_means = region_means(out, d[None])[:, 0]
    close_latent = torch.cdist(lat_means, lat_means) < remerge_latent
    close_depth = (depth_means[:, None] - depth_means[None, :]).abs() < remerge_depth
    return _merge_groups(out, (close_latent & close_depth).numpy())


# ---------------------------------------------------------------------------------------------- clean-up


def clean_small_regions(labels: Tensor, min_pixels: int = 20) -> Tensor:
    """Give every 4-connected component smaller than `min_pixels` the most frequent label on its 4-border.

    Speckles are too small for a meaningful attention region. Components are handled smallest first (ties:
    first in raster order), reading the current map, and the passes repeat until no small component that has
    a border remains (a component filling the whole map stays). Ties between border labels go to the
    smallest label value.
    """
    arr = relabel_consecutive(labels).numpy().copy()
    h, w = arr.shape
    while True:
        candidates = []
        for value in np.unique(arr):
            comp, _ = ndimage.label(arr == value, structure=_CROSS)
            sizes = np.bincount(comp.reshape(-1))
            for cid, sl in enumerate(ndimage.find_objects(comp), start=1):
                if sl is None or sizes[cid] >= min_pixels:
                    continue
                rows = slice(max(sl[0].start - 1, 0), min(sl[0].stop + 1, h))
                cols = slice(max(sl[1].start - 1, 0), min(sl[1].stop + 1, w))
                mask = comp[rows, cols] == cid
                rr, cc = np.nonzero(mask)  # raster order: the first entry is the component's first pixel
                first = int((rr[0] + rows.start) * w + cc[0] + cols.start)
                candidates.append((int(sizes[cid]), first, int(value), rows, cols, mask))
        candidates.sort(key=lambda c: (c[0], c[1]))
        changed = False
        for _, _, value, rows, cols, mask in candidates:
            window = arr[rows, cols]
            ring = ndimage.binary_dilation(mask, structure=_CROSS) & ~mask
            border = window[ring]
            if border.size == 0 or (border == value).any():
                continue  # fills the map, or already joined a same-label neighbour this pass: re-check next pass
            vals, counts = np.unique(border, return_counts=True)
            window[mask] = vals[int(np.argmax(counts))]
            changed = True
        if not changed:
            break
    return relabel_consecutive(torch.from_numpy(arr).to(torch.long))


def apply_user_mask(labels: Tensor, user_mask: Tensor) -> Tensor:
    """Let a user's label image override the automatic regions: each non-zero user label is its own region.

    Numbering: the automatic regions that keep pixels come first (0..m−1, raster order), then the user labels
    in increasing order of their value (m, m+1, …), so a user can tell which region their label became.
    A user mask on another grid is resized (nearest) to the label grid.
    """
    labels = labels.to(torch.long)
    user = resize_labels(user_mask.to(torch.long), labels.shape)
    keep = user == 0
    out = torch.empty_like(labels)
    n_auto = 0
    if keep.any():
        auto = relabel_consecutive(labels[keep])
        out[keep] = auto
        n_auto = int(auto.max()) + 1
    for k, value in enumerate(torch.unique(user[~keep]).tolist()):
        out[user == value] = n_auto + k
    return out
