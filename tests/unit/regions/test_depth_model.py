import pytest
import torch

from stylex.backbones.depth import estimate_depth, input_size_for, load_depth, minmax_per_image, tiny_depth
from stylex.errors import WeightsError


@pytest.fixture(scope="module")
def model():
    return tiny_depth(seed=0)


def test_tiny_depth_output_shape_and_range(model):
    images = torch.rand(2, 3, 40, 60, generator=torch.Generator().manual_seed(0))
    depth = estimate_depth(model, images, (8, 12), input_size=56)
    assert depth.shape == (2, 8, 12)
    assert torch.isfinite(depth).all()
    assert float(depth.min()) >= 0.0 and float(depth.max()) <= 1.0


def test_tiny_depth_is_seeded():
    images = torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    a = estimate_depth(tiny_depth(seed=3), images, (4, 4), input_size=28)
    b = estimate_depth(tiny_depth(seed=3), images, (4, 4), input_size=28)
    assert torch.equal(a, b)


def test_input_size_keeps_aspect_and_patch_multiples():
    assert input_size_for(512, 512, 518, 14) == (518, 518)
    h, w = input_size_for(512, 768, 518, 14)
    assert h == 518 and w % 14 == 0 and abs(w / h - 1.5) < 0.03


def test_minmax_per_image():
    d = torch.stack([torch.tensor([[1.0, 3.0]]), torch.tensor([[5.0, 5.0]])])
    assert minmax_per_image(d).tolist() == [[[0.0, 1.0]], [[0.0, 0.0]]]


def test_missing_local_weights_raise_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="method.depth.model"):
        load_depth(str(tmp_path / "no-such-model"))


def test_local_directory_round_trip(tmp_path, model):
    model.save_pretrained(tmp_path)
    loaded = load_depth(str(tmp_path))
    images = torch.rand(1, 3, 28, 42, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        estimate_depth(loaded, images, (7, 7), input_size=28), estimate_depth(model, images, (7, 7), input_size=28)
    )
