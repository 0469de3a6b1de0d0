"""Content-addressed cache of per-image artifacts (inversions, regions, descriptors).

The key is a hash of everything that decides the artifact (image bytes, model id, every parameter), never a
path: a changed threshold recomputes, an unchanged one reuses, and a renamed file still hits.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch

from stylex.data.outputs import atomic_write_bytes

log = logging.getLogger(__name__)


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ArtifactCache:
    """`get_or_compute(kind, parts, compute)`: load `kind/<hash>.pt` or compute, store atomically, return."""

    def __init__(self, root: str | Path | None, memory_items: int = 256):
        self.root = Path(root).expanduser() if root else None
        self.memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.memory_items = memory_items
        self.hits = 0
        self.misses = 0

    def path(self, kind: str, key: str) -> Path | None:
        return self.root / kind / f"{key}.pt" if self.root else None

    def get_or_compute(self, kind: str, parts: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        key = f"{kind}/{cache_key(parts)}"
        if key in self.memory:
            self.hits += 1
            self.memory.move_to_end(key)
            return self.memory[key]
        path = self.path(kind, key.split("/", 1)[1])
        if path is not None and path.exists():
            try:
                value = torch.load(path, map_location="cpu", weights_only=True)
                self.hits += 1
                self._remember(key, value)
                return value
            except Exception as exc:  # a damaged cache entry is recomputed, never trusted
                log.warning("Ignoring unreadable cache entry %s (%s); recomputing.", path, exc)
        self.misses += 1
        value = compute()
        if path is not None:
            buffer = io.BytesIO()
            torch.save(value, buffer)
            atomic_write_bytes(path, buffer.getvalue())
        self._remember(key, value)
        return value

    def _remember(self, key: str, value: dict[str, Any]) -> None:
        self.memory[key] = value
        while len(self.memory) > self.memory_items:
            self.memory.popitem(last=False)
