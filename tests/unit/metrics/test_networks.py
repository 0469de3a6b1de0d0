"""The feature networks: published state-dict names and shapes, tiny twins, and loading weights by name."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from stylex.errors import WeightsError
from stylex.metrics import networks as nets

# ---- the published names and shapes, transcribed from torchvision / lpips / pytorch-fid -----------------

VGG19_CONVS = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256),
               (14, 256, 256), (16, 256, 256), (19, 512, 256), (21, 512, 512), (23, 512, 512), (25, 512, 512),
               (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512)]
ALEXNET_CONVS = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3),
                 10: (256, 256, 3, 3)}


def _inception_convs() -> dict[str, tuple[int, int, int, int]]:
    convs = {"Conv2d_1a_3x3": (32, 3, 3, 3), "Conv2d_2a_3x3": (32, 32, 3, 3), "Conv2d_2b_3x3": (64, 32, 3, 3),
             "Conv2d_3b_1x1": (80, 64, 1, 1), "Conv2d_4a_3x3": (192, 80, 3, 3)}
    for name, cin, pf in (("Mixed_5b", 192, 32), ("Mixed_5c", 256, 64), ("Mixed_5d", 288, 64)):
        convs |= {f"{name}.branch1x1": (64, cin, 1, 1), f"{name}.branch5x5_1": (48, cin, 1, 1),
                  f"{name}.branch5x5_2": (64, 48, 5, 5), f"{name}.branch3x3dbl_1": (64, cin, 1, 1),
                  f"{name}.branch3x3dbl_2": (96, 64, 3, 3), f"{name}.branch3x3dbl_3": (96, 96, 3, 3),
                  f"{name}.branch_pool": (pf, cin, 1, 1)}
    convs |= {"Mixed_6a.branch3x3": (384, 288, 3, 3), "Mixed_6a.branch3x3dbl_1": (64, 288, 1, 1),
              "Mixed_6a.branch3x3dbl_2": (96, 64, 3, 3), "Mixed_6a.branch3x3dbl_3": (96, 96, 3, 3)}
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        convs |= {f"{name}.branch1x1": (192, 768, 1, 1), f"{name}.branch7x7_1": (c7, 768, 1, 1),
                  f"{name}.branch7x7_2": (c7, c7, 1, 7), f"{name}.branch7x7_3": (192, c7, 7, 1),
                  f"{name}.branch7x7dbl_1": (c7, 768, 1, 1), f"{name}.branch7x7dbl_2": (c7, c7, 7, 1),
                  f"{name}.branch7x7dbl_3": (c7, c7, 1, 7), f"{name}.branch7x7dbl_4": (c7, c7, 7, 1),
                  f"{name}.branch7x7dbl_5": (192, c7, 1, 7), f"{name}.branch_pool": (192, 768, 1, 1)}
    convs |= {"Mixed_7a.branch3x3_1": (192, 768, 1, 1), "Mixed_7a.branch3x3_2": (320, 192, 3, 3),
              "Mixed_7a.branch7x7x3_1": (192, 768, 1, 1), "Mixed_7a.branch7x7x3_2": (192, 192, 1, 7),
              "Mixed_7a.branch7x7x3_3": (192, 192, 7, 1), "Mixed_7a.branch7x7x3_4": (192, 192, 3, 3)}
    for name, cin in (("Mixed_7b", 1280), ("Mixed_7c", 2048)):
        convs |= {f"{name}.branch1x1": (320, cin, 1, 1), f"{name}.branch3x3_1": (384, cin, 1, 1),
                  f"{name}.branch3x3_2a": (384, 384, 1, 3), f"{name}.branch3x3_2b": (384, 384, 3, 1),
                  f"{name}.branch3x3dbl_1": (448, cin, 1, 1), f"{name}.branch3x3dbl_2": (384, 448, 3, 3),
                  f"{name}.branch3x3dbl_3a": (384, 384, 1, 3), f"{name}.branch3x3dbl_3b": (384, 384, 3, 1),
                  f"{name}.branch_pool": (192, cin, 1, 1)}
    return convs


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_vgg19_state_dict_matches_torchvision() -> None:
    with torch.device("meta"):
        net = nets.VGG19()
    expected = {}
    for i, cout, cin in VGG19_CONVS:
        expected[f"features.{i}.weight"] = (cout, cin, 3, 3)
        expected[f"features.{i}.bias"] = (cout,)
    assert _shapes(net) == expected
    assert sum(p.numel() for p in net.parameters()) == 20_024_384  # torchvision vgg19 minus its classifier
    assert [nets.VGG19_LAYERS[t] for t in nets.STYLE_LAYERS] == [1, 6, 11, 20, 29]


def test_alexnet_and_lpips_heads_match_published_names() -> None:
    with torch.device("meta"):
        net = nets.LPIPSNet()
    expected = {}
    for i, shape in ALEXNET_CONVS.items():
        expected[f"net.features.{i}.weight"] = shape
        expected[f"net.features.{i}.bias"] = (shape[0],)
    for i, c in enumerate((64, 192, 384, 256, 256)):
        expected[f"lin{i}.model.1.weight"] = (1, c, 1, 1)
    assert _shapes(net) == expected
    assert sum(p.numel() for p in net.net.parameters()) == 2_469_696  # torchvision alexnet features


@pytest.mark.parametrize("variant", ["fid", "torchvision"])
def test_inception_state_dict_matches_pt_inception(variant: str) -> None:
    with torch.device("meta"):
        net = nets.InceptionV3(variant=variant)
    expected = {}
    for name, shape in _inception_convs().items():
        expected[f"{name}.conv.weight"] = shape
        for stat in ("weight", "bias", "running_mean", "running_var"):
            expected[f"{name}.bn.{stat}"] = (shape[0],)
        expected[f"{name}.bn.num_batches_tracked"] = ()
    assert _shapes(net) == expected
    assert sum(p.numel() for p in net.parameters()) == 21_785_568  # torchvision inception_v3 minus fc and aux
    assert net.feature_dim == 2048
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_tiny_networks_keep_the_structure() -> None:
    with torch.device("meta"):
        full = {"vgg": nets.VGG19(), "lpips": nets.LPIPSNet(), "inception": nets.InceptionV3()}
    tiny = {"vgg": nets.VGG19.tiny(), "lpips": nets.LPIPSNet.tiny(), "inception": nets.InceptionV3.tiny()}
    for key in full:
        assert list(full[key].state_dict()) == list(tiny[key].state_dict()), key
    assert torch.equal(nets.VGG19.tiny(3).features[0].weight, nets.VGG19.tiny(3).features[0].weight)
    assert not torch.equal(nets.VGG19.tiny(3).features[0].weight, nets.VGG19.tiny(4).features[0].weight)


def test_vgg_taps_and_shapes(images: torch.Tensor) -> None:
    feats = nets.VGG19.tiny()(images, ["relu1_1", "relu3_1", "pool5"])
    assert feats["relu1_1"].shape == (4, 4, 64, 64)
    assert feats["relu3_1"].shape == (4, 16, 16, 16)
    assert feats["pool5"].shape == (4, 32, 2, 2)
    assert (feats["relu3_1"] >= 0).all()


def test_inception_variants_share_weights_but_not_pooling(images: torch.Tensor) -> None:
    fid = nets.InceptionV3.tiny(seed=0, variant="fid", input_size=75)
    tv = nets.InceptionV3.tiny(seed=1, variant="torchvision", input_size=75)
    tv.load_state_dict(fid.state_dict())
    with torch.no_grad():
        a, b = fid(images), tv(images)
    assert a.shape == b.shape == (4, fid.feature_dim)
    assert not torch.allclose(a, b)  # TF-style pools (padding not counted, max pool in Mixed_7c) differ


# ---- loading by name -------------------------------------------------------------------------------

def test_vgg_weights_round_trip_through_pth(tmp_path: Path) -> None:
    src = nets.VGG19.tiny(seed=1)
    state = dict(src.state_dict()) | {"classifier.0.weight": torch.zeros(2, 2)}  # as torchvision's file
    torch.save(state, tmp_path / "vgg19.pth")
    dst = nets.load_vgg19_weights(nets.VGG19.tiny(seed=2), tmp_path / "vgg19.pth")
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k])


def test_lpips_weights_round_trip_with_either_naming(tmp_path: Path) -> None:
    src = nets.LPIPSNet.tiny(seed=1)
    torch.save({"features." + k[len("net.features."):]: v for k, v in src.state_dict().items() if k.startswith("net.")},
               tmp_path / "alexnet.pth")
    heads = {k.replace("lin", "lins.", 1): v for k, v in src.state_dict().items() if k.startswith("lin")}
    torch.save(heads, tmp_path / "alex.pth")  # newer lpips dumps name the heads lins.{i}
    dst = nets.LPIPSNet.tiny(seed=2)
    nets.load_alexnet_weights(dst, tmp_path / "alexnet.pth")
    nets.load_lpips_weights(dst, tmp_path / "alex.pth")
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    assert torch.allclose(src(x, y), dst(x, y))


def test_inception_weights_round_trip_through_safetensors(tmp_path: Path) -> None:
    src = nets.InceptionV3.tiny(seed=1, variant="torchvision", input_size=None, input_range="[0,1]")
    extra = {"fc1.weight": torch.zeros(3, 2), "fc2.weight": torch.zeros(3, 2), "AuxLogits1.fc.weight": torch.zeros(1)}
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")} | extra
    save_file(state, str(tmp_path / "art_inception.safetensors"))
    dst = nets.InceptionV3.tiny(seed=2, variant="torchvision", input_size=None, input_range="[0,1]")
    nets.load_art_inception_weights(dst, tmp_path / "art_inception.safetensors")
    x = torch.rand(2, 3, 80, 80)
    with torch.no_grad():
        assert torch.allclose(src(x), dst(x))


def test_weights_from_the_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    src = nets.VGG19.tiny(seed=5)
    repo = tmp_path / "hub" / "models--someone--vgg"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    torch.save(src.state_dict(), repo / "snapshots" / commit / "vgg.pth")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    dst = nets.load_vgg19_weights(nets.VGG19.tiny(seed=6), "someone/vgg/vgg.pth")
    assert torch.equal(src.features[0].weight, dst.features[0].weight)
    dst2 = nets.load_vgg19_weights(nets.VGG19.tiny(seed=6), "someone/vgg", filename="vgg.pth")
    assert torch.equal(src.features[0].weight, dst2.features[0].weight)


def test_missing_local_file_is_a_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as err:
        nets.load_vgg19_weights(nets.VGG19.tiny(), tmp_path / "nowhere" / "vgg19.pth")
    msg = str(err.value)
    assert "VGG19" in msg and "nowhere" in msg and "metrics.weights.vgg19=" in msg


def test_missing_url_weights_offline_is_a_weights_error() -> None:
    with pytest.raises(WeightsError) as err:
        nets.load_inception_weights(nets.InceptionV3.tiny())
    msg = str(err.value)
    assert "pt_inception-2015-12-05" in msg and "metrics.weights.inception=" in msg and "offline" in msg


def test_missing_hf_weights_offline_is_a_weights_error() -> None:
    with pytest.raises(WeightsError) as err:
        nets.load_art_inception_weights(nets.InceptionV3.for_art_fid(div=16))
    msg = str(err.value)
    assert "matthias-wright/art_inception" in msg and "art_inception.pth" in msg
    assert "metrics.weights.art_inception=" in msg


def test_weights_of_the_wrong_size_or_incomplete_are_refused(tmp_path: Path) -> None:
    torch.save(nets.VGG19.tiny(div=8).state_dict(), tmp_path / "wide.pth")
    with pytest.raises(WeightsError, match="wrong shape"):
        nets.load_vgg19_weights(nets.VGG19.tiny(div=16), tmp_path / "wide.pth")
    partial = {k: v for k, v in nets.VGG19.tiny().state_dict().items() if not k.startswith("features.34")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match="missing keys.*features.34"):
        nets.load_vgg19_weights(nets.VGG19.tiny(), tmp_path / "partial.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="could not be read"):
        nets.load_vgg19_weights(nets.VGG19.tiny(), tmp_path / "junk.pth")
