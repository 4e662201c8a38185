"""The latency benchmark: its turns do the real work (same answers as the generators), and the CLI's JSON."""

import json

import torch

from rxmrl.baseline.generation import generate_stateless
from rxmrl.baseline.model import build_stateless_model, stateless_config
from rxmrl.bench.latency import _Clock, rxt_turn, stateless_turn
from rxmrl.cli import main
from rxmrl.model import RxT, load_preset
from rxmrl.model.sampling import GREEDY


def test_rxt_turn_generates_and_writes_like_the_model():
    torch.manual_seed(0)
    model = RxT(load_preset("rxt-tiny")).eval()
    stm = model.initial_stm(2)
    query = torch.randint(7, 64, (2, 10))
    with torch.inference_mode():
        times, next_stm, memory = rxt_turn(model, stm, model.memory_kv(stm), query, 6, _Clock(torch.device("cpu")))
        expected = model.generate(query, torch.ones_like(query, dtype=torch.bool), stm, max_new_tokens=6,
                                  sampling=GREEDY)
        interaction = torch.cat([query, expected.tokens], dim=1)
        expected_stm = model.update_memory(stm, interaction, torch.ones_like(interaction, dtype=torch.bool))
        expected_memory = model.memory_kv(expected_stm)
    assert torch.allclose(next_stm, expected_stm, atol=1e-6)
    for got, want in zip(memory.keys + memory.values, expected_memory.keys + expected_memory.values):
        assert torch.allclose(got, want, atol=1e-6)  # the next turn reads the updated memory
    assert set(times) == {"prompt_ms", "generate_ms", "update_ms", "memory_kv_ms"}
    assert all(v >= 0 for v in times.values())


def test_stateless_turn_reads_the_whole_history_and_answers_greedily():
    llama = build_stateless_model(stateless_config(load_preset("rxt-tiny"), context_len=64), seed=0)
    history = torch.randint(7, 64, (1, 20))
    query = torch.randint(7, 64, (1, 8))
    with torch.inference_mode():
        times, after = stateless_turn(llama, history, query, 5, _Clock(torch.device("cpu")))
        expected = generate_stateless(llama, [history[0].tolist() + query[0].tolist()], max_new_tokens=5, eos_id=None)
    assert times["prompt_tokens"] == 28
    assert after[0].tolist() == history[0].tolist() + query[0].tolist() + expected.tokens[0].tolist()


def test_cli_reports_every_turn(tmp_path):
    out, plot = tmp_path / "latency.json", tmp_path / "latency.png"
    code = main(["bench", "latency", "--preset", "rxt-tiny", "--turns", "3", "--query-len", "8", "--answer-len", "4",
                 "--repeats", "1", "--json", str(out), "--plot", str(plot)])
    assert code == 0
    data = json.loads(out.read_text())
    for name in ("rxt", "stateless"):
        assert len(data[name]["prompt_ms"]) == 3 and len(data[name]["generate_ms"]) == 3
        assert all(v > 0 for v in data[name]["prompt_ms"] + data[name]["generate_ms"])
    assert len(data["rxt"]["update_ms"]) == 3 and len(data["rxt"]["memory_kv_ms"]) == 3
    assert data["rxt"]["prompt_tokens"] == [8, 8, 8]
    assert data["stateless"]["prompt_tokens"] == [8, 20, 32]  # each turn re-reads every earlier query and answer
    assert data["stateless"]["parameters"] >= data["rxt"]["parameters"]
    assert data["settings"]["stateless_model"]["context_len"] == 36
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_turns_longer_than_the_model(tmp_path, capsys):
    code = main(["bench", "latency", "--preset", "rxt-tiny", "--query-len", "40", "--answer-len", "40",
                 "--json", str(tmp_path / "x.json")])
    assert code == 2 and "max_seq_len 64" in capsys.readouterr().err
