"""The episode source: an MRL stage's `[data]` and a warm-start stage's `data` share one set of keys, one
documentation and one set of checks (`rxmrl.data.episode_source`); each context adds only its own keys."""

import dataclasses
import re
import textwrap

import pytest

from rxmrl.data.episode_source import EpisodeSource
from rxmrl.errors import ConfigError
from rxmrl.recipes.curriculum_config import MrlDataConfig, load_curriculum
from rxmrl.train.warmstart.config import WarmStartData


def names(cls):
    return [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("context", [MrlDataConfig, WarmStartData])
def test_each_context_extends_the_one_episode_source(context):
    shared = names(EpisodeSource)
    assert issubclass(context, EpisodeSource) and names(context)[:len(shared)] == shared
    # a context adds keys, never a second copy of a shared one under its own checks
    assert context.source_and_split is EpisodeSource.source_and_split


def test_the_contexts_keep_their_own_defaults():
    assert (MrlDataConfig().max_query_len, MrlDataConfig().max_answer_len) == (32, 48)
    assert (WarmStartData().max_query_len, WarmStartData().max_answer_len) == (32, 96)


def test_held_out_items_come_from_eval_source_else_source():
    data = MrlDataConfig(source="a", split="s", eval_split="e")
    assert data.source_and_split(held_out=False) == ("a", "s")
    assert data.source_and_split(held_out=True) == ("a", "e")
    assert dataclasses.replace(data, eval_source="b").source_and_split(held_out=True) == ("b", "e")


@pytest.mark.parametrize("table, key", [
    ("[data]\nmax_query_len = 2", "stage[0].data.max_query_len: must be at least 4 tokens"),
    ("[data]\neval_episodes = 0", "stage[0].data.eval_episodes: must be at least 1"),
    ("[[warmstart]]\nstage = \"smat\"\nsteps = 5\ndata = { max_answer_len = 2 }",
     "warmstart[0].data.max_answer_len: must be at least 4 tokens"),
    ("[[warmstart]]\nstage = \"smat\"\nsteps = 5\ndata = { eval_examples = 0 }",
     "warmstart[0].data.eval_examples: must be at least 1"),
    ("[[warmstart]]\nstage = \"smat\"\nsteps = 5\ndata = { episodes = 9 }", "unknown key 'warmstart[0].data.episodes'"),
    ("[data]\nexamples = 9", "unknown key 'stage[0].data.examples'"),
])
def test_the_shared_checks_name_the_file_and_the_key_in_either_context(tmp_path, table, key):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(table) + "\n[[stage]]\nsteps = 2\n")
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}: {key}")):
        load_curriculum(path)
