"""Pairing output images `{content}__{style}.png` with their content and style images by file stem.

Style families: each subfolder of a styles folder (StyleGallery's benchmark: `style/Monet/*.png`) is a family,
and a styles folder is itself the family of the outputs made against all of it at once (`data.pairing=gallery`
names them `{content}__{folder}.png`). A pair records its family: the images the output was made against, or,
for an output made against one image of a family subfolder, that subfolder's images. Metrics set to compare
against the family (StyleGallery's Gram loss) use it; an image directly in a styles folder is a family of one.

Every problem is collected and reported at once in one `InputError`: outputs whose name does not split into a
known content stem and style stem, stems that match two files (`a.png` and `a.jpg`), and names that split more
than one way. Nothing is guessed. Overlays that runs write beside an output (`{name}.regions-content.png`,
`{name}.attention-{style}.png`) are not outputs and are skipped.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stylex.data.images import visible_files
from stylex.errors import InputError

SEPARATOR = "__"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAX_LISTED = 10


@dataclass(frozen=True)
class Pair:
    """One output with its content image and its style: one image (`style`), or a whole family (`style` None:
    made against every image of `family` at once)."""

    output: Path
    content: Path
    style: Path | None
    content_stem: str
    style_stem: str
    style_text: str | None = None
    family: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.content_stem}{SEPARATOR}{self.style_stem}"


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


Location = str | Path | Sequence[str | Path]


def describe_location(location: Location) -> str:
    """A folder or file as itself; a list as a short summary (the bundled samples are a list of 4 long paths)."""
    if isinstance(location, (str, Path)):
        return str(location)
    paths = [Path(str(p)) for p in location]
    names = ", ".join(p.name for p in paths[:4]) + (", ..." if len(paths) > 4 else "")
    parents = sorted({str(p.parent) for p in paths})
    where = f" in {parents[0]}" if len(parents) == 1 else ""
    return f"the {len(paths)} files given ({names}){where}"


def index_images(location: Location, role: str) -> dict[str, list[Path]]:
    """stem -> image files, for a folder (not recursive), a single image file, or a list of either."""
    if not isinstance(location, (str, Path)):
        entries = list(location)
        if not entries:
            raise InputError(f"no {role} images were given (an empty list). Pass a folder or image files.")
        merged: dict[str, list[Path]] = {}
        for entry in entries:
            for stem, files in index_images(entry, role).items():
                known = merged.setdefault(stem, [])
                known += [f for f in files if f not in known]  # the same file listed twice is one image
        return merged
    path = Path(location).expanduser()
    if path.is_file():
        if not _is_image(path):
            raise InputError(f"the {role} image {path} is not an image file ({', '.join(IMAGE_SUFFIXES)}).")
        return {path.stem: [path]}
    if not path.is_dir():
        raise InputError(f"the {role} folder {path} does not exist. Check the path given for the {role} images.")
    index: dict[str, list[Path]] = {}
    for file in visible_files(path, f"the {role} folder"):
        if _is_image(file):
            index.setdefault(file.stem, []).append(file)
    if not index:
        raise InputError(f"the {role} folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return index


def style_families(location: Location) -> dict[str, list[Path]]:
    """family name -> its images: every styles folder given and each of its subfolders (one level)."""
    if not isinstance(location, (str, Path)):
        merged: dict[str, list[Path]] = {}
        for entry in location:
            for name, files in style_families(entry).items():
                known = merged.setdefault(name, [])
                known += [f for f in files if f not in known]
        return merged
    path = Path(location).expanduser()
    if not path.is_dir():
        return {}
    families = {path.name: sorted(f for f in path.iterdir() if _is_image(f))}
    for sub in sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")):
        families[sub.name] = sorted(f for f in sub.iterdir() if _is_image(f))
    return {name: files for name, files in families.items() if files}


def index_styles(location: Location) -> dict[str, list[Path]]:
    """stem -> style image files: the images of the styles folders and of their family subfolders."""
    index = index_images(location, "style") if _has_images(location) else {}
    for name, files in style_families(location).items():
        for f in files:
            known = index.setdefault(f.stem, [])
            if f not in known:
                known.append(f)
    if not index:
        raise InputError(f"the style location {describe_location(location)} holds no images "
                         f"({', '.join(IMAGE_SUFFIXES)}), neither directly nor in family subfolders.")
    return index


def _has_images(location: Location) -> bool:
    if not isinstance(location, (str, Path)):
        return any(_has_images(e) for e in location)
    path = Path(location).expanduser()
    if path.is_dir():
        return any(_is_image(f) for f in path.iterdir())
    return True  # a file (or a missing path): index_images reports it


def family_of(style: Path, families: Mapping[str, Sequence[Path]], roots: set[Path]) -> tuple[Path, ...]:
    """The family of one style image: its subfolder's images; itself when it lies directly in a styles folder."""
    parent = style.parent
    if parent in roots:
        return (style,)
    members = families.get(parent.name, [])
    return tuple(members) if style in members else (style,)


def _roots(location: Location) -> set[Path]:
    if not isinstance(location, (str, Path)):
        return {r for e in location for r in _roots(e)}
    path = Path(location).expanduser()
    return {path} if path.is_dir() else {path.parent}


def is_overlay(stem: str, folder: Path, output_stems: set[str]) -> bool:
    """`{name}.{suffix}` is an overlay of output `name` when that output (or its JSON sidecar) is in the folder.

    Every '.' is tried, because content and style names may themselves contain dots.
    """
    return any(stem[:i] in output_stems or (folder / f"{stem[:i]}.json").is_file()
               for i, ch in enumerate(stem) if ch == "." and i > 0)


def output_images(outputs: str | Path) -> dict[str, list[Path]]:
    """stem -> files of the outputs folder, without the overlay images written beside the outputs."""
    index = index_images(outputs, "output")
    folder = Path(outputs).expanduser()
    if not folder.is_dir():
        return index
    stems = set(index)
    kept = {stem: files for stem, files in index.items() if not is_overlay(stem, folder, stems)}
    if not kept:
        raise InputError(f"the output folder {folder} holds only overlay images ({{name}}.{{suffix}}.png), no "
                         f"outputs. Point `outputs` at a run directory or its images/ folder.")
    return kept


def _listing(problems: list[str]) -> str:
    shown = [f"  - {p}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        shown.append(f"  - ... and {len(problems) - MAX_LISTED} more")
    return "\n".join(shown)


def pair_outputs(outputs: str | Path, contents: Location, styles: Location, *,
                 texts: Mapping[str, str] | None = None) -> list[Pair]:
    """All (output, content, style) triples, sorted by content then style stem.

    `contents` / `styles`: a folder, an image file, or a list of either.
    `texts` maps style stems to a style text (CLIP-T); otherwise a `{style}.txt` beside the style image is read.
    """
    out_index = output_images(outputs)
    c_index, s_index = index_images(contents, "content"), index_styles(styles)
    families, roots = style_families(styles), _roots(styles)
    s_names = set(s_index) | set(families)
    problems: list[str] = []
    pairs: list[Pair] = []
    for stem, files in sorted(out_index.items()):
        if len(files) > 1:
            problems.append(f"outputs {', '.join(f.name for f in files)} have the same name; keep one of them")
            continue
        splits = [(stem[:i], stem[i + len(SEPARATOR):]) for i in range(len(stem)) if stem.startswith(SEPARATOR, i)]
        splits = [(c, s) for c, s in splits if c and s]
        if not splits:
            problems.append(f"output {files[0].name} is not named {{content}}{SEPARATOR}{{style}}.png")
            continue
        found = [(c, s) for c, s in splits if c in c_index and s in s_names]
        if len(found) > 1:
            ways = " or ".join(f"content '{c}' + style '{s}'" for c, s in found)
            problems.append(f"output {files[0].name} can be read as {ways}; rename the content or style images "
                            f"so that the names do not themselves contain '{SEPARATOR}'")
            continue
        if not found and len(splits) > 1:
            tried = ", ".join(f"'{c}' + '{s}'" for c, s in splits)
            problems.append(f"output {files[0].name}: no reading as content + style matches the folders "
                            f"(tried {tried})")
            continue
        if not found:
            (c, s), = splits
            lacks = [f"content '{c}' in {describe_location(contents)}"] if c not in c_index else []
            lacks += [f"style '{s}' in {describe_location(styles)}"] if s not in s_names else []
            problems.append(f"output {files[0].name}: no {' and no '.join(lacks)}")
            continue
        (c, s), = found
        ambiguous = [f"{role} '{st}' matches {', '.join(f.name for f in idx[st])}"
                     for role, st, idx in (("content", c, c_index), ("style", s, s_index))
                     if len(idx.get(st, [])) > 1]
        if s in s_index and s in families:
            ambiguous.append(f"style '{s}' is both an image and a family folder")
        if ambiguous:
            problems.append(f"output {files[0].name}: {'; '.join(ambiguous)}; keep one file per name")
            continue
        if s not in s_index:  # made against a whole family at once
            folder_text = families[s][0].parent.with_suffix(".txt")
            text = texts.get(s) if texts is not None else None
            if text is None and folder_text.is_file():
                text = folder_text.read_text(encoding="utf-8").strip() or None
            pairs.append(Pair(files[0], c_index[c][0], None, c, s, text, tuple(families[s])))
            continue
        style_file = s_index[s][0]
        text = texts.get(s) if texts is not None else None
        sidecar = style_file.with_suffix(".txt")
        if text is None and sidecar.is_file():
            text = sidecar.read_text(encoding="utf-8").strip() or None
        pairs.append(Pair(files[0], c_index[c][0], style_file, c, s, text, family_of(style_file, families, roots)))
    if problems:
        raise InputError(
            f"{len(problems)} output image(s) in {outputs} cannot be paired with the content images in "
            f"{describe_location(contents)} and the style images in {describe_location(styles)}:\n"
            f"{_listing(problems)}\n"
            f"Outputs must be named {{content}}{SEPARATOR}{{style}}.png after the file names (without extension) "
            f"of one content and one style image: pass the folders the outputs were made from, or move the "
            f"unrelated outputs away.")
    return pairs
