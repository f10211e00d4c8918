"""Meters read by a background thread: power sensors integrated over time, and counters.

:class:`PolledMeter` reads its sensor at :meth:`~PolledMeter.start`, every
``interval`` seconds in a daemon thread, and at :meth:`~PolledMeter.stop`.
:class:`PowerMeter` subclasses return watts and are integrated with the
trapezoid rule over the window; counter meters (RAPL) return counter values and
sum the increments, so polling only has to be faster than the counter wraps.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod

import numpy as np

from ..errors import SensorError
from .meter import EnergyMeter, EnergyReading

log = logging.getLogger(__name__)


class PolledMeter(EnergyMeter):
    """A meter whose sensor is read at start, every ``interval`` seconds, and at stop."""

    default_interval = 1.0

    def __init__(self, interval: float | None = None, clock=time.monotonic):
        self.interval = float(interval if interval is not None else self.default_interval)
        if self.interval <= 0:
            raise SensorError(f"{self.name}: sampling interval must be > 0 s (got {self.interval:g})")
        self._clock = clock
        self._lock = threading.Lock()
        self._thread = None
        self._samples: list = []
        self._failures = 0

    @abstractmethod
    def read(self):
        """One reading of the sensor now; raises SensorError when it cannot be read."""

    @abstractmethod
    def joules(self, times: np.ndarray, values: list, start: float, end: float) -> float:
        """Energy used in [start, end] given the readings taken at ``times``."""

    def sample_count(self) -> int:
        """How many samples the reading reports (counters report 0, as the log schema says)."""
        return len(self._samples)

    def check(self) -> None:
        self.read()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: start() called twice without stop()")
        self._samples, self._failures = [], 0
        self._window_start = self._clock()
        self.sample_now(strict=True)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll, name=f"edgesmith-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> EnergyReading:
        if self._thread is None:
            raise RuntimeError(f"{self.name}: stop() called before start()")
        self._stopping.set()
        self._thread.join()
        self._thread = None
        self.sample_now()
        end = self._clock()
        if len(self._samples) < 2:
            raise SensorError(f"{self.name}: fewer than 2 readings in the window ({self._failures} failed)")
        if self._failures:
            log.warning("%s: %d of %d readings failed and were skipped", self.name, self._failures,
                        self._failures + len(self._samples))
        times = np.array([t for t, _ in self._samples])
        joules = self.joules(times, [v for _, v in self._samples], self._window_start, end)
        return EnergyReading(self.name, joules, end - self._window_start, self.estimated, self.sample_count())

    def sample_now(self, strict: bool = False) -> None:
        """Take one reading now (the thread calls this; tests may too). Failures are counted unless ``strict``."""
        with self._lock:
            before = self._clock()
            try:
                value = self.read()
            except SensorError:
                if strict:
                    raise
                self._failures += 1
                return
            self._samples.append(((before + self._clock()) / 2, value))

    def _poll(self) -> None:
        while not self._stopping.wait(self.interval):
            self.sample_now()


class PowerMeter(PolledMeter):
    """A polled meter whose :meth:`read` returns watts."""

    default_interval = 0.02

    def joules(self, times, values, start, end) -> float:
        return window_energy(times, np.asarray(values, dtype=np.float64), start, end)


def window_energy(times: np.ndarray, watts: np.ndarray, start: float, end: float) -> float:
    """Trapezoid integral of power over [start, end], interpolating at the window's edges.

    Outside the samples the nearest reading is held (``np.interp`` clamps).

    >>> window_energy(np.array([0.0, 1.0, 2.0]), np.array([1.0, 3.0, 3.0]), 0.5, 2.0)
    4.25
    """
    inside = (times > start) & (times < end)
    t = np.concatenate([[start], times[inside], [end]])
    w = np.concatenate([[np.interp(start, times, watts)], watts[inside], [np.interp(end, times, watts)]])
    return float(np.sum((w[1:] + w[:-1]) / 2 * np.diff(t)))
