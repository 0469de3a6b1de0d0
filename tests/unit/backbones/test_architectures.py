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


def test_sd35_architectures_have_the_published_shapes():
    """SD3.5 Large is the published 8.1 B-parameter MM-DiT; Medium (MMDiT-X, published as 2.5 B with its
    embedders) has 24 blocks of width 1536, the first 13 with dual attention."""
    from diffusers import AutoencoderKL, SD3Transformer2DModel

    from stylex.backbones.architectures import SD3_ARCHITECTURES, SD3_VAE

    with torch.device("meta"):
        large = SD3Transformer2DModel(**SD3_ARCHITECTURES["sd35_large"])
        medium = SD3Transformer2DModel(**SD3_ARCHITECTURES["sd35_medium"])
        vae = AutoencoderKL(**SD3_VAE)
    assert round(sum(p.numel() for p in large.parameters()) / 1e9, 1) == 8.1
    assert 2.0e9 < sum(p.numel() for p in medium.parameters()) < 2.5e9
    assert medium.inner_dim == 1536 and len(medium.transformer_blocks) == 24
    assert [b.attn2 is not None for b in medium.transformer_blocks] == [True] * 13 + [False] * 11
    assert vae.config.latent_channels == 16 and sum(p.numel() for p in vae.parameters()) == 83_819_683


def test_random_sd35_builds_a_working_backbone(monkeypatch):
    """The SD3 builder wires the stand-in text encoders to the real widths (joint 4096, pooled 2048); a
    narrowed copy of the Medium config keeps the test small."""
    from stylex.backbones import architectures

    small = {**architectures.SD3_ARCHITECTURES["sd35_medium"], "num_layers": 2, "dual_attention_layers": (0,),
             "num_attention_heads": 2, "caption_projection_dim": 128}
    monkeypatch.setitem(architectures.SD3_ARCHITECTURES, "sd35_medium", small)
    monkeypatch.setitem(architectures.SD3_VAE, "block_out_channels", (32, 32, 32, 32))
    backbone = architectures.random_backbone("sd35_medium", dtype="float32")
    cond = backbone.embed_prompt(["a painting"])
    assert cond.embeds.shape == (1, 77 + 256, 4096) and cond.pooled.shape == (1, 2048)
    latent = torch.randn(1, 16, 8, 8)
    assert backbone.denoise(latent, 500.0, cond).shape == latent.shape
    assert backbone.model_id == "random-sd35_medium"
