"""The collective helpers of `rxmrl.train.distributed` on 2 real gloo processes with tiny tensors: gradient
averaging (missing and frozen gradients), cross-rank advantage normalisation, agreed minibatch counts, the
weight-sync check; and the world-size guard of distributed checkpoints (no processes needed)."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from rxmrl.errors import CheckpointError, TrainingError
from rxmrl.train import distributed
from rxmrl.train.advantages import normalize_advantages
from rxmrl.train.checkpoint import load_run_checkpoint, rank_state, save_checkpoint

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, check: str) -> None:
    # the environment a launcher sets; init_from_env must pick gloo on CPU
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    assert distributed.init_from_env("cpu")
    try:
        assert torch.distributed.get_backend() == "gloo"
        assert (distributed.rank(), distributed.world_size()) == (rank, WORLD)
        globals()[check](rank)
    finally:
        distributed.shutdown()


def _spawn(check: str) -> None:
    mp.spawn(_worker, args=(_free_port(), check), nprocs=WORLD, join=True)


# ---- checks, run on every rank -------------------------------------------------------------------------------

def _check_average_gradients(rank: int) -> None:
    both = torch.nn.Parameter(torch.zeros(2, 3))
    only_rank0 = torch.nn.Parameter(torch.zeros(4))  # e.g. an MoE expert that got tokens on rank 0 only
    frozen = torch.nn.Parameter(torch.zeros(2), requires_grad=False)
    unused = torch.nn.Parameter(torch.zeros(3))  # no gradient anywhere: must stay None (AdamW skips it)
    both.grad = torch.full((2, 3), float(rank + 1)) * torch.arange(6.0).view(2, 3)  # rank0: x, rank1: 2x
    if rank == 0:
        only_rank0.grad = torch.tensor([2.0, 4.0, 6.0, 8.0])
    distributed.average_gradients([both, only_rank0, frozen, unused])
    assert torch.equal(both.grad, 1.5 * torch.arange(6.0).view(2, 3))
    assert torch.equal(only_rank0.grad, torch.tensor([1.0, 2.0, 3.0, 4.0]))  # a missing gradient counts as 0
    assert frozen.grad is None and unused.grad is None


def _check_average_gradients_in_small_buckets(rank: int) -> None:
    distributed.BUCKET_ELEMENTS = 3  # every parameter its own bucket, one split across the limit
    params = [torch.nn.Parameter(torch.zeros(n)) for n in (2, 5, 1)]
    for p in params:
        p.grad = torch.arange(float(p.numel())) + 10 * rank
    distributed.average_gradients(params)
    for p in params:
        assert torch.equal(p.grad, torch.arange(float(p.numel())) + 5)


def _advantage_rows(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(100 + rank)
    advantages = torch.randn(3 + rank, 2, generator=gen, dtype=torch.float64)  # [B_r, T]: different B per rank
    active = torch.rand(3 + rank, 2, generator=gen) > 0.3
    active[0] = True
    return advantages, active


def _check_normalisation_matches_one_big_batch(rank: int) -> None:
    advantages, active = _advantage_rows(rank)
    everything = [_advantage_rows(r) for r in range(WORLD)]
    all_adv = torch.cat([a for a, _ in everything])
    all_active = torch.cat([m for _, m in everything])
    offset = sum(_advantage_rows(r)[0].shape[0] for r in range(rank))
    for mode in ("batch", "step"):
        mine = normalize_advantages(advantages, active, mode, reduce=distributed.all_reduce_sum)
        whole = normalize_advantages(all_adv, all_active, mode)
        torch.testing.assert_close(mine, whole[offset : offset + advantages.shape[0]], rtol=0, atol=1e-12)
        alone = normalize_advantages(advantages, active, mode)
        assert not torch.allclose(alone, mine)  # the reduction really changed the statistics


def _check_agreement(rank: int) -> None:
    assert distributed.all_agree(True)
    assert not distributed.all_agree(rank == 0)
    assert distributed.all_max(rank * 7) == 7
    order = torch.arange(5) if rank == 0 else torch.arange(1)
    parts = distributed.split_agreed(order, 2)  # rank 0 needs ceil(5/2) = 3 minibatches: so does rank 1
    assert len(parts) == 3
    assert [len(p) for p in parts] == ([2, 2, 1] if rank == 0 else [1, 0, 0])
    assert torch.equal(torch.cat(parts), order)
    assert distributed.broadcast_object({"reward": rank + 0.5}) == {"reward": 0.5}
    gathered = distributed.gather_objects(rank * 10)
    assert gathered == ([0, 10] if rank == 0 else None)
    mine = {"reward/mean": 1.0 + 2 * rank, "only_here": 5.0} if rank == 0 else {"reward/mean": 3.0, "other": 7.0}
    logged = distributed.mean_metrics(mine)
    assert logged == ({"reward/mean": 2.0, "only_here": 5.0} if rank == 0 else mine)


def _check_sync(rank: int) -> None:
    os.environ[distributed.CHECK_SYNC_ENV] = "1"
    torch.manual_seed(rank)  # different initial weights per rank
    module = torch.nn.Linear(3, 2)
    distributed.broadcast_module(module)
    distributed.check_in_sync(module.parameters(), "after broadcast")
    with torch.no_grad():
        module.bias[1] += 1e-7 if rank == 1 else 0.0  # a single differing element on one rank
    with pytest.raises(TrainingError, match="rank 1 differ"):
        distributed.check_in_sync(module.parameters(), "after perturbation")


def _check_mrl_update_with_uneven_answers_and_a_nan(rank: int) -> None:
    from test_train_update import make_policy, rollout_for

    from rxmrl.data import synthesize_episodes, train_tokenizer
    from rxmrl.train.mrl_config import ImpoConfig
    from rxmrl.train.mrl_trainer import MrlTrainer, build_optimizer
    from rxmrl.train.optim_config import LearningRates

    os.environ[distributed.CHECK_SYNC_ENV] = "1"
    texts = [t for e in synthesize_episodes(60, steps=2, strategy="cumulative", seed=2) for i in e.interactions
             for t in (i.query, i.answer)]
    tokenizer = train_tokenizer(texts, 300)
    policy = make_policy(tokenizer)  # rxt-tiny: MoE experts without tokens get no gradient on a rank
    episodes = synthesize_episodes(8, steps=2, strategy="cumulative", seed=10 + rank)  # each rank its own
    trainer = MrlTrainer(policy, ImpoConfig(advantage="impo", minibatch_size=4), reduce=distributed.all_reduce_sum,
                         grad_hook=distributed.average_gradients, agree=distributed.all_agree,
                         split=distributed.split_agreed)
    optimizer = build_optimizer(policy, LearningRates(1e-2, 1e-2, 1e-2, 1e-2))
    rollout = rollout_for(policy, tokenizer, episodes, seed=rank)
    if rank == 1:  # one answer with a signal against rank 0's 16: rank 1 joins 3 steps with zero gradients
        rollout.rewarded[:] = False
        rollout.rewarded[0, 0] = True
    before = [p.detach().clone() for p in policy.parameters()]
    metrics = trainer.update(rollout, optimizer, torch.Generator().manual_seed(rank))
    assert metrics["train/optimizer_steps"] == (4.0 if rank == 0 else 1.0)
    distributed.check_in_sync(list(policy.parameters()), "after an uneven update")
    assert any(not torch.equal(a, p) for a, p in zip(before, policy.parameters()))

    rollout = rollout_for(policy, tokenizer, episodes, seed=5 + rank)
    if rank == 1:
        rollout.rewards[:] = float("nan")  # every reward of one rank broken: rank 0's episodes still train
    before = [p.detach().clone() for p in policy.parameters()]
    metrics = trainer.update(rollout, optimizer, torch.Generator().manual_seed(rank))
    assert "train/update_skipped" not in metrics and trainer.guard.total == 0
    assert metrics["train/nonfinite_samples"] == (0.0 if rank == 0 else float(rollout.batch_size))
    distributed.check_in_sync(list(policy.parameters()), "after an update with one rank's rewards broken")
    assert any(not torch.equal(a, p) for a, p in zip(before, policy.parameters()))

    rollout.rewards[:] = float("nan")  # broken on every rank: the update is skipped on both
    before = [p.detach().clone() for p in policy.parameters()]
    metrics = trainer.update(rollout, optimizer, torch.Generator().manual_seed(rank))
    assert metrics.get("train/update_skipped") == 1.0 and trainer.guard.total == 1
    assert all(torch.equal(a, p) for a, p in zip(before, policy.parameters()))


# ---- tests ---------------------------------------------------------------------------------------------------

CHECKS = [
    "_check_average_gradients",  # missing gradients count as 0, frozen/unused ones stay None
    "_check_average_gradients_in_small_buckets",
    "_check_normalisation_matches_one_big_batch",
    "_check_agreement",
    "_check_sync",
    "_check_mrl_update_with_uneven_answers_and_a_nan",
]


def _run_checks(rank: int) -> None:
    for check in CHECKS:
        globals()[check](rank)


def test_collectives_on_two_gloo_processes():
    # one pair of processes runs every check (starting processes is the slow part)
    _spawn("_run_checks")


def test_single_process_helpers_are_no_ops():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert not distributed.init_from_env("cpu")  # no WORLD_SIZE in the test environment
    p = torch.nn.Parameter(torch.zeros(2))
    p.grad = torch.ones(2)
    distributed.average_gradients([p])
    assert torch.equal(p.grad, torch.ones(2))
    assert distributed.all_agree(False) is False
    assert [len(x) for x in distributed.split_agreed(torch.arange(5), 2)] == [2, 2, 1]


def test_distributed_checkpoint_refuses_another_world_size(tmp_path):
    class Model(torch.nn.Linear):
        def save_pretrained(self, folder):
            folder.mkdir(parents=True)
            from safetensors.torch import save_file

            save_file(self.state_dict(), str(folder / "model.safetensors"))

    model = Model(2, 2)
    generator = torch.Generator().manual_seed(3)
    path = save_checkpoint(tmp_path, 1, model=model, generators={"g": generator},
                           rank_states=[rank_state(generators={"g": generator})] * 2)
    assert sorted(p.name for p in (path / "ranks").iterdir()) == ["rank-0.pt", "rank-1.pt"]
    with pytest.raises(CheckpointError, match="written by a run of 2 process"):
        load_run_checkpoint(path, model=model, generators={"g": generator})


def test_epoch_batches_are_dealt_out_so_ranks_share_one_pass():
    from types import SimpleNamespace

    from rxmrl.recipes.curriculum import epoch_batches

    pool = list(range(40))
    stage = SimpleNamespace(batch_size=8, episodes_per_epoch=24)  # 12 batches of 2 episodes x 4 rollouts
    single = epoch_batches(pool, stage, 4, seed=0, stage_index=1, epoch=2)
    assert len(single) == 12
    ranks = [epoch_batches(pool, stage, 4, seed=0, stage_index=1, epoch=2, rank=r, world=2) for r in range(2)]
    assert [len(b) for b in ranks] == [6, 6]
    assert ranks[0] == single[0::2] and ranks[1] == single[1::2]
    # more ranks than batches: each still gets one (the epoch grows to one batch per rank)
    small = SimpleNamespace(batch_size=8, episodes_per_epoch=2)
    spread = [epoch_batches(pool, small, 4, seed=0, stage_index=0, epoch=0, rank=r, world=3) for r in range(3)]
    assert [len(b) for b in spread] == [1, 1, 1]
    assert len({tuple(b[0]) for b in spread}) == 3  # different episodes on every rank
