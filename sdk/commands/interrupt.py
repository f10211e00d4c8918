"""Ctrl-C that stops the command even where a library swallows its KeyboardInterrupt.

Python raises KeyboardInterrupt wherever the main thread happens to be. Inside Keras and TensorFlow that
can be a bare ``except:`` (Keras converts every training step's logs to floats inside one) or a Python
function TensorFlow calls from a kernel, which turns the exception into an error of its own. The command
then runs on, or fails with an unrelated error. :func:`watched` records every Ctrl-C; :func:`check`, which
:class:`~edgesmith.commands.progress.Progress` calls at every step, raises it again; :func:`pressed` tells
an interrupt apart from a real failure.

>>> import os, signal
>>> with watched():
...     try:
...         os.kill(os.getpid(), signal.SIGINT)
...     except KeyboardInterrupt:
...         pass  # what a bare ``except:`` in a library does
...     try:
...         check()
...     except KeyboardInterrupt:
...         print("raised again")
raised again
>>> pressed()
False
"""

from __future__ import annotations

import contextlib
import signal
import threading

EXIT_CODE = 130  # a command stopped by Ctrl-C, as a shell reports SIGINT

_presses: list[int] = []  # one entry per Ctrl-C since watched() started


@contextlib.contextmanager
def watched():
    """Record every Ctrl-C while the block runs; each still raises KeyboardInterrupt where it lands.

    Only the main thread can handle signals: elsewhere this records nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _presses.clear()

    def handler(signum, frame):
        _presses.append(signum)
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _presses.clear()


def pressed() -> bool:
    """Whether Ctrl-C was pressed since :func:`watched` started."""
    return bool(_presses)


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, wherever its first KeyboardInterrupt went."""
    if _presses:
        raise KeyboardInterrupt
