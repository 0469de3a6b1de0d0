"""Environment values the libraries read (W&B, Hugging Face Hub, CUDA) and the devices a config asks for.

An empty or unknown value would otherwise surface as a traceback from inside the library (wandb's settings
validation) or, worse, as a silently different run (an unparsable HF_HUB_OFFLINE reads as "online", a mistyped
CUDA_VISIBLE_DEVICES hides every GPU). An empty CUDA_VISIBLE_DEVICES means no GPU, as schedulers set it: the run
then uses the CPU (a GPU asked for by name is an error, `check_gpus`).
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from stylex.errors import ConfigError

log = logging.getLogger("stylex")

WANDB_MODES = ("online", "offline", "disabled", "shared", "dryrun", "run")  # what wandb's Settings accept
BOOLEAN_WORDS = ("1", "0", "true", "false", "yes", "no", "on", "off")  # huggingface_hub reads 1/on/yes/true as on
GPU_ACCELERATORS = ("gpu", "cuda")
DEVICE_ENTRY = re.compile(r"-?\d+|(GPU|MIG)-[0-9A-Za-z/-]+")


def check_environment(values: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> None:
    """Every environment problem at once, as one ConfigError."""
    problems = environment_problems(values, environ)
    if problems:
        raise ConfigError("\n".join(problems) if len(problems) > 1 else problems[0])
    check_gpus(values)


def environment_problems(values: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    problems = []
    mode = environ.get("WANDB_MODE")
    if mode is not None and uses_wandb(values) and mode not in WANDB_MODES:
        problems.append(f"WANDB_MODE={show_env(mode)} is not a W&B mode. Set it to one of "
                        f"{', '.join(WANDB_MODES[:3])}, or unset it (`unset WANDB_MODE`): stylex then logs online "
                        f"with an API key and offline without one. logger=none turns W&B off.")
    offline = environ.get("HF_HUB_OFFLINE")
    if offline is not None and offline.strip().lower() not in BOOLEAN_WORDS:
        problems.append(f"HF_HUB_OFFLINE={show_env(offline)} is neither on nor off. Set HF_HUB_OFFLINE=1 to load "
                        f"models only from the local Hugging Face cache, HF_HUB_OFFLINE=0 to allow downloads, or "
                        f"unset it.")
    devices = environ.get("CUDA_VISIBLE_DEVICES")
    if devices is not None:
        entries = [d.strip() for d in devices.split(",")]
        if not devices.strip() and not cpu_only(values):  # schedulers say "no GPU" so (submitit with gpus=0)
            log.info("CUDA_VISIBLE_DEVICES is empty: no GPU is visible, so this runs on the CPU. List the GPUs to "
                     "use (CUDA_VISIBLE_DEVICES=0 or 0,1) or unset it to use them.")
        elif devices.strip() and not all(DEVICE_ENTRY.fullmatch(d) for d in entries):
            problems.append(f"CUDA_VISIBLE_DEVICES={show_env(devices)} is not a list of GPU indices or UUIDs "
                            f"(e.g. 0 or 0,1 or GPU-8e3c...). Fix it or unset it (`nvidia-smi -L` lists the GPUs).")
    return problems


def check_gpus(values: Mapping[str, Any]) -> None:
    """A GPU asked for by name (trainer=gpu, device=cuda) must exist: Lightning and torch would otherwise fail
    late with their own wording, or an experiment's settings would quietly run on the CPU."""
    trainer = values.get("trainer") or {}
    accelerator = trainer.get("accelerator")
    asked = [f"trainer.accelerator={accelerator}"] if accelerator in GPU_ACCELERATORS else []
    device = values.get("device")
    if isinstance(device, str) and device.startswith("cuda"):
        asked.append(f"device={device}")
    if not asked:
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = trainer.get("devices") if asked[0].startswith("trainer") else None
    if count == 0:
        raise ConfigError(f"{asked[0]} asks for a GPU, but none is usable here (torch {torch.__version__}, "
                          f"CUDA_VISIBLE_DEVICES={show_env(os.environ.get('CUDA_VISIBLE_DEVICES'))}). Run on the CPU "
                          f"with trainer=cpu (device=cpu for index/evaluate/bench), or trainer=default, which picks "
                          f"a GPU when there is one.")
    index = device.split(":")[1] if isinstance(device, str) and ":" in device else None
    if index is not None and int(index) >= count:
        raise ConfigError(f"device={device}, but only {count} GPU(s) are visible (cuda:0..cuda:{count - 1}).")
    if isinstance(wanted, int) and wanted > count:
        raise ConfigError(f"trainer.devices={wanted}, but only {count} GPU(s) are visible. Use trainer.devices=-1 "
                          f"for all of them.")


def uses_wandb(values: Mapping[str, Any]) -> bool:
    loggers = values.get("logger") or {}
    return isinstance(loggers, dict) and any(isinstance(node, dict) and "wandb" in str(node.get("_target_", ""))
                                             and node.get("mode") != "disabled" for node in loggers.values())


def cpu_only(values: Mapping[str, Any]) -> bool:
    """Whether the config says, in so many words, to run on the CPU."""
    return (values.get("trainer") or {}).get("accelerator") == "cpu" or values.get("device") == "cpu"


def show_env(value: str | None) -> str:
    return "(unset)" if value is None else repr(value) if not value or value.strip() != value else value
