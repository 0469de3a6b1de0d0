"""Editors for branch batches (StyleID's injection, HAM's GAR and LAT) over a `BatchLayout`.

The batch holds a content teacher, a style teacher and a student per guidance half (`sampling.BatchLayout`).
Teachers always get plain attention, so their outputs are those of the unmodified model; only the student's
attention is edited, from the teachers' q/k/v of the same call (same layer, step and guidance half).
The style teacher may have fewer rows than the student (one per distinct reference): `style_of[b]` is the
style row of student row b.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor

from stylex.diffusion.adain import adain_tokens
from stylex.diffusion.attention import AttnCall, Editor, sdpa
from stylex.diffusion.sampling import BatchLayout

CONTENT, STYLE, STUDENT = "content", "style", "student"


def branch_layout(batch: int, styles: int, guided: bool) -> BatchLayout:
    """[content teacher (batch rows) | style teacher (styles rows) | student (batch rows)] per guidance half."""
    return BatchLayout.of(guided, **{CONTENT: batch, STYLE: styles, STUDENT: batch})


class BranchEditor(Editor):
    """Plain attention for the teacher branches; `student(...)` supplies the student's attention output."""

    def __init__(self, layout: BatchLayout, style_of: Sequence[int] | None = None, temperature: float = 1.0):
        self.layout = layout
        self.temperature = temperature
        n_style = layout.size(STYLE)
        self.style_of = list(style_of) if style_of is not None else list(range(layout.size(STUDENT)))
        if len(self.style_of) != layout.size(STUDENT) or layout.size(CONTENT) != layout.size(STUDENT) or \
                any(not 0 <= s < n_style for s in self.style_of):
            raise ValueError(f"style_of={self.style_of} does not fit the layout {layout.branches}")
        self._identity = self.style_of == list(range(n_style))

    def styles(self, x: Tensor) -> Tensor:
        """The style teacher's rows [halves, n_style, ...] -> one per student row [halves, B, ...]."""
        return x if self._identity else x[:, self.style_of]

    def attend(self, call: AttnCall) -> Tensor:
        q, k, v = (self.layout.split(x) for x in (call.q, call.k, call.v))
        per_row = call.mask is not None and call.mask.dim() == 4 and call.mask.shape[0] == self.layout.total
        masks = self.layout.split(call.mask) if per_row else {name: call.mask for name in self.layout.names}
        out = {}
        for name in self.layout.names:
            if name != STUDENT:
                out[name] = _sdpa(q[name], k[name], v[name], 1.0, masks[name])
        out[STUDENT] = self.student(q, k, v, masks[STUDENT])
        return self.layout.join(out)

    def student(self, q: dict[str, Tensor], k: dict[str, Tensor], v: dict[str, Tensor],
                mask: Tensor | None) -> Tensor:
        """The student's attention output [halves, B, heads, N, d] from every branch's q/k/v."""
        raise NotImplementedError

    def _sdpa(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        return _sdpa(q, k, v, self.temperature, mask)


def _sdpa(q: Tensor, k: Tensor, v: Tensor, temperature: float, mask: Tensor | None) -> Tensor:
    """`sdpa` on branch tensors [halves, n, heads, N, d]; a per-row mask is [halves, n, ...] too."""
    if mask is not None and mask.dim() == q.dim():
        mask = mask.flatten(0, 1)
    return sdpa(q.flatten(0, 1), k.flatten(0, 1), v.flatten(0, 1), temperature, mask).unflatten(0, q.shape[:2])


class StyleIDEditor(BranchEditor):
    """StyleID (METHODS.md 3): softmax(T·Q̃ K_sᵀ/√d) V_s with Q̃ = γ·Q_c + (1−γ)·Q (query preservation)."""

    def __init__(self, layout: BatchLayout, style_of: Sequence[int] | None = None, gamma: float = 0.75,
                 temperature: float = 1.5):
        super().__init__(layout, style_of, temperature)
        self.gamma = gamma

    def student(self, q, k, v, mask):
        query = self.gamma * q[CONTENT] + (1 - self.gamma) * q[STUDENT]
        return self._sdpa(query, self.styles(k[STYLE]), self.styles(v[STYLE]), mask)


class GAREditor(BranchEditor):
    """HAM's GAR (self-attention): X̂ = α·X^m + (1−α)·AdaIN(X^c, X^s) for X in `targets` ⊆ {q, k, v}."""

    def __init__(self, layout: BatchLayout, style_of: Sequence[int] | None = None, alpha: float = 0.75,
                 targets: Sequence[str] = ("q", "k", "v"), temperature: float = 1.0):
        super().__init__(layout, style_of, temperature)
        unknown = set(targets) - {"q", "k", "v"}
        if unknown:
            raise ValueError(f"GAR targets must be among q, k, v; got {sorted(unknown)}")
        self.alpha = alpha
        self.targets = tuple(targets)

    def student(self, q, k, v, mask):
        tensors = {"q": q, "k": k, "v": v}
        blended = {}
        for name, x in tensors.items():
            if name in self.targets:
                mixed = adain_tokens(x[CONTENT], self.styles(x[STYLE]))
                blended[name] = self.alpha * x[STUDENT] + (1 - self.alpha) * mixed
            else:
                blended[name] = x[STUDENT]
        return self._sdpa(blended["q"], blended["k"], blended["v"], mask)


class LATEditor(BranchEditor):
    """HAM's LAT (cross-attention): the style teacher's K/V, with the query β·Q^m + (1−β)·Q^c."""

    def __init__(self, layout: BatchLayout, style_of: Sequence[int] | None = None, beta: float = 0.25,
                 temperature: float = 1.0):
        super().__init__(layout, style_of, temperature)
        self.beta = beta

    def student(self, q, k, v, mask):
        query = self.beta * q[STUDENT] + (1 - self.beta) * q[CONTENT]
        return self._sdpa(query, self.styles(k[STYLE]), self.styles(v[STYLE]), mask)


class ByKind(Editor):
    """Routes self-attention calls to one editor and cross-attention calls to another (None: plain)."""

    def __init__(self, self_attn: Editor | None = None, cross_attn: Editor | None = None):
        self.self_attn = self_attn or Editor()
        self.cross_attn = cross_attn or Editor()

    def attend(self, call: AttnCall) -> Tensor:
        return (self.cross_attn if call.is_cross else self.self_attn).attend(call)


__all__ = ["branch_layout", "BranchEditor", "StyleIDEditor", "GAREditor", "LATEditor", "ByKind", "CONTENT", "STYLE", "STUDENT"]
