"""The metrics' frozen feature networks in plain torch (torchvision is not a dependency).

Module and parameter names follow the published checkpoints exactly, so the files load by name:
- `VGG19`: torchvision `vgg19` `features.{i}` (vgg19-dcbb9e9d.pth); taps by name (relu1_1 = features.1, ...).
- `AlexNetFeatures`: torchvision `alexnet` `features.{0,3,6,8,10}` (alexnet-owt-7be5be79.pth).
- `LPIPSNet`: AlexNet + the lpips v0.1 linear heads `lin{0..4}.model.1.weight` (lpips/weights/v0.1/alex.pth).
- `InceptionV3`: torchvision Inception3 trunk names (`Conv2d_1a_3x3.conv.weight`, `Mixed_7c.branch_pool.bn.*`, ...).
  `variant="fid"` is pytorch-fid's FID Inception (pt_inception-2015-12-05: TF avg-pools that skip padding, max pool
  in the last block); `variant="torchvision"` is the stock Inception3 blocks that art-fid's `art_inception` uses.
Every class takes a `div` (channel widths divided) so `tiny(seed)` builds the same structure, small and random.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylex.metrics import preprocess
from stylex.metrics.weights import load_weights

VGG19_WEIGHTS = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
ALEXNET_WEIGHTS = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
LPIPS_ALEX_WEIGHTS = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth"
FID_INCEPTION_WEIGHTS = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                         "pt_inception-2015-12-05-6726825d.pth")
ART_INCEPTION_WEIGHTS = "matthias-wright/art_inception/art_inception.pth"

TINY_DIV = 16


def _w(channels: int, div: int) -> int:
    return max(1, channels // div)


def _seeded(cls, seed: int, **kw):  # type: ignore[no-untyped-def]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kw).eval()


# ---------------------------------------------------------------------------------------------- VGG19

VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                    512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


def _vgg_layer_names() -> list[str]:
    names, block, k = [], 1, 1
    for v in VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, k = block + 1, 1
        else:
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
            k += 1
    return names


VGG19_LAYERS: dict[str, int] = {name: i for i, name in enumerate(_vgg_layer_names())}
"""Tap name -> index in `features` (relu1_1: 1, relu2_1: 6, relu3_1: 11, relu4_1: 20, relu5_1: 29, pool5: 36)."""
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class VGG19(nn.Module):
    """torchvision VGG19 `features` (3x3 convs, padding 1, ReLU, 2x2 max pools). Input: [0,1] RGB."""

    def __init__(self, div: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                c = _w(int(v), div)
                layers += [nn.Conv2d(c_in, c, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c_in = c
        self.features = nn.Sequential(*layers)
        self.div = div

    @classmethod
    def tiny(cls, seed: int = 0, div: int = TINY_DIV) -> VGG19:
        return _seeded(cls, seed, div=div)

    def forward(self, x: Tensor, taps: Sequence[str | int] = STYLE_LAYERS, normalize: bool = True) -> dict[str, Tensor]:
        """ImageNet-normalise ([0,1] input; `normalize=False` feeds it raw, as one official script does),
        run up to the deepest tap, return {tap: feature map}."""
        index = {(VGG19_LAYERS[t] if isinstance(t, str) else int(t)): t for t in taps}
        unknown = [t for t in taps if isinstance(t, str) and t not in VGG19_LAYERS]
        if unknown:
            raise KeyError(f"unknown VGG19 taps {unknown}; known: {list(VGG19_LAYERS)}")
        out: dict[str, Tensor] = {}
        h = preprocess.imagenet_normalize(x) if normalize else x
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in index:
                out[str(index[i])] = h
            if i >= max(index):
                break
        return out


def load_vgg19_weights(net: VGG19, source: str | Path = VGG19_WEIGHTS, *, filename: str | None = None,
                       config_key: str = "metrics.weights.vgg19") -> VGG19:
    """torchvision's vgg19 checkpoint (ImageNet); the classifier is ignored."""
    return load_weights(net, source, what="VGG19 (CFSD, Gram loss, style score)", config_key=config_key,
                        filename=filename, ignore=("classifier.",))


# ---------------------------------------------------------------------------------------------- AlexNet / LPIPS

class AlexNetFeatures(nn.Module):
    """torchvision AlexNet `features`; taps relu1..relu5 as LPIPS slices them (features[0:2], [2:5], ...)."""

    SLICES = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
    WIDTHS = (64, 192, 384, 256, 256)

    def __init__(self, div: int = 1) -> None:
        super().__init__()
        c = [_w(n, div) for n in self.WIDTHS]
        self.features = nn.Sequential(
            nn.Conv2d(3, c[0], kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=False),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[0], c[1], kernel_size=5, padding=2), nn.ReLU(inplace=False),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(c[1], c[2], kernel_size=3, padding=1), nn.ReLU(inplace=False),
            nn.Conv2d(c[2], c[3], kernel_size=3, padding=1), nn.ReLU(inplace=False),
            nn.Conv2d(c[3], c[4], kernel_size=3, padding=1), nn.ReLU(inplace=False),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.channels = tuple(c)

    @classmethod
    def tiny(cls, seed: int = 0, div: int = TINY_DIV) -> AlexNetFeatures:
        return _seeded(cls, seed, div=div)

    def forward(self, x: Tensor) -> list[Tensor]:
        """relu1..relu5 of an already-normalised input."""
        outs = []
        for start, stop in self.SLICES:
            for i in range(start, stop):
                x = self.features[i](x)
            outs.append(x)
        return outs


class NetLinLayer(nn.Module):
    """lpips' 1x1 conv head; `model.0` is the (eval-mode inactive) dropout, so the weight is `model.1.weight`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, stride=1, padding=0, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LPIPSNet(nn.Module):
    """LPIPS v0.1 (AlexNet): scaling layer, unit-normalised features, squared diff, linear heads, spatial mean, sum.

    Input: two [0,1] batches; returns the per-image distance [B].
    """

    def __init__(self, alexnet: AlexNetFeatures | None = None, div: int = 1) -> None:
        super().__init__()
        self.net = alexnet if alexnet is not None else AlexNetFeatures(div)
        for i, c in enumerate(self.net.channels):
            self.add_module(f"lin{i}", NetLinLayer(c))
        # constants of lpips' ScalingLayer; not persistent, so the state dict holds only the published keys
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def tiny(cls, seed: int = 0, div: int = TINY_DIV) -> LPIPSNet:
        net = _seeded(cls, seed, div=div)
        with torch.no_grad():  # heads are non-negative in the published weights; keep that property
            for i in range(5):
                w = getattr(net, f"lin{i}").model[1].weight
                w.copy_(w.abs())
        return net

    @staticmethod
    def _unit(x: Tensor, eps: float = 1e-10) -> Tensor:
        return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + eps)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        fx = self.net((preprocess.to_signed(x) - self.shift) / self.scale)
        fy = self.net((preprocess.to_signed(y) - self.shift) / self.scale)
        total = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for i, (a, b) in enumerate(zip(fx, fy)):
            diff = (self._unit(a) - self._unit(b)) ** 2
            total = total + getattr(self, f"lin{i}")(diff).mean(dim=(1, 2, 3))
        return total


def load_alexnet_weights(net: AlexNetFeatures | LPIPSNet, source: str | Path = ALEXNET_WEIGHTS, *,
                         filename: str | None = None, config_key: str = "metrics.weights.alexnet") -> nn.Module:
    """torchvision's alexnet checkpoint (ImageNet) into the AlexNet (of an LPIPSNet); classifier ignored."""
    target = net.net if isinstance(net, LPIPSNet) else net
    load_weights(target, source, what="AlexNet (LPIPS backbone)", config_key=config_key, filename=filename,
                 ignore=("classifier.",))
    return net.eval()


def _lpips_key(key: str) -> str:
    return f"lin{key.split('.')[1]}.{key.split('.', 2)[2]}" if key.startswith("lins.") else key


def load_lpips_weights(net: LPIPSNet, source: str | Path = LPIPS_ALEX_WEIGHTS, *, filename: str | None = None,
                       config_key: str = "metrics.weights.lpips") -> LPIPSNet:
    """The lpips v0.1 alex linear heads (`lin{i}.model.1.weight`, or `lins.{i}...` of newer lpips dumps).

    Only the heads are taken from this file; a full lpips state dict also holding `net.*` keys is fine.
    """
    heads = nn.ModuleDict({f"lin{i}": getattr(net, f"lin{i}") for i in range(5)})
    load_weights(heads, source, what="LPIPS linear heads (v0.1, alex)", config_key=config_key, filename=filename,
                 ignore=("net.", "scaling_layer."), rename=_lpips_key)
    return net.eval()


# ---------------------------------------------------------------------------------------------- Inception-v3

class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (eps 0.001, as TF) + ReLU."""

    def __init__(self, c_in: int, c_out: int, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, bias=False, **kw)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor, include_pad: bool) -> Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=include_pad)


class InceptionA(nn.Module):
    def __init__(self, c_in: int, pool_features: int, div: int, tf_pool: bool) -> None:
        super().__init__()
        w = lambda n: _w(n, div)  # noqa: E731
        self.branch1x1 = BasicConv2d(c_in, w(64), kernel_size=1)
        self.branch5x5_1 = BasicConv2d(c_in, w(48), kernel_size=1)
        self.branch5x5_2 = BasicConv2d(w(48), w(64), kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, w(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(c_in, w(pool_features), kernel_size=1)
        self.tf_pool = tf_pool
        self.out_channels = w(64) + w(64) + w(96) + w(pool_features)

    def forward(self, x: Tensor) -> Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x, include_pad=not self.tf_pool))
        return torch.cat([self.branch1x1(x), b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, c_in: int, div: int) -> None:
        super().__init__()
        w = lambda n: _w(n, div)  # noqa: E731
        self.branch3x3 = BasicConv2d(c_in, w(384), kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, w(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(w(64), w(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(w(96), w(96), kernel_size=3, stride=2)
        self.out_channels = w(384) + w(96) + c_in

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, c_in: int, channels_7x7: int, div: int, tf_pool: bool) -> None:
        super().__init__()
        w = lambda n: _w(n, div)  # noqa: E731
        c7 = w(channels_7x7)
        self.branch1x1 = BasicConv2d(c_in, w(192), kernel_size=1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, w(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, w(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, w(192), kernel_size=1)
        self.tf_pool = tf_pool
        self.out_channels = 4 * w(192)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        bp = self.branch_pool(_avg3(x, include_pad=not self.tf_pool))
        return torch.cat([self.branch1x1(x), b7, d, bp], 1)


class InceptionD(nn.Module):
    def __init__(self, c_in: int, div: int) -> None:
        super().__init__()
        w = lambda n: _w(n, div)  # noqa: E731
        self.branch3x3_1 = BasicConv2d(c_in, w(192), kernel_size=1)
        self.branch3x3_2 = BasicConv2d(w(192), w(320), kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, w(192), kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(w(192), w(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(w(192), w(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(w(192), w(192), kernel_size=3, stride=2)
        self.out_channels = w(320) + w(192) + c_in

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """`pool`: 'avg' (torchvision), 'avg_tf' (pytorch-fid Mixed_7b: padding not counted), 'max' (pytorch-fid Mixed_7c)."""

    def __init__(self, c_in: int, div: int, pool: str) -> None:
        super().__init__()
        w = lambda n: _w(n, div)  # noqa: E731
        self.branch1x1 = BasicConv2d(c_in, w(320), kernel_size=1)
        self.branch3x3_1 = BasicConv2d(c_in, w(384), kernel_size=1)
        self.branch3x3_2a = BasicConv2d(w(384), w(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(w(384), w(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, w(448), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(w(448), w(384), kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(w(384), w(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(w(384), w(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, w(192), kernel_size=1)
        self.pool = pool
        self.out_channels = w(320) + 4 * w(384) + w(192)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        if self.pool == "max":
            p = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            p = _avg3(x, include_pad=self.pool == "avg")
        return torch.cat([self.branch1x1(x), b3, d, self.branch_pool(p)], 1)


class InceptionV3(nn.Module):
    """Inception-v3 trunk up to the global average pool: [0,1] images -> [B, 2048] (or [B, tiny width]).

    variant 'fid': pytorch-fid's FID Inception (TF port), input bilinear to 299 and [-1, 1].
    variant 'torchvision': the stock blocks, as art-fid's `art_inception`; art-fid feeds [0, 1] images at their
    own size, which `input_size=None, input_range='[0,1]'` reproduces.
    """

    def __init__(self, variant: str = "fid", div: int = 1, input_size: int | None = 299,
                 input_range: str = "[-1,1]") -> None:
        super().__init__()
        if variant not in ("fid", "torchvision"):
            raise ValueError(f"unknown Inception variant {variant!r}")
        tf = variant == "fid"
        w = lambda n: _w(n, div)  # noqa: E731
        self.variant, self.input_size, self.input_range = variant, input_size, input_range
        self.Conv2d_1a_3x3 = BasicConv2d(3, w(32), kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(w(32), w(32), kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(w(32), w(64), kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(w(64), w(80), kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(w(80), w(192), kernel_size=3)
        self.Mixed_5b = InceptionA(w(192), 32, div, tf)
        self.Mixed_5c = InceptionA(self.Mixed_5b.out_channels, 64, div, tf)
        self.Mixed_5d = InceptionA(self.Mixed_5c.out_channels, 64, div, tf)
        self.Mixed_6a = InceptionB(self.Mixed_5d.out_channels, div)
        self.Mixed_6b = InceptionC(self.Mixed_6a.out_channels, 128, div, tf)
        self.Mixed_6c = InceptionC(self.Mixed_6b.out_channels, 160, div, tf)
        self.Mixed_6d = InceptionC(self.Mixed_6c.out_channels, 160, div, tf)
        self.Mixed_6e = InceptionC(self.Mixed_6d.out_channels, 192, div, tf)
        self.Mixed_7a = InceptionD(self.Mixed_6e.out_channels, div)
        self.Mixed_7b = InceptionE(self.Mixed_7a.out_channels, div, "avg_tf" if tf else "avg")
        self.Mixed_7c = InceptionE(self.Mixed_7b.out_channels, div, "max" if tf else "avg")
        self.feature_dim = self.Mixed_7c.out_channels

    @classmethod
    def tiny(cls, seed: int = 0, div: int = TINY_DIV, variant: str = "fid", input_size: int | None = 299,
             input_range: str = "[-1,1]") -> InceptionV3:
        return _seeded(cls, seed, variant=variant, div=div, input_size=input_size, input_range=input_range)

    @classmethod
    def for_art_fid(cls, div: int = 1) -> InceptionV3:
        """The art_inception configuration: stock blocks, [0,1] input at the evaluation size."""
        return cls(variant="torchvision", div=div, input_size=None, input_range="[0,1]")

    def describe_input(self) -> str:
        size = f"bilinear to {self.input_size}x{self.input_size}" if self.input_size else "at the evaluation size"
        return f"Inception-v3 ({self.variant} blocks) {size}, values {self.input_range}"

    def forward(self, x: Tensor) -> Tensor:
        x = preprocess.inception_input(x, self.input_size, self.input_range)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)


# heads present in the published files that the 2048-d pool features do not use
_INCEPTION_HEADS = ("fc.", "fc1.", "fc2.", "AuxLogits.", "AuxLogits1.", "AuxLogits2.")


def load_inception_weights(net: InceptionV3, source: str | Path = FID_INCEPTION_WEIGHTS, *,
                           filename: str | None = None, config_key: str = "metrics.weights.inception",
                           what: str = "Inception-v3 (FID, pt_inception-2015-12-05)") -> InceptionV3:
    """pytorch-fid's pt_inception file (or any torchvision-named Inception3 checkpoint); heads ignored."""
    return load_weights(net, source, what=what, config_key=config_key, filename=filename, ignore=_INCEPTION_HEADS)


def load_art_inception_weights(net: InceptionV3, source: str | Path = ART_INCEPTION_WEIGHTS, *,
                               filename: str | None = None,
                               config_key: str = "metrics.weights.art_inception") -> InceptionV3:
    """art-fid's `art_inception.pth` (HF matthias-wright/art_inception). Unlike art-fid (strict=False), every
    trunk weight must be in the file: a silently random layer would make the FID meaningless."""
    return load_inception_weights(net, source, filename=filename, config_key=config_key,
                                  what="art Inception-v3 (ArtFID, matthias-wright/art_inception)")
