"""The schema of every config group: one dataclass per group (structured configs), one field per setting.

A field's type is checked by OmegaConf; its `Allowed` (see allowed.py) checks the range or choices. Defaults stay
in the YAML configs, with their comments; a setting is added to a group with one line in its class here, e.g.
`loss_norm: str = one_of("layer", "region")` in `StyleGalleryMethod`. A key in a config that its class does not
declare is refused (except in `Trainer`, whose extra keys Lightning checks). `relations` checks settings that
only make sense together. `COMMANDS` says which schema each entry point's composed config follows.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Optional

from omegaconf import MISSING

from stylex.checks.allowed import (above, at_least, between, each, multiple_of, nested, nonempty, one_of,
                                   satisfies)

MAX_SEED = 2**32 - 1  # Lightning's seed_everything range
MAX_STEPS = 1000  # the diffusion models' training timesteps: a DDIM grid has at most this many


def entries(schema: type) -> Any:
    """A mapping {name: node} whose every node follows `schema` (protocol=auto's `by_name`)."""
    return field(default=MISSING, metadata={"entries": schema})


def by_target(schemas: dict[str, type], each_entry: bool = False) -> Any:
    """A node whose schema depends on its `_target_` (method), or a mapping of such nodes (logger, callbacks).
    A `_target_` not listed (a class of your own) is checked when it is built."""
    return field(default=MISSING, metadata={"by_target": schemas, "each_entry": each_entry})


def is_paths(value: Any) -> bool:
    """A folder or file (a bare number is a folder name too), or a list of them; null is reported where used."""
    scalar = (str, int, float, type(None))
    return isinstance(value, scalar) or (isinstance(value, list) and all(isinstance(v, scalar) for v in value))


def is_device(value: Any) -> bool:
    return isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value) is not None


def is_lightning_devices(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= -1 and value != 0
    if isinstance(value, str):
        return value == "auto" or re.fullmatch(r"-1|\d+|\d+(,\d*)+", value) is not None
    return isinstance(value, list) and bool(value) and all(isinstance(v, int) and v >= 0 for v in value)


PATHS_WORDS = "a folder, an image file, or a list of them"
DEVICE_WORDS = "auto, cpu, mps, cuda or cuda:N"


# ---------------------------------------------------------------------------------------------- shared groups

@dataclass
class Paths:
    output_dir: str = nonempty()
    cache_dir: Optional[str] = MISSING


@dataclass
class Data:
    _target_: str = MISSING
    content: Any = satisfies(is_paths, PATHS_WORDS)
    styles: Any = satisfies(is_paths, PATHS_WORDS)
    pairing: str = one_of("product", "gallery")
    resolution: int = multiple_of(64, low=64)
    content_resize: str = one_of("keep", "squash")
    style_resize: str = one_of("keep", "squash")
    batch_size: int = at_least(1)
    num_workers: int = at_least(0)
    seed: int = between(0, MAX_SEED)
    on_bad_image: str = one_of("stop", "skip")
    gallery: Any = MISSING  # gallery=index: the gallery node (checked as `gallery`)


@dataclass
class Backbone:
    _target_: str = MISSING
    _partial_: bool = MISSING
    family: str = one_of("sd", "sd3")
    model: str = nonempty()
    dtype: str = one_of("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
    tiny: bool = MISSING
    compile: bool = MISSING
    t5: bool = MISSING
    shift: Optional[float] = above(0)


# ---------------------------------------------------------------------------------------------- methods

@dataclass
class Method:
    _target_: str = MISSING
    backbone: Any = MISSING  # the backbone node (checked as `backbone`)
    num_steps: int = between(1, MAX_STEPS)
    prompt: str = MISSING
    seed: int = between(0, MAX_SEED)
    show_progress: bool = MISSING


@dataclass
class OptimisingMethod(Method):
    """Attention Distillation's latent optimisation (shared by StyleGallery)."""

    layers: list[str] = each(nonempty=True)
    iters_per_step: int = at_least(1)
    lr: float = above(0)
    content_weight: float = at_least(0)
    early_exit: bool = MISSING


@dataclass
class AttentionDistillationMethod(OptimisingMethod):
    style_temperature: float = above(0)
    init: str = one_of("content", "noise")


@dataclass
class Network:
    """A helper network loaded by id or folder (method.dino, method.depth)."""

    _target_: str = MISSING
    _partial_: bool = MISSING
    model: str = nonempty()
    tiny: bool = MISSING


@dataclass
class Regions:
    inversion_steps: int = between(1, MAX_STEPS)
    feature_block: str = nonempty()
    time_sharpness: float = at_least(0)
    time_center: float = between(0, 1)
    max_k: int = at_least(2)
    pca_dims: int = at_least(1)
    n_init: int = at_least(1)
    max_iter: int = at_least(1)
    silhouette_sample_size: Optional[int] = at_least(2)
    merge_threshold: float = at_least(0)
    min_region_pixels: int = at_least(0)
    depth_enabled: bool = MISSING
    depth_input_size: int = multiple_of(14, low=14)
    depth_resize: str = one_of("area", "nearest")
    depth_min_pixels: int = at_least(0)
    depth_low_pct: float = between(0, 100)
    depth_high_pct: float = between(0, 100)
    depth_span: float = at_least(0)
    depth_remerge_latent: float = at_least(0)
    depth_remerge_depth: float = at_least(0)
    seed: int = between(0, MAX_SEED)

    @staticmethod
    def relations(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
        low, high = values.get("depth_low_pct"), values.get("depth_high_pct")
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low >= high:
            yield "depth_high_pct", f"must be above depth_low_pct={low} (the span is high - low percentile)"


@dataclass
class Matching:
    stat: str = one_of("mean_std", "official")
    stat_layers: int = at_least(1)
    stat_heads: int = at_least(1)
    dino_mode: str = one_of("aligned", "official")
    dino_resize: int = at_least(14)
    dino_crop: int = at_least(14)
    geometry: str = one_of("centroid", "min_enclosing")
    min_overlap: float = between(0, 1)
    w_stat: float = at_least(0)
    w_sem: float = at_least(0)
    w_geo: float = at_least(0)
    assignment: str = one_of("many_to_one", "hungarian")
    min_score: Optional[float] = MISSING
    overrides: Any = satisfies(lambda v: v is None or isinstance(v, dict) or (isinstance(v, str) and bool(v)),
                               "a mapping {content: {region: [reference, region]}} or a YAML file holding one")


@dataclass
class Visualise:
    layer: Any = satisfies(lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v),
                           "an index into method.layers or a layer's module path")
    step: float = between(0, 1)


@dataclass
class Lora:
    source: str = nonempty()
    weight_name: Optional[str] = MISSING
    scale: float = MISSING
    tiny: bool = MISSING


@dataclass
class Accel:
    name: str = one_of("lcm", "hyper")
    schedule: str = one_of("ddim", "lcm", "euler_trailing")
    original_inference_steps: int = between(1, MAX_STEPS)
    lora: Lora = nested(Lora)


@dataclass
class StyleGalleryMethod(OptimisingMethod):
    dino: Network = nested(Network)
    depth: Network = nested(Network)
    regions: Regions = nested(Regions)
    matching: Matching = nested(Matching)
    temperature: float = above(0)
    mask_mode: str = one_of("sparse", "zero")
    loss_norm: str = one_of("layer", "region")
    regional_attention: str = one_of("gather", "flex")
    dino_depth_input: str = one_of("working", "original")
    init: str = one_of("inverted", "content")
    fallback_temperature: float = above(0)
    cache_dir: Optional[str] = MISSING
    cache_lock_timeout: float = above(0)
    user_masks: Optional[str] = MISSING
    visualise: Visualise = nested(Visualise)
    accel: Optional[Accel] = None
    gallery: Any = MISSING  # gallery=index: the gallery node (checked as `gallery`)

    @staticmethod
    def relations(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
        if values.get("regional_attention") == "flex" and values.get("mask_mode") == "zero":
            yield "regional_attention", "flex computes the sparse target only: use it with method.mask_mode=sparse"
        accel = values.get("accel") or {}
        original = accel.get("original_inference_steps")
        if accel.get("schedule") == "lcm" and isinstance(original, int) and values.get("num_steps", 0) > original:
            yield "num_steps", (f"the LCM schedule takes at most method.accel.original_inference_steps={original} "
                                f"steps")


@dataclass
class StyleIDMethod(Method):
    layers: list[str] = each(nonempty=True)
    gamma: float = between(0, 1)
    temperature: float = above(0)
    adain_init: bool = MISSING
    inject_until_t: int = between(0, MAX_STEPS)
    guidance_scale: float = at_least(0)


@dataclass
class HAMMethod(Method):
    gar_layers: list[str] = each(nonempty=True)
    lat_layers: list[str] = each(nonempty=True)
    gar_targets: list[str] = each(choices=("q", "k", "v"))
    t_range: list[float] = each(length=2, low=0, high=MAX_STEPS)
    alpha: float = between(0, 1)
    beta: float = between(0, 1)
    gamma: float = between(0, 1)
    guidance_scale: float = at_least(0)
    temperature: float = above(0)
    style_prompt: Optional[str] = MISSING
    log_timesteps: int = at_least(0)
    gar_attn2: bool = MISSING  # SD3 only
    transplant_text_kv: bool = MISSING  # SD3 only

    @staticmethod
    def relations(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
        low, high = (list(values.get("t_range") or []) + [None, None])[:2]
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            yield "t_range", "[low, high] needs low <= high"


METHODS: dict[str, type] = {
    "stylex.methods.attention_distillation.AttentionDistillation": AttentionDistillationMethod,
    "stylex.methods.stylegallery.StyleGallery": StyleGalleryMethod,
    "stylex.methods.styleid.StyleID": StyleIDMethod,
    "stylex.methods.ham.HAM": HAMMethod,
}


# ---------------------------------------------------------------------------------------------- run groups

METRIC_NAMES = ("style_score", "gram", "fid", "lpips", "artfid", "cfsd", "dino", "clip_i", "clip_t")


@dataclass
class Objective:
    """What a sweep optimises (hparams_search=gallery_optuna)."""

    metric: str = one_of(*METRIC_NAMES)
    evaluate_overrides: list[str] = MISSING


@dataclass
class RunGallery:
    """gallery=none ({path: null}) or gallery=index."""

    path: Optional[str] = MISSING
    top_k: int = at_least(1)
    nprobe: Optional[int] = at_least(1)
    rerank: Optional[int] = at_least(1)
    device: str = one_of("auto", "cpu", "gpu")
    thumbnails: int = at_least(0)
    resolution: int = multiple_of(64, low=64)
    resize: str = one_of("keep", "squash")


@dataclass
class Trainer:
    """Lightning Trainer arguments: the ones the configs set; other Trainer arguments pass to Lightning."""

    OPEN: ClassVar[bool] = True
    _target_: str = MISSING
    accelerator: str = one_of("auto", "cpu", "gpu", "cuda", "mps", "tpu", "hpu")
    devices: Any = satisfies(is_lightning_devices, "a device count (-1: all), a list of device indices, or auto")
    num_nodes: int = at_least(1)
    strategy: str = nonempty()
    precision: Any = one_of("32-true", "32", 32, "64-true", "64", 64, "16-mixed", "16", 16, "bf16-mixed", "bf16",
                            "16-true", "bf16-true")
    inference_mode: bool = satisfies(lambda v: v is False,
                                     "false (the methods optimise latents with autograd inside predict_step)")
    enable_checkpointing: bool = MISSING
    enable_model_summary: bool = MISSING
    enable_progress_bar: bool = MISSING
    default_root_dir: str = MISSING


@dataclass
class WandbLogger:
    _target_: str = MISSING
    project: str = nonempty()
    save_dir: str = nonempty()
    name: Optional[str] = MISSING
    mode: str = one_of("auto", "online", "offline", "disabled")
    group: Optional[str] = MISSING
    tags: Optional[list[str]] = MISSING
    init_timeout: float = above(0)


LOGGERS: dict[str, type] = {"stylex.callbacks.wandb.make_wandb_logger": WandbLogger}


@dataclass
class OutputWriterCallback:
    _target_: str = MISSING


@dataclass
class WandbVisualiserCallback:
    _target_: str = MISSING
    max_items: int = at_least(0)
    panel_height: int = at_least(16)


CALLBACKS: dict[str, type] = {
    "stylex.callbacks.writer.OutputWriter": OutputWriterCallback,
    "stylex.callbacks.wandb.WandbVisualiser": WandbVisualiserCallback,
}


# ---------------------------------------------------------------------------------------------- index groups

@dataclass
class IndexSpec:
    nlist: Optional[int] = at_least(1)
    m: Optional[int] = at_least(1)
    nbits: int = between(1, 16)
    nprobe: int = at_least(1)
    rerank: int = at_least(1)
    seed: int = between(0, MAX_SEED)


@dataclass
class GalleryIndex(IndexSpec):
    type: str = one_of("flat", "ivfpq")


@dataclass
class IndexGallery:
    out: Optional[str] = MISSING
    index: GalleryIndex = nested(GalleryIndex)
    rebuild: bool = MISSING
    replace_source: bool = MISSING
    lock_timeout: float = at_least(0)
    use_run_cache: bool = MISSING
    show_progress: bool = MISSING


# ---------------------------------------------------------------------------------------------- evaluate groups

@dataclass
class MetricMode:
    mode: str = one_of("default", "official")


@dataclass
class StyleScoreOptions:
    grid: int = at_least(1)


@dataclass
class ClipTextOptions:
    template: Optional[str] = MISSING


@dataclass
class Metrics:
    names: list[str] = each(choices=METRIC_NAMES)
    smoke_size: int = at_least(32)
    batch_size: int = at_least(1)
    weights: dict[str, str] = MISSING
    clip_t: Optional[ClipTextOptions] = None


@dataclass
class View:
    """How a metric's network sees the files (configs/protocol/*.yaml, `preprocess`)."""

    resize: str = one_of("squash", "short_side", "none")
    size: Optional[int] = at_least(32)
    interpolation: str = one_of("lanczos", "bicubic", "bilinear", "nearest")
    crop: Optional[int] = at_least(1)


@dataclass
class Preprocess:
    default: View = nested(View)
    style_score: Optional[View] = None
    gram: Optional[View] = None
    fid: Optional[View] = None
    lpips: Optional[View] = None
    artfid: Optional[View] = None
    cfsd: Optional[View] = None
    dino: Optional[View] = None
    clip_i: Optional[View] = None
    clip_t: Optional[View] = None


@dataclass
class ProtocolFid:
    network: str = one_of("art_inception", "inception")
    style_copies: str = one_of("once", "per_output")


@dataclass
class GramOptions(MetricMode):
    block_size: int = at_least(1)
    against: str = one_of("paired", "family")


@dataclass
class StyleScoreAgainst(StyleScoreOptions):
    against: str = one_of("paired", "family")


@dataclass
class ProtocolOptions:
    cfsd: Optional[MetricMode] = None
    gram: Optional[GramOptions] = None
    style_score: Optional[StyleScoreAgainst] = None


@dataclass
class Protocol:
    """One evaluation protocol (configs/protocol/stylegallery.yaml, ham.yaml, stylex.yaml)."""

    name: str = nonempty()
    about: str = MISSING
    fid: ProtocolFid = nested(ProtocolFid)
    options: ProtocolOptions = nested(ProtocolOptions)
    preprocess: Preprocess = nested(Preprocess)
    tables: list[Any] = MISSING  # titles, columns and published rows: checked when the protocol is read


@dataclass
class ProtocolChoice(Protocol):
    """`protocol=` one protocol, or `auto` (configs/protocol/auto.yaml): one per method, by the paper it reproduces."""

    by_name: Any = entries(Protocol)
    by_method: dict[str, str] = MISSING
    otherwise: str = nonempty()

    @staticmethod
    def relations(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
        known = set(values.get("by_name") or {})
        if values.get("name") == "auto" and known:
            for method, name in {**(values.get("by_method") or {}), "(otherwise)": values.get("otherwise")}.items():
                if name not in known:
                    key = "otherwise" if method == "(otherwise)" else f"by_method.{method}"
                    yield key, f"names no protocol of by_name ({', '.join(sorted(known))})"


@dataclass
class Grid:
    enabled: bool = MISSING
    cell: int = at_least(16)
    max_contents: Optional[int] = at_least(1)
    max_styles: Optional[int] = at_least(1)


# ---------------------------------------------------------------------------------------------- bench groups

@dataclass
class MethodsBench:
    experiments: list[str] = each(nonempty=True)
    batches: list[int] = each(low=1)
    smoke_batches: list[int] = each(low=1)
    resolution: int = multiple_of(64, low=64)
    steps: Optional[int] = between(1, MAX_STEPS)
    n_styles: int = at_least(1)
    overrides: list[str] = MISSING


@dataclass
class GalleryBench:
    build_images: Optional[int] = at_least(0)
    regions: Optional[list[int]] = each(low=1)
    dim: int = at_least(1)
    points_per_cluster: int = at_least(1)
    queries: int = at_least(1)
    k: int = at_least(1)
    index_types: list[str] = each(choices=("flat", "ivfpq"))
    index: IndexSpec = nested(IndexSpec)
    device: str = one_of("auto", "cpu", "gpu")
    show_progress: bool = MISSING


@dataclass
class RegionalBench:
    resolution: int = multiple_of(64, low=64)
    layers: list[dict[str, int]] = MISSING
    references: list[int] = each(low=1)
    regions: int = at_least(1)
    temperature: float = above(0)
    backends: list[str] = each(choices=("gather", "flex", "dense"))
    repeats: int = at_least(1)


# ---------------------------------------------------------------------------------------------- commands

@dataclass
class Command:
    """What every entry point's config holds at the top."""

    task_name: str = nonempty()
    seed: int = between(0, MAX_SEED)
    tiny_models: bool = MISSING
    print_config: bool = MISSING
    paths: Paths = nested(Paths)


@dataclass
class RunCommand(Command):
    data: Data = nested(Data)
    backbone: Backbone = nested(Backbone)
    method: Any = by_target(METHODS)
    gallery: RunGallery = nested(RunGallery)
    trainer: Trainer = nested(Trainer)
    logger: Any = by_target(LOGGERS, each_entry=True)
    callbacks: Any = by_target(CALLBACKS, each_entry=True)
    objective: Optional[Objective] = None


@dataclass
class Studio:
    host: str = nonempty()
    port: int = between(1, 65535)
    open_browser: bool = MISSING
    display_height: int = at_least(64)
    max_upload_mb: float = above(0)
    max_pixels: int = at_least(1)


@dataclass
class StudioCommand(RunCommand):
    studio: Studio = nested(Studio)


@dataclass
class IndexCommand(Command):
    device: str = satisfies(is_device, DEVICE_WORDS)
    data: Data = nested(Data)
    backbone: Backbone = nested(Backbone)
    method: Any = by_target(METHODS)
    gallery: IndexGallery = nested(IndexGallery)


@dataclass
class EvaluateCommand(Command):
    outputs: Any = satisfies(is_paths, "a run folder, a folder of outputs, or a list of them")
    contents: Any = satisfies(is_paths, PATHS_WORDS)
    styles: Any = satisfies(is_paths, PATHS_WORDS)
    method_name: Any = satisfies(lambda v: v is None or isinstance(v, str) or (isinstance(v, list) and all(
        isinstance(x, str) for x in v)), "a name, a list of names (one per outputs folder), or null")
    check_inputs: bool = MISSING
    results_dir: str = nonempty()
    device: str = satisfies(is_device, DEVICE_WORDS)
    on_bad_image: str = one_of("stop", "skip")
    protocol: ProtocolChoice = nested(ProtocolChoice)
    metrics: Metrics = nested(Metrics)
    grid: Grid = nested(Grid)
    logger: Any = by_target(LOGGERS, each_entry=True)
    data: Any = MISSING  # debug=smoke sets data.* and method.* for the commands that read them; evaluate does not
    method: Any = MISSING


@dataclass
class BenchCommand(Command):
    task: str = nonempty()
    device: str = satisfies(is_device, DEVICE_WORDS)
    data: Data = nested(Data)
    backbone: Backbone = nested(Backbone)
    method: Any = by_target(METHODS)
    logger: Any = by_target(LOGGERS, each_entry=True)
    methods_bench: MethodsBench = nested(MethodsBench)
    gallery_bench: GalleryBench = nested(GalleryBench)
    regional_bench: RegionalBench = nested(RegionalBench)


COMMANDS: dict[str, type] = {"run": RunCommand, "index": IndexCommand, "evaluate": EvaluateCommand,
                             "bench": BenchCommand, "studio": StudioCommand}
