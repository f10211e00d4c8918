"""Deploy to an Android phone with ``adb``: push the model into the demo app, run its benchmark, pull its log.

The app's side of the contract (see docs/deploy.md, "Android"):

- package :data:`PACKAGE`, activity :data:`ACTIVITY`;
- models are read from :data:`MODEL_DIR`, logs written to :data:`LOG_DIR`
  (the app's external files folder, which ``adb`` can write without root);
- the activity takes the extras ``--es model NAME --ei runs N --ei warmup N
  [--ei threads T] --es delegate xnnpack|gpu|nnapi|none --es energy auto|none
  --es log NAME``, appends the log (schema ``edgesmith.log/1``) to
  ``LOG_DIR/NAME`` and keeps ``NAME.status`` up to date
  (``{"state": "running"|"done"|"failed", "error": ...}``); a request it refuses
  (bad extras) has no status file, only a logcat line (tag ``edgesmith``).

The full contract is in docs/android.md, section "adb contract".

With a phone connected (``adb devices`` lists it) that has the demo app installed:

>>> from edgesmith.deploy import deploy
>>> result = deploy("model.tflite", "adb://R58M123ABC",
...                 options=AdbBenchOptions(runs=200, delegate="gpu"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edgesmith.runtime.bench import file_sha256
from edgesmith.runtime.atomic_write import atomic_write_bytes
from edgesmith.runtime.errors import first_line

from .errors import AppMissingError, DeviceNotConnectedError, RemoteDiskFullError, RemoteRunError, TargetError
from .target import BenchOptions, Target

PACKAGE = "dev.edgesmith.demo"
ACTIVITY = ".BenchmarkActivity"
FILES_DIR = f"/sdcard/Android/data/{PACKAGE}/files"
MODEL_DIR = f"{FILES_DIR}/models"
LOG_DIR = f"{FILES_DIR}/logs"
COMMAND_TIMEOUT_S = 30
DELEGATES = ("xnnpack", "gpu", "nnapi", "none")  # the app's --es delegate values; xnnpack is its default
REFUSED = "benchmark request refused: "  # how the app logs a request it cannot run (no status file then)


@dataclass(frozen=True)
class AdbBenchOptions(BenchOptions):
    """:class:`BenchOptions` plus what only the Android app offers: the LiteRT ``delegate`` (:data:`DELEGATES`)."""

    delegate: str = "xnnpack"


class AdbTarget(Target):
    """An Android device running the edgesmith demo app, reached with ``adb -s SERIAL``.

    Args:
        serial: the device serial (``adb devices``).
        bench_timeout: seconds to wait for the app's benchmark to finish.
        poll_s: seconds between two reads of the app's status file.
        start_timeout: seconds for the app to write its status file; without one by then,
            the app refused the request, and its logcat message is the error.
        alive_check_s: while the status says ``running``, how often to check that the app
            still runs (a crashed app never updates its status).
    """

    def __init__(self, serial: str, bench_timeout: float = 600, poll_s: float = 0.5, start_timeout: float = 15,
                 alive_check_s: float = 5):
        self.serial, self.url = serial, f"adb://{serial}"
        self.bench_timeout, self.start_timeout = bench_timeout, start_timeout
        self.poll_s, self.alive_check_s = poll_s, alive_check_s

    def __repr__(self) -> str:
        return f"AdbTarget({self.serial!r})"

    def adb(self, *args, timeout=COMMAND_TIMEOUT_S, check=True) -> subprocess.CompletedProcess:
        """Run ``adb -s SERIAL ARGS``; ``shell`` arguments must already be quoted."""
        try:
            done = subprocess.run(["adb", "-s", self.serial, *args], capture_output=True, text=True, timeout=timeout)
        except FileNotFoundError:
            raise TargetError("adb is not installed (Debian: apt-get install adb; or Android platform-tools)") from None
        except subprocess.TimeoutExpired:
            raise DeviceNotConnectedError(f"{self.url}: adb did not answer within {timeout} s") from None
        if check and done.returncode != 0:
            raise self._error(done)
        return done

    def shell(self, *argv, **kwargs) -> subprocess.CompletedProcess:
        """Run a command in the device's shell, each argument quoted (adb joins them with spaces)."""
        return self.adb("shell", shlex.join(argv), **kwargs)

    def _error(self, done) -> TargetError:
        text = f"{done.stderr} {done.stdout}".strip()
        if "not found" in text and "device" in text or "offline" in text or "unauthorized" in text or "no devices" in text:
            return DeviceNotConnectedError(f"{self.url}: device not connected ({first_line(text, 'no output')}); check `adb devices`")
        if "No space left" in text:
            return RemoteDiskFullError(f"{self.url}: the device storage is full; free some space")
        return RemoteRunError(f"{self.url}: adb failed: {first_line(text, 'no output')}")

    def open(self, progress=None) -> None:
        state = self.adb("get-state", check=False)
        if state.returncode != 0 or state.stdout.strip() != "device":
            raise DeviceNotConnectedError(f"{self.url}: device not connected ({first_line(state.stderr or state.stdout, 'no output')}); "
                                          "check `adb devices` (and accept the USB-debugging prompt)")
        if not self.shell("pm", "path", PACKAGE, check=False).stdout.strip():
            raise AppMissingError(f"{self.url}: the demo app {PACKAGE} is not installed; build and install demos/android first")

    def push(self, model: Path) -> str:
        name = f"{model.stem}-{file_sha256(model)[:12]}.tflite"
        final, temp = f"{MODEL_DIR}/{name}", f"{MODEL_DIR}/.{name}.tmp"
        self.shell("mkdir", "-p", MODEL_DIR)
        self.adb("push", str(model), temp, timeout=max(COMMAND_TIMEOUT_S, model.stat().st_size / 2**20))
        self.shell("mv", temp, final)
        return final

    def bench(self, remote_model: str, options: BenchOptions) -> str:
        log = f"{LOG_DIR}/{Path(remote_model).stem}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.jsonl"
        self.shell("rm", "-f", f"{log}.status")  # a stale status must not pass for this run's
        since = self.shell("date", "+%s", check=False).stdout.strip()
        self._check_started(self.shell("am", "start", "-W", "-n", f"{PACKAGE}/{ACTIVITY}",
                                       *intent_extras(Path(remote_model).name, Path(log).name, options)))
        self._wait_for_status(log, since)
        return log

    def _check_started(self, started: subprocess.CompletedProcess) -> None:
        """``am start`` exits 0 even when it fails; its ``Error:`` line says why."""
        error = next((line.strip() for line in started.stdout.splitlines() if line.startswith("Error:")), None)
        if error and "does not exist" in error:
            raise AppMissingError(f"{self.url}: {PACKAGE} has no {ACTIVITY} ({error}); install the current demos/android")
        if error:
            raise RemoteRunError(f"{self.url}: could not start the app's benchmark: {error}")

    def _wait_for_status(self, log: str, since: str) -> None:
        """Poll the app's status file (docs/android.md, "adb contract") until the run is done.

        A failure is reported as soon as it is known: the app's own message when it
        says ``failed``, its logcat message when it refused the request, and a
        crashed app when the status says ``running`` but the app is gone.
        """
        started = alive_checked = time.monotonic()
        while time.monotonic() - started < self.bench_timeout:
            state = self._state(log)
            if state == "done":
                return
            if state is None and time.monotonic() - started > self.start_timeout:
                raise RemoteRunError(f"{self.url}: the app did not start the benchmark: {self._refusal(since)}")
            if state == "running" and time.monotonic() - alive_checked > self.alive_check_s:
                self._check_alive(log)
                alive_checked = time.monotonic()
            time.sleep(self.poll_s)
        raise RemoteRunError(f"{self.url}: the app did not finish within {self.bench_timeout:.0f} s "
                             f"(see `adb -s {self.serial} logcat -s edgesmith`)")

    def _state(self, log: str):
        """The status file's state (None before the app writes it); raises the app's error when it failed."""
        try:
            status = json.loads(self.shell("cat", f"{log}.status", check=False).stdout) or {}
        except ValueError:  # not written yet, or half written
            status = {}
        if status.get("state") == "failed":
            raise RemoteRunError(f"{self.url}: the app's benchmark failed: {status.get('error')}")
        return status.get("state")

    def _refusal(self, since: str) -> str:
        """The app's logcat message for a request it refused (it writes no status file then)."""
        window = ["-T", f"{since}.000"] if since.isdigit() else []
        lines = self.adb("logcat", "-d", *window, "-s", "edgesmith", check=False).stdout.splitlines()
        refused = [line.split(REFUSED, 1)[1].strip() for line in lines if REFUSED in line]
        return refused[-1] if refused else (f"no status file after {self.start_timeout:.0f} s and no message from it "
                                            f"(see `adb -s {self.serial} logcat -s edgesmith`; is the app up to date?)")

    def _check_alive(self, log: str) -> None:
        """Raise if the app's process is gone while its status still says ``running``."""
        found = self.shell("pidof", PACKAGE, check=False)
        if found.returncode == 1 and not found.stdout.strip() and self._state(log) == "running":
            raise RemoteRunError(f"{self.url}: the app stopped during the benchmark (crashed?); see "
                                 f"`adb -s {self.serial} logcat -s edgesmith AndroidRuntime`")

    def fetch(self, remote_log: str, local_log: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="es-adb-") as folder:
            self.adb("pull", remote_log, f"{folder}/log", timeout=120)
            atomic_write_bytes(Path(local_log), Path(folder, "log").read_bytes())


def intent_extras(model: str, log: str, options: BenchOptions) -> list:
    """The ``am start`` extras (docs/android.md, "adb contract") that benchmark ``model`` into ``log``.

    >>> intent_extras("m.tflite", "m.jsonl", AdbBenchOptions(runs=5, delegate="gpu"))[:4]
    ['--es', 'model', 'm.tflite', '--ei']
    """
    extras = ["--es", "model", model, "--ei", "runs", str(options.runs), "--ei", "warmup", str(options.warmup),
              "--es", "delegate", getattr(options, "delegate", "xnnpack"),
              "--es", "energy", "none" if options.energy == "none" else "auto", "--es", "log", log]
    if options.threads:
        extras += ["--ei", "threads", str(options.threads)]
    return extras
