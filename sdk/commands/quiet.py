"""Keep TensorFlow's and LiteRT's console chatter out of the commands that convert.

Most of it obeys settings: ``TF_CPP_MIN_LOG_LEVEL`` (C++ logs after start-up) and
the ``tensorflow`` Python logger (e.g. tf.function retracing warnings). Some of it
does not: when TensorFlow loads, absl prints "All log messages before
absl::InitializeLog() ..." and oneDNN's notice from C++, and LiteRT announces its
XNNPACK delegate once per process. :func:`quiet_console` therefore captures the
process's stderr (file descriptor 2) while the work runs, gives the command a
stream to the real console for its progress bars, and afterwards prints what was
captured except those known lines, so no real warning or error is lost.

Nothing here changes TensorFlow's options (oneDNN stays on): the numbers are the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys

from edgesmith.runtime.micro import fd2_captured

NOISE = re.compile(
    r"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    r"triggered tf\.function retracing|Created TensorFlow Lite XNNPACK delegate|"
    r"^fully_quantize: \d+, inference_type|"  # the int8 calibrator's settings, printed from C++
    r"^[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]"  # absl INFO/WARNING lines from TensorFlow's C++
)


def silence_tensorflow_logging() -> None:
    """Turn down the loggers TensorFlow honours (call before TensorFlow is imported for the C++ one)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)


@contextlib.contextmanager
def quiet_console():
    """Run the block with stderr captured; yield a text stream to the real console.

    >>> from edgesmith.commands.progress import Progress
    >>> from edgesmith.pipeline import convert
    >>> with quiet_console() as console:
    ...     report = convert(model, "int8-ptq", "builtin:digits", "out/", progress=Progress(stream=console))
    >>> report.tflite_path
    'out/model.tflite'

    When the block ends (also by an error or Ctrl-C), what it wrote to stderr is
    printed, minus :data:`NOISE`.
    """
    silence_tensorflow_logging()
    console = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    captured = str  # what the block wrote to stderr: nothing until it runs
    try:
        with console, fd2_captured() as captured:
            yield console
    finally:
        sys.stderr.write(without_noise(captured()))
        sys.stderr.flush()


def without_noise(text: str) -> str:
    """``text`` without the lines matching :data:`NOISE`."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.search(line))
