"""FAISS indexes over region semantic vectors (METHODS.md 2.2, "Over a large gallery").

Vectors are L2-normalised before they go in, so an inner product is a cosine similarity. Two kinds:
- `flat`: exact inner product over every vector (the default; exact up to float32 rounding);
- `ivfpq`: an inverted file over `nlist` cells with product-quantised codes, whose `rerank·k` best
  approximate hits are re-scored with the exact vectors (`RFlat`), for galleries of millions of regions.
Indexes are built and stored in their CPU form; a search may run on the GPUs when the installed faiss has
them (`faiss.get_num_gpus() > 0`).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from stylex.errors import ConfigError

log = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "ivfpq")
DEVICES = ("auto", "cpu", "gpu")


def faiss_module() -> Any:
    """faiss, imported on first use (it is only needed where a gallery is built or searched)."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is not news
    import faiss

    return faiss


@dataclass(frozen=True)
class IndexSpec:
    """How the index is built (type, nlist, m, nbits) and searched (nprobe, rerank). None: chosen from the size."""

    type: str = "flat"
    nlist: int | None = None  # IVF cells; None: about 4·sqrt(N), at least 39 vectors per cell
    m: int | None = None  # PQ sub-vectors; None: the largest divisor of the dimension up to 64
    nbits: int = 8  # bits per PQ code
    nprobe: int = 16  # cells visited per query
    rerank: int = 10  # exact re-scoring of rerank·k approximate hits
    seed: int = 0  # training sample

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, key: str = "gallery.index") -> "IndexSpec":
        try:
            spec = cls(**dict(config or {}))
        except TypeError as exc:
            raise ConfigError(f"{key}: {exc}. Known options: {', '.join(cls.__dataclass_fields__)}.") from None
        if spec.type not in INDEX_TYPES:
            raise ConfigError(f"{key}.type={spec.type!r} is not one of: {', '.join(INDEX_TYPES)}.")
        for name in ("nlist", "m", "nbits", "nprobe", "rerank"):
            value = getattr(spec, name)
            if value is not None and int(value) < 1:
                raise ConfigError(f"{key}.{name}={value} must be at least 1.")
        return spec

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def normalise(vectors: Any) -> np.ndarray:
    """Rows L2-normalised, float32, C-contiguous (zero rows stay zero): inner product = cosine."""
    x = np.asarray(vectors.detach().cpu() if hasattr(vectors, "detach") else vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected vectors [N, D], got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def resolve(spec: IndexSpec, n: int, dim: int) -> tuple[IndexSpec, str | None]:
    """Fill in nlist and m for `n` vectors of `dim`; an IVF-PQ too small to train becomes exact (with a note)."""
    if spec.type == "flat":
        return spec, None
    nlist = spec.nlist or max(1, min(round(4 * math.sqrt(n)), n // 39))
    m = spec.m or max(d for d in range(1, min(64, dim) + 1) if dim % d == 0)
    if dim % m:
        raise ConfigError(f"gallery.index.m={m} must divide the descriptor dimension {dim}.")
    needed = max(nlist, 2 ** spec.nbits)
    if n < needed:
        note = (f"ivfpq needs at least {needed} regions to train ({n} in the gallery); the index is exact (flat), "
                f"which is also the fastest at this size")
        return replace(spec, type="flat"), note
    return replace(spec, nlist=int(nlist), m=int(m)), None


def build_index(vectors: np.ndarray, spec: IndexSpec) -> tuple[Any, IndexSpec, str | None]:
    """A CPU index over L2-normalised `vectors` [N, D] -> (index, the spec as built, a note or None)."""
    faiss = faiss_module()
    n, dim = vectors.shape
    built, note = resolve(spec, n, dim)
    if built.type == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        recipe = f"IVF{built.nlist},PQ{built.m}x{built.nbits}np,RFlat"  # np: no polysemous training (slow, unused)
        index = faiss.index_factory(dim, recipe, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.min_points_per_centroid = 1  # small galleries train fine; silence faiss's advice to add points
        faiss.downcast_index(ivf).pq.cp.min_points_per_centroid = 1
        rng = np.random.default_rng(built.seed)
        budget = 256 * max(built.nlist, 2 ** built.nbits)
        sample = vectors if n <= budget else vectors[np.sort(rng.choice(n, budget, replace=False))]
        index.train(np.ascontiguousarray(sample))
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    configure(index, built.nprobe, built.rerank)
    return index, built, note


def configure(index: Any, nprobe: int | None, rerank: int | None) -> None:
    """Search-time settings of an IVF-PQ index (a flat index has none)."""
    faiss = faiss_module()
    top = faiss.downcast_index(index)
    if isinstance(top, faiss.IndexRefine) and rerank:
        top.k_factor = float(rerank)
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return
    if nprobe:
        ivf.nprobe = int(min(nprobe, ivf.nlist))


def index_vectors(index: Any) -> np.ndarray:
    """The exact vectors stored in an index [ntotal, D] (flat: its storage; ivfpq: its re-ranking store)."""
    faiss = faiss_module()
    top = faiss.downcast_index(index)
    store = faiss.downcast_index(top.refine_index) if isinstance(top, faiss.IndexRefine) else top
    if not isinstance(store, faiss.IndexFlat):
        raise ValueError(f"cannot read the vectors back from a {type(store).__name__}")
    return store.reconstruct_n(0, store.ntotal) if store.ntotal else np.zeros((0, store.d), np.float32)


def serialise(index: Any) -> bytes:
    return faiss_module().serialize_index(index).tobytes()


def deserialise(data: bytes) -> Any:
    """An index from bytes; RuntimeError/ValueError for anything faiss cannot read (truncated, not an index)."""
    return faiss_module().deserialize_index(np.frombuffer(data, dtype=np.uint8))


def gpu_count() -> int:
    faiss = faiss_module()
    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


def to_device(index: Any, device: str) -> Any:
    """The index on the GPUs (`gpu`, or `auto` when faiss has GPU support), else unchanged.

    A flat index moves whole; for IVF-PQ the approximate part moves and exact re-ranking stays on the CPU.
    """
    if device not in DEVICES:
        raise ConfigError(f"gallery.device={device!r} is not one of: {', '.join(DEVICES)}.")
    if device == "cpu":
        return index
    if gpu_count() == 0:
        if device == "gpu":
            raise ConfigError("gallery.device=gpu, but the installed faiss has no GPU support "
                              "(faiss.get_num_gpus() == 0). Install a GPU build of faiss or set gallery.device=auto.")
        return index
    faiss = faiss_module()
    try:
        top = faiss.downcast_index(index)
        if isinstance(top, faiss.IndexRefine):
            base = faiss.index_cpu_to_all_gpus(faiss.downcast_index(top.base_index))
            moved = faiss.IndexRefine(base, top.refine_index)
            moved.k_factor = top.k_factor
            moved.keep_alive = (base, top, index)  # the SWIG wrapper does not own its parts
            return moved
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError) as exc:
        log.warning("Searching the gallery on the CPU: moving the index to the GPU failed (%s).", exc)
        return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(similarities [Q, k], rows [Q, k]) of the k best rows per query; rows are -1 where fewer exist."""
    if not index.ntotal or k < 1:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), min(int(k), int(index.ntotal)))
