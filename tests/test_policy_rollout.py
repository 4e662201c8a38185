"""The policy and rollout collection on rxt-tiny: stored log-probs and STM snapshots are what the update
recomputes, resets touch only their rows, teacher forcing writes the reference, the critic reads the STM."""

import pytest
import torch

from rxmrl.data import synthesize_episodes, train_tokenizer
from rxmrl.env.episode_loop import make_env
from rxmrl.model import RxT, load_preset
from rxmrl.model.sampling import GREEDY, Sampling
from rxmrl.policy import CriticConfig, RxTPolicy
from rxmrl.tokens import join_padded, trim_padding
from rxmrl.train.guard import tolerant_reward
from rxmrl.train.memory_replay import replay_memory
from rxmrl.train.rollout import RolloutSettings, collect_rollout, end_at_first_pad


def word_overlap(batch):
    """A cheap deterministic reward: 10 x the share of reference words the answer contains."""
    out = []
    for generated, reference in zip(batch.generated, batch.reference):
        ref = set(reference.lower().split())
        out.append(10.0 * len(ref & set(generated.lower().split())) / max(1, len(ref)))
    return out


@pytest.fixture(scope="module")
def setup():
    episodes = synthesize_episodes(8, steps=3, strategy="cumulative", split="train", seed=1)
    texts = [t for e in synthesize_episodes(60, steps=3, strategy="cumulative", seed=2) for i in e.interactions
             for t in (i.query, i.answer)]
    tokenizer = train_tokenizer(texts, 300)
    torch.manual_seed(0)
    model = RxT(load_preset("rxt-tiny", vocab_size=tokenizer.vocab_size, max_seq_len=160)).eval()
    policy = RxTPolicy(model, CriticConfig(dim=16, layers=1, heads=2, ffn_dim=32, with_interaction=True),
                       pad_id=tokenizer.pad_id).eval()
    return episodes, tokenizer, policy


def collect(setup, *, teacher_forcing=False, start_stm=None, reset=None, seed=0, episodes=None, keep=1,
            reward_intermediate=True, **settings):
    all_episodes, tokenizer, policy = setup
    episodes = episodes or all_episodes
    env_reward, _ = tolerant_reward(word_overlap, "word_overlap")
    env = make_env(episodes, tokenizer, env_reward, steps=3, seed=seed, max_query_len=40, max_answer_len=13,
                   max_interaction_len=160, reward_intermediate=reward_intermediate)
    settings = RolloutSettings(max_new_tokens=12, teacher_forcing=teacher_forcing, max_interaction_len=160, **settings)
    return collect_rollout(policy, env, settings, pad_id=tokenizer.pad_id, eos_id=tokenizer.eos_id,
                           start_stm=start_stm, reset=reset,
                           memory_generator=torch.Generator().manual_seed(seed),
                           sample_generator=torch.Generator().manual_seed(seed + 1), keep_samples=keep)


def test_rollout_shapes_and_contents(setup):
    rollout = collect(setup)
    batch, steps = rollout.batch_size, rollout.steps
    assert (batch, steps) == (8, 3)
    assert rollout.snapshots.shape[:2] == (8, 4)  # before each of the 4 writes
    assert rollout.written.shape[:2] == (8, 4)
    assert rollout.rewarded.all()  # cumulative episodes reward every step
    assert ((rollout.rewards >= 0) & (rollout.rewards <= 10)).all()
    assert rollout.reset.all()  # no carried memory: every sample starts fresh
    assert sorted(rollout.group_ids.tolist()) == list(range(8))  # 8 distinct episodes
    assert (rollout.logprobs[~rollout.answer_mask] == 0).all()
    assert (rollout.logprobs[rollout.answer_mask] < 0).all()
    assert rollout.samples[0]["steps"][0]["reference"]


def test_logprobs_and_memory_recomputed_before_any_update_equal_the_stored_ones(setup):
    _, _, policy = setup
    rollout = collect(setup)
    items = torch.arange(rollout.batch_size * rollout.steps)
    rows, steps = items // rollout.steps, items % rollout.steps
    for depth in (1, 2, 3):
        stm, previous = replay_memory(policy.remember, rollout, rows, steps, depth)
        torch.testing.assert_close(stm, rollout.snapshots[rows, steps + 1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(previous, rollout.snapshots[rows, steps], atol=1e-5, rtol=1e-5)
    query, query_mask = trim_padding(rollout.queries[rows, steps], rollout.query_mask[rows, steps])
    answer, answer_mask = trim_padding(rollout.answers[rows, steps], rollout.answer_mask[rows, steps])
    context, context_mask = trim_padding(rollout.written[rows, steps], rollout.written_mask[rows, steps])
    with torch.no_grad():
        out = policy.evaluate(query, query_mask, answer, answer_mask, stm, context, context_mask)
    stored = rollout.logprobs[rows, steps][:, : answer.shape[1]]
    torch.testing.assert_close(out.logprobs, stored, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.values, rollout.values[rows, steps], atol=1e-5, rtol=1e-5)


def test_the_rollouts_reads_are_its_layout_by_the_index_rule(setup):
    """Follow-up k read the STM after writes 0..k (snapshot k + 1), and the interaction written just before it is
    write k; the reads the update uses say so, for any mix of rows and steps, with padding columns dropped."""
    rollout = collect(setup, teacher_forcing=True)  # written interactions differ from the answers
    rows, steps = rollout.locate(torch.tensor([5, 0, 23, 7, 12]))
    assert rows.tolist() == [1, 0, 7, 2, 4] and steps.tolist() == [2, 0, 2, 1, 0]
    assert torch.equal(rollout.stm_read_by(rows, steps), rollout.snapshots[rows, steps + 1])
    assert torch.equal(rollout.stm_before(rows, steps), rollout.snapshots[rows, steps])
    for read, (ids, mask) in ((rollout.written_before, (rollout.written, rollout.written_mask)),
                              (rollout.query, (rollout.queries, rollout.query_mask)),
                              (rollout.answer, (rollout.answers, rollout.answer_mask))):
        got, got_mask = read(rows, steps)
        width = int(mask[rows, steps].sum(1).max())
        assert got.shape[1] == width and torch.equal(got, ids[rows, steps][:, :width])
        assert torch.equal(got_mask, mask[rows, steps][:, :width])
    ids, mask = rollout.interaction(rows, steps + 1)  # what follow-up k's answer led to (the reference here)
    assert torch.equal(ids[mask], rollout.written[rows, steps + 1][rollout.written_mask[rows, steps + 1]])
    tensors = [rollout.snapshots, rollout.rewards, rollout.rewarded, rollout.values, rollout.reset,
               rollout.group_ids, rollout.answers, rollout.references, *rollout.components.values()]
    assert {t.device for t in tensors} == {rollout.logprobs.device}  # one device for all


def test_memory_replay_carries_gradients_to_the_memory_system(setup):
    _, _, policy = setup
    rollout = collect(setup)
    rows, steps = torch.tensor([0, 1]), torch.tensor([2, 0])
    policy.zero_grad(set_to_none=True)
    stm, _ = replay_memory(policy.remember, rollout, rows, steps, depth=2)
    stm.pow(2).sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.model.memory_attention.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.model.encoder.parameters())
    policy.zero_grad(set_to_none=True)


def test_random_resets_touch_only_their_samples(setup):
    episodes, _, policy = setup
    carried = torch.full((8, *policy.initial_state(1).shape[1:]), 0.5)
    reset = torch.tensor([True, False, True, False, False, False, True, False])
    rollout = collect(setup, start_stm=carried, reset=reset)
    start = rollout.snapshots[:, 0]
    assert torch.equal(start[~reset], carried[~reset])
    assert not torch.isclose(start[reset], carried[reset]).any()
    assert rollout.reset.tolist() == reset.tolist()


@pytest.mark.parametrize("reward_intermediate", [True, False])
def test_long_range_intermediate_rewards_can_be_switched_off(setup, reward_intermediate):
    episodes = synthesize_episodes(4, steps=3, strategy="long_range", split="train", seed=3)
    rollout = collect(setup, episodes=episodes, reward_intermediate=reward_intermediate)
    assert rollout.rewarded[:, -1].all()  # the recall is always rewarded
    assert bool(rollout.rewarded[:, :-1].all()) == reward_intermediate
    assert bool(rollout.rewarded[:, :-1].any()) == reward_intermediate
    if not reward_intermediate:
        assert (rollout.rewards[:, :-1] == 0).all()


def test_teacher_forcing_writes_the_reference_answer(setup):
    _, tokenizer, _ = setup
    rollout = collect(setup, teacher_forcing=True, keep=8)
    differs = 0
    for k in range(rollout.steps):
        for row in range(rollout.batch_size):
            written = rollout.written[row, k + 1][rollout.written_mask[row, k + 1]].tolist()
            query = rollout.queries[row, k][rollout.query_mask[row, k]].tolist()
            assert written[: len(query)] == query and written[-1] == tokenizer.eos_id
            # after the query comes the (length-capped) reference answer, whatever the policy generated
            tail = tokenizer.decode(written[len(query):])
            assert tail and rollout.samples[row]["steps"][k]["reference"].startswith(tail)
            differs += written[len(query):] != rollout.answers[row, k][rollout.answer_mask[row, k]].tolist()
    assert differs > 0


def test_group_rollouts_of_one_episode_share_a_group_id(setup):
    episodes, _, _ = setup
    grouped = [e for e in episodes[:2] for _ in range(4)]
    rollout = collect(setup, episodes=grouped)
    ids = rollout.group_ids.tolist()
    assert len(set(ids)) == 2 and all(ids.count(i) == 4 for i in set(ids))


def test_branching_gives_every_rollout_of_an_episode_the_same_memory(setup):
    episodes, _, policy = setup
    grouped = [e for e in episodes[:2] for _ in range(4)]
    carried = torch.randn(8, *policy.initial_state(1).shape[1:])
    reset = torch.tensor([False, True] * 4)
    hot = Sampling(temperature=1.5)
    plain = collect(setup, episodes=grouped, start_stm=carried, reset=reset, sampling=hot)
    rollout = collect(setup, episodes=grouped, start_stm=carried, reset=reset, sampling=hot, branch=True)
    ids = rollout.group_ids
    for group in ids.unique():
        rows = (ids == group).nonzero().squeeze(1)
        for j in range(rollout.steps + 1):  # the STM before every write, and what is written
            assert all(torch.equal(rollout.snapshots[rows[0], j], rollout.snapshots[r, j]) for r in rows)
            assert all(torch.equal(rollout.written[rows[0], j], rollout.written[r, j]) for r in rows)
        # each step's written interaction is one of the group's own answers to that step
        for k in range(rollout.steps):
            answer = rollout.written[rows[0], k + 1][rollout.written_mask[rows[0], k + 1]].tolist()
            query_len = int(rollout.query_mask[rows[0], k].sum())
            options = [rollout.answers[r, k][rollout.answer_mask[r, k]].tolist() for r in rows]
            assert any(answer[query_len:][: len(o)] == o for o in options)  # the env may end it with EOS
    # sampled answers still differ within a group; without branching the memories drift apart
    assert any(not torch.equal(rollout.answers[0, k], rollout.answers[r, k]) for k in range(3) for r in range(1, 4))
    first = (ids == ids[0]).nonzero().squeeze(1)
    assert not all(torch.equal(plain.snapshots[first[0], 2], plain.snapshots[r, 2]) for r in first)


def test_critic_reads_the_stm(setup):
    _, _, policy = setup
    torch.manual_seed(1)
    for p in policy.critic.value_head.parameters():  # the zero-initialised head would hide any dependence
        torch.nn.init.normal_(p)
    query = torch.tensor([[2, 5, 40, 41, 6]])
    mask = torch.ones_like(query, dtype=torch.bool)
    stm = policy.initial_state(1)
    a = policy.value(query, mask, stm)
    b = policy.value(query, mask, stm + 1.0)
    assert a.shape == (1,) and not torch.isclose(a, b)
    torch.nn.init.zeros_(policy.critic.value_head.weight)
    torch.nn.init.zeros_(policy.critic.value_head.bias)


def test_a_sampled_pad_ends_the_answer():
    answer = torch.tensor([[7, 0, 8, 3], [7, 8, 3, 0]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    ids, kept = end_at_first_pad(answer, mask, pad_id=0)
    assert kept.tolist() == [[True, True, False, False], [True, True, True, False]]
    assert ids.tolist() == [[7, 0, 0, 0], [7, 8, 3, 0]]


def test_join_padded_concatenates_real_tokens():
    left = torch.tensor([[1, 2, 0], [3, 0, 0]])
    right = torch.tensor([[4, 0], [5, 6]])
    ids, mask = join_padded(left, left != 0, right, right != 0, pad_id=0)
    assert ids.tolist() == [[1, 2, 4], [3, 5, 6]]
    assert mask.all()
    ids, mask = join_padded(left, left != 0, right, right != 0, pad_id=0, max_len=2)
    assert ids.tolist() == [[1, 2], [3, 5]]


@pytest.mark.slow
def test_compiled_decoding_collects_the_eager_rollout(setup):
    """`RolloutSettings.compile` only changes how decode steps run: greedy answers and everything stored agree."""
    eager = collect(setup, sampling=GREEDY)
    compiled = collect(setup, sampling=GREEDY, compile=True)
    assert torch.equal(compiled.answers, eager.answers) and torch.equal(compiled.answer_mask, eager.answer_mask)
    torch.testing.assert_close(compiled.logprobs, eager.logprobs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(compiled.snapshots, eager.snapshots)
    torch.testing.assert_close(compiled.rewards, eager.rewards, equal_nan=True)
