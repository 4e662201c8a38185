"""Conversations as token ids for the stateless baseline: the RxT's interaction format, concatenated.

    [BOS][Q] q1 [A] a1 [EOS] [BOS][Q] q2 [A] a2 [EOS] ... [BOS][Q] qk [A]     <- the model continues: ak [EOS]

Each interaction is encoded exactly as the RxT's memory encoder sees it (`Tokenizer.encode_interaction`, cut
to the same per-message length), so both systems read the same tokens; the stateless model reads all of them
again at every turn, the RxT reads one and keeps the rest in its STM.

Training rows (`sft_example`): the whole episode, with the loss on the answers chosen by `loss_on`:
  "follow_ups" (default)  every follow-up answer, each given the full history before it: one row teaches all
                          the turns the benchmark scores (the first interaction's answer, the text to remember,
                          is context, never something the model is asked to produce from memory);
  "last"                  the last answer only (one scored turn per row: S times less signal per episode);
  "all"                   the first interaction's answer as well.
A label covers the answer's tokens and its EOS (the model must learn to stop), never [BOS][Q] q [A].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rxmrl.data.episode import Episode

LOSS_ON = ("follow_ups", "last", "all")
IGNORE_INDEX = -100  # label of a token that is not trained on (the convention of transformers' losses)


def answer_start(interaction_ids: Sequence[int], a_id: int) -> int:
    """Index of the first answer token (just after [A]) in `[BOS][Q] q [A] a [EOS]`."""
    return list(interaction_ids).index(a_id) + 1


def episode_interactions(tokenizer: Any, episode: Episode, max_message_len: int) -> list[list[int]]:
    """Each interaction of the episode (first, then follow-ups) as `[BOS][Q] q [A] a [EOS]` ids."""
    return [tokenizer.encode_interaction(i.query, i.answer, max_len=max_message_len) for i in episode.interactions]


def sft_example(tokenizer: Any, episode: Episode, *, loss_on: str = "follow_ups", max_message_len: int,
                context_len: int) -> dict[str, list[int]] | None:
    """{"input_ids": [T], "labels": [T]} for one episode, or None when no trained answer fits `context_len`.

    Interactions that would pass `context_len` are left out from the end (whole interactions only).
    """
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    interactions = episode_interactions(tokenizer, episode, max_message_len)
    trained = {"all": set(range(len(interactions))), "follow_ups": set(range(1, len(interactions))),
               "last": {len(interactions) - 1}}[loss_on]
    input_ids: list[int] = []
    labels: list[int] = []
    for index, ids in enumerate(interactions):
        if len(input_ids) + len(ids) > context_len:
            break
        start = answer_start(ids, tokenizer.a_id)
        input_ids += ids
        labels += [IGNORE_INDEX] * start + (ids[start:] if index in trained else [IGNORE_INDEX] * (len(ids) - start))
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}


def stateless_prompt(history: Sequence[Sequence[int]], query_ids: Sequence[int],
                     max_prompt_len: int) -> tuple[list[int], int]:
    """The full history followed by the query `[BOS][Q] q [A]` -> (prompt ids, interactions left out).

    When the whole history does not fit `max_prompt_len`, the oldest interactions are left out (a sliding
    window, as a deployed stateless chat would do); the count says how many.
    """
    budget = max_prompt_len - len(query_ids)
    if budget < 0:
        raise ValueError(f"the query alone ({len(query_ids)} tokens) is longer than the prompt limit {max_prompt_len}")
    kept: list[Sequence[int]] = []
    used = 0
    for ids in reversed(history):
        if used + len(ids) > budget:
            break
        kept.append(ids)
        used += len(ids)
    prompt = [token for ids in reversed(kept) for token in ids] + list(query_ids)
    return prompt, len(history) - len(kept)
