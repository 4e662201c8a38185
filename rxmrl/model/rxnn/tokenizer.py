"""RxNN's tokenizer.json -> rxmrl's Tokenizer.

RxNN's TokenizerTrainer writes a byte-level BPE with a `[BOS] $A [EOS]` template and no decoder (RxNN
replaces 'Ġ' by hand when it prints). rxmrl never applies the template (it places the special tokens
itself: `[BOS][Q] q [A] a [EOS]`), looks the special tokens up by name, and decodes through the backend, so
the import only adds the byte-level decoder that turns 'Ġcat' back into ' cat'.
"""

from __future__ import annotations

from pathlib import Path

from rxmrl.data.tokenizer import Tokenizer


def import_tokenizer(file_or_id: str | Path) -> Tokenizer:
    """A tokenizer.json, a folder holding one, or a Hub id -> Tokenizer (DataError when it lacks a special token)."""
    from tokenizers import decoders

    tokenizer = Tokenizer.from_pretrained(file_or_id)
    backend = tokenizer.backend
    if backend.decoder is None and type(backend.pre_tokenizer).__name__ == "ByteLevel":
        backend.decoder = decoders.ByteLevel()
    return tokenizer
