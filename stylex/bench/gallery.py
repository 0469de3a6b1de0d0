"""Gallery speed (python -m stylex.bench task=gallery): build throughput, and per index type the build time,
query latency and recall@k against exact search on synthetic region descriptors (up to a million regions).

Synthetic descriptors are a seeded mixture of Gaussian clusters on the unit sphere: real semantic vectors are
clustered too, and uniform noise would make any inverted file look worse than it is on real galleries.
"""
from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from stylex.bench.report import format_table, report
from stylex.gallery import faiss_index
from stylex.gallery.faiss_index import IndexSpec

log = logging.getLogger("stylex.bench")

FULL_SIZES = (10_000, 100_000, 1_000_000)
SMOKE_SIZES = (2_000,)


def synthetic_descriptors(n: int, dim: int, clusters: int, seed: int, draw: int = 0, spread: float = 0.6,
                          chunk: int = 100_000) -> np.ndarray:
    """n unit vectors [n, dim] around `clusters` random centres fixed by `seed`; `draw` seeds the samples
    (queries use another draw than the base). Generated in chunks to bound memory."""
    centres = np.random.default_rng(seed).standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng([seed, draw])
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        noise = rng.standard_normal((m, dim)).astype(np.float32) * (spread / np.sqrt(dim))
        out[start:start + m] = centres[rng.integers(0, clusters, m)] + noise
    return faiss_index.normalise(out)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean fraction of the exact top-k that the index returned in its top-k."""
    hits = [len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in zip(found, truth)]
    return float(np.mean(hits)) / k


def measure_index(base: np.ndarray, queries: np.ndarray, truth: np.ndarray, spec: IndexSpec, k: int,
                  device: str = "auto", singles: int = 32) -> dict[str, Any]:
    """Build one index over `base`, then time batched and single queries and score recall@k against `truth`."""
    t0 = time.perf_counter()
    index, built, note = faiss_index.build_index(base, spec)
    build_s = time.perf_counter() - t0
    index = faiss_index.to_device(index, device)
    faiss_index.search(index, queries[:8], k)  # warm-up
    t0 = time.perf_counter()
    _, rows = faiss_index.search(index, queries, k)
    batch_ms = (time.perf_counter() - t0) * 1000 / len(queries)
    single = []
    for q in queries[:singles]:
        t0 = time.perf_counter()
        faiss_index.search(index, q[None], k)
        single.append((time.perf_counter() - t0) * 1000)
    return {"index": spec.type, "built_as": built.type, "regions": len(base), "dim": base.shape[1],
            "nlist": built.nlist, "m": built.m, "nprobe": built.nprobe if built.type == "ivfpq" else None,
            "rerank": built.rerank if built.type == "ivfpq" else None, "build_s": round(build_s, 3),
            "batch_ms_per_query": round(batch_ms, 4), "single_query_ms": round(float(np.median(single)), 4),
            f"recall@{k}": round(recall_at_k(rows, truth, k), 4), "note": note or ""}


def search_benchmark(sizes: list[int], dim: int, n_queries: int, k: int, specs: list[IndexSpec],
                     points_per_cluster: int = 100, seed: int = 0, device: str = "auto") -> list[dict[str, Any]]:
    """Rows per (size, index type); the exact answer comes from a brute-force inner-product scan."""
    rows = []
    for n in sizes:
        clusters = max(1, n // points_per_cluster)
        base = synthetic_descriptors(n, dim, clusters, seed)
        queries = synthetic_descriptors(n_queries, dim, clusters, seed, draw=1)  # same centres, other samples
        exact, _, _ = faiss_index.build_index(base, IndexSpec(type="flat"))
        _, truth = faiss_index.search(exact, queries, k)
        del exact
        for spec in specs:
            row = measure_index(base, queries, truth, spec, k, device)
            log.info("%s over %d regions: %.3f ms/query (batched), %.3f ms single, recall@%d %.4f", spec.type, n,
                     row["batch_ms_per_query"], row["single_query_ms"], k, row[f"recall@{k}"])
            rows.append(row)
    return rows


def build_benchmark(cfg: DictConfig, n_images: int) -> dict[str, Any]:
    """Images/s of `build_gallery` on `n_images` synthetic images with the configured method and models."""
    from PIL import Image

    from stylex.pipeline import stage1_method
    from stylex.gallery.build import build_gallery

    rng = np.random.default_rng(int(cfg.seed))
    method = stage1_method(cfg)
    side = int(cfg.data.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i in range(n_images):  # smooth random colour fields: a few regions each, like paintings
            small = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8)
            Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC).save(folder / f"{i:04d}.png")
        report = build_gallery(Path(tmp) / "gallery", str(folder), method.analyse, method.stage1_identity(), side,
                               cfg.data.style_resize, show_progress=bool(cfg.gallery_bench.show_progress))
    return {"images": report.processed, "resolution": side, "stage1_s": round(report.stage1_seconds, 3),
            "images_per_s": round(report.images_per_second, 4), "total_s": round(report.seconds, 3),
            "regions": report.regions, "backbone": method.backbone.model_id}


def run(cfg: DictConfig) -> dict[str, list[dict[str, Any]]]:
    """The whole `task=gallery` benchmark: logs two tables and writes them as CSV to paths.output_dir."""
    b = cfg.gallery_bench
    smoke = bool(cfg.get("tiny_models"))
    sizes = list(b.regions) if b.get("regions") else list(SMOKE_SIZES if smoke else FULL_SIZES)
    n_images = int(b.build_images) if b.get("build_images") is not None else (2 if smoke else 8)
    base_spec = OmegaConf.to_container(b.index, resolve=True)
    specs = [IndexSpec.from_config({**base_spec, "type": t}, "gallery_bench.index") for t in b.index_types]
    results: dict[str, list[dict[str, Any]]] = {"build": [], "search": []}
    if n_images > 0:
        results["build"].append(build_benchmark(cfg, n_images))
        log.info("Gallery build throughput:\n%s", format_table(results["build"]))
    results["search"] = search_benchmark(sizes, int(b.dim), int(b.queries), int(b.k), specs,
                                         int(b.points_per_cluster), int(cfg.seed), str(b.device))
    log.info("Gallery search (synthetic descriptors, recall against exact search):\n%s",
             format_table(results["search"]))
    report(cfg, {f"bench_gallery_{name}": rows for name, rows in results.items()})
    return results
