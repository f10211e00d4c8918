"""A real OpenSSH server on 127.0.0.1 for deploy tests: throwaway keys, a free port, no password.

It runs Debian's ``/usr/sbin/sshd`` (package openssh-server, which ``.ci/run``
installs) as the current user, in the foreground, with its own host key and an
``authorized_keys`` holding a key made for the test. Use the ``sshd`` fixture:

    def test_x(sshd):
        target = sshd.target("/tmp/deploy-dir")     # an SshTarget for it
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    """A running test server and the client settings that reach it."""

    port: int
    identity: Path
    known_hosts: Path
    user: str

    def url(self, directory: str = "", query: str = "") -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{directory}{'?' + query if query else ''}"

    def ssh_options(self, **overrides) -> dict:
        options = {"identity": self.identity, "known_hosts": self.known_hosts, "connect_timeout": 5, "ssh_config": "none"}
        return {**options, **overrides}

    def target(self, directory: str = "", query: str = "", **overrides):
        from edgesmith.deploy import parse_target

        return parse_target(self.url(directory, query), **self.ssh_options(**overrides))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgesmith-test", "-f", str(path)], check=True)
    return path


def _config(folder: Path, port: int) -> Path:
    config = folder / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {folder / 'host_key'}
PidFile {folder / 'sshd.pid'}
AuthorizedKeysFile {folder / 'authorized_keys'}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 50
""")
    return config


def _wait_for_banner(port: int, server: subprocess.Popen, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"sshd exited with status {server.returncode}; see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not start within 10 s")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """Start sshd for the test session; yield an :class:`Sshd`."""
    if not Path(SSHD).exists() or not shutil.which("ssh"):
        pytest.fail("the ssh deploy tests need openssh-server and openssh-client (apt-get install -y openssh-server)")
    folder = tmp_path_factory.mktemp("sshd")
    make_key(folder / "host_key")
    identity = make_key(folder / "user_key")
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    port = free_port()
    log = open(folder / "sshd.log", "wb")  # a file, not a pipe: sshd -e must never block on its log
    server = subprocess.Popen([SSHD, "-f", str(_config(folder, port)), "-D", "-e"],
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        _wait_for_banner(port, server)
        user = os.environ.get("USER") or __import__("getpass").getuser()
        yield Sshd(port=port, identity=identity, known_hosts=folder / "known_hosts", user=user)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
