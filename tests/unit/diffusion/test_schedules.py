import pytest

from stylex.backbones.sd import SD_SCHEDULER_DEFAULTS
from stylex.diffusion.schedules import optimisation_timesteps
from stylex.errors import ConfigError

CFG = dict(SD_SCHEDULER_DEFAULTS)


def test_lcm_list_matches_the_scheduler_and_its_closed_form():
    from diffusers import LCMScheduler

    steps = optimisation_timesteps("lcm", CFG, 28, original_inference_steps=50)
    scheduler = LCMScheduler.from_config(CFG, original_inference_steps=50)
    scheduler.set_timesteps(28)
    assert steps == scheduler.timesteps.tolist()
    # LCM picks from the 50-step skipping grid 19, 39, ..., 999
    assert len(steps) == 28 and steps[0] == 999 and all((t + 1) % 20 == 0 for t in steps)


def test_hyper_list_is_trailing_euler():
    from diffusers import EulerDiscreteScheduler

    steps = optimisation_timesteps("euler_trailing", CFG, 28)
    scheduler = EulerDiscreteScheduler.from_config(CFG, timestep_spacing="trailing")
    scheduler.set_timesteps(28)
    assert steps == [int(t) for t in scheduler.timesteps.tolist()]
    assert steps[0] == 999 and steps[-1] == round(1000 / 28) - 1


def test_ddim_and_bad_kinds():
    assert optimisation_timesteps("ddim", CFG, 150)[0] == 895
    with pytest.raises(ConfigError):
        optimisation_timesteps("dpm", CFG, 10)
    with pytest.raises(ConfigError, match="original_inference_steps"):
        optimisation_timesteps("lcm", CFG, 60)
