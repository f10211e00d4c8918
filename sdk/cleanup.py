"""Clean-ups edgesmith runs when the process ends, however it ends (scratch folders, mostly).

The interpreter's shutdown runs them (they are registered with :mod:`atexit` once), and so does
the CLI when it leaves a failed run without that shutdown (:func:`edgesmith.cli.main`). The CLI
also gives its process one temporary folder (:func:`own_temp_folder`), so the temporary files of
the libraries it calls (TensorFlow's autograph sources, which only :mod:`atexit` would remove) go
with it.

>>> import shutil, tempfile
>>> folder = tempfile.mkdtemp()
>>> at_exit(shutil.rmtree, folder, True)      # removed when the process ends, or by run_at_exit()
"""

from __future__ import annotations

import atexit
import shutil
import tempfile

_PENDING: list = []  # (function, args), run last first


def at_exit(function, *args) -> None:
    """Call ``function(*args)`` once when the process ends."""
    _PENDING.append((function, args))


def run_at_exit() -> None:
    """Run every pending clean-up now, last registered first, and forget it."""
    while _PENDING:
        function, args = _PENDING.pop()
        function(*args)


def own_temp_folder() -> str:
    """Make a new folder the default for this process's temporary files (:mod:`tempfile`), removed at exit."""
    folder = tempfile.mkdtemp(prefix="edgesmith-")
    tempfile.tempdir = folder
    at_exit(shutil.rmtree, folder, True)
    return folder


atexit.register(run_at_exit)
