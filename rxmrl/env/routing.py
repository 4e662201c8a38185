"""Which answer is rewarded, for recalling what, in which reward mode: the MRL curriculum strategies.

- single: the one follow-up is rewarded (mode "standard") for recalling the first interaction.
- cumulative: every follow-up is rewarded at once (mode "standard") for what it keeps of the first
  interaction and the earlier follow-ups (their reference answers: what this step's reference builds on).
- long_range: intermediate follow-ups are unrelated to the first interaction; they are rewarded for staying
  on their own topic, i.e. for *not* repeating the first interaction (mode "negative", remember = [first]);
  the last follow-up returns to the first interaction and gets the delayed recall reward (mode "long_range",
  remember = [first]). With `reward_intermediate=False` the intermediate steps are not rewarded at all.
Steps are 1-based follow-up indices. An unrewarded step gets reward 0.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from rxmrl.data.episode import Episode, Interaction


@dataclass(frozen=True)
class StepRoute:
    rewarded: bool
    mode: str  # "standard" | "negative" | "long_range" (rxmrl.reward.base.MODES)
    remember: tuple[Interaction, ...]


def route_step(episode: Episode, step: int, reward_intermediate: bool = True) -> StepRoute:
    if not 1 <= step <= episode.steps:
        raise IndexError(f"step {step} outside 1..{episode.steps}")
    first = (episode.first,)
    if episode.strategy == "single":
        return StepRoute(rewarded=step == 1, mode="standard", remember=first)  # one rewarded step
    if episode.strategy == "cumulative":
        return StepRoute(rewarded=True, mode="standard", remember=(episode.first, *episode.follow_ups[: step - 1]))
    if episode.strategy == "long_range":
        if step == episode.steps:
            return StepRoute(rewarded=True, mode="long_range", remember=first)
        return StepRoute(rewarded=reward_intermediate, mode="negative", remember=first)
    raise ValueError(f"episode has unknown strategy {episode.strategy!r}")


def episode_routes(episode: Episode, reward_intermediate: bool = True) -> tuple[StepRoute, ...]:
    """`route_step` for every follow-up of `episode`, in order."""
    return tuple(route_step(episode, k, reward_intermediate) for k in range(1, episode.steps + 1))
