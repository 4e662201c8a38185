"""The stateless baseline's sizing, tokenizer wrapper, conversation rendering and folder."""

import pytest
import torch
import transformers

from rxmrl.baseline.model import (
    build_stateless_model,
    count_parameters,
    load_baseline,
    rxt_decoder_active_parameters,
    save_baseline,
    stateless_config,
)
from rxmrl.baseline.render import IGNORE_INDEX, sft_example, stateless_prompt
from rxmrl.baseline.tokenizer import to_hf_tokenizer
from rxmrl.cli import main
from rxmrl.data import Episode, Interaction, Tokenizer, synthesize_episodes, train_tokenizer
from rxmrl.errors import CheckpointError
from rxmrl.model import load_preset


@pytest.fixture(scope="module")
def tokenizer():
    episodes = synthesize_episodes(30, steps=4, strategy="cumulative")
    return train_tokenizer([t for e in episodes for i in e.interactions for t in (i.query, i.answer)], vocab_size=300)


def meta_parameters(config):
    with torch.device("meta"):
        return count_parameters(transformers.LlamaForCausalLM(config))


@pytest.mark.parametrize("preset", ["rxt-tiny", "rxt-cpu-small", "rxt-alpha-micro"])
def test_llama_has_at_least_the_rxt_decoder_active_parameters_and_no_more_width_than_needed(preset):
    rxt = load_preset(preset)
    llama = stateless_config(rxt)
    target = rxt_decoder_active_parameters(rxt)
    assert meta_parameters(llama) >= target
    narrower = stateless_config(rxt)
    narrower.intermediate_size = llama.intermediate_size - 1
    assert meta_parameters(narrower) < target
    assert (llama.hidden_size, llama.num_hidden_layers, llama.vocab_size) == (rxt.dim, rxt.decoder.layers,
                                                                              rxt.vocab_size)
    assert llama.num_attention_heads == rxt.decoder.self_attention.query_heads
    assert llama.num_key_value_heads == rxt.decoder.self_attention.kv_heads
    assert llama.head_dim == rxt.dim // rxt.decoder.heads
    assert llama.max_position_embeddings == 9 * rxt.max_seq_len
    assert not llama.tie_word_embeddings


def test_rxt_tiny_llama_count_by_hand():
    # rxt-tiny: dim 32, 2 layers, 4 query / 2 kv heads of 8, vocab 64 (untied head), so per layer
    # attention 32*32 (q) + 2 * 32*16 (k, v) + 32*32 (o) = 3072, two RMSNorms 64, MLP 3 * 32 * w.
    llama = stateless_config(load_preset("rxt-tiny"))
    w = llama.intermediate_size
    by_hand = 2 * 64 * 32 + 32 + 2 * (3072 + 64 + 3 * 32 * w)
    assert meta_parameters(llama) == by_hand


def test_the_wrapped_tokenizer_has_the_same_ids_and_special_tokens(tokenizer, tmp_path):
    hf = to_hf_tokenizer(tokenizer)
    text = "Lily found a red kite in the park, and it was 7 o'clock."
    assert hf(text, add_special_tokens=False)["input_ids"] == tokenizer.encode_text(text)
    assert [hf.pad_token_id, hf.unk_token_id, hf.bos_token_id, hf.eos_token_id, hf.mask_token_id] == [0, 1, 2, 3, 4]
    assert hf.convert_tokens_to_ids(["[Q]", "[A]"]) == [tokenizer.q_id, tokenizer.a_id]
    assert tokenizer.backend.encode_special_tokens  # wrapping left the original untouched
    hf.save_pretrained(str(tmp_path))
    again = Tokenizer.from_file(tmp_path / "tokenizer.json")
    ids = tokenizer.encode_interaction("Where is [Q] the kite?", "In the park.")
    assert again.encode_interaction("Where is [Q] the kite?", "In the park.") == ids
    assert transformers.AutoTokenizer.from_pretrained(str(tmp_path)).decode(ids, skip_special_tokens=True).strip() \
        == tokenizer.decode(ids)


EPISODE = Episode(Interaction("Tell me a story.", "Tom had a red ball."),
                  (Interaction("What colour was the ball?", "It was red."),
                   Interaction("Who had it?", "Tom had it.")), strategy="cumulative")


def test_sft_rows_train_on_the_chosen_answers_and_their_eos(tokenizer):
    parts = [tokenizer.encode_interaction(i.query, i.answer, 64) for i in EPISODE.interactions]

    def answer_positions(ids, offset):
        start = ids.index(tokenizer.a_id) + 1
        return set(range(offset + start, offset + len(ids)))

    offsets = [0, len(parts[0]), len(parts[0]) + len(parts[1])]
    for loss_on, trained in (("follow_ups", [1, 2]), ("last", [2]), ("all", [0, 1, 2])):
        row = sft_example(tokenizer, EPISODE, loss_on=loss_on, max_message_len=64, context_len=500)
        assert row["input_ids"] == parts[0] + parts[1] + parts[2]
        expected = set().union(*(answer_positions(parts[i], offsets[i]) for i in trained))
        assert {i for i, label in enumerate(row["labels"]) if label != IGNORE_INDEX} == expected
        assert all(row["labels"][i] == row["input_ids"][i] for i in expected)
    last = sft_example(tokenizer, EPISODE, loss_on="last", max_message_len=64, context_len=500)
    assert last["labels"][-1] == tokenizer.eos_id  # the model learns to stop


def test_sft_rows_keep_whole_interactions_within_the_context(tokenizer):
    parts = [tokenizer.encode_interaction(i.query, i.answer, 64) for i in EPISODE.interactions]
    fits_two = len(parts[0]) + len(parts[1])
    row = sft_example(tokenizer, EPISODE, loss_on="follow_ups", max_message_len=64, context_len=fits_two)
    assert row["input_ids"] == parts[0] + parts[1]
    assert sft_example(tokenizer, EPISODE, loss_on="last", max_message_len=64, context_len=fits_two) is None


def test_stateless_prompt_slides_over_whole_interactions():
    history = [[1] * 5, [2] * 4, [3] * 3]
    assert stateless_prompt(history, [9, 9], 20) == ([1] * 5 + [2] * 4 + [3] * 3 + [9, 9], 0)
    assert stateless_prompt(history, [9, 9], 13) == ([2] * 4 + [3] * 3 + [9, 9], 1)
    assert stateless_prompt(history, [9, 9], 8) == ([3] * 3 + [9, 9], 2)
    assert stateless_prompt(history, [9, 9], 4) == ([9, 9], 3)
    with pytest.raises(ValueError):
        stateless_prompt(history, [9, 9, 9], 2)


def test_baseline_folder_round_trip(tokenizer, tmp_path):
    config = stateless_config(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size))
    model = build_stateless_model(config, seed=3)
    assert torch.equal(model.lm_head.weight, build_stateless_model(config, seed=3).lm_head.weight)
    save_baseline(model, to_hf_tokenizer(tokenizer), tmp_path / "baseline", {"note": "test"})
    loaded, loaded_tokenizer, info = load_baseline(tmp_path / "baseline")
    assert info["note"] == "test" and info["parameters"] == count_parameters(model)
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    assert loaded_tokenizer.encode_text("a red kite") == tokenizer.encode_text("a red kite")
    with pytest.raises(CheckpointError, match="rxmrl baseline train"):
        load_baseline(tmp_path / "missing")


def test_info_command_prints_both_sizes(capsys):
    assert main(["baseline", "info", "--match-preset", "rxt-tiny"]) == 0
    out = capsys.readouterr().out
    assert "RxT decoder 44,448 active" in out and "context 576" in out
