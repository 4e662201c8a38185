"""Importing RxNN checkpoints: rxmrl's outputs equal RxNN's on the same weights (fixtures written by
tests/fixtures/rxnn/make_fixtures.py from RxNN cafcc7d = 0.2.171, a99e951 = 0.2.145, e50f1d7 = 0.2.58 and
f332cdd = 0.1.14; see SOURCE.json there), the folder it writes loads strictly, and what cannot be imported is refused with a
reason."""

import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from safetensors.torch import load_file, save_file

from rxmrl.cli import main
from rxmrl.errors import CheckpointError
from rxmrl.model import RxT
from rxmrl.model.rxnn import ImportChoices, import_rxnn
from rxmrl.model.rxnn.tokenizer import import_tokenizer

FIXTURES = Path(__file__).parent / "fixtures" / "rxnn"
CASES = {
    "alpha": (FIXTURES / "alpha",),
    "components": (FIXTURES / "decoder", FIXTURES / "encoder", FIXTURES / "memory-attention"),
    "sqa-groups": (FIXTURES / "sqa-decoder", FIXTURES / "sqa-encoder", FIXTURES / "sqa-memory-attention"),
    "legacy": (FIXTURES / "legacy-decoder", FIXTURES / "legacy-encoder"),  # no memory attention: not compared
    "early": (FIXTURES / "early-decoder", FIXTURES / "early-encoder"),  # stacked experts, batch of one
}
CHOICES = {"legacy": ImportChoices(causal_memory_cross_attention=True)}
TOLERANCE = 1e-5  # float32


def outputs(model: RxT, expected: dict) -> dict:
    """The four outputs the fixtures hold, computed by rxmrl."""
    stm, ids, mask, query = expected["stm"], expected["input_ids"], expected["attention_mask"], expected["query_ids"]
    with torch.no_grad():
        new_stm = model.update_memory(stm, ids, mask)
        ours = {
            "logits_before": model.decode(query, model.memory_kv(stm)).logits,
            "encoder_layers": model.encode(ids, mask, stm),
            "stm_after": new_stm,
            "logits_after": model.decode(query, model.memory_kv(new_stm)).logits,
        }
    return {name: tensor for name, tensor in ours.items() if name in expected}


def max_differences(model: RxT, case: str) -> dict:
    expected = load_file(str(FIXTURES / f"expected-{case}.safetensors"))
    ours = outputs(model.eval(), expected)
    real = expected["attention_mask"][:, None, :, None]  # padded tokens' encoder outputs are not compared
    ours["encoder_layers"] = ours["encoder_layers"] * real
    expected["encoder_layers"] = expected["encoder_layers"] * real
    return {name: (ours[name] - expected[name]).abs().max().item() for name in ours}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_equal_rxnn(case):
    differences = max_differences(import_rxnn(*CASES[case], choices=CHOICES.get(case)), case)
    assert all(d <= TOLERANCE for d in differences.values()), differences


def test_legacy_checkpoints_need_the_causal_switch_and_have_no_stm_norm():
    model = import_rxnn(*CASES["legacy"])
    assert not model.config.memory_read_norm
    differences = max_differences(model, "legacy")
    assert differences["logits_before"] > 1e-3  # without causal_memory_cross_attention: a different function
    assert differences["encoder_layers"] <= TOLERANCE  # RxNN's encoder cross-attention was never causal


def test_self_memory_attention_writes_as_rxnn():
    model = import_rxnn(*CASES["early"], FIXTURES / "self-memory-attention").eval()
    spec = model.config.memory_attention
    assert (spec.variant, spec.gate, spec.gate_per_slot, spec.consult_gate) == ("rxnn-self", "slot-linear", False, False)
    expected = load_file(str(FIXTURES / "expected-self.safetensors"))
    with torch.no_grad():
        new_stm = model.memory_attention(expected["stm"], expected["encoder_layers"], expected["attention_mask"])
    assert (new_stm - expected["stm_after"]).abs().max().item() <= TOLERANCE


def test_a_head_norm_becomes_a_final_layer_norm():
    model = import_rxnn(FIXTURES / "head-norm-decoder", FIXTURES / "head-norm-encoder").eval()
    assert (model.config.final_norm, model.config.final_norm_kind) == (True, "layer")
    expected = load_file(str(FIXTURES / "expected-head-norm.safetensors"))
    with torch.no_grad():
        logits = model.decode(expected["query_ids"], model.memory_kv(expected["stm"])).logits
    assert (logits - expected["logits_before"]).abs().max().item() <= TOLERANCE


def test_stacked_experts_of_early_checkpoints_are_unstacked():
    config = import_rxnn(*CASES["early"]).config
    assert (config.decoder.ffn.experts, config.decoder.ffn.top_k, config.decoder.ffn.hidden) == (3, 2, 16)
    assert not config.memory_read_norm


def test_sqa_cross_attention_heads_come_from_the_shapes():
    config = import_rxnn(*CASES["sqa-groups"]).config
    assert (config.decoder.self_attention.query_heads, config.decoder.self_attention.kv_heads) == (2, 2)
    assert (config.decoder.cross_attention.query_heads, config.decoder.cross_attention.kv_heads) == (4, 1)
    assert (config.memory_attention.gate, config.memory_attention.gate_per_slot) == ("slot-static", False)


def test_the_fixtures_cover_both_rxnn_variants_and_three_gate_kinds():
    alpha, components = import_rxnn(*CASES["alpha"]).config, import_rxnn(*CASES["components"]).config
    assert (alpha.memory_attention.variant, alpha.memory_attention.gate) == ("rxnn-self-interlayer", "slot-linear")
    assert components.memory_attention.variant == "rxnn-interlayer"
    assert components.memory_attention.gate == "slot-elementwise"
    assert components.memory_attention.gate_activation == "tanh"
    assert components.memory_attention.gate_slot_status == "linear"
    assert alpha.decoder.ffn.experts == 3 and alpha.encoder.cross_attention is not None
    assert components.encoder.cross_attention is None
    assert not alpha.final_norm and alpha.lm_head_bias and alpha.norm_eps_from_dtype
    assert not alpha.memory_attention.token_skip
    assert alpha.stm.init_std == 1.0 and components.stm.init_std == 0.02


def test_cli_writes_a_folder_that_loads_strictly_and_computes_the_same(tmp_path, capsys):
    out = tmp_path / "imported"
    assert main(["model", "import", "--decoder", str(FIXTURES / "alpha"), "--out", str(out)]) == 0
    assert "tokenizer yes" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    differences = max_differences(RxT.from_pretrained(out), "alpha")
    assert all(d <= TOLERANCE for d in differences.values()), differences
    assert main(["model", "info", str(out), "--json"]) == 0
    assert '"total": ' in capsys.readouterr().out


def test_cli_refuses_a_non_empty_out_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "imported"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["model", "import", "--decoder", str(FIXTURES / "alpha"), "--out", str(out)]
    assert main(argv) == 2
    assert "is not empty" in capsys.readouterr().err
    assert (out / "notes.txt").exists()
    assert main([*argv, "--overwrite"]) == 2  # --overwrite never deletes a file the command did not write
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    assert main(argv) == 0
    assert main([*argv, "--overwrite"]) == 0  # a folder of its own files is replaced
    assert RxT.from_pretrained(out).config.vocab_size > 0


def test_cli_components_with_options(tmp_path, capsys):
    out = tmp_path / "imported"
    argv = ["model", "import", "--decoder", str(FIXTURES / "decoder"), "--encoder", str(FIXTURES / "encoder"),
            "--memory-attention", str(FIXTURES / "memory-attention"),
            "--stm-init-std", "1.0", "--causal-memory-cross-attention", "--out", str(out)]
    assert main([*argv, "--tokenizer", str(FIXTURES / "alpha")]) == 2  # 103 tokens, 64 embeddings
    assert "has 103 tokens, the model only 64 embeddings" in capsys.readouterr().err
    assert main(argv) == 0
    model = RxT.from_pretrained(out)
    assert model.config.stm.init_std == 1.0 and model.config.causal_memory_cross_attention
    assert model.config.name == "imported"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--encoder", str(FIXTURES / "mlm-head")], "found an MLMHead"),
        ([], "pass its --encoder too"),
        (["--encoder", str(FIXTURES / "encoder"), "--memory-attention", str(FIXTURES / "decoder")],
         "expected a memory attention"),
    ],
)
def test_cli_wrong_parts_exit_2_with_one_line(tmp_path, capsys, extra, message):
    argv = ["model", "import", "--decoder", str(FIXTURES / "decoder"), *extra, "--out", str(tmp_path / "m")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_alpha_takes_no_separate_parts():
    with pytest.raises(CheckpointError, match="drop --encoder"):
        import_rxnn(FIXTURES / "alpha", FIXTURES / "encoder")


def copy_with(tmp_path: Path, name: str, change) -> Path:
    folder = tmp_path / name
    shutil.copytree(FIXTURES / name, folder)
    weights = load_file(str(folder / "model.safetensors"))
    change(weights)
    save_file(weights, str(folder / "model.safetensors"))
    return folder


def test_different_embeddings_are_refused(tmp_path):
    def nudge(weights):
        weights["model.embedding.weight"] = weights["model.embedding.weight"] + 1e-3

    encoder = copy_with(tmp_path, "encoder", nudge)
    with pytest.raises(CheckpointError, match="different token embeddings"):
        import_rxnn(FIXTURES / "decoder", encoder)


def test_a_tensor_without_a_place_is_refused(tmp_path):
    def add(weights):
        weights["model.layers.0.attention.q_proj.bias"] = torch.zeros(32)

    decoder = copy_with(tmp_path, "decoder", add)
    with pytest.raises(CheckpointError, match="query/key/value biases"):
        import_rxnn(decoder, FIXTURES / "encoder")

    def extra(weights):
        weights["model.layers.0.extra.weight"] = torch.zeros(2)

    decoder = copy_with(tmp_path, "encoder", extra)
    with pytest.raises(CheckpointError, match="no place for: model.layers.0.extra.weight"):
        import_rxnn(FIXTURES / "decoder", decoder)


def test_without_memory_attention_a_fresh_one_is_seeded():
    first = import_rxnn(FIXTURES / "decoder", FIXTURES / "encoder", seed=3)
    second = import_rxnn(FIXTURES / "decoder", FIXTURES / "encoder", seed=3)
    assert first.config.memory_attention.variant == "self-interlayer"
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_hub_id_that_cannot_be_fetched_fails_at_once(monkeypatch):
    def offline(repo_id, revision=None, **kwargs):
        raise OSError("no network\nat all")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match="could not download from the Hugging Face Hub: no network at all"):
        import_rxnn("RxAI-dev/RxT-Alpha-Micro-Decoder", "RxAI-dev/RxT-Alpha-Micro-Encoder")


def test_cached_decoding_of_an_imported_model_equals_the_full_forward():
    model = import_rxnn(*CASES["alpha"]).eval()
    stm = model.initial_stm(2, torch.Generator().manual_seed(0))
    tokens = torch.randint(7, model.config.vocab_size, (2, 6))
    mkv = model.memory_kv(stm)
    with torch.no_grad():
        full = model.decode(tokens, mkv).logits
        cache = model.new_cache(2, 8)
        stepped = [model.decode(tokens[:, :3], mkv, cache=cache).logits]
        stepped += [model.decode(tokens[:, t : t + 1], mkv, cache=cache).logits for t in range(3, 6)]
    torch.testing.assert_close(torch.cat(stepped, dim=1), full, atol=1e-5, rtol=1e-5)


def test_rxnn_tokenizer_gets_a_decoder_and_special_tokens_by_name():
    tokenizer = import_tokenizer(FIXTURES / "alpha" / "tokenizer.json")
    ids = tokenizer.encode_interaction("Where is the cat?", "The cat is on the mat.")
    assert ids[:2] == [tokenizer.bos_id, tokenizer.q_id] and ids[-1] == tokenizer.eos_id
    assert tokenizer.a_id in ids
    assert tokenizer.decode(ids) == "Where is the cat? The cat is on the mat."


def test_an_imported_folder_generates_text_with_its_tokenizer(tmp_path, capsys):
    out = tmp_path / "imported"
    assert main(["model", "import", "--decoder", str(FIXTURES / "alpha"), "--out", str(out)]) == 0
    capsys.readouterr()
    argv = ["model", "generate", str(out), "--prompt", "Where is the cat?", "--new-tokens", "4", "--greedy"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "tokens/s (imported" in printed and "Ġ" not in printed


def test_special_tokens_anywhere_in_the_vocabulary_are_found_by_name(tmp_path):
    import tokenizers
    from tokenizers import models, pre_tokenizers, trainers

    backend = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)  # RxNN's: no decoder set
    order = ["[A]", "[Q]", "[MASK]", "[EOS]", "[BOS]", "[UNK]", "[PAD]"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=order, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(["the cat sat on the mat"] * 10, trainer)
    backend.save(str(tmp_path / "tokenizer.json"))
    tokenizer = import_tokenizer(tmp_path)
    assert (tokenizer.a_id, tokenizer.q_id, tokenizer.bos_id, tokenizer.pad_id) == (0, 1, 4, 6)
    ids = tokenizer.encode_interaction("the cat", "the mat")
    assert ids[0] == 4 and ids[1] == 1 and ids[-1] == 3
    assert tokenizer.decode(ids) == "the cat the mat"


def test_a_tokenizer_with_other_special_ids_than_the_alphas_is_refused(tmp_path):
    import json

    data = json.loads((FIXTURES / "alpha" / "tokenizer.json").read_text())
    for token in data["added_tokens"]:  # swap [Q] and [A]
        token["content"] = {"[Q]": "[A]", "[A]": "[Q]"}.get(token["content"], token["content"])
    vocab = data["model"]["vocab"]
    vocab["[Q]"], vocab["[A]"] = vocab["[A]"], vocab["[Q]"]
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="query_token_id 6 .the model's 5."):
        import_rxnn(FIXTURES / "alpha", tokenizer=import_tokenizer(tmp_path / "tokenizer.json"))


def test_an_older_pytorch_model_bin_reads_like_safetensors(tmp_path):
    folder = tmp_path / "decoder"
    shutil.copytree(FIXTURES / "decoder", folder)
    weights = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    differences = max_differences(import_rxnn(folder, FIXTURES / "encoder", FIXTURES / "memory-attention"),
                                  "components")
    assert all(d <= TOLERANCE for d in differences.values()), differences
