"""DINO / CLIP-I / CLIP-T cosines with injected and tiny random embedders (the tiny CLIP uses the backbones'
tokenizer)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stylex.errors import InputError, WeightsError
from stylex.metrics.base import PairBatch
from stylex.metrics.embedding_scores import CLIPImageScore, CLIPTextScore, DINOScore


@pytest.fixture(scope="module")
def clip():  # type: ignore[no-untyped-def]
    from stylex.metrics.embedders import tiny_clip

    return tiny_clip(seed=0)


def test_dino_score_is_the_cosine_of_the_injected_embeddings(images, other_images) -> None:  # type: ignore[no-untyped-def]
    embed = lambda x: x.mean(dim=(2, 3))  # noqa: E731  - any images -> [B, D] callable
    metric = DINOScore(embed)
    got = metric.update(PairBatch(stylized=images, content=other_images))
    want = torch.nn.functional.cosine_similarity(embed(images).double(), embed(other_images).double())
    assert torch.allclose(got, want)
    assert torch.allclose(metric.update(PairBatch(stylized=images, content=images)), torch.ones(4, dtype=torch.float64))


def test_tiny_dino_embeds_whole_images(images) -> None:  # type: ignore[no-untyped-def]
    from stylex.metrics.embedders import tiny_dino

    dino = tiny_dino(seed=0)
    assert dino(images).shape == (4, 32)
    score = DINOScore(dino).update(PairBatch(stylized=images, content=images))
    assert torch.allclose(score, torch.ones(4, dtype=torch.float64), atol=1e-6)


def test_clip_image_score(clip, images, other_images) -> None:  # type: ignore[no-untyped-def]
    metric = CLIPImageScore(clip)
    assert torch.allclose(metric.update(PairBatch(stylized=images, content=images)),
                          torch.ones(4, dtype=torch.float64), atol=1e-6)
    other = metric.update(PairBatch(stylized=images, content=other_images))
    assert torch.all(other.abs() <= 1.0)


def test_clip_text_score_uses_the_style_texts(clip, images) -> None:  # type: ignore[no-untyped-def]
    metric = CLIPTextScore(clip)
    texts = ["a painting in the style of monet", "ukiyo-e print", "pixel art", "a sketch"]
    got = metric.update(PairBatch(stylized=images, style_texts=texts, style_ids=list("abcd")))
    img, txt = clip.embed_images(images).double(), clip.embed_texts(texts).double()
    assert torch.allclose(got, torch.nn.functional.cosine_similarity(img, txt), atol=1e-6)
    assert metric.compute() == pytest.approx(float(got.mean()))


def test_clip_text_score_without_texts(clip, images) -> None:  # type: ignore[no-untyped-def]
    batch = PairBatch(stylized=images, style_texts=[None, "x", None, "y"], style_ids=["s/monet.png", "b", "c.png", "d"])
    with pytest.raises(InputError, match="monet.*metrics.clip_t.template"):
        CLIPTextScore(clip).update(batch)
    metric = CLIPTextScore(clip, template="a painting in the style of {style}")
    assert metric.texts_for(batch)[0] == "a painting in the style of monet"
    assert metric.update(batch).shape == (4,)


def test_tiny_clip_uses_the_backbones_tokenizer(clip) -> None:  # type: ignore[no-untyped-def]
    from stylex.backbones.tokenizer import tiny_clip_tokenizer

    tok = clip.tokenizer
    assert tok is tiny_clip_tokenizer()  # one offline tokenizer for every tiny CLIP text tower
    ids = tok("ab c")["input_ids"]
    cfg = clip.model.config.text_config
    assert ids[0] == cfg.bos_token_id and ids[-1] == cfg.eos_token_id == cfg.pad_token_id and len(ids) == 5
    assert max(tok.get_vocab().values()) < cfg.vocab_size
    a, b, c = clip.embed_texts(["ab c", "ab c", "ab d"])  # pooled at EOS: the same text, the same embedding
    assert torch.allclose(a, b) and not torch.allclose(a, c)


def test_missing_clip_model_is_a_weights_error(tmp_path: Path) -> None:
    from stylex.metrics.embedders import load_clip

    with pytest.raises(WeightsError, match="CLIP.*metrics.weights.clip"):
        load_clip(str(tmp_path / "no-clip-here"))
