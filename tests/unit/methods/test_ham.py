import logging
from pathlib import Path

import pytest
import torch

import stylex.methods.ham as ham_module
from stylex.data.datamodule import ImageRef, Item
from stylex.diffusion.adain import adain_latent
from stylex.diffusion.attention import Editor, remove_control
from stylex.diffusion.ddim import ddim_invert
from stylex.methods.ham import HAM, branch_grid

EVERY_BLOCK = ("down_blocks", "mid_block", "up_blocks")


@pytest.fixture
def method(tiny_backbone):
    def build(**kwargs):
        m = HAM(show_progress=False, **{"num_steps": 3, **kwargs})
        m.use_backbone(tiny_backbone)
        return m

    yield build
    remove_control(tiny_backbone.unet)


def latents(n, seed, size=16):
    return torch.randn(n, 4, size, size, generator=torch.Generator().manual_seed(seed))


def trajectories(n, seed, grid=(1, 334, 667)):
    return {t: latents(n, seed + t) for t in (0, *grid)}


def test_sini_is_the_student_init(method, monkeypatch):
    m = method(gamma=0.3)
    zc, zs = trajectories(2, 0), trajectories(2, 100)
    seen = {}
    monkeypatch.setattr(ham_module, "sample_branches", lambda predict, layout, students, *a, **k:
                        seen.update(students) or students)
    m.transfer(zc, zs, [1, 0])
    style = zs[667][[1, 0]]
    assert torch.allclose(seen["student"], 0.3 * zc[667] + 0.7 * adain_latent(zc[667], style), atol=1e-6)


def test_teacher_branches_equal_unmodified_unet_with_cfg(method):
    m = method(style_prompt="a painting")
    bb = m.backbone
    zc, zs, zm = latents(2, 1), latents(1, 2), latents(2, 3)
    layout = m.layout(2, 1)
    assert layout.guided
    text = bb.embed_prompt(["", "a photo", "a painting"])
    cond = layout.conditioning(text[:1], {"content": text[1:2], "student": text[1:2], "style": text[2:3]})
    x = layout.expand({"content": zc, "style": zs, "student": zm})
    with m.control.use(m.editor(layout, [0, 0])):
        edited = bb.denoise(x, 500, cond)
    for half, rows in ((0, slice(0, 5)), (1, slice(5, 10))):
        part = layout.unstack(edited[rows])
        c = text[0:1] if half == 0 else text[1:2]
        s = text[0:1] if half == 0 else text[2:3]
        assert torch.allclose(part["content"], bb.denoise(zc, 500, c), atol=1e-5)
        assert torch.allclose(part["style"], bb.denoise(zs, 500, s), atol=1e-5)
        assert not torch.allclose(part["student"], bb.denoise(zm, 500, c), atol=1e-3)


def test_alpha_beta_gamma_one_is_plain_cfg_sampling_from_the_content_noise(method):
    """Written out with diffusers' DDIMScheduler, not with stylex's sampling loop."""
    from diffusers import DDIMScheduler

    m = method(alpha=1.0, beta=1.0, gamma=1.0, guidance_scale=7.5, prompt="a cat")
    bb = m.backbone
    empty, text = bb.embed_prompt([""]), bb.embed_prompt(["", "a cat"])
    content, style = latents(1, 4), latents(1, 5)
    with m.control.use(Editor()):
        zc = ddim_invert(content, lambda x, t: bb.denoise(x, t, empty), bb.scheduler_config, 3)
        zs = ddim_invert(style, lambda x, t: bb.denoise(x, t, empty), bb.scheduler_config, 3)
    out = m.transfer(zc, zs, [0])

    scheduler = DDIMScheduler.from_config(bb.scheduler_config)
    scheduler.set_timesteps(3)
    x = zc[max(zc)]
    with m.control.use(Editor()):
        for t in scheduler.timesteps:
            u, c = bb.denoise(torch.cat([x, x]), t, text).chunk(2)
            x = scheduler.step(u + 7.5 * (c - u), t, x).prev_sample
    assert torch.allclose(out, x, atol=1e-4), (out - x).abs().max()
    # and the modulation is real: the default weights move the student away from plain sampling
    assert not torch.allclose(method(prompt="a cat").transfer(zc, zs, [0]), x, atol=1e-2)


@pytest.mark.parametrize("lat_layers", [EVERY_BLOCK, ("up_blocks.2",)])
def test_lat_transplant_equals_giving_the_student_the_style_prompt_in_those_layers(method, lat_layers):
    m = method(gar_layers=(), lat_layers=lat_layers, beta=1.0, guidance_scale=1.0, style_prompt="a painting")
    bb = m.backbone
    zc, zs, zm = latents(1, 6), latents(1, 7), latents(1, 8)
    layout = m.layout(1, 1)
    text = bb.embed_prompt(["a photo", "a painting"])
    cond = layout.conditioning(text[:1], {"content": text[:1], "student": text[:1], "style": text[1:]})
    x = torch.cat([zc, zs, zm])
    with m.control.use(m.editor(layout, [0])):
        edited = bb.denoise(x, 400, cond)[2:]

    def style_text_for_student(module, args, kwargs):  # an independent route: swap the layer's input states
        states = kwargs["encoder_hidden_states"].clone()
        states[2] = text[1]
        return args, {**kwargs, "encoder_hidden_states": states}

    hooks = [bb.unet.get_submodule(layer).register_forward_pre_hook(style_text_for_student, with_kwargs=True)
             for layer in m.lat_layers]
    try:
        with m.control.use(Editor()):
            reference = bb.denoise(x, 400, cond)[2:]
    finally:
        for hook in hooks:
            hook.remove()
    assert torch.allclose(edited, reference, atol=1e-5)
    with m.control.use(Editor()):
        own_prompt = bb.denoise(zm, 400, text[:1])
        style_prompt = bb.denoise(zm, 400, text[1:])
    assert not torch.allclose(edited, own_prompt, atol=1e-3)
    if lat_layers == EVERY_BLOCK:  # every cross-attention layer transplanted = the student has the style prompt
        assert len(m.lat_layers) == 10 and torch.allclose(edited, style_prompt, atol=1e-5)
    else:
        assert not torch.allclose(edited, style_prompt, atol=1e-3)


def test_no_style_prompt_warns_that_lat_is_only_a_query_blend(method, caplog):
    with caplog.at_level(logging.WARNING, logger="stylex.methods.ham"):
        method()
    assert "LAT reduces to its query blend" in caplog.text and "style_prompt" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stylex.methods.ham"):
        method(style_prompt="a painting")
    assert "LAT reduces" not in caplog.text


def test_edits_only_inside_the_timestep_range(method, monkeypatch):
    m = method(t_range=(300, 700))
    active = []
    denoise = m.backbone.denoise
    monkeypatch.setattr(m.backbone, "denoise",
                        lambda x, t, c: (active.append((t, type(m.control.editor).__name__)), denoise(x, t, c))[1])
    m.transfer(trajectories(1, 9), trajectories(1, 10), [0])
    assert active == [(667, "ByKind"), (334, "ByKind"), (1, "Editor")]


def test_branch_prompts_unconditional_half_then_content_style_student(method, monkeypatch):
    m = method(prompt="a photo", style_prompt="a painting", num_steps=1)
    text = m.backbone.embed_prompt(["", "a photo", "a painting"])
    conds = []
    denoise = m.backbone.denoise
    monkeypatch.setattr(m.backbone, "denoise", lambda x, t, c: (conds.append(c), denoise(x, t, c))[1])
    m.transfer(trajectories(2, 15, (1,)), trajectories(1, 16, (1,)), [0, 0])
    (cond,) = conds  # [uncond: 5 rows | cond: content 2, style 1, student 2]
    expected = [0] * 5 + [1, 1, 2, 1, 1]
    assert all(torch.equal(cond[r], text[i]) for r, i in enumerate(expected))


def test_predict_step_and_branch_previews(method):
    m = method(num_steps=2)
    g = torch.Generator().manual_seed(11)
    item = Item("a", ImageRef(Path("a"), "a", "c-a"), [ImageRef(Path("s"), "s", "s")], "hash", 0,
                torch.rand(3, 64, 96, generator=g), [torch.rand(3, 64, 64, generator=g)])
    (result,) = m.predict_step([item])
    assert result.image.shape == (3, 64, 96) and 0 <= result.image.min() and result.image.max() <= 1
    assert result.info["method"] == "ham" and result.info["lat_kv_transplant"] is False
    assert result.info["timesteps"] == [501, 1] and result.info["style_size"] == [64, 96]
    assert result.artifacts == {}  # called on its own (not in a run): no preview decodes
    # previews: rows = content teacher, style teacher, student; columns = logged steps
    x0s = [(501, {"content": latents(2, 12, 8), "style": latents(1, 13, 8), "student": latents(2, 14, 8)})]
    previews = [{name: m.backbone.decode(x) for name, x in x0s[0][1].items()}]
    grid = branch_grid(previews, {"content": 1, "style": 0, "student": 1})
    assert grid.shape == (3, 3 * 64, 64)
    assert torch.equal(grid[:, :64], previews[0]["content"][1])
    assert torch.equal(grid[:, 64:128], previews[0]["style"][0]) and torch.equal(grid[:, 128:], previews[0]["student"][1])
    artifacts = m.branch_artifacts(x0s, [0, 0])
    assert len(artifacts) == 2 and artifacts[1]["files"]["branches"].size == (64, 3 * 64)
