"""HAM (CVPR 2026), METHODS.md section 4: heterogeneous attention modulation, on SD1.x/2.x and SD3/3.5.

Three branches share one batch per step: the content and style teachers replay their inversions, the
student starts from SINI (γ·z_T^c + (1−γ)·AdaIN(z_T^c, z_T^s)) and is sampled with CFG on every branch.
GAR blends the student's self-attention q/k/v towards AdaIN(X^c, X^s); LAT gives the student the style
teacher's text K/V and a query blended towards the content's.

One method, two backbone families. `HAM` holds what is common (SINI, the branch layout, the timestep range,
progress, previews, sidecars); what differs sits behind a small `Family` object chosen by `backbone.family`:
- `sd` (SD1.x/2.x UNet, `UNetFamily`): DDIM inversion and sampling on integer timesteps; GAR on the `attn1`
  and LAT on the cross-attention `attn2` of the configured blocks (`GAREditor`, `LATEditor`).
- `sd3` (SD3/3.5 MM-DiT, `MMDiTFamily`): flow-matching Euler inversion and sampling on the scheduler's
  shifted σ grid (t = σ·1000, METHODS.md 0.4); GAR on the image tokens of the joint `attn` and of
  SD3.5-Medium's image-only `attn2`, LAT on the joint `attn`'s text tokens (`HAMJointEditor`).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from stylex.diffusion.adain import sini
from stylex.diffusion.attention import AttentionControl, Editor
from stylex.diffusion.ddim import ddim_timesteps
from stylex.diffusion.editors import CONTENT, STUDENT, STYLE, ByKind, GAREditor, LATEditor, branch_layout
from stylex.diffusion.flow import branch_conditioning, flow_timesteps, prepare_flow_teachers, sample_branches_flow
from stylex.diffusion.sampling import (BatchLayout, evenly_spaced, first_references, prepare_teachers,
                                       sample_branches, sampling_grid)
from stylex.errors import ConfigError
from stylex.methods.base import Group, StyleTransferMethod, Stylized, Timer

log = logging.getLogger(__name__)

BRANCHES = (CONTENT, STYLE, STUDENT)
# Settings that only exist on SD3/3.5 (MM-DiT), with their defaults.
SD3_ONLY = {"transplant_text_kv": True, "gar_attn2": True}

StepCallback = Callable[[int, Any, dict[str, Tensor]], None]


def branch_grid(previews: list[dict[str, Tensor]], rows: dict[str, int]) -> Tensor:
    """One item's previews as an image grid [3, branches·H, steps·W]: a row per branch, a column per step.

    `previews[j][branch]` holds decoded images [n,3,H,W] of step j; `rows[branch]` picks this item's row."""
    return torch.cat([torch.cat([p[name][rows[name]] for p in previews], dim=2) for name in BRANCHES], dim=1)


class Family:
    """What HAM does differently per backbone family: layers and processors, inversion, conditioning, editor,
    sampler. Trajectories and timesteps are the family's own types (DDIM: {int t: latent}; flow:
    `FlowTrajectory` and float t = σ·1000); `HAM` only passes them along."""

    name = ""
    # appended to a "no such layer" error: how this family names its blocks
    layer_hint = ""

    def __init__(self, backbone: Any):
        self.bb = backbone

    def check(self, ham: "HAM") -> None:
        """Reject or warn about settings that mean nothing or something weaker on this family."""

    def layers(self, ham: "HAM") -> tuple[list[str], list[str]]:
        """(GAR layers, LAT layers) as module paths."""
        raise NotImplementedError

    def install(self, layers: list[str]) -> AttentionControl:
        raise NotImplementedError

    def timesteps(self, num_steps: int) -> list:
        """The sampling grid's model timesteps, in sampling order."""
        raise NotImplementedError

    def invert(self, contents: Tensor, references: list[Tensor], num_steps: int,
               on_step: Callable[[int, Any], None] | None = None) -> tuple[Any, Any]:
        """Content and style trajectories (empty prompt, no guidance)."""
        raise NotImplementedError

    def noise(self, content: Any, style: Any, num_steps: int) -> tuple[Tensor, Tensor]:
        """z_T of the content and style trajectories (where sampling starts)."""
        raise NotImplementedError

    def editor(self, ham: "HAM", layout: BatchLayout, style_of: list[int]) -> Editor:
        raise NotImplementedError

    def conditioning(self, layout: BatchLayout, prompt: str, style_prompt: str) -> Any:
        """Unconditional "" in the first half (when guided); `prompt` for content and student, `style_prompt`
        for the style teacher."""
        raise NotImplementedError

    def sample(self, predict: Callable[[Tensor, Any], Tensor], layout: BatchLayout, students: dict[str, Tensor],
               teachers: dict[str, Any], num_steps: int, guidance_scale: float,
               on_step: StepCallback | None) -> dict[str, Tensor]:
        raise NotImplementedError

    def info(self, ham: "HAM") -> dict[str, Any]:
        """Family-specific facts for the sidecar."""
        return {}


class UNetFamily(Family):
    """SD1.x/2.x: DDIM on integer timesteps; GAR on self-attention `attn1`, LAT on cross-attention `attn2`."""

    name = "sd"
    layer_hint = ("On SD1.x/2.x (backbone.family=sd) HAM's layers are UNet blocks, e.g. "
                  "[up_blocks.1, up_blocks.2, up_blocks.3] (method=ham, experiment=ham_sd21).")

    def check(self, ham: "HAM") -> None:
        changed = [key for key, default in SD3_ONLY.items() if getattr(ham, key) != default]
        if changed:
            raise ConfigError(f"method.{changed[0]} applies to SD3/3.5 backbones only (backbone.family=sd3); on "
                              f"SD1.x/2.x leave it at {SD3_ONLY[changed[0]]}. There LAT's K/V come from the "
                              f"style teacher's prompt: leave method.style_prompt null for no K/V transplant.")
        if ham.lat_layers and ham.style_prompt is None:
            log.warning("HAM: no method.style_prompt given, so LAT reduces to its query blend: in SD1.x/2.x "
                        "cross-attention K/V depend only on the prompt, and the style teacher's prompt is then the "
                        "content prompt. Set method.style_prompt='a painting in the style of ...' to transplant style.")

    def layers(self, ham: "HAM") -> tuple[list[str], list[str]]:
        gar = self.bb.attention_layers(ham.gar_prefixes, "attn1") if ham.gar_prefixes else []
        lat = self.bb.attention_layers(ham.lat_prefixes, "attn2") if ham.lat_prefixes else []
        return gar, lat

    def install(self, layers: list[str]) -> AttentionControl:
        from stylex.diffusion.attention import install_control

        return install_control(self.bb.unet, layers)

    def timesteps(self, num_steps: int) -> list[int]:
        return ddim_timesteps(self.bb.scheduler_config, num_steps)

    def invert(self, contents, references, num_steps, on_step=None):
        return prepare_teachers(self.bb, contents, references, num_steps, on_step=on_step)

    def noise(self, content, style, num_steps):
        t_start = sampling_grid(self.bb.scheduler_config, num_steps, content=content, style=style)[0]
        return content[t_start], style[t_start]

    def editor(self, ham, layout, style_of):
        gar = GAREditor(layout, style_of, ham.alpha, ham.gar_targets, ham.temperature)
        lat = LATEditor(layout, style_of, ham.beta, ham.temperature)
        return ByKind(gar, lat)

    def conditioning(self, layout, prompt, style_prompt):
        text = self.bb.embed_prompt(["", prompt, style_prompt])
        return layout.conditioning(text[0:1], {CONTENT: text[1:2], STUDENT: text[1:2], STYLE: text[2:3]})

    def sample(self, predict, layout, students, teachers, num_steps, guidance_scale, on_step):
        return sample_branches(predict, layout, students, teachers, self.bb.scheduler_config, num_steps,
                               guidance_scale, on_step)

    def info(self, ham):
        return {"lat_kv_transplant": ham.style_prompt is not None and bool(ham.lat_layers)}


class MMDiTFamily(Family):
    """SD3/3.5: flow-matching Euler on the shifted σ grid (t = σ·1000); joint attention through
    `HAMJointEditor`: GAR on image tokens (joint `attn`, and SD3.5-Medium's image-only `attn2` when
    `gar_attn2`), LAT on the joint layers' text tokens."""

    name = "sd3"
    layer_hint = ("On SD3/3.5 (backbone.family=sd3) HAM's layers are MM-DiT blocks, e.g. [transformer_blocks] or "
                  "[transformer_blocks.0, transformer_blocks.1] (method=ham_sd3, experiment=ham_sd35).")

    def check(self, ham: "HAM") -> None:
        if ham.lat_layers and ham.transplant_text_kv:
            log.info("HAM on SD3: LAT gives the student the style teacher's text K/V, which the joint attention "
                     "has contextualised with the style image (method.transplant_text_kv=true).")

    def layers(self, ham: "HAM") -> tuple[list[str], list[str]]:
        bb = self.bb
        gar = bb.attention_layers(ham.gar_prefixes, "attn") if ham.gar_prefixes else []
        if ham.gar_prefixes and ham.gar_attn2:  # SD3.5-Large has no image-only attn2: none is fine
            gar += bb.attention_layers(ham.gar_prefixes, "attn2", required=False)
        lat = bb.attention_layers(ham.lat_prefixes, "attn") if ham.lat_prefixes else []
        return gar, lat

    def install(self, layers: list[str]) -> AttentionControl:
        from stylex.diffusion.joint_attention import install_joint_control

        return install_joint_control(self.bb.transformer, layers)

    def timesteps(self, num_steps: int) -> list[float]:
        return flow_timesteps(self.bb.scheduler_config, num_steps).tolist()

    def invert(self, contents, references, num_steps, on_step=None):
        return prepare_flow_teachers(self.bb, contents, references, num_steps, on_step=on_step)

    def noise(self, content, style, num_steps):
        return content.noise, style.noise

    def editor(self, ham, layout, style_of):
        from stylex.diffusion.joint_attention import HAMJointEditor

        return HAMJointEditor(layout, style_of, ham.alpha, ham.beta, ham.gar_targets, ham.transplant_text_kv,
                              gar_layers=set(ham.gar_layers), lat_layers=set(ham.lat_layers),
                              temperature=ham.temperature)

    def conditioning(self, layout, prompt, style_prompt):
        text = self.bb.embed_prompt(["", prompt, style_prompt])
        row = lambda i: (text.embeds[i:i + 1], text.pooled[i:i + 1])  # noqa: E731
        return branch_conditioning(layout, row(0), {CONTENT: row(1), STUDENT: row(1), STYLE: row(2)})

    def sample(self, predict, layout, students, teachers, num_steps, guidance_scale, on_step):
        return sample_branches_flow(predict, layout, students, teachers, self.bb.scheduler_config, num_steps,
                                    guidance_scale, on_step=on_step)

    def info(self, ham):
        return {"lat_kv_transplant": ham.transplant_text_kv and bool(ham.lat_layers),
                "transplant_text_kv": ham.transplant_text_kv, "gar_attn2": ham.gar_attn2}


FAMILIES: dict[str, type[Family]] = {UNetFamily.name: UNetFamily, MMDiTFamily.name: MMDiTFamily}


def family_of(backbone: Any) -> Family:
    family = getattr(backbone, "family", "sd")
    if family not in FAMILIES:
        raise ConfigError(f"HAM runs on backbone.family {' or '.join(FAMILIES)}, not {family!r}.")
    return FAMILIES[family](backbone)


class HAM(StyleTransferMethod):
    """HAM on any supported backbone family (see the module docstring). `transplant_text_kv` and `gar_attn2`
    are SD3-only: LAT's text K/V transplant (off: the student keeps its own text K/V, only the query blend
    remains) and GAR on SD3.5-Medium's image-only `attn2` layers under `gar_layers`."""

    name = "ham"

    def __init__(self, backbone: Callable[..., Any] | None = None,
                 gar_layers: Sequence[str] = ("up_blocks.1", "up_blocks.2", "up_blocks.3"),
                 lat_layers: Sequence[str] = ("up_blocks.1", "up_blocks.2", "up_blocks.3"),
                 gar_targets: Sequence[str] = ("q", "k", "v"), t_range: Sequence[float] = (0, 1000),
                 num_steps: int = 50, alpha: float = 0.75, beta: float = 0.25, gamma: float = 0.5,
                 guidance_scale: float = 7.5, temperature: float = 1.0, prompt: str = "",
                 style_prompt: str | None = None, log_timesteps: int = 3, seed: int = 0, show_progress: bool = True,
                 transplant_text_kv: bool = SD3_ONLY["transplant_text_kv"], gar_attn2: bool = SD3_ONLY["gar_attn2"]):
        super().__init__(backbone, seed, show_progress)
        if set(gar_targets) - {"q", "k", "v"}:
            raise ConfigError(f"method.gar_targets={list(gar_targets)} must be a subset of [q, k, v].")
        if len(t_range) != 2 or t_range[0] > t_range[1]:
            raise ConfigError(f"method.t_range={list(t_range)} must be [low, high] with low <= high.")
        self.gar_prefixes, self.lat_prefixes = tuple(gar_layers), tuple(lat_layers)
        self.gar_targets, self.t_range = tuple(gar_targets), (float(t_range[0]), float(t_range[1]))
        self.num_steps, self.alpha, self.beta, self.gamma = num_steps, alpha, beta, gamma
        self.guidance_scale, self.temperature = guidance_scale, temperature
        self.prompt, self.style_prompt = prompt, style_prompt or None
        self.transplant_text_kv, self.gar_attn2 = bool(transplant_text_kv), bool(gar_attn2)
        self.log_timesteps = log_timesteps
        self.gar_layers: list[str] = []
        self.lat_layers: list[str] = []
        self.control: Any = None
        self.family: Family | None = None

    def on_backbone_ready(self) -> None:
        family = family_of(self.backbone)
        try:
            gar, lat = family.layers(self)
        except ConfigError as exc:
            raise ConfigError(f"{exc} {family.layer_hint}") from None
        self.family, self.gar_layers, self.lat_layers = family, gar, lat
        family.check(self)  # before installing anything
        self.control = family.install(gar + lat)  # a layer in both (SD3 joint attn) gets one processor
        # in execution order (SD3: joint attn and image-only attn2 interleaved)
        self.gar_layers = [layer for layer in self.control.layers if layer in set(gar)]
        self.lat_layers = [layer for layer in self.control.layers if layer in set(lat)]
        log.debug("HAM (%s): GAR on %d layers, LAT on %d", family.name, len(self.gar_layers), len(self.lat_layers))

    def edits(self, t: float) -> bool:
        return self.t_range[0] <= t <= self.t_range[1]

    def layout(self, batch: int, styles: int) -> BatchLayout:
        return branch_layout(batch, styles, guided=self.guidance_scale != 1.0)

    def editor(self, layout: BatchLayout, style_of: list[int]) -> Editor:
        return self.family.editor(self, layout, style_of)

    def transfer(self, content: Any, style: Any, style_of: list[int], on_step: StepCallback | None = None) -> Tensor:
        """Sample the students beside the teachers' trajectories (DDIM: {t: latents}; SD3: `FlowTrajectory`);
        returns the students' final latents."""
        bb, family = self.backbone, self.family
        z_c, z_s = family.noise(content, style, self.num_steps)
        init = sini(z_c, z_s[style_of], self.gamma)
        layout = self.layout(z_c.shape[0], z_s.shape[0])
        editor = self.editor(layout, style_of)
        cond = family.conditioning(layout, self.prompt, self.style_prompt or self.prompt)

        def predict(x: Tensor, t: Any) -> Tensor:
            with self.control.use(editor if self.edits(t) else Editor()):
                return bb.denoise(x, t, cond)

        out = family.sample(predict, layout, {STUDENT: init}, {CONTENT: content, STYLE: style}, self.num_steps,
                            self.guidance_scale, on_step)
        return out[STUDENT]

    def wants_previews(self) -> bool:
        """Branch previews cost VAE decodes: they are made in a run (saved as PNGs, shown in W&B), not when the
        method is called on its own (benchmarks, tests)."""
        return self.log_timesteps > 0 and self._trainer is not None

    def wants_wandb(self) -> bool:
        """Whether a W&B logger will show the branch previews."""
        if self._trainer is None or not self.rank_zero:
            return False
        from lightning.pytorch.loggers import WandbLogger

        return any(isinstance(logger, WandbLogger) for logger in self.trainer.loggers)

    def stylize(self, group: Group) -> list[Stylized]:
        bb, family = self.backbone, self.family
        timer = Timer()
        used, style_of = first_references(group.ref_index, self.name)
        timesteps = family.timesteps(self.num_steps)
        shown = set(evenly_spaced(list(range(len(timesteps))), self.log_timesteps)) if self.wants_previews() else set()
        x0s: list[tuple[Any, dict[str, Tensor]]] = []
        desc, show = self.progress(group)
        bar = tqdm(total=2 * self.num_steps, desc=desc, leave=False, disable=not show, dynamic_ncols=True)

        def on_step(i: int, t: Any, x0: dict[str, Tensor]) -> None:
            bar.update()
            if i in shown:
                x0s.append((t, x0))

        with timer.phase("encode_invert"):
            content, style = family.invert(group.contents, [group.references[i] for i in used], self.num_steps,
                                           on_step=lambda i, t: bar.update())
        with timer.phase("sample"):
            latent = self.transfer(content, style, style_of, on_step)
        bar.close()
        with timer.phase("decode"), torch.no_grad():
            images = bb.decode(latent).cpu()
        artifacts: list[dict[str, Any]] = [{} for _ in group.items]
        if x0s:
            with timer.phase("previews"):
                artifacts = self.branch_artifacts(x0s, style_of)
        info = {**self.describe(), "backbone_family": family.name, "timesteps": timesteps,
                "gar_layers": self.gar_layers, "lat_layers": self.lat_layers, "gar_targets": list(self.gar_targets),
                "t_range": list(self.t_range), "alpha": self.alpha, "beta": self.beta, "gamma": self.gamma,
                "guidance_scale": self.guidance_scale, "temperature": self.temperature, "prompt": self.prompt,
                "style_prompt": self.style_prompt, **family.info(self), "style_size": list(group.contents.shape[-2:])}
        per_image = {k: v / len(group.items) for k, v in timer.seconds.items()}
        return [Stylized(item, images[b], [], dict(per_image), info, artifacts[b])
                for b, item in enumerate(group.items)]

    @torch.no_grad()
    def branch_artifacts(self, x0s: list[tuple[Any, dict[str, Tensor]]], style_of: list[int]) -> list[dict[str, Any]]:
        """Per item: the three branches' predicted clean images at the logged steps, as one image grid (rows:
        branches, columns: steps), saved as `overlays/{name}.branches.png` and shown in W&B."""
        from stylex.data.images import to_pil

        previews = [{name: self.backbone.decode(x0[name]).cpu() for name in BRANCHES} for _, x0 in x0s]
        caption = ("rows: content teacher, style teacher, student; columns: predicted x0 at t = "
                   + ", ".join(f"{t:g}" for t, _ in x0s))
        grids = [to_pil(branch_grid(previews, {CONTENT: b, STYLE: s, STUDENT: b})) for b, s in enumerate(style_of)]
        if not self.wants_wandb():
            return [{"files": {"branches": grid}} for grid in grids]
        import wandb

        return [{"files": {"branches": grid}, "wandb": {"branches": wandb.Image(grid, caption=caption)}}
                for grid in grids]
