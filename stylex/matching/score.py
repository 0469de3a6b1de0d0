"""Scoring content regions against every region of every style reference (METHODS.md 2.2).

score = w_stat·cos(stat) + w_sem·cos(sem) + w_geo·IoU(circles); the paper's 2:8:1 is 0.25 : 1.0 : 0.125.
The semantic term dominates; geometry only breaks near-ties.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from stylex.errors import InputError
from stylex.matching.descriptors import RegionDescriptors, circle_iou

__all__ = ["RegionDescriptors", "ScoreTable", "cosine_matrix", "match_scores"]


@dataclass(frozen=True)
class ScoreTable:
    """Scores of every content region (rows) against every region of every reference (columns).

    `score` is the weighted total; `stat`, `sem` (cosines) and `geo` (IoU) are the unweighted terms, kept so
    that a match table can show each. Column j belongs to reference `reference[j]`, region `region[j]`;
    columns run over reference 0's regions, then reference 1's, and so on.
    """

    score: Tensor
    stat: Tensor
    sem: Tensor
    geo: Tensor
    reference: Tensor
    region: Tensor

    @property
    def n_content_regions(self) -> int:
        return int(self.score.shape[0])

    @property
    def n_references(self) -> int:
        return int(self.reference.max()) + 1 if self.reference.numel() else 0

    def column(self, reference: int, region: int) -> int:
        """The column of `region` of `reference` (KeyError if there is none)."""
        hit = ((self.reference == reference) & (self.region == region)).nonzero()
        if hit.numel() == 0:
            raise KeyError((reference, region))
        return int(hit[0, 0])


def cosine_matrix(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """Cosine similarity of every row of a [R,D] with every row of b [S,D] -> [R,S] (zero vectors give 0)."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"cannot compare descriptors of length {a.shape[1]} and {b.shape[1]}")
    a = F.normalize(a.to(torch.float64), dim=1, eps=eps)
    b = F.normalize(b.to(device=a.device, dtype=torch.float64), dim=1, eps=eps)
    return a @ b.T


def match_scores(
    content: RegionDescriptors,
    styles: Sequence[RegionDescriptors],
    w_stat: float = 0.25,
    w_sem: float = 1.0,
    w_geo: float = 0.125,
) -> ScoreTable:
    """Score every content region against all regions of all `styles` (one RegionDescriptors per reference)."""
    if len(styles) == 0:
        raise InputError("no style references to match the content regions against")
    stat = torch.cat([cosine_matrix(content.stat, s.stat) for s in styles], dim=1)
    sem = torch.cat([cosine_matrix(content.sem, s.sem) for s in styles], dim=1)
    geo = torch.cat([circle_iou(content.geo, s.geo.to(content.geo.device)) for s in styles], dim=1).to(stat.device)
    reference = torch.cat([torch.full((s.n_regions,), i, dtype=torch.long) for i, s in enumerate(styles)])
    region = torch.cat([torch.arange(s.n_regions, dtype=torch.long) for s in styles])
    score = w_stat * stat + w_sem * sem + w_geo * geo
    return ScoreTable(score=score, stat=stat, sem=sem, geo=geo, reference=reference, region=region)
