"""edgesmith's on-device runtime: load and run .tflite models, classify images,
benchmark latency and energy. Needs numpy and a LiteRT interpreter, never TensorFlow.
"""

from .errors import EdgesmithError, InputError, MetadataError, ModelLoadError, SensorError, UnsupportedOpError
from .classifier import Classifier
from .metadata import read_metadata, write_metadata
from .model import Model

__all__ = [
    "Classifier",
    "EdgesmithError",
    "InputError",
    "MetadataError",
    "Model",
    "ModelLoadError",
    "SensorError",
    "UnsupportedOpError",
    "read_metadata",
    "write_metadata",
]
