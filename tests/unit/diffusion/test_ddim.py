import torch

from stylex.backbones.sd import SD_SCHEDULER_DEFAULTS
from stylex.diffusion.ddim import ddim_invert, ddim_timesteps, inversion_timesteps

CFG = dict(SD_SCHEDULER_DEFAULTS)


def test_grids_match_methods_0_3():
    assert inversion_timesteps(CFG, 15) == list(range(1, 926, 66))
    assert inversion_timesteps(CFG, 15)[:3] == [1, 67, 133] and inversion_timesteps(CFG, 15)[-1] == 925
    ad = ddim_timesteps(CFG, 200)
    assert ad[0] == 996 and ad[-1] == 1 and len(ad) == 200
    gallery = ddim_timesteps(CFG, 150)
    assert gallery[0] == 895 and gallery[-1] == 1 and len(gallery) == 150


def test_inversion_step_is_the_closed_form_with_noise_at_the_target_timestep():
    from diffusers import DDIMScheduler

    alphas = DDIMScheduler.from_config(CFG).alphas_cumprod.double()
    x0 = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    seen = []

    def predict(x, t):
        seen.append(t)
        return torch.full_like(x, 0.1 * t / 1000)  # depends on the timestep it is asked at

    trajectory = ddim_invert(x0, predict, CFG, 15)
    grid = inversion_timesteps(CFG, 15)
    assert seen == grid and list(trajectory) == [0] + grid
    # hand-written METHODS.md 0.3: x_next = (x − √(1−ᾱ_cur)·ε)·√ᾱ_next/√ᾱ_cur + √(1−ᾱ_next)·ε, ε at t_next
    x = x0.clone()
    a_cur = alphas[0]  # the clean latent takes ᾱ_0 (set_alpha_to_one=False)
    for t in grid:
        eps = 0.1 * t / 1000
        a_next = alphas[t]
        x = (x - (1 - a_cur).sqrt() * eps) * a_next.sqrt() / a_cur.sqrt() + (1 - a_next).sqrt() * eps
        assert torch.allclose(trajectory[t].double(), x, atol=1e-5), t
        a_cur = a_next
