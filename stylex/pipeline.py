"""A composed run config -> datamodule, method, callbacks, logger, trainer -> `trainer.predict`."""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from stylex.errors import ConfigError, StylexError

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


def resolve_device(device: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else str(device)


def stage1_method(cfg: DictConfig, cache: bool = False) -> Any:
    """The method a run would build from `cfg`, set up for stage 1: a gallery's artifacts and recorded settings
    then come from the very code and config a run uses (`analyse`, `stage1_identity`)."""
    method = instantiate(cfg.method, "method", **({} if cache else {"cache_dir": None}))
    if not hasattr(method, "stage1_identity"):
        raise ConfigError(f"method {cfg.method.get('_target_')} has no regions to put in a gallery. Galleries hold "
                          f"StyleGallery's regions: build them with method=gallery (or an experiment=gallery*).")
    method.use_backbone(instantiate(cfg.backbone, "backbone")(device=resolve_device(cfg.device)))
    method.setup("predict")
    return method


def build_loggers(cfg: DictConfig) -> list[Any]:
    return [instantiate(node, f"logger.{name}") for name, node in (cfg.get("logger") or {}).items()]


class _DropNoise(logging.Filter):
    """Lightning's advertisements are not information about the run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage() and "LitLogger" not in record.getMessage()


def quiet_lightning() -> None:
    """Route Lightning's messages through the one (Hydra-configured) root handler, once each."""
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


def one_device_per_job(cfg: DictConfig) -> None:
    """In a multirun sweep on GPUs, job n takes GPU n mod count (the joblib launcher runs jobs side by side)."""
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return
    if hydra_cfg.mode != RunMode.MULTIRUN or not torch.cuda.is_available():
        return
    if cfg.trainer.get("accelerator") in ("auto", "gpu", "cuda") and cfg.trainer.get("devices") == 1:
        device = int(hydra_cfg.job.num) % torch.cuda.device_count()
        cfg.trainer.devices = [device]
        log.info("Sweep job %s runs on GPU %d", hydra_cfg.job.num, device)


def stylize(cfg: DictConfig) -> None:
    """The whole run; returns when every item is written (or was already done)."""
    import lightning as L

    quiet_lightning()
    one_device_per_job(cfg)

    from stylex.callbacks.log_config import LogConfig
    from stylex.callbacks.writer import OutputWriter
    from stylex.data.outputs import OutputStore, write_skipped

    if cfg.get("print_config"):
        log.info("Resolved config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(cfg.seed, verbose=False)
    store = OutputStore(cfg.paths.output_dir)
    chash = config_hash(cfg)
    datamodule = instantiate(cfg.data, "data")
    datamodule.bind(store, chash)
    items = datamodule.prepare_items()
    skipped_file = write_skipped(store.root, [(str(p), why) for p, why in datamodule.bad_inputs.items()])
    if not items:
        log.info("Nothing to do: all %d outputs in %s are done with this config.%s", len(datamodule.skipped),
                 store.images, skipped_note(datamodule, skipped_file))
        return
    log.info("%d output(s) to make -> %s", len(items), store.images)
    method = instantiate(cfg.method, "method")
    callbacks = [instantiate(node, f"callbacks.{name}") for name, node in (cfg.get("callbacks") or {}).items()]
    writers = [callback for callback in callbacks if isinstance(callback, OutputWriter)]
    for writer in writers:
        writer.bind(store, chash)
    loggers = build_loggers(cfg)
    callbacks.append(LogConfig({**OmegaConf.to_container(cfg, resolve=True), "config_hash": chash}))
    trainer = instantiate(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)
    if trainer.world_size == 1:  # load (or fail on) the weights before Lightning opens the loggers
        method.load_models(trainer.strategy.root_device)
    try:
        trainer.predict(method, datamodule=datamodule, return_predictions=False)
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit status 1; the entry point says 130
            raise KeyboardInterrupt from None
        raise
    finally:
        store.release()
    for logger in loggers:
        logger.finalize("success")
    written = sum(writer.written for writer in writers)
    others = f", {datamodule.left_to_others} made by another run into this folder" if datamodule.left_to_others else ""
    log.info("Done: %d output(s) written, %d already done%s -> %s.%s", written, len(datamodule.skipped), others,
             store.images, skipped_note(datamodule, skipped_file))


def skipped_note(datamodule: Any, skipped_file: Any) -> str:
    bad = len(datamodule.bad_inputs)
    return f" {bad} unreadable input image(s) skipped, listed in {skipped_file}." if bad else ""
