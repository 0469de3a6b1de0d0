"""The images the page works on: the configured ones (`data.content`, `data.styles`; the bundled samples by
default) and uploads, which are checked and copied into the output folder so the batch command can read them
after the page is gone."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stylex.data.datamodule import discover_images
from stylex.data.images import IMAGE_SUFFIXES, file_digest, load_image
from stylex.data.outputs import atomic_write_bytes
from stylex.errors import InputError
from stylex.studio_app.plan_files import inside


@dataclass(frozen=True)
class Source:
    """An input image: its file, and its name (the file's stem) in outputs, overrides and masks."""

    path: Path
    name: str


def source(path: str | Path) -> Source:
    path = Path(path).expanduser().resolve()
    return Source(path, path.stem)


def configured(spec: Any, role: str) -> list[Source]:
    """The images a config value names (a folder, a file or a list); none when it is unset."""
    if spec is None or spec == "" or (isinstance(spec, (list, tuple)) and not spec):
        return []
    return [source(p) for p in discover_images(spec if isinstance(spec, (str, Path)) else list(spec), role)]


def safe_name(name: str) -> str:
    """A file name with only letters, digits, '-', '_' and '.', never hidden: uploaded names become output
    names and command-line values."""
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^\w\-]+", "_", stem).strip("._") or "upload"
    return stem + suffix


def take_upload(root: Path, uploaded: str | Path, original_name: str, max_pixels: int, max_megabytes: float) -> Source:
    """Check an uploaded file (size, pixel count, decodes as an image) and keep a copy under
    `inputs/<digest>/` of the output folder."""
    uploaded = Path(uploaded)
    name = safe_name(original_name)
    if Path(name).suffix not in IMAGE_SUFFIXES:
        raise InputError(f"{original_name}: not an image file ({', '.join(IMAGE_SUFFIXES)}). Upload a PNG or JPEG.")
    size = uploaded.stat().st_size
    if size > max_megabytes * 2**20:
        raise InputError(f"{original_name}: {size / 2**20:.1f} MB is more than the studio accepts "
                         f"(studio.max_upload_mb={max_megabytes:g}). Downscale it first.")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(uploaded) as img:
            width, height = img.size
    except Image.DecompressionBombError:
        raise InputError(f"{original_name}: more pixels than the studio accepts (so many that PIL refuses to open "
                         f"it). Downscale it first; stylex works at data.resolution.") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise InputError(f"{original_name}: not an image PIL can read. Upload a PNG or JPEG.") from None
    if width * height > max_pixels:
        raise InputError(f"{original_name}: {width}x{height} pixels is more than the studio accepts "
                         f"(studio.max_pixels={max_pixels}). Downscale it first; stylex works at data.resolution.")
    try:
        load_image(uploaded)
    except InputError as exc:
        raise InputError(str(exc).replace(str(uploaded), original_name)) from None
    folder = inside(root, root / "inputs" / file_digest(uploaded))
    kept = folder / name
    if not kept.exists():
        atomic_write_bytes(kept, uploaded.read_bytes())
    return Source(kept, kept.stem)
