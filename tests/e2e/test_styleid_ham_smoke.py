"""`python -m stylex.run experiment=styleid|ham_sd21|ham_sd35 debug=smoke` end to end on tiny random models."""
import json

import pytest

from tests.conftest import write_image
from tests.e2e.cli import run_cli


@pytest.mark.slow
@pytest.mark.parametrize("experiment,method", [("styleid", "styleid"), ("ham_sd21", "ham"), ("ham_sd35", "ham")])
def test_experiment_writes_images_and_sidecars(tmp_path, experiment, method):
    # one non-square content and two styles of other sizes (one grey): one batch, two style-teacher rows
    contents, styles = tmp_path / "photos", tmp_path / "paintings"
    write_image(contents / "cat.png", (160, 96), seed=1)
    write_image(styles / "wave.png", (80, 80), seed=3)
    write_image(styles / "stars.png", (100, 70), "L", seed=4)
    out = tmp_path / "run"
    result = run_cli("stylex.run", f"experiment={experiment}", "debug=smoke", "logger=none",
                     f"data.content={contents}", f"data.styles={styles}", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    names = ["cat__stars", "cat__wave"]
    assert sorted(p.stem for p in (out / "images").glob("*.png")) == names
    for name in names:
        sidecar = json.loads((out / "images" / f"{name}.json").read_text())
        assert sidecar["method"] == method and sidecar["name"] == name
        assert len(sidecar["timesteps"]) == 4  # debug=smoke: method.num_steps=4
        assert {"encode_invert", "sample", "decode"} <= set(sidecar["timings_s"])
        assert sidecar["style_size"] == [128, 192]  # styles run at the content's size, in one batch
    if method == "ham":  # the branch previews, saved as PNGs (3 rows: branches; 3 columns: logged steps)
        from PIL import Image

        assert Image.open(out / "overlays" / "cat__wave.branches.png").size == (3 * 192, 3 * 128)
    if experiment == "ham_sd21":
        assert "LAT reduces to its query blend" in result.stdout + result.stderr
    if experiment == "ham_sd35":  # tiny SD3.5-Medium: flow grid t = σ·1000, GAR also on the image-only attn2
        assert "LAT reduces" not in result.stdout + result.stderr
        assert sidecar["backbone_family"] == "sd3" and sidecar["timesteps"][0] == 1000.0
        assert "transformer_blocks.0.attn2" in sidecar["gar_layers"] and sidecar["lat_kv_transplant"] is True
        assert sidecar["guidance_scale"] == 4.5
