from pathlib import Path

import pytest

import torch

from stylex.data.datamodule import ImageRef, Item
from stylex.methods.attention_distillation import AttentionDistillation, concat_reference_kv, l1_per_image, style_targets
from stylex.methods.base import group_items
from tests.unit.methods.by_hand import adam, attention_tensors, softmax_attention


def make_item(name: str, content: torch.Tensor, styles: dict[str, torch.Tensor]) -> Item:
    refs = [ImageRef(Path(k), k, k) for k in styles]
    return Item(name, ImageRef(Path(name), name, "c-" + name), refs, "hash", 0, content, list(styles.values()))


def test_style_target_and_losses_match_hand_computation():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 2, 6, 4, generator=g)
    ka, va, kb, vb = (torch.randn(1, 2, 5, 4, generator=g) for _ in range(4))
    refs = [{"L": {"k": ka, "v": va}}, {"L": {"k": kb, "v": vb}}]
    kv = [concat_reference_kv(refs, [0], "L"), concat_reference_kv(refs, [0, 1], "L"), concat_reference_kv(refs, [0], "L")]
    out = style_targets(q, kv, temperature=1.0)

    def hand(qb, k, v):
        return torch.softmax(qb @ k[0].transpose(-1, -2) / 2.0, dim=-1) @ v[0]

    assert torch.allclose(out[0], hand(q[0], ka, va), atol=1e-6)
    assert torch.allclose(out[2], hand(q[2], ka, va), atol=1e-6)
    # several styles: K/V concatenated along the token axis
    k_cat, v_cat = torch.cat([ka, kb], 2), torch.cat([va, vb], 2)
    assert torch.allclose(out[1], hand(q[1], k_cat, v_cat), atol=1e-6)
    a, b = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    b[1] *= 3
    assert l1_per_image(a, b).tolist() == [1.0, 3.0]


def test_ad_loss_is_style_plus_weighted_content_by_hand(tiny_backbone):
    method = AttentionDistillation(content_weight=0.25, show_progress=False)
    method.use_backbone(tiny_backbone)
    g = torch.Generator().manual_seed(1)
    latent, content, style = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(3))
    t = 400
    s_rec = method.record(style, t, ("k", "v"))
    c_rec = method.record(content, t, ("q",))
    x_rec = method.record(latent, t, ("q", "out"))
    expected = 0.0
    for layer in method.layers:
        q, o = x_rec[layer]["q"], x_rec[layer]["out"]
        k, v = s_rec[layer]["k"], s_rec[layer]["v"]
        target = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, -1) @ v
        expected += (o - target).abs().mean() + 0.25 * (q - c_rec[layer]["q"]).abs().mean()
    refs = {"style_kv": {layer: [(s_rec[layer]["k"], s_rec[layer]["v"])] for layer in method.layers},
            "content_q": {layer: c_rec[layer]["q"] for layer in method.layers}}
    assert torch.allclose(method.ad_loss(latent, t, refs), expected.reshape(1), rtol=1e-5)


def test_ad_loss_gradient_is_the_gradient_with_a_detached_target(tiny_backbone):
    """d loss / d latent with SDPA(s·Q, K_s, V_s) computed under no_grad (tensors captured by hooks): a target
    left in the graph would add its own gradient."""
    method = AttentionDistillation(content_weight=0.25, style_temperature=1.0, show_progress=False)
    method.use_backbone(tiny_backbone)
    g = torch.Generator().manual_seed(5)
    latent, content, style = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(3))
    t = 400
    with torch.no_grad():
        s_rec, c_rec = attention_tensors(tiny_backbone, style, t), attention_tensors(tiny_backbone, content, t)
    refs = {"style_kv": {layer: [(s_rec[layer]["k"], s_rec[layer]["v"])] for layer in method.layers},
            "content_q": {layer: c_rec[layer]["q"] for layer in method.layers}}
    x = latent.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(method.ad_loss(x, t, refs).sum(), x)
    x_hand = latent.clone().requires_grad_(True)
    student = attention_tensors(tiny_backbone, x_hand, t)
    expected = 0.0
    for layer, rec in student.items():
        with torch.no_grad():
            target = softmax_attention(rec["q"], s_rec[layer]["k"], s_rec[layer]["v"], 1.0)
        expected = expected + (rec["out"] - target).abs().mean() + 0.25 * (rec["q"] - c_rec[layer]["q"]).abs().mean()
    (hand,) = torch.autograd.grad(expected, x_hand)
    assert torch.allclose(grad, hand, rtol=1e-4, atol=1e-7) and hand.abs().max() > 1e-4


def test_optimisation_starts_from_the_content_latent_with_one_adam_over_the_ddim_grid(tiny_backbone, monkeypatch):
    """METHODS.md 1: init = the content latent (posterior mean · scaling), one Adam (lr 0.05) whose state runs
    across the DDIM grid (3 steps: t = 667, 334, 1), iters_per_step iterations each. The loss is replaced by a
    known function of (latent, t) so the whole trajectory can be written out."""
    g = torch.Generator().manual_seed(2)
    content, style = torch.rand(3, 64, 64, generator=g), torch.rand(3, 64, 64, generator=g)
    weights = torch.rand(1, 4, 8, 8, generator=g) + 0.5
    method = AttentionDistillation(num_steps=3, iters_per_step=2, lr=0.05, show_progress=False)
    method.use_backbone(tiny_backbone)
    seen, decoded = [], []
    monkeypatch.setattr(method, "ad_loss", lambda x, t, refs: (
        seen.append((t, x.detach().clone())), ((x - t / 1000) ** 2 * weights).flatten(1).sum(1))[1])
    decode = tiny_backbone.decode
    monkeypatch.setattr(tiny_backbone, "decode", lambda z: (decoded.append(z.detach().clone()), decode(z))[1])
    (result,) = method.predict_step([make_item("a", content, {"s": style})])
    with torch.no_grad():
        posterior = tiny_backbone.vae.encode(content[None] * 2 - 1).latent_dist
        start = posterior.mean * tiny_backbone.vae.config.scaling_factor
    steps = [667, 667, 334, 334, 1, 1]
    assert [t for t, _ in seen] == steps and result.info["timesteps"] == [667, 334, 1]
    assert torch.allclose(seen[0][1], start, atol=1e-6)
    expected = adam(start, lambda x, t: 2 * (x - t / 1000) * weights, steps, lr=0.05)
    assert torch.allclose(decoded[0], expected, atol=1e-5)


def test_batched_items_share_references_and_match_single_runs(tiny_backbone):
    g = torch.Generator().manual_seed(3)
    c1, c2, s1, s2 = (torch.rand(3, 64, 64, generator=g) for _ in range(4))
    items = [make_item("a", c1, {"s1": s1}), make_item("b", c2, {"s1": s1}), make_item("c", c1, {"s1": s1, "s2": s2})]
    (group,) = group_items(items)
    assert len(group.references) == 2 and group.ref_index == [[0], [0], [0, 1]]
    method = AttentionDistillation(num_steps=3, show_progress=False)
    method.use_backbone(tiny_backbone)
    batched = method.predict_step(items)
    for item, result in zip(items, batched):
        (alone,) = method.predict_step([item])
        # equal up to float reordering in batched convolutions, which Adam's sign-like first steps amplify
        # on the few latent elements whose gradient is ~0: compare on average, not elementwise
        assert (result.image - alone.image).abs().mean() < 2e-3, item.name
        assert result.loss_curve == pytest.approx(alone.loss_curve, rel=1e-3)


def test_early_exit_skips_the_tail_and_changes_nothing(tiny_backbone):
    g = torch.Generator().manual_seed(4)
    latent, style, content = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(3))
    results = {}
    for early in (False, True):
        method = AttentionDistillation(early_exit=early, show_progress=False)
        method.use_backbone(tiny_backbone)
        calls = []
        handle = tiny_backbone.unet.conv_out.register_forward_hook(lambda *a: calls.append(1))
        s, c = method.record(style, 300, ("k", "v")), method.record(content, 300, ("q",))
        handle.remove()
        refs = {"style_kv": {l: [(s[l]["k"], s[l]["v"])] for l in method.layers},
                "content_q": {l: c[l]["q"] for l in method.layers}}
        results[early] = (method.ad_loss(latent, 300, refs), len(calls))
    assert results[False][1] == 2 and results[True][1] == 0  # the output layer never runs with early exit
    assert torch.allclose(results[True][0], results[False][0])
