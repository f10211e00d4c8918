"""An energy estimate from CPU time and a device profile, for devices without a sensor.

    joules = wall_seconds × idle_w + cpu_seconds × (active_w − idle_w) / cores

``cpu_seconds`` is this process's user + system time over the window (all its
threads, so LiteRT's worker threads count); ``idle_w`` is the whole device at
rest and ``active_w`` with every core busy. Readings are marked ``estimated``;
they are a model of the device, not a measurement.
"""

from __future__ import annotations

import time

from ..errors import SensorError
from .meter import EnergyMeter, EnergyReading


class EstimateMeter(EnergyMeter):
    """CPU time × the profile's power figures; named ``estimate:<profile>``.

    >>> meter = EstimateMeter(idle_w=2.0, active_w=6.0, cores=4, profile="my-board")
    >>> meter.start(); busy = sum(range(100_000)); reading = meter.stop()
    >>> reading.meter, reading.estimated, reading.joules > 0
    ('estimate:my-board', True, True)
    """

    estimated = True

    def __init__(self, idle_w: float, active_w: float, cores: int, profile: str = "profile",
                 clock=time.monotonic, cpu_clock=time.process_time):
        # process_time: user + system time of every thread, in ns (os.times' 10 ms ticks are far too coarse)
        self.name = f"estimate:{profile}"
        self.idle_w, self.active_w, self.cores = float(idle_w), float(active_w), int(cores)
        self._clock, self._cpu_clock = clock, cpu_clock
        self._start = None

    def check(self) -> None:
        if not (0 <= self.idle_w <= self.active_w) or self.cores < 1:
            raise SensorError(f"{self.name}: the profile needs 0 <= idle_w <= active_w and cores >= 1 "
                              f"(got idle_w={self.idle_w:g}, active_w={self.active_w:g}, cores={self.cores})")

    def start(self) -> None:
        self._start = (self._clock(), self._cpu_clock())

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError(f"{self.name}: stop() called before start()")
        wall = self._clock() - self._start[0]
        cpu = self._cpu_clock() - self._start[1]
        joules = wall * self.idle_w + cpu * (self.active_w - self.idle_w) / self.cores
        return EnergyReading(self.name, joules, wall, estimated=True)
