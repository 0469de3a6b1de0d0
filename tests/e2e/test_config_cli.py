"""Bad settings, environment values and folders through the real command line: status 2, the key named, no
traceback, nothing written but the run's log (which holds the message); Ctrl-C is status 130."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import write_image
from tests.e2e.cli import cli_env, run_cli

BASE = ("experiment=smoke", "data.resolution=64", "method.num_steps=1")


def written(run_dir):
    """What a stopped run left in its folder besides Hydra's own files."""
    return sorted(p.name for p in run_dir.iterdir() if p.name not in (".hydra", "run.log")) if run_dir.exists() else []


@pytest.mark.parametrize("overrides, env, expected", [
    (["method.num_steps=0"], {}, "method.num_steps=0: must be an integer in [1, 1000]"),
    (["method.lr=abc"], {}, "method.lr=abc: must be a number > 0"),
    (["data.resolution=0"], {}, "data.resolution=0: must be an integer >= 64, a multiple of 64"),
    ([], {"WANDB_MODE": ""}, "WANDB_MODE='' is not a W&B mode"),
    (["experiment=gallery", "debug=smoke", "paths.cache_dir={blocked}/cache"], {}, "paths.cache_dir"),
])
def test_bad_settings_exit_2_naming_the_key_before_any_work(tmp_path, overrides, env, expected):
    (tmp_path / "blocked").write_text("a file where a folder should be")
    out = tmp_path / "run"
    result = run_cli("stylex.run", *BASE, *[o.format(blocked=tmp_path / "blocked") for o in overrides],
                     f"hydra.run.dir={out}", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-3000:]
    assert expected in result.stderr and "Traceback" not in result.stdout + result.stderr
    assert written(out) == [], "no output, overlay, W&B run or cache before the settings are checked"
    assert expected in (out / "run.log").read_text(), "the run's log holds why it stopped"


def test_an_unparsable_override_gets_the_quoting_hint_and_nothing_is_created(tmp_path):
    out = tmp_path / "run"
    result = run_cli("stylex.run", *BASE, "data.content=Données/", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 2 and "'data.content=\"Données/\"'" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_run_folder_that_cannot_be_written_exits_2(tmp_path):
    (tmp_path / "blocked").write_text("")
    result = run_cli("stylex.run", *BASE, f"hydra.run.dir={tmp_path / 'blocked' / 'run'}", cwd=tmp_path)
    assert result.returncode == 2 and "choose another folder with hydra.run.dir=" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_trainer_gpu_without_a_gpu_exits_2(tmp_path):
    out = tmp_path / "run"
    result = run_cli("stylex.run", "experiment=smoke", "trainer=gpu", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 2 and "trainer.accelerator=gpu asks for a GPU, but none is usable" in result.stderr
    assert written(out) == []


@pytest.mark.parametrize("command, extra", [("stylex.run", ["experiment=smoke"]), ("stylex.evaluate", ["outputs=x"])])
def test_cfg_job_resolve_prints_the_resolved_config(tmp_path, command, extra):
    result = run_cli(command, *extra, "--cfg", "job", "--resolve", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "${" not in result.stdout and "astronaut.png" in result.stdout  # the bundled samples, resolved


@pytest.mark.slow
def test_ctrl_c_stops_a_run_with_status_130(tmp_path):
    for i in range(6):
        write_image(tmp_path / "c" / f"c{i}.png", (64, 64), seed=i)
    write_image(tmp_path / "s" / "s.png", (64, 64), seed=9)
    out = tmp_path / "run"
    args = [sys.executable, "-m", "stylex.run", "experiment=smoke", "logger=none", "data.resolution=64",
            "data.batch_size=1", "method.num_steps=200", f"data.content={tmp_path / 'c'}",
            f"data.styles={tmp_path / 's'}", f"hydra.run.dir={out}"]
    env = cli_env()
    with open(tmp_path / "stderr", "w") as errors, open(tmp_path / "stdout", "w") as log:
        run = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=errors, text=True)
        deadline = time.monotonic() + 240
        while not list(out.glob("images/*.json")) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # interrupt once the first output is finished, while the others are being made
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=120) == 130
    said = (tmp_path / "stderr").read_text()
    assert "interrupted" in said and f"hydra.run.dir={out}" in said and "Traceback" not in said
    assert not list(out.rglob("*.part"))
    assert 1 <= len(list(out.glob("images/*.json"))) < 6, "stopped between outputs, the finished ones kept"
