"""Turning stories, query/answer pairs and episodes into padded token batches.

Everything is tokenized once, up front; a batch is then only padding. Batches are built on the CPU and
moved with `.to(device)`, so the same seed gives the same batches on any device.

    TokenBatch    tokens/mask/target_mask [B, T]            one sequence per row (joint-lm, sft)
    EpisodeBatch  tokens/mask/answer_mask [B, K, T], valid [B, K]
                  K interactions per row: index 0 is the one to remember, 1.. the follow-ups
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rxmrl.data.episode import Episode, Interaction
from rxmrl.train.warmstart.sampling import EpochSampler


@dataclass
class TokenBatch:
    tokens: torch.Tensor  # [B, T] right-padded
    mask: torch.Tensor  # [B, T] bool, True = real token
    target_mask: torch.Tensor  # [B, T] bool, True = the decoder is scored on predicting this token

    def to(self, device: str | torch.device) -> TokenBatch:
        return TokenBatch(self.tokens.to(device), self.mask.to(device), self.target_mask.to(device))


@dataclass
class EpisodeBatch:
    tokens: torch.Tensor  # [B, K, T] each interaction "[BOS][Q] q [A] a [EOS]", right-padded
    mask: torch.Tensor  # [B, K, T] bool
    answer_mask: torch.Tensor  # [B, K, T] bool, the answer tokens and [EOS]
    valid: torch.Tensor  # [B, K] bool, False where an episode has fewer interactions than K

    def to(self, device: str | torch.device) -> EpisodeBatch:
        return EpisodeBatch(self.tokens.to(device), self.mask.to(device), self.answer_mask.to(device),
                            self.valid.to(device))

    @property
    def interactions(self) -> int:
        return self.tokens.shape[1]

    def interaction(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens, mask, answer_mask [B, T_k] of interaction `index`, cut to its longest row.

        The batch is padded to its longest interaction (usually the long first one); follow-ups are much
        shorter, and running them at full width would spend most of the compute on padding.
        """
        width = max(1, int(self.mask[:, index].sum(dim=1).max()))
        return self.tokens[:, index, :width], self.mask[:, index, :width], self.answer_mask[:, index, :width]


# ---- one example -> token ids ---------------------------------------------------------------------------


def story_ids(tokenizer: Any, text_ids: list[int], max_len: int) -> list[int]:
    """[BOS] story [EOS], the story cut to fit `max_len`."""
    return [tokenizer.bos_id, *text_ids[: max_len - 2], tokenizer.eos_id]


def interaction_ids(tokenizer: Any, query: str, answer: str, max_query_len: int, max_answer_len: int
                    ) -> tuple[list[int], int]:
    """"[BOS][Q] q [A]" + "a [EOS]", each part cut to its own budget; also the query part's length."""
    q = tokenizer.encode_query(query, max_query_len)
    a = tokenizer.encode_answer(answer, max_answer_len)
    return q + a, len(q)


def answer_positions(tokens: torch.Tensor, mask: torch.Tensor, a_id: int) -> torch.Tensor:
    """tokens/mask [B, T] of "[BOS][Q] q [A] a [EOS]" rows -> bool [B, T]: everything after [A] (answer + [EOS]).

    The tokenizer never emits [A] for text (a typed "[A]" is encoded as plain text), so the first [A] is the
    boundary.
    """
    seen_a = (tokens == a_id).long().cumsum(dim=1) > 0
    return seen_a & (tokens != a_id) & mask


# ---- many examples -> a batch ---------------------------------------------------------------------------


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists -> (ids [B, T], mask [B, T] bool)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = True
    return ids, mask


def story_batch(rows: Sequence[list[int]], pad_id: int) -> TokenBatch:
    tokens, mask = pad_rows(rows, pad_id)
    return TokenBatch(tokens, mask, mask.clone())  # every real token is a target (the first is never scored)


def pair_batch(rows: Sequence[list[int]], pad_id: int, a_id: int) -> TokenBatch:
    tokens, mask = pad_rows(rows, pad_id)
    return TokenBatch(tokens, mask, answer_positions(tokens, mask, a_id))


def episode_batch(rows: Sequence[list[tuple[list[int], int]]], pad_id: int, bos_id: int) -> EpisodeBatch:
    """rows: per episode, per interaction (ids, query length) -> EpisodeBatch.

    Missing interactions of shorter episodes are a lone [BOS] (so no attention sees only padding) marked
    invalid; the stages neither score them nor let them change the memory.
    """
    batch, k = len(rows), max(len(r) for r in rows)
    width = max(len(ids) for r in rows for ids, _ in r)
    tokens = torch.full((batch, k, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, k, width), dtype=torch.bool)
    answer = torch.zeros((batch, k, width), dtype=torch.bool)
    valid = torch.zeros((batch, k), dtype=torch.bool)
    for b, episode in enumerate(rows):
        for s in range(k):
            if s < len(episode):
                ids, query_len = episode[s]
                tokens[b, s, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                mask[b, s, : len(ids)] = True
                answer[b, s, query_len : len(ids)] = True
                valid[b, s] = True
            else:
                tokens[b, s, 0] = bos_id
                mask[b, s, 0] = True
    return EpisodeBatch(tokens, mask, answer, valid)


# ---- tokenized data sets --------------------------------------------------------------------------------


class TokenizedExamples:
    """Examples tokenized once; `batch(indices)` pads the chosen ones; `stream(...)` serves a training run."""

    def __init__(self, rows: list[Any], collate: Callable[[list[Any]], Any]) -> None:
        self.rows = rows
        self.collate = collate

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices: Sequence[int]) -> Any:
        return self.collate([self.rows[i] for i in indices])

    def in_order(self, batch_size: int) -> list[Any]:
        """Every example once, in order (held-out evaluation)."""
        return [self.batch(range(i, min(i + batch_size, len(self)))) for i in range(0, len(self), batch_size)]

    def stream(self, batch_size: int, seed: int) -> Callable[[int], Any]:
        """Micro-batch i of a training run, shuffled per epoch (see `EpochSampler`)."""
        sampler = EpochSampler(len(self), batch_size, seed)
        return lambda index: self.batch(sampler.indices(index))


def tokenize_stories(tokenizer: Any, texts: Sequence[str], max_len: int) -> TokenizedExamples:
    rows = [story_ids(tokenizer, ids, max_len) for ids in tokenizer.encode_texts(list(texts))]
    return TokenizedExamples(rows, lambda chosen: story_batch(chosen, tokenizer.pad_id))


def tokenize_pairs(tokenizer: Any, pairs: Sequence[Interaction], max_len: int) -> TokenizedExamples:
    rows = [tokenizer.encode_interaction(p.query, p.answer, max_len) for p in pairs]
    return TokenizedExamples(rows, lambda chosen: pair_batch(chosen, tokenizer.pad_id, tokenizer.a_id))


def tokenize_episodes(tokenizer: Any, episodes: Sequence[Episode], max_query_len: int, max_answer_len: int
                      ) -> TokenizedExamples:
    rows = [[interaction_ids(tokenizer, i.query, i.answer, max_query_len, max_answer_len) for i in e.interactions]
            for e in episodes]
    return TokenizedExamples(rows, lambda chosen: episode_batch(chosen, tokenizer.pad_id, tokenizer.bos_id))
