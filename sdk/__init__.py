"""edgesmith: compress Keras models to TFLite, verify them, and measure them on the device."""

__version__ = "0.1.0"
