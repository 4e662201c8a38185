"""A curriculum TOML (`curricula/*.toml`): model, tokenizer, data, reward, critic, IMPO settings, optional
`[[warmstart]]` stages, then `[[stage]]` MRL stages whose episodes grow longer.

Loading is strict and happens before any work: an unknown, missing or mistyped key, or a broken rule, is a
`ConfigError` naming the file and the key (`stage[2].unfreeze.encoder`). Four conveniences are resolved at
load time, so the saved resolved curriculum (`RUN_DIR/curriculum.json`) is explicit:

- `extends = "cpu-demo.toml"` (relative to the file) starts from another curriculum: its tables merge key by
  key with this file's, and this file's arrays (`[[stage]]`, `[[warmstart]]`) replace the base's.
- `[data]` holds defaults for every stage; a stage's own `[stage.data]` keys win.
- `steps = [1, 2, 4, 8, 16]` in one `[[stage]]` expands into one stage per entry with the same settings.
  An entry of 1 follow-up always uses the `single` strategy (the only one defined for 1 step).
- `--set` overrides may index arrays of tables: `stage.0.epochs=2`, or `stage.*.batch_size=8` for all.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rxmrl.config import from_dict, load_toml, merge, parse_overrides, to_dict
from rxmrl.data.episode_source import EpisodeSource, check_counts
from rxmrl.errors import ConfigError
from rxmrl.model.sampling import Sampling
from rxmrl.policy.critic import CriticConfig
from rxmrl.recipes.benchmark_config import BenchmarkConfig
from rxmrl.reward.spec import RewardSpec
from rxmrl.train.dmpo_config import DmpoConfig
from rxmrl.train.mrl_config import ImpoConfig
from rxmrl.train.optim_config import LearningRates
from rxmrl.train.warmstart.config import WarmStartConfig

RESOLVED_FILE = "curriculum.json"


@dataclass
class ModelSource:
    """
    Which model MRL starts from (the `[model]` table).

    Parameters:
        name (`str`, *optional*, defaults to `"rxt-tiny"`):
            A preset name or TOML file in `policies/` (fresh weights), or a folder holding a trained model
            (`model.safetensors` + `config.json`, e.g. a warm-start's `final/`).
        overrides (`dict`, *optional*, defaults to `{}`):
            Preset keys to change, e.g. `{ decoder = { layers = 2 } }` (presets only). A preset's `vocab_size`
            becomes the tokenizer's unless set here.
    """

    name: str = "rxt-tiny"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TokenizerSource:
    """
    Which tokenizer the run uses (the `[tokenizer]` table).

    Parameters:
        path (`str` or `None`, *optional*, defaults to `None`):
            A `tokenizer.json` file or a folder holding one. Left out: the model folder's tokenizer when the model
            is a trained folder, otherwise a BPE tokenizer trained from the training data at the start of the run
            (saved as `RUN_DIR/tokenizer.json`, reused on resume).
        vocab_size (`int`, *optional*, defaults to `0`):
            Size of a trained tokenizer; 0 = the model preset's `vocab_size`.
        min_frequency (`int`, *optional*, defaults to `2`):
            Minimum pair frequency for a BPE merge when training.
        train_episodes (`int`, *optional*, defaults to `2000`):
            Training episodes whose text the tokenizer is trained on.
    """

    path: str | None = None
    vocab_size: int = 0
    min_frequency: int = 2
    train_episodes: int = 2000

    def __post_init__(self) -> None:
        if self.vocab_size < 0 or self.train_episodes < 1 or self.min_frequency < 1:
            raise ConfigError("vocab_size must be 0 or more, train_episodes and min_frequency at least 1")


@dataclass
class MrlDataConfig(EpisodeSource):
    """
    Where a stage's episodes come from (`[data]` for all stages, `[stage.data]` for one): the keys of
    `rxmrl.data.episode_source.EpisodeSource` (`source`, `subset`, `split`, `eval_source`, `eval_split`,
    `max_query_len`, `max_answer_len`), and:

    Parameters:
        episodes (`int`, *optional*, defaults to `512`):
            Synthetic: training episodes generated. Real data: at most this many are used (0 = all).
        eval_episodes (`int`, *optional*, defaults to `64`):
            Held-out episodes scored after each epoch.
        max_interaction_len (`int`, *optional*, defaults to `0`):
            Tokens of an interaction written to memory (0 = the model's `max_seq_len`).
    """

    episodes: int = 512
    eval_episodes: int = 64
    max_interaction_len: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_counts(self, "episodes", "eval_episodes")
        if self.max_interaction_len < 0:
            raise ConfigError(f"max_interaction_len: must be 0 (the model's) or more, got {self.max_interaction_len}")

    def subset_for(self, steps: int) -> str | None:
        return None if self.subset is None else self.subset.replace("{steps}", str(steps))


@dataclass
class UnfreezeConfig:
    """
    Gradual unfreezing within a stage (`[stage.unfreeze]`): the epoch (0-based, within the stage) from which
    each group also trains. Memory attention always trains; groups are cumulative in the order memory
    attention → decoder memory cross-attention → encoder → everything. Set a key to -1 to keep that group
    frozen for the whole stage. Frozen parts still pass gradients through to the memory.

    Parameters:
        decoder_cross_attention (`int`, *optional*, defaults to `0`):
            Epoch from which the decoder's memory cross-attention trains.
        encoder (`int`, *optional*, defaults to `0`):
            Epoch from which the memory encoder trains.
        everything (`int`, *optional*, defaults to `0`):
            Epoch from which all weights train (embedding, decoder self-attention and feed-forward, LM head).
    """

    decoder_cross_attention: int = 0
    encoder: int = 0
    everything: int = 0

    def __post_init__(self) -> None:
        order = [("decoder_cross_attention", self.decoder_cross_attention), ("encoder", self.encoder),
                 ("everything", self.everything)]
        for key, value in order:
            if value < -1:
                raise ConfigError(f"{key}: an epoch (0 or more) or -1 for never, got {value}")
        starts = [(k, v if v >= 0 else float("inf")) for k, v in order]
        for (k1, v1), (k2, v2) in zip(starts, starts[1:]):
            if v2 < v1:
                raise ConfigError(f"{k2}: unfreezes at epoch {v2}, before {k1} (epoch {v1}); groups unfreeze in "
                                  f"the order decoder_cross_attention -> encoder -> everything")

    def group_at(self, epoch: int) -> str:
        """The widest group that trains in `epoch` (one of UNFREEZE_GROUPS)."""
        level = "memory_attention"
        for name in ("decoder_cross_attention", "encoder", "everything"):
            start = getattr(self, name)
            if 0 <= start <= epoch:
                level = name
        return level


@dataclass
class PlateauConfig:
    """
    Advance to the next stage when the held-out reward stops improving (`[stage.plateau]`).

    Parameters:
        patience (`int`, *optional*, defaults to `2`):
            Epochs without an improvement of at least `min_delta` before the stage ends.
        min_delta (`float`, *optional*, defaults to `0.05`):
            Smallest held-out reward gain (0–10 scale) that counts as an improvement.
        min_epochs (`int`, *optional*, defaults to `1`):
            Epochs always run.
        max_epochs (`int`, *optional*, defaults to `10`):
            Epochs at most.
    """

    patience: int = 2
    min_delta: float = 0.05
    min_epochs: int = 1
    max_epochs: int = 10

    def __post_init__(self) -> None:
        if self.patience < 1 or self.min_epochs < 1 or self.max_epochs < self.min_epochs:
            raise ConfigError("patience and min_epochs must be at least 1, and max_epochs at least min_epochs")
        if self.min_delta < 0:
            raise ConfigError(f"min_delta: must not be negative, got {self.min_delta}")


@dataclass
class GenerationConfig:
    """
    How the policy samples answers during collection (`[stage.generation]`); held-out evaluation is greedy.

    Parameters:
        max_new_tokens (`int`, *optional*, defaults to `48`):
            Answer budget in tokens, `[EOS]` included.
        temperature (`float`, *optional*, defaults to `1.0`):
            Sampling temperature. Log-probs stay those of the untempered policy.
        top_k (`int`, *optional*, defaults to `0`):
            Sample among the k most likely tokens (0 = all).
        top_p (`float`, *optional*, defaults to `1.0`):
            Nucleus sampling threshold (1 = off).
        compile (`bool`, *optional*, defaults to `false`):
            Decode through `torch.compile`. Pays off on long runs only: the first rollout compiles for about a
            minute on a CPU (docs/BENCHMARKS.md).
    """

    max_new_tokens: int = 48
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    compile: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens: must be at least 1, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature: must be positive, got {self.temperature}")
        if self.top_k < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("top_k must be 0 or more and top_p in (0, 1]")

    @property
    def sampling(self) -> Sampling:
        return Sampling(temperature=self.temperature, top_k=self.top_k, top_p=self.top_p)


@dataclass
class StageConfig:
    """
    One MRL stage (a `[[stage]]` table).

    Parameters:
        steps (`int` or `list[int]`):
            Follow-up interactions per episode; a list expands into one stage per entry (e.g. `[2, 4, 8, 16]`).
        name (`str`, *optional*, defaults to `""`):
            Label for logs (default: `steps-<N>`).
        strategy (`str`, *optional*, defaults to `"cumulative"`):
            `single`, `cumulative`, `long_range`, or `mixed` (a per-episode mix of the last two). A 1-step entry
            always runs as `single`.
        data (`MrlDataConfig`, *optional*):
            Overrides of the curriculum's `[data]` for this stage.
        epochs (`int` or `None`, *optional*, defaults to `None`):
            Fixed number of epochs (1 when neither this nor `plateau` is given).
        plateau (`PlateauConfig` or `None`, *optional*, defaults to `None`):
            Advance when the held-out reward stops improving, instead of a fixed `epochs`.
        episodes_per_epoch (`int`, *optional*, defaults to `0`):
            Training episodes per epoch (0 = every training episode once); drawn in a seeded order.
        batch_size (`int`, *optional*, defaults to `16`):
            Episodes collected per iteration (rollouts, with `impo.advantage = "group"`).
        lr (`LearningRates`, *optional*):
            Learning rates of decoder, encoder, memory attention and critic.
        weight_decay (`float`, *optional*, defaults to `0.0`):
            AdamW weight decay.
        adam_eps (`float`, *optional*, defaults to `1e-6`):
            AdamW's epsilon. Larger than torch's 1e-8 on purpose: Adam scales every step to about the learning
            rate whatever the gradient's size, so without it the ~1e-8 gradients of float noise (for instance the
            KL term while the policy has not moved yet) become full-size random steps that erode the model.
        warmup_iterations (`int`, *optional*, defaults to `0`):
            Linear learning-rate warm-up at the start of the stage.
        min_lr_ratio (`float`, *optional*, defaults to `1.0`):
            Cosine decay to this fraction of the learning rates by the end of the stage (1 = constant).
        unfreeze (`UnfreezeConfig`, *optional*):
            Which parts train in which epoch.
        random_resets (`bool`, *optional*, defaults to `False`):
            From `reset_from_epoch` on, an episode starts from the STM its sample's previous episode left behind,
            except that each sample is reset to a fresh random STM with probability `reset_prob`. Off (and in
            earlier epochs), every episode starts from a fresh STM.
        reset_prob (`float`, *optional*, defaults to `0.1`):
            Per-sample reset probability when `random_resets` is on.
        reset_from_epoch (`int`, *optional*, defaults to `0`):
            First epoch (within the stage) that carries memory across episodes.
        teacher_forcing (`bool`, *optional*, defaults to `False`):
            Write the reference answer (not the generated one) to memory after each step.
        reward_intermediate (`bool`, *optional*, defaults to `True`):
            Reward the unrelated follow-ups of long-range episodes (scored in `negative` mode: do not repeat the
            first interaction). False: only the last follow-up, the recall, is rewarded in training; held-out
            evaluation scores every follow-up either way.
        generation (`GenerationConfig`, *optional*):
            Sampling settings for collection.
        algorithm (`str`, *optional*, defaults to `"impo"`):
            The update of this stage: `"impo"` (PPO-style, the `[impo]` table) or `"dmpo"` (memory-aware
            preference pairs, the `[dmpo]` table; its `pairs` decides what is written to memory, so
            `teacher_forcing` must stay false).
    """

    steps: int | list[int]
    name: str = ""
    strategy: Literal["single", "cumulative", "long_range", "mixed"] = "cumulative"
    data: MrlDataConfig = field(default_factory=MrlDataConfig)
    epochs: int | None = None
    plateau: PlateauConfig | None = None
    episodes_per_epoch: int = 0
    batch_size: int = 16
    lr: LearningRates = field(default_factory=LearningRates)
    weight_decay: float = 0.0
    adam_eps: float = 1e-6
    warmup_iterations: int = 0
    min_lr_ratio: float = 1.0
    unfreeze: UnfreezeConfig = field(default_factory=UnfreezeConfig)
    random_resets: bool = False
    reset_prob: float = 0.1
    reset_from_epoch: int = 0
    teacher_forcing: bool = False
    reward_intermediate: bool = True
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    algorithm: Literal["impo", "dmpo"] = "impo"

    def __post_init__(self) -> None:
        schedule = self.steps if isinstance(self.steps, list) else [self.steps]
        if not schedule:
            raise ConfigError("steps: give a follow-up count or a non-empty list of them")
        for n in schedule:
            if n < 1:
                raise ConfigError(f"steps: every entry must be at least 1 follow-up, got {n}")
            if self.strategy == "single" and n != 1:
                raise ConfigError(f"steps: strategy 'single' has exactly 1 follow-up, got {n}")
        if self.epochs is not None and self.plateau is not None:
            raise ConfigError("epochs: give either a fixed 'epochs' or a 'plateau' table, not both")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs: must be at least 1, got {self.epochs}")
        if self.episodes_per_epoch < 0:
            raise ConfigError(f"episodes_per_epoch: must be 0 (all) or more, got {self.episodes_per_epoch}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size: must be at least 1, got {self.batch_size}")
        if self.weight_decay < 0 or self.warmup_iterations < 0:
            raise ConfigError("weight_decay and warmup_iterations must not be negative")
        if self.adam_eps <= 0:
            raise ConfigError(f"adam_eps: must be positive, got {self.adam_eps}")
        if not 0 < self.min_lr_ratio <= 1:
            raise ConfigError(f"min_lr_ratio: must be in (0, 1], got {self.min_lr_ratio}")
        if not 0 <= self.reset_prob <= 1:
            raise ConfigError(f"reset_prob: must be in [0, 1], got {self.reset_prob}")
        if self.reset_from_epoch < 0:
            raise ConfigError(f"reset_from_epoch: must not be negative, got {self.reset_from_epoch}")
        if self.algorithm == "dmpo" and self.teacher_forcing:
            raise ConfigError("teacher_forcing: a dmpo stage writes what dmpo.pairs accepts; leave it false")

    # ---- resolved views (only valid on expanded stages, whose `steps` is an int) ----
    @property
    def follow_ups(self) -> int:
        assert isinstance(self.steps, int), "expand the curriculum's stages first"
        return self.steps

    @property
    def episode_strategy(self) -> str:
        return "single" if self.follow_ups == 1 else self.strategy

    @property
    def label(self) -> str:
        return self.name or f"steps-{self.follow_ups}"

    @property
    def max_epochs(self) -> int:
        if self.plateau is not None:
            return self.plateau.max_epochs
        return self.epochs if self.epochs is not None else 1


@dataclass
class RewardSource:
    """
    The reward (`[reward]`).

    Parameters:
        spec (`str`, *optional*, defaults to `"mrl-composite"`):
            A registered reward, a preset in `rewards/`, a TOML path, `module:function` or a `.py` plug-in.
        composite (`RewardSpec` or `None`, *optional*, defaults to `None`):
            An inline composite reward (the keys of a `rewards/*.toml` preset: `name`, `[weights.standard]`, ...)
            used instead of `spec`, so a curriculum can carry its own weighting.
    """

    spec: str = "mrl-composite"
    composite: RewardSpec | None = None


@dataclass
class EvalConfig:
    """
    Held-out evaluation after each epoch (`[eval]`).

    Parameters:
        batch_size (`int`, *optional*, defaults to `32`):
            Episodes scored at once.
        samples (`int`, *optional*, defaults to `2`):
            Held-out episodes whose text is logged to TensorBoard after each evaluation.
        memory_ablation (`bool`, *optional*, defaults to `True`):
            Also score the held-out episodes with every answer read from a fresh STM (`eval/no_memory/...`), and
            log the difference as `eval/memory_gain`: how much of the reward the memory is responsible for.
        before_stage (`bool`, *optional*, defaults to `True`):
            Also evaluate before a stage's first update (logged with `curriculum/epoch` = 0), the baseline the
            stage's progress is measured against.
    """

    batch_size: int = 32
    samples: int = 2
    memory_ablation: bool = True
    before_stage: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.samples < 0:
            raise ConfigError("batch_size must be at least 1 and samples 0 or more")


@dataclass
class CheckpointConfig:
    """
    Checkpointing (`[checkpoint]`). A checkpoint is always written after every epoch.

    Parameters:
        every_iterations (`int`, *optional*, defaults to `0`):
            Also write one every this many MRL iterations (0 = only after epochs).
        keep (`int`, *optional*, defaults to `2`):
            Step checkpoints kept in `RUN_DIR/checkpoints/` (the newest).
    """

    every_iterations: int = 0
    keep: int = 2

    def __post_init__(self) -> None:
        if self.every_iterations < 0 or self.keep < 1:
            raise ConfigError("every_iterations must be 0 or more and keep at least 1")


@dataclass
class CurriculumConfig:
    """
    A whole MRL curriculum.

    Parameters:
        name (`str`, *optional*, defaults to `"curriculum"`):
            Label of the run.
        seed (`int`, *optional*, defaults to `0`):
            Seed of everything random (weights, data order, sampling, resets); `--seed` overrides it.
        device (`str`, *optional*, defaults to `"cpu"`):
            `"cpu"`, `"cuda"`, `"cuda:N"` or `"auto"` (CUDA when available; bf16 autocast there).
        threads (`int`, *optional*, defaults to `0`):
            CPU threads torch may use (0 = torch's default). On a shared machine 1 is often much faster; a resumed
            run must use the same count for bit-identical results.
        log_every (`int`, *optional*, defaults to `1`):
            Iterations between metric rows.
        model, tokenizer, data, reward, critic, impo, dmpo, eval, checkpoint:
            The sub-tables documented with their classes.
        warmstart (`list[WarmStartConfig]`, *optional*, defaults to `[]`):
            `[[warmstart]]` supervised stages run first (`rxmrl/train/warmstart/config.py` has their keys).
        stage (`list[StageConfig]`):
            The MRL stages, in order.
        benchmark (`BenchmarkConfig` or `None`, *optional*, defaults to `None`):
            `[benchmark]`: the retention benchmark run after the last MRL stage (none when left out).
    """

    stage: list[StageConfig]
    name: str = "curriculum"
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    log_every: int = 1
    model: ModelSource = field(default_factory=ModelSource)
    tokenizer: TokenizerSource = field(default_factory=TokenizerSource)
    data: MrlDataConfig = field(default_factory=MrlDataConfig)
    reward: RewardSource = field(default_factory=RewardSource)
    critic: CriticConfig = field(default_factory=CriticConfig)
    impo: ImpoConfig = field(default_factory=ImpoConfig)
    dmpo: DmpoConfig = field(default_factory=DmpoConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    warmstart: list[WarmStartConfig] = field(default_factory=list)
    benchmark: BenchmarkConfig | None = None

    def __post_init__(self) -> None:
        if not self.stage:
            raise ConfigError("stage: a curriculum needs at least one [[stage]]")
        if self.device not in ("cpu", "cuda", "auto") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device: 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        if self.threads < 0:
            raise ConfigError(f"threads: must be 0 (torch's default) or more, got {self.threads}")
        if self.log_every < 1:
            raise ConfigError(f"log_every: must be at least 1, got {self.log_every}")
        for i, stage in enumerate(self.stage):
            group = self.group_size(stage)
            if stage.batch_size % group != 0:
                name, why = ("dmpo", "pairs 'sampled'") if stage.algorithm == "dmpo" else ("impo", "advantage 'group'")
                raise ConfigError(f"stage[{i}].batch_size: {stage.batch_size} is not a multiple of "
                                  f"{name}.group_size = {group} ({why})")

    def group_size(self, stage: StageConfig) -> int:
        """Rollouts per distinct episode in a batch of `stage`: the group its update compares."""
        if stage.algorithm == "dmpo":
            return self.dmpo.group_size if self.dmpo.pairs == "sampled" else 1
        return self.impo.group_size if self.impo.advantage == "group" else 1

    def uses_reference(self) -> bool:
        """Whether MRL needs the frozen reference model (IMPO's KL term, or any DMPO stage)."""
        return self.impo.kl_ref_coef > 0 or any(stage.algorithm == "dmpo" for stage in self.stage)

    def expanded_stages(self) -> list[StageConfig]:
        """One stage per follow-up count: `steps = [1, 2, 4]` gives three stages."""
        out = []
        for stage in self.stage:
            for n in stage.steps if isinstance(stage.steps, list) else [stage.steps]:
                out.append(dataclasses.replace(stage, steps=n))
        return out


# ---------------------------------------------------------------------------------------------------- loading


def load_curriculum(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
                    seed: int | None = None) -> CurriculumConfig:
    """Read, override (`--set`), resolve and validate a curriculum TOML. `seed` (`--seed`) wins over the file."""
    raw = apply_overrides(read_extended(path), parse_overrides(list(overrides)), source=str(path))
    reward = raw.get("reward")
    if isinstance(reward, dict) and "spec" in reward and "composite" in reward:
        raise ConfigError(f"{path}: [reward] has both spec = {reward['spec']!r} and an inline [reward.composite]; "
                          f"keep one of them (which one trains would otherwise be a guess)")
    if seed is not None:
        raw["seed"] = seed
    return curriculum_from_dict(raw, source=str(path))


def read_extended(path: str | Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A curriculum TOML as a dict; with `extends = "base.toml"` (relative to the file), the base's dict with this
    file's tables merged in: tables merge key by key, anything else (arrays such as `[[stage]]`) replaces."""
    raw = load_toml(path)
    base = raw.pop("extends", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: extends must be the path of a curriculum TOML, got {base!r}")
    here = Path(path).resolve()
    if here in chain:
        raise ConfigError(f"{path}: extends runs in a circle ({' -> '.join(str(p) for p in (*chain, here))})")
    return merge(read_extended(Path(path).parent / base, (*chain, here)), raw)


def curriculum_from_dict(raw: dict[str, Any], *, source: str) -> CurriculumConfig:
    """Resolve `[data]` defaults into each stage, build the dataclasses strictly."""
    raw = dict(raw)
    stages = raw.get("stage")
    if isinstance(stages, list) and isinstance(raw.get("data", {}), dict):
        raw["stage"] = [
            merge({"data": raw.get("data", {})}, s) if isinstance(s, dict) and isinstance(s.get("data", {}), dict) else s
            for s in stages
        ]
    return from_dict(CurriculumConfig, raw, source=source)


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any], *, source: str, key: str = "") -> dict[str, Any]:
    """Deep merge like `rxmrl.config.merge`, where an array of tables accepts `{"0": {...}}` or `{"*": {...}}`."""
    out = dict(base)
    for name, value in overrides.items():
        path = f"{key}{name}"
        current = out.get(name)
        if isinstance(current, list) and isinstance(value, dict) and value and all(_is_index(k) for k in value):
            items = list(current)
            for index, sub in value.items():
                targets = range(len(items)) if index == "*" else [int(index)]
                for i in targets:
                    if i >= len(items):
                        raise ConfigError(f"{source}: --set {path}.{index}: there are only {len(items)} '{name}' tables")
                    if isinstance(sub, dict) and isinstance(items[i], dict):
                        items[i] = apply_overrides(items[i], sub, source=source, key=f"{path}.{i}.")
                    else:
                        raise ConfigError(f"{source}: --set {path}.{index}: give a key inside the table, "
                                          f"e.g. {path}.{index}.epochs=2")
            out[name] = items
        elif isinstance(value, dict) and isinstance(current, dict):
            out[name] = apply_overrides(current, value, source=source, key=f"{path}.")
        else:
            out[name] = value
    return out


def _is_index(key: str) -> bool:
    return key == "*" or key.isdigit()


def save_resolved(config: CurriculumConfig, run_dir: str | Path) -> Path:
    """Write the resolved curriculum (after `--set` and `--seed`) as `RUN_DIR/curriculum.json`."""
    from rxmrl.atomic import atomic_write_text

    return atomic_write_text(Path(run_dir) / RESOLVED_FILE, json.dumps(to_dict(config), indent=2) + "\n")


def start_resolved(config: CurriculumConfig, run_dir: str | Path, *, write: bool = True) -> CurriculumConfig:
    """At a (re)start in `run_dir`: `config` with its local paths made absolute, recorded as `curriculum.json`.

    A folder that already records a curriculum (a run killed before its first MRL checkpoint) continues only
    with the same one: any other difference than `threads` or the stages' learning rates is a `ConfigError`
    naming it, since the folder's tokenizer and warm-start stages were made from the recorded settings.
    """
    from rxmrl.train.run_folder import absolute_paths, first_difference

    config = curriculum_from_dict(absolute_paths(to_dict(config)), source=f"{run_dir}/{RESOLVED_FILE}")
    if (Path(run_dir) / RESOLVED_FILE).is_file():
        # resolved values on both sides: a record written before the warm-start tables were typed holds only the
        # keys their files set
        recorded = to_dict(load_resolved(run_dir))
        difference = first_difference(_comparable(recorded), _comparable(to_dict(config)))
        if difference:
            raise ConfigError(f"{run_dir} holds a run started with other settings ({difference}); its tokenizer and "
                              f"warm start come from those. Continue it unchanged, or choose a new --out")
    if write:
        save_resolved(config, run_dir)
    return config


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    # what may differ between a killed run and its restart: the thread count, and learning rates (see
    # resume_changes.py); everything else made the files already in the folder
    data = {k: v for k, v in data.items() if k != "threads"}
    data["stage"] = [{k: v for k, v in s.items() if k != "lr"} for s in data.get("stage", [])]
    return data


def load_resolved(run_dir: str | Path) -> CurriculumConfig:
    """The curriculum a run was started with (what `--resume` uses)."""
    path = Path(run_dir) / RESOLVED_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not an rxmrl run folder (no {RESOLVED_FILE}); start it with rxmrl train")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from None
    return curriculum_from_dict(raw, source=str(path))
