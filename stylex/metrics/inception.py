"""Inception-v3 for FID in plain torch, with torchvision's module names (pt_inception / art_inception load by name).

`variant="fid"`: pytorch-fid's FID Inception (the TF 2015-12-05 port): InceptionA/C and the first InceptionE average
pools do not count padding (FIDInceptionA/C/E_1), the last InceptionE max-pools (FIDInceptionE_2).
`variant="torchvision"`: the stock blocks, as in art-fid's `art_inception` (which also has two classifier heads,
`fc1`/`fc2` and `AuxLogits1`/`2`, not needed for the 2048-d pool features).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stylex.metrics import preprocess
from stylex.metrics._tiny import TINY_DIV, seeded, width
from stylex.metrics.weights import load_weights

FID_INCEPTION_WEIGHTS = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                         "pt_inception-2015-12-05-6726825d.pth")
ART_INCEPTION_WEIGHTS = "matthias-wright/art_inception/art_inception.pth"


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
        w = lambda n: width(n, div)  # noqa: E731
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
        w = lambda n: width(n, div)  # noqa: E731
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
        w = lambda n: width(n, div)  # noqa: E731
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
        w = lambda n: width(n, div)  # noqa: E731
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
        w = lambda n: width(n, div)  # noqa: E731
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
        w = lambda n: width(n, div)  # noqa: E731
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
        return seeded(cls, seed, variant=variant, div=div, input_size=input_size, input_range=input_range)

    @classmethod
    def for_art_fid(cls, div: int = 1) -> InceptionV3:
        """The art_inception configuration: stock blocks, [0,1] input at the evaluation size."""
        return cls(variant="torchvision", div=div, input_size=None, input_range="[0,1]")

    def describe_input(self) -> str:
        size = f"bilinear to {self.input_size}x{self.input_size}" if self.input_size else "at the size it is given"
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
