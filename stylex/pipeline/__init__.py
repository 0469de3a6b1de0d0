"""The run's flow, shared by the entry points: a composed config -> datamodule, method, callbacks, loggers,
trainer -> `trainer.predict`. `cluster` places the process in a launch (srun, torchrun); `objective` scores a
sweep's trial with stylex.evaluate's code. Imports everything below it; only entry points import it."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stylex.errors import ConfigError, StylexError
from stylex.pipeline.cluster import detect_launch, fit_trainer_to_launch
from stylex.pipeline.objective import Objective

log = logging.getLogger("stylex")

# Data settings that change which outputs exist, not what each output looks like.
NON_RESULT_DATA_KEYS = ("content", "styles", "batch_size", "num_workers", "pairing", "on_bad_image")


def config_hash(cfg: DictConfig) -> str:
    """Hash of every setting that decides an output's pixels (method, backbone, preprocessing, seed)."""
    data = {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items() if k not in NON_RESULT_DATA_KEYS}
    method = OmegaConf.to_container(cfg.method, resolve=True)
    method.pop("show_progress", None)
    decisive = {"method": method, "data": data, "seed": cfg.seed,
                "backbone": OmegaConf.to_container(cfg.backbone, resolve=True)}
    return hashlib.sha256(json.dumps(decisive, sort_keys=True, default=str).encode()).hexdigest()[:16]


def instantiate(node: Any, what: str, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, with a bad option reported as the config error it is."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        while cause is not None and not isinstance(cause, StylexError) and cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, StylexError):
            raise cause from None
        detail = " ".join(line.strip() for line in str(exc.__cause__ or exc).strip().splitlines() if line.strip())
        raise ConfigError(f"the `{what}` config could not be built: {detail}. Check the option names with "
                          f"`python -m stylex.run --cfg job`.") from None


def stage1_method(cfg: DictConfig, cache: bool = False) -> Any:
    """The method a run would build from `cfg`, set up for stage 1: a gallery's artifacts and recorded settings
    then come from the very code and config a run uses (`analyse`, `stage1_identity`)."""
    method = instantiate(cfg.method, "method", **({} if cache else {"cache_dir": None}))
    if not hasattr(method, "stage1_identity"):
        raise ConfigError(f"method {cfg.method.get('_target_')} has no regions to put in a gallery. Galleries hold "
                          f"StyleGallery's regions: build them with method=gallery (or an experiment=gallery*).")
    from stylex.backbones import resolve_device

    method.use_backbone(instantiate(cfg.backbone, "backbone")(device=resolve_device(cfg.device)))
    method.setup("predict")
    return method


def build_loggers(cfg: DictConfig) -> list[Any]:
    return [instantiate(node, f"logger.{name}") for name, node in (cfg.get("logger") or {}).items()]


class _DropNoise(logging.Filter):
    """Lightning's advertisements are not information about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage() and "LitLogger" not in record.getMessage()


def quiet_libraries() -> None:
    """Route Lightning's messages through the one (Hydra-configured) root handler, once each, and silence the
    libraries' warnings that say nothing about the run."""
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropNoise())
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # diffusers still passes this deprecated argument to huggingface_hub when it looks for weights
    warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")


def hydra_context() -> Any:
    """The running Hydra job's config (None outside a Hydra app, e.g. in tests that compose configs)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def one_device_per_job(cfg: DictConfig) -> None:
    """In a multirun sweep on GPUs, job n takes GPU n mod count (the joblib launcher runs jobs side by side)."""
    import torch
    from hydra.types import RunMode

    hydra_cfg = hydra_context()
    if hydra_cfg is None or hydra_cfg.mode != RunMode.MULTIRUN or not torch.cuda.is_available():
        return
    if cfg.trainer.get("accelerator") in ("auto", "gpu", "cuda") and cfg.trainer.get("devices") == 1:
        device = int(hydra_cfg.job.num) % torch.cuda.device_count()
        cfg.trainer.devices = [device]
        log.info("Sweep job %s runs on GPU %d", hydra_cfg.job.num, device)


def group_wandb_runs(cfg: DictConfig) -> str | None:
    """One W&B group per run folder, or per sweep for the jobs of a multirun (each named `<task>-<job number>`);
    an explicit `logger.wandb.group` / `name` is kept. Every rank of every node derives the same group."""
    from hydra.types import RunMode

    node = (cfg.get("logger") or {}).get("wandb")
    hydra_cfg = hydra_context()
    if node is None or hydra_cfg is None:
        return None
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if node.get("group") is None:
        node.group = f"{cfg.task_name}-{Path(hydra_cfg.sweep.dir if multirun else hydra_cfg.run.dir).name}"
    if multirun and node.get("name") == cfg.task_name:
        node.name = f"{cfg.task_name}-{hydra_cfg.job.num}"
    return str(node.group)


def run_record(cfg: DictConfig, chash: str) -> dict[str, Any]:
    """What the loggers record as the run's config: the resolved config, its hash and the command-line overrides
    (a sweep's runs differ by those)."""
    hydra_cfg = hydra_context()
    overrides = list(hydra_cfg.overrides.task) if hydra_cfg is not None else []
    return {**OmegaConf.to_container(cfg, resolve=True), "config_hash": chash, "overrides": overrides}


def stylize(cfg: DictConfig) -> float | None:
    """The whole run; returns when every item is written (or was already done). With `objective.metric` set
    (a sweep that optimises a metric), rank 0 then evaluates the outputs and returns the metric's value."""
    import lightning as L

    quiet_libraries()
    one_device_per_job(cfg)
    launch = detect_launch()
    if launch is not None:  # srun / torchrun started every rank: the trainer must match what they started
        fit_trainer_to_launch(cfg.trainer, launch)
    objective = Objective.from_config(cfg)  # a wrong metric or sweep direction stops before any work

    from stylex.callbacks.log_config import LogConfig
    from stylex.callbacks.ranks import SharedRun
    from stylex.callbacks.writer import OutputWriter
    from stylex.data.outputs import OutputStore, write_skipped

    group = group_wandb_runs(cfg)
    if cfg.get("print_config"):
        log.info("Resolved config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, verbose=False)
    store = OutputStore(cfg.paths.output_dir)
    chash = config_hash(cfg)
    datamodule = instantiate(cfg.data, "data")
    datamodule.bind(store, chash)
    items = datamodule.prepare_items()
    skipped_file = write_skipped(store.root, [(str(p), why) for p, why in datamodule.bad_inputs.items()])
    if not items and launch is None:  # (launched ranks go on: rank 0's list decides for all of them)
        log.info("Nothing to do: all %d outputs in %s are done with this config.%s", len(datamodule.skipped),
                 store.images, skipped_note(datamodule, skipped_file))
        return objective.evaluate(cfg, store.root) if objective is not None else None
    log.info("%d output(s) to make -> %s", len(items), store.images)
    method = instantiate(cfg.method, "method")
    callbacks = [instantiate(node, f"callbacks.{name}") for name, node in (cfg.get("callbacks") or {}).items()]
    writers = [callback for callback in callbacks if isinstance(callback, OutputWriter)]
    for writer in writers:
        writer.bind(store, chash)
    loggers = build_loggers(cfg)
    callbacks += [LogConfig(run_record(cfg, chash)), SharedRun(store.root, chash, group)]
    plugins = {"plugins": [launch.environment]} if launch is not None else {}
    trainer = instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, **plugins)
    if trainer.world_size == 1:  # load (or fail on) the weights before Lightning opens the loggers
        method.load_models(trainer.strategy.root_device)
    try:
        trainer.predict(method, datamodule=datamodule, return_predictions=False)
    except SystemExit as exc:
        # Lightning turns Ctrl-C into exit status 1; the entry point says 130. Other exits pass through (submitit
        # exits a preempted job with -1 after requeueing it).
        if trainer.interrupted and exc.code == 1:
            raise KeyboardInterrupt from None
        raise
    finally:
        store.release()
    value = None
    if objective is not None:
        trainer.strategy.barrier("stylex-outputs-written")  # every rank's outputs are on disk
        if trainer.is_global_zero:
            value = objective.evaluate(cfg, store.root)
            for logger in loggers:
                logger.log_metrics({f"objective/{objective.metric}": value})
    close_loggers(loggers)
    written = sum(writer.written for writer in writers)
    others = f", {datamodule.left_to_others} made by another run into this folder" if datamodule.left_to_others else ""
    log.info("Done: %d output(s) written, %d already done%s -> %s.%s", written, len(datamodule.skipped), others,
             store.images, skipped_note(datamodule, skipped_file))
    return value


def skipped_note(datamodule: Any, skipped_file: Any) -> str:
    bad = len(datamodule.bad_inputs)
    return f" {bad} unreadable input image(s) skipped, listed in {skipped_file}." if bad else ""


def close_loggers(loggers: list[Any]) -> None:
    """Finalize every logger and finish the W&B run, so the next job of an in-process sweep starts its own run
    instead of logging into this one."""
    for logger in loggers:
        logger.finalize("success")
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
