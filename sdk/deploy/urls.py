"""Target URLs: ``local``, ``ssh://[user@]host[:port][/dir][?python=PATH]`` and ``adb://SERIAL``.

>>> parse_target("local")
LocalTarget()
>>> parse_target("ssh://pi@raspberrypi:2222/home/pi/edgesmith").host
'raspberrypi'
>>> parse_target("adb://R58M123ABC").serial
'R58M123ABC'
>>> mcu_profile("mcu:stm32f746"), mcu_profile("local")
('stm32f746', None)
>>> split_targets(["local", "mcu:stm32f746"])
(['stm32f746'], ['local'])

``mcu:PROFILE`` (a microcontroller profile name or TOML file) is not a device edgesmith copies a model to:
``convert-and-deploy`` writes the firmware bundle for it (see docs/mcu.md).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from .adb import AdbTarget
from .errors import TargetURLError
from .local import LocalTarget
from .ssh import SshTarget
from .target import Target

URL_FORMS = "local, ssh://[user@]host[:port][/dir][?python=PATH] or adb://SERIAL"
MCU_PREFIX = "mcu:"
_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$|^[0-9a-f.]*:[0-9a-f:.]*$")  # a name or an IPv6 address
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SERIAL = re.compile(r"^[A-Za-z0-9_.:-]+$")


def parse_target(url: str, **ssh_options) -> Target:
    """A :class:`Target` for ``url``; ``ssh_options`` go to :class:`SshTarget`.

    Raises :class:`TargetURLError` for anything else than :data:`URL_FORMS`.
    """
    if url == "local":
        return LocalTarget()
    if mcu_profile(url) is not None:
        raise TargetURLError(f"{url!r}: a microcontroller gets a firmware bundle, not a copy: use "
                             f"edgesmith convert-and-deploy --target {url} or edgesmith mcu MODEL --export DIR")
    parts = urlsplit(url)
    if parts.scheme == "ssh":
        return _ssh_target(url, parts, ssh_options)
    if parts.scheme == "adb":
        serial = parts.netloc
        if not _SERIAL.match(serial or "") or parts.path.strip("/") or parts.query:
            raise TargetURLError(f"{url!r}: expected adb://SERIAL (see `adb devices`)")
        return AdbTarget(serial)
    raise TargetURLError(f"{url!r}: not a target URL; use {URL_FORMS}")


def mcu_profile(url: str) -> str | None:
    """The microcontroller profile (name or TOML file) of an ``mcu:PROFILE`` target, else None."""
    if not url.startswith(MCU_PREFIX):
        return None
    profile = url[len(MCU_PREFIX):].strip()
    if not profile:
        raise TargetURLError(f"{url!r}: expected mcu:PROFILE (a microcontroller profile name or TOML file)")
    return profile


def split_targets(targets) -> tuple:
    """``(boards, devices)``: the microcontroller profiles of the ``mcu:PROFILE`` targets, each loaded so that a
    bad one fails here, and the other target URLs."""
    boards = [mcu_profile(url) for url in targets if mcu_profile(url) is not None]
    if boards:
        from edgesmith.mcu import load_mcu_profile

        for board in boards:
            load_mcu_profile(board)
    return boards, [url for url in targets if mcu_profile(url) is None]


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
    python = query.get("python", ["python3"])[-1] or "python3"
    return SshTarget(host=host, user=user, port=port, directory=parts.path, python=python, **ssh_options)
