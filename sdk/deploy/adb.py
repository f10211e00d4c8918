"""Deploy to an Android phone with ``adb``: push the model into the demo app, run its benchmark, pull its log.

The app's side of the contract (see docs/deploy.md, "Android"):

- package :data:`PACKAGE`, activity :data:`ACTIVITY`;
- models are read from :data:`MODEL_DIR`, logs written to :data:`LOG_DIR`
  (the app's external files folder, which ``adb`` can write without root);
- the activity takes the extras ``--es model NAME --ei runs N --ei warmup N
  --ei threads T --es energy auto|none --es log NAME``, appends the log (schema
  ``edgesmith.log/1``) to ``LOG_DIR/NAME`` and keeps ``NAME.status`` up to date
  (``{"state": "running"|"done"|"failed", "error": ...}``).

The full contract is in docs/android.md, section "adb contract".
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from pathlib import Path

from edgesmith.runtime.bench import file_sha256
from edgesmith.runtime.metadata import atomic_write_bytes

from .errors import AppMissingError, DeviceNotConnectedError, RemoteDiskFullError, RemoteRunError, TargetError
from .target import BenchOptions, Target

PACKAGE = "dev.edgesmith.demo"
ACTIVITY = ".BenchmarkActivity"
FILES_DIR = f"/sdcard/Android/data/{PACKAGE}/files"
MODEL_DIR = f"{FILES_DIR}/models"
LOG_DIR = f"{FILES_DIR}/logs"
COMMAND_TIMEOUT_S = 30


class AdbTarget(Target):
    """An Android device running the edgesmith demo app, reached with ``adb -s SERIAL``.

    Args:
        serial: the device serial (``adb devices``).
        bench_timeout: seconds to wait for the app's log to end with a summary.
    """

    def __init__(self, serial: str, bench_timeout: float = 600, poll_s: float = 0.5):
        self.serial = serial
        self.url = f"adb://{serial}"
        self.bench_timeout = bench_timeout
        self.poll_s = poll_s

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
            return DeviceNotConnectedError(f"{self.url}: device not connected ({_first_line(text)}); check `adb devices`")
        if "No space left" in text:
            return RemoteDiskFullError(f"{self.url}: the device storage is full; free some space")
        return RemoteRunError(f"{self.url}: adb failed: {_first_line(text)}")

    def open(self, progress=None) -> None:
        state = self.adb("get-state", check=False)
        if state.returncode != 0 or state.stdout.strip() != "device":
            raise DeviceNotConnectedError(f"{self.url}: device not connected ({_first_line(state.stderr or state.stdout)}); "
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
        log_name = f"{Path(remote_model).stem}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.jsonl"
        extras = ["--es", "model", Path(remote_model).name, "--ei", "runs", str(options.runs),
                  "--ei", "warmup", str(options.warmup), "--es", "log", log_name,
                  "--es", "energy", "none" if options.energy == "none" else "auto"]
        if options.threads:
            extras += ["--ei", "threads", str(options.threads)]
        self.shell("am", "start", "-W", "-n", f"{PACKAGE}/{ACTIVITY}", *extras)
        log = f"{LOG_DIR}/{log_name}"
        self._wait_for_summary(log)
        return log

    def _wait_for_summary(self, log: str) -> None:
        """Poll the app's status file (docs/android.md, "adb contract") until the run is done or failed."""
        deadline = time.monotonic() + self.bench_timeout
        while time.monotonic() < deadline:
            status = _json_or_none(self.shell("cat", f"{log}.status", check=False).stdout)
            if status and status.get("state") == "failed":
                raise RemoteRunError(f"{self.url}: the app's benchmark failed: {status.get('error')}")
            if status and status.get("state") == "done":
                return
            time.sleep(self.poll_s)
        raise RemoteRunError(f"{self.url}: the app did not finish within {self.bench_timeout:.0f} s "
                             f"(see `adb -s {self.serial} logcat -s edgesmith`)")

    def fetch(self, remote_log: str, local_log: Path) -> None:
        temp = Path(local_log).with_name(f".{Path(local_log).name}.pull")
        temp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.adb("pull", remote_log, str(temp), timeout=120)
            atomic_write_bytes(Path(local_log), temp.read_bytes())
        finally:
            temp.unlink(missing_ok=True)


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")
