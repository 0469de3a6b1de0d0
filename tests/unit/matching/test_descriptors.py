import itertools
import math

import numpy as np
import pytest
import torch

from stylex.errors import ConfigError
from stylex.matching.descriptors import (
    RegionDescriptors,
    circle_iou,
    count_regions,
    describe_regions,
    geometry_circles,
    min_enclosing_circle,
    overlap_1d,
    patch_overlap,
    semantic_descriptors,
    stat_descriptors,
    stat_descriptors_official,
)


def random_labels(h: int, w: int, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, n, (h, w), generator=g)
    labels.view(-1)[:n] = torch.arange(n)  # every region present
    return labels


# ---------------------------------------------------------------------------------------------- statistical


def test_stat_descriptors_exact():
    g = torch.Generator().manual_seed(0)
    F_mix = torch.randn(3, 5, 6, generator=g)
    labels = random_labels(5, 6, 3, seed=1)
    out = stat_descriptors(F_mix, labels)
    assert out.shape == (3, 6)
    x, lab = F_mix.numpy().reshape(3, -1), labels.numpy().reshape(-1)
    for r in range(3):
        px = x[:, lab == r].astype(np.float64)
        np.testing.assert_allclose(out[r, :3].numpy(), px.mean(axis=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out[r, 3:].numpy(), px.std(axis=1), rtol=1e-5, atol=1e-6)


def test_stat_descriptors_constant_region():
    F_mix = torch.zeros(2, 4, 4)
    F_mix[0, :, 2:] = 3.0
    labels = torch.zeros(4, 4, dtype=torch.long)
    labels[:, 2:] = 1
    out = stat_descriptors(F_mix, labels)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0]]))


def test_stat_official_shape_determinism_and_rng_untouched():
    g = torch.Generator().manual_seed(0)
    F_mix = torch.randn(8, 6, 6, generator=g)
    labels = random_labels(6, 6, 3, seed=2)
    state = torch.random.get_rng_state()
    a = stat_descriptors_official(F_mix, labels, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert a.shape == (3, 16) and torch.isfinite(a).all()
    assert torch.equal(a, stat_descriptors_official(F_mix, labels, seed=0))
    assert not torch.allclose(a, stat_descriptors_official(F_mix, labels, seed=1))


def test_stat_official_variance_is_over_the_zero_padded_map():
    # with a 1-pixel region the padded map is one value v among h*w zeros: var = v^2/(hw) (unbiased), /1 px
    F_mix = torch.randn(4, 3, 3, generator=torch.Generator().manual_seed(3))
    labels = torch.zeros(3, 3, dtype=torch.long)
    labels[1, 1] = 1
    out = stat_descriptors_official(F_mix, labels, seed=0)
    v = out[1, :4]  # mean of the single attended pixel = the attended value itself
    torch.testing.assert_close(out[1, 4:], v**2 / 9)


def published_blocks(width: int, seed: int, layers: int = 8, heads: int = 4) -> list[dict[str, torch.Tensor]]:
    """The published descriptor's transformer, drawn as its code builds it: `layers` residual attention blocks,
    each a MultiheadAttention(width, heads) then an MLP Linear(width, 4·width), Linear(4·width, width), created one
    after another from one random state (here seeded)."""
    blocks = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(layers):
            attn = torch.nn.MultiheadAttention(width, heads)
            fc, proj = torch.nn.Linear(width, 4 * width), torch.nn.Linear(4 * width, width)
            blocks.append({"in_w": attn.in_proj_weight, "in_b": attn.in_proj_bias, "out_w": attn.out_proj.weight,
                           "out_b": attn.out_proj.bias, "fc_w": fc.weight, "fc_b": fc.bias, "proj_w": proj.weight,
                           "proj_b": proj.bias})
    return blocks


def published_transformer(x: torch.Tensor, blocks: list[dict[str, torch.Tensor]], heads: int = 4) -> torch.Tensor:
    """Pre-norm blocks written out: x + attn(LN(x)), then x + proj(GELU(fc(LN(x)))); LayerNorm at its init."""
    n, c = x.shape
    for b in blocks:
        h = torch.nn.functional.layer_norm(x, (c,))
        q, k, v = (h @ b["in_w"].T + b["in_b"]).split(c, dim=-1)
        q, k, v = (t.reshape(n, heads, c // heads).transpose(0, 1) for t in (q, k, v))
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(c // heads), -1) @ v
        x = x + att.transpose(0, 1).reshape(n, c) @ b["out_w"].T + b["out_b"]
        h = torch.nn.functional.layer_norm(x, (c,))
        x = x + torch.nn.functional.gelu(h @ b["fc_w"].T + b["fc_b"]) @ b["proj_w"].T + b["proj_b"]
    return x


def test_stat_official_is_the_published_formula_with_independently_drawn_blocks():
    """METHODS.md 2.2 (stat: official): 8 blocks drawn independently in the published order, the region's pixels
    through them, put back in a zero-padded map: [sum / n, unbiased variance over the whole map / n]."""
    g = torch.Generator().manual_seed(4)
    F_mix = torch.randn(8, 5, 6, generator=g)
    labels = random_labels(5, 6, 3, seed=5)
    blocks = published_blocks(8, seed=3)
    assert not torch.equal(blocks[0]["in_w"], blocks[1]["in_w"])  # independent draws, not copies of one block
    out = stat_descriptors_official(F_mix, labels, seed=3)
    flat = F_mix.reshape(8, -1)
    for r in range(3):
        inside = labels.reshape(-1) == r
        padded = torch.zeros_like(flat)
        padded[:, inside] = published_transformer(flat[:, inside].T, blocks).T
        n = float(inside.sum())
        expected = torch.cat([padded.sum(1) / n, padded.var(dim=1) / n])
        torch.testing.assert_close(out[r], expected, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------- semantic


def test_overlap_1d_multiple_and_non_multiple():
    f64 = torch.float64
    torch.testing.assert_close(overlap_1d(4, 2), torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]], dtype=f64))
    # 3 cells over 2 patches: patch 0 = [0, 1/2] is 2/3 cell 0 and 1/3 cell 1 (fractions of the patch's length)
    torch.testing.assert_close(overlap_1d(3, 2), torch.tensor([[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]], dtype=f64))
    assert torch.allclose(overlap_1d(7, 5).sum(dim=1), torch.ones(5, dtype=torch.float64))


def test_patch_overlap_matches_brute_force_supersampling():
    labels = random_labels(7, 9, 4, seed=4)
    gh, gw = 4, 5
    frac = patch_overlap(labels, (gh, gw))
    # supersample both grids onto the common 28 x 45 grid and count
    fine = labels.repeat_interleave(4, 0).repeat_interleave(5, 1)  # 28 x 45
    rows = torch.arange(28) // 7  # patch row of each fine row
    cols = torch.arange(45) // 9
    for r in range(4):
        counts = torch.zeros(gh, gw, dtype=torch.float64)
        counts.index_put_((rows[:, None].expand(28, 45)[fine == r], cols[None, :].expand(28, 45)[fine == r]),
                          torch.ones(int((fine == r).sum()), dtype=torch.float64), accumulate=True)
        torch.testing.assert_close(frac[r], counts / (7 * 9))
    torch.testing.assert_close(frac.sum(dim=0), torch.ones(gh, gw, dtype=torch.float64))


def grid_tokens(gh: int, gw: int, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(gh, gw, d, generator=torch.Generator().manual_seed(seed))


def test_semantic_multiple_grid():
    tokens = grid_tokens(2, 2)
    labels = torch.ones(4, 4, dtype=torch.long)
    labels[:2, :2] = 0  # exactly patch (0, 0)
    out = semantic_descriptors(tokens, labels)
    torch.testing.assert_close(out[0], tokens[0, 0])
    torch.testing.assert_close(out[1], tokens.reshape(4, 5)[1:].mean(0))


def test_semantic_non_multiple_grid():
    tokens = grid_tokens(2, 2, seed=1)
    # pixel (0,0) lies inside patch (0,0) only; the centre pixel covers 1/9 of each of the four patches
    labels = torch.tensor([[0, 2, 2], [2, 1, 2], [2, 2, 2]])
    out = semantic_descriptors(tokens, labels)
    torch.testing.assert_close(out[0], tokens[0, 0])
    torch.testing.assert_close(out[1], tokens.reshape(4, 5).mean(0))


def test_semantic_threshold_is_strict():
    tokens = grid_tokens(2, 2, seed=2)
    labels = torch.ones(20, 20, dtype=torch.long)
    labels[:10, :11] = 0  # patch (0,0) fully + 10 px = 10 % of patch (0,1); region 1 = the rest
    only_first = semantic_descriptors(tokens, labels, min_overlap=0.1)
    both = semantic_descriptors(tokens, labels, min_overlap=0.09)
    torch.testing.assert_close(only_first[0], tokens[0, 0])
    torch.testing.assert_close(both[0], (tokens[0, 0] + tokens[0, 1]) / 2)
    torch.testing.assert_close(semantic_descriptors(tokens, labels)[0], (tokens[0, 0] + tokens[0, 1]) / 2)


def test_semantic_fallback_to_largest_overlap():
    tokens = grid_tokens(2, 2, seed=3)
    labels = torch.zeros(20, 20, dtype=torch.long)
    labels[3, 14] = 1  # 1 px = 1 % of patch (0,1): not above 1 %
    out = semantic_descriptors(tokens, labels)
    torch.testing.assert_close(out[1], tokens[0, 1])
    # a pixel straddling all four patches equally (0.16 % each): tie -> first patch in raster order
    labels = torch.zeros(25, 25, dtype=torch.long)
    labels[12, 12] = 1
    torch.testing.assert_close(semantic_descriptors(tokens, labels)[1], tokens[0, 0])


# ---------------------------------------------------------------------------------------------- geometric


def test_centroid_circle_of_a_square():
    labels = torch.zeros(9, 9, dtype=torch.long)
    labels[:3, :3] = 1
    circles = geometry_circles(labels, "centroid")
    torch.testing.assert_close(circles[1], torch.tensor([1.5 / 9, 1.5 / 9, math.sqrt(2) / 9], dtype=torch.float64))


def test_min_enclosing_circle_of_an_l_shape():
    n = 10
    labels = torch.zeros(n, n, dtype=torch.long)
    labels[0, :7] = 1
    labels[:7, 0] = 1  # corners (0,0), (0,6), (6,0): right triangle -> hypotenuse is the diameter
    mec = geometry_circles(labels, "min_enclosing")[1]
    torch.testing.assert_close(mec, torch.tensor([3.5 / n, 3.5 / n, math.sqrt(18) / n], dtype=torch.float64))
    cen = geometry_circles(labels, "centroid")[1]
    ys, xs = np.nonzero(labels.numpy() == 1)
    cx, cy = (xs + 0.5).mean() / n, (ys + 0.5).mean() / n
    r = np.sqrt(((xs + 0.5) / n - cx) ** 2 + ((ys + 0.5) / n - cy) ** 2).max()
    torch.testing.assert_close(cen, torch.tensor([cx, cy, r], dtype=torch.float64))
    assert float(mec[2]) < float(cen[2])


def brute_force_mec(pts: np.ndarray) -> float:
    best = math.inf
    cands = []
    for a, b in itertools.combinations(pts, 2):
        cands.append(((a + b) / 2, np.linalg.norm(a - b) / 2))
    for a, b, c in itertools.combinations(pts, 3):
        d = 2 * (a[0] * (b[1] - c[1]) + b[0] * (c[1] - a[1]) + c[0] * (a[1] - b[1]))
        if abs(d) < 1e-12:
            continue
        ux = ((a @ a) * (b[1] - c[1]) + (b @ b) * (c[1] - a[1]) + (c @ c) * (a[1] - b[1])) / d
        uy = ((a @ a) * (c[0] - b[0]) + (b @ b) * (a[0] - c[0]) + (c @ c) * (b[0] - a[0])) / d
        u = np.array([ux, uy])
        cands.append((u, np.linalg.norm(a - u)))
    for centre, radius in cands:
        if np.all(np.linalg.norm(pts - centre, axis=1) <= radius + 1e-9):
            best = min(best, radius)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_enclosing_circle_matches_brute_force(seed):
    pts = np.random.default_rng(seed).random((12, 2))
    centre, radius = min_enclosing_circle(pts)
    assert np.all(np.linalg.norm(pts - centre, axis=1) <= radius + 1e-9)
    assert radius == pytest.approx(brute_force_mec(pts), abs=1e-9)


def test_min_enclosing_circle_collinear_and_single():
    centre, radius = min_enclosing_circle(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [2.0, 0.0]]))
    np.testing.assert_allclose(centre, [1.5, 0.0])
    assert radius == pytest.approx(1.5)
    centre, radius = min_enclosing_circle(np.array([[0.2, 0.4]]))
    assert radius == 0.0


def test_coordinates_are_normalised_per_axis():
    labels = torch.zeros(4, 8, dtype=torch.long)
    labels[0, 0] = 1
    torch.testing.assert_close(geometry_circles(labels)[1], torch.tensor([0.5 / 8, 0.5 / 4, 0.0], dtype=torch.float64))


def test_circle_iou_closed_forms():
    a = torch.tensor([[0.5, 0.5, 0.2], [0.0, 0.0, 1.0], [0.3, 0.3, 0.1]])
    b = torch.tensor([[0.5, 0.5, 0.2], [5.0, 0.0, 1.0], [0.3, 0.3, 0.4], [2.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    iou = circle_iou(a, b)
    assert iou.shape == (3, 5)
    assert float(iou[0, 0]) == pytest.approx(1.0)  # identical
    assert float(iou[1, 1]) == 0.0  # disjoint
    assert float(iou[2, 2]) == pytest.approx(0.1**2 / 0.4**2)  # concentric
    assert float(iou[1, 3]) == pytest.approx(0.0, abs=1e-12)  # externally tangent
    lens = 2 * math.pi / 3 - math.sqrt(3) / 2  # two unit circles one radius apart
    assert float(iou[1, 4]) == pytest.approx(lens / (2 * math.pi - lens), rel=1e-12)
    torch.testing.assert_close(circle_iou(b, a), iou.T)


def test_circle_iou_zero_area():
    p = torch.tensor([[0.5, 0.5, 0.0]])
    assert float(circle_iou(p, p)) == 0.0
    assert float(circle_iou(p, torch.tensor([[0.5, 0.5, 0.3]]))) == 0.0


# ---------------------------------------------------------------------------------------------- assembly


def test_describe_regions_and_modes():
    g = torch.Generator().manual_seed(5)
    labels = random_labels(8, 8, 3, seed=6)
    F_mix, tokens = torch.randn(4, 8, 8, generator=g), torch.randn(3, 3, 7, generator=g)
    d = describe_regions(F_mix, tokens, labels)
    assert isinstance(d, RegionDescriptors) and d.n_regions == 3
    assert d.stat.shape == (3, 8) and d.sem.shape == (3, 7) and d.geo.shape == (3, 3)
    d2 = describe_regions(F_mix, tokens, labels, stat="official", geometry="min_enclosing")
    assert d2.stat.shape == (3, 8)
    with pytest.raises(ConfigError):
        describe_regions(F_mix, tokens, labels, stat="bogus")
    with pytest.raises(ConfigError):
        geometry_circles(labels, mode="bogus")


def test_labels_must_be_consecutive():
    with pytest.raises(ValueError, match="consecutive"):
        count_regions(torch.tensor([[0, 2], [2, 0]]))
    with pytest.raises(ValueError):
        RegionDescriptors(stat=torch.zeros(2, 4), sem=torch.zeros(3, 5), geo=torch.zeros(2, 3))
