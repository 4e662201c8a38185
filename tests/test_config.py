from dataclasses import dataclass, field
from typing import Literal

import pytest

from rxmrl.config import from_dict, load, merge, parse_overrides, to_dict
from rxmrl.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    kind: Literal["adamw", "sgd"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.99)


@dataclass
class Run:
    name: str
    optim: Optim = field(default_factory=Optim)
    steps: tuple[int, ...] = (1, 2)
    seed: int | None = None

    def __post_init__(self):
        if any(s < 1 for s in self.steps):
            raise ConfigError("steps: every entry must be >= 1")


def test_from_dict_converts_and_keeps_defaults():
    run = from_dict(Run, {"name": "a", "optim": {"lr": 1, "betas": [0.8, 0.9]}, "steps": [1, 4, 16]})
    assert run == Run(name="a", optim=Optim(lr=1.0, betas=(0.8, 0.9)), steps=(1, 4, 16))
    assert isinstance(run.optim.lr, float)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "a", "optim": {"lrr": 1}}, "unknown key 'optim.lrr' (did you mean 'optim.lr'?)"),
        ({"name": "a", "optim": {"kind": "adam"}}, "'optim.kind' must be one of 'adamw', 'sgd'"),
        ({"name": 3}, "'name' must be a string"),
        ({"name": "a", "steps": [1, "x"]}, "'steps[1]' must be an integer"),
        ({"name": "a", "seed": True}, "'seed' must be an integer"),
        ({"name": "a", "optim": {"betas": [0.9]}}, "'optim.betas' must be an array of 2 items"),
        ({}, "missing required key 'name'"),
        ({"name": "a", "steps": [0]}, "steps: every entry must be >= 1"),
    ],
)
def test_errors_name_the_key_and_the_file(data, message):
    with pytest.raises(ConfigError) as e:
        from_dict(Run, data, source="run.toml")
    assert str(e.value).startswith("run.toml: ")
    assert message in str(e.value)


def test_overrides_parse_toml_literals_and_merge(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('name = "base"\n[optim]\nlr = 0.1\n')
    run = load(Run, path, ["optim.lr=2e-4", "steps=[2, 4]", "name=hello world", "seed=7"])
    assert run == Run(name="hello world", optim=Optim(lr=2e-4), steps=(2, 4), seed=7)
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["optim.lr"])


def test_invalid_toml_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("name = \n")
    with pytest.raises(ConfigError, match="bad.toml: invalid TOML"):
        load(Run, path)


def test_to_dict_round_trips():
    run = Run(name="x", steps=(1, 8), seed=None)
    assert from_dict(Run, to_dict(run)) == run
