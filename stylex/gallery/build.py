"""Building and updating a gallery (python -m stylex.index): incremental, locked, never half-written.

Only new or changed images run stage 1 (a file is unchanged when its size and mtime, or else its content hash,
match the manifest); removed images leave the index; a renamed or copied file reuses the artifact of its
content. Per-image artifacts are written as they are computed, so an interrupted build loses no stage-1 work;
the index, id map and manifest are replaced atomically at the end, manifest last. A file lock keeps two builds
from writing one gallery at once.
"""
from __future__ import annotations

import io
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from filelock import FileLock, Timeout
from torch import Tensor
from tqdm.auto import tqdm

from stylex.data.images import (IMAGE_SUFFIXES, bad_images_error, file_digest, load_image, log_hidden, resize,
                                to_tensor, unreadable)
from stylex.data.outputs import atomic_write_bytes
from stylex.errors import ConfigError, InputError
from stylex.gallery import faiss_index
from stylex.gallery.faiss_index import IndexSpec
from stylex.gallery.store import (ARTIFACTS, FORMAT, IDS_FILE, INDEX_FILE, LOCK, MANIFEST, build_command,
                                     file_record, gallery_identity, identity_hash, load_index, mismatch_message,
                                     read_manifest, sha256_bytes, thumbnail, write_manifest)

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build did; `summary()` is the line the user reads."""

    root: Path
    images: int = 0  # in the gallery after the build
    regions: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    processed: int = 0  # images that ran stage 1
    reused: int = 0  # new or changed files whose content already had an artifact (renamed, copied)
    stage1_seconds: float = 0.0
    seconds: float = 0.0
    skipped: list[dict[str, Any]] = field(default_factory=list)
    index_type: str = ""
    index_note: str | None = None
    updated: bool = False  # whether the index and manifest were rewritten

    @property
    def images_per_second(self) -> float:
        return self.processed / self.stage1_seconds if self.stage1_seconds > 0 else 0.0

    def summary(self) -> str:
        text = (f"Gallery {self.root}: {self.images} image(s), {self.regions} region(s), {self.index_type} index. "
                f"This build: {self.new} new, {self.changed} changed, {self.removed} removed, {self.unchanged} "
                f"unchanged; stage 1 ran on {self.processed} image(s)")
        if self.processed:
            text += f" in {self.stage1_seconds:.1f} s ({self.images_per_second:.2f} images/s)"
        if self.reused:
            text += f", {self.reused} reused the artifact of an identical file"
        text += f"; {self.seconds:.1f} s in all."
        if self.index_note:
            text += f" Note: {self.index_note}."
        if self.skipped:
            listed = "; ".join(f"{s['path']} ({s['reason']})" for s in self.skipped[:5])
            more = f"; and {len(self.skipped) - 5} more" if len(self.skipped) > 5 else ""
            text += f" Skipped {len(self.skipped)} unreadable file(s), listed in {MANIFEST}: {listed}{more}."
        return text


def discover(sources: Any) -> tuple[list[str], list[tuple[str, Path]]]:
    """(absolute source paths, sorted (key, path) pairs): every image under each folder (recursively), or the
    file itself; a key is the path relative to its source folder."""
    entries = [sources] if isinstance(sources, (str, Path)) else list(sources or [])
    if not entries or any(e in (None, "") for e in entries):
        raise ConfigError("data.styles is not set. Pass the folder of style images, e.g. `data.styles=paintings/`.")
    roots, found = [], {}
    for entry in entries:
        root = Path(str(entry)).expanduser().resolve()
        if root.is_dir():
            every = [p for p in sorted(root.rglob("*")) if p.is_file()]
            hidden = [p for p in every if any(part.startswith(".") for part in p.relative_to(root).parts)]
            log_hidden(hidden, root, "data.styles")
            visible = set(every) - set(hidden)
            pairs = [(p.relative_to(root).as_posix(), p) for p in every
                     if p.suffix.lower() in IMAGE_SUFFIXES and p in visible]
        elif root.is_file():
            pairs = [(root.name, root)]
        else:
            raise InputError(f"data.styles={entry}: no such file or folder. Check the path; relative paths are "
                             f"resolved from the directory you ran stylex in.")
        for key, path in pairs:
            if key in found and found[key] != path:
                raise InputError(f"data.styles: {found[key]} and {path} would both be '{key}' in the gallery. Rename "
                                 f"one, or build from their common parent folder.")
            found[key] = path
        roots.append(str(root))
    if not found:
        raise InputError(f"data.styles={', '.join(roots)}: no images there ({', '.join(IMAGE_SUFFIXES)}). Point "
                         f"data.styles at a folder of style images.")
    return roots, sorted(found.items())


def check_sources(sources: Any) -> None:
    """That every source exists (cheap, before models load); `discover` enumerates them during the build."""
    entries = [sources] if isinstance(sources, (str, Path)) else list(sources or [])
    if not entries or any(e in (None, "") for e in entries):
        raise ConfigError("data.styles is not set. Pass the folder of style images, e.g. `data.styles=paintings/`.")
    for entry in entries:
        if not Path(str(entry)).expanduser().exists():
            raise InputError(f"data.styles={entry}: no such file or folder. Check the path; relative paths are "
                             f"resolved from the directory you ran stylex in.")


def entry_name(key: str) -> str:
    """A file-name-safe name for an image (used in match tables and overlay file names)."""
    return re.sub(r"[^\w.+-]+", "-", key.rsplit(".", 1)[0] if "." in key else key).strip("-") or "image"


def check_output_folder(root: Path) -> None:
    """Never write a gallery into a folder that holds something else."""
    if not root.exists():
        return
    if not root.is_dir():
        raise ConfigError(f"gallery.out={root} is a file. Choose a new or empty folder for the gallery.")
    foreign = [p.name for p in root.iterdir() if p.name not in (MANIFEST, INDEX_FILE, IDS_FILE, ARTIFACTS, LOCK)
               and not p.name.startswith(".")]
    if foreign and not (root / MANIFEST).exists():
        raise ConfigError(f"gallery.out={root} is a folder that is not a stylex gallery (it holds "
                          f"{', '.join(sorted(foreign)[:3])}). Choose a new or empty folder for the gallery.")


def load_for_stage1(path: Path, resolution: int, resize_mode: str) -> Tensor:
    """The image as runs see references: decoded, oriented, RGB, resized (`data.style_resize` at data.resolution)."""
    return to_tensor(resize(load_image(path), resolution, resize_mode))


def read_artifact(path: Path, config_hash: str) -> dict[str, Any] | None:
    """A stored artifact of this build's settings (from a renamed file or an interrupted build), or None."""
    if not path.exists():
        return None
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged artifact is recomputed
        return None
    return value if isinstance(value, dict) and value.get("config_hash") == config_hash else None


def artifact_ok(root: Path, entry: dict[str, Any]) -> bool:
    """Cheap check that an unchanged image's artifact is still there and whole."""
    try:
        return (root / entry["artifact"]).stat().st_size == entry["artifact_bytes"]
    except (OSError, KeyError):
        return False


def build_gallery(root: str | Path, sources: Any, analyse: Callable[[Tensor], dict[str, Any]], stage1: dict[str, Any],
                  resolution: int, resize_mode: str = "squash", spec: IndexSpec | None = None, *, rebuild: bool = False,
                  replace_source: bool = False, lock_timeout: float = 0.0, show_progress: bool = True,
                  on_bad_image: str = "stop") -> BuildReport:
    """Create or update the gallery at `root` from the images in `sources`.

    `analyse(image [3,H,W]) -> dict` is StyleGallery's stage 1 + descriptors (`StyleGallery.analyse`) and
    `stage1` its settings (`StyleGallery.stage1_identity()`), recorded so runs can check them. `rebuild`
    recomputes every image (also the only way past a change of settings); `replace_source` lets the gallery
    mirror another folder than before. An unreadable image stops the build before any stage-1 work
    (`on_bad_image="stop"`) or is skipped and listed in the manifest (`"skip"`).
    """
    root = Path(root).expanduser()
    roots, files = discover(sources)
    check_output_folder(root)
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / LOCK), timeout=lock_timeout)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(f"{root}: another `stylex.index` build is writing this gallery (it holds {root / LOCK}). "
                         f"Wait for it to finish, or set gallery.lock_timeout=SECONDS to wait for it.") from None
    try:
        return _build_locked(root, roots, files, analyse, gallery_identity(stage1, resolution, resize_mode),
                             spec or IndexSpec(), rebuild, replace_source, show_progress, on_bad_image)
    finally:
        lock.release()


def _build_locked(root: Path, roots: list[str], files: list[tuple[str, Path]], analyse: Callable[[Tensor], dict],
                  identity: dict[str, Any], spec: IndexSpec, rebuild: bool, replace_source: bool,
                  show_progress: bool, on_bad_image: str = "stop") -> BuildReport:
    start = time.perf_counter()
    report = BuildReport(root)
    chash = identity_hash(identity)
    try:
        old = read_manifest(root)
    except InputError as exc:
        if not rebuild:
            raise InputError(f"{exc} Or pass gallery.rebuild=true to rebuild it in place.") from None
        old = None
    if old is not None and old.get("config_hash") != chash and not rebuild:
        fix = ("Pass gallery.rebuild=true to recompute every image with the current settings, build into "
               "another gallery.out, or build with the settings it was made with.")
        raise ConfigError(mismatch_message(root, old, identity, fix))
    if old is not None and rebuild:
        log.warning("Rebuilding %s: every image runs stage 1 again.", root)
        old = None
    if old is not None and old.get("sources") != roots and not replace_source:
        raise ConfigError(f"the gallery {root} mirrors {', '.join(old.get('sources') or [])}, and this build names "
                          f"{', '.join(roots)}; images not in the new source would leave it. To update it, run "
                          f"`{build_command(root, old)}`; to replace its source, add gallery.replace_source=true.")
    old_images: dict[str, dict[str, Any]] = dict((old or {}).get("images", {}))
    old_skipped = {s["key"]: s for s in (old or {}).get("skipped", [])}
    next_id = int((old or {}).get("next_id", 0))
    images: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, Path, str, Any, str]] = []
    skipped: list[dict[str, Any]] = []
    for key, path in files:
        st = path.stat()
        entry = old_images.get(key)

        def same_stat(rec: dict[str, Any] | None) -> bool:
            return bool(rec) and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns

        if entry and same_stat(entry) and artifact_ok(root, entry):
            images[key] = {**entry, "path": str(path)}
            continue
        if not entry and same_stat(old_skipped.get(key)):
            skipped.append({**old_skipped[key], "path": str(path)})  # unreadable before and untouched since
            continue
        digest = file_digest(path)
        if entry and entry["sha256"] == digest and artifact_ok(root, entry):
            images[key] = {**entry, "path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
            continue
        todo.append((key, path, digest, st, "changed" if entry else "new"))
    if on_bad_image == "stop":  # every image stage 1 will read is decoded now: a bad one stops before any work
        to_decode = [path for _, path, digest, *_ in todo
                     if rebuild or not (root / artifact_name(chash, digest)).is_file()]
        bad = {**{Path(e["path"]): e["reason"] for e in skipped}, **unreadable(to_decode)}
        if bad:
            raise bad_images_error(bad, "data.on_bad_image=skip")
    present = {key for key, _ in files}
    report.removed = sum(key not in present for key in old_images)
    report.unchanged = len(images)
    n_new = sum(kind == "new" for *_, kind in todo)
    log.info("Gallery %s: %d image file(s) in %s: %d unchanged, %d removed since the last build; %d new and %d "
             "changed file(s) to process.", root, len(files), ", ".join(roots), report.unchanged, report.removed,
             n_new, len(todo) - n_new)
    new_vectors: dict[str, np.ndarray] = {}
    image_settings = identity["image"]
    bar = tqdm(todo, desc="stage 1", unit="img", disable=not show_progress or not todo, dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]")
    for key, path, digest, st, kind in bar:
        artifact_path = root / artifact_name(chash, digest)
        record = None if rebuild else read_artifact(artifact_path, chash)
        if record is None:
            try:
                image = load_for_stage1(path, image_settings["resolution"], image_settings["resize"])
            except InputError as exc:
                reason = str(exc).removeprefix(f"{path}: ")
                skipped.append({"key": key, "path": str(path), "reason": reason, "size": st.st_size,
                                "mtime_ns": st.st_mtime_ns})
                log.warning("Skipping %s: %s", path, reason)
                continue
            t0 = time.perf_counter()
            result = analyse(image)
            report.stage1_seconds += time.perf_counter() - t0
            report.processed += 1
            record = {**result, "thumb": thumbnail(image), "config_hash": chash}
            buffer = io.BytesIO()
            torch.save(record, buffer)
            atomic_write_bytes(artifact_path, buffer.getvalue())
        else:
            report.reused += 1
        setattr(report, kind, getattr(report, kind) + 1)
        images[key] = {"id": next_id, "name": entry_name(key), "path": str(path), "sha256": digest,
                       "size": st.st_size, "mtime_ns": st.st_mtime_ns, "regions": int(record["sem"].shape[0]),
                       "artifact": artifact_name(chash, digest), "artifact_bytes": artifact_path.stat().st_size}
        next_id += 1
        new_vectors[key] = faiss_index.normalise(record["sem"])
    bar.close()
    if not images:
        raise InputError(f"data.styles={', '.join(roots)}: none of the {len(files)} image file(s) could be read "
                         f"(e.g. {skipped[0]['path']}: {skipped[0]['reason']}). Nothing was written.")
    old_index_ok, old_vectors = recover_vectors(root, old, images, new_vectors)
    report.images, report.regions = len(images), sum(e["regions"] for e in images.values())
    same_spec = bool(old) and old["index"].get("requested") == spec.as_dict()
    if old_index_ok and same_spec and not new_vectors and set(images) == set(old_images):
        report.index_type, report.index_note = old["index"]["built"]["type"], old["index"].get("note")
        if sorted(images.items()) != sorted(old_images.items()) or skipped != old.get("skipped"):
            write_manifest(root, {**old, "images": dict(sorted(images.items())), "skipped": skipped})
    else:
        write_index(root, roots, identity, chash, images, skipped, next_id, spec, {**old_vectors, **new_vectors},
                    report)
        collect_garbage(root, images)
    report.skipped = skipped
    report.seconds = time.perf_counter() - start
    log.info(report.summary())
    return report


def recover_vectors(root: Path, old: dict[str, Any] | None, images: dict[str, dict[str, Any]],
                    new_vectors: dict[str, np.ndarray]) -> tuple[bool, dict[str, np.ndarray]]:
    """(whether the old index is intact, the vectors of the unchanged images): read back from the old index, or,
    where it is missing or damaged, from the stored artifacts."""
    wanted = {key: entry for key, entry in images.items() if key not in new_vectors}
    by_id: dict[int, np.ndarray] = {}
    intact = False
    if old is not None:
        try:
            index, ids = load_index(root, old)
            vectors = faiss_index.index_vectors(index)
            order = np.lexsort((ids[:, 1], ids[:, 0]))
            starts = np.searchsorted(ids[order, 0], [e["id"] for e in wanted.values()])
            for (key, entry), s in zip(wanted.items(), starts):
                by_id[entry["id"]] = vectors[order[s:s + entry["regions"]]]
            intact = True
        except InputError as exc:
            log.warning("%s Rebuilding the index from the stored artifacts.", exc)
    out = {}
    for key, entry in wanted.items():
        if entry["id"] in by_id:
            out[key] = by_id[entry["id"]]
        else:
            out[key] = faiss_index.normalise(torch.load(root / entry["artifact"], map_location="cpu",
                                                        weights_only=True)["sem"])
    return intact, out


def write_index(root: Path, roots: list[str], identity: dict[str, Any], chash: str, images: dict[str, dict[str, Any]],
                skipped: list[dict[str, Any]], next_id: int, spec: IndexSpec, vectors: dict[str, np.ndarray],
                report: BuildReport) -> None:
    """Build the index over every region (images in key order), then write index, id map and manifest."""
    keys = sorted(images)
    matrix = np.concatenate([vectors[k] for k in keys]).astype(np.float32)
    ids = np.concatenate([np.stack([np.full(images[k]["regions"], images[k]["id"]), np.arange(images[k]["regions"])], 1)
                          for k in keys]).astype(np.int64)
    index, built, note = faiss_index.build_index(matrix, spec)
    data = faiss_index.serialise(index)
    buffer = io.BytesIO()
    np.save(buffer, ids, allow_pickle=False)
    id_bytes = buffer.getvalue()
    digest = sha256_bytes(repr((chash, [(k, images[k]["sha256"]) for k in keys], built.as_dict())).encode())[:16]
    manifest = {
        "format": FORMAT, "kind": "stylex-gallery", "config_hash": chash, "stage1": identity, "sources": roots,
        "images": {k: images[k] for k in keys}, "next_id": next_id, "skipped": skipped, "regions": len(ids),
        "index": {**file_record(INDEX_FILE, data), "ntotal": int(index.ntotal), "dim": int(matrix.shape[1]),
                  "requested": spec.as_dict(), "built": built.as_dict(), "note": note},
        "id_map": {**file_record(IDS_FILE, id_bytes), "rows": len(ids)},
        "digest": digest, "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_bytes(root / INDEX_FILE, data)
    atomic_write_bytes(root / IDS_FILE, id_bytes)
    write_manifest(root, manifest)
    report.updated, report.index_type, report.index_note = True, built.type, note


def artifact_name(config_hash: str, digest: str) -> str:
    """Where an image's artifact lives: by settings and content, so a rebuild with new settings leaves the
    previous gallery usable until its manifest is replaced, and a renamed file finds its artifact."""
    return f"{ARTIFACTS}/{config_hash}/{digest}.pt"


def collect_garbage(root: Path, images: dict[str, dict[str, Any]]) -> None:
    """Delete artifacts no image refers to any more (removed or changed images, earlier settings)."""
    keep = {e["artifact"] for e in images.values()}
    for path in sorted((root / ARTIFACTS).rglob("*"), reverse=True):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative not in keep:
            path.unlink(missing_ok=True)
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
