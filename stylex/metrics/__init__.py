"""stylex.metrics: the papers' evaluation metrics (METHODS.md section 5) with injectable feature networks.

Protocols (stylex.metrics.protocol, configs/protocol/): what decides a number (style set, FID network, CFSD and
Gram modes, each network's view of the files) and the published tables it goes next to.

Metrics (update(PairBatch) -> per-image values | None; compute() -> float):
LPIPS, FID, ArtFID, CFSD, GramLoss, StyleScore, DINOScore, CLIPImageScore, CLIPTextScore.
Networks (published state-dict names; `.tiny(seed)` for tests): VGG19, AlexNetFeatures, LPIPSNet, InceptionV3.
Pairing and reports: pair_outputs, evaluate_pairs, write_metrics_csv, write_summary_csv, comparison_grid.
The CLIP/DINO embedders (transformers) live in stylex.metrics.embedders and are imported on use.
The `python -m stylex.evaluate` steps (finding outputs, naming methods, result files, W&B) live in
stylex.metrics.evaluation.
"""
from stylex.metrics.base import Metric, PairBatch, PerImageMetric
from stylex.metrics.embedding_scores import CLIPImageScore, CLIPTextScore, DINOScore
from stylex.metrics.factory import HAM_TABLE, METRICS, STYLEGALLERY_TABLE, build_metrics
from stylex.metrics.fid import FID, ArtFID, art_fid, frechet_distance
from stylex.metrics.lpips import LPIPS
from stylex.metrics.networks import (
    VGG19,
    AlexNetFeatures,
    InceptionV3,
    LPIPSNet,
    load_alexnet_weights,
    load_art_inception_weights,
    load_inception_weights,
    load_lpips_weights,
    load_vgg19_weights,
)
from stylex.metrics.pairing import Pair, pair_outputs
from stylex.metrics.preprocess import EVAL_SIZE, View, load_view
from stylex.metrics.protocol import Protocol, Table, protocol_for
from stylex.metrics.report import (
    comparison_grid,
    evaluate_pairs,
    grid_from_pairs,
    write_metrics_csv,
    write_summary_csv,
)
from stylex.metrics.vgg_metrics import CFSD, GramLoss, StyleScore

__all__ = [
    "Metric", "PairBatch", "PerImageMetric",
    "LPIPS", "FID", "ArtFID", "art_fid", "frechet_distance", "CFSD", "GramLoss", "StyleScore",
    "DINOScore", "CLIPImageScore", "CLIPTextScore",
    "VGG19", "AlexNetFeatures", "LPIPSNet", "InceptionV3",
    "load_vgg19_weights", "load_alexnet_weights", "load_lpips_weights", "load_inception_weights",
    "load_art_inception_weights",
    "Pair", "pair_outputs", "EVAL_SIZE", "View", "load_view",
    "Protocol", "Table", "protocol_for",
    "evaluate_pairs", "write_metrics_csv", "write_summary_csv", "comparison_grid", "grid_from_pairs",
    "build_metrics", "METRICS", "STYLEGALLERY_TABLE", "HAM_TABLE",
]
