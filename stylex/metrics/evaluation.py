"""What `python -m stylex.evaluate` does: output folders -> pairs -> protocol -> metrics -> result files, grid, W&B.

The entry point stays a thin Hydra main (DESIGN.md); the steps are functions here so tests and the notebook call
them directly. Each method is scored under one protocol (configs/protocol/: the one given, or with
`protocol=auto` the protocol of the paper its run reproduces). Results (in `results_dir`): `metrics.csv` (one row
per output), `summary.csv` (one row per method and protocol, merged with the rows already there, plus the
published rows of the protocol's tables), `summary.md` (each protocol's tables in the published column order,
published rows beside the measured ones) and `grid.png` (rows: contents, columns: styles, one panel per method).
summary.csv, summary.md and the log name the protocol and state every network's view of the images.
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

from stylex.backbones import resolve_device
from stylex.data.samples import config_dir
from stylex.errors import ConfigError, InputError
from stylex.metrics import report
from stylex.metrics.base import Metric
from stylex.metrics.embedding_scores import CLIPImageScore, CLIPTextScore, DINOScore
from stylex.metrics.factory import METRICS, Networks, build_metrics
from stylex.metrics.fid import FID, ArtFID
from stylex.metrics.lpips import LPIPS
from stylex.metrics.pairing import Location, Pair, describe_location, output_images, pair_outputs
from stylex.metrics.protocol import AUTO, Protocol, Table, protocol_for, sidecar_method
from stylex.metrics.vgg_metrics import CFSD, GramLoss, StyleScore

log = logging.getLogger("stylex.evaluate")

Row = report.Row

HIGHER_IS_BETTER: dict[str, bool] = {
    cls.name: cls.higher_is_better
    for cls in (StyleScore, GramLoss, FID, LPIPS, ArtFID, CFSD, DINOScore, CLIPImageScore, CLIPTextScore)
}
TITLES = {"style_score": "Style", "gram": "Gram", "fid": "FID", "lpips": "LPIPS", "artfid": "ArtFID",
          "cfsd": "CFSD", "dino": "DINO", "clip_i": "CLIP-I", "clip_t": "CLIP-T"}
MEASURED = "measured"
SUMMARY_FIRST = ("method", "protocol", "source", "n_images")


@dataclass
class MethodOutputs:
    """The outputs of one method in one folder, paired with their content and style images."""

    label: str
    folder: Path
    pairs: list[Pair]
    sidecars: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """The method that made the outputs: what their sidecars record, else the label."""
        return sidecar_method(self.sidecars) or self.label


@dataclass
class EvaluationResult:
    """Where the results went, and what they say (for the notebook and the compare script)."""

    results_dir: Path
    files: dict[str, Path]
    rows: list[Row]
    summaries: list[Row]
    convention: str
    protocols: dict[str, str] = field(default_factory=dict)  # method label -> protocol name


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


def sidecar_input_dirs(sidecars: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The folders the sidecars say the contents and styles came from (for error messages)."""
    contents = {str(Path(sc["content"]["path"]).parent) for sc in sidecars.values()
                if isinstance(sc.get("content"), dict) and sc["content"].get("path")}
    styles = {str(Path(s["path"]).parent) for sc in sidecars.values() for s in sc.get("styles") or []
              if isinstance(s, dict) and s.get("path")}
    return sorted(contents), sorted(styles)


def _inputs_hint(sidecars: Mapping[str, Mapping[str, Any]]) -> str:
    contents, styles = sidecar_input_dirs(sidecars)
    many = max((len(sc.get("styles") or []) for sc in sidecars.values()), default=0)
    if many > 1 and len(styles) == 1:
        return (f"\nTheir sidecars say each was made against {many} style images at once (`data.pairing=gallery`) "
                f"from {styles[0]}: pass `styles={styles[0]}` (or the folder above it): the outputs' names give the "
                f"family folder they pair with.")
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


def inputs_of(pair: Pair) -> tuple[Path, ...]:
    """Every file a pair's metrics read: output, content, its style image or the whole style family."""
    return (pair.output, pair.content, *((pair.style,) if pair.style is not None else ()), *pair.family)


def drop_unreadable(groups: list[MethodOutputs], on_bad_image: str) -> tuple[list[MethodOutputs], dict[Path, str]]:
    """Decode every output, content and style once before any network loads: an unreadable one stops the
    evaluation (`on_bad_image=stop`) or its pairs are left out (`skip`); returns the groups and {file: why}."""
    from stylex.data.images import screen_images

    bad = screen_images((f for g in groups for p in g.pairs for f in inputs_of(p)), on_bad_image, "on_bad_image=skip")
    if not bad:
        return groups, bad
    for g in groups:
        g.pairs = [p for p in g.pairs if not set(inputs_of(p)) & bad.keys()]
    kept = [g for g in groups if g.pairs]
    if not kept:
        raise InputError(f"none of the outputs can be evaluated: every pair has an unreadable image (e.g. "
                         f"{next(iter(bad))}). Nothing was written.")
    return kept, bad


# ---------------------------------------------------------------------------------------------- evaluating

def usable_metrics(group: MethodOutputs, metrics: Mapping[str, Metric]) -> dict[str, Metric]:
    """The metrics a method's outputs can be scored with: outputs made against a whole style family have no one
    style image for the metrics that compare with one (FID, ArtFID, paired Gram / style score)."""
    if all(p.style is not None for p in group.pairs):
        return dict(metrics)
    left = [n for n, m in metrics.items() if m.needs_style]
    if left:
        log.warning("%s: its outputs were made against whole style families, so %s (which compare with one style "
                    "image each) are left out; Gram and the style score compare with the family when the protocol "
                    "says `against: family`", group.label, ", ".join(left))
    return {n: m for n, m in metrics.items() if not m.needs_style}


def evaluate_groups(groups: Sequence[MethodOutputs], protocols: Mapping[str, Protocol],
                    metrics: Mapping[str, Mapping[str, Metric]], *, batch_size: int = 8,
                    clip_t_template: str | None = None) -> tuple[list[Row], list[Row]]:
    """Every method's pairs through its protocol's metrics (`protocols[label]`, `metrics[protocol name]`):
    per-image rows (with `method`, `protocol`) and one summary row each."""
    rows: list[Row] = []
    summaries: list[Row] = []
    for g in groups:
        protocol = protocols[g.label]
        usable = usable_metrics(g, metrics[protocol.name])
        log.info("evaluating %s under protocol %s: %d output(s) in %s", g.label, protocol.name, len(g.pairs),
                 g.folder)
        views = {name: protocol.view(name) for name in usable}
        method_rows, summary = report.evaluate_pairs(g.pairs, usable, batch_size, views=views, method=g.label)
        rows += [{"method": g.label, "protocol": protocol.name, **r} for r in method_rows]
        convention = f"protocol {protocol.name} | {summary['preprocess']}"
        if "clip_t" in usable:
            convention += " | " + clip_t_note(clip_t_template)
        summaries.append({"method": g.label, "protocol": protocol.name, "source": MEASURED,
                          **{k: v for k, v in summary.items() if k not in ("method", "preprocess")},
                          "outputs": str(g.folder), "preprocess": convention})
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


def _format(v: float, digits: int) -> str:
    return f"{v:.{digits}g}" if abs(v) < 1e-3 and v != 0 else f"{v:.{digits}f}"


def markdown_table(summaries: Sequence[Mapping[str, object]], columns: Sequence[str], digits: int = 4,
                   published: Sequence[Mapping[str, object]] = ()) -> str:
    """A paper-style table: one row per method (columns in the order given), the best measured value of each
    column in bold, arrows for direction; `published` rows follow, marked as such."""
    cols = [c for c in columns if any(_number(s.get(c)) is not None for s in [*summaries, *published])]
    head = ["method", "n"] + [f"{TITLES.get(c, c)} {'↑' if HIGHER_IS_BETTER.get(c) else '↓'}" for c in cols]
    best: dict[str, float] = {}
    for c in cols:
        values = [v for v in (_number(s.get(c)) for s in summaries) if v is not None]
        if values:
            best[c] = max(values) if HIGHER_IS_BETTER.get(c) else min(values)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summaries:
        cells = [str(s.get("method", "")), str(s.get("n_images", ""))]
        for c in cols:
            v = _number(s.get(c))
            text = "" if v is None else _format(v, digits)
            cells.append(f"**{text}**" if v is not None and len(summaries) > 1 and v == best.get(c) else text)
        lines.append("| " + " | ".join(cells) + " |")
    for s in published:
        cells = [f"*{s.get('method', '')} (published)*", ""]
        cells += ["" if _number(s.get(c)) is None else f"*{s.get(c)}*" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def published_rows(protocol: Protocol) -> list[Row]:
    """The published rows of a protocol's tables, as summary rows (source: where they were published)."""
    rows: list[Row] = []
    for table in protocol.tables:
        for r in table.published:
            rows.append({"method": r["method"], "protocol": protocol.name, "source": f"published: {table.source}",
                         **{k: v for k, v in r.items() if k != "method"}})
    return rows


def _is_measured(row: Mapping[str, object]) -> bool:
    return str(row.get("source") or MEASURED) == MEASURED


def summary_markdown(summaries: Sequence[Mapping[str, object]], protocols: Mapping[str, Protocol] | None = None,
                     convention: bool = True) -> str:
    """Each protocol's tables in the published column order, with the published rows beside the measured ones,
    any other metrics, and the conventions. Rows of a protocol not in `protocols` get a table of every metric."""
    protocols = protocols or {}
    order: list[str] = []
    for s in summaries:
        name = str(s.get("protocol") or "")
        if _is_measured(s) and name not in order:
            order.append(name)
    parts = []
    for name in order:
        measured = [s for s in summaries if _is_measured(s) and str(s.get("protocol") or "") == name]
        published = [s for s in summaries if not _is_measured(s) and str(s.get("protocol") or "") == name]
        protocol = protocols.get(name)
        tables = protocol.tables if protocol else (Table("Metrics", tuple(METRICS)),)
        evaluated = {c for s in measured for c in METRICS if _number(s.get(c)) is not None}
        shown: set[str] = set()
        where = f"protocol `{name}`" if name else "no protocol recorded"
        for table in tables:
            present = [c for c in table.columns if c in evaluated]
            if not present:
                continue
            rows = [r for r in published if any(_number(r.get(c)) is not None for c in table.columns)]
            title = f"## {table.title} ({where})" if table.title else f"## {where}"
            sources = ", ".join(dict.fromkeys(str(r.get("source", "")).removeprefix("published: ") for r in rows))
            note = f"\n\nPublished rows: {sources}; measured on their own benchmark images." if rows else ""
            parts.append(f"{title}{note}\n\n{markdown_table(measured, table.columns, published=rows)}")
            shown |= set(table.columns)
        rest = [c for c in METRICS if c in evaluated and c not in shown]
        if rest:
            parts.append(f"## Other metrics ({where})\n\n{markdown_table(measured, rest)}")
        if protocol is not None and protocol.about:
            parts.append(f"Protocol `{name}`: {protocol.about}.")
        conventions = sorted({str(s.get("preprocess")) for s in measured if s.get("preprocess")})
        if conventions and convention:
            parts += ["Evaluation convention:\n\n" + "\n".join(f"- {item}" for item in c.split(" | "))
                      for c in conventions]
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------- writing

def write_results(results_dir: str | Path, rows: Sequence[Row], summaries: Sequence[Row],
                  grid: Image.Image | None, protocols: Mapping[str, Protocol] | None = None) -> dict[str, Path]:
    """metrics.csv and summary.csv (rows of other methods or protocols already there are kept: evaluating methods
    one at a time into one folder builds one table; the published rows of each protocol measured here are added),
    summary.md and grid.png. Every write is atomic."""
    from stylex.data.outputs import atomic_save_image, atomic_write_bytes

    protocols = protocols or {}
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics": out / "metrics.csv", "summary": out / "summary.csv", "tables": out / "summary.md"}
    new = {(str(s.get("method", "")), str(s.get("protocol", ""))) for s in summaries}
    kept: list[Row] = []
    if files["metrics"].is_file():
        kept = [dict(r) for r in report.read_csv(files["metrics"])
                if (r.get("method", ""), r.get("protocol", "")) not in new]
    report.write_metrics_csv(files["metrics"], [*kept, *rows])
    measured = list(dict.fromkeys(str(s.get("protocol", "")) for s in summaries))
    published = [r for name in measured if name in protocols for r in published_rows(protocols[name])]
    present = [*measured, *(r.get("protocol", "") for r in report.read_csv(files["summary"]))] \
        if files["summary"].is_file() else measured
    order = [c for name in dict.fromkeys(present) if name in protocols for c in protocols[name].columns()]
    report.write_summary_csv(files["summary"], [*summaries, *published], merge=True,
                             order=[*SUMMARY_FIRST, *dict.fromkeys([*order, *METRICS])])
    table = report.read_csv(files["summary"])
    atomic_write_bytes(files["tables"], summary_markdown(table, protocols).encode("utf-8"))
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
    used = {str(s["method"]): str(s.get("protocol", "")) for s in summaries}
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
        experiment.summary.update({**numbers, "preprocess": convention,
                                   **{f"{m}/protocol": p for m, p in used.items()}})
        logger.finalize("success")


def _cell(value: object) -> object:
    return "" if value is None else value


# ---------------------------------------------------------------------------------------------- the whole job

def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [value]
    return list(value)


def choose_protocols(protocol_cfg: Mapping[str, Any], groups: Sequence[MethodOutputs],
                     smoke_size: int | None = None) -> dict[str, Protocol]:
    """method label -> its protocol: the one configured, or with `protocol=auto` the protocol of the paper the
    method's run reproduces (the method its sidecars record). Views capped at `smoke_size` when given."""
    chosen = {}
    for g in groups:
        protocol = protocol_for(protocol_cfg, g.method)
        how = "as configured"
        if str(protocol_cfg.get("name")) == AUTO:
            known = {str(k).lower() for k in protocol_cfg.get("by_method") or {}}
            how = (f"protocol=auto: the protocol of the paper the method '{g.method}' reproduces"
                   if g.method.lower() in known else
                   f"protocol=auto: '{g.method}' is none of {', '.join(sorted(known))}, so protocol.otherwise")
        log.info("%s: protocol %s (%s)", g.label, protocol.name, how)
        chosen[g.label] = protocol.smoke(smoke_size) if smoke_size else protocol
    return chosen


PROTOCOL_DIR = config_dir() / "protocol"


def known_protocols(protocol_cfg: Mapping[str, Any], used: Mapping[str, Protocol]) -> dict[str, Protocol]:
    """Every protocol known here, by name, for rendering the tables of rows already in summary.csv: the bundled
    configs/protocol/*.yaml, those the config defines (all of them under auto) and those used now (which win)."""
    from omegaconf import OmegaConf

    known: dict[str, Protocol] = {}
    for path in sorted(PROTOCOL_DIR.glob("*.yaml")) if PROTOCOL_DIR.is_dir() else []:
        if path.stem != AUTO:
            try:
                protocol = Protocol.from_config(OmegaConf.load(path))  # type: ignore[arg-type]
            except (ConfigError, ValueError) as exc:
                log.warning("ignoring the protocol config %s: %s", path, exc)
                continue
            known[protocol.name] = protocol
    if str(protocol_cfg.get("name")) == AUTO:
        for name, sub in (protocol_cfg.get("by_name") or {}).items():
            known[str(name)] = Protocol.from_config(sub)
    known.update({p.name: p for p in used.values()})
    return known


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
    names = list(m.names)
    options = {k: dict(OmegaConf.to_container(m[k], resolve=True))  # type: ignore[arg-type]
               for k in METRICS if m.get(k) is not None}
    method_names = _as_list(cfg.get("method_name"))
    outputs = _as_list(cfg.outputs)
    groups = collect_all(outputs, cfg.contents, cfg.styles, method_names=method_names or None,
                         check_inputs=bool(cfg.get("check_inputs", True)))
    groups, bad = drop_unreadable(groups, str(cfg.get("on_bad_image", "stop")))
    if cfg.get("protocol") is None:
        raise ConfigError("no `protocol` is set; pass protocol=auto (the default), stylegallery, ham or stylex.")
    protocol_cfg = OmegaConf.to_container(cfg.protocol, resolve=True)
    protocols = choose_protocols(protocol_cfg, groups, int(m.smoke_size) if smoke else None)  # type: ignore[arg-type]
    if smoke:
        log.info("tiny_models (debug=smoke): the metrics run on small random networks at most %d px; the numbers "
                 "check the wiring only", int(m.smoke_size))
    networks = Networks(smoke, int(cfg.seed), dict(m.weights or {}), resolve_device(str(cfg.get("device", "auto"))))
    built: dict[str, dict[str, Metric]] = {}
    for protocol in protocols.values():
        if protocol.name not in built:
            built[protocol.name] = build_metrics(names, options=options, protocol=protocol, networks=networks)
    template = options.get("clip_t", {}).get("template")
    rows, summaries = evaluate_groups(groups, protocols, built, batch_size=int(m.batch_size),
                                      clip_t_template=template)
    convention = "\n".join(dict.fromkeys(str(s["preprocess"]) for s in summaries))
    log.info("Evaluation convention: %s", convention)
    g = cfg.get("grid") or {}
    grid = None
    if g.get("enabled", True):
        grid = report.grid_from_pairs(grid_selection(groups, g.get("max_contents"), g.get("max_styles")),
                                      cell=int(g.get("cell", 128)))
    known = known_protocols(protocol_cfg, protocols)  # type: ignore[arg-type]
    files = write_results(cfg.results_dir, rows, summaries, grid, known)
    skipped = write_skipped(cfg.results_dir, [(str(path), why) for path, why in bad.items()])
    tables = summary_markdown(report.read_csv(files["summary"]), known, convention=False)
    log.info("Summary (%s):\n%s", files["summary"], tables)
    log.info("Protocols: %s", ", ".join(f"{label}: {p.name}" for label, p in protocols.items()))
    log.info("Results: %s%s", ", ".join(str(p) for p in files.values()),
             f"; {len(bad)} unreadable image(s) skipped, listed in {skipped}" if bad else "")
    config = OmegaConf.to_container(cfg, resolve=True)
    log_results(loggers, rows, summaries, grid, convention, config)  # type: ignore[arg-type]
    return EvaluationResult(Path(cfg.results_dir), files, rows, summaries, convention,
                            {label: p.name for label, p in protocols.items()})
