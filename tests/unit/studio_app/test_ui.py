"""The page's own bookkeeping: the browser names images only from the studio's list (a path it sends is never
opened unless the studio offered it), and a click before any analysis is a message."""

import pytest

from stylex.errors import InputError
from stylex.studio_app.inputs import Source
from stylex.studio_app.ui import Catalog, Session


def test_the_browser_can_only_name_images_the_studio_offered(tmp_path):
    cat, wave = Source(tmp_path / "cat.png", "cat"), Source(tmp_path / "wave.png", "wave")
    catalog = Catalog([cat], [wave])
    assert catalog.get(str(cat.path)) is cat and catalog.choices("styles") == [("wave", str(wave.path))]
    with pytest.raises(InputError, match="not one of the studio's images"):
        catalog.get("/etc/passwd")
    upload = Source(tmp_path / "inputs" / "ab12" / "cat.png", "cat")
    key = catalog.add(upload, "content")
    assert catalog.get(key) is upload and [v for _, v in catalog.choices("content")] == [str(cat.path), key]
    assert catalog.add(upload, "content") == key and len(catalog.choices("content")) == 2


def test_edits_before_an_analysis_are_a_message():
    with pytest.raises(InputError, match="nothing analysed yet"):
        Session().need_view()
