"""Building the named metrics of a protocol with their networks: the published weights, or tiny random nets.

Networks are built once and shared (one VGG19 for CFSD, Gram and style score; one LPIPS net for LPIPS and
ArtFID). ArtFID reuses the LPIPS metric and, when the protocol's FID column is the FID inside ArtFID (same
network, style set and view, as StyleGallery's table), the FID metric too, so its identity
ArtFID = (1 + LPIPS)(1 + FID) holds with the table's own columns. Weight sources are config values
`metrics.weights.<net>` (see weights.py for the accepted forms).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from stylex.errors import ConfigError, WeightsError
from stylex.metrics import networks as nets
from stylex.metrics.base import Metric
from stylex.metrics.embedding_scores import CLIPImageScore, CLIPTextScore, DINOScore
from stylex.metrics.fid import FID, ArtFID
from stylex.metrics.lpips import LPIPS
from stylex.metrics.protocol import Protocol
from stylex.metrics.vgg_metrics import CFSD, GramLoss, StyleScore

METRICS = ("style_score", "gram", "fid", "lpips", "artfid", "cfsd", "dino", "clip_i", "clip_t")
STYLEGALLERY_TABLE = ("style_score", "gram", "fid", "lpips", "artfid")
HAM_TABLE = ("artfid", "lpips", "dino", "clip_i", "clip_t")

DEFAULT_WEIGHTS: dict[str, str] = {
    "vgg19": nets.VGG19_WEIGHTS,
    "alexnet": nets.ALEXNET_WEIGHTS,
    "lpips": nets.LPIPS_ALEX_WEIGHTS,
    "inception": nets.FID_INCEPTION_WEIGHTS,
    "art_inception": nets.ART_INCEPTION_WEIGHTS,
    "dino": "facebook/dinov2-base",
    "clip": "openai/clip-vit-large-patch14",
}


class Networks:
    """Lazily built networks, shared by every metric (and every protocol) of an evaluation."""

    def __init__(self, smoke: bool, seed: int, weights: Mapping[str, str], device: torch.device | str) -> None:
        self.smoke, self.seed, self.device = smoke, seed, device
        self.weights = {**DEFAULT_WEIGHTS, **dict(weights)}
        self.cache: dict[str, Any] = {}

    def _get(self, key: str, build: Any) -> Any:
        if key not in self.cache:
            self.cache[key] = build().to(self.device).eval()
        return self.cache[key]

    def src(self, key: str) -> str:
        return self.weights[key]

    def vgg(self) -> nets.VGG19:
        if self.smoke:
            return self._get("vgg19", lambda: nets.VGG19.tiny(self.seed))
        return self._get("vgg19", lambda: nets.load_vgg19_weights(nets.VGG19(), self.src("vgg19")))

    def lpips(self) -> nets.LPIPSNet:
        if self.smoke:
            return self._get("lpips", lambda: nets.LPIPSNet.tiny(self.seed))

        def build() -> nets.LPIPSNet:
            net = nets.LPIPSNet()
            nets.load_alexnet_weights(net, self.src("alexnet"))
            return nets.load_lpips_weights(net, self.src("lpips"))

        return self._get("lpips", build)

    def inception(self, art: bool) -> nets.InceptionV3:
        key = "art_inception" if art else "inception"
        if self.smoke:
            # tiny twins see 75 px (Inception's minimum) instead of 299: smoke runs check wiring, not values
            variant, size, rng = ("torchvision", None, "[0,1]") if art else ("fid", 75, "[-1,1]")
            return self._get(key, lambda: nets.InceptionV3.tiny(self.seed, variant=variant, input_size=size,
                                                                input_range=rng))
        if art:
            return self._get(key, lambda: nets.load_art_inception_weights(nets.InceptionV3.for_art_fid(),
                                                                          self.src(key)))
        return self._get(key, lambda: nets.load_inception_weights(nets.InceptionV3(), self.src(key)))

    def dino(self) -> Any:
        from stylex.metrics.embedders import load_dino, tiny_dino

        return self._get("dino", lambda: tiny_dino(self.seed) if self.smoke else load_dino(self.src("dino")))

    def clip(self) -> Any:
        from stylex.metrics.embedders import load_clip, tiny_clip

        return self._get("clip", lambda: tiny_clip(self.seed) if self.smoke else load_clip(self.src("clip")))


def build_metrics(names: Sequence[str] = STYLEGALLERY_TABLE, *, smoke: bool = False, seed: int = 0,
                  weights: Mapping[str, str] | None = None, options: Mapping[str, Mapping[str, Any]] | None = None,
                  device: torch.device | str = "cpu", protocol: Protocol | None = None,
                  networks: Networks | None = None) -> dict[str, Metric]:
    """{name: metric} in the order given, as `protocol` defines them (default: stylex's own choices).
    `options[name]` are further keyword arguments of that metric's class (e.g. {"clip_t": {"template": "..."}});
    the protocol's own options for a metric take precedence. `networks`: networks already loaded (several
    protocols in one evaluation share them; smoke, seed, weights and device are then theirs)."""
    protocol = protocol or Protocol()
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metrics {unknown} in `metrics`; known: {', '.join(METRICS)}.")
    opts = {k: dict(v) for k, v in (options or {}).items()}
    for k, v in protocol.options.items():
        opts[k] = {**opts.get(k, {}), **dict(v)}
    bad = [k for k in [*opts, *protocol.views] if k not in METRICS]
    if bad:
        raise ConfigError(f"options or views for unknown metrics {bad} (protocol `{protocol.name}`); known: "
                          f"{', '.join(METRICS)}.")
    n = networks or Networks(smoke, seed, weights or {}, device)
    out: dict[str, Metric] = {}
    # ArtFID last, so that it shares the LPIPS and FID metrics listed after it (HAM_TABLE starts with artfid)
    for name in sorted(names, key=lambda k: k == "artfid"):
        try:
            out[name] = _build_one(name, n, opts.get(name, {}), out, protocol)
        except WeightsError as exc:
            raise WeightsError(f"the `{name}` metric cannot be computed: {exc} Or leave {name} out of "
                               f"`metrics.names`.") from exc
        except TypeError as exc:  # an option the metric's class does not take
            if not opts.get(name):
                raise
            raise ConfigError(f"the options of `{name}` (protocol `{protocol.name}` / `metrics.{name}`) hold one "
                              f"the {name} metric does not take ({exc}); its options are the keyword arguments of "
                              f"its class in stylex.metrics.") from exc
    return {k: out[k] for k in names}


def _build_one(name: str, n: Networks, o: dict[str, Any], built: Mapping[str, Metric], p: Protocol) -> Metric:
    """One metric on the shared networks; ArtFID reuses the LPIPS (and the FID column's) metric already built
    when they see the images as ArtFID does."""
    if name == "lpips":
        return LPIPS(n.lpips(), **o)
    if name == "fid":
        return FID(n.inception(art=p.fid_network == "art_inception"), style_copies=p.style_copies, **o)
    if name == "cfsd":
        return CFSD(n.vgg(), **o)
    if name == "gram":
        return GramLoss(n.vgg(), **o)
    if name == "style_score":
        return StyleScore(n.vgg(), **o)
    if name == "dino":
        return DINOScore(n.dino(), **o)
    if name == "clip_i":
        return CLIPImageScore(n.clip(), **o)
    if name == "clip_t":
        return CLIPTextScore(n.clip(), **o)
    assert name == "artfid", name
    same_view = lambda other: other in built and p.view(other) == p.view("artfid")  # noqa: E731
    lp = built["lpips"] if same_view("lpips") and isinstance(built["lpips"], LPIPS) else None
    fid = built.get("fid") if same_view("fid") and p.fid_network == "art_inception" else None
    return ArtFID(lp or LPIPS(n.lpips()), fid if isinstance(fid, FID) else FID(n.inception(art=True),
                                                                                  style_copies=p.style_copies),
                  update_lpips=lp is None, update_fid=not isinstance(fid, FID), **o)
