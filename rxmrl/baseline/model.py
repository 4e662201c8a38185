"""The stateless baseline's model: a Llama-style decoder-only LM sized like an RxT decoder, and its folder.

Sizing (`stateless_config`). The baseline keeps the RxT decoder's width `dim`, its number of layers, its
vocabulary, RoPE base and norm epsilon, and the shape of its self-attention (query heads, key/value heads,
head dim `dim / decoder.heads`); the LM head is untied, as in RxT. It has no memory cross-attention and a
dense SwiGLU MLP, whose width `intermediate_size` is the smallest that gives the Llama *at least* the RxT
decoder's active parameter count (shared embedding + decoder layers + LM head, with each MoE counting the
experts one token uses; `rxmrl.model.params`). So the baseline is never the smaller model of the two.
Its context (`max_position_embeddings`) must hold a whole conversation; by default 9 RxT messages
(8 follow-ups + the first interaction, each up to `max_seq_len` tokens), or what the caller asks.

Folder (`save_baseline` / `load_baseline`): `transformers` files (`config.json`, `model.safetensors`,
`generation_config.json`), the tokenizer (`tokenizer.json`, readable both by `rxmrl.data.Tokenizer` and by
`transformers.AutoTokenizer`), and `rxmrl_baseline.json` (what it was matched to, parameter counts, how it
was trained).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rxmrl.errors import CheckpointError, ConfigError

BASELINE_INFO_FILE = "rxmrl_baseline.json"
DEFAULT_CONTEXT_MESSAGES = 9  # the 8+1-step retention benchmark: first interaction + 8 follow-ups


def require_transformers() -> Any:
    """The `transformers` module, or a ConfigError saying how to install it."""
    try:
        import transformers
    except ImportError:
        raise ConfigError("the stateless baseline needs `transformers` (and `trl` to train it): "
                          "pip install 'rxmrl[baseline]'") from None
    return transformers


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def rxt_decoder_active_parameters(rxt_config: Any) -> int:
    """Active parameters per token of an RxT decoder (embedding and LM head included), counted on `meta`."""
    import torch

    from rxmrl.model import RxT

    with torch.device("meta"):
        return RxT(rxt_config).parameter_counts()["decoder"]["active"]


def stateless_config(rxt_config: Any, *, vocab_size: int | None = None, context_len: int | None = None,
                     target_parameters: int | None = None) -> Any:
    """A `LlamaConfig` for the baseline of `rxt_config` (see the module docstring).

    `vocab_size` defaults to the RxT's; `context_len` to DEFAULT_CONTEXT_MESSAGES * max_seq_len;
    `target_parameters` to the RxT decoder's active count.
    """
    transformers = require_transformers()
    import torch

    vocab_size = vocab_size or rxt_config.vocab_size
    context_len = context_len or DEFAULT_CONTEXT_MESSAGES * rxt_config.max_seq_len
    target = target_parameters or rxt_decoder_active_parameters(rxt_config)
    decoder = rxt_config.decoder
    dim = rxt_config.dim

    def config_with(width: int) -> Any:
        try:
            return transformers.LlamaConfig(
                vocab_size=vocab_size, hidden_size=dim, intermediate_size=width,
                num_hidden_layers=decoder.layers, num_attention_heads=decoder.self_attention.query_heads,
                num_key_value_heads=decoder.self_attention.kv_heads, head_dim=dim // decoder.heads,
                max_position_embeddings=context_len, rms_norm_eps=rxt_config.norm_eps,
                rope_parameters={"rope_type": "default", "rope_theta": float(rxt_config.rope_base)},
                initializer_range=rxt_config.init_std, tie_word_embeddings=False,
                attention_bias=False, mlp_bias=False, pad_token_id=0, bos_token_id=2, eos_token_id=3,
            )
        except ValueError as e:  # transformers' own shape checks
            raise ConfigError(f"cannot build a Llama matching RxT preset '{rxt_config.name}': {e}") from None

    def parameters(width: int) -> int:
        with torch.device("meta"):
            return count_parameters(transformers.LlamaForCausalLM(config_with(width)))

    # The count is affine in the MLP width (3 matrices of dim x width per layer): solve, then check.
    one, two = parameters(1), parameters(2)
    slope, base = two - one, 2 * one - two
    width = max(1, math.ceil((target - base) / slope))
    if parameters(width) < target:
        raise AssertionError(f"MLP width {width} gives {parameters(width)} < {target} parameters")
    return config_with(width)


def build_stateless_model(config: Any, seed: int) -> Any:
    """A randomly initialised `LlamaForCausalLM` (float32, eval mode), seeded."""
    transformers = require_transformers()
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.LlamaForCausalLM(config)
    return model.eval()


def save_baseline(model: Any, hf_tokenizer: Any, directory: str | Path, info: dict[str, Any]) -> Path:
    """Write the baseline folder atomically: model, tokenizer and `rxmrl_baseline.json`."""
    from rxmrl.atomic import atomic_dir

    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        model.save_pretrained(str(tmp))
        hf_tokenizer.save_pretrained(str(tmp))
        full_info = {"kind": "rxmrl-stateless-baseline", "parameters": count_parameters(model), **info}
        (tmp / BASELINE_INFO_FILE).write_text(json.dumps(full_info, indent=2) + "\n")
    return directory


def is_baseline_dir(directory: str | Path) -> bool:
    return (Path(directory) / BASELINE_INFO_FILE).is_file()


def load_baseline(directory: str | Path, device: str = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """-> (LlamaForCausalLM in eval mode, rxmrl Tokenizer, info dict) from a folder written by `save_baseline`."""
    transformers = require_transformers()
    from rxmrl.data.tokenizer import Tokenizer

    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such baseline folder (train one with `rxmrl baseline train`)")
    if not is_baseline_dir(directory):
        raise CheckpointError(f"{directory}: no {BASELINE_INFO_FILE}; is this a folder written by "
                              f"`rxmrl baseline train`?")
    info = json.loads((directory / BASELINE_INFO_FILE).read_text())
    try:
        model = transformers.LlamaForCausalLM.from_pretrained(str(directory), dtype="float32")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{directory}: cannot load the baseline model: {e}") from None
    tokenizer = Tokenizer.from_file(directory / "tokenizer.json")
    return model.to(device).eval(), tokenizer, info
