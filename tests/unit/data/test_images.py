import numpy as np
import pytest
from PIL import Image

from stylex.data.images import keep_aspect_size, load_image, resize, to_pil, to_tensor
from stylex.errors import ConfigError, InputError
from tests.conftest import write_image


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "LA", "CMYK", "1"])
def test_common_modes_become_rgb(tmp_path, mode):
    path = write_image(tmp_path / f"x_{mode}.{'jpg' if mode == 'CMYK' else 'png'}", (40, 30), mode)
    img = load_image(path)
    assert img.mode == "RGB" and img.size == (40, 30)


def test_transparency_is_composited_on_white(tmp_path):
    arr = np.zeros((20, 20, 4), np.uint8)
    arr[:, :10] = (255, 0, 0, 255)  # left half opaque red, right half fully transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    rgb = np.asarray(load_image(tmp_path / "a.png"))
    assert tuple(rgb[5, 2]) == (255, 0, 0) and tuple(rgb[5, 15]) == (255, 255, 255)


def test_16_bit_grayscale_is_rescaled_not_clipped(tmp_path):
    arr = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "depth16.png")
    rgb = np.asarray(load_image(tmp_path / "depth16.png"))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and 100 < rgb[16, 0, 0] < 160


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").size == (20, 40)


def test_bad_files_are_named_in_the_error(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match="notes.png.*not an image"):
        load_image(tmp_path / "notes.png")
    good = write_image(tmp_path / "big.jpg", (200, 200))
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:400])
    with pytest.raises(InputError, match="cut.jpg.*(damaged|truncated)"):
        load_image(tmp_path / "cut.jpg")
    with pytest.raises(InputError, match="missing.png.*no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="too small"):
        load_image(write_image(tmp_path / "tiny.png", (8, 8)))


def test_resize_modes():
    img = Image.new("RGB", (640, 480))
    assert resize(img, 512, "squash").size == (512, 512)
    w, h = resize(img, 512, "keep").size
    assert w % 64 == 0 and h % 64 == 0 and abs(w / h - 4 / 3) < 0.1 and abs(w * h - 512**2) / 512**2 < 0.15
    assert keep_aspect_size(100, 100, 512) == (512, 512)
    with pytest.raises(ConfigError):
        resize(img, 500, "keep")
    with pytest.raises(ConfigError):
        resize(img, 512, "stretch")


def test_tensor_round_trip():
    img = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    t = to_tensor(img)
    assert t.shape == (3, 4, 4) and 0 <= t.min() and t.max() <= 1
    assert np.array_equal(np.asarray(to_pil(t)), np.asarray(img))
