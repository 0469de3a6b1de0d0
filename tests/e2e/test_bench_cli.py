"""`python -m stylex.bench` as a user runs it, on tiny models (debug=smoke): the tables come out as CSV."""
import csv

import pytest

from tests.e2e.cli import run_cli


def read_csv(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_methods_benchmark_writes_one_row_per_method_and_batch(tmp_path):
    result = run_cli("stylex.bench", "debug=smoke", "logger=none", "methods_bench.experiments=[ad,gallery]",
                     f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path, timeout=900)  # room on a shared machine
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(tmp_path / "b" / "bench_methods.csv")
    assert [(r["method"], r["batch"]) for r in rows] == [("ad", "1"), ("ad", "2"), ("gallery", "1"), ("gallery", "2")]
    for row in rows:
        assert float(row["seconds_per_image"]) > 0 and float(row["tflops_per_image"]) > 0
        assert float(row["unet_evals_per_second"]) > 0 and float(row["peak_memory_gb"]) > 0
        assert float(row["student_tflops"]) >= 0  # measured for latent-optimising methods


def test_regional_benchmark_compares_backends(tmp_path):
    result = run_cli("stylex.bench", "task=regional", "debug=smoke", "logger=none", "regional_bench.references=[2]",
                     "regional_bench.backends=[gather,dense]", "regional_bench.repeats=1",
                     f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(tmp_path / "b" / "bench_regional.csv")
    assert [(r["backend"], r["tokens"]) for r in rows] == [("gather", "256"), ("dense", "256"),
                                                           ("gather", "64"), ("dense", "64")]
    assert all(float(r["max_abs_diff_vs_gather"]) < 1e-4 for r in rows)


@pytest.mark.slow
def test_every_method_runs_under_bf16_autocast(tmp_path):
    """The GPU default (bf16 weights and autocast, fp32 latents) exercised on CPU for every benchmarked method."""
    result = run_cli("stylex.bench", "debug=smoke", "logger=none", "methods_bench.smoke_batches=[2]",
                     'methods_bench.overrides=["backbone.dtype=bfloat16"]', f"hydra.run.dir={tmp_path / 'b'}",
                     cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_csv(tmp_path / "b" / "bench_methods.csv")
    assert [r["method"] for r in rows] == ["ad", "gallery", "gallery_lcm", "gallery_hyper", "styleid", "ham_sd21",
                                           "ham_sd35"]


@pytest.mark.slow
def test_bf16_stylegallery_output_is_close_to_fp32(tmp_path):
    import numpy as np
    from PIL import Image

    from stylex.data.samples import samples_dir

    images = {}
    for dtype in ("float32", "bfloat16"):
        result = run_cli("stylex.run", "experiment=gallery", "debug=smoke", "logger=none",
                         f"data.content={samples_dir() / 'astronaut.png'}", f"backbone.dtype={dtype}",
                         f"hydra.run.dir={tmp_path / dtype}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        (path,) = [p for p in (tmp_path / dtype / "images").glob("*.png") if "." not in p.stem]
        images[dtype] = np.asarray(Image.open(path), dtype=np.float64)
    assert images["bfloat16"].std() > 10  # a real picture, not a NaN-black one
    assert np.abs(images["bfloat16"] - images["float32"]).mean() < 8
