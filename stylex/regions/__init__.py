"""StyleGallery stage 1: regions from diffusion features (pure functions, no model loading).
Imports backbones (depth), diffusion (DDIM inversion) and errors.

`features` mixes the per-step inversion features, `cluster` turns them into a label map, `refine` merges,
splits by depth, cleans up and applies user masks.
"""
from stylex.regions.cluster import Clustering, RegionWarning, cluster_features
from stylex.regions.features import mix_features, time_weights
from stylex.regions.refine import (
    apply_user_mask,
    clean_small_regions,
    depth_split_merge,
    merge_by_latent,
    normalize_depth,
    region_means,
    relabel_consecutive,
    resize_depth,
    resize_labels,
    two_means_1d,
)

__all__ = [
    "Clustering",
    "RegionWarning",
    "apply_user_mask",
    "clean_small_regions",
    "cluster_features",
    "depth_split_merge",
    "merge_by_latent",
    "mix_features",
    "normalize_depth",
    "region_means",
    "relabel_consecutive",
    "resize_depth",
    "resize_labels",
    "time_weights",
    "two_means_1d",
]
