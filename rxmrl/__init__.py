"""rxmrl: Memory Reinforcement Learning for Reactive Transformers.

Importing `rxmrl` is cheap: heavy parts (torch models, rewards, trainers) load when first used.
"""

from rxmrl.errors import CheckpointError, ConfigError, DataError, RewardError, RxmrlError, TrainingError

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "RewardError",
    "RxmrlError",
    "TrainingError",
    "__version__",
]


def _register_environments() -> None:
    """Make `gymnasium.make("rxmrl/MemoryRetention-v0")` work; the entry points are strings, so the env
    modules (and torch) load only when an environment is made."""
    import gymnasium

    if "rxmrl/MemoryRetention-v0" not in gymnasium.registry:
        gymnasium.register(id="rxmrl/MemoryRetention-v0", entry_point="rxmrl.env.memory_env:MemoryRetentionEnv",
                           vector_entry_point="rxmrl.env.vector_env:VectorMemoryEnv")


_register_environments()
