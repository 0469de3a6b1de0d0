"""The output folder: `images/{content}__{style}.png` plus a JSON sidecar, written atomically.

An output counts as done when both files exist and the sidecar's `item_hash` (config + input bytes) matches,
so rerunning into the same folder resumes an interrupted run and recomputes only what changed.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_image(path: Path, image: Image.Image) -> None:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


class OutputStore:
    """Where a run's images and sidecars live."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.images = self.root / "images"

    def image_path(self, name: str) -> Path:
        return self.images / f"{name}.png"

    def sidecar_path(self, name: str) -> Path:
        return self.images / f"{name}.json"

    def read_sidecar(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.sidecar_path(name).read_text())
        except (OSError, ValueError):
            return None

    def is_done(self, name: str, item_hash: str) -> bool:
        sidecar = self.read_sidecar(name)
        return bool(sidecar) and sidecar.get("item_hash") == item_hash and self.image_path(name).exists()

    def write(self, name: str, image: Image.Image, sidecar: dict[str, Any],
              extra_images: dict[str, Image.Image] | None = None) -> Path:
        """Image (and any extra images, e.g. overlays) first, sidecar last: the sidecar marks completion."""
        atomic_save_image(self.image_path(name), image)
        for suffix, extra in (extra_images or {}).items():
            atomic_save_image(self.images / f"{name}.{suffix}.png", extra)
        atomic_write_bytes(self.sidecar_path(name), json.dumps(sidecar, indent=2, default=str).encode())
        return self.image_path(name)
