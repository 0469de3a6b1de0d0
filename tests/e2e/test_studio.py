"""The studio's promise: a plan edited on the page (a painted region, an override) gives the same image through
the page's Stylize and through the batch command the page shows, run by stylex.run with a fresh cache, even
after the page has stylized before (the LoRA fused and unfused in between)."""
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CONFIGS = Path(__file__).parents[2] / "configs"
STUDIO_OVERRIDES = ["data.resolution=64", "method.regions.n_init=2"]


def studio_config(overrides):
    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose("studio", overrides=overrides)


def test_the_studio_composes_a_stylegallery_run_on_tiny_models_bound_to_localhost():
    cfg = studio_config([])
    assert cfg.tiny_models and cfg.task_name == "studio" and cfg.data.pairing == "gallery"
    assert cfg.method._target_.endswith("StyleGallery") and cfg.method.accel.name == "lcm"
    assert cfg.studio.host == "127.0.0.1" and isinstance(cfg.studio.port, int)
    assert not studio_config(["~debug"]).tiny_models  # real weights otherwise


@pytest.mark.slow
def test_the_page_and_its_batch_command_make_the_same_image(tmp_path, monkeypatch):
    from stylex.data.samples import sample_paths
    from stylex.studio_app.edits import Edits, paint_region
    from stylex.studio_app.engine import Studio, load_method
    from stylex.studio_app.inputs import source
    from stylex.studio_app.plan_files import passed_on

    monkeypatch.setenv("STYLEX_CACHE", str(tmp_path / "studio-cache"))
    cfg = studio_config(STUDIO_OVERRIDES)
    base = passed_on(STUDIO_OVERRIDES, {"experiment": "gallery_lcm", "debug": "smoke", "method": "gallery"})
    studio = Studio(cfg, tmp_path / "studio", load_method(cfg), base)
    content = source(sample_paths("content")[0])
    styles = [source(p) for p in sample_paths("styles")[:2]]

    view = studio.analyse(content, styles, Edits())
    studio.stylize(content, styles, view.plan)  # the acceleration LoRA is fused, then unfused for the stage 1 below
    painted = np.zeros(view.content_labels.shape, dtype=bool)
    painted[:4, :4] = True
    mask = paint_region(None, view.content_labels, painted)
    painted_view = studio.analyse(content, styles, Edits({}, mask))
    new_region = int(painted_view.content_labels.max())
    np.testing.assert_array_equal(painted_view.content_labels == new_region, painted)  # the painted part
    edits = Edits({new_region: (styles[0].name, 0)}, mask)
    edited = studio.analyse(content, styles, edits)
    chosen = [m for m in edited.matches if m.content_region == new_region][0]
    assert (chosen.reference, chosen.style_region, chosen.how) == (0, 0, "override")

    made = studio.stylize(content, styles, edited.plan)
    assert not made.reused and studio.stylize(content, styles, edited.plan).reused  # resumes like a run
    assert made.image.is_relative_to(studio.root) and made.sidecar.exists()

    words = shlex.split(edited.command)
    assert words[:3] == ["python", "-m", "stylex.run"] and f"method.matching.overrides={edited.plan.overrides}" in words
    assert f"method.user_masks={edited.plan.masks}" in words
    env = {**__import__("os").environ, "STYLEX_CACHE": str(tmp_path / "batch-cache"), "WANDB_MODE": "offline",
           "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([sys.executable, *words[1:], f"hydra.run.dir={tmp_path / 'batch'}", "logger=none"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    batch_image = tmp_path / "batch" / "images" / made.image.name
    page = np.asarray(Image.open(made.image))
    np.testing.assert_array_equal(np.asarray(Image.open(batch_image)), page)
    ours, theirs = json.loads(made.sidecar.read_text()), json.loads(batch_image.with_suffix(".json").read_text())
    assert ours["matches"] == theirs["matches"] and ours["regions"] == theirs["regions"]
    assert ours["item_hash"] != "" and ours["seed"] == theirs["seed"]
