"""edgesmith: compress Keras models to TFLite, verify them, and measure them on the device.

The library's front door is :func:`edgesmith.convert` (:func:`edgesmith.pipeline.convert`), loaded on first use
so that ``import edgesmith`` stays light (no TensorFlow) on a board that only runs models:

>>> import edgesmith
>>> edgesmith.convert.__module__
'edgesmith.pipeline'
"""

__version__ = "0.1.0"

from edgesmith.converters.lazy import lazy_exports

lazy_exports(__name__, {"convert": "edgesmith.pipeline"})
