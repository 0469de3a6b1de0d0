"""Running metrics over pairs, writing `metrics.csv` (per image) and `summary.csv` (per method), and a
comparison grid image (rows = contents, columns = styles, one panel per method)."""
from __future__ import annotations

import csv
import io
import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from stylex.metrics import preprocess
from stylex.metrics.base import Metric, PairBatch
from stylex.metrics.fid import ArtFID
from stylex.metrics.pairing import Pair

log = logging.getLogger(__name__)

Row = dict[str, object]


class _ImageCache:
    """Style (and content) images repeat across outputs: keep the most recent ones loaded."""

    def __init__(self, size: int | None, capacity: int = 64) -> None:
        self.size, self.capacity = size, capacity
        self.items: OrderedDict[Path, torch.Tensor] = OrderedDict()

    def __call__(self, path: Path) -> torch.Tensor:
        if path in self.items:
            self.items.move_to_end(path)
            return self.items[path]
        img = preprocess.load_eval_image(path, self.size)
        self.items[path] = img
        if len(self.items) > self.capacity:
            self.items.popitem(last=False)
        return img


def describe_evaluation(metrics: Mapping[str, Metric], size: int | None) -> str:
    """The resize/normalisation convention of this evaluation, as one line for the results files."""
    return preprocess.describe(size, {name: m.describe_input() for name, m in metrics.items() if m.describe_input()})


def evaluate_pairs(pairs: Sequence[Pair], metrics: Mapping[str, Metric], batch_size: int = 8, *,
                   size: int | None = preprocess.EVAL_SIZE, method: str = "",
                   progress: Callable[[int, int], None] | None = None) -> tuple[list[Row], Row]:
    """Feed every pair to every metric in batches. Returns per-image rows (content, style, output and the
    per-image metric values) and one summary row (method, n_images, each metric's aggregate, the convention)."""
    for m in metrics.values():
        m.reset()
    load_out = _ImageCache(size, capacity=1)
    load_ref = _ImageCache(size)
    rows: list[Row] = [{"content": p.content_stem, "style": p.style_stem, "output": str(p.output)} for p in pairs]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        batch = PairBatch(
            stylized=torch.stack([load_out(p.output) for p in chunk]),
            content=torch.stack([load_ref(p.content) for p in chunk]),
            style=torch.stack([load_ref(p.style) for p in chunk]),
            style_ids=[str(p.style) for p in chunk],
            style_texts=[p.style_text for p in chunk],
            names=[p.name for p in chunk],
        )
        for name, metric in metrics.items():
            values = metric.update(batch)
            if values is not None:
                for row, v in zip(rows[start:start + len(chunk)], values.tolist()):
                    row[name] = v
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
    summary["preprocess"] = describe_evaluation(metrics, size)
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
    """Write to a temp file beside `path`, then rename: an interrupted write never leaves half a CSV."""
    from stylex.data.outputs import atomic_write_bytes

    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k, "")) for k in columns})
    atomic_write_bytes(path, text.getvalue().encode("utf-8"))
    return path


def write_metrics_csv(path: str | Path, rows: Sequence[Row]) -> Path:
    """Per-image values: (method,) content, style, output, then one column per per-image metric."""
    first = (("method",) if any("method" in r for r in rows) else ()) + ("content", "style", "output")
    return _atomic_write(Path(path), rows, _columns(rows, first))


def read_csv(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_summary_csv(path: str | Path, summaries: Sequence[Row], merge: bool = True) -> Path:
    """One row per method. With `merge`, rows already in the file for other methods are kept and a method
    evaluated again replaces its old row, so evaluating methods one at a time builds up one table."""
    path = Path(path)
    rows: list[Row] = []
    new = {str(s.get("method", "")) for s in summaries}
    if merge and path.is_file():
        rows = [dict(r) for r in read_csv(path) if r.get("method", "") not in new]
    rows += [dict(s) for s in summaries]
    first = ("method", "n_images")
    cols = _columns(rows, first)
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
