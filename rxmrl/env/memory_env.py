"""`MemoryRetentionEnv`: one memory-retention episode at a time, in text (`rxmrl/MemoryRetention-v0`).

reset() -> obs {"query": first query, "answer": its answer}  (the interaction to remember)
step(answer_text) -> obs {"query": next query, "answer": ""}, reward, terminated, False, info
  terminated after the last follow-up (then obs is {"query": "", "answer": ""});
  info: reference (the dataset's answer), rewarded, mode, step (1-based), reward_components {name: float}.
Reward routing follows the episode's strategy (see `rxmrl.env.routing`).
Observations are folded into printable ASCII (see `text_space`); rewards see the original texts.

Seeding: `seed=` seeds the synthetic pool and the first `reset()`; `reset(seed=s)` picks the same episode for
the same `s`. `reset(options={"episode": i})` plays `env.pool[i]` (to evaluate on every episode in order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from rxmrl.data.episode import Episode
from rxmrl.env.episodes import select_episodes
from rxmrl.env.rewards import resolve_reward
from rxmrl.env.routing import route_step
from rxmrl.env.text_space import text_space, to_charset
from rxmrl.reward.base import RewardBatch, as_output


class MemoryRetentionEnv(gym.Env):
    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(self, source: str | Path | None = None, subset: str | None = None, split: str = "train",
                 steps: int | Iterable[int] | None = None, strategy: str = "mixed", reward: Any = None,
                 seed: int | None = None, *, episodes: Sequence[Episode] | None = None,
                 synthetic_episodes: int = 64, reward_intermediate: bool = True, max_text_chars: int = 4096,
                 max_answer_chars: int = 1024, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None")
        self.pool = select_episodes(episodes=episodes, source=source, subset=subset, split=split, steps=steps,
                                    strategy=strategy, seed=seed, synthetic_episodes=synthetic_episodes)
        self.reward_fn, self.reward_name = resolve_reward(reward)
        self.reward_intermediate = reward_intermediate
        self.max_text_chars = max_text_chars
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Dict({"query": text_space(max_text_chars),
                                                  "answer": text_space(max_text_chars)})
        self.action_space = text_space(max_answer_chars)
        self._first_seed = seed
        self.episode: Episode | None = None
        self.step_index = 0  # follow-ups answered so far
        self._last: tuple[str, str] = ("", "")

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is None:
            seed = self._first_seed  # the constructor's seed drives the first reset, if it is not seeded itself
        self._first_seed = None
        super().reset(seed=seed)
        index = (options or {}).get("episode")
        if index is None:
            index = int(self.np_random.integers(len(self.pool)))
        elif not 0 <= index < len(self.pool):
            raise IndexError(f"options['episode'] = {index} outside the pool of {len(self.pool)} episodes")
        self.episode, self.step_index = self.pool[index], 0
        self._last = (self.episode.first.query, self.episode.first.answer)
        info = {"episode": index, "strategy": self.episode.strategy, "steps": self.episode.steps,
                "facts": None if self.episode.facts is None else dict(self.episode.facts)}
        return self._obs(*self._last), info

    def step(self, action: str) -> tuple[dict, float, bool, bool, dict]:
        if self.episode is None or self.step_index >= self.episode.steps:
            raise RuntimeError("the episode is over (or was never started): call reset()")
        if not isinstance(action, str):
            raise TypeError(f"the action is the answer text, got {type(action).__name__}")
        episode, k = self.episode, self.step_index + 1
        asked = episode.follow_ups[k - 1]
        route = route_step(episode, k, self.reward_intermediate)
        reward, components = 0.0, {}
        if route.rewarded:
            batch = RewardBatch(query=[asked.query], generated=[action], reference=[asked.answer],
                                remember=[list(route.remember)], facts=[episode.facts], step=[k], mode=[route.mode])
            out = as_output(self.reward_fn(batch), 1, self.reward_name)
            reward = float(out.total[0])
            components = {name: float(values.reshape(-1)[0]) for name, values in out.components.items()}
        self.step_index = k
        terminated = k == episode.steps
        next_query = "" if terminated else episode.follow_ups[k].query
        self._last = (asked.query, action)
        info = {"reference": asked.answer, "rewarded": route.rewarded, "mode": route.mode, "step": k,
                "reward_components": components}
        return self._obs(next_query, ""), reward, terminated, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        query, answer = self._last
        return f"[step {self.step_index}] Q: {query}\nA: {answer}\n"

    def _obs(self, query: str, answer: str) -> dict[str, str]:
        return {"query": to_charset(query, self.max_text_chars), "answer": to_charset(answer, self.max_text_chars)}
