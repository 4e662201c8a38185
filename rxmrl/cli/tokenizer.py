"""`rxmrl tokenizer train`: a byte-level BPE tokenizer with special tokens [PAD] [UNK] [BOS] [EOS] [MASK] [Q] [A]."""

from __future__ import annotations

import argparse
import itertools


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenizer", help="train a BPE tokenizer")
    actions = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train", help="train a tokenizer on every text of one or more sources",
        description="Reads every query, answer, follow-up and story of each --data source (Hub id, snapshot "
                    "folder, or .jsonl/.json/.parquet file) and writes a tokenizers JSON file.")
    train.add_argument("--data", action="append", required=True, help="a source; repeat for several")
    train.add_argument("--vocab", type=int, required=True, help="vocabulary size, special tokens included")
    train.add_argument("--out", required=True, help="output file, e.g. tokenizer.json (must be new)")
    train.add_argument("--overwrite", action="store_true", help="replace an existing tokenizer file")
    train.add_argument("--min-frequency", type=int, default=2, help="merges need pairs seen this often (default 2)")
    train.add_argument("--split", default="train", help="split to read from snapshots; 'all' for every split")
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rxmrl.data.loader import iter_all_texts
    from rxmrl.data.tokenizer import train_tokenizer
    from rxmrl.errors import OutputError

    out = Path(args.out)
    if out.is_dir():
        raise OutputError(f"--out {out}: is a folder; give the tokenizer file to write, e.g. {out / 'tokenizer.json'}")
    if out.exists() and not args.overwrite:
        raise OutputError(f"--out {out}: the file exists; choose a new --out or pass --overwrite to replace it")
    split = None if args.split == "all" else args.split
    texts = itertools.chain.from_iterable(iter_all_texts(source, split) for source in args.data)
    tokenizer = train_tokenizer(texts, args.vocab, min_frequency=args.min_frequency)
    path = tokenizer.save(args.out)
    example = "Lily found a red kite in the park."
    tokens = [tokenizer.backend.id_to_token(i) for i in tokenizer.encode_text(example)]
    print(f"wrote {path}: {tokenizer.vocab_size} tokens; {example!r} -> {len(tokens)} tokens {tokens}")
    return 0
