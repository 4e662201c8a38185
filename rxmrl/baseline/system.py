"""The stateless baseline as a system of the retention benchmark: it re-reads the whole conversation each turn.

Its state is the history of each conversation as token ids (the first interaction, then every completed
interaction with the baseline's *own* answers, as the RxT writes its own answers to memory). Each answer is
generated from `history + [BOS][Q] q [A]` (`rxmrl.baseline.render.stateless_prompt`); when that would
not fit the model's context with room for the answer, the oldest interactions are left out, and the number
of prompts so cut is reported (`notes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rxmrl.baseline.generation import generate_stateless
from rxmrl.baseline.render import stateless_prompt
from rxmrl.model.sampling import Sampling


@dataclass
class StatelessState:
    histories: list[list[list[int]]]  # per conversation: the interactions so far, each as ids
    truncated_prompts: int = 0
    dropped_interactions: int = 0
    prompt_tokens: list[int] = field(default_factory=list)  # length of every prompt, for reporting


class StatelessSystem:
    """A `transformers` causal LM answering from its prompt alone (see the module docstring)."""

    def __init__(self, model: Any, tokenizer: Any, context_len: int | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.context_len = context_len or model.config.max_position_embeddings

    @classmethod
    def from_folder(cls, directory: str | Path, device: str = "cpu") -> StatelessSystem:
        from rxmrl.baseline.model import load_baseline

        model, tokenizer, _ = load_baseline(directory, device=device)
        return cls(model, tokenizer)

    def start(self, remember_ids: Any, remember_mask: Any, seed: int) -> StatelessState:
        return StatelessState([[_real(ids, mask)] for ids, mask in zip(remember_ids, remember_mask)])

    def respond(self, state: StatelessState, query_ids: Any, query_mask: Any, *, max_new_tokens: int,
                sampling: Sampling, generator: Any) -> Any:
        prompts = []
        for history, ids, mask in zip(state.histories, query_ids, query_mask):
            prompt, dropped = stateless_prompt(history, _real(ids, mask), self.context_len - max_new_tokens)
            state.truncated_prompts += int(dropped > 0)
            state.dropped_interactions += dropped
            state.prompt_tokens.append(len(prompt))
            prompts.append(prompt)
        out = generate_stateless(
            self.model, prompts, max_new_tokens=max_new_tokens, eos_id=self.tokenizer.eos_id,
            pad_id=self.tokenizer.pad_id, sampling=sampling, generator=generator)
        return out.tokens

    def record(self, state: StatelessState, interaction_ids: Any, interaction_mask: Any) -> StatelessState:
        for history, ids, mask in zip(state.histories, interaction_ids, interaction_mask):
            history.append(_real(ids, mask))
        return state

    def notes(self, state: StatelessState) -> dict[str, float]:
        """Counts summed over batches by the benchmark (mean prompt length = prompt_tokens / prompts)."""
        return {"truncated_prompts": state.truncated_prompts, "dropped_interactions": state.dropped_interactions,
                "prompts": len(state.prompt_tokens), "prompt_tokens": sum(state.prompt_tokens)}


def _real(ids: Any, mask: Any) -> list[int]:
    """The real tokens of one right-padded row."""
    return ids[mask.bool()].tolist()
