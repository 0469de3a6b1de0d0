import pytest
import torch

from stylex.backbones.sd3 import tiny_sd3
from stylex.diffusion.attention import Editor, Recorder
from stylex.diffusion.joint_attention import (HAMJointEditor, JointAttnCall, install_joint_control, joint_sdpa,
                                              remove_joint_control, two_query_sdpa)
from stylex.diffusion.sampling import BatchLayout

H, D, NI, NT = 2, 4, 6, 5  # heads, head dim, image tokens, text tokens
PLAIN = BatchLayout.of(False, content=1, style=1, student=1)


def _rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _call(batch: int, joint: bool = True, seed: int = 0) -> JointAttnCall:
    img = [_rand(batch, H, NI, D, seed=seed + i) * (1 + i) + i for i in range(3)]
    txt = [_rand(batch, H, NT, D, seed=seed + 10 + i) for i in range(3)] if joint else [None] * 3
    return JointAttnCall("transformer_blocks.0.attn", *img, *txt)


def _softmax_attention(q_img_keys, q_txt_keys, k_img, k_txt, v_img, v_txt):
    """Hand-written: one softmax over [image | text] keys, image keys met by one query and text keys by another."""
    logits = torch.cat([q_img_keys @ k_img.transpose(-1, -2), q_txt_keys @ k_txt.transpose(-1, -2)], -1) / D ** 0.5
    return torch.softmax(logits, -1) @ torch.cat([v_img, v_txt], -2)


def _hand_adain(x, y):
    """Per head and channel over tokens, population σ with eps 1e-5 inside the root (written out independently)."""
    mx, my = x.mean(-2, keepdim=True), y.mean(-2, keepdim=True)
    sx = ((x - mx) ** 2).mean(-2, keepdim=True).add(1e-5).sqrt()
    sy = ((y - my) ** 2).mean(-2, keepdim=True).add(1e-5).sqrt()
    return (x - mx) / sx * sy + my


@pytest.fixture(scope="module")
def sd3():
    return tiny_sd3(seed=0)


@pytest.fixture(scope="module")
def inputs(sd3):
    z = _rand(3, 16, 8, 8, seed=1)
    cond = sd3.embed_prompt(["a photo", "a painting", "a photo"])
    return z, cond


def _installed(sd3):
    layers = sd3.attention_layers(kind="attn") + sd3.attention_layers(kind="attn2")
    return install_joint_control(sd3.transformer, layers)


def test_processor_without_editor_reproduces_default_transformer(sd3, inputs):
    z, cond = inputs
    reference = sd3.denoise(z, 700.0, cond)
    control = _installed(sd3)
    try:
        assert len(control.layers) == 4  # 3 joint (the last context-pre-only) + 1 image-only attn2
        assert torch.allclose(sd3.denoise(z, 700.0, cond), reference, atol=1e-6)
        with control.use(Recorder(keep=("q",))) as recorder:  # UNet-style editors see [image | text] tokens
            assert torch.allclose(sd3.denoise(z, 700.0, cond), reference, atol=1e-6)
        n_img, n_txt = 16, 77 + sd3.t5_max_length
        assert recorder.records["transformer_blocks.1.attn"]["q"].shape[-2] == n_img + n_txt
        assert recorder.records["transformer_blocks.0.attn2"]["q"].shape[-2] == n_img

        class Zero(Editor):
            def attend(self, call):
                return torch.zeros_like(call.q)

        with control.use(Zero()):
            assert not torch.allclose(sd3.denoise(z, 700.0, cond), reference, atol=1e-3)
    finally:
        remove_joint_control(sd3.transformer)
    assert torch.allclose(sd3.denoise(z, 700.0, cond), reference, atol=1e-6)


def test_two_query_sdpa_is_one_exact_softmax():
    q_a, q_b = _rand(2, H, 7, D, seed=1), _rand(2, H, 7, D, seed=2)
    k_img, v_img = _rand(2, H, NI, D, seed=3), _rand(2, H, NI, D, seed=4)
    k_txt, v_txt = _rand(2, H, NT, D, seed=5), _rand(2, H, NT, D, seed=6)
    expected = _softmax_attention(q_a, q_b, k_img, k_txt, v_img, v_txt)
    assert torch.allclose(two_query_sdpa(q_a, q_b, k_img, v_img, k_txt, v_txt), expected, atol=1e-6)
    # the two queries really are used separately
    assert not torch.allclose(two_query_sdpa(q_a, q_a, k_img, v_img, k_txt, v_txt), expected, atol=1e-3)
    # with q_a = q_b it is ordinary joint attention
    call = JointAttnCall("x", q_a[:, :, :NI], k_img, v_img, q_a[:, :, NI:], k_txt, v_txt)
    assert torch.allclose(two_query_sdpa(q_a, q_a, k_img, v_img, k_txt, v_txt), torch.cat(joint_sdpa(call), -2),
                          atol=1e-6)


@pytest.mark.parametrize("guided", [False, True])
def test_ham_editor_student_equals_hand_written_gar_and_lat(guided):
    alpha, beta = 0.75, 0.25
    # [uncond | cond] × [content (2) | style (1, shared by both students) | student (2)]
    layout = BatchLayout.of(guided, content=2, style=1, student=2)
    call = _call(layout.total)
    out_img, out_txt = HAMJointEditor(layout, [0, 0], alpha, beta).attend_joint(call)
    plain_img, plain_txt = joint_sdpa(call)
    q, k, v, qt, kt, vt = (layout.split(x) for x in (call.q_img, call.k_img, call.v_img,
                                                     call.q_txt, call.k_txt, call.v_txt))
    gar = lambda x: alpha * x["student"] + (1 - alpha) * _hand_adain(x["content"], x["style"])  # noqa: E731
    q_mix = beta * q["student"] + (1 - beta) * q["content"]
    k_style, v_style = kt["style"].expand_as(kt["student"]), vt["style"].expand_as(vt["student"])
    expected_img = _softmax_attention(gar(q), q_mix, gar(k), k_style, gar(v), v_style)
    expected_txt = _softmax_attention(qt["student"], qt["student"], gar(k), k_style, gar(v), v_style)
    got_img, got_txt, ref_img, ref_txt = (layout.split(x) for x in (out_img, out_txt, plain_img, plain_txt))
    assert torch.allclose(got_img["student"], expected_img, atol=1e-5)
    assert torch.allclose(got_txt["student"], expected_txt, atol=1e-5)
    for teacher in ("content", "style"):  # teachers are untouched; the student is not
        assert torch.allclose(got_img[teacher], ref_img[teacher], atol=1e-6)
        assert torch.allclose(got_txt[teacher], ref_txt[teacher], atol=1e-6)
    assert not torch.allclose(got_img["student"], ref_img["student"], atol=1e-3)


def test_ham_on_image_only_attn2_is_gar_only():
    call = _call(3, joint=False)
    out, none = HAMJointEditor(PLAIN, alpha=0.5).attend_joint(call)
    assert none is None
    gar = lambda x: 0.5 * x[2:] + 0.5 * _hand_adain(x[:1], x[1:2])  # noqa: E731
    q, k, v = gar(call.q_img), gar(call.k_img), gar(call.v_img)
    assert torch.allclose(out[2:], torch.softmax(q @ k.transpose(-1, -2) / D ** 0.5, -1) @ v, atol=1e-5)
    assert torch.allclose(out[:2], joint_sdpa(call)[0][:2], atol=1e-6)


def test_gar_and_lat_switch_separately():
    call = _call(3)
    plain_img, _ = joint_sdpa(call)
    gar_only, _ = HAMJointEditor(PLAIN, alpha=0.5, lat_layers=()).attend_joint(call)
    gar = lambda x: 0.5 * x[2:] + 0.5 * _hand_adain(x[:1], x[1:2])  # noqa: E731
    q, k, v = gar(call.q_img), gar(call.k_img), gar(call.v_img)
    expected = _softmax_attention(q, q, k, call.k_txt[2:], v, call.v_txt[2:])
    assert torch.allclose(gar_only[2:], expected, atol=1e-5)
    lat_only, _ = HAMJointEditor(PLAIN, beta=0.5, gar_layers=()).attend_joint(call)
    q_mix = 0.5 * call.q_img[2:] + 0.5 * call.q_img[:1]
    expected = _softmax_attention(call.q_img[2:], q_mix, call.k_img[2:], call.k_txt[1:2], call.v_img[2:],
                                  call.v_txt[1:2])
    assert torch.allclose(lat_only[2:], expected, atol=1e-5)
    assert torch.allclose(lat_only[:2], plain_img[:2], atol=1e-6)


def test_alpha_beta_one_leave_the_student_unmodified_without_the_text_kv_transplant():
    call = _call(3)
    plain = torch.cat(joint_sdpa(call), -2)
    identity = torch.cat(HAMJointEditor(PLAIN, alpha=1.0, beta=1.0, transplant_text_kv=False).attend_joint(call), -2)
    assert torch.allclose(identity, plain, atol=1e-6)
    # with the transplant on, SD3.5's text K/V carry the style image (unlike SD2.1's prompt-only K/V), so the
    # student attends to the style teacher's text tokens even at α = β = 1
    moved = torch.cat(HAMJointEditor(PLAIN, alpha=1.0, beta=1.0).attend_joint(call), -2)
    q_all = torch.cat([call.q_img[2:], call.q_txt[2:]], -2)
    expected = _softmax_attention(q_all, q_all, call.k_img[2:], call.k_txt[1:2], call.v_img[2:], call.v_txt[1:2])
    assert torch.allclose(moved[2:], expected, atol=1e-5) and not torch.allclose(moved[2:], plain[2:], atol=1e-3)


def test_ham_in_the_transformer_keeps_teachers_and_identity(sd3, inputs):
    z, cond = inputs
    reference = sd3.denoise(z, 700.0, cond)
    control = _installed(sd3)
    try:
        with control.use(HAMJointEditor(PLAIN)):
            edited = sd3.denoise(z, 700.0, cond)
        assert torch.allclose(edited[:2], reference[:2], atol=1e-5)  # content and style teachers
        assert not torch.allclose(edited[2], reference[2], atol=1e-4)  # the student is edited
        with control.use(HAMJointEditor(PLAIN, alpha=1.0, beta=1.0, transplant_text_kv=False)):
            assert torch.allclose(sd3.denoise(z, 700.0, cond), reference, atol=1e-5)
        only = {"transformer_blocks.1.attn"}
        with control.use(HAMJointEditor(PLAIN, gar_layers=only, lat_layers=only)):  # only where configured
            one_layer = sd3.denoise(z, 700.0, cond)
        assert torch.allclose(one_layer[:2], reference[:2], atol=1e-5)
        assert not torch.allclose(one_layer[2], edited[2], atol=1e-4)
        with control.use(HAMJointEditor(PLAIN, gar_layers=(), lat_layers=())):  # nothing configured: plain
            assert torch.allclose(sd3.denoise(z, 700.0, cond), reference, atol=1e-6)
        with control.use(HAMJointEditor(PLAIN)), pytest.raises(ValueError, match="3 rows"):
            sd3.denoise(z[:2], 700.0, type(cond)(cond.embeds[:2], cond.pooled[:2]))
    finally:
        remove_joint_control(sd3.transformer)
