"""The VGG19 metrics: CFSD (content structure), Gram loss and the block style score (style).

All three take the VGG19 as an argument and see ImageNet-normalised images at the evaluation size.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from stylex.errors import ConfigError
from stylex.metrics.base import PerImageMetric, module_device
from stylex.metrics.networks import STYLE_LAYERS, VGG19


def _check(value: str, allowed: Sequence[str], key: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(allowed)}.")
    return value


# ---------------------------------------------------------------------------------------------- CFSD

def patch_similarity_kl(content: Tensor, stylized: Tensor, mode: str = "default", temperature: float = 1.0,
                        chunk: int = 512) -> Tensor:
    """KL between the patch-similarity distributions of two feature maps [c, h, w] (same shape).

    Row i of a map's patch-similarity matrix is softmax_j(s(f_i, f_j)) over all positions j. Returns the KL
    KL(P_content,i ‖ P_stylized,i) per row, reduced: `default` s = cosine / temperature, mean over rows;
    `official` (StyleID's evaluation code) s = (f_i/c)·(f_j/c), sum over rows. Rows go in chunks of `chunk`
    so a 128x128 map (16384² entries) never sits in memory whole.
    """
    c = content.shape[0]
    fc, fs = content.reshape(c, -1).double(), stylized.reshape(c, -1).double()
    if mode == "default":
        fc, fs = F.normalize(fc, dim=0) / temperature ** 0.5, F.normalize(fs, dim=0) / temperature ** 0.5
    elif mode == "official":
        fc, fs = fc / c, fs / c
    else:
        raise ConfigError(f"metrics.cfsd.mode={mode!r} is not one of: default, official.")
    n = fc.shape[1]
    total = torch.zeros((), dtype=torch.float64, device=fc.device)
    for r0 in range(0, n, chunk):
        logp = torch.log_softmax(fc[:, r0:r0 + chunk].T @ fc, dim=-1)
        logq = torch.log_softmax(fs[:, r0:r0 + chunk].T @ fs, dim=-1)
        total = total + (logp.exp() * (logp - logq)).sum()
    return total / n if mode == "default" else total


class CFSD(PerImageMetric):
    """Content Feature Structural Distance (StyleID): how much the stylized image's self-similarity structure
    at VGG19 relu3_1 departs from the content image's. 0 when identical; lower is better.

    Default: cosine similarities (scale-free, so a brightness or contrast change alone does not alter the
    structure), softmax over each row, KL(content ‖ stylized) averaged over rows (resolution-independent).
    `mode='official'` is StyleID's evaluation code: dot products of features divided by c, rows summed.
    """

    name = "cfsd"
    higher_is_better = False
    needs = "content"

    def __init__(self, vgg: VGG19, layer: str = "relu3_1", mode: str = "default", temperature: float = 1.0,
                 chunk: int = 512) -> None:
        self.vgg, self.layer, self.temperature, self.chunk = vgg.eval(), layer, temperature, chunk
        self.mode = _check(mode, ("default", "official"), "metrics.cfsd.mode")
        super().__init__()

    def describe_input(self) -> str:
        return f"VGG19 {self.layer} at the evaluation size, ImageNet mean/std ({self.mode} CFSD)"

    def score(self, stylized: Tensor, reference: Tensor) -> Tensor:
        dev = module_device(self.vgg)
        fs = self.vgg(stylized.to(dev), [self.layer])[self.layer]
        fc = self.vgg(reference.to(dev), [self.layer])[self.layer]
        return torch.stack([patch_similarity_kl(a, b, self.mode, self.temperature, self.chunk)
                            for a, b in zip(fc, fs)])


# ---------------------------------------------------------------------------------------------- Gram loss

def gram(features: Tensor) -> Tensor:
    """[B, c, h, w] -> [B, c, c]: F·Fᵀ / (c·h·w)."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def split_blocks(images: Tensor, grid: int | None = None, block: int | None = None) -> Tensor:
    """[B,3,H,W] -> [B, n, 3, bh, bw]: a grid x grid split, or non-overlapping block x block tiles
    (row-major; a remainder narrower than a block is dropped)."""
    b, ch, h, w = images.shape
    bh, bw = (h // grid, w // grid) if grid else (block, block)
    if not bh or not bw or bh > h or bw > w:
        raise ConfigError(f"cannot split {h}x{w} images into blocks of {bh}x{bw}; use a smaller grid or block.")
    ny, nx = h // bh, w // bw
    x = images[:, :, :ny * bh, :nx * bw].reshape(b, ch, ny, bh, nx, bw)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, ny * nx, ch, bh, bw)


class GramLoss(PerImageMetric):
    """Σ_layers ‖G_l(stylized) − G_l(style)‖₁ (sum of absolute entries), G = F·Fᵀ/(c·h·w), VGG19 relu1_1…relu5_1.

    `mode='official'` is StyleGallery's eval/Grama_simi.py: no ImageNet normalisation, 128x128 tiles, one
    layer (the output of the whole VGG19 `features`, pool5), each stylized tile's L1 Gram distance to its
    nearest style tile, averaged over tiles.
    """

    name = "gram"
    higher_is_better = False
    needs = "style"

    def __init__(self, vgg: VGG19, layers: Sequence[str] = STYLE_LAYERS, mode: str = "default",
                 block_size: int = 128) -> None:
        self.vgg, self.layers, self.block_size = vgg.eval(), tuple(layers), block_size
        self.mode = _check(mode, ("default", "official"), "metrics.gram.mode")
        super().__init__()

    def describe_input(self) -> str:
        if self.mode == "official":
            return f"VGG19 pool5 on {self.block_size}x{self.block_size} tiles, [0,1] input (official Gram)"
        return f"VGG19 {','.join(self.layers)} at the evaluation size, ImageNet mean/std"

    def score(self, stylized: Tensor, reference: Tensor) -> Tensor:
        dev = module_device(self.vgg)
        x, y = stylized.to(dev), reference.to(dev)
        if self.mode == "official":
            return self._official(x, y)
        fx, fy = self.vgg(x, self.layers), self.vgg(y, self.layers)
        return sum((gram(fx[l]) - gram(fy[l])).abs().sum(dim=(1, 2)) for l in self.layers)  # type: ignore[return-value]

    def _official(self, x: Tensor, y: Tensor) -> Tensor:
        bx, by = split_blocks(x, block=self.block_size), split_blocks(y, block=self.block_size)
        b, n = bx.shape[:2]
        gx = gram(self.vgg(bx.flatten(0, 1), ["pool5"], normalize=False)["pool5"]).reshape(b, n, -1)
        gy = gram(self.vgg(by.flatten(0, 1), ["pool5"], normalize=False)["pool5"]).reshape(b, by.shape[1], -1)
        dist = torch.cdist(gx.double(), gy.double(), p=1)  # [b, n_stylized, n_style]
        return dist.min(dim=2).values.mean(dim=1)


# ---------------------------------------------------------------------------------------------- style score

def hungarian_mean(similarity: np.ndarray) -> tuple[float, np.ndarray]:
    """Maximum-weight one-to-one assignment of rows to columns; (mean matched similarity, column per row)."""
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    perm = np.empty(similarity.shape[0], dtype=np.int64)
    perm[rows] = cols
    return float(similarity[rows, cols].mean()), perm


class StyleScore(PerImageMetric):
    """Block style similarity (StyleGallery's "Style" column); higher is better, at most 1.

    Both images are cut into a grid x grid of blocks (default 4x4: 128² blocks at 512²). Each block goes through
    VGG19 on its own; its descriptor per layer is the global average of the relu features (`pool='mean'`, what
    a block's style is: which textures/colours respond, not where) or the flattened map (`pool='flatten'`, as
    StyleGallery's VGG_simi.py helpers). Similarity of a stylized block to a style block = the cosine of their
    descriptors averaged over layers; the Hungarian assignment (one style block per stylized block, maximised)
    makes the stylized image cover the style's variety instead of copying one patch; the score is the mean
    matched similarity.
    """

    name = "style_score"
    higher_is_better = True
    needs = "style"

    def __init__(self, vgg: VGG19, grid: int = 4, layers: Sequence[str] = STYLE_LAYERS, pool: str = "mean") -> None:
        if grid < 1:
            raise ConfigError(f"metrics.style_score.grid={grid} must be at least 1.")
        self.vgg, self.grid, self.layers = vgg.eval(), grid, tuple(layers)
        self.pool = _check(pool, ("mean", "flatten"), "metrics.style_score.pool")
        super().__init__()

    def describe_input(self) -> str:
        return (f"VGG19 {','.join(self.layers)} on a {self.grid}x{self.grid} grid of blocks, ImageNet mean/std, "
                f"{self.pool}-pooled, Hungarian-matched")

    @torch.no_grad()
    def similarity(self, stylized: Tensor, style: Tensor) -> Tensor:
        """[B, n, n] block-to-block similarities (n = grid²), averaged over layers."""
        dev = module_device(self.vgg)
        bx, by = split_blocks(stylized.to(dev), self.grid), split_blocks(style.to(dev), self.grid)
        b, n = bx.shape[:2]
        feats = self.vgg(torch.cat([bx.flatten(0, 1), by.flatten(0, 1)]), self.layers)
        sim = torch.zeros(b, n, n, dtype=torch.float64, device=dev)
        for layer in self.layers:
            f = feats[layer]
            d = f.mean(dim=(2, 3)) if self.pool == "mean" else f.flatten(1)
            d = F.normalize(d.double(), dim=1)
            dx, dy = d[: b * n].reshape(b, n, -1), d[b * n:].reshape(b, n, -1)
            sim += dx @ dy.transpose(1, 2)
        return sim / len(self.layers)

    def score(self, stylized: Tensor, reference: Tensor) -> Tensor:
        sims = self.similarity(stylized, reference).cpu().numpy()
        return torch.tensor([hungarian_mean(s)[0] for s in sims], dtype=torch.float64)
