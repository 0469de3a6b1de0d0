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
from torch import Tensor, nn

from stylex.metrics import preprocess
from stylex.metrics._tiny import TINY_DIV, seeded, width
from stylex.metrics.weights import load_weights

VGG19_WEIGHTS = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
ALEXNET_WEIGHTS = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
LPIPS_ALEX_WEIGHTS = "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/alex.pth"


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
                c = width(int(v), div)
                layers += [nn.Conv2d(c_in, c, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c_in = c
        self.features = nn.Sequential(*layers)
        self.div = div

    @classmethod
    def tiny(cls, seed: int = 0, div: int = TINY_DIV) -> VGG19:
        return seeded(cls, seed, div=div)

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
        c = [width(n, div) for n in self.WIDTHS]
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
        return seeded(cls, seed, div=div)

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
        net = seeded(cls, seed, div=div)
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


# Inception-v3 lives in its own module (it is most of the code); re-exported so all networks come from here.
from stylex.metrics.inception import (  # noqa: E402
    ART_INCEPTION_WEIGHTS,
    FID_INCEPTION_WEIGHTS,
    InceptionV3,
    load_art_inception_weights,
    load_inception_weights,
)

__all__ = [
    "VGG19", "VGG19_LAYERS", "STYLE_LAYERS", "AlexNetFeatures", "LPIPSNet", "NetLinLayer", "InceptionV3",
    "load_vgg19_weights", "load_alexnet_weights", "load_lpips_weights", "load_inception_weights",
    "load_art_inception_weights", "VGG19_WEIGHTS", "ALEXNET_WEIGHTS", "LPIPS_ALEX_WEIGHTS",
    "FID_INCEPTION_WEIGHTS", "ART_INCEPTION_WEIGHTS", "TINY_DIV",
]
