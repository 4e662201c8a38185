"""The composite MRL reward: a weighted sum of named components, scaled to 0-10.

Components (each [B], in [0, 1]; see `rxmrl.reward.spec.COMPONENTS`):
  bleu                  TensorBLEU of the answer against the reference answer. Token ids are used when the
                        batch has both `generated_ids` and `reference_ids`; otherwise the texts are split into
                        lower-case words and punctuation marks (`text.bleu_tokens`) and mapped to ids.
  reference_similarity  embedding cosine to the reference answer (clamped at 0).
  memory_similarity     embedding cosine to the mean direction of the remembered interactions
                        (each embedded as "query\\nanswer").
  fact_recall           fact F1 when the episode has facts the reference states. An episode without facts
                        scores the F1 of the relevance-weighted recall of the remembered content words and
                        its precision (`rxmrl.reward.fact_recall`), averaged with the F1 of the values the
                        answer claims against those the reference claims (`rxmrl.reward.claims`) when the
                        reference states any ([claims] extract = false: content words only).
  contradiction         share of the scored fact slots for which the answer states another value; without
                        facts, the share of the reference's claimed values the answer contradicts.
  memory_overlap        share of the answer's content words copied from the remembered interactions only.
  length, repetition    penalties (`rxmrl.reward.penalties`).
Plug-in components (`[[plugins]]`) add their own totals under their names.

Scoring. Each sample's mode picks a weight vector w (the spec's [weights.<mode>]); with c the components,
    total = scale * clamp(sum(w * c) / sum(w where w > 0), 0, 1)
so an answer that is perfect on every positive component and free of penalties scores `scale`. An answer
with no words scores 0 whatever the components say.

Modes (what the environment passes per sample):
  standard    recall the remembered interactions: reference-anchored components plus memory.
  negative    the question changes the topic; `remember` is what the answer should NOT repeat, so
              memory_similarity and memory_overlap get negative weights and fact_recall none.
  long_range  the last step of a long-range episode: the question goes back to the first interaction after
              unrelated steps, so the preset moves weight from BLEU towards memory_similarity and
              fact_recall (what the memory kept) and punishes contradictions harder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rxmrl.reward.base import MODES, RewardBatch, RewardOutput
from rxmrl.reward.claims import ClaimExtractor, extract_claims, score_claims
from rxmrl.reward.fact_recall import memory_overlap, score_content, score_facts
from rxmrl.reward.penalties import length_penalty, repetition_rate
from rxmrl.reward.similarity import TextEmbedder
from rxmrl.reward.spec import COMPONENTS, RewardSpec
from rxmrl.reward.bleu import tensor_bleu
from rxmrl.reward.text import bleu_tokens, tokens_to_ids, words


class CompositeReward:
    """`reward(batch) -> RewardOutput` for a `RewardSpec`. Relative plug-in paths are read from `base_dir`.

    `claim_extractor` replaces the rule-based claim extraction used without facts (a model-based judge:
    `fn(text, known_names) -> list[Claim]`); it wins over the spec's [claims] extractor.
    """

    def __init__(self, spec: RewardSpec, *, base_dir: str | Path | None = None,
                 embedder: TextEmbedder | None = None, claim_extractor: ClaimExtractor | None = None) -> None:
        self.spec = spec
        self.claim_extractor = None
        if spec.claims.extract:
            self.claim_extractor = claim_extractor or _load_extractor(spec.claims.extractor) or extract_claims
        self.name = spec.name
        self.components = spec.used_components()
        self.embedder = embedder
        needs_embeddings = {"reference_similarity", "memory_similarity"} & set(self.components)
        if self.embedder is None and needs_embeddings:
            s = spec.similarity
            self.embedder = TextEmbedder(s.model, device=s.device, batch_size=s.batch_size, cache_size=s.cache_size)
        self.plugins = []
        if spec.plugins:
            from rxmrl.reward.registry import get_reward  # late: the registry builds composites too

            for plugin in spec.plugins:
                self.plugins.append((plugin, get_reward(_relative_to(plugin.spec, base_dir))))
        names = list(self.components) + [p.name for p, _ in self.plugins]
        # [modes, components]: one weight row per mode, columns in `names` order
        self._weights = torch.tensor(
            [[spec.weights.for_mode(m).as_dict()[n] for n in self.components] + [p.weight for p, _ in self.plugins]
             for m in MODES],
            dtype=torch.float32,
        ).reshape(len(MODES), len(names))
        self._names = names

    def __call__(self, batch: RewardBatch) -> RewardOutput:
        size = len(batch)
        for i in range(size):
            if batch.mode_at(i) not in MODES:
                raise ValueError(f"sample {i}: unknown mode {batch.mode_at(i)!r}; expected one of {MODES}")
        values = self.component_values(batch)
        for plugin, reward in self.plugins:
            values[plugin.name] = reward(batch).total.to(torch.float32)

        stacked = torch.stack([values[n] for n in self._names], dim=1) if self._names else torch.zeros(size, 0)
        mode_index = torch.tensor([MODES.index(batch.mode_at(i)) for i in range(size)], dtype=torch.long)
        w = self._weights[mode_index]  # [B, C]
        raw = (w * stacked).sum(dim=1) / w.clamp(min=0).sum(dim=1)
        total = self.spec.scale * raw.clamp(0.0, 1.0)
        has_words = torch.tensor([bool(words(text)) for text in batch.generated], dtype=torch.bool)
        total = torch.where(has_words, total, torch.zeros_like(total))
        return RewardOutput(total=total.to(torch.float32), components=values)

    def component_values(self, batch: RewardBatch) -> dict[str, torch.Tensor]:
        """The used built-in components, each [B] float32 in [0, 1]."""
        used = set(self.components)
        size = len(batch)
        out: dict[str, torch.Tensor] = {}
        if "bleu" in used:
            out["bleu"] = self._bleu(batch)
        if "reference_similarity" in used:
            out["reference_similarity"] = self.embedder.similarity(batch.generated, [[r] for r in batch.reference])
        if "memory_similarity" in used:
            remembered = [[f"{it.query}\n{it.answer}" for it in group] for group in batch.remember]
            out["memory_similarity"] = self.embedder.similarity(batch.generated, remembered)
        if {"fact_recall", "contradiction"} & used:
            recall, contradiction = [], []
            for i in range(size):
                r, c = _recall_and_contradiction(batch, i, self.claim_extractor)
                recall.append(r)
                contradiction.append(c)
            out["fact_recall"] = torch.tensor(recall, dtype=torch.float32)
            out["contradiction"] = torch.tensor(contradiction, dtype=torch.float32)
        if "memory_overlap" in used:
            out["memory_overlap"] = torch.tensor(
                [memory_overlap(batch.generated[i], batch.query[i], batch.reference[i], batch.remember[i])
                 for i in range(size)], dtype=torch.float32)
        p = self.spec.penalties
        if "length" in used:
            out["length"] = torch.tensor(
                [length_penalty(len(words(g)), len(words(r)), tolerance=p.length_tolerance, limit=p.length_limit)
                 for g, r in zip(batch.generated, batch.reference)], dtype=torch.float32)
        if "repetition" in used:
            out["repetition"] = torch.tensor(
                [repetition_rate(words(g), p.repetition_n) for g in batch.generated], dtype=torch.float32)
        return {name: out[name] for name in COMPONENTS if name in used}

    def _bleu(self, batch: RewardBatch) -> torch.Tensor:
        b = self.spec.bleu
        if batch.generated_ids is not None and batch.reference_ids is not None:
            cand, ref, pad = batch.generated_ids, batch.reference_ids, batch.pad_id
        else:
            cand, ref = tokens_to_ids([bleu_tokens(t) for t in batch.generated],
                                      [bleu_tokens(t) for t in batch.reference], pad_id=0)
            pad = 0
        score = tensor_bleu(cand, ref, pad_id=pad, max_n=b.max_n, smoothing=b.smoothing, smooth_value=b.smooth_value)
        return score.cpu()  # ids may live on the policy's device; the other components are on the CPU


def _recall_and_contradiction(batch: RewardBatch, i: int, extractor: ClaimExtractor | None) -> tuple[float, float]:
    facts = batch.facts_at(i)
    if facts:
        score = score_facts(batch.generated[i], batch.reference[i], batch.query[i], facts)
        if score is not None:
            return score.f1, score.contradiction
    content = score_content(batch.generated[i], batch.query[i], batch.reference[i], batch.remember[i]).f1
    if facts or extractor is None:  # episodes with facts keep their fallback exactly
        return content, 0.0
    claims = score_claims(batch.generated[i], batch.query[i], batch.reference[i], batch.remember[i], extractor)
    if claims is None:
        return content, 0.0
    return (content + claims.f1) / 2, claims.contradiction


def _load_extractor(spec: str) -> ClaimExtractor | None:
    """The callable a "module:function" names, or None for ""."""
    if not spec:
        return None
    import importlib

    from rxmrl.errors import ConfigError

    module_name, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(f"claims.extractor: cannot load '{spec}' ({type(e).__name__}: {e})") from None


def _relative_to(spec: str, base_dir: str | Path | None) -> str:
    """A plug-in spec naming a file next to the reward spec resolves there; anything else is unchanged."""
    if base_dir is None:
        return spec
    file_part, sep, attr = spec.partition(".py:")
    file_name = file_part + ".py" if sep else spec
    if file_name.endswith((".py", ".toml")) and not Path(file_name).is_absolute():
        candidate = Path(base_dir) / file_name
        if candidate.is_file() and not Path(file_name).is_file():
            return str(candidate) + (":" + attr if sep else "")
    return spec
