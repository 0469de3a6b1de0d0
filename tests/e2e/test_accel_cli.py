"""The accelerated StyleGallery experiments with debug=smoke (a random LoRA stands in for the real one)."""
import json

import pytest

from tests.e2e.cli import run_cli


@pytest.mark.slow
@pytest.mark.parametrize("variant, schedule, lr", [("lcm", "lcm", 0.25), ("hyper", "euler_trailing", 0.15)])
def test_accelerated_gallery_smoke(tmp_path, image_folders, variant, schedule, lr):
    contents, styles = image_folders
    out = tmp_path / "run"
    result = run_cli("stylex.run", f"experiment=gallery_{variant}", "debug=smoke", "logger=none",
                     f"data.content={contents / 'cat.png'}", f"data.styles={styles}", f"hydra.run.dir={out}",
                     f"paths.cache_dir={tmp_path / 'cache'}", "method.regions.n_init=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sidecar = json.loads((out / "images" / "cat__paintings.json").read_text())
    assert sidecar["accel"]["name"] == variant and sidecar["accel"]["schedule"] == schedule
    assert sidecar["accel"]["lora"]["random"] is True and sidecar["lr"] == lr
    assert len(sidecar["timesteps"]) == 4 and len(sidecar["loss_curve"]) == 4 * 3
