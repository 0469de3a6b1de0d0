"""`method.matching.overrides` as a YAML file (how the studio saves a plan): the same mapping, or a message."""
import pytest

from stylex.errors import InputError
from stylex.matching import assign, read_overrides
from stylex.methods.stylegallery import MatchingParams


def test_a_file_holds_the_same_mapping_as_the_config(tmp_path):
    path = tmp_path / "overrides.yaml"
    path.write_text("astronaut: {0: [ihc, 2], 3: [1, 0]}\n'0042': {1: [brick, 1]}\n")
    assert read_overrides(path) == {"astronaut": {0: ["ihc", 2], 3: [1, 0]}, "0042": {1: ["brick", 1]}}
    params = MatchingParams.from_config({"w_sem": 1.0, "overrides": str(path)})
    assert params.overrides == read_overrides(path) and params.w_sem == 1.0
    (tmp_path / "empty.yaml").write_text("")
    assert read_overrides(tmp_path / "empty.yaml") == {}


def test_a_file_override_reaches_the_assignment(tmp_path):
    import torch

    path = tmp_path / "o.yaml"
    path.write_text("cat: {1: [0, 0]}\n")
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    matches = assign(scores, torch.tensor([0, 0]), torch.tensor([0, 1]), overrides=read_overrides(path)["cat"])
    assert (matches[1].style_region, matches[1].how) == (0, "override")


@pytest.mark.parametrize("text, message", [("[1, 2]", "expected a mapping"), ("cat: [0, 1]", "expected a mapping"),
                                           ("cat: {0: [a, 1]\n", "not valid YAML")])
def test_a_bad_file_is_a_message_naming_it(tmp_path, text, message):
    path = tmp_path / "o.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_overrides(path)
    with pytest.raises(InputError, match="cannot be read"):
        read_overrides(tmp_path / "missing.yaml")
