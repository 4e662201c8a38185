"""Errors a user can cause. The CLI prints their message on one line and exits with status 2.

Errors the code causes are bugs and are left to raise as ordinary Python exceptions.
"""


class RxmrlError(Exception):
    """Base class: something in the user's input, config or data is wrong; the message says what to do."""


class ConfigError(RxmrlError):
    """A config or preset file (or a `--set` override) is invalid; the message names the key and the file."""


class DataError(RxmrlError):
    """An episode source is missing or holds an invalid row; the message names the file and the row."""


class RewardError(RxmrlError):
    """A reward spec or plug-in cannot be loaded, raised, or returned a non-finite value."""


class CheckpointError(RxmrlError):
    """A checkpoint or pretrained folder is missing, incomplete, or does not match the model."""


class TrainingError(RxmrlError):
    """Training cannot go on (for example: too many non-finite updates in a row)."""


class OutputError(RxmrlError):
    """An output folder or file exists and writing there would destroy what is in it, or it is in use."""
