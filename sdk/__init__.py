"""edgesmith: compress Keras models to TFLite, verify them, and measure them on the device.

The library's front door is :func:`edgesmith.convert` (:func:`edgesmith.pipeline.convert`), loaded on first use
so that ``import edgesmith`` stays light (no TensorFlow) on a board that only runs models:

>>> import edgesmith
>>> edgesmith.convert.__module__
'edgesmith.pipeline'
"""

__version__ = "0.1.0"

_LAZY = {"convert": "edgesmith.pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgesmith' has no attribute {name!r}")
