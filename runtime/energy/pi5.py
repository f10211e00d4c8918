"""Raspberry Pi 5 power from its PMIC: ``vcgencmd pmic_read_adc``.

The command prints one line per ADC channel, currents then voltages::

      VDD_CORE_A current(7)=1.08053000A
      VDD_CORE_V volt(15)=0.72178200V
         EXT5V_V volt(24)=5.09066000V

The channel numbers of a rail's current and voltage differ, so rails are paired
by name (``VDD_CORE_A`` with ``VDD_CORE_V``). Power is the sum of V × I over the
paired rails; voltage-only lines such as the 5 V input (``EXT5V_V``) are left
out. The rails are those the PMIC feeds (SoC, RAM, I/O): USB devices, the fan
and the PMIC's own conversion losses are not included, so this reads lower
than the power drawn at the USB-C input.
"""

from __future__ import annotations

import math
import re
import time

from ..errors import SensorError
from .readers import command_output
from .sampling import PowerMeter

COMMAND = ("vcgencmd", "pmic_read_adc")
_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=(\S+?)[AV]\s*$", re.MULTILINE)


def rail_readings(output: str) -> dict:
    """``{rail: (volts, amps)}`` for every rail with both a current and a voltage line."""
    amps, volts = {}, {}
    for rail, unit, number in _LINE.findall(output):
        try:
            value = float(number)
        except ValueError:
            continue
        if math.isfinite(value):
            (amps if unit == "A" else volts)[rail] = value
    return {rail: (volts[rail], amps[rail]) for rail in amps if rail in volts}


def pmic_watts(output: str) -> float:
    """Total power of the paired rails in one ``pmic_read_adc`` output.

    >>> pmic_watts("  VDD_CORE_A current(7)=2.00000000A\\n  VDD_CORE_V volt(15)=0.80000000V\\n")
    1.6
    """
    rails = rail_readings(output)
    if not rails:
        raise SensorError(f"`{' '.join(COMMAND)}` printed no rail current/voltage pairs (needs a Raspberry Pi 5)")
    return sum(volts * amps for volts, amps in rails.values())


class Pi5PmicMeter(PowerMeter):
    """Raspberry Pi 5 rail power, sampled (every 200 ms by default) and integrated; named ``pi5-pmic``."""

    name = "pi5-pmic"
    default_interval = 0.2  # each reading starts a vcgencmd process, far slower than a sysfs read

    def __init__(self, run_command=None, interval: float | None = None, clock=time.monotonic):
        self.run_command = run_command
        super().__init__(interval, clock)

    def read(self) -> float:
        return pmic_watts(command_output(COMMAND, self.run_command))
