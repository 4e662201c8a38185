"""The retention benchmark: its aggregation against hand-computed values, the memory ablation, the stateless
baseline's full-history prompts, and the CLI's JSON on a tiny checkpoint."""

import json

import pytest
import torch

from rxmrl.baseline import system as baseline_system
from rxmrl.baseline.model import build_stateless_model, save_baseline, stateless_config
from rxmrl.baseline.system import StatelessSystem
from rxmrl.baseline.tokenizer import to_hf_tokenizer
from rxmrl.bench.retention import RxTSystem, fact_recall_score, run_retention, rxt_systems
from rxmrl.cli import main
from rxmrl.data import Episode, Interaction, synthesize_episodes, train_tokenizer
from rxmrl.env.routing import route_step
from rxmrl.model import RxT, load_preset
from rxmrl.model.sampling import GREEDY, Sampling
from rxmrl.reward.base import RewardOutput

LIMITS = dict(max_query_len=32, max_answer_len=32)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; two spin-waiting threads crawl on a loaded shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tokenizer():
    episodes = synthesize_episodes(30, steps=4, strategy="cumulative") + synthesize_episodes(30, steps=4,
                                                                                            strategy="long_range")
    return train_tokenizer([t for e in episodes for i in e.interactions for t in (i.query, i.answer)], vocab_size=320)


def tiny_rxt(tokenizer, seed=0, **overrides):
    torch.manual_seed(seed)
    return RxT(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size, **overrides)).eval()


class OracleSystem:
    """Answers every follow-up with the reference (rows named in `wrong_rows` answer "I do not know.").

    It relies on `run_retention` keeping the episodes' order within each batch, and checks it.
    """

    def __init__(self, tokenizer, episodes, wrong_rows=()):
        self.tokenizer = tokenizer
        self.queue = list(episodes)
        self.wrong_rows = set(wrong_rows)

    def start(self, remember_ids, remember_mask, seed):
        batch, self.queue = self.queue[: len(remember_ids)], self.queue[len(remember_ids):]
        for episode, ids, mask in zip(batch, remember_ids, remember_mask):
            assert self.tokenizer.decode(ids[mask].tolist()).startswith(episode.first.query[:20])
        return {"episodes": batch, "step": 0}

    def respond(self, state, query_ids, query_mask, *, max_new_tokens, sampling, generator):
        texts = ["I do not know." if row in self.wrong_rows else e.follow_ups[state["step"]].answer
                 for row, e in enumerate(state["episodes"])]
        ids, _ = self.tokenizer.batch_encode_answers(texts, max_new_tokens + 1)
        return ids

    def record(self, state, interaction_ids, interaction_mask):
        return {**state, "step": state["step"] + 1}

    def notes(self, state):
        return {"batches": 1}


def exact(generated, reference):
    """The reference, or its start when it was cut to the answer length."""
    return bool(generated) and reference.startswith(generated)


def reward_by_step(batch):
    """Reward = the follow-up's step number, plus 5 when the answer is the reference (see `exact`)."""
    hits = torch.tensor([float(exact(g, r)) for g, r in zip(batch.generated, batch.reference)])
    return RewardOutput(total=torch.tensor(batch.step, dtype=torch.float32) + 5 * hits, components={"exact": hits})


def test_aggregation_matches_hand_computed_values(tokenizer):
    episodes = synthesize_episodes(5, steps=3, strategy="cumulative", split="test")
    oracle = OracleSystem(tokenizer, episodes, wrong_rows={1})
    results = run_retention({"oracle": oracle}, episodes, reward_by_step, batch_size=3, **LIMITS)
    r = results["oracle"]
    # Batches [e0 e1 e2] and [e3 e4]: row 1 of each batch answers wrongly -> episodes e1 and e4.
    right, wrong = (1 + 2 + 3) / 3 + 5, (1 + 2 + 3) / 3
    assert r["episodes"] == 5
    assert r["mean"] == pytest.approx((3 * right + 2 * wrong) / 5)
    assert (r["max"], r["min"]) == (pytest.approx(right), pytest.approx(wrong))
    assert r["per_step"] == [pytest.approx(k + 5 * 3 / 5) for k in (1, 2, 3)]
    assert r["components"]["exact"] == pytest.approx(3 / 5)
    assert r["notes"] == {"batches": 2}
    # Fact recall of the answers, by the composite's definition, averaged per step and overall.
    expected = {k: [] for k in (1, 2, 3)}
    for i, e in enumerate(episodes):
        for k in (1, 2, 3):
            answer = "I do not know." if i in (1, 4) else e.follow_ups[k - 1].answer
            route = route_step(e, k)
            expected[k].append(fact_recall_score(answer, e.follow_ups[k - 1].answer, e.follow_ups[k - 1].query,
                                                 route.remember, e.facts))
    assert r["per_step_fact_recall"] == [pytest.approx(sum(v) / 5) for v in expected.values()]
    assert r["fact_recall"] == pytest.approx(sum(sum(v) for v in expected.values()) / 15)
    assert 0.5 < r["fact_recall"] < 1  # the right answers recall their facts, the wrong ones nothing


def test_long_range_distractor_steps_are_rewarded_but_not_counted_as_recall(tokenizer):
    episodes = synthesize_episodes(4, steps=3, strategy="long_range", split="test")
    r = run_retention({"oracle": OracleSystem(tokenizer, episodes)}, episodes, reward_by_step, **LIMITS)["oracle"]
    assert r["per_step"] == [pytest.approx(6.0), pytest.approx(7.0), pytest.approx(8.0)]
    assert r["per_step_fact_recall"][:2] == [None, None]
    assert r["per_step_fact_recall"][2] == pytest.approx(1.0)  # the reference recalls every fact it states


class MemorySpy:
    """Records every STM the decoder reads (RxT.memory_kv is called once per generate)."""

    def __init__(self, model):
        self.reads = []
        original = model.memory_kv

        def spy(memory, memory_mask=None):
            self.reads.append(memory.detach().clone())
            return original(memory, memory_mask)

        model.memory_kv = spy


def test_memory_ablation_reads_a_fresh_stm_before_every_answer(tokenizer):
    model = tiny_rxt(tokenizer, stm={"init": "zeros"})  # a fresh STM is exactly zero
    spy = MemorySpy(model)
    episodes = synthesize_episodes(3, steps=3, strategy="cumulative", split="test")
    results = run_retention(rxt_systems(model, tokenizer), episodes, reward_by_step, keep_samples=3, **LIMITS)
    with_memory, ablation = spy.reads[:3], spy.reads[3:]
    assert len(ablation) == 3
    assert all(float(stm.abs().max()) == 0.0 for stm in ablation)
    assert all(float(stm.abs().max()) > 0.0 for stm in with_memory)  # the first interaction was written
    assert not torch.equal(with_memory[0], with_memory[1])  # and every answered interaction after it
    # The ablation's answers are what the model says to each query alone, from an empty memory.
    for sample, episode in zip(results["rxt_memory_reset"]["samples"], episodes):
        for step, follow_up in zip(sample["steps"], episode.follow_ups):
            query = torch.tensor([tokenizer.encode_query(follow_up.query, 32)])
            out = model.generate(query, torch.ones_like(query, dtype=torch.bool), model.initial_stm(1),
                                 max_new_tokens=31, eos_id=tokenizer.eos_id, sampling=GREEDY)
            assert step["generated"] == tokenizer.decode(out.tokens[0][out.mask[0]].tolist())


def test_rxt_system_writes_its_own_answers_in_order(tokenizer):
    model = tiny_rxt(tokenizer)
    episodes = synthesize_episodes(2, steps=2, strategy="cumulative", split="test")
    results = run_retention({"rxt": RxTSystem(model, tokenizer)}, episodes, reward_by_step, keep_samples=1, seed=3,
                            batch_size=1, **LIMITS)
    # Replay by hand: the same initial STM (seeded like the benchmark's first batch), then write, answer, write...
    episode, sample = episodes[0], results["rxt"]["samples"][0]
    stm = model.initial_stm(1, generator=torch.Generator().manual_seed(3))
    first = torch.tensor([tokenizer.encode_interaction(episode.first.query, episode.first.answer, 64)])
    stm = model.update_memory(stm, first, torch.ones_like(first, dtype=torch.bool))
    for follow_up, step in zip(episode.follow_ups, sample["steps"]):
        query = torch.tensor([tokenizer.encode_query(follow_up.query, 32)])
        out = model.generate(query, torch.ones_like(query, dtype=torch.bool), stm, max_new_tokens=31,
                             eos_id=tokenizer.eos_id, sampling=GREEDY)
        answer = out.tokens[0][out.mask[0]].tolist()
        assert step["generated"] == tokenizer.decode(answer)
        if answer[-1] != tokenizer.eos_id:  # the env ends an answer cut at 31 tokens with EOS
            answer.append(tokenizer.eos_id)
        written = torch.tensor([query[0].tolist() + answer])
        stm = model.update_memory(stm, written, torch.ones_like(written, dtype=torch.bool))


def test_stateless_prompt_holds_the_whole_history(tokenizer, monkeypatch):
    llama = build_stateless_model(stateless_config(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size)), seed=0)
    prompts, answers = [], []
    real_generate = baseline_system.generate_stateless

    def spy(model, batch_prompts, **kwargs):
        out = real_generate(model, batch_prompts, **kwargs)
        prompts.append([list(p) for p in batch_prompts])
        answers.append([row[mask].tolist() for row, mask in zip(out.tokens, out.mask)])
        return out

    monkeypatch.setattr(baseline_system, "generate_stateless", spy)
    episodes = synthesize_episodes(2, steps=3, strategy="cumulative", split="test")
    results = run_retention({"stateless": StatelessSystem(llama, tokenizer)}, episodes, reward_by_step, **LIMITS)
    assert len(prompts) == 3
    for row, episode in enumerate(episodes):
        expected = tokenizer.encode_interaction(episode.first.query, episode.first.answer, 64)
        for k, follow_up in enumerate(episode.follow_ups):
            query = tokenizer.encode_query(follow_up.query, 32)
            assert prompts[k][row] == expected + query
            answer = answers[k][row]
            if answer[-1] != tokenizer.eos_id:
                answer = answer + [tokenizer.eos_id]
            expected = expected + query + answer  # its own answer, then the next turn
    notes = results["stateless"]["notes"]
    assert notes["truncated_prompts"] == 0 and notes["prompts"] == 6
    assert notes["prompt_tokens"] == sum(len(p) for batch in prompts for p in batch)


def test_stateless_prompt_is_cut_to_its_context(tokenizer):
    llama = build_stateless_model(stateless_config(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size),
                                                   context_len=100), seed=0)
    episodes = synthesize_episodes(2, steps=3, strategy="cumulative", split="test")
    notes = run_retention({"s": StatelessSystem(llama, tokenizer)}, episodes, reward_by_step, **LIMITS)["s"]["notes"]
    assert notes["truncated_prompts"] > 0  # a story alone is ~60 tokens: 100 cannot hold two interactions + answer
    assert notes["prompt_tokens"] <= notes["prompts"] * (100 - 31)


@pytest.fixture(scope="module")
def folders(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("retention")
    model = tiny_rxt(tokenizer)
    model.save_pretrained(root / "rxt", write_extra=lambda d: tokenizer.save(d / "tokenizer.json"))
    tiny_rxt(tokenizer, seed=1).save_pretrained(root / "other",
                                                 write_extra=lambda d: tokenizer.save(d / "tokenizer.json"))
    config = load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size)
    save_baseline(build_stateless_model(stateless_config(config), seed=0), to_hf_tokenizer(tokenizer),
                  root / "baseline", {"note": "untrained, for the CLI test"})
    return root


def test_cli_writes_one_object_per_system(folders, tmp_path, capsys):
    out, plot = tmp_path / "retention.json", tmp_path / "retention.png"
    code = main(["bench", "retention", "--checkpoint", str(folders / "rxt"), "--baseline", str(folders / "baseline"),
                 "--compare", f"other={folders / 'other'}", "--episodes", "3", "--steps", "2", "--reward",
                 "fact-recall", "--json", str(out), "--plot", str(plot)])
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) == {"rxt", "rxt_memory_reset", "stateless", "other", "other_memory_reset", "settings"}
    for name in ("rxt", "rxt_memory_reset", "stateless", "other", "other_memory_reset"):
        r = data[name]
        assert r["episodes"] == 3 and len(r["per_step"]) == 2
        assert 0 <= r["min"] <= r["mean"] <= r["max"] <= 10
        assert 0 <= r["fact_recall"] <= 1
        assert len(r["samples"]) == 2 and len(r["samples"][0]["steps"]) == 2
    assert data["settings"]["reward"] == "fact-recall" and data["settings"]["split"] == "test"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_errors_are_actionable(folders, tmp_path, capsys):
    args = ["bench", "retention", "--json", str(tmp_path / "x.json"), "--episodes", "2", "--steps", "2"]
    assert main(args + ["--checkpoint", str(folders / "baseline")]) == 2
    assert "--baseline" in capsys.readouterr().err
    assert main(args + ["--checkpoint", str(folders / "rxt"), "--compare", "stateless=x"]) == 2
    assert "taken" in capsys.readouterr().err
    assert main(args + ["--checkpoint", str(tmp_path / "missing")]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_episodes_are_answered_with_sampling_reproducibly(tokenizer):
    model = tiny_rxt(tokenizer)
    episodes = synthesize_episodes(2, steps=2, strategy="cumulative", split="test")
    sampling = Sampling(greedy=False, temperature=1.0)
    runs = [run_retention({"rxt": RxTSystem(model, tokenizer)}, episodes, reward_by_step, sampling=sampling,
                          keep_samples=2, seed=seed, **LIMITS)["rxt"]["samples"] for seed in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_hand_written_episode_without_facts_uses_content_recall(tokenizer):
    episode = Episode(Interaction("Tell me a story.", "Mia lost her green hat at the beach."),
                      (Interaction("What did Mia lose?", "Mia lost her green hat."),
                       Interaction("Where was it?", "At the beach.")), strategy="cumulative", facts=None)
    r = run_retention({"oracle": OracleSystem(tokenizer, [episode])}, [episode], reward_by_step, **LIMITS)["oracle"]
    assert r["fact_recall"] == pytest.approx(1.0)  # the references recall the remembered content words


@pytest.mark.slow
def test_cli_default_reward_is_the_composite(folders, tmp_path):
    out = tmp_path / "retention.json"
    assert main(["bench", "retention", "--checkpoint", str(folders / "rxt"), "--episodes", "2", "--steps", "2",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["settings"]["reward"] == "mrl-composite"
    assert {"reference_similarity", "memory_similarity", "fact_recall"} <= set(data["rxt"]["components"])
