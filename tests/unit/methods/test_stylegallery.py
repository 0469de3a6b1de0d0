import pytest
import torch

from stylex.methods.attention_distillation import AttentionDistillation
from stylex.methods.region_plan import RegionPlan, labels_at, layer_grid
from stylex.methods.stylegallery import StyleGallery, normalised_noise, tensor_digest
from stylex.matching import Match


def test_init_normalises_each_pixel_across_channels():
    x = torch.randn(2, 4, 3, 5)
    y = normalised_noise(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 3, 5), atol=1e-6)
    assert torch.allclose(y.std(1), torch.ones(2, 3, 5), atol=1e-5)


def test_layer_grids_and_nearest_labels():
    assert layer_grid(64 * 48, (64, 48)) == (64, 48) and layer_grid(32 * 24, (64, 48)) == (32, 24)
    labels = torch.zeros(8, 8, dtype=torch.long)
    labels[:, 4:] = 1
    assert labels_at(labels, (4, 4)).reshape(4, 4)[:, 2:].eq(1).all()
    assert labels_at(labels, (8, 8)).equal(labels.flatten())


def one_region_plan(content_hw, ref_hw, device):
    match = Match(0, 0, 0, 1.0, 1.0, 1.0, 1.0, False)
    return RegionPlan([match], [0], torch.zeros(content_hw, dtype=torch.long, device=device),
                      [torch.zeros(ref_hw, dtype=torch.long, device=device)])


def test_one_region_each_reduces_to_ad_with_the_same_temperature(tiny_backbone):
    """With a single region per image the regional loss is AD's loss (s = 1.5, weight λ_c)."""
    gallery = StyleGallery(temperature=1.5, content_weight=0.26, show_progress=False)
    gallery.use_backbone(tiny_backbone)
    g = torch.Generator().manual_seed(0)
    latent, content, style = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(3))
    t = 300
    style_rec = gallery.record_references([style[0]], t, ("k", "v"))
    content_q = {layer: rec["q"] for layer, rec in gallery.record(content, t, ("q",)).items()}
    sg = gallery.regional_loss(latent, t, {"style": style_rec, "content_q": content_q},
                               [one_region_plan((8, 8), (8, 8), latent.device)])
    ad = AttentionDistillation(style_temperature=1.5, content_weight=0.26, show_progress=False)
    ad.use_backbone(tiny_backbone)  # installs its own processors on the shared backbone
    ad_refs = {"style_kv": {layer: [(style_rec[0][layer]["k"], style_rec[0][layer]["v"])] for layer in ad.layers},
               "content_q": content_q}
    assert torch.allclose(sg, ad.ad_loss(latent, t, ad_refs), rtol=1e-5)


def test_flex_and_gather_give_the_same_regional_loss(tiny_backbone):
    """Two content regions matched to two references plus a fallback region: both backends agree."""
    g = torch.Generator().manual_seed(1)
    latent, content, *styles = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(4))
    labels = torch.zeros(8, 8, dtype=torch.long)
    labels[:, 3:], labels[5:, 5:] = 1, 2
    ref_labels = [torch.arange(64).reshape(8, 8) % 2, (torch.arange(64).reshape(8, 8) // 16) % 3]
    matches = [Match(0, 0, 1, 1.0, 1.0, 1.0, 1.0, False), Match(1, 1, 2, 1.0, 1.0, 1.0, 1.0, False),
               Match(2, 0, 0, 0.1, 0.1, 0.1, 0.1, True)]
    losses = []
    for backend in ("gather", "flex"):
        gallery = StyleGallery(regional_attention=backend, fallback_temperature=1.0, show_progress=False)
        gallery.use_backbone(tiny_backbone)
        t = 500
        refs = {"style": gallery.record_references([s[0] for s in styles[:2]], t, ("k", "v")),
                "content_q": {layer: rec["q"] for layer, rec in gallery.record(content, t, ("q",)).items()}}
        plan = RegionPlan(matches, [0, 1], labels, ref_labels)
        losses.append(gallery.regional_loss(latent, t, refs, [plan]))
    assert torch.allclose(losses[0], losses[1], rtol=1e-5)


def test_stage1_cache_reuses_unchanged_and_recomputes_changed_parameters(tiny_backbone, tmp_path):
    from stylex.backbones import load_dino_model

    def method(**regions):
        m = StyleGallery(regions={"depth_enabled": False, "n_init": 2, **regions}, cache_dir=str(tmp_path),
                         show_progress=False)
        m.dino = load_dino_model("x", tiny=True)
        m.use_backbone(tiny_backbone)
        return m

    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    first = method()
    a = first.analyse(image)
    assert first.cache.misses == 1 and set(a) >= {"latent", "x_T", "labels", "stat", "sem", "geo"}
    assert a["x_T"].shape == (4, 8, 8) and a["sem"].shape[0] == int(a["labels"].max()) + 1
    again = method()  # a new process would see the same: the entry is on disk
    b = again.analyse(image)
    assert again.cache.hits == 1 and again.cache.misses == 0 and torch.equal(a["labels"], b["labels"])
    changed = method(merge_threshold=0.5)
    changed.analyse(image)
    assert changed.cache.misses == 1
    assert tensor_digest(image) != tensor_digest(image.flip(-1))


def test_bad_settings_are_config_errors():
    from stylex.errors import ConfigError

    with pytest.raises(ConfigError, match="mask_mode"):
        StyleGallery(mask_mode="dense")
    with pytest.raises(ConfigError, match="method.regions"):
        StyleGallery(regions={"max_clusters": 4})
    with pytest.raises(ConfigError, match="regional_attention"):
        StyleGallery(regional_attention="dense")
    with pytest.raises(ConfigError, match="sparse target only"):
        StyleGallery(regional_attention="flex", mask_mode="zero")
    with pytest.raises(ConfigError, match="method.matching"):
        StyleGallery(matching={"weights": 1})


@pytest.mark.parametrize("init", ["inverted", "content"])
def test_optimisation_starts_from_the_normalised_x_T_with_one_adam_across_timesteps(tiny_backbone, monkeypatch, init):
    """METHODS.md 2.3: init = the inverted x_T normalised per pixel across its channels, (x − mean_c)/(std_c + 1e-8)
    (or the content latent with init=content); one Adam (lr, betas 0.9/0.999) whose state runs across the DDIM grid
    (3 steps: t = 667, 334, 1), iters_per_step iterations each. The loss is replaced by a known function of
    (latent, t) so the whole trajectory can be written out."""
    from tests.unit.methods.by_hand import adam

    g = torch.Generator().manual_seed(7)
    x_T, latent, ref = (torch.randn(4, 8, 8, generator=g) * 3 + 1 for _ in range(3))
    weights = torch.rand(1, 4, 8, 8, generator=g) + 0.5
    gallery = StyleGallery(num_steps=3, iters_per_step=2, lr=0.05, init=init, show_progress=False)
    gallery.use_backbone(tiny_backbone)
    seen = []
    monkeypatch.setattr(gallery, "regional_loss", lambda x, t, refs, plans: (
        seen.append((t, x.detach().clone())), ((x - t / 1000) ** 2 * weights).flatten(1).sum(1))[1])
    contents = [{"latent": latent, "x_T": x_T}]
    out, curves, timesteps = gallery.optimise(contents, [{"latent": ref}], [one_region_plan((8, 8), (8, 8), "cpu")],
                                              "test", False)
    x = x_T[None]
    start = (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-8) if init == "inverted" else latent[None]
    steps = [667, 667, 334, 334, 1, 1]
    assert timesteps == [667, 334, 1] and [t for t, _ in seen] == steps and curves.shape == (1, 6)
    assert torch.allclose(seen[0][1], start, atol=1e-6)
    expected = adam(start, lambda x, t: 2 * (x - t / 1000) * weights, steps, lr=0.05)
    assert torch.allclose(out, expected, atol=1e-5)


def changed(value, name):
    """Another valid value for a stage-1 or matching setting."""
    other = {"feature_block": "up_blocks.1", "depth_resize": "nearest", "stat": "official", "dino_mode": "official",
             "geometry": "min_enclosing", "silhouette_sample_size": 100, "assignment": "hungarian", "min_score": 0.3}
    if name in other:
        return other[name]
    if isinstance(value, bool):
        return not value
    return value + 1 if isinstance(value, int) else value * 0.5 + 0.01


def test_stage1_cache_key_covers_every_stage1_setting_and_the_backbone_dtype(tiny_backbone, monkeypatch):
    """METHODS.md 2.1: the key = the preprocessed pixels + model ids + the backbone's dtype + every stage-1
    parameter (regions, the descriptors' settings, which pixels DINOv2/depth see); stage-3 settings do not enter."""
    from dataclasses import fields

    from stylex.methods.stylegallery import MatchingParams, STAGE1_MATCHING
    from stylex.regions.extract import RegionParams

    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))

    def parts(**kwargs):
        m = StyleGallery(show_progress=False, **kwargs)
        m.use_backbone(tiny_backbone)
        seen = []
        monkeypatch.setattr(m.cache, "get_or_compute", lambda kind, p, compute: seen.append((kind, p)) or {})
        m.analyse(image)
        ((kind, p),) = seen
        return p

    base = parts()
    for f in fields(RegionParams):
        assert parts(regions={f.name: changed(f.default, f.name)}) != base, f"method.regions.{f.name}"
    stage1 = {"stat", "stat_layers", "stat_heads", "dino_mode", "dino_resize", "dino_crop", "geometry", "min_overlap"}
    assert set(STAGE1_MATCHING) == stage1  # the descriptors' settings, listed here by hand
    for f in fields(MatchingParams):
        if f.name == "overrides":
            continue
        key_changes = parts(matching={f.name: changed(f.default, f.name)}) != base
        assert key_changes == (f.name in stage1), f"method.matching.{f.name}"
    assert parts(dino_depth_input="original") != base
    assert parts(lr=0.5, temperature=1.0, mask_mode="zero", loss_norm="region", content_weight=0.1) == base
    monkeypatch.setattr(tiny_backbone, "dtype", torch.bfloat16)  # a CPU fp32 entry is not reused by a bf16 run
    assert parts() != base


def test_dino_and_depth_see_the_original_files_with_dino_depth_input_original(tiny_backbone, tmp_path, monkeypatch):
    """dino_depth_input=original (official): DINOv2 and the depth model get each input file's own pixels (with the
    configured sizes), while the regions come from the working image; working (default): the working image."""
    import numpy as np
    from PIL import Image

    import stylex.backbones.depth as depth_module
    import stylex.backbones.dino as dino_module
    from stylex.backbones.depth import tiny_depth
    from stylex.backbones.dino import tiny_dino
    from stylex.data.datamodule import ImageRef, Item
    from stylex.methods.base import group_items
    from tests.conftest import write_image

    files = {"cat": write_image(tmp_path / "cat.png", (70, 50), seed=1),
             "wave": write_image(tmp_path / "wave.png", (40, 60), seed=2)}
    pixels = {k: torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)
              for k, p in files.items()}
    g = torch.Generator().manual_seed(3)
    working = {"cat": torch.rand(3, 64, 64, generator=g), "wave": torch.rand(3, 64, 64, generator=g)}
    item = Item("cat__wave", ImageRef(files["cat"], "cat", "c"), [ImageRef(files["wave"], "wave", "w")], "h", 0,
                working["cat"], [working["wave"]])
    (group,) = group_items([item])
    seen = {"dino": [], "depth": []}
    tokens, depth = dino_module.patch_tokens, depth_module.estimate_depth
    monkeypatch.setattr(dino_module, "patch_tokens", lambda model, images, mode, **kw: (
        seen["dino"].append((images[0], mode, kw)), tokens(model, images, mode, **kw))[1])
    monkeypatch.setattr(depth_module, "estimate_depth", lambda model, images, size, **kw: (
        seen["depth"].append((images[0], kw)), depth(model, images, size, **kw))[1])
    for side in ("original", "working"):
        seen["dino"].clear(), seen["depth"].clear()
        m = StyleGallery(dino_depth_input=side, show_progress=False,
                         regions={"n_init": 1, "max_k": 3, "inversion_steps": 2, "depth_input_size": 28,
                                  "depth_resize": "nearest"},
                         matching={"dino_mode": "official", "dino_resize": 70, "dino_crop": 56})
        m.dino, m.depth = tiny_dino(), tiny_depth()
        m.use_backbone(tiny_backbone)
        m.dfcc_regions(group)
        expected = pixels if side == "original" else working
        assert [x.shape for x, _, _ in seen["dino"]] == [expected["cat"].shape, expected["wave"].shape]
        for (x, mode, kw), name in zip(seen["dino"], ("cat", "wave")):
            assert torch.equal(x, expected[name]) and mode == "official"
            assert kw == {"official_resize": 70, "official_crop": 56}
        assert len(seen["depth"]) == 2  # the content, then the reference
        for (x, kw), name in zip(seen["depth"], ("cat", "wave")):
            assert torch.equal(x, expected[name]) and kw == {"input_size": 28, "reduce": "nearest"}


def test_overrides_are_found_by_the_whole_content_name_even_with_double_underscores(tiny_backbone):
    """Output names join content and style with '__'; the overrides of a content named `a__b` are its own, not
    those of a content `a` (the item name `a__b__c` must not be split to find them)."""
    from types import SimpleNamespace

    def analysed(stat):  # two regions whose statistics match the reference's in order
        return {"stat": stat, "sem": torch.zeros(2, 4), "geo": torch.zeros(2, 3),
                "labels": torch.tensor([[0, 1], [0, 1]])}

    stat = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    item = SimpleNamespace(name="a__b__c", content=SimpleNamespace(name="a__b"), styles=[SimpleNamespace(name="c")])
    group = SimpleNamespace(items=[item], ref_index=[[0]])
    chosen = {}
    for key in ("a__b", "a"):
        gallery = StyleGallery(matching={"w_stat": 1.0, "w_sem": 0.0, "w_geo": 0.0, "overrides": {key: {0: ["c", 1]}}},
                               show_progress=False)
        gallery.use_backbone(tiny_backbone)
        _, _, (plan,) = gallery.match_regions(group, [analysed(stat)], [analysed(stat)], None)
        chosen[key] = [(m.style_region, m.how) for m in plan.matches if m.content_region == 0]
    assert chosen["a__b"] == [(1, "override")]
    assert chosen["a"] == [(0, "best")]
