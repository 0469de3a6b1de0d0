"""Attention control for SD3/3.5's MM-DiT joint attention, and HAM's joint-attention editor (METHODS.md 4).

`EditableJointAttnProcessor` computes what diffusers' `JointAttnProcessor2_0` computes (image and text
projections, the RMS qk-norms of SD3.5, the context-pre-only last block) but hands the per-head image and
text q, k, v to the active editor of an `AttentionControl` (the same control object the UNet processors of
`stylex.diffusion.attention` use). SD3.5-Medium's image-only `attn2` goes through the same processor with
no text tensors. Editors written for UNets (`Editor.attend(AttnCall)`, e.g. `Recorder`) work unchanged: they
see the concatenated [image | text] tokens as one self-attention call.

`HAMJointEditor` is HAM's GAR + LAT on these calls, over the same `BatchLayout` (content / style / student rows,
CFG halves outermost) as the UNet editors of `stylex.diffusion.editors`.

`two_query_sdpa` is one softmax over [image | text] keys in which image keys are met by query q_a and text
keys by q_b, exactly, in one SDPA call: q = [q_a | q_b] along the head dim, k_img' = [k_img | 0],
k_txt' = [0 | k_txt], scale 1/√d with d the original head dim.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from stylex.diffusion.adain import adain_tokens
from stylex.diffusion.attention import AttentionControl, AttnCall, Editor, install_control, sdpa
from stylex.diffusion.editors import CONTENT, STUDENT, STYLE, BranchEditor
from stylex.diffusion.sampling import BatchLayout

# HAM's defaults (METHODS.md 4); configs pass these in, they are only the fallbacks.
HAM_ALPHA = 0.75
HAM_BETA = 0.25


@dataclass
class JointAttnCall:
    """One MM-DiT attention call as an editor sees it; per-head tensors [B, heads, N, d]."""

    layer: str  # diffusers module path, e.g. "transformer_blocks.3.attn" (joint) or ".attn2" (image-only)
    q_img: Tensor
    k_img: Tensor
    v_img: Tensor
    q_txt: Tensor | None = None  # None for the image-only attn2
    k_txt: Tensor | None = None
    v_txt: Tensor | None = None

    @property
    def is_joint(self) -> bool:
        return self.q_txt is not None

    @property
    def scale(self) -> float:
        return self.q_img.shape[-1] ** -0.5

    @property
    def n_img(self) -> int:
        return self.q_img.shape[-2]

    def as_attn_call(self) -> AttnCall:
        """The whole call as one self-attention over [image | text] tokens (for UNet-style editors)."""
        if not self.is_joint:
            return AttnCall(self.layer, self.q_img, self.k_img, self.v_img, is_cross=False)
        cat = lambda a, b: torch.cat([a, b], dim=-2)  # noqa: E731
        return AttnCall(self.layer, cat(self.q_img, self.q_txt), cat(self.k_img, self.k_txt),
                        cat(self.v_img, self.v_txt), is_cross=False)

    def split(self, out: Tensor) -> tuple[Tensor, Tensor | None]:
        """An output over [image | text] query tokens -> (image part, text part or None)."""
        return out[..., : self.n_img, :], (out[..., self.n_img:, :] if self.is_joint else None)


def joint_sdpa(call: JointAttnCall) -> tuple[Tensor, Tensor | None]:
    """Plain joint attention: every query over the [image | text] keys, as `JointAttnProcessor2_0` computes it."""
    return call.split(Editor().attend(call.as_attn_call()))


def two_query_sdpa(q_a: Tensor, q_b: Tensor, k_img: Tensor, v_img: Tensor, k_txt: Tensor, v_txt: Tensor,
                   scale: float | None = None) -> Tensor:
    """softmax([q_a·k_imgᵀ | q_b·k_txtᵀ]·scale) · [v_img ; v_txt] in one SDPA call.

    q_a, q_b: [B, h, Nq, d] (one pair per query token); k/v: [B, h, N_img or N_txt, d]. Zero-padding the keys
    makes `[q_a | q_b]·[k_img | 0] = q_a·k_img` and `[q_a | q_b]·[0 | k_txt] = q_b·k_txt`, so the result is exact;
    the scale stays 1/√d of the original head dim (not of the doubled one).
    """
    if scale is None:
        scale = q_a.shape[-1] ** -0.5
    q = torch.cat([q_a, q_b], dim=-1)
    k = torch.cat([torch.cat([k_img, torch.zeros_like(k_img)], dim=-1),
                   torch.cat([torch.zeros_like(k_txt), k_txt], dim=-1)], dim=-2)
    v = torch.cat([v_img, v_txt], dim=-2)
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


class JointEditor(Editor):
    """Base of editors that treat image and text tokens differently. By default: plain joint attention,
    routed through `attend`, so a subclass that only overrides `attend` still sees every token."""

    def attend_joint(self, call: JointAttnCall) -> tuple[Tensor, Tensor | None]:
        return call.split(self.attend(call.as_attn_call()))


def dispatch(editor: Editor | None, call: JointAttnCall) -> tuple[Tensor, Tensor | None]:
    """Ask `editor` for a joint call's result; UNet-style editors see one concatenated self-attention call."""
    if editor is None:
        return joint_sdpa(call)
    if isinstance(editor, JointEditor):
        return editor.attend_joint(call)
    return call.split(editor.attend(call.as_attn_call()))


class EditableJointAttnProcessor:
    """`JointAttnProcessor2_0`'s computation with the attention itself delegated to an `AttentionControl`."""

    def __init__(self, layer: str, control: AttentionControl):
        self.layer = layer
        self.control = control

    @staticmethod
    def _heads(x: Tensor, batch: int, heads: int) -> Tensor:
        return x.view(batch, -1, heads, x.shape[-1] // heads).transpose(1, 2)

    def __call__(self, attn, hidden_states: Tensor, encoder_hidden_states: Tensor | None = None,
                 attention_mask: Tensor | None = None, *args, **kwargs) -> Tensor | tuple[Tensor, Tensor]:
        batch, heads = hidden_states.shape[0], attn.heads
        q, k, v = (self._heads(proj(hidden_states), batch, heads) for proj in (attn.to_q, attn.to_k, attn.to_v))
        if attn.norm_q is not None:
            q = attn.norm_q(q)
        if attn.norm_k is not None:
            k = attn.norm_k(k)
        call = JointAttnCall(self.layer, q, k, v)
        if encoder_hidden_states is not None:
            call.q_txt, call.k_txt, call.v_txt = (self._heads(proj(encoder_hidden_states), batch, heads)
                                                  for proj in (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))
            if attn.norm_added_q is not None:
                call.q_txt = attn.norm_added_q(call.q_txt)
            if attn.norm_added_k is not None:
                call.k_txt = attn.norm_added_k(call.k_txt)
        out_img, out_txt = dispatch(self.control.editor, call)
        merge = lambda x: x.transpose(1, 2).reshape(batch, -1, heads * x.shape[-1]).to(q.dtype)  # noqa: E731
        hidden = attn.to_out[1](attn.to_out[0](merge(out_img)))
        if encoder_hidden_states is None:
            return hidden
        context = merge(out_txt)
        if not attn.context_pre_only:  # the last block's text output is discarded by the block anyway
            context = attn.to_add_out(context)
        return hidden, context


def install_joint_control(model: torch.nn.Module, layers: list[str],
                          control: AttentionControl | None = None) -> AttentionControl:
    """Put an `EditableJointAttnProcessor` on each layer in `layers` (joint `attn` and/or image-only `attn2`
    paths); every other layer keeps its processor."""
    return install_control(model, layers, control, EditableJointAttnProcessor)


def remove_joint_control(model: torch.nn.Module) -> None:
    """Restore diffusers' default `JointAttnProcessor2_0` everywhere."""
    from diffusers.models.attention_processor import JointAttnProcessor2_0

    model.set_attn_processor(JointAttnProcessor2_0())


# -- HAM ---------------------------------------------------------------------------------------------------
class HAMJointEditor(BranchEditor, JointEditor):
    """HAM on MM-DiT attention (METHODS.md 4, SD3.5), over a `BatchLayout` of content / style / student rows.

    Teachers get unmodified attention. The student gets
    - GAR (layers in `gar_layers`) on its image-token Q/K/V (`targets`): `X̂ = α·X^m + (1−α)·AdaIN(X^c, X^s)`,
      per channel over tokens; in joint `attn` layers and in SD3.5-Medium's image-only `attn2`;
    - LAT (joint layers in `lat_layers`): its text-token K/V replaced by the style teacher's
      (`transplant_text_kv`; in SD3.5 these carry the style image, so unlike SD2.1 the transplant is not a
      no-op at α = β = 1), and its image queries that meet text keys β-blended, `β·Q^m + (1−β)·Q^c` (the raw,
      pre-GAR queries), computed exactly with `two_query_sdpa`. Its text queries are its own and meet the same
      (edited) keys.
    `gar_layers` / `lat_layers` are module paths; None = every layer the processor is installed on; a layer in
    neither gets plain attention. `style_of[b]` is the style-teacher row of student row b (see `BranchEditor`).
    `temperature` multiplies the student's edited attention logits (1.0 = none), as for the UNet editors.
    """

    def __init__(self, layout: BatchLayout, style_of: Sequence[int] | None = None, alpha: float = HAM_ALPHA,
                 beta: float = HAM_BETA, targets: Sequence[str] = ("q", "k", "v"), transplant_text_kv: bool = True,
                 gar_layers: Collection[str] | None = None, lat_layers: Collection[str] | None = None,
                 temperature: float = 1.0):
        super().__init__(layout, style_of, temperature)
        if set(targets) - {"q", "k", "v"}:
            raise ValueError(f"GAR targets must be among q, k, v; got {list(targets)}")
        self.alpha, self.beta = float(alpha), float(beta)
        self.targets = tuple(targets)
        self.transplant_text_kv = transplant_text_kv
        self.gar_layers = None if gar_layers is None else set(gar_layers)
        self.lat_layers = None if lat_layers is None else set(lat_layers)

    def _blend(self, name: str, x: dict[str, Tensor], gar: bool) -> Tensor:
        """The student's image-token tensor, after GAR when on, [halves·n, h, N, d]."""
        if not gar or name not in self.targets:
            return x[STUDENT].flatten(0, 1)
        mixed = adain_tokens(x[CONTENT], self.styles(x[STYLE]))
        return (self.alpha * x[STUDENT] + (1 - self.alpha) * mixed).flatten(0, 1)

    def attend_joint(self, call: JointAttnCall) -> tuple[Tensor, Tensor | None]:
        gar = self.gar_layers is None or call.layer in self.gar_layers
        lat = call.is_joint and (self.lat_layers is None or call.layer in self.lat_layers)
        if not (gar or lat):
            return joint_sdpa(call)
        if call.q_img.shape[0] != self.layout.total:
            raise ValueError(f"HAM expects a batch laid out as {self.layout} ({self.layout.total} rows); "
                             f"got {call.q_img.shape[0]} rows")
        flat = lambda x: x.flatten(0, 1)  # noqa: E731  [halves, n, ...] -> [halves·n, ...]
        q, k, v = (self.layout.split(x) for x in (call.q_img, call.k_img, call.v_img))
        txt = [self.layout.split(x) for x in (call.q_txt, call.k_txt, call.v_txt)] if call.is_joint else None
        out: dict[str, Tensor] = {}
        for name in self.layout.names:
            if name != STUDENT:  # teachers: plain attention over all their tokens
                parts = [flat(x[name]) for x in (q, k, v)] + ([flat(x[name]) for x in txt] if txt else [])
                plain = JointAttnCall(call.layer, *parts).as_attn_call()
                out[name] = sdpa(plain.q, plain.k, plain.v).unflatten(0, q[name].shape[:2])
        q_hat, k_hat, v_hat = (self._blend(n, x, gar) for n, x in (("q", q), ("k", k), ("v", v)))
        if txt is None:  # image-only attn2: GAR only
            student = sdpa(q_hat, k_hat, v_hat, self.temperature)
        else:
            qt, kt, vt = txt
            if lat and self.transplant_text_kv:
                k_txt, v_txt = flat(self.styles(kt[STYLE])), flat(self.styles(vt[STYLE]))
            else:
                k_txt, v_txt = flat(kt[STUDENT]), flat(vt[STUDENT])
            q_meets_txt = flat(self.beta * q[STUDENT] + (1 - self.beta) * q[CONTENT]) if lat else q_hat
            q_a = torch.cat([q_hat, flat(qt[STUDENT])], dim=-2)
            q_b = torch.cat([q_meets_txt, flat(qt[STUDENT])], dim=-2)
            student = two_query_sdpa(q_a, q_b, k_hat, v_hat, k_txt, v_txt, call.scale * self.temperature)
        out[STUDENT] = student.unflatten(0, q[STUDENT].shape[:2])
        return call.split(self.layout.join(out))
