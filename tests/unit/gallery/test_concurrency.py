"""Several processes building one gallery at once (as jobs on a shared filesystem do): the lock serialises
them, stage 1 runs once per image in all, and the result is one consistent gallery that readers can open at
any moment."""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import torch

from tests.conftest import write_image
from tests.unit.gallery.test_gallery import STAGE1, fake_analyse

IMAGES = 4


def slow_analyse(counter: str):
    def analyse(image: torch.Tensor) -> dict:
        with open(counter, "a") as f:  # one line per stage-1 computation, from any process
            f.write(f"{os.getpid()}\n")
        time.sleep(0.3)
        return fake_analyse(image)

    return analyse


def build_worker(root: str, folder: str, counter: str, barrier, results) -> None:
    from stylex.gallery import faiss_index
    from stylex.gallery.build import build_gallery

    torch.set_num_threads(1)
    faiss_index.faiss_module().omp_set_num_threads(1)
    barrier.wait()
    report = build_gallery(root, folder, slow_analyse(counter), STAGE1, 64, "squash", show_progress=False,
                           lock_timeout=120)
    results.put((report.processed, report.images))


def open_worker(root: str, stop, results) -> None:
    """Opens the gallery (verifying index, id map and manifest against each other) whenever one exists."""
    from stylex.gallery.store import MANIFEST, Gallery, gallery_identity

    torch.set_num_threads(1)
    opened, errors = 0, []
    while not stop.is_set():
        if (Path(root) / MANIFEST).exists():
            try:
                gallery = Gallery.open(root, gallery_identity(STAGE1, 64, "squash"))
                if len(gallery.images) != IMAGES:
                    errors.append(f"{len(gallery.images)} images")
                opened += 1
            except Exception as exc:  # noqa: BLE001 - any failure is what the test looks for
                errors.append(repr(exc)[:300])
        time.sleep(0.02)
    results.put((opened, errors))


def test_racing_builds_of_one_gallery_leave_one_consistent_gallery(tmp_path: Path):
    from stylex.gallery.store import Gallery, gallery_identity, read_manifest

    folder, root, counter = tmp_path / "paintings", tmp_path / "gallery", tmp_path / "stage1.txt"
    for i in range(IMAGES):
        write_image(folder / f"p{i}.png", (40, 32), seed=10 + i)
    ctx = mp.get_context("spawn")
    builders = 3
    barrier, stop, results, opens = ctx.Barrier(builders), ctx.Event(), ctx.Queue(), ctx.Queue()
    reader = ctx.Process(target=open_worker, args=(str(root), stop, opens))
    reader.start()
    procs = [ctx.Process(target=build_worker, args=(str(root), str(folder), str(counter), barrier, results))
             for _ in range(builders)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    time.sleep(0.3)  # let the reader open the finished gallery too
    stop.set()
    reader.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * builders  # no build failed: the later ones waited for the lock
    reports = sorted(results.get(timeout=5) for _ in procs)
    assert reports == [(0, IMAGES)] * (builders - 1) + [(IMAGES, IMAGES)]  # one build did the work, the others
    assert len(counter.read_text().split()) == IMAGES                      # found every image up to date
    gallery = Gallery.open(root, gallery_identity(STAGE1, 64, "squash"))
    manifest = read_manifest(root)
    assert gallery.ntotal == manifest["regions"] == sum(e["regions"] for e in manifest["images"].values())
    assert sorted(manifest["images"]) == [f"p{i}.png" for i in range(IMAGES)]
    assert not [p for p in root.rglob("*") if p.name.endswith(".part")]
    opened, errors = opens.get(timeout=5)
    assert not errors, errors[:3]
    assert opened > 0
