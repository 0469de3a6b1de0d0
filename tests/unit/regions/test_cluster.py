import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from stylex.errors import ConfigError
from stylex.regions.cluster import RegionWarning, cluster_features


def planted_map(n_clusters: int, h: int = 24, w: int = 24) -> torch.Tensor:
    """Irregular planted regions: a disc, two bands and the rest."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[yy >= h // 2] = 1
    if n_clusters >= 3:
        labels[(yy - 6) ** 2 + (xx - 16) ** 2 <= 20] = 2
    if n_clusters >= 4:
        labels[(xx < 5) & (yy > 3)] = 3
    assert len(torch.unique(labels)) == n_clusters
    return labels


def planted_features(labels: torch.Tensor, channels: int = 32, noise: float = 0.3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    k = int(labels.max()) + 1
    means = 2.0 * torch.randn(k, channels, generator=g)
    feats = means[labels].permute(2, 0, 1)
    return feats + noise * torch.randn(feats.shape, generator=g)


@pytest.mark.parametrize("n_clusters", [3, 4])
def test_planted_clusters_are_recovered(n_clusters):
    truth = planted_map(n_clusters)
    result = cluster_features(planted_features(truth, seed=n_clusters))
    assert result.k == n_clusters
    assert not result.single_region
    assert set(result.silhouette_by_k) == set(range(2, 11))
    ari = adjusted_rand_score(truth.reshape(-1).numpy(), result.labels.reshape(-1).numpy())
    assert ari >= 0.95
    assert result.labels.shape == truth.shape and result.labels.dtype == torch.long
    assert sorted(torch.unique(result.labels).tolist()) == list(range(n_clusters))


def test_clustering_is_deterministic():
    f = planted_features(planted_map(3), seed=7)
    a = cluster_features(f, max_k=5, seed=3)
    b = cluster_features(f, max_k=5, seed=3)
    assert torch.equal(a.labels, b.labels) and a.silhouette_by_k == b.silhouette_by_k


def test_constant_channel_is_harmless():
    truth = planted_map(3)
    f = planted_features(truth, seed=1)
    f[5] = 7.0  # a dead channel: zero std must not produce NaN
    result = cluster_features(f, max_k=6)
    assert result.k == 3
    assert adjusted_rand_score(truth.reshape(-1).numpy(), result.labels.reshape(-1).numpy()) >= 0.95


def test_flat_input_gives_one_region_with_warning():
    f = torch.full((16, 8, 8), 0.37)
    with pytest.warns(RegionWarning, match="single region"):
        result = cluster_features(f)
    assert result.single_region and result.k == 1
    assert result.silhouette_by_k == {}
    assert torch.equal(result.labels, torch.zeros(8, 8, dtype=torch.long))


def test_more_regions_than_distinct_pixels_is_clamped():
    f = torch.zeros(4, 6, 6)
    f[:, :, 3:] = 1.0  # two distinct pixel values
    with pytest.warns(RegionWarning, match="at most 2"):
        result = cluster_features(f, max_k=10)
    assert result.k == 2
    assert torch.equal(result.labels[:, :3], torch.zeros(6, 3, dtype=torch.long))
    assert torch.equal(result.labels[:, 3:], torch.ones(6, 3, dtype=torch.long))


def test_more_regions_than_pixels_is_clamped():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(3, 2, 2, generator=g)  # 4 pixels: silhouette allows k <= 3
    with pytest.warns(RegionWarning):
        result = cluster_features(f, max_k=10)
    assert set(result.silhouette_by_k) <= {2, 3}
    assert 2 <= result.k <= 3


def test_silhouette_sampling_is_deterministic():
    f = planted_features(planted_map(4), seed=2)
    a = cluster_features(f, max_k=5, silhouette_sample_size=200)
    b = cluster_features(f, max_k=5, silhouette_sample_size=200)
    assert a.silhouette_by_k == b.silhouette_by_k
    assert np.isfinite(list(a.silhouette_by_k.values())).all()


def test_silhouette_is_exact_unless_a_sample_size_is_set(monkeypatch):
    """METHODS.md 2.1: the silhouette is exact by default, at any size (here 9216 pixels, above the 8192 that
    was once hard-coded); `silhouette_sample_size` subsamples above that many pixels."""
    import stylex.regions.cluster as cluster

    calls = []
    score = cluster.silhouette_score
    monkeypatch.setattr(cluster, "silhouette_score",
                        lambda *a, **kw: (calls.append(kw["sample_size"]), score(*a, **kw))[1])
    f = torch.randn(3, 96, 96, generator=torch.Generator().manual_seed(0))
    cluster_features(f, max_k=2, n_init=1)
    cluster_features(f, max_k=2, n_init=1, silhouette_sample_size=5000)
    cluster_features(f, max_k=2, n_init=1, silhouette_sample_size=10000)
    assert calls == [None, 5000, None]


def test_nan_features_are_rejected():
    f = torch.zeros(2, 3, 3)
    f[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cluster_features(f)


def test_inconsistent_region_counts_are_config_errors():
    f = planted_features(planted_map(3))
    with pytest.raises(ConfigError, match="min_k=5, max_k=3"):
        cluster_features(f, min_k=5, max_k=3)
    with pytest.raises(ConfigError):
        cluster_features(f, max_k=1)


def test_min_k_forces_more_regions():
    result = cluster_features(planted_features(planted_map(3), seed=4), min_k=5, max_k=6)
    assert result.k >= 5 and set(result.silhouette_by_k) == {5, 6}
