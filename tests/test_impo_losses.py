"""Each IMPO loss term against values worked out by hand on small tensors."""

import math

import pytest
import torch

from rxmrl.train.impo import (
    active_mean,
    clipped_surrogate,
    impo_loss,
    k3_kl,
    mean_entropy,
    memory_rmse,
    sequence_mean,
    value_loss,
)
from rxmrl.errors import ConfigError
from rxmrl.train.mrl_config import ImpoConfig

MASK = torch.tensor([[True, True], [True, False]])
ALL = torch.tensor([True, True])


def test_sequence_mean_ignores_padding_and_empty_rows():
    values = torch.tensor([[1.0, 3.0], [5.0, 100.0], [7.0, 7.0]])
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    assert sequence_mean(values, mask).tolist() == [2.0, 5.0, 0.0]
    assert active_mean(torch.tensor([1.0, 3.0, 10.0]), torch.tensor([True, True, False])).item() == 2.0


def test_clipped_surrogate_by_hand():
    # row 0: A = 2, ratios 1.5 (clipped to 1.2) and 0.5 (min picks the unclipped 0.5*2 = 1.0)
    # row 1: A = -1, ratio 1.1 inside the clip range: -(1.1 * -1) = 1.1; its second token is padding
    logprobs = torch.log(torch.tensor([[1.5, 0.5], [1.1, 9.0]]))
    old = torch.zeros(2, 2)
    loss, clip_fraction = clipped_surrogate(logprobs, old, torch.tensor([2.0, -1.0]), MASK, ALL, clip_eps=0.2)
    row0 = -(2.4 + 1.0) / 2
    row1 = 1.1
    assert loss.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    assert clip_fraction.item() == pytest.approx(1 / 3)  # only row 0's first token is cut off


def test_clipped_surrogate_negative_advantage_clips_low_ratios():
    logprobs = torch.log(torch.tensor([[0.5, 1.0]]))
    loss, clip_fraction = clipped_surrogate(logprobs, torch.zeros(1, 2), torch.tensor([-1.0]),
                                            torch.tensor([[True, True]]), torch.tensor([True]), clip_eps=0.2)
    # token 0: min(-0.5, -0.8) = -0.8 -> +0.8; token 1: ratio 1 -> +1.0
    assert loss.item() == pytest.approx((0.8 + 1.0) / 2)
    assert clip_fraction.item() == pytest.approx(0.5)


def test_clip_higher_widens_only_the_upper_bound():
    # A = 2 with ratios 1.25 and 0.7: the upper clip at 1.28 leaves 1.25 alone (it was cut at 1.2), the lower
    # bound stays 0.8 (for A > 0 the min picks the unclipped 0.7 anyway); A = -1 with ratio 0.7 is still cut at 0.8
    logprobs = torch.log(torch.tensor([[1.25, 0.7], [0.7, 1.0]]))
    full = torch.ones(2, 2, dtype=torch.bool)
    advantages = torch.tensor([2.0, -1.0])
    loss, clip_fraction = clipped_surrogate(logprobs, torch.zeros(2, 2), advantages, full, ALL, clip_eps=0.2,
                                            clip_eps_high=0.28)
    row0 = -(1.25 * 2 + 0.7 * 2) / 2
    row1 = (0.8 + 1.0) / 2
    assert loss.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    assert clip_fraction.item() == pytest.approx(1 / 4)  # row 1's first token only
    symmetric, cut = clipped_surrogate(logprobs, torch.zeros(2, 2), advantages, full, ALL, clip_eps=0.2)
    assert symmetric.item() == pytest.approx((-(1.2 * 2 + 0.7 * 2) / 2 + row1) / 2, abs=1e-6)
    assert cut.item() == pytest.approx(2 / 4)
    with pytest.raises(ConfigError, match="clip_eps_high"):
        ImpoConfig(clip_eps_high=1.5)


def test_inactive_answers_do_not_count():
    logprobs = torch.log(torch.tensor([[2.0, 2.0], [1.0, 1.0]]))
    loss, _ = clipped_surrogate(logprobs, torch.zeros(2, 2), torch.tensor([5.0, 1.0]), torch.ones(2, 2, dtype=torch.bool),
                                torch.tensor([False, True]), clip_eps=0.2)
    assert loss.item() == pytest.approx(-1.0)


def test_value_loss_plain_and_clipped():
    values, old, returns = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 2.5]), torch.tensor([2.0, 0.0])
    assert value_loss(values, old, returns, ALL).item() == pytest.approx(0.5 * (1.0 + 4.0) / 2)
    # clipped values: 0.5 + 0.2 = 0.7 and 2.5 - 0.2 = 2.3; errors 1.69 and 5.29 are the larger ones
    assert value_loss(values, old, returns, ALL, clip=0.2).item() == pytest.approx(0.5 * (1.69 + 5.29) / 2)


def test_entropy_is_a_per_token_mean():
    entropy = torch.tensor([[1.0, 3.0], [4.0, 50.0]])
    assert mean_entropy(entropy, MASK, ALL).item() == pytest.approx((2.0 + 4.0) / 2)


def test_memory_rmse_per_sample_then_mean():
    old = torch.zeros(2, 1, 1, 2)
    new = torch.tensor([1.0, 1.0, 3.0, 4.0]).reshape(2, 1, 1, 2)
    expected = (1.0 + math.sqrt((9 + 16) / 2)) / 2
    assert memory_rmse(new, old).item() == pytest.approx(expected, abs=1e-6)
    # differentiable where the STM did not move (the eps inside the square root)
    same = torch.zeros(1, 1, 1, 2, requires_grad=True)
    memory_rmse(same, torch.zeros(1, 1, 1, 2)).backward()
    assert torch.isfinite(same.grad).all()


def test_k3_estimator_by_hand():
    log_ratio = torch.tensor([[math.log(2.0), -math.log(2.0)]])
    k3 = k3_kl(log_ratio, torch.tensor([[True, True]]), torch.tensor([True]))
    expected = ((2 - 1 - math.log(2)) + (0.5 - 1 + math.log(2))) / 2
    assert k3.item() == pytest.approx(expected, abs=1e-6)
    assert k3_kl(torch.zeros(1, 2), torch.tensor([[True, True]]), torch.tensor([True])).item() == 0.0


def test_impo_loss_combines_the_terms_with_their_coefficients():
    config = ImpoConfig(clip_eps=0.2, value_coef=0.5, entropy_coef=0.1, memory_coef=2.0, kl_step_coef=3.0,
                        kl_ref_coef=4.0, aux_coef=0.5)
    logprobs = torch.log(torch.tensor([[1.5, 0.5], [1.1, 9.0]]))
    old = torch.zeros(2, 2)
    entropy = torch.tensor([[1.0, 3.0], [4.0, 0.0]])
    stm_prev = torch.zeros(2, 1, 1, 2)
    stm = torch.ones(2, 1, 1, 2)
    ref = torch.zeros(2, 2)
    terms = impo_loss(config, logprobs=logprobs, old_logprobs=old, entropy=entropy, mask=MASK,
                      advantages=torch.tensor([2.0, -1.0]), active=ALL, values=torch.tensor([1.0, 2.0]),
                      old_values=torch.tensor([1.0, 2.0]), returns=torch.tensor([2.0, 0.0]), stm=stm,
                      previous_stm=stm_prev, ref_logprobs=ref, aux_loss=torch.tensor(0.3))
    # kl_step uses delta = logprobs - old; kl_ref uses delta = ref - logprobs
    kl = lambda d: math.exp(d) - 1 - d  # noqa: E731
    kl_step = ((kl(math.log(1.5)) + kl(math.log(0.5))) / 2 + kl(math.log(1.1))) / 2
    kl_ref = ((kl(-math.log(1.5)) + kl(-math.log(0.5))) / 2 + kl(-math.log(1.1))) / 2
    policy = ((-(2.4 + 1.0) / 2) + 1.1) / 2
    value = 0.5 * (1.0 + 4.0) / 2
    entropy_value = (2.0 + 4.0) / 2
    memory = 1.0
    expected = policy - 0.1 * entropy_value + 0.5 * value + 2.0 * memory + 3.0 * kl_step + 4.0 * kl_ref + 0.5 * 0.3
    assert terms.kl_step.item() == pytest.approx(kl_step, abs=1e-6)
    assert terms.kl_ref.item() == pytest.approx(kl_ref, abs=1e-6)
    assert terms.total.item() == pytest.approx(expected, abs=1e-5)


def test_the_surrogate_gradient_raises_the_probability_of_good_answers():
    logprobs = torch.zeros(1, 3, requires_grad=True)
    loss, _ = clipped_surrogate(logprobs, torch.zeros(1, 3), torch.tensor([1.0]), torch.ones(1, 3, dtype=torch.bool),
                                torch.tensor([True]), clip_eps=0.2)
    loss.backward()
    assert (logprobs.grad < 0).all()  # gradient descent increases the log-probs
