"""Every setting of every config group against its schema: the shipped configs pass, and for every setting a bad
type, a value out of range and a bad choice are each refused with the setting's full key.

The table is built from the composed configs and the schema's declarations (type, range, choices); the checks
it exercises are OmegaConf's type validation and `Allowed.accepts`. A few cases go through the real command line
in tests/e2e/test_config_cli.py.
"""
from __future__ import annotations

import copy
import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir

from stylex.checks import check_config
from stylex.checks.schema import COMMANDS, RunCommand
from stylex.checks.validate import find_problems, resolved
from stylex.data.samples import register_resolvers
from stylex.errors import ConfigError

CONFIGS = Path(__file__).parents[3] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))

# (command, overrides): together they hold every group option, so every schema field appears in one of them
VARIANTS = [
    ("run", ["experiment=ad"]),
    ("run", ["experiment=gallery_lcm"]),
    ("run", ["experiment=gallery_hyper", "gallery=index", "gallery.path=g"]),
    ("run", ["experiment=styleid", "trainer=ddp"]),
    ("run", ["experiment=ham_sd21"]),
    ("run", ["experiment=ham_sd35"]),
    ("index", ["gallery.out=g"]),
    ("evaluate", ["outputs=x"]),
    ("evaluate", ["outputs=x", "protocol=stylegallery"]),
    ("run", ["experiment=gallery_official", "hparams_search=gallery_optuna"]),
    ("studio", []),
    ("bench", []),
]

# A value of the wrong kind for the rules OmegaConf's types cannot state (the `satisfies` fields), by setting name
BAD_FOR_PREDICATE: dict[str, Any] = {
    "content": {"a": 1}, "styles": {"a": 1}, "outputs": {"a": 1}, "contents": {"a": 1},
    "devices": 0, "inference_mode": True, "layer": "", "overrides": 5, "device": "gpu0", "method_name": 5,
}


def compose_values(command: str, overrides: list[str], tmp: Path) -> dict[str, Any]:
    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose(command, overrides=[*overrides, f"paths.output_dir={tmp}"])
    return resolved(cfg)


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> list[tuple[str, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("out")
    return [(command, compose_values(command, overrides, tmp)) for command, overrides in VARIANTS]


def schema_of(field: dataclasses.Field, annotation: Any, value: Any) -> type | None:
    """The dataclass a sub-node follows (nested field, or by its `_target_`)."""
    if "by_target" in field.metadata:
        return field.metadata["by_target"].get(value.get("_target_")) if isinstance(value, dict) else None
    for candidate in (annotation, *typing.get_args(annotation)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def leaves(values: dict[str, Any], schema: type, path: str = "") -> list[tuple[str, dataclasses.Field, Any, type]]:
    """(full key, field, annotation, the schema declaring it) of every leaf setting present in `values`."""
    hints = typing.get_type_hints(schema)
    out = []
    for field in dataclasses.fields(schema):
        if field.name not in values or field.name in ("_target_", "_partial_"):  # how Hydra builds it, not a setting
            continue
        key, value = f"{path}.{field.name}" if path else field.name, values[field.name]
        if "by_target" in field.metadata and field.metadata["each_entry"]:
            for name, node in (value or {}).items():
                sub = field.metadata["by_target"].get(node.get("_target_"))
                out += leaves(node, sub, f"{key}.{name}") if sub else []
            continue
        if "entries" in field.metadata:
            for name, node in (value or {}).items():
                out += leaves(node, field.metadata["entries"], f"{key}.{name}")
            continue
        sub = schema_of(field, hints[field.name], value)
        if sub is not None:
            out += leaves(value, sub, key) if isinstance(value, dict) else []
        elif "by_target" not in field.metadata:
            out.append((key, field, hints[field.name], schema))
    return out


def base_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) is typing.Union else annotation


def bad_values(key: str, field: dataclasses.Field, annotation: Any) -> list[tuple[str, Any]]:
    """(kind, value) cases this setting must refuse: a bad type, out of range, a bad choice."""
    kind = base_type(annotation)
    rule = field.metadata.get("allowed")
    cases: list[tuple[str, Any]] = []
    typed = {int: [("type", "abc"), ("type", 2.5)], float: [("type", "abc")], bool: [("type", "maybe")],
             str: [("type", [1, 2])]}
    if kind in typed:
        cases += typed[kind]
    elif typing.get_origin(kind) is list:
        cases.append(("type", "not-a-list"))
    elif typing.get_origin(kind) is dict:
        cases.append(("type", [1]))
    if rule is None:
        return cases
    if rule.predicate is not None:
        cases.append(("type", BAD_FOR_PREDICATE[key.rsplit(".", 1)[-1]]))
    element: list[Any] = []
    if rule.choices:
        element.append(("choice", "no_such_choice"))
    if rule.low != float("-inf"):
        element.append(("range", rule.low if rule.low_open else rule.low - 1))
    if rule.high != float("inf"):
        element.append(("range", rule.high + 1))
    if rule.multiple:
        element.append(("range", rule.low + 1))
    if rule.nonempty:
        element.append(("range", ""))
    if rule.each:
        cases += [(k, [v] * (rule.length or 1)) for k, v in element]
        if rule.length:
            cases.append(("range", [rule.low] * (rule.length + 1)))
    else:
        cases += element
    return cases


def put(values: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(values)
    node = out
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return out


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_shipped_experiment_passes_its_schema(experiment, tmp_path):
    for overrides in ([f"experiment={experiment}"], [f"experiment={experiment}", "debug=smoke"]):
        assert find_problems(compose_values("run", overrides, tmp_path), RunCommand) == []


def test_every_shipped_command_config_passes_its_schema(variants, tmp_path):
    for command, values in variants:
        assert find_problems(values, COMMANDS[command]) == [], command
    for command, overrides in VARIANTS:
        smoke = compose_values(command, [*overrides, "debug=smoke"], tmp_path)
        assert find_problems(smoke, COMMANDS[command]) == [], (command, "debug=smoke")


def test_every_schema_setting_is_in_the_table(variants):
    """Each field of each schema occurs in a composed variant, so the table below covers every setting; and every
    `satisfies` rule has a bad value in BAD_FOR_PREDICATE."""
    covered = {(schema.__name__, field.name) for command, values in variants
               for _, field, _, schema in leaves(values, COMMANDS[command])}
    declared = set()
    for schema in all_schemas():
        for field in dataclasses.fields(schema):
            sub = schema_of(field, typing.get_type_hints(schema)[field.name], {})
            if sub is None and not {"by_target", "entries"} & set(field.metadata) and not field.name.startswith("_"):
                declared.add((schema.__name__, field.name))
                rule = field.metadata.get("allowed")
                if rule is not None and rule.predicate is not None:
                    assert field.name in BAD_FOR_PREDICATE, field.name
    nodes = {"gallery", "backbone", "data", "method"}  # references to other groups, checked there
    missing = {d for d in declared - covered if d[1] not in nodes}
    assert not missing, f"schema settings no composed config holds (add a variant): {sorted(missing)}"


def all_schemas() -> set[type]:
    seen: set[type] = set()
    todo = list(COMMANDS.values())
    while todo:
        schema = todo.pop()
        if schema in seen:
            continue
        seen.add(schema)
        for field in dataclasses.fields(schema):
            todo += list(field.metadata.get("by_target", {}).values())
            sub = schema_of(field, typing.get_type_hints(schema)[field.name], {})
            if sub is not None:
                todo.append(sub)
    return seen


def table(variants: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, Any, type, dict[str, Any]]]:
    """(full key, kind, bad value, the group schema declaring the key, that group's values), once per group."""
    rows, seen = [], set()
    for command, values in variants:
        for key, field, annotation, schema in leaves(values, COMMANDS[command]):
            group = get(values, key.rsplit(".", 1)[0]) if "." in key else values
            for kind, value in bad_values(key, field, annotation):
                if (schema.__name__, key, kind, repr(value)) not in seen:
                    seen.add((schema.__name__, key, kind, repr(value)))
                    rows.append((key, kind, value, schema, group))
    return rows


def get(values: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        values = values[part]
    return values


def test_every_bad_type_range_and_choice_is_refused_naming_the_key(variants):
    """Each row through the validation of the group that holds it (the whole config is validated in the tests
    below and through the command line)."""
    rows = table(variants)
    kinds = {kind for _, kind, _, _, _ in rows}
    assert kinds == {"type", "range", "choice"} and len(rows) > 300
    accepted = []
    for key, kind, value, schema, group in rows:
        path, _, name = key.rpartition(".")
        assert find_problems(group, schema, path) == [], key  # the group as shipped passes
        problems = find_problems(put(group, name, value), schema, path)
        if [p.key for p in problems] != [key] or "must be" not in problems[0].allowed:
            accepted.append(f"{key}={value!r} ({kind}) -> {[str(p) for p in problems]}")
    assert not accepted, "settings not refused (or refused under another key):\n" + "\n".join(accepted[:20])


def test_every_problem_names_the_value_and_what_is_allowed(variants):
    command, values = variants[0]
    (problem,) = find_problems(put(values, "method.num_steps", 2.5), COMMANDS[command])
    assert str(problem) == "method.num_steps=2.5: must be an integer in [1, 1000]"
    (problem,) = find_problems(put(values, "data.pairing", "pairs"), COMMANDS[command])
    assert str(problem) == "data.pairing=pairs: must be one of: product, gallery"
    (problem,) = find_problems(put(values, "method.lr", "abc"), COMMANDS[command])
    assert str(problem) == "method.lr=abc: must be a number > 0"


def test_values_at_the_edges_are_accepted(variants):
    command, values = variants[0]
    for key, value in (("method.num_steps", 1), ("method.num_steps", 1000), ("data.resolution", 64),
                       ("method.lr", 1e-6), ("method.content_weight", 0), ("data.content", "2024"),
                       ("data.content", 2024), ("trainer.devices", [0, 1]), ("trainer.devices", "auto"),
                       ("method.num_steps", "7")):
        assert find_problems(put(values, key, value), COMMANDS[command]) == [], (key, value)


def test_settings_that_contradict_each_other(variants):
    by_name = dict((overrides[0], values) for (_, overrides), (_, values) in zip(VARIANTS, variants) if overrides)
    ham = by_name["experiment=ham_sd21"]
    assert [str(p) for p in find_problems(put(ham, "method.t_range", [900, 100]), RunCommand)] == [
        "method.t_range=[900,100]: [low, high] needs low <= high"]
    lcm = by_name["experiment=gallery_lcm"]
    (problem,) = find_problems(put(lcm, "method.num_steps", 60), RunCommand)
    assert problem.key == "method.num_steps" and "original_inference_steps=50" in problem.allowed
    flex = put(put(lcm, "method.regional_attention", "flex"), "method.mask_mode", "zero")
    assert [p.key for p in find_problems(flex, RunCommand)] == ["method.regional_attention"]
    depth = put(put(lcm, "method.regions.depth_low_pct", 60), "method.regions.depth_high_pct", 40)
    (problem,) = find_problems(depth, RunCommand)
    assert str(problem).startswith("method.regions.depth_high_pct=40: must be above depth_low_pct=60")
    auto = next(v for (_, overrides), (_, v) in zip(VARIANTS, variants) if overrides == ["outputs=x"])
    (problem,) = find_problems(put(auto, "protocol.by_method.ham", "hm"), COMMANDS["evaluate"])
    assert str(problem).startswith("protocol.by_method.ham=hm: names no protocol of by_name (ham, stylegallery")


def test_unknown_keys_are_refused_but_extra_lightning_arguments_pass(variants):
    command, values = variants[0]
    (problem,) = find_problems(put(values, "method.no_such_option", 3), COMMANDS[command])
    assert problem.key == "method.no_such_option" and "style_temperature" in problem.allowed
    assert find_problems(put(values, "trainer.max_steps", 3), COMMANDS[command]) == []


@pytest.mark.parametrize("override, message", [
    ("method.num_steps=0", "method.num_steps=0: must be an integer in [1, 1000]"),
    ("method.num_steps=-5", "method.num_steps=-5: must be an integer in [1, 1000]"),
    ("method.num_steps=2.5", "method.num_steps=2.5: must be an integer in [1, 1000]"),
    ("method.lr=abc", "method.lr=abc: must be a number > 0"),
    ("method.lr=-1", "method.lr=-1: must be a number > 0"),
    ("data.resolution=0", "data.resolution=0: must be an integer >= 64, a multiple of 64"),
])
def test_the_reported_settings_stop_before_any_work(override, message, tmp_path):
    """The rows of the original report, through Hydra's composition and interpolation."""
    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=smoke", override, f"paths.output_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError) as error:
        check_config(cfg, "run")
    assert str(error.value).startswith(message) and "--cfg job --resolve" in str(error.value)
    assert not (tmp_path / "run").exists()


def test_several_problems_are_listed_at_once(tmp_path):
    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=smoke", "method.num_steps=0", "data.pairing=x",
                                        f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"2 settings are not valid:\n  - data.pairing=x: .*\n  - method.num_steps=0"):
        check_config(cfg, "run")


def test_a_reference_that_cannot_be_resolved_is_named(tmp_path):
    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=smoke", "data.resolution=${nowhere}",
                                        f"paths.output_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=r"data.resolution cannot be resolved"):
        check_config(cfg, "run")


def test_choices_match_the_code_that_reads_them():
    """The schema's literal choice lists (kept literal so a bad value is reported before heavy imports) are the
    ones the code accepts."""
    from stylex.backbones import FAMILIES
    from stylex.backbones.sd import DTYPES
    from stylex.checks import schema
    from stylex.data.datamodule import ON_BAD_IMAGE
    from stylex.diffusion.regional_attention import BACKENDS
    from stylex.diffusion.schedules import KINDS
    from stylex.gallery.faiss_index import DEVICES, INDEX_TYPES
    from stylex.methods.stylegallery import INITS, MASK_MODES
    from stylex.metrics.evaluation import HIGHER_IS_BETTER
    from stylex.metrics.factory import METRICS
    from stylex.metrics.fid import STYLE_COPIES
    from stylex.metrics.preprocess import FILTERS, RESIZE_RULES
    from stylex.metrics.protocol import FID_NETWORKS
    from stylex.metrics.vgg_metrics import AGAINST
    from stylex.regions.extract import DEPTH_RESIZES
    from stylex.diffusion.regional_attention import LOSS_NORMS
    from stylex.methods.stylegallery import SIDE_INPUTS

    def choices(schema_class: type, name: str) -> tuple:
        field = next(f for f in dataclasses.fields(schema_class) if f.name == name)
        return field.metadata["allowed"].choices

    assert choices(schema.Backbone, "family") == FAMILIES
    assert set(choices(schema.Backbone, "dtype")) == {"auto", *DTYPES}
    assert choices(schema.StyleGalleryMethod, "regional_attention") == BACKENDS
    assert choices(schema.Accel, "schedule") == KINDS
    assert choices(schema.GalleryIndex, "type") == INDEX_TYPES and choices(schema.RunGallery, "device") == DEVICES
    assert choices(schema.StyleGalleryMethod, "init") == INITS
    assert choices(schema.StyleGalleryMethod, "mask_mode") == MASK_MODES
    assert choices(schema.Metrics, "names") == METRICS == choices(schema.Objective, "metric")
    assert set(METRICS) == set(HIGHER_IS_BETTER)
    assert choices(schema.StyleGalleryMethod, "loss_norm") == LOSS_NORMS
    assert choices(schema.StyleGalleryMethod, "dino_depth_input") == SIDE_INPUTS
    assert choices(schema.Regions, "depth_resize") == DEPTH_RESIZES
    assert choices(schema.ProtocolFid, "network") == FID_NETWORKS
    assert set(choices(schema.ProtocolFid, "style_copies")) == set(STYLE_COPIES)
    assert choices(schema.View, "resize") == RESIZE_RULES and set(choices(schema.View, "interpolation")) == set(FILTERS)
    assert choices(schema.GramOptions, "against") == AGAINST == choices(schema.StyleScoreAgainst, "against")
    assert choices(schema.Data, "on_bad_image") == ON_BAD_IMAGE == choices(schema.EvaluateCommand, "on_bad_image")
