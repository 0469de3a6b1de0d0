"""The real SD1.5 and SD2.1-base architectures with random weights, built from configs (no download).

`python -m stylex.bench` measures speed and memory on these when the real weights are absent: timings and
FLOP counts depend on the architecture, not on the weights.
"""
from __future__ import annotations

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


def random_sd(architecture: str, dtype: str = "auto", device: str | torch.device = "cpu", seed: int = 0) -> SDBackbone:
    """SD1.5 (`sd15`) or SD2.1-base (`sd21`) at full size with random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if architecture not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {architecture!r}; one of {', '.join(ARCHITECTURES)}")
    spec = ARCHITECTURES[architecture]
    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**VAE)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=TINY_CLIP_VOCAB_SIZE, max_position_embeddings=77,
                                            bos_token_id=0, eos_token_id=1, pad_token_id=1, **spec["text"]))
    for module in (unet, vae, text):
        module.to(device=device, dtype=torch_dtype)
    backbone = SDBackbone(unet=unet, vae=vae, text_encoder=text, tokenizer=tiny_clip_tokenizer(),
                          scheduler_config=dict(SD_SCHEDULER_DEFAULTS), model_id=f"random-{architecture}",
                          dtype=torch_dtype)
    return backbone.freeze()
