"""Keras 3 -> compressed, verified .tflite: passes with one shape.

``model = pass_(model, data, **options)``; each pass attaches a
:class:`StageRecord` (read it with :func:`record_of`). Passes are looked up by
name in :mod:`edgesmith.converters.registry`.

The names below are imported on first use, so ``import edgesmith.converters.errors``
(or the registry) loads neither Keras nor TensorFlow.
"""

from edgesmith.converters.lazy import lazy_exports

# public name -> the module of this package that defines it
_HOMES = {
    **dict.fromkeys(("AccuracyDropError", "ConversionError", "CorruptModelError", "NoCalibrationDataError",
                     "UnknownOptionError", "UnsupportedModelError"), ".errors"),
    "SavedModelSource": ".load", "load_model": ".load",
    "StageRecord": ".record", "record_of": ".record", "remember": ".record",
    "PASSES": ".registry", "get_pass": ".registry",
    "TFLiteModel": ".ptq", "ptq": ".ptq",
    "strip": ".prune", "prune": ".prune",
    "cluster": ".cluster", "export": ".export", "qat": ".qat", "verify": ".verify",
}
__all__ = sorted(_HOMES)
lazy_exports(__name__, _HOMES)
