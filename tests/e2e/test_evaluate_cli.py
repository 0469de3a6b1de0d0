"""`python -m stylex.evaluate` end to end on fake outputs (with sidecars and overlays) and tiny metric networks."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from stylex.data.images import file_digest
from tests.conftest import write_image
from tests.e2e.cli import run_cli


def fake_run(root: Path, method: str = "fake", run: str = "run") -> tuple[Path, Path, Path]:
    """contents (cat, dog) x styles (wave, stars) -> run/images/{c}__{s}.png with sidecars, as stylex.run writes
    them, plus the overlay images a StyleGallery run puts beside each output."""
    contents, styles, images = root / "photos", root / "paintings", root / run / "images"
    c_files = [write_image(contents / "cat.png", (96, 64), seed=1), write_image(contents / "dog.jpg", (64, 96), seed=2)]
    s_files = [write_image(styles / "wave.png", (80, 80), seed=3), write_image(styles / "stars.png", (100, 70), seed=4)]
    for i, c in enumerate(c_files):
        for j, s in enumerate(s_files):
            name = f"{c.stem}__{s.stem}"
            write_image(images / f"{name}.png", (64, 64), seed=10 + 2 * i + j)
            (images / f"{name}.json").write_text(json.dumps({
                "name": name, "method": method, "content": {"path": str(c), "sha256_16": file_digest(c)},
                "styles": [{"path": str(s), "sha256_16": file_digest(s)}]}))
            write_image(images / f"{name}.regions-content.png", (64, 64), seed=99)
            write_image(images / f"{name}.attention-{s.stem}.png", (64, 64), seed=98)
    return root / run, contents, styles


@pytest.mark.slow
def test_evaluate_writes_tables_and_grid(tmp_path: Path) -> None:
    run, contents, styles = fake_run(tmp_path)
    out = tmp_path / "eval"
    result = run_cli("stylex.evaluate", f"outputs={run}", f"contents={contents}", f"styles={styles}", "debug=smoke",
                     "logger=none", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "fake: protocol stylegallery (protocol=auto: 'fake' is none of" in log
    assert "Evaluation convention: protocol stylegallery | images RGB" in log

    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [(r["method"], r["content"], r["style"]) for r in rows] == [
        ("fake", "cat", "stars"), ("fake", "cat", "wave"), ("fake", "dog", "stars"), ("fake", "dog", "wave")]
    for r in rows:
        assert 0 <= float(r["lpips"]) <= 1 and -1 <= float(r["dino"]) <= 1 and float(r["gram"]) >= 0, r
        assert all(math.isfinite(float(r[k])) for k in ("style_score", "cfsd", "clip_i", "clip_t"))

    summary, *published = list(csv.DictReader((out / "summary.csv").open()))
    assert (summary["method"], summary["protocol"], summary["source"]) == ("fake", "stylegallery", "measured")
    assert summary["n_images"] == "4" and summary["outputs"] == str(run / "images")
    assert list(summary)[:9] == ["method", "protocol", "source", "n_images", "style_score", "gram", "fid", "lpips",
                                 "artfid"]  # the StyleGallery table's published order
    assert [(r["method"], r["artfid"]) for r in published] == [("StyleID", "28.973"), ("AD", "26.207"),
                                                                ("StyleGallery", "24.536")]
    assert float(summary["fid"]) >= 0 and float(summary["artfid"]) >= 1
    assert float(summary["artfid"]) == pytest.approx((1 + float(summary["lpips"])) * (1 + float(summary["fid"])),
                                                     rel=1e-6)
    assert float(summary["lpips"]) == pytest.approx(sum(float(r["lpips"]) for r in rows) / 4, rel=1e-5)
    assert "gram: shorter side to 128" in summary["preprocess"] and "clip_t texts" in summary["preprocess"]
    tables = (out / "summary.md").read_text()
    assert "## StyleGallery table (protocol `stylegallery`)" in tables and "| fake | 4 |" in tables
    assert "| *StyleGallery (published)* |  | *0.5337* | *13.519* | *16.889* | *0.3716* | *24.536* |" in tables

    grid = Image.open(out / "grid.png")
    assert grid.size == (128 + 2 * 128, 18 + 16 + 128 + 2 * (128 + 16))  # input thumbnails + 2 x 2 outputs


@pytest.mark.slow
def test_mismatched_folders_exit_2_and_write_nothing(tmp_path: Path) -> None:
    run, contents, styles = fake_run(tmp_path)
    (styles / "stars.png").unlink()
    out = tmp_path / "eval"
    result = run_cli("stylex.evaluate", f"outputs={run}", f"contents={contents}", f"styles={styles}", "debug=smoke",
                     "logger=none", f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "2 output image(s)" in result.stderr and "cat__stars.png: no style 'stars'" in result.stderr
    assert "regions-content" not in result.stderr  # overlays are not outputs
    assert "Traceback" not in result.stdout + result.stderr
    assert not (out / "metrics.csv").exists() and not (out / "summary.csv").exists()


def test_missing_weights_exit_2_naming_the_metric_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In process (the same `guarded` main the command runs): no subprocess needed for the message."""
    from hydra import compose, initialize_config_dir

    from stylex.cli import guarded
    from stylex.data.samples import register_resolvers
    from stylex.metrics.evaluation import run_evaluation

    run, contents, styles = fake_run(tmp_path)
    register_resolvers()
    missing = tmp_path / "weights" / "vgg19-dcbb9e9d.pth"
    with initialize_config_dir(str(Path(__file__).parents[2] / "configs"), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"outputs={run}", f"contents={contents}", f"styles={styles}",
                                             "logger=none", f"paths.output_dir={tmp_path / 'eval'}",
                                             "metrics.names=[gram]", f"metrics.weights.vgg19={missing}"])
    with pytest.raises(SystemExit) as exit_info:
        guarded(run_evaluation)(cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "the `gram` metric cannot be computed" in err and "VGG19" in err and str(missing) in err
    assert "`metrics.weights.vgg19=/path/to/vgg19-dcbb9e9d.pth`" in err and "debug=smoke" in err
    assert not (tmp_path / "eval" / "metrics.csv").exists()


def test_auto_protocol_follows_each_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In process: an AD run and a HAM run evaluated together are each scored under their paper's protocol, on
    networks loaded once for both; protocol=stylex puts both under stylex's own, beside the rows already there."""
    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers
    from stylex.metrics.evaluation import run_evaluation
    from stylex.metrics.factory import Networks

    loaded: list[str] = []
    get = Networks._get

    def counting(self: Networks, key: str, build: object) -> object:
        if key not in self.cache:
            loaded.append(key)
        return get(self, key, build)

    monkeypatch.setattr(Networks, "_get", counting)

    ad, contents, styles = fake_run(tmp_path, "ad", "ad_run")
    ham, _, _ = fake_run(tmp_path, "ham", "ham_run")
    register_resolvers()
    base = [f"outputs=[{ad},{ham}]", f"contents={contents}", f"styles={styles}", "logger=none", "debug=smoke",
            f"paths.output_dir={tmp_path / 'eval'}", "metrics.names=[lpips,fid,artfid,dino]", "grid.enabled=false"]
    with initialize_config_dir(str(Path(__file__).parents[2] / "configs"), version_base="1.3"):
        auto, own = compose("evaluate", overrides=base), compose("evaluate", overrides=[*base, "protocol=stylex"])
    assert run_evaluation(auto).protocols == {"ad": "stylegallery", "ham": "ham"}
    assert sorted(loaded) == sorted(set(loaded)) and "lpips" in loaded, "each network loaded once for both protocols"
    run_evaluation(own)
    rows = list(csv.DictReader((tmp_path / "eval" / "summary.csv").open()))
    assert {(r["method"], r["protocol"]) for r in rows if r["source"] == "measured"} == {
        ("ad", "stylegallery"), ("ham", "ham"), ("ad", "stylex"), ("ham", "stylex")}
    assert {r["method"] for r in rows if r["source"].startswith("published")} == {"StyleID", "AD", "StyleGallery",
                                                                                 "HAM"}
    tables = (tmp_path / "eval" / "summary.md").read_text()
    for title in ("StyleGallery table (protocol `stylegallery`)", "HAM table (protocol `ham`)",
                  "StyleGallery table (protocol `stylex`)", "HAM table (protocol `stylex`)"):
        assert f"## {title}" in tables
    assert "dino: shorter side to 128, aspect kept (PIL bicubic), centre crop 128" in tables  # ham, smoke-capped
