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
