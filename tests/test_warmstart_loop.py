"""The shared supervised loop: it learns, it resumes bit-identically, it skips non-finite steps, it samples."""

import pytest
import torch

from rxmrl.atomic import atomic_dir
from rxmrl.errors import TrainingError
from rxmrl.train.checkpoint import list_checkpoints
from rxmrl.train.tracking import read_metrics
from rxmrl.train.warmstart.loop import LoopConfig, evaluate, train
from rxmrl.train.warmstart.sampling import EpochSampler
from rxmrl.train.warmstart.stage import SupervisedStage


class ToyModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)
        self.dropout = torch.nn.Dropout(0.2)  # draws from the global RNG: resume must restore it

    def forward(self, x):
        return self.linear(self.dropout(x))

    def save_pretrained(self, folder):
        from safetensors.torch import save_file

        with atomic_dir(folder) as tmp:
            save_file(self.state_dict(), str(tmp / "model.safetensors"))


class ToyBatch:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def to(self, device):
        return ToyBatch(self.x.to(device), self.y.to(device))


class ToyStage(SupervisedStage):
    """Regress y = 2x, with input noise from the stage generator and an extra trainable module."""

    name = "toy"

    def __init__(self, model):
        self.model = model
        self.head = torch.nn.Linear(4, 4)

    def trainable_parameters(self):
        return [*self.model.parameters(), *self.head.parameters()]

    def extra_modules(self):
        return {"head": self.head}

    def loss(self, batch, generator):
        noise = torch.randn(batch.x.shape, generator=generator) * 0.01
        pred = self.head(self.model(batch.x + noise))
        loss = (pred - batch.y).pow(2).mean()
        return loss, {"mse": float(loss.detach())}

    def eval(self, batch, generator):
        err = (self.head(self.model(batch.x)) - batch.y).pow(2)
        return {"lm_loss": (float(err.sum()), float(err.numel()))}


def _data(index):
    g = torch.Generator().manual_seed(index)
    x = torch.randn(8, 4, generator=g)
    return ToyBatch(x, 2 * x)


EVAL = [_data(10_000 + i) for i in range(2)]


def _run(tmp_path, steps=12, **kw):
    torch.manual_seed(0)
    model = ToyModel()
    stage = ToyStage(model)
    cfg = LoopConfig(steps=steps, lr=0.05, warmup_steps=2, grad_accum=2, save_every=4, log_every=2,
                     eval_every=6, **kw)
    metrics = train(stage, model=model, tokenizer=None, train_batch=_data, eval_batches=EVAL, config=cfg,
                    out_dir=tmp_path, seed=3, progress=False)
    return model, stage, metrics


def test_loop_reduces_held_out_loss_and_logs(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    before = evaluate(ToyStage(model), model, EVAL, seed=3)["lm_loss"]
    _, _, metrics = _run(tmp_path, steps=30)
    assert metrics["lm_loss"] < 0.5 * before
    assert metrics["perplexity"] == pytest.approx(torch.tensor(metrics["lm_loss"]).exp().item())
    rows = read_metrics(tmp_path)
    logged_steps = [r["step"] for r in rows if "train/loss" in r]
    assert logged_steps == list(range(2, 31, 2))
    assert [r["step"] for r in rows if "eval/lm_loss" in r] == [6, 12, 18, 24, 30]
    assert (tmp_path / "final" / "trainer_state.pt").is_file()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000024", "step-00000028"]


def test_resume_after_a_crash_gives_bit_identical_weights(tmp_path):
    reference, ref_stage, ref_metrics = _run(tmp_path / "straight")

    # the same run, killed while building step 10's micro-batches (after the step-8 checkpoint)
    def crashing(index):
        if index == 2 * 9 + 1:
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing after the last checkpoint survives
        return _data(index)

    torch.manual_seed(0)
    model = ToyModel()
    cfg = LoopConfig(steps=12, lr=0.05, warmup_steps=2, grad_accum=2, save_every=4, log_every=2, eval_every=6)
    with pytest.raises(KeyboardInterrupt):
        train(ToyStage(model), model=model, tokenizer=None, train_batch=crashing, eval_batches=EVAL, config=cfg,
              out_dir=tmp_path / "crashed", seed=3, progress=False)
    assert list_checkpoints(tmp_path / "crashed")[-1].name == "step-00000008"
    torch.manual_seed(123)  # a new process: different global RNG and fresh weights until the checkpoint loads
    resumed, res_stage, res_metrics = _run(tmp_path / "crashed")

    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(ref_stage.head.weight, res_stage.head.weight)
    assert res_metrics == ref_metrics


def test_finished_run_returns_its_metrics_and_weights_without_training(tmp_path):
    trained, _, metrics = _run(tmp_path)
    torch.manual_seed(7)
    fresh = ToyModel()
    stage = ToyStage(fresh)
    again = train(stage, model=fresh, tokenizer=None, train_batch=lambda i: pytest.fail("trained again"),
                  eval_batches=EVAL, config=LoopConfig(steps=12), out_dir=tmp_path, seed=3, progress=False)
    assert again == metrics
    assert torch.equal(fresh.linear.weight, trained.linear.weight)


class NanStage(ToyStage):
    def loss(self, batch, generator):
        loss, metrics = super().loss(batch, generator)
        return loss * float("nan"), metrics


def test_non_finite_steps_are_skipped_then_training_stops(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    before = model.linear.weight.detach().clone()
    cfg = LoopConfig(steps=10, lr=0.05, max_nonfinite=3, save_every=0)
    with pytest.raises(TrainingError, match="3 non-finite"):
        train(NanStage(model), model=model, tokenizer=None, train_batch=_data, eval_batches=EVAL, config=cfg,
              out_dir=tmp_path, seed=0, progress=False)
    assert torch.equal(model.linear.weight, before)  # no NaN update was applied


def test_epoch_sampler_visits_every_example_once_per_epoch_and_is_reproducible():
    sampler = EpochSampler(num_examples=10, batch_size=4, seed=1)
    seen = [i for b in range(5) for i in sampler.indices(b)]  # 20 draws = 2 epochs
    assert sorted(seen[:10]) == list(range(10)) and sorted(seen[10:]) == list(range(10))
    assert seen[:10] != seen[10:]  # a new order each epoch
    assert EpochSampler(10, 4, seed=1).indices(3) == sampler.indices(3)  # any batch, from scratch
    assert EpochSampler(10, 4, seed=2).indices(0) != sampler.indices(0)
    assert sorted(EpochSampler(10, 10, seed=2**63 - 1).indices(0)) == list(range(10))  # a huge seed is fine
