"""The DMPO loss terms against hand arithmetic: sequence log-probs, the DPO margin and loss, both anchors."""

import math

import pytest
import torch

from rxmrl.errors import ConfigError
from rxmrl.train.dmpo import (dmpo_loss, dpo_loss, nll_anchor, preference_margin, ratio_anchor,
                              sequence_logprob)
from rxmrl.train.dmpo_config import DmpoConfig


def test_sequence_logprob_sums_the_real_tokens_only():
    logprobs = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -9.0, -9.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert sequence_logprob(logprobs, mask).tolist() == [-3.0, -0.5]


def test_preference_margin_is_the_accepted_minus_the_rejected_log_ratio():
    # accepted: -3 under the policy, -4 under the reference (+1); rejected: -5 and -5 (0); margin 1
    margin = preference_margin(torch.tensor([-3.0]), torch.tensor([-4.0]), torch.tensor([-5.0]), torch.tensor([-5.0]))
    assert margin.tolist() == [1.0]
    # the same policy as the reference: no margin, whatever the answers' likelihoods
    same = preference_margin(torch.tensor([-2.0]), torch.tensor([-2.0]), torch.tensor([-7.0]), torch.tensor([-7.0]))
    assert same.tolist() == [0.0]


def test_dpo_loss_is_minus_log_sigmoid_of_beta_times_the_margin():
    loss = dpo_loss(torch.tensor([1.0, 0.0, -2.0]), beta=0.1)
    expected = [math.log(1 + math.exp(-0.1)), math.log(2.0), math.log(1 + math.exp(0.2))]  # 0.6444, 0.6931, 0.7981
    assert loss.tolist() == pytest.approx(expected)
    # d/dm of -log sigmoid(beta m) at m = 0 is -beta / 2: widening the margin lowers the loss
    margin = torch.zeros(1, requires_grad=True)
    dpo_loss(margin, beta=0.1).sum().backward()
    assert margin.grad.tolist() == pytest.approx([-0.05])
    # stable far out: a margin of -1e4 gives beta * 1e4, not inf
    assert dpo_loss(torch.tensor([-1e4]), beta=0.5).tolist() == pytest.approx([5000.0])


def test_nll_anchor_is_the_mean_per_token_nll_of_the_accepted_answer():
    logprobs = torch.tensor([[-1.0, -3.0, -100.0], [-0.5, -0.5, -0.5]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    assert nll_anchor(logprobs, mask).tolist() == pytest.approx([2.0, 0.5])


def test_ratio_anchor_acts_only_when_the_accepted_answer_fell_below_the_reference():
    anchor = ratio_anchor(torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -4.0]))
    assert anchor.tolist() == [0.0, 1.0]


def _pair_inputs():
    # two pairs; accepted answers of 2 and 1 tokens, rejected of 1 and 2 tokens
    accepted = torch.tensor([[-1.0, -2.0], [-0.5, 0.0]], requires_grad=True)
    accepted_mask = torch.tensor([[True, True], [True, False]])
    rejected = torch.tensor([[-4.0, 0.0], [-1.0, -1.0]], requires_grad=True)
    rejected_mask = torch.tensor([[True, False], [True, True]])
    ref_accepted = torch.tensor([[-1.5, -2.5], [-0.5, 0.0]])  # sums -4, -0.5
    ref_rejected = torch.tensor([[-3.0, 0.0], [-1.0, -1.0]])  # sums -3, -2
    return dict(accepted_logprobs=accepted, accepted_mask=accepted_mask, rejected_logprobs=rejected,
                rejected_mask=rejected_mask, reference_accepted=ref_accepted, reference_rejected=ref_rejected)


def test_dmpo_loss_combines_the_terms_by_hand():
    inputs = _pair_inputs()
    # pair 0: accepted -3 vs ref -4 (+1), rejected -4 vs ref -3 (-1): margin 2; pair 1: 0 and 0: margin 0
    terms = dmpo_loss(DmpoConfig(beta=0.5), **inputs)
    preference = (math.log(1 + math.exp(-1.0)) + math.log(2.0)) / 2
    assert float(terms.preference) == pytest.approx(preference)
    assert float(terms.total.detach()) == pytest.approx(preference)  # anchor_coef 0: plain DPO
    assert float(terms.margin) == pytest.approx(0.5 * (2.0 + 0.0) / 2)
    assert float(terms.accuracy) == pytest.approx(0.5)  # a zero margin is not a win
    assert float(terms.accepted_logratio) == pytest.approx(0.5) and float(terms.rejected_logratio) == pytest.approx(-0.5)
    # the NLL anchor: per-token means 1.5 and 0.5 -> 1.0, weighted by the coefficient
    anchored = dmpo_loss(DmpoConfig(beta=0.5, anchor="nll", anchor_coef=0.3), **inputs)
    assert float(anchored.anchor) == pytest.approx(1.0)
    assert float(anchored.total.detach()) == pytest.approx(preference + 0.3 * 1.0)
    # the ratio anchor: both accepted log-ratios are >= 0 -> 0
    assert float(dmpo_loss(DmpoConfig(anchor="ratio", anchor_coef=1.0), **inputs).anchor) == 0.0


def test_dmpo_loss_raises_the_accepted_and_lowers_the_rejected_answer():
    inputs = _pair_inputs()
    dmpo_loss(DmpoConfig(beta=0.1), **inputs).total.backward()
    accepted_grad, rejected_grad = inputs["accepted_logprobs"].grad, inputs["rejected_logprobs"].grad
    assert (accepted_grad[inputs["accepted_mask"]] < 0).all()  # descent raises log pi(y_w)
    assert (rejected_grad[inputs["rejected_mask"]] > 0).all()  # and lowers log pi(y_l)
    assert (accepted_grad[~inputs["accepted_mask"]] == 0).all() and (rejected_grad[~inputs["rejected_mask"]] == 0).all()


@pytest.mark.parametrize("changes, key", [
    (dict(beta=0.0), "beta"), (dict(beta=-0.1), "beta"), (dict(group_size=1), "group_size"),
    (dict(anchor_coef=-1.0), "anchor_coef"), (dict(max_grad_norm=-1.0), "max_grad_norm"),
    (dict(minibatch_size=-1), "minibatch_size"), (dict(update_epochs=0), "update_epochs"),
    (dict(bptt_depth=0), "bptt_depth"),
])
def test_invalid_dmpo_settings_are_config_errors(changes, key):
    with pytest.raises(ConfigError, match=key):
        DmpoConfig(**changes)
