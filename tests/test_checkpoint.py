import json
import os
import random

import numpy as np
import pytest
import torch

from rxmrl.atomic import atomic_dir
from rxmrl.errors import CheckpointError
from rxmrl.train.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from rxmrl.train.schedule import warmup_cosine
from rxmrl.train.tracking import Tracker, read_metrics


class TinyModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)

    def save_pretrained(self, folder):
        from safetensors.torch import save_file

        with atomic_dir(folder) as tmp:
            save_file(self.state_dict(), str(tmp / "model.safetensors"))
            (tmp / "config.json").write_text("{}")


def _train_step(model, optimizer):
    loss = model.linear(torch.randn(4, 3)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_resume_restores_weights_optimizer_and_rng_exactly(tmp_path):
    torch.manual_seed(0)
    model, critic = TinyModel(), torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(5)
    _train_step(model, optimizer)
    save_checkpoint(tmp_path, 1, model=model, modules={"critic": critic}, optimizers={"opt": optimizer},
                    generators={"data": gen}, state={"cursor": 7})
    # the continuation of the original run
    random.random(), np.random.rand(), torch.randint(0, 9, (1,), generator=gen)
    _train_step(model, optimizer)
    expected = [p.detach().clone() for p in model.parameters()]
    expected_draws = (random.random(), np.random.rand(), torch.randint(0, 1000, (3,), generator=gen).tolist())

    model2, critic2 = TinyModel(), torch.nn.Linear(2, 1)
    optimizer2 = torch.optim.AdamW(model2.parameters(), lr=0.1)
    gen2 = torch.Generator()
    state = load_checkpoint(latest_checkpoint(tmp_path), model=model2, modules={"critic": critic2},
                            optimizers={"opt": optimizer2}, generators={"data": gen2})
    assert state == {"step": 1, "cursor": 7}
    assert torch.equal(critic2.weight, critic.weight)
    random.random(), np.random.rand(), torch.randint(0, 9, (1,), generator=gen2)
    _train_step(model2, optimizer2)
    assert all(torch.equal(a, b) for a, b in zip(expected, model2.parameters()))
    assert (random.random(), np.random.rand(), torch.randint(0, 1000, (3,), generator=gen2).tolist()) == expected_draws


def test_keeps_only_the_newest_and_ignores_half_written_folders(tmp_path):
    model = TinyModel()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, model=model, keep=2)
    (tmp_path / "checkpoints" / ".step-00000004.tmp-dead").mkdir()  # a crash mid-write
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002", "step-00000003"]
    final = save_checkpoint(tmp_path, 3, model=model, name="final")
    assert sorted(os.listdir(final)) == ["config.json", "model.safetensors", "trainer_state.json", "trainer_state.pt"]
    assert json.loads((final / "trainer_state.json").read_text()) == {"step": 3}


def test_mismatched_weights_are_an_error(tmp_path):
    path = save_checkpoint(tmp_path, 1, model=TinyModel(), modules={"critic": torch.nn.Linear(2, 1)})
    with pytest.raises(CheckpointError, match="critic"):
        load_checkpoint(path, modules={"critic": torch.nn.Linear(3, 1)})
    with pytest.raises(CheckpointError, match="no modules named"):
        load_checkpoint(path, modules={"other": torch.nn.Linear(2, 1)})
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(tmp_path)


def test_atomic_dir_leaves_the_old_folder_when_writing_fails(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("new")
            raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["out"]


def test_warmup_cosine_schedule_values():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, warmup_steps=2, total_steps=6, min_ratio=0.0)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:3] == pytest.approx([0.5, 1.0, 1.0])
    assert lrs[4] == pytest.approx(0.5)  # halfway through the cosine
    assert lrs[6] == pytest.approx(0.0)


def test_tracker_writes_jsonl_and_tensorboard(tmp_path):
    with Tracker(tmp_path) as tracker:
        tracker.log({"reward/mean": torch.tensor(1.5), "value/loss": 0.25}, step=1)
        tracker.log({"reward/mean": 2.0, "value/loss": 0.1}, step=2)
    rows = read_metrics(tmp_path)
    assert [r["reward/mean"] for r in rows] == [1.5, 2.0]
    assert any((tmp_path / "tensorboard").iterdir())


class _Planted:
    """Unpickling this calls `_leave_marker`: what a planted trainer_state.pt would do with os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_leave_marker, (str(self.marker),))


def _leave_marker(path):
    with open(path, "w") as f:
        f.write("code ran")


def test_a_trainer_state_that_would_run_code_is_refused_not_executed(tmp_path):
    marker = tmp_path / "MARKER"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    torch.save({"step": 1, "state": _Planted(marker)}, folder / "trainer_state.pt")
    with pytest.raises(CheckpointError, match="refused to load.*could run code"):
        load_checkpoint(folder)
    assert not marker.exists()


def test_a_planted_mlm_head_file_is_refused_not_executed(tmp_path):
    from rxmrl.train.warmstart.mlm_head import MLMHead
    from rxmrl.train.warmstart.sft import load_mlm_head

    marker = tmp_path / "MARKER"
    torch.save({"modules": {"mlm_head": _Planted(marker)}}, tmp_path / "trainer_state.pt")
    with pytest.raises(CheckpointError, match="refused to load"):
        load_mlm_head(MLMHead(4, 8), tmp_path)
    assert not marker.exists()


def test_a_truncated_trainer_state_is_a_clear_error(tmp_path):
    folder = save_checkpoint(tmp_path, 1, model=TinyModel())
    data = (folder / "trainer_state.pt").read_bytes()
    (folder / "trainer_state.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(folder)


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    folder = save_checkpoint(tmp_path, 1, model=TinyModel())
    expected = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    random.random(), np.random.rand(), torch.rand(1)  # move every stream on
    load_checkpoint(folder)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == expected


def test_a_metrics_row_cut_by_a_kill_is_skipped_and_logging_goes_on(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    with Tracker(tmp_path, tensorboard=False) as tracker:
        tracker.log({"loss": 1.0}, 3)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 3]
