import math
import pytest
import torch

from stylex.diffusion.regional_attention import (Pair, flex_layout, flex_targets, gather_targets, regional_target,
                                                 token_weights, zero_query_terms)


def qkv(seed=0, n=12, m=10, heads=2, d=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(heads, n, d, generator=g), torch.randn(heads, m, d, generator=g), torch.randn(heads, m, d, generator=g)


def test_sparse_target_is_a_softmax_restricted_to_the_pair():
    q, k, v = qkv()
    q_idx = torch.tensor([1, 4, 5])
    kv_mask = torch.zeros(10, dtype=torch.bool)
    kv_mask[[0, 3, 7, 8]] = True
    s = 1.5
    target = regional_target(q, k, v, q_idx, kv_mask, s, "sparse")
    logits = s * q[:, q_idx] @ k[:, kv_mask].transpose(-1, -2) / 2.0
    assert torch.allclose(target, logits.softmax(-1) @ v[:, kv_mask], atol=1e-6)
    # no style token outside the matched region receives any weight: changing them changes nothing
    k2, v2 = k.clone(), v.clone()
    k2[:, ~kv_mask] = 100.0
    v2[:, ~kv_mask] = -100.0
    assert torch.allclose(regional_target(q, k2, v2, q_idx, kv_mask, s, "sparse"), target)


def test_zero_mode_reproduces_the_diluted_formula():
    q, k, v = qkv(1)
    q_idx = torch.tensor([0, 2])
    kv_mask = torch.zeros(10, dtype=torch.bool)
    kv_mask[2:5] = True
    s, d = 1.5, 4
    target = regional_target(q, k, v, q_idx, kv_mask, s, "zero")
    e = torch.exp(s * q[:, q_idx] @ k[:, kv_mask].transpose(-1, -2) / math.sqrt(d))
    zeroed = int((~kv_mask).sum())  # each zeroed key has logit 0 -> weight exp(0) = 1 in the denominator
    diluted = (e @ v[:, kv_mask]) / (e.sum(-1, keepdim=True) + zeroed)
    assert torch.allclose(target, diluted, atol=1e-6)
    assert not torch.allclose(target, regional_target(q, k, v, q_idx, kv_mask, s, "sparse"), atol=1e-3)
    # a style region with no key at this grid: every key and value zeroed, so the target is 0 (the pair is kept)
    none = torch.zeros(10, dtype=torch.bool)
    assert regional_target(q, k, v, q_idx, none, s, "zero").abs().max() == 0
    no_query = torch.tensor([], dtype=torch.long)
    kept = gather_targets(q, [(k, v)], [Pair(q_idx, 0, none, s), Pair(no_query, 0, kv_mask, s)], "zero")
    assert kept.abs().max() == 0


def planted_pairs(n_tokens=40, key_counts=(24, 16), heads=2, d=8):
    """Three content regions over two references: region 0 -> ref 0 region A, region 1 -> ref 1 region B,
    region 2 falls back to every key at another temperature; tokens 36.. belong to no pair."""
    g = torch.Generator().manual_seed(3)
    q = torch.randn(heads, n_tokens, d, generator=g)
    keys = [(torch.randn(heads, m, d, generator=g), torch.randn(heads, m, d, generator=g)) for m in key_counts]
    mask_a = torch.zeros(key_counts[0], dtype=torch.bool)
    mask_a[::3] = True
    mask_b = torch.zeros(key_counts[1], dtype=torch.bool)
    mask_b[5:11] = True
    pairs = [Pair(torch.arange(0, 12), 0, mask_a, 1.5), Pair(torch.arange(12, 30), 1, mask_b, 1.5),
             Pair(torch.arange(30, 36), 0, None, 1.0)]
    return q, keys, pairs


def hand_written(q, keys, pairs):
    """Each pair's softmax written out: logits over its own keys only."""
    target = torch.zeros_like(q)
    for p in pairs:
        if p.key_mask is None:
            k, v = torch.cat([k for k, _ in keys], 1), torch.cat([v for _, v in keys], 1)
        else:
            k, v = keys[p.reference][0][:, p.key_mask], keys[p.reference][1][:, p.key_mask]
        logits = p.temperature * q[:, p.query_idx] @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        target[:, p.query_idx] = logits.softmax(-1) @ v
    return target


def test_gather_and_flex_equal_the_hand_written_regional_softmax():
    q, keys, pairs = planted_pairs()
    expected = hand_written(q, keys, pairs)
    assert torch.allclose(gather_targets(q, keys, pairs), expected, atol=1e-5)
    layout = flex_layout(pairs, q.shape[1], [k.shape[1] for k, _ in keys], q.device, compiled=False)
    assert layout.score_mod is not None  # the fallback pair's temperature differs
    flex = flex_targets(q, keys, layout, compiled=False)
    assert torch.allclose(flex, expected, atol=1e-5)
    assert flex[:, 36:].abs().max() == 0  # tokens outside every pair attend to nothing


def test_flex_with_one_temperature_uses_the_plain_scale():
    q, keys, pairs = planted_pairs()
    pairs = pairs[:2]
    layout = flex_layout(pairs, q.shape[1], [k.shape[1] for k, _ in keys], q.device, compiled=False)
    assert layout.score_mod is None and layout.temperature == 1.5
    assert torch.allclose(flex_targets(q, keys, layout, compiled=False), hand_written(q, keys, pairs), atol=1e-5)


@pytest.mark.parametrize("loss_norm", ["layer", "region"])
def test_token_weights_give_each_pair_its_mean_weighted_by_its_share(loss_norm):
    """layer: Σ_pairs (n_i/N)·mean_i (= the mean over all N tokens of the masked L1); region: Σ_pairs mean_i."""
    q, keys, pairs = planted_pairs()
    n = q.shape[1]
    out, target = torch.randn_like(q), hand_written(q, keys, pairs)
    weights = token_weights(pairs, n, q.shape[0], q.shape[2], q.device, loss_norm)
    weighted = (weights * (out - target).abs().sum(dim=(0, 2))).sum()
    share = (lambda p: p.query_idx.numel() / n) if loss_norm == "layer" else (lambda p: 1.0)
    by_pair = sum(share(p) * (out[:, p.query_idx] - target[:, p.query_idx]).abs().mean() for p in pairs)
    assert torch.allclose(weighted, by_pair, rtol=1e-5)
    assert weights[36:].eq(0).all()
    with pytest.raises(ValueError, match="two matched pairs"):
        token_weights(pairs + [Pair(torch.tensor([0]), 1, None, 1.0)], n, 2, 8, q.device, loss_norm)


def test_zero_mode_terms_outside_each_region_are_the_zero_query_attention():
    """The published L1Loss(O·m_i, SDPA(Q·m_i, K·m_j, V·m_j)) over all N tokens: outside region i the output is
    masked to 0 and the query is 0, so the target there is the uniform mean of V·m_j over all keys."""
    q, keys, pairs = planted_pairs()
    n = q.shape[1]
    expected = 0.0
    for p in pairs:
        if p.key_mask is None:
            v = torch.cat([v for _, v in keys], dim=1)
        else:
            v = keys[p.reference][1] * p.key_mask[None, :, None].float()
        outside = torch.ones(n, dtype=torch.bool)
        outside[p.query_idx] = False
        zero_query = torch.softmax(torch.zeros(q.shape[0], n, v.shape[1]), -1) @ v  # SDPA of a zero query
        expected = expected + (0 - zero_query[:, outside]).abs().sum() / zero_query.numel()
    assert torch.allclose(zero_query_terms([v for _, v in keys], pairs, n), torch.as_tensor(expected), rtol=1e-5)


def test_benchmark_baseline_and_planted_regions_agree_with_gather():
    from stylex.bench.regional import dense_targets, planted_pairs as voronoi_pairs

    pairs = voronoi_pairs(side=8, n_refs=2, regions=4, seed=0, device=torch.device("cpu"))
    assert {p.reference for p in pairs} == {0, 1}
    covered = torch.cat([p.query_idx for p in pairs])
    assert covered.unique().numel() == covered.numel()  # each content token in at most one pair
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 64, 8, generator=g)
    keys = [(torch.randn(2, 64, 8, generator=g), torch.randn(2, 64, 8, generator=g)) for _ in range(2)]
    assert torch.allclose(dense_targets(q, keys, pairs)[:, covered], gather_targets(q, keys, pairs)[:, covered],
                          atol=1e-5)
