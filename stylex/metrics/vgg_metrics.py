"""The VGG19 metrics: CFSD (content structure), Gram loss and the block style score (style).

All three take the VGG19 as an argument and see the images as their protocol's view loads them. Gram loss and
the style score compare each stylized image with its paired style image (`against='paired'`) or with every
image of its style family (`against='family'`, as StyleGallery's Grama_simi.py does); a style's features are
computed once and kept for the next outputs of the same style.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from stylex.errors import ConfigError, InputError
from stylex.metrics.base import PairBatch, PerImageMetric, module_device
from stylex.metrics.networks import STYLE_LAYERS, VGG19


AGAINST = ("paired", "family")
FAMILY_CACHE = 8  # styles whose features are kept (outputs are evaluated style by style)


def _check(value: str, allowed: Sequence[str], key: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not one of: {', '.join(allowed)}.")
    return value


class StyleSetMetric(PerImageMetric):
    """A per-image style metric that compares with the paired style image or with the pair's whole family.

    Subclasses say what is compared: `features` of images, `combine` (a family's images' features as one reference)
    and `compare` (one stylized image's features against a reference). A reference is computed once per style
    (the paired style image's path, or the family) and kept for the next outputs of the same style."""

    needs = "style"

    def __init__(self, against: str = "paired") -> None:
        self.against = _check(against, AGAINST, f"the protocol's {self.name}.against")
        self.needs_style, self.needs_family = against == "paired", against == "family"
        self._references: OrderedDict[str, object] = OrderedDict()
        super().__init__()

    def features(self, images: Tensor) -> list[object]:
        """Per image of [B,3,H,W], what this metric compares."""
        raise NotImplementedError

    def combine(self, per_image: Sequence[object]) -> object:
        """The features of a family's images as one reference."""
        raise NotImplementedError

    def compare(self, stylized: object, reference: object) -> Tensor:
        """The value [] of one stylized image's features against a reference."""
        raise NotImplementedError

    def reference(self, style_id: str | None, images: Sequence[Tensor]) -> object:
        """The reference of a style's images [3,H,W] (sizes may differ): computed once per `style_id` (a few kept,
        least recently used first out); always computed when there is no id."""
        if style_id is not None and style_id in self._references:
            self._references.move_to_end(style_id)
            return self._references[style_id]
        value = self.combine([self.features(img.unsqueeze(0))[0] for img in images])
        if style_id is not None:
            self._references[style_id] = value
            if len(self._references) > FAMILY_CACHE:
                self._references.popitem(last=False)
        return value

    def score(self, stylized: Tensor, reference: Tensor) -> Tensor:
        """Per-image values [B] against each image's own style image (nothing kept)."""
        pairs = zip(self.features(stylized), self.features(reference))
        return torch.stack([self.compare(x, self.combine([r])) for x, r in pairs])

    def update(self, batch: PairBatch) -> Tensor:
        if self.against == "paired":
            if batch.style is None or batch.style_ids is None:
                return super().update(batch)
            ids, styles = list(batch.style_ids), [[image] for image in batch.style]
        elif batch.families is None or batch.family_ids is None:
            raise InputError(f"the {self.name} metric compares with each output's style family, but none was "
                             f"given; pass the style folder.")
        else:
            ids, styles = list(batch.family_ids), list(batch.families)
        with torch.no_grad():
            vals = torch.stack([self.compare(x, self.reference(sid, images)).double().cpu().reshape(())
                                for x, sid, images in zip(self.features(batch.stylized), ids, styles)])
        self.values.append(vals)
        return vals


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
        raise ConfigError(f"the protocol's cfsd.mode={mode!r} is not one of: default, official.")
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
        self.mode = _check(mode, ("default", "official"), "the protocol's cfsd.mode")
        super().__init__()

    def describe_input(self) -> str:
        return f"VGG19 {self.layer}, ImageNet mean/std ({self.mode} CFSD)"

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


class GramLoss(StyleSetMetric):
    """Σ_layers ‖G_l(stylized) − G_l(style)‖₁ (sum of absolute entries), G = F·Fᵀ/(c·h·w), VGG19 relu1_1…relu5_1.

    `mode='official'` is StyleGallery's eval/Grama_simi.py: no ImageNet normalisation, 128x128 tiles (only whole
    tiles), one layer (the output of the whole VGG19 `features`, pool5), each stylized tile's L1 Gram distance to
    its nearest style tile, averaged over tiles. `against='family'`: the style tiles of every image of the pair's
    family (Grama_simi.py), or in the default mode the nearest family image.
    """

    name = "gram"
    higher_is_better = False

    def __init__(self, vgg: VGG19, layers: Sequence[str] = STYLE_LAYERS, mode: str = "default",
                 block_size: int = 128, against: str = "paired") -> None:
        self.vgg, self.layers, self.block_size = vgg.eval(), tuple(layers), block_size
        self.mode = _check(mode, ("default", "official"), "the protocol's gram.mode")
        super().__init__(against)

    def describe_input(self) -> str:
        against = "nearest tile of the style family" if self.against == "family" else "nearest tile of the style"
        if self.mode == "official":
            return f"VGG19 pool5 on {self.block_size}x{self.block_size} tiles, [0,1] input, {against} (official Gram)"
        versus = "the nearest family image" if self.against == "family" else "the paired style"
        return f"VGG19 {','.join(self.layers)}, ImageNet mean/std, vs {versus}"

    def grams(self, images: Tensor) -> Tensor:
        """[B, 3, H, W] -> [B, n, c²]: the Gram matrices this mode compares (n = tiles, or 1 per layer set)."""
        dev = module_device(self.vgg)
        images = images.to(dev)
        if self.mode == "official":
            tiles = split_blocks(images, block=self.block_size)
            b, n = tiles.shape[:2]
            return gram(self.vgg(tiles.flatten(0, 1), ["pool5"], normalize=False)["pool5"]).reshape(b, n, -1)
        feats = self.vgg(images, self.layers)
        return torch.cat([gram(feats[l]).flatten(1) for l in self.layers], dim=1).unsqueeze(1)

    def distance(self, gx: Tensor, gy: Tensor) -> Tensor:
        """[n_x, d] stylized vs [n_y, d] style grams -> the metric: mean over x of the L1 to the nearest y."""
        return torch.cdist(gx.double().unsqueeze(0), gy.double().unsqueeze(0), p=1)[0].min(dim=1).values.mean()

    def features(self, images: Tensor) -> list[object]:
        return list(self.grams(images))

    def combine(self, per_image: Sequence[object]) -> object:
        return torch.cat(list(per_image))  # type: ignore[arg-type]

    def compare(self, stylized: object, reference: object) -> Tensor:
        return self.distance(stylized, reference)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- style score

def hungarian_mean(similarity: np.ndarray) -> tuple[float, np.ndarray]:
    """Maximum-weight one-to-one assignment of rows to columns; (mean matched similarity, column per row)."""
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    perm = np.empty(similarity.shape[0], dtype=np.int64)
    perm[rows] = cols
    return float(similarity[rows, cols].mean()), perm


class StyleScore(StyleSetMetric):
    """Block style similarity (StyleGallery's "Style" column); higher is better, at most 1.

    Both images are cut into a grid x grid of blocks (default 4x4: 128² blocks at 512²). Each block goes through
    VGG19 on its own; its descriptor per layer is the global average of the relu features (`pool='mean'`, what
    a block's style is: which textures/colours respond, not where) or the flattened map (`pool='flatten'`, as
    StyleGallery's VGG_simi.py helpers). Similarity of a stylized block to a style block = the cosine of their
    descriptors averaged over layers; the Hungarian assignment (one style block per stylized block, maximised)
    makes the stylized image cover the style's variety instead of copying one patch; the score is the mean
    matched similarity. `against='family'`: the blocks of every image of the pair's family are the candidates
    (each stylized block still gets its own one).
    """

    name = "style_score"
    higher_is_better = True

    def __init__(self, vgg: VGG19, grid: int = 4, layers: Sequence[str] = STYLE_LAYERS, pool: str = "mean",
                 against: str = "paired") -> None:
        if grid < 1:
            raise ConfigError(f"the protocol's style_score.grid={grid} must be at least 1.")
        self.vgg, self.grid, self.layers = vgg.eval(), grid, tuple(layers)
        self.pool = _check(pool, ("mean", "flatten"), "the protocol's style_score.pool")
        super().__init__(against)

    def describe_input(self) -> str:
        versus = "the style family's blocks" if self.against == "family" else "the paired style's blocks"
        return (f"VGG19 {','.join(self.layers)} on a {self.grid}x{self.grid} grid of blocks, ImageNet mean/std, "
                f"{self.pool}-pooled, Hungarian-matched to {versus}")

    @torch.no_grad()
    def descriptors(self, images: Tensor) -> list[Tensor]:
        """[B, 3, H, W] -> per layer [B, n, d_layer]: each block's unit descriptor (n = grid²)."""
        dev = module_device(self.vgg)
        blocks = split_blocks(images.to(dev), self.grid)
        b, n = blocks.shape[:2]
        feats = self.vgg(blocks.flatten(0, 1), self.layers)
        out = []
        for layer in self.layers:
            f = feats[layer]
            d = f.mean(dim=(2, 3)) if self.pool == "mean" else f.flatten(1)
            out.append(F.normalize(d.double(), dim=1).reshape(b, n, -1))
        return out

    @staticmethod
    def _mean_similarity(dx: Sequence[Tensor], dy: Sequence[Tensor]) -> Tensor:
        """Block-to-block cosines averaged over layers: [..., n_x, n_y]."""
        return sum(a @ b.transpose(-1, -2) for a, b in zip(dx, dy)) / len(dx)  # type: ignore[return-value]

    @torch.no_grad()
    def similarity(self, stylized: Tensor, style: Tensor) -> Tensor:
        """[B, n, n] block-to-block similarities (n = grid²), averaged over layers."""
        return self._mean_similarity(self.descriptors(stylized), self.descriptors(style))

    def features(self, images: Tensor) -> list[object]:
        per_layer = self.descriptors(images)
        return [[d[i] for d in per_layer] for i in range(images.shape[0])]

    def combine(self, per_image: Sequence[object]) -> object:  # per layer: every image's blocks
        return [torch.cat([f[k] for f in per_image]) for k in range(len(self.layers))]  # type: ignore[index]

    def compare(self, stylized: object, reference: object) -> Tensor:
        sim = self._mean_similarity(stylized, reference)  # type: ignore[arg-type]
        return torch.tensor(hungarian_mean(sim.cpu().numpy())[0], dtype=torch.float64)
