"""Regional attention targets for StyleGallery's loss (METHODS.md 2.3).

Each matched pair's content queries attend only to the keys of its style region. Two ways give the same numbers:

- gather: one fused SDPA call per pair over the pair's own tokens. Any device, both mask modes; the fastest on CPU.
- flex: one FlexAttention call per image over all its references' keys. The block-sparse mask is built once from
  the region labels, so no dense N x M mask is formed. It is meant for CUDA, where it is compiled.

Neither forms a dense mask per region.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from stylex.diffusion.attention import sdpa

BACKENDS = ("gather", "flex")


@dataclass(frozen=True)
class Pair:
    """One matched pair at one layer: the content region's query tokens and where its keys are."""

    query_idx: Tensor  # [n] content token indices
    reference: int  # index into the image's references
    key_mask: Tensor | None  # [M_r] bool over that reference's keys; None: all references' keys (fallback)
    temperature: float


def regional_target(q: Tensor, k: Tensor, v: Tensor, q_idx: Tensor, kv_mask: Tensor, temperature: float,
                    mask_mode: str = "sparse") -> Tensor:
    """Target attention of one matched pair at one layer, for the queries `q_idx` of the content region.

    sparse: softmax over the style region's keys only. zero (official): Q, K, V are multiplied by the 0/1
    masks, so every zeroed key still takes weight exp(0) in the softmax and dilutes the target.
    q [H,N,d]; k, v [H,M,d]; kv_mask [M] bool. Returns [H, len(q_idx), d].
    """
    q_i = q[:, q_idx]
    if mask_mode == "sparse":
        return sdpa(q_i[None], k[:, kv_mask][None], v[:, kv_mask][None], temperature)[0]
    m = kv_mask.to(k.dtype)[None, :, None]
    return sdpa(q_i[None], (k * m)[None], (v * m)[None], temperature)[0]


def token_weights(pairs: list[Pair], n_tokens: int, heads: int, dim: int, device: torch.device) -> Tensor:
    """[N] weights that turn a per-token sum of |out − target| over heads and channels into the sum over pairs of
    each pair's mean. Tokens outside every pair weigh 0."""
    weights = torch.zeros(n_tokens, device=device)
    for pair in pairs:
        if weights[pair.query_idx].any():
            raise ValueError("a content token belongs to two matched pairs; each content region has one match")
        weights[pair.query_idx] = 1.0 / (pair.query_idx.numel() * heads * dim)
    return weights


def gather_targets(q: Tensor, keys: list[tuple[Tensor, Tensor]], pairs: list[Pair], mask_mode: str = "sparse") -> Tensor:
    """[H,N,d] targets: one SDPA call per pair. q [H,N,d]; keys[r] = (k, v) [H,M_r,d] of reference r."""
    target = torch.zeros_like(q)
    every_key: tuple[Tensor, Tensor] | None = None
    for pair in pairs:
        if pair.key_mask is None:
            if every_key is None:
                every_key = (torch.cat([k for k, _ in keys], dim=1), torch.cat([v for _, v in keys], dim=1))
            k, v = every_key
            target[:, pair.query_idx] = sdpa(q[:, pair.query_idx][None], k[None], v[None], pair.temperature)[0]
        else:
            k, v = keys[pair.reference]
            target[:, pair.query_idx] = regional_target(q, k, v, pair.query_idx, pair.key_mask, pair.temperature,
                                                        mask_mode)
    return target


@dataclass(frozen=True)
class FlexLayout:
    """One image's pairs at one layer, as FlexAttention sees them: a block mask over [queries, all keys] and,
    when the pairs' temperatures differ, a score_mod that scales each query's logits by its pair's temperature."""

    block_mask: Any
    score_mod: Callable[..., Tensor] | None
    temperature: float  # the common temperature when score_mod is None


def flex_layout(pairs: list[Pair], n_tokens: int, key_counts: list[int], device: torch.device,
                compiled: bool = True) -> FlexLayout:
    """Key j (over the references' concatenated keys) serves pair g when it lies in g's style region, or when g
    is a fallback pair. Tokens outside every pair get a sentinel group that no key serves."""
    from torch.nn.attention.flex_attention import create_block_mask

    offsets = torch.tensor([0, *key_counts], device=device).cumsum(0)
    n_groups = len(pairs)
    query_group = torch.full((n_tokens,), n_groups, dtype=torch.long, device=device)
    key_served = torch.zeros(n_groups + 1, int(offsets[-1]), dtype=torch.bool, device=device)
    for g, pair in enumerate(pairs):
        query_group[pair.query_idx] = g
        if pair.key_mask is None:
            key_served[g] = True
        else:
            key_served[g, offsets[pair.reference]:offsets[pair.reference + 1]] = pair.key_mask

    def mask_mod(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return key_served[query_group[q_idx], kv_idx]

    block_mask = create_block_mask(mask_mod, None, None, n_tokens, int(offsets[-1]), device=device, _compile=compiled)
    temperatures = {pair.temperature for pair in pairs}
    if len(temperatures) <= 1:
        return FlexLayout(block_mask, None, temperatures.pop() if temperatures else 1.0)
    scale = torch.tensor([pair.temperature for pair in pairs] + [1.0], device=device)

    def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return score * scale[query_group[q_idx]]

    return FlexLayout(block_mask, score_mod, 1.0)


@functools.cache
def _compiled_flex() -> Callable[..., Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def flex_targets(q: Tensor, keys: list[tuple[Tensor, Tensor]], layout: FlexLayout, compiled: bool = True) -> Tensor:
    """[H,N,d] targets in one FlexAttention call over all references' keys."""
    from torch.nn.attention.flex_attention import flex_attention

    k = torch.cat([k for k, _ in keys], dim=1)
    v = torch.cat([v for _, v in keys], dim=1)
    with warnings.catch_warnings():  # uncompiled is asked for: the scores are materialised, which is fine here
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        out = (_compiled_flex() if compiled else flex_attention)(
            q[None], k[None], v[None], block_mask=layout.block_mask, score_mod=layout.score_mod,
            scale=layout.temperature * q.shape[-1] ** -0.5)
    return out[0]
