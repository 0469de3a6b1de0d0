"""StyleGallery's stage 3 (METHODS.md 2.3) at the method level, against computations written out by hand.

The student's, content's and references' attention tensors are captured with hooks on the UNet's projections
(tests/unit/methods/by_hand.py); masks are sampled by the stated nearest convention; targets are softmaxes over
the matched region's keys. Three content regions (one a fallback at its own temperature) against two references
of different sizes and region counts.
"""
from pathlib import Path

import pytest
import torch

from stylex.matching import Match
from stylex.methods.region_plan import RegionPlan
from stylex.methods.stylegallery import StyleGallery
from tests.unit.methods.by_hand import attention_tensors, grid_of, nearest, softmax_attention

CONFIGS = Path(__file__).parents[3] / "configs"
T = 500


def content_layout(name: str) -> torch.Tensor:
    """8x8 content labels. On the 4x4 grid of up_blocks.2, nearest samples rows/cols 0, 2, 4, 6."""
    labels = torch.zeros(8, 8, dtype=torch.long)
    labels[:, 3:] = 1
    if name == "content_vanishes":
        labels[1::2, 3:] = 2  # odd rows only: no token of region 2 on the 4x4 grid
    else:
        labels[5:, 3:] = 2
    return labels


def reference_layouts(name: str) -> list[torch.Tensor]:
    """Reference 0: 8x8 with 2 regions; reference 1: 8x16 (another grid) with 3 regions."""
    ref0 = torch.zeros(8, 8, dtype=torch.long)
    if name == "style_vanishes":
        ref0[:, 1::2] = 1  # odd columns only: no key of region 1 on the 4x4 grid
    else:
        ref0[3:] = 1
    ref1 = torch.zeros(8, 16, dtype=torch.long)
    ref1[:, 5:11], ref1[:, 11:] = 1, 2
    return [ref0, ref1]


def matches(with_fallback: bool) -> list[Match]:
    third = Match(2, 0, 0, 0.1, 0.1, 0.1, 0.1, True) if with_fallback else Match(2, 1, 0, 1.0, 1.0, 1.0, 1.0, False)
    return [Match(0, 1, 2, 1.0, 1.0, 1.0, 1.0, False), Match(1, 0, 1, 1.0, 1.0, 1.0, 1.0, False), third]


def latents(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x, content = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    refs = [torch.randn(4, 8, 8, generator=g), torch.randn(4, 8, 16, generator=g)]
    return x, content, refs


def method_loss(backbone, settings: dict, x, content, refs, layout: str, with_fallback: bool):
    """The method's loss at T, from its own per-timestep references (clean content and reference latents)."""
    gallery = StyleGallery(show_progress=False, **settings)
    gallery.use_backbone(backbone)
    plan = RegionPlan(matches(with_fallback), [0, 1], content_layout(layout), reference_layouts(layout))
    refs_at_t = gallery.step_references(content, refs, T)
    return gallery, plan, gallery.regional_loss(x, T, refs_at_t, [plan])


def recorded(backbone, x, content, refs):
    """The attention tensors at T of the optimised latent (with gradient), the clean content and each reference."""
    student = attention_tensors(backbone, x, T)
    with torch.no_grad():
        return student, attention_tensors(backbone, content, T), [attention_tensors(backbone, r[None], T) for r in refs]


def hand_loss(backbone, x, content, refs, layout, with_fallback, loss_norm, temperature=1.5,
              fallback_temperature=0.7, content_weight=0.26):
    """Σ_l Σ_pairs w_i · mean_{tokens of i} |O[i] − softmax(s·Q[i] K[j]ᵀ/√d) V[j]| + λ_c Σ_l mean |Q − Q_c|, with
    w_i = n_i/N (layer) or 1 (region); the fallback pair attends to both references' keys at its temperature."""
    student, clean, styles = recorded(backbone, x, content, refs)
    ref_labels = reference_layouts(layout)
    total = 0.0
    for layer, rec in student.items():
        q, out = rec["q"][0], rec["out"][0]
        n = q.shape[1]
        tokens = nearest(content_layout(layout), grid_of(n, (8, 8))).flatten()
        for m in matches(with_fallback):
            i = (tokens == m.content_region).nonzero().flatten()
            if m.fallback:
                k = torch.cat([s[layer]["k"][0] for s in styles], dim=1)
                v = torch.cat([s[layer]["v"][0] for s in styles], dim=1)
                s = fallback_temperature
            else:
                k_all, v_all = styles[m.reference][layer]["k"][0], styles[m.reference][layer]["v"][0]
                labels = ref_labels[m.reference]
                j = nearest(labels, grid_of(k_all.shape[1], tuple(labels.shape))).flatten() == m.style_region
                k, v, s = k_all[:, j], v_all[:, j], temperature
            if not i.numel() or not k.shape[1]:
                continue  # the region has no token on this grid: sparse attention leaves the pair out
            with torch.no_grad():
                target = softmax_attention(q[:, i], k, v, s)
            weight = i.numel() / n if loss_norm == "layer" else 1.0
            total = total + weight * (out[:, i] - target).abs().mean()
        total = total + content_weight * (q - clean[layer]["q"][0]).abs().mean()
    return total


def published_loss(backbone, x, content, refs, layout):
    """The published formula, term for term: Σ_l Σ_pairs L1Loss(O·m_i, SDPA(1.5·Q·m_i, K·m_j, V·m_j)) + 0.26·Σ_l
    L1Loss(Q, Q_c), each L1Loss the mean over all heads, tokens and channels of the layer's full tensors."""
    student, clean, styles = recorded(backbone, x, content, refs)
    ref_labels = reference_layouts(layout)
    total = 0.0
    for layer, rec in student.items():
        q, out = rec["q"], rec["out"]
        m_content = nearest(content_layout(layout), grid_of(q.shape[2], (8, 8))).flatten()
        for m in matches(with_fallback=False):
            k, v = styles[m.reference][layer]["k"], styles[m.reference][layer]["v"]
            labels = ref_labels[m.reference]
            m_style = nearest(labels, grid_of(k.shape[2], tuple(labels.shape))).flatten()
            m_i = (m_content == m.content_region).float()[None, None, :, None]
            m_j = (m_style == m.style_region).float()[None, None, :, None]
            with torch.no_grad():
                target = softmax_attention(1.5 * q * m_i, k * m_j, v * m_j, 1.0)
            total = total + (out * m_i - target).abs().mean()
        total = total + 0.26 * (q - clean[layer]["q"]).abs().mean()
    return total


@pytest.mark.parametrize("loss_norm", ["layer", "region"])
def test_regional_loss_equals_the_hand_written_sum_over_layers_and_pairs(tiny_backbone, loss_norm):
    x, content, refs = latents(0)
    settings = {"loss_norm": loss_norm, "temperature": 1.5, "fallback_temperature": 0.7, "content_weight": 0.26}
    _, _, loss = method_loss(tiny_backbone, settings, x, content, refs, "plain", with_fallback=True)
    expected = hand_loss(tiny_backbone, x, content, refs, "plain", True, loss_norm)
    assert torch.allclose(loss, expected.reshape(1), rtol=1e-5, atol=1e-6)
    other = hand_loss(tiny_backbone, x, content, refs, "plain", True, "region" if loss_norm == "layer" else "layer")
    assert not torch.allclose(expected, other, rtol=1e-3)  # the two normalisations differ on this layout


def test_the_gradient_is_the_gradient_with_a_detached_target(tiny_backbone):
    """d loss / d latent with the target computed under no_grad: a target left in the graph changes it."""
    x, content, refs = latents(1)
    settings = {"temperature": 1.5, "fallback_temperature": 0.7, "content_weight": 0.26}
    x_method = x.clone().requires_grad_(True)
    _, _, loss = method_loss(tiny_backbone, settings, x_method, content, refs, "plain", with_fallback=True)
    (grad,) = torch.autograd.grad(loss.sum(), x_method)
    x_hand = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(hand_loss(tiny_backbone, x_hand, content, refs, "plain", True, "layer"), x_hand)
    assert torch.allclose(grad, expected, rtol=1e-4, atol=1e-7)
    assert grad.abs().max() > 1e-4


@pytest.fixture(scope="module")
def official():
    """The stage-3 settings experiment=gallery_official composes to."""
    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=gallery_official"])
    keys = ("temperature", "content_weight", "mask_mode", "loss_norm", "fallback_temperature", "regional_attention")
    return {k: cfg.method[k] for k in keys}


@pytest.mark.parametrize("layout", ["plain", "style_vanishes", "content_vanishes"])
def test_gallery_official_equals_the_published_formula(tiny_backbone, official, layout):
    """experiment=gallery_official's loss (value and gradient) is the published code's, including a pair whose
    style region, or content region, vanishes on the 4x4 grid (the published code keeps both)."""
    x, content, refs = latents(2)
    x_method = x.clone().requires_grad_(True)
    _, _, loss = method_loss(tiny_backbone, official, x_method, content, refs, layout, with_fallback=False)
    x_hand = x.clone().requires_grad_(True)
    expected = published_loss(tiny_backbone, x_hand, content, refs, layout)
    assert torch.allclose(loss, expected.reshape(1), rtol=1e-5, atol=1e-6)
    (grad,) = torch.autograd.grad(loss.sum(), x_method)
    (expected_grad,) = torch.autograd.grad(expected, x_hand)
    assert torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)


def test_sparse_mode_skips_a_vanished_pair_at_that_layer_and_the_sidecar_says_so(tiny_backbone):
    from stylex.data.datamodule import ImageRef, Item

    x, content, refs = latents(3)
    settings = {"temperature": 1.5, "fallback_temperature": 0.7, "content_weight": 0.26}
    gallery, plan, loss = method_loss(tiny_backbone, settings, x, content, refs, "style_vanishes", with_fallback=True)
    expected = hand_loss(tiny_backbone, x, content, refs, "style_vanishes", True, "layer")
    assert torch.allclose(loss, expected.reshape(1), rtol=1e-5, atol=1e-6)
    coarse = [layer for layer in gallery.layers if layer.startswith("up_blocks.2.")]
    item = Item("cat__paintings", ImageRef(Path("cat.png"), "cat", "c"),
                [ImageRef(Path("wave.png"), "wave", "w"), ImageRef(Path("stars.png"), "stars", "s")], "h", 0)
    out = gallery.output(item, plan, {"notes": []}, [{"notes": []}, {"notes": []}], torch.zeros(3, 64, 64),
                         torch.zeros(1), {}, [T], {})
    assert out.info["loss_norm"] == "layer" and out.info["mask_mode"] == "sparse"
    assert out.info["regions"]["notes"] == [
        f"{layer}: pair content region 1 -> wave region 1 skipped: its style region has no token on the 4x4 grid"
        for layer in coarse]
