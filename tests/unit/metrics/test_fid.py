"""FID against closed forms; identical sets give 0; ArtFID = (1 + LPIPS)(1 + FID)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stylex.errors import InputError
from stylex.metrics.base import PairBatch
from stylex.metrics.fid import FID, ArtFID, art_fid, feature_stats, frechet_distance, trace_sqrt_product
from stylex.metrics.lpips import LPIPS


def _closed_form_diag(mu1: np.ndarray, var1: np.ndarray, mu2: np.ndarray, var2: np.ndarray) -> float:
    return float(((mu1 - mu2) ** 2).sum() + (var1 + var2 - 2 * np.sqrt(var1 * var2)).sum())


def test_frechet_distance_equals_closed_form_for_diagonal_covariances() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(_closed_form_diag(mu1, var1, mu2, var2), rel=1e-10)


def test_fid_of_gaussian_samples_approaches_closed_form() -> None:
    rng = np.random.default_rng(1)
    d, n = 4, 200_000
    mu1, mu2 = np.array([0.0, 1, 2, 3]), np.array([0.5, 1, 1, 3])
    sd1, sd2 = np.array([1.0, 2, 0.5, 1]), np.array([1.5, 1, 0.5, 3])
    a = mu1 + sd1 * rng.standard_normal((n, d))
    b = mu2 + sd2 * rng.standard_normal((n, d))
    fid = frechet_distance(*feature_stats(a), *feature_stats(b))
    assert fid == pytest.approx(_closed_form_diag(mu1, sd1 ** 2, mu2, sd2 ** 2), rel=0.02)


def test_trace_sqrt_product_matches_sqrtm_on_full_covariances() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(50, 5)), rng.normal(size=(50, 5))
    s1, s2 = x.T @ x / 50, y.T @ y / 50
    from scipy import linalg

    assert trace_sqrt_product(s1, s2) == pytest.approx(float(np.trace(linalg.sqrtm(s1 @ s2).real)), rel=1e-8)


def test_fid_of_identical_image_sets_is_zero(inception, images) -> None:  # type: ignore[no-untyped-def]
    fid = FID(inception)
    more = torch.cat([images, images.flip(-1), images.flip(-2)])  # 12 images, fewer than the 128 tiny dims
    fid.update(PairBatch(stylized=more, style=more, style_ids=[str(i) for i in range(12)]))
    assert abs(fid.compute()) < 1e-6


def test_fid_counts_each_style_image_once(inception, images) -> None:  # type: ignore[no-untyped-def]
    fid = FID(inception)
    fid.update(PairBatch(stylized=images, style=images[[0, 0, 1, 1]], style_ids=["a", "a", "b", "b"]))
    fid.update(PairBatch(stylized=images, style=images[[0, 2, 2, 3]], style_ids=["a", "c", "c", "d"]))
    assert sum(len(r) for r in fid.real) == 4 and sum(len(f) for f in fid.fake) == 8


def test_fid_needs_two_images_per_set(inception, images) -> None:  # type: ignore[no-untyped-def]
    fid = FID(inception)
    fid.update(PairBatch(stylized=images, style=images, style_ids=["a"] * 4))
    with pytest.raises(InputError, match="at least 2"):
        fid.compute()


def test_fid_with_injected_feature_function() -> None:
    rng = np.random.default_rng(3)
    a, b = torch.tensor(rng.normal(size=(64, 3))), torch.tensor(rng.normal(1.0, 2.0, size=(64, 3)))
    fid = FID(lambda x: x.flatten(1))  # "images" that are already features
    fid.update_fake(a.view(64, 3, 1, 1))
    fid.update_real(b.view(64, 3, 1, 1))
    assert fid.compute() == pytest.approx(frechet_distance(*feature_stats(a.numpy()), *feature_stats(b.numpy())))


def test_artfid_is_one_plus_lpips_times_one_plus_fid(lpips_net, inception, images, other_images) -> None:  # type: ignore[no-untyped-def]
    lp, fid = LPIPS(lpips_net), FID(inception)
    art = ArtFID(lp, fid)
    batch = PairBatch(stylized=images, content=other_images, style=other_images, style_ids=list("abcd"))
    art.update(batch)
    value = art.compute()
    assert value == pytest.approx((1 + lp.compute()) * (1 + fid.compute()))
    assert value == pytest.approx(art_fid(*art.components().values()))
    assert art_fid(0.0, 0.0) == 1.0 and art_fid(0.5, 9.0) == pytest.approx(15.0)
