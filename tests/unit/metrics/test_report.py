"""evaluate_pairs end to end on tiny networks, the CSV files, the comparison grid and the metric factory."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from stylex.errors import ConfigError
from stylex.metrics.factory import build_metrics
from stylex.metrics.pairing import pair_outputs
from stylex.metrics.report import (
    comparison_grid,
    evaluate_pairs,
    grid_from_pairs,
    read_csv,
    write_metrics_csv,
    write_summary_csv,
)


def _noise(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    arr = (torch.rand(40, 48, 3, generator=g) * 255).byte().numpy()
    Image.fromarray(arr).save(path)


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, Path, Path]:
    c, s, o = tmp_path / "content", tmp_path / "style", tmp_path / "out"
    for i, name in enumerate(("c1", "c2")):
        _noise(c / f"{name}.png", i)
    for i, name in enumerate(("s1", "s2")):
        _noise(s / f"{name}.png", 10 + i)
        (s / f"{name}.txt").write_text(f"style number {i}")
    k = 20
    for cn in ("c1", "c2"):
        for sn in ("s1", "s2"):
            _noise(o / f"{cn}__{sn}.png", k)
            k += 1
    return o, c, s


def test_evaluate_pairs_and_write_csvs(dataset: tuple[Path, Path, Path], tmp_path: Path) -> None:
    o, c, s = dataset
    pairs = pair_outputs(o, c, s)
    names = ("style_score", "gram", "fid", "lpips", "artfid", "cfsd", "dino", "clip_i", "clip_t")
    metrics = build_metrics(names, smoke=True)
    rows, summary = evaluate_pairs(pairs, metrics, batch_size=3, size=64, method="tiny")
    assert len(rows) == 4 and rows[0]["content"] == "c1" and rows[0]["style"] == "s1"
    for name in ("style_score", "gram", "lpips", "cfsd", "dino", "clip_i", "clip_t"):
        assert all(isinstance(r[name], float) for r in rows), name
        assert summary[name] == pytest.approx(sum(r[name] for r in rows) / 4), name
    assert "fid" not in rows[0] and math.isfinite(summary["fid"])
    assert summary["artfid"] == pytest.approx((1 + summary["artfid.lpips"]) * (1 + summary["artfid.fid"]))
    assert summary["artfid.lpips"] == pytest.approx(summary["lpips"])  # one LPIPS, shared
    assert "squashed to 64x64" in str(summary["preprocess"]) and "Inception-v3 (fid blocks) bilinear to 75x75" in str(summary["preprocess"])

    write_metrics_csv(tmp_path / "metrics.csv", rows)
    table = read_csv(tmp_path / "metrics.csv")
    assert list(table[0])[:3] == ["content", "style", "output"] and len(table) == 4
    assert float(table[0]["lpips"]) == pytest.approx(rows[0]["lpips"], rel=1e-6)

    write_summary_csv(tmp_path / "summary.csv", [summary])
    write_summary_csv(tmp_path / "summary.csv", [{**summary, "method": "other", "lpips": 0.5}])
    write_summary_csv(tmp_path / "summary.csv", [{**summary, "lpips": 0.25}])  # re-evaluated: replaces its row
    table = read_csv(tmp_path / "summary.csv")
    assert {r["method"]: float(r["lpips"]) for r in table} == {"other": 0.5, "tiny": 0.25}
    assert list(table[0])[:2] == ["method", "n_images"] and list(table[0])[-1] == "preprocess"


def test_comparison_grid(dataset: tuple[Path, Path, Path]) -> None:
    o, c, s = dataset
    pairs = pair_outputs(o, c, s)
    grid = grid_from_pairs({"A": pairs, "B": pairs[:3]}, cell=32)
    assert isinstance(grid, Image.Image)
    assert grid.width == 2 * (80 + 2 * 32) + 12 and grid.height == 18 + 16 + 32 + 2 * (32 + 16)
    bare = comparison_grid({"A": {("c1", "s1"): pairs[0].output}}, ["c1", "c2"], ["s1"], cell=24)
    assert bare.size == (80 + 24, 18 + 16 + 2 * (24 + 16))


def test_factory_rejects_unknown_names() -> None:
    with pytest.raises(ConfigError, match="unknown metrics"):
        build_metrics(["lpips", "kid"], smoke=True)
