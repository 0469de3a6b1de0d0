"""Frozen models: diffusion backbones (SD1.x/2.x, SD3.5), DINOv2, depth, LoRA fusing; tiny random variants for
tests. Imports stylex.diffusion (layer selection) and stylex.errors."""
from __future__ import annotations

from typing import Any

import torch

from stylex.errors import ConfigError

FAMILIES = ("sd", "sd3")


def resolve_device(device: str) -> str:
    """`auto`: the GPU when there is one, else the CPU; any other value as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else str(device)


def load_backbone(family: str, model: str, dtype: str = "auto", tiny: bool = False,
                  device: str | torch.device = "cpu", compile: bool = False, **kwargs: Any) -> Any:
    """Load a diffusion backbone by family, or build a tiny random one of that family (`tiny=true`).

    `compile=true` compiles the denoiser's ResNet and feed-forward blocks in place (`compile_denoiser`); module
    paths, processors and parameters stay as they are, and the first steps pay the compilation time.
    """
    backbone = _load_backbone(family, model, dtype, tiny, device, **kwargs)
    if compile:
        compile_denoiser(backbone)
    return backbone


# The blocks that carry most of the FLOPs and no attention processor: the processors are Python that edits and
# records attention, which would split a whole-model graph at every layer.
COMPILED_BLOCKS = ("ResnetBlock2D", "FeedForward")


def compile_denoiser(backbone: Any, recompile_limit: int = 128) -> int:
    """torch.compile each ResNet and feed-forward block of the backbone's denoiser in place (regional
    compilation); returns how many.

    Static shapes give the fastest kernels and avoid dynamic-shape lowering bugs. Each block class is called with
    one shape per width, resolution, batch (references vs contents) and grad mode, which is more graphs than
    dynamo's default limit of 8 per function, so the limit is raised.
    """
    import torch._dynamo

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, recompile_limit)
    denoiser = getattr(backbone, "unet", None) or backbone.transformer
    blocks = [m for m in denoiser.modules() if type(m).__name__ in COMPILED_BLOCKS]
    for block in blocks:
        block.compile(dynamic=False)
    return len(blocks)


def _load_backbone(family: str, model: str, dtype: str, tiny: bool, device: str | torch.device,
                   **kwargs: Any) -> Any:
    if family == "sd":
        if tiny:
            from stylex.backbones.tiny import tiny_sd

            return tiny_sd(dtype=dtype, device=device, model=f"tiny-random-sd (stands in for {model})")
        from stylex.backbones.sd import load_sd

        return load_sd(model, dtype=dtype, device=device, **kwargs)
    if family == "sd3":
        if tiny:
            from stylex.backbones.sd3 import tiny_sd3

            same = {k: kwargs[k] for k in ("t5", "shift") if kwargs.get(k) is not None}
            return tiny_sd3(dtype=dtype, device=device, model=f"tiny-random-sd3 (stands in for {model})", **same)
        from stylex.backbones.sd3 import load_sd3

        return load_sd3(model, dtype=dtype, device=device, **kwargs)
    raise ConfigError(f"backbone.family={family!r} is not one of: {', '.join(FAMILIES)}.")


def load_dino_model(model: str, tiny: bool = False, device: str | torch.device = "cpu") -> Any:
    """DINOv2 for semantic region matching (tiny random with `tiny=true`)."""
    from stylex.backbones.dino import freeze, load_dino, tiny_dino

    return freeze(tiny_dino(), device) if tiny else load_dino(model, device=device)


def load_depth_model(model: str, tiny: bool = False, device: str | torch.device = "cpu") -> Any:
    """Depth Anything V2 for the regions' depth split-and-merge (tiny random with `tiny=true`)."""
    from stylex.backbones.depth import load_depth, tiny_depth
    from stylex.backbones.dino import freeze

    return freeze(tiny_depth(), device) if tiny else load_depth(model, device=device)
