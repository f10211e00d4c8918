"""Energy meters on fixture trees in the real sysfs formats, captured command output and real CSV logs.

This machine has no RAPL, hwmon power monitor, PMIC or battery, so every meter
reads files laid out exactly as its Linux driver exposes them (see
tests/runtime/fixtures/*.tree) or, for the Pi 5, the captured output of
``vcgencmd pmic_read_adc`` through the injectable command runner.
"""

import csv
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from edgesmith.runtime.energy import EnergyReading, energy_summary, open_meter
from edgesmith.runtime.energy.battery import BatteryMeter
from edgesmith.runtime.energy.csv_log import CsvLogMeter
from edgesmith.runtime.energy.estimate import EstimateMeter
from edgesmith.runtime.energy.hwmon import HwmonMeter
from edgesmith.runtime.energy.pi5 import pmic_watts, rail_readings
from edgesmith.runtime.energy.rapl import RaplMeter
from edgesmith.runtime.errors import SensorError
from edgesmith.runtime.logs import SCHEMA, validate_record
from tests.runtime.fixtures.trees import build_tree, copy_fixture, fixture_text, write_value

PMIC_OUTPUT = fixture_text("pi5-pmic_read_adc.txt")
RAPL0 = "sys/class/powercap/intel-rapl:0"
RAPL1 = "sys/class/powercap/intel-rapl:1"
INA219 = "sys/class/hwmon/hwmon2"
BAT0 = "sys/class/power_supply/BAT0"


class FakeClock:
    """A monotonic clock the test advances by hand."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def runner_for(output):
    """A command runner answering ``vcgencmd pmic_read_adc`` with ``output``, recording the calls."""
    calls = []

    def run(argv):
        calls.append(argv)
        if argv != ["vcgencmd", "pmic_read_adc"]:
            raise FileNotFoundError(argv[0])
        return output

    run.calls = calls
    return run


def measure(meter, seconds):
    """Run a real measurement window of ``seconds``, letting the meter's thread sample."""
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def no_vcgencmd(argv):
    raise FileNotFoundError(2, "No such file or directory", argv[0])


# -- RAPL ----------------------------------------------------------------------


def test_rapl_sums_packages_and_survives_a_wrap(tmp_path):
    root = build_tree("rapl-server", tmp_path)
    meter = open_meter("rapl", root=root)
    assert meter.name == "rapl:package-0+package-1"  # the dram subzones are not added
    meter.start()
    write_value(root, f"{RAPL0}/energy_uj", 1_500_000)  # wrapped: 262143328850 -> 0 -> 1.5 J
    write_value(root, f"{RAPL1}/energy_uj", 81234567890 + 2_000_000)
    write_value(root, "sys/class/powercap/intel-rapl:0:0/energy_uj", 0)  # a subzone changing changes nothing
    reading = meter.stop()
    package0 = (262143328850 - 262140000000 + 1_500_000) / 1e6
    assert reading.joules == pytest.approx(package0 + 2.0)
    assert reading.samples == 0 and not reading.estimated and reading.seconds > 0


def test_rapl_polling_counts_every_wrap(tmp_path):
    root = build_tree("rapl-server", tmp_path)
    meter = RaplMeter(root, interval=3600)  # the test takes the polls itself
    meter.start()
    for counter in (262143000000, 1000000, 262000000000, 2000000):  # two wraps in one window
        write_value(root, f"{RAPL0}/energy_uj", counter)
        meter.sample_now()
    reading = meter.stop()
    expected = (262143000000 - 262140000000) + (262143328850 - 262143000000 + 1000000) \
        + (262000000000 - 1000000) + (262143328850 - 262000000000 + 2000000)
    assert reading.joules == pytest.approx(expected / 1e6)


def test_rapl_leaves_out_psys_and_mmio_zones(tmp_path):
    meter = open_meter("rapl", root=build_tree("rapl-laptop", tmp_path))
    assert meter.name == "rapl:package-0"
    assert [zone.counter.parent.name for zone in meter.zones] == ["intel-rapl:0"]


def test_unreadable_rapl_counter_names_the_path(tmp_path):
    root = build_tree("rapl-server", tmp_path)
    counter = root / RAPL0 / "energy_uj"
    counter.unlink()
    counter.mkdir()  # tests run as root, so chmod 000 would not stop a read: a directory does
    with pytest.raises(SensorError, match=r"cannot read .*intel-rapl:0/energy_uj"):
        open_meter("rapl", root=root)


def test_permission_denied_says_how_to_fix_it(tmp_path, monkeypatch):
    root = build_tree("rapl-server", tmp_path)
    real_read_text = Path.read_text

    def root_only(path, *args, **kwargs):  # what a non-root user gets since Linux 5.10
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", root_only)
    with pytest.raises(SensorError, match=r"permission denied reading .*energy_uj: run as root"):
        open_meter("rapl", root=root)


# -- hwmon ---------------------------------------------------------------------


def test_ina219_power_is_sampled_by_a_thread_and_integrated(tmp_path):
    meter = open_meter("hwmon", root=build_tree("ina219", tmp_path), interval=0.005)
    assert meter.name == "hwmon:ina219"
    reading = measure(meter, 0.08)
    assert reading.samples >= 3  # start, stop and at least one sample from the thread
    assert reading.joules == pytest.approx(3.17 * reading.seconds)  # power1_input, not in1 x curr1


def test_ina219_without_power_pairs_bus_voltage_with_current(tmp_path):
    root = build_tree("ina219", tmp_path)
    (root / INA219 / "power1_input").unlink()
    meter = HwmonMeter(root)
    assert meter.read() == pytest.approx(5.112 * 0.620)  # in1 (bus) x curr1; in0 is the shunt


def test_trapezoid_over_a_changing_reading(tmp_path):
    root = build_tree("ina219", tmp_path)
    clock = FakeClock()
    meter = HwmonMeter(root, interval=3600, clock=clock)
    meter.start()  # 3.17 W at t=0
    clock.now += 1.0
    write_value(root, f"{INA219}/power1_input", 5_170_000)
    meter.sample_now()  # 5.17 W at t=1
    clock.now += 2.0
    reading = meter.stop()  # 5.17 W at t=3
    assert reading.seconds == pytest.approx(3.0)
    assert reading.joules == pytest.approx((3.17 + 5.17) / 2 * 1.0 + 5.17 * 2.0)


def test_ina3221_on_a_jetson_reads_the_module_input_only(tmp_path):
    meter = open_meter("hwmon", root=build_tree("ina3221-jetson", tmp_path))
    assert meter.name == "hwmon:ina3221"
    assert [channel.label for channel in meter.channels] == ["VDD_IN"]
    assert meter.read() == pytest.approx(5.008 * 1.296)


def test_ina3221_board_sums_its_three_channels(tmp_path):
    meter = open_meter("hwmon", root=build_tree("ina3221-board", tmp_path))
    assert meter.read() == pytest.approx(5.04 * 0.48 + 3.3 * 0.12 + 12.0 * 0.25)  # not curr4, not in4..6


def test_auto_ignores_a_gpu_sensor_that_explicit_hwmon_accepts(tmp_path):
    root = build_tree("gpu-hwmon", tmp_path)
    assert open_meter("auto", root=root, run_command=no_vcgencmd) is None
    meter = open_meter("hwmon", root=root)
    assert meter.name == "hwmon:amdgpu" and meter.read() == pytest.approx(9.0)


def test_hwmon_by_name(tmp_path):
    root = build_tree("ina219", tmp_path)
    assert open_meter("hwmon:ina219", root=root).name == "hwmon:ina219"
    with pytest.raises(SensorError, match="no hwmon device named 'ina226'"):
        open_meter("hwmon:ina226", root=root)


# -- Raspberry Pi 5 PMIC ---------------------------------------------------------


def test_pmic_pairs_rails_by_name_and_ignores_unpaired_lines():
    rails = rail_readings(PMIC_OUTPUT)
    assert len(rails) == 12 and "EXT5V" not in rails and "BATT" not in rails
    assert rails["VDD_CORE"] == (0.721782, 0.8234)  # current(7) pairs with volt(15)
    without_core = "".join(line for line in PMIC_OUTPUT.splitlines(True) if "VDD_CORE_A" not in line)
    assert pmic_watts(PMIC_OUTPUT) - pmic_watts(without_core) == pytest.approx(0.721782 * 0.8234)
    doubled_input = PMIC_OUTPUT.replace("EXT5V_V volt(24)=5.12084000V", "EXT5V_V volt(24)=10.24168000V")
    assert pmic_watts(doubled_input) == pmic_watts(PMIC_OUTPUT)


def test_pi5_meter_samples_the_command(tmp_path):
    run = runner_for(PMIC_OUTPUT)
    meter = open_meter("pi5", run_command=run, interval=0.01)
    assert meter.name == "pi5-pmic"
    reading = measure(meter, 0.05)
    assert reading.samples == len(run.calls) - 1 >= 3  # open_meter's check read once
    assert reading.joules == pytest.approx(pmic_watts(PMIC_OUTPUT) * reading.seconds)


def test_pi5_on_a_board_without_pmic_is_refused():
    pi4 = 'error=1 error_msg="Command not registered"\n'
    with pytest.raises(SensorError, match="no rail current/voltage pairs"):
        open_meter("pi5", run_command=runner_for(pi4))

    def failing(argv):
        raise subprocess.CalledProcessError(255, argv, output="", stderr="VCHI initialization failed\n")

    with pytest.raises(SensorError, match="vcgencmd pmic_read_adc` failed .*VCHI initialization failed"):
        open_meter("pi5", run_command=failing)
    with pytest.raises(SensorError, match="`vcgencmd` not found"):
        open_meter("pi5", run_command=no_vcgencmd)


# -- battery ---------------------------------------------------------------------


def test_laptop_battery_reads_power_now_and_skips_a_mouse(tmp_path):
    meter = open_meter("battery", root=build_tree("battery-laptop", tmp_path))
    assert meter.name == "battery:BAT0"
    assert meter.read() == pytest.approx(7.821)


def test_phone_battery_uses_abs_current_times_voltage(tmp_path):
    meter = open_meter("battery", root=build_tree("battery-phone", tmp_path), interval=0.005)
    assert meter.name == "battery:battery"
    reading = measure(meter, 0.03)
    assert reading.joules == pytest.approx(0.412 * 3.871 * reading.seconds)


def test_charging_battery_is_refused(tmp_path):
    root = build_tree("battery-laptop", tmp_path)
    write_value(root, f"{BAT0}/status", "Charging")
    with pytest.raises(SensorError, match="BAT0/status is 'Charging'.*unplug the charger"):
        open_meter("battery", root=root)
    assert open_meter("auto", root=root, run_command=no_vcgencmd) is None


def test_counter_only_battery_uses_energy_now(tmp_path):
    root = build_tree("battery-laptop", tmp_path)
    for name in ("power_now", "voltage_now"):
        (root / BAT0 / name).unlink()
    meter = BatteryMeter(root, interval=3600)
    meter.start()
    with pytest.raises(SensorError, match="energy_now did not change"):
        meter.stop()
    meter.start()
    write_value(root, f"{BAT0}/energy_now", 38420000 - 250)  # 250 uWh = 0.9 J
    reading = meter.stop()
    assert reading.joules == pytest.approx(0.9) and reading.samples == 0


# -- CSV logs of USB power meters ----------------------------------------------------


def reference_energy(times, watts, start, end):
    """Energy of the piecewise-linear log over [start, end], by a fine Riemann sum."""
    grid = np.linspace(start, end, 200_001)
    return float(np.interp(grid, times, watts).mean() * (end - start))


def csv_meter(path, start, end, **options):
    """A CsvLogMeter whose window runs from ``start`` to ``end`` (Unix seconds)."""
    clock = iter([start, end])
    meter = CsvLogMeter(path, wall_clock=lambda: next(clock), **options)
    meter.check()
    meter.start()
    return meter


def test_csv_with_unix_time_voltage_and_milliamps(tmp_path):
    path = copy_fixture("usb-meter-unix.csv", tmp_path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    times = np.array([float(row["unix"]) for row in rows])
    watts = np.array([float(row["Voltage (V)"]) * float(row["Current (mA)"]) / 1000 for row in rows])
    start, end = 1795000000.33, 1795000003.47  # between samples: interpolated at both edges
    reading = csv_meter(path, start, end).stop()
    assert reading.meter == f"csv:{path}"
    assert reading.samples == 16
    assert reading.joules == pytest.approx(reference_energy(times, watts, start, end), rel=1e-6)
    assert reading.seconds == pytest.approx(end - start)


def test_csv_with_iso_times_semicolons_and_milliwatts(tmp_path):
    path = copy_fixture("usb-meter-iso.csv", tmp_path)
    rows = [line.split(";") for line in path.read_text().splitlines()[1:]]
    times = np.array([datetime.fromisoformat(row[0].replace("Z", "+00:00")).timestamp() for row in rows])
    watts = np.array([float(row[1].replace(",", ".")) / 1000 for row in rows])
    start, end = times[0] + 1.2, times[0] + 4.1
    assert open_meter(f"csv:{path}").name == f"csv:{path}"  # the spec as the CLI passes it
    reading = csv_meter(path, start, end).stop()
    assert reading.samples == 6
    assert reading.joules == pytest.approx(reference_energy(times, watts, start, end), rel=1e-6)


def test_csv_clock_offset_shifts_the_log(tmp_path):
    path = copy_fixture("usb-meter-unix.csv", tmp_path)
    plain = CsvLogMeter(path).reading(1795000000.5, 1795000002.5)  # afterwards, from known run times
    shifted = CsvLogMeter(path, clock_offset=10.0).reading(1795000010.5, 1795000012.5)
    assert shifted.joules == pytest.approx(plain.joules)


def test_csv_errors_say_what_is_wrong(tmp_path):
    path = copy_fixture("usb-meter-unix.csv", tmp_path)
    with pytest.raises(SensorError, match=r"only 1 sample\(s\) fall in the 0.15 s window"):
        csv_meter(path, 1795000001.15, 1795000001.30).stop()
    with pytest.raises(SensorError, match="outside the .* window.*Unix seconds or ISO 8601"):
        csv_meter(path, 1800000000.0, 1800000005.0).stop()
    with pytest.raises(SensorError, match="log ends 2.00 s before the window ended"):
        csv_meter(path, 1795000002.0, 1795000006.0).stop()
    bad = tmp_path / "bad.csv"
    bad.write_text("when,temperature\n1,2\n")
    with pytest.raises(SensorError, match="needs a time column and a power column"):
        open_meter(f"csv:{bad}")
    with pytest.raises(SensorError, match="no such power log"):
        open_meter(f"csv:{tmp_path / 'missing.csv'}")


# -- estimate --------------------------------------------------------------------------


def test_estimate_formula_with_controlled_clocks():
    wall, cpu = FakeClock(100.0), FakeClock(5.0)
    meter = EstimateMeter(idle_w=2.0, active_w=6.0, cores=4, profile="rpi5", clock=wall, cpu_clock=cpu)
    meter.start()
    wall.now += 10.0
    cpu.now += 4.0  # e.g. 4 CPU-seconds over 10 s
    reading = meter.stop()
    assert reading.joules == pytest.approx(10.0 * 2.0 + 4.0 * (6.0 - 2.0) / 4)
    assert reading.estimated and reading.meter == "estimate:rpi5"


def test_estimate_from_a_profile_counts_real_cpu_time():
    profile = {"name": "x86-host", "cores": 2, "idle_w": 10.0, "active_w": 40.0}
    meter = open_meter("estimate", profile=profile)
    meter.start()
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass  # busy: about 0.1 CPU-seconds
    reading = meter.stop()
    busy_part = reading.joules - reading.seconds * 10.0
    assert busy_part == pytest.approx(0.1 * 30.0 / 2, rel=0.5)
    assert energy_summary(reading, runs=10)["estimated"] is True


def test_estimate_needs_a_profile():
    with pytest.raises(SensorError, match="pass --profile"):
        open_meter("estimate")
    with pytest.raises(SensorError, match="lacks idle_w"):
        open_meter("estimate", profile={"name": "rpi5", "active_w": 6.0, "cores": 4})
    with pytest.raises(SensorError, match="idle_w <= active_w"):
        open_meter("estimate", profile={"name": "odd", "idle_w": 9.0, "active_w": 6.0, "cores": 4})


# -- detection -------------------------------------------------------------------------


@pytest.fixture
def every_sensor(tmp_path):
    """One tree with RAPL, an INA219 and a battery (a laptop with a sensor board plugged in)."""
    for manifest in ("rapl-server", "ina219", "battery-laptop"):
        build_tree(manifest, tmp_path)
    return tmp_path


def test_auto_detection_order(every_sensor):
    root = every_sensor
    assert open_meter("auto", root=root, run_command=runner_for(PMIC_OUTPUT)).name == "pi5-pmic"
    assert open_meter("auto", root=root, run_command=no_vcgencmd).name == "hwmon:ina219"
    shutil.rmtree(root / INA219)
    assert open_meter("auto", root=root, run_command=no_vcgencmd).name == "rapl:package-0+package-1"
    counter = root / RAPL0 / "energy_uj"
    counter.unlink()
    counter.mkdir()  # unreadable RAPL is skipped, not fatal
    assert open_meter("auto", root=root, run_command=no_vcgencmd).name == "battery:BAT0"
    shutil.rmtree(root / BAT0)
    assert open_meter("auto", root=root, run_command=no_vcgencmd) is None
    assert open_meter("none", root=root) is None


@pytest.mark.parametrize("spec, message", [
    ("rapl", "no RAPL package zones in .*sys/class/powercap"),
    ("hwmon", "no hwmon device with power or current readings in .*sys/class/hwmon"),
    ("battery", "no battery .* in .*sys/class/power_supply"),
    ("pi5", "`vcgencmd` not found"),
    ("wattmeter", "unknown energy meter 'wattmeter'"),
])
def test_explicit_meter_that_is_absent_raises(tmp_path, spec, message):
    with pytest.raises(SensorError, match=message):
        open_meter(spec, root=tmp_path, run_command=no_vcgencmd)


# -- summary ---------------------------------------------------------------------------


def summary_record(energy):
    stats = {name: 1.0 for name in ("min", "mean", "p50", "p90", "p99", "max", "std")}
    return {"schema": SCHEMA, "type": "summary", "runs": 100, "latency_ms": stats, "energy": energy}


def test_energy_summary_follows_the_log_schema():
    reading = EnergyReading("pi5-pmic", joules=0.41, seconds=0.132, samples=27)
    energy = energy_summary(reading, runs=100, reason=None)
    assert energy == {
        "available": True, "meter": "pi5-pmic", "estimated": False,
        "mj_per_inference": pytest.approx(4.1), "avg_power_w": pytest.approx(0.41 / 0.132),
        "joules": 0.41, "seconds": 0.132, "samples": 27,
    }
    assert validate_record(summary_record(energy)) == []


def test_energy_summary_without_a_figure_gives_a_reason():
    missing = energy_summary(None, runs=100, reason="no energy meter found")
    assert missing == {"available": False, "reason": "no energy meter found"}
    assert validate_record(summary_record(missing)) == []
    empty_window = energy_summary(EnergyReading("rapl:package-0", 0.0, 0.0), runs=100, reason=None)
    assert empty_window["available"] is False and "empty window" in empty_window["reason"]
    assert "mj_per_inference" not in energy_summary(EnergyReading("x", float("nan"), 1.0), runs=5)


def test_stop_before_start_is_a_programming_error(tmp_path):
    meter = open_meter("hwmon", root=build_tree("ina219", tmp_path))
    with pytest.raises(RuntimeError):
        meter.stop()
