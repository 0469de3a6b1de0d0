"""HAM on SD3/3.5 (METHODS.md 4, 0.4) on a tiny random SD3.5-Medium-shaped MM-DiT."""
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from stylex.backbones.sd3 import tiny_sd3
from stylex.data.datamodule import ImageRef, Item
from stylex.diffusion.flow import FlowTrajectory, flow_sigmas, flow_timesteps
from stylex.diffusion.joint_attention import HAMJointEditor, joint_sdpa, remove_joint_control
from stylex.errors import ConfigError
from stylex.methods.ham import HAM

CONFIGS = Path(__file__).parents[3] / "configs"
ATTN2 = "transformer_blocks.0.attn2"  # tiny SD3's one dual-attention block (SD3.5-Medium has 13)
METHOD_SD3 = OmegaConf.load(CONFIGS / "method" / "ham_sd3.yaml")
SD3_KW = {"gar_layers": tuple(METHOD_SD3.gar_layers), "lat_layers": tuple(METHOD_SD3.lat_layers)}


@pytest.fixture(scope="module")
def sd3():
    return tiny_sd3(seed=0)


@pytest.fixture
def method(sd3):
    def build(**kwargs):
        m = HAM(show_progress=False, **{**SD3_KW, "num_steps": 3, "guidance_scale": 4.5, **kwargs})
        m.use_backbone(sd3)
        return m

    yield build
    remove_joint_control(sd3.transformer)


def latents(n, seed, size=8):
    return torch.randn(n, 16, size, size, generator=torch.Generator().manual_seed(seed))


def trajectory(bb, n, seed, steps=3):
    """A made-up trajectory on the sampler's grid (teachers replay whatever they are given)."""
    sigmas = flow_sigmas(bb.scheduler_config, steps)
    timesteps = torch.cat([flow_timesteps(bb.scheduler_config, steps), torch.zeros(1)])
    return FlowTrajectory(sigmas, timesteps, [latents(n, seed + i) for i in range(steps + 1)])


def rows(cond, index):
    return cond[0][index], cond[1][index]


def item(seed, size=(64, 64)):
    g = torch.Generator().manual_seed(seed)
    return Item("a", ImageRef(Path("a"), "a", "c-a"), [ImageRef(Path("s"), "s", "s")], "hash", 0,
                torch.rand(3, *size, generator=g), [torch.rand(3, 48, 80, generator=g)])


def spy_denoise(monkeypatch, bb):
    calls = []
    denoise = bb.denoise

    def spy(x, t, cond):
        out = denoise(x, t, cond)
        calls.append((x, t, cond, out))
        return out

    monkeypatch.setattr(bb, "denoise", spy)
    return calls


def test_layers_gar_on_joint_and_image_only_attn2_lat_on_joint(method):
    m = method()
    assert m.family.name == "sd3"
    joint = [f"transformer_blocks.{i}.attn" for i in range(3)]
    assert m.gar_layers == [joint[0], ATTN2, *joint[1:]] and m.lat_layers == joint
    assert m.control.layers == m.gar_layers
    m = method(gar_attn2=False)
    assert m.gar_layers == joint and ATTN2 not in m.control.layers
    m = method(gar_layers=(), lat_layers=("transformer_blocks.1",))
    assert m.gar_layers == [] and m.lat_layers == m.control.layers == [joint[1]]


def test_teachers_get_unmodified_attention_through_the_whole_run(method, monkeypatch):
    m = method(prompt="a photo", style_prompt="a painting")
    bb = m.backbone
    content, style = trajectory(bb, 2, 0), trajectory(bb, 1, 10)
    calls = spy_denoise(monkeypatch, bb)
    m.transfer(content, style, [0, 0])
    monkeypatch.undo()
    layout = m.layout(2, 1)  # [uncond | cond] x [content 2 | style 1 | student 2]
    assert layout.guided and len(calls) == 3 and layout.total == 10
    remove_joint_control(bb.transformer)  # diffusers' own processors from here on
    teachers = [0, 1, 2, 5, 6, 7]
    for i, (x, t, cond, out) in enumerate(calls):
        assert t == content.timestep(i)
        assert torch.equal(x[[0, 1, 5, 6]], torch.cat([content[i]] * 2)) and torch.equal(x[[2, 7]], style[i].repeat(2, 1, 1, 1))
        plain = bb.denoise(x, t, cond)
        assert torch.allclose(out[teachers], plain[teachers], atol=1e-5)
        assert not torch.allclose(out[[3, 4, 8, 9]], plain[[3, 4, 8, 9]], atol=1e-3)  # the student is modulated


def test_branch_prompts_unconditional_half_then_content_style_student(method, monkeypatch):
    m = method(prompt="a photo", style_prompt="a painting", num_steps=1)
    bb = m.backbone
    text = bb.embed_prompt(["", "a photo", "a painting"])
    calls = spy_denoise(monkeypatch, bb)
    m.transfer(trajectory(bb, 2, 20, 1), trajectory(bb, 1, 30, 1), [0, 0])
    ((_, _, (embeds, pooled), _),) = calls
    for r, i in enumerate([0] * 5 + [1, 1, 2, 1, 1]):
        assert torch.equal(embeds[r], text.embeds[i]) and torch.equal(pooled[r], text.pooled[i])


def test_alpha_beta_gamma_one_without_text_transplant_is_plain_cfg_flow_sampling(method):
    """METHODS.md 4: the student of HAM with α = β = γ = 1 is plain CFG sampling from the content's inverted noise.
    Written with diffusers' FlowMatchEulerDiscreteScheduler and the inversion of METHODS.md 0.4, through
    `predict_step` (encode, invert, sample, decode)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    steps, scale = 3, 4.5
    m = method(alpha=1.0, beta=1.0, gamma=1.0, transplant_text_kv=False, prompt="a cat", num_steps=steps)
    bb = m.backbone
    x = item(1)
    (result,) = m.predict_step([x])
    assert result.info["backbone_family"] == "sd3" and result.info["lat_kv_transplant"] is False
    assert result.info["timesteps"] == flow_timesteps(bb.scheduler_config, steps).tolist()

    remove_joint_control(bb.transformer)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(bb.scheduler_config)
    scheduler.set_timesteps(steps)
    sigmas = scheduler.sigmas
    empty, text = bb.embed_prompt([""]), bb.embed_prompt(["", "a cat"])
    z = bb.encode(x.content_image[None])
    for i in range(steps - 1, -1, -1):  # z_i = z_{i+1} + (σ_i − σ_{i+1})·v(z_{i+1}, σ_{i+1}·1000)
        z = z + (sigmas[i] - sigmas[i + 1]) * bb.denoise(z, sigmas[i + 1] * 1000, empty)
    noise = z
    for t in scheduler.timesteps:
        u, c = bb.denoise(torch.cat([z, z]), t, text).chunk(2)
        z = scheduler.step(u + scale * (c - u), t, z).prev_sample
    expected = bb.decode(z)[0]
    assert torch.allclose(result.image, expected, atol=1e-4), (result.image - expected).abs().max()

    # and the modulation is real: the default weights, or the text K/V transplant alone, move the student away
    content, style = m.family.invert(x.content_image[None], x.style_images, steps)
    assert torch.allclose(content.noise, noise, atol=1e-4)
    transplant = method(alpha=1.0, beta=1.0, gamma=1.0, prompt="a cat", num_steps=steps).transfer(content, style, [0])
    assert not torch.allclose(transplant, z, atol=1e-3)
    default = method(prompt="a cat", num_steps=steps).transfer(content, style, [0])
    assert not torch.allclose(default, z, atol=1e-3)


def _hand_adain(x, y):
    mx, my = x.mean(-2, keepdim=True), y.mean(-2, keepdim=True)
    sx = ((x - mx) ** 2).mean(-2, keepdim=True).add(1e-5).sqrt()
    sy = ((y - my) ** 2).mean(-2, keepdim=True).add(1e-5).sqrt()
    return (x - mx) / sx * sy + my


@pytest.mark.parametrize("gar_attn2", [True, False])
def test_gar_on_the_image_only_attn2(method, monkeypatch, gar_attn2):
    alpha = 0.6
    m = method(alpha=alpha, gar_attn2=gar_attn2)
    bb = m.backbone
    seen = []
    attend = HAMJointEditor.attend_joint

    def spy(editor, call):
        out = attend(editor, call)
        seen.append((call, out))
        return out

    monkeypatch.setattr(HAMJointEditor, "attend_joint", spy)
    m.transfer(trajectory(bb, 1, 40), trajectory(bb, 1, 50), [0])
    on_attn2 = [(call, out) for call, out in seen if call.layer == ATTN2]
    assert len(seen) == 3 * len(m.control.layers)  # every edited layer, once per step (both CFG halves at once)
    if not gar_attn2:
        assert on_attn2 == []  # no processor there: diffusers' own attention
        return
    assert len(on_attn2) == 3
    for call, (out, none) in on_attn2:
        assert none is None and not call.is_joint
        layout = m.layout(1, 1)
        q, k, v, got, plain = (layout.split(x) for x in (call.q_img, call.k_img, call.v_img, out, joint_sdpa(call)[0]))
        gar = lambda x: alpha * x["student"] + (1 - alpha) * _hand_adain(x["content"], x["style"])  # noqa: E731
        weights = torch.softmax(gar(q) @ gar(k).transpose(-1, -2) / q["student"].shape[-1] ** 0.5, -1)
        assert torch.allclose(got["student"], weights @ gar(v), atol=1e-5)
        assert not torch.allclose(got["student"], plain["student"], atol=1e-3)
        for teacher in ("content", "style"):
            assert torch.allclose(got[teacher], plain[teacher], atol=1e-6)


def test_edits_only_inside_the_timestep_range(method, monkeypatch):
    bb = method().backbone
    grid = flow_timesteps(bb.scheduler_config, 3).tolist()  # t = σ·1000: 1000, 751.1, 8.9 for shift 3
    assert grid[0] > 900 and 500 <= grid[1] <= 900 and grid[2] < 500 and grid[1] != int(grid[1])
    # float bounds: a window of ±0.05 around the fractional middle timestep (truncated to ints it holds none)
    windows = (((500, 900), [False, True, False]), ((grid[1] - 0.05, grid[1] + 0.05), [False, True, False]),
               ((grid[1] + 0.01, 900), [False, False, False]))
    for t_range, edited in windows:
        m = method(t_range=t_range)
        active = []
        denoise = bb.denoise
        monkeypatch.setattr(bb, "denoise", lambda x, t, c: (active.append((t, type(m.control.editor).__name__)),
                                                            denoise(x, t, c))[1])
        m.transfer(trajectory(bb, 1, 60), trajectory(bb, 1, 70), [0])
        monkeypatch.undo()
        names = ["HAMJointEditor" if e else "Editor" for e in edited]
        assert active == list(zip(grid, names)), t_range
        assert m.t_range == (float(t_range[0]), float(t_range[1]))


def test_branch_latents_are_the_vae_posterior_mean(sd3):
    """METHODS.md 0.4: SD3 latents = (vae.encode(x).latent_dist.mean − shift_factor)·scaling_factor, whatever the
    global random state (a drawn `.sample()` would change with it)."""
    from stylex.diffusion.sampling import encode_branches

    g = torch.Generator().manual_seed(4)
    contents, refs = torch.rand(1, 3, 64, 64, generator=g), [torch.rand(3, 64, 64, generator=g)]
    torch.manual_seed(0)
    first = encode_branches(sd3, contents, refs)
    torch.manual_seed(1)
    assert torch.equal(first, encode_branches(sd3, contents, refs))
    with torch.no_grad():
        posterior = sd3.vae.encode(torch.cat([contents, refs[0][None]]) * 2 - 1).latent_dist
    shift, scale = sd3.vae.config.shift_factor, sd3.vae.config.scaling_factor
    assert torch.allclose(first, (posterior.mean - shift) * scale, atol=1e-6)
    assert not torch.allclose(first, (posterior.sample() - shift) * scale, atol=1e-3)


def test_branch_previews_on_sd3(method, monkeypatch):
    wandb = pytest.importorskip("wandb")
    m = method(num_steps=2, log_timesteps=2)
    monkeypatch.setattr(m, "wants_previews", lambda: True)  # as in a run
    monkeypatch.setattr(m, "wants_wandb", lambda: True)
    (result,) = m.predict_step([item(2, (64, 96))])
    image = result.artifacts["wandb"]["branches"]
    assert result.artifacts["files"]["branches"].size == (2 * 96, 3 * 64)  # saved as overlays/{name}.branches.png
    assert isinstance(image, wandb.Image) and image.image.size == (2 * 96, 3 * 64)  # columns: steps, rows: branches
    grid = flow_timesteps(m.backbone.scheduler_config, 2).tolist()
    assert f"t = {grid[0]:g}, {grid[1]:g}" in image._caption


def test_family_mismatches_are_config_errors(sd3, tiny_backbone):
    with pytest.raises(ConfigError, match="transformer_blocks"):  # SD2.1's UNet layer names on an MM-DiT
        HAM().use_backbone(sd3)
    with pytest.raises(ConfigError, match="transplant_text_kv applies to SD3"):
        HAM(transplant_text_kv=False).use_backbone(tiny_backbone)
    remove_joint_control(sd3.transformer)


def test_sd35_large_like_backbone_has_no_attn2_and_runs():
    bb = tiny_sd3(seed=0, t5=False, num_layers=2, dual_attention_layers=())
    m = HAM(show_progress=False, **SD3_KW, num_steps=1, guidance_scale=3.5)
    m.use_backbone(bb)
    assert m.gar_layers == m.lat_layers == ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]
    out = m.transfer(trajectory(bb, 1, 80, 1), trajectory(bb, 1, 90, 1), [0])
    assert out.shape == (1, 16, 8, 8) and torch.isfinite(out).all()


def test_experiments_compose_with_the_model_cards_steps_and_cfg():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        medium = compose("run", overrides=["experiment=ham_sd35"])
        large = compose("run", overrides=["experiment=ham_sd35_large"])
        smoke = compose("run", overrides=["experiment=ham_sd35", "debug=smoke"])
        sd21 = compose("run", overrides=["experiment=ham_sd21"])
    for cfg, model, steps, scale in ((medium, "3.5-medium", 40, 4.5), (large, "3.5-large", 28, 3.5)):
        assert cfg.method._target_ == "stylex.methods.ham.HAM" and cfg.backbone.family == "sd3"
        assert cfg.backbone.model.endswith(model) and cfg.method.num_steps == steps
        assert cfg.method.guidance_scale == scale and cfg.method.transplant_text_kv and cfg.method.gar_attn2
        assert list(cfg.method.gar_layers) == ["transformer_blocks"] and cfg.method.alpha == 0.75
    assert smoke.tiny_models and smoke.method.num_steps == 4 and smoke.data.resolution == 128
    assert sd21.method.num_steps == 50 and "transplant_text_kv" not in sd21.method  # SD2.1 unchanged


def test_temperature_scales_the_students_joint_logits_only():
    from stylex.diffusion.attention import sdpa
    from stylex.diffusion.joint_attention import JointAttnCall

    layout = HAM(guidance_scale=1.0).layout(1, 1)
    g = torch.Generator().manual_seed(3)
    img = [torch.randn(3, 2, 6, 4, generator=g) for _ in range(3)]
    txt = [torch.randn(3, 2, 5, 4, generator=g) for _ in range(3)]
    call = JointAttnCall("transformer_blocks.0.attn", *img, *txt)
    # α = β = 1 and no transplant: the student's own joint attention, its logits times the temperature
    editor = HAMJointEditor(layout, [0], alpha=1.0, beta=1.0, transplant_text_kv=False, temperature=2.0)
    out = torch.cat(editor.attend_joint(call), dim=-2)
    whole = call.as_attn_call()
    assert torch.allclose(out[2], sdpa(whole.q, whole.k, whole.v, 2.0)[2], atol=1e-6)
    assert torch.allclose(out[:2], sdpa(whole.q, whole.k, whole.v)[:2], atol=1e-6)  # teachers: no temperature
    assert not torch.allclose(out[2], sdpa(whole.q, whole.k, whole.v)[2], atol=1e-3)
