"""The gallery: exact retrieval, IVF-PQ recall, incremental builds, refusals, damage detection, ranking, wiring.

Stage 1 is replaced by a deterministic stand-in (descriptors seeded by the pixels), so these tests exercise the
gallery itself in seconds; tests/e2e/test_index_cli.py runs the real stage 1 on tiny models.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from filelock import FileLock

from stylex.data.datamodule import StyleDataModule
from stylex.errors import ConfigError, InputError
from stylex.matching import assign, match_scores
from stylex.gallery import faiss_index
from stylex.matching.descriptors import geometry_circles
from stylex.gallery.faiss_index import IndexSpec
from stylex.gallery.build import build_gallery
from stylex.gallery.store import Gallery, file_record, gallery_identity
from stylex.gallery.retrieval import describe, rank_candidates
from tests.conftest import write_image

STAGE1 = {"model": "fake-sd", "regions": {"n_init": 2}, "depth": None, "dino": None, "matching": {"stat": "mean_std"}}
DIM = 16


def fake_analyse(image: torch.Tensor) -> dict:
    """Stand-in for StyleGallery.analyse: 2-4 stripe regions, descriptors seeded by the pixels."""
    seed = int(image.double().sum().item() * 1000) % (2 ** 31)
    g = torch.Generator().manual_seed(seed)
    n = 2 + seed % 3
    labels = (torch.arange(8)[None, :].expand(8, 8) * n // 8).clone()
    return {"latent": torch.randn(4, 8, 8, generator=g), "x_T": torch.randn(4, 8, 8, generator=g), "labels": labels,
            "k": n, "notes": [], "stat": torch.randn(n, 6, generator=g), "sem": torch.randn(n, DIM, generator=g),
            "geo": geometry_circles(labels)}


def build(root: Path, folder: Path, analyse=fake_analyse, stage1=STAGE1, **options):
    return build_gallery(root, str(folder), analyse, stage1, 64, "squash", show_progress=False, **options)


def open_gallery(root: Path, stage1=STAGE1, **options) -> Gallery:
    return Gallery.open(root, gallery_identity(stage1, 64, "squash"), **options)


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """faiss's OpenMP threads spin against each other on a shared 2-core runner; one thread is 10x faster here."""
    faiss = faiss_index.faiss_module()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture
def paintings(tmp_path: Path) -> Path:
    folder = tmp_path / "paintings"
    for i in range(5):
        write_image(folder / f"p{i}.png", (40, 32), seed=10 + i)
    return folder


def test_exact_index_equals_brute_force_cosine_search():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 24)) * rng.uniform(0.1, 5.0, (300, 1))  # lengths must not matter
    queries = rng.standard_normal((20, 24))
    index, built, note = faiss_index.build_index(faiss_index.normalise(base), IndexSpec())
    sims, rows = faiss_index.search(index, faiss_index.normalise(queries), 7)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    cos = unit(queries) @ unit(base).T
    expected = np.argsort(-cos, axis=1)[:, :7]
    assert built.type == "flat" and note is None
    assert (rows == expected).all()
    np.testing.assert_allclose(sims, np.take_along_axis(cos, expected, 1), atol=1e-5)


def test_ivfpq_reranks_exactly_and_finds_nearly_all_exact_neighbours():
    from stylex.bench.gallery import recall_at_k, synthetic_descriptors

    base, queries = synthetic_descriptors(3000, 32, 30, 0), synthetic_descriptors(40, 32, 30, 0, draw=1)
    exact, _, _ = faiss_index.build_index(base, IndexSpec())
    _, truth = faiss_index.search(exact, queries, 10)
    index, built, note = faiss_index.build_index(base, IndexSpec(type="ivfpq", m=8))
    assert (built.type, built.m) == ("ivfpq", 8) and built.nlist and note is None
    sims, rows = faiss_index.search(index, queries, 10)
    assert recall_at_k(rows, truth, 10) >= 0.9
    np.testing.assert_allclose(sims, np.einsum("qd,qkd->qk", queries, base[rows]), atol=1e-5)  # exact re-ranking
    np.testing.assert_array_equal(faiss_index.index_vectors(index), base)  # the vectors can be read back
    small, built, note = faiss_index.build_index(base[:100], IndexSpec(type="ivfpq", m=8))
    assert built.type == "flat" and "ivfpq needs at least" in note


def test_gallery_search_equals_brute_force_over_all_its_regions(tmp_path, paintings):
    build(tmp_path / "g", paintings)
    gallery = open_gallery(tmp_path / "g")
    keys = sorted(gallery.images)
    regions = [(key, r) for key in keys for r in range(gallery.entry(key)["regions"])]
    sem = torch.cat([gallery.artifact(key)["sem"] for key in keys]).double()
    queries = torch.randn(6, DIM, generator=torch.Generator().manual_seed(1))
    cos = F.normalize(queries.double(), dim=1) @ F.normalize(sem, dim=1).T
    for q, hits in enumerate(gallery.search(queries, 5)):
        order = cos[q].argsort(descending=True)[:5].tolist()
        assert [(h.image, h.region) for h in hits] == [regions[i] for i in order]
        np.testing.assert_allclose([h.similarity for h in hits], cos[q, order].numpy(), atol=1e-5)


def test_builds_are_incremental_and_removed_images_leave_the_index(tmp_path, paintings):
    calls = []

    def analyse(image):
        calls.append(1)
        return fake_analyse(image)

    root = tmp_path / "g"
    first = build(root, paintings, analyse)
    assert (first.new, first.processed, first.images) == (5, 5, 5) and len(calls) == 5
    again = build(root, paintings, analyse)
    assert (again.new, again.changed, again.removed, again.unchanged, again.processed) == (0, 0, 0, 5, 0)
    assert not again.updated and len(calls) == 5 and "0 new" in again.summary()
    digest = open_gallery(root).digest
    write_image(paintings / "p1.png", (40, 32), seed=99)  # changed
    (paintings / "p2.png").unlink()  # removed
    write_image(paintings / "sub" / "new.png", (40, 32), seed=7)  # new, in a subfolder
    (paintings / "p3.png").rename(paintings / "p3-renamed.png")  # renamed: same content, reuses its artifact
    third = build(root, paintings, analyse)
    assert (third.new, third.changed, third.removed, third.unchanged) == (2, 1, 2, 2)
    assert (third.processed, third.reused, len(calls)) == (2, 1, 7)
    gallery = open_gallery(root)
    assert sorted(gallery.images) == ["p0.png", "p1.png", "p3-renamed.png", "p4.png", "sub/new.png"]
    assert gallery.digest != digest and gallery.entry("sub/new.png")["name"] == "sub-new"
    found = {c.image for row in gallery.search(torch.randn(8, DIM), 100) for c in row}
    assert found == set(gallery.images) and gallery.ntotal == sum(e["regions"] for e in gallery.images.values())
    stored = {p.relative_to(root).as_posix() for p in (root / "artifacts").rglob("*.pt")}
    assert stored == {e["artifact"] for e in gallery.images.values()}  # removed and changed ones are deleted


def test_unreadable_images_stop_the_build_before_any_work(tmp_path, paintings, caplog):
    (paintings / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (paintings / "._p0.png").write_bytes(b"macOS resource fork")  # hidden: ignored, not unreadable
    (paintings / ".DS_Store").write_bytes(b"\0")
    analysed = []
    caplog.set_level("INFO", logger="stylex")
    with pytest.raises(InputError, match=r"broken.png: the image is damaged.*data.on_bad_image=skip"):
        build(tmp_path / "g", paintings, analyse=lambda image: analysed.append(image) or fake_analyse(image))
    assert not analysed and not (tmp_path / "g" / "manifest.json").exists()
    assert "ignoring 2 hidden file(s)" in caplog.text


def test_unreadable_images_are_skipped_and_listed(tmp_path, paintings):
    (paintings / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (paintings / "notes.txt").write_text("not an image, not a skipped image either")
    report = build(tmp_path / "g", paintings, on_bad_image="skip")
    assert report.images == 5 and [Path(s["path"]).name for s in report.skipped] == ["broken.png"]
    assert "Skipped 1 unreadable file(s)" in report.summary() and "broken.png" in report.summary()
    manifest = json.loads((tmp_path / "g" / "manifest.json").read_text())
    assert manifest["skipped"][0]["key"] == "broken.png" and "damaged" in manifest["skipped"][0]["reason"]
    assert build(tmp_path / "g", paintings, on_bad_image="skip").skipped[0]["key"] == "broken.png"  # not retried
    with pytest.raises(InputError, match="broken.png"):  # listed as skipped before: stop still stops on it
        build(tmp_path / "g", paintings)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="none of the 1 image"):
        build(tmp_path / "g2", bad, on_bad_image="skip")
    assert not (tmp_path / "g2" / "manifest.json").exists()


def test_galleries_built_with_other_stage1_settings_are_refused(tmp_path, paintings):
    root = tmp_path / "g"
    build(root, paintings)
    other = {**STAGE1, "regions": {"n_init": 10}}
    with pytest.raises(ConfigError, match=r"regions.n_init: 2 in the gallery vs 10 now.*python -m stylex.index "
                                          r"data.styles=.*paintings gallery.out=.*gallery.rebuild=true"):
        open_gallery(root, other)
    with pytest.raises(ConfigError, match=r"model: 'fake-sd' in the gallery vs 'sd15' now"):
        open_gallery(root, {**STAGE1, "model": "sd15"})
    with pytest.raises(ConfigError, match=r"image.resolution: 64 in the gallery vs 128 now"):
        Gallery.open(root, gallery_identity(STAGE1, 128, "squash"))
    with pytest.raises(ConfigError, match="gallery.rebuild=true"):
        build(root, paintings, stage1=other)
    with pytest.raises(ConfigError, match="gallery.replace_source=true"):
        build(root, paintings / "p0.png")
    report = build(root, paintings, stage1=other, rebuild=True)
    assert report.processed == 5 and open_gallery(root, other).ntotal == report.regions
    assert len(list((root / "artifacts").iterdir())) == 1  # the earlier settings' artifacts are gone


def test_damaged_or_mismatched_index_files_are_detected_and_rebuilt(tmp_path, paintings):
    root = tmp_path / "g"
    build(root, paintings)
    data = (root / "index.faiss").read_bytes()
    (root / "index.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or replaced.*it is not used"):
        open_gallery(root)
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF
    (root / "index.faiss").write_bytes(bytes(flipped))
    with pytest.raises(InputError, match="checksum"):
        open_gallery(root)
    repaired = build(root, paintings)  # rebuilt from the stored artifacts, without running stage 1
    assert repaired.processed == 0 and repaired.updated and open_gallery(root).ntotal == repaired.regions
    ids = np.load(root / "ids.npy")
    buffer = io.BytesIO()
    np.save(buffer, ids[:-1])
    (root / "ids.npy").write_bytes(buffer.getvalue())
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["id_map"] = {**file_record("ids.npy", buffer.getvalue()), "rows": len(ids) - 1}
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="must agree"):  # checksums fine: only ntotal vs id map can tell
        open_gallery(root)
    with pytest.raises(InputError, match="no gallery there"):
        open_gallery(tmp_path / "nowhere")


def test_a_second_build_of_one_gallery_is_locked_out(tmp_path, paintings):
    root = tmp_path / "g"
    root.mkdir()
    with FileLock(str(root / ".lock")):
        with pytest.raises(InputError, match="another `stylex.index` build"):
            build(root, paintings)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.pdf").write_text("x")
    with pytest.raises(ConfigError, match="not a stylex gallery"):
        build(tmp_path / "other", paintings)


def test_ranking_with_every_region_as_candidate_equals_exhaustive_matching(tmp_path, paintings):
    build(tmp_path / "g", paintings)
    gallery = open_gallery(tmp_path / "g")
    content = fake_analyse(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3)))
    keys = sorted(gallery.images)
    found = rank_candidates(content, gallery, k=gallery.ntotal)
    expected = assign(match_scores(describe(content), [describe(gallery.artifact(k)) for k in keys]))
    assert [(found.images[m.reference], m.style_region) for m in found.matches] == \
           [(keys[m.reference], m.style_region) for m in expected]
    assert [m.score for m in found.matches] == pytest.approx([m.score for m in expected])
    assert set(found.images) == {keys[m.reference] for m in expected}  # only the winners are loaded
    assert all(row == sorted(row, key=lambda r: -r.score) for row in found.ranked)
    nearest = rank_candidates(content, gallery, k=1)  # one candidate each: the semantic nearest neighbour
    assert [(nearest.images[m.reference], m.style_region) for m in nearest.matches] == \
           [(hits[0].image, hits[0].region) for hits in gallery.search(content["sem"], 1)]
    forced = rank_candidates(content, gallery, k=2, overrides={"0": ["p4", 1]})
    assert forced.images[forced.matches[0].reference] == "p4.png" and forced.matches[0].how == "override"
    with pytest.raises(ConfigError, match="not an image of the gallery"):
        rank_candidates(content, gallery, k=2, overrides={0: ["nope", 0]})


def test_datamodule_pairs_contents_with_a_gallery(tmp_path, image_folders, paintings):
    contents, styles = image_folders
    root = tmp_path / "galleries" / "oils"
    with pytest.raises(InputError, match="python -m stylex.index"):
        StyleDataModule(str(contents), None, pairing="gallery", gallery={"path": str(root)}).prepare_items()
    build(root, paintings)
    items = StyleDataModule(str(contents), None, pairing="gallery", gallery={"path": str(root)}).prepare_items()
    assert [i.name for i in items] == ["cat__oils", "dog__oils"] and items[0].styles == []
    write_image(paintings / "p9.png", (40, 32), seed=42)
    build(root, paintings)
    again = StyleDataModule(str(contents), None, pairing="gallery", gallery={"path": str(root)}).prepare_items()
    assert again[0].item_hash != items[0].item_hash  # a changed gallery redoes the outputs
    with pytest.raises(ConfigError, match="both set"):
        StyleDataModule(str(contents), str(styles), pairing="gallery", gallery={"path": str(root)})
    with pytest.raises(ConfigError, match="gallery.path=galleries/NAME"):
        StyleDataModule(str(contents), None, pairing="gallery", gallery={"path": None})


def test_configs_compose_for_runs_builds_and_benchmarks():
    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(Path(__file__).parents[3] / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=gallery", "gallery=index", "gallery.path=galleries/x"])
        assert cfg.method.gallery.path == "galleries/x" and cfg.data.gallery.path == "galleries/x"
        assert cfg.data.styles is None and cfg.data.pairing == "gallery"
        assert cfg.method.gallery.resolution == cfg.data.resolution and cfg.method.gallery.resize == "squash"
        plain = compose("run", overrides=["experiment=gallery"])
        assert "gallery" not in plain.method and plain.gallery.path is None
        index = compose("index", overrides=["debug=smoke", "experiment=gallery_lcm", "gallery.out=g"])
        assert index.tiny_models and index.gallery.index.type == "flat" and index.method.regions.n_init == 10
        bench = compose("bench", overrides=["task=gallery", "debug=smoke"])
        assert bench.task == "gallery" and bench.gallery_bench.k == 10


def test_search_benchmark_reports_latency_and_recall():
    from stylex.bench.gallery import search_benchmark
    from stylex.bench.report import format_table

    rows = search_benchmark([600], 16, 20, 10, [IndexSpec(), IndexSpec(type="ivfpq", m=4)],
                            points_per_cluster=50)
    assert [r["index"] for r in rows] == ["flat", "ivfpq"] and rows[0]["recall@10"] == 1.0
    assert all(r["batch_ms_per_query"] > 0 and r["single_query_ms"] > 0 for r in rows)
    assert "recall@10" in format_table(rows)
