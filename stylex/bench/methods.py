"""Speed and memory of every method on synthetic inputs: seconds per image, UNet evaluations per second,
achieved TFLOP/s (torch's FLOP counter) against the device's peak, and peak memory.

Real weights are used when present; otherwise random weights of the real architecture (SD1.5, SD2.1 and
SD3.5 Medium / Large are built in); `debug=smoke` uses the tiny models. Nothing here is asserted.
"""
from __future__ import annotations

import logging
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from omegaconf import DictConfig, OmegaConf

from stylex.errors import ConfigError, StylexError, WeightsError

log = logging.getLogger(__name__)

# Dense bf16 tensor-core peaks (TFLOP/s) by device name fragment.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A6000": 155.0, "4090": 165.0}


@dataclass
class BenchRow:
    method: str
    weights: str
    device: str
    resolution: int
    steps: int
    batch: int
    seconds_per_image: float
    images_per_second: float
    unet_evals_per_second: float
    tflops_per_image: float
    achieved_tflops: float
    peak_fraction: float | None
    peak_memory_gb: float
    student_tflops: float | None = None  # the optimised student's forward+backward alone (latent-optimising methods)
    student_peak_fraction: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def device_peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


@contextmanager
def count_denoiser_rows(model: torch.nn.Module) -> Iterator[list[int]]:
    """Counts images passed through the denoiser (rows of each call's batch)."""
    rows = [0]

    def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        sample = args[0] if args else kwargs.get("sample", kwargs.get("hidden_states"))
        rows[0] += int(sample.shape[0])

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield rows
    finally:
        handle.remove()


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GB, whole process


def synthetic_items(batch: int, resolution: int, n_styles: int, seed: int = 0) -> list[Any]:
    """Random content/style images as datamodule items (one shared style set, as in a real batch)."""
    from stylex.data.datamodule import ImageRef, Item

    g = torch.Generator().manual_seed(seed)
    styles = [torch.rand(3, resolution, resolution, generator=g) for _ in range(n_styles)]
    refs = [ImageRef(Path(f"style{i}.png"), f"style{i}", f"style-digest-{i}") for i in range(n_styles)]
    return [Item(f"content{b}__bench", ImageRef(Path(f"content{b}.png"), f"content{b}", f"content-digest-{b}"),
                 refs, "bench", seed + b, torch.rand(3, resolution, resolution, generator=g), list(styles))
            for b in range(batch)]


def build_method(cfg: DictConfig, device: torch.device) -> tuple[Any, str]:
    """The experiment's method on real weights, else on its real architecture with random weights (its
    helper networks — DINO, depth, LoRA — then become small random stand-ins)."""
    from hydra.utils import instantiate

    try:
        backbone = instantiate(cfg.backbone)(device=device)
        weights = "tiny random" if cfg.get("tiny_models") else "pretrained"
    except WeightsError:
        from stylex.backbones.architectures import STANDS_IN_FOR, random_backbone

        arch = STANDS_IN_FOR.get(str(cfg.backbone.model))
        if arch is None:
            raise WeightsError(f"no weights for {cfg.backbone.model} and no built-in architecture to stand in; "
                               f"benchmark it with its weights present or with debug=smoke.") from None
        backbone = random_backbone(arch, dtype=cfg.backbone.dtype, device=device)
        if cfg.backbone.get("compile"):
            from stylex.backbones import compile_denoiser

            compile_denoiser(backbone)
        weights = f"random {arch}"
        for key in ("method.dino.tiny", "method.depth.tiny", "method.accel.lora.tiny"):
            if OmegaConf.select(cfg, key) is not None:
                OmegaConf.update(cfg, key, True)
    method = instantiate(cfg.method)
    method.use_backbone(backbone)
    method.load_models(device)  # the method's other frozen models (DINO, depth, LoRA)
    method.show_progress = False
    if hasattr(method, "cache"):  # measure first-time images: stage 1 included, nothing read from disk
        from stylex.cache import ArtifactCache

        method.cache = ArtifactCache(None)
    return method, weights


def forget_images(method: Any) -> None:
    if hasattr(method, "cache"):
        method.cache.memory.clear()


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def flops_per_image(method: Any, items: list[Any], steps: int) -> float:
    """FLOPs for one image at `steps` steps, from counted runs at 1 and 2 steps (cost is affine in steps)."""
    from torch.utils.flop_counter import FlopCounterMode

    counts = []
    for n in (1, 2):
        method.num_steps = n
        forget_images(method)
        with FlopCounterMode(display=False) as counter:
            method.predict_step(items[:1])
        counts.append(counter.get_total_flops())
    per_step = counts[1] - counts[0]
    return float(counts[0] - per_step + steps * per_step)


def student_tflops(method: Any, batch: int, resolution: int, device: torch.device, repeats: int = 3) -> float | None:
    """TFLOP/s of the student pass of a latent-optimising method: the denoiser up to the last layer the loss
    needs, then the gradient back to the latent. None for sampling methods (StyleID, HAM)."""
    from torch.utils.flop_counter import FlopCounterMode

    from stylex.methods.base import AttentionDistillationBase

    if not isinstance(method, AttentionDistillationBase):
        return None
    channels = int(method.backbone.unet.config.in_channels)
    latent = torch.randn(batch, channels, resolution // 8, resolution // 8, device=device, requires_grad=True)

    def step() -> None:
        records = method.record(latent, 500, ("q", "out"))
        sum(rec["out"].float().square().mean() for rec in records.values()).backward()

    with torch.enable_grad():
        step()  # warm-up
        with FlopCounterMode(display=False) as counter:
            step()
        seconds = timed(lambda: [step() for _ in range(repeats)], device) / repeats
    return counter.get_total_flops() / seconds / 1e12


def bench_experiment(cfg: DictConfig, name: str, batches: list[int], resolution: int, steps: int | None,
                     device: torch.device, n_styles: int) -> list[BenchRow]:
    method, weights = build_method(cfg, device)
    full_steps = int(steps or method.num_steps)
    peak = device_peak_tflops(device)
    flops = flops_per_image(method, synthetic_items(1, resolution, n_styles), full_steps)
    denoiser = getattr(method.backbone, "unet", None) or method.backbone.transformer
    rows = []
    for batch in batches:
        items = synthetic_items(batch, resolution, n_styles)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            method.num_steps = 1  # warm-up: every shape of the timed run (kernels, compilation, allocator)
            method.predict_step(items)
            method.num_steps = full_steps
            forget_images(method)
            with count_denoiser_rows(denoiser) as evals:
                seconds = timed(lambda: method.predict_step(items), device)
        except torch.OutOfMemoryError:
            log.warning("%s: batch %d does not fit in memory; stopping here.", name, batch)
            break
        per_image = seconds / batch
        achieved = flops * batch / seconds / 1e12
        memory = peak_memory_gb(device)
        student = student_tflops(method, batch, resolution, device)
        rows.append(BenchRow(name, weights, str(device), resolution, full_steps, batch, per_image, batch / seconds,
                             evals[0] / seconds, flops / 1e12, achieved, achieved / peak if peak else None, memory,
                             student, student / peak if peak and student is not None else None))
        log.info("%s batch %d: %.3f s/image", name, batch, per_image)
    method.teardown("predict")  # e.g. unfuse and unload an acceleration LoRA
    return rows


def compose_experiment(name: str, overrides: list[str]) -> DictConfig:
    """The run config of `experiment=name`, composed like `python -m stylex.run` would (inside or outside Hydra)."""
    from stylex.data.samples import compose_config

    try:
        return compose_config("run", [f"experiment={name}", *overrides])
    except Exception as exc:
        raise ConfigError(f"bench: experiment {name!r} could not be composed ({exc}).") from None


def bench_methods(experiments: list[str], overrides: list[str], batches: list[int], resolution: int,
                  steps: int | None, device: torch.device, n_styles: int) -> list[BenchRow]:
    rows: list[BenchRow] = []
    for name in experiments:
        try:
            cfg = compose_experiment(name, overrides)
            rows += bench_experiment(cfg, name, batches, resolution, steps, device, n_styles)
        except StylexError as exc:
            log.warning("bench: skipping %s: %s", name, exc)
    return rows


def print_table(rows: list[BenchRow]) -> str:
    """The table as text: one line per method and batch, the best batch of each method marked with *."""
    best = {}
    for row in rows:
        if row.method not in best or row.images_per_second > best[row.method].images_per_second:
            best[row.method] = row
    header = (f"{'method':<14}{'weights':<14}{'steps':>6}{'batch':>6}{'s/image':>10}{'img/s':>9}{'UNet/s':>9}"
              f"{'TFLOP/img':>11}{'TFLOP/s':>9}{'% peak':>8}{'mem GB':>8}{'student TFLOP/s':>17}{'% peak':>8}")
    lines = [header, "-" * len(header)]
    percent = lambda x: f"{100 * x:.1f}" if x is not None else "-"  # noqa: E731
    for r in rows:
        mark = "*" if best[r.method] is r else " "
        student = f"{r.student_tflops:.2f}" if r.student_tflops is not None else "-"
        lines.append(f"{r.method:<14}{r.weights:<14}{r.steps:>6}{r.batch:>5}{mark}{r.seconds_per_image:>10.3f}"
                     f"{r.images_per_second:>9.3f}{r.unet_evals_per_second:>9.1f}{r.tflops_per_image:>11.3f}"
                     f"{r.achieved_tflops:>9.2f}{percent(r.peak_fraction):>8}{r.peak_memory_gb:>8.2f}"
                     f"{student:>17}{percent(r.student_peak_fraction):>8}")
    return "\n".join(lines)


def run(cfg: DictConfig) -> list[BenchRow]:
    """`python -m stylex.bench` (task=methods): the table for every configured experiment, as CSV and in W&B."""
    from stylex.bench.report import report

    opts = cfg.methods_bench
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    overrides = ["debug=smoke"] if cfg.get("tiny_models") else []
    overrides += list(opts.get("overrides") or [])
    batches = list(opts.smoke_batches if cfg.get("tiny_models") else opts.batches)
    rows = bench_methods(list(opts.experiments), overrides, batches, int(opts.resolution),
                         opts.get("steps"), device, int(opts.n_styles))
    if not rows:
        raise StylexError("bench: no experiment could be measured (see the warnings above).")
    table = print_table(rows)
    log.info("Speed and memory per method (* = best batch):\n%s", table)
    report(cfg, {"bench_methods": [r.as_dict() for r in rows]})
    return rows
