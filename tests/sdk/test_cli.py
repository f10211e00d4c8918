"""The CLI's contract: --help everywhere, one-line errors with exit code 2, JSON output, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
from unittest.mock import ANY

import pytest

from edgesmith.cli import COMMANDS


def edgesmith(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "edgesmith", *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name):
    done = edgesmith(name, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage: edgesmith" in done.stdout


def test_bench_json_and_table(tflite_models):
    done = edgesmith("bench", tflite_models["float"], "--runs", "10", "--warmup", "1", "--energy", "none", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["runs"] == 10
    table = edgesmith("bench", tflite_models["float"], "--runs", "10", "--energy", "none")
    assert table.returncode == 0 and "p50" in table.stdout and "unavailable" in table.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "missing.tflite"], "no such file"),
        (["bench", "{junk}"], "not a TFLite flatbuffer"),
        (["bench", "{float}", "--energy", "wattmeter"], "unknown energy meter"),
        (["bench", "{float}", "--energy", "hwmon:ina219", "--energy-root", "{tmp}"], "no hwmon device named 'ina219'"),
        (["bench", "{float}", "--energy", "rapl", "--energy-root", "{tmp}"], "no RAPL package zones"),
        (["bench", "{float}", "--input", "{tmp}/nothing.npy"], "no such input file"),
        (["classify", "{float}", "{tmp}/nothing.png"], "no such image"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tflite_models, tmp_path, args, message):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x01" * 100)
    args = [a.format(junk=junk, float=tflite_models["float"], tmp=tmp_path) for a in args]
    done = edgesmith(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 4  # click usage errors add usage and hint lines


def test_a_ctrl_c_that_keras_swallows_still_stops_the_command_at_its_next_step():
    from keras.src.utils.python_utils import pythonify_logs

    from edgesmith.commands import interrupt
    from edgesmith.commands.progress import Progress

    class StepStillRunning:
        """A training step's loss, whose conversion to a float is where Ctrl-C lands while the step runs."""

        def __float__(self):
            os.kill(os.getpid(), signal.SIGINT)
            return 0.0

    with interrupt.watched():
        assert pythonify_logs({"loss": StepStillRunning()}) == {"loss": ANY}  # Keras's bare except ate it
        with pytest.raises(KeyboardInterrupt):
            Progress(enabled=False)("fine_tune", 2, 10)
    Progress(enabled=False)("fine_tune", 3, 10)  # a new command starts with no Ctrl-C pressed
