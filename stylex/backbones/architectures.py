"""The real SD1.5, SD2.1-base and SD3.5 Medium / Large architectures with random weights, built from configs
(no download).

`python -m stylex.bench` measures speed and memory on these when the real weights are absent: timings and
FLOP counts depend on the architecture, not on the weights. SD3.5's text encoders are one-layer stand-ins with
the real output widths and T5's tokens are zeros (256 of them, as with T5): a prompt is encoded once per run, so
they do not change the per-step cost.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch

from stylex.backbones.sd import SD_SCHEDULER_DEFAULTS, SDBackbone, resolve_dtype
from stylex.backbones.tokenizer import TINY_CLIP_VOCAB_SIZE, tiny_clip_tokenizer
from stylex.errors import ConfigError

VAE = {"block_out_channels": (128, 256, 512, 512), "down_block_types": ("DownEncoderBlock2D",) * 4,
       "up_block_types": ("UpDecoderBlock2D",) * 4, "latent_channels": 4, "layers_per_block": 2, "sample_size": 512}
UNET = {"block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2, "sample_size": 64,
        "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3}
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "sd15": {"unet": {**UNET, "cross_attention_dim": 768, "attention_head_dim": 8},
             "text": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12}},
    "sd21": {"unet": {**UNET, "cross_attention_dim": 1024, "attention_head_dim": (5, 10, 20, 20),
                      "use_linear_projection": True},
             "text": {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16,
                      "hidden_act": "gelu"}},
}


def place(modules: tuple[torch.nn.Module, ...], device: torch.device, dtype: torch.dtype) -> None:
    """Move to the device, and cast only when the dtype changes (diffusers warns on every cast)."""
    for module in modules:
        module.to(device)
        if dtype != torch.float32:
            module.to(dtype)


def built_on(device: torch.device) -> contextlib.AbstractContextManager:
    """Where modules are built: on the meta device directly (shapes only, no memory or time: module paths, layer
    shapes and shape-only forwards), elsewhere on the CPU, so that a seed gives the same weights on every device."""
    return torch.device("meta") if device.type == "meta" else contextlib.nullcontext()


def random_sd(architecture: str, dtype: str = "auto", device: str | torch.device = "cpu", seed: int = 0) -> SDBackbone:
    """SD1.5 (`sd15`) or SD2.1-base (`sd21`) at full size with random weights (`device="meta"`: shapes only)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if architecture not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {architecture!r}; one of {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[architecture]
    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    with torch.random.fork_rng(devices=[]), built_on(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**VAE)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=TINY_CLIP_VOCAB_SIZE, max_position_embeddings=77,
                                            bos_token_id=0, eos_token_id=1, pad_token_id=1, **spec["text"]))
    place((unet, vae, text), device, torch_dtype)
    backbone = SDBackbone(unet=unet, vae=vae, text_encoder=text, tokenizer=tiny_clip_tokenizer(),
                          scheduler_config=dict(SD_SCHEDULER_DEFAULTS), model_id=f"random-{architecture}",
                          dtype=torch_dtype)
    return backbone.freeze()


SD3_TRANSFORMER = {"in_channels": 16, "out_channels": 16, "patch_size": 2, "sample_size": 128, "attention_head_dim": 64,
                   "joint_attention_dim": 4096, "pooled_projection_dim": 2048, "qk_norm": "rms_norm"}
SD3_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "sd35_medium": {**SD3_TRANSFORMER, "num_layers": 24, "num_attention_heads": 24, "caption_projection_dim": 1536,
                    "pos_embed_max_size": 384, "dual_attention_layers": tuple(range(13))},
    "sd35_large": {**SD3_TRANSFORMER, "num_layers": 38, "num_attention_heads": 38, "caption_projection_dim": 2432,
                   "pos_embed_max_size": 192, "dual_attention_layers": ()},
}
SD3_VAE = {**VAE, "latent_channels": 16, "sample_size": 1024, "use_quant_conv": False, "use_post_quant_conv": False,
           "scaling_factor": 1.5305, "shift_factor": 0.0609}
CLIP_WIDTHS = (768, 1280)  # CLIP-L and CLIP-G: their hidden states side by side, their pooled outputs joined


def random_sd3(architecture: str, dtype: str = "auto", device: str | torch.device = "cpu", seed: int = 0) -> Any:
    """SD3.5 Medium (`sd35_medium`) or Large (`sd35_large`) at full size with random weights."""
    from diffusers import AutoencoderKL, SD3Transformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from stylex.backbones.sd3 import CLIP_MAX_LENGTH, SD3_SCHEDULER_DEFAULTS, SD3Backbone

    if architecture not in SD3_ARCHITECTURES:
        raise ConfigError(f"unknown architecture {architecture!r}; one of {', '.join(SD3_ARCHITECTURES)}")
    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    with torch.random.fork_rng(devices=[]), built_on(device):
        torch.manual_seed(seed)
        transformer = SD3Transformer2DModel(**SD3_ARCHITECTURES[architecture])
        vae = AutoencoderKL(**SD3_VAE)
        encoders = [CLIPTextModelWithProjection(CLIPTextConfig(
            vocab_size=TINY_CLIP_VOCAB_SIZE, hidden_size=width, projection_dim=width, intermediate_size=width,
            num_hidden_layers=1, num_attention_heads=8, max_position_embeddings=CLIP_MAX_LENGTH, bos_token_id=0,
            eos_token_id=1, pad_token_id=1)) for width in CLIP_WIDTHS]
    place((transformer, vae, *encoders), device, torch_dtype)
    backbone = SD3Backbone(transformer=transformer, vae=vae, text_encoders=encoders,
                           tokenizers=[tiny_clip_tokenizer(), tiny_clip_tokenizer()],
                           scheduler_config=dict(SD3_SCHEDULER_DEFAULTS), model_id=f"random-{architecture}",
                           dtype=torch_dtype)
    return backbone.freeze()


def random_backbone(architecture: str, dtype: str = "auto", device: str | torch.device = "cpu", seed: int = 0) -> Any:
    """Any built-in architecture by name: sd15, sd21, sd35_medium, sd35_large."""
    build = random_sd3 if architecture in SD3_ARCHITECTURES else random_sd
    return build(architecture, dtype=dtype, device=device, seed=seed)


# The published model ids the built-in architectures stand in for.
STANDS_IN_FOR = {"stable-diffusion-v1-5/stable-diffusion-v1-5": "sd15", "stabilityai/stable-diffusion-2-1-base": "sd21",
                 "stabilityai/stable-diffusion-3.5-medium": "sd35_medium",
                 "stabilityai/stable-diffusion-3.5-large": "sd35_large"}
