"""DDIM timestep grids and deterministic DDIM inversion (METHODS.md 0.3), on diffusers' schedulers."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def ddim_timesteps(scheduler_config: dict, num_steps: int) -> list[int]:
    """The sampling grid, descending (for SD1.5 and 15 steps: 925, 859, ..., 1)."""
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(num_steps)
    return [int(t) for t in scheduler.timesteps]


def inversion_timesteps(scheduler_config: dict, num_steps: int) -> list[int]:
    """The inversion grid, ascending (for SD1.5 and 15 steps: 1, 67, ..., 925)."""
    return ddim_timesteps(scheduler_config, num_steps)[::-1]


@torch.no_grad()
def ddim_invert(
    latent: Tensor,
    predict_noise: Callable[[Tensor, int], Tensor],
    scheduler_config: dict,
    num_steps: int,
    on_step: Callable[[int, int], None] | None = None,
) -> dict[int, Tensor]:
    """Invert a clean latent to noise; returns the trajectory {timestep: latent at that timestep}.

    `predict_noise(x, t)` is the model's prediction at the *target* timestep t, as in DDIM inversion.
    The trajectory is keyed by timestep so a later sampling step at t finds its latent exactly.
    `on_step(i, t)` runs after each model call (e.g. to collect features recorded during it).
    """
    from diffusers import DDIMInverseScheduler

    scheduler = DDIMInverseScheduler.from_config(scheduler_config)
    scheduler.set_timesteps(num_steps)
    x = latent.float()
    trajectory: dict[int, Tensor] = {0: x}
    for i, t in enumerate(scheduler.timesteps.tolist()):
        prediction = predict_noise(x, int(t))
        if on_step is not None:
            on_step(i, int(t))
        x = scheduler.step(prediction.float(), int(t), x).prev_sample
        trajectory[int(t)] = x
    return trajectory
