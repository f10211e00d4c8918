"""RAPL through Linux powercap: the CPU package's cumulative energy counters.

``/sys/class/powercap/intel-rapl:N/energy_uj`` counts microjoules used by CPU
package N (AMD Zen CPUs expose the same interface). Subzones such as
``intel-rapl:0:0`` (cores, uncore, dram) are parts of their package and are
not added again; a top-level ``psys`` zone (the whole platform on some laptops)
overlaps the packages and is left out too. Counters wrap to 0 after
``max_energy_range_uj``; they are polled (every second by default) so that a
wrap is always seen between two readings.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SensorError
from .readers import optional_text, read_number, under
from .sampling import PolledMeter

POWERCAP = "/sys/class/powercap"
_TOP_LEVEL_ZONE = re.compile(r"intel-rapl:(\d+)")


@dataclass(frozen=True)
class RaplZone:
    """One top-level package zone."""

    name: str  # e.g. "package-0"
    counter: Path  # its energy_uj file
    max_range_uj: float


def package_zones(root="/") -> list:
    """The top-level ``package-N`` zones under ``root``'s powercap folder, in index order."""
    folder = under(root, POWERCAP)
    found = []
    for path in folder.glob("intel-rapl:*"):
        match = _TOP_LEVEL_ZONE.fullmatch(path.name)
        name = optional_text(path / "name") if match else None
        if name and name.startswith("package"):
            found.append((int(match.group(1)), path, name))
    return [RaplZone(name, path / "energy_uj", read_number(path / "max_energy_range_uj"))
            for _, path, name in sorted(found)]


def counter_increment(before: float, after: float, max_range: float) -> float:
    """How far a counter advanced from ``before`` to ``after``, allowing one wrap-around.

    >>> counter_increment(990, 15, 1000)
    25
    """
    return after - before if after >= before else max_range - before + after


class RaplMeter(PolledMeter):
    """Energy of all CPU packages from RAPL counters; named e.g. ``rapl:package-0``.

    On an Intel or AMD CPU whose counters are readable (``/sys/class/powercap/intel-rapl:*``):

    >>> meter = RaplMeter()  # doctest: +SKIP
    >>> meter.start(); busy = sum(range(100_000)); reading = meter.stop()  # doctest: +SKIP
    """

    default_interval = 1.0  # only to catch wrap-arounds, which take minutes at the least

    def __init__(self, root="/", interval: float | None = None, clock=time.monotonic):
        self.zones = package_zones(root)
        if not self.zones:
            raise SensorError(f"no RAPL package zones in {under(root, POWERCAP)} (needs an Intel or AMD CPU on Linux)")
        self.name = "rapl:" + "+".join(zone.name for zone in self.zones)
        super().__init__(interval, clock)

    def read(self) -> list:
        return [read_number(zone.counter) for zone in self.zones]

    def joules(self, times, values, start, end) -> float:
        microjoules = 0.0
        for i, zone in enumerate(self.zones):
            series = [reading[i] for reading in values]
            microjoules += sum(counter_increment(a, b, zone.max_range_uj) for a, b in zip(series, series[1:]))
        return microjoules / 1e6

    def sample_count(self) -> int:
        return 0  # a counter, not integrated power samples
