"""A composed config against its command's schema: every problem found, reported in one `ConfigError`.

Types are checked by assigning each value to an OmegaConf structured config of the group's dataclass (OmegaConf
converts "5" to 5 and refuses "abc" for an int); ranges and choices by the field's `Allowed`.
"""
from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from stylex.checks.allowed import allowed_of, describe, show
from stylex.checks.schema import COMMANDS
from stylex.errors import ConfigError

@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    allowed: str  # what the setting accepts, or what is wrong

    def __str__(self) -> str:
        return f"{self.key}={show(self.value)}: {self.allowed}"


def check_settings(values: dict[str, Any], command: str) -> None:
    """Raise one ConfigError listing every setting (of a `resolved` config) the command's schema refuses."""
    problems = find_problems(values, COMMANDS[command])
    if problems:
        raise ConfigError(report(problems, command))


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain values, interpolations resolved; one that cannot be resolved is a ConfigError."""
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        reason = str(getattr(exc, "msg", "") or exc).splitlines()[0]
        raise ConfigError(f"{exc.full_key or 'the configuration'} cannot be resolved: {reason}. Check the "
                          f"`${{...}}` references it makes.") from None
    assert isinstance(values, dict)
    values.pop("hydra", None)  # Hydra's own settings (present when composed with return_hydra_config)
    return values


def find_problems(values: Any, schema: type, path: str = "") -> list[Problem]:
    """Every problem of `values` (one config node) against `schema` and, recursively, its sub-nodes."""
    if not isinstance(values, dict):
        return [Problem(path, values, "must be a group of settings (key: value)")]
    fields = {f.name: f for f in dataclasses.fields(schema)}
    types = type_hints(schema)
    problems = [Problem(join(path, key), value, unknown_key(path, fields)) for key, value in values.items()
                if key not in fields and not getattr(schema, "OPEN", False)]
    typed = typed_node(schema)
    for name, value in values.items():
        if name not in fields or value == MISSING:
            continue
        key, spec, annotation = join(path, name), fields[name], types[name]
        if "by_target" in spec.metadata:
            problems += check_by_target(value, spec.metadata["by_target"], spec.metadata["each_entry"], key)
            continue
        if "entries" in spec.metadata:
            problems += check_entries(value, spec.metadata["entries"], key)
            continue
        sub = node_schema(annotation)
        if sub is not None:
            if value is None and optional(annotation):
                continue
            problems += find_problems(value, sub, key)
            continue
        try:
            typed[name] = value
            checked = typed[name]
            checked = OmegaConf.to_container(checked) if OmegaConf.is_config(checked) else checked
        except OmegaConfBaseException:
            problems.append(Problem(key, value, f"must be {describe(annotation, spec)}"))
            continue
        rule = allowed_of(spec)
        if rule is not None and checked is not None and not rule.accepts(checked):
            problems.append(Problem(key, value, f"must be {describe(annotation, spec)}"))
    if not problems:
        relations = getattr(schema, "relations", None)  # settings that contradict each other
        problems += [Problem(join(path, key), lookup(values, key), text) for key, text in relations(values)] \
            if relations is not None else []
    return problems


def lookup(values: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of a node (None where there is none)."""
    for part in key.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values


def check_by_target(value: Any, schemas: dict[str, type], each_entry: bool, key: str) -> list[Problem]:
    """A node checked by the schema of its `_target_` (or each entry of a mapping of such nodes)."""
    if value is None:
        return []
    nodes = value if each_entry else {None: value}
    if not isinstance(nodes, dict):
        return [Problem(key, value, "must be a group of settings (key: value)")]
    problems = []
    for name, node in nodes.items():
        where = key if name is None else join(key, str(name))
        if not isinstance(node, dict):
            problems.append(Problem(where, node, "must be a group of settings with a `_target_`"))
            continue
        schema = schemas.get(str(node.get("_target_")))
        if schema is not None:  # a class of your own is checked when it is built
            problems += find_problems(node, schema, where)
    return problems


def check_entries(value: Any, schema: type, key: str) -> list[Problem]:
    """A mapping {name: node} whose every node follows `schema`."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [Problem(key, value, "must be a group of settings (name: settings)")]
    return [p for name, node in value.items() for p in find_problems(node, schema, join(key, str(name)))]


def unknown_key(path: str, fields: dict[str, Any]) -> str:
    known = ", ".join(sorted(k for k in fields if not k.startswith("_")))
    return f"is not a setting of `{path or 'the config'}` (its settings: {known})"


@functools.lru_cache(maxsize=None)
def typed_node(schema: type) -> DictConfig:
    """The schema as an OmegaConf structured config, built once: each value is assigned to its field to check its
    type (the previous value left in a field is never read)."""
    return OmegaConf.structured(schema)


@functools.lru_cache(maxsize=None)
def type_hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def node_schema(annotation: Any) -> type | None:
    """The dataclass of a sub-node (`Regions`, `Optional[Accel]`), else None."""
    candidates = [annotation, *typing.get_args(annotation)] if optional(annotation) else [annotation]
    return next((c for c in candidates if dataclasses.is_dataclass(c)), None)


def optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(annotation)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def report(problems: list[Problem], command: str) -> str:
    fix = (f"Change it on the command line (`{problems[0].key}=...`) or in the config file; "
           f"`python -m stylex.{command} --cfg job --resolve` shows every setting.")
    if len(problems) == 1:
        return f"{problems[0]}. {fix}"
    listed = "\n".join(f"  - {p}" for p in problems)
    return f"{len(problems)} settings are not valid:\n{listed}\n{fix.replace('Change it', 'Change them')}"
