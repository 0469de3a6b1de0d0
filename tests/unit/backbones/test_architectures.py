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


@pytest.mark.parametrize("method", ["ad", "gallery"])
def test_the_configured_layers_are_sd15s_last_six_self_attention_layers(method):
    """METHODS.md 0.1 on the real SD1.5 architecture (`random_backbone` on the meta device: shapes, no weights):
    the method's configured layers are the last 6 of the 16 self-attention layers in execution order, with 32x32
    and 64x64 tokens for a 512² image (64x64 latent) and 8 heads of 80 and 40 channels, as the method records them."""
    from pathlib import Path

    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from stylex.backbones.architectures import random_backbone

    config = OmegaConf.load(Path(__file__).parents[3] / "configs" / "method" / f"{method}.yaml")
    backbone = random_backbone("sd15", device="meta")
    executed: list[str] = []
    hooks = [module.register_forward_pre_hook(lambda *_, name=name: executed.append(name))
             for name, module in backbone.unet.named_modules() if name.endswith(".attn1")]
    instance = get_class(config._target_)(layers=tuple(config.layers), show_progress=False)
    instance.use_backbone(backbone)
    records = instance.record(torch.zeros(1, 4, 64, 64, device="meta"), 500, ("q", "out"))
    for hook in hooks:
        hook.remove()
    assert len(executed) == 16 and instance.layers == executed[10:] == list(records)
    shapes = [tuple(records[layer]["q"].shape) for layer in instance.layers]
    assert shapes == [(1, 8, 32 * 32, 80)] * 3 + [(1, 8, 64 * 64, 40)] * 3
    assert all(records[layer]["out"].shape == records[layer]["q"].shape for layer in instance.layers)
