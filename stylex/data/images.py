"""Reading the images users have (EXIF-rotated, RGBA, palette, grayscale, 16-bit) and resizing them.

Everything else is rejected with an `InputError` that names the file and what to do.
"""
from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from stylex.errors import ConfigError, InputError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
MIN_SIDE = 16  # below this an image carries no usable structure for an 8x-downsampling VAE
BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white


def _to_rgb(img: Image.Image, path: Path) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB, compositing transparency onto white and rescaling 16/32-bit data."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if img.mode.startswith("I;16") or arr.max() > 255 else (0.0, 255.0)
        if img.mode == "F":
            lo, hi = float(arr.min()), float(arr.max()) if arr.max() > arr.min() else float(arr.min()) + 1.0
        arr = np.clip((arr - lo) / (hi - lo), 0, 1) * 255
        img = Image.fromarray(arr.round().astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if img.mode in ("RGB", "L", "1", "CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    raise InputError(f"{path}: images in PIL mode '{img.mode}' are not supported. Convert it to an RGB PNG or JPEG.")


def load_image(path: str | Path) -> Image.Image:
    """Open, fully decode, orient (EXIF) and convert to RGB; `InputError` for anything unusable."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path (relative paths start from where you ran stylex).")
    if not path.is_file():
        raise InputError(f"{path}: is not a file.")
    try:
        with Image.open(path) as img:
            img.seek(0)  # the first frame of an animation or a multi-page TIFF
            img.load()
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb(img, path)
    except UnidentifiedImageError:
        raise InputError(f"{path}: is not an image PIL can read. Remove it or convert it to PNG/JPEG.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: the image is damaged or truncated ({exc}). Re-export or re-download it.") from None
    if min(rgb.size) < MIN_SIDE:
        raise InputError(f"{path}: {rgb.size[0]}x{rgb.size[1]} pixels is too small; use images at least "
                         f"{MIN_SIDE} pixels on each side (512 or more is best).")
    return rgb


def visible_files(folder: Path, setting: str) -> list[Path]:
    """The files of `folder` (sorted), without hidden ones (`.DS_Store`, macOS `._photo.jpg`, ...), which are
    named in one log line."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    log_hidden([p for p in files if p.name.startswith(".")], folder, setting)
    return [p for p in files if not p.name.startswith(".")]


def log_hidden(hidden: list[Path], folder: Path, setting: str) -> None:
    if hidden:
        _log_hidden_once(str(folder), setting, tuple(p.name for p in hidden))


@functools.lru_cache(maxsize=256)
def _log_hidden_once(folder: str, setting: str, names: tuple[str, ...]) -> None:
    """One line per folder, however many times a command lists it."""
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    log.info("%s: ignoring %d hidden file(s) in %s (%s)", setting, len(names), folder, shown)


def unreadable(paths: list[Path]) -> dict[Path, str]:
    """Decode every image once; {path: why it cannot be used} for those that fail."""
    bad: dict[Path, str] = {}
    for path in paths:
        try:
            load_image(path)
        except InputError as exc:
            bad[path] = str(exc).removeprefix(f"{path}: ")
    return bad


def bad_images_error(bad: dict[Path, str], skip_setting: str) -> InputError:
    """The error for unreadable images when they stop the work (`on_bad_image=stop`): every file and why."""
    fix = (f"Fix or remove {'it' if len(bad) == 1 else 'them'}, or pass {skip_setting} to leave unreadable images "
           f"out (they are then listed in skipped.txt).")
    if len(bad) == 1:
        (path, reason), = bad.items()
        return InputError(f"{path}: {reason} {fix}")
    listed = "\n".join(f"  - {path}: {reason}" for path, reason in list(bad.items())[:10])
    more = f"\n  - ... and {len(bad) - 10} more" if len(bad) > 10 else ""
    return InputError(f"{len(bad)} images cannot be read:\n{listed}{more}\n{fix}")


def screen_images(paths: Iterable[Path], on_bad_image: str, skip_setting: str) -> dict[Path, str]:
    """Decode every image once before any work: {path: why} for the unreadable ones. `on_bad_image=stop`: one
    `InputError` listing them all (`skip_setting` says how to go on without them); `skip`: each is logged."""
    bad = unreadable(list(dict.fromkeys(paths)))
    if bad and on_bad_image == "stop":
        raise bad_images_error(bad, skip_setting)
    for path, reason in bad.items():
        log.warning("Skipping %s: %s", path, reason)
    return bad


def file_digest(path: str | Path) -> str:
    """Content hash of a file: outputs and caches are keyed on bytes, never on paths."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def keep_aspect_size(width: int, height: int, resolution: int, multiple: int = 64) -> tuple[int, int]:
    """(w, h) with the aspect kept, area about resolution², each side a multiple of `multiple`."""
    scale = resolution / (width * height) ** 0.5
    return (max(multiple, round(width * scale / multiple) * multiple),
            max(multiple, round(height * scale / multiple) * multiple))


def resize(img: Image.Image, resolution: int, mode: str, multiple: int = 64) -> Image.Image:
    """`squash`: resolution x resolution (the reference code's choice); `keep`: aspect kept (see keep_aspect_size)."""
    if resolution % multiple:
        raise ConfigError(f"data.resolution={resolution} must be a multiple of {multiple}.")
    if mode == "squash":
        size = (resolution, resolution)
    elif mode == "keep":
        size = keep_aspect_size(*img.size, resolution, multiple)
    else:
        raise ConfigError(f"resize mode {mode!r} is not one of: squash, keep.")
    return img if img.size == size else img.resize(size, Image.Resampling.LANCZOS)


def to_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image -> float tensor [3,H,W] in [0,1]."""
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()


def to_pil(image: Tensor) -> Image.Image:
    """Float tensor [3,H,W] in [0,1] -> RGB PIL image."""
    arr = (image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(arr)
