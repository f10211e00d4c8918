"""Write a file atomically: a temp file beside it, then a rename, so no reader sees a half-written file.

>>> path = atomic_write_json("run/report.json", {"accuracy": 0.98})
>>> path.read_text()
'{\\n  "accuracy": 0.98\\n}\\n'
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(target, data: bytes) -> Path:
    """Write ``data`` to ``target`` (folders made as needed), with the permissions a new file gets."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(temp, 0o666 & ~_current_umask())
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_json(target, value, *, indent: int = 2, sort_keys: bool = False) -> Path:
    """Write ``value`` as indented JSON and a final newline (what JSON cannot hold, as its ``str``)."""
    text = json.dumps(value, indent=indent, sort_keys=sort_keys, default=str) + "\n"
    return atomic_write_bytes(target, text.encode("utf-8"))


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
