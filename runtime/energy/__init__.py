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

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class EnergyReading:
    """Energy used over one measurement window."""

    meter: str  # which meter measured it, e.g. "rapl:package-0" or "pi5-pmic"
    joules: float
    seconds: float
    estimated: bool = False
    samples: int = 0  # power samples integrated (0 for counters)

    @property
    def average_watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0


class EnergyMeter(ABC):
    """Measures the energy used between :meth:`start` and :meth:`stop`."""

    name: str = "meter"
    estimated: bool = False

    @abstractmethod
    def start(self) -> None:
        """Begin a measurement window."""

    @abstractmethod
    def stop(self) -> EnergyReading:
        """End the window and return what was used during it."""
