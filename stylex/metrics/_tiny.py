"""Building the feature networks small and random, with the full-size structure (tests, `debug=smoke`)."""
from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import nn

TINY_DIV = 16
"""Default channel divisor of the tiny networks (VGG19 64 -> 4 channels, Inception 2048 -> 128 features)."""

M = TypeVar("M", bound=nn.Module)


def width(channels: int, div: int) -> int:
    """A channel count divided by `div`, at least 1 (div=1: the published width)."""
    return max(1, channels // div)


def seeded(cls: type[M], seed: int, **kw: Any) -> M:
    """cls(**kw) initialised from `seed` without touching the global RNG; frozen, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kw).eval().requires_grad_(False)
