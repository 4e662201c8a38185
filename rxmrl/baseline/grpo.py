"""Optional: fine-tune a trained baseline further with TRL's `GRPOTrainer` on rxmrl's retention reward.

One training row per rewarded follow-up: the prompt is the episode's history *with the reference answers*
(the stateless model reads the conversation as it happened) followed by the follow-up's query; the reward is
any rxmrl reward spec, called through `rxmrl.reward.trl_adapter.to_trl_reward`, which reads the columns
`query`, `reference`, `remember`, `facts`, `mode` and `step` (routed per strategy by `rxmrl.env.routing`,
as in MRL training). GRPO samples `num_generations` answers per prompt and pushes up those scoring above
their group's mean; `beta = 0` (TRL's default) needs no reference model.

Prompts are text for TRL: `[BOS][Q]q[A]a[EOS]...[BOS][Q]q[A]`. The wrapped tokenizer reads the special
tokens' spellings as the special tokens and encodes each text piece with a leading space, which gives the same
ids as `rxmrl.baseline.render` (checked by `prompt_text_ids_match`) as long as no text itself spells a special token.
Unlike the benchmark's prompts, these are not cut per message (a long story stays whole).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rxmrl.data.episode import Episode
from rxmrl.errors import ConfigError, DataError


@dataclass
class BaselineGrpo:
    steps: int = 20
    prompts_per_step: int = 2
    num_generations: int = 4
    learning_rate: float = 1e-5
    temperature: float = 1.0
    max_completion_length: int = 32
    seed: int = 0
    logging_steps: int = 1

    def check(self) -> None:
        for name in ("steps", "prompts_per_step", "max_completion_length", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations: GRPO compares answers within a group; needs 2 or more, "
                              f"got {self.num_generations}")


def interaction_text(query: str, answer: str | None) -> str:
    """`[BOS][Q]q[A]a[EOS]`, or `[BOS][Q]q[A]` for the query being asked."""
    text = f"[BOS][Q]{query.strip()}[A]"
    return text if answer is None else f"{text}{answer.strip()}[EOS]"


def grpo_rows(episodes: list[Episode], reward_intermediate: bool = True) -> list[dict[str, Any]]:
    """One row per rewarded follow-up: prompt text and the columns the TRL reward adapter reads."""
    from rxmrl.env.routing import route_step

    rows = []
    for episode in episodes:
        history = interaction_text(episode.first.query, episode.first.answer)
        for k, follow_up in enumerate(episode.follow_ups, start=1):
            route = route_step(episode, k, reward_intermediate)
            if route.rewarded:
                rows.append({
                    "prompt": history + interaction_text(follow_up.query, None),
                    "query": follow_up.query, "reference": follow_up.answer,
                    "remember": [{"query": i.query, "answer": i.answer} for i in route.remember],
                    "facts": dict(episode.facts) if episode.facts else None, "mode": route.mode, "step": k,
                })
            history += interaction_text(follow_up.query, follow_up.answer)
    return rows


def prompt_text_ids_match(hf_tokenizer: Any, tokenizer: Any, episode: Episode) -> bool:
    """Whether the wrapped tokenizer encodes a rendered prompt to exactly the ids the benchmark builds."""
    text = "".join(interaction_text(i.query, i.answer) for i in episode.interactions)
    expected = [t for i in episode.interactions for t in tokenizer.encode_interaction(i.query, i.answer)]
    return hf_tokenizer(text, add_special_tokens=False)["input_ids"] == expected


def grpo_finetune(baseline_dir: str | Path, episodes: list[Episode], reward: Any, out_dir: str | Path,
                  settings: BaselineGrpo) -> dict[str, Any]:
    """Load a baseline folder, GRPO it on `episodes` with `reward`, write the result to `out_dir`."""
    settings.check()
    try:
        import datasets
        import trl
    except ImportError:
        raise ConfigError("GRPO needs `trl` and `datasets`: pip install 'rxmrl[baseline]'") from None
    import torch

    from rxmrl.baseline.model import load_baseline, save_baseline
    from rxmrl.baseline.tokenizer import to_hf_tokenizer
    from rxmrl.reward.trl_adapter import to_trl_reward

    model, tokenizer, info = load_baseline(baseline_dir)
    hf_tokenizer = to_hf_tokenizer(tokenizer, model_max_length=model.config.max_position_embeddings)
    if not episodes:
        raise DataError("no episodes to fine-tune on")
    if not prompt_text_ids_match(hf_tokenizer, tokenizer, episodes[0]):
        raise DataError("the episodes' text renders to other ids through the transformers tokenizer (does a text "
                        "spell a special token like [Q]?); GRPO prompts would not match the benchmark's")
    rows = grpo_rows(episodes)
    dataset = datasets.Dataset.from_list(rows)
    reward_fn = to_trl_reward(reward)
    model.train()
    with tempfile.TemporaryDirectory(prefix="rxmrl-baseline-grpo-") as work_dir:
        config = trl.GRPOConfig(
            output_dir=work_dir, max_steps=settings.steps,
            per_device_train_batch_size=settings.prompts_per_step * settings.num_generations,
            num_generations=settings.num_generations, max_completion_length=settings.max_completion_length,
            learning_rate=settings.learning_rate, temperature=settings.temperature, beta=0.0,
            logging_steps=settings.logging_steps, save_strategy="no", report_to="none", seed=settings.seed,
            bf16=False, fp16=False, activation_checkpointing=False, use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
        )
        trainer = trl.GRPOTrainer(model=model, reward_funcs=[reward_fn], args=config, train_dataset=dataset,
                                  processing_class=hf_tokenizer)
        trainer.train()
        rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    model = model.to("cpu").eval()
    summary = {**{k: v for k, v in info.items() if k not in ("kind", "parameters")},
               "grpo": {**asdict(settings), "from": str(baseline_dir), "reward": reward_fn.__name__,
                        "rows": len(rows), "reward_first": rewards[0] if rewards else None,
                        "reward_last": rewards[-1] if rewards else None}}
    save_baseline(model, hf_tokenizer, out_dir, summary)
    return summary
