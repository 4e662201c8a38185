"""The composite's arithmetic, modes and spec loading, with a fake embedding model (hand-set vectors)."""

import math
from pathlib import Path

import pytest
import torch

from rxmrl.data.episode import Interaction
from rxmrl.errors import ConfigError
from rxmrl.reward import CompositeReward, RewardBatch, get_reward, load_spec
from rxmrl.reward.similarity import TextEmbedder
from rxmrl.reward.spec import ModeWeights, RewardSpec, Weights

REPO = Path(__file__).resolve().parents[1]


class FakeEncoder:
    """Maps known texts to fixed 2-d vectors and records every call."""

    def __init__(self, vectors):
        self.vectors = vectors
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return torch.tensor([self.vectors[t] for t in texts], dtype=torch.float32)


def remember(*answers):
    return [Interaction("q", a) for a in answers]


def test_weighted_sum_scaled_to_ten_hand_computed():
    ref = "the red kite flies"
    enc = FakeEncoder({ref: [1.0, 0.0], "blue boat": [0.6, 0.8], "": [0.0, 1.0]})
    spec = RewardSpec(name="t", weights=ModeWeights(Weights(bleu=1.0, reference_similarity=1.0, length=-1.0)))
    reward = CompositeReward(spec, embedder=TextEmbedder(encoder=enc))
    batch = RewardBatch(query=["q"] * 3, generated=[ref, "blue boat", ""], reference=[ref] * 3,
                        remember=[[], [], []])
    out = reward(batch)
    length = (math.log(2) - math.log(1.5)) / (math.log(4) - math.log(1.5))  # 2 words against 4
    assert out.total[0].item() == pytest.approx(10.0)
    assert out.total[1].item() == pytest.approx(10 * (0.0 + 0.6 - length) / 2, abs=1e-5)
    assert out.total[2].item() == 0.0  # empty answer
    assert set(out.components) == {"bleu", "reference_similarity", "length"}
    assert out.components["reference_similarity"].tolist() == pytest.approx([1.0, 0.6, 0.0])
    assert out.total.dtype == torch.float32 and out.total.shape == (3,)


def test_modes_pick_their_weights_and_memory_similarity_uses_the_mean_direction():
    enc = FakeEncoder({"a": [1.0, 0.0], "b": [0.0, 1.0], "answer": [0.6, 0.8], "ref": [0.6, 0.8],
                       "q\nfirst": [1.0, 0.0], "q\nsecond": [0.0, 1.0]})
    spec = RewardSpec(
        name="t",
        weights=ModeWeights(
            standard=Weights(reference_similarity=1.0, memory_similarity=1.0),
            negative=Weights(reference_similarity=1.0, memory_similarity=-1.0),
        ),
    )
    reward = CompositeReward(spec, embedder=TextEmbedder(encoder=enc))
    mem = remember("first", "second")
    batch = RewardBatch(query=["q"] * 3, generated=["answer"] * 3, reference=["ref"] * 3, remember=[mem] * 3,
                        mode=["standard", "negative", "long_range"])
    out = reward(batch)
    centre = (0.6 + 0.8) / math.sqrt(2)  # cosine with the normalised mean of (1, 0) and (0, 1)
    assert out.components["memory_similarity"][0].item() == pytest.approx(centre, abs=1e-6)
    assert out.total[0].item() == pytest.approx(10 * (1 + centre) / 2, abs=1e-5)
    assert out.total[1].item() == pytest.approx(10 * max(0.0, 1 - centre), abs=1e-5)
    assert out.total[2].item() == pytest.approx(out.total[0].item())  # long_range falls back to standard


def test_embedding_cache_encodes_each_new_text_once_and_evicts_least_recent():
    enc = FakeEncoder({t: [float(i + 1), 1.0] for i, t in enumerate("abcde")})
    emb = TextEmbedder(encoder=enc, cache_size=3)
    emb.embed(["a", "b", "a"])
    emb.embed(["b", "c"])
    assert enc.calls == [["a", "b"], ["c"]]
    emb.embed(["d"])  # cache holds b, c, d now ("a" was least recently used)
    emb.embed(["a", "c"])
    assert enc.calls[-1] == ["a"]
    vectors = emb.embed(["e", "e"])
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2))
    assert emb.hits > 0 and emb.misses == 6


def test_bleu_uses_token_ids_when_the_batch_has_them():
    spec = RewardSpec(name="t", weights=ModeWeights(Weights(bleu=1.0)), scale=1.0)
    reward = CompositeReward(spec)
    texts = dict(query=["q"], generated=["a b c d"], reference=["w x y z"], remember=[[]])
    assert reward(RewardBatch(**texts)).total.item() == 0.0  # words differ
    ids = torch.tensor([[5, 6, 7, 8, 0]])
    with_ids = RewardBatch(**texts, generated_ids=ids, reference_ids=ids.clone(), pad_id=0)
    assert with_ids.reference_ids is not None
    assert reward(with_ids).total.item() == pytest.approx(1.0)  # ids identical


def test_fact_components_and_unknown_mode():
    spec = RewardSpec(name="t", weights=ModeWeights(Weights(fact_recall=1.0, contradiction=-1.0)), scale=1.0)
    reward = CompositeReward(spec)
    assert reward.embedder is None  # no similarity component: the model is never loaded
    facts = {"name": "lily", "object": "kite", "colour": "red"}
    story = [Interaction("Tell me a story.", "Lily had a red kite.")]
    batch = RewardBatch(query=["What colour was Lily's kite?"] * 2, generated=["It was red.", "It was blue."],
                        reference=["Lily's kite was red."] * 2, remember=[story] * 2, facts=[facts, facts])
    out = reward(batch)
    assert out.components["fact_recall"].tolist() == [1.0, 0.0]
    assert out.components["contradiction"].tolist() == [0.0, 1.0]
    assert out.total.tolist() == [1.0, 0.0]
    bad = RewardBatch(query=["q"], generated=["a"], reference=["a"], remember=[[]], mode=["sideways"])
    with pytest.raises(ValueError, match="sideways"):
        reward(bad)


def test_presets_load_strictly(tmp_path):
    default = load_spec(REPO / "rewards" / "mrl-composite.toml")
    assert default.name == "mrl-composite" and default.scale == 10.0
    assert default.weights.negative.memory_similarity < 0 and default.weights.negative.memory_overlap < 0
    assert default.weights.long_range.fact_recall > default.weights.standard.fact_recall
    facts_only = load_spec(REPO / "rewards" / "fact-recall.toml")
    assert "reference_similarity" not in facts_only.used_components()

    typo = tmp_path / "typo.toml"
    typo.write_text('name = "x"\n[weights.standard]\nbleu = 1.0\nfact_recal = 1.0\n')
    with pytest.raises(ConfigError, match=r"typo\.toml.*weights\.standard\.fact_recal.*did you mean"):
        load_spec(typo)
    no_positive = tmp_path / "neg.toml"
    no_positive.write_text('name = "x"\n[weights.standard]\nbleu = 1.0\n[weights.negative]\nlength = -1.0\n')
    with pytest.raises(ConfigError, match="weights.negative: needs at least one positive weight"):
        load_spec(no_positive)
    bad_smoothing = tmp_path / "s.toml"
    bad_smoothing.write_text('name = "x"\n[weights.standard]\nbleu = 1.0\n[bleu]\nsmoothing = "laplace"\n')
    with pytest.raises(ConfigError, match="bleu.smoothing"):
        load_spec(bad_smoothing)


def test_spec_plugins_add_weighted_components(tmp_path):
    (tmp_path / "my_plugin.py").write_text(
        "def always_half(batch):\n    return [0.5] * len(batch)\n"
    )
    spec_path = tmp_path / "with-plugin.toml"
    spec_path.write_text(
        'name = "with-plugin"\nscale = 1.0\n[weights.standard]\nbleu = 1.0\n'
        '[[plugins]]\nname = "half"\nspec = "my_plugin.py:always_half"\nweight = 1.0\n'
    )
    reward = get_reward(str(spec_path))
    batch = RewardBatch(query=["q"], generated=["a b"], reference=["a b"], remember=[[]])
    out = reward(batch)
    assert out.components["half"].tolist() == [0.5]
    assert out.total.item() == pytest.approx((1.0 + 0.5) / 2)
