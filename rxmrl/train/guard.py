"""Non-finite handling: an update whose loss or gradient is NaN/inf is skipped, counted, and the run goes on.

One bad batch (a reward plug-in that returned NaN, an overflow) must not end a long run, but a run that keeps
producing them is broken: after `max_consecutive` skipped updates in a row the trainer stops with
`TrainingError`, naming the last good state. That is not the current one: skipped updates leave the weights
alone, but the last update that *was* applied may be what broke them (a learning rate of 1e10 gives finite,
useless weights whose every later loss is NaN). So the last good state is the newest checkpoint written
before that update (`checkpoint.set_aside_from`), and no checkpoint is written while updates are being skipped.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import torch

from rxmrl.errors import TrainingError

REWARD_MIN, REWARD_MAX = 0.0, 10.0  # the MRL reward scale


def all_finite(tensors: Iterable[torch.Tensor | None]) -> bool:
    """True when every given tensor holds only finite values (None entries are ignored)."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t is not None)


class NonFiniteGuard:
    """Counts skipped updates: `total` over the run, `consecutive` since the last good one."""

    def __init__(self, max_consecutive: int):
        self.max_consecutive = max_consecutive
        self.total = 0
        self.consecutive = 0

    def record(self, ok: bool) -> None:
        if ok:
            self.consecutive = 0
        else:
            self.total += 1
            self.consecutive += 1

    @property
    def exhausted(self) -> bool:
        return self.consecutive >= self.max_consecutive

    def error(self, run_dir: str, last_good: str | None) -> TrainingError:
        if last_good is not None:
            where = f"The last good state is {last_good}; --resume continues from it"
        else:
            where = "No checkpoint of this run predates the updates that broke it; --resume starts MRL again"
        return TrainingError(
            f"{self.consecutive} updates in a row had a non-finite loss or gradient ({self.total} in this run); "
            f"stopped. {where}. Check the reward (does it return NaN?) or lower the learning rates, e.g. "
            f"rxmrl train --resume {run_dir} --set stage.*.lr.decoder=1e-5 (a resume may change learning rates)."
        )

    def state_dict(self) -> dict[str, int]:
        return {"total": self.total, "consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.total = int(state["total"])
        self.consecutive = int(state["consecutive"])


class NonFiniteRewardFilter:
    """A reward wrapper that lets a non-finite score through as a *flag* instead of an error.

    The environment (rightly) refuses NaN rewards. Training should survive one bad batch, so the trainer hands
    the environment this wrapper: non-finite totals or components become 0.0 for the environment, and the
    output's `nonfinite` ([rewarded samples] bool) says which samples they were; the environment reports them
    in its step info, so the trainer can leave those episodes out of the update (`MrlTrainer.update`).
    Errors the reward raises are not caught.

    Totals outside rxmrl's reward scale (0-10, what `impo.reward_scale` and the curricula are tuned for) are
    clipped into it and counted in `clipped`; the first time it happens a warning names the reward and the
    values, since a plug-in on another scale trains with silently wrong step sizes otherwise.
    """

    def __init__(self, fn, name: str):
        self.fn = fn
        self.__name__ = name
        self.clipped = 0

    def __call__(self, batch):
        from rxmrl.reward.base import RewardOutput

        result = self.fn(batch)
        if isinstance(result, RewardOutput):
            total, components = result.total, dict(result.components)
        elif isinstance(result, torch.Tensor):
            total, components = result, {}
        else:
            total, components = torch.tensor([float(x) for x in result], dtype=torch.float32), {}
        total = total.detach().to(torch.float32).reshape(-1)
        bad = ~torch.isfinite(total)
        for key, value in components.items():
            value = torch.as_tensor(value).detach().to(torch.float32).reshape(-1)
            if value.shape == total.shape:
                bad |= ~torch.isfinite(value)
            components[key] = torch.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0)
        total = torch.nan_to_num(total, nan=0.0, posinf=0.0, neginf=0.0)
        outside = (total < REWARD_MIN) | (total > REWARD_MAX)
        if bool(outside.any()):
            if self.clipped == 0:
                low, high = float(total.min()), float(total.max())
                warnings.warn(f"reward '{self.__name__}' returned {int(outside.sum())} of {len(total)} totals outside "
                              f"{REWARD_MIN:g}-{REWARD_MAX:g} (min {low:g}, max {high:g}); they are clipped to that "
                              f"range (rxmrl's reward scale), and counted from now on", stacklevel=2)
            self.clipped += int(outside.sum())
            total = total.clamp(REWARD_MIN, REWARD_MAX)
        return RewardOutput(total=total, components=components, nonfinite=bad)


def tolerant_reward(reward, name: str | None = None):
    """(callable for the environment, the `NonFiniteRewardFilter` inside it) for a reward from `get_reward`.

    A `NamedReward` keeps its outer layer (errors raised by plug-in code are still reported naming the reward);
    only its inner function is filtered.
    """
    from rxmrl.reward.registry import NamedReward

    if isinstance(reward, NamedReward):
        inner = NonFiniteRewardFilter(reward.fn, reward.name)
        return NamedReward(reward.name, inner, user_code=reward.user_code), inner
    inner = NonFiniteRewardFilter(reward, name or getattr(reward, "__name__", type(reward).__name__))
    return inner, inner
