"""What every deploy target does, and the benchmark options they share.

A target is opened (connect, check, install), receives a model, runs the
benchmark next to it, and hands the JSONL log back. :mod:`edgesmith.deploy.urls`
turns a URL into one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BenchOptions:
    """How to benchmark on the target (the options of ``edgesmith bench``)."""

    runs: int = 100
    warmup: int = 10
    threads: int | None = None
    energy: str = "auto"
    profile: str | None = None

    def bench_argv(self, model: str, log: str) -> list:
        """Arguments after ``edgesmith`` that run this benchmark and log to ``log``."""
        argv = ["bench", model, "--runs", str(self.runs), "--warmup", str(self.warmup),
                "--energy", self.energy, "--log", log, "--json"]
        if self.threads:
            argv += ["--threads", str(self.threads)]
        if self.profile:
            argv += ["--profile", self.profile]
        return argv


class Target:
    """Base class: a place where a model is deployed and benchmarked.

    Subclasses implement the four steps; :func:`edgesmith.deploy.deploy`
    calls them in order and times each one.
    """

    url = "?"

    def open(self, progress=None) -> None:
        """Connect, check the target and install what the benchmark needs."""

    def push(self, model: Path) -> str:
        """Place ``model`` on the target atomically; return its path there."""
        raise NotImplementedError

    def bench(self, remote_model: str, options: BenchOptions) -> str:
        """Benchmark the pushed model; return the path of its log on the target."""
        raise NotImplementedError

    def fetch(self, remote_log: str, local_log: Path) -> None:
        """Copy the target's log to ``local_log`` (atomically)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (always called, also after an error)."""

    @property
    def slug(self) -> str:
        """The URL as a file-name-safe word, for log names."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.url.split("://")[-1].split("?")[0]).strip("_") or "local"

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
