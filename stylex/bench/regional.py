"""Regional attention speed (python -m stylex.bench task=regional): StyleGallery's target attention at one layer,
by each way of computing it, on planted regions at the sizes of SD1.5's optimised layers.

`dense` is the naive way: one SDPA over all keys with a dense [N, M] boolean mask. It is the baseline the
two real backends (`gather`, `flex`) are measured against, and it is not offered to runs.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor

from stylex.bench.methods import peak_memory_gb, timed
from stylex.bench.report import format_table, report
from stylex.diffusion.regional_attention import Pair, flex_layout, flex_targets, gather_targets

log = logging.getLogger("stylex.bench")


def voronoi_labels(side: int, regions: int, generator: torch.Generator) -> Tensor:
    """[side*side] labels of `regions` contiguous cells around random seeds: planted regions like stage 1's."""
    seeds = torch.rand(regions, 2, generator=generator) * side
    ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    points = torch.stack([ys.flatten(), xs.flatten()], dim=1).float()
    return torch.cdist(points, seeds).argmin(dim=1)


def planted_pairs(side: int, n_refs: int, regions: int, seed: int, device: torch.device,
                  temperature: float = 1.5) -> list[Pair]:
    """Content region i matched to a random region of reference i mod n_refs; empty regions are skipped."""
    g = torch.Generator().manual_seed(seed)
    content = voronoi_labels(side, regions, g)
    styles = [voronoi_labels(side, regions, g) for _ in range(n_refs)]
    pairs = []
    for i in range(regions):
        ref = i % n_refs
        key_mask = styles[ref] == int(torch.randint(regions, (1,), generator=g))
        query_idx = (content == i).nonzero().flatten()
        if query_idx.numel() and key_mask.any():
            pairs.append(Pair(query_idx.to(device), ref, key_mask.to(device), temperature))
    return pairs


def dense_targets(q: Tensor, keys: list[tuple[Tensor, Tensor]], pairs: list[Pair]) -> Tensor:
    """The baseline: one SDPA over every reference's keys with a dense [N, M] mask (rows of no pair get none).
    One temperature for all pairs, as in a run without fallback matches."""
    (temperature,) = {p.temperature for p in pairs}
    k, v = torch.cat([k for k, _ in keys], dim=1), torch.cat([v for _, v in keys], dim=1)
    offsets = [0]
    for key, _ in keys:
        offsets.append(offsets[-1] + key.shape[1])
    mask = torch.zeros(q.shape[1], k.shape[1], dtype=torch.bool, device=q.device)
    for p in pairs:
        row = torch.zeros(k.shape[1], dtype=torch.bool, device=q.device)
        row[offsets[p.reference]:offsets[p.reference + 1]] = p.key_mask
        mask[p.query_idx] = row
    mask[~mask.any(dim=1)] = True  # rows outside every pair: any finite answer (they weigh 0 in the loss)
    return F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=mask,
                                          scale=temperature * q.shape[-1] ** -0.5)[0]


def measure(fn: Callable[[], Tensor], device: torch.device, repeats: int) -> tuple[Tensor, float, float]:
    """(output, ms per call after one warm-up call, peak memory GB)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out = fn()
    seconds = timed(lambda: [fn() for _ in range(repeats)], device)
    return out, seconds * 1000 / repeats, peak_memory_gb(device)


def bench_layer(side: int, heads: int, dim: int, n_refs: int, regions: int, backends: list[str],
                device: torch.device, dtype: torch.dtype, repeats: int, temperature: float = 1.5,
                seed: int = 0) -> list[dict[str, Any]]:
    """One row per backend at one layer size; `max_abs_diff` is against gather."""
    g = torch.Generator().manual_seed(seed)
    n = side * side
    q = torch.randn(heads, n, dim, generator=g).to(device, dtype)
    keys = [(torch.randn(heads, n, dim, generator=g).to(device, dtype),
             torch.randn(heads, n, dim, generator=g).to(device, dtype)) for _ in range(n_refs)]
    pairs = planted_pairs(side, n_refs, regions, seed, device, temperature)
    layout = flex_layout(pairs, n, [n] * n_refs, device) if "flex" in backends else None
    runs = {"gather": lambda: gather_targets(q, keys, pairs),
            "flex": lambda: flex_targets(q, keys, layout),
            "dense": lambda: dense_targets(q, keys, pairs)}
    rows = []
    paired = torch.cat([p.query_idx for p in pairs])
    with torch.no_grad():
        reference = gather_targets(q, keys, pairs)[:, paired].float()
        for backend in backends:
            out, ms, mem = measure(runs[backend], device, repeats)
            mem = round(mem, 3) if device.type == "cuda" else None  # CPU: the process peak says nothing per row
            diff = (out[:, paired].float() - reference).abs().max().item()
            rows.append({"backend": backend, "tokens": n, "heads": heads, "head_dim": dim, "references": n_refs,
                         "pairs": len(pairs), "dtype": str(dtype).removeprefix("torch."), "ms_per_call": round(ms, 3),
                         "peak_memory_gb": mem, "max_abs_diff_vs_gather": float(f"{diff:.2e}")})
            log.info("%s at %d tokens x %d references: %.3f ms", backend, n, n_refs, ms)
    return rows


def run(cfg: DictConfig) -> list[dict[str, Any]]:
    """The whole `task=regional` benchmark: one row per layer size, reference count and backend."""
    opts = cfg.regional_bench
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    latent_side = int(opts.resolution) // 8
    rows = []
    for layer in opts.layers:
        side = latent_side // int(layer.downsample)
        for n_refs in opts.references:
            rows += bench_layer(side, int(layer.heads), int(layer.head_dim), int(n_refs), int(opts.regions),
                                list(opts.backends), device, dtype, int(opts.repeats), float(opts.temperature),
                                int(cfg.seed))
    log.info("Regional attention target, one image at one layer (%s):\n%s", device.type, format_table(rows))
    report(cfg, {"bench_regional": rows})
    return rows
