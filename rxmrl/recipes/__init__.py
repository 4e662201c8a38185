"""Recipes: what `rxmrl train` and `rxmrl bench mrl-gain` run, built from the library below them.

A recipe reads a curriculum TOML (`curriculum_config.py`, `benchmark_config.py`), builds its parts
(`setup.py`), runs warm-start and MRL stages with the algorithm in `rxmrl.train` (`curriculum.py`,
`resume_changes.py` for what a resume may change), and ends with the benchmark that compares the result with
the stateless baseline (`final_benchmark.py`, on `rxmrl.bench` and `rxmrl.baseline`). `mrl_gain.py` runs a
curriculum's MRL stages against an equal-compute supervised control. Nothing under `rxmrl.train`,
`rxmrl.bench` or `rxmrl.baseline` imports this package; that keeps the algorithm usable without a curriculum.
"""
