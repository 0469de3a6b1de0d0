import pytest
import torch

from stylex.diffusion.attention import AttnCall, Editor, Recorder, install_control, remove_control, sdpa, select_layers
from stylex.errors import ConfigError


def test_recording_editor_leaves_unet_outputs_unchanged(tiny_backbone):
    bb = tiny_backbone
    latents = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    cond = bb.embed_prompt(["", "a painting"])
    reference = bb.denoise(latents, 500, cond)
    layers = select_layers(bb.unet, ["up_blocks.1", "up_blocks.2", "up_blocks.3"], "attn1") + \
        select_layers(bb.unet, ["up_blocks.2"], "attn2")
    control = install_control(bb.unet, layers)
    try:
        with control.use(Recorder()) as recorder:
            recorded = bb.denoise(latents, 500, cond)
        assert torch.allclose(recorded, reference, atol=1e-5)
        assert set(recorder.records) == set(layers) and set(control.layers) == set(layers)
        # the editor is really consulted: an editor that zeroes attention changes the output
        class Zero(Editor):
            def attend(self, call):
                return torch.zeros_like(call.q)

        with control.use(Zero()):
            assert not torch.allclose(bb.denoise(latents, 500, cond), reference, atol=1e-3)
    finally:
        remove_control(bb.unet)


def test_select_layers_by_prefix_and_full_path(tiny_backbone):
    layers = select_layers(tiny_backbone.unet, ["up_blocks.2", "up_blocks.3"], "attn1")
    assert layers and all(name.startswith(("up_blocks.2.", "up_blocks.3.")) and name.endswith("attn1") for name in layers)
    assert select_layers(tiny_backbone.unet, [layers[0]], "attn1") == [layers[0]]
    with pytest.raises(ConfigError, match="up_blocks.9"):
        select_layers(tiny_backbone.unet, ["up_blocks.9"], "attn1")


def test_sdpa_temperature_equals_hand_written_softmax():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    expected = torch.softmax(1.5 * q @ k.transpose(-1, -2) / 2.0, dim=-1) @ v
    assert torch.allclose(sdpa(q, k, v, temperature=1.5), expected, atol=1e-6)
    assert AttnCall("x", q, k, v, False).scale == pytest.approx(0.5)
