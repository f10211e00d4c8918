"""CPU temperature, clock, throttling and device info, on fixture trees in the real formats.

The Raspberry Pi and x86 laptop trees (tests/runtime/fixtures/thermal-*.tree)
hold the thermal, cpufreq, thermal_throttle and /proc/cpuinfo files those
machines expose; ``vcgencmd`` answers come through the injectable runner.
Peak memory is checked against the kernel's own figure for this process.
"""

import sys

import numpy as np
import pytest

from edgesmith.runtime.sysinfo import cpu_snapshot, device_info, peak_rss_mb, throttled
from tests.runtime.fixtures.trees import build_tree


def vcgencmd(answers):
    """A command runner answering ``vcgencmd <what>`` from ``answers``; anything else is not installed."""

    def run(argv):
        if argv[0] != "vcgencmd" or argv[1] not in answers:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        return answers[argv[1]]

    return run


def no_commands(argv):
    raise FileNotFoundError(2, "No such file or directory", argv[0])


def test_raspberry_pi_snapshot(tmp_path):
    root = build_tree("thermal-pi5", tmp_path)
    snapshot = cpu_snapshot(root, vcgencmd({"get_throttled": "throttled=0x50005\n"}))
    assert snapshot == {"temp_c": 48.3, "freq_mhz": 2400.0, "throttle_flags": 0x50005, "throttle_count": None}
    assert device_info(root)["cpu"] == "Raspberry Pi 5 Model B Rev 1.0"


def test_x86_snapshot_prefers_the_package_sensor(tmp_path):
    root = build_tree("thermal-x86", tmp_path)
    snapshot = cpu_snapshot(root, no_commands)
    assert snapshot == {"temp_c": 55.0, "freq_mhz": pytest.approx(3187.402), "throttle_flags": None,
                        "throttle_count": 3}  # acpitz (27.8) is the board, not the CPU
    assert device_info(root)["cpu"] == "11th Gen Intel(R) Core(TM) i7-1165G7 @ 2.80GHz"  # not "model : 140"


def test_temperature_falls_back_to_vcgencmd(tmp_path):
    runner = vcgencmd({"measure_temp": "temp=61.8'C\n"})
    assert cpu_snapshot(tmp_path, runner)["temp_c"] == 61.8


def test_unreadable_sensors_are_none(tmp_path):
    root = build_tree("thermal-pi5", tmp_path)
    temp = root / "sys/class/thermal/thermal_zone0/temp"
    temp.unlink()
    temp.mkdir()  # a directory where the file should be: unreadable, even for root
    snapshot = cpu_snapshot(root, no_commands)
    assert snapshot["temp_c"] is None and snapshot["throttle_flags"] is None
    assert snapshot["freq_mhz"] == 2400.0
    assert cpu_snapshot(tmp_path / "empty", no_commands) == {
        "temp_c": None, "freq_mhz": None, "throttle_flags": None, "throttle_count": None}


@pytest.mark.parametrize("start, end, expected", [
    (0x0, 0x0, False),
    (0x50000, 0x50000, False),  # throttled since boot, but not during the window
    (0x0, 0x40000, True),  # throttling occurred during the window
    (0x50005, 0x50005, True),  # under-voltage and throttled right now
    (0x0, 0x8, True),  # soft temperature limit active at the end
])
def test_throttled_from_pi_flags(start, end, expected):
    assert throttled({"throttle_flags": start}, {"throttle_flags": end}) is expected


def test_throttled_from_x86_counts_and_unknown():
    assert throttled({"throttle_count": 3}, {"throttle_count": 3}) is False
    assert throttled({"throttle_count": 3}, {"throttle_count": 5}) is True
    assert throttled({"temp_c": 50.0}, {"temp_c": 90.0}) is None  # nothing says, so no verdict
    assert throttled({"throttle_flags": None}, {"throttle_flags": 0x4}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="compares with /proc/self/status")
def test_peak_rss_matches_the_kernel_high_water_mark():
    block = np.ones(48 * 1024 * 1024 // 8)  # 48 MiB, touched
    peak = peak_rss_mb()
    status = open("/proc/self/status").read()
    vm_hwm_kib = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    assert peak == pytest.approx(vm_hwm_kib / 1024, abs=2.0)
    assert peak >= block.nbytes / 2**20
    del block


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_device_info_on_this_machine():
    info = device_info()
    assert set(info) == {"hostname", "system", "machine", "cpu", "cores"}
    assert info["cpu"] and info["cpu"] in open("/proc/cpuinfo").read()
