"""The IMPO update on a real rxt-tiny rollout: it learns, respects the unfreeze groups, skips non-finite
updates without touching the weights, and the first minibatch sees the rollout policy (ratio 1, KL 0)."""

import copy
import math

import pytest
import torch

from rxmrl.data import synthesize_episodes, train_tokenizer
from rxmrl.env.episode_loop import make_env
from rxmrl.model import RxT, load_preset
from rxmrl.policy import CriticConfig, RxTPolicy
from rxmrl.train.guard import tolerant_reward
from rxmrl.train.mrl_config import ImpoConfig
from rxmrl.train.mrl_trainer import MrlTrainer, build_optimizer, rollout_metrics
from rxmrl.train.optim_config import LearningRates
from rxmrl.train.rollout import RolloutSettings, collect_rollout
from rxmrl.train.unfreeze import apply_unfreeze, parameter_groups, trainable_parameter_ids


@pytest.fixture(scope="module")
def parts():
    texts = [t for e in synthesize_episodes(60, steps=2, strategy="cumulative", seed=2) for i in e.interactions
             for t in (i.query, i.answer)]
    tokenizer = train_tokenizer(texts, 300)
    episodes = synthesize_episodes(8, steps=2, strategy="cumulative", seed=1)
    return tokenizer, episodes


def make_policy(tokenizer, seed=0):
    torch.manual_seed(seed)
    model = RxT(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size, max_seq_len=160)).eval()
    return RxTPolicy(model, CriticConfig(dim=16, layers=1, heads=2, ffn_dim=32), pad_id=tokenizer.pad_id).eval()


def rollout_for(policy, tokenizer, episodes, reward=None, seed=0):
    reward = reward or (lambda b: [float(len(g)) for g in b.generated])
    env_reward, _ = tolerant_reward(reward, "reward")
    env = make_env(episodes, tokenizer, env_reward, steps=2, seed=seed, max_query_len=40, max_answer_len=9,
                   max_interaction_len=160)
    return collect_rollout(policy, env, RolloutSettings(max_new_tokens=8), pad_id=tokenizer.pad_id,
                           eos_id=tokenizer.eos_id, memory_generator=torch.Generator().manual_seed(seed),
                           sample_generator=torch.Generator().manual_seed(seed + 1))


def test_parameter_groups_partition_the_model_and_unfreeze_levels_nest(parts):
    tokenizer, _ = parts
    model = make_policy(tokenizer).model
    groups = parameter_groups(model)
    ids = [id(p) for g in groups.values() for p in g]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    sizes = [len(trainable_parameter_ids(model, g)) for g in ("memory_attention", "decoder_cross_attention",
                                                               "encoder", "everything")]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    apply_unfreeze(model, "decoder_cross_attention")
    cross = {id(p) for p in model.decoder_memory_cross_attention_parameters()}
    for name, p in model.named_parameters():
        expected = name.startswith("memory_attention") or name.startswith("stm_init") or id(p) in cross
        assert p.requires_grad == expected, name
    apply_unfreeze(model, "everything")
    assert all(p.requires_grad for p in model.parameters())


def test_first_minibatch_sees_the_rollout_policy(parts):
    tokenizer, episodes = parts
    policy = make_policy(tokenizer)
    rollout = rollout_for(policy, tokenizer, episodes)
    trainer = MrlTrainer(policy, ImpoConfig(advantage="impo"))
    items = torch.arange(rollout.batch_size * rollout.steps)
    terms = trainer.minibatch_terms(rollout, items, torch.ones(8, 2), torch.zeros(8, 2))
    assert terms.kl_step.item() == pytest.approx(0.0, abs=1e-6)
    assert terms.clip_fraction.item() == 0.0
    # ratio 1 everywhere: the surrogate is -mean(A) = -1
    assert terms.policy.item() == pytest.approx(-1.0, abs=1e-5)


LOW = 150  # the reward below pays for answer tokens with ids under this


def low_ids(batch):
    """10 x the share of the answer's tokens (EOS and padding aside) whose id is below LOW: dense and graded."""
    ids = batch.generated_ids
    real = (ids != batch.pad_id) & (ids != 3)
    low = (ids < LOW) & real
    return (10.0 * low.sum(1) / real.sum(1).clamp(min=1)).tolist()


def test_update_raises_the_reward_it_is_given(parts):
    """After a few updates the policy puts more probability on what the reward pays for."""
    tokenizer, episodes = parts
    assert tokenizer.eos_id == 3
    policy = make_policy(tokenizer)

    def low_mass():
        # exact probability of a low id as the first answer token, averaged over the queries (no sampling noise)
        rollout = rollout_for(policy, tokenizer, episodes, reward=low_ids, seed=99)
        query, mask = rollout.queries[:, 0], rollout.query_mask[:, 0]
        one = torch.full((len(query), 1), 10)
        with torch.no_grad():
            logits = policy.model.answer_logprobs(query, mask, one, torch.ones_like(one, dtype=torch.bool),
                                                  rollout.snapshots[:, 1], return_logits=True).logits
        return logits[:, 0].softmax(-1)[:, 7:LOW].sum(-1).mean().item()

    before = low_mass()
    config = ImpoConfig(advantage="impo", minibatch_size=8, update_epochs=2, kl_step_coef=0.0, entropy_coef=0.0)
    trainer = MrlTrainer(policy, config)
    optimizer = build_optimizer(policy, LearningRates(decoder=3e-3, encoder=3e-3, memory_attention=3e-3, critic=3e-3))
    generator = torch.Generator().manual_seed(0)
    for seed in range(10):
        metrics = trainer.update(rollout_for(policy, tokenizer, episodes, reward=low_ids, seed=seed), optimizer,
                                 generator)
        assert metrics["train/optimizer_steps"] == 4.0  # 16 answers / 8 per minibatch x 2 epochs
    after = low_mass()
    assert after > before + 0.1, (before, after)  # about 0.48 -> 0.6 on this seed


def test_frozen_groups_do_not_change(parts):
    tokenizer, episodes = parts
    policy = make_policy(tokenizer)
    apply_unfreeze(policy.model, "memory_attention")
    before = copy.deepcopy(policy.state_dict())
    rollout = rollout_for(policy, tokenizer, episodes, reward=lambda b: [float(len(g)) for g in b.generated])
    trainer = MrlTrainer(policy, ImpoConfig(minibatch_size=0))
    trainer.update(rollout, build_optimizer(policy, LearningRates(1e-2, 1e-2, 1e-2, 1e-2)), torch.Generator())
    after = policy.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(k.startswith("model.memory_attention") for k in changed)
    assert any(k.startswith("critic.") for k in changed)
    assert not any(k.startswith(("model.decoder", "model.encoder", "model.embedding")) for k in changed)


def test_a_non_finite_reward_leaves_out_its_episode_and_the_rest_trains(parts):
    tokenizer, episodes = parts
    policy = make_policy(tokenizer)
    rollout = rollout_for(policy, tokenizer, episodes, reward=lambda b: [math.nan] + [float(len(g)) for g in
                                                                          b.generated[1:]])
    assert rollout.nonfinite and torch.isnan(rollout.rewards).sum() == 2  # one NaN per step
    before = copy.deepcopy(policy.state_dict())
    trainer = MrlTrainer(policy, ImpoConfig(advantage="impo", minibatch_size=0))
    metrics = trainer.update(rollout, build_optimizer(policy, LearningRates(1e-2, 1e-2, 1e-2, 1e-2)),
                             torch.Generator())
    assert metrics["train/nonfinite_samples"] == 1.0 and "train/update_skipped" not in metrics
    assert trainer.guard.total == 0 and metrics["train/optimizer_steps"] == 1.0
    assert math.isfinite(metrics["policy/loss"])
    assert any(not torch.equal(v, policy.state_dict()[k]) for k, v in before.items())
    # in group mode the episode's other rollouts go too: their baseline held the broken one
    group = MrlTrainer(policy, ImpoConfig(advantage="group", group_size=2, minibatch_size=0))
    rollout.group_ids = torch.arange(rollout.batch_size) // 2
    assert group._nonfinite_rows(rollout).tolist() == [True, True] + [False] * (rollout.batch_size - 2)


def test_non_finite_rewards_and_losses_skip_the_update_and_leave_weights_alone(parts):
    tokenizer, episodes = parts
    policy = make_policy(tokenizer)
    rollout = rollout_for(policy, tokenizer, episodes, reward=lambda b: [math.nan] * len(b))
    before = copy.deepcopy(policy.state_dict())
    trainer = MrlTrainer(policy, ImpoConfig(max_consecutive_nonfinite=3))
    optimizer = build_optimizer(policy, LearningRates())
    metrics = trainer.update(rollout, optimizer, torch.Generator())
    assert metrics["train/update_skipped"] == 1.0 and trainer.guard.total == 1
    assert all(torch.equal(v, policy.state_dict()[k]) for k, v in before.items())
    # a loss that turns non-finite (here: a NaN in a stored STM snapshot) is skipped minibatch by minibatch
    clean = rollout_for(policy, tokenizer, episodes)
    clean.snapshots[0, 0, 0, 0, 0] = math.nan
    trainer.config.minibatch_size = 0
    metrics = trainer.update(clean, optimizer, torch.Generator())
    assert metrics["train/optimizer_steps"] == 0.0 and trainer.guard.total == 2
    assert all(torch.equal(v, policy.state_dict()[k]) for k, v in before.items())
    assert "reward/mean" in rollout_metrics(clean)


def test_zero_advantages_leave_the_policy_exactly_unchanged(parts):
    """The KL term anchors at each answer's first visit: float noise between the rollout's cached decoding and
    the update's teacher-forced pass must not become (Adam-amplified) steps when there is nothing to learn."""
    tokenizer, episodes = parts
    policy = make_policy(tokenizer)
    rollout = rollout_for(policy, tokenizer, episodes, reward=lambda b: [5.0] * len(b))
    before = copy.deepcopy(policy.model.state_dict())
    config = ImpoConfig(advantage="impo", minibatch_size=8, update_epochs=1, kl_step_coef=0.5, entropy_coef=0.0,
                        memory_coef=0.0, aux_coef=0.0)
    trainer = MrlTrainer(policy, config)
    metrics = trainer.update(rollout, build_optimizer(policy, LearningRates(1e-2, 1e-2, 1e-2, 1e-2)), torch.Generator())
    assert metrics["train/optimizer_steps"] == 2.0
    assert 0 < metrics["policy/rollout_logprob_gap"] < 1e-4  # cached vs teacher-forced: float noise only
    assert all(torch.equal(v, policy.model.state_dict()[k]) for k, v in before.items())
