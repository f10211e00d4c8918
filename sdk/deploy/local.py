"""The ``local`` target: benchmark on this machine, in a fresh process like a remote one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from edgesmith.runtime.atomic_write import atomic_write_bytes

from .errors import RemoteRunError
from .target import BenchOptions, Target


class LocalTarget(Target):
    """Run ``python -m edgesmith bench`` here, on the model where it is."""

    url = "local"

    def __repr__(self) -> str:
        return "LocalTarget()"

    def push(self, model: Path) -> str:
        return str(Path(model).resolve())

    def bench(self, remote_model: str, options: BenchOptions) -> str:
        handle, log = tempfile.mkstemp(prefix=f"{Path(remote_model).stem}-", suffix=".jsonl")
        os.close(handle)
        os.unlink(log)  # the bench appends: start from no file
        argv = [sys.executable, "-m", "edgesmith", *options.bench_argv(remote_model, log)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["no output"]
            raise RemoteRunError(f"local benchmark failed: {lines[-1].removeprefix('error: ')}")
        json.loads(done.stdout)  # the bench reports JSON; anything else is a broken install
        return log

    def fetch(self, remote_log: str, local_log: Path) -> None:
        atomic_write_bytes(Path(local_log), Path(remote_log).read_bytes())
        Path(remote_log).unlink()
