from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from stylex.backbones import load_backbone
from stylex.backbones.sd3 import SD3Backbone, load_sd3, tiny_sd3
from stylex.errors import ConfigError, WeightsError

CONFIGS = Path(__file__).parents[3] / "configs" / "backbone"


@pytest.fixture(scope="module")
def sd3() -> SD3Backbone:
    return tiny_sd3(seed=0)


def test_tiny_sd3_has_sd35_medium_layout(sd3):
    tr = sd3.transformer
    assert sd3.attention_layers(kind="attn") == [f"transformer_blocks.{i}.attn" for i in range(3)]
    assert sd3.attention_layers(kind="attn2") == ["transformer_blocks.0.attn2"]  # the dual-attention block
    assert sd3.attention_layers(["transformer_blocks.1"], "attn") == ["transformer_blocks.1.attn"]
    assert tr.transformer_blocks[-1].attn.context_pre_only and not tr.transformer_blocks[0].attn.context_pre_only
    assert tr.transformer_blocks[0].attn.norm_q is not None  # SD3.5's RMS qk-norm
    assert sd3.vae.config.latent_channels == 16 and sd3.size_multiple == 16
    assert sd3.scheduler_config["shift"] == 3.0 and sd3.has_t5
    assert all(not p.requires_grad for p in tr.parameters())


def test_encode_decode_denoise_shapes_and_determinism(sd3):
    images = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    z = sd3.encode(images)
    assert z.shape == (2, 16, 8, 6) and z.dtype == torch.float32
    assert torch.equal(z, sd3.encode(images))  # the posterior mean: deterministic
    # a seeded sample is reproducible and differs from the mean
    s1 = sd3.encode(images, generator=torch.Generator().manual_seed(1))
    s2 = sd3.encode(images, generator=torch.Generator().manual_seed(1))
    assert torch.equal(s1, s2) and not torch.allclose(s1, z)
    # latents are (mean − shift)·scale
    mean = sd3.vae.encode(images * 2 - 1).latent_dist.mean
    assert torch.allclose(z, (mean - sd3.shift_factor) * sd3.scaling_factor, atol=1e-6)
    out = sd3.decode(z)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    cond = sd3.embed_prompt([""])
    v = sd3.denoise(z, 500.0, cond)  # batch-1 conditioning broadcasts
    assert v.shape == z.shape and v.dtype == torch.float32
    assert torch.allclose(v, sd3.denoise(z, torch.tensor([500.0, 500.0]), sd3.embed_prompt(["", ""])), atol=1e-6)
    assert not torch.allclose(v, sd3.denoise(z, 900.0, cond), atol=1e-4)  # the timestep is used


def test_embed_prompt_matches_diffusers_sd3_pipeline(sd3):
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    te, tok = sd3.text_encoders, sd3.tokenizers
    pipe = StableDiffusion3Pipeline(
        transformer=sd3.transformer, scheduler=FlowMatchEulerDiscreteScheduler.from_config(sd3.scheduler_config),
        vae=sd3.vae, text_encoder=te[0], tokenizer=tok[0], text_encoder_2=te[1], tokenizer_2=tok[1],
        text_encoder_3=te[2], tokenizer_3=tok[2])
    texts = ["a cat", "a painting of waves"]
    embeds, _, pooled, _ = pipe.encode_prompt(texts, None, None, do_classifier_free_guidance=False,
                                              max_sequence_length=sd3.t5_max_length)
    ours = sd3.embed_prompt(texts)
    assert ours.embeds.shape == (2, 77 + sd3.t5_max_length, 32) and ours.pooled.shape == (2, 32)
    assert torch.allclose(ours.embeds, embeds, atol=1e-6) and torch.allclose(ours.pooled, pooled, atol=1e-6)
    assert not torch.allclose(ours.embeds[0], ours.embeds[1])


def test_without_t5_its_tokens_are_zeros():
    with_t5, without = tiny_sd3(seed=0), tiny_sd3(seed=0, t5=False)
    a, b = with_t5.embed_prompt(["a cat"]), without.embed_prompt(["a cat"])
    assert not without.has_t5 and b.embeds.shape == a.embeds.shape
    assert torch.count_nonzero(b.embeds[:, 77:]) == 0 and torch.count_nonzero(a.embeds[:, 77:]) > 0
    assert torch.allclose(a.embeds[:, :77], b.embeds[:, :77]) and torch.allclose(a.pooled, b.pooled)


def test_missing_weights_name_the_place_and_the_setting(tmp_path):
    missing = tmp_path / "no-such-sd35"
    with pytest.raises(WeightsError, match="backbone.model") as info:
        load_sd3(str(missing))
    assert str(missing) in str(info.value)


def test_missing_hub_weights_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsError, match="stylex-tests/no-such-sd35"):
        load_backbone("sd3", "stylex-tests/no-such-sd35")


def test_load_backbone_sd3_family_and_configs():
    bb = load_backbone("sd3", "stabilityai/stable-diffusion-3.5-medium", tiny=True, t5=False, shift=2.0)
    assert isinstance(bb, SD3Backbone) and not bb.has_t5 and bb.scheduler_config["shift"] == 2.0
    assert "stable-diffusion-3.5-medium" in bb.model_id
    with pytest.raises(ConfigError, match="sd3"):
        load_backbone("sdx", "x")
    for name, model in (("sd35_medium", "stabilityai/stable-diffusion-3.5-medium"),
                        ("sd35_large", "stabilityai/stable-diffusion-3.5-large")):
        cfg = OmegaConf.load(CONFIGS / f"{name}.yaml")
        assert cfg.family == "sd3" and cfg.model == model and cfg.dtype == "auto"
        assert cfg._target_ == "stylex.backbones.load_backbone"


def test_attention_layers_kinds():
    large_like = tiny_sd3(seed=0, t5=False, dual_attention_layers=())
    assert large_like.attention_layers(kind="attn2", required=False) == []
    with pytest.raises(ConfigError):
        large_like.attention_layers(kind="attn2")
    with pytest.raises(ConfigError, match="attn1"):
        large_like.attention_layers(kind="attn1")
