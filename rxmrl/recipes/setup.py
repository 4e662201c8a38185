"""What a curriculum run is built from: the device, the tokenizer, the model and each stage's episodes.

Everything here is a pure function of the resolved curriculum (and files in the run folder), so a resumed run
rebuilds exactly the objects the first run had before loading the checkpoint into them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from rxmrl.data.episode import Episode
from rxmrl.errors import ConfigError
from rxmrl.recipes.curriculum_config import CurriculumConfig, MrlDataConfig, StageConfig

TOKENIZER_FILE = "tokenizer.json"


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU. Asking for CUDA without one is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: '{name}' was asked for but CUDA is not available; use device = \"cpu\" or \"auto\"")
    return torch.device(name)


def model_folder(config: CurriculumConfig) -> Path | None:
    """The trained-model folder `[model] name` points to, or None for a preset."""
    path = Path(config.model.name)
    return path if path.is_dir() else None


def stage_episodes(data: MrlDataConfig, stage: StageConfig, *, held_out: bool, seed: int) -> list[Episode]:
    """The episode pool of a stage: training episodes, or the held-out ones it is scored on."""
    from rxmrl.env.episodes import select_episodes

    steps, strategy = stage.follow_ups, stage.episode_strategy
    count = data.eval_episodes if held_out else data.episodes
    source, split = data.source_and_split(held_out=held_out)
    if source == "synthetic":
        if count < 1:
            raise ConfigError("data.episodes: the synthetic generator needs a number of episodes to generate (not 0)")
        per_strategy = math.ceil(count / (2 if strategy == "mixed" and steps > 1 else 1))
        pool = select_episodes(source="synthetic", split=split, steps=steps, strategy=strategy, seed=seed,
                               synthetic_episodes=per_strategy)
    else:
        pool = select_episodes(source=source, subset=data.subset_for(steps), split=split, steps=steps,
                               strategy=strategy)
    return pool[:count] if count else pool


def training_texts(config: CurriculumConfig, limit: int) -> list[str]:
    """Text of the first training episodes of every stage (queries and answers), for training a tokenizer."""
    stages = config.expanded_stages()
    per_stage = max(1, math.ceil(limit / len(stages)))
    texts: list[str] = []
    for stage in stages:
        data = stage.data
        episodes = stage_episodes(data, stage, held_out=False, seed=config.seed)[:per_stage]
        texts += [t for e in episodes for i in e.interactions for t in (i.query, i.answer)]
    return texts


def build_tokenizer(config: CurriculumConfig, run_dir: Path) -> Any:
    """The run's tokenizer, saved as RUN_DIR/tokenizer.json the first time (and read from there on resume)."""
    from rxmrl.data.tokenizer import Tokenizer, train_tokenizer

    saved = run_dir / TOKENIZER_FILE
    if saved.is_file():
        return Tokenizer.from_file(saved)
    folder = model_folder(config)
    if config.tokenizer.path:
        tokenizer = Tokenizer.from_pretrained(config.tokenizer.path)
    elif folder is not None and (folder / TOKENIZER_FILE).is_file():
        tokenizer = Tokenizer.from_file(folder / TOKENIZER_FILE)
    elif folder is not None:
        raise ConfigError(f"tokenizer.path: the model folder {folder} has no {TOKENIZER_FILE}; name the tokenizer "
                          f"it was trained with")
    else:
        from rxmrl.model import load_preset

        size = config.tokenizer.vocab_size or load_preset(config.model.name, **config.model.overrides).vocab_size
        tokenizer = train_tokenizer(training_texts(config, config.tokenizer.train_episodes), size,
                                    config.tokenizer.min_frequency)
    tokenizer.save(saved)
    return tokenizer


def build_model(config: CurriculumConfig, tokenizer: Any, *, seed: int) -> Any:
    """A trained model folder, or fresh weights from a preset (seeded) sized to the tokenizer's vocabulary."""
    from rxmrl.model import RxT, load_preset

    folder = model_folder(config)
    if folder is not None:
        if config.model.overrides:
            raise ConfigError(f"model.overrides: '{folder}' is a trained model folder; overrides apply to presets only")
        model = RxT.from_pretrained(folder)
    else:
        overrides = dict(config.model.overrides)
        overrides.setdefault("vocab_size", tokenizer.vocab_size)
        model_config = load_preset(config.model.name, **overrides)
        torch.manual_seed(seed)
        model = RxT(model_config)
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ConfigError(f"model.name: the model has {model.config.vocab_size} token embeddings but the tokenizer "
                          f"{tokenizer.vocab_size} tokens; use the tokenizer the model was trained with")
    return model


def build_reward(config: CurriculumConfig) -> Any:
    """The reward: `[reward.composite]` when given, else `[reward] spec` through `rxmrl.reward.get_reward`."""
    from rxmrl.reward import get_reward

    spec = config.reward.composite
    if spec is None:
        return get_reward(config.reward.spec)
    from rxmrl.reward.composite import CompositeReward
    from rxmrl.reward.registry import NamedReward

    return NamedReward(spec.name, CompositeReward(spec), user_code=False)


def check_lengths(config: CurriculumConfig, max_seq_len: int) -> None:
    """Queries plus answers must fit the model's context: fail before any work, naming the keys."""
    for i, stage in enumerate(config.stage):
        answer = max(stage.data.max_answer_len, stage.generation.max_new_tokens + 1)
        if stage.data.max_query_len + answer > max_seq_len:
            raise ConfigError(
                f"stage[{i}]: data.max_query_len ({stage.data.max_query_len}) + the answer budget ({answer} = "
                f"max(data.max_answer_len, generation.max_new_tokens + 1)) exceeds the model's max_seq_len "
                f"{max_seq_len}; shorten them or raise model.overrides.max_seq_len")
