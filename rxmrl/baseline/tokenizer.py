"""The rxmrl tokenizer as a `transformers` tokenizer, so TRL and `AutoTokenizer` can use the baseline folder.

The wrapper holds a *copy* of the rxmrl tokenizer's `tokenizers` backend (wrapping must not change the
original's settings) and names the same special tokens: [PAD] pad, [UNK] unk, [BOS] bos, [EOS] eos,
[MASK] mask, and [Q], [A] as extra special tokens. Ids are identical to rxmrl's for any text.

One difference to know: `transformers` reads a special token's spelling inside a text ("[Q]") as that special
token, while `rxmrl.data.Tokenizer` keeps it as text. The baseline's prompts and training rows are therefore
built as ids by `rxmrl.baseline.render`, never by formatting strings for the wrapper.
"""

from __future__ import annotations

from typing import Any

from rxmrl.baseline.model import require_transformers


def to_hf_tokenizer(tokenizer: Any, model_max_length: int | None = None) -> Any:
    """rxmrl `Tokenizer` -> `transformers.PreTrainedTokenizerFast` with the same vocabulary and special tokens."""
    transformers = require_transformers()
    import tokenizers

    backend = tokenizers.Tokenizer.from_str(tokenizer.backend.to_str())
    kwargs = {} if model_max_length is None else {"model_max_length": model_max_length}
    hf = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", bos_token="[BOS]", eos_token="[EOS]",
        mask_token="[MASK]", additional_special_tokens=["[Q]", "[A]"], **kwargs,
    )
    expected = {"pad": tokenizer.pad_id, "unk": tokenizer.unk_id, "bos": tokenizer.bos_id, "eos": tokenizer.eos_id,
                "mask": tokenizer.mask_id}
    found = {"pad": hf.pad_token_id, "unk": hf.unk_token_id, "bos": hf.bos_token_id, "eos": hf.eos_token_id,
             "mask": hf.mask_token_id}
    if found != expected:
        raise AssertionError(f"special token ids differ after wrapping: {found} != {expected}")
    return hf
