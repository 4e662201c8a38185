"""The `rxmrl` command. Each sub-command group lives in its own module with a `register(subparsers)`.

Modules import heavy dependencies inside their handlers, so `rxmrl --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rxmrl.errors import RxmrlError

# Sub-command modules, in the order `rxmrl --help` lists them.
COMMAND_MODULES = ("model", "data", "tokenizer", "reward", "warmstart", "train", "baseline", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rxmrl",
        description="Memory Reinforcement Learning for Reactive Transformers.",
    )
    parser.add_argument("--version", action="version", version=f"rxmrl {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"rxmrl.cli.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        _check_common(args)
        return int(args.handler(args) or 0)
    except RxmrlError as e:
        print(f"rxmrl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rxmrl: interrupted", file=sys.stderr)
        return 130


def _check_common(args: argparse.Namespace) -> None:
    """Options several commands share, checked once for all of them."""
    from rxmrl.errors import ConfigError

    threads = getattr(args, "threads", None)
    if isinstance(threads, int) and threads < 0:
        raise ConfigError(f"--threads: must be 0 (torch's default) or more, got {threads}")


def _version() -> str:
    from rxmrl import __version__

    return __version__


if __name__ == "__main__":
    sys.exit(main())
