"""Shared fixtures: a tiny random SD backbone and image files of every kind users have."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One thread per test process (and per CLI subprocess, which inherits the environment): the suite runs one process
# per core, and on a shared machine more threads than free cores make OpenMP spin-wait (tiny-model runs 10-50x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def process_rank_restored():
    """A Trainer built under a simulated srun / torchrun rank sets Lightning's process-wide rank, which would turn
    later tests' W&B experiments into rank>0 dummies: put it back after each test."""
    from lightning_utilities.core.rank_zero import rank_zero_only

    rank = getattr(rank_zero_only, "rank", 0)
    yield
    rank_zero_only.rank = rank


@pytest.fixture(scope="session")
def tiny_backbone():
    from stylex.backbones.tiny import tiny_sd

    return tiny_sd(seed=0)


def write_image(path: Path, size: tuple[int, int] = (96, 80), mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr, "RGB")
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture
def image_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two contents and two styles, small, as files."""
    contents, styles = tmp_path / "photos", tmp_path / "paintings"
    write_image(contents / "cat.png", (96, 64), seed=1)
    write_image(contents / "dog.jpg", (64, 96), seed=2)
    write_image(styles / "wave.png", (80, 80), seed=3)
    write_image(styles / "stars.png", (100, 70), "L", seed=4)
    return contents, styles
