"""The page (Gradio Blocks): pick or upload images, see regions and matches, edit the plan, stylize, download,
and copy the equivalent batch command. Every handler turns a user error into a message in the page.
Import this module only after GRADIO_TEMP_DIR is set (server.serve does): Gradio reads it on import."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np
from PIL import Image

from stylex.data.images import to_pil, to_tensor
from stylex.errors import InputError, StylexError
from stylex.studio_app.canvas import Canvas, content_overlay, draw_canvas, scaled
from stylex.studio_app.edits import (Edits, merge_regions, paint_region, painted_cells, read_label_mask,
                                     remap_overrides)
from stylex.studio_app.engine import Studio, View, no_progress
from stylex.studio_app.inputs import Source, configured, take_upload

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["content_region", "reference", "style_region", "score", "stat", "sem", "geo", "fallback", "how"]
INTRO = ("Pick or upload a content image and style references, then **Analyse**. Click a content region, then a "
         "region of any reference, to choose its style. Merge, split or paint regions below, **Stylize**, and copy "
         "the batch command that makes the same image.")


@dataclass
class Session:
    """One browser tab's state."""

    content: Source | None = None
    styles: list[Source] = field(default_factory=list)
    edits: Edits = field(default_factory=Edits)
    selected: list[int] = field(default_factory=list)  # content regions, most recent last (at most two)
    view: View | None = None
    canvas: Canvas | None = None

    def need_view(self) -> View:
        if self.view is None:
            raise InputError("nothing analysed yet. Choose a content image and references, then press Analyse.")
        return self.view


class Catalog:
    """The images the page may use: the configured ones and those uploaded in this server's life. A value sent
    by the browser is only ever looked up here, never opened as a path."""

    def __init__(self, contents: list[Source], styles: list[Source]):
        self.by_path: dict[str, Source] = {str(s.path): s for s in contents + styles}
        self.contents, self.styles = [str(s.path) for s in contents], [str(s.path) for s in styles]

    def add(self, source: Source, role: str) -> str:
        key = str(source.path)
        self.by_path[key] = source
        listing = self.contents if role == "content" else self.styles
        if key not in listing:
            listing.append(key)
        return key

    def get(self, key: str) -> Source:
        if key not in self.by_path:
            raise InputError(f"{key!r} is not one of the studio's images. Pick one from the list or upload it.")
        return self.by_path[key]

    def choices(self, role: str) -> list[tuple[str, str]]:
        keys = self.contents if role == "content" else self.styles
        return [(self.by_path[k].name, k) for k in keys]


def build(studio: Studio, settings: Any) -> Any:
    """The Blocks app for `studio`; `settings` is the config's `studio` node."""
    cfg = studio.cfg
    catalog = Catalog(configured(cfg.data.get("content"), "content"),
                      [] if studio.gallery_mode else configured(cfg.data.get("styles"), "styles"))
    display = int(settings.display_height)

    with gr.Blocks(title="stylex studio") as demo:
        session = gr.State(lambda: Session())
        gr.Markdown("# stylex studio\n" + INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                content_pick = gr.Dropdown(catalog.choices("content"), label="Content",
                                           value=catalog.contents[0] if catalog.contents else None, elem_id="content")
                content_upload = gr.File(label="Upload a content image", file_types=["image"], elem_id="content-upload")
                if studio.gallery_mode:
                    styles_pick = gr.CheckboxGroup([], label=f"References: the gallery {cfg.gallery.path}",
                                                   visible=False)
                    styles_upload = gr.File(visible=False)
                else:
                    styles_pick = gr.CheckboxGroup(catalog.choices("styles"), value=list(catalog.styles),
                                                   label="Style references", elem_id="styles")
                    styles_upload = gr.File(label="Upload style references", file_count="multiple",
                                            file_types=["image"], elem_id="styles-upload")
                analyse_button = gr.Button("Analyse", variant="primary", elem_id="analyse")
            with gr.Column(scale=3):
                status = gr.Markdown("Nothing analysed yet.", elem_id="status")
                canvas = gr.Image(label="Regions and matches (click a content region, then a style region)",
                                  type="pil", format="png", interactive=False, elem_id="canvas",
                                  buttons=["download", "fullscreen"])
        table = gr.Dataframe(headers=TABLE_COLUMNS, label="Matches: content region -> reference region, score and "
                             "its three terms", interactive=False, elem_id="matches")
        with gr.Row():
            with gr.Column():
                gr.Markdown("**Edit the regions.** Select two content regions and merge them; paint over the "
                            "content and make the painted part a new region (inside the selected region: a split); "
                            "or upload a label mask (0 keeps the automatic regions, each other value is a region).")
                with gr.Row():
                    merge_button = gr.Button("Merge the two selected regions", elem_id="merge")
                    reset_button = gr.Button("Reset to automatic", elem_id="reset")
                mask_upload = gr.File(label="Upload a label mask (PNG)", file_types=["image"], elem_id="mask-upload")
            with gr.Column():
                painter = gr.ImageEditor(label="Paint a region", type="numpy", image_mode="RGBA", sources=(),
                                         transforms=(), layers=False, elem_id="painter", height=display,
                                         brush=gr.Brush(colors=["#ffffff"], color_mode="fixed"))
                paint_button = gr.Button("Painted part -> new region", elem_id="paint")
        with gr.Row():
            stylize_button = gr.Button("Stylize", variant="primary", elem_id="stylize")
        with gr.Row():
            content_view = gr.Image(label="Content", type="pil", interactive=False, elem_id="content-view")
            result_view = gr.Image(label="Result", type="pil", interactive=False, elem_id="result")
            downloads = gr.File(label="Download: image and JSON sidecar", file_count="multiple",
                                interactive=False, elem_id="downloads")
        command = gr.Textbox(label="The same run as a batch command (reads the plan files saved under the output "
                             "folder)", lines=3, interactive=False, buttons=["copy"], elem_id="command")

        def message(text: str) -> dict:
            gr.Warning(text)
            return {status: f"**Problem:** {text}"}

        def guarded(handler: Callable[..., dict]) -> Callable[..., dict]:
            @functools.wraps(handler)
            def wrapper(*args: Any, **kwargs: Any) -> dict:
                try:
                    return handler(*args, **kwargs)
                except StylexError as exc:
                    return message(str(exc))
                except MemoryError:
                    return message("out of memory. Use smaller images (data.resolution) or fewer references.")
                except Exception as exc:  # the server stays up; the log has the traceback
                    log.exception("studio: %s failed", handler.__name__)
                    return message(f"unexpected error ({type(exc).__name__}: {exc}); the server log has details.")
            return wrapper

        def shown(state: Session, text: str, repaint: bool = True) -> dict:
            """Everything that depends on the current view; `repaint=False` keeps the painter's strokes (a
            selection changes only the outlines)."""
            view = state.need_view()
            state.canvas = draw_canvas(view.content, view.content_labels, view.refs, view.ref_labels,
                                       view.ref_names, view.matches, state.selected, display)
            rows = [[row[c] for c in TABLE_COLUMNS] for row in view.rows]
            out = {session: state, canvas: state.canvas.image, table: rows, command: view.command, status: text}
            if repaint:
                picture = content_overlay(view.content, view.content_labels, display)
                out[painter] = {"background": picture, "layers": [], "composite": None}
            return out

        def analysed(state: Session, progress: Any = None) -> View:
            assert state.content is not None
            report = (lambda f, t: progress(f, desc=t)) if progress is not None else no_progress
            return studio.analyse(state.content, state.styles, state.edits, report)

        def describe(view: View, state: Session) -> str:
            edits = state.edits
            parts = [f"**{view.name}**: {int(view.content_labels.max()) + 1} content regions, "
                     f"{len(view.refs)} reference(s)."]
            if edits.overrides:
                parts.append(f"{len(edits.overrides)} match(es) set by hand.")
            if edits.mask is not None and edits.mask.any():
                parts.append("User mask in use.")
            parts.append(f"Plan files: `{view.plan.folder}`.")
            return " ".join(parts)

        @guarded
        def on_content_upload(file: str | None, state: Session) -> dict:
            if not file:
                return {}
            kept = take_upload(studio.root, file, Path(file).name, int(settings.max_pixels),
                               float(settings.max_upload_mb))
            key = catalog.add(kept, "content")
            return {content_pick: gr.Dropdown(choices=catalog.choices("content"), value=key),
                    status: f"Uploaded content **{kept.name}**. Press Analyse."}

        @guarded
        def on_styles_upload(files: list[str] | None, ticked: list[str], state: Session) -> dict:
            if not files:
                return {}
            keys = [catalog.add(take_upload(studio.root, f, Path(f).name, int(settings.max_pixels),
                                            float(settings.max_upload_mb)), "styles") for f in files]
            value = list(dict.fromkeys(list(ticked or []) + keys))
            return {styles_pick: gr.CheckboxGroup(choices=catalog.choices("styles"), value=value),
                    status: f"Uploaded {len(keys)} reference(s). Press Analyse."}

        @guarded
        def on_analyse(content_key: str | None, style_keys: list[str], state: Session,
                       progress: Any = gr.Progress()) -> dict:
            if not content_key:
                raise InputError("no content image chosen. Pick one from the list or upload one.")
            content = catalog.get(content_key)
            styles = [catalog.get(k) for k in style_keys or []]
            if state.content is None or state.content.path != content.path:
                state.edits, state.selected = Edits(), []
            elif not studio.gallery_mode:  # overrides naming a reference no longer chosen no longer apply
                names = {s.name for s in styles}
                state.edits.overrides = {r: t for r, t in state.edits.overrides.items() if t[0] in names}
            state.content, state.styles = content, styles
            state.view = analysed(state, progress)
            return shown(state, describe(state.view, state))

        def reanalyse(state: Session, edits: Edits, text: str, progress: Any = None) -> dict:
            """Apply new edits; a changed mask renumbers regions, so overrides are carried over to the new
            numbering (and the plan analysed again with them)."""
            old_view = state.need_view()
            mask_changed = not _same_mask(edits.mask, state.edits.mask)
            state.edits = edits
            if mask_changed:
                overrides, state.edits = edits.overrides, Edits({}, edits.mask)
                state.view = analysed(state, progress)
                carried, dropped = remap_overrides(overrides, old_view.content_labels, state.view.content_labels)
                state.edits = Edits(carried, edits.mask)
                state.selected = []
                if dropped:
                    text += f" Override(s) of region(s) {', '.join(map(str, dropped))} no longer apply and were dropped."
            if not mask_changed or state.edits.overrides:  # a new mask with no override to carry is analysed
                state.view = analysed(state, progress)
            return shown(state, text + " " + describe(state.view, state))

        @guarded
        def on_canvas_click(state: Session, evt: gr.SelectData) -> dict:
            view = state.need_view()
            assert state.canvas is not None
            hit = state.canvas.locate(*evt.index[:2])
            if hit is None:
                return {status: "Click inside an image: a content region first, then a style region."}
            panel, region = hit
            if panel.reference is None:
                if region in state.selected:
                    state.selected.remove(region)
                else:
                    state.selected = (state.selected + [region])[-2:]
                chosen = ", ".join(map(str, state.selected)) or "none"
                return shown(state, f"Selected content region(s): {chosen}. Click a region of a reference to give "
                                    f"the last one its style, or merge two.", repaint=False)
            if not state.selected:
                raise InputError("click a content region first, then the style region it should take its style from.")
            target = state.selected[-1]
            edits = Edits({**state.edits.overrides, target: (view.ref_names[panel.reference], region)},
                          state.edits.mask)
            state.selected = []
            return reanalyse(state, edits, f"Content region {target} now takes its style from region {region} of "
                                           f"**{view.ref_names[panel.reference]}**.")

        @guarded
        def on_merge(state: Session, progress: Any = gr.Progress()) -> dict:
            view = state.need_view()
            if len(state.selected) != 2:
                raise InputError("select two content regions (click them), then merge.")
            a, b = state.selected
            mask = merge_regions(state.edits.mask, view.content_labels, a, b)
            return reanalyse(state, Edits(dict(state.edits.overrides), mask), f"Merged regions {a} and {b}.", progress)

        @guarded
        def on_paint(editor: dict | None, state: Session, progress: Any = gr.Progress()) -> dict:
            view = state.need_view()
            layers = list((editor or {}).get("layers") or [])
            painted = painted_cells(layers, view.content_labels.shape)
            within = state.selected[-1] if state.selected else None
            mask = paint_region(state.edits.mask, view.content_labels, painted, within)
            what = f"Split region {within}: the painted part" if within is not None else "The painted area"
            return reanalyse(state, Edits(dict(state.edits.overrides), mask), f"{what} is a new region.", progress)

        @guarded
        def on_mask_upload(file: str | None, state: Session, progress: Any = gr.Progress()) -> dict:
            if not file:
                return {}
            view = state.need_view()
            kept = take_upload(studio.root, file, Path(file).name, int(settings.max_pixels),
                               float(settings.max_upload_mb))
            mask = read_label_mask(kept.path, view.content_labels.shape)
            return reanalyse(state, Edits(dict(state.edits.overrides), mask), "Label mask in use.", progress)

        @guarded
        def on_reset(state: Session, progress: Any = gr.Progress()) -> dict:
            state.need_view()
            state.selected = []
            return reanalyse(state, Edits(), "Back to the automatic regions and matches.", progress)

        @guarded
        def on_stylize(state: Session, progress: Any = gr.Progress(track_tqdm=True)) -> dict:
            view = state.need_view()
            assert state.content is not None
            progress(0, desc="Stylizing (stage 3)")
            result = studio.stylize(state.content, state.styles, view.plan)
            done = "Reused the result already made with this plan." if result.reused else "Stylized."
            with Image.open(result.image) as made:  # shown at the page's size; the download is the file itself
                picture = to_pil(scaled(to_tensor(made.convert("RGB")), display))
            return {result_view: picture, content_view: to_pil(scaled(view.content, display)),
                    downloads: [str(result.image), str(result.sidecar)],
                    status: f"{done} Saved as `{result.image}`; the batch command below makes the same image."}

        view = [session, canvas, table, command, status, painter]  # what an analysis or an edit changes
        made = [status, result_view, content_view, downloads]  # what Stylize changes (its progress bar shows here)
        content_upload.upload(on_content_upload, [content_upload, session], [content_pick, status])
        styles_upload.upload(on_styles_upload, [styles_upload, styles_pick, session], [styles_pick, status])
        analyse_button.click(on_analyse, [content_pick, styles_pick, session], view)
        canvas.select(on_canvas_click, [session], view, show_progress="minimal")
        merge_button.click(on_merge, [session], view)
        paint_button.click(on_paint, [painter, session], view)
        mask_upload.upload(on_mask_upload, [mask_upload, session], view)
        reset_button.click(on_reset, [session], view)
        stylize_button.click(on_stylize, [session], made)
    return demo


def _same_mask(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return (a is None or not a.any()) and (b is None or not b.any())
    return a.shape == b.shape and bool((a == b).all())
