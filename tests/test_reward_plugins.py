"""Reward plug-ins by every route, their error handling, and the TRL adapters both ways."""

import inspect
import math
import sys
from pathlib import Path

import pytest
import torch

from rxmrl.data.episode import Interaction
from rxmrl.errors import RewardError
from rxmrl.reward import (
    RewardBatch, RewardOutput, from_trl_reward, get_reward, list_rewards, register_reward, to_trl_reward,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "rewards" / "example_plugin.py"
STORY = Interaction("Tell me a story.", "Lily had a red kite. She flew it in the park.")
FACTS = {"name": "lily", "object": "kite", "colour": "red", "place": "park"}


def make_batch(generated=("It was red.", "It was blue.")):
    size = len(generated)
    return RewardBatch(query=["What colour was Lily's kite?"] * size, generated=list(generated),
                       reference=["Lily's kite was red."] * size, remember=[[STORY]] * size, facts=[FACTS] * size)


def answer_length(batch):
    return [float(len(g.split())) for g in batch.generated]


PLUGIN_MODULE = '''
def answer_length(batch):
    return [float(len(g.split())) for g in batch.generated]

def broken(batch):
    raise KeyError("no such column")

def not_finite(batch):
    return [float("nan")] * len(batch)
'''


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A module `fake_reward_pkg` and a fake installed distribution declaring it as entry points."""
    (tmp_path / "fake_reward_pkg.py").write_text(PLUGIN_MODULE)
    dist = tmp_path / "fake_reward_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-reward-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[rxmrl.rewards]\nfake-length = fake_reward_pkg:answer_length\nfake-missing = fake_reward_pkg:nothing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("fake_reward_pkg", None)


def test_decorator_registers_a_name():
    @register_reward("test-plugins-length")
    def length_reward(batch):
        return answer_length(batch)

    reward = get_reward("test-plugins-length")
    assert reward.name == "test-plugins-length"
    assert reward(make_batch()).total.tolist() == [3.0, 3.0]
    assert "test-plugins-length" in list_rewards()
    with pytest.raises(RewardError, match="already registered"):
        register_reward("test-plugins-length")(answer_length)


def test_entry_point_route(plugin_path):
    reward = get_reward("fake-length")
    assert reward(make_batch(["a b c d", "a"])).total.tolist() == [4.0, 1.0]
    assert list_rewards()["fake-length"] == "entry point fake_reward_pkg:answer_length"
    with pytest.raises(RewardError, match="entry point 'fake-missing'.*failed to load"):
        get_reward("fake-missing")


def test_module_function_route(plugin_path):
    assert get_reward("fake_reward_pkg:answer_length")(make_batch(["a b"])).total.tolist() == [2.0]
    with pytest.raises(RewardError, match="has no 'nope'"):
        get_reward("fake_reward_pkg:nope")
    with pytest.raises(RewardError, match="cannot import module 'not_a_module_xyz'"):
        get_reward("not_a_module_xyz:f")


def test_python_file_route_with_and_without_function():
    echo = get_reward(f"{EXAMPLE}:question_echo")
    out = echo(make_batch(["Lily's kite.", "It was red."]))
    assert out.total.tolist() == [1.0, 0.0]  # "lily kite" only repeats the question
    assert out.components["question_echo"].tolist() == [1.0, 0.0]
    # Without ":function" the file's one registered reward is used; loading it registered the name too.
    assert get_reward(str(EXAMPLE)).name == "question-echo"
    assert get_reward("question-echo")(make_batch(["It was red."])).total.tolist() == [0.0]
    # A TRL-style function in a file is adapted.
    ends = get_reward(f"{EXAMPLE}:ends_with_sentence")
    assert ends(make_batch(["It was red.", "red"])).total.tolist() == [1.0, 0.0]
    with pytest.raises(RewardError, match="does not exist"):
        get_reward("no/such/file.py")


def test_bare_plugin_file_name_is_found_in_the_catalog(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not next to the file: the rewards/ catalog of the checkout supplies it
    reward = get_reward("example_plugin.py:ends_with_sentence")
    assert reward(make_batch(["Yes!", "no"])).total.tolist() == [1.0, 0.0]
    with pytest.raises(RewardError, match="does not exist"):
        get_reward("no_such_plugin.py")


def test_failing_plugins_raise_errors_that_name_them(plugin_path):
    with pytest.raises(RewardError, match=r"reward 'fake_reward_pkg:broken' raised KeyError"):
        get_reward("fake_reward_pkg:broken")(make_batch())
    with pytest.raises(RewardError, match=r"reward 'fake_reward_pkg:not_finite' returned non-finite"):
        get_reward("fake_reward_pkg:not_finite")(make_batch())

    def too_short(batch):
        return [1.0]

    with pytest.raises(RewardError, match=r"reward 'too_short' returned \(1,\) values for a batch of 2"):
        get_reward(too_short)(make_batch())

    def bad_component(batch):
        return RewardOutput(total=torch.zeros(len(batch)), components={"x": torch.tensor([0.0, math.inf])})

    with pytest.raises(RewardError, match="component 'x' is non-finite"):
        get_reward(bad_component)(make_batch())

    bad_file = plugin_path / "bad_plugin.py"
    bad_file.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RewardError, match=r"bad_plugin\.py' failed to load: RuntimeError: boom"):
        get_reward(str(bad_file))
    with pytest.raises(RewardError, match="unknown reward 'definitely-not-a-reward'"):
        get_reward("definitely-not-a-reward")


def test_callables_and_presets_resolve():
    assert get_reward(answer_length)(make_batch(["a b c"])).total.tolist() == [3.0]
    preset = get_reward("fact-recall")
    assert preset.name == "fact-recall"
    assert preset(make_batch()).total.tolist() == [10.0, 0.0]
    by_path = get_reward(str(REPO / "rewards" / "fact-recall.toml"))
    assert by_path(make_batch()).total.tolist() == [10.0, 0.0]


# ---- TRL adapters -------------------------------------------------------------------------------------------


def test_trl_calling_convention_is_the_one_adapted():
    # trl 1.16 GRPOTrainer calls reward functions with these keywords; if TRL changes it, this test says so.
    from trl import GRPOTrainer

    source = inspect.getsource(GRPOTrainer._calculate_rewards)
    assert "prompts=prompts, completions=completions, completion_ids=completion_ids_list, **reward_kwargs" in source
    assert 'reward_kwargs["log_metric"]' in source


def trl_kwargs(logged):
    """The extra keywords GRPOTrainer adds to the dataset columns."""
    return {"trainer_state": object(), "log_extra": lambda column, values: None,
            "log_metric": lambda name, value: logged.append((name, value))}


def test_rxmrl_reward_as_trl_function_plain_text():
    from trl.trainer.utils import get_callable_name

    fn = to_trl_reward("fact-recall")
    assert get_callable_name(fn) == "fact-recall"
    logged = []
    remember = [{"query": STORY.query, "answer": STORY.answer}]
    # `datasets` fills absent struct fields with None; those slots are dropped.
    facts = dict(FACTS, food=None)
    rewards = fn(
        prompts=["What colour was Lily's kite?"] * 2,
        completions=["It was red.", "It was blue."],
        completion_ids=[[1, 2, 3], [1, 2, 4]],
        reference=["Lily's kite was red."] * 2,
        remember=[remember, remember],
        facts=[facts, facts],
        **trl_kwargs(logged),
    )
    assert rewards == [10.0, 0.0]
    direct = get_reward("fact-recall")(make_batch())
    assert rewards == direct.total.tolist()
    assert ("fact-recall/fact_recall", 0.5) in logged and ("fact-recall/contradiction", 0.5) in logged


def test_rxmrl_reward_as_trl_function_conversational():
    fn = to_trl_reward("fact-recall", name="facts")
    prompt = [{"role": "system", "content": "You remember stories."},
              {"role": "user", "content": "What colour was Lily's kite?"}]
    completions = [[{"role": "assistant", "content": "It was red."}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "It was blue."}]}]]
    rewards = fn(prompts=[prompt, prompt], completions=completions, completion_ids=[[1], [2]],
                 reference=["Lily's kite was red."] * 2, remember=[[{"query": "q", "answer": STORY.answer}]] * 2,
                 facts=[FACTS, FACTS], mode=["standard", "long_range"], **trl_kwargs([]))
    assert rewards == [10.0, 0.0]
    with pytest.raises(RewardError, match="no 'reference' column"):
        fn(prompts=[prompt], completions=completions[:1], completion_ids=[[1]])


def test_trl_style_function_as_rxmrl_reward():
    seen = {}

    def trl_reward(prompts, completions, completion_ids, **kwargs):
        seen.update(prompts=prompts, completion_ids=completion_ids, **kwargs)
        return [float(len(ids)) for ids in completion_ids]

    reward = from_trl_reward(trl_reward)
    wrapped = get_reward(trl_reward)  # detected as TRL-style by its parameters
    batch = make_batch(["It was red.", "Red!"])
    assert wrapped(batch).total.tolist() == [4.0, 2.0]  # word-level ids: "it was red ." and "red !"
    assert reward(batch) == [4.0, 2.0]
    assert seen["prompts"] == batch.query and seen["reference"] == batch.reference
    assert seen["remember"][0] == [{"query": STORY.query, "answer": STORY.answer}]
    assert seen["facts"] == [FACTS, FACTS] and seen["mode"] == ["standard", "standard"]
    # Token ids from the batch are passed without padding.
    with_ids = RewardBatch(query=["q"], generated=["x"], reference=["y"], remember=[[]],
                           generated_ids=torch.tensor([[7, 8, 9, 0, 0]]), reference_ids=torch.tensor([[7]]))
    assert wrapped(with_ids).total.tolist() == [3.0]
    assert seen["completion_ids"] == [[7, 8, 9]]


def test_trl_style_function_without_kwargs_and_returning_none():
    def narrow(prompts, completions):
        return [1.0 if "red" in c else None for c in completions]

    reward = get_reward(narrow)
    with pytest.raises(RewardError, match="reward 'narrow' returned non-finite values for samples \\[1\\]"):
        reward(make_batch(["red", "blue"]))
    assert reward(make_batch(["red", "red"])).total.tolist() == [1.0, 1.0]
