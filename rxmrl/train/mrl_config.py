"""Settings of the IMPO update: advantage estimation, loss coefficients, minibatching and clipping.

IMPO (Implicit Memory Policy Optimization) is PPO adapted to a memory system: the "state" is the STM,
advantages are computed per interaction step, and two extra terms keep the memory and the policy stable
(an RMSE penalty on how much one write moves the STM, and a KL penalty between the updated policy and the
one that collected the rollout). One `ImpoConfig` is the `[impo]` table of a curriculum TOML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rxmrl.errors import ConfigError


@dataclass
class ImpoConfig:
    """
    Configuration of the IMPO update (the `[impo]` table of a curriculum).

    Parameters:
        advantage (`str`, *optional*, defaults to `"impo"`):
            How advantages are estimated. `"impo"`: A = r − V per interaction step, no bootstrapping (the RxT
            recipe). `"gae"`: generalised advantage estimation across the interaction steps of an episode, so a
            memory write earns credit for a recall that is rewarded steps later. `"group"`: a critic-free
            leave-one-out baseline over `group_size` rollouts of the same episode (GRPO/RLOO style).
        gamma (`float`, *optional*, defaults to `0.99`):
            Discount between interaction steps (`"gae"` only).
        lam (`float`, *optional*, defaults to `0.95`):
            GAE λ (`"gae"` only).
        group_size (`int`, *optional*, defaults to `4`):
            Rollouts per episode for `"group"`; a stage's `batch_size` must be a multiple of it.
        branch (`bool`, *optional*, defaults to `False`):
            `"group"` only: the rollouts of an episode share one memory. They start from the same STM and after
            every follow-up all write the interaction of one of them (drawn at random), so each step's group
            baseline compares answers given the same memory state instead of memories that diverged.
        skip_uniform_groups (`bool`, *optional*, defaults to `False`):
            `"group"` only: answers of a group whose rewards at that step are all equal take no part in the
            losses (DAPO's dynamic sampling): their advantages are 0 anyway, and counting them only dilutes the
            mean over answers and the advantage statistics.
        normalize (`str`, *optional*, defaults to `"batch"`):
            Advantage normalisation to zero mean and unit variance: over the whole batch (`"batch"`), separately
            for each follow-up step (`"step"`, so late steps with larger reward spread do not dominate), or not
            at all (`"none"`).
        min_advantage_std (`float`, *optional*, defaults to `0.05`):
            Normalisation divides by max(std, this), so a batch whose advantages barely differ (say every reward is
            0 and the critic is nearly constant) is not blown up into full-size noise that the policy would chase.
        reward_scale (`float`, *optional*, defaults to `0.1`):
            Rewards (0–10 MRL scale) are multiplied by this before advantages and value targets, so the critic
            predicts values of order 1.
        clip_eps (`float`, *optional*, defaults to `0.2`):
            PPO ratio clip ε: per-token ratios outside [1 − ε, 1 + ε] stop improving the surrogate.
        clip_eps_high (`float` or `None`, *optional*, defaults to `None`):
            Upper clip ε_high when it differs from `clip_eps` (DAPO's "clip higher", e.g. 0.28 with 0.2): ratios
            are clipped to [1 − ε, 1 + ε_high], so unlikely good tokens can gain more per update.
        value_clip (`float` or `None`, *optional*, defaults to `None`):
            When set, the value loss is the larger of the plain and the clipped squared error, with the new value
            clipped to ± this around the value predicted at collection.
        value_coef (`float`, *optional*, defaults to `0.5`):
            Weight of the value (critic) loss.
        entropy_coef (`float`, *optional*, defaults to `0.01`):
            Weight of the entropy bonus (mean per-token entropy of the answers).
        memory_coef (`float`, *optional*, defaults to `0.01`):
            λ_mem: weight of RMSE(STM_t, STM_{t−1}), which stops a single write from wiping the memory.
        kl_step_coef (`float`, *optional*, defaults to `0.01`):
            Weight of the policy-stabilisation KL between the updated policy and the rollout policy, estimated on
            the sampled tokens with the k3 estimator against the stored log-probs.
        kl_ref_coef (`float`, *optional*, defaults to `0.0`):
            Weight of a KL to a frozen reference model (a copy of the model as it was when MRL started); 0 turns
            it off and skips the reference forward passes.
        aux_coef (`float`, *optional*, defaults to `0.0`):
            Weight of the decoder's Mixture-of-Experts load-balancing loss. Off by default: supervised training
            balanced the router already, and in RL its steady gradient outweighs the weak reward signal on the
            router weights (Adam scales both to full steps), so it reshuffles experts and erodes the answers.
        update_epochs (`int`, *optional*, defaults to `1`):
            Passes over each collected rollout.
        minibatch_size (`int`, *optional*, defaults to `32`):
            Answers (one sample's follow-up step each) per optimizer step; 0 = the whole rollout at once.
        max_grad_norm (`float`, *optional*, defaults to `1.0`):
            Gradient-norm clip, applied to the policy and to the critic separately so the critic's larger
            gradients never shrink the policy's step. 0 disables clipping.
        bptt_depth (`int`, *optional*, defaults to `1`):
            How many memory writes the update backpropagates through: the STM before answer t is recomputed
            from the stored (detached) snapshot `bptt_depth` writes earlier. At least 1, so the last write always
            learns from the answer it serves. A depth above the episode's follow-up count replays every write from
            the episode's start with the current weights, so the first interaction's write learns from every later
            answer and no snapshot taken under older weights is reused (docs/BENCHMARKS.md, "MRL gain": it helps
            MRL and the SMAT control alike).
        max_consecutive_nonfinite (`int`, *optional*, defaults to `5`):
            Updates with a non-finite loss or gradient are skipped and counted; this many in a row stop the run
            with a `TrainingError` (after writing a checkpoint).
    """

    advantage: Literal["impo", "gae", "group"] = "impo"
    gamma: float = 0.99
    lam: float = 0.95
    group_size: int = 4
    branch: bool = False
    skip_uniform_groups: bool = False
    normalize: Literal["none", "batch", "step"] = "batch"
    min_advantage_std: float = 0.05
    reward_scale: float = 0.1
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    value_clip: float | None = None
    value_coef: float = 0.5
    entropy_coef: float = 0.01
    memory_coef: float = 0.01
    kl_step_coef: float = 0.01
    kl_ref_coef: float = 0.0
    aux_coef: float = 0.0
    update_epochs: int = 1
    minibatch_size: int = 32
    max_grad_norm: float = 1.0
    bptt_depth: int = 1
    max_consecutive_nonfinite: int = 5

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma: must be in [0, 1], got {self.gamma}")
        if not 0.0 <= self.lam <= 1.0:
            raise ConfigError(f"lam: must be in [0, 1], got {self.lam}")
        if self.advantage == "group" and self.group_size < 2:
            raise ConfigError(f"group_size: the group baseline needs at least 2 rollouts per episode, got {self.group_size}")
        if (self.branch or self.skip_uniform_groups) and self.advantage != "group":
            raise ConfigError("branch / skip_uniform_groups: need advantage = \"group\" (they act on the rollouts "
                              "of one episode)")
        if self.clip_eps_high is not None and not 0.0 < self.clip_eps_high < 1.0:
            raise ConfigError(f"clip_eps_high: must be in (0, 1) (or left out), got {self.clip_eps_high}")
        if self.min_advantage_std < 0:
            raise ConfigError(f"min_advantage_std: must not be negative, got {self.min_advantage_std}")
        if self.reward_scale <= 0:
            raise ConfigError(f"reward_scale: must be positive, got {self.reward_scale}")
        if not 0.0 < self.clip_eps < 1.0:
            raise ConfigError(f"clip_eps: must be in (0, 1), got {self.clip_eps}")
        if self.value_clip is not None and self.value_clip <= 0:
            raise ConfigError(f"value_clip: must be positive (or left out), got {self.value_clip}")
        for key in ("value_coef", "entropy_coef", "memory_coef", "kl_step_coef", "kl_ref_coef", "aux_coef",
                    "max_grad_norm"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must not be negative, got {getattr(self, key)}")
        if self.update_epochs < 1:
            raise ConfigError(f"update_epochs: must be at least 1, got {self.update_epochs}")
        if self.minibatch_size < 0:
            raise ConfigError(f"minibatch_size: must be 0 (whole rollout) or more, got {self.minibatch_size}")
        if self.bptt_depth < 1:
            raise ConfigError(f"bptt_depth: must be at least 1 (the last write always learns), got {self.bptt_depth}")
        if self.max_consecutive_nonfinite < 1:
            raise ConfigError(f"max_consecutive_nonfinite: must be at least 1, got {self.max_consecutive_nonfinite}")
