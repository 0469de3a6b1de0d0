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
LOSS_NORMS = ("layer", "region")


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
    masks, so every zeroed key still takes weight exp(0) in the softmax and dilutes the target (and a style
    region with no key at this grid gives the target 0).
    q [H,N,d]; k, v [H,M,d]; kv_mask [M] bool. Returns [H, len(q_idx), d].
    """
    q_i = q[:, q_idx]
    if mask_mode == "sparse":
        return sdpa(q_i[None], k[:, kv_mask][None], v[:, kv_mask][None], temperature)[0]
    m = kv_mask.to(k.dtype)[None, :, None]
    return sdpa(q_i[None], (k * m)[None], (v * m)[None], temperature)[0]


def token_weights(pairs: list[Pair], n_tokens: int, heads: int, dim: int, device: torch.device,
                  loss_norm: str = "layer") -> Tensor:
    """[N] weights that turn a per-token sum of |out − target| over heads and channels into L_RSL at one layer
    (METHODS.md 2.3). `layer`: each pair's mean weighs n_i/N, so every paired token weighs 1/(N·heads·dim) (the
    mean over all N tokens of the layer that the published L1Loss over masked tensors takes). `region`: each
    pair's own mean, 1/(n_i·heads·dim). Tokens outside every pair weigh 0."""
    if loss_norm not in LOSS_NORMS:
        raise ValueError(f"loss_norm={loss_norm!r} is not one of {LOSS_NORMS}")
    weights = torch.zeros(n_tokens, device=device)
    for pair in pairs:
        if not pair.query_idx.numel():
            continue
        if weights[pair.query_idx].any():
            raise ValueError("a content token belongs to two matched pairs; each content region has one match")
        share = n_tokens if loss_norm == "layer" else pair.query_idx.numel()
        weights[pair.query_idx] = 1.0 / (share * heads * dim)
    return weights


def zero_query_terms(values: list[Tensor], pairs: list[Pair], n_tokens: int) -> Tensor:
    """The terms of `mask_mode: zero` under `loss_norm: layer` that carry no gradient (METHODS.md 2.3).

    The published L1Loss over masked tensors also compares, at each of the N − n_i tokens outside pair i's
    region, out·m_i = 0 with the attention of a zeroed query: uniform weights over all keys, i.e. the mean of
    the masked values v·m_j over every key. Returns Σ_pairs (N − n_i)/N · mean_{heads, channels} |mean_keys v·m_j|,
    so that the loss equals the published value. values[r]: [H, M_r, d] of reference r.
    """
    total = values[0].new_zeros((), dtype=torch.float32)
    every_key: Tensor | None = None
    for pair in pairs:
        if pair.key_mask is None:
            if every_key is None:
                every_key = torch.cat(values, dim=1).float().mean(dim=1)
            average = every_key
        else:
            v = values[pair.reference].float()
            average = v[:, pair.key_mask].sum(dim=1) / v.shape[1]
        total = total + (n_tokens - pair.query_idx.numel()) / n_tokens * average.abs().mean()
    return total


def gather_targets(q: Tensor, keys: list[tuple[Tensor, Tensor]], pairs: list[Pair], mask_mode: str = "sparse") -> Tensor:
    """[H,N,d] targets: one SDPA call per pair. q [H,N,d]; keys[r] = (k, v) [H,M_r,d] of reference r."""
    target = torch.zeros_like(q)
    every_key: tuple[Tensor, Tensor] | None = None
    for pair in pairs:
        if not pair.query_idx.numel():  # a content region absent at this layer's grid (kept in mask_mode zero)
            continue
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
