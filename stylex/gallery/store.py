"""The gallery on disk: per-image stage-1 artifacts and a FAISS index over their regions' semantic vectors.

A gallery is a directory (DESIGN.md, "Gallery"):

    manifest.json  the stage-1 settings it was built with and their hash, one entry per image (path, content
                   hash, region count, artifact), the unreadable files that were skipped, and the size and
                   checksum of the index and the id map
    artifacts/     per image `<content hash>.pt`: latent, inverted x_T, label map, descriptors, a thumbnail
    index.faiss    FAISS index over every region's L2-normalised semantic vector (inner product = cosine)
    ids.npy        the id map: index row -> (image id, region)

`stylex.gallery.build.build_gallery` (python -m stylex.index) creates and updates it; `Gallery.open` + `search` serve runs with
`gallery=index`. Nothing read back is trusted unchecked: a gallery built with other stage-1 settings is
refused, and an index whose size, checksum or row count disagrees with the manifest and id map is not used.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from stylex.data.images import file_digest, load_image, resize, to_tensor
from stylex.data.outputs import atomic_write_bytes
from stylex.errors import ConfigError, InputError
from stylex.gallery import faiss_index

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
IDS_FILE = "ids.npy"
ARTIFACTS = "artifacts"
LOCK = ".lock"


@dataclass(frozen=True)
class Candidate:
    """A gallery region retrieved for a query: image (its key in the manifest), region, cosine similarity."""

    image: str
    region: int
    similarity: float


# ---------------------------------------------------------------------------------------------- settings


def gallery_identity(stage1: dict[str, Any], resolution: int, resize_mode: str) -> dict[str, Any]:
    """Everything that decides a gallery image's artifacts: the method's stage-1 settings and model ids
    (`StyleGallery.stage1_identity()`) plus how images are resized before stage 1."""
    return {**stage1, "image": {"resolution": int(resolution), "resize": str(resize_mode)}}


def identity_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def differences(built: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """'setting: gallery value vs wanted value' for every setting that differs."""
    a, b = _flatten(built), _flatten(wanted)
    return [f"{key}: {a.get(key)!r} in the gallery vs {b.get(key)!r} now"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def build_command(root: Path | str, manifest: dict[str, Any] | None, extra: str = "") -> str:
    sources = (manifest or {}).get("sources") or ["<folder of style images>"]
    styles = sources[0] if len(sources) == 1 else "[" + ",".join(sources) + "]"
    return f"python -m stylex.index data.styles={styles} gallery.out={root}{extra}"


def mismatch_message(root: Path | str, manifest: dict[str, Any], wanted: dict[str, Any], fix: str) -> str:
    diffs = differences(manifest.get("stage1") or {}, wanted) or ["(the recorded settings hash differs)"]
    shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
    return (f"the gallery {root} was built with another model or other stage-1 settings ({shown}), so its regions "
            f"and descriptors do not fit. {fix}")


# ---------------------------------------------------------------------------------------------- files


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(root: Path | str) -> dict[str, Any] | None:
    """The manifest, or None where there is none; InputError when it is unreadable."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: the gallery manifest is damaged ({exc}). Build the gallery again into a new "
                         f"folder (python -m stylex.index ... gallery.out=<new folder>).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a stylex gallery manifest of format {FORMAT}. Build the gallery again with "
                         f"this version of stylex (python -m stylex.index ...).")
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    atomic_write_bytes(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())


def file_record(name: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """What the manifest records about a file it must be able to verify later."""
    return {"file": name, "bytes": len(data), "sha256": sha256_bytes(data), **extra}


def read_checked(root: Path, record: dict[str, Any], what: str, fix: str) -> bytes:
    """A file's bytes, if its size and checksum are those the manifest recorded (InputError otherwise)."""
    path = root / record["file"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: the gallery's {what} cannot be read ({exc}); it is not used. {fix}") from None
    if len(data) != record.get("bytes"):
        raise InputError(f"{path}: the gallery's {what} has {len(data)} bytes where the manifest recorded "
                         f"{record.get('bytes')} (truncated or replaced); it is not used. {fix}")
    if sha256_bytes(data) != record.get("sha256"):
        raise InputError(f"{path}: the gallery's {what} does not match the checksum in {MANIFEST} (damaged, or "
                         f"from another build); it is not used. {fix}")
    return data


def load_index(root: Path, manifest: dict[str, Any]) -> tuple[Any, np.ndarray]:
    """The verified FAISS index and id map [N, 2] (image id, region) of a gallery."""
    fix = f"Run `{build_command(root, manifest)}`: it rebuilds the index from the stored artifacts."
    info, idmap = manifest.get("index"), manifest.get("id_map")
    if not info or not idmap:
        raise InputError(f"{root / MANIFEST}: the manifest records no index. {fix}")
    data = read_checked(root, info, "index", fix)
    id_bytes = read_checked(root, idmap, "id map", fix)
    try:
        index = faiss_index.deserialise(data)
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise InputError(f"{root / info['file']}: faiss cannot read the index ({reason}). {fix}") from None
    try:
        ids = np.load(io.BytesIO(id_bytes), allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{root / idmap['file']}: the id map cannot be read ({exc}). {fix}") from None
    if ids.ndim != 2 or ids.shape[1] != 2 or not (index.ntotal == len(ids) == info.get("ntotal")):
        raise InputError(f"{root / info['file']}: the index holds {index.ntotal} vectors, the id map {len(ids)} rows "
                         f"and the manifest {info.get('ntotal')}; they must agree. {fix}")
    if index.d != info.get("dim"):
        raise InputError(f"{root / info['file']}: vectors of dimension {index.d}, the manifest says "
                         f"{info.get('dim')}. {fix}")
    regions = {e["id"]: e["regions"] for e in manifest["images"].values()}
    found = dict(zip(*np.unique(ids[:, 0], return_counts=True))) if len(ids) else {}
    if {int(k): int(v) for k, v in found.items()} != regions or (len(ids) and ids[:, 1].min() < 0):
        raise InputError(f"{root / idmap['file']}: the id map does not list exactly the regions of the images in "
                         f"{MANIFEST}. {fix}")
    return index, ids


def thumbnail(image: Tensor, size: int = 96) -> Tensor:
    """A small uint8 copy [3, size, size] kept with the artifacts, so candidates can be shown without their files."""
    small = torch.nn.functional.interpolate(image[None].float(), size=(size, size), mode="bilinear",
                                            align_corners=False, antialias=True)[0]
    return (small.clamp(0, 1) * 255).round().to(torch.uint8)


# ---------------------------------------------------------------------------------------------- the gallery


class Gallery:
    """A built gallery, opened for search: `search(vectors, k)`, `artifact(image)`, `reference_image(image)`."""

    def __init__(self, root: Path, manifest: dict[str, Any], index: Any, ids: np.ndarray, cache_items: int = 256):
        self.root, self.manifest, self.index, self.ids = root, manifest, index, ids
        self.images: dict[str, dict[str, Any]] = manifest["images"]
        self._key_of_id = {entry["id"]: key for key, entry in self.images.items()}
        self._artifacts: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cache_items = cache_items

    # -- opening -----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path, expect: dict[str, Any] | None = None, device: str = "cpu",
             nprobe: int | None = None, rerank: int | None = None) -> "Gallery":
        """Open and verify a gallery; `expect` (a `gallery_identity`) must equal the one it was built with."""
        root = Path(root).expanduser()
        for attempt in range(2):
            manifest = read_manifest(root)
            if manifest is None:
                raise InputError(f"gallery.path={root}: no gallery there ({MANIFEST} is missing). Build it first: "
                                 f"{build_command(root, None)}")
            if expect is not None and manifest.get("config_hash") != identity_hash(expect):
                command = build_command(root, manifest, " gallery.rebuild=true")
                fix = (f"Rebuild it with this run's settings: `{command}` plus the run's method/backbone/data "
                       f"overrides (or run with the settings it was built with).")
                raise ConfigError(mismatch_message(root, manifest, expect, fix))
            try:
                index, ids = load_index(root, manifest)
                break
            except InputError:
                if attempt == 0 and read_manifest(root) != manifest:
                    continue  # a build replaced the gallery while it was read: read the new one
                raise
        built = manifest["index"].get("built", {})
        faiss_index.configure(index, nprobe or built.get("nprobe"), rerank or built.get("rerank"))
        return cls(root, manifest, faiss_index.to_device(index, device), ids)

    # -- facts -------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.root.resolve().name

    @property
    def digest(self) -> str:
        return self.manifest["digest"]

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def entry(self, key: str) -> dict[str, Any]:
        return self.images[key]

    def key_for(self, name: str) -> str:
        """An image's key from its key or its name (as in match tables and output files)."""
        if name in self.images:
            return name
        for key, entry in self.images.items():
            if entry["name"] == name:
                return key
        raise ConfigError(f"'{name}' is not an image of the gallery {self.root} (names look like "
                          f"{', '.join(list(self.images)[:3])}).")

    # -- search ------------------------------------------------------------------------------------------
    def search(self, vectors: Tensor | np.ndarray, k: int) -> list[list[Candidate]]:
        """The k regions whose semantic vectors are most cosine-similar to each row of `vectors`, best first."""
        queries = faiss_index.normalise(vectors)
        if queries.shape[1] != self.index.d:
            raise ConfigError(f"semantic descriptors of length {queries.shape[1]} cannot search the gallery "
                              f"{self.root}, whose vectors have length {self.index.d}.")
        sims, rows = faiss_index.search(self.index, queries, k)
        return [[Candidate(self._key_of_id[int(self.ids[row, 0])], int(self.ids[row, 1]), float(sim))
                 for sim, row in zip(sim_row, row_row) if row >= 0] for sim_row, row_row in zip(sims, rows)]

    # -- per-image data ----------------------------------------------------------------------------------
    def artifact(self, key: str) -> dict[str, Any]:
        """The stored stage-1 result of one image (latent, x_T, labels, stat, sem, geo, thumb), checked."""
        if key in self._artifacts:
            self._artifacts.move_to_end(key)
            return self._artifacts[key]
        entry = self.images[key]
        path = self.root / entry["artifact"]
        fix = f"Run `{build_command(self.root, self.manifest)}` again: it recomputes missing or damaged entries."
        try:
            if path.stat().st_size != entry["artifact_bytes"]:
                raise OSError("its size differs from the manifest's record")
            value = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable artifact means the same thing to the user
            raise InputError(f"{path}: the stored stage-1 result of {entry['path']} is missing or damaged ({exc}). "
                             f"{fix}") from None
        if value.get("config_hash") != self.manifest["config_hash"]:
            raise InputError(f"{path}: belongs to another build of the gallery. {fix}")
        self._artifacts[key] = value
        while len(self._artifacts) > self._cache_items:
            self._artifacts.popitem(last=False)
        return value

    def reference_image(self, key: str) -> Tensor | None:
        """The image as the gallery saw it (resized as recorded), or None where its file is gone or changed."""
        entry, image = self.images[key], self.manifest["stage1"]["image"]
        path = Path(entry["path"])
        try:
            if file_digest(path) != entry["sha256"]:
                log.warning("%s changed since the gallery %s was built; using its stored latent. Update the "
                            "gallery: %s", path, self.root, build_command(self.root, self.manifest))
                return None
            return to_tensor(resize(load_image(path), image["resolution"], image["resize"]))
        except (InputError, OSError) as exc:
            log.warning("Gallery image %s cannot be read (%s); using its stored latent.", path, exc)
            return None
