import pytest
import torch

from stylex.errors import InputError
from stylex.matching.descriptors import RegionDescriptors, circle_iou
from stylex.matching.score import ScoreTable, cosine_matrix, match_scores


def descriptors(n: int, seed: int, c: int = 6, d: int = 5) -> RegionDescriptors:
    g = torch.Generator().manual_seed(seed)
    geo = torch.cat([torch.rand(n, 2, generator=g), 0.1 + 0.2 * torch.rand(n, 1, generator=g)], dim=1)
    return RegionDescriptors(stat=torch.randn(n, c, generator=g), sem=torch.randn(n, d, generator=g), geo=geo)


def test_cosine_matrix_closed_forms():
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 3.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, -1.0]])
    cos = cosine_matrix(a, b)
    expected = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2**-0.5, -(2**-0.5)]], dtype=torch.float64)
    torch.testing.assert_close(cos, expected)


def test_score_table_layout_and_weights():
    content, s0, s1 = descriptors(2, 0), descriptors(3, 1), descriptors(2, 2)
    table = match_scores(content, [s0, s1])
    assert isinstance(table, ScoreTable)
    assert table.score.shape == (2, 5)
    assert table.reference.tolist() == [0, 0, 0, 1, 1]
    assert table.region.tolist() == [0, 1, 2, 0, 1]
    assert table.n_references == 2 and table.n_content_regions == 2
    assert table.column(1, 1) == 4
    torch.testing.assert_close(table.stat[:, 3:], cosine_matrix(content.stat, s1.stat))
    torch.testing.assert_close(table.sem[:, :3], cosine_matrix(content.sem, s0.sem))
    torch.testing.assert_close(table.geo[:, 3:], circle_iou(content.geo, s1.geo))
    torch.testing.assert_close(table.score, 0.25 * table.stat + 1.0 * table.sem + 0.125 * table.geo)
    custom = match_scores(content, [s0, s1], w_stat=2.0, w_sem=8.0, w_geo=1.0)
    torch.testing.assert_close(custom.score, 8.0 * table.score)  # the paper's 2:8:1 is the same ranking
    with pytest.raises(KeyError):
        table.column(1, 2)


def test_identical_region_scores_the_maximum():
    content, style = descriptors(3, 3), descriptors(4, 4)
    planted = RegionDescriptors(
        stat=torch.cat([style.stat[:2], content.stat[1:2], style.stat[3:]]),
        sem=torch.cat([style.sem[:2], content.sem[1:2], style.sem[3:]]),
        geo=torch.cat([style.geo[:2], content.geo[1:2], style.geo[3:]]),
    )
    table = match_scores(content, [style, planted])
    col = table.column(1, 2)
    assert float(table.score[1, col]) == pytest.approx(0.25 + 1.0 + 0.125)
    assert int(table.score[1].argmax()) == col


def test_no_references_is_an_input_error():
    with pytest.raises(InputError):
        match_scores(descriptors(2, 0), [])
