"""StyleGallery (CVPR 2026), METHODS.md section 2: regions, multi-dimensional matching, regional style loss.

Stage 1 (regions) and the descriptors of stage 2 are computed once per image and cached by content; stage 3
optimises the content's normalised inverted noise so that, in the last six self-attention layers, each content
region attends like its matched style region: the target for pair (i, r, j) is softmax(s·Q[i] K_r[j]ᵀ/√d) V_r[j]
with queries only from region i and keys/values only from region j (true sparse attention).
"""
from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path
from dataclasses import asdict, dataclass
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch import Tensor

from stylex.cache import ArtifactCache
from stylex.diffusion.regional_attention import (BACKENDS, LOSS_NORMS, flex_layout, flex_targets, gather_targets,
                                                 zero_query_terms)
from stylex.diffusion.schedules import optimisation_timesteps
from stylex.errors import ConfigError, settings_from_config
from stylex.matching import (Match, RegionDescriptors, assign, describe_regions, match_scores, parse_overrides,
                             read_overrides)
from stylex.methods.base import AttentionDistillationBase, Group, Stylized, Timer, group_items, optimise_latents
from stylex.methods.region_plan import LayerPlan, RegionPlan, layer_grid, match_rows, region_count
from stylex.regions.extract import RegionParams, extract_regions

log = logging.getLogger(__name__)

MASK_MODES = ("sparse", "zero")
INITS = ("inverted", "content")
SIDE_INPUTS = ("working", "original")
STAGE1_MATCHING = ("stat", "dino_mode", "geometry", "min_overlap", "dino_resize", "dino_crop", "stat_layers",
                   "stat_heads")  # the stage-2 settings that decide the cached descriptors


@dataclass(frozen=True)
class MatchingParams:
    """Stage-2 settings (METHODS.md 2.2). `stat`/`dino_mode`/`geometry` hold the official-code switches."""

    stat: str = "mean_std"  # | official (random 8-layer transformer; reproduction only)
    stat_layers: int = 8  # stat: official: the random transformer's blocks and heads
    stat_heads: int = 4
    dino_mode: str = "aligned"  # | official (resize 256 + centre crop 224, misaligned with the masks)
    dino_resize: int = 256  # dino_mode: official: shorter side resized to this, then centre-cropped
    dino_crop: int = 224
    geometry: str = "centroid"  # | min_enclosing
    min_overlap: float = 0.01
    w_stat: float = 0.25
    w_sem: float = 1.0
    w_geo: float = 0.125
    assignment: str = "many_to_one"  # | hungarian
    min_score: float | None = None  # below it a content region uses the global AD loss over all references
    overrides: dict | None = None  # {content name: {content region: [reference name or index, region]}}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MatchingParams":
        """`overrides` may also name a YAML file holding that mapping (as the studio saves it)."""
        if isinstance(config.get("overrides"), (str, Path)):
            config = {**config, "overrides": read_overrides(config["overrides"])}
        return settings_from_config(cls, config, "method.matching")


def tensor_digest(image: Tensor) -> str:
    """Hash of the preprocessed pixels: the cache key covers resizing as well as the file's bytes."""
    return hashlib.sha256(image.detach().cpu().float().contiguous().numpy().tobytes()).hexdigest()[:24]


def normalised_noise(x_T: Tensor, eps: float = 1e-8) -> Tensor:
    """(x − mean_c) / (std_c + eps) per pixel across the latent channels (the published init)."""
    return (x_T - x_T.mean(dim=-3, keepdim=True)) / (x_T.std(dim=-3, keepdim=True) + eps)


class StyleGallery(AttentionDistillationBase):
    name = "stylegallery"

    def __init__(self, backbone: Callable[..., Any] | None = None, dino: Callable[..., Any] | None = None,
                 depth: Callable[..., Any] | None = None, regions: dict | None = None, matching: dict | None = None,
                 layers: tuple[str, ...] = ("up_blocks.2", "up_blocks.3"), num_steps: int = 150,
                 iters_per_step: int = 1, lr: float = 0.05, temperature: float = 1.5, content_weight: float = 0.26,
                 mask_mode: str = "sparse", loss_norm: str = "layer", init: str = "inverted",
                 fallback_temperature: float = 1.0, dino_depth_input: str = "working",
                 prompt: str = "", cache_dir: str | None = None, cache_lock_timeout: float = 900.0,
                 user_masks: str | None = None,
                 visualise: dict | None = None, accel: dict | None = None, gallery: dict | None = None,
                 regional_attention: str = "gather", seed: int = 0, show_progress: bool = True,
                 early_exit: bool = True):
        super().__init__(backbone, layers, prompt, seed, show_progress, early_exit)
        if mask_mode not in MASK_MODES:
            raise ConfigError(f"method.mask_mode={mask_mode!r} is not one of: {', '.join(MASK_MODES)}.")
        if loss_norm not in LOSS_NORMS:
            raise ConfigError(f"method.loss_norm={loss_norm!r} is not one of: {', '.join(LOSS_NORMS)}.")
        if init not in INITS:
            raise ConfigError(f"method.init={init!r} is not one of: {', '.join(INITS)}.")
        if dino_depth_input not in SIDE_INPUTS:
            raise ConfigError(f"method.dino_depth_input={dino_depth_input!r} is not one of: {', '.join(SIDE_INPUTS)}.")
        if regional_attention not in BACKENDS:
            raise ConfigError(f"method.regional_attention={regional_attention!r} is not one of: {', '.join(BACKENDS)}.")
        if regional_attention == "flex" and mask_mode != "sparse":
            raise ConfigError("method.regional_attention=flex computes the sparse target only; use gather with "
                              f"method.mask_mode={mask_mode}.")
        self.regional_attention = regional_attention
        self.region_params = RegionParams.from_config(dict(regions or {}))
        self.matching = MatchingParams.from_config(dict(matching or {}))
        self._dino_factory, self._depth_factory = dino, depth
        self.dino: Any = None
        self.depth: Any = None
        self.num_steps, self.iters_per_step, self.lr = num_steps, iters_per_step, lr
        self.temperature, self.content_weight, self.mask_mode = temperature, content_weight, mask_mode
        self.loss_norm, self.init, self.fallback_temperature = loss_norm, init, fallback_temperature
        self.dino_depth_input = dino_depth_input
        self.cache = ArtifactCache(cache_dir, lock_timeout=cache_lock_timeout)
        self.user_masks = Path(user_masks).expanduser() if user_masks else None
        self.visualise = {"layer": -1, "step": 0.5, **(visualise or {})}
        self.accel = {"name": "none", "schedule": "ddim", "original_inference_steps": 50, "lora": None, **(accel or {})}
        self.lora: Any = None
        self.gallery_config = dict(gallery or {})  # gallery=index: references come from a prebuilt gallery
        self._gallery: Any = None

    def load_models(self, device: torch.device) -> None:
        super().load_models(device)
        if self.dino is None and self._dino_factory is not None:
            self.dino = self._dino_factory(device=device)
        if self.depth is None and self._depth_factory is not None and self.region_params.depth_enabled:
            self.depth = self._depth_factory(device=device)
        lora = self.accel.get("lora")
        if self.lora is None and lora:
            from stylex.backbones.lora import FusedLora

            self.lora = FusedLora(self.backbone, lora["source"], lora.get("weight_name"), lora.get("scale", 1.0),
                                  random=bool(lora.get("tiny", False)), config_key="accel.lora")

    def teardown(self, stage: str | None = None) -> None:
        """Give the backbone back without the acceleration LoRA (reusable in the same process)."""
        if self.lora is not None:
            self.lora.unload()
            self.lora = None

    def timesteps(self) -> list[int]:
        """The optimisation's timestep list: the DDIM grid, or LCM's / trailing Euler's (METHODS.md 2.4)."""
        return optimisation_timesteps(self.accel["schedule"], self.backbone.scheduler_config, self.num_steps,
                                      self.accel["original_inference_steps"])

    @contextmanager
    def base_unet(self) -> Iterator[None]:
        """Stage 1 always runs on the base model, never on the fused LoRA."""
        if self.lora is None:
            yield
        else:
            with self.lora.unfused():
                yield

    # -- the three stages, then the outputs --------------------------------------------------------------
    def stylize(self, group: Group) -> list[Stylized]:
        """Stage 1 (regions), stage 2 (matches), stage 3 (optimisation) for the group, then one output per item."""
        timer = Timer()
        group, contents, references, plans = self.plan_group(group, timer.phase)
        with timer.phase("optimise"):
            latent, curves, timesteps = self.optimise(contents, references, plans, *self.progress(group))
        with timer.phase("decode"), torch.no_grad():
            images = self.backbone.decode(latent).cpu()
        with timer.phase("attention_map"):
            ref_latents = [r["latent"].to(self.backbone.device) for r in references]
            attention = self.attention_maps(latent, timesteps, ref_latents, plans)
        per_image = {k: v / len(group.items) for k, v in timer.seconds.items()}
        return [self.output(item, plan, contents[b], [references[r] for r in plan.ref_ids], images[b], curves[b],
                            attention[b], timesteps, per_image)
                for b, (item, plan) in enumerate(zip(group.items, plans))]

    def plan_group(self, group: Group, phase: Callable[[str], ContextManager[Any]] = lambda name: nullcontext()
                   ) -> tuple[Group, list[dict[str, Any]], list[dict[str, Any]], list[RegionPlan]]:
        """Stages 1 and 2 (`phase("regions")`, `phase("matching")` around each): the group (rebuilt when its
        references came from a gallery), the contents' and references' stage-1 results, and each item's plan.
        What the studio shows is what a run optimises."""
        gallery = self.gallery_index() if self.gallery_config.get("path") else None  # checked before any work
        with phase("regions"):
            contents, references = self.dfcc_regions(group)
        with phase("matching"):
            group, references, plans = self.match_regions(group, contents, references, gallery)
        return group, contents, references, plans

    # -- stage 1: DFCC regions (METHODS.md 2.1) ----------------------------------------------------------
    def dfcc_regions(self, group: Group) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Stage 1 (METHODS.md 2.1) for every content (with its user mask) and every distinct reference."""
        content_files, reference_files = self.original_files(group)
        contents = [self.analyse(image, self.user_mask(item.content.name), original)
                    for image, item, original in zip(group.contents, group.items, content_files)]
        return contents, [self.analyse(image, original=original)
                          for image, original in zip(group.references, reference_files)]

    def original_files(self, group: Group) -> tuple[list[Tensor | None], list[Tensor | None]]:
        """The input files' own pixels (contents, distinct references) when DINOv2 and depth see them
        (`dino_depth_input: original`, the published code's choice); otherwise None for each."""
        if self.dino_depth_input != "original":
            return [None] * len(group.items), [None] * len(group.references)
        from stylex.data.images import load_image, to_tensor

        paths: dict[int, Path] = {}
        for item, indices in zip(group.items, group.ref_index):
            for ref, index in zip(item.styles, indices):
                paths.setdefault(index, ref.path)
        contents = [to_tensor(load_image(item.content.path)) for item in group.items]
        return contents, [to_tensor(load_image(paths[i])) if i in paths else None for i in range(len(group.references))]

    def user_mask(self, content_name: str) -> Tensor | None:
        """A label image `{user_masks}/{content name}.png` (0 = keep the automatic regions), if there is one."""
        if self.user_masks is None:
            return None
        path = self.user_masks / f"{content_name}.png"
        if not path.exists():
            return None
        import numpy as np
        from PIL import Image

        try:
            with Image.open(path) as img:
                return torch.from_numpy(np.asarray(img.convert("L"), dtype=np.int64))
        except OSError as exc:
            from stylex.errors import InputError

            raise InputError(f"{path}: the user mask cannot be read ({exc}). Save it as a PNG label image.") from None

    def analyse(self, image: Tensor, user_mask: Tensor | None = None, original: Tensor | None = None) -> dict[str, Any]:
        """Regions and descriptors of one image, from the cache when nothing that decides them changed.

        `original` [3,H,W]: the file's own pixels, which DINOv2 and depth see with `dino_depth_input: original`
        (each model resizes them with its own preprocessing); the working image stands in when it is absent."""
        from stylex.backbones.dino import patch_tokens

        use_file = self.dino_depth_input == "original" and original is not None
        side = original if use_file else image
        notes = [] if use_file or self.dino_depth_input == "working" else [
            "dino_depth_input=original, but the original file was not given: DINOv2 and depth saw the working image"]
        parts = {"image": tensor_digest(image), "user_mask": None if user_mask is None else tensor_digest(user_mask),
                 "side_input": tensor_digest(side) if use_file else None, **self.stage1_identity()}

        def compute() -> dict[str, Any]:
            with self.base_unet():
                return stage1()

        def stage1() -> dict[str, Any]:
            m = self.matching
            regions = extract_regions(self.backbone, image.to(self.backbone.device), self.region_params,
                                      self.depth if self.region_params.depth_enabled else None, user_mask,
                                      depth_image=side)
            tokens = patch_tokens(self.dino, side[None], m.dino_mode, official_resize=m.dino_resize,
                                  official_crop=m.dino_crop)[0].cpu()
            desc = describe_regions(regions.F_mix, tokens, regions.labels, stat=m.stat, geometry=m.geometry,
                                    min_overlap=m.min_overlap, seed=self.region_params.seed,
                                    stat_layers=m.stat_layers, stat_heads=m.stat_heads)
            return {"latent": regions.latent, "x_T": regions.x_T, "labels": regions.labels, "k": regions.k,
                    "notes": regions.notes + notes, "stat": desc.stat, "sem": desc.sem, "geo": desc.geo}

        return self.cache.get_or_compute("stage1", parts, compute)

    def stage1_identity(self) -> dict[str, Any]:
        """Everything but the pixels that decides `analyse`: its cache key, and the settings a gallery records."""
        return {"model": self.backbone.model_id, "dtype": str(self.backbone.dtype),
                "regions": self.region_params.as_dict(), "dino_depth_input": self.dino_depth_input,
                "depth": getattr(self.depth, "name_or_path", None),
                "dino": getattr(getattr(self.dino, "config", None), "_name_or_path", None),
                "matching": {k: v for k, v in asdict(self.matching).items() if k in STAGE1_MATCHING}}

    # -- stage 2: multi-dimensional matching (METHODS.md 2.2) --------------------------------------------
    def match_regions(self, group: Group, contents: list[dict[str, Any]], references: list[dict[str, Any]],
                      gallery: Any) -> tuple[Group, list[dict[str, Any]], list[RegionPlan]]:
        """Stage 2 (METHODS.md 2.2): each item's plan against its references, or against the gallery, whose
        winning images then become the group's references."""
        if gallery is not None:
            return self.match_gallery(gallery, group, contents)
        plans = [self.plan(item.content.name, group.ref_index[b], contents[b], [references[i] for i in group.ref_index[b]],
                           [s.name for s in item.styles]) for b, item in enumerate(group.items)]
        return group, references, plans

    def plan(self, content_name: str, ref_ids: list[int], content: dict[str, Any], refs: list[dict[str, Any]],
             ref_names: list[str]) -> RegionPlan:
        """Stage 2 for one item against its own references: scores, assignment, and the plan stage 3 follows."""
        matches, table = self.match(content_name, content, refs, ref_names)
        device = self.backbone.device
        return RegionPlan(matches, ref_ids, content["labels"].to(device), [r["labels"].to(device) for r in refs], table)

    def match(self, content_name: str, content: dict[str, Any], refs: list[dict[str, Any]],
              ref_names: list[str]) -> tuple[list[Match], Any]:
        """Scores and assignment, with the user's overrides for this content (`matching.overrides[content_name]`)."""
        m = self.matching
        describe = lambda a: RegionDescriptors(a["stat"], a["sem"], a["geo"])  # noqa: E731
        table = match_scores(describe(content), [describe(r) for r in refs], m.w_stat, m.w_sem, m.w_geo)
        overrides = self.overrides_for(content_name, ref_names, content, refs)
        return assign(table, mode=m.assignment, min_score=m.min_score, overrides=overrides), table

    def overrides_for(self, content_name: str, ref_names: list[str], content: dict, refs: list[dict]) -> dict:
        raw = (self.matching.overrides or {}).get(content_name)
        if not raw:
            return {}
        resolved = {}
        for region, (ref, style_region) in dict(raw).items():
            ref_index = ref_names.index(ref) if isinstance(ref, str) and ref in ref_names else ref
            resolved[region] = (ref_index, style_region)
        return parse_overrides(resolved, int(content["labels"].max()) + 1,
                               [int(r["labels"].max()) + 1 for r in refs])

    def gallery_index(self) -> Any:
        """The gallery at `gallery.path`, opened once the models are loaded: it must have been built with this
        run's stage-1 settings, or its regions and descriptors would not fit the content's (refused)."""
        if self._gallery is None:
            from stylex.gallery.store import Gallery, gallery_identity

            g = self.gallery_config
            expect = gallery_identity(self.stage1_identity(), g["resolution"], g["resize"])
            self._gallery = Gallery.open(g["path"], expect, g.get("device", "auto"), g.get("nprobe"), g.get("rerank"))
        return self._gallery

    def match_gallery(self, gallery: Any, group: Group, contents: list[dict[str, Any]]
                      ) -> tuple[Group, list[dict[str, Any]], list[RegionPlan]]:
        """Stage 2 against the gallery (top-k retrieval, exact ranking, assignment). Returns the group rebuilt with
        only the images that won a match as references, their stored artifacts, and per item its plan (with the
        gallery's sidecar facts and candidate thumbnails)."""
        from stylex.gallery.retrieval import (candidate_rows, candidate_strips, gallery_item, rank_candidates,
                                                   stack_vertically)

        g, m = self.gallery_config, self.matching
        shown = int(g.get("thumbnails", 4))
        items, found_per_item, gallery_facts, artifacts = [], [], [], {}
        for b, item in enumerate(group.items):
            found = rank_candidates(contents[b], gallery, int(g.get("top_k", 16)), (m.w_stat, m.w_sem, m.w_geo),
                                    m.assignment, m.min_score, (m.overrides or {}).get(item.content.name))
            images = []
            for key in found.images:
                artifacts[gallery.entry(key)["sha256"]] = art = gallery.artifact(key)
                image = gallery.reference_image(key)
                if image is None:  # file gone or changed: show what stage 3 uses, the stored latent
                    with torch.no_grad():
                        image = self.backbone.decode(art["latent"][None].to(self.backbone.device))[0].float().cpu()
                images.append(image)
            items.append(gallery_item(item, gallery, found.images, images))
            extra: dict[str, Any] = {}
            if shown > 0:
                import wandb

                strips = candidate_strips(item.content_image, contents[b]["labels"], found.ranked, gallery, shown)
                extra = {"files": {"candidates": stack_vertically([strip for strip, _ in strips])},
                         "wandb": {"candidates": [wandb.Image(strip, caption=text) for strip, text in strips]}}
            info = {"path": str(gallery.root), "digest": gallery.digest, "top_k": int(g.get("top_k", 16)),
                    "candidates": candidate_rows(found.ranked, gallery, max(shown, 1))}
            found_per_item.append(found)
            gallery_facts.append({"info": info, "artifacts": extra})
        rebuilt = group_items(items)[0]
        references = [artifacts[key] for key in dict.fromkeys(k for it in rebuilt.items for k in it.style_keys)]
        device = self.backbone.device
        plans = [RegionPlan(found.matches, ref_ids, contents[b]["labels"].to(device),
                            [references[r]["labels"].to(device) for r in ref_ids], found.table, gallery_facts[b])
                 for b, (found, ref_ids) in enumerate(zip(found_per_item, rebuilt.ref_index))]
        return rebuilt, references, plans

    # -- stage 3: regional style loss with sparse attention (METHODS.md 2.3) -----------------------------
    def optimise(self, contents: list[dict[str, Any]], references: list[dict[str, Any]], plans: list[RegionPlan],
                 desc: str, show_progress: bool) -> tuple[Tensor, Tensor, list[int]]:
        """Stage 3 (METHODS.md 2.3): one Adam over the batch's latents along the timestep list, references'
        K/V and the contents' queries computed once per timestep. Returns the latents, loss curves, timesteps."""
        device = self.backbone.device
        content_latents = torch.stack([c["latent"] for c in contents]).to(device)
        ref_latents = [r["latent"].to(device) for r in references]
        timesteps = self.timesteps()
        if self.init == "inverted":
            init = normalised_noise(torch.stack([c["x_T"] for c in contents]).to(device))
        else:
            init = content_latents
        if self.lora is not None:
            self.lora.fuse()
        latent, curves = optimise_latents(init, timesteps, self.lr, self.iters_per_step,
                                          lambda t: self.step_references(content_latents, ref_latents, t),
                                          lambda x, t, r: self.regional_loss(x, t, r, plans), desc, show_progress)
        return latent, curves, timesteps

    def step_references(self, content_latents: Tensor, ref_latents: list[Tensor], t: int) -> dict[str, Any]:
        """What stage 3 needs at timestep t that does not depend on the optimised latent (computed once per t):
        each distinct reference's K/V and the contents' queries, from the clean latents run at t."""
        content = self.record(content_latents, t, ("q",))
        return {"style": self.record_references(ref_latents, t, ("k", "v")),
                "content_q": {layer: content[layer]["q"] for layer in self.layers}}

    def regional_loss(self, latent: Tensor, t: int, refs: dict[str, Any], plans: list[RegionPlan]) -> Tensor:
        """L_RSL + λ_c·L_GCL per image (METHODS.md 2.3). L_RSL sums over layers and matched pairs the mean
        |out − target| over the pair's heads, tokens and channels, weighted by n_i/N (`loss_norm: layer`) or not
        (`region`); λ_c weighs the query-preservation L1. The target is computed without gradient."""
        student = self.record(latent, t, ("q", "out"))
        style = refs["style"]
        total = latent.new_zeros(latent.shape[0])
        for layer in self.layers:
            q_all, out_all = student[layer]["q"], student[layer]["out"]
            heads, n_tokens, dim = q_all.shape[1:]
            grid = layer_grid(n_tokens, tuple(latent.shape[-2:]))
            for b, plan in enumerate(plans):
                layer_plan = self.layer_plan(plan, layer, grid, heads, dim, style)
                keys = [(style[r][layer]["k"][0], style[r][layer]["v"][0]) for r in plan.ref_ids]
                with torch.no_grad():
                    target = self.regional_targets(q_all[b].detach(), keys, layer_plan)
                    constant = (zero_query_terms([v for _, v in keys], layer_plan.pairs, n_tokens)
                                if self.mask_mode == "zero" and self.loss_norm == "layer" else 0.0)
                per_token = (out_all[b].float() - target.float()).abs().sum(dim=(0, 2))
                total[b] = total[b] + (layer_plan.weights * per_token).sum() + constant
            content_q = refs["content_q"][layer]
            total = total + self.content_weight * (q_all.float() - content_q.float()).abs().flatten(1).mean(1)
        return total

    def layer_plan(self, plan: RegionPlan, layer: str, content_grid: tuple[int, int], heads: int, dim: int,
                   style: list[dict[str, dict[str, Tensor]]]) -> LayerPlan:
        """The plan's pairs at one layer, with this run's temperatures, mask mode, loss normalisation and its
        references' key counts."""
        key_counts = [style[r][layer]["k"].shape[2] for r in plan.ref_ids]
        return plan.at_layer(layer, content_grid, key_counts, heads, dim, self.temperature, self.fallback_temperature,
                             self.mask_mode, self.loss_norm)

    def regional_targets(self, q: Tensor, keys: list[tuple[Tensor, Tensor]], layer_plan: LayerPlan) -> Tensor:
        """[H,N,d] target attention of one image at one layer, by the configured backend."""
        if self.regional_attention == "gather":
            return gather_targets(q, keys, layer_plan.pairs, self.mask_mode)
        compiled = q.device.type == "cuda"  # on CPU flex runs eagerly (a check of the CUDA path; gather is faster)
        if layer_plan.flex is None:
            layer_plan.flex = flex_layout(layer_plan.pairs, q.shape[1], [k.shape[1] for k, _ in keys], q.device,
                                          compiled)
        return flex_targets(q, keys, layer_plan.flex, compiled)

    # -- outputs -----------------------------------------------------------------------------------------
    def output(self, item: Any, plan: RegionPlan, content: dict[str, Any], refs: list[dict[str, Any]],
               image: Tensor, curve: Tensor, attention: dict[int, Tensor], timesteps: list[int],
               timings: dict[str, float]) -> Stylized:
        """One item's image with its sidecar facts (settings, regions, matches) and pictures (overlays, maps)."""
        ref_names = [s.name for s in item.styles]
        rows = match_rows(plan.matches, ref_names)
        info = {**self.describe(), "timesteps": timesteps, "iters_per_step": self.iters_per_step, "lr": self.lr,
                "content_weight": self.content_weight, "mask_mode": self.mask_mode, "loss_norm": self.loss_norm,
                "regional_attention": self.regional_attention, "init": self.init,
                "dino_depth_input": self.dino_depth_input,
                "accel": {"name": self.accel["name"], "schedule": self.accel["schedule"],
                          "lora": self.lora.describe() if self.lora is not None else None},
                "regions": {"content": region_count(plan.content_labels),
                            "references": [region_count(lab) for lab in plan.ref_labels],
                            "notes": content["notes"] + [n for r in refs for n in r["notes"]]
                            + plan.skipped_notes(ref_names)},
                "matches": rows, "cache": {"hits": self.cache.hits, "misses": self.cache.misses}}
        artifacts = {"regions": {"content": plan.content_labels.cpu(), "references": [lab.cpu() for lab in plan.ref_labels]},
                     "matches": rows, "attention": attention}
        if plan.gallery is not None:
            info["gallery"] = plan.gallery["info"]
            artifacts.update(plan.gallery["artifacts"])
        return Stylized(item, image, curve.tolist(), dict(timings), info, artifacts)

    @torch.no_grad()
    def attention_maps(self, latent: Tensor, timesteps: list[int], ref_latents: list[Tensor],
                       plans: list[RegionPlan]) -> list[dict[int, Tensor]]:
        """Per image and used reference: the attention each reference token receives from the matched content
        regions (mean over heads and queries) at the configured layer and timestep, on the layer's grid."""
        layer = self.layers[self.visualise["layer"]] if isinstance(self.visualise["layer"], int) else self.visualise["layer"]
        if layer not in self.layers:
            raise ConfigError(f"method.visualise.layer={layer!r} is not one of the optimised layers {self.layers}.")
        t = timesteps[min(len(timesteps) - 1, int(self.visualise["step"] * len(timesteps)))]
        student = self.record(latent, t, ("q",))[layer]["q"]
        style = self.record_references(ref_latents, t, ("k",))
        heads, n_tokens, dim = student.shape[1:]
        grid = layer_grid(n_tokens, tuple(latent.shape[-2:]))
        maps = []
        for b, plan in enumerate(plans):
            per_ref: dict[int, Tensor] = {}
            for pair in self.layer_plan(plan, layer, grid, heads, dim, style).pairs:
                q_idx, kv_mask = pair.query_idx, pair.key_mask
                if kv_mask is None or not kv_mask.any() or not q_idx.numel():  # fallback, or vanished (zero mode)
                    continue
                k = style[plan.ref_ids[pair.reference]][layer]["k"][0]
                ref_grid = layer_grid(k.shape[1], tuple(plan.ref_labels[pair.reference].shape))
                logits = self.temperature * student[b][:, q_idx] @ k[:, kv_mask].transpose(-1, -2) * k.shape[-1] ** -0.5
                weights = torch.zeros(k.shape[1], device=k.device)
                weights[kv_mask] = logits.float().softmax(-1).mean(dim=(0, 1)) * q_idx.numel()
                acc = per_ref.setdefault(pair.reference, torch.zeros(ref_grid, device=k.device))
                acc += weights.reshape(ref_grid)
            maps.append({r: (m / m.max().clamp_min(1e-12)).cpu() for r, m in per_ref.items()})
        return maps
