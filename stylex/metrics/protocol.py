"""Evaluation protocols: everything that decides a number, named (configs/protocol/*.yaml, METHODS.md section 5).

A protocol fixes the style set of the FIDs (one copy of the style image per output, or each style once), which
Inception the FID column uses, the CFSD and Gram modes and what Gram and the style score compare with (the paired
style or the style family), each metric's view of the image files (resize rule, size, filter, crop), and the
published tables its numbers go next to. `protocol=auto` picks, for each evaluated method, the protocol of the
paper it reproduces (from the `method` its sidecars record).
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from stylex.errors import ConfigError
from stylex.metrics.fid import STYLE_COPIES
from stylex.metrics.preprocess import EVAL_SIZE, View

log = logging.getLogger(__name__)

AUTO = "auto"
FID_NETWORKS = ("art_inception", "inception")
PROTOCOL_KEYS = {"name", "about", "fid", "options", "preprocess", "tables"}


@dataclass(frozen=True)
class Table:
    """A paper's table: its columns in the published order and the published rows (their own benchmark)."""

    title: str
    columns: tuple[str, ...]
    source: str = ""
    published: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Protocol:
    name: str = "stylex"
    about: str = ""
    fid_network: str = "inception"
    style_copies: str = "once"
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    views: Mapping[str, View] = field(default_factory=dict)
    default_view: View = View("squash", EVAL_SIZE)
    tables: tuple[Table, ...] = ()

    def view(self, metric: str) -> View:
        """The view the metric's network sees the files through (the protocol's `preprocess`)."""
        return self.views.get(metric, self.default_view)

    def smoke(self, size: int) -> Protocol:
        """Every view at most `size` pixels (tiny random networks: the numbers check wiring only)."""
        return replace(self, views={k: v.smoke(size) for k, v in self.views.items()},
                       default_view=self.default_view.smoke(size))

    def columns(self) -> list[str]:
        """The metrics of the protocol's tables, in the published order."""
        out: list[str] = []
        for table in self.tables:
            out += [c for c in table.columns if c not in out]
        return out

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Protocol:
        """A protocol from a configs/protocol/*.yaml mapping (validated; errors name the key)."""
        data = _plain(cfg)
        name = str(data.get("name") or "")
        where = f"protocol `{name or '?'}`"
        unknown = sorted(set(data) - PROTOCOL_KEYS)
        if unknown:
            raise ConfigError(f"{where} has unknown keys {unknown}; a protocol's keys are "
                              f"{', '.join(sorted(PROTOCOL_KEYS))} (see configs/protocol/stylex.yaml).")
        if not name or name == AUTO:
            raise ConfigError(f"{where}: `name` must name the protocol (not {AUTO!r}).")
        fid = dict(data.get("fid") or {})
        network, copies = fid.get("network", "inception"), fid.get("style_copies", "once")
        if network not in FID_NETWORKS:
            raise ConfigError(f"{where}: fid.network={network!r} is not one of: {', '.join(FID_NETWORKS)}.")
        if copies not in STYLE_COPIES:
            raise ConfigError(f"{where}: fid.style_copies={copies!r} is not one of: {', '.join(STYLE_COPIES)}.")
        pre = dict(data.get("preprocess") or {})
        base = _as_dict(pre.pop("default", None))  # every other entry is a change of the default view
        try:
            default = View.from_config(base)
            views = {k: View.from_config({**base, **_as_dict(v)}) for k, v in pre.items()}
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        tables = tuple(_table(t, where) for t in data.get("tables") or [])
        options = {k: dict(v or {}) for k, v in (data.get("options") or {}).items()}
        return cls(name, str(data.get("about") or ""), network, copies, options, views, default, tables)


def _plain(cfg: Any) -> dict[str, Any]:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return dict(OmegaConf.to_container(cfg, resolve=True))  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover
        pass
    return dict(cfg)


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value or {})


def _table(cfg: Mapping[str, Any], where: str) -> Table:
    if "columns" not in cfg or not cfg["columns"]:
        raise ConfigError(f"{where}: each entry of `tables` needs `columns` (metric names in the published order).")
    published = cfg.get("published") or {}
    rows = tuple({"method": method, **dict(values)} for method, values in (published.get("rows") or {}).items())
    return Table(str(cfg.get("title") or ""), tuple(cfg["columns"]), str(published.get("source") or ""), rows)


def sidecar_method(sidecars: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The `method` most of the outputs' sidecars record (None without sidecars)."""
    methods = Counter(str(sc["method"]) for sc in sidecars.values() if sc.get("method"))
    return methods.most_common(1)[0][0] if methods else None


def protocol_for(cfg: Mapping[str, Any], method: str | None) -> Protocol:
    """The protocol a config selects for one method: itself, or with `name: auto` the entry of `by_method`
    (else `otherwise`) looked up in `by_name`."""
    if str(cfg.get("name")) != AUTO:
        return Protocol.from_config(cfg)
    by_method = {str(k).lower(): str(v) for k, v in (cfg.get("by_method") or {}).items()}
    chosen = by_method.get((method or "").lower(), str(cfg.get("otherwise") or "stylex"))
    by_name = cfg.get("by_name") or {}
    if chosen not in by_name:
        raise ConfigError(f"protocol=auto chose `{chosen}` for the method {method!r}, but protocol.by_name has no "
                          f"such protocol (it has: {', '.join(by_name) or 'none'}). Add it to "
                          f"configs/protocol/auto.yaml or pass protocol=<name> explicitly.")
    return Protocol.from_config(by_name[chosen])

