"""Frozen models: diffusion backbones (SD1.x/2.x, SD3.5), DINOv2, depth; tiny random variants for tests."""
from __future__ import annotations

from typing import Any

import torch

from stylex.errors import ConfigError

FAMILIES = ("sd",)


def load_backbone(family: str, model: str, dtype: str = "auto", tiny: bool = False,
                  device: str | torch.device = "cpu", **kwargs: Any) -> Any:
    """Load a diffusion backbone by family, or build a tiny random one of that family (`tiny=true`)."""
    if family == "sd":
        if tiny:
            from stylex.backbones.tiny import tiny_sd

            return tiny_sd(dtype=dtype, device=device, model=f"tiny-random-sd (stands in for {model})")
        from stylex.backbones.sd import load_sd

        return load_sd(model, dtype=dtype, device=device, **kwargs)
    raise ConfigError(f"backbone.family={family!r} is not one of: {', '.join(FAMILIES)}.")
