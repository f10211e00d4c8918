"""CPU temperature, clock and throttling, peak memory, and what device this is.

TF-free and sensor-agnostic: every reading is None where this machine does not
expose it (a container, a VM), never a guess. Like the energy meters, the
readers take the filesystem ``root`` and a ``run_command`` (``argv -> stdout``,
for ``vcgencmd``) so that tests run on fixture trees.

>>> before = cpu_snapshot()
>>> busy = sum(range(100_000))  # the benchmark
>>> verdict = throttled(before, cpu_snapshot())  # True, False, or None where this machine cannot tell
>>> throttled({"throttle_count": 3}, {"throttle_count": 5})  # x86: the package throttle count grew
True
>>> throttled({"throttle_flags": 0x0}, {"throttle_flags": 0x0}), throttled({}, {})  # a Pi 5 that kept its clock
(False, None)
"""

from __future__ import annotations

import os
import platform
import re
import sys

from .energy.readers import optional_command, optional_number, optional_text, under

THERMAL = "/sys/class/thermal"
CPUFREQ = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq"
CPU_DEVICES = "/sys/devices/system/cpu"
# thermal_zone types that measure the CPU or the SoC it is in, best first
CPU_ZONE_TYPES = ("cpu-thermal", "cpu_thermal", "x86_pkg_temp", "cpu0-thermal", "cpu-therm", "soc-thermal",
                  "soc_thermal", "soc")
# vcgencmd get_throttled bits 0-3: under-voltage, frequency capped, throttled,
# soft temperature limit, now; bits 16-19: the same, at some time since boot.
THROTTLED_NOW_MASK = 0xF
THROTTLED_SINCE_BOOT_MASK = 0xF0000


def cpu_snapshot(root="/", run_command=None) -> dict:
    """CPU temperature (°C), cpu0 clock (MHz) and throttling state now; each None where unreadable.

    Keys: ``temp_c``, ``freq_mhz``, ``throttle_flags`` (the Raspberry Pi's
    ``get_throttled`` bits), ``throttle_count`` (x86: the sum of the cores'
    ``core_throttle_count``).
    """
    flags = _vcgencmd_value(["vcgencmd", "get_throttled"], r"throttled=(0x[0-9a-fA-F]+)", run_command,
                            lambda text: int(text, 16))
    return {"temp_c": cpu_temperature(root, run_command),
            "freq_mhz": _khz_to_mhz(optional_number(under(root, CPUFREQ))), "throttle_flags": flags,
            "throttle_count": core_throttle_count(root)}


def cpu_temperature(root="/", run_command=None) -> float | None:
    """The CPU's temperature in °C from thermal zones, else ``vcgencmd measure_temp``."""
    zones = {}
    for zone in under(root, THERMAL).glob("thermal_zone*"):
        kind = (optional_text(zone / "type") or "").lower()
        millidegrees = optional_number(zone / "temp")
        if kind in CPU_ZONE_TYPES and millidegrees is not None:
            zones.setdefault(kind, millidegrees / 1000)
    for kind in CPU_ZONE_TYPES:
        if kind in zones:
            return zones[kind]
    return _vcgencmd_value(["vcgencmd", "measure_temp"], r"temp=([-0-9.]+)'C", run_command, float)


def core_throttle_count(root="/") -> int | None:
    """Sum of the x86 cores' thermal throttle events since boot, or None where not exposed."""
    paths = under(root, CPU_DEVICES).glob("cpu*/thermal_throttle/core_throttle_count")
    counts = [count for count in map(optional_number, paths) if count is not None]
    return int(sum(counts)) if counts else None


def throttled(start: dict, end: dict) -> bool | None:
    """Whether the CPU was throttled between two snapshots; None when neither says.

    True if a Raspberry Pi flag (under-voltage, capped, throttled, soft
    temperature limit) is set now in either snapshot or newly set since boot,
    or if the x86 throttle count grew.
    """
    verdicts = []
    flags = (start.get("throttle_flags"), end.get("throttle_flags"))
    if None not in flags:
        newly_since_boot = (flags[1] & ~flags[0]) & THROTTLED_SINCE_BOOT_MASK
        verdicts.append(bool((flags[0] | flags[1]) & THROTTLED_NOW_MASK or newly_since_boot))
    counts = (start.get("throttle_count"), end.get("throttle_count"))
    if None not in counts:
        verdicts.append(counts[1] > counts[0])
    return any(verdicts) if verdicts else None


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB, or None where unknown (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux and Android, in bytes on macOS
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def device_info(root="/") -> dict:
    """``hostname``, ``system``, ``machine``, ``cpu`` (model name) and ``cores``, as the log header records them."""
    return {"hostname": platform.node() or None, "system": platform.system() or None,
            "machine": platform.machine() or None, "cpu": cpu_model(root), "cores": os.cpu_count()}


def cpu_model(root="/") -> str | None:
    """The CPU's name from ``/proc/cpuinfo``: ``model name`` (x86), else ``Model`` or ``Hardware`` (ARM boards)."""
    fields = {}
    for line in (optional_text(under(root, "/proc/cpuinfo")) or "").splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    return next((fields[key] for key in ("model name", "model", "hardware") if fields.get(key)), None)


def _khz_to_mhz(khz: float | None) -> float | None:
    return None if khz is None else khz / 1000


def _vcgencmd_value(argv, pattern: str, run_command, convert):
    """The first group of ``pattern`` in the command's output, converted; None if absent."""
    match = re.search(pattern, optional_command(argv, run_command) or "")
    return convert(match.group(1)) if match else None
