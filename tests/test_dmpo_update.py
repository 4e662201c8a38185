"""The DMPO update on rxt-tiny: which answers make a pair, the memory a pair is scored from (never holding the
pair itself), gradients through the memory writes, and an update that widens the preference margin."""

import copy

import pytest
import torch

from rxmrl.data import synthesize_episodes, train_tokenizer
from rxmrl.env.episode_loop import make_env
from rxmrl.model import RxT, load_preset
from rxmrl.model.sampling import Sampling
from rxmrl.policy import CriticConfig, RxTPolicy
from rxmrl.tokens import trim_padding
from rxmrl.train.dmpo_config import DmpoConfig
from rxmrl.train.dmpo_trainer import DmpoTrainer, dmpo_rollout_settings, preference_pairs
from rxmrl.train.guard import NonFiniteGuard, tolerant_reward
from rxmrl.train.mrl_trainer import build_optimizer
from rxmrl.train.optim_config import LearningRates
from rxmrl.train.rollout import Rollout, RolloutSettings, best_in_group, collect_rollout


def answer_length(batch):
    """A reward an untrained model's answers differ on: the answer's length in characters, capped at 10."""
    return [min(10.0, float(len(g))) for g in batch.generated]


@pytest.fixture(scope="module")
def setup():
    episodes = synthesize_episodes(4, steps=3, strategy="cumulative", split="train", seed=1)
    texts = [t for e in synthesize_episodes(60, steps=3, strategy="cumulative", seed=2) for i in e.interactions
             for t in (i.query, i.answer)]
    tokenizer = train_tokenizer(texts, 300)
    torch.manual_seed(0)
    model = RxT(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size, max_seq_len=160)).eval()
    policy = RxTPolicy(model, CriticConfig(dim=16, layers=1, heads=2, ffn_dim=32), pad_id=tokenizer.pad_id).eval()
    return episodes, tokenizer, policy


def collect(setup, config, policy=None, seed=0):
    episodes, tokenizer, base = setup
    policy = policy or base
    group = config.group_size if config.pairs == "sampled" else 1
    grouped = [e for e in episodes[:2] for _ in range(group)]
    env_reward, _ = tolerant_reward(answer_length, "answer_length")
    env = make_env(grouped, tokenizer, env_reward, steps=3, seed=seed, max_query_len=40, max_answer_len=13,
                   max_interaction_len=160)
    settings = dmpo_rollout_settings(config, RolloutSettings(max_new_tokens=12, sampling=Sampling(temperature=1.5),
                                                             max_interaction_len=160))
    return collect_rollout(policy, env, settings, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id,
                           memory_generator=torch.Generator().manual_seed(seed),
                           sample_generator=torch.Generator().manual_seed(seed + 1))


def trainer_for(setup, config, policy=None):
    _, tokenizer, base = setup
    policy = policy or base
    reference = copy.deepcopy(policy.model).requires_grad_(False)
    return DmpoTrainer(policy, reference, config, pad_id=tokenizer.pad_id, guard=NonFiniteGuard(3))


def test_best_in_group_picks_the_first_highest_row_of_each_group_and_nan_loses():
    groups = torch.tensor([0, 0, 0, 3, 3, 3])
    scores = torch.tensor([1.0, 5.0, 5.0, float("nan"), -2.0, -3.0])
    assert best_in_group(scores, groups).tolist() == [1, 1, 1, 4, 4, 4]
    assert best_in_group(-scores, groups).tolist() == [0, 0, 0, 5, 5, 5]
    assert best_in_group(torch.full((3,), float("nan")), torch.tensor([0, 0, 2])).tolist() == [0, 0, 2]


def _hand_rollout(rewards, rewarded, group_ids, answers):
    """A rollout with only what pair building reads: rewards [B, T], answers [B, T, 1] (one token each)."""
    batch, steps = rewards.shape
    ids = torch.tensor(answers).view(batch, steps, 1)
    empty = torch.zeros(batch, steps, 1, dtype=torch.long)
    return Rollout(snapshots=torch.zeros(batch, steps + 1, 1, 1, 1), written=empty, written_mask=empty.bool(),
                   queries=empty, query_mask=empty.bool(), answers=ids, answer_mask=torch.ones_like(ids).bool(),
                   logprobs=ids.float(), values=torch.zeros(batch, steps), rewards=rewards, rewarded=rewarded,
                   components={}, reset=torch.ones(batch, dtype=torch.bool), group_ids=group_ids, final_stm=None,
                   references=ids + 100, reference_mask=torch.ones_like(ids).bool())


def test_sampled_pairs_are_best_against_worst_on_rewarded_steps_with_a_reward_gap():
    # two groups of 3 rows, 2 steps; answer token = 10 * row + step
    rewards = torch.tensor([[1.0, 4.0], [3.0, 4.0], [2.0, 4.0],   # group 0: step 0 best row 1, worst row 0; step 1 tie
                            [5.0, 0.0], [1.0, 9.0], [5.0, 2.0]])  # group 3: step 1 not rewarded
    rewarded = torch.tensor([[True, True]] * 3 + [[True, False]] * 3)
    rollout = _hand_rollout(rewards, rewarded, torch.tensor([0, 0, 0, 3, 3, 3]),
                            [[10 * r + k for k in range(2)] for r in range(6)])
    pairs = preference_pairs(rollout, "sampled", pad_id=0)
    assert pairs.rows.tolist() == [1, 3] and pairs.steps.tolist() == [0, 0]  # row 3 wins the 5-5 tie (first)
    assert pairs.accepted[:, 0].tolist() == [10, 30] and pairs.rejected[:, 0].tolist() == [0, 40]
    # a non-finite reward anywhere in a group drops the whole group
    rewards[4, 1] = float("nan")
    assert preference_pairs(rollout, "sampled", pad_id=0).rows.tolist() == [1]


def test_reset_pairs_are_the_reference_against_the_reset_answer_on_rewarded_steps():
    rewarded = torch.tensor([[True, False], [True, True]])
    rollout = _hand_rollout(torch.zeros(2, 2), rewarded, torch.tensor([0, 1]), [[1, 2], [3, 4]])
    pairs = preference_pairs(rollout, "reset", pad_id=0)
    assert list(zip(pairs.rows.tolist(), pairs.steps.tolist())) == [(0, 0), (1, 0), (1, 1)]
    assert pairs.accepted[:, 0].tolist() == [101, 103, 104] and pairs.rejected[:, 0].tolist() == [1, 3, 4]


def test_the_group_writes_its_accepted_answer_and_shares_one_memory(setup):
    rollout = collect(setup, DmpoConfig(group_size=3))
    groups = rollout.group_ids
    for k in range(rollout.steps):
        best = best_in_group(rollout.rewards[:, k], groups)
        for row in range(rollout.batch_size):
            written = rollout.written[row, k + 1][rollout.written_mask[row, k + 1]].tolist()
            query_len = int(rollout.query_mask[row, k].sum())
            accepted = rollout.answers[best[row], k][rollout.answer_mask[best[row], k]].tolist()
            assert written[query_len:][: len(accepted)] == accepted
            assert torch.equal(rollout.snapshots[row, k + 1], rollout.snapshots[best[row], k + 1])


@pytest.mark.parametrize("pairs", ["sampled", "reset"])
def test_a_pair_is_scored_from_the_accepted_history_without_the_pair_itself(setup, pairs, monkeypatch):
    """The leak rule: the STM that scores step k holds the first interaction and the accepted interactions of
    steps < k, computed with gradients, never step k's accepted interaction."""
    _, _, policy = setup
    config = DmpoConfig(pairs=pairs, group_size=3, bptt_depth=3)  # replay from the very first snapshot
    rollout = collect(setup, config)
    trainer = trainer_for(setup, config)
    found = preference_pairs(rollout, pairs, pad_id=0)
    assert len(found) > 0
    seen = []
    write = policy.remember
    monkeypatch.setattr(policy, "remember", lambda stm, ids, mask: (seen.append(ids), write(stm, ids, mask))[1])
    for i in range(len(found)):
        row, k = found.rows[i], found.steps[i]
        seen.clear()
        stm = trainer.scoring_memory(rollout, row[None], k[None])
        assert stm.requires_grad
        # exactly the writes 0..k: the first interaction, then follow-ups 0..k-1
        assert len(seen) == int(k) + 1
        with torch.no_grad():
            chain = rollout.snapshots[row, 0][None]
            for j in range(int(k) + 1):
                ids, mask = trim_padding(rollout.written[row, j][None], rollout.written_mask[row, j][None])
                chain = write(chain, ids, mask)
        torch.testing.assert_close(stm.detach(), chain, atol=1e-5, rtol=1e-5)
        # none of them is step k's accepted interaction (query k + the accepted answer)
        query = rollout.queries[row, k][rollout.query_mask[row, k]].tolist()
        accepted = found.accepted[i][found.accepted_mask[i]].tolist()
        for ids in seen:
            tokens = ids[0].tolist()
            assert tokens[: len(query)] != query or tokens[len(query):][: len(accepted)] != accepted
        # and the one that holds it (write k + 1) makes a different memory
        with torch.no_grad():
            ids, mask = trim_padding(rollout.written[row, k + 1][None], rollout.written_mask[row, k + 1][None])
            assert not torch.allclose(write(chain, ids, mask), chain)


@pytest.mark.parametrize("pairs", ["sampled", "reset"])
def test_an_update_widens_the_margin_trains_the_memory_and_leaves_the_reference(setup, pairs):
    _, tokenizer, _ = setup
    policy = copy.deepcopy(setup[2])
    config = DmpoConfig(pairs=pairs, group_size=3, beta=0.5, minibatch_size=0, bptt_depth=2)
    rollout = collect(setup, config, policy=policy)
    trainer = trainer_for(setup, config, policy=policy)
    reference = {k: v.clone() for k, v in trainer.reference.state_dict().items()}
    memory = {n: p.clone() for n, p in policy.model.memory_attention.named_parameters()}
    optimizer = build_optimizer(policy, LearningRates(decoder=3e-3, encoder=3e-3, memory_attention=3e-3))
    found = preference_pairs(rollout, pairs, pad_id=tokenizer.pad_id)
    order = torch.arange(len(found))
    with torch.no_grad():
        before = trainer.minibatch_terms(rollout, found, order)
    assert float(before.margin) == pytest.approx(0.0, abs=1e-5)  # the policy is still the reference
    first = trainer.update(rollout, optimizer, torch.Generator().manual_seed(0))
    assert first["train/optimizer_steps"] == 1.0 and first["dmpo/pairs"] == len(found)
    assert first["dmpo/loss"] == pytest.approx(float(before.preference), abs=1e-5)
    for _ in range(3):
        trainer.update(rollout, optimizer, torch.Generator().manual_seed(0))
    with torch.no_grad():
        after = trainer.minibatch_terms(rollout, found, order)
    assert float(after.margin) > 0.05 and float(after.preference) < float(before.preference)
    assert all(torch.equal(reference[k], v) for k, v in trainer.reference.state_dict().items())
    # the loss reached the memory attention through the replayed writes
    assert any(not torch.equal(memory[n], p) for n, p in policy.model.memory_attention.named_parameters())


def test_the_reference_writes_its_own_memory_so_a_trained_memory_moves_the_log_ratio(setup):
    """Train only the memory: the reference decoder equals the policy's, so reading the policy's STM gives
    log-ratios of exactly 0 (no preference signal, no pull back); its own STM shows what the memory changed."""
    _, tokenizer, base = setup
    config = DmpoConfig(group_size=3)
    rollout = collect(setup, config)
    policy = copy.deepcopy(base)
    reference = copy.deepcopy(base.model).requires_grad_(False)
    with torch.no_grad():
        for p in policy.model.memory_attention.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    found = preference_pairs(rollout, "sampled", pad_id=tokenizer.pad_id)
    order = torch.arange(len(found))
    trainers = {mode: DmpoTrainer(policy, reference, DmpoConfig(group_size=3, reference_memory=mode),
                                  pad_id=tokenizer.pad_id, guard=NonFiniteGuard(3)) for mode in ("own", "policy")}
    with torch.no_grad():
        terms = {mode: trainer.minibatch_terms(rollout, found, order) for mode, trainer in trainers.items()}
    assert float(terms["policy"].accepted_logratio) == 0.0 and float(terms["policy"].rejected_logratio) == 0.0
    assert abs(float(terms["own"].accepted_logratio)) > 1e-3
    # the reference's STM for a pair: its own writes of the accepted history, from the episode's first snapshot
    row, k = found.rows[-1:], found.steps[-1:]
    own = trainers["own"].reference_memory(rollout, row, k, policy_stm=None)
    with torch.no_grad():
        chain = rollout.snapshots[row, 0]
        for j in range(int(k) + 1):
            ids, mask = trim_padding(rollout.written[row, j], rollout.written_mask[row, j])
            chain = reference.update_memory(chain, ids, mask)
    torch.testing.assert_close(own, chain, atol=1e-5, rtol=1e-5)
