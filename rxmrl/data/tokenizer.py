"""A byte-level BPE tokenizer (Hugging Face `tokenizers`) with the interaction format of RxT.

Special tokens, looked up by name: `[PAD] [UNK] [BOS] [EOS] [MASK] [Q] [A]` (ids 0-6 in this order when
rxmrl trains the tokenizer; an imported one, e.g. RxNN's, may place them elsewhere).
  query       -> [BOS][Q] query [A]
  answer      -> answer [EOS]
  interaction -> [BOS][Q] query [A] answer [EOS]
Truncation (`max_len`) always keeps these special tokens and cuts text tokens from the end of the text.

Text: each text is stripped of surrounding whitespace, then encoded byte-level with a leading space (so a
word is the same token wherever it stands, and nothing is ever unknown); `decode` removes that space again.
So `decode(encode_text(t)) == t.strip()` for any string. A special token's spelling inside a text ("[Q]")
is encoded as plain text, never as the special token.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rxmrl.errors import ConfigError, DataError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[MASK]", "[Q]", "[A]")
MIN_VOCAB_SIZE = len(SPECIAL_TOKENS) + 256  # the specials plus one token per byte


class Tokenizer:
    """Wraps a `tokenizers.Tokenizer` that holds the special tokens; see the module docstring."""

    def __init__(self, backend: Any, source: str = "<tokenizer>") -> None:
        missing = [t for t in SPECIAL_TOKENS if backend.token_to_id(t) is None]
        if missing:
            raise DataError(f"{source}: the tokenizer lacks the special tokens {' '.join(missing)}; "
                            f"train one with `rxmrl tokenizer train`")
        self.backend = backend
        self.backend.encode_special_tokens = True  # "[Q]" typed in a text stays text
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.mask_id, self.q_id, self.a_id = (
            backend.token_to_id(t) for t in SPECIAL_TOKENS)
        self.special_ids = frozenset((self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.mask_id,
                                      self.q_id, self.a_id))

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    # ---- single sequences --------------------------------------------------------------------------------

    def encode_text(self, text: str) -> list[int]:
        """Text tokens only, no special tokens."""
        return self.backend.encode(text.strip(), add_special_tokens=False).ids

    def encode_texts(self, texts: Sequence[str]) -> list[list[int]]:
        """`encode_text` for many texts in one call (the Rust side works on them in parallel)."""
        return [e.ids for e in self.backend.encode_batch([t.strip() for t in texts], add_special_tokens=False)]

    def encode_query(self, query: str, max_len: int | None = None) -> list[int]:
        return self._query_ids(self.encode_text(query), max_len)

    def encode_answer(self, answer: str, max_len: int | None = None) -> list[int]:
        return self._answer_ids(self.encode_text(answer), max_len)

    def encode_interaction(self, query: str, answer: str, max_len: int | None = None) -> list[int]:
        return self._interaction_ids(self.encode_text(query), self.encode_text(answer), max_len)

    def decode(self, ids: Sequence[int] | Any, skip_special: bool = True) -> str:
        return self.decode_batch([ids], skip_special)[0]

    def decode_batch(self, batch: Sequence[Sequence[int]] | Any, skip_special: bool = True) -> list[str]:
        """Decode many id sequences (lists, or rows of an array/tensor) in one call."""
        rows = batch.tolist() if hasattr(batch, "tolist") else [list(map(int, _as_list(r))) for r in batch]
        texts = self.backend.decode_batch(rows, skip_special_tokens=skip_special)
        return [t[1:] if t.startswith(" ") else t for t in texts]

    # ---- batches: (ids LongTensor [B, T], mask BoolTensor [B, T]), right-padded with pad_id ------------

    def batch_encode_queries(self, queries: Sequence[str], max_len: int, pad_to_max_len: bool = False):
        return self.pad([self._query_ids(t, max_len) for t in self.encode_texts(queries)],
                        max_len if pad_to_max_len else None)

    def batch_encode_answers(self, answers: Sequence[str], max_len: int, pad_to_max_len: bool = False):
        return self.pad([self._answer_ids(t, max_len) for t in self.encode_texts(answers)],
                        max_len if pad_to_max_len else None)

    def batch_encode_interactions(self, queries: Sequence[str], answers: Sequence[str], max_len: int,
                                  pad_to_max_len: bool = False):
        if len(queries) != len(answers):
            raise ValueError(f"{len(queries)} queries but {len(answers)} answers")
        q_ids, a_ids = self.encode_texts(queries), self.encode_texts(answers)
        return self.pad([self._interaction_ids(q, a, max_len) for q, a in zip(q_ids, a_ids)],
                        max_len if pad_to_max_len else None)

    def pad(self, sequences: Sequence[Sequence[int]], length: int | None = None):
        """Right-pad to `length` (default: the longest) -> (ids LongTensor [B, T], mask BoolTensor [B, T])."""
        import torch

        width = max((len(s) for s in sequences), default=0) if length is None else length
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.bool)
        for row, seq in enumerate(sequences):
            if len(seq) > width:
                raise ValueError(f"sequence {row} has {len(seq)} tokens, more than the padded length {width}")
            ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = True
        return ids, mask

    # ---- files ----------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the tokenizer file atomically (a kill mid-write leaves the old file, never a truncated one)."""
        from rxmrl.atomic import atomic_file

        path = Path(path)
        with atomic_file(path) as tmp:
            self.backend.save(str(tmp))
        return path

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        import tokenizers

        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: no such tokenizer file (train one with `rxmrl tokenizer train`)")
        try:
            backend = tokenizers.Tokenizer.from_file(str(path))
        except Exception as e:  # the Rust side raises a bare Exception for any malformed file
            raise DataError(f"{path}: not a tokenizers JSON file: {e}") from None
        return cls(backend, str(path))

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | Path) -> Tokenizer:
        """A `tokenizer.json` file, a folder holding one, or a Hub model id (its `tokenizer.json`)."""
        path = Path(path_or_hub_id)
        if path.is_dir():
            return cls.from_file(path / "tokenizer.json")
        from rxmrl.hub_names import looks_like_hub_id

        if path.exists() or path.suffix == ".json" or not looks_like_hub_id(str(path_or_hub_id)):
            return cls.from_file(path)  # a local path: "no such file" at once, never a Hub lookup
        from huggingface_hub import hf_hub_download

        try:
            local = hf_hub_download(str(path_or_hub_id), "tokenizer.json")
        except Exception as e:  # offline, missing repo or file: the user's environment, not a bug here
            raise DataError(f"cannot download tokenizer.json from the Hub repo '{path_or_hub_id}': "
                            f"{type(e).__name__}: {e}") from None
        return cls.from_file(local)

    # ---- truncation -----------------------------------------------------------------------------------

    def _query_ids(self, text: list[int], max_len: int | None) -> list[int]:
        keep = _budget(text, max_len, 3, "query")
        return [self.bos_id, self.q_id, *text[:keep], self.a_id]

    def _answer_ids(self, text: list[int], max_len: int | None) -> list[int]:
        keep = _budget(text, max_len, 1, "answer")
        return [*text[:keep], self.eos_id]

    def _interaction_ids(self, query: list[int], answer: list[int], max_len: int | None) -> list[int]:
        budget = _budget(query + answer, max_len, 4, "interaction")
        # when both are long each keeps half; a short one keeps all of itself and the other gets the rest
        q_keep = min(len(query), max(budget - len(answer), budget // 2))
        a_keep = min(len(answer), budget - q_keep)
        return [self.bos_id, self.q_id, *query[:q_keep], self.a_id, *answer[:a_keep], self.eos_id]


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE tokenizer with the special tokens on `texts`."""
    import tokenizers
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_VOCAB_SIZE:
        raise ConfigError(f"vocab size {vocab_size} is too small: byte-level BPE needs at least {MIN_VOCAB_SIZE} "
                          f"({len(SPECIAL_TOKENS)} special tokens + 256 bytes)")
    backend = tokenizers.Tokenizer(models.BPE(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    seen = 0

    def stripped() -> Iterable[str]:
        nonlocal seen
        for text in texts:
            if text.strip():
                seen += 1
                yield text.strip()

    backend.train_from_iterator(stripped(), trainer)
    if seen == 0:
        raise DataError("no text to train the tokenizer on")
    return Tokenizer(backend, "<trained>")


def _budget(text: list[int], max_len: int | None, n_special: int, what: str) -> int:
    if max_len is None:
        return len(text)
    if max_len < n_special:
        raise ValueError(f"max_len {max_len} cannot hold the {n_special} special tokens of an {what}")
    return min(len(text), max_len - n_special)


def _as_list(row: Any) -> list:
    return row.tolist() if hasattr(row, "tolist") else list(row)
