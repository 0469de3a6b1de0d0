"""How every `python -m stylex.bench` task reports: a text table in the log, a CSV in the run folder and a W&B
table (one W&B run per benchmark, with the configured logger)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from stylex.data.outputs import atomic_write_csv

log = logging.getLogger("stylex.bench")


def columns_of(rows: list[dict[str, Any]]) -> list[str]:
    """Every key of the rows, in first-seen order."""
    return list(dict.fromkeys(c for row in rows for c in row))


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    columns = columns_of(rows)
    cells = [[str(row.get(c, "")) if row.get(c) is not None else "" for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


def report(cfg: DictConfig, tables: dict[str, list[dict[str, Any]]]) -> None:
    """Write each non-empty table as `{name}.csv` under paths.output_dir and log them all to W&B as `bench/{name}`."""
    from stylex.pipeline import build_loggers

    tables = {name: rows for name, rows in tables.items() if rows}
    out = Path(cfg.paths.output_dir)
    for name, rows in tables.items():
        atomic_write_csv(out / f"{name}.csv", rows, columns_of(rows))
    log.info("Tables written to %s", out)
    for logger in build_loggers(cfg):
        import wandb

        for name, rows in tables.items():
            columns = columns_of(rows)
            data = [[row.get(c) for c in columns] for row in rows]
            logger.experiment.log({f"bench/{name}": wandb.Table(columns=columns, data=data)})
        logger.finalize("success")
