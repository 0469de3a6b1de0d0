"""Contents x references as Lightning data: one item per output image.

`pairing: product` gives one item per (content, style) pair; `pairing: gallery` one item per content against
every reference at once (StyleGallery's setting). Every input file is decoded once up front, so a bad file
stops the run before any work starts; items already written with the same hash are skipped (resume).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from stylex.data.images import (IMAGE_SUFFIXES, file_digest, load_image, resize, screen_images, to_tensor,
                                visible_files)
from stylex.data.outputs import OutputStore
from stylex.errors import ConfigError, InputError

log = logging.getLogger(__name__)

ON_BAD_IMAGE = ("stop", "skip")


@dataclass
class ImageRef:
    """An input image: where it is, its name in output file names, and its content hash."""

    path: Path
    name: str
    digest: str


@dataclass
class Item:
    """One output to produce: a content image and the references it is stylized with."""

    name: str
    content: ImageRef
    styles: list[ImageRef]
    item_hash: str
    seed: int
    content_image: Tensor | None = None  # [3,H,W] in [0,1], filled by the dataset
    style_images: list[Tensor] = field(default_factory=list)

    @property
    def style_keys(self) -> list[str]:
        """Identity of each reference, so a batch computes each reference's features once."""
        return [s.digest for s in self.styles]


def discover_images(spec: str | Sequence[str], role: str) -> list[Path]:
    """A folder, one image, or a list of either -> image paths (sorted per folder; hidden files ignored)."""
    entries = [spec] if isinstance(spec, (str, Path)) else list(spec)
    if not entries or entries == [None] or entries == [""]:
        raise ConfigError(f"data.{role} is not set. Pass a folder or image, e.g. `data.{role}=photos/`.")
    paths: list[Path] = []
    for entry in entries:
        path = Path(str(entry)).expanduser()
        if path.is_dir():
            files = visible_files(path, f"data.{role}")
            found = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            skipped = [p.name for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
            if skipped:
                log.warning("data.%s: ignoring %d non-image file(s) in %s: %s", role, len(skipped), path,
                            ", ".join(skipped[:5]))
            if not found:
                raise InputError(f"data.{role}={path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)}). "
                                 f"Point data.{role} at a folder of images or at one image file.")
            paths += found
        elif path.exists():
            paths.append(path)
        else:
            raise InputError(f"data.{role}={path}: no such file or folder. Check the path; relative paths are "
                             f"resolved from the directory you ran stylex in.")
    return paths


def unique_names(paths: list[Path], role: str) -> list[str]:
    """File stems name the outputs; two inputs with one stem would overwrite each other's outputs."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen and seen[path.stem] != path:
            raise InputError(f"data.{role}: {seen[path.stem]} and {path} share the name '{path.stem}', so their "
                             f"outputs would collide. Rename one of them.")
        seen[path.stem] = path
    return [p.stem for p in paths]


def output_collisions(groups: list[tuple[str, ImageRef, list[ImageRef]]]) -> None:
    """Two items with one output name would overwrite each other (contents `a`, `a__b` with styles `b__c`, `c`
    both give `a__b__c`): refused before any work."""
    by_name: dict[str, list[tuple[ImageRef, list[ImageRef]]]] = defaultdict(list)
    for name, content, refs in groups:
        by_name[name].append((content, refs))
    clashes = {name: sources for name, sources in by_name.items() if len(sources) > 1}
    if not clashes:
        return
    name, sources = next(iter(clashes.items()))
    pairs = " and ".join(f"{c.path.name} + {', '.join(r.path.name for r in refs)}" for c, refs in sources)
    raise InputError(f"{len(clashes)} output name(s) would be written twice, e.g. images/{name}.png by {pairs}. "
                     f"Outputs are named {{content}}__{{style}}: rename the inputs whose names contain '__' so that "
                     f"every pair gets its own name.")


def gallery_digest(path: str | Path) -> str:
    """The content digest a gallery's manifest records (stylex.gallery.store): outputs made against a gallery
    are redone when it changes."""
    manifest = Path(path).expanduser() / "manifest.json"
    try:
        return str(json.loads(manifest.read_text())["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"gallery.path={path}: no readable gallery there ({manifest}). Build it first: "
                         f"python -m stylex.index data.styles=<folder of style images> gallery.out={path}") from None


class ItemDataset(Dataset):
    def __init__(self, items: list[Item], resolution: int, content_resize: str, style_resize: str):
        self.items = items
        self.resolution = resolution
        self.content_resize = content_resize
        self.style_resize = style_resize

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Item:
        item = self.items[index]
        content = to_tensor(resize(load_image(item.content.path), self.resolution, self.content_resize))
        styles = [to_tensor(resize(load_image(s.path), self.resolution, self.style_resize)) for s in item.styles]
        return Item(item.name, item.content, item.styles, item.item_hash, item.seed, content, styles)


def collate_items(items: list[Item]) -> list[Item]:
    """Items stay a list: the method groups them by size and shares references itself."""
    return items


class StyleDataModule(L.LightningDataModule):
    def __init__(self, content: Any, styles: Any, pairing: str = "product", resolution: int = 512,
                 content_resize: str = "keep", style_resize: str = "squash", batch_size: int = 1,
                 num_workers: int = 0, seed: int = 0, gallery: Any = None, on_bad_image: str = "stop"):
        super().__init__()
        if pairing not in ("product", "gallery"):
            raise ConfigError(f"data.pairing={pairing!r} is not one of: product, gallery.")
        if on_bad_image not in ON_BAD_IMAGE:
            raise ConfigError(f"data.on_bad_image={on_bad_image!r} is not one of: {', '.join(ON_BAD_IMAGE)}.")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size={batch_size} must be at least 1.")
        self.content, self.styles, self.pairing = content, styles, pairing
        self.resolution, self.content_resize, self.style_resize = resolution, content_resize, style_resize
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.on_bad_image = on_bad_image
        # gallery=index (the `gallery` config node): content-only items; the method retrieves their references
        self.gallery = gallery.get("path") if hasattr(gallery, "get") else gallery
        if gallery is not None and not self.gallery:
            raise ConfigError("gallery=index needs the gallery folder: gallery.path=galleries/NAME (built with "
                              "python -m stylex.index data.styles=<folder> gallery.out=galleries/NAME).")
        if self.gallery and styles:
            raise ConfigError(f"data.styles={styles} and gallery.path={self.gallery} are both set; a run takes its "
                              f"references from one of them. Drop data.styles (or use gallery=none).")
        if self.gallery and pairing != "gallery":
            raise ConfigError("gallery=index needs data.pairing=gallery (each content against the whole gallery).")
        self.config_hash = ""
        self.store: OutputStore | None = None
        self.items: list[Item] | None = None
        self.skipped: list[str] = []  # outputs already done
        self.bad_inputs: dict[Path, str] = {}  # inputs left out (on_bad_image=skip): path -> why
        self.left_to_others = 0  # outputs another run into the same folder claimed first

    def bind(self, store: OutputStore, config_hash: str) -> None:
        """Where outputs go and the hash of everything that decides them (for resuming)."""
        self.store, self.config_hash = store, config_hash

    def prepare_items(self) -> list[Item]:
        """Find, validate and pair the inputs; drop items already done. Idempotent."""
        if self.items is not None:
            return self.items
        for value, name in ((self.content_resize, "content_resize"), (self.style_resize, "style_resize")):
            if value not in ("keep", "squash"):
                raise ConfigError(f"data.{name}={value!r} is not one of: keep, squash.")
        content_paths = discover_images(self.content, "content")
        style_paths = [] if self.gallery else discover_images(self.styles, "styles")
        content_paths, style_paths = self.readable(content_paths, style_paths)
        contents = [ImageRef(p, n, file_digest(p)) for p, n in zip(content_paths, unique_names(content_paths, "content"))]
        styles = [ImageRef(p, n, file_digest(p)) for p, n in zip(style_paths, unique_names(style_paths, "styles"))]
        if self.pairing == "product":
            # style-major order: consecutive items (one batch) share a reference, computed once per step
            groups = [(f"{c.name}__{s.name}", c, [s]) for s in styles for c in contents]
        else:
            groups = [(f"{c.name}__{self.reference_set_name()}", c, styles) for c in contents]
        output_collisions(groups)
        extra = [gallery_digest(self.gallery)] if self.gallery else []
        items = []
        for index, (name, content, refs) in enumerate(groups):
            parts = [self.config_hash, content.digest, *[r.digest for r in refs], *extra]
            digest = hashlib.sha256("|".join(parts).encode())
            item_seed = int.from_bytes(hashlib.sha256(f"{self.seed}:{name}".encode()).digest()[:4], "little")
            items.append(Item(name, content, refs, digest.hexdigest()[:16], item_seed))
        if self.store is not None:
            self.skipped = [i.name for i in items if self.store.is_done(i.name, i.item_hash)]
            if self.skipped:
                log.info("Resuming: %d of %d outputs are already done with this config and are skipped.",
                         len(self.skipped), len(items))
            items = [i for i in items if i.name not in set(self.skipped)]
        self.items = items
        return items

    def readable(self, contents: list[Path], styles: list[Path]) -> tuple[list[Path], list[Path]]:
        """Decode every input once before any work: unreadable ones stop the run (`on_bad_image=stop`) or are
        left out, logged and kept in `bad_inputs` (`skip`)."""
        bad = screen_images(contents + styles, self.on_bad_image, "data.on_bad_image=skip")
        if not bad:
            return contents, styles
        self.bad_inputs = bad
        contents, styles = [p for p in contents if p not in bad], [p for p in styles if p not in bad]
        for role, left in (("content", contents), ("styles", styles if not self.gallery else [None])):
            if not left:
                raise InputError(f"none of the data.{role} images can be read (e.g. {next(iter(bad))}: "
                                 f"{next(iter(bad.values()))}). Nothing was written.")
        return contents, styles

    def reference_set_name(self) -> str:
        """The `{style}` part of output names with pairing=gallery: the gallery's or folder's name, a single
        file's stem, or `gallery` for a list."""
        if self.gallery:
            return Path(str(self.gallery)).expanduser().resolve().name
        if not isinstance(self.styles, (str, Path)):
            return "gallery"
        source = Path(str(self.styles)).expanduser()
        return source.stem if source.is_file() else source.name

    def on_before_batch_transfer(self, batch: list[Item], dataloader_idx: int) -> list[Item]:
        """Another run writing into the same folder shares the work: the items it holds, or has finished since
        this run started, are left to it."""
        if self.store is None:
            return batch
        mine = [item for item in batch if self.store.claim(item.name, item.item_hash)]
        self.left_to_others += len(batch) - len(mine)
        return mine

    def setup(self, stage: str | None = None) -> None:
        self.prepare_items()

    def predict_dataloader(self) -> DataLoader:
        dataset = ItemDataset(self.prepare_items(), self.resolution, self.content_resize, self.style_resize)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                          collate_fn=collate_items)
