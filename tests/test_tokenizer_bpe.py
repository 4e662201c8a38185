"""The BPE tokenizer: special tokens, round trip, interaction format, truncation, batches, files and the Hub."""

import json

import pytest
import torch

from rxmrl.cli import main
from rxmrl.data import (
    SPECIAL_TOKENS, Tokenizer, synthesize_episodes, synthesize_pairs, synthesize_stories, train_tokenizer,
)
from rxmrl.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def tok():
    episodes = synthesize_episodes(200, steps=4, strategy="cumulative") + synthesize_episodes(200, steps=4,
                                                                                            strategy="long_range")
    texts = synthesize_stories(300, seed=0) + [t for p in synthesize_pairs(300, seed=0) for t in (p.query, p.answer)]
    texts += [t for e in episodes for i in e.interactions for t in (i.query, i.answer)]
    return train_tokenizer(texts, vocab_size=1000)


def test_special_tokens_have_fixed_ids(tok):
    ids = (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id, tok.mask_id, tok.q_id, tok.a_id)
    assert ids == tuple(range(7))
    assert [tok.backend.id_to_token(i) for i in ids] == list(SPECIAL_TOKENS)
    assert tok.vocab_size == 1000


@pytest.mark.parametrize("text", ["Lily found a red kite in the park.", "Zoë's café — “quoted” ✓ 12345",
                                  "two  spaces\tand a tab", "[Q] is only text here [EOS]"])
def test_round_trip_is_exact_for_stripped_text(tok, text):
    ids = tok.encode_text(text)
    assert not set(ids) & tok.special_ids  # byte-level: nothing unknown, and "[Q]" typed in text is not [Q]
    assert tok.decode(ids) == text
    assert tok.decode(tok.encode_text(f"  {text}\n")) == text  # surrounding whitespace is not part of a text


def test_a_1000_token_vocabulary_covers_the_synthetic_words(tok):
    tokens = [tok.backend.id_to_token(i) for i in tok.encode_text("Lily found a red kite in the park.")]
    assert tokens == ["ĠLily", "Ġfound", "Ġa", "Ġred", "Ġkite", "Ġin", "Ġthe", "Ġpark", "."]


def test_interaction_format(tok):
    q, a = tok.encode_text("What did the child find?"), tok.encode_text("Lily found a red kite.")
    assert tok.encode_query("What did the child find?") == [tok.bos_id, tok.q_id, *q, tok.a_id]
    assert tok.encode_answer("Lily found a red kite.") == [*a, tok.eos_id]
    ids = tok.encode_interaction("What did the child find?", "Lily found a red kite.")
    assert ids == [tok.bos_id, tok.q_id, *q, tok.a_id, *a, tok.eos_id]
    assert tok.decode(ids) == "What did the child find? Lily found a red kite."
    assert tok.decode(ids, skip_special=False) == "[BOS][Q] What did the child find?[A] Lily found a red kite.[EOS]"


def test_truncation_keeps_special_tokens_and_cuts_text(tok):
    q = tok.encode_text("What did the child find, and where?")
    a = tok.encode_text("Lily found a red kite in the park.")
    assert tok.encode_query("What did the child find, and where?", max_len=5) == [tok.bos_id, tok.q_id, *q[:2],
                                                                                    tok.a_id]
    assert tok.encode_answer("Lily found a red kite in the park.", max_len=4) == [*a[:3], tok.eos_id]
    assert tok.encode_answer("Lily", max_len=1) == [tok.eos_id]
    # both long: each keeps half of the 10 text places
    ids = tok.encode_interaction("What did the child find, and where?", "Lily found a red kite in the park.",
                                 max_len=14)
    assert ids == [tok.bos_id, tok.q_id, *q[:5], tok.a_id, *a[:5], tok.eos_id]
    # a short query keeps all of itself, the answer gets the rest
    short = tok.encode_text("Why?")
    assert len(short) < 5
    ids = tok.encode_interaction("Why?", "Lily found a red kite in the park.", max_len=14)
    assert ids == [tok.bos_id, tok.q_id, *short, tok.a_id, *a[: 10 - len(short)], tok.eos_id]
    with pytest.raises(ValueError):
        tok.encode_query("Why?", max_len=2)


def test_batch_encode_pads_right_with_a_mask(tok):
    ids, mask = tok.batch_encode_answers(["Lily found a red kite in the park.", "Yes."], max_len=8)
    yes = tok.encode_answer("Yes.")
    assert ids.dtype == torch.long and mask.dtype == torch.bool and ids.shape == (2, 8)
    assert ids[0].tolist() == tok.encode_answer("Lily found a red kite in the park.", max_len=8)
    assert ids[1].tolist() == yes + [tok.pad_id] * (8 - len(yes))
    assert mask.sum(1).tolist() == [8, len(yes)]
    ids, mask = tok.batch_encode_queries(["Why?"], max_len=16, pad_to_max_len=True)
    assert ids.shape == (1, 16) and ids[0, : mask[0].sum()].tolist() == tok.encode_query("Why?")
    ids, mask = tok.batch_encode_interactions(["Why?", "Who?"], ["Yes.", "Lily."], max_len=32)
    assert ids[0, : mask[0].sum()].tolist() == tok.encode_interaction("Why?", "Yes.")
    assert tok.decode_batch(ids) == ["Why? Yes.", "Who? Lily."]


def test_save_and_load_from_file_folder_and_hub(tok, tmp_path, monkeypatch):
    path = tok.save(tmp_path / "model" / "tokenizer.json")
    for loaded in (Tokenizer.from_file(path), Tokenizer.from_pretrained(path), Tokenizer.from_pretrained(path.parent)):
        assert loaded.encode_interaction("Why?", "Yes.") == tok.encode_interaction("Why?", "Yes.")
    import huggingface_hub

    requests = []

    def fake_download(repo_id, filename, **kwargs):
        requests.append((repo_id, filename))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    hub = Tokenizer.from_pretrained("SomeOrg/rxt-tokenizer")
    assert requests == [("SomeOrg/rxt-tokenizer", "tokenizer.json")]
    assert hub.encode_text("red kite") == tok.encode_text("red kite")


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such tokenizer file"):
        Tokenizer.from_file(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{}")
    with pytest.raises(DataError, match="not a tokenizers JSON file"):
        Tokenizer.from_file(tmp_path / "broken.json")
    from tokenizers import Tokenizer as Backend, models

    Backend(models.WordLevel({"a": 0, "[PAD]": 1}, unk_token="a")).save(str(tmp_path / "plain.json"))
    with pytest.raises(DataError, match=r"lacks the special tokens \[UNK\] \[BOS\]"):
        Tokenizer.from_file(tmp_path / "plain.json")


def test_training_refuses_a_vocab_without_room_for_bytes_or_no_text():
    with pytest.raises(ConfigError, match="at least 263"):
        train_tokenizer(["a b c"], vocab_size=100)
    with pytest.raises(DataError, match="no text"):
        train_tokenizer(["  ", ""], vocab_size=300)


def test_cli_trains_on_a_data_file(tmp_path, capsys):
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"query": p.query, "answer": p.answer}) + "\n"
                            for p in synthesize_pairs(200, seed=1)))
    out = tmp_path / "tok.json"
    assert main(["tokenizer", "train", "--data", str(data), "--vocab", "400", "--out", str(out)]) == 0
    assert "400 tokens" in capsys.readouterr().out
    trained = Tokenizer.from_file(out)
    assert trained.vocab_size == 400 and trained.decode(trained.encode_text("a red kite")) == "a red kite"
