"""Mixture-of-Experts: routing, renormalised weights, the load-balancing loss, dispatch paths."""

import math

import pytest
import torch
import torch.nn.functional as F

from rxmrl.model.moe import MixtureOfExperts


def expert_by_hand(moe, e, x):
    """SwiGLU expert e written out: W2 (silu(W1 x + b1) * (W3 x + b3)) + b2."""
    h = moe.hidden
    w1, w3 = moe.gate_up_weight[e][:h], moe.gate_up_weight[e][h:]
    b1, b3 = moe.gate_up_bias[e][:h], moe.gate_up_bias[e][h:]
    return (F.silu(x @ w1.T + b1) * (x @ w3.T + b3)) @ moe.down_weight[e].T + moe.down_bias[e]


def hand_moe(top_k=2, renormalize=True):
    """dim 2, 3 experts; token [1, 0] gets router probs [1/8, 2/8, 5/8], token [0, 1] gets [5/8, 2/8, 1/8]."""
    torch.manual_seed(0)
    moe = MixtureOfExperts(2, 4, 3, top_k, bias=True, renormalize=renormalize)
    with torch.no_grad():
        moe.router.weight.copy_(torch.tensor([[math.log(1), math.log(5)], [math.log(2), math.log(2)], [math.log(5), math.log(1)]]))
        moe.gate_up_bias.normal_()
        moe.down_bias.normal_()
    return moe


def test_top2_routing_with_renormalised_weights_on_a_hand_case():
    moe = hand_moe()
    x = torch.tensor([[[1.0, 0.0]]])
    out, _ = moe(x)
    # top-2 of [1/8, 2/8, 5/8] is experts 2 and 1, weights 5/8 and 2/8 renormalised to 5/7 and 2/7.
    expected = 5 / 7 * expert_by_hand(moe, 2, x[0]) + 2 / 7 * expert_by_hand(moe, 1, x[0])
    torch.testing.assert_close(out[0], expected, atol=1e-6, rtol=1e-5)


def test_top1_without_renormalisation_scales_by_the_router_probability():
    moe = hand_moe(top_k=1, renormalize=False)
    x = torch.tensor([[[0.0, 1.0]]])
    out, _ = moe(x)
    torch.testing.assert_close(out[0], 5 / 8 * expert_by_hand(moe, 0, x[0]), atol=1e-6, rtol=1e-5)


def test_balance_loss_on_a_hand_case():
    moe = hand_moe()
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    _, aux = moe(x)
    # Token-slots: token 1 -> {2, 1}, token 2 -> {0, 1}: f = [1/4, 2/4, 1/4].
    # Mean probabilities P = ([1, 2, 5] + [5, 2, 1]) / 16 = [6, 4, 6] / 16.
    expected = 3 * (1 / 4 * 6 / 16 + 2 / 4 * 4 / 16 + 1 / 4 * 6 / 16)
    assert aux.item() == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.9375)


def test_balance_loss_is_one_when_uniform_and_e_when_collapsed():
    moe = MixtureOfExperts(4, 8, 4, 1)
    with torch.no_grad():
        moe.router.weight.zero_()  # every probability 1/4; topk ties go to expert 0
    x = torch.randn(1, 8, 4)
    _, aux = moe(x)
    # All slots on expert 0 (f = [1, 0, 0, 0]) with P = 1/4 each: E * 1 * 1/4 = 1.
    assert aux.item() == pytest.approx(1.0)
    with torch.no_grad():
        moe.router.weight[2] = 100.0  # a positive input now sends every token to expert 2
    _, aux = moe(torch.ones(1, 8, 4))
    assert aux.item() == pytest.approx(4.0, rel=1e-4)  # collapsed onto expert 2: E * 1 * 1


def test_grouped_dispatch_equals_token_by_token():
    torch.manual_seed(1)
    moe = MixtureOfExperts(8, 16, 6, 3, shared_experts=1)
    x = torch.randn(3, 5, 8)
    together, _ = moe(x)
    one_by_one = torch.cat([moe(x[b : b + 1, t : t + 1])[0] for b in range(3) for t in range(5)]).view(3, 5, 8)
    torch.testing.assert_close(together, one_by_one, atol=1e-5, rtol=1e-5)


def test_shared_expert_is_added_to_every_token():
    torch.manual_seed(2)
    moe = MixtureOfExperts(8, 16, 4, 2, shared_experts=1)
    x = torch.randn(1, 4, 8)
    out, _ = moe(x)
    shared = moe.shared[0](x)
    moe.shared = torch.nn.ModuleList()
    routed, _ = moe(x)
    torch.testing.assert_close(out, routed + shared, atol=1e-6, rtol=1e-5)


def test_padding_tokens_are_not_routed_nor_counted():
    torch.manual_seed(3)
    moe = MixtureOfExperts(8, 16, 4, 2)
    x = torch.randn(2, 3, 8)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    out, aux = moe(x, mask)
    assert out[~mask].abs().max() == 0
    real = x[mask][None]  # [1, 3, 8]
    real_out, real_aux = moe(real)
    torch.testing.assert_close(out[mask], real_out[0], atol=1e-6, rtol=1e-5)
    assert aux.item() == pytest.approx(real_aux.item())


def test_router_learns_from_the_output_and_the_aux_loss():
    torch.manual_seed(4)
    moe = MixtureOfExperts(8, 16, 4, 2)
    out, aux = moe(torch.randn(2, 5, 8))
    (out.square().mean()).backward(retain_graph=True)
    assert moe.router.weight.grad.abs().sum() > 0
    moe.router.weight.grad = None
    aux.backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_expert_parameter_count():
    moe = MixtureOfExperts(128, 256, 20, 4, bias=True)
    per_expert = moe.expert_parameter_count()
    assert per_expert == 3 * 128 * 256 + 2 * 256 + 128
    assert sum(p.numel() for p in moe.parameters()) == 20 * per_expert + 128 * 20


def test_single_token_inference_path_equals_the_training_path():
    torch.manual_seed(5)
    moe = MixtureOfExperts(8, 16, 6, 3)
    x = torch.randn(1, 1, 8)
    with_grad, _ = moe(x)
    with torch.no_grad():
        without_grad, _ = moe(x)
    torch.testing.assert_close(with_grad.detach(), without_grad, atol=1e-6, rtol=1e-5)
