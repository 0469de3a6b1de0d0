"""Acceleration LoRAs (LCM-LoRA, Hyper-SD) fused into a frozen SD UNet, and unfused to give it back intact.

Loading goes through diffusers' `load_lora_weights`, which reads every published LoRA format.
"""
from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from stylex.backbones.hub import is_local_path, load_pretrained

log = logging.getLogger(__name__)
ADAPTER = "stylex_accel"


def lora_pipeline(backbone: Any) -> Any:
    """A StableDiffusionPipeline view over the backbone's modules (no copies), for diffusers' LoRA loaders."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    return StableDiffusionPipeline(vae=backbone.vae, text_encoder=backbone.text_encoder, tokenizer=backbone.tokenizer,
                                   unet=backbone.unet, scheduler=DDIMScheduler.from_config(backbone.scheduler_config),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def save_random_lora(unet: torch.nn.Module, directory: str | Path, rank: int = 4, seed: int = 0,
                     scale: float = 0.5) -> Path:
    """Write a random LoRA for `unet` in diffusers' format (tests and `debug=smoke` stand-in for a real one)."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    adapter = "stylex_random"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                    target_modules=["to_q", "to_k", "to_v", "to_out.0"]), adapter_name=adapter)
        state = get_peft_model_state_dict(unet, adapter_name=adapter)
        state = {k: v * scale for k, v in state.items()}
    unet.delete_adapters(adapter)
    directory = Path(directory)
    StableDiffusionPipeline.save_lora_weights(directory, unet_lora_layers=convert_state_dict_to_diffusers(state))
    return directory / "pytorch_lora_weights.safetensors"


class FusedLora:
    """Loads one LoRA into a backbone's UNet and fuses/unfuses it on demand."""

    def __init__(self, backbone: Any, source: str, weight_name: str | None = None, scale: float = 1.0,
                 random: bool = False, config_key: str = "accel.lora"):
        self.backbone, self.scale = backbone, scale
        self.pipe = lora_pipeline(backbone)
        self.random = random
        self.source, self.weight_name = source, weight_name  # as configured (`random` says it stands in)
        if random:  # written to a temporary folder, read back, and the folder removed
            with tempfile.TemporaryDirectory(prefix="stylex-lora-") as folder:
                self._load(str(save_random_lora(backbone.unet, folder)), None, config_key)
        else:
            self._load(source, weight_name, config_key)
        backbone.unet.requires_grad_(False)  # the adapter's parameters are frozen like the rest
        self.pipe.disable_lora()
        self.fused = False
        self._base: dict[str, torch.Tensor] | None = None  # the adapted layers' base weights, on the CPU

    def _load(self, source: str, weight_name: str | None, config_key: str) -> None:
        """diffusers' `load_lora_weights` from an HF id (with weight_name) or a local .safetensors file."""
        path = Path(source).expanduser()
        kwargs: dict[str, Any] = {"adapter_name": ADAPTER}
        if is_local_path(source) and path.is_file():
            ref, kwargs["weight_name"] = str(path.parent), path.name
        else:
            ref = source
            if weight_name:
                kwargs["weight_name"] = weight_name
        what = f"LoRA ({source}{'/' + weight_name if weight_name else ''})"
        load_pretrained(self.pipe.load_lora_weights, ref, what=what, config_key=f"{config_key}.source", **kwargs)
        log.info("Loaded %s", what)

    def adapted_layers(self) -> Iterator[tuple[str, torch.nn.Module]]:
        """The UNet layers the LoRA changes when fused (peft's wrappers' base layers)."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        for name, module in self.backbone.unet.named_modules():
            if isinstance(module, BaseTunerLayer):
                yield name, module.get_base_layer()

    def fuse(self) -> None:
        """Merge the LoRA into the UNet's weights (no extra cost per forward)."""
        if not self.fused:
            if self._base is None:
                self._base = {name: layer.weight.detach().to("cpu", copy=True) for name, layer in self.adapted_layers()}
            self.pipe.enable_lora()
            self.pipe.fuse_lora(lora_scale=self.scale, adapter_names=[ADAPTER])
            self.fused = True

    def unfuse(self) -> None:
        """Back to the base UNet: unmerge, switch the adapter off, and put the saved base weights back, so that
        fusing and unfusing again and again never drifts in floating point (W + ΔW − ΔW is not always W); every
        stage 1 then runs on the very base weights and every stage 3 on the same fused ones."""
        if self.fused:
            self.pipe.unfuse_lora()
            self.pipe.disable_lora()
            with torch.no_grad():
                for name, layer in self.adapted_layers():
                    layer.weight.copy_(self._base[name])
            self.fused = False

    @contextmanager
    def unfused(self) -> Iterator[None]:
        """The base UNet for the duration (stage 1 always runs on the base model)."""
        was = self.fused
        self.unfuse()
        try:
            yield
        finally:
            if was:
                self.fuse()

    def unload(self) -> None:
        """Unfuse and remove the adapter: the backbone is as it was before loading."""
        self.unfuse()
        self.pipe.unload_lora_weights()

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "weight_name": self.weight_name, "scale": self.scale,
                "random": self.random}
