import pytest
import torch

from stylex.backbones.dino import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    aligned_size,
    load_dino,
    patch_tokens,
    prepare_images,
    tiny_dino,
)
from stylex.errors import WeightsError


@pytest.fixture(scope="module")
def model():
    return tiny_dino(seed=0)


def test_aligned_tokens_shape(model):
    images = torch.rand(2, 3, 50, 75, generator=torch.Generator().manual_seed(0))
    tokens = patch_tokens(model, images)  # 50 -> 56 (4 patches), 75 -> 70 (5 patches)
    assert tokens.shape == (2, 4, 5, 32)
    assert tokens.dtype == torch.float32 and torch.isfinite(tokens).all()


def test_official_tokens_are_16x16(model):
    images = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    assert patch_tokens(model, images, mode="official").shape == (1, 16, 16, 32)


def test_aligned_size():
    assert aligned_size(512, 512, 14) == (518, 518)
    assert aligned_size(64, 40, 14) == (70, 42)
    assert aligned_size(3, 3, 14) == (14, 14)


def unnormalise(x):
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return x * std + mean


def test_aligned_grid_covers_the_whole_image_official_crops():
    ramp = torch.linspace(0, 1, 300).expand(1, 3, 200, 300).contiguous()  # left edge 0, right edge 1
    aligned = unnormalise(prepare_images(ramp, 14, "aligned")[0])
    assert aligned.shape[-2:] == (196, 294)  # whole image, patch multiples, no crop
    assert float(aligned[0, :, 0].mean()) < 0.01 and float(aligned[0, :, -1].mean()) > 0.99
    official = unnormalise(prepare_images(ramp, 14, "official")[0])
    assert official.shape[-2:] == (224, 224)
    assert float(official[0, :, 0].mean()) > 0.15 and float(official[0, :, -1].mean()) < 0.85  # sides cut off


def test_tiny_dino_is_seeded():
    images = torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(2))
    assert torch.equal(patch_tokens(tiny_dino(seed=5), images), patch_tokens(tiny_dino(seed=5), images))
    assert not torch.equal(patch_tokens(tiny_dino(seed=5), images), patch_tokens(tiny_dino(seed=6), images))


def test_missing_local_weights_raise_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="method.dino.model"):
        load_dino(str(tmp_path / "no-such-model"))


def test_local_directory_round_trip(tmp_path, model):
    model.save_pretrained(tmp_path)
    loaded = load_dino(str(tmp_path))
    images = torch.rand(1, 3, 28, 42, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(patch_tokens(loaded, images), patch_tokens(model, images))
