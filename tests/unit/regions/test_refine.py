from pathlib import Path

import numpy as np
import pytest
import torch

from stylex.regions.refine import (
    apply_user_mask,
    clean_small_regions,
    depth_split_merge,
    merge_by_latent,
    normalize_depth,
    region_means,
    relabel_consecutive,
    resize_depth,
    resize_labels,
    two_means_1d,
)


def latent_from_means(labels: torch.Tensor, means: dict[int, list[float]]) -> torch.Tensor:
    """A 4-channel latent that is constant `means[label]` on each region."""
    table = torch.zeros(int(labels.max()) + 1, 4)
    for k, v in means.items():
        table[k, : len(v)] = torch.tensor(v)
    return table[labels].permute(2, 0, 1).contiguous()


def stripes(*widths: int, height: int = 6) -> torch.Tensor:
    """Vertical stripes labelled 0, 1, 2, ... of the given widths."""
    return torch.cat([torch.full((height, w), i, dtype=torch.long) for i, w in enumerate(widths)], dim=1)


# ---------------------------------------------------------------------------------------------- relabel


def test_relabel_consecutive_raster_order():
    labels = torch.tensor([[5, 5, 2], [7, 2, 5]])
    assert relabel_consecutive(labels).tolist() == [[0, 0, 1], [2, 1, 0]]


def test_relabel_is_independent_of_numbering():
    a = torch.tensor([[3, 1], [1, 9]])
    b = torch.tensor([[0, 4], [4, 2]])
    assert torch.equal(relabel_consecutive(a), relabel_consecutive(b))


def test_region_means_exact():
    labels = torch.tensor([[0, 0, 1], [1, 1, 1]])
    values = torch.tensor([[[1.0, 3.0, 0.0], [2.0, 4.0, 6.0]]])
    torch.testing.assert_close(region_means(labels, values), torch.tensor([[2.0], [3.0]], dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- merge


def test_merge_close_clusters_keep_far_ones():
    labels = stripes(3, 3, 3)
    latent = latent_from_means(labels, {0: [0.0, 0.0], 1: [0.5, 0.3], 2: [3.0, 0.0]})  # |0-1| = 0.58, far: 3
    out = merge_by_latent(labels, latent)
    assert torch.equal(out, stripes(6, 3))


def test_merge_respects_threshold():
    labels = stripes(2, 2)
    latent = latent_from_means(labels, {0: [0.0], 1: [0.8]})
    assert torch.equal(merge_by_latent(labels, latent, threshold=0.85), torch.zeros(6, 4, dtype=torch.long))
    assert torch.equal(merge_by_latent(labels, latent, threshold=0.75), labels)


def test_merge_chains_end_in_one_region():
    # A~B (0.6), B~C (0.6), A-C = 1.2 > 0.85; D far from all
    labels = stripes(2, 2, 2, 2)
    latent = latent_from_means(labels, {0: [0.0], 1: [0.6], 2: [1.2], 3: [5.0]})
    out = merge_by_latent(labels, latent)
    assert torch.equal(out, stripes(6, 2))


def test_merge_labels_deterministic_under_renumbering():
    labels = stripes(2, 2, 2, 2)
    latent = latent_from_means(labels, {0: [0.0], 1: [5.0], 2: [0.3], 3: [5.2]})
    perm = torch.tensor([3, 0, 2, 1])[labels]  # same partition, other numbers
    a, b = merge_by_latent(labels, latent), merge_by_latent(perm, latent)
    assert torch.equal(a, b)
    assert a.tolist()[0] == [0, 0, 1, 1, 0, 0, 1, 1]


# ---------------------------------------------------------------------------------------------- depth


def test_two_means_1d():
    assert two_means_1d(np.array([0.0, 0.0, 0.0, 1.0, 1.0])) == pytest.approx(0.5)
    assert two_means_1d(np.array([10.0, 0.0, 2.0, 1.0])) == pytest.approx(6.0)  # {0,1,2} | {10}
    assert two_means_1d(np.array([0.3, 0.3, 0.3])) is None


def test_bimodal_depth_splits_exactly_along_planted_boundary():
    labels = torch.zeros(8, 10, dtype=torch.long)
    depth = torch.full((8, 10), 0.1)
    depth[:, 6:] = 0.9
    latent = torch.zeros(4, 8, 10)  # identical colour: only depth can separate them
    out = depth_split_merge(labels, latent, depth)
    expected = torch.zeros(8, 10, dtype=torch.long)
    expected[:, 6:] = 1
    assert torch.equal(out, expected)  # latent L2 0 < 0.35 but depth gap 0.8 >= 0.3: no re-merge


def test_depth_range_does_not_matter():
    labels = torch.zeros(8, 10, dtype=torch.long)
    depth = torch.full((8, 10), 25.0)
    depth[:4] = 230.0
    out = depth_split_merge(labels, torch.zeros(4, 8, 10), depth)
    assert torch.equal(out, (torch.arange(8)[:, None] >= 4).long().expand(8, 10))


def test_no_split_below_span_or_min_pixels():
    # stripe 0: depth 0 / 1 (normalised span 1) but only 12 px; stripe 1: 0.1 / 0.8 -> span 0.7 < 0.75
    labels = stripes(2, 6)
    depth = torch.zeros(6, 8)
    depth[3:, :2] = 1.0
    depth[:, 2:] = 0.1
    depth[3:, 2:] = 0.8
    latent = latent_from_means(labels, {0: [0.0], 1: [3.0]})
    assert torch.equal(depth_split_merge(labels, latent, depth), labels)
    # with min_pixels lowered, stripe 0 splits
    out = depth_split_merge(labels, latent, depth, min_pixels=10)
    assert len(torch.unique(out)) == 3


def test_remerge_needs_both_latent_and_depth():
    # four stripes: depths 0.0, 0.5, 0.55, 1.0; stripes 1 and 2 have close depth (gap 0.05)
    labels = stripes(3, 3, 3, 3)
    depth = torch.tensor([0.0, 0.5, 0.55, 1.0])[labels]
    far = {0: [9.0], 1: [0.0], 2: [1.0], 3: [-9.0]}  # stripes 1, 2: latent L2 1.0 -> stay apart
    close = {0: [9.0], 1: [0.0], 2: [0.2], 3: [-9.0]}  # latent L2 0.2 < 0.35 and depth gap < 0.3 -> merge
    assert torch.equal(depth_split_merge(labels, latent_from_means(labels, far), depth), labels)
    assert torch.equal(depth_split_merge(labels, latent_from_means(labels, close), depth), stripes(3, 6, 3))
    # latent close but depth gap 0.5 >= 0.3 -> no merge
    depth2 = torch.tensor([0.0, 0.5, 1.0, 0.9])[labels]
    close_01 = {0: [0.0], 1: [0.1], 2: [5.0], 3: [-5.0]}
    assert torch.equal(depth_split_merge(labels, latent_from_means(labels, close_01), depth2), labels)


def test_depth_must_be_on_label_grid():
    with pytest.raises(ValueError, match="resize_depth"):
        depth_split_merge(torch.zeros(4, 4, dtype=torch.long), torch.zeros(4, 4, 4), torch.zeros(8, 8))


def test_normalize_depth():
    expected = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(normalize_depth(torch.tensor([2.0, 4.0, 3.0])), expected)
    assert torch.equal(normalize_depth(torch.full((3,), 7.0)), torch.zeros(3, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- clean-up


def test_island_takes_surrounding_label():
    labels = torch.zeros(10, 10, dtype=torch.long)
    labels[4:7, 4:7] = 1  # 3x3 island
    assert torch.equal(clean_small_regions(labels), torch.zeros(10, 10, dtype=torch.long))


def test_large_components_survive():
    labels = torch.zeros(10, 10, dtype=torch.long)
    labels[2:7, 2:7] = 1  # 25 px >= 20
    labels[8, 8] = 2  # 1 px
    expected = labels.clone()
    expected[8, 8] = 0
    assert torch.equal(clean_small_regions(labels), expected)


def test_island_takes_majority_of_its_border():
    labels = torch.zeros(10, 12, dtype=torch.long)
    labels[:, 6:] = 1
    labels[4:6, 4:6] = 2  # border: 6 px of label 0, 2 px of label 1
    expected = torch.zeros(10, 12, dtype=torch.long)
    expected[:, 6:] = 1
    assert torch.equal(clean_small_regions(labels), expected)


def test_small_piece_of_big_label_is_cleaned_per_component():
    labels = torch.zeros(10, 10, dtype=torch.long)
    labels[:, 5:] = 1
    labels[2, 8] = 0  # a 1-px component of the big label 0, inside label 1
    expected = torch.zeros(10, 10, dtype=torch.long)
    expected[:, 5:] = 1
    assert torch.equal(clean_small_regions(labels), expected)


def test_diagonal_pixels_are_not_connected():
    labels = torch.zeros(10, 10, dtype=torch.long)
    labels[:5, :5] = 1  # 25 px, survives
    labels[5, 5] = 1  # touches the block only diagonally: its own 1-px component
    expected = labels.clone()
    expected[5, 5] = 0
    assert torch.equal(clean_small_regions(labels), relabel_consecutive(expected))  # output is renumbered


def test_whole_small_map_is_kept():
    labels = torch.zeros(3, 3, dtype=torch.long)
    assert torch.equal(clean_small_regions(labels), labels)


# ---------------------------------------------------------------------------------------------- user masks


def test_user_mask_overrides_and_numbering():
    labels = stripes(4, 4)
    user = torch.zeros(6, 8, dtype=torch.long)
    user[1:3, 1:3] = 7
    user[4:6, 2:6] = 3  # straddles both automatic regions
    out = apply_user_mask(labels, user)
    expected = labels.clone()
    expected[4:6, 2:6] = 2  # user label 3 -> first user region
    expected[1:3, 1:3] = 3  # user label 7 -> second
    assert torch.equal(out, expected)


def test_user_mask_covering_an_automatic_region_removes_it():
    labels = stripes(4, 4)
    user = torch.zeros(6, 8, dtype=torch.long)
    user[:, :4] = 5
    out = apply_user_mask(labels, user)
    assert out.tolist()[0] == [1, 1, 1, 1, 0, 0, 0, 0]


def test_user_mask_on_a_finer_grid_is_resized():
    labels = torch.zeros(4, 4, dtype=torch.long)
    user = torch.zeros(8, 8, dtype=torch.long)
    user[:4, :4] = 1
    expected = torch.zeros(4, 4, dtype=torch.long)
    expected[:2, :2] = 1
    assert torch.equal(apply_user_mask(labels, user), expected)


def test_empty_user_mask_changes_nothing():
    labels = stripes(4, 4)
    assert torch.equal(apply_user_mask(labels, torch.zeros(6, 8, dtype=torch.long)), labels)


# ---------------------------------------------------------------------------------------------- resizing


def test_resize_labels_nearest():
    small = torch.tensor([[0, 1], [2, 3]])
    big = resize_labels(small, (4, 4))
    assert torch.equal(big, small.repeat_interleave(2, 0).repeat_interleave(2, 1))
    assert torch.equal(resize_labels(big, (2, 2)), small)
    assert resize_labels(small, (3, 5)).dtype == torch.long


def test_resize_labels_is_the_one_nearest_convention():
    """F.interpolate(mode="nearest"): output cell i samples input cell floor(i·h_in/h_out), as the published code
    resizes its masks (METHODS.md 2.3); pixel-centre sampling ('nearest-exact') would take cells 1, 3, 5, 7."""
    labels = torch.arange(64).reshape(8, 8)
    assert torch.equal(resize_labels(labels, (4, 4)), labels[::2, ::2])
    wide = torch.arange(3 * 5).reshape(3, 5)
    rows, cols = torch.arange(7) * 3 // 7, torch.arange(4) * 5 // 4
    assert torch.equal(resize_labels(wide, (7, 4)), wide[rows][:, cols])
    stylex = Path(__file__).parents[3] / "stylex"
    assert not [p for p in stylex.rglob("*.py") if "nearest-exact" in p.read_text()]  # one convention everywhere


def test_resize_depth_shapes_and_constant():
    d = torch.full((16, 24), 0.4)
    out = resize_depth(d, (4, 6))
    assert out.shape == (4, 6)
    torch.testing.assert_close(out, torch.full((4, 6), 0.4))
    assert resize_depth(torch.rand(2, 16, 16), (8, 8)).shape == (2, 8, 8)


def test_noise_map_ends_with_no_small_component():
    from scipy import ndimage

    labels = torch.randint(0, 6, (32, 32), generator=torch.Generator().manual_seed(0))
    out = clean_small_regions(labels).numpy()
    cross = ndimage.generate_binary_structure(2, 1)
    for value in np.unique(out):
        comp, n = ndimage.label(out == value, structure=cross)
        assert np.bincount(comp.reshape(-1))[1:].min() >= 20
    assert torch.equal(clean_small_regions(labels), torch.from_numpy(out))  # deterministic
