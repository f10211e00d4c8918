"""Reading sensor files and sensor commands, with failures as one-line SensorErrors.

Every meter and :mod:`edgesmith.runtime.sysinfo` read sysfs through these
helpers, so a missing file, a permission problem or a failing ``vcgencmd``
is reported the same way everywhere: naming the path or the command.

A *command runner* is any callable ``run_command(argv) -> str`` returning the
command's standard output and raising ``OSError`` or
``subprocess.SubprocessError`` when it cannot run; tests inject one that
returns captured output.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..errors import SensorError

COMMAND_TIMEOUT_S = 5.0


def under(root, path: str) -> Path:
    """``path`` (absolute, e.g. ``/sys/class/hwmon``) inside the tree at ``root``."""
    return Path(root) / path.lstrip("/")


def read_text(path: Path) -> str:
    """A sensor file's content, stripped; SensorError naming the path if unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except PermissionError:
        # common for RAPL: its counters became root-only in 2020 (CVE-2020-8694, "Platypus")
        raise SensorError(f"permission denied reading {path}: run as root or `sudo chmod o+r {path}`") from None
    except OSError as error:
        raise SensorError(f"cannot read {path}: {error.strerror or error}") from None


def read_number(path: Path) -> float:
    """A sensor file holding one number (sysfs integers such as ``5080``)."""
    text = read_text(path)
    try:
        return float(text)
    except ValueError:
        raise SensorError(f"{path} holds {text[:40]!r}, not a number") from None


def optional_text(path: Path) -> str | None:
    """A file's content, or None when it is missing or unreadable."""
    return _or_none(read_text, path)


def optional_number(path: Path) -> float | None:
    """A file's number, or None when it is missing, unreadable or not a number."""
    return _or_none(read_number, path)


def _or_none(read, *args):
    """``read(*args)``, or None where it raises SensorError."""
    try:
        return read(*args)
    except SensorError:
        return None


def run_command(argv) -> str:
    """The default command runner: run ``argv`` and return its standard output."""
    if shutil.which(argv[0]) is None:  # cheaper than a failed fork on every snapshot
        raise FileNotFoundError(2, "No such file or directory", argv[0])
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=True)
    return done.stdout


def command_output(argv, runner=None) -> str:
    """Standard output of ``argv`` through ``runner``; SensorError naming the command on failure."""
    shown = " ".join(argv)
    try:
        return (runner or run_command)(list(argv))
    except FileNotFoundError:
        raise SensorError(f"`{argv[0]}` not found (needed for `{shown}`)") from None
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()
        raise SensorError(f"`{shown}` failed (exit {error.returncode}{': ' + detail[0] if detail else ''})") from None
    except subprocess.TimeoutExpired:
        raise SensorError(f"`{shown}` did not answer within {COMMAND_TIMEOUT_S:g} s") from None
    except (OSError, subprocess.SubprocessError) as error:
        raise SensorError(f"`{shown}` could not run: {error}") from None


def optional_command(argv, runner=None) -> str | None:
    """Standard output of ``argv``, or None when it cannot run."""
    return _or_none(command_output, argv, runner)
