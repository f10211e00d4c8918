"""What every energy meter is: :class:`EnergyMeter` measures a window and returns an :class:`EnergyReading`."""

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

    def check(self) -> None:
        """Read the sensor once now; raise SensorError (naming the path) if it cannot be read."""
