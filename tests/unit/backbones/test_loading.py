import pytest

from stylex.backbones import load_backbone
from stylex.errors import ConfigError, WeightsError


def test_missing_local_weights_name_the_model_where_and_how(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(WeightsError) as err:
        load_backbone("sd", str(missing))
    message = str(err.value)
    assert str(missing) in message and "backbone.model" in message and "HF_HUB_OFFLINE" in message


def test_missing_hub_weights_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match="stylex-tests/definitely-not-a-model"):
        load_backbone("sd", "stylex-tests/definitely-not-a-model")


def test_unknown_family():
    with pytest.raises(ConfigError, match="family"):
        load_backbone("sdxl-turbo-9000", "x")


def test_tiny_backbone_round_trips_shapes(tiny_backbone):
    import torch

    images = torch.rand(2, 3, 64, 96)
    latents = tiny_backbone.encode(images)
    assert latents.shape == (2, 4, 8, 12) and 0.3 < latents.std() < 3  # unit-scale latents, like SD's
    assert tiny_backbone.decode(latents).shape == (2, 3, 64, 96)
    assert tiny_backbone.embed_prompt(["", "x"]).shape[:2] == (2, 77)
