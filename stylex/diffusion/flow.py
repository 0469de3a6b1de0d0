"""Flow-matching (rectified flow) grids, Euler sampling and Euler inversion for SD3.5 (METHODS.md 0.4).

The grid is the sampler's own: `FlowMatchEulerDiscreteScheduler` (shift 3.0 for SD3.5) gives
σ_0 ≈ 1 > σ_1 > … > σ_{n-1} > σ_n = 0, and the model is called at `t_i = σ_i·1000`. Sampling steps
`z_{i+1} = z_i + (σ_{i+1} − σ_i)·v(z_i, t_i)`; inversion walks the same grid backwards,
`z_i = z_{i+1} + (σ_i − σ_{i+1})·v(z_{i+1}, σ_{i+1}·1000)`, and stores z at every grid point, so sampling
step i finds the teacher latent at σ_i as `trajectory[i]` with no off-by-one indexing.
`sample_branches_flow` runs teachers replaying their trajectories beside students in one batch (HAM on SD3.5),
with the same `BatchLayout` as the DDIM branch sampler.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from stylex.diffusion.sampling import BatchLayout, encode_branches

Velocity = Callable[[Tensor, float], Tensor]  # v(z, t) with t = σ·num_train_timesteps


def flow_scheduler(scheduler_config: dict, num_steps: int, shift: float | None = None) -> Any:
    """The configured `FlowMatchEulerDiscreteScheduler` after `set_timesteps(num_steps)`; `shift` overrides."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    config = dict(scheduler_config)
    if shift is not None:
        config["shift"] = float(shift)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(config)
    scheduler.set_timesteps(num_steps)
    return scheduler


def flow_sigmas(scheduler_config: dict, num_steps: int, shift: float | None = None) -> Tensor:
    """The sampling grid σ_0 … σ_n (n + 1 values, descending, σ_n = 0), fp32."""
    return flow_scheduler(scheduler_config, num_steps, shift).sigmas.float().cpu()


def flow_timesteps(scheduler_config: dict, num_steps: int, shift: float | None = None) -> Tensor:
    """The model timesteps t_i = σ_i·1000 of the n sampling steps (the scheduler's `timesteps`)."""
    return flow_scheduler(scheduler_config, num_steps, shift).timesteps.float().cpu()


def _grid(scheduler_config: dict, num_steps: int, shift: float | None) -> tuple[Tensor, Tensor]:
    """(sigmas [n+1], timesteps [n+1]): the scheduler's own values, with t_n = 0 for the clean end."""
    scheduler = flow_scheduler(scheduler_config, num_steps, shift)
    sigmas = scheduler.sigmas.float().cpu()
    return sigmas, torch.cat([scheduler.timesteps.float().cpu(), torch.zeros(1)])


def euler_step(z: Tensor, velocity: Tensor, sigma: float | Tensor, sigma_next: float | Tensor) -> Tensor:
    """One Euler step of the flow ODE from σ to σ_next (either direction): `z + (σ_next − σ)·v`, in fp32."""
    return z.float() + (float(sigma_next) - float(sigma)) * velocity.float()


@dataclass
class FlowTrajectory:
    """Latents at every grid point: `latents[i]` is z at σ_i (index 0 = noise end, index n = the clean latent)."""

    sigmas: Tensor  # [n + 1], descending, sigmas[-1] = 0
    timesteps: Tensor  # [n + 1], the model timesteps σ_i·1000 exactly as the scheduler gives them; the last is 0
    latents: list[Tensor]  # n + 1 latents, latents[i] at sigmas[i]

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int) -> Tensor:
        return self.latents[i]

    @property
    def num_steps(self) -> int:
        return len(self.latents) - 1

    @property
    def noise(self) -> Tensor:
        """z at σ_0: the start of sampling."""
        return self.latents[0]

    @property
    def clean(self) -> Tensor:
        return self.latents[-1]

    def timestep(self, i: int) -> float:
        """The model timestep at grid point i (σ_i·1000), the value the sampler passes at step i."""
        return float(self.timesteps[i])

    def rows(self, index: slice | list[int] | Tensor) -> "FlowTrajectory":
        """The same trajectory for a subset of the batch (e.g. the contents of a jointly inverted batch)."""
        return FlowTrajectory(self.sigmas, self.timesteps, [z[index] for z in self.latents])

    def at_timestep(self, t: float | Tensor, atol: float = 1e-3) -> Tensor:
        """z at the grid point whose timestep is `t`; a timestep off the grid is an error, never a neighbour."""
        hits = torch.nonzero((self.timesteps.double() - float(t)).abs() <= atol).flatten()
        if len(hits) != 1:
            raise KeyError(f"timestep {float(t):.4f} is not on this trajectory's grid {self.timesteps.tolist()}")
        return self.latents[int(hits[0])]


@torch.no_grad()
def flow_invert(
    latent: Tensor,
    velocity: Velocity,
    scheduler_config: dict,
    num_steps: int,
    shift: float | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> FlowTrajectory:
    """Invert a clean latent to noise along the sampler's grid reversed (METHODS.md 0.4).

    For i = n−1 … 0: `z_i = z_{i+1} + (σ_i − σ_{i+1})·v(z_{i+1}, σ_{i+1}·1000)`; the velocity is taken at the
    current (less noisy) point. `on_step(i, t)` runs after each model call (e.g. to collect recorded features).
    """
    sigmas, timesteps = _grid(scheduler_config, num_steps, shift)
    z = latent.float()
    latents: list[Tensor] = [z] * (num_steps + 1)
    for i in range(num_steps - 1, -1, -1):
        t = float(timesteps[i + 1])
        v = velocity(z, t)
        if on_step is not None:
            on_step(i, t)
        z = euler_step(z, v, sigmas[i + 1], sigmas[i])
        latents[i] = z
    return FlowTrajectory(sigmas=sigmas, timesteps=timesteps, latents=latents)


@torch.no_grad()
def flow_sample(
    noise: Tensor,
    velocity: Velocity,
    scheduler_config: dict,
    num_steps: int,
    shift: float | None = None,
    on_step: Callable[[int, float, Tensor], None] | None = None,
) -> Tensor:
    """Plain Euler sampling from z at σ_0 to σ_n = 0 (what `FlowMatchEulerDiscreteScheduler.step` does).

    `on_step(i, t, z_next)` runs after each step.
    """
    sigmas, timesteps = _grid(scheduler_config, num_steps, shift)
    z = noise.float()
    for i in range(num_steps):
        t = float(timesteps[i])
        z = euler_step(z, velocity(z, t), sigmas[i], sigmas[i + 1])
        if on_step is not None:
            on_step(i, t, z)
    return z


# -- several branches in one batch (HAM on SD3.5) --------------------------------------------------------
def branch_conditioning(layout: BatchLayout, uncond: tuple[Tensor, Tensor],
                        cond: Mapping[str, tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """SD3 conditioning `(embeds, pooled)` for a batch laid out by `layout`: `uncond` (batch 1) in the first half
    when guided, each branch's `cond[name]` (batch 1) for its rows -> ([total, L, D], [total, P])."""
    embeds = layout.conditioning(uncond[0], {name: c[0] for name, c in cond.items()})
    pooled = layout.conditioning(uncond[1][:, None], {name: c[1][:, None] for name, c in cond.items()})[:, 0]
    return embeds, pooled


@torch.no_grad()
def prepare_flow_teachers(
    backbone: Any,
    contents: Tensor,
    references: list[Tensor],
    num_steps: int,
    prompt: str = "",
    shift: float | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[FlowTrajectory, FlowTrajectory]:
    """Encode contents [B,3,H,W] and references (each [3,h,w], resized to the contents' size so every branch
    shares one transformer call) and flow-invert them in one batch with `prompt`, no guidance.
    Returns the content and style trajectories."""
    latents = encode_branches(backbone, contents, references)
    cond = backbone.embed_prompt([prompt])
    trajectory = flow_invert(latents, lambda z, t: backbone.denoise(z, t, cond), backbone.scheduler_config,
                             num_steps, shift, on_step)
    b = contents.shape[0]
    return trajectory.rows(slice(None, b)), trajectory.rows(slice(b, None))


@torch.no_grad()
def sample_branches_flow(
    predict: Callable[[Tensor, float], Tensor],
    layout: BatchLayout,
    students: Mapping[str, Tensor],
    teachers: Mapping[str, FlowTrajectory],
    scheduler_config: dict,
    num_steps: int,
    guidance_scale: float = 1.0,
    shift: float | None = None,
    on_step: Callable[[int, float, dict[str, Tensor]], None] | None = None,
) -> dict[str, Tensor]:
    """Euler-sample the `students` (latents at σ_0) beside teachers replaying their inversions (the flow
    counterpart of `sampling.sample_branches`).

    At step i every teacher takes `trajectory[i]` (z at σ_i); the batch is repeated per guidance half and
    `predict(batch, t_i)` returns the velocity (the caller binds prompts and editors). `on_step(i, t, x0)` gets
    every branch's predicted clean latent `z − σ_i·v` (after guidance). Returns the students' final latents.
    """
    if set(students) | set(teachers) != set(layout.names) or set(students) & set(teachers):
        raise ValueError(f"every branch of {layout.names} must be a student or a teacher, not both")
    if guidance_scale != 1.0 and not layout.guided:
        raise ValueError(f"guidance_scale={guidance_scale} needs a guided layout (an unconditional half)")
    sigmas, timesteps = _grid(scheduler_config, num_steps, shift)
    for name, trajectory in teachers.items():
        if trajectory.num_steps != num_steps or not torch.allclose(trajectory.sigmas, sigmas):
            raise ValueError(f"the {name} trajectory was inverted on another grid: invert with the same number of "
                             f"steps ({num_steps}), scheduler config and shift as sampling")
    state = {name: z.float() for name, z in students.items()}
    for i in range(num_steps):
        t = float(timesteps[i])
        current = {name: teachers[name][i].float() if name in teachers else state[name] for name in layout.names}
        z = layout.stack(current)
        velocity = layout.guide(predict(layout.expand(current), t).float(), guidance_scale)
        stepped = layout.unstack(euler_step(z, velocity, sigmas[i], sigmas[i + 1]))
        state = {name: stepped[name] for name in students}
        if on_step is not None:
            on_step(i, t, layout.unstack(z - float(sigmas[i]) * velocity))
    return state
