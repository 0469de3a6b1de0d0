"""FID between the stylized set and the style set, and ArtFID = (1 + LPIPS)·(1 + FID_art).

Features are accumulated in float64; the Fréchet distance uses scipy.linalg.sqrtm with pytorch-fid's guards
(ε on the diagonals when the product is singular, the real part when the imaginary part is round-off).
When the imaginary part is not round-off (few images in many dimensions: singular covariances), pytorch-fid
raises; here the same trace is taken from the symmetric form tr√(√Σ1 Σ2 √Σ1), which has the same eigenvalues
as Σ1Σ2 and is computed stably with eigh.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import linalg
from torch import Tensor

from stylex.errors import ConfigError, InputError
from stylex.metrics.base import Metric, PairBatch, module_device
from stylex.metrics.lpips import LPIPS

log = logging.getLogger(__name__)


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(Σ1 Σ2) via the symmetric PSD matrix √Σ1 Σ2 √Σ1 (same eigenvalues), clipped at 0."""
    s1 = _psd_sqrt(sigma1)
    w = np.linalg.eigvalsh(s1 @ sigma2 @ s1)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """‖μ1−μ2‖² + tr Σ1 + tr Σ2 − 2 tr √(Σ1 Σ2), in float64."""
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"feature sets differ in dimension: {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular products are expected with few images; handled below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            log.info("FID: singular product; adding %g to the covariance diagonals", eps)
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            tr_covmean = float(np.trace(covmean.real))
        else:
            log.info("FID: sqrtm has a large imaginary part (max %.3g); using the symmetric eigen form",
                     float(np.max(np.abs(covmean.imag))))
            tr_covmean = trace_sqrt_product(sigma1, sigma2)
    elif not np.isfinite(covmean).all():
        tr_covmean = trace_sqrt_product(sigma1, sigma2)
    else:
        tr_covmean = float(np.trace(covmean))
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, as np.cov) covariance of [N, D] features."""
    feats = np.asarray(features, dtype=np.float64)
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


STYLE_COPIES = ("once", "per_output")


class FID(Metric):
    """Fréchet distance between the pool features of all stylized images and of the style set.

    `style_copies='per_output'`: one copy of the style image per output, as the papers' evaluations do (StyleID's
    README duplicates the style images to the number of outputs; art-fid asserts equal counts). With every style
    used by k of the outputs this scales the style covariance by k(n−1)/(kn−1) for n distinct styles.
    `style_copies='once'`: each distinct style image counts once however many outputs use it (`style_ids` say
    which are new): the style *set* as the reference distribution. A style's features are computed once either way.
    """

    name = "fid"
    higher_is_better = False
    per_image = False
    needs_style = True

    def __init__(self, net: Callable[[Tensor], Tensor], eps: float = 1e-6, style_copies: str = "once") -> None:
        if style_copies not in STYLE_COPIES:
            raise ConfigError(f"the protocol's fid.style_copies={style_copies!r} is not one of: "
                              f"{', '.join(STYLE_COPIES)}.")
        self.net, self.eps, self.style_copies = net, eps, style_copies
        self._style_features: dict[str, np.ndarray] = {}
        super().__init__()

    def reset(self) -> None:
        self.fake: list[np.ndarray] = []
        self.real: list[np.ndarray] = []
        self.seen: set[str] = set()
        self._result: float | None = None

    def describe_input(self) -> str:
        describe = getattr(self.net, "describe_input", None)
        network = describe() if callable(describe) else ""
        copies = "one style copy per output" if self.style_copies == "per_output" else "each style image once"
        return f"{network}; {copies}" if network else copies

    def features(self, images: Tensor) -> np.ndarray:
        dev = module_device(self.net) if isinstance(self.net, torch.nn.Module) else images.device
        with torch.no_grad():
            return self.net(images.to(dev)).detach().double().cpu().reshape(images.shape[0], -1).numpy()

    def update_fake(self, images: Tensor) -> None:
        self.fake.append(self.features(images))
        self._result = None

    def update_real(self, images: Tensor) -> None:
        self.real.append(self.features(images))
        self._result = None

    def update(self, batch: PairBatch) -> None:
        if batch.style is None:
            raise InputError("FID compares stylized images with the style images, but none were given; "
                             "pass the style folder.")
        self.update_fake(batch.stylized)
        ids = list(batch.style_ids) if batch.style_ids is not None else [None] * len(batch)
        if self.style_copies == "once":
            keep = []
            for i, sid in enumerate(ids):
                if sid is None or sid not in self.seen:
                    keep.append(i)
                    if sid is not None:
                        self.seen.add(sid)
            ids = [ids[i] for i in keep]
        else:
            keep = list(range(len(ids)))
        # each style's features once (the same style file always gives the same features under one view)
        todo = sorted({i for i, sid in zip(keep, ids) if sid is None or sid not in self._style_features})
        feats = dict(zip(todo, self.features(batch.style[todo]))) if todo else {}
        for i, sid in zip(keep, ids):
            if sid is not None and sid not in self._style_features:
                self._style_features[sid] = feats[i]
        rows = [feats[i] if sid is None else self._style_features[sid] for i, sid in zip(keep, ids)]
        if rows:
            self.real.append(np.stack(rows))
            self._result = None
        return None

    def compute(self) -> float:
        if self._result is not None:  # ArtFID and the table may both ask; the 2048-d sqrtm is not free
            return self._result
        fake = np.concatenate(self.fake) if self.fake else np.zeros((0, 0))
        real = np.concatenate(self.real) if self.real else np.zeros((0, 0))
        if len(fake) < 2 or len(real) < 2:
            raise InputError(f"FID needs at least 2 stylized and 2 style images (got {len(fake)} and "
                             f"{len(real)}); evaluate a larger set or leave FID/ArtFID out of `metrics.names`.")
        self._result = frechet_distance(*feature_stats(fake), *feature_stats(real), eps=self.eps)
        return self._result


def art_fid(lpips_value: float, fid_value: float) -> float:
    """ArtFID (Wright & Ommer 2022): (1 + content distance) · (1 + FID)."""
    return (1.0 + lpips_value) * (1.0 + fid_value)


class ArtFID(Metric):
    """(1 + LPIPS)·(1 + FID_art). Set `update_lpips=False` / `update_fid=False` when that same instance is
    also evaluated on its own, so the evaluation loop updates it once."""

    name = "artfid"
    higher_is_better = False
    per_image = False
    needs_style = True

    def __init__(self, lpips: LPIPS, fid: FID, update_lpips: bool = True, update_fid: bool = True) -> None:
        self.lpips, self.fid = lpips, fid
        self.update_lpips, self.update_fid = update_lpips, update_fid
        super().__init__()

    def reset(self) -> None:
        self.last_components: dict[str, float] = {}
        if self.update_lpips:
            self.lpips.reset()
        if self.update_fid:
            self.fid.reset()

    def describe_input(self) -> str:
        return f"LPIPS: {self.lpips.describe_input()}; FID_art: {self.fid.describe_input()}"

    def update(self, batch: PairBatch) -> None:
        if self.update_lpips:
            self.lpips.update(batch)
        if self.update_fid:
            self.fid.update(batch)
        return None

    def components(self) -> dict[str, float]:
        """The LPIPS and FID_art that make up the last `compute()` (computed now if there was none)."""
        if not self.last_components:
            self.last_components = {"lpips": self.lpips.compute(), "fid": self.fid.compute()}
        return dict(self.last_components)

    def compute(self) -> float:
        self.last_components = {}
        parts = self.components()
        return art_fid(parts["lpips"], parts["fid"])
