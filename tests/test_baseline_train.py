"""Training the stateless baseline with TRL's SFTTrainer (a couple of steps), then benchmarking it end to end."""

import json

import pytest
import torch
import torch.nn.functional as F

from rxmrl.baseline.model import build_stateless_model, load_baseline, stateless_config
from rxmrl.baseline.render import IGNORE_INDEX, sft_example
from rxmrl.cli import main
from rxmrl.data import synthesize_episodes, train_tokenizer
from rxmrl.model import RxT, load_preset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An rxt-tiny checkpoint with its tokenizer, and a baseline SFT-trained for 2 steps on 2 episodes."""
    root = tmp_path_factory.mktemp("baseline")
    episodes = synthesize_episodes(30, steps=4, strategy="cumulative")
    tokenizer = train_tokenizer([t for e in episodes for i in e.interactions for t in (i.query, i.answer)],
                                vocab_size=300)
    torch.manual_seed(0)
    RxT(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size)).save_pretrained(
        root / "rxt", write_extra=lambda d: tokenizer.save(d / "tokenizer.json"))
    code = main(["baseline", "train", "--match-checkpoint", str(root / "rxt"), "--out", str(root / "baseline"),
                 "--strategy", "cumulative", "--episode-steps", "2", "--episodes", "2", "--steps", "2",
                 "--batch-size", "2", "--lr", "1e-2", "--warmup-steps", "0", "--logging-steps", "1", "--seed", "4"])
    assert code == 0
    training_rows = [sft_example(tokenizer, e, loss_on="follow_ups", max_message_len=64, context_len=576)
                     for e in synthesize_episodes(2, steps=2, strategy="cumulative", seed=4)]
    return root, tokenizer, training_rows


def label_nll(model, rows):
    """Mean negative log-likelihood of the labelled tokens of `rows` (each token counts once)."""
    total, count = 0.0, 0
    with torch.no_grad():
        for row in rows:
            logits = model(input_ids=torch.tensor([row["input_ids"]])).logits[0, :-1]
            labels = torch.tensor(row["labels"][1:])
            total += float(F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum"))
            count += int((labels != IGNORE_INDEX).sum())
    return total / count


def test_sft_trains_on_our_labels_and_saves_the_trained_weights(trained):
    root, tokenizer, rows = trained
    model, loaded_tokenizer, info = load_baseline(root / "baseline")
    rxt_config = load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size)
    initial = build_stateless_model(stateless_config(rxt_config), seed=4)
    before = label_nll(initial, rows)
    # TRL's first logged loss is the initial model's loss on the one batch holding both rows: only the
    # answers' tokens are labelled, as rendered by sft_example.
    assert info["training"]["loss_first"] == pytest.approx(before, abs=1e-4)
    assert label_nll(model, rows) < before - 0.05  # two steps at lr 1e-2 lower it, and the saved model is trained
    assert info["training"]["rows"] == 2 and info["training"]["loss_on"] == "follow_ups"
    assert info["parameters"] >= info["rxt_decoder_active_parameters"] == 59552
    assert info["matched_to"]["checkpoint"] == str(root / "rxt")
    assert loaded_tokenizer.encode_text("a red kite") == tokenizer.encode_text("a red kite")


def test_benchmark_runs_end_to_end_with_the_trained_baseline(trained, tmp_path):
    root, _, _ = trained
    out = tmp_path / "retention.json"
    code = main(["bench", "retention", "--checkpoint", str(root / "rxt"), "--baseline", str(root / "baseline"),
                 "--episodes", "2", "--steps", "2", "--reward", "fact-recall", "--samples", "1", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) == {"rxt", "rxt_memory_reset", "stateless", "settings"}
    stateless = data["stateless"]
    assert stateless["episodes"] == 2 and len(stateless["per_step"]) == 2
    assert stateless["notes"]["prompts"] == 4 and stateless["notes"]["truncated_prompts"] == 0
    assert stateless["samples"][0]["steps"][1]["reference"]


def test_train_needs_a_tokenizer_with_a_preset(tmp_path, capsys):
    code = main(["baseline", "train", "--match-preset", "rxt-tiny", "--out", str(tmp_path / "b")])
    assert code == 2 and "--tokenizer" in capsys.readouterr().err
