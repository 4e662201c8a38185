"""Presets: parameter counts against the model cards, strict config errors, overrides, `rxmrl model` CLI."""

import json
from pathlib import Path

import pytest
import torch

from rxmrl.catalog import find_preset
from rxmrl.cli import main
from rxmrl.errors import ConfigError
from rxmrl.model import RxT, load_preset


def counts(name):
    with torch.device("meta"):  # shapes only: the 160M preset costs no memory
        return RxT(load_preset(name)).parameter_counts()


def within(value, card, tolerance):
    return abs(value - card) / card <= tolerance


def test_rxt_alpha_micro_matches_its_cards():
    c = counts("rxt-alpha-micro")
    assert within(c["decoder"]["total"], 5.3e6, 0.03), c
    assert within(c["encoder"]["total"], 1.88e6, 0.03), c


def test_rxt_alpha_micro_plus_matches_its_card():
    c = counts("rxt-alpha-micro-plus")
    assert within(c["decoder"]["total"], 22.4e6, 0.03), c
    assert within(c["decoder"]["active"], 6.5e6, 0.08), c


def test_rxt_alpha_supervised_matches_its_card():
    c = counts("rxt-alpha-supervised")
    assert within(c["decoder"]["total"], 141e6, 0.03), c
    assert within(c["decoder"]["active"], 34.8e6, 0.08), c
    assert within(c["encoder"]["total"], 13.8e6, 0.03), c
    assert within(c["memory_attention"]["total"], 5.53e6, 0.03), c
    assert within(c["total"], 160e6, 0.03), c


def test_counts_add_up():
    c = counts("rxt-tiny")
    config = load_preset("rxt-tiny")
    embedding = config.vocab_size * config.dim
    # The embedding is shared: counted in both stacks, once in the total (rxt-tiny has no learned STM).
    assert c["total"] == c["decoder"]["total"] + c["encoder"]["total"] + c["memory_attention"]["total"] - embedding
    # Active = total minus the (experts - top_k) unused experts of each MoE layer.
    ffn = config.decoder.ffn
    per_expert = 3 * config.dim * ffn.hidden + 2 * ffn.hidden + config.dim
    inactive = config.decoder.layers * (ffn.experts - ffn.top_k) * per_expert
    assert c["decoder"]["active"] == c["decoder"]["total"] - inactive


@pytest.mark.parametrize("name", ["rxt-tiny", "rxt-cpu-small"])
def test_small_presets_build_and_run(name):
    model = RxT(load_preset(name)).eval()
    stm = model.initial_stm(1, torch.Generator().manual_seed(0))
    query = torch.tensor([[2, 5, 10, 11, 6]])
    out = model.generate(query, torch.ones_like(query, dtype=torch.bool), stm, max_new_tokens=4, eos_id=None)
    assert out.tokens.shape == (1, 4)


def write_variant(tmp_path, text_from, text_to):
    source = find_preset("policies", "rxt-tiny").read_text()
    assert text_from in source
    path = tmp_path / "broken.toml"
    path.write_text(source.replace(text_from, text_to, 1))
    return path


def test_query_heads_not_dividing_names_field_and_file(tmp_path):
    path = write_variant(tmp_path, "self_attention = { query_heads = 4, kv_heads = 2 }",
                         "self_attention = { query_heads = 3, kv_heads = 2 }")
    with pytest.raises(ConfigError, match=r"broken\.toml: decoder\.self_attention\.query_heads"):
        load_preset(path)


def test_unknown_key_names_key_and_file(tmp_path):
    path = write_variant(tmp_path, "max_seq_len = 64", "max_seq_len = 64\nmax_sequence = 3")
    with pytest.raises(ConfigError, match=r"broken\.toml: unknown key 'max_sequence'"):
        load_preset(path)
    path = write_variant(tmp_path, "variant = ", "kind = 1\nvariant = ")
    with pytest.raises(ConfigError, match=r"broken\.toml: unknown key 'memory_attention\.kind'"):
        load_preset(path)


@pytest.mark.parametrize(
    "override, field",
    [
        ({"decoder": {"heads": 5}}, "decoder.heads"),
        ({"encoder": {"layers": 3}}, "encoder.layers"),
        ({"memory_attention": {"gate": "bogus"}}, "memory_attention.gate"),
        ({"decoder": {"ffn": {"top_k": 9}}}, "decoder.ffn.top_k"),
        ({"decoder": {"self_attention": {"kv_heads": 0}}}, "decoder.self_attention.kv_heads"),
        ({"stm": {"layers": 5}}, "stm.layers"),
    ],
)
def test_bad_values_are_config_errors_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=rf"rxt-tiny\.toml: .*{field.replace('.', r'[.]')}"):
        load_preset("rxt-tiny", **override)


def test_overrides_nested_dotted_and_set_items():
    assert load_preset("rxt-tiny", decoder={"layers": 3}, encoder={"layers": 3}).decoder.layers == 3
    assert load_preset("rxt-tiny", **{"stm.slots": 4}).stm.slots == 4
    config = load_preset("rxt-tiny", set_items=["vocab_size=100", "stm.init=\"zeros\""])
    assert config.vocab_size == 100 and config.stm.init == "zeros"
    assert config.stm.layers == config.decoder.layers and config.stm.dim == config.dim  # filled in


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ConfigError, match="rxt-alpha-micro"):
        load_preset("rxt-nonexistent")


def test_cli_model_info_json(capsys):
    assert main(["model", "info", "rxt-alpha-micro", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"decoder", "encoder", "memory_attention", "total"}
    assert set(out["decoder"]) == {"total", "active"}
    assert out == counts("rxt-alpha-micro")


def test_cli_model_info_text_and_errors(capsys):
    assert main(["model", "info", "rxt-tiny"]) == 0
    assert "decoder" in capsys.readouterr().out
    assert main(["model", "info", "rxt-missing"]) == 2
    assert "no policies preset" in capsys.readouterr().err


def test_cli_generate_random_weights_and_checkpoint(tmp_path, capsys):
    assert main(["model", "generate", "rxt-tiny", "--new-tokens", "5", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ids:") and len(first.splitlines()[0].split()) == 6 and "tokens/s" in first
    assert main(["model", "init", "rxt-tiny", "--out", str(tmp_path / "m"), "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["model", "generate", str(tmp_path / "m"), "--new-tokens", "5", "--seed", "1"]) == 0
    # Same seed, same weights, same sampling: the folder reproduces the preset's random model.
    assert capsys.readouterr().out.splitlines()[0] == first.splitlines()[0]
    assert main(["model", "generate", "rxt-tiny", "--prompt", "hello"]) == 2
    assert "--prompt" in capsys.readouterr().err


def test_bench_generate_writes_the_expected_json(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "generate", "--preset", "rxt-tiny", "--new-tokens", "6", "--prompt-len", "4",
            "--repeats", "1", "--uncached-repeats", "1", "--turns", "3", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(Path(out).read_text())
    assert set(result["tokens_per_s"]) == {"cached", "uncached"}
    assert set(result["per_token_ms"]) == {"turn_1", "turn_3"}
    assert result["tokens_per_s"]["cached"] > 0 and result["machine"]["torch"] == torch.__version__
