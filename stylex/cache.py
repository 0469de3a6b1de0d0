"""Content-addressed cache of per-image artifacts (inversions, regions, descriptors).

The key is a hash of everything that decides the artifact (image bytes, model id, every parameter), never a
path: a changed threshold recomputes, an unchanged one reuses, and a renamed file still hits.

The cache may live on a filesystem that many processes (ranks, nodes, sweep jobs) share. An entry appears
only by an atomic rename of a complete file, so a reader never sees a half-written one; and a lock file per
entry lets one process compute a missing entry while the others wait for it and then read it.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from filelock import FileLock, Timeout

from stylex.data.outputs import atomic_write_bytes

log = logging.getLogger(__name__)


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class ArtifactCache:
    """`get_or_compute(kind, parts, compute)`: load `kind/<hash>.pt` or compute, store atomically, return.

    `lock_timeout`: seconds to wait for another process computing the same entry; past it (or where the
    filesystem has no locks) this process computes the entry itself, and the last complete write stands.
    """

    def __init__(self, root: str | Path | None, memory_items: int = 256, lock_timeout: float = 900.0):
        self.root = Path(root).expanduser() if root else None
        self.memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.memory_items = memory_items
        self.lock_timeout = lock_timeout
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
        if path is None:
            value = self._compute(compute)
        else:
            value = self._load(path)
            if value is None:
                with self._entry_lock(path):
                    value = self._load(path)  # another process may have written it while this one waited
                    if value is None:
                        value = self._compute(compute)
                        buffer = io.BytesIO()
                        torch.save(value, buffer)
                        atomic_write_bytes(path, buffer.getvalue())
        self._remember(key, value)
        return value

    def _compute(self, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        self.misses += 1
        return compute()

    def _load(self, path: Path) -> dict[str, Any] | None:
        if not path.exists():
            return None
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged cache entry is recomputed, never trusted
            log.warning("Ignoring unreadable cache entry %s (%s); recomputing.", path, exc)
            return None
        self.hits += 1  # found on disk (before, or after waiting for the process that computed it)
        return value

    @contextmanager
    def _entry_lock(self, path: Path) -> Iterator[None]:
        """Hold `<entry>.lock` while computing the entry; go on without it rather than stop the run."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=self.lock_timeout)
        held = False
        try:
            lock.acquire()
            held = True
        except Timeout:
            log.warning("Waited %.0f s for another process computing %s; computing it here too.", self.lock_timeout,
                        path)
        except OSError as exc:  # e.g. a filesystem without locks: atomic writes alone keep the entry whole
            log.debug("No lock for %s (%s); computing without it.", path, exc)
        try:
            yield
        finally:
            if held:
                lock.release()

    def _remember(self, key: str, value: dict[str, Any]) -> None:
        self.memory[key] = value
        while len(self.memory) > self.memory_items:
            self.memory.popitem(last=False)
