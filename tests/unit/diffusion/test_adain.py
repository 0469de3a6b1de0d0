import pytest
import torch

from stylex.diffusion.adain import adain_latent, adain_tokens, sini


def hand_adain(x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """σ(y)·(x − μ(x))/σ(x) + μ(y) for two 1-D samples, with population σ = √(var + eps)."""
    sx = ((x - x.mean()) ** 2).mean().add(eps).sqrt()
    sy = ((y - y.mean()) ** 2).mean().add(eps).sqrt()
    return sy * (x - x.mean()) / sx + y.mean()


def planted(shape, seed):
    """Every (image, channel) with its own mean and scale, so pooled statistics would be visibly wrong."""
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(*shape[:2], 1, 1, generator=g) * 3
    scale = torch.rand(*shape[:2], 1, 1, generator=g) * 4 + 0.5
    return torch.randn(*shape, generator=g) * scale + mean


@pytest.mark.parametrize("eps", [0.0, 1e-5])
def test_adain_latent_is_per_image_per_channel_over_hw(eps):
    x, y = planted((2, 4, 5, 6), 0), planted((2, 4, 7, 3), 1)  # the style may have another size
    out = adain_latent(x, y, eps)
    assert out.shape == x.shape
    for b in range(2):
        for c in range(4):
            expected = hand_adain(x[b, c].flatten(), y[b, c].flatten(), eps).view(5, 6)
            assert torch.allclose(out[b, c], expected, atol=1e-5), (b, c)
    if eps == 0.0:
        assert torch.allclose(out.mean((-2, -1)), y.mean((-2, -1)), atol=1e-5)
        assert torch.allclose(out.std((-2, -1), unbiased=False), y.std((-2, -1), unbiased=False), atol=1e-4)


def test_adain_tokens_is_per_head_and_dim_over_tokens():
    g = torch.Generator().manual_seed(2)
    scale, shift = torch.rand(2, 3, 1, 4, generator=g) * 3, torch.randn(2, 3, 1, 4, generator=g)
    x = torch.randn(2, 3, 10, 4, generator=g) * scale + shift
    y = torch.randn(2, 3, 7, 4, generator=g) * 2 - 1  # another token count
    out = adain_tokens(x, y, eps=0.0)
    for b in range(2):
        for h in range(3):
            for j in range(4):
                assert torch.allclose(out[b, h, :, j], hand_adain(x[b, h, :, j], y[b, h, :, j], 0.0), atol=1e-5)
    # extra leading axes (guidance halves × branch rows) are kept apart too
    x2, y2 = 2 * x + 1, y.flip(2) * 0.5
    stacked = adain_tokens(torch.stack([x, x2]), torch.stack([y, y2]), eps=0.0)
    assert torch.allclose(stacked[0], out, atol=1e-6)
    assert torch.allclose(stacked[1], adain_tokens(x2, y2, eps=0.0), atol=1e-6)


def test_adain_keeps_dtype():
    x, y = planted((1, 4, 4, 4), 3).bfloat16(), planted((1, 4, 4, 4), 4).bfloat16()
    assert adain_latent(x, y).dtype == torch.bfloat16


def test_sini_is_the_gamma_blend_of_content_noise_and_its_adain():
    zc, zs = planted((2, 4, 6, 6), 5), planted((2, 4, 6, 6), 6)
    a = adain_latent(zc, zs)
    for gamma in (0.0, 0.5, 0.8, 1.0):
        out = sini(zc, zs, gamma)
        assert torch.allclose(out, gamma * zc + (1 - gamma) * a, atol=1e-6)
        assert torch.allclose(out, gamma * (zc - a) + a, atol=1e-5)  # METHODS.md 4's way of writing it
    assert torch.equal(sini(zc, zs, 1.0), zc)
    assert not torch.allclose(sini(zc, zs, 0.5), zc, atol=1e-2)
