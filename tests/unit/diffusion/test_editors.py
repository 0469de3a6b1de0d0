import pytest
import torch

from stylex.backbones.sd import SD_SCHEDULER_DEFAULTS
from stylex.diffusion.attention import AttnCall, Editor
from stylex.diffusion.editors import ByKind, GAREditor, LATEditor, StyleIDEditor
from stylex.diffusion.sampling import BatchLayout, evenly_spaced, first_references, sample_branches

# guided: [uncond | cond] × [content (2 rows) | style (1 row, shared) | student (2 rows)]
LAYOUT = BatchLayout.of(True, content=2, style=1, student=2)
STYLE_OF = [0, 0]


def row(half: int, branch: str, b: int) -> int:
    offsets = {"content": 0, "style": 2, "student": 3}
    return half * 5 + offsets[branch] + b


def softmax_attention(q, k, v, temperature=1.0):
    return torch.softmax(temperature * q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1) @ v


def hand_adain_tokens(x, y):
    """Per head and channel over tokens, population σ with eps 1e-5 (written out independently)."""
    mx, my = x.mean(-2, keepdim=True), y.mean(-2, keepdim=True)
    sx = ((x - mx) ** 2).mean(-2, keepdim=True).add(1e-5).sqrt()
    sy = ((y - my) ** 2).mean(-2, keepdim=True).add(1e-5).sqrt()
    return (x - mx) / sx * sy + my


def random_call(n_q=6, n_k=6, is_cross=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(LAYOUT.total, 2, n_q, 4, generator=g)
    k = torch.randn(LAYOUT.total, 2, n_k, 4, generator=g) * 2 + 0.5
    v = torch.randn(LAYOUT.total, 2, n_k, 4, generator=g) - 1
    return AttnCall("layer", q, k, v, is_cross)


def assert_teachers_plain(editor, call):
    out = editor.attend(call)
    for half in (0, 1):
        for branch, n in (("content", 2), ("style", 1)):
            for b in range(n):
                r = row(half, branch, b)
                assert torch.allclose(out[r], softmax_attention(call.q[r], call.k[r], call.v[r]), atol=1e-5)
    return out


def test_layout_rows_split_join_and_guidance():
    x = torch.arange(LAYOUT.total).float()
    parts = LAYOUT.split(x)
    assert parts["content"].tolist() == [[0, 1], [5, 6]]
    assert parts["style"].tolist() == [[2], [7]] and parts["student"].tolist() == [[3, 4], [8, 9]]
    assert torch.equal(LAYOUT.join(parts), x)
    half = {"content": torch.tensor([1.0, 2.0]), "style": torch.tensor([3.0]), "student": torch.tensor([4.0, 5.0])}
    assert LAYOUT.expand(half).tolist() == [1, 2, 3, 4, 5] * 2
    assert LAYOUT.unstack(LAYOUT.stack(half))["student"].tolist() == [4, 5]
    uncond, cond = torch.full((5,), 1.0), torch.arange(5).float()
    assert torch.allclose(LAYOUT.guide(torch.cat([uncond, cond]), 7.5), uncond + 7.5 * (cond - uncond))
    emb = {name: torch.full((1, 3, 2), float(i)) for i, name in enumerate(LAYOUT.names)}
    c = LAYOUT.conditioning(torch.full((1, 3, 2), -1.0), emb)
    assert c[:, 0, 0].tolist() == [-1] * 5 + [0, 0, 1, 2, 2]
    assert BatchLayout.of(False, a=1, b=2).guide(torch.ones(3), 7.5).tolist() == [1, 1, 1]
    with pytest.raises(ValueError):
        LAYOUT.stack({**half, "style": torch.ones(2)})


@pytest.mark.parametrize("gamma,temperature", [(0.75, 1.5), (1.0, 1.0), (0.0, 1.0)])
def test_styleid_editor_matches_hand_written_softmax(gamma, temperature):
    call = random_call()
    out = assert_teachers_plain(StyleIDEditor(LAYOUT, STYLE_OF, gamma, temperature), call)
    for half in (0, 1):
        ks, vs = call.k[row(half, "style", 0)], call.v[row(half, "style", 0)]
        for b in range(2):
            qc, qm = call.q[row(half, "content", b)], call.q[row(half, "student", b)]
            expected = softmax_attention(gamma * qc + (1 - gamma) * qm, ks, vs, temperature)
            assert torch.allclose(out[row(half, "student", b)], expected, atol=1e-5)
            if gamma == 1.0 and temperature == 1.0:  # the content queries exactly: softmax(Q_c K_sᵀ/√d) V_s
                assert torch.allclose(out[row(half, "student", b)], softmax_attention(qc, ks, vs), atol=1e-5)


def test_style_rows_are_mapped_per_student():
    layout = BatchLayout.of(False, content=3, style=2, student=3)
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(8, 2, 5, 4, generator=g) for _ in range(3))
    out = StyleIDEditor(layout, [1, 0, 1], gamma=1.0, temperature=1.0).attend(AttnCall("l", q, k, v, False))
    for b, s in enumerate([1, 0, 1]):
        assert torch.allclose(out[5 + b], softmax_attention(q[b], k[3 + s], v[3 + s]), atol=1e-5)
    with pytest.raises(ValueError):
        StyleIDEditor(layout, [2, 0, 1])


@pytest.mark.parametrize("targets", [("q", "k", "v"), ("q", "v")])
def test_gar_editor_blends_student_qkv_towards_adain_of_teachers(targets):
    call = random_call(seed=2)
    alpha = 0.75
    out = assert_teachers_plain(GAREditor(LAYOUT, STYLE_OF, alpha, targets), call)
    for half in (0, 1):
        s = row(half, "style", 0)
        for b in range(2):
            c, m = row(half, "content", b), row(half, "student", b)
            x = {}
            for name, t in (("q", call.q), ("k", call.k), ("v", call.v)):
                x[name] = alpha * t[m] + (1 - alpha) * hand_adain_tokens(t[c], t[s]) if name in targets else t[m]
            assert torch.allclose(out[m], softmax_attention(x["q"], x["k"], x["v"]), atol=1e-4)
    plain = Editor().attend(call)
    assert not torch.allclose(out[row(1, "student", 0)], plain[row(1, "student", 0)], atol=1e-3)


def test_gar_with_alpha_one_is_plain_attention():
    call = random_call(seed=3)
    assert torch.allclose(GAREditor(LAYOUT, STYLE_OF, alpha=1.0).attend(call), Editor().attend(call), atol=1e-5)


def test_lat_editor_uses_style_kv_and_blended_query():
    call = random_call(n_q=6, n_k=7, is_cross=True, seed=4)  # cross-attention: 7 text tokens
    beta = 0.25
    out = assert_teachers_plain(LATEditor(LAYOUT, STYLE_OF, beta), call)
    for half in (0, 1):
        s = row(half, "style", 0)
        for b in range(2):
            c, m = row(half, "content", b), row(half, "student", b)
            expected = softmax_attention(beta * call.q[m] + (1 - beta) * call.q[c], call.k[s], call.v[s])
            assert torch.allclose(out[m], expected, atol=1e-5)


def test_by_kind_routes_self_and_cross_calls():
    class Const(Editor):
        def __init__(self, value):
            self.value = value

        def attend(self, call):
            return torch.full_like(call.q, self.value)

    editor = ByKind(Const(1.0), Const(2.0))
    assert editor.attend(random_call()).unique().tolist() == [1.0]
    assert editor.attend(random_call(is_cross=True)).unique().tolist() == [2.0]
    call = random_call()
    assert torch.allclose(ByKind(None, Const(2.0)).attend(call), Editor().attend(call))


def test_sample_branches_replays_teachers_and_steps_students_by_ddim_with_cfg():
    from diffusers import DDIMScheduler

    cfg = dict(SD_SCHEDULER_DEFAULTS)
    alphas = DDIMScheduler.from_config(cfg).alphas_cumprod.double()
    layout = BatchLayout.of(True, teacher=1, student=2)
    grid = [751, 501, 251, 1]
    g = torch.Generator().manual_seed(5)
    trajectory = {t: torch.randn(1, 4, 3, 3, generator=g) for t in [0] + grid[::-1]}
    init = torch.randn(2, 4, 3, 3, generator=g)
    seen = []

    def predict(x, t):  # the unconditional half predicts 0.5·x, the conditional half x + t/1000
        seen.append((t, x.clone()))
        u, c = x.chunk(2)
        return torch.cat([0.5 * u, c + t / 1000])

    x0s = []
    out = sample_branches(predict, layout, {"student": init}, {"teacher": trajectory}, cfg, 4, 3.0,
                          on_step=lambda i, t, x0: x0s.append(x0))
    assert [t for t, _ in seen] == grid and len(x0s) == 4
    x = init.double()
    for t, batch in seen:
        assert torch.allclose(batch[0], trajectory[t][0]) and torch.allclose(batch[3], trajectory[t][0])
        assert torch.allclose(batch[1:3].double(), x, atol=1e-5) and torch.allclose(batch[4:6].double(), x, atol=1e-5)
        eps = 0.5 * x + 3.0 * (x + t / 1000 - 0.5 * x)
        a_t, a_prev = alphas[t], alphas[t - 250] if t - 250 >= 0 else alphas[0]
        x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    assert torch.allclose(out["student"].double(), x, atol=1e-4)
    with pytest.raises(ValueError, match="same number of steps"):
        sample_branches(predict, layout, {"student": init}, {"teacher": trajectory}, cfg, 5, 3.0)
    with pytest.raises(ValueError, match="guided"):
        sample_branches(predict, BatchLayout.of(False, teacher=1, student=2), {"student": init},
                        {"teacher": trajectory}, cfg, 4, 3.0)


def test_small_helpers():
    assert evenly_spaced([9, 7, 5, 3, 1], 3) == [9, 5, 1]
    assert evenly_spaced([9, 7], 5) == [9, 7] and evenly_spaced([9, 7], 0) == []
    assert first_references([[2], [0, 1], [2]], "m") == ([0, 2], [1, 0, 1])
