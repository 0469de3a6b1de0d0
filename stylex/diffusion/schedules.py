"""Timestep lists for latent optimisation, taken from diffusers' schedulers (never hand-written grids).

Only the list is used: the loss and loop stay those of the method (METHODS.md 2.4).
"""
from __future__ import annotations

from stylex.errors import ConfigError

KINDS = ("ddim", "lcm", "euler_trailing")


def optimisation_timesteps(kind: str, scheduler_config: dict, num_steps: int,
                           original_inference_steps: int = 50) -> list[int]:
    """ddim: the model's DDIM grid; lcm: LCMScheduler from the DDIM config with `original_inference_steps`;
    euler_trailing: EulerDiscreteScheduler with trailing spacing (Hyper-SD)."""
    from diffusers import DDIMScheduler, EulerDiscreteScheduler, LCMScheduler

    if kind == "ddim":
        scheduler = DDIMScheduler.from_config(scheduler_config)
    elif kind == "lcm":
        scheduler = LCMScheduler.from_config(scheduler_config, original_inference_steps=original_inference_steps)
        if num_steps > original_inference_steps:
            raise ConfigError(f"method.num_steps={num_steps} exceeds LCM's original_inference_steps="
                              f"{original_inference_steps}; lower num_steps or raise accel.original_inference_steps.")
    elif kind == "euler_trailing":
        scheduler = EulerDiscreteScheduler.from_config(scheduler_config, timestep_spacing="trailing")
    else:
        raise ConfigError(f"accel schedule {kind!r} is not one of: {', '.join(KINDS)}.")
    scheduler.set_timesteps(num_steps)
    return [int(round(float(t))) for t in scheduler.timesteps]
