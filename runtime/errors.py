"""Errors that edgesmith raises for problems a user can fix.

Every error carries a one-line message. The CLI prints it without a traceback
and exits with :attr:`EdgesmithError.exit_code` (2 for bad input, 1 for a run
that failed).
"""


class EdgesmithError(Exception):
    """Base class: a problem worth a one-line message, not a traceback."""

    exit_code = 2


class ModelLoadError(EdgesmithError):
    """The file is missing, is not a .tflite flatbuffer, or LiteRT refused it."""


class UnsupportedOpError(ModelLoadError):
    """The model needs an op (usually a custom op) that the runtime lacks."""


class InputError(EdgesmithError):
    """An input has the wrong shape, dtype, name or count."""


class SensorError(EdgesmithError):
    """An energy or temperature sensor was asked for but cannot be read."""


class MetadataError(EdgesmithError):
    """Model metadata is missing, malformed, or cannot be written."""


class RunFailedError(EdgesmithError):
    """A run started correctly but did not produce a valid result."""

    exit_code = 1


def first_line(message, default: str = "") -> str:
    """The first non-blank line of ``message`` (a text or an exception), stripped; else ``default``, or for an
    exception without text its class name."""
    named = type(message).__name__ if isinstance(message, BaseException) else ""
    return next((line.strip() for line in str(message).splitlines() if line.strip()), default or named)
