"""LPIPS and CFSD: zero on identical images, and equal to direct computations of their definitions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stylex.metrics.base import PairBatch
from stylex.metrics.lpips import LPIPS
from stylex.metrics.vgg_metrics import CFSD, patch_similarity_kl


def test_lpips_is_zero_on_identical_images(lpips_net, images, other_images) -> None:  # type: ignore[no-untyped-def]
    metric = LPIPS(lpips_net)
    same = metric.update(PairBatch(stylized=images, content=images))
    assert torch.all(same.abs() < 1e-9)
    diff = metric.update(PairBatch(stylized=images, content=other_images))
    assert torch.all(diff > 0)
    assert metric.compute() == pytest.approx(float(torch.cat([same, diff]).mean()))


def test_lpips_follows_its_definition(lpips_net, images, other_images) -> None:  # type: ignore[no-untyped-def]
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    with torch.no_grad():
        fa = lpips_net.net(((2 * images - 1) - shift) / scale)
        fb = lpips_net.net(((2 * other_images - 1) - shift) / scale)
        want = torch.zeros(4)
        for i, (a, b) in enumerate(zip(fa, fb)):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            w = getattr(lpips_net, f"lin{i}").model[1].weight.view(1, -1, 1, 1)
            want += ((a - b) ** 2 * w).sum(1).mean(dim=(1, 2))
    got = LPIPS(lpips_net).update(PairBatch(stylized=images, content=other_images))
    assert torch.allclose(got.float(), want, atol=1e-6)


def _kl_reference(fc: np.ndarray, fs: np.ndarray, mode: str) -> float:
    c = fc.shape[0]
    a, b = fc.reshape(c, -1), fs.reshape(c, -1)
    if mode == "default":
        a, b = a / np.linalg.norm(a, axis=0), b / np.linalg.norm(b, axis=0)
    else:
        a, b = a / c, b / c

    def softmax(m: np.ndarray) -> np.ndarray:
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    p, q = softmax(a.T @ a), softmax(b.T @ b)
    rows = (p * np.log(p / q)).sum(axis=1)
    return float(rows.mean() if mode == "default" else rows.sum())


@pytest.mark.parametrize("mode", ["default", "official"])
def test_patch_similarity_kl_matches_a_direct_computation(mode: str) -> None:
    g = torch.Generator().manual_seed(0)
    fc, fs = torch.rand(8, 5, 6, generator=g) * 3, torch.rand(8, 5, 6, generator=g) * 3
    got = patch_similarity_kl(fc, fs, mode=mode, chunk=7)  # 30 rows in chunks of 7
    assert float(got) == pytest.approx(_kl_reference(fc.double().numpy(), fs.double().numpy(), mode), rel=1e-9)
    assert float(patch_similarity_kl(fc, fc, mode=mode)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mode", ["default", "official"])
def test_cfsd_is_zero_on_identical_images(vgg, images, other_images, mode: str) -> None:  # type: ignore[no-untyped-def]
    metric = CFSD(vgg, mode=mode)
    assert torch.all(metric.update(PairBatch(stylized=images, content=images)).abs() < 1e-12)
    assert torch.all(metric.update(PairBatch(stylized=images, content=other_images)) > 0)


def test_cfsd_default_ignores_feature_scale() -> None:
    g = torch.Generator().manual_seed(1)
    fc, fs = torch.rand(8, 4, 4, generator=g), torch.rand(8, 4, 4, generator=g)
    assert float(patch_similarity_kl(fc, fs)) == pytest.approx(float(patch_similarity_kl(fc, 3 * fs)))
