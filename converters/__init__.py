"""Keras 3 -> compressed, verified .tflite: passes with one shape.

``model = pass_(model, data, **options)``; each pass attaches a
:class:`StageRecord` (read it with :func:`record_of`). Passes are looked up by
name in :mod:`edgesmith.converters.registry`.
"""

from .errors import (
    AccuracyDropError,
    ConversionError,
    CorruptModelError,
    NoCalibrationDataError,
    UnknownOptionError,
    UnsupportedModelError,
)
from .cluster import cluster
from .export import export
from .load import SavedModelSource, load_model
from .prune import prune, strip
from .ptq import TFLiteModel, ptq
from .qat import qat
from .record import StageRecord, record_of, remember
from .registry import PASSES, get_pass
from .verify import verify

__all__ = [
    "AccuracyDropError",
    "ConversionError",
    "CorruptModelError",
    "NoCalibrationDataError",
    "PASSES",
    "SavedModelSource",
    "StageRecord",
    "TFLiteModel",
    "UnknownOptionError",
    "UnsupportedModelError",
    "cluster",
    "export",
    "get_pass",
    "load_model",
    "prune",
    "ptq",
    "qat",
    "record_of",
    "remember",
    "strip",
    "verify",
]
