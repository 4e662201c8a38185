"""Import checkpoints of RxNN (github.com/RxAI-dev/RxNN), the library the published RxT-Alpha models were
trained with, into an ordinary rxmrl model: `import_rxnn(decoder, encoder, memory_attention)` -> RxT.

    checkpoint.py   read a folder or Hub id (config.json + model.safetensors) and tell which class wrote it
    config_map.py   the RxTConfig that computes the same function (head counts from tensor shapes)
    weights.py      RxNN tensor names and layouts -> rxmrl's state dict
    importer.py     the three together, the shared-embedding check, strict loading

What loads and which config switches each checkpoint needs: docs/IMPORT.md. No RxNN code is used or needed.
"""

from rxmrl.model.rxnn.checkpoint import RxnnCheckpoint, read_checkpoint
from rxmrl.model.rxnn.importer import ImportChoices, import_rxnn

__all__ = ["ImportChoices", "RxnnCheckpoint", "import_rxnn", "read_checkpoint"]
