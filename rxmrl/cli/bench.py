"""`rxmrl bench NAME ...`: each benchmark is a module with `add_arguments(parser)` and `run(args) -> int`; its
first docstring line is its help text. Most live in `rxmrl.bench`; `mrl-gain` runs whole curricula, so it is a
recipe (`rxmrl.recipes.mrl_gain`)."""

from __future__ import annotations

import argparse
import importlib

# benchmark name on the command line -> its module
BENCHMARKS = {
    "generate": "rxmrl.bench.generate",
    "reward": "rxmrl.bench.reward",
    "train-step": "rxmrl.bench.train_step",
    "retention": "rxmrl.bench.retention",
    "latency": "rxmrl.bench.latency",
    "mrl-gain": "rxmrl.recipes.mrl_gain",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure speed and retention; write JSON (and plots)")
    bench = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, module_name in BENCHMARKS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or name).strip().splitlines()[0]
        sub = bench.add_parser(
            name, help=doc, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
