"""What every deploy target does, the benchmark options they share, and target URLs.

A target is opened (connect, check, install), receives a model, runs the
benchmark next to it, and hands the JSONL log back. ``parse_target`` turns a
URL into one:

>>> parse_target("local")
LocalTarget()
>>> parse_target("ssh://pi@raspberrypi:2222/home/pi/edgesmith").host
'raspberrypi'
>>> parse_target("adb://R58M123ABC").serial
'R58M123ABC'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .errors import TargetURLError

URL_FORMS = "local, ssh://[user@]host[:port][/dir][?python=PATH] or adb://SERIAL"
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$|^[0-9a-f.]*:[0-9a-f:.]*$")  # a name or an IPv6 address
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SERIAL = re.compile(r"^[A-Za-z0-9_.:-]+$")


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


def parse_target(url: str, **ssh_options) -> Target:
    """A :class:`Target` for ``url``; ``ssh_options`` go to :class:`SshTarget`.

    Raises :class:`TargetURLError` for anything else than :data:`URL_FORMS`.
    """
    if url == "local":
        from .local import LocalTarget

        return LocalTarget()
    parts = urlsplit(url)
    if parts.scheme == "ssh":
        return _ssh_target(url, parts, ssh_options)
    if parts.scheme == "adb":
        serial = parts.netloc
        if not _SERIAL.match(serial or "") or parts.path.strip("/") or parts.query:
            raise TargetURLError(f"{url!r}: expected adb://SERIAL (see `adb devices`)")
        from .adb import AdbTarget

        return AdbTarget(serial)
    raise TargetURLError(f"{url!r}: not a target URL; use {URL_FORMS}")


def _ssh_target(url: str, parts, ssh_options: dict) -> Target:
    try:
        port = parts.port or 22
    except ValueError:
        raise TargetURLError(f"{url!r}: the port is not a number from 1 to 65535") from None
    host, user = parts.hostname, parts.username
    if not host or not _HOST.match(host):
        raise TargetURLError(f"{url!r}: missing or invalid host; use ssh://[user@]host[:port][/dir]")
    if user is not None and not _USER.match(user):
        raise TargetURLError(f"{url!r}: invalid user name {user!r}")
    if parts.password is not None:
        raise TargetURLError(f"{url!r}: passwords are not accepted; edgesmith uses SSH keys only")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"python"})
    if unknown:
        raise TargetURLError(f"{url!r}: unknown option(s) {', '.join(unknown)}; only ?python=PATH is understood")
    from .ssh import SshTarget

    python = query.get("python", ["python3"])[-1] or "python3"
    return SshTarget(host=host, user=user, port=port, directory=parts.path, python=python, **ssh_options)
