import math

import pytest
import torch

from stylex.backbones.sd3 import SD3_SCHEDULER_DEFAULTS
from stylex.diffusion.flow import (branch_conditioning, euler_step, flow_invert, flow_sample, flow_scheduler,
                                   flow_sigmas, flow_timesteps, prepare_flow_teachers, sample_branches_flow)
from stylex.diffusion.sampling import BatchLayout

CONFIG = dict(SD3_SCHEDULER_DEFAULTS)  # shift 3.0
N = 8


def _x() -> torch.Tensor:
    return torch.randn(2, 16, 4, 4, generator=torch.Generator().manual_seed(0))


def test_grid_is_the_schedulers_shifted_grid():
    from diffusers import FlowMatchEulerDiscreteScheduler

    reference = FlowMatchEulerDiscreteScheduler(shift=3.0)
    reference.set_timesteps(N)
    sigmas = flow_sigmas(CONFIG, N)
    assert torch.equal(sigmas, reference.sigmas) and torch.equal(flow_timesteps(CONFIG, N), reference.timesteps)
    assert len(sigmas) == N + 1 and sigmas[0] == 1.0 and sigmas[-1] == 0.0 and bool((sigmas.diff() < 0).all())
    # undoing the shift σ = 3s / (1 + 2s) gives an evenly spaced grid
    s = sigmas[:-1] / (3.0 - 2.0 * sigmas[:-1])
    assert torch.allclose(s.diff(), s.diff()[0].expand(N - 1), atol=1e-5)
    # the shift is a parameter: shift 1 is the unshifted, evenly spaced grid from 1 to 1/1000
    assert torch.allclose(flow_sigmas(CONFIG, N, shift=1.0)[:-1], torch.linspace(1.0, 1e-3, N), atol=1e-6)


def test_euler_step_is_the_schedulers_step():
    scheduler = flow_scheduler(CONFIG, N)
    z, v = _x(), _x().flip(0)
    for i in (0, 3, N - 1):
        scheduler._step_index = i
        expected = scheduler.step(v, scheduler.timesteps[i], z).prev_sample
        assert torch.allclose(euler_step(z, v, scheduler.sigmas[i], scheduler.sigmas[i + 1]), expected, atol=1e-6)


def test_constant_velocity_round_trips_exactly_and_follows_the_straight_line():
    x0, eps = _x(), _x().flip(0)
    velocity = lambda z, t: eps - x0  # noqa: E731  the straight-line flow from x0 to eps
    trajectory = flow_invert(x0, velocity, CONFIG, N)
    sigmas = flow_sigmas(CONFIG, N)
    assert trajectory.num_steps == N and torch.equal(trajectory.sigmas, sigmas)
    for i in range(N + 1):  # z at σ_i is (1 − σ_i)·x0 + σ_i·eps
        assert torch.allclose(trajectory[i], (1 - sigmas[i]) * x0 + sigmas[i] * eps, atol=1e-5)
    assert torch.allclose(trajectory.noise, eps, atol=1e-5) and torch.equal(trajectory.clean, x0)
    assert torch.allclose(flow_sample(trajectory.noise, velocity, CONFIG, N), x0, atol=1e-5)


def test_linear_velocity_field_closed_form_and_call_timesteps():
    lam = 0.7
    x = _x()
    calls: list[float] = []

    def velocity(z, t):
        calls.append(t)
        return lam * z

    trajectory = flow_invert(x, velocity, CONFIG, N)
    sigmas, timesteps = flow_sigmas(CONFIG, N).double(), flow_timesteps(CONFIG, N)
    # inversion evaluates at the less-noisy end of each step: t_n = 0, t_{n-1}, ..., t_1
    assert calls == [0.0] + [float(t) for t in timesteps[1:].flip(0)]
    steps = (sigmas[:-1] - sigmas[1:]).tolist()  # h_i = σ_i − σ_{i+1}
    for i in range(N + 1):  # z_i = Π_{j≥i} (1 + λ h_j) x
        assert torch.allclose(trajectory[i], math.prod(1 + lam * h for h in steps[i:]) * x, atol=1e-5)
    calls.clear()
    back = flow_sample(trajectory.noise, velocity, CONFIG, N)
    assert calls == [float(t) for t in timesteps]  # sampling evaluates at t_0, ..., t_{n-1}
    # Euler there and back is Π (1 − λh)(1 + λh) = Π (1 − λ²h²): close to, not exactly, the identity
    assert torch.allclose(back, math.prod(1 - (lam * h) ** 2 for h in steps) * x, atol=1e-5)
    assert not torch.allclose(back, x, atol=1e-3)


def test_trajectory_is_retrievable_by_timestep_exactly():
    trajectory = flow_invert(_x(), lambda z, t: torch.full_like(z, t / 1000), CONFIG, N)
    for i, t in enumerate(flow_timesteps(CONFIG, N).tolist()):
        assert trajectory.timestep(i) == t and trajectory.at_timestep(t) is trajectory[i]
    assert trajectory.at_timestep(0) is trajectory.clean
    with pytest.raises(KeyError, match="not on this trajectory"):
        trajectory.at_timestep(trajectory.timestep(2) + 1.0)


def test_backbone_euler_sampling_matches_diffusers_sd3_pipeline():
    """Grid, timestep convention (t = σ·1000) and velocity sign agree with diffusers' own SD3 sampler."""
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    from stylex.backbones.sd3 import tiny_sd3

    bb = tiny_sd3(seed=0)
    te, tok = bb.text_encoders, bb.tokenizers
    pipe = StableDiffusion3Pipeline(
        transformer=bb.transformer, scheduler=FlowMatchEulerDiscreteScheduler.from_config(bb.scheduler_config),
        vae=bb.vae, text_encoder=te[0], tokenizer=tok[0], text_encoder_2=te[1], tokenizer_2=tok[1],
        text_encoder_3=te[2], tokenizer_3=tok[2])
    pipe.set_progress_bar_config(disable=True)
    noise = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    steps = 4
    expected = pipe("a cat", height=64, width=64, num_inference_steps=steps, guidance_scale=1.0, latents=noise.clone(),
                    output_type="latent", max_sequence_length=bb.t5_max_length).images
    cond = bb.embed_prompt(["a cat"])
    ours = flow_sample(noise, lambda z, t: bb.denoise(z, t, cond), bb.scheduler_config, steps)
    assert torch.allclose(ours, expected, atol=1e-5)


def test_branch_conditioning_lays_out_uncond_and_each_branch():
    layout = BatchLayout.of(True, content=2, style=1, student=2)
    make = lambda value: (torch.full((1, 3, 4), value), torch.full((1, 5), value))  # noqa: E731
    embeds, pooled = branch_conditioning(layout, make(0.0), {"content": make(1.0), "style": make(2.0),
                                                             "student": make(3.0)})
    expected = torch.tensor([0.0] * 5 + [1.0, 1.0, 2.0, 3.0, 3.0])
    assert embeds.shape == (10, 3, 4) and pooled.shape == (10, 5)
    assert torch.equal(embeds[:, 0, 0], expected) and torch.equal(pooled[:, 0], expected)


def test_branch_sampling_with_identity_ham_is_plain_cfg_sampling_from_the_content_noise():
    """METHODS.md 4: α = β = γ = 1 (and no text K/V transplant) give plain sampling from the content's inverted
    noise; teachers replay their own trajectories exactly."""
    from stylex.backbones.sd3 import tiny_sd3
    from stylex.diffusion.joint_attention import HAMJointEditor, install_joint_control, remove_joint_control

    bb, steps, scale = tiny_sd3(seed=0, t5=False), 3, 2.0
    g = torch.Generator().manual_seed(0)
    contents, reference = torch.rand(1, 3, 64, 64, generator=g), torch.rand(3, 48, 80, generator=g)
    content, style = prepare_flow_teachers(bb, contents, [reference], steps)
    assert content.num_steps == steps and style.noise.shape == content.noise.shape == (1, 16, 8, 8)
    layout = BatchLayout.of(True, content=1, style=1, student=1)
    uncond, prompt = bb.embed_prompt([""]), bb.embed_prompt(["a photo"])
    cond = branch_conditioning(layout, uncond, {"content": prompt, "style": prompt, "student": prompt})
    layers = bb.attention_layers(kind="attn") + bb.attention_layers(kind="attn2", required=False)
    control = install_joint_control(bb.transformer, layers)
    editor = HAMJointEditor(layout, [0], alpha=1.0, beta=1.0, transplant_text_kv=False)
    seen: list[torch.Tensor] = []

    def predict(z, t):
        seen.append(z)
        with control.use(editor):
            return bb.denoise(z, t, cond)

    try:
        out = sample_branches_flow(predict, layout, {"student": content.noise}, {"content": content, "style": style},
                                   bb.scheduler_config, steps, scale)
    finally:
        remove_joint_control(bb.transformer)
    for i, z in enumerate(seen):  # teachers take their stored latent at σ_i, in both guidance halves
        rows = layout.split(z)
        assert torch.equal(rows["content"][1, 0], content[i][0]) and torch.equal(rows["style"][0, 0], style[i][0])

    def plain_cfg(z, t):
        u, c = bb.denoise(torch.cat([z, z]), t, (torch.cat([uncond[0], prompt[0]]),
                                                  torch.cat([uncond[1], prompt[1]]))).chunk(2)
        return u + scale * (c - u)

    expected = flow_sample(content.noise, plain_cfg, bb.scheduler_config, steps)
    assert torch.allclose(out["student"], expected, atol=1e-4)
    with pytest.raises(ValueError, match="another grid"):
        sample_branches_flow(predict, layout, {"student": content.noise}, {"content": content, "style": style},
                             bb.scheduler_config, steps + 1, scale)
