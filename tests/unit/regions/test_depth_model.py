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


def raw_prediction(model, images, input_size):
    """The model's own output at its input size (bicubic resize to a patch multiple, ImageNet normalisation)."""
    x = torch.nn.functional.interpolate(images, size=(input_size, input_size), mode="bicubic", align_corners=False,
                                        antialias=True).clamp(0, 1)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        return model(pixel_values=(x - mean) / std).predicted_depth


def hand_minmax(d):
    return (d - d.min()) / (d.max() - d.min())


def test_depth_reduced_to_the_grid_by_area_or_by_nearest_sampling(model):
    """METHODS.md 2.1 step 6: `area` averages the prediction over each cell; `nearest` (official) takes it to the
    image's size (bilinear, corners aligned, as Depth Anything's infer_image returns it) and samples cell i at
    pixel floor(i·H/h)."""
    images = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(4))
    pred = raw_prediction(model, images, 28)[0]  # [28, 28]
    area = estimate_depth(model, images, (7, 7), input_size=28, reduce="area")[0]
    torch.testing.assert_close(area, hand_minmax(pred.reshape(7, 4, 7, 4).mean(dim=(1, 3))), rtol=1e-5, atol=1e-6)
    full = torch.nn.functional.interpolate(pred[None, None], size=(40, 40), mode="bilinear", align_corners=True)[0, 0]
    nearest = estimate_depth(model, images, (8, 8), input_size=28, reduce="nearest")[0]
    torch.testing.assert_close(nearest, hand_minmax(full[::5, ::5]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="reduce"):
        estimate_depth(model, images, (8, 8), input_size=28, reduce="bilinear")
