"""Assigning each content region a style region from the score table (METHODS.md 2.2, "Assignment").

Default (official): many-to-one, each content region takes its best column over all regions of all
references. Options: one-to-one (Hungarian), a minimum score below which the content region falls back to the
global AD loss over all references, and user overrides that win over everything.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from stylex.errors import ConfigError, InputError
from stylex.matching.score import ScoreTable

AssignMode = Literal["many_to_one", "hungarian"]


@dataclass(frozen=True)
class Match:
    """Content region `content_region` takes its style from region `style_region` of reference `reference`.

    `score` is the total, `stat`/`sem`/`geo` the unweighted terms (NaN when only a score matrix was given).
    `fallback`: the score is below `min_score`, so the caller should use the global AD loss over all
    references for this region. `how`: "best" (argmax), "hungarian" (one-to-one) or "override" (user).
    """

    content_region: int
    reference: int
    style_region: int
    score: float
    stat: float
    sem: float
    geo: float
    fallback: bool
    how: str = "best"


def parse_overrides(
    overrides: Mapping[Any, Any] | None, n_content: int, regions_per_reference: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """Validate `{content_region: (reference, region)}` (keys may be digit strings, as from YAML).

    Raises ConfigError naming the bad override and the valid ranges.
    """
    if not overrides:
        return {}
    n_refs = len(regions_per_reference)
    ranges = (
        f"content regions are 0..{n_content - 1}; references are 0..{n_refs - 1} with "
        + ", ".join(f"{n} region(s) in reference {i}" for i, n in enumerate(regions_per_reference))
    )
    parsed: dict[int, tuple[int, int]] = {}
    for key, value in overrides.items():
        what = f"region override {key!r}: {value!r}"
        try:
            content = _as_int(key)
            if isinstance(value, (str, bytes)) or len(value) != 2:
                raise TypeError
            reference, region = _as_int(value[0]), _as_int(value[1])
        except (TypeError, ValueError):
            raise ConfigError(
                f"{what} is not of the form content_region: [reference, region] with integers ({ranges})"
            ) from None
        if not 0 <= content < n_content:
            raise ConfigError(f"{what} names content region {content}, which does not exist ({ranges})")
        if not 0 <= reference < n_refs:
            raise ConfigError(f"{what} names reference {reference}, which does not exist ({ranges})")
        if not 0 <= region < regions_per_reference[reference]:
            raise ConfigError(f"{what} names region {region} of reference {reference}, which does not exist ({ranges})")
        parsed[content] = (reference, region)
    return parsed


def read_overrides(path: str | Path) -> dict[str, dict[Any, Any]]:
    """`method.matching.overrides` given as a YAML (or JSON) file holding the same mapping,
    {content name: {content region: [reference name or index, style region]}}: plans saved by the studio are
    read this way, so a sweep can name one file instead of nesting the mapping on the command line."""
    import yaml

    path = Path(path).expanduser()
    what = f"method.matching.overrides={path}"
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InputError(f"{what}: the file cannot be read ({exc.strerror or exc}). Point it at a YAML file of "
                         f"overrides, or set the mapping itself.") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{what}: not valid YAML ({exc}).") from None
    data = {} if data is None else data
    if not isinstance(data, Mapping) or not all(isinstance(v, Mapping) for v in data.values()):
        raise InputError(f"{what}: expected a mapping {{content name: {{content region: [reference, region]}}}}, "
                         f"e.g. 'astronaut: {{0: [ihc, 2]}}'.")
    return {str(name): dict(regions) for name, regions in data.items()}


def _as_int(x: Any) -> int:
    if isinstance(x, bool):
        raise TypeError("bool is not a region index")
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, str) and x.strip().lstrip("-").isdigit():
        return int(x)
    raise TypeError(f"not an integer: {x!r}")


def assign(
    scores: Tensor | ScoreTable,
    ref_index_of_column: Tensor | None = None,
    region_of_column: Tensor | None = None,
    *,
    mode: AssignMode = "many_to_one",
    min_score: float | None = None,
    overrides: Mapping[Any, Any] | None = None,
) -> list[Match]:
    """One Match per content region, in content-region order.

    `scores` is a ScoreTable (columns and terms taken from it) or a plain [Rc, N] matrix with the column
    maps `ref_index_of_column` and `region_of_column`. many_to_one: argmax over all columns (ties: lowest
    column). hungarian: one-to-one maximising the total score over the columns not taken by overrides; content
    regions left over (more regions than columns) take their argmax.
    """
    if isinstance(scores, ScoreTable):
        table = scores
        total, refs, regs = table.score, table.reference, table.region
        terms = [t.detach().cpu().numpy().astype(np.float64) for t in (table.stat, table.sem, table.geo)]
    else:
        if ref_index_of_column is None or region_of_column is None:
            raise ValueError("a plain score matrix needs ref_index_of_column and region_of_column")
        total, refs, regs = scores, ref_index_of_column, region_of_column
        terms = [np.full(tuple(scores.shape), np.nan) for _ in range(3)]
    if mode not in ("many_to_one", "hungarian"):
        raise ConfigError(f"matching assignment mode must be 'many_to_one' or 'hungarian', got {mode!r}")
    s = total.detach().cpu().numpy().astype(np.float64)
    refs_np = torch.as_tensor(refs).cpu().numpy().astype(np.int64)
    regs_np = torch.as_tensor(regs).cpu().numpy().astype(np.int64)
    n_content, n_cols = s.shape
    if n_cols == 0 or refs_np.shape != (n_cols,) or regs_np.shape != (n_cols,):
        raise ValueError(f"score matrix {s.shape} does not match column maps {refs_np.shape}, {regs_np.shape}")

    regions_per_reference = [int(regs_np[refs_np == r].max()) + 1 for r in range(int(refs_np.max()) + 1)]
    column_of = {(int(r), int(g)): j for j, (r, g) in enumerate(zip(refs_np, regs_np))}
    chosen: dict[int, tuple[int, str]] = {
        c: (column_of[ref_reg], "override")
        for c, ref_reg in parse_overrides(overrides, n_content, regions_per_reference).items()
    }

    rest = [c for c in range(n_content) if c not in chosen]
    if mode == "hungarian" and rest:
        taken = {col for col, _ in chosen.values()}
        free = [j for j in range(n_cols) if j not in taken]
        if free:
            rows, cols = linear_sum_assignment(s[np.ix_(rest, free)], maximize=True)
            for r, k in zip(rows, cols):
                chosen[rest[r]] = (free[k], "hungarian")
    for c in range(n_content):
        if c not in chosen:
            chosen[c] = (int(np.argmax(s[c])), "best")

    matches = []
    for c in range(n_content):
        col, how = chosen[c]
        score = float(s[c, col])
        matches.append(
            Match(
                content_region=c,
                reference=int(refs_np[col]),
                style_region=int(regs_np[col]),
                score=score,
                stat=float(terms[0][c, col]),
                sem=float(terms[1][c, col]),
                geo=float(terms[2][c, col]),
                fallback=how != "override" and min_score is not None and score < min_score,
                how=how,
            )
        )
    return matches
