"""What every metric shares: the batch it is fed and the update/compute protocol.

A metric is fed `PairBatch`es (stylized images with their content and style images, [B,3,H,W] in [0,1] as the
metric's view of the protocol loads them; a metric that compares with a whole style family also gets each pair's
family images) and returns per-image values from `update` when it has them; `compute` gives the
aggregate over everything seen since `reset`. Feature networks are constructor arguments, so tests inject tiny
random ones and real runs the published weights.
"""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from stylex.errors import InputError


@dataclass
class PairBatch:
    """One batch of (stylized, content, style) triples; `style_ids` name the style images (for set metrics).
    `families[i]`: the images of pair i's style family (each [3,h,w], sizes may differ), named by `family_ids[i]`."""

    stylized: Tensor
    content: Tensor | None = None
    style: Tensor | None = None
    style_ids: Sequence[str] | None = None
    style_texts: Sequence[str | None] | None = None
    style_names: Sequence[str] | None = None  # what CLIP-T's template calls each style (file stem or folder name)
    names: Sequence[str] = field(default_factory=list)
    families: Sequence[Sequence[Tensor]] | None = None
    family_ids: Sequence[str] | None = None

    def __len__(self) -> int:
        return int(self.stylized.shape[0])


class Metric(abc.ABC):
    """update(batch) -> per-image values [B] or None; compute() -> float over all images since reset()."""

    name: str = "metric"
    higher_is_better: bool = False
    per_image: bool = True
    needs_style: bool = False  # compares with the one style image of each pair (not its family)
    needs_family: bool = False  # compares with each pair's style family

    def __init__(self) -> None:
        self.reset()

    @abc.abstractmethod
    def reset(self) -> None: ...

    @abc.abstractmethod
    def update(self, batch: PairBatch) -> Tensor | None: ...

    @abc.abstractmethod
    def compute(self) -> float: ...

    def describe_input(self) -> str:
        """How this metric's network sees an image (for the results file)."""
        return ""


class PerImageMetric(Metric):
    """A metric that is a mean of per-image values; subclasses implement `score`."""

    needs: str = "content"  # which image of the triple the stylized image is compared with

    def reset(self) -> None:
        self.values: list[Tensor] = []

    @abc.abstractmethod
    def score(self, stylized: Tensor, reference: Tensor) -> Tensor:
        """Per-image values [B] for stylized vs reference, both [B,3,H,W] in [0,1]."""

    def update(self, batch: PairBatch) -> Tensor:
        reference = getattr(batch, self.needs)
        if reference is None:
            raise InputError(f"the {self.name} metric compares stylized images with their {self.needs} images, "
                             f"but none were given; pass the {self.needs} folder.")
        with torch.no_grad():
            vals = self.score(batch.stylized, reference).detach().double().cpu().reshape(-1)
        self.values.append(vals)
        return vals

    def compute(self) -> float:
        if not self.values:
            return float("nan")
        return float(torch.cat(self.values).mean())


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU for parameter-free callables)."""
    try:
        return next(module.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")
