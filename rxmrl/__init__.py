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
