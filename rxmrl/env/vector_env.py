"""`VectorMemoryEnv`: N equal-length episodes stepped in lock-step on token arrays, rewarded as one batch.

Every episode of the pool is tokenized once, at construction; `reset` gathers N of one length, and `step`
works on whole arrays: it decodes the N answers in one call, calls the reward once, and joins query and answer
into the interaction arrays with `rxmrl.tokens.join_padded` (no Python loop over samples).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from rxmrl.data.episode import Episode, Interaction
from rxmrl.env.episodes import select_episodes
from rxmrl.env.rewards import resolve_reward
from rxmrl.env.routing import StepRoute, episode_routes
from rxmrl.reward.base import RewardBatch, as_output
from rxmrl.tokens import join_padded, pad_to_width


@dataclass(frozen=True)
class _EncodedGroup:
    """All pool episodes with the same number of follow-ups S, tokenized. P episodes."""

    episodes: list[Episode]
    routes: list[tuple[StepRoute, ...]]
    remember_ids: np.ndarray  # [P, Ti] first interaction
    remember_mask: np.ndarray  # [P, Ti]
    query_ids: np.ndarray  # [P, S, Tq]
    query_mask: np.ndarray  # [P, S, Tq]
    reference_ids: np.ndarray  # [P, S, Ta]
    reference_mask: np.ndarray  # [P, S, Ta]


class VectorMemoryEnv(VectorEnv):
    """A batch of N memory-retention episodes of equal length S, on token ids.

    Observations (`reset` and `step`), a dict of arrays, N rows each, right-padded with `tokenizer.pad_id`:
      remember_ids  int64 [N, Ti]  the first interaction `[BOS][Q] q [A] a [EOS]` (Ti = max_interaction_len)
      remember_mask bool  [N, Ti]
      query_ids     int64 [N, Tq]  the follow-up to answer now, `[BOS][Q] q [A]`; all padding after the last
      query_mask    bool  [N, Tq]
    Actions: int64 [N, W] answer ids, right-padded with pad_id; the answer ends at its first EOS (or first
      pad); at most Ta - 1 tokens are kept (Ta = max_answer_len), then EOS.
    step() returns rewards float32 [N], terminated bool [N] (all True after follow-up S), truncated (all
      False), and info:
      step                int           1-based index of the follow-up just answered
      rewarded            bool [N]      unrewarded samples have reward 0.0 (see rxmrl.env.routing)
      mode                str [N]       reward mode per sample
      reward_components   {name: float32 [N]}  0.0 where not rewarded
      nonfinite           bool [N]      the reward's score was NaN/inf and is reported as 0.0 (only a reward
                          that tolerates them says so, `rxmrl.train.guard.tolerant_reward`; others raise)
      generated_ids       int64 [N, Ta] the answer as the reward saw it: `a [EOS]`; generated_mask bool [N, Ta]
      reference_ids       int64 [N, Ta] the dataset's answer `a [EOS]`; reference_mask bool [N, Ta]
      interaction_ids     int64 [N, Tq + Ta] the query just answered + the *generated* answer,
                          `[BOS][Q] q [A] a [EOS]`, for `model.update_memory`; interaction_mask bool
      generated, reference  list[str]   the decoded answer and the reference text (for logs)
    reset() info: step 0, steps S, strategy str [N], facts (list of dict or None).
    Episodes never auto-reset (metadata autoreset_mode DISABLED): call reset() after termination;
    `reset(options={"steps": S})` picks the episode length (default: the constructor's, else a length drawn
    in proportion to the pool); `options={"steps": S, "indices": [...]}` picks the N episodes of
    `env.groups[S].episodes` (to evaluate on a fixed set). `env.episodes` is the current batch of `Episode`s.
    """

    metadata = {"autoreset_mode": AutoresetMode.DISABLED}

    def __init__(self, episodes: Sequence[Episode] | None = None, num_envs: int = 8, tokenizer: Any = None,
                 reward: Any = None, steps: int | Iterable[int] | None = None, strategy: str = "mixed",
                 max_query_len: int = 64, max_answer_len: int = 64, seed: int | None = None, *,
                 source: str | Path | None = None, subset: str | None = None, split: str = "train",
                 synthetic_episodes: int = 64, max_interaction_len: int | None = None,
                 reward_intermediate: bool = True) -> None:
        if tokenizer is None:
            raise TypeError("VectorMemoryEnv needs a tokenizer (an rxmrl.data.Tokenizer or a tokenizer.json path)")
        if isinstance(tokenizer, (str, Path)):
            from rxmrl.data.tokenizer import Tokenizer

            tokenizer = Tokenizer.from_pretrained(tokenizer)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.tokenizer = tokenizer
        self.num_envs = num_envs
        self.max_query_len, self.max_answer_len = max_query_len, max_answer_len
        self.max_interaction_len = max_interaction_len or max_query_len + max_answer_len
        self.reward_fn, self.reward_name = resolve_reward(reward)
        pool = select_episodes(episodes=episodes, source=source, subset=subset, split=split, steps=steps,
                               strategy=strategy, seed=seed, synthetic_episodes=synthetic_episodes)
        self.groups = {n: self._encode([e for e in pool if e.steps == n], reward_intermediate)
                       for n in sorted({e.steps for e in pool})}
        self._default_steps = steps if isinstance(steps, int) else None
        self._first_seed = seed

        vocab_top = tokenizer.vocab_size - 1
        ti = self.max_interaction_len
        self.single_observation_space = spaces.Dict({
            "remember_ids": spaces.Box(0, vocab_top, (ti,), np.int64),
            "remember_mask": spaces.Box(0, 1, (ti,), np.bool_),
            "query_ids": spaces.Box(0, vocab_top, (max_query_len,), np.int64),
            "query_mask": spaces.Box(0, 1, (max_query_len,), np.bool_)})
        self.single_action_space = spaces.Box(0, vocab_top, (max_answer_len,), np.int64)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

        self.episodes: list[Episode] = []
        self.steps = 0  # S of the current batch
        self.step_index = 0  # follow-ups answered so far
        self._batch: dict[str, Any] = {}

    # ---- episode batches ----------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        if seed is None:
            seed = self._first_seed
        self._first_seed = None
        super().reset(seed=seed)
        n = (options or {}).get("steps", self._default_steps)
        if n is None:
            lengths = np.array(list(self.groups))
            sizes = np.array([len(self.groups[k].episodes) for k in lengths], dtype=np.float64)
            n = int(self.np_random.choice(lengths, p=sizes / sizes.sum()))
        if n not in self.groups:
            raise ValueError(f"no episodes with {n} follow-ups in the pool (lengths: {sorted(self.groups)})")
        group = self.groups[n]
        pool_size = len(group.episodes)
        rows = (options or {}).get("indices")
        if rows is None:
            rows = self.np_random.choice(pool_size, self.num_envs, replace=pool_size < self.num_envs)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            if rows.shape != (self.num_envs,) or rows.min() < 0 or rows.max() >= pool_size:
                raise ValueError(f"options['indices'] must be {self.num_envs} indices into the {pool_size} "
                                 f"episodes with {n} follow-ups (env.groups[{n}].episodes)")
        self.episodes = [group.episodes[i] for i in rows]
        self.steps, self.step_index = n, 0
        routes = [group.routes[i] for i in rows]
        # per-step lists the reward needs, built once per batch so `step` only indexes them
        self._batch = {
            "remember_ids": group.remember_ids[rows], "remember_mask": group.remember_mask[rows],
            "query_ids": group.query_ids[rows], "query_mask": group.query_mask[rows],
            "reference_ids": group.reference_ids[rows], "reference_mask": group.reference_mask[rows],
            "queries": [[e.follow_ups[k].query for e in self.episodes] for k in range(n)],
            "references": [[e.follow_ups[k].answer for e in self.episodes] for k in range(n)],
            "remember": [[list(r[k].remember) for r in routes] for k in range(n)],
            "modes": [[r[k].mode for r in routes] for k in range(n)],
            "rewarded": [np.array([r[k].rewarded for r in routes]) for k in range(n)],
            "facts": [e.facts for e in self.episodes],
        }
        info = {"step": 0, "steps": n, "strategy": np.array([e.strategy for e in self.episodes]),
                "facts": [None if e.facts is None else dict(e.facts) for e in self.episodes]}
        return self._obs(0), info

    def step(self, actions: Any) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        if not self.episodes or self.step_index >= self.steps:
            raise RuntimeError("the episodes are over (or were never started): call reset()")
        k = self.step_index  # 0-based follow-up being answered
        b = self._batch
        generated_ids, generated_mask = self._answers(actions)  # [N, Ta]
        generated = self.tokenizer.decode_batch(generated_ids)
        rewarded = b["rewarded"][k]
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        nonfinite = np.zeros(self.num_envs, dtype=bool)
        components: dict[str, np.ndarray] = {}
        if rewarded.any():
            rows = np.flatnonzero(rewarded)
            everyone = bool(rewarded.all())
            batch = RewardBatch(
                query=_take(b["queries"][k], rows, everyone), generated=_take(generated, rows, everyone),
                reference=_take(b["references"][k], rows, everyone),
                remember=_take(b["remember"][k], rows, everyone), facts=_take(b["facts"], rows, everyone),
                step=[k + 1] * len(rows), mode=_take(b["modes"][k], rows, everyone),
                generated_ids=_tensor(generated_ids[rows]),
                reference_ids=_tensor(b["reference_ids"][rows, k]), pad_id=self.tokenizer.pad_id)
            out = as_output(self.reward_fn(batch), len(rows), self.reward_name)
            rewards[rows] = out.total.detach().to("cpu").numpy()
            if out.nonfinite is not None:
                nonfinite[rows] = out.nonfinite.detach().to("cpu").numpy()
            for name, values in out.components.items():
                components[name] = np.zeros(self.num_envs, dtype=np.float32)
                components[name][rows] = values.detach().to("cpu").float().numpy().reshape(-1)
        interaction_ids, interaction_mask = self._interactions(b["query_ids"][:, k], b["query_mask"][:, k],
                                                               generated_ids, generated_mask)
        self.step_index = k + 1
        terminated = np.full(self.num_envs, self.step_index == self.steps)
        info = {
            "step": k + 1, "rewarded": rewarded.copy(), "mode": np.array(b["modes"][k]),
            "reward_components": components, "nonfinite": nonfinite,
            "generated_ids": generated_ids, "generated_mask": generated_mask,
            "reference_ids": b["reference_ids"][:, k].copy(), "reference_mask": b["reference_mask"][:, k].copy(),
            "interaction_ids": interaction_ids, "interaction_mask": interaction_mask,
            "generated": generated, "reference": list(b["references"][k]),
        }
        return self._obs(self.step_index), rewards, terminated, np.zeros(self.num_envs, dtype=bool), info

    # ---- arrays -------------------------------------------------------------------------------------------

    def _obs(self, k: int) -> dict[str, np.ndarray]:
        b = self._batch
        if k < self.steps:
            query_ids, query_mask = b["query_ids"][:, k].copy(), b["query_mask"][:, k].copy()
        else:  # after the last follow-up there is nothing left to ask
            query_ids = np.full((self.num_envs, self.max_query_len), self.tokenizer.pad_id, dtype=np.int64)
            query_mask = np.zeros((self.num_envs, self.max_query_len), dtype=bool)
        return {"remember_ids": b["remember_ids"].copy(), "remember_mask": b["remember_mask"].copy(),
                "query_ids": query_ids, "query_mask": query_mask}

    def _answers(self, actions: Any) -> tuple[np.ndarray, np.ndarray]:
        """Actions [N, W] -> the answers `a [EOS]` as [N, Ta] ids and mask: cut at the first EOS or pad."""
        if hasattr(actions, "detach"):
            actions = actions.detach().to("cpu").numpy()
        actions = np.asarray(actions, dtype=np.int64)
        if actions.ndim != 2 or actions.shape[0] != self.num_envs:
            raise ValueError(f"actions must be answer ids of shape [{self.num_envs}, T], got {actions.shape}")
        pad, eos, ta = self.tokenizer.pad_id, self.tokenizer.eos_id, self.max_answer_len
        stop = (actions == eos) | (actions == pad)
        length = np.where(stop.any(axis=1), stop.argmax(axis=1), actions.shape[1])
        length = np.minimum(length, ta - 1)  # room for the EOS
        fitted = np.full((self.num_envs, ta), pad, dtype=np.int64)
        width = min(ta, actions.shape[1])
        fitted[:, :width] = actions[:, :width]
        columns = np.arange(ta)[None, :]
        ids = np.where(columns < length[:, None], fitted, pad)
        ids[np.arange(self.num_envs), length] = eos
        return ids, columns <= length[:, None]

    def _interactions(self, query_ids: np.ndarray, query_mask: np.ndarray, answer_ids: np.ndarray,
                      answer_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[N, Tq] query + [N, Ta] answer, both right-padded -> [N, Tq + Ta] `[BOS][Q] q [A] a [EOS]`."""
        pad = self.tokenizer.pad_id
        ids, mask = join_padded(_tensor(query_ids), _tensor(query_mask), _tensor(answer_ids), _tensor(answer_mask),
                                pad_id=pad)
        ids, mask = pad_to_width(ids, mask, query_ids.shape[1] + answer_ids.shape[1], pad)
        return ids.numpy(), mask.numpy()

    def _encode(self, episodes: list[Episode], reward_intermediate: bool) -> _EncodedGroup:
        tok, s = self.tokenizer, episodes[0].steps
        firsts = [e.first for e in episodes]
        remember_ids, remember_mask = tok.batch_encode_interactions(
            [i.query for i in firsts], [i.answer for i in firsts], self.max_interaction_len, pad_to_max_len=True)
        follow_ups: list[Interaction] = [f for e in episodes for f in e.follow_ups]  # P * S, episode-major
        query_ids, query_mask = tok.batch_encode_queries([f.query for f in follow_ups], self.max_query_len,
                                                         pad_to_max_len=True)
        reference_ids, reference_mask = tok.batch_encode_answers([f.answer for f in follow_ups],
                                                                 self.max_answer_len, pad_to_max_len=True)
        p = len(episodes)
        return _EncodedGroup(
            episodes=episodes, routes=[episode_routes(e, reward_intermediate) for e in episodes],
            remember_ids=remember_ids.numpy(), remember_mask=remember_mask.numpy(),
            query_ids=query_ids.numpy().reshape(p, s, -1), query_mask=query_mask.numpy().reshape(p, s, -1),
            reference_ids=reference_ids.numpy().reshape(p, s, -1),
            reference_mask=reference_mask.numpy().reshape(p, s, -1))


def _tensor(array: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(array))


def _take(items: list, rows: np.ndarray, everyone: bool) -> list:
    """The rewarded samples of a per-sample list (all of them, without copying, in the usual case)."""
    return items if everyone else [items[i] for i in rows]
