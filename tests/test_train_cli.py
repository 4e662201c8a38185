"""`rxmrl train` argument handling: user mistakes exit with status 2 and one line naming the problem."""

import pytest

from rxmrl.cli import main


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "curricula/smoke.toml"], "--out"),
        (["train", "--resume", "nowhere", "--set", "seed=1"], "a resume may change only learning rates"),
        (["train", "--resume", "nowhere", "--seed", "1"], "drop the curriculum"),
        (["train", "curricula/smoke.toml", "--out", "x", "--set", "stage.0.lr.decoder=nan"], "a finite number"),
        (["train", "curricula/smoke.toml", "--out", "x", "--set", "stage.0.lr.critic=inf"], "a finite number"),
        (["train", "curricula/smoke.toml", "--out", "x", "--set", "stage.0.lr.critic=-1e-3"], "must not be negative"),
        (["train", "--resume", "nowhere"], "not an rxmrl run folder"),
        (["train", "no-such-curriculum", "--out", "x"], "no curricula preset or file named 'no-such-curriculum'"),
        (["train", "curricula/smoke.toml", "--out", "x", "--set", "impo.clip_eps=3"], "impo.clip_eps"),
        (["train", "curricula/smoke.toml", "--out", "x", "--set", "stage.0.epoch=1"], "stage[0].epoch"),
    ],
)
def test_user_errors_exit_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rxmrl: error:") and message in err and len(err.strip().splitlines()) == 1


def test_train_and_bench_are_registered(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--resume" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["bench", "train-step", "--help"])
    assert "--answer-tokens" in capsys.readouterr().out


def test_every_listed_command_and_benchmark_has_a_parser():
    # a listed module that is missing or fails to import is an error, never a silently absent command
    import argparse

    from rxmrl.cli import COMMAND_MODULES, build_parser
    from rxmrl.cli.bench import BENCHMARKS

    def choices(parser):
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices

    commands = choices(build_parser())
    assert set(COMMAND_MODULES) <= set(commands)
    assert set(choices(commands["bench"])) == set(BENCHMARKS)
