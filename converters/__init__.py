"""Keras 3 -> compressed, verified .tflite: passes with one shape.

``model = pass_(model, data, **options)``; each pass attaches a
:class:`StageRecord` (read it with :func:`record_of`). Passes are looked up by
name in :mod:`edgesmith.converters.registry`.

The names below are imported on first use, so ``import edgesmith.converters.errors``
(or the registry) loads neither Keras nor TensorFlow.
"""

import importlib
import sys
import types

# public name -> the module of this package that defines it
_HOMES = {
    **dict.fromkeys(("AccuracyDropError", "ConversionError", "CorruptModelError", "NoCalibrationDataError",
                     "UnknownOptionError", "UnsupportedModelError"), "errors"),
    "SavedModelSource": "load", "load_model": "load",
    "StageRecord": "record", "record_of": "record", "remember": "record",
    "PASSES": "registry", "get_pass": "registry",
    "TFLiteModel": "ptq", "ptq": "ptq",
    "strip": "prune", "prune": "prune",
    "cluster": "cluster", "export": "export", "qat": "qat", "verify": "verify",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """This package, whose pass functions keep their names when their modules (``qat.py`` defines ``qat``) are
    imported: the import system would otherwise set ``edgesmith.converters.qat`` to the module."""

    def __setattr__(self, name, value):
        if not (isinstance(value, types.ModuleType) and _HOMES.get(name) == name):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
