"""The plan picture: a click lands on the image and region drawn there; each match is a line from the content
region to its style region in the content region's colour."""
import numpy as np
import torch

from stylex.callbacks.visuals import PALETTE
from stylex.matching import Match
from stylex.studio_app.canvas import CAPTION, GAP, draw_canvas

CONTENT_LABELS = np.array([[0, 0, 1, 1]] * 4)  # left half 0, right half 1
REF_LABELS = [np.array([[0, 0], [1, 1]]), np.array([[0]])]


def match(c, r, s, how="best", fallback=False):
    return Match(c, r, s, 0.5, 0.1, 0.2, 0.3, fallback, how)


def canvas(matches=(), selected=()):
    content = torch.full((3, 32, 64), 0.5)
    refs = [torch.full((3, 16, 16), 0.2), torch.full((3, 8, 24), 0.8)]
    return draw_canvas(content, CONTENT_LABELS, refs, REF_LABELS, ["wave", "stars"], list(matches), list(selected),
                       height=100)


def test_layout_content_left_at_the_height_references_right():
    c = canvas()
    content, wave, stars = c.panels
    assert content.box == (0, CAPTION, 200, 100)  # 64x32 scaled to height 100
    assert wave.box[0] == stars.box[0] == 200 + GAP and wave.reference == 0 and stars.reference == 1
    assert wave.box[3] == stars.box[3] == 96  # references never smaller than 96 px
    assert c.image.size[1] >= stars.box[1] + stars.box[3]


def test_a_click_finds_the_image_and_region_under_it():
    c = canvas()
    content, wave, stars = c.panels
    panel, region = c.locate(150, CAPTION + 50)
    assert panel is content and region == 1
    assert c.locate(10, CAPTION + 5)[1] == 0
    x, y, w, h = wave.box
    panel, region = c.locate(x + w / 2, y + h * 0.75)
    assert panel is wave and region == 1
    panel, region = c.locate(stars.box[0] + 1, stars.box[1] + 1)
    assert panel is stars and region == 0
    assert c.locate(200 + GAP / 2, CAPTION + 50) is None  # between the images


def test_each_match_is_a_line_in_the_content_regions_colour():
    c = canvas([match(1, 0, 1), match(0, 1, 0, fallback=True)])
    content, wave, _ = c.panels
    start, end = content.centroid(1), wave.centroid(1)
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    pixel = np.asarray(c.image)[round(middle[1]), round(middle[0])]
    np.testing.assert_array_equal(pixel, PALETTE[1].astype(np.uint8))
    # a fallback match (global AD loss) has no style region, so no line: the gap stays background there
    gap_column = np.asarray(c.image)[:, 200 + GAP // 2]
    assert (gap_column == PALETTE[1].astype(np.uint8)).all(axis=1).sum() >= 1
    assert not (gap_column == PALETTE[0].astype(np.uint8)).all(axis=1).any()


def test_selected_regions_are_outlined():
    plain, chosen = np.asarray(canvas().image), np.asarray(canvas(selected=[1]).image)
    changed = (plain != chosen).any(axis=2)
    ys, xs = np.nonzero(changed)
    assert len(xs) and xs.min() >= 100 - 1 and xs.max() < 200  # only inside content region 1


def test_region_numbers_are_drawn_once_over_the_lines(monkeypatch):
    """The tinted pictures come unnumbered (the canvas numbers every region itself, on top of the match lines);
    an unnumbered overlay is the tint alone."""
    from stylex.callbacks import visuals
    from stylex.studio_app import canvas as canvas_module

    numbered = []
    overlay = visuals.region_overlay

    def recording(image, labels, alpha=0.45, **kw):  # type: ignore[no-untyped-def]
        numbered.append(kw.get("numbered", True))
        return overlay(image, labels, alpha, **kw)

    monkeypatch.setattr(canvas_module, "region_overlay", recording)
    canvas([match(1, 0, 1)])
    assert numbered == [False, False, False]  # the content and both references
    image = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([[0, 0, 1, 1]] * 4)
    tint = 0.55 * np.asarray(visuals.to_pil(image), dtype=np.float32) + 0.45 * PALETTE[labels.numpy()]
    got = np.asarray(visuals.region_overlay(image, labels, numbered=False))
    np.testing.assert_array_equal(got, tint.clip(0, 255).astype(np.uint8))
