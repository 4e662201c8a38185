"""Self-supervised memory-attention target and loss against hand-computed values."""

import math

import pytest
import torch

from rxmrl.model.norm import unit_rms
from rxmrl.train.warmstart.memory_self_supervised import (
    attention_pool, cosine_per_sample, new_data_weight, self_supervised_target,
)

SCHEDULE = dict(first=0.9, second=0.5, decay=0.05, minimum=0.05)


def test_new_data_weight_schedule():
    assert [new_data_weight(t, **SCHEDULE) for t in range(4)] == pytest.approx([0.9, 0.5, 0.45, 0.4])
    assert new_data_weight(30, **SCHEDULE) == 0.05  # floored


def _example():
    # one sample, one layer, two slots, two tokens, D = 2
    previous = torch.tensor([[[[0.5, 0.0], [0.0, -3.0]]]])  # [1, 1, 2, 2]
    encoded = torch.tensor([[[[2.0, 0.0], [0.0, -1.0]]]])  # [1, 1, 2, 2]
    return previous, encoded


def test_target_by_hand():
    previous, encoded = _example()
    r2 = math.sqrt(2)
    # unit-RMS vectors: s0 = (r2, 0), s1 = (0, -r2); e0 = (r2, 0), e1 = (0, -r2)
    # scores / sqrt(2): slot 0 -> (2/r2, 0), slot 1 -> (0, 2/r2)
    p = math.exp(r2) / (math.exp(r2) + 1)  # 0.80444
    pooled0 = (p * r2, -(1 - p) * r2)
    pooled1 = ((1 - p) * r2, -p * r2)
    assert torch.allclose(attention_pool(previous, encoded, None)[0, 0], torch.tensor([pooled0, pooled1]), rtol=1e-5)

    def unit(v):
        rms = math.sqrt((v[0] ** 2 + v[1] ** 2) / 2)
        return (v[0] / rms, v[1] / rms)

    w = 0.9
    t0 = [(1 - w) * a + w * b for a, b in zip((r2, 0.0), unit(pooled0))]
    t1 = [(1 - w) * a + w * b for a, b in zip((0.0, -r2), unit(pooled1))]
    target = self_supervised_target(previous, encoded, None, torch.tensor([w]), temperature=1.0)
    assert torch.allclose(target[0, 0], torch.tensor([t0, t1]), rtol=1e-5)
    assert t0 == pytest.approx([1.37819, -0.30066], abs=1e-4)  # the numbers, written out once

    # weight 0: the target is the previous memory's direction; weight 1: the pooled interaction's
    assert torch.allclose(self_supervised_target(previous, encoded, None, torch.tensor([0.0])), unit_rms(previous))
    assert self_supervised_target(previous, encoded, None, torch.tensor([1.0]))[0, 0, 0].tolist() == pytest.approx(
        list(unit(pooled0)), rel=1e-5)


def test_padding_tokens_do_not_change_the_target():
    previous, encoded = _example()
    padded = torch.cat([encoded, torch.tensor([[[[50.0, 50.0]]]])], dim=2)  # a third, padded token
    mask = torch.tensor([[True, True, False]])
    expected = self_supervised_target(previous, encoded, None, torch.tensor([0.9]))
    assert torch.allclose(self_supervised_target(previous, padded, mask, torch.tensor([0.9])), expected)


def test_pool_of_uninformative_slots_is_the_token_mean():
    encoded = torch.randn(1, 1, 5, 4)
    pooled = attention_pool(torch.zeros(1, 1, 3, 4), encoded, None)  # all scores equal
    assert torch.allclose(pooled, unit_rms(encoded).mean(dim=2, keepdim=True).expand(1, 1, 3, 4), atol=1e-6)


def test_negative_cosine_by_hand():
    prediction = torch.tensor([[[[1.0, 0.0], [0.0, 2.0]]]])
    target = torch.tensor([[[[1.0, 1.0], [0.0, -1.0]]]])
    # slot 0: cos 45 degrees = 1/sqrt(2); slot 1: opposite = -1
    expected = -((1 / math.sqrt(2)) + (-1.0)) / 2
    assert cosine_per_sample(prediction, target).tolist() == pytest.approx([-expected])


def test_lower_temperature_sharpens_the_pooling_towards_the_best_matching_token():
    previous, encoded = _example()
    sharp = attention_pool(previous, encoded, None, temperature=0.05)
    assert torch.allclose(sharp[0, 0], unit_rms(encoded)[0, 0], atol=1e-4)  # slot 0 -> token 0, slot 1 -> token 1
    # by hand at tau = 0.5: scores are doubled
    p = math.exp(2 * math.sqrt(2)) / (math.exp(2 * math.sqrt(2)) + 1)
    r2 = math.sqrt(2)
    assert attention_pool(previous, encoded, None, temperature=0.5)[0, 0, 0].tolist() == pytest.approx(
        [p * r2, -(1 - p) * r2], rel=1e-5)


def test_centred_similarity_by_hand():
    from rxmrl.train.warmstart.memory_self_supervised import similarity_per_sample

    # two slots; both share a large common direction (10, 0) and differ by +/- (0, 1)
    prediction = torch.tensor([[[[10.0, 1.0], [10.0, -1.0]]]])
    target = torch.tensor([[[[10.0, -1.0], [10.0, 1.0]]]])  # the same common part, slots swapped
    plain = (100 - 1) / 101  # cos of (10, 1) and (10, -1) for both slots
    # centred: prediction slots (0, 1), (0, -1); target slots (0, -1), (0, 1): opposite, cos -1
    assert similarity_per_sample(prediction, target, 0.0).item() == pytest.approx(plain)
    assert similarity_per_sample(prediction, target, 1.0).item() == pytest.approx(-1.0)
    assert similarity_per_sample(prediction, target, 0.5).item() == pytest.approx(0.5 * plain - 0.5)
