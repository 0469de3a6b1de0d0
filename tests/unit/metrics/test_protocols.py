"""Evaluation protocols against independent hand computations: the FID style-set duplication, ArtFID's identity
with the FID column, the official CFSD and Gram formulas, the processors' resize-and-crop, the configs as Hydra
composes them, and the choice of protocol per method."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from stylex.data.images import to_tensor
from stylex.errors import ConfigError
from stylex.metrics.base import PairBatch
from stylex.metrics.factory import build_metrics
from stylex.metrics.fid import FID
from stylex.metrics.networks import VGG19
from stylex.metrics.pairing import pair_outputs
from stylex.metrics.preprocess import View, dino_input, load_view
from stylex.metrics.protocol import Protocol, protocol_for
from stylex.metrics.report import evaluate_pairs
from stylex.metrics.vgg_metrics import CFSD, GramLoss, StyleScore

REPO = Path(__file__).parents[3]
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def protocol_cfgs() -> dict:  # type: ignore[type-arg]
    """The protocol configs as `python -m stylex.evaluate` composes them (protocol=auto holds all of them)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from stylex.data.samples import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        auto = compose("evaluate", overrides=["outputs=x"]).protocol
        ham = compose("evaluate", overrides=["outputs=x", "protocol=ham"]).protocol
    return {"auto": OmegaConf.to_container(auto), "ham": OmegaConf.to_container(ham)}


@pytest.fixture(scope="module")
def lively_vgg() -> VGG19:
    """The tiny VGG19 with variance-preserving weights: its deep features still differ from image to image
    (the default tiny initialisation fades to nearly constant pool5 features)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vgg = VGG19(div=16).eval().requires_grad_(False)
        for m in vgg.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                torch.nn.init.zeros_(m.bias)
    return vgg


def _protocol(cfgs: dict, name: str) -> Protocol:  # type: ignore[type-arg]
    return Protocol.from_config(cfgs["auto"]["by_name"][name])


def _frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# ---------------------------------------------------------------------------------------------- FID style set

def test_one_style_copy_per_output_rescales_the_style_covariance() -> None:
    """n styles, each used by k outputs: per_output copies keep the mean and scale the style covariance by
    k(n-1)/(kn-1) against counting each style once."""
    rng = np.random.default_rng(0)
    n, k, d = 5, 3, 3
    styles = rng.normal(size=(n, d))
    fakes = rng.normal(1.0, 2.0, size=(n * k, d))
    ids = [f"s{i}" for i in range(n)] * k  # style i used by outputs i, i+n, i+2n
    style_rows = np.concatenate([styles] * k)
    as_images = lambda a: torch.tensor(a).view(len(a), d, 1, 1)  # noqa: E731 - "images" that are features

    results = {}
    for copies in ("once", "per_output"):
        fid = FID(lambda x: x.flatten(1), style_copies=copies)
        for start in range(0, n * k, 4):  # batches that split the repeats
            sl = slice(start, start + 4)
            fid.update(PairBatch(stylized=as_images(fakes[sl]), style=as_images(style_rows[sl]), style_ids=ids[sl]))
        results[copies] = fid.compute()

    mu_f, cov_f = fakes.mean(0), np.cov(fakes, rowvar=False)
    mu_s, cov_once = styles.mean(0), np.cov(styles, rowvar=False)
    scale = k * (n - 1) / (k * n - 1)
    assert results["once"] == pytest.approx(_frechet(mu_f, cov_f, mu_s, cov_once), rel=1e-9)
    assert results["per_output"] == pytest.approx(_frechet(mu_f, cov_f, mu_s, scale * cov_once), rel=1e-9)
    assert results["per_output"] != pytest.approx(results["once"], rel=1e-3)


def test_per_output_style_features_are_computed_once() -> None:
    calls: list[int] = []

    def net(x: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return x.flatten(1)

    fid = FID(net, style_copies="per_output")
    x = torch.rand(4, 2, 1, 1, generator=torch.Generator().manual_seed(0))
    fid.update(PairBatch(stylized=x, style=x[[0, 0, 1, 1]], style_ids=["a", "a", "b", "b"]))
    fid.update(PairBatch(stylized=x, style=x[[1, 0, 1, 0]], style_ids=["b", "a", "b", "a"]))
    assert sum(len(r) for r in fid.real) == 8  # one copy per output
    assert calls == [4, 4, 4]  # fake, the first batch's styles; the second batch's styles come from the cache


# ---------------------------------------------------------------------------------------------- ArtFID identity

def _noise(path: Path, size: tuple[int, int], seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    Image.fromarray((torch.rand(size[1], size[0], 3, generator=g) * 255).byte().numpy()).save(path)
    return path


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    c, s, o = tmp_path / "content", tmp_path / "style", tmp_path / "out"
    for i, name in enumerate(("c1", "c2", "c3")):
        _noise(c / f"{name}.png", (96, 80), i)
    for i, name in enumerate(("s1", "s2")):
        _noise(s / f"{name}.png", (80, 96), 10 + i)
    k = 20
    for cn in ("c1", "c2", "c3"):
        for sn in ("s1", "s2"):
            _noise(o / f"{cn}__{sn}.png", (96, 80), k)
            k += 1
    return o, c, s


def _channel_stats(x: torch.Tensor) -> torch.Tensor:
    """A feature network with real spread on noise images (the tiny Inceptions give nearly constant features)."""
    return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), (x ** 2).mean(dim=(2, 3))], dim=1)


def _evaluate(protocol: Protocol, o: Path, c: Path, s: Path) -> tuple[dict, dict]:  # type: ignore[type-arg]
    protocol = protocol.smoke(96)
    names = ("fid", "lpips", "artfid")
    metrics = build_metrics(names, smoke=True, protocol=protocol)
    metrics["fid"].net = _channel_stats  # type: ignore[attr-defined]  # the FID column's network only
    views = {n: protocol.view(n) for n in names}
    return evaluate_pairs(pair_outputs(o, c, s), metrics, batch_size=4, views=views)[1], metrics


def test_artfid_is_built_from_the_fid_column_under_stylegallery(protocol_cfgs: dict, folders: tuple) -> None:
    summary, metrics = _evaluate(_protocol(protocol_cfgs, "stylegallery"), *folders)
    assert summary["fid"] > 1e-6  # a real distance, not round-off (1e-15)
    assert summary["artfid"] == pytest.approx((1 + summary["lpips"]) * (1 + summary["fid"]), rel=1e-12)
    assert metrics["fid"].style_copies == "per_output"  # type: ignore[attr-defined]
    # stylex's own protocol: the FID column is pytorch-fid's Inception, another network than ArtFID's
    own, own_metrics = _evaluate(_protocol(protocol_cfgs, "stylex"), *folders)
    assert own["artfid"] == pytest.approx((1 + own["lpips"]) * (1 + own["artfid.fid"]), rel=1e-12)
    assert abs(own["fid"] - own["artfid.fid"]) > 1e-6
    assert own_metrics["artfid"].fid.net.variant == "torchvision"  # type: ignore[attr-defined]  # art_inception


# ---------------------------------------------------------------------------------------------- official CFSD

def _relu3_1(vgg, x: torch.Tensor, normalize: bool = True) -> torch.Tensor:  # type: ignore[no-untyped-def]
    h = (x - IMAGENET_MEAN) / IMAGENET_STD if normalize else x
    with torch.no_grad():
        for layer in list(vgg.features)[:12]:  # torchvision vgg19.features[:12]: up to relu3_1 (index 11)
            h = layer(h)
    return h


def test_official_cfsd_is_styleids_patch_similarity_kl(lively_vgg: VGG19) -> None:
    """StyleID's PatchSimi on one image pair: rows = positions, F/c, log-softmax of the stylized image's
    similarities against the softmax of the content's, KL summed over every row (batchmean over a batch of 1)."""
    vgg = lively_vgg
    g = torch.Generator().manual_seed(3)
    stylized, content = torch.rand(1, 3, 40, 56, generator=g), torch.rand(1, 3, 40, 56, generator=g)

    def rows(x: torch.Tensor) -> torch.Tensor:
        f = _relu3_1(vgg, x).double()[0]
        c = f.shape[0]
        flat = f.reshape(c, -1).T / c  # [h*w, c]
        return flat @ flat.T

    log_q = torch.log_softmax(rows(stylized), dim=-1)
    p = torch.softmax(rows(content), dim=-1)
    want = float((p * (p.log() - log_q)).sum())
    assert want > 1e-3
    got = CFSD(vgg, mode="official").update(PairBatch(stylized=stylized, content=content))
    assert float(got[0]) == pytest.approx(want, rel=1e-9)
    assert float(CFSD(vgg).update(PairBatch(stylized=stylized, content=content))[0]) != pytest.approx(want, rel=1e-3)


# ---------------------------------------------------------------------------------------------- official Gram

def test_official_gram_is_grama_simi_over_the_style_family(lively_vgg: VGG19) -> None:
    """Grama_simi.py: whole 32x32 tiles (block_size here) of the stylized image and of every family image, each
    through all of VGG19's features without normalisation, G = F·Fᵀ/(c·h·w), each stylized tile's L1 distance to
    its nearest family tile, averaged over the stylized tiles."""
    vgg = lively_vgg
    g = torch.Generator().manual_seed(4)
    stylized = torch.rand(1, 3, 70, 100, generator=g)  # 2x3 whole tiles; the rest is dropped
    family = [torch.rand(3, 64, 40, generator=g), torch.rand(3, 33, 96, generator=g)]  # 2x1 and 1x3 whole tiles

    def tiles(img: torch.Tensor) -> list[torch.Tensor]:
        h, w = img.shape[-2:]
        return [img[..., i:i + 32, j:j + 32] for i in range(0, h, 32) for j in range(0, w, 32)
                if i + 32 <= h and j + 32 <= w]

    def gram_of(tile: torch.Tensor) -> torch.Tensor:
        h = tile.reshape(1, 3, 32, 32)
        with torch.no_grad():
            for layer in vgg.features:
                h = layer(h)
        f = h.double().reshape(h.shape[1], -1)
        return f @ f.T / f.numel()

    style_grams = [gram_of(t) for img in family for t in tiles(img)]
    assert len(style_grams) == 5
    mins = [min(float((gram_of(t) - sg).abs().sum()) for sg in style_grams) for t in tiles(stylized[0])]
    want = sum(mins) / len(mins)
    assert want > 1e-3
    metric = GramLoss(vgg, mode="official", block_size=32, against="family")
    got = metric.update(PairBatch(stylized=stylized, families=[family], family_ids=["fam"]))
    assert float(got[0]) == pytest.approx(want, rel=1e-6)
    paired = GramLoss(vgg, mode="official", block_size=32).update(
        PairBatch(stylized=stylized, style=family[0].unsqueeze(0)))
    assert float(paired[0]) > want  # fewer candidate tiles: the nearest one is no nearer


def test_style_score_against_the_family_matches_blocks_of_every_image(vgg: VGG19, images: torch.Tensor) -> None:
    metric = StyleScore(vgg, grid=2, against="family")
    other = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(9))
    same = metric.update(PairBatch(stylized=images[:1], families=[[other, images[0]]], family_ids=["f"]))
    assert float(same[0]) == pytest.approx(1.0, abs=1e-9)  # its own blocks are in the family
    alone = metric.update(PairBatch(stylized=images[:1], families=[[other]], family_ids=["g"]))
    assert float(alone[0]) < 1.0


# ---------------------------------------------------------------------------------------------- views

def test_processor_view_is_a_shortest_side_resize_then_a_centre_crop(tmp_path: Path) -> None:
    path = _noise(tmp_path / "x.png", (300, 400), 5)  # width 300, height 400
    view = View("short_side", 256, "bicubic", crop=224)
    hand = Image.open(path).convert("RGB").resize((256, int(256 * 400 / 300)), Image.Resampling.BICUBIC)
    assert hand.size == (256, 341)
    left, top = (256 - 224) // 2, (341 - 224) // 2
    want = to_tensor(hand.crop((left, top, left + 224, top + 224)))
    assert torch.equal(load_view(path, view), want)


def test_processor_view_equals_the_dinov2_image_processor(tmp_path: Path) -> None:
    """facebook/dinov2-base's preprocessor_config.json: shortest edge 256, bicubic, centre crop 224, ImageNet."""
    from transformers import BitImageProcessor

    path = _noise(tmp_path / "x.png", (300, 410), 6)
    processor = BitImageProcessor(size={"shortest_edge": 256}, resample=Image.Resampling.BICUBIC,
                                  crop_size={"height": 224, "width": 224}, image_mean=[0.485, 0.456, 0.406],
                                  image_std=[0.229, 0.224, 0.225])
    want = processor(Image.open(path).convert("RGB"), return_tensors="pt")["pixel_values"]
    got = dino_input(load_view(path, View("short_side", 256, "bicubic", crop=224)).unsqueeze(0))
    assert torch.allclose(got, want, atol=1e-5)


def test_views_resize_rules(tmp_path: Path) -> None:
    path = _noise(tmp_path / "x.png", (120, 90), 7)
    assert load_view(path, View("short_side", 64, "bilinear")).shape == (3, 64, int(64 * 120 / 90))
    assert load_view(path, View("squash", 64)).shape == (3, 64, 64)
    assert load_view(path, View("none", None)).shape == (3, 90, 120)
    assert load_view(path, View("none", None), like=(40, 50)).shape == (3, 40, 50)  # paired with another shape
    assert View("none", None).smoke(32) == View("short_side", 32)
    with pytest.raises(ConfigError, match="crop=300"):
        View("short_side", 256, crop=300)
    with pytest.raises(ConfigError, match="resize='keep'"):
        View("keep", 256)


# ---------------------------------------------------------------------------------------------- the configs

def test_protocol_configs_as_composed(protocol_cfgs: dict) -> None:
    sg, ham, own = (_protocol(protocol_cfgs, n) for n in ("stylegallery", "ham", "stylex"))
    assert (sg.fid_network, sg.style_copies) == ("art_inception", "per_output")
    assert dict(sg.options["gram"]) == {"mode": "official", "block_size": 128, "against": "family"}
    assert sg.options["cfsd"]["mode"] == "official" and sg.view("gram") == View("none", 512, "lanczos")
    assert sg.view("lpips") == sg.view("artfid") == sg.view("fid") == View("short_side", 512, "bilinear")
    assert sg.tables[0].columns == ("style_score", "gram", "fid", "lpips", "artfid")
    published = {r["method"]: r for r in sg.tables[0].published}
    assert published["StyleGallery"]["gram"] == 13.519 and published["StyleID"]["artfid"] == 28.973
    for row in sg.tables[0].published:  # the published FID column is the one inside ArtFID
        assert (1 + row["lpips"]) * (1 + row["fid"]) == pytest.approx(row["artfid"], rel=2e-4)
    assert (ham.fid_network, ham.style_copies, ham.options["cfsd"]["mode"]) == ("art_inception", "per_output",
                                                                                 "official")
    assert ham.view("dino") == View("short_side", 256, "bicubic", crop=224)
    assert ham.view("clip_i") == View("short_side", 224, "bicubic", crop=224)
    assert ham.tables[0].columns == ("artfid", "lpips", "dino", "clip_i", "clip_t")
    assert {r["method"]: r["dino"] for r in ham.tables[0].published}["HAM"] == 0.728
    assert (own.fid_network, own.style_copies, own.options["cfsd"]["mode"]) == ("inception", "once", "default")
    assert own.view("dino") == View("squash", 512, "lanczos") and not any(t.published for t in own.tables)
    assert Protocol.from_config(protocol_cfgs["ham"]) == ham  # protocol=ham is the same protocol


def test_auto_picks_the_protocol_of_the_paper_a_method_reproduces(protocol_cfgs: dict) -> None:
    auto = protocol_cfgs["auto"]
    assert auto["name"] == "auto"
    picked = {m: protocol_for(auto, m).name for m in ("stylegallery", "ad", "styleid", "ham", "HAM", "mine", None)}
    assert picked == {"stylegallery": "stylegallery", "ad": "stylegallery", "styleid": "stylegallery",
                      "ham": "ham", "HAM": "ham", "mine": "stylegallery", None: "stylegallery"}
    assert protocol_for(protocol_cfgs["ham"], "stylegallery").name == "ham"  # an explicit protocol wins
    broken = {**auto, "by_method": {"ad": "nope"}}
    with pytest.raises(ConfigError, match="chose `nope`.*by_name"):
        protocol_for(broken, "ad")


def test_bad_protocol_configs_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"protocol `p`: fid.network='pytorch'"):
        Protocol.from_config({"name": "p", "fid": {"network": "pytorch"}})
    with pytest.raises(ConfigError, match=r"unknown keys \['colums'\]"):
        Protocol.from_config({"name": "p", "colums": []})
    with pytest.raises(ConfigError, match="interpolation='cubic'"):
        Protocol.from_config({"name": "p", "preprocess": {"dino": {"interpolation": "cubic"}}})
    with pytest.raises(ConfigError, match="options or views for unknown metrics"):
        build_metrics(["lpips"], smoke=True, protocol=Protocol.from_config({"name": "p", "options": {"kid": {}}}))


# ---------------------------------------------------------------------------------------------- the evaluation loop

def test_evaluate_pairs_feeds_each_metric_its_view_and_family(lively_vgg: VGG19, tmp_path: Path) -> None:
    """Outputs of two families and a family-wide output, evaluated family by family: every row gets the values of
    its own pair, computed on the files as each metric's view loads them."""
    c, styles, out = tmp_path / "content", tmp_path / "style", tmp_path / "out"
    for i, name in enumerate(("a", "b")):
        _noise(c / f"{name}.png", (64, 64), i)
    fam = {"F": [_noise(styles / "F" / f"f{i}.png", (64, 40 + 8 * i), 10 + i) for i in range(2)],
           "G": [_noise(styles / "G" / "g0.png", (48, 64), 20)]}
    k = 30
    for name in ("a__f1", "b__g0", "a__g0", "b__F"):
        _noise(out / f"{name}.png", (64, 64), k)
        k += 1
    pairs = pair_outputs(out, c, styles)
    gram = GramLoss(lively_vgg, mode="official", block_size=32, against="family")
    cfsd = CFSD(lively_vgg, mode="official")
    views = {"gram": View("none", None), "cfsd": View("squash", 48, "bilinear")}
    rows, summary = evaluate_pairs(pairs, {"gram": gram, "cfsd": cfsd}, batch_size=2, views=views)
    assert [(r["content"], r["style"]) for r in rows] == [("a", "f1"), ("a", "g0"), ("b", "F"), ("b", "g0")]
    for pair, row in zip(pairs, rows):
        family = fam["F"] if pair.style_stem in ("f1", "F") else fam["G"]
        want_gram = GramLoss(lively_vgg, mode="official", block_size=32, against="family").update(PairBatch(
            stylized=load_view(pair.output, View("none", None)).unsqueeze(0),
            families=[[load_view(f, View("none", None)) for f in family]], family_ids=["x"]))
        assert row["gram"] == pytest.approx(float(want_gram[0]), rel=1e-5), pair.name  # float32 batches
        want_cfsd = CFSD(lively_vgg, mode="official").update(PairBatch(
            stylized=load_view(pair.output, views["cfsd"]).unsqueeze(0),
            content=load_view(pair.content, views["cfsd"]).unsqueeze(0)))
        assert row["cfsd"] == pytest.approx(float(want_cfsd[0]), rel=1e-5), pair.name
    assert summary["gram"] == pytest.approx(sum(r["gram"] for r in rows) / 4)


def test_a_familys_files_are_read_for_its_first_output_only(lively_vgg: VGG19, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Metrics keep a family's features, so its files are asked for once, not once per output."""
    from stylex.metrics import report

    c, styles, out = tmp_path / "content", tmp_path / "style", tmp_path / "out"
    family = [_noise(styles / "F" / f"f{i}.png", (64, 64), 10 + i) for i in range(3)]
    for i, name in enumerate(("a", "b", "d")):
        _noise(c / f"{name}.png", (64, 64), i)
        _noise(out / f"{name}__F.png", (64, 64), 30 + i)
    asked: list[Path] = []
    load = report._ImageCache.__call__

    def counting(self, path, view, like=None):  # type: ignore[no-untyped-def]
        asked.append(path)
        return load(self, path, view, like)

    monkeypatch.setattr(report._ImageCache, "__call__", counting)
    gram = GramLoss(lively_vgg, mode="official", block_size=32, against="family")
    rows, _ = evaluate_pairs(pair_outputs(out, c, styles), {"gram": gram}, batch_size=2)
    assert len(rows) == 3 and all(r["gram"] > 0 for r in rows)
    assert sorted(p for p in asked if p in family) == sorted(family)
