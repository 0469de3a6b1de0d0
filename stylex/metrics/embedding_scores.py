"""Cosine scores between embeddings: DINO (stylized vs content), CLIP-I (stylized vs content), CLIP-T
(stylized vs the style's text). The embedders are injected: any callable images -> [B, D] works."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from stylex.errors import InputError
from stylex.metrics.base import Metric, PairBatch, PerImageMetric


def _describe(obj: object) -> str:
    fn = getattr(obj, "describe_input", None)
    return fn() if callable(fn) else ""


class DINOScore(PerImageMetric):
    """cos(DINO(stylized), DINO(content)); default embedder: facebook/dinov2-base CLS (see embedders.load_dino)."""

    name = "dino"
    higher_is_better = True
    needs = "content"

    def __init__(self, embed: Callable[[Tensor], Tensor]) -> None:
        self.embed = embed
        super().__init__()

    def describe_input(self) -> str:
        return _describe(self.embed)

    def score(self, stylized: Tensor, reference: Tensor) -> Tensor:
        return F.cosine_similarity(self.embed(stylized).double(), self.embed(reference).double(), dim=-1)


class CLIPImageScore(DINOScore):
    """cos(CLIP(stylized), CLIP(content)) of the projected image embeddings (openai/clip-vit-large-patch14)."""

    name = "clip_i"

    def __init__(self, clip: object) -> None:
        super().__init__(getattr(clip, "embed_images", clip))  # a CLIPEmbedder or any images->[B,D] callable
        self.clip = clip

    def describe_input(self) -> str:
        return _describe(self.clip)


class CLIPTextScore(Metric):
    """cos(CLIP image embedding of the stylized image, CLIP text embedding of its style's text).

    The text comes with each pair (a `{style}.txt` beside the style image, see pairing.py); `template`
    (e.g. "a painting in the style of {style}") makes one from the style's name when there is none.
    """

    name = "clip_t"
    higher_is_better = True
    per_image = True

    def __init__(self, clip: object, template: str | None = None) -> None:
        self.clip, self.template = clip, template
        super().__init__()

    def reset(self) -> None:
        self.values: list[Tensor] = []

    def describe_input(self) -> str:
        return _describe(self.clip)

    def texts_for(self, batch: PairBatch) -> list[str]:
        texts = list(batch.style_texts) if batch.style_texts is not None else [None] * len(batch)
        ids = list(batch.style_ids) if batch.style_ids is not None else [None] * len(batch)
        names = (list(batch.style_names) if batch.style_names is not None
                 else [None if sid is None else Path(sid).stem for sid in ids])
        out, missing = [], []
        for text, sid, name in zip(texts, ids, names):
            if text is None and self.template is not None and name is not None:
                text = self.template.format(style=name.replace("_", " "))
            if text is None:
                missing.append(str(sid))
            out.append(text)
        if missing:
            raise InputError(
                f"CLIP-T compares each output with its style's text, but these styles have none: "
                f"{', '.join(sorted(set(missing))[:5])}. Put the text in a .txt file with the same name beside each "
                f"style image (e.g. monet.png + monet.txt), set `metrics.clip_t.template` (e.g. "
                f"'a painting in the style of {{style}}'), or leave clip_t out of `metrics.names`.")
        return out  # type: ignore[return-value]

    def score_texts(self, stylized: Tensor, texts: Sequence[str]) -> Tensor:
        img = self.clip.embed_images(stylized).double()  # type: ignore[attr-defined]
        txt = self.clip.embed_texts(list(texts)).double().to(img.device)  # type: ignore[attr-defined]
        return F.cosine_similarity(img, txt, dim=-1)

    def update(self, batch: PairBatch) -> Tensor:
        with torch.no_grad():
            vals = self.score_texts(batch.stylized, self.texts_for(batch)).detach().cpu().reshape(-1)
        self.values.append(vals)
        return vals

    def compute(self) -> float:
        return float(torch.cat(self.values).mean()) if self.values else float("nan")
