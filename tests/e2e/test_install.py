"""What a newcomer meets first: the README's setup and commands, the console scripts, and a wheel that carries
its configs."""
from __future__ import annotations

import configparser
import importlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

REPO = Path(__file__).parents[2]
README = (REPO / "README.md").read_text()


def test_the_readme_says_how_to_enter_the_environment_before_its_first_command():
    first_command = README.index("python -m stylex.")
    assert README.index("source .venv/bin/activate") < first_command
    assert README.index("make setup") < first_command


def test_console_scripts_name_the_entry_points():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    scripts = dict(line.split(" = ") for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines())
    assert set(scripts) == {"stylex-run", "stylex-index", "stylex-evaluate", "stylex-bench", "stylex-studio"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
    for name in scripts:
        assert f"`{name}`" in README


def test_the_readme_evaluate_example_points_at_a_run_evaluate_accepts():
    """evaluate compares each output with one style image: the example's run must pair content x style."""
    from stylex.data.samples import register_resolvers

    (task,) = re.findall(r"python -m stylex.evaluate outputs=outputs/(\w+)/<date>", README)
    register_resolvers()
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=[f"experiment={task}"])
    assert cfg.task_name == task and cfg.data.pairing == "product"
    assert "--cfg job --resolve" in README


@pytest.mark.slow
def test_a_wheel_carries_its_configs_and_runs_from_anywhere(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for name in ("stylex", "configs"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("stylex-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    shipped = {str(p.relative_to(REPO / "configs")) for p in (REPO / "configs").rglob("*.yaml")}
    assert {n.removeprefix("stylex/configs/") for n in names if n.startswith("stylex/configs/")} == shipped
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "HF_HUB_OFFLINE": "1"}
    where = "import stylex, stylex.cli as c; print(stylex.__file__, c.CONFIG_DIR)"
    result = subprocess.run([sys.executable, "-c", where], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == [str(tmp_path / "site" / "stylex" / "__init__.py"),
                                     str(tmp_path / "site" / "stylex" / "configs")], result.stderr
    result = subprocess.run([sys.executable, "-m", "stylex.run", "experiment=smoke", "--cfg", "job"], cwd=elsewhere,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "task_name: smoke" in result.stdout, result.stderr[-2000:]
