"""`python -m stylex.run` end to end on tiny random models."""
import json

import pytest

from tests.conftest import write_image
from tests.e2e.cli import run_cli


@pytest.mark.slow
def test_smoke_experiment_writes_every_output_and_resumes(tmp_path):
    out = tmp_path / "run"
    first = run_cli("stylex.run", "experiment=smoke", "logger=none", f"hydra.run.dir={out}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    pngs = sorted((out / "images").glob("*.png"))
    assert len(pngs) == 16 and (out / "images" / "astronaut__brick.png").exists()
    sidecar = json.loads((out / "images" / "astronaut__brick.json").read_text())
    assert sidecar["method"] == "ad" and len(sidecar["loss_curve"]) == 4 and sidecar["config_hash"]
    assert set(sidecar["timings_s"]) >= {"optimise", "decode"}
    assert not list((out / "images").glob("*.part"))
    again = run_cli("stylex.run", "experiment=smoke", "logger=none", f"hydra.run.dir={out}", cwd=tmp_path)
    assert again.returncode == 0 and "Nothing to do" in again.stdout + again.stderr


@pytest.mark.slow
def test_user_folders_with_wandb_offline(tmp_path, image_folders):
    contents, styles = image_folders
    out = tmp_path / "run"
    result = run_cli("stylex.run", "experiment=smoke", f"data.content={contents}", f"data.styles={styles}",
                     f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (out / "images").glob("*.png")) == [
        "cat__stars.png", "cat__wave.png", "dog__stars.png", "dog__wave.png"]
    runs = list((out / "wandb").glob("offline-run-*"))
    assert runs, "W&B should log offline when no API key is configured"
    assert "wandb sync" in result.stdout + result.stderr


def bad_cases(tmp_path, contents, styles):
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.png").write_text("hello")
    good = write_image(tmp_path / "big" / "b.jpg", (300, 300))
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "c.jpg").write_bytes(good.read_bytes()[:500])
    return {
        "missing path": ([f"data.content={tmp_path / 'nope'}"], "no such file or folder"),
        "empty folder": ([f"data.content={tmp_path / 'empty'}"], "holds no images"),
        "not an image": ([f"data.styles={tmp_path / 'text'}"], "is not an image"),
        "truncated": ([f"data.styles={tmp_path / 'cut'}"], "damaged or truncated"),
        "unknown option": (["method.no_such_option=3"], "could not be composed"),
        "missing weights": ([f"backbone.model={tmp_path / 'no-weights'}", "tiny_models=false"], "Could not load"),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing path", "empty folder", "not an image", "truncated", "unknown option",
                                  "missing weights"])
def test_bad_input_exits_2_with_a_message_and_no_partial_output(tmp_path, image_folders, case):
    contents, styles = image_folders
    overrides, expected = bad_cases(tmp_path, contents, styles)[case]
    out = tmp_path / "run"
    base = ["experiment=smoke", f"hydra.run.dir={out}", f"data.content={contents}", f"data.styles={styles}"]
    result = run_cli("stylex.run", *base, *overrides, cwd=tmp_path)
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(out.glob("images/*"))
    assert not (out / "wandb").exists(), "a run that stops on bad input opens no W&B run"
