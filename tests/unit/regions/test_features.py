import math

import pytest
import torch

from stylex.regions.features import mix_features, time_weights


def test_time_weights_closed_form():
    w = time_weights()
    d = [1 / (1 + math.exp(5 * (i / 15 - 0.7))) for i in range(15)]
    expected = torch.tensor([x / sum(d) for x in d])
    assert w.shape == (15,)
    torch.testing.assert_close(w, expected.to(w.dtype), rtol=1e-6, atol=1e-7)


def test_time_weights_sum_to_one_and_decrease():
    for n, sharpness, center in [(15, 5.0, 0.7), (4, 2.0, 0.5), (50, 10.0, 0.3)]:
        w = time_weights(n, sharpness, center, dtype=torch.float64)
        assert abs(float(w.sum()) - 1.0) < 1e-12
        assert bool((w[1:] < w[:-1]).all())


def test_time_weights_ratio_first_last():
    w = time_weights(15, dtype=torch.float64)
    ratio = (1 + math.exp(5 * (14 / 15 - 0.7))) / (1 + math.exp(5 * (0 - 0.7)))
    assert float(w[0] / w[-1]) == pytest.approx(ratio, rel=1e-12)


def test_time_weights_rejects_zero_steps():
    with pytest.raises(ValueError):
        time_weights(0)


def test_mix_features_list_and_stack_agree():
    g = torch.Generator().manual_seed(0)
    feats = [torch.randn(3, 4, 5, generator=g) for _ in range(6)]
    w = time_weights(6)
    expected = sum(wi * f for wi, f in zip(w, feats))
    torch.testing.assert_close(mix_features(feats, w), expected)
    torch.testing.assert_close(mix_features(torch.stack(feats), w), expected)
    torch.testing.assert_close(mix_features(feats), expected)  # default weights = time_weights(T)


def test_mix_features_one_hot_weight_picks_a_step():
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(1, 2, 3, 3, generator=g) for _ in range(3)]  # as a hook records them: [1,C,h,w]
    out = mix_features(feats, torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(out, feats[1][0])


def test_mix_features_weight_count_mismatch():
    with pytest.raises(ValueError):
        mix_features([torch.zeros(2, 2, 2)] * 3, torch.ones(4) / 4)
