from pathlib import Path

import pytest
import torch

import stylex.methods.styleid as styleid_module
from stylex.data.datamodule import ImageRef, Item
from stylex.diffusion.adain import adain_latent
from stylex.diffusion.attention import Editor, Recorder, remove_control
from stylex.diffusion.editors import StyleIDEditor
from stylex.methods.styleid import StyleID


def make_item(name: str, content: torch.Tensor, style: torch.Tensor, style_name: str = "s") -> Item:
    return Item(name, ImageRef(Path(name), name, "c-" + name), [ImageRef(Path(style_name), style_name, style_name)],
                "hash", 0, content, [style])


@pytest.fixture
def method(tiny_backbone):
    def build(**kwargs):
        m = StyleID(show_progress=False, **{"num_steps": 4, **kwargs})
        m.use_backbone(tiny_backbone)
        return m

    yield build
    remove_control(tiny_backbone.unet)


class Tap(Editor):
    """Wraps an editor and keeps every call and its output per layer."""

    def __init__(self, inner: Editor):
        self.inner = inner
        self.calls = {}

    def attend(self, call):
        out = self.inner.attend(call)
        self.calls[call.layer] = (call, out)
        return out


def latents(n, seed):
    return torch.randn(n, 4, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_teacher_branches_equal_unmodified_unet_and_student_is_edited(method):
    m = method()
    bb = m.backbone
    zc, zs, zm = latents(2, 0), latents(1, 1), latents(2, 2)
    layout = m.layout(2, 1)
    cond = bb.embed_prompt([""])
    with m.control.use(StyleIDEditor(layout, [0, 0], 0.75, 1.5)):
        edited = bb.denoise(torch.cat([zc, zs, zm]), 501, cond)
    plain = bb.denoise(torch.cat([zc, zs, zm]), 501, cond)  # no editor active: plain attention
    assert torch.allclose(edited[:2], bb.denoise(zc, 501, cond), atol=1e-5)
    assert torch.allclose(edited[2:3], bb.denoise(zs, 501, cond), atol=1e-5)
    assert not torch.allclose(edited[3:], plain[3:], atol=1e-3)


def test_gamma_one_temperature_one_uses_the_content_queries_exactly(method):
    m = method(gamma=1.0, temperature=1.0)
    bb = m.backbone
    zc, zs, zm = latents(1, 3), latents(1, 4), latents(1, 5)
    cond = bb.embed_prompt([""])
    with m.control.use(Recorder(("q", "k", "v"))) as rec_c:
        bb.denoise(zc, 251, cond)
    with m.control.use(Recorder(("q", "k", "v"))) as rec_s:
        bb.denoise(zs, 251, cond)
    tap = Tap(StyleIDEditor(m.layout(1, 1), [0], m.gamma, m.temperature))
    with m.control.use(tap):
        bb.denoise(torch.cat([zc, zs, zm]), 251, cond)
    assert set(tap.calls) == set(m.layers) and len(m.layers) == 4
    for layer in m.layers:
        call, out = tap.calls[layer]
        qc, ks, vs = rec_c.records[layer]["q"], rec_s.records[layer]["k"], rec_s.records[layer]["v"]
        expected = torch.softmax(qc @ ks.transpose(-1, -2) / qc.shape[-1] ** 0.5, dim=-1) @ vs
        assert torch.allclose(out[2:3], expected, atol=1e-5), layer
        assert not torch.allclose(call.q[2:3], qc, atol=1e-3)  # the student's own queries were not used


def test_sampling_starts_from_adain_noise_and_injects_above_threshold(method, monkeypatch):
    m = method(inject_until_t=400)
    zc = {t: latents(2, 10 + t) for t in (0, 1, 251, 501, 751)}
    zs = {t: latents(1, 20 + t) for t in (0, 1, 251, 501, 751)}
    seen = {}
    original = styleid_module.sample_branches

    def spy(predict, layout, students, teachers, *args, **kwargs):
        seen["init"] = students["student"]

        def watched(x, t):
            seen.setdefault("editors", []).append((t, type(m.control.editor).__name__ if m.control.editor else None))
            return predict(x, t)

        return original(watched, layout, students, teachers, *args, **kwargs)

    original_denoise = m.backbone.denoise
    monkeypatch.setattr(styleid_module, "sample_branches", spy)
    monkeypatch.setattr(m.backbone, "denoise", lambda x, t, c: (
        seen.setdefault("active", []).append((t, type(m.control.editor).__name__)), original_denoise(x, t, c))[1])
    out = m.transfer(zc, zs, [0, 0])
    assert out.shape == (2, 4, 16, 16)
    assert torch.allclose(seen["init"], adain_latent(zc[751], zs[751].expand(2, -1, -1, -1)), atol=1e-6)
    assert seen["active"] == [(751, "StyleIDEditor"), (501, "StyleIDEditor"), (251, "Editor"), (1, "Editor")]
    m_plain = method(adain_init=False)
    monkeypatch.setattr(styleid_module, "sample_branches", spy)
    m_plain.transfer(zc, zs, [0, 0])
    assert torch.equal(seen["init"], zc[751])


def test_predict_step_batches_items_with_a_shared_style(method):
    m = method(num_steps=2)
    g = torch.Generator().manual_seed(6)
    c1, c2 = torch.rand(3, 64, 64, generator=g), torch.rand(3, 64, 64, generator=g)
    s = torch.rand(3, 48, 80, generator=g)  # another size: resized to the contents' for the shared batch
    results = m.predict_step([make_item("a", c1, s), make_item("b", c2, s)])
    assert [r.item.name for r in results] == ["a", "b"]
    for r in results:
        assert r.image.shape == (3, 64, 64) and r.image.min() >= 0 and r.image.max() <= 1
        assert r.info["method"] == "styleid" and r.info["timesteps"] == [501, 1] and r.info["gamma"] == 0.75
        assert set(r.timings) == {"encode_invert", "sample", "decode"}
    assert not torch.allclose(results[0].image, results[1].image)
    (single,) = m.predict_step([make_item("b", c2, s)])
    assert torch.allclose(single.image, results[1].image, atol=1e-4)  # batching does not change an output
