"""StyleGallery stage 2: region descriptors, scores against every reference region, and assignment.
Imports only stylex.errors; stylex.gallery builds on it, never the reverse."""
from stylex.matching.assign import Match, assign, parse_overrides, read_overrides
from stylex.matching.descriptors import (
    RegionDescriptors,
    circle_iou,
    describe_regions,
    geometry_circles,
    min_enclosing_circle,
    semantic_descriptors,
    stat_descriptors,
    stat_descriptors_official,
)
from stylex.matching.score import ScoreTable, match_scores

__all__ = [
    "Match",
    "RegionDescriptors",
    "ScoreTable",
    "assign",
    "circle_iou",
    "describe_regions",
    "geometry_circles",
    "match_scores",
    "min_enclosing_circle",
    "parse_overrides",
    "read_overrides",
    "semantic_descriptors",
    "stat_descriptors",
    "stat_descriptors_official",
]
