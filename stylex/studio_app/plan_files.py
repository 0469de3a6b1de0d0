"""The page's plan as files a batch run reads, and the batch command that reads them.

A plan is saved under `plans/<digest>/` of the studio's output folder: `overrides.yaml` (read by
`method.matching.overrides=`) and `masks/{content}.png` (read by `method.user_masks=`). The digest covers the
plan's contents, so a changed plan is a new path, a new config hash, and a batch run recomputes instead of
resuming over an output made with another plan.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from stylex.data.outputs import atomic_save_image, atomic_write_bytes
from stylex.errors import ConfigError
from stylex.studio_app.edits import Edits

# Settings the page decides; the studio's own command-line values for them are not passed on.
PLAN_KEYS = ("data.content", "data.styles", "method.matching.overrides", "method.user_masks")


@dataclass(frozen=True)
class PlanFiles:
    folder: Path  # plans/<digest>: the plan's files and the page's outputs for it
    overrides: Path | None  # overrides.yaml, when the plan overrides a match
    masks: Path | None  # the masks folder, when the plan has a user mask


def inside(root: Path, path: Path) -> Path:
    """`path`, refused unless it lies inside `root` (the studio writes nowhere else)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ConfigError(f"{path} is outside the studio's output folder {root}; nothing is written there.")
    return resolved


def overrides_yaml(content_name: str, overrides: dict[int, tuple[str, int]]) -> str:
    """The `method.matching.overrides` mapping for one content, as YAML."""
    import yaml

    table = {content_name: {int(r): [ref, int(s)] for r, (ref, s) in sorted(overrides.items())}}
    return yaml.safe_dump(table, sort_keys=False, default_flow_style=None)


def save_plan(root: Path, content_name: str, edits: Edits) -> PlanFiles:
    """Write the plan's files (once: the folder is named by their contents) and return where they are."""
    text = overrides_yaml(content_name, edits.overrides) if edits.overrides else ""
    mask = edits.mask if edits.mask is not None and edits.mask.any() else None
    digest = hashlib.sha256(content_name.encode() + b"\0" + text.encode() + b"\0"
                            + (b"" if mask is None else repr(mask.shape).encode() + mask.tobytes())).hexdigest()[:12]
    folder = inside(root, root / "plans" / digest)
    overrides = folder / "overrides.yaml" if text else None
    masks = folder / "masks" if mask is not None else None
    if overrides is not None and not overrides.exists():
        atomic_write_bytes(overrides, text.encode())
    if masks is not None:
        path = inside(root, masks / f"{content_name}.png")
        if not path.exists():
            atomic_save_image(path, Image.fromarray(mask.astype(np.uint8), mode="L"))
    folder.mkdir(parents=True, exist_ok=True)
    return PlanFiles(folder, overrides, masks)


def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def hydra_value(text: str) -> str:
    """`text` as a Hydra override value: bare when Hydra reads it back as this very string, else quoted."""
    from hydra.errors import HydraException

    try:
        if _parser().parse_override(f"key={text}").value() == text:
            return text
    except HydraException:
        pass
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def passed_on(task_overrides: Sequence[str], choices: dict[str, Any]) -> list[str]:
    """The studio's own command-line settings, as `stylex.run` needs them for the same result: the experiment
    and debug mode the studio composed (their defaults differ from stylex.run's), then every other override
    except the studio's, Hydra's and the keys the page sets itself."""
    import re

    first = [f"{group}={choices[group]}" for group in ("experiment", "debug") if choices.get(group)]
    rest = []
    for override in _parser().parse_overrides(list(task_overrides)):
        key = override.key_or_group
        if key in ("experiment", "debug") or key in PLAN_KEYS or re.split(r"[./]", key)[0] in ("studio", "hydra"):
            continue
        rest.append(override.input_line)
    typed_method = any(o.split("=")[0].lstrip("+~") == "method" for o in rest)
    if not choices.get("experiment") and not typed_method and choices.get("method"):
        first.append(f"method={choices['method']}")  # the studio's default method differs from stylex.run's
    return first + rest


def batch_command(base: Sequence[str], content: Path, styles: Sequence[Path] | None, plan: PlanFiles) -> str:
    """`python -m stylex.run ...` that makes the page's result: same settings, inputs and plan files."""
    args = ["python", "-m", "stylex.run", *base, f"data.content={hydra_value(str(content))}"]
    if styles is not None:
        args.append("data.styles=[" + ",".join(hydra_value(str(p)) for p in styles) + "]")
    if plan.overrides is not None:
        args.append(f"method.matching.overrides={hydra_value(str(plan.overrides))}")
    if plan.masks is not None:
        args.append(f"method.user_masks={hydra_value(str(plan.masks))}")
    return " ".join(shlex.quote(a) for a in args)
