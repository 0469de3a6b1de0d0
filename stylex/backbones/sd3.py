"""Stable Diffusion 3.5 (MM-DiT, rectified flow) as one frozen object: encode, decode, embed prompts, denoise.

Same interface as `SDBackbone` where it makes sense; the differences are SD3's own: latents are shifted and
scaled, prompts are embedded by three text encoders into `(prompt_embeds, pooled)`, and `denoise` returns the
flow velocity at a timestep `t = σ·1000`. A tiny random variant (`tiny_sd3`) keeps SD3.5-Medium's layout (joint
attention blocks, one dual-attention block with an image-only `attn2`, RMS qk-norms, a context-pre-only last
block) for tests and `debug=smoke`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from stylex.backbones.hub import is_local_path, load_pretrained
from stylex.backbones.sd import resolve_dtype
from stylex.errors import ConfigError

log = logging.getLogger(__name__)

# FlowMatchEulerDiscreteScheduler as SD3.5 ships it (METHODS.md 0.4: shift 3.0, no dynamic shifting).
SD3_SCHEDULER_DEFAULTS: dict[str, Any] = {"num_train_timesteps": 1000, "shift": 3.0, "use_dynamic_shifting": False}
# The SD3 pipeline's defaults: CLIP prompts are 77 tokens, T5 prompts 256.
CLIP_MAX_LENGTH = 77
T5_MAX_LENGTH = 256


class PromptEmbeds(NamedTuple):
    """SD3 conditioning: token embeddings [B, 77+L_t5, D_joint] and pooled CLIP-L|CLIP-G vectors [B, P]."""

    embeds: Tensor
    pooled: Tensor

    def expand(self, batch: int) -> "PromptEmbeds":
        """Broadcast a batch-1 conditioning to `batch` rows (a no-op otherwise)."""
        if self.embeds.shape[0] == batch:
            return self
        if self.embeds.shape[0] != 1:
            raise ValueError(f"conditioning batch {self.embeds.shape[0]} does not match latent batch {batch}")
        return PromptEmbeds(self.embeds.expand(batch, -1, -1), self.pooled.expand(batch, -1))

    @staticmethod
    def cat(parts: list["PromptEmbeds"]) -> "PromptEmbeds":
        """Stack conditionings along the batch (e.g. one per branch, or the two CFG halves)."""
        return PromptEmbeds(torch.cat([p.embeds for p in parts]), torch.cat([p.pooled for p in parts]))


@dataclass
class SD3Backbone:
    """A frozen SD3/3.5 model.

    Latents are `(vae.encode(x).latent_dist.mean − shift_factor)·scaling_factor` (METHODS.md 0.4): the posterior
    mean makes encoding deterministic (the same image always inverts to the same noise). diffusers' pipelines draw
    `.sample()`; pass a `generator` to `encode` for that seeded sample instead.
    """

    transformer: Any
    vae: Any
    text_encoders: list[Any]  # [CLIP-L, CLIP-G] or [CLIP-L, CLIP-G, T5]; T5 absent = zeros, as diffusers allows
    tokenizers: list[Any]
    scheduler_config: dict
    model_id: str
    dtype: torch.dtype = torch.float32
    t5_max_length: int = T5_MAX_LENGTH
    family: str = "sd3"
    _prompt_cache: dict = field(default_factory=dict, repr=False)

    # -- properties ----------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def shift_factor(self) -> float:
        return float(self.vae.config.shift_factor or 0.0)

    @property
    def latent_factor(self) -> int:
        """Pixels per latent cell (8 for SD3's VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: VAE downsampling × transformer patch size."""
        return self.latent_factor * int(self.transformer.config.patch_size)

    @property
    def has_t5(self) -> bool:
        return len(self.text_encoders) > 2 and self.text_encoders[2] is not None

    @property
    def autocast(self) -> torch.autocast:
        """Half-precision autocast when the weights are half precision; a no-op for fp32."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def _modules(self) -> list[Any]:
        return [self.transformer, self.vae, *[e for e in self.text_encoders if e is not None]]

    def to(self, device: torch.device | str) -> "SD3Backbone":
        for module in self._modules():
            module.to(device)
        self._prompt_cache.clear()
        return self

    def freeze(self) -> "SD3Backbone":
        for module in self._modules():
            module.requires_grad_(False)
            module.eval()
        return self

    # -- images <-> latents --------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images [B,3,H,W] in [0,1] -> fp32 latents [B,16,H/8,W/8]; the posterior mean unless `generator`."""
        x = images.to(self.device, self.vae.dtype) * 2 - 1
        dist = self.vae.encode(x).latent_dist
        z = dist.mean if generator is None else dist.sample(generator)
        return (z.float() - self.shift_factor) * self.scaling_factor

    def decode(self, latents: Tensor) -> Tensor:
        """Latents -> images [B,3,H,W] in [0,1] (fp32)."""
        z = latents / self.scaling_factor + self.shift_factor
        x = self.vae.decode(z.to(self.vae.dtype)).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    # -- prompts -------------------------------------------------------------------------------------------
    def _clip(self, index: int, texts: list[str]) -> tuple[Tensor, Tensor]:
        tokens = self.tokenizers[index](texts, padding="max_length", max_length=CLIP_MAX_LENGTH, truncation=True,
                                        return_tensors="pt").input_ids.to(self.device)
        out = self.text_encoders[index](tokens, output_hidden_states=True)
        return out.hidden_states[-2], out[0]  # penultimate layer, projected pooled vector (as the SD3 pipeline)

    def _t5(self, texts: list[str]) -> Tensor:
        dim = int(self.transformer.config.joint_attention_dim)
        if not self.has_t5:
            return torch.zeros(len(texts), self.t5_max_length, dim, device=self.device, dtype=self.dtype)
        tokens = self.tokenizers[2](texts, padding="max_length", max_length=self.t5_max_length, truncation=True,
                                    add_special_tokens=True, return_tensors="pt").input_ids.to(self.device)
        return self.text_encoders[2](tokens)[0]

    @torch.no_grad()
    def embed_prompt(self, texts: list[str]) -> PromptEmbeds:
        """`(prompt_embeds [B,77+L,D], pooled [B,P])` exactly as diffusers' SD3 pipeline builds them; cached."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._prompt_cache]
        if missing:
            with self.autocast:
                clip_l, pooled_l = self._clip(0, missing)
                clip_g, pooled_g = self._clip(1, missing)
                t5 = self._t5(missing)
            clip = torch.cat([clip_l, clip_g], dim=-1).to(t5.dtype)
            clip = torch.nn.functional.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
            embeds = torch.cat([clip, t5], dim=-2)
            pooled = torch.cat([pooled_l, pooled_g], dim=-1)
            for i, text in enumerate(missing):
                self._prompt_cache[text] = (embeds[i], pooled[i])
        return PromptEmbeds(torch.stack([self._prompt_cache[t][0] for t in texts]),
                            torch.stack([self._prompt_cache[t][1] for t in texts]))

    # -- the denoiser --------------------------------------------------------------------------------------
    def denoise(self, latents: Tensor, t: float | Tensor, cond: PromptEmbeds | tuple[Tensor, Tensor]) -> Tensor:
        """The flow velocity v(z, t) (fp32), `t = σ·num_train_timesteps` as in the scheduler's `timesteps`."""
        batch = latents.shape[0]
        cond = PromptEmbeds(*cond).expand(batch)
        t = torch.as_tensor(t, device=latents.device, dtype=torch.float32).reshape(-1).expand(batch)
        with self.autocast:
            return self.transformer(hidden_states=latents.to(self.dtype), encoder_hidden_states=cond.embeds,
                                    pooled_projections=cond.pooled, timestep=t).sample.float()

    def attention_layers(self, prefixes: list[str] | tuple[str, ...] = ("transformer_blocks",), kind: str = "attn",
                         required: bool = True) -> list[str]:
        """Module paths of `kind` layers (`attn` = joint, `attn2` = 3.5-Medium's image-only) under `prefixes`.

        `required=False` returns [] instead of raising when none match (SD3.5-Large has no `attn2`).
        """
        from stylex.diffusion.attention import select_layers

        if kind not in ("attn", "attn2"):
            raise ConfigError(f"SD3 attention kind {kind!r} is not one of: attn (joint), attn2 (image-only).")
        try:
            return select_layers(self.transformer, prefixes, kind)
        except ConfigError:
            if required:
                raise
            return []


def load_sd3(model: str, dtype: str = "auto", device: str | torch.device = "cpu", config_key: str = "backbone.model",
             variant: str | None = None, t5: bool = True, shift: float | None = None,
             t5_max_length: int = T5_MAX_LENGTH) -> SD3Backbone:
    """Load an SD3/3.5 pipeline's parts from a Hugging Face id or a local directory (diffusers layout).

    `t5=False` skips the 4.7 B-parameter T5 encoder (its tokens become zeros, as diffusers allows);
    `shift` overrides the scheduler's shift (3.0 for SD3.5).
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    kw: dict[str, Any] = {"config_key": config_key}
    if variant:
        kw["variant"] = variant
    what = f"Stable Diffusion 3 ({model})"
    scheduler = load_pretrained(FlowMatchEulerDiscreteScheduler.from_pretrained, model, what=what,
                                subfolder="scheduler", **kw)
    tokenizers = [load_pretrained(CLIPTokenizer.from_pretrained, model, what=what, subfolder=sub, **kw)
                  for sub in ("tokenizer", "tokenizer_2")]
    encoders = [load_pretrained(CLIPTextModelWithProjection.from_pretrained, model, what=what, subfolder=sub,
                                torch_dtype=torch_dtype, **kw) for sub in ("text_encoder", "text_encoder_2")]
    if t5:
        from transformers import T5EncoderModel, T5TokenizerFast

        tokenizers.append(load_pretrained(T5TokenizerFast.from_pretrained, model, what=what, subfolder="tokenizer_3",
                                          **kw))
        encoders.append(load_pretrained(T5EncoderModel.from_pretrained, model, what=what, subfolder="text_encoder_3",
                                        torch_dtype=torch_dtype, **kw))
    vae = load_pretrained(AutoencoderKL.from_pretrained, model, what=what, subfolder="vae", torch_dtype=torch_dtype,
                          **kw)
    transformer = load_pretrained(SD3Transformer2DModel.from_pretrained, model, what=what, subfolder="transformer",
                                  torch_dtype=torch_dtype, **kw)
    log.info("Loaded %s from %s (%s%s)", model, "local directory" if is_local_path(model) else "the HF hub/cache",
             torch_dtype, "" if t5 else ", no T5: zero T5 tokens")
    config = {**SD3_SCHEDULER_DEFAULTS, **{k: v for k, v in scheduler.config.items() if not k.startswith("_")}}
    if shift is not None:
        config["shift"] = float(shift)
    backbone = SD3Backbone(transformer=transformer, vae=vae, text_encoders=encoders, tokenizers=tokenizers,
                           scheduler_config=config, model_id=model, dtype=torch_dtype, t5_max_length=t5_max_length)
    return backbone.to(device).freeze()


def tiny_sd3(seed: int = 0, dtype: str = "auto", device: str | torch.device = "cpu", model: str = "tiny-random-sd3",
             t5: bool = True, num_layers: int = 3, dual_attention_layers: tuple[int, ...] = (0,),
             heads: int = 2, head_dim: int = 8, text_dim: int = 16, t5_max_length: int = 16,
             shift: float = SD3_SCHEDULER_DEFAULTS["shift"]) -> SD3Backbone:
    """A random SD3.5-Medium-shaped backbone (joint blocks, a dual-attention block, RMS qk-norm, 16 latent
    channels, CLIP-L/G and a tiny T5) that runs a 64² image in milliseconds. All offline: the text encoders
    use the byte-level tokenizer of `stylex.backbones.tokenizer` (T5 included; token ids only need to exist).
    """
    from diffusers import AutoencoderKL, SD3Transformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, T5Config, T5EncoderModel

    from stylex.backbones.tokenizer import TINY_CLIP_VOCAB_SIZE, tiny_clip_tokenizer

    device = torch.device(device)
    torch_dtype = resolve_dtype(dtype, device)
    torch.manual_seed(seed)
    joint_dim = 2 * text_dim  # CLIP-L | CLIP-G hidden states side by side, as wide as T5's (no padding needed)
    transformer = SD3Transformer2DModel(
        sample_size=16, patch_size=2, in_channels=16, out_channels=16, num_layers=num_layers,
        attention_head_dim=head_dim, num_attention_heads=heads, joint_attention_dim=joint_dim,
        caption_projection_dim=heads * head_dim, pooled_projection_dim=2 * text_dim, pos_embed_max_size=32,
        dual_attention_layers=tuple(dual_attention_layers), qk_norm="rms_norm",
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=16, norm_num_groups=8, layers_per_block=1,
        sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
        # SD3's VAE has 1.5305 / 0.0609; these give this random VAE roughly unit-scale latents
        scaling_factor=4.0, shift_factor=0.05,
    )
    clip = CLIPTextConfig(vocab_size=TINY_CLIP_VOCAB_SIZE, hidden_size=text_dim, intermediate_size=37,
                          projection_dim=text_dim, num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=CLIP_MAX_LENGTH, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    encoders: list[Any] = [CLIPTextModelWithProjection(clip), CLIPTextModelWithProjection(clip)]
    tokenizers: list[Any] = [tiny_clip_tokenizer(), tiny_clip_tokenizer()]
    if t5:
        encoders.append(T5EncoderModel(T5Config(
            vocab_size=TINY_CLIP_VOCAB_SIZE, d_model=joint_dim, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=1, eos_token_id=1)))
        tokenizers.append(tiny_clip_tokenizer(t5_max_length))
    if torch_dtype != torch.float32:
        for module in (transformer, vae, *encoders):
            module.to(torch_dtype)
    backbone = SD3Backbone(transformer=transformer, vae=vae, text_encoders=encoders, tokenizers=tokenizers,
                           scheduler_config={**SD3_SCHEDULER_DEFAULTS, "shift": float(shift)}, model_id=model,
                           dtype=torch_dtype, t5_max_length=t5_max_length)
    return backbone.to(device).freeze()
