"""Tiny randomly initialised backbones with the real block layout, for tests and `debug=smoke`.

The UNet keeps SD1.5's four down/up blocks (cross-attention in up_blocks 1-3), so every layer path that a
method config names (`up_blocks.2...attn1`) exists in the tiny model too; only widths and depths shrink.
"""
from __future__ import annotations

import torch

from stylex.backbones.sd import SD_SCHEDULER_DEFAULTS, SDBackbone, resolve_dtype
from stylex.backbones.tokenizer import TINY_CLIP_VOCAB_SIZE, tiny_clip_tokenizer


def tiny_sd(seed: int = 0, width: int = 16, cross_attention_dim: int = 32, dtype: str = "auto",
            device: str | torch.device = "cpu", model: str = "tiny-random-sd") -> SDBackbone:
    """A random SD1.x-shaped backbone (about 1.5 M parameters) that runs a 128² image in milliseconds."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    torch.manual_seed(seed)
    w = width
    unet = UNet2DConditionModel(
        sample_size=16,
        block_out_channels=(w, w, 2 * w, 2 * w),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=2,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=128,
        scaling_factor=4.0,  # gives this random VAE unit-scale latents, as 0.18215 does for SD's real VAE
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=TINY_CLIP_VOCAB_SIZE, hidden_size=cross_attention_dim, intermediate_size=37,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    if torch_dtype != torch.float32:
        for module in (unet, vae, text_encoder):
            module.to(torch_dtype)
    backbone = SDBackbone(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tiny_clip_tokenizer(),
                          scheduler_config=dict(SD_SCHEDULER_DEFAULTS), model_id=model, dtype=torch_dtype)
    return backbone.to(device).freeze()
