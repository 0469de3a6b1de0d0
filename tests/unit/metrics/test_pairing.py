"""Pairing outputs {content}__{style}.png with content and style folders by stem; every mismatch is an InputError."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from stylex.errors import InputError
from stylex.metrics.pairing import pair_outputs


def _img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path)
    return path


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    c, s, o = tmp_path / "content", tmp_path / "style", tmp_path / "out"
    for name in ("cat", "dog"):
        _img(c / f"{name}.jpg")
    for name in ("monet", "hokusai"):
        _img(s / f"{name}.png")
    for cn in ("cat", "dog"):
        for sn in ("monet", "hokusai"):
            _img(o / f"{cn}__{sn}.png")
    (o / "cat__monet.json").write_text("{}")  # sidecars are not outputs
    (s / "monet.txt").write_text("a painting in the style of Claude Monet\n")
    return o, c, s


def test_pairs_by_stem(folders: tuple[Path, Path, Path]) -> None:
    o, c, s = folders
    pairs = pair_outputs(o, c, s)
    assert [(p.content_stem, p.style_stem) for p in pairs] == [
        ("cat", "hokusai"), ("cat", "monet"), ("dog", "hokusai"), ("dog", "monet")]
    first = pairs[1]
    assert first.content == c / "cat.jpg" and first.style == s / "monet.png" and first.output == o / "cat__monet.png"
    assert first.style_text == "a painting in the style of Claude Monet" and pairs[0].style_text is None
    assert pair_outputs(o, c, s, texts={"hokusai": "ukiyo-e"})[0].style_text == "ukiyo-e"


def test_single_style_file(folders: tuple[Path, Path, Path]) -> None:
    o, c, s = folders
    for p in o.glob("*hokusai*"):
        p.unlink()
    assert len(pair_outputs(o, c, s / "monet.png")) == 2


def test_missing_content_or_style_is_named(folders: tuple[Path, Path, Path]) -> None:
    o, c, s = folders
    _img(o / "horse__monet.png")
    _img(o / "cat__turner.png")
    with pytest.raises(InputError) as err:
        pair_outputs(o, c, s)
    msg = str(err.value)
    assert "2 output image(s)" in msg
    assert "horse__monet.png: no content 'horse'" in msg and "cat__turner.png: no style 'turner'" in msg
    assert "{content}__{style}.png" in msg


def test_ambiguous_stems_are_refused(folders: tuple[Path, Path, Path]) -> None:
    o, c, s = folders
    _img(c / "cat.png")  # cat.jpg and cat.png
    with pytest.raises(InputError, match=r"content 'cat' matches cat\.jpg, cat\.png"):
        pair_outputs(o, c, s)


def test_badly_named_and_duplicate_outputs(folders: tuple[Path, Path, Path]) -> None:
    o, c, s = folders
    _img(o / "result.png")
    _img(o / "dog__monet.jpg")
    with pytest.raises(InputError) as err:
        pair_outputs(o, c, s)
    assert "result.png is not named" in str(err.value)
    assert "dog__monet.jpg, dog__monet.png have the same name" in str(err.value)


def test_names_that_split_two_ways(tmp_path: Path) -> None:
    _img(tmp_path / "c" / "a.png")
    _img(tmp_path / "c" / "a__b.png")
    _img(tmp_path / "s" / "b__c.png")
    _img(tmp_path / "s" / "c.png")
    _img(tmp_path / "o" / "a__b__c.png")
    with pytest.raises(InputError, match="can be read as content 'a' \\+ style 'b__c' or content 'a__b' \\+ style 'c'"):
        pair_outputs(tmp_path / "o", tmp_path / "c", tmp_path / "s")


def test_missing_or_empty_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="output folder .* does not exist"):
        pair_outputs(tmp_path / "nope", tmp_path, tmp_path)
    with pytest.raises(InputError, match="holds no images"):
        pair_outputs(tmp_path / "empty", tmp_path, tmp_path)
