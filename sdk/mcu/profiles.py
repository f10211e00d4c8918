"""Microcontroller profiles: a board's SRAM, flash, clock and core, as TOML files.

>>> profile = load_mcu_profile("stm32f746")
>>> profile["ram_bytes"], profile["flash_bytes"], profile["clock_mhz"], profile["core"]
(327680, 1048576, 216.0, 'cortex-m7')
>>> "nrf52840" in list_mcu_profiles()
True

Built-in profiles live in ``edgesmith/mcu/profiles/*.toml``, each figure with its source in a comment. A
user's own board is a TOML file with at least these keys::

    name = "my-board"
    core = "cortex-m4"          # one of edgesmith.mcu.cores.CORES, or give cycles_per_mac yourself
    clock_mhz = 80
    ram_bytes = 131072
    flash_bytes = 524288
    # optional: arena_ram_bytes (the largest contiguous SRAM block, default ram_bytes), cycles_per_mac

A missing or mistyped key is a one-line error.
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.mcu.cores import CORES, Core
from edgesmith.profiles import locate_profile, read_profile
from edgesmith.runtime.errors import InputError
from edgesmith.toml_files import builtin_names

PROFILE_DIR = Path(__file__).with_name("profiles")
# key -> the type every profile must give it
REQUIRED = {"name": str, "ram_bytes": int, "flash_bytes": int, "clock_mhz": float, "core": str}
OPTIONAL = {"arena_ram_bytes": int, "cycles_per_mac": float, "description": str}


def list_mcu_profiles() -> list:
    """Names of the built-in microcontroller profiles."""
    return builtin_names(PROFILE_DIR)


def load_mcu_profile(name_or_path) -> dict:
    """A validated profile from a built-in name or a TOML file; ``arena_ram_bytes`` filled in, and
    ``timing``: the :class:`~edgesmith.mcu.cores.Core` its latency estimate uses."""
    source = locate_profile(name_or_path, PROFILE_DIR, "microcontroller")
    profile = read_profile(source)
    for key, kind in {**REQUIRED, **OPTIONAL}.items():
        if key not in profile:
            if key in REQUIRED:
                raise InputError(f"{source}: profile key {key!r} is missing (needed: {', '.join(REQUIRED)})")
            continue
        value = profile[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            profile[key] = value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind in (int, float) and value <= 0):
            raise InputError(f"{source}: profile key {key!r} must be a positive {kind.__name__}, got {value!r}")
    profile.setdefault("arena_ram_bytes", profile["ram_bytes"])
    profile["timing"] = _timing(profile, source)
    return profile


def _timing(profile: dict, source: Path) -> Core:
    if "cycles_per_mac" in profile:
        return Core(profile["cycles_per_mac"], False, f"cycles_per_mac given in {source.name}")
    if profile["core"] not in CORES:
        raise InputError(f"{source}: unknown core {profile['core']!r}; use one of {', '.join(sorted(CORES))} "
                         "or give cycles_per_mac")
    return CORES[profile["core"]]

