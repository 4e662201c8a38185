"""Loading episodes: the Hub layout, jsonl/json/parquet files, every kind of bad row, and the Hub route."""

import json
import warnings

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rxmrl.data import Episode, Interaction, list_subsets, load_episodes, load_interactions, load_texts, read_episodes
from rxmrl.data.rows import episode_to_row
from rxmrl.errors import DataError

ROW = {"query": "Tell me a story.", "answer": "Lily found a red kite.",
       "interactions": [{"query": "What did the child find?", "answer": "Lily found a red kite."},
                        {"query": "What colour was it?", "answer": "The kite was red."}]}
EPISODE = Episode(Interaction("Tell me a story.", "Lily found a red kite."),
                  (Interaction("What did the child find?", "Lily found a red kite."),
                   Interaction("What colour was it?", "The kite was red.")),
                  strategy="cumulative", facts=None)
TS_SCHEMA = pa.schema([("query", pa.string()), ("answer", pa.string()),
                       ("interactions", pa.list_(pa.struct([("answer", pa.string()), ("query", pa.string())])))])


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_parquet(path, rows, schema=TS_SCHEMA):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def make_hub_snapshot(root):
    """TinyStories-MRL's layout: README configs, steps-N/<split>-*.parquet, no strategy or facts columns."""
    long_range = {**ROW, "interactions": ROW["interactions"] + [{"query": "And the end?", "answer": "It was red."}]}
    write_parquet(root / "steps-2" / "train-00000-of-00001.parquet", [ROW, ROW, ROW])
    write_parquet(root / "steps-2" / "validation-00000-of-00001.parquet", [ROW])
    write_parquet(root / "steps-3-lr" / "train-00000-of-00002.parquet", [long_range])
    write_parquet(root / "steps-3-lr" / "train-00001-of-00002.parquet", [long_range])
    (root / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: steps-2\n  data_files:\n  - split: train\n    path: steps-2/train-*\n"
        "  - split: validation\n    path: steps-2/validation-*\n"
        "- config_name: steps-3-lr\n  data_files:\n  - split: train\n    path: steps-3-lr/train-*\n"
        "---\n# a dataset card\n")
    return root


def test_hub_layout_snapshot_reads_subsets_splits_and_shards(tmp_path):
    root = make_hub_snapshot(tmp_path / "snap")
    assert list_subsets(root) == ["steps-2", "steps-3-lr"]
    assert load_episodes(root, "steps-2", "train") == [EPISODE] * 3
    assert len(load_episodes(root, "steps-2", "validation")) == 1
    long_range = load_episodes(root, "steps-3-lr")  # two shards of the train split
    assert len(long_range) == 2 and all(e.strategy == "long_range" and e.steps == 3 for e in long_range)


def test_snapshot_without_readme_uses_folder_names(tmp_path):
    root = make_hub_snapshot(tmp_path / "snap")
    (root / "README.md").unlink()
    assert list_subsets(root) == ["steps-2", "steps-3-lr"]
    assert load_episodes(root, "steps-2", "validation") == [EPISODE]


def test_snapshot_subset_and_split_errors_list_what_exists(tmp_path):
    root = make_hub_snapshot(tmp_path / "snap")
    with pytest.raises(DataError, match=r"choose a subset.*steps-2, steps-3-lr"):
        load_episodes(root)
    with pytest.raises(DataError, match=r"no subset 'steps-9'.*steps-2"):
        load_episodes(root, "steps-9")
    with pytest.raises(DataError, match=r"no split 'test' \(available: train, validation\)"):
        load_episodes(root, "steps-2", "test")


def test_jsonl_json_and_parquet_files(tmp_path):
    with_facts = {**ROW, "strategy": "cumulative", "facts": {"name": "lily", "colour": "red"}}
    jsonl = write_jsonl(tmp_path / "e.jsonl", [ROW, with_facts])
    (tmp_path / "e.json").write_text(json.dumps([ROW, with_facts]))
    parquet = write_parquet(tmp_path / "e.parquet", [ROW, episode_to_row(EPISODE)],
                            schema=pa.schema([*TS_SCHEMA, ("strategy", pa.string()), ("facts", pa.string())]))
    for path in (jsonl, tmp_path / "e.json"):
        first, second = load_episodes(path)
        assert first == EPISODE
        assert second.facts == {"name": "lily", "colour": "red"}
    assert load_episodes(parquet) == [EPISODE, EPISODE]


def test_one_follow_up_defaults_to_single_and_facts_struct_nulls_are_dropped(tmp_path):
    row = {**ROW, "interactions": ROW["interactions"][:1], "facts": {"name": "lily", "food": None}}
    (episode,) = load_episodes(write_jsonl(tmp_path / "one.jsonl", [row]))
    assert episode.strategy == "cumulative"  # a plain file has no steps-1 subset name to go by
    assert episode.facts == {"name": "lily"}
    root = tmp_path / "snap"
    write_parquet(root / "steps-1" / "train-0.parquet", [row], schema=TS_SCHEMA)
    assert load_episodes(root, "steps-1")[0].strategy == "single"


BAD_ROWS = [
    ({k: v for k, v in ROW.items() if k != "query"}, "missing field 'query'"),
    ({**ROW, "answer": 7}, "'answer' must be a string, got int"),
    ({**ROW, "query": "   "}, "'query' is empty"),
    ({**ROW, "interactions": []}, "'interactions' is empty"),
    ({**ROW, "interactions": "What?"}, "'interactions' must be a list"),
    ({**ROW, "interactions": None}, "missing field 'interactions'"),
    ({**ROW, "interactions": ["What?"]}, r"'interactions\[0\]' must be an object"),
    ({**ROW, "interactions": [{"query": "Q?"}]}, r"missing field 'interactions\[0\].answer'"),
    ({**ROW, "interactions": [ROW["interactions"][0], {"query": "Q?", "answer": ""}]},
     r"'interactions\[1\].answer' is empty"),
    ({**ROW, "strategy": "sometimes"}, "'strategy' must be one of"),
    ({**ROW, "strategy": "single"}, "strategy 'single' needs exactly 1 follow-up"),
    ({**ROW, "facts": "{not json"}, "'facts' is not valid JSON"),
    ({**ROW, "facts": ["lily"]}, "'facts' must be an object"),
    ({**ROW, "facts": {"name": 3}}, r"'facts.name' must be a non-empty string"),
    (["not", "an", "object"], "expected an object"),
]


@pytest.mark.parametrize("row, message", BAD_ROWS)
def test_every_kind_of_bad_row_is_named_with_file_and_row(tmp_path, row, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [ROW, row, ROW])
    with pytest.raises(DataError, match=rf"bad\.jsonl: line 2: {message}"):
        load_episodes(path)


def test_bad_parquet_row_is_named_by_row_number(tmp_path):
    path = write_parquet(tmp_path / "bad.parquet", [ROW, ROW, {**ROW, "answer": ""}])
    with pytest.raises(DataError, match=r"bad\.parquet: row 3: 'answer' is empty"):
        load_episodes(path)


def test_invalid_json_line_is_a_bad_row(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(ROW) + "\n{oops\n")
    with pytest.raises(DataError, match=r"broken\.jsonl: line 2: not valid JSON"):
        load_episodes(path)


def test_skip_invalid_drops_bad_rows_and_reports_how_many(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", [ROW, {**ROW, "query": ""}, ROW, {**ROW, "answer": None}])
    with pytest.warns(UserWarning, match=r"skipped 2 of 4 rows"):
        episodes = load_episodes(path, skip_invalid=True)
    assert episodes == [EPISODE, EPISODE]
    result = read_episodes(path)
    assert len(result.items) == 2 and result.rows == 4
    assert [e.split(": ")[1] for e in result.errors] == ["line 2", "line 4"]


def test_missing_and_unsupported_sources(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        load_episodes(tmp_path / "nope.jsonl")
    (tmp_path / "data.csv").write_text("query,answer\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        load_episodes(tmp_path / "data.csv")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no valid rows"):
        load_episodes(empty)


def test_pairs_and_stories_loaders(tmp_path):
    pairs = write_jsonl(tmp_path / "qa.jsonl", [{"query": "What is snow?", "answer": "Frozen water."}])
    stories = write_jsonl(tmp_path / "stories.jsonl", [{"text": "Once upon a time."}, {"text": ""}])
    assert load_interactions(pairs) == [Interaction("What is snow?", "Frozen water.")]
    with pytest.raises(DataError, match="line 2: 'text' is empty"):
        load_texts(stories)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_texts(stories, skip_invalid=True) == ["Once upon a time."]


def test_hub_id_goes_through_datasets_and_rows_are_checked(tmp_path, monkeypatch):
    """The Hub route, offline: `datasets.load_dataset` is pointed at a local snapshot for this id, so the real
    `datasets` reader (README configs, parquet shards) produces the rows the loader checks."""
    datasets = pytest.importorskip("datasets")
    root = make_hub_snapshot(tmp_path / "snap")
    real_load = datasets.load_dataset
    calls = []

    def fake_load(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        assert path == "SomeOrg/TinyStories-MRL"
        return real_load(str(root), name, split=split, cache_dir=str(tmp_path / "cache"))

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    episodes = load_episodes("SomeOrg/TinyStories-MRL", "steps-3-lr", "train")
    assert calls == [("SomeOrg/TinyStories-MRL", "steps-3-lr", "train")]
    assert len(episodes) == 2 and episodes[0].strategy == "long_range" and episodes[0].first == EPISODE.first

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match=r"cannot load Hub dataset 'SomeOrg/TinyStories-MRL'.*offline\?"):
        load_episodes("SomeOrg/TinyStories-MRL", "steps-2")
