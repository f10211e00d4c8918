"""Errors the converters raise for problems a user can fix (one-line messages)."""

from edgesmith.runtime.errors import EdgesmithError, ModelLoadError, RunFailedError


class ConversionError(EdgesmithError):
    """A model cannot go through a pass as asked."""


class UnknownOptionError(ConversionError):
    """A pass, recipe or option name that does not exist (the message lists the valid ones)."""


class NoCalibrationDataError(ConversionError):
    """Integer quantization was asked for without data to calibrate activation ranges."""


class CorruptModelError(ModelLoadError):
    """The model file is unreadable, truncated, or not a Keras model."""


class UnsupportedModelError(ConversionError):
    """The model's structure (e.g. a subclassed model) does not allow this pass."""


class AccuracyDropError(RunFailedError):
    """The .tflite lost more accuracy than the recipe allows; artifacts are kept.

    ``report`` is the run's :class:`~edgesmith.runtime.report_schema.ConversionReport` (what ``report.json``
    holds) when the pipeline raised it, else None.
    """

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class NotFromThisModelError(ConversionError):
    """A .tflite compared with a Keras model it was not converted from (other shapes, another source hash)."""


class NotQuantizedError(ConversionError):
    """A .tflite without quantized tensors was given where a quantized one is needed."""
