"""Energy meters behind one small interface, auto-detected.

A meter is started before the timed runs and stopped after them; it returns an
:class:`EnergyReading` for that window. A meter that cannot measure says so:
``open_meter("auto")`` returns None when nothing is found, and an explicitly
requested meter that cannot be read raises :class:`~edgesmith.runtime.errors.SensorError`.
Energy is never invented: only ``estimate`` computes a figure without a sensor,
and its readings are marked ``estimated``.

Meters (each takes an injectable sysfs ``root`` so tests run on fixture trees):

========== ==================================================================
rapl       Linux powercap ``intel-rapl:N/energy_uj`` counters (wrap-around safe)
hwmon      ``power*_input`` (µW) or ``in*_input`` (mV) × ``curr*_input`` (mA):
           INA219/INA226/INA3221 boards, Jetson
pi5        Raspberry Pi 5 PMIC, ``vcgencmd pmic_read_adc`` rail currents × volts
battery    ``/sys/class/power_supply/*`` (power_now, or current_now × voltage_now)
csv:FILE   an external USB power-meter log, aligned by timestamps
estimate   CPU time × a device profile's active/idle power (``estimated: true``)
========== ==================================================================
"""

from __future__ import annotations

import logging
import math

from ..errors import SensorError
from .battery import BatteryMeter
from .csv_log import CsvLogMeter
from .estimate import EstimateMeter
from .hwmon import HwmonMeter
from .meter import EnergyMeter, EnergyReading
from .pi5 import Pi5PmicMeter
from .rapl import RaplMeter

log = logging.getLogger(__name__)

__all__ = ["BatteryMeter", "CsvLogMeter", "EnergyMeter", "EnergyReading", "EstimateMeter", "HwmonMeter",
           "Pi5PmicMeter", "RaplMeter", "energy_summary", "open_meter"]


AUTO_ORDER = ("pi5", "hwmon", "rapl", "battery")
SPECS = "auto, none, rapl, hwmon[:NAME], pi5, battery[:NAME], csv:FILE or estimate"


def open_meter(spec: str, root="/", profile: dict | None = None, run_command=None, *,
               clock_offset: float = 0.0, interval: float | None = None) -> EnergyMeter | None:
    """The meter ``spec`` names, checked to be readable now; None for ``none`` or when ``auto`` finds nothing.

    Args:
        spec: ``auto`` (the first readable of pi5, hwmon, rapl, battery),
            ``none``, ``rapl``, ``hwmon`` (or ``hwmon:ina219``), ``pi5``,
            ``battery`` (or ``battery:BAT1``), ``csv:FILE`` or ``estimate``.
        root: the filesystem root under which ``/sys`` is read (tests pass a fixture tree).
        profile: a device profile dict with ``name``, ``idle_w``, ``active_w``
            and ``cores``; needed by ``estimate``.
        run_command: runs ``vcgencmd`` (``argv -> stdout``); tests inject one.
        clock_offset: seconds added to a ``csv:FILE`` log's timestamps.
        interval: sampling interval in seconds for the sampled meters.

    Raises SensorError when an explicitly named meter is absent or unreadable.

    >>> meter = open_meter("auto")  # the first readable meter here, or None
    >>> if meter:
    ...     meter.start(); busy = sum(range(100_000)); reading = meter.stop()
    >>> open_meter("estimate", profile={"name": "rpi5", "idle_w": 2.7, "active_w": 7.0, "cores": 4}).name
    'estimate:rpi5'
    """
    spec = (spec or "none").strip()
    if spec == "none":
        return None
    if spec == "auto":
        return _detect(root, run_command, interval)
    meter = _build(spec, root, profile, run_command, clock_offset, interval)
    meter.check()
    return meter


def _detect(root, run_command, interval) -> EnergyMeter | None:
    for kind in AUTO_ORDER:
        try:
            options = {"monitors_only": True} if kind == "hwmon" else {}
            meter = _build(kind, root, None, run_command, 0.0, interval, **options)
            meter.check()
            return meter
        except SensorError as why:
            log.debug("energy meter %s not usable: %s", kind, why)
    return None


def check_spec(spec: str) -> str:
    """``spec`` if it names a meter (whether that meter exists here is for :func:`open_meter` to say);
    SensorError listing :data:`SPECS` otherwise.

    >>> check_spec("hwmon:ina219")
    'hwmon:ina219'
    """
    kind, colon, argument = (spec or "").strip().partition(":")
    takes = {"auto": False, "none": False, "rapl": False, "pi5": False, "estimate": False, "hwmon": None,
             "battery": None, "csv": True}  # True: needs an argument; None: optional
    if kind not in takes or (takes[kind] is False and colon) or (takes[kind] and not argument):
        raise SensorError(f"unknown energy meter {spec!r} (use {SPECS})")
    return spec


def _build(spec, root, profile, run_command, clock_offset, interval, **options) -> EnergyMeter:
    """Construct the meter ``spec`` names (constructors raise SensorError when it is absent)."""
    check_spec(spec)
    kind, _, argument = spec.partition(":")
    sampled = {"interval": interval}
    if kind == "rapl" and not argument:
        return RaplMeter(root, **sampled)
    if kind == "hwmon":
        return HwmonMeter(root, name=argument or None, **sampled, **options)
    if kind == "pi5" and not argument:
        return Pi5PmicMeter(run_command, **sampled)
    if kind == "battery":
        return BatteryMeter(root, name=argument or None, **sampled)
    if kind == "csv" and argument:
        return CsvLogMeter(argument, clock_offset=clock_offset)
    if kind == "estimate" and not argument:
        return _estimate(profile)
    raise SensorError(f"unknown energy meter {spec!r} (use {SPECS})")


def _estimate(profile: dict | None) -> EnergyMeter:
    needed = ("idle_w", "active_w", "cores")
    if not profile:
        raise SensorError("--energy estimate needs a device profile: pass --profile NAME")
    missing = [key for key in needed if profile.get(key) is None]
    if missing:
        raise SensorError(f"profile {profile.get('name', '?')!r} lacks {', '.join(missing)} needed by --energy estimate")
    return EstimateMeter(**{key: profile[key] for key in needed}, profile=profile.get("name", "profile"))


def energy_summary(reading: EnergyReading | None, runs: int, reason: str | None = None) -> dict:
    """The log's ``summary.energy`` object (docs/log-schema.md) for ``runs`` inferences.

    Without a usable reading it is ``{"available": false, "reason": ...}``; no figure is made up.

    >>> energy_summary(EnergyReading("rapl:package-0", joules=2.0, seconds=0.5), runs=100, reason=None)["mj_per_inference"]
    20.0
    """
    problem = _unusable(reading, runs)
    if problem:
        return {"available": False, "reason": (reason if reading is None else None) or problem}
    return {"available": True, "meter": reading.meter, "estimated": reading.estimated,
            "mj_per_inference": reading.joules * 1e3 / runs, "avg_power_w": reading.average_watts,
            "joules": reading.joules, "seconds": reading.seconds, "samples": reading.samples}


def _unusable(reading: EnergyReading | None, runs: int) -> str | None:
    """Why ``reading`` cannot be reported, or None when it can."""
    if reading is None:
        return "no energy meter"
    if runs < 1:
        return "no runs were measured"
    if not (math.isfinite(reading.joules) and reading.joules >= 0):
        return f"{reading.meter} gave an invalid energy ({reading.joules!r} J)"
    if not (math.isfinite(reading.seconds) and reading.seconds > 0):
        return f"{reading.meter} measured an empty window"
    return None
