import pytest
import torch

from stylex.backbones.architectures import ARCHITECTURES, VAE


@pytest.mark.parametrize("name, unet_params", [("sd15", 859_520_964), ("sd21", 865_910_724)])
def test_built_in_architectures_match_the_published_parameter_counts(name, unet_params):
    from diffusers import AutoencoderKL, UNet2DConditionModel

    with torch.device("meta"):  # shapes only: no memory, no time
        unet = UNet2DConditionModel(**ARCHITECTURES[name]["unet"])
        vae = AutoencoderKL(**VAE)
    assert sum(p.numel() for p in unet.parameters()) == unet_params
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
