"""Multi-device runs and sweeps: DDP over 2 CPU processes, and a joblib multirun."""
import json
import re

import pytest

from tests.conftest import write_image
from tests.e2e.cli import run_cli


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_writes_each_output_exactly_once(tmp_path):
    for i in range(5):
        write_image(tmp_path / "c" / f"c{i}.png", (64, 64), seed=i)
    write_image(tmp_path / "s" / "s.png", (64, 64), seed=9)
    out = tmp_path / "run"
    result = run_cli("stylex.run", "experiment=smoke", "logger=none", "trainer=ddp", "trainer.accelerator=cpu",
                     "trainer.devices=2", "data.batch_size=1", f"data.content={tmp_path / 'c'}",
                     f"data.styles={tmp_path / 's'}", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sidecars = [json.loads(p.read_text()) for p in (out / "images").glob("*.json")]
    assert sorted(s["name"] for s in sidecars) == [f"c{i}__s" for i in range(5)]
    assert {s["rank"] for s in sidecars} == {0, 1}
    logs = "".join(p.read_text() for p in out.glob("*.log")) + result.stdout + result.stderr
    writes = {int(rank): int(n) for rank, n in re.findall(r"Rank (\d) wrote (\d+) output", logs)}
    assert writes.keys() == {0, 1} and sum(writes.values()) == 5, writes  # disjoint shards, none repeated


@pytest.mark.slow
def test_joblib_sweep_runs_each_setting_in_its_own_directory(tmp_path):
    write_image(tmp_path / "c" / "c.png", (64, 64), seed=1)
    write_image(tmp_path / "s" / "s.png", (64, 64), seed=2)
    sweep = tmp_path / "sweep"
    result = run_cli("stylex.run", "-m", "experiment=smoke", "logger=none", "hydra/launcher=joblib",
                     "hydra.launcher.n_jobs=2", "method.lr=0.03,0.05", f"data.content={tmp_path / 'c'}",
                     f"data.styles={tmp_path / 's'}", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lrs = sorted(json.loads(p.read_text())["lr"] for p in sweep.glob("*/images/c__s.json"))
    assert lrs == [0.03, 0.05]


def test_hparams_search_config_composes():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(Path(__file__).parents[2] / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=gallery", "hparams_search=gallery_grid"], return_hydra_config=True)
    assert cfg.hydra.sweeper.params["method.content_weight"] == "0.22,0.26,0.29"
    assert "joblib" in cfg.hydra.launcher._target_.lower()
