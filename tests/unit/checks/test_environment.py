"""Environment values libraries read, the GPUs a config names, and the folders a command writes: clear messages
before any work."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from stylex.checks import check_config
from stylex.checks.environment import environment_problems
from stylex.checks.folders import folders_to_write, write_problem
from stylex.checks.validate import resolved
from stylex.data.samples import register_resolvers
from stylex.errors import ConfigError

CONFIGS = Path(__file__).parents[3] / "configs"
WANDB = {"logger": {"wandb": {"_target_": "stylex.callbacks.wandb.make_wandb_logger", "mode": "auto"}}}
AUTO = {"trainer": {"accelerator": "auto"}}


def composed(command: str, *overrides: str):
    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose(command, overrides=list(overrides))


@pytest.mark.parametrize("value", ["", "ofline", "Offline", " offline"])
def test_an_empty_or_unknown_wandb_mode_is_explained(value):
    (problem,) = environment_problems(WANDB, {"WANDB_MODE": value})
    assert problem.startswith(f"WANDB_MODE={value!r}" if not value or value != value.strip() else f"WANDB_MODE={value}")
    assert "online, offline, disabled" in problem and "unset WANDB_MODE" in problem


def test_known_wandb_modes_pass_and_the_mode_is_not_checked_without_wandb():
    for mode in ("online", "offline", "disabled", "dryrun"):
        assert environment_problems(WANDB, {"WANDB_MODE": mode}) == []
    assert environment_problems({"logger": None}, {"WANDB_MODE": ""}) == []  # logger=none: wandb never reads it


def test_the_empty_wandb_mode_stops_a_composed_run(monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_MODE", "")
    with pytest.raises(ConfigError, match=r"WANDB_MODE='' is not a W&B mode"):
        check_config(composed("run", "experiment=smoke", f"paths.output_dir={tmp_path}"), "run")


@pytest.mark.parametrize("value, ok", [("1", True), ("true", True), ("ON", True), ("0", True), ("no", True),
                                       ("", False), ("maybe", False), ("2", False)])
def test_hf_hub_offline(value, ok):
    problems = environment_problems({}, {"HF_HUB_OFFLINE": value})
    assert (problems == []) == ok
    if not ok:
        assert "HF_HUB_OFFLINE=1" in problems[0] and "neither on nor off" in problems[0]


@pytest.mark.parametrize("value, values, ok", [
    ("0", AUTO, True), ("0,1", AUTO, True), ("GPU-8e3c0c4e-1a2b-3c4d", AUTO, True), ("-1", AUTO, True),
    ("", AUTO, True), ("", {"trainer": {"accelerator": "cpu"}}, True), ("", {"device": "cpu"}, True),
    ("abc", AUTO, False), ("0,,1", AUTO, False), ("0;1", AUTO, False),
])
def test_cuda_visible_devices(value, values, ok):
    problems = environment_problems(values, {"CUDA_VISIBLE_DEVICES": value})
    assert (problems == []) == ok, problems
    if not ok:
        assert problems[0].startswith("CUDA_VISIBLE_DEVICES")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_gpu_asked_for_on_a_machine_without_one_is_an_error(tmp_path):
    """experiment=smoke no longer forces the CPU: trainer=gpu is what the run asks for, and there is none."""
    cfg = composed("run", "experiment=smoke", "trainer=gpu", f"paths.output_dir={tmp_path}")
    assert cfg.trainer.accelerator == "gpu"
    with pytest.raises(ConfigError, match=r"trainer.accelerator=gpu asks for a GPU, but none is usable.*trainer=cpu"):
        check_config(cfg, "run")
    with pytest.raises(ConfigError, match=r"device=cuda asks for a GPU"):
        check_config(composed("index", "gallery.out=g", "device=cuda", f"paths.output_dir={tmp_path}"), "index")


def test_the_smoke_experiment_takes_the_trainer_the_user_chose():
    assert composed("run", "experiment=smoke", "trainer=cpu").trainer.accelerator == "cpu"
    assert composed("run", "experiment=smoke").trainer.accelerator == "auto"


# ---------------------------------------------------------------------------------------------- folders

def test_a_folder_under_a_file_cannot_be_written(tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    assert write_problem(tmp_path / "notes.txt" / "cache") == f"{tmp_path / 'notes.txt'} is a file, not a folder"
    assert write_problem(tmp_path / "new" / "deeper") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # probing leaves nothing behind


def test_a_read_only_folder_is_reported_with_the_reason(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    assert write_problem(tmp_path / "cache") == f"{tmp_path}: Read-only file system"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_folder_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert "Permission denied" in write_problem(locked / "cache")


def test_unwritable_cache_gallery_and_results_folders_stop_before_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cfg = composed("run", "experiment=gallery", "debug=smoke", f"paths.output_dir={tmp_path / 'run'}",
                   f"paths.cache_dir={blocker / 'cache'}")
    with pytest.raises(ConfigError, match=r"a-file/cache cannot be written \(.* is a file.*paths.cache_dir"):
        check_config(cfg, "run")
    cfg = composed("index", f"gallery.out={blocker / 'g'}", f"paths.output_dir={tmp_path / 'index'}")
    with pytest.raises(ConfigError, match=r"choose another folder with gallery.out="):
        check_config(cfg, "index")
    cfg = composed("evaluate", "outputs=x", f"results_dir={blocker / 'eval'}", f"paths.output_dir={tmp_path / 'e'}")
    with pytest.raises(ConfigError, match=r"choose another folder with results_dir="):
        check_config(cfg, "evaluate")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_folders_each_command_writes(tmp_path):
    values = resolved(composed("run", "experiment=gallery", f"paths.output_dir={tmp_path}", "paths.cache_dir=/c"))
    assert folders_to_write(values, "run") == [(str(tmp_path), "hydra.run.dir"),
                                                ("/c", "paths.cache_dir (or the STYLEX_CACHE environment variable)"),
                                                (str(tmp_path), "logger.wandb.save_dir")]
    values = resolved(composed("run", "experiment=ad", "logger=none", f"paths.output_dir={tmp_path}"))
    assert folders_to_write(values, "run") == [(str(tmp_path), "hydra.run.dir")]  # AD keeps no cache
