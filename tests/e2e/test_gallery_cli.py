"""`experiment=gallery debug=smoke` end to end: outputs, overlays, match tables, W&B offline."""
import json

import pytest

from tests.e2e.cli import run_cli


@pytest.mark.slow
def test_gallery_smoke_writes_outputs_overlays_matches_and_wandb(tmp_path, image_folders):
    contents, styles = image_folders
    out = tmp_path / "run"
    result = run_cli("stylex.run", "experiment=gallery", "debug=smoke", f"data.content={contents}",
                     f"data.styles={styles}", f"hydra.run.dir={out}", f"paths.cache_dir={tmp_path / 'cache'}",
                     "method.regions.n_init=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    images = out / "images"
    assert (images / "cat__paintings.png").exists() and (images / "dog__paintings.png").exists()
    overlays = out / "overlays"
    assert sorted(p.name for p in images.iterdir()) == [
        "cat__paintings.json", "cat__paintings.png", "dog__paintings.json", "dog__paintings.png"]  # outputs only
    for kind in ("regions-content", "regions-wave", "regions-stars"):
        assert (overlays / f"cat__paintings.{kind}.png").exists(), kind
    sidecar = json.loads((images / "cat__paintings.json").read_text())
    assert sidecar["method"] == "stylegallery" and sidecar["matches"]
    assert sidecar["loss_norm"] == "layer" and sidecar["mask_mode"] == "sparse" and len(sidecar["loss_curve"]) == 4
    row = sidecar["matches"][0]
    assert row["reference"] in ("wave", "stars") and {"score", "stat", "sem", "geo"} <= set(row)
    assert list((out / "wandb").glob("offline-run-*"))

