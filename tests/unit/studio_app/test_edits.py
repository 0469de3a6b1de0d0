"""Plan edits as the batch run reads them: merges and paintings become user-mask labels, overrides follow their
regions across the renumbering a mask causes, brush strokes become grid cells."""
import numpy as np
import pytest
import torch
from PIL import Image

from stylex.errors import InputError
from stylex.regions.refine import apply_user_mask
from stylex.studio_app.edits import (Edits, merge_regions, paint_region, painted_cells, read_label_mask,
                                     region_at, remap_overrides)

LABELS = np.array([[0, 0, 1, 1],
                   [0, 0, 1, 1],
                   [2, 2, 3, 3],
                   [2, 2, 3, 3]])


def test_merge_marks_both_regions_with_one_new_label_and_the_batch_sees_one_region():
    mask = merge_regions(None, LABELS, 0, 3)
    expected = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(mask, expected)
    merged = apply_user_mask(torch.from_numpy(LABELS), torch.from_numpy(mask)).numpy()
    # automatic regions 1 and 2 keep their pixels (renumbered 0, 1 in raster order), the merged one comes last
    np.testing.assert_array_equal(merged, [[2, 2, 0, 0], [2, 2, 0, 0], [1, 1, 2, 2], [1, 1, 2, 2]])


def test_a_second_merge_takes_the_next_label_and_keeps_the_first():
    first = merge_regions(None, LABELS, 0, 1)
    second = merge_regions(first, LABELS, 2, 3)
    np.testing.assert_array_equal(second, [[1, 1, 1, 1], [1, 1, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]])


@pytest.mark.parametrize("a, b", [(1, 1), (0, 7)])
def test_merge_refuses_one_region_twice_or_a_missing_region(a, b):
    with pytest.raises(InputError):
        merge_regions(None, LABELS, a, b)


def test_painting_inside_a_region_splits_only_that_region():
    painted = np.zeros((4, 4), dtype=bool)
    painted[:, 1] = True  # a vertical stroke over regions 0 and 2
    mask = paint_region(None, LABELS, painted, within=0)
    np.testing.assert_array_equal(np.argwhere(mask), [[0, 1], [1, 1]])
    assert set(np.unique(mask)) == {0, 1}
    everywhere = paint_region(mask, LABELS, painted)
    np.testing.assert_array_equal(everywhere[:, 1], [2, 2, 2, 2])


def test_painting_nothing_in_the_region_is_a_message():
    painted = np.zeros((4, 4), dtype=bool)
    painted[0, 3] = True
    with pytest.raises(InputError, match="inside region 2"):
        paint_region(None, LABELS, painted, within=2)


def test_a_cell_counts_as_painted_when_half_of_it_is_covered():
    layer = np.zeros((16, 16, 4), dtype=np.uint8)
    layer[:8, :4, 3] = 255   # cell (0, 0) of a 2x2 grid: 32 of 64 pixels -> painted
    layer[8:, 8:11, 3] = 255  # cell (1, 1): 24 of 64 -> not painted
    layer[:8, 8:, :3] = 200  # colour without alpha is not paint
    np.testing.assert_array_equal(painted_cells([layer], (2, 2)), [[True, False], [False, False]])


def test_an_uploaded_label_image_is_resized_as_the_batch_run_resizes_it(tmp_path):
    src = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(src, mode="L").save(tmp_path / "mask.png")
    got = read_label_mask(tmp_path / "mask.png", (4, 4))
    # stylex's one label-resize convention (METHODS.md 2.3), F.interpolate(mode="nearest"): source index 2i
    np.testing.assert_array_equal(got, src[::2, ::2])


def test_bad_label_uploads_are_messages(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match="not an image"):
        read_label_mask(tmp_path / "notes.png", (4, 4))
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(tmp_path / "zero.png")
    with pytest.raises(InputError, match="every pixel is 0"):
        read_label_mask(tmp_path / "zero.png", (4, 4))


def test_overrides_follow_renumbered_regions():
    new = np.array([[3, 3, 0, 0], [3, 3, 0, 0], [1, 1, 2, 2], [1, 1, 2, 2]])  # same partition, new numbers
    carried, dropped = remap_overrides({0: ("ihc", 2), 3: ("brick", 0)}, LABELS, new)
    assert carried == {3: ("ihc", 2), 2: ("brick", 0)} and dropped == []


def test_in_a_merge_the_region_that_brought_most_pixels_keeps_its_override():
    old = np.array([[0, 0, 0, 1], [0, 0, 0, 1], [2, 2, 2, 2], [2, 2, 2, 2]])
    new = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]])  # 0 and 1 merged
    carried, dropped = remap_overrides({0: ("a", 1), 1: ("b", 2)}, old, new)
    assert carried == {0: ("a", 1)} and dropped == [1]


def test_a_region_split_in_half_or_less_loses_its_override():
    old = np.zeros((2, 4), dtype=int)
    new = np.array([[0, 0, 1, 1], [2, 2, 3, 3]])  # no piece holds half of region 0
    assert remap_overrides({0: ("a", 0)}, old, new) == ({}, [0])


def test_region_at_maps_picture_pixels_to_the_label_grid():
    labels = np.array([[0, 1], [2, 3]])
    assert region_at(labels, (100, 200), 150, 10) == 1
    assert region_at(labels, (100, 200), 99, 50) == 2
    assert region_at(labels, (100, 200), 199.9, 99.9) == 3


def test_edits_are_empty_without_overrides_or_labels():
    assert Edits().empty and Edits({}, np.zeros((2, 2), np.uint8)).empty
    assert not Edits({0: ("a", 1)}).empty and not Edits({}, np.ones((2, 2), np.uint8)).empty
