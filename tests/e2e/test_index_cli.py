"""`python -m stylex.index` + `stylex.run gallery=index` end to end on tiny models (debug=smoke)."""
import json

import pytest

from tests.e2e.cli import run_cli

# Stage-1 settings shared by the build and the runs (a gallery serves only runs with its own settings).
COMMON = ("debug=smoke", "data.resolution=64", "method.regions.n_init=2")


@pytest.mark.slow
def test_index_builds_a_gallery_that_serves_a_smoke_run_and_refuses_other_settings(tmp_path, image_folders):
    contents, styles = image_folders
    (styles / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    gallery = tmp_path / "galleries" / "paintings"
    built = run_cli("stylex.index", *COMMON, f"data.styles={styles}", f"gallery.out={gallery}",
                    "data.on_bad_image=skip", f"hydra.run.dir={tmp_path / 'index'}", cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    said = built.stdout + built.stderr
    assert "This build: 2 new, 0 changed, 0 removed, 0 unchanged" in said and "img/s" in said and "images/s" in said
    assert "Skipped 1 unreadable file(s)" in said and "broken.png" in said
    assert (tmp_path / "index" / "skipped.txt").read_text().startswith(f"{styles / 'broken.png'}\t")
    manifest = json.loads((gallery / "manifest.json").read_text())
    assert sorted(manifest["images"]) == ["stars.png", "wave.png"] and manifest["skipped"][0]["key"] == "broken.png"
    assert manifest["stage1"]["regions"]["n_init"] == 2 and manifest["stage1"]["image"]["resolution"] == 64

    out = tmp_path / "run"
    run = run_cli("stylex.run", "experiment=gallery", *COMMON, "gallery=index", f"gallery.path={gallery}",
                  "logger=none", f"data.content={contents / 'cat.png'}", f"hydra.run.dir={out}",
                  f"paths.cache_dir={tmp_path / 'cache'}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    images = out / "images"
    assert (images / "cat__paintings.png").exists() and (out / "overlays" / "cat__paintings.candidates.png").exists()
    sidecar = json.loads((images / "cat__paintings.json").read_text())
    winners = {s["path"] for s in sidecar["styles"]}
    assert winners and winners <= {str((styles / n).resolve()) for n in ("wave.png", "stars.png")}
    assert {row["reference"] for row in sidecar["matches"]} <= {"wave", "stars"}
    assert sidecar["gallery"]["digest"] == manifest["digest"] and sidecar["gallery"]["candidates"][0]

    refused = run_cli("stylex.run", "experiment=gallery", "debug=smoke", "data.resolution=64",
                      "method.regions.n_init=3", "gallery=index", f"gallery.path={gallery}", "logger=none",
                      f"data.content={contents / 'cat.png'}", f"hydra.run.dir={tmp_path / 'refused'}", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "regions.n_init: 2 in the gallery vs 3 now" in refused.stderr and "python -m stylex.index" in refused.stderr
    assert "Traceback" not in refused.stderr
