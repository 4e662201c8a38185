"""`Sampling`: one value for how tokens are chosen, checked when made and read unchanged from the TOML tables."""

import pytest

from rxmrl.model.sampling import GREEDY, Sampling
from rxmrl.recipes.benchmark_config import BenchmarkConfig
from rxmrl.recipes.curriculum_config import GenerationConfig


@pytest.mark.parametrize("bad, message", [(dict(temperature=-0.1), "temperature"), (dict(top_k=-1), "top_k"),
                                          (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p")])
def test_sampling_refuses_impossible_settings_when_made(bad, message):
    with pytest.raises(ValueError, match=message):
        Sampling(**bad)


def test_a_stage_samples_what_its_generation_table_says():
    table = GenerationConfig(max_new_tokens=10, temperature=0.8, top_k=30, top_p=0.9)
    assert table.sampling == Sampling(greedy=False, temperature=0.8, top_k=30, top_p=0.9)
    assert GenerationConfig().sampling == Sampling()


def test_the_end_of_run_benchmark_is_greedy_unless_told_to_sample():
    assert BenchmarkConfig().sampling == GREEDY
    assert BenchmarkConfig(greedy=False, temperature=0.7).sampling == Sampling(temperature=0.7)
