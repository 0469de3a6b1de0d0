"""The writer: `images/` holds the outputs and their sidecars only; every picture a method adds (region maps,
attention maps, candidate strips, HAM's branch previews) goes to `overlays/`."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch
from PIL import Image

from stylex.callbacks.writer import OutputWriter
from stylex.data.datamodule import ImageRef, Item
from stylex.data.outputs import OutputStore
from stylex.methods.base import Stylized


def test_outputs_in_images_and_pictures_in_overlays(tmp_path):
    item = Item("g0__s0", ImageRef(Path("g0.png"), "g0", "c"), [ImageRef(Path("s0.jpg"), "s0", "s")], "hash", 0,
                torch.rand(3, 16, 16), [torch.rand(3, 16, 16)])
    branches = Image.new("RGB", (32, 48), "red")
    regions = {"content": torch.zeros(2, 2, dtype=torch.long), "references": [torch.ones(2, 2, dtype=torch.long)]}
    result = Stylized(item, torch.rand(3, 16, 16), [0.5], {}, {"method": "ham"},
                      {"files": {"branches": branches}, "regions": regions})
    store = OutputStore(tmp_path)
    writer = OutputWriter(store, "cfg")
    writer.on_predict_batch_end(SimpleNamespace(global_rank=0, world_size=1), None, [result], [item], 0)
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["g0__s0.json", "g0__s0.png"]
    assert sorted(p.name for p in (tmp_path / "overlays").iterdir()) == [
        "g0__s0.branches.png", "g0__s0.regions-content.png", "g0__s0.regions-s0.png"]
    assert Image.open(tmp_path / "overlays" / "g0__s0.branches.png").size == (32, 48)
    assert store.is_done("g0__s0", "hash") and writer.written == 1
