"""The episode schema: one TinyStories-MRL row is one `Episode`.

The agent is shown `first` (the interaction to remember) and must then answer each of `follow_ups`.
`facts` is optional ground truth over the whole episode (slot -> value, e.g. {"colour": "red"}): what `first`
states, plus any fact a follow-up *question* tells (synthetic cumulative episodes); the synthetic generator
fills it, real TinyStories-MRL rows leave it `None`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STRATEGIES = ("single", "cumulative", "long_range")


@dataclass(frozen=True)
class Interaction:
    query: str
    answer: str


@dataclass(frozen=True)
class Episode:
    first: Interaction
    follow_ups: tuple[Interaction, ...]
    strategy: str = "cumulative"
    facts: dict[str, str] | None = field(default=None, compare=True)

    @property
    def steps(self) -> int:
        """Number of follow-up interactions (the curriculum's "steps")."""
        return len(self.follow_ups)

    @property
    def interactions(self) -> tuple[Interaction, ...]:
        return (self.first, *self.follow_ups)
