"""Attention control through diffusers attention processors (never by patching `Attention.forward`).

One processor class, `EditableAttnProcessor`, is installed on the chosen layers. It computes per-head
q, k, v ([B, heads, N, d]) exactly as diffusers' `AttnProcessor2_0` does and asks the controller's active
*editor* for the attention result. Editors hold the method logic (record, replace, blend, restrict);
with no editor active the processor is the default SDPA attention.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class AttnCall:
    """One attention call as an editor sees it."""

    layer: str  # diffusers module path, e.g. "up_blocks.2.attentions.0.transformer_blocks.0.attn1"
    q: Tensor  # [B, heads, Nq, d]
    k: Tensor  # [B, heads, Nk, d]
    v: Tensor  # [B, heads, Nk, d]
    is_cross: bool
    mask: Tensor | None = None

    @property
    def scale(self) -> float:
        return self.q.shape[-1] ** -0.5


def sdpa(q: Tensor, k: Tensor, v: Tensor, temperature: float = 1.0, mask: Tensor | None = None) -> Tensor:
    """softmax(temperature · q kᵀ / √d) v with torch's fused kernels."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=temperature * q.shape[-1] ** -0.5)


class Editor:
    """Decides what an attention call returns. The base class is plain attention."""

    def attend(self, call: AttnCall) -> Tensor:
        return sdpa(call.q, call.k, call.v, mask=call.mask)


class StopForward(Exception):
    """Raised by an editor once it has everything it needs: the rest of the network is not computed."""


class Recorder(Editor):
    """Plain attention that keeps the chosen tensors per layer (with their graph, when grad is on).

    With `stop_after`, the forward pass ends right after that layer (raise `StopForward`; callers catch it):
    losses on attention features never need the denoiser's tail or its output.
    """

    def __init__(self, keep: tuple[str, ...] = ("q", "k", "v", "out"), layers: set[str] | None = None,
                 stop_after: str | None = None):
        self.keep = keep
        self.layers = layers
        self.stop_after = stop_after
        self.records: dict[str, dict[str, Tensor]] = {}

    def attend(self, call: AttnCall) -> Tensor:
        out = super().attend(call)
        if self.layers is None or call.layer in self.layers:
            tensors = {"q": call.q, "k": call.k, "v": call.v, "out": out}
            self.records[call.layer] = {name: tensors[name] for name in self.keep}
        if call.layer == self.stop_after:
            raise StopForward
        return out


class AttentionControl:
    """Owns the processors installed on one denoiser and routes their calls to the active editor."""

    def __init__(self) -> None:
        self.editor: Editor | None = None
        self.layers: list[str] = []

    @contextlib.contextmanager
    def use(self, editor: Editor) -> Iterator[Editor]:
        previous, self.editor = self.editor, editor
        try:
            yield editor
        finally:
            self.editor = previous

    def attend(self, call: AttnCall) -> Tensor:
        return (self.editor or Editor()).attend(call)


class EditableAttnProcessor:
    """`AttnProcessor2_0`'s computation with the attention itself delegated to an `AttentionControl`."""

    def __init__(self, layer: str, control: AttentionControl):
        self.layer = layer
        self.control = control

    def __call__(self, attn, hidden_states: Tensor, encoder_hidden_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, temb: Tensor | None = None, *args, **kwargs) -> Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        is_cross = encoder_hidden_states is not None
        batch, seq_len, _ = (encoder_hidden_states if is_cross else hidden_states).shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if not is_cross:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        q, k, v = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        out = self.control.attend(AttnCall(self.layer, q, k, v, is_cross, attention_mask))
        hidden_states = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(q.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def select_layers(model: torch.nn.Module, prefixes: list[str] | tuple[str, ...], kind: str = "attn1") -> list[str]:
    """Module paths of attention layers named `kind` under any prefix (a full path selects just that layer).

    Prefixes follow diffusers module paths, so `up_blocks.2` means every `attn1` of SD's 32x32 decoder stage.
    The result is in execution (module registration) order.
    """
    from diffusers.models.attention_processor import Attention

    prefixes = tuple(prefixes)
    found = [name for name, module in model.named_modules()
             if isinstance(module, Attention) and name.rsplit(".", 1)[-1] == kind
             and any(name == p or name.startswith(p + ".") for p in prefixes)]
    if not found:
        from stylex.errors import ConfigError

        raise ConfigError(
            f"no `{kind}` attention layer matches the configured layers {list(prefixes)}. Name layers by their "
            f"diffusers module path prefix, e.g. `up_blocks.2` or `up_blocks.2.attentions.0.transformer_blocks.0.attn1`."
        )
    return found


def install_control(model: torch.nn.Module, layers: list[str], control: AttentionControl | None = None,
                    processor: type = EditableAttnProcessor) -> AttentionControl:
    """Put a `processor(layer, control)` on each layer in `layers`; every other layer keeps its processor."""
    control = control or AttentionControl()
    wanted = set(layers)
    processors = {}
    for key, current in model.attn_processors.items():
        layer = key.removesuffix(".processor")
        processors[key] = processor(layer, control) if layer in wanted else current
    names = [k.removesuffix(".processor") for k in processors]
    unknown = wanted - set(names)
    if unknown:
        raise ValueError(f"not attention layers of this model: {sorted(unknown)}")
    control.layers = [layer for layer in names if layer in wanted]
    model.set_attn_processor(processors)  # (consumes the dict)
    return control


def remove_control(model: torch.nn.Module) -> None:
    """Restore diffusers' default (SDPA) processor everywhere."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    model.set_attn_processor(AttnProcessor2_0())
