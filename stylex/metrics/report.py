"""Running metrics over pairs, writing `metrics.csv` (per image) and `summary.csv` (per method), and a
comparison grid image (rows = contents, columns = styles, one panel per method)."""
from __future__ import annotations

import csv
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from stylex.metrics import preprocess
from stylex.metrics.base import Metric, PairBatch
from stylex.metrics.fid import ArtFID
from stylex.metrics.pairing import Pair
from stylex.metrics.preprocess import View

log = logging.getLogger(__name__)

Row = dict[str, object]


class _ImageCache:
    """Style (and content) images repeat across outputs: keep the most recent ones loaded, per view."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self.items: OrderedDict[tuple[Path, View, tuple[int, int] | None], torch.Tensor] = OrderedDict()

    def __call__(self, path: Path, view: View, like: tuple[int, int] | None = None) -> torch.Tensor:
        key = (path, view, like)
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        img = preprocess.load_view(path, view, like)
        self.items[key] = img
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)
        return img


class LazyImages(Sequence[torch.Tensor]):
    """A style family's images as `view` loads them, read only when a metric asks: metrics keep a family's
    features after its first output, so the family's files are not decoded again for every output."""

    def __init__(self, paths: Sequence[Path], view: View, load: _ImageCache) -> None:
        self.paths, self.view, self.load = list(paths), view, load

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:  # type: ignore[override]
        return self.load(self.paths[i], self.view)


def describe_evaluation(metrics: Mapping[str, Metric], views: Mapping[str, View] | None = None,
                        size: int | None = preprocess.EVAL_SIZE) -> str:
    """Each metric's view of the files and its network's input, as one line for the results files (entries
    separated by ' | ')."""
    parts = []
    for name, m in metrics.items():
        view = (views or {}).get(name) or _default_view(size)
        network = m.describe_input()
        parts.append(f"{name}: {view.describe()}" + (f", {network}" if network else ""))
    return " | ".join(["images RGB, values in [0,1]", *parts])


def _default_view(size: int | None) -> View:
    return View("squash", size) if size else View("none", None)


def family_id(pair: Pair) -> str:
    """The name a pair's style family goes by (its files, joined)."""
    return "|".join(str(f) for f in (pair.family or ((pair.style,) if pair.style else ())))


def _batches(chunk: Sequence[Pair], view: View, load: _ImageCache, style: bool, family: bool
             ) -> list[tuple[list[int], PairBatch]]:
    """The chunk's pairs as `view` loads them, split into batches of equal image shapes (a view that keeps the
    aspect ratio or the file's own resolution gives images of several sizes)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    loaded = []
    for i, p in enumerate(chunk):
        out = load(p.output, view)
        like = (int(out.shape[1]), int(out.shape[2]))
        content = load(p.content, view, like)
        sty = load(p.style, view) if style and p.style is not None else None
        loaded.append((out, content, sty))
        key = (tuple(out.shape), None if sty is None else tuple(sty.shape))
        groups.setdefault(key, []).append(i)
    batches = []
    for idx in groups.values():
        ps = [chunk[i] for i in idx]
        styles = [loaded[i][2] for i in idx]
        batches.append((idx, PairBatch(
            stylized=torch.stack([loaded[i][0] for i in idx]),
            content=torch.stack([loaded[i][1] for i in idx]),
            style=torch.stack(styles) if styles and all(t is not None for t in styles) else None,  # type: ignore[misc]
            style_ids=[str(p.style) if p.style is not None else family_id(p) for p in ps],
            style_texts=[p.style_text for p in ps],
            style_names=[p.style_stem for p in ps],
            names=[p.name for p in ps],
            families=[LazyImages(p.family, view, load) for p in ps] if family else None,
            family_ids=[family_id(p) for p in ps] if family else None,
        )))
    return batches


def evaluate_pairs(pairs: Sequence[Pair], metrics: Mapping[str, Metric], batch_size: int = 8, *,
                   views: Mapping[str, View] | None = None, size: int | None = preprocess.EVAL_SIZE,
                   method: str = "", progress: Callable[[int, int], None] | None = None) -> tuple[list[Row], Row]:
    """Feed every pair to every metric in batches, each metric seeing the files through its view (`views[name]`;
    a metric without one: squashed to `size`). Returns per-image rows (content, style, output and the per-image
    metric values) and one summary row (method, n_images, each metric's aggregate, the convention).
    Pairs are fed family by family (their style features are computed once and kept); rows keep the given order."""
    for m in metrics.values():
        m.reset()
    by_view: dict[View, list[str]] = {}
    for name in metrics:
        by_view.setdefault((views or {}).get(name) or _default_view(size), []).append(name)
    load = _ImageCache()
    rows: list[Row] = [{"content": p.content_stem, "style": p.style_stem, "output": str(p.output)} for p in pairs]
    order = sorted(range(len(pairs)), key=lambda i: (family_id(pairs[i]), i))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        chunk = [pairs[i] for i in idx]
        for view, names in by_view.items():
            style = any(metrics[n].needs_style for n in names)
            family = any(metrics[n].needs_family for n in names)
            for sub, batch in _batches(chunk, view, load, style, family):
                for name in names:
                    values = metrics[name].update(batch)
                    if values is not None:
                        for j, v in zip(sub, values.tolist()):
                            rows[idx[j]][name] = v
        done = start + len(chunk)
        log.info("evaluated %d/%d outputs", done, len(pairs))
        if progress is not None:
            progress(done, len(pairs))
    summary: Row = {"method": method, "n_images": len(pairs)}
    for name, metric in metrics.items():
        summary[name] = metric.compute()
        if isinstance(metric, ArtFID):
            for part, value in metric.components().items():
                summary[f"{name}.{part}"] = value
    summary["preprocess"] = describe_evaluation(metrics, views, size)
    return rows, summary


# ---------------------------------------------------------------------------------------------- CSV

def _columns(rows: Iterable[Row], first: Sequence[str]) -> list[str]:
    cols = list(first)
    for row in rows:
        cols += [k for k in row if k not in cols]
    return cols


def _fmt(value: object) -> object:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.8g}"
    return value


def _atomic_write(path: Path, rows: Sequence[Row], columns: Sequence[str]) -> Path:
    """The rows' values formatted for the CSV; an interrupted write never leaves half a file."""
    from stylex.data.outputs import atomic_write_csv

    return atomic_write_csv(path, [{k: _fmt(row.get(k, "")) for k in columns} for row in rows], columns)


def write_metrics_csv(path: str | Path, rows: Sequence[Row]) -> Path:
    """Per-image values: (method, protocol,) content, style, output, then one column per per-image metric."""
    first = tuple(k for k in ("method", "protocol") if any(k in r for r in rows)) + ("content", "style", "output")
    return _atomic_write(Path(path), rows, _columns(rows, first))


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _summary_key(row: Mapping[str, object]) -> tuple[str, str, str]:
    return str(row.get("method", "")), str(row.get("protocol", "") or ""), str(row.get("source", "") or "")


def write_summary_csv(path: str | Path, summaries: Sequence[Row], merge: bool = True,
                      order: Sequence[str] = ("method", "n_images")) -> Path:
    """One row per method (and protocol, and source: measured or published). With `merge`, rows already in the
    file under other keys are kept and a row evaluated again replaces its old one, so evaluating methods one at
    a time builds up one table. Columns: `order` first (those present), the rest as found, `preprocess` last."""
    path = Path(path)
    rows: list[Row] = []
    new = {_summary_key(s) for s in summaries}
    if merge and path.is_file():
        rows = [dict(r) for r in read_csv(path) if _summary_key(r) not in new]
    rows += [dict(s) for s in summaries]
    found = _columns(rows, ())
    cols = [c for c in order if c in found] + [c for c in found if c not in order]
    cols = [c for c in cols if c != "preprocess"] + (["preprocess"] if "preprocess" in cols else [])
    return _atomic_write(path, rows, cols)


# ---------------------------------------------------------------------------------------------- comparison grid

ImageRef = str | Path | Image.Image


def _open(ref: ImageRef | None, cell: int) -> Image.Image:
    if ref is None:
        img = Image.new("RGB", (cell, cell), (200, 200, 200))
        ImageDraw.Draw(img).text((4, cell // 2 - 6), "missing", fill=(90, 90, 90), font=ImageFont.load_default())
        return img
    img = ref if isinstance(ref, Image.Image) else Image.open(ref)
    return img.convert("RGB").resize((cell, cell), Image.Resampling.BICUBIC)


def _label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, width: int, font: ImageFont.ImageFont) -> None:
    while text and draw.textlength(text, font=font) > width - 4:
        text = text[:-2] + "…" if len(text) > 2 else text[:-1]
    draw.text((xy[0] + 2, xy[1] + 2), text, fill=(0, 0, 0), font=font)


def comparison_grid(outputs: Mapping[str, Mapping[tuple[str, str], ImageRef]], contents: Sequence[str],
                    styles: Sequence[str], *, cell: int = 128, content_images: Mapping[str, ImageRef] | None = None,
                    style_images: Mapping[str, ImageRef] | None = None, gap: int = 12) -> Image.Image:
    """Panels side by side, one per method (`outputs[method][(content, style)]`); in each panel rows are
    contents and columns styles, labelled; the content/style images themselves head the rows/columns when
    given. A missing output is a grey 'missing' cell, so gaps are visible rather than shifting the grid."""
    font = ImageFont.load_default()
    label_h, title_h = 16, 18
    lead = cell if content_images else 0  # a column of content thumbnails
    top = cell if style_images else 0  # a row of style thumbnails
    left_w = max(lead, 80)
    panel_w = left_w + cell * len(styles)
    panel_h = title_h + label_h + top + (cell + label_h) * len(contents)
    canvas = Image.new("RGB", (len(outputs) * panel_w + gap * max(len(outputs) - 1, 0), panel_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (method, images) in enumerate(outputs.items()):
        x0 = k * (panel_w + gap)
        _label(draw, (x0, 0), method, panel_w, font)
        for j, style in enumerate(styles):
            x = x0 + left_w + j * cell
            _label(draw, (x, title_h), style, cell, font)
            if style_images:
                canvas.paste(_open(style_images.get(style), cell), (x, title_h + label_h))
        for i, content in enumerate(contents):
            y = title_h + label_h + top + i * (cell + label_h)
            _label(draw, (x0, y), content, left_w, font)
            if content_images:
                canvas.paste(_open(content_images.get(content), cell), (x0, y + label_h))
            for j, style in enumerate(styles):
                canvas.paste(_open(images.get((content, style)), cell), (x0 + left_w + j * cell, y + label_h))
    return canvas


def grid_from_pairs(methods: Mapping[str, Sequence[Pair]], cell: int = 128, with_inputs: bool = True) -> Image.Image:
    """comparison_grid for methods evaluated on paired folders (contents/styles: the union, sorted)."""
    contents = sorted({p.content_stem for ps in methods.values() for p in ps})
    styles = sorted({p.style_stem for ps in methods.values() for p in ps})
    outputs = {m: {(p.content_stem, p.style_stem): p.output for p in ps} for m, ps in methods.items()}
    c_imgs = {p.content_stem: p.content for ps in methods.values() for p in ps} if with_inputs else None
    s_imgs = {p.style_stem: p.style for ps in methods.values() for p in ps} if with_inputs else None
    return comparison_grid(outputs, contents, styles, cell=cell, content_images=c_imgs, style_images=s_imgs)
