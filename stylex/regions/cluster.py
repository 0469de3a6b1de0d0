"""Unsupervised regions from mixed diffusion features (METHODS.md 2.1, step 4).

Pixels are rows, channels are z-scored and reduced by PCA, K-means runs for every k in min_k..max_k, and
the k with the best silhouette score wins: max_k is an upper bound, not a fixed region count.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits
from torch import Tensor

from stylex.errors import ConfigError
from stylex.regions.refine import relabel_consecutive


class RegionWarning(UserWarning):
    """A region computation took a documented fallback (e.g. a flat image yields a single region)."""


class Clustering(NamedTuple):
    """Result of `cluster_features`: labels [h,w] (0..k−1), the chosen k, and the silhouette of every k tried."""

    labels: Tensor
    k: int
    silhouette_by_k: dict[int, float]

    @property
    def single_region(self) -> bool:
        """True when the input had no structure to cluster and the whole map is one region (the fallback)."""
        return self.k == 1


def zscore_rows(features: Tensor) -> np.ndarray:
    """[C,h,w] -> [h·w, C] float64 with every channel z-scored; constant channels become 0 instead of NaN."""
    c = features.shape[0]
    x = features.detach().reshape(c, -1).T.to(torch.float64).cpu().numpy()
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf; cannot cluster them")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    flat = std <= 1e-8 * np.maximum(1.0, np.abs(mean))
    z = (x - mean) / np.where(flat, 1.0, std)
    z[:, flat] = 0.0
    return z


def cluster_features(
    F_mix: Tensor,
    max_k: int = 10,
    min_k: int = 2,
    pca_dims: int = 60,
    n_init: int = 10,
    max_iter: int = 64,
    seed: int = 0,
    silhouette_sample_size: int | None = None,
    n_threads: int | None = 1,
) -> Clustering:
    """Cluster the pixels of `F_mix` [C,h,w] into k ∈ [min_k, max_k] regions, k chosen by silhouette.

    min_k below 2 counts as 2 (a silhouette needs two clusters); max_k < 2 or min_k > max_k is a ConfigError.

    Silhouette is Euclidean in PCA space, exact by default; with `silhouette_sample_size`, above that many
    pixels it is computed on a sample drawn with `seed` (deterministic). A request for more regions than there are
    pixels or distinct pixels is clamped with a `RegionWarning`; an input with a single distinct pixel value
    (a flat-colour image) yields one region, also with a `RegionWarning` (`Clustering.single_region`).
    `n_threads` caps the OpenMP/BLAS threads of scikit-learn (None: its default). One thread is the default:
    on a few thousand pixels, thread start-up and contention with torch's own OpenMP pool cost far more than
    they save (10–50x slower on a busy 2-core machine), and one thread is bit-for-bit reproducible.
    """
    if max_k < 2 or min_k > max_k:
        raise ConfigError(f"region counts need 2 <= max_k and min_k <= max_k; got min_k={min_k}, max_k={max_k}")
    if F_mix.dim() == 4 and F_mix.shape[0] == 1:
        F_mix = F_mix[0]
    if F_mix.dim() != 3:
        raise ValueError(f"expected F_mix as [C,h,w], got shape {tuple(F_mix.shape)}")
    _, h, w = F_mix.shape
    z = zscore_rows(F_mix)
    n = z.shape[0]
    n_distinct = int(np.unique(z, axis=0).shape[0])

    upper = min(max_k, n_distinct, n - 1)  # silhouette needs 2 <= k <= n − 1
    if upper < 2:
        warnings.warn(
            f"the feature map ({h}x{w} pixels) has {n_distinct} distinct pixel value(s): nothing to cluster, "
            "using a single region",
            RegionWarning,
            stacklevel=2,
        )
        return Clustering(torch.zeros(h, w, dtype=torch.long), 1, {})
    if upper < max_k:
        warnings.warn(
            f"asked for up to {max_k} regions but the feature map has {n} pixels and {n_distinct} distinct "
            f"values; trying at most {upper}",
            RegionWarning,
            stacklevel=2,
        )
    lower = min(max(min_k, 2), upper)

    if n_threads is None:
        return _search_k(z, h, w, lower, upper, pca_dims, n_init, max_iter, seed, silhouette_sample_size)
    with threadpool_limits(limits=n_threads):
        return _search_k(z, h, w, lower, upper, pca_dims, n_init, max_iter, seed, silhouette_sample_size)


def _search_k(
    z: np.ndarray,
    h: int,
    w: int,
    lower: int,
    upper: int,
    pca_dims: int,
    n_init: int,
    max_iter: int,
    seed: int,
    silhouette_sample_size: int | None,
) -> Clustering:
    """PCA, then K-means for each k in lower..upper; keep the k with the best silhouette."""
    n = z.shape[0]
    n_comp = min(pca_dims, n, z.shape[1])
    pts = PCA(n_components=n_comp, svd_solver="full", random_state=seed).fit_transform(z)
    sample = silhouette_sample_size if silhouette_sample_size is not None and n > silhouette_sample_size else None

    scores: dict[int, float] = {}
    labels_by_k: dict[int, np.ndarray] = {}
    for k in range(lower, upper + 1):
        with warnings.catch_warnings():
            # duplicate points can leave fewer than k distinct clusters; handled below via the real label count
            warnings.simplefilter("ignore", ConvergenceWarning)
            lab = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed).fit_predict(pts)
        if not 2 <= np.unique(lab).size <= n - 1:
            continue
        scores[k] = float(silhouette_score(pts, lab, metric="euclidean", sample_size=sample, random_state=seed))
        labels_by_k[k] = lab
    if not scores:
        warnings.warn("K-means found no split of the feature map; using a single region", RegionWarning, stacklevel=3)
        return Clustering(torch.zeros(h, w, dtype=torch.long), 1, {})
    best_k = max(scores, key=lambda k: (scores[k], -k))  # best silhouette; ties go to the smaller k
    labels = relabel_consecutive(torch.from_numpy(labels_by_k[best_k]).to(torch.long)).reshape(h, w)
    return Clustering(labels, int(labels.max()) + 1, scores)
