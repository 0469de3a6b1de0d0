"""stylex.evaluate with an unreadable output, content or style: stop before any network loads (listing each
file), or leave its pairs out (`on_bad_image=skip`); hidden files in the folders are ignored."""
from __future__ import annotations

import pytest

from stylex.errors import InputError
from stylex.metrics.evaluation import collect_all, drop_unreadable
from tests.conftest import write_image


@pytest.fixture
def folders(tmp_path):
    for name in ("a", "b"):
        write_image(tmp_path / "c" / f"{name}.png", (32, 32), seed=1 if name == "a" else 2)
        write_image(tmp_path / "run" / "images" / f"{name}__s.png", (32, 32), seed=5)
    write_image(tmp_path / "styles" / "s.png", (32, 32), seed=3)
    (tmp_path / "run" / "images" / "._a__s.png").write_bytes(b"AppleDouble")  # hidden: not an output
    (tmp_path / "run" / "images" / "b__s.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    return tmp_path


def test_an_unreadable_output_stops_the_evaluation_or_is_skipped(folders, caplog):
    caplog.set_level("INFO", logger="stylex")
    groups = collect_all([folders / "run"], str(folders / "c"), str(folders / "styles"), check_inputs=False)
    assert [r.getMessage() for r in caplog.records if "hidden" in r.getMessage()] == [
        f"the output folder: ignoring 1 hidden file(s) in {folders / 'run' / 'images'} (._a__s.png)"]
    with pytest.raises(InputError, match=r"b__s.png: is not an image PIL can read.*on_bad_image=skip"):
        drop_unreadable(groups, "stop")
    kept, bad = drop_unreadable(groups, "skip")
    assert [p.output.name for g in kept for p in g.pairs] == ["a__s.png"]
    assert [p.name for p in bad] == ["b__s.png"]


def test_when_no_pair_is_left_nothing_is_computed(folders):
    (folders / "styles" / "s.png").write_bytes(b"not an image")
    groups = collect_all([folders / "run"], str(folders / "c"), str(folders / "styles"), check_inputs=False)
    with pytest.raises(InputError, match="none of the outputs can be evaluated"):
        drop_unreadable(groups, "skip")


def test_outputs_made_against_a_whole_style_folder_have_their_family_checked(tmp_path):
    """`data.pairing=gallery` outputs (`{content}__{styles folder}.png`) have no one style image: every image of
    the folder is read by their metrics, so each is checked."""
    write_image(tmp_path / "c" / "a.png", (32, 32), seed=1)
    write_image(tmp_path / "run" / "images" / "a__styles.png", (32, 32), seed=5)
    write_image(tmp_path / "styles" / "s.png", (32, 32), seed=3)
    write_image(tmp_path / "styles" / "t.png", (32, 32), seed=4)
    groups = collect_all([tmp_path / "run"], str(tmp_path / "c"), str(tmp_path / "styles"), check_inputs=False)
    (pair,) = groups[0].pairs
    assert pair.style is None and sorted(p.name for p in pair.family) == ["s.png", "t.png"]
    kept, bad = drop_unreadable(groups, "stop")
    assert bad == {} and [p.output.name for g in kept for p in g.pairs] == ["a__styles.png"]
    (tmp_path / "styles" / "t.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"t.png: is not an image PIL can read"):
        drop_unreadable(groups, "stop")
