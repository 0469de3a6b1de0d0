"""Image/text embedders for the DINO and CLIP scores: thin wrappers over transformers models.

A DINO or CLIP score only needs "images -> embeddings" (and "texts -> embeddings"), so the metrics take any
callable; these classes are the real ones (`facebook/dinov2-base`, `openai/clip-vit-large-patch14`) and their
tiny random twins. transformers is imported lazily: the other metrics do not need it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from stylex.backbones.hub import load_pretrained
from stylex.metrics import preprocess

DINO_MODEL_ID = "facebook/dinov2-base"
CLIP_MODEL_ID = "openai/clip-vit-large-patch14"


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


class DINOEmbedder(nn.Module):
    """DINOv2 CLS embedding (`pooler_output`: the final-layernormed CLS token) of the image at `size`² (the view
    gives it there already: the processor's 256 resize + 224 crop, or stylex's whole image)."""

    def __init__(self, model: nn.Module, size: int = 224) -> None:
        super().__init__()
        self.model, self.size = model.eval(), size

    def describe_input(self) -> str:
        return f"DINOv2 CLS at {self.size}x{self.size} (bicubic to it from any other size), ImageNet mean/std"

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        px = preprocess.dino_input(images.to(_device(self.model)), self.size)
        return self.model(pixel_values=px).pooler_output


def load_dino(model_id: str = DINO_MODEL_ID, *, size: int = 224, config_key: str = "metrics.weights.dino",
              **kw: Any) -> DINOEmbedder:
    from transformers import Dinov2Model

    model = load_pretrained(Dinov2Model.from_pretrained, model_id, what="DINOv2 (DINO score)",
                            config_key=config_key, **kw)
    return DINOEmbedder(model, size)


def tiny_dino(seed: int = 0, size: int = 56) -> DINOEmbedder:
    """A 2-layer, 32-wide random DINOv2 with the real model's structure (patch 14)."""
    from transformers import Dinov2Config, Dinov2Model

    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                       image_size=size, patch_size=14)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DINOEmbedder(Dinov2Model(cfg), size)


class CLIPEmbedder(nn.Module):
    """CLIP's projected image and text embeddings (what CLIP-I / CLIP-T compare).

    Images: bicubic to the vision tower's own size (224 for ViT-L/14) with CLIP's mean/std.
    Texts: the model's tokenizer, padded/truncated to the text tower's 77 positions.
    """

    def __init__(self, model: nn.Module, tokenizer: Any | None = None) -> None:
        super().__init__()
        self.model, self.tokenizer = model.eval(), tokenizer
        self.size = int(model.config.vision_config.image_size)
        self.max_length = int(model.config.text_config.max_position_embeddings)

    def describe_input(self) -> str:
        return f"CLIP image tower at {self.size}x{self.size} (bicubic to it from any other size), CLIP mean/std"

    @torch.no_grad()
    def embed_images(self, images: Tensor) -> Tensor:
        px = preprocess.clip_input(images.to(_device(self.model)), self.size)
        pooled = self.model.vision_model(pixel_values=px).pooler_output
        return self.model.visual_projection(pooled)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> Tensor:
        if self.tokenizer is None:
            raise ValueError("this CLIPEmbedder has no tokenizer; pass one to embed texts")
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt").to(_device(self.model))
        pooled = self.model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).pooler_output
        return self.model.text_projection(pooled)

    def forward(self, images: Tensor) -> Tensor:
        return self.embed_images(images)


def load_clip(model_id: str = CLIP_MODEL_ID, *, config_key: str = "metrics.weights.clip", **kw: Any) -> CLIPEmbedder:
    from transformers import CLIPModel, CLIPTokenizer

    what = "CLIP (CLIP-I / CLIP-T scores)"
    model = load_pretrained(CLIPModel.from_pretrained, model_id, what=what, config_key=config_key, **kw)
    tokenizer = load_pretrained(CLIPTokenizer.from_pretrained, model_id, what=what + " tokenizer",
                                config_key=config_key)
    return CLIPEmbedder(model, tokenizer)


def tiny_clip(seed: int = 0, image_size: int = 32) -> CLIPEmbedder:
    """A 2-layer, 32-wide random CLIP with the offline byte-level tokenizer the tiny backbones use
    (stylex.backbones.tokenizer: one tokenizer for every tiny CLIP text tower)."""
    from transformers import CLIPConfig, CLIPModel

    from stylex.backbones.tokenizer import TINY_CLIP_VOCAB_SIZE, tiny_clip_tokenizer

    tokenizer = tiny_clip_tokenizer()
    bos, eos = tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    text = dict(vocab_size=TINY_CLIP_VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=77, bos_token_id=bos, eos_token_id=eos,
                pad_token_id=eos)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=image_size, patch_size=8)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CLIPEmbedder(CLIPModel(cfg), tokenizer)
