"""Gram loss and the block style score against hand computations and planted structure."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from stylex.metrics.base import PairBatch
from stylex.metrics.vgg_metrics import GramLoss, StyleScore, gram, hungarian_mean, split_blocks


class FakeVGG(nn.Module):
    """'Features' that are hand-made functions of the image: layer a = the image, layer b = its square."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, taps, normalize: bool = True) -> dict[str, Tensor]:  # type: ignore[no-untyped-def]
        return {t: (x if t == "a" else x ** 2) for t in taps}


def test_gram_matrix_by_hand() -> None:
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # c=2, h=1, w=2
    assert torch.allclose(gram(f)[0], torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4)


def test_gram_loss_by_hand() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).expand(1, 3, 2, 2).clone()  # every channel the same 2x2 map
    y = torch.zeros(1, 3, 2, 2)
    y[0, :, 0, 0] = 1.0
    # layer a: Gram entries all (1+4)/12 for x and 1/12 for y -> |diff| 4/12 over 9 entries = 3
    # layer b: x² = [[1,0],[0,4]] -> entries (1+16)/12; y² = y -> 1/12 -> 16/12 * 9 = 12
    metric = GramLoss(FakeVGG(), layers=("a", "b"))
    assert metric.update(PairBatch(stylized=x, style=y)).item() == pytest.approx(15.0)
    assert metric.update(PairBatch(stylized=x, style=x)).item() == 0.0
    assert metric.compute() == pytest.approx(7.5)


def test_a_paired_style_is_seen_once_and_scored_like_an_uncached_pair() -> None:
    """Outputs of the same style (named by `style_ids`) share the style's features: the network sees each style
    image once, and the values equal those of pairs given without ids (each compared with its own style)."""
    seen: list[int] = []

    class CountingVGG(FakeVGG):
        def forward(self, x: Tensor, taps, normalize: bool = True) -> dict[str, Tensor]:  # type: ignore[no-untyped-def]
            seen.append(x.shape[0])
            return super().forward(x, taps, normalize)

    g = torch.Generator().manual_seed(0)
    stylized, styles = torch.rand(4, 3, 2, 2, generator=g), torch.rand(2, 3, 2, 2, generator=g)
    paired = styles[[0, 0, 1, 1]]
    for metric in (GramLoss(CountingVGG(), layers=("a", "b")), StyleScore(CountingVGG(), grid=1, layers=("a", "b"))):
        seen.clear()
        got = metric.update(PairBatch(stylized=stylized, style=paired, style_ids=["s0", "s0", "s1", "s1"]))
        again = metric.update(PairBatch(stylized=stylized, style=paired, style_ids=["s0", "s0", "s1", "s1"]))
        assert sorted(seen) == [1, 1, 4, 4], "one forward per stylized batch, one per distinct style, once"
        want = type(metric)(FakeVGG(), layers=("a", "b"), **({"grid": 1} if isinstance(metric, StyleScore) else {}))
        assert torch.allclose(got, want.update(PairBatch(stylized=stylized, style=paired))) and torch.equal(got, again)


def test_gram_loss_official_mode_uses_nearest_style_tile(vgg, images) -> None:  # type: ignore[no-untyped-def]
    metric = GramLoss(vgg, mode="official", block_size=32)
    shifted = torch.roll(images, shifts=(32, 32), dims=(2, 3))  # the same four tiles in another order
    assert torch.all(metric.update(PairBatch(stylized=images, style=shifted)).abs() < 1e-9)


def test_split_blocks_is_row_major() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    blocks = split_blocks(x, grid=2)
    assert blocks.shape == (1, 4, 1, 2, 2)
    assert blocks[0, 1, 0].tolist() == [[2.0, 3.0], [6.0, 7.0]]
    assert blocks[0, 2, 0].tolist() == [[8.0, 9.0], [12.0, 13.0]]


def test_hungarian_recovers_a_planted_permutation() -> None:
    rng = np.random.default_rng(0)
    n = 16
    perm = rng.permutation(n)
    sim = rng.uniform(0.0, 0.3, size=(n, n))
    sim[np.arange(n), perm] = 0.9 + 0.01 * np.arange(n)
    mean, found = hungarian_mean(sim)
    assert found.tolist() == perm.tolist()
    assert mean == pytest.approx(float(np.mean(0.9 + 0.01 * np.arange(n))))


def test_hungarian_is_one_to_one_unlike_nearest_neighbour() -> None:
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])  # both rows prefer column 0; one-to-one must split them
    mean, found = hungarian_mean(sim)
    assert found.tolist() == [1, 0] and mean == pytest.approx((0.8 + 0.85) / 2)


def test_style_score_finds_shuffled_blocks(vgg, images, other_images) -> None:  # type: ignore[no-untyped-def]
    metric = StyleScore(vgg, grid=4)
    blocks = split_blocks(images, grid=4)  # [4, 16, 3, 16, 16]
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    shuffled = blocks[:, order].reshape(4, 4, 4, 3, 16, 16).permute(0, 3, 1, 4, 2, 5).reshape(4, 3, 64, 64)
    same = metric.update(PairBatch(stylized=images, style=shuffled))
    assert torch.allclose(same, torch.ones(4, dtype=torch.float64))
    other = metric.update(PairBatch(stylized=images, style=other_images))
    assert torch.all(other < 1.0) and torch.all(other > -1.0)
    sim = metric.similarity(images[:1], shuffled[:1])[0].numpy()
    assert hungarian_mean(sim)[1].tolist() == torch.argsort(order).tolist()
