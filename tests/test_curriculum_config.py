"""Curriculum TOML parsing: presets load, schedules expand, and every invalid curriculum fails before any
training with an error that names the file and the key."""

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from rxmrl.errors import ConfigError
from rxmrl.recipes.curriculum_config import (
    UnfreezeConfig,
    apply_overrides,
    load_curriculum,
    load_resolved,
    save_resolved,
)

MINIMAL = """
[[stage]]
steps = 2
"""


def write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_presets_parse_and_validate():
    smoke = load_curriculum("curricula/smoke.toml")
    assert [s.follow_ups for s in smoke.expanded_stages()] == [1, 2]
    full = load_curriculum("curricula/tinystories-mrl.toml")
    stages = full.expanded_stages()
    assert [s.follow_ups for s in stages] == [2, 4, 8, 16]
    assert stages[-1].episode_strategy == "long_range" and stages[0].episode_strategy == "cumulative"
    assert all(s.plateau is not None for s in stages)


def test_schedule_expansion_data_defaults_and_single_step_strategy(tmp_path):
    path = write(tmp_path, """
        [data]
        episodes = 10
        max_query_len = 20
        [[stage]]
        steps = [1, 2, 4]
        strategy = "long_range"
        data = { episodes = 99 }
        [[stage]]
        steps = 6
        epochs = 3
    """)
    config = load_curriculum(path)
    stages = config.expanded_stages()
    assert [(s.follow_ups, s.episode_strategy) for s in stages] == [(1, "single"), (2, "long_range"), (4, "long_range"),
                                                                    (6, "cumulative")]
    assert [s.data.episodes for s in stages] == [99, 99, 99, 10]
    assert all(s.data.max_query_len == 20 for s in stages)  # top-level [data] reaches every stage
    assert [s.max_epochs for s in stages] == [1, 1, 1, 3]
    assert not stages[0].generation.compile
    assert load_curriculum(path, ["stage.1.generation.compile=true"]).stage[1].generation.compile is True
    assert all(s.reward_intermediate for s in stages)
    assert load_curriculum(path, ["stage.0.reward_intermediate=false"]).expanded_stages()[1].reward_intermediate is False


@pytest.mark.parametrize(
    "text, key",
    [
        ("[[stage]]\nstep = 2\n", "stage[0].step"),  # a typo of a required key
        ("[[stage]]\nsteps = 2\nbatchsize = 4\n", "stage[0].batchsize"),
        ("[impo]\nclip = 0.2\n" + MINIMAL, "impo.clip"),
        ("[impo]\nclip_eps = 2.0\n" + MINIMAL, "impo.clip_eps"),
        ("[impo]\nbptt_depth = 0\n" + MINIMAL, "impo.bptt_depth"),
        ("[impo]\nadvantage = \"ppo\"\n" + MINIMAL, "impo.advantage"),
        ("[[stage]]\nsteps = 2\nstrategy = \"sideways\"\n", "stage[0].strategy"),
        ("[[stage]]\nsteps = 3\nstrategy = \"single\"\n", "stage[0].steps"),
        ("[[stage]]\nsteps = [2, 0]\n", "stage[0].steps"),
        ("[[stage]]\nsteps = 2\nepochs = 2\nplateau = { patience = 1 }\n", "stage[0].epochs"),
        ("[[stage]]\nsteps = 2\nlr = { decoder = -1.0 }\n", "stage[0].lr.decoder"),
        ("[[stage]]\nsteps = 2\nunfreeze = { encoder = 0, decoder_cross_attention = 2 }\n", "stage[0].unfreeze.encoder"),
        ("[[stage]]\nsteps = 2\ndata = { eval_episodes = 0 }\n", "stage[0].data.eval_episodes"),
        ("[data]\nsource = 3\n" + MINIMAL, "data.source"),
        ("[critic]\ndim = 30\nheads = 4\n" + MINIMAL, "critic.heads"),
        ("[impo]\nadvantage = \"group\"\ngroup_size = 4\n[[stage]]\nsteps = 2\nbatch_size = 6\n", "stage[0].batch_size"),
        ("device = \"tpu\"\n" + MINIMAL, "device"),
        ("[[stage]]\nsteps = 2\ngeneration = { compile = \"yes\" }\n", "stage[0].generation.compile"),
        ("[[stage]]\nsteps = 2\nreward_intermediate = 0\n", "stage[0].reward_intermediate"),
        ("[[stage]]\nsteps = 2\nalgorithm = \"dpo\"\n", "stage[0].algorithm"),
        ("[[stage]]\nsteps = 2\nalgorithm = \"dmpo\"\nteacher_forcing = true\n", "stage[0].teacher_forcing"),
        ("[dmpo]\nbeta = 0.0\n" + MINIMAL, "dmpo.beta"),
        ("[dmpo]\nanchor = \"kl\"\n" + MINIMAL, "dmpo.anchor"),
        ("[dmpo]\ngroup_size = 4\n[[stage]]\nsteps = 2\nbatch_size = 6\nalgorithm = \"dmpo\"\n", "stage[0].batch_size"),
        ("[[warmstart]]\nstage = \"smat\"\nsteps = 0\n" + MINIMAL, "warmstart[0].steps"),
        ("[[warmstart]]\nstage = \"smat\"\nsteps = 5\nlearning_rate = 1.0\n" + MINIMAL, "warmstart[0].learning_rate"),
        ("[reward.composite]\nname = \"x\"\n[reward.composite.weights.standard]\nbleux = 1.0\n" + MINIMAL,
         "reward.composite.weights.standard.bleux"),
        ("name = \"no stages\"\n", "stage"),
    ],
)
def test_invalid_curricula_name_the_key_and_the_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_curriculum(path)
    message = str(error.value)
    assert str(path) in message and key in message


def test_a_dmpo_stage_groups_its_batch_by_dmpo_pairs(tmp_path):
    text = "[impo]\nadvantage = \"group\"\ngroup_size = 4\n[dmpo]\ngroup_size = 3\n" \
           "[[stage]]\nsteps = 2\nbatch_size = 8\n[[stage]]\nsteps = 2\nbatch_size = 6\nalgorithm = \"dmpo\"\n"
    config = load_curriculum(write(tmp_path, text))
    impo_stage, dmpo_stage = config.expanded_stages()
    assert (config.group_size(impo_stage), config.group_size(dmpo_stage)) == (4, 3)
    assert config.uses_reference()  # DMPO's reference decoder, although impo.kl_ref_coef is 0
    reset = load_curriculum(write(tmp_path, text), ["dmpo.pairs=reset"])
    assert reset.group_size(reset.expanded_stages()[1]) == 1
    assert not load_curriculum(write(tmp_path, text), ["stage.1.algorithm=impo", "stage.1.batch_size=8"]).uses_reference()


@pytest.mark.parametrize("preset", sorted(Path("curricula").glob("*.toml")), ids=lambda p: p.name)
def test_every_curriculum_preset_loads(preset):
    assert load_curriculum(preset).expanded_stages()


def test_the_dmpo_demo_is_the_demo_with_dmpo_stages():
    demo, dmpo = load_curriculum("curricula/cpu-demo.toml"), load_curriculum("curricula/cpu-demo-dmpo.toml")
    assert dmpo.warmstart == demo.warmstart and dmpo.benchmark == demo.benchmark and dmpo.model == demo.model
    assert [s.algorithm for s in dmpo.expanded_stages()] == ["dmpo"] * 4
    same = [dataclasses.replace(s, algorithm="impo") for s in dmpo.expanded_stages()]
    assert same == demo.expanded_stages()  # the same episodes, budget and trained parts as the IMPO stages


def test_a_curriculum_extends_another_merging_tables_and_replacing_stage_arrays(tmp_path):
    (tmp_path / "base.toml").write_text("name = \"base\"\nseed = 3\n[impo]\ngroup_size = 4\nclip_eps = 0.1\n"
                                         "[[stage]]\nsteps = 2\n[[stage]]\nsteps = 4\n")
    (tmp_path / "child").mkdir()
    child = tmp_path / "child" / "dmpo.toml"
    child.write_text("extends = \"../base.toml\"\nname = \"child\"\n[impo]\nclip_eps = 0.3\n"
                     "[[stage]]\nsteps = 8\nalgorithm = \"dmpo\"\n")
    config = load_curriculum(child, ["impo.group_size=2"])
    assert (config.name, config.seed, config.impo.group_size, config.impo.clip_eps) == ("child", 3, 2, 0.3)
    assert [(s.steps, s.algorithm) for s in config.stage] == [(8, "dmpo")]
    (tmp_path / "base.toml").write_text("extends = \"child/dmpo.toml\"\n")
    with pytest.raises(ConfigError, match="circle"):
        load_curriculum(child)


def test_empty_stage_list_is_an_error(tmp_path):
    path = write(tmp_path, "stage = []\n")
    with pytest.raises(ConfigError, match="at least one"):
        load_curriculum(path)


def test_set_overrides_reach_array_tables(tmp_path):
    path = write(tmp_path, """
        [[stage]]
        steps = 1
        [[stage]]
        steps = 2
    """)
    config = load_curriculum(path, ["stage.*.batch_size=8", "stage.1.epochs=3", "impo.clip_eps=0.1"], seed=7)
    assert [s.batch_size for s in config.stage] == [8, 8]
    assert [s.epochs for s in config.stage] == [None, 3]
    assert config.impo.clip_eps == 0.1 and config.seed == 7
    with pytest.raises(ConfigError, match="only 2"):
        load_curriculum(path, ["stage.5.epochs=1"])
    with pytest.raises(ConfigError, match="stage\\[0\\].epoch"):
        load_curriculum(path, ["stage.0.epoch=1"])


def test_apply_overrides_merges_without_mutating():
    base = {"stage": [{"a": 1}, {"a": 2}], "impo": {"x": 1}}
    out = apply_overrides(base, {"stage": {"*": {"b": 3}}, "impo": {"y": 2}}, source="f")
    assert out == {"stage": [{"a": 1, "b": 3}, {"a": 2, "b": 3}], "impo": {"x": 1, "y": 2}}
    assert base == {"stage": [{"a": 1}, {"a": 2}], "impo": {"x": 1}}


def test_resolved_curriculum_round_trips(tmp_path):
    config = load_curriculum("curricula/tinystories-mrl.toml", ["stage.0.batch_size=8"], seed=3)
    save_resolved(config, tmp_path)
    again = load_resolved(tmp_path)
    assert again == config
    assert json.loads((tmp_path / "curriculum.json").read_text())["seed"] == 3
    with pytest.raises(ConfigError, match="not an rxmrl run folder"):
        load_resolved(tmp_path / "elsewhere")


def test_warm_start_tables_are_typed_once_at_load(tmp_path):
    from rxmrl.train.warmstart import WarmStartConfig

    config = load_curriculum("curricula/cpu-demo.toml")
    assert config.warmstart and all(type(t) is WarmStartConfig for t in config.warmstart)
    assert config.warmstart[0].data.max_answer_len == 96  # the warm start's default, resolved at load
    save_resolved(config, tmp_path)
    assert load_resolved(tmp_path) == config


def test_the_inline_composite_is_parsed_once_into_the_reward_it_builds():
    from rxmrl.recipes.setup import build_reward
    from rxmrl.reward.spec import RewardSpec

    config = load_curriculum("curricula/smoke.toml")
    spec = config.reward.composite
    assert type(spec) is RewardSpec and spec.weights.standard.fact_recall == 1.0 and spec.penalties.repetition_n == 2
    reward = build_reward(config)
    assert reward.name == "smoke-recall" and reward.fn.spec is spec


def test_a_record_written_before_the_tables_were_typed_resumes_and_restarts(tmp_path):
    # main's curriculum.json held each [[warmstart]] table and [reward.composite] as the file wrote it
    from rxmrl.config import load_toml, to_dict
    from rxmrl.recipes.curriculum_config import start_resolved

    config = load_curriculum("curricula/smoke.toml")
    raw = load_toml("curricula/smoke.toml")
    old = to_dict(config) | {"warmstart": raw["warmstart"], "reward": {"spec": "mrl-composite", **raw["reward"]}}
    (tmp_path / "curriculum.json").write_text(json.dumps(old))
    assert load_resolved(tmp_path) == config
    start_resolved(load_curriculum("curricula/smoke.toml"), tmp_path)  # a killed run restarted: the same run
    with pytest.raises(ConfigError, match=r"warmstart\[0\].batch_size: 16 -> 8"):
        start_resolved(load_curriculum("curricula/smoke.toml", ["warmstart.0.batch_size=8"]), tmp_path)


def test_unfreeze_groups_by_epoch():
    schedule = UnfreezeConfig(decoder_cross_attention=1, encoder=2, everything=-1)
    assert [schedule.group_at(e) for e in range(4)] == ["memory_attention", "decoder_cross_attention", "encoder",
                                                        "encoder"]
    assert UnfreezeConfig().group_at(0) == "everything"
