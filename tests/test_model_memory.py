"""Residual gates (hand-computed), memory attention variants, STM initialisation and per-sample reset."""

import math

import pytest
import torch

from rxmrl.model import RxT, load_preset
from rxmrl.model.gates import ResidualGate

S = torch.tensor([[[1.0, 2.0], [0.0, -1.0]]])  # previous memory [B=1, slots=2, D=2]
U = torch.tensor([[[3.0, 0.0], [1.0, 1.0]]])  # update


def sigmoid(v):
    return 1 / (1 + math.exp(-v))


def test_linear_gate_by_hand():
    gate = ResidualGate("linear", dim=2, slots=2)
    with torch.no_grad():
        gate.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        gate.linear.bias.copy_(torch.tensor([0.0, -1.0]))
    # S + U = [[4, 2], [1, 0]]; W (S + U) + b = [[4, 3], [1, -1]]
    g = [[sigmoid(4), sigmoid(3)], [sigmoid(1), sigmoid(-1)]]
    expected = [
        [(1 - g[0][0]) * 1 + g[0][0] * 3, (1 - g[0][1]) * 2 + g[0][1] * 0],
        [(1 - g[1][0]) * 0 + g[1][0] * 1, (1 - g[1][1]) * -1 + g[1][1] * 1],
    ]
    torch.testing.assert_close(gate(S, U)[0], torch.tensor(expected))


def test_elementwise_gate_by_hand():
    gate = ResidualGate("elementwise", dim=2, slots=2)
    with torch.no_grad():
        gate.weight.copy_(torch.tensor([1.0, -1.0]))
        gate.bias.copy_(torch.tensor([0.0, 0.5]))
    # w * (S + U) + b = [[4, -1.5], [1, 0.5]]
    g = [[sigmoid(4), sigmoid(-1.5)], [sigmoid(1), sigmoid(0.5)]]
    expected = [[(1 - g[0][0]) * 1 + g[0][0] * 3, (1 - g[0][1]) * 2], [g[1][0] * 1, (1 - g[1][1]) * -1 + g[1][1]]]
    torch.testing.assert_close(gate(S, U)[0], torch.tensor(expected))


def test_static_gate_by_hand():
    gate = ResidualGate("static", dim=2, slots=2)
    with torch.no_grad():
        gate.theta.copy_(torch.tensor([[0.0, math.log(3)], [math.log(1 / 3), 0.0]]))
    # sigmoid: [[1/2, 3/4], [1/4, 1/2]], whatever S and U hold
    expected = [[0.5 * 1 + 0.5 * 3, 0.25 * 2 + 0.75 * 0], [0.75 * 0 + 0.25 * 1, 0.5 * -1 + 0.5 * 1]]
    torch.testing.assert_close(gate(S, U)[0], torch.tensor(expected))
    torch.testing.assert_close(gate(S * 7, U)[0, 0, 1], torch.tensor(0.25 * 14))


def test_tanh_gate_by_hand():
    gate = ResidualGate("tanh", dim=2, slots=2)
    with torch.no_grad():
        gate.linear.weight.copy_(torch.eye(2) * 0.5)
        gate.linear.bias.zero_()
    # G = tanh(0.5 (S + U)) = tanh([[2, 1], [0.5, 0]]); S' = (1 - G) S + (1 + G) U
    g = [[math.tanh(2), math.tanh(1)], [math.tanh(0.5), 0.0]]
    expected = [
        [(1 - g[0][0]) * 1 + (1 + g[0][0]) * 3, (1 - g[0][1]) * 2],
        [(1 + g[1][0]) * 1, -1 + 1],
    ]
    torch.testing.assert_close(gate(S, U)[0], torch.tensor(expected))


def test_no_gate_is_the_plain_residual():
    gate = ResidualGate("none", dim=2, slots=2)
    assert list(gate.parameters()) == []
    torch.testing.assert_close(gate(S, U), S + U)


def test_gates_start_at_the_configured_bias():
    for kind in ("linear", "elementwise", "static"):
        gate = ResidualGate(kind, dim=4, slots=3, bias_init=-2.0, init_std=0.0)
        assert gate.gate(torch.randn(1, 3, 4), torch.randn(1, 3, 4)).allclose(torch.full((1, 3, 4), sigmoid(-2.0)))


def tiny(**overrides):
    return RxT(load_preset("rxt-tiny", **overrides)).eval()


@pytest.mark.parametrize("variant", ["simple", "self", "interlayer", "self-interlayer"])
def test_closed_gate_keeps_the_memory_and_open_gate_writes(variant):
    torch.manual_seed(0)
    model = tiny(memory_attention={"variant": variant})
    stm = model.initial_stm(2, torch.Generator().manual_seed(1))
    tokens = torch.randint(7, 64, (2, 9))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    new = model.update_memory(stm, tokens, mask)
    assert new.shape == stm.shape
    assert not torch.allclose(new, stm)
    with torch.no_grad():
        for layer in model.memory_attention.layers:
            layer.gate.linear.weight.zero_()
            layer.gate.linear.bias.fill_(-1e4)  # sigmoid = 0 exactly in float32
    torch.testing.assert_close(model.update_memory(stm, tokens, mask), stm, atol=0, rtol=0)


def test_variants_add_their_attentions():
    sizes = {v: sum(p.numel() for p in tiny(memory_attention={"variant": v}).memory_attention.parameters())
             for v in ("simple", "self", "interlayer", "self-interlayer")}
    assert sizes["simple"] < sizes["self"] < sizes["interlayer"] < sizes["self-interlayer"]


def test_memory_write_reads_real_tokens_only():
    torch.manual_seed(0)
    model = tiny()
    stm = model.initial_stm(1, torch.Generator().manual_seed(1))
    tokens = torch.randint(7, 64, (1, 8))
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    base = model.update_memory(stm, tokens, mask)
    other_padding = tokens.clone()
    other_padding[0, 6] = (tokens[0, 6] + 1) % 64
    torch.testing.assert_close(model.update_memory(stm, other_padding, mask), base)
    other_real = tokens.clone()
    other_real[0, 2] = (tokens[0, 2] + 1) % 64
    assert not torch.allclose(model.update_memory(stm, other_real, mask), base)


def test_encoded_interaction_adds_the_token_embedding_by_hand():
    torch.manual_seed(0)
    model = tiny()
    tokens = torch.randint(7, 64, (2, 6))
    mask = torch.ones_like(tokens, dtype=torch.bool)
    stm = model.initial_stm(2, torch.Generator().manual_seed(1))  # rxt-tiny's encoder reads the STM
    layers = model.encode(tokens, mask, stm)  # [B, L, T, D]
    embedded = model.embedding(tokens)  # [B, T, D]

    def unit(x):
        return x / x.pow(2).mean(dim=-1, keepdim=True).sqrt()

    expected = unit(layers) + unit(embedded)[:, None]
    torch.testing.assert_close(model.encode_interaction(tokens, mask, stm), expected, atol=2e-4, rtol=1e-4)
    plain = tiny(memory_attention={"token_skip": False})
    plain.load_state_dict(model.state_dict())  # the skip has no parameters
    torch.testing.assert_close(plain.encode_interaction(tokens, mask, stm), layers)


def test_token_skip_keeps_token_identity_whatever_the_encoder_does():
    """An encoder whose layers overwrite their input (here: a huge constant added to every position) leaves
    no trace of the token in its outputs; the skip still tells two tokens apart in every layer."""
    torch.manual_seed(0)
    model = tiny()
    with torch.no_grad():
        for layer in model.encoder.layers:
            for name, parameter in layer.named_parameters():
                if name.endswith("bias"):
                    parameter.fill_(1e4)
    tokens = torch.tensor([[7, 8]])
    stm = model.initial_stm(1, torch.Generator().manual_seed(1))
    layers = model.encode(tokens, None, stm)
    skip = model.encode_interaction(tokens, None, stm)
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(layers[0, -1, 0], layers[0, -1, 1], dim=0) > 0.999  # the encoder alone: identical outputs
    assert (cosine(skip[0, :, 0], skip[0, :, 1], dim=-1) < 0.9).all()


def test_reset_touches_only_its_rows():
    model = tiny()
    stm = torch.full((4, 2, 8, 32), 5.0)
    reset = torch.tensor([False, True, False, True])
    out = model.reset_stm(stm, reset, torch.Generator().manual_seed(0))
    assert torch.equal(out[~reset], stm[~reset])
    assert (out[reset] - 5.0).abs().min() > 1.0  # fresh N(0, 0.02^2) memories


def test_initial_distributions():
    gen = torch.Generator().manual_seed(0)
    zeros = tiny(stm={"init": "zeros"}).initial_stm(3)
    assert zeros.shape == (3, 2, 8, 32) and zeros.abs().max() == 0
    normal = tiny(stm={"init": "normal", "init_std": 0.5}).initial_stm(64, gen)
    assert normal.std().item() == pytest.approx(0.5, rel=0.05)
    assert not torch.equal(normal[0], normal[1])  # drawn per sample
    uniform = tiny(stm={"init": "uniform", "init_range": 0.3}).initial_stm(64, gen)
    assert uniform.abs().max() <= 0.3 and uniform.abs().max() > 0.29
    learned_model = tiny(stm={"init": "learned"})
    learned = learned_model.initial_stm(2)
    assert torch.equal(learned[0], learned[1])
    assert learned_model.stm_init.learned.requires_grad
    # Same generator seed, same memory.
    model = tiny()
    a = model.initial_stm(2, torch.Generator().manual_seed(7))
    b = model.initial_stm(2, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_the_model_holds_no_memory_state():
    model = tiny()
    names = set(model.state_dict())
    assert names == {name for name, _ in model.named_parameters()}  # no buffers are saved: no hidden STM
    stm = model.initial_stm(1, torch.Generator().manual_seed(0))
    tokens = torch.randint(7, 64, (1, 6))
    first = model.update_memory(stm, tokens, None)
    second = model.update_memory(stm, tokens, None)
    torch.testing.assert_close(first, second)  # the same input memory gives the same output: no carry-over


def test_a_decoder_loss_trains_the_memory_write():
    """Gradients reach memory attention and the encoder through STM_t, as memory RL needs."""
    torch.manual_seed(0)
    model = tiny()
    stm = model.initial_stm(2, torch.Generator().manual_seed(1))
    interaction = torch.randint(7, 64, (2, 9))
    new_stm = model.update_memory(stm, interaction, None)
    query = torch.randint(7, 64, (2, 4))
    answer = torch.randint(7, 64, (2, 3))
    ones = torch.ones(2, 4, dtype=torch.bool)
    scores = model.answer_logprobs(query, ones, answer, ones[:, :3], new_stm)
    (-scores.logprobs.sum() + scores.aux_loss).backward()
    for name, module in (("memory_attention", model.memory_attention), ("encoder", model.encoder)):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
