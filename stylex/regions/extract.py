"""StyleGallery stage 1 for one image (METHODS.md 2.1): inversion features -> clustered, refined regions.

Models are passed in (the SD backbone, an optional depth model); nothing is loaded here.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from stylex.diffusion.ddim import ddim_invert
from stylex.errors import ConfigError, settings_from_config
from stylex.regions.cluster import RegionWarning, cluster_features
from stylex.regions.features import mix_features, time_weights
from stylex.regions.refine import apply_user_mask, clean_small_regions, depth_split_merge, merge_by_latent, relabel_consecutive


DEPTH_RESIZES = ("area", "nearest")


@dataclass(frozen=True)
class RegionParams:
    """Every stage-1 setting (the cache key includes all of them)."""

    inversion_steps: int = 15
    feature_block: str = "up_blocks.2"
    time_sharpness: float = 5.0
    time_center: float = 0.7
    max_k: int = 10
    pca_dims: int = 60
    n_init: int = 10
    max_iter: int = 64
    silhouette_sample_size: int | None = None  # None: the exact silhouette
    merge_threshold: float = 0.85
    min_region_pixels: int = 20
    depth_enabled: bool = True
    depth_input_size: int = 518  # the depth model's input: shorter side, in multiples of its patch size
    depth_resize: str = "area"  # | nearest (official): how the depth map is reduced to the latent grid
    depth_min_pixels: int = 20
    depth_low_pct: float = 5.0
    depth_high_pct: float = 95.0
    depth_span: float = 0.75
    depth_remerge_latent: float = 0.35
    depth_remerge_depth: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.depth_resize not in DEPTH_RESIZES:
            raise ConfigError(f"method.regions.depth_resize={self.depth_resize!r} is not one of: "
                              f"{', '.join(DEPTH_RESIZES)}.")
        if self.silhouette_sample_size is not None and self.silhouette_sample_size < 2:
            raise ConfigError(f"method.regions.silhouette_sample_size={self.silhouette_sample_size} must be at "
                              f"least 2, or null for the exact silhouette.")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "RegionParams":
        return settings_from_config(cls, config, "method.regions")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Regions:
    """Stage-1 result for one image, on the latent grid."""

    latent: Tensor  # [4,h,w] clean latent
    x_T: Tensor  # [4,h,w] inverted latent at the last inversion timestep
    labels: Tensor  # [h,w] long, 0..R-1
    F_mix: Tensor  # [C,h,w] time-weighted features (not cached; descriptors are)
    k: int  # clusters chosen by silhouette, before refinement
    notes: list[str]

    @property
    def n_regions(self) -> int:
        return int(self.labels.max()) + 1


def get_module(model: torch.nn.Module, path: str) -> torch.nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ConfigError(f"method.regions.feature_block={path!r} is not a module of the UNet "
                          f"(e.g. up_blocks.2).") from None


@torch.no_grad()
def inversion_features(backbone: Any, latent: Tensor, params: RegionParams) -> tuple[Tensor, Tensor]:
    """DDIM-invert `latent` [1,4,h,w] with the empty prompt, recording `feature_block`'s output at every step.

    Returns the features [T,C,h,w] (resized to the latent grid if the block's output is not on it) and x_T.
    """
    block = get_module(backbone.unet, params.feature_block)
    captured: list[Tensor] = []
    handle = block.register_forward_hook(lambda _m, _i, out: captured.append((out[0] if isinstance(out, tuple) else out).float()))
    cond = backbone.embed_prompt([""])
    try:
        trajectory = ddim_invert(latent, lambda x, t: backbone.denoise(x, t, cond), backbone.scheduler_config,
                                 params.inversion_steps)
    finally:
        handle.remove()
    feats = torch.cat(captured)  # [T,C,h',w']
    if feats.shape[-2:] != latent.shape[-2:]:
        feats = torch.nn.functional.interpolate(feats, size=latent.shape[-2:], mode="bilinear", align_corners=False)
    return feats, trajectory[max(trajectory)][0]


def extract_regions(backbone: Any, image: Tensor, params: RegionParams, depth_model: Any = None,
                    user_mask: Tensor | None = None, latent: Tensor | None = None,
                    depth_image: Tensor | None = None) -> Regions:
    """Image [3,H,W] in [0,1] -> regions on the latent grid (steps 1-8 of METHODS.md 2.1).

    `depth_image` [3,H',W']: the pixels the depth model sees, when not the working image (official: the file)."""
    from stylex.backbones.depth import estimate_depth

    notes: list[str] = []
    latent = backbone.encode(image[None]) if latent is None else latent[None]
    feats, x_T = inversion_features(backbone, latent, params)
    weights = time_weights(feats.shape[0], sharpness=params.time_sharpness, center=params.time_center)
    F_mix = mix_features(feats, weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegionWarning)
        clustering = cluster_features(F_mix, max_k=params.max_k, pca_dims=params.pca_dims, n_init=params.n_init,
                                      max_iter=params.max_iter, seed=params.seed,
                                      silhouette_sample_size=params.silhouette_sample_size)
    notes += [str(w.message) for w in caught if issubclass(w.category, RegionWarning)]
    labels = merge_by_latent(clustering.labels, latent[0].cpu(), threshold=params.merge_threshold)
    if params.depth_enabled and depth_model is not None and int(labels.max()) >= 0:
        pixels = image if depth_image is None else depth_image
        depth = estimate_depth(depth_model, pixels[None], labels.shape, input_size=params.depth_input_size,
                               reduce=params.depth_resize)[0].cpu()
        labels = depth_split_merge(labels, latent[0].cpu(), depth, min_pixels=params.depth_min_pixels,
                                   span=params.depth_span, low_pct=params.depth_low_pct,
                                   high_pct=params.depth_high_pct, remerge_latent=params.depth_remerge_latent,
                                   remerge_depth=params.depth_remerge_depth)
    labels = relabel_consecutive(clean_small_regions(labels, min_pixels=params.min_region_pixels))
    if user_mask is not None:  # numbered after the automatic regions, in increasing user-label order
        labels = apply_user_mask(labels, user_mask)
        notes.append("user mask applied")
    return Regions(latent[0].cpu(), x_T.cpu(), labels, F_mix.cpu(), clustering.k, notes)
