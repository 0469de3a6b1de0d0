"""Every experiment, as Hydra composes it, against the values of docs/METHODS.md.

Each row names the experiments it applies to, the config key, the value, and the METHODS.md section and text
that give it (checked to be there, so the citation cannot go stale); a failure names the METHODS.md line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "configs"
DOCS = {name: (ROOT / "docs" / name).read_text().splitlines() for name in ("METHODS.md", "REPRODUCING.md")}

AD = ("ad", "smoke")
GALLERY = ("gallery", "gallery_official")  # the 150-step runs
ACCEL = ("gallery_lcm", "gallery_hyper")
SG = GALLERY + ACCEL
SD15 = AD + SG + ("styleid",)
HAM = ("ham_sd21", "ham_sd35", "ham_sd35_large")
SD35 = ("ham_sd35", "ham_sd35_large")
OFFICIAL = ("gallery_official",)

# (experiments, config key, value, section, text of that section that states it[, document])
ROWS: list[tuple[Any, ...]] = [
    # 0.1 layers
    (SD15, "method.layers", ["up_blocks.2", "up_blocks.3"], "§0.1",
     "= the `attn1` of `up_blocks[2]` and `up_blocks[3]`"),
    (AD + SG, "backbone.model", "stable-diffusion-v1-5/stable-diffusion-v1-5", "§1",
     "`stable-diffusion-v1-5/stable-diffusion-v1-5`"),
    # 1 Attention Distillation
    (AD, "method._target_", "stylex.methods.attention_distillation.AttentionDistillation", "§1",
     "## 1. Attention Distillation"),
    (AD, "method.style_temperature", 1.0, "§1", "with the target detached, s = 1"),
    (AD, "method.content_weight", 0.25, "§1", "weight 0.25. Total = style + 0.25·content"),
    (AD, "method.lr", 0.05, "§1", "one Adam over the latent, lr 0.05, state kept across timesteps"),
    (AD, "method.init", "content", "§1", "Latent init: the content latent."),
    (AD, "method.prompt", "", "§1", "- Empty prompt, no CFG."),
    (("ad",), "method.num_steps", 200, "§1", "the DDIM grid of 200 steps"),
    (AD, "method.iters_per_step", 1, "§1", "1 Adam iteration per timestep"),
    # 2.1 stage 1
    (SG, "method._target_", "stylex.methods.stylegallery.StyleGallery", "§2", "## 2. StyleGallery"),
    (SG, "data.pairing", "gallery", "§2", "Input: one content image and **any number** of style references"),
    (SG, "method.regions.inversion_steps", 15, "§2.1", "DDIM inversion, 15 steps, empty prompt"),
    (SG, "method.regions.feature_block", "up_blocks.2", "§2.1", "record the output of `unet.up_blocks[2]`"),
    (SG, "method.regions.time_sharpness", 5.0, "§2.1", "`d(i) = 1/(1+exp(5·(i/15 − 0.7)))`"),
    (SG, "method.regions.time_center", 0.7, "§2.1", "`d(i) = 1/(1+exp(5·(i/15 − 0.7)))`"),
    (SG, "method.regions.pca_dims", 60, "§2.1", "PCA to 60 dims"),
    (SG, "method.regions.n_init", 10, "§2.1", "(10 restarts, ≤ 64 iterations, seeded)"),
    (SG, "method.regions.max_iter", 64, "§2.1", "(10 restarts, ≤ 64 iterations, seeded)"),
    (SG, "method.regions.max_k", 10, "§2.1", "choose k in 2..K (K = 10)"),
    (GALLERY[:1] + ACCEL, "method.regions.silhouette_sample_size", None, "§2.1", "The silhouette is"),
    (OFFICIAL, "method.regions.silhouette_sample_size", 5000, "silhouette", "5000 sampled pixels", "REPRODUCING.md"),
    (SG, "method.regions.merge_threshold", 0.85, "§2.1", "means are closer than 0.85 (L2)"),
    (SG, "method.regions.depth_enabled", True, "§2.1", "Depth split-and-merge (switch, default on"),
    (SG, "method.depth.model", "depth-anything/Depth-Anything-V2-Large-hf", "§2.1", "Depth Anything V2, Large"),
    (GALLERY[:1] + ACCEL, "method.regions.depth_resize", "area", "§2.1", "latent grid by area averaging"),
    (OFFICIAL, "method.regions.depth_resize", "nearest", "§2.1", "(official: nearest sampling)"),
    (SG, "method.regions.depth_min_pixels", 20, "§2.1", "Split a cluster (≥ 20 px)"),
    (SG, "method.regions.depth_low_pct", 5, "§2.1", "5th–95th percentile depth span ≥ 0.75"),
    (SG, "method.regions.depth_high_pct", 95, "§2.1", "5th–95th percentile depth span ≥ 0.75"),
    (SG, "method.regions.depth_span", 0.75, "§2.1", "5th–95th percentile depth span ≥ 0.75"),
    (SG, "method.regions.depth_remerge_latent", 0.35, "§2.1", "latent-mean L2 < 0.35 **and** mean-depth gap < 0.3"),
    (SG, "method.regions.depth_remerge_depth", 0.3, "§2.1", "latent-mean L2 < 0.35 **and** mean-depth gap < 0.3"),
    (SG, "method.regions.min_region_pixels", 20, "§2.1", "smaller than 20 latent pixels"),
    (GALLERY[:1] + ACCEL, "method.dino_depth_input", "working", "§2.1", "DINOv2 and depth see the working image"),
    (OFFICIAL, "method.dino_depth_input", "original", "§2.1", "(official: the original file, resized by each"),
    (OFFICIAL, "data.content_resize", "squash", "§2.1", "(reference: squashed to 512²)"),
    (OFFICIAL, "data.resolution", 512, "§2.1", "(reference: squashed to 512²)"),
    # 2.2 stage 2
    (SG, "method.dino.model", "facebook/dinov2-base", "§2.2", "DINOv2-base patch tokens"),
    (GALLERY[:1] + ACCEL, "method.matching.stat", "mean_std", "§2.2", "mean and standard deviation of F_mix"),
    (OFFICIAL, "method.matching.stat", "official", "§2.2", "keep as `stat: official` only for reproduction"),
    (SG, "method.matching.stat_layers", 8, "§2.2", "*untrained, randomly initialised* 8-layer transformer"),
    (GALLERY[:1] + ACCEL, "method.matching.dino_mode", "aligned", "§2.2", "token grid aligned to the region grid"),
    (OFFICIAL, "method.matching.dino_mode", "official", "§2.2", "(Official: resize 256 + centre-crop 224"),
    (SG, "method.matching.dino_resize", 256, "§2.2", "(Official: resize 256 + centre-crop 224"),
    (SG, "method.matching.dino_crop", 224, "§2.2", "(Official: resize 256 + centre-crop 224"),
    (SG, "method.matching.min_overlap", 0.01, "§2.2", "by more than 1 % of the patch"),
    (SG, "method.matching.geometry", "centroid", "§2.2", "centroid and maximum distance to it (official)"),
    (SG, "method.matching.w_stat", 0.25, "§2.2", "`0.25·cos(stat) + 1.0·cos(sem) + 0.125·IoU`"),
    (SG, "method.matching.w_sem", 1.0, "§2.2", "`0.25·cos(stat) + 1.0·cos(sem) + 0.125·IoU`"),
    (SG, "method.matching.w_geo", 0.125, "§2.2", "`0.25·cos(stat) + 1.0·cos(sem) + 0.125·IoU`"),
    (SG, "method.matching.assignment", "many_to_one", "§2.2", "(many-to-one; style regions may go unused)"),
    # 2.3 stage 3
    (SG, "method.temperature", 1.5, "§2.3", "target `T = softmax(1.5 · Q[i] K_r[j]ᵀ / √d) · V_r[j]`"),
    (GALLERY[:1] + ACCEL, "method.mask_mode", "sparse", "§2.3", "(true sparse attention"),
    (OFFICIAL, "method.mask_mode", "zero", "§2.3", "(Official `mask_mode: zero`"),
    (SG, "method.loss_norm", "layer", "§2.3", "so it is the default (`loss_norm: layer`)"),
    (SG, "method.init", "inverted", "§2.3", "Latent init: the inverted x_T of the content"),
    (SG, "method.prompt", "", "§2.3", "empty prompt; no CFG; no scheduler step"),
    (GALLERY, "method.content_weight", 0.26, "§2.3", "`L = L_RSL + λ_c·L_GCL`, λ_c = 0.26."),
    (GALLERY, "method.lr", 0.05, "§2.3", "Optimiser: one Adam, lr 0.05, across the run"),
    (GALLERY, "method.num_steps", 150, "§2.3", "150 timesteps from the DDIM grid of 150 (t 895 → 1), 1 iteration"),
    (GALLERY, "method.iters_per_step", 1, "§2.3", "150 timesteps from the DDIM grid of 150 (t 895 → 1), 1 iteration"),
    # 2.4 accelerated variants
    (("gallery_lcm",), "method.num_steps", 28, "§2.4", "28 steps × 3 Adam iterations, lr 0.25, λ_c 0.33"),
    (("gallery_lcm",), "method.iters_per_step", 3, "§2.4", "28 steps × 3 Adam iterations, lr 0.25, λ_c 0.33"),
    (("gallery_lcm",), "method.lr", 0.25, "§2.4", "28 steps × 3 Adam iterations, lr 0.25, λ_c 0.33"),
    (("gallery_lcm",), "method.content_weight", 0.33, "§2.4", "28 steps × 3 Adam iterations, lr 0.25, λ_c 0.33"),
    (("gallery_lcm",), "method.accel.schedule", "lcm", "§2.4", "timesteps from `LCMScheduler`"),
    (("gallery_lcm",), "method.accel.original_inference_steps", 50, "§2.4", "`original_inference_steps=50`"),
    (("gallery_lcm",), "method.accel.lora.source", "latent-consistency/lcm-lora-sdv1-5", "§2.4",
     "`latent-consistency/lcm-lora-sdv1-5`"),
    (("gallery_hyper",), "method.num_steps", 28, "§2.4", "28 steps × 3 iterations, lr 0.15, λ_c 0.38"),
    (("gallery_hyper",), "method.iters_per_step", 3, "§2.4", "28 steps × 3 iterations, lr 0.15, λ_c 0.38"),
    (("gallery_hyper",), "method.lr", 0.15, "§2.4", "28 steps × 3 iterations, lr 0.15, λ_c 0.38"),
    (("gallery_hyper",), "method.content_weight", 0.38, "§2.4", "28 steps × 3 iterations, lr 0.15, λ_c 0.38"),
    (("gallery_hyper",), "method.accel.schedule", "euler_trailing", "§2.4", "`EulerDiscreteScheduler` with trailing"),
    (("gallery_hyper",), "method.accel.lora.source", "ByteDance/Hyper-SD", "§2.4", "`ByteDance/Hyper-SD`"),
    (("gallery_hyper",), "method.accel.lora.weight_name", "Hyper-SD15-4steps-lora.safetensors", "§2.4",
     "`Hyper-SD15-4steps-lora.safetensors`"),
    # 3 StyleID
    (("styleid",), "method._target_", "stylex.methods.styleid.StyleID", "§3", "## 3. StyleID"),
    (("styleid",), "backbone.model", "stable-diffusion-v1-5/stable-diffusion-v1-5", "§3", "Model: SD1.4/1.5"),
    (("styleid",), "method.gamma", 0.75, "§3", "(γ = 0.75; 0.3 = \"high style\")"),
    (("styleid",), "method.temperature", 1.5, "§3", "V_s`, T = 1.5."),
    (("styleid",), "method.num_steps", 50, "§3", "50-step DDIM inversion of content and style"),
    (("styleid",), "method.guidance_scale", 1.0, "§3", "empty prompt, no CFG."),
    (("styleid",), "method.adain_init", True, "§3", "Init: `z_T = AdaIN(z_T^c, z_T^s)`"),
    # 4 HAM
    (HAM, "method._target_", "stylex.methods.ham.HAM", "§4", "## 4. HAM"),
    (HAM, "method.alpha", 0.75, "§4", "`X̂ = α·X^m + (1−α)·X^cs`, α = 0.75."),
    (HAM, "method.beta", 0.25, "§4", "`β·Q^m + (1−β)·Q^c`, β = 0.25."),
    (HAM, "method.gamma", 0.5, "§4", "`z_T^m = γ·(z_T^c − AdaIN(z_T^c, z_T^s)) + AdaIN(z_T^c, z_T^s)`, γ = 0.5"),
    (HAM, "method.t_range", [0, 1000], "§4", "transformer blocks (`up_blocks.1–3`), all steps"),
    (HAM, "method.temperature", 1.0, "§4", "no attention temperature"),
    (("ham_sd21",), "backbone.model", "stabilityai/stable-diffusion-2-1-base", "§4",
     "SD2.1-base (`stabilityai/stable-diffusion-2-1-base`"),
    (("ham_sd21",), "method.num_steps", 50, "§4", "50-step DDIM, 50-step inversion"),
    (("ham_sd21",), "method.guidance_scale", 7.5, "§4", "CFG 7.5 on every branch"),
    (("ham_sd21",), "method.gar_layers", ["up_blocks.1", "up_blocks.2", "up_blocks.3"], "§4",
     "GAR and LAT on all decoder"),
    (("ham_sd21",), "method.lat_layers", ["up_blocks.1", "up_blocks.2", "up_blocks.3"], "§4",
     "GAR and LAT on all decoder"),
    (("ham_sd35",), "backbone.model", "stabilityai/stable-diffusion-3.5-medium", "§4", "Medium 40 / 4.5"),
    (("ham_sd35",), "method.num_steps", 40, "§4", "Medium 40 / 4.5"),
    (("ham_sd35",), "method.guidance_scale", 4.5, "§4", "Medium 40 / 4.5"),
    (("ham_sd35_large",), "backbone.model", "stabilityai/stable-diffusion-3.5-large", "§4", "Large 28 steps / CFG 3.5"),
    (("ham_sd35_large",), "method.num_steps", 28, "§4", "Large 28 steps / CFG 3.5"),
    (("ham_sd35_large",), "method.guidance_scale", 3.5, "§4", "Large 28 steps / CFG 3.5"),
    (SD35, "backbone.family", "sd3", "§0.4", "### 0.4 Flow-matching inversion (SD3.5)"),
]

CASES = [(exp, *row[1:5], row[5] if len(row) > 5 else "METHODS.md") for row in ROWS for exp in row[0]]


@pytest.fixture(scope="module")
def composed():
    """Each experiment composed once, as `python -m stylex.run experiment=NAME` composes it."""
    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers

    register_resolvers()
    cache: dict[str, Any] = {}

    def get(experiment: str):
        if experiment not in cache:
            with initialize_config_dir(str(CONFIGS), version_base="1.3"):
                cache[experiment] = compose("run", overrides=[f"experiment={experiment}"])
        return cache[experiment]

    return get


def cited_line(document: str, text: str) -> int:
    for number, line in enumerate(DOCS[document], start=1):
        if text in line:
            return number
    raise AssertionError(f"docs/{document} no longer says {text!r}: update the row that cites it")


@pytest.mark.parametrize("experiment, key, value, section, text, doc",
                         [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in CASES])
def test_experiment_composes_to_the_value_methods_md_gives(composed, experiment, key, value, section, text, doc):
    line = cited_line(doc, text)
    actual = OmegaConf.select(composed(experiment), key, default="<missing>")
    if OmegaConf.is_config(actual):
        actual = OmegaConf.to_container(actual)
    same = actual is value if isinstance(value, bool) or isinstance(actual, bool) else actual == value
    assert same, (
        f"experiment={experiment}: {key} = {actual!r}, but docs/{doc} {section}, line {line} "
        f"(\"{text}\") gives {value!r}")


def test_every_experiment_has_rows():
    experiments = {path.stem for path in (CONFIGS / "experiment").glob("*.yaml")}
    assert experiments == {case[0] for case in CASES}


def test_gallery_official_names_each_switch_with_a_comment():
    """Every value gallery_official sets carries a comment saying which published behaviour it reproduces."""
    lines = (CONFIGS / "experiment" / "gallery_official.yaml").read_text().splitlines()
    settings = [line for line in lines if ":" in line and not line.lstrip().startswith(("#", "-"))
                and not line.rstrip().endswith(":") and not line.startswith(("task_name", "defaults"))]
    assert settings and all("#" in line for line in settings), [line for line in settings if "#" not in line]
