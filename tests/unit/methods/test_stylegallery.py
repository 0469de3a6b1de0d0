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
