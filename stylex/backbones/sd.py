"""Stable Diffusion 1.x / 2.x (UNet) as one frozen object: encode, decode, embed prompts, denoise."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from stylex.backbones.hub import is_local_path, load_pretrained
from stylex.errors import ConfigError

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` is bf16 on CUDA (fast, no fp16 overflow) and fp32 elsewhere."""
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        return DTYPES[name]
    except KeyError:
        raise ConfigError(f"backbone.dtype={name!r} is not one of auto, {', '.join(DTYPES)}.") from None


@dataclass
class SDBackbone:
    """A frozen SD1.x/2.x model. Latents are `vae.encode(x).latent_dist.mean * scaling_factor`."""

    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    scheduler_config: dict
    model_id: str
    dtype: torch.dtype = torch.float32
    family: str = "sd"
    _prompt_cache: dict = field(default_factory=dict, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def latent_factor(self) -> int:
        """Pixels per latent cell (8 for SD's VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def autocast(self) -> contextlib.AbstractContextManager:
        """Half-precision autocast when the weights are half precision; a no-op for fp32 (on any device, the
        meta device of shape-only builds included)."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def to(self, device: torch.device | str) -> "SDBackbone":
        for module in (self.unet, self.vae, self.text_encoder):
            module.to(device)
        self._prompt_cache.clear()
        return self

    def freeze(self) -> "SDBackbone":
        for module in (self.unet, self.vae, self.text_encoder):
            module.requires_grad_(False)
            module.eval()
        return self

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images [B,3,H,W] in [0,1] -> fp32 latents [B,4,H/8,W/8]."""
        x = (images.to(self.device, self.vae.dtype) * 2 - 1)
        return self.vae.encode(x).latent_dist.mean.float() * self.scaling_factor

    def decode(self, latents: Tensor) -> Tensor:
        """Latents -> images [B,3,H,W] in [0,1] (fp32)."""
        x = self.vae.decode(latents.to(self.vae.dtype) / self.scaling_factor).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    @torch.no_grad()
    def embed_prompt(self, texts: list[str]) -> Tensor:
        """Text-encoder hidden states [B,77,D]; cached, since the empty prompt is used at every step."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._prompt_cache]
        if missing:
            tokens = self.tokenizer(missing, padding="max_length", max_length=self.tokenizer.model_max_length,
                                    truncation=True, return_tensors="pt").input_ids.to(self.device)
            hidden = self.text_encoder(tokens)[0]
            for text, h in zip(missing, hidden):
                self._prompt_cache[text] = h
        return torch.stack([self._prompt_cache[t] for t in texts])

    def denoise(self, latents: Tensor, t: int | Tensor, cond: Tensor) -> Tensor:
        """The UNet's prediction (ε or v, per `scheduler_config['prediction_type']`) under the backbone's autocast."""
        if cond.shape[0] == 1 and latents.shape[0] > 1:
            cond = cond.expand(latents.shape[0], -1, -1)
        # a tensor (int64 for an int, as diffusers makes it): a compiled UNet then does not specialise on each t
        t = torch.as_tensor(t, device=latents.device).reshape(-1).expand(latents.shape[0])
        with self.autocast:
            return self.unet(latents, t, encoder_hidden_states=cond).sample.float()

    def attention_layers(self, prefixes: list[str] | tuple[str, ...], kind: str = "attn1") -> list[str]:
        """Module paths of the `kind` attention layers (attn1 = self, attn2 = cross) under any of `prefixes`."""
        from stylex.diffusion.attention import select_layers

        return select_layers(self.unet, prefixes, kind)


SD_SCHEDULER_DEFAULTS = {
    "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1, "timestep_spacing": "leading",
    "prediction_type": "epsilon",
}


def load_sd(model: str, dtype: str = "auto", device: str | torch.device = "cpu",
            config_key: str = "backbone.model", variant: str | None = None) -> SDBackbone:
    """Load an SD1.x/2.x pipeline's parts from a Hugging Face id or a local directory (diffusers layout)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    kw: dict[str, Any] = {"config_key": config_key}
    if variant:
        kw["variant"] = variant
    what = f"Stable Diffusion ({model})"
    scheduler = load_pretrained(DDIMScheduler.from_pretrained, model, what=what, subfolder="scheduler", **kw)
    tokenizer = load_pretrained(CLIPTokenizer.from_pretrained, model, what=what, subfolder="tokenizer", **kw)
    text_encoder = load_pretrained(CLIPTextModel.from_pretrained, model, what=what, subfolder="text_encoder",
                                   torch_dtype=torch_dtype, **kw)
    vae = load_pretrained(AutoencoderKL.from_pretrained, model, what=what, subfolder="vae", torch_dtype=torch_dtype, **kw)
    unet = load_pretrained(UNet2DConditionModel.from_pretrained, model, what=what, subfolder="unet",
                           torch_dtype=torch_dtype, **kw)
    log.info("Loaded %s from %s (%s)", model, "local directory" if is_local_path(model) else "the HF hub/cache",
             torch_dtype)
    config = {**SD_SCHEDULER_DEFAULTS, **{k: v for k, v in scheduler.config.items() if not k.startswith("_")}}
    backbone = SDBackbone(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                          scheduler_config=config, model_id=model, dtype=torch_dtype)
    return backbone.to(device).freeze()
