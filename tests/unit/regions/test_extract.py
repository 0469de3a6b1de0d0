"""Stage 1 on the tiny UNet (METHODS.md 2.1 steps 2-3, 0.3), against a DDIM inversion written out by hand."""
import math

import torch

from stylex.regions.extract import RegionParams, extract_regions
from tests.unit.methods.by_hand import empty_prompt


def hand_inversion(backbone, latent: torch.Tensor, steps: int = 15) -> tuple[list[torch.Tensor], torch.Tensor]:
    """METHODS.md 0.3 for SD1.5's scheduler (scaled-linear betas 0.00085..0.012, 'leading' grid, steps_offset 1):
    t_i = i·(1000 // n) + 1, i = 0..n-1 (1, 67, ..., 925 for n = 15); eps = unet(x, t_i, ""), then
    x ← (x − √(1−ᾱ_prev)·eps)·√ᾱ_t/√ᾱ_prev + √(1−ᾱ_t)·eps with prev = t_i − 1000//n (ᾱ_0 before the grid).
    Returns up_blocks[2]'s output at every step, in step order, and the latent at the last timestep."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas = torch.cumprod(1 - betas, dim=0)
    stride = 1000 // steps
    cond = empty_prompt(backbone)
    features: list[torch.Tensor] = []
    hook = backbone.unet.up_blocks[2].register_forward_hook(lambda _m, _i, out: features.append(out.detach()))
    x = latent.double()
    try:
        for i in range(steps):
            t = i * stride + 1
            with torch.no_grad():
                eps = backbone.unet(x.float(), torch.tensor([t]), encoder_hidden_states=cond).sample.double()
            a_prev = alphas[t - stride] if t - stride >= 0 else alphas[0]
            a_t = alphas[t]
            x = (x - (1 - a_prev).sqrt() * eps) * a_t.sqrt() / a_prev.sqrt() + (1 - a_t).sqrt() * eps
    finally:
        hook.remove()
    return features, x.float()


def test_features_are_up_blocks_2_along_the_inversion_weighted_by_d_in_step_order(tiny_backbone):
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    params = RegionParams(depth_enabled=False, n_init=1, max_k=3)
    regions = extract_regions(tiny_backbone, torch.zeros(3, 64, 64), params, latent=latent[0])
    features, x_T = hand_inversion(tiny_backbone, latent)
    assert len(features) == 15 and features[0].shape[-2:] == (8, 8)  # up_blocks[2] upsamples onto the latent grid
    d = torch.tensor([1 / (1 + math.exp(5 * (i / 15 - 0.7))) for i in range(15)], dtype=torch.float64)
    F_mix = sum(w * f[0].double() for w, f in zip(d / d.sum(), features))
    assert torch.allclose(regions.F_mix.double(), F_mix, rtol=1e-4, atol=1e-5)
    assert torch.allclose(regions.x_T, x_T[0], rtol=1e-4, atol=1e-5)  # x_T is the latent at t = 925
    assert torch.equal(regions.latent, latent[0])
    # the order matters: the same maps weighted last-to-first give another F_mix
    reversed_mix = sum(w * f[0].double() for w, f in zip(d.flip(0) / d.sum(), features))
    assert not torch.allclose(regions.F_mix.double(), reversed_mix, rtol=1e-3, atol=1e-4)
