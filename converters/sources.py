"""Models edgesmith converts but cannot train: a TensorFlow SavedModel directory."""

from __future__ import annotations

from pathlib import Path


class SavedModelSource:
    """A SavedModel directory: convertible to .tflite, but with no Keras graph to train."""

    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name

    def __repr__(self) -> str:
        return f"SavedModelSource({str(self.path)!r})"
