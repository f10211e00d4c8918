"""Laptop, phone and handheld batteries through ``/sys/class/power_supply``.

A supply whose ``type`` is ``Battery`` (and whose ``scope`` is not ``Device``,
which marks a mouse's or a pen's battery) is read as ``power_now``
(microwatts), or else ``current_now`` (microamps) × ``voltage_now``
(microvolts). Drivers disagree on the sign of a discharge, so the absolute
value is used. A battery without either falls back to its ``energy_now``
counter (microwatt-hours), which many fuel gauges update only every few seconds.

A battery measures the whole device only while it discharges: when the
``status`` says ``Charging``, ``Full`` or ``Not charging``, the charger feeds the
device, and the battery is refused rather than reporting the charge current.
"""

from __future__ import annotations

import time

from ..errors import SensorError
from .readers import optional_text, read_number, read_text, under
from .sampling import PowerMeter

POWER_SUPPLY = "/sys/class/power_supply"
MICROWATT_HOUR_J = 3.6e-3


def batteries(root="/") -> list:
    """Folders of the system batteries under ``root``, by name."""
    return [folder for folder in sorted(under(root, POWER_SUPPLY).glob("*"))
            if optional_text(folder / "type") == "Battery" and optional_text(folder / "scope") != "Device"]


class BatteryMeter(PowerMeter):
    """Discharge power of a battery, sampled and integrated; named ``battery:<NAME>``.

    On a laptop running on its battery:

    >>> meter = BatteryMeter(name="BAT0")  # doctest: +SKIP
    """

    def __init__(self, root="/", name: str | None = None, interval: float | None = None, clock=time.monotonic):
        found = [folder for folder in batteries(root) if name in (None, folder.name)]
        if not found:
            wanted = f"named {name!r}" if name else "(a power_supply of type Battery)"
            raise SensorError(f"no battery {wanted} in {under(root, POWER_SUPPLY)}")
        self.folder = found[0]
        self.name = f"battery:{self.folder.name}"
        self.counter_only = not self._has("power_now") and not self._has("current_now", "voltage_now")
        if self.counter_only and not self._has("energy_now"):
            raise SensorError(f"{self.folder} has neither power_now, current_now and voltage_now, nor energy_now")
        super().__init__(interval, clock)

    def _has(self, *names) -> bool:
        return all((self.folder / name).exists() for name in names)

    def read(self) -> float:
        """Watts now, or the ``energy_now`` counter in microwatt-hours for a counter-only battery."""
        self._require_discharging()
        if self.counter_only:
            return read_number(self.folder / "energy_now")
        if self._has("power_now"):
            return abs(read_number(self.folder / "power_now")) / 1e6
        return abs(read_number(self.folder / "current_now")) * read_number(self.folder / "voltage_now") / 1e12

    def _require_discharging(self) -> None:
        status_file = self.folder / "status"
        status = read_text(status_file) if status_file.exists() else "Discharging"
        if status != "Discharging":
            raise SensorError(f"{status_file} is {status!r}: a battery measures the device only "
                              "while discharging; unplug the charger")

    def joules(self, times, values, start, end) -> float:
        if not self.counter_only:
            return super().joules(times, values, start, end)
        used = values[0] - values[-1]  # energy_now falls while discharging
        if used <= 0:
            raise SensorError(f"{self.folder / 'energy_now'} did not change in {end - start:.1f} s: "
                              "run the benchmark longer (more --runs)")
        return used * MICROWATT_HOUR_J

    def sample_count(self) -> int:
        return 0 if self.counter_only else super().sample_count()
