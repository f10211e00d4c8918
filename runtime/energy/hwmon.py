"""Power-monitor chips through Linux hwmon: INA219/INA226/INA260/INA3221 boards, Jetson.

Each ``/sys/class/hwmon/hwmonN/`` folder has a ``name`` (the driver, e.g.
``ina219``) and, in hwmon's fixed units, ``power<i>_input`` (microwatts),
``in<i>_input`` (millivolts) and ``curr<i>_input`` (milliamps). A chip with
power readings is read as their sum; otherwise voltage and current are paired
by channel index: the ina2xx driver's ``in0`` is the shunt voltage and
``in1`` the bus voltage that goes with ``curr1``. INA3221 pairs ``in1..3``
with ``curr1..3``; its ``in4..6`` are shunt voltages and ``curr4`` the
summation channel, so index 4 must not be paired there. On a Jetson the
INA3221 channel labelled ``VDD_IN`` is the whole module's input and already
includes the others, so only that one is read when present.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SensorError
from .readers import optional_text, read_number, under
from .sampling import PowerMeter

HWMON = "/sys/class/hwmon"
# Drivers of chips made to measure a supply; auto-detection uses only these,
# so that e.g. a GPU's own power sensor is not reported as the device's.
POWER_MONITOR_DRIVER = re.compile(r"ina\d+.*|ltc29\d+|max3444\d|adm1275|lm25066")
# Drivers where only some indices are a bus voltage with its current.
BUS_CHANNELS = {"ina3221": range(1, 4)}
# Channel labels meaning "the board's whole input" (Jetson INA3221 rails).
INPUT_LABELS = {"VDD_IN", "POM_5V_IN", "VIN", "VIN_SYS_5V0"}
_INDEXED = re.compile(r"(power|in|curr)(\d+)_input")


@dataclass(frozen=True)
class Channel:
    """One measured rail: a power file, or a voltage and a current file."""

    label: str
    power: Path | None = None
    voltage: Path | None = None
    current: Path | None = None

    def watts(self) -> float:
        if self.power is not None:
            return read_number(self.power) / 1e6  # microwatts
        return read_number(self.voltage) * read_number(self.current) / 1e6  # mV * mA = microwatts


def channels(device: Path, driver: str = "") -> list:
    """The rails of hwmon device ``device`` (run by ``driver``) that yield power, in index order."""
    files = {}
    for path in device.glob("*_input"):
        match = _INDEXED.fullmatch(path.name)
        if match:
            files[match.group(1), int(match.group(2))] = path
    powers = sorted(index for kind, index in files if kind == "power")
    if powers:
        return [Channel(_label(device, "power", i), power=files["power", i]) for i in powers]
    bus = BUS_CHANNELS.get(driver)
    paired = sorted(index for kind, index in files
                    if kind == "curr" and ("in", index) in files and (bus is None or index in bus))
    found = [Channel(_label(device, "in", i), voltage=files["in", i], current=files["curr", i]) for i in paired]
    whole_board = [channel for channel in found if channel.label.upper() in INPUT_LABELS]
    return whole_board or found


def _label(device: Path, kind: str, index: int) -> str:
    return optional_text(device / f"{kind}{index}_label") or f"{kind}{index}"


def devices(root="/") -> list:
    """(driver name, folder) of every hwmon device that has power channels, in hwmon order."""
    found = []
    for folder in under(root, HWMON).glob("hwmon*"):
        name = optional_text(folder / "name")
        if name and folder.name[5:].isdigit() and channels(folder, name):
            found.append((int(folder.name[5:]), name, folder))
    return [(name, folder) for _, name, folder in sorted(found)]


def find_device(root="/", name: str | None = None, monitors_only: bool = False):
    """The first hwmon device named ``name`` (or the first power monitor, or any power device)."""
    found = devices(root)
    if name is not None:
        found = [entry for entry in found if entry[0] == name]
    monitors = [entry for entry in found if POWER_MONITOR_DRIVER.fullmatch(entry[0])]
    candidates = monitors if monitors_only or monitors else found
    if not candidates:
        wanted = f"named {name!r}" if name else "with power or current readings"
        raise SensorError(f"no hwmon device {wanted} in {under(root, HWMON)}")
    return candidates[0]


class HwmonMeter(PowerMeter):
    """Power from a hwmon power-monitor chip, sampled and integrated; named ``hwmon:<driver>``.

    On a board with an INA219 power monitor (``/sys/class/hwmon/hwmon*/name`` is ``ina219``):

    >>> meter = HwmonMeter(name="ina219", interval=0.01)  # doctest: +SKIP
    """

    def __init__(self, root="/", name: str | None = None, interval: float | None = None,
                 clock=time.monotonic, monitors_only: bool = False):
        driver, self.folder = find_device(root, name, monitors_only)
        self.channels = channels(self.folder, driver)
        self.name = f"hwmon:{driver}"
        super().__init__(interval, clock)

    def read(self) -> float:
        return sum(channel.watts() for channel in self.channels)
