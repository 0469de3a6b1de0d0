import pytest
import torch

from stylex.backbones.lora import FusedLora, save_random_lora
from stylex.backbones.tiny import tiny_sd
from stylex.errors import WeightsError


def test_random_peft_adapter_loads_fuses_and_unfuses(tmp_path):
    backbone = tiny_sd(seed=1)  # its own copy: the adapter is added to and removed from this UNet
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = backbone.embed_prompt([""])
    base = backbone.denoise(latents, 500, cond)
    path = save_random_lora(backbone.unet, tmp_path, rank=4, seed=0)
    assert path.exists() and torch.allclose(backbone.denoise(latents, 500, cond), base)  # saving changed nothing
    lora = FusedLora(backbone, str(path))
    assert torch.allclose(backbone.denoise(latents, 500, cond), base, atol=1e-6), "loaded but not fused: base UNet"
    lora.fuse()
    fused = backbone.denoise(latents, 500, cond)
    assert (fused - base).abs().max() > 1e-3 and not fused.requires_grad
    with lora.unfused():
        assert torch.allclose(backbone.denoise(latents, 500, cond), base, atol=1e-5)
    assert torch.allclose(backbone.denoise(latents, 500, cond), fused, atol=1e-5)
    lora.unload()
    assert torch.allclose(backbone.denoise(latents, 500, cond), base, atol=1e-5)
    assert lora.describe()["source"] == str(path)


def test_fusing_and_unfusing_again_and_again_gives_the_very_same_weights(tmp_path):
    """W + dW - dW is not W in floating point: unfusing must restore the base weights exactly, so that a second
    image's stage 1 (base UNet) and stage 3 (fused) compute what the first image's did."""
    backbone = tiny_sd(seed=2)
    lora = FusedLora(backbone, str(save_random_lora(backbone.unet, tmp_path, rank=4, seed=0)))
    weights = lambda: {k: v.clone() for k, v in backbone.unet.state_dict().items()}  # noqa: E731
    base = weights()
    lora.fuse()
    fused = weights()
    changed = [k for k in base if not torch.equal(base[k], fused[k])]
    assert changed, "fusing changed no weight"
    for _ in range(3):
        lora.unfuse()
        assert all(torch.equal(v, base[k]) for k, v in weights().items())
        lora.fuse()
        assert all(torch.equal(v, fused[k]) for k, v in weights().items())


def test_missing_adapter_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="accel.lora.source"):
        FusedLora(tiny_sd(seed=2), str(tmp_path / "missing.safetensors"))


def test_random_adapter_leaves_no_temporary_folder(tmp_path, monkeypatch):
    """debug=smoke's random LoRA is written to a temporary folder, read back, and the folder removed."""
    import os
    import tempfile

    made, mkdtemp = [], tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **kw: made.append(mkdtemp(*a, **kw)) or made[-1])
    backbone = tiny_sd(seed=3)
    lora = FusedLora(backbone, "latent-consistency/lcm-lora-sdv1-5", random=True)
    lora.fuse()
    assert made and not [folder for folder in made if os.path.exists(folder)], "the random LoRA's folder leaked"
    assert lora.describe() == {"source": "latent-consistency/lcm-lora-sdv1-5", "weight_name": None, "scale": 1.0,
                               "random": True}
    lora.unload()
