"""Device profiles: what a board or phone can do, as TOML files.

A profile gives the facts the benchmark and the report need and cannot measure
themselves: core count, default thread count, the theoretical int8 peak (for
"% of device peak"), idle and active power (for ``--energy estimate``), the
energy meters the device has and the delegates it supports.

>>> from edgesmith.profiles import load_profile, list_profiles
>>> load_profile("rpi5")["peak_int8_gmacs"]
307.2
>>> "rpi4" in list_profiles()
True

Built-in profiles live in ``edgesmith/profiles/*.toml``. A user profile is any
TOML file with the same keys; ``extends = "rpi4"`` copies a built-in one and
overrides only the keys the file sets::

    # my-pi.toml: a Pi 4 clocked at 1.8 GHz
    extends = "rpi4"
    name = "my-pi"
    peak_int8_gmacs = 115.2
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.runtime.errors import InputError
from edgesmith.toml_files import builtin_names, locate_toml, read_toml

PROFILE_DIR = Path(__file__).with_name("profiles")
# key -> type every profile must give it
FIELDS = {"name": str, "cores": int, "default_threads": int, "peak_int8_gmacs": float, "idle_w": float,
          "active_w": float, "meters": list, "delegates": list}


def list_profiles() -> list:
    """Names of the built-in profiles."""
    return builtin_names(PROFILE_DIR)


def load_profile(name_or_path) -> dict:
    """A validated profile from a built-in name or a path to a TOML file.

    Raises :class:`InputError` for an unknown name, a bad file or a missing key.
    """
    source = locate_profile(name_or_path, PROFILE_DIR, "device")
    profile = read_profile(source)
    parent = profile.pop("extends", None)
    if parent is not None:
        if Path(str(parent)).stem == source.stem:
            raise InputError(f"{source}: a profile cannot extend itself")
        profile = {**load_profile(parent), **profile}
    _validate(profile, source)
    return profile


def locate_profile(name_or_path, folder: Path, kind: str) -> Path:
    """The TOML file of a profile: ``name_or_path`` itself if it is a file (or ends in ``.toml``), else the
    built-in ``folder/NAME.toml``; an unknown name is a one-line :class:`InputError` listing the built-ins."""
    return locate_toml(name_or_path, folder, InputError, "{path}: no such profile file",
                       f"unknown {kind} profile {{name!r}}; choose one of {{names}} or a .toml file")


def read_profile(path: Path) -> dict:
    """The TOML table of a profile file; a file that is not TOML is a one-line :class:`InputError`."""
    return read_toml(path, InputError, "{path}: not a valid TOML profile ({error})")


def _validate(profile: dict, source: Path) -> None:
    for key, kind in FIELDS.items():
        value = profile.get(key)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            profile[key] = value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"{source}: profile key {key!r} missing or not a {kind.__name__}")
    if not 1 <= profile["default_threads"] <= profile["cores"]:
        raise InputError(f"{source}: default_threads must be between 1 and cores ({profile['cores']})")
    if profile["active_w"] < profile["idle_w"]:
        raise InputError(f"{source}: active_w must not be below idle_w")
