"""What `python -m stylex.evaluate` does: output folders -> pairs -> metrics -> result files, grid and W&B.

The entry point stays a thin Hydra main (DESIGN.md); the steps are functions here so tests and the notebook call
them directly. Results (in `results_dir`): `metrics.csv` (one row per output), `summary.csv` (one row per
method; merged with rows already there for other methods), `summary.md` (the papers' tables) and `grid.png`
(rows: contents, columns: styles, one panel per method). summary.csv, summary.md and the log state the
evaluation convention (the resize rule and each network's input).
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from stylex.errors import ConfigError, InputError
from stylex.metrics import report
from stylex.metrics.base import Metric
from stylex.metrics.embedding_scores import CLIPImageScore, CLIPTextScore, DINOScore
from stylex.metrics.factory import HAM_TABLE, METRICS, STYLEGALLERY_TABLE, build_metrics
from stylex.metrics.fid import FID, ArtFID
from stylex.metrics.lpips import LPIPS
from stylex.metrics.pairing import Location, Pair, describe_location, output_images, pair_outputs
from stylex.metrics.vgg_metrics import CFSD, GramLoss, StyleScore

log = logging.getLogger("stylex.evaluate")

Row = report.Row

HIGHER_IS_BETTER: dict[str, bool] = {
    cls.name: cls.higher_is_better
    for cls in (StyleScore, GramLoss, FID, LPIPS, ArtFID, CFSD, DINOScore, CLIPImageScore, CLIPTextScore)
}
TITLES = {"style_score": "Style", "gram": "Gram", "fid": "FID", "lpips": "LPIPS", "artfid": "ArtFID",
          "cfsd": "CFSD", "dino": "DINO", "clip_i": "CLIP-I", "clip_t": "CLIP-T"}
PAPER_TABLES: dict[str, tuple[str, ...]] = {"StyleGallery table": STYLEGALLERY_TABLE, "HAM table": HAM_TABLE}


@dataclass
class MethodOutputs:
    """The outputs of one method in one folder, paired with their content and style images."""

    label: str
    folder: Path
    pairs: list[Pair]
    sidecars: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class EvaluationResult:
    """Where the results went, and what they say (for the notebook and the compare script)."""

    results_dir: Path
    files: dict[str, Path]
    rows: list[Row]
    summaries: list[Row]
    convention: str


# ---------------------------------------------------------------------------------------------- finding outputs

def images_dir(path: str | Path) -> Path:
    """A run directory means its `images/` folder; any other folder is taken as the images folder itself."""
    p = Path(str(path)).expanduser()
    if not p.exists():
        raise InputError(f"outputs={p}: no such folder. Point `outputs` at a run directory (the hydra.run.dir of "
                         f"`python -m stylex.run`) or at a folder of {{content}}__{{style}}.png images.")
    if not p.is_dir():
        raise InputError(f"outputs={p} is a file. Point `outputs` at a run directory or at a folder of "
                         f"{{content}}__{{style}}.png images.")
    return p / "images" if (p / "images").is_dir() else p


def run_name(folder: Path) -> str:
    """The name a folder of outputs goes by: its run directory's name for `<run>/images`."""
    return folder.parent.name if folder.name == "images" and folder.parent.name else folder.name


def read_sidecars(folder: Path, stems: Iterable[str]) -> dict[str, dict[str, Any]]:
    """stem -> the JSON sidecar stylex.run writes beside each output; outputs without one are left out."""
    out: dict[str, dict[str, Any]] = {}
    for stem in stems:
        path = folder / f"{stem}.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("ignoring the unreadable sidecar %s", path)
                continue
            if isinstance(data, dict):
                out[stem] = data
    return out


def check_one_style_each(folder: Path, sidecars: Mapping[str, Mapping[str, Any]]) -> None:
    """Outputs made against many references at once (`data.pairing=gallery`) have no single style to compare with."""
    multi = sorted(stem for stem, sc in sidecars.items() if len(sc.get("styles") or []) > 1)
    if multi:
        n = len(sidecars[multi[0]]["styles"])
        shown = ", ".join(multi[:5]) + (", ..." if len(multi) > 5 else "")
        raise InputError(
            f"{len(multi)} output(s) in {folder} ({shown}) were each made against {n} style references at once "
            f"(`data.pairing=gallery`), but the metrics compare each output with one style image. To evaluate "
            f"StyleGallery, stylize with `data.pairing=product` (one output per content x style, as "
            f"experiments/compare does), or point `outputs` at a folder of {{content}}__{{style}}.png outputs.")


def sidecar_input_dirs(sidecars: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The folders the sidecars say the contents and styles came from (for error messages)."""
    contents = {str(Path(sc["content"]["path"]).parent) for sc in sidecars.values()
                if isinstance(sc.get("content"), dict) and sc["content"].get("path")}
    styles = {str(Path(s["path"]).parent) for sc in sidecars.values() for s in sc.get("styles") or []
              if isinstance(s, dict) and s.get("path")}
    return sorted(contents), sorted(styles)


def _inputs_hint(sidecars: Mapping[str, Mapping[str, Any]]) -> str:
    contents, styles = sidecar_input_dirs(sidecars)
    if len(contents) != 1 or len(styles) != 1:
        return ""
    from stylex.data.samples import samples_dir

    if contents[0] == styles[0] == str(samples_dir()):
        return ("\nTheir sidecars say they were made from the bundled samples: leave `contents` and `styles` "
                "unset (the default).")
    return (f"\nTheir sidecars say they were made from the contents in {contents[0]} and the styles in "
            f"{styles[0]}: pass `contents={contents[0]} styles={styles[0]}`.")


@lru_cache(maxsize=4096)
def _digest(path: Path) -> str:
    from stylex.data.images import file_digest

    return file_digest(path)


def input_mismatches(pairs: Sequence[Pair], sidecars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Pairs whose content or style file is not the one the output was made from (the sidecar's hash differs):
    same names, other images, i.e. the wrong folders."""
    problems = []
    for pair in pairs:
        sc = sidecars.get(pair.output.stem)
        if not sc:
            continue
        styles = sc.get("styles") or []
        recorded = [("content", pair.content, (sc.get("content") or {}).get("sha256_16"))]
        if len(styles) == 1 and isinstance(styles[0], dict):
            recorded.append(("style", pair.style, styles[0].get("sha256_16")))
        for role, path, want in recorded:
            if want and _digest(path) != want:
                problems.append(f"{pair.output.name}: its {role} {path} is not the image it was made from")
    return problems


def collect(outputs: str | Path, contents: Location, styles: Location, *, method_name: str | None = None,
            check_inputs: bool = True) -> list[MethodOutputs]:
    """Pair one outputs folder; one `MethodOutputs` per method found in it (the sidecars' `method` field,
    `method_name` when given, else the run's folder name)."""
    folder = images_dir(outputs)
    stems = sorted(output_images(folder))
    sidecars = read_sidecars(folder, stems)
    check_one_style_each(folder, sidecars)
    try:
        pairs = pair_outputs(folder, contents, styles)
    except InputError as exc:
        raise InputError(f"{exc}{_inputs_hint(sidecars)}") from None
    if check_inputs:
        wrong = input_mismatches(pairs, sidecars)
        if wrong:
            listed = "\n".join(f"  - {w}" for w in wrong[:10]) + (f"\n  - ... and {len(wrong) - 10} more"
                                                                  if len(wrong) > 10 else "")
            raise InputError(
                f"{len(wrong)} output(s) in {folder} were made from other images than the ones with the same names "
                f"in {describe_location(contents)} / {describe_location(styles)}:\n{listed}\nPass the folders the "
                f"outputs were made from, or set `check_inputs=false` to evaluate against these images anyway."
                f"{_inputs_hint(sidecars)}")
    fallback = run_name(folder)
    groups: dict[str, list[Pair]] = {}
    for pair in pairs:
        label = method_name or str(sidecars.get(pair.output.stem, {}).get("method") or fallback)
        groups.setdefault(label, []).append(pair)
    if len(groups) > 1:
        log.warning("%s holds the outputs of %d methods (%s, from the sidecars); each gets its own summary row",
                    folder, len(groups), ", ".join(groups))
    return [MethodOutputs(label, folder, ps, {p.output.stem: sidecars[p.output.stem] for p in ps
                                               if p.output.stem in sidecars}) for label, ps in groups.items()]


def collect_all(outputs: Sequence[str | Path], contents: Location, styles: Location, *,
                method_names: Sequence[str | None] | None = None, check_inputs: bool = True) -> list[MethodOutputs]:
    """`collect` for several folders; a method found in more than one folder is labelled `method (run name)`."""
    names = list(method_names) if method_names is not None else [None] * len(outputs)
    if len(names) != len(outputs):
        raise ConfigError(f"`method_name` lists {len(names)} names for {len(outputs)} `outputs` folders; give one "
                          f"name per folder, in the same order (or one name for a single folder).")
    groups = [g for out, name in zip(outputs, names)
              for g in collect(out, contents, styles, method_name=name, check_inputs=check_inputs)]
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.label] = counts.get(g.label, 0) + 1
    for g in groups:
        if counts[g.label] > 1:
            g.label = f"{g.label} ({run_name(g.folder)})"
    labels = [g.label for g in groups]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(f"several `outputs` folders give the method name(s) {', '.join(dup)}; name them apart "
                          f"with `method_name=[name1,name2,...]` (one per folder).")
    return groups


def drop_unreadable(groups: list[MethodOutputs], on_bad_image: str) -> tuple[list[MethodOutputs], dict[Path, str]]:
    """Decode every output, content and style once before any network loads: an unreadable one stops the
    evaluation (`on_bad_image=stop`) or its pairs are left out (`skip`); returns the groups and {file: why}."""
    from stylex.data.images import bad_images_error, unreadable

    bad = unreadable(list(dict.fromkeys(f for g in groups for p in g.pairs for f in (p.output, p.content, p.style))))
    if not bad:
        return groups, bad
    if on_bad_image == "stop":
        raise bad_images_error(bad, "on_bad_image=skip")
    for path, reason in bad.items():
        log.warning("Skipping %s: %s", path, reason)
    for g in groups:
        g.pairs = [p for p in g.pairs if not {p.output, p.content, p.style} & bad.keys()]
    kept = [g for g in groups if g.pairs]
    if not kept:
        raise InputError(f"none of the outputs can be evaluated: every pair has an unreadable image (e.g. "
                         f"{next(iter(bad))}). Nothing was written.")
    return kept, bad


# ---------------------------------------------------------------------------------------------- evaluating

def evaluate_groups(groups: Sequence[MethodOutputs], metrics: Mapping[str, Metric], *, size: int | None,
                    batch_size: int = 8) -> tuple[list[Row], list[Row]]:
    """Every method's pairs through every metric: per-image rows (with `method`) and one summary row each."""
    rows: list[Row] = []
    summaries: list[Row] = []
    for g in groups:
        log.info("evaluating %s: %d output(s) in %s", g.label, len(g.pairs), g.folder)
        method_rows, summary = report.evaluate_pairs(g.pairs, metrics, batch_size, size=size, method=g.label)
        rows += [{"method": g.label, **r} for r in method_rows]
        summary["outputs"] = str(g.folder)
        summaries.append(summary)
    return rows, summaries


def clip_t_note(template: str | None) -> str:
    """Where CLIP-T's style texts come from, for the convention line."""
    fallback = f"else the template {template!r} with the style's file name" if template else "required"
    return f"clip_t texts: {{style}}.txt beside each style image, {fallback}"


def grid_selection(groups: Sequence[MethodOutputs], max_contents: int | None = None,
                   max_styles: int | None = None) -> dict[str, list[Pair]]:
    """The pairs the grid shows: the first contents and styles by name, for every method (a gallery of
    thousands would make an image nobody can open)."""
    contents = sorted({p.content_stem for g in groups for p in g.pairs})[:max_contents]
    styles = sorted({p.style_stem for g in groups for p in g.pairs})[:max_styles]
    keep_c, keep_s = set(contents), set(styles)
    return {g.label: [p for p in g.pairs if p.content_stem in keep_c and p.style_stem in keep_s] for g in groups}


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def markdown_table(summaries: Sequence[Mapping[str, object]], columns: Sequence[str], digits: int = 4) -> str:
    """A paper-style table: one row per method, the best value of each column in bold, arrows for direction."""
    cols = [c for c in columns if any(_number(s.get(c)) is not None for s in summaries)]
    head = ["method", "n"] + [f"{TITLES.get(c, c)} {'↑' if HIGHER_IS_BETTER.get(c) else '↓'}" for c in cols]
    best: dict[str, float] = {}
    for c in cols:
        values = [v for v in (_number(s.get(c)) for s in summaries) if v is not None]
        best[c] = max(values) if HIGHER_IS_BETTER.get(c) else min(values)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [str(s.get("method", "")), str(s.get("n_images", ""))]
        for c in cols:
            v = _number(s.get(c))
            text = "" if v is None else f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"
            cells.append(f"**{text}**" if v is not None and len(summaries) > 1 and v == best[c] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(summaries: Sequence[Mapping[str, object]], convention: bool = True) -> str:
    """The StyleGallery and HAM tables (the columns evaluated), any other metrics, and the convention."""
    evaluated = {c for s in summaries for c in s if _number(s.get(c)) is not None}
    parts = []
    shown: set[str] = set()
    for title, cols in PAPER_TABLES.items():
        present = [c for c in cols if c in evaluated]
        if present:
            parts.append(f"## {title}\n\n{markdown_table(summaries, present)}")
            shown |= set(present)
    rest = [c for c in METRICS if c in evaluated and c not in shown]
    if rest:
        parts.append(f"## Other metrics\n\n{markdown_table(summaries, rest)}")
    conventions = sorted({str(s.get("preprocess")) for s in summaries if s.get("preprocess")})
    if conventions and convention:
        parts.append("Evaluation convention: " + "\n\nEvaluation convention: ".join(conventions))
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------- writing

def write_results(results_dir: str | Path, rows: Sequence[Row], summaries: Sequence[Row],
                  grid: Image.Image | None) -> dict[str, Path]:
    """metrics.csv and summary.csv (rows of other methods already there are kept: evaluating methods one at a
    time into one folder builds one table), summary.md and grid.png. Every write is atomic."""
    from stylex.data.outputs import atomic_save_image, atomic_write_bytes

    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics": out / "metrics.csv", "summary": out / "summary.csv", "tables": out / "summary.md"}
    new = {str(s.get("method", "")) for s in summaries}
    kept: list[Row] = []
    if files["metrics"].is_file():
        kept = [dict(r) for r in report.read_csv(files["metrics"]) if r.get("method", "") not in new]
    report.write_metrics_csv(files["metrics"], [*kept, *rows])
    report.write_summary_csv(files["summary"], summaries, merge=True)
    table = report.read_csv(files["summary"])
    atomic_write_bytes(files["tables"], summary_markdown(table).encode("utf-8"))
    if grid is not None:
        files["grid"] = out / "grid.png"
        atomic_save_image(files["grid"], grid)
    return files


def log_results(loggers: Sequence[Any], rows: Sequence[Row], summaries: Sequence[Row], grid: Image.Image | None,
                convention: str, config: Mapping[str, Any] | None = None) -> None:
    """W&B: the summary and per-image tables, the grid, each method's values and the convention in the run
    summary. Other Lightning loggers get the numbers."""
    from lightning.pytorch.loggers import WandbLogger

    numbers = {f"{s['method']}/{k}": float(v) for s in summaries for k, v in s.items()
               if k not in ("method", "n_images") and isinstance(v, (int, float))}
    for logger in loggers:
        if config is not None:
            logger.log_hyperparams(dict(config))
        if not isinstance(logger, WandbLogger):
            logger.log_metrics(numbers)
            logger.finalize("success")
            continue
        import wandb

        def table(items: Sequence[Row]) -> Any:
            columns = report._columns(items, ("method",))
            return wandb.Table(columns=columns, data=[[_cell(r.get(c)) for c in columns] for r in items])

        payload: dict[str, Any] = {"evaluate/summary": table(summaries), "evaluate/per_image": table(rows)}
        if grid is not None:
            payload["evaluate/grid"] = wandb.Image(grid, caption="rows: contents, columns: styles, "
                                                                 "one panel per method")
        experiment = logger.experiment
        experiment.log(payload)
        experiment.summary.update({**numbers, "preprocess": convention})
        logger.finalize("success")


def _cell(value: object) -> object:
    return "" if value is None else value


# ---------------------------------------------------------------------------------------------- the whole job

def resolve_device(device: str) -> str:
    """`auto`: the GPU when there is one."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [value]
    return list(value)


def run_evaluation(cfg: Any, loggers: Sequence[Any] = ()) -> EvaluationResult:
    """The evaluate command on a composed `configs/evaluate.yaml` (see it for every key)."""
    from omegaconf import OmegaConf

    from stylex.data.outputs import write_skipped

    if OmegaConf.is_missing(cfg, "outputs") or not _as_list(cfg.outputs):
        raise ConfigError("`outputs` is not set. Point it at a run directory or a folder of "
                          "{content}__{style}.png images, e.g. `python -m stylex.evaluate "
                          "outputs=outputs/ad/2026-01-31_12-00-00`.")
    if cfg.get("print_config"):
        log.info("Resolved config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    m = cfg.metrics
    smoke = bool(cfg.get("tiny_models", False))
    size = m.smoke_size if smoke else m.size
    names = list(m.names)
    options = {k: dict(OmegaConf.to_container(m[k], resolve=True))  # type: ignore[arg-type]
               for k in METRICS if m.get(k) is not None}
    method_names = _as_list(cfg.get("method_name"))
    outputs = _as_list(cfg.outputs)
    groups = collect_all(outputs, cfg.contents, cfg.styles, method_names=method_names or None,
                         check_inputs=bool(cfg.get("check_inputs", True)))
    groups, bad = drop_unreadable(groups, str(cfg.get("on_bad_image", "stop")))
    if smoke:
        log.info("tiny_models (debug=smoke): the metrics run on small random networks; the numbers check the "
                 "wiring only")
    metrics = build_metrics(names, smoke=smoke, seed=int(cfg.seed), weights=dict(m.weights or {}),
                            options=options, device=resolve_device(str(cfg.get("device", "auto"))))
    rows, summaries = evaluate_groups(groups, metrics, size=size, batch_size=int(m.batch_size))
    convention = report.describe_evaluation(metrics, size)
    if "clip_t" in names:
        convention += "; " + clip_t_note(options.get("clip_t", {}).get("template"))
    for s in summaries:
        s["preprocess"] = convention
    log.info("Evaluation convention: %s", convention)
    g = cfg.get("grid") or {}
    grid = None
    if g.get("enabled", True):
        grid = report.grid_from_pairs(grid_selection(groups, g.get("max_contents"), g.get("max_styles")),
                                      cell=int(g.get("cell", 128)))
    files = write_results(cfg.results_dir, rows, summaries, grid)
    skipped = write_skipped(cfg.results_dir, [(str(path), why) for path, why in bad.items()])
    tables = summary_markdown(report.read_csv(files["summary"]), convention=False)
    log.info("Summary (%s):\n%s", files["summary"], tables)
    log.info("Results: %s%s", ", ".join(str(p) for p in files.values()),
             f"; {len(bad)} unreadable image(s) skipped, listed in {skipped}" if bad else "")
    config = OmegaConf.to_container(cfg, resolve=True)
    log_results(loggers, rows, summaries, grid, convention, config)  # type: ignore[arg-type]
    return EvaluationResult(Path(cfg.results_dir), files, rows, summaries, convention)
