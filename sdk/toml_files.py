"""Built-in TOML files (recipes, device and microcontroller profiles) looked up by name, or a user's own file.

>>> from edgesmith.recipes import BUILTIN_DIR
>>> "int8-ptq" in builtin_names(BUILTIN_DIR)
True
>>> locate_toml("int8-ptq", BUILTIN_DIR, ValueError, "no file {path}", "unknown {name!r}; use {names}").name
'int8-ptq.toml'
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def builtin_names(folder: Path) -> list:
    """The names of the TOML files in ``folder``, sorted."""
    return sorted(path.stem for path in folder.glob("*.toml"))


def locate_toml(name_or_path, folder: Path, error, missing: str, unknown: str) -> Path:
    """``name_or_path`` itself if it is a file (or ends in ``.toml``), else the built-in ``folder/NAME.toml``.

    Args:
        error: the exception class raised, with a one-line message.
        missing: the message for a ``.toml`` path that is no file (``{path}`` is filled in).
        unknown: the message for an unknown name (``{name}``, and ``{names}``: the built-ins).
    """
    path = Path(str(name_or_path))
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise error(missing.format(path=path))
        return path
    if str(name_or_path) not in builtin_names(folder):
        raise error(unknown.format(name=str(name_or_path), names=", ".join(builtin_names(folder))))
    return folder / f"{name_or_path}.toml"


def read_toml(path: Path, error, invalid: str) -> dict:
    """The table in the TOML file ``path``; a file that is not TOML raises ``error(invalid)`` (``{path}`` and
    ``{error}`` filled in)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(invalid.format(path=path, error=exc)) from None
