"""Settings of the DMPO update (the `[dmpo]` table): a memory-aware preference stage beside IMPO.

DMPO (direct memory preference optimisation) trains on pairs of answers to the same query given the same
accepted history: an accepted and a rejected one. The loss is DPO's (Rafailov et al., 2023) on sequence
log-probs against the frozen model as MRL started; the memory is written only from accepted interactions, and
the loss reaches the memory system through the replayed writes (`bptt_depth`). A stage
uses it with `algorithm = "dmpo"` in its `[[stage]]` table; the losses are in `rxmrl/train/dmpo.py`, the
update in `dmpo_trainer.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rxmrl.errors import ConfigError


@dataclass
class DmpoConfig:
    """
    Configuration of the DMPO update (the `[dmpo]` table of a curriculum; used by stages with
    `algorithm = "dmpo"`).

    Parameters:
        beta (`float`, *optional*, defaults to `0.1`):
            DPO's β: how sharply the loss separates the accepted from the rejected log-ratio (0.05–0.5 is the
            usual range); smaller keeps the policy closer to the reference.
        pairs (`str`, *optional*, defaults to `"sampled"`):
            Where a pair comes from. `"sampled"`: `group_size` answers are sampled from the same STM; the one
            the stage's reward scores highest is accepted (and written to memory), the lowest rejected; a step
            where they all score alike gives no pair. `"reset"`: the reference answer is accepted (and written),
            the answer the policy gives from a reset (fresh) STM is rejected, so the pair is exactly what the
            memory should add. Either way only rewarded steps give pairs.
        group_size (`int`, *optional*, defaults to `4`):
            Answers sampled per episode and step with `pairs = "sampled"` (at least 2); a DMPO stage's
            `batch_size` must be a multiple of it. Not used with `"reset"` (one rollout per episode).
        anchor (`str`, *optional*, defaults to `"nll"`):
            The anchor term added with weight `anchor_coef`. `"nll"`: the accepted answer's mean per-token
            negative log-likelihood under the policy (an SFT term). `"ratio"`: max(0, log π_ref(y_w) −
            log π_θ(y_w)), which keeps the accepted answer at least as likely as under the reference (plain DPO
            may lower both answers' likelihoods as long as their gap grows).
        anchor_coef (`float`, *optional*, defaults to `0.0`):
            Weight of the anchor; 0 is plain DPO.
        minibatch_size (`int`, *optional*, defaults to `32`):
            Pairs per optimizer step; 0 = every pair of the rollout at once.
        update_epochs (`int`, *optional*, defaults to `1`):
            Passes over each rollout's pairs.
        bptt_depth (`int`, *optional*, defaults to `1`):
            Memory writes the loss backpropagates through (as `impo.bptt_depth`): the STM a pair is scored
            from is recomputed from the stored snapshot this many writes earlier, so the accepted interactions
            written before the step learn from the pair.
        reference_memory (`str`, *optional*, defaults to `"own"`):
            The STM the reference decoder reads. `"own"`: the frozen model writes the same accepted interactions
            into its own STM (from the episode's starting STM), so the log-ratio measures what the trained memory
            *and* decoder changed: π_ref is the whole frozen model. `"policy"`: it reads the policy's STM (the
            variant of Reactive AI's DMPO note), so the log-ratio measures the decoder alone; with a frozen decoder
            both log-ratios are then always 0 and the loss stays log 2, with no pull back to the reference.
        max_grad_norm (`float`, *optional*, defaults to `1.0`):
            Gradient-norm clip of the model's gradients; 0 disables it. (Non-finite updates are skipped and
            counted against `impo.max_consecutive_nonfinite`, one guard for the whole run.)
    """

    beta: float = 0.1
    pairs: Literal["sampled", "reset"] = "sampled"
    group_size: int = 4
    anchor: Literal["nll", "ratio"] = "nll"
    anchor_coef: float = 0.0
    minibatch_size: int = 32
    update_epochs: int = 1
    bptt_depth: int = 1
    reference_memory: Literal["own", "policy"] = "own"
    max_grad_norm: float = 1.0

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ConfigError(f"beta: must be positive, got {self.beta}")
        if self.group_size < 2:
            raise ConfigError(f"group_size: a pair needs at least 2 sampled answers, got {self.group_size}")
        if self.anchor_coef < 0 or self.max_grad_norm < 0:
            raise ConfigError("anchor_coef and max_grad_norm must not be negative")
        if self.minibatch_size < 0:
            raise ConfigError(f"minibatch_size: must be 0 (all pairs) or more, got {self.minibatch_size}")
        if self.update_epochs < 1:
            raise ConfigError(f"update_epochs: must be at least 1, got {self.update_epochs}")
        if self.bptt_depth < 1:
            raise ConfigError(f"bptt_depth: must be at least 1 (the last write always learns), got {self.bptt_depth}")
