"""Config switches for checkpoints trained elsewhere (docs/IMPORT.md): each is off in rxmrl's presets, each
does what its doc line says, and RxNN's slot gates follow their formulas."""

import pytest
import torch

from rxmrl.model import RxT, available_presets, load_preset
from rxmrl.model.config import RxTConfig
from rxmrl.model.slot_gates import SlotGate

SWITCHES_OFF = {"final_norm": True, "final_norm_kind": "rms", "lm_head_bias": False, "memory_read_norm": True,
                "causal_memory_cross_attention": False, "norm_eps_from_dtype": False}


def tiny(*overrides: str) -> RxT:
    torch.manual_seed(0)
    return RxT(load_preset("rxt-tiny", set_items=list(overrides))).eval()


@pytest.mark.parametrize("preset", available_presets())
def test_presets_keep_every_switch_off(preset):
    config = load_preset(preset)
    assert {key: getattr(config, key) for key in SWITCHES_OFF} == SWITCHES_OFF
    assert config.memory_attention.inter_attention is None
    assert config.memory_attention.consult_gate
    assert not config.memory_attention.variant.startswith("rxnn-")
    assert not config.memory_attention.gate.startswith("slot-")


def test_defaults_are_the_switches_off():
    fields = RxTConfig.__dataclass_fields__
    assert {key: fields[key].default for key in SWITCHES_OFF} == SWITCHES_OFF


def test_final_norm_and_lm_head_bias_change_the_weights():
    names = set(tiny("final_norm=false", "lm_head_bias=true").state_dict())
    assert "decoder.norm.weight" not in names and "decoder.lm_head.bias" in names
    names = set(tiny().state_dict())
    assert "decoder.norm.weight" in names and "decoder.lm_head.bias" not in names


def test_a_layer_final_norm_has_a_bias_and_steps_like_the_full_forward():
    model = tiny('final_norm_kind="layer"')
    assert "decoder.norm.bias" in model.state_dict()
    stm = model.initial_stm(1)
    tokens = torch.randint(7, 64, (1, 4))
    mkv = model.memory_kv(stm)
    with torch.no_grad():
        full = model.decode(tokens, mkv).logits
        cache = model.new_cache(1, 4)
        steps = [model.decode(tokens[:, :1], mkv, cache=cache).logits]
        steps += [model.decode(tokens[:, t : t + 1], mkv, cache=cache).logits for t in range(1, 4)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_without_final_norm_the_head_reads_the_raw_stream():
    model = tiny("final_norm=false")
    stm = model.initial_stm(1)
    tokens = torch.randint(7, 64, (1, 5))
    with torch.no_grad():
        out = model.decode(tokens, model.memory_kv(stm))
    assert out.hidden.pow(2).mean(-1).sqrt().std() > 0  # not RMS-normalised to one value per token
    torch.testing.assert_close(out.logits, model.decoder.lm_head(out.hidden))


def test_memory_read_norm_off_drops_the_memory_norms():
    names = set(tiny("memory_read_norm=false").state_dict())
    assert not any("memory_norm" in name for name in names)
    model = tiny("memory_read_norm=false")
    stm = model.initial_stm(1)
    layer = model.decoder.layers[0].cross_attention
    keys, values = layer.project_memory(stm[:, 0])
    torch.testing.assert_close(keys, layer.project_kv(stm[:, 0])[0])


def test_causal_memory_cross_attention_reads_slots_up_to_the_position():
    model = tiny("causal_memory_cross_attention=true")
    stm = model.initial_stm(1)
    changed = stm.clone()
    changed[:, :, 3:] += 1.0  # slots 3.. differ
    tokens = torch.randint(7, 64, (1, 6))
    with torch.no_grad():
        before = model.decode(tokens, model.memory_kv(stm)).logits
        after = model.decode(tokens, model.memory_kv(changed)).logits
    torch.testing.assert_close(before[:, :3], after[:, :3])  # positions 0..2 never see slot 3
    assert (before[:, 3:] - after[:, 3:]).abs().max() > 1e-3


def test_causal_memory_cross_attention_steps_equal_the_full_forward():
    model = tiny("causal_memory_cross_attention=true", "final_norm=false", "lm_head_bias=true")
    stm = model.initial_stm(2)
    tokens = torch.randint(7, 64, (2, 5))
    mkv = model.memory_kv(stm)
    with torch.no_grad():
        full = model.decode(tokens, mkv).logits
        cache = model.new_cache(2, 8)
        steps = [model.decode(tokens[:, :2], mkv, cache=cache).logits]
        steps += [model.decode(tokens[:, t : t + 1], mkv, cache=cache).logits for t in range(2, 5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_norm_eps_from_dtype_uses_machine_epsilon():
    model = tiny("norm_eps_from_dtype=true")
    norms = [m for m in model.modules() if type(m).__name__ == "RMSNorm"]
    assert norms and all(m.eps is None for m in norms)
    assert all(float(m.eps_tensor) == torch.finfo(torch.float32).eps for m in norms)
    assert all(m.eps == 1e-6 for m in tiny().modules() if type(m).__name__ == "RMSNorm")


def test_inter_attention_sets_the_interlayer_heads():
    model = tiny('memory_attention.inter_attention={query_heads = 4, kv_heads = 1}')
    layer = model.memory_attention.layers[0]
    assert layer.inter_attention.query_heads == 4 and layer.inter_attention.kv_heads == 1
    assert layer.attention.query_heads == 2


@pytest.mark.parametrize("variant", ["rxnn-self", "rxnn-interlayer", "rxnn-self-interlayer"])
def test_rxnn_variants_keep_the_contract(variant):
    model = tiny(f'memory_attention.variant="{variant}"', 'memory_attention.gate="slot-static"')
    stm = model.initial_stm(2)
    tokens = torch.randint(7, 64, (2, 6))
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    new = model.update_memory(stm, tokens, mask)
    assert new.shape == stm.shape
    trimmed = model.update_memory(stm[1:], tokens[1:, :4], mask[1:, :4])
    torch.testing.assert_close(new[1:], trimmed, atol=1e-5, rtol=1e-5)  # padding changes nothing


def test_consult_gate_off_makes_the_first_write_plain():
    model = tiny('memory_attention.variant="rxnn-self"', 'memory_attention.gate="slot-linear"',
                 "memory_attention.consult_gate=false")
    layer = model.memory_attention.layers[0]
    assert layer.inter_gate.kind == "none" and layer.gate.kind == "slot-linear"


def test_slot_gates_follow_their_formulas():
    torch.manual_seed(0)
    previous, update = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    static = SlotGate("slot-static", 6, 4, bias_init=0.5)
    g = torch.sigmoid(torch.tensor(0.5))
    torch.testing.assert_close(static(previous, update), g * update + (1 - g) * previous)
    tanh = SlotGate("slot-static", 6, 4, activation="tanh", per_slot=False, bias_init=0.5)
    assert tanh.weight.shape == (1,)
    t = torch.tanh(torch.tensor(0.5))
    torch.testing.assert_close(tanh(previous, update), (1 + t) * update + (1 - t) * previous)
    elementwise = SlotGate("slot-elementwise", 6, 4, bias_init=2.0)
    mean = (previous + update).mean(-1, keepdim=True)
    g = torch.sigmoid(2.0 * mean)
    torch.testing.assert_close(elementwise(previous, update), g * update + (1 - g) * previous)
    linear = SlotGate("slot-linear", 6, 4)
    g = torch.sigmoid(linear.linear((previous + update).mean(-1))).unsqueeze(-1)  # mixes the 4 slots
    torch.testing.assert_close(linear(previous, update), g * update + (1 - g) * previous)
    one_per_layer = SlotGate("slot-linear", 6, 4, per_slot=False, slot_status="linear")
    assert one_per_layer.gate(previous, update).shape == (2, 1, 1)


def test_slot_gate_refuses_a_learned_status_without_slots():
    with pytest.raises(ValueError, match="per-slot"):
        SlotGate("slot-elementwise", 6, 4, per_slot=False, slot_status="linear")


def test_config_refuses_a_learned_status_without_slots():
    from rxmrl.errors import ConfigError

    with pytest.raises(ConfigError, match="gate_slot_status"):
        load_preset("rxt-tiny", set_items=['memory_attention.gate="slot-static"', "memory_attention.gate_per_slot=false",
                                           'memory_attention.gate_slot_status="linear"'])
