"""StyleGallery's plan for one image: what stage 2 decided (METHODS.md 2.2) and what stage 3 derives from it per
attention layer (2.3). A plan is built once per image and read at every optimisation step."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from stylex.diffusion.regional_attention import FlexLayout, Pair, token_weights
from stylex.matching import Match, ScoreTable
from stylex.regions.refine import resize_labels


def layer_grid(n_tokens: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """The (h, w) token grid of an attention layer with `n_tokens` tokens over a latent of size latent_hw."""
    h, w = latent_hw
    factor = round((h * w / n_tokens) ** 0.5)
    if (h // factor) * (w // factor) != n_tokens:
        raise ValueError(f"{n_tokens} tokens do not tile a {h}x{w} latent")
    return h // factor, w // factor


def labels_at(labels: Tensor, grid: tuple[int, int]) -> Tensor:
    """The label map on a layer's grid (stylex's one nearest convention, `resize_labels`), in token order."""
    return resize_labels(labels, grid).flatten()


@dataclass
class LayerPlan:
    """An image's matched pairs at one attention layer, with the per-token loss weights and (for
    `regional_attention=flex`) the FlexAttention layout; derived once, reused at every step."""

    pairs: list[Pair]
    weights: Tensor  # [N] weights turning a per-token L1 sum into L_RSL at this layer (see `token_weights`)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # pairs left out at this layer, and why
    flex: FlexLayout | None = None


@dataclass
class RegionPlan:
    """Stage 2's decision for one image: which content region takes its style from which reference region."""

    matches: list[Match]
    ref_ids: list[int]  # the item's references, as indices into the group's distinct references
    content_labels: Tensor  # [h, w] on the latent grid
    ref_labels: list[Tensor]  # per reference of the item, each [h_r, w_r]
    table: ScoreTable | None = None  # every score, for the match table (None for hand-made plans)
    gallery: dict[str, Any] | None = None  # sidecar facts and candidate strips when references came from a gallery
    layers: dict[str, LayerPlan] = field(default_factory=dict)

    def at_layer(self, layer: str, content_grid: tuple[int, int], key_counts: list[int], heads: int, dim: int,
                 temperature: float, fallback_temperature: float, mask_mode: str = "sparse",
                 loss_norm: str = "layer") -> LayerPlan:
        """The pairs at one layer: each content region's token indices and its style region's key mask (None for
        a fallback match, which attends to every reference's keys). `key_counts`: per reference of the item, its
        number of keys at this layer.

        A region can vanish on a coarse grid. `mask_mode: sparse` leaves such a pair out at this layer (listed in
        `skipped`, for the sidecar); `zero` keeps it, as the published code does: its target is then computed with
        every key zeroed (a vanished style region), or it adds only the terms without gradient (a vanished
        content region)."""
        if layer not in self.layers:
            content_tokens = labels_at(self.content_labels, content_grid)
            pairs, skipped = [], []
            for match in self.matches:
                q_idx = (content_tokens == match.content_region).nonzero().flatten()
                kv_mask = None
                if not match.fallback:
                    ref_labels = self.ref_labels[match.reference]
                    ref_grid = layer_grid(key_counts[match.reference], tuple(ref_labels.shape))
                    kv_mask = labels_at(ref_labels, ref_grid) == match.style_region
                vanished = ("content" if not q_idx.numel() else
                            "style" if kv_mask is not None and not kv_mask.any() else None)
                if vanished and mask_mode == "sparse":
                    skipped.append({"layer": layer, "content_region": match.content_region,
                                    "reference": match.reference, "style_region": match.style_region,
                                    "vanished": vanished, "grid": list(content_grid if vanished == "content" else
                                                                       ref_grid)})
                    continue
                pairs.append(Pair(q_idx, match.reference, kv_mask,
                                  fallback_temperature if match.fallback else temperature))
            n_tokens = content_grid[0] * content_grid[1]
            weights = token_weights(pairs, n_tokens, heads, dim, self.content_labels.device, loss_norm)
            self.layers[layer] = LayerPlan(pairs, weights, skipped)
        return self.layers[layer]

    def skipped_notes(self, ref_names: list[str]) -> list[str]:
        """One sentence per pair left out at a layer (sparse mode), naming the pair and the layer."""
        notes = []
        for layer, plan in self.layers.items():
            for s in plan.skipped:
                h, w = s["grid"]
                notes.append(f"{layer}: pair content region {s['content_region']} -> {ref_names[s['reference']]} "
                             f"region {s['style_region']} skipped: its {s['vanished']} region has no token on the "
                             f"{h}x{w} grid")
        return notes


def match_rows(matches: list[Match], ref_names: list[str]) -> list[dict[str, Any]]:
    """The match table: content region -> reference, region, score and its three terms."""
    return [{"content_region": m.content_region, "reference": ref_names[m.reference], "style_region": m.style_region,
             "score": round(m.score, 4), "stat": round(m.stat, 4), "sem": round(m.sem, 4), "geo": round(m.geo, 4),
             "fallback": m.fallback, "how": m.how} for m in matches]


def region_count(labels: Tensor) -> int:
    return int(labels.max()) + 1

