"""External USB power-meter logs (``csv:FILE``), aligned with the window by timestamps.

The log is any CSV with a header row (comma, semicolon or tab separated):

* a time column named ``time``, ``timestamp``, ``unix``, ``epoch``, ``t``,
  ``ts``, ``date`` or ``datetime``, holding Unix seconds (``time_ms``:
  milliseconds) or ISO 8601 times (without a zone: this machine's local time);
* a power column (``power``, ``p``, ``W``, ``power_mw``, ``Power (mW)`` ...),
  or a voltage (``voltage``, ``volt``, ``vbus``, ``V``, ``mV`` ...) and a
  current column (``current``, ``i``, ``ibus``, ``A``, ``mA`` ...).

A column's first word says what it holds and any further word its unit
(``W``/``mW``/``uW``, ``V``/``mV``, ``A``/``mA``/``uA``; default W, V, A), so
``D+ (V)`` is not mistaken for the bus voltage. The file is read at
:meth:`CsvLogMeter.stop`; the samples inside the [start, stop] window are
integrated with the trapezoid rule, interpolating at its edges.
"""

from __future__ import annotations

import contextlib
import csv
import re
import time
from datetime import datetime
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import SensorError
from .meter import EnergyMeter, EnergyReading
from .sampling import window_energy

TIME_WORDS = {"time", "timestamp", "unix", "epoch", "t", "ts", "date", "datetime"}
QUANTITIES = {
    "power": ({"power", "p", "pwr"}, {"w": 1.0, "mw": 1e-3, "uw": 1e-6}),
    "voltage": ({"voltage", "volt", "volts", "vbus", "u"}, {"v": 1.0, "mv": 1e-3}),
    "current": ({"current", "curr", "i", "ibus", "amps"}, {"a": 1.0, "ma": 1e-3, "ua": 1e-6}),
}
_SPLIT = re.compile(r"[\s_()\[\]/,.-]+")


def header_words(name: str) -> list:
    """``"Power (mW)"`` -> ``["power", "mw"]``."""
    return [word for word in _SPLIT.split(name.strip().lower().replace("µ", "u")) if word]


def column_scale(name: str, quantity: str) -> float | None:
    """The factor to SI units if column ``name`` holds ``quantity``, else None."""
    words = header_words(name)
    names, units = QUANTITIES[quantity]
    if len(words) == 1 and words[0] in units:  # a bare unit: "W", "mA"
        return units[words[0]]
    if not words or words[0] not in names:
        return None
    return next((units[word] for word in words[1:] if word in units), 1.0)


def time_scale(name: str) -> float | None:
    """1.0 (seconds) or 1e-3 (``..._ms``) if ``name`` is a time column, else None."""
    words = header_words(name)
    if not words or words[0] not in TIME_WORDS:
        return None
    return 1e-3 if "ms" in words[1:] else 1.0


class CsvLog:
    """A power log's columns, found from its header."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            lines = self.path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        except OSError as error:
            raise SensorError(f"cannot read power log {self.path}: {error.strerror or error}") from None
        self.delimiter = _delimiter(lines[0] if lines else "")
        header, *self._rows = list(csv.reader(lines, delimiter=self.delimiter)) or [[]]
        if not header:
            raise SensorError(f"{self.path}: empty file; expected a CSV header")
        self.time = _find(header, time_scale)
        self.power, self.voltage, self.current = (_find(header, partial(column_scale, quantity=quantity))
                                                  for quantity in ("power", "voltage", "current"))
        if self.time is None or (self.power is None and None in (self.voltage, self.current)):
            raise SensorError(f"{self.path}: header {','.join(header)!r} needs a time column and a power column "
                              "(or voltage and current columns)")

    def samples(self):
        """(Unix seconds, watts) arrays, in time order; rows that do not parse are skipped."""
        samples = []
        for row in self._rows:
            with contextlib.suppress(ValueError, IndexError):  # e.g. the line a running logger is writing
                samples.append((_timestamp(row[self.time[0]], self.time[1]),
                                self._number(row, self.power) if self.power is not None
                                else self._number(row, self.voltage) * self._number(row, self.current)))
        times, watts = np.array(samples, dtype=np.float64).reshape(-1, 2).T
        order = np.argsort(times, kind="stable")
        return times[order], watts[order]

    def _number(self, row, column) -> float:
        text = row[column[0]].strip()  # semicolon-separated logs may write decimal commas
        return float(text if self.delimiter == "," else text.replace(",", ".")) * column[1]


def _find(header, scale_of):
    """(index, scale) of the first column ``scale_of`` recognises, or None."""
    return next(((index, scale) for index, scale in enumerate(map(scale_of, header)) if scale is not None), None)


def _delimiter(line: str) -> str:
    try:
        return csv.Sniffer().sniff(line, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _timestamp(text: str, scale: float) -> float:
    text = text.strip()
    try:
        return float(text) * scale
    except ValueError:
        # fromisoformat accepts "Z" only from Python 3.11
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class CsvLogMeter(EnergyMeter):
    """Energy from an external meter's CSV log over the window; named ``csv:<FILE>``.

    ``clock_offset`` (seconds) is added to the log's timestamps, for a logger
    whose clock is not this machine's.

    ``start()`` and ``stop()`` take the window from this machine's clock; ``reading(start, end)``
    takes it in Unix seconds:

    >>> log = Path("um34c.csv")
    >>> _ = log.write_text("unix,Power (W)\\n100.0,2.0\\n100.5,2.0\\n101.0,2.0\\n101.5,3.0\\n102.0,4.0\\n")
    >>> meter = CsvLogMeter(log)
    >>> meter.reading(100.5, 101.5).joules  # 0.5 s at 2 W, then 0.5 s rising from 2 W to 3 W
    2.25
    """

    def __init__(self, path, clock_offset: float = 0.0, wall_clock=time.time):
        self.path, self.name, self.clock_offset = Path(path), f"csv:{path}", float(clock_offset)
        self._wall_clock, self._start = wall_clock, None

    def check(self) -> None:
        self._open()

    def _open(self) -> CsvLog:
        if not self.path.is_file():
            raise SensorError(f"{self.path}: no such power log (start the USB meter's logger first)")
        return CsvLog(self.path)

    def start(self) -> None:
        self._start = self._wall_clock()

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError(f"{self.name}: stop() called before start()")
        return self.reading(self._start, self._wall_clock())

    def reading(self, start: float, end: float) -> EnergyReading:
        """Energy over [start, end] (Unix seconds), e.g. afterwards from a benchmark log's run times."""
        times, watts = self._open().samples()
        times = times + self.clock_offset
        inside = int(np.count_nonzero((times >= start) & (times <= end)))
        _check_coverage(self.path, times, inside, start, end)
        return EnergyReading(self.name, window_energy(times, watts, start, end), end - start, samples=inside)


def _check_coverage(path, times, inside: int, start: float, end: float) -> None:
    """Refuse a log that does not cover the window well enough to integrate it."""
    window = f"the {end - start:.2f} s window"
    if len(times) == 0 or times[-1] < start or times[0] > end:
        span = f"{times[0]:.1f}..{times[-1]:.1f}" if len(times) else "nothing"
        raise SensorError(f"{path}: log covers {span}, outside {window} ({start:.1f}..{end:.1f} Unix s); "
                          "are its times Unix seconds or ISO 8601? else set a clock offset")
    if inside < 2:
        raise SensorError(f"{path}: only {inside} sample(s) fall in {window}; run longer or log faster")
    step = float(np.median(np.diff(times)))
    if times[0] > start + step:
        raise SensorError(f"{path}: log starts {times[0] - start:.2f} s after the window began")
    if times[-1] < end - step:
        raise SensorError(f"{path}: log ends {end - times[-1]:.2f} s before the window ended "
                          "(is the logger still buffering?)")
