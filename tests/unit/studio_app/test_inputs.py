"""Uploads: checked (type, bytes, pixels, decodes) with messages naming the file, kept under the output
folder with a safe name and the same bytes (so the batch run's content hashes match)."""
import numpy as np
import pytest
from PIL import Image

from stylex.errors import InputError
from stylex.studio_app.inputs import configured, safe_name, take_upload
from tests.conftest import write_image


def upload(root, path, name, max_pixels=10**6, max_mb=1.0):
    return take_upload(root, path, name, max_pixels, max_mb)


def test_an_upload_is_kept_byte_for_byte_under_the_output_folder(tmp_path):
    src = write_image(tmp_path / "tmp" / "x.png", (40, 30))
    kept = upload(tmp_path / "out", src, "Cat photo.png")
    assert kept.name == "Cat_photo" and kept.path.read_bytes() == src.read_bytes()
    assert kept.path.parent.parent == (tmp_path / "out" / "inputs").resolve()
    assert upload(tmp_path / "out", src, "Cat photo.png") == kept  # the same upload again: the same file


def test_names_cannot_leave_the_folder_or_hide():
    assert safe_name("../../etc/passwd.png") == "passwd.png"
    assert safe_name(".hidden.PNG") == "hidden.png"
    assert safe_name("a b;c$.jpg") == "a_b_c.jpg" and safe_name("...png") == "upload.png"


def test_a_file_that_is_not_an_image_is_a_message_naming_it(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(InputError, match="notes.png: not an image"):
        upload(tmp_path / "out", tmp_path / "x.png", "notes.png")
    with pytest.raises(InputError, match="report.pdf: not an image file"):
        upload(tmp_path / "out", tmp_path / "x.png", "report.pdf")
    assert not (tmp_path / "out" / "inputs").exists()


def test_huge_images_are_refused_before_decoding(tmp_path):
    Image.new("L", (2000, 1000)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="2000x1000 pixels is more than"):
        upload(tmp_path / "out", tmp_path / "big.png", "big.png", max_pixels=1_000_000)
    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "heavy.png")
    with pytest.raises(InputError, match="MB is more than"):
        upload(tmp_path / "out", tmp_path / "heavy.png", "heavy.png", max_mb=0.5)


def test_an_image_pil_refuses_to_open_is_too_big_not_a_crash(tmp_path, monkeypatch):
    Image.new("L", (100, 100)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 10,000 pixels > 2x: PIL raises DecompressionBombError
    with pytest.raises(InputError, match="bomb.png: more pixels than the studio accepts"):
        upload(tmp_path / "out", tmp_path / "bomb.png", "bomb.png", max_pixels=10**9)


def test_configured_inputs_and_none(tmp_path, image_folders):
    contents, _ = image_folders
    assert [s.name for s in configured(str(contents), "content")] == ["cat", "dog"]
    assert configured(None, "styles") == [] and configured([], "styles") == []
