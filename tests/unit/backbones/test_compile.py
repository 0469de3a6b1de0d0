import pytest
import torch

from stylex.backbones import COMPILED_BLOCKS, compile_denoiser
from stylex.backbones.tiny import tiny_sd


@pytest.mark.slow
def test_regional_compilation_keeps_processors_and_outputs():
    """backbone.compile=true compiles the ResNet and feed-forward blocks only: the attention processors (which
    edit and record attention) stay plain Python, and the prediction matches the eager one."""
    backbone = tiny_sd(seed=0)
    unet = backbone.unet
    processors = dict(unet.attn_processors)
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(2, 4, 8, 8, generator=g)
    cond = backbone.embed_prompt([""])
    with torch.no_grad():
        eager = backbone.denoise(latent, 500, cond)
    n_blocks = sum(type(m).__name__ in COMPILED_BLOCKS for m in unet.modules())
    assert compile_denoiser(backbone) == n_blocks > 0
    assert dict(unet.attn_processors) == processors
    assert torch._dynamo.config.recompile_limit >= 128
    from torch._dynamo.utils import counters

    with torch.no_grad():
        compiled = backbone.denoise(latent, 500, cond)
        graphs = counters["stats"]["unique_graphs"]
        again = backbone.denoise(latent, 300, cond)
    assert torch.allclose(compiled, eager, atol=1e-4)
    assert counters["stats"]["unique_graphs"] == graphs > 0  # a new timestep compiles nothing
    assert not torch.allclose(again, compiled)
