import math

import pytest
import torch

from stylex.errors import ConfigError
from stylex.matching.assign import Match, assign
from stylex.matching.descriptors import RegionDescriptors
from stylex.matching.score import match_scores

# columns: reference 0 has regions 0, 1; reference 1 has regions 0, 1, 2
REFS = torch.tensor([0, 0, 1, 1, 1])
REGS = torch.tensor([0, 1, 0, 1, 2])


def test_many_to_one_picks_planted_best():
    scores = torch.tensor([[0.1, 0.2, 0.3, 0.9, 0.0], [0.8, 0.1, 0.1, 0.1, 0.1], [0.0, 0.0, 0.0, 0.95, 0.0]])
    matches = assign(scores, REFS, REGS)
    assert [(m.content_region, m.reference, m.style_region) for m in matches] == [(0, 1, 1), (1, 0, 0), (2, 1, 1)]
    assert matches[0].score == pytest.approx(0.9)
    assert all(m.how == "best" and not m.fallback for m in matches)
    assert all(math.isnan(m.stat) for m in matches)  # a plain matrix carries no terms


def test_ties_go_to_the_lowest_column():
    scores = torch.tensor([[0.5, 0.7, 0.7, 0.2, 0.7]])
    assert assign(scores, REFS, REGS)[0].style_region == 1 and assign(scores, REFS, REGS)[0].reference == 0


def test_hungarian_is_one_to_one_and_maximises_total():
    scores = torch.tensor([[0.9, 0.8], [0.85, 0.1]])
    refs, regs = torch.tensor([0, 0]), torch.tensor([0, 1])
    greedy = assign(scores, refs, regs)
    assert [m.style_region for m in greedy] == [0, 0]
    hung = assign(scores, refs, regs, mode="hungarian")
    assert [m.style_region for m in hung] == [1, 0]
    assert all(m.how == "hungarian" for m in hung)


def test_hungarian_with_more_content_regions_than_columns():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    matches = assign(scores, torch.tensor([0, 0]), torch.tensor([0, 1]), mode="hungarian")
    assert [m.style_region for m in matches] == [0, 1, 0]
    assert [m.how for m in matches] == ["hungarian", "hungarian", "best"]


def test_min_score_marks_fallback():
    scores = torch.tensor([[0.1, 0.3, 0.2, 0.0, 0.0], [0.9, 0.1, 0.1, 0.1, 0.1]])
    matches = assign(scores, REFS, REGS, min_score=0.5)
    assert [m.fallback for m in matches] == [True, False]
    assert matches[0].style_region == 1  # the best match is still reported
    assert not any(m.fallback for m in assign(scores, REFS, REGS, min_score=0.3))  # not strictly below


def test_overrides_win():
    scores = torch.tensor([[0.9, 0.1, 0.1, 0.1, 0.1], [0.9, 0.1, 0.1, 0.1, 0.1]])
    matches = assign(scores, REFS, REGS, overrides={1: (1, 2)}, min_score=0.5)
    assert (matches[1].reference, matches[1].style_region, matches[1].how) == (1, 2, "override")
    assert matches[1].score == pytest.approx(0.1) and not matches[1].fallback
    assert (matches[0].reference, matches[0].style_region) == (0, 0)
    # as written in YAML: string keys, list values
    from_yaml = assign(scores, REFS, REGS, overrides={"1": [1, 2]})
    assert (from_yaml[1].reference, from_yaml[1].style_region) == (1, 2)


def test_overrides_take_their_column_out_of_hungarian():
    scores = torch.tensor([[0.9, 0.5], [0.8, 0.1]])
    matches = assign(scores, torch.tensor([0, 0]), torch.tensor([0, 1]), mode="hungarian", overrides={1: (0, 0)})
    assert [m.style_region for m in matches] == [1, 0]


@pytest.mark.parametrize(
    "override, fragment",
    [
        ({5: (0, 0)}, "content region 5"),
        ({0: (2, 0)}, "reference 2"),
        ({0: (0, 2)}, "region 2 of reference 0"),
        ({0: (1, -1)}, "region -1 of reference 1"),
        ({0: 3}, "of the form"),
        ({"x": (0, 0)}, "of the form"),
        ({0: (0, 0, 1)}, "of the form"),
    ],
)
def test_bad_override_raises_config_error(override, fragment):
    scores = torch.zeros(2, 5)
    with pytest.raises(ConfigError) as err:
        assign(scores, REFS, REGS, overrides=override)
    msg = str(err.value)
    assert fragment in msg
    assert "content regions are 0..1" in msg and "references are 0..1" in msg
    assert "2 region(s) in reference 0" in msg and "3 region(s) in reference 1" in msg


def test_bad_mode_raises_config_error():
    with pytest.raises(ConfigError):
        assign(torch.zeros(1, 5), REFS, REGS, mode="greedy")


def test_score_table_carries_the_terms():
    g = torch.Generator().manual_seed(0)

    def desc(n):
        return RegionDescriptors(
            torch.randn(n, 4, generator=g), torch.randn(n, 3, generator=g), torch.rand(n, 3, generator=g)
        )

    table = match_scores(desc(3), [desc(2), desc(4)])
    matches = assign(table)
    assert len(matches) == 3 and all(isinstance(m, Match) for m in matches)
    for m in matches:
        col = table.column(m.reference, m.style_region)
        assert m.score == pytest.approx(float(table.score[m.content_region].max()))
        c = m.content_region
        terms = (float(table.stat[c, col]), float(table.sem[c, col]), float(table.geo[c, col]))
        assert (m.stat, m.sem, m.geo) == pytest.approx(terms)
