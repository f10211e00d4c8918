"""Deploy over SSH with the system OpenSSH client: key auth only, bounded waits, quoted arguments.

Host-key policy: keys are checked against edgesmith's own known-hosts file
(``~/.config/edgesmith/known_hosts``, or ``--known-hosts`` /
``$EDGESMITH_KNOWN_HOSTS``) and then the user's ``~/.ssh/known_hosts``. A host
seen for the first time is accepted and recorded in edgesmith's file
(``StrictHostKeyChecking=accept-new``); a host whose key changed is refused.
``BatchMode=yes`` means ssh fails instead of ever asking for a password or a
passphrase.

On the target, everything lives under one directory (default
``~/.cache/edgesmith-deploy``)::

    site/edgesmith-<hash>/   edgesmith's wheel, unpacked (no pip needed)
    site/deps-<key>/         numpy, pillow, click, flatbuffers, LiteRT, when the
                             target's Python lacks them (pip --target from a
                             wheelhouse copied from this host; no internet)
    models/<name>-<hash>.tflite
    logs/<name>-<time>.jsonl

Every upload goes to a temporary name and is renamed when complete.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from edgesmith.runtime.bench import file_sha256
from edgesmith.runtime.atomic_write import atomic_write_bytes

from . import wheels
from .errors import (AuthError, HostKeyError, RemoteDiskFullError, RemotePythonError, RemoteRunError, TargetError,
                     UnreachableError)
from .target import BenchOptions, Target

MIN_PYTHON = (3, 9)
DEFAULT_DIR = ".cache/edgesmith-deploy"
DEPS_BYTES = 150 * 2**20  # room a wheelhouse and its install need
# Runs on the target's Python: reports what the deploy needs to know. Kept valid
# Python 2 so that an old interpreter still answers with its version.
PROBE = r"""
import sys, os, json, platform
def importable(module):
    try:
        __import__(module)
        return True
    except Exception:
        return False
d = p = os.path.abspath(os.path.expanduser(sys.argv[1]))
while not os.path.isdir(p):
    p = os.path.dirname(p)
st = os.statvfs(p)
site = os.path.join(d, "site")
missing = [m for m in ("numpy", "PIL", "click", "flatbuffers") if not importable(m)]
if not any(importable(m) for m in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")):
    missing.append("ai-edge-litert")
print(json.dumps({"version": list(sys.version_info[:3]), "machine": platform.machine(),
    "glibc": platform.libc_ver()[1], "dir": d, "free_bytes": st.f_bavail * st.f_frsize, "missing": missing,
    "pip": importable("pip"), "site": sorted(os.listdir(site)) if os.path.isdir(site) else []}))
"""


def known_hosts_file() -> Path:
    """edgesmith's own known-hosts file (see the module docstring for the policy)."""
    if os.environ.get("EDGESMITH_KNOWN_HOSTS"):
        return Path(os.environ["EDGESMITH_KNOWN_HOSTS"])
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "edgesmith" / "known_hosts"


class SshTarget(Target):
    """A Linux board reached with ``ssh``; see the module docstring.

    Args:
        host, user, port: where to connect (user None: ssh's default).
        directory: the deploy directory on the target ("" for the default).
        python: the target's Python command.
        identity: a private key file (default: ssh's own choice and agent).
        known_hosts: the known-hosts file edgesmith records hosts in.
        connect_timeout: seconds to wait for the host to answer.
        ssh_config: an ssh_config file ("none" to ignore ~/.ssh/config).
    """

    def __init__(self, host, user=None, port=22, directory="", python="python3", identity=None,
                 known_hosts=None, connect_timeout=10, ssh_config=None):
        self.host, self.user, self.port = host, user, int(port)
        self.directory, self.python, self.identity = _remote_dir(directory), python, identity
        self.known_hosts = Path(known_hosts) if known_hosts else known_hosts_file()
        self.connect_timeout, self.ssh_config = int(connect_timeout), ssh_config
        self.url = f"ssh://{user + '@' if user else ''}{host}{'' if self.port == 22 else f':{self.port}'}"
        self._control_dir, self.info, self.pythonpath = None, {}, ""

    # -- ssh plumbing ---------------------------------------------------------

    def _options(self) -> list:
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        user_known = Path.home() / ".ssh" / "known_hosts"
        settings = ["BatchMode=yes", f"ConnectTimeout={self.connect_timeout}", "StrictHostKeyChecking=accept-new",
                    f'UserKnownHostsFile="{self.known_hosts}" "{user_known}"', "PasswordAuthentication=no",
                    "LogLevel=ERROR", "KbdInteractiveAuthentication=no", "ServerAliveInterval=5",
                    "ServerAliveCountMax=3"]
        options = [word for setting in settings for word in ("-o", setting)] + ["-p", str(self.port)]
        if self.identity:
            options += ["-i", str(self.identity), "-o", "IdentitiesOnly=yes"]
        if self.ssh_config:
            options += ["-F", "/dev/null" if self.ssh_config == "none" else str(self.ssh_config)]
        if self.user:
            options += ["-l", self.user]
        if self._control_dir:
            options += ["-o", f"ControlPath={self._control_dir}/master", "-o", "ControlMaster=no"]
        return options

    def run(self, argv_or_script, *, stdin=None, timeout=None, check=True) -> subprocess.CompletedProcess:
        """Run a command on the target: a list is quoted word by word; a string is a shell script
        whose words the caller has quoted."""
        command = argv_or_script if isinstance(argv_or_script, str) else shlex.join(argv_or_script)
        argv = ["ssh", *self._options(), "--", self.host, command]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UnreachableError(f"{self.url}: no answer within {timeout:.0f} s") from None
        if check and done.returncode != 0:
            raise self._error(done.returncode, done.stderr.decode(errors="replace"))
        return done

    def _error(self, code: int, stderr: str) -> TargetError:
        text = " ".join(stderr.split())
        if code == 255:  # ssh itself failed
            if "Permission denied" in text or "Too many authentication failures" in text:
                return AuthError(f"{self.url}: the host refused the SSH key ({_last_line(stderr)}); "
                                 "add your public key to ~/.ssh/authorized_keys there (ssh-copy-id) or pass --identity")
            if "Host key verification failed" in text or "IDENTIFICATION HAS CHANGED" in text:
                return HostKeyError(f"{self.url}: the host key changed since it was recorded in {self.known_hosts}; "
                                    f"if that is expected, remove it with: ssh-keygen -f {self.known_hosts} -R {self.host}")
            return UnreachableError(f"{self.url}: cannot connect ({_last_line(stderr) or 'no answer'}) "
                                    f"[connect timeout {self.connect_timeout} s]")
        if "No space left on device" in text or "Disk quota exceeded" in text:
            return RemoteDiskFullError(f"{self.url}: the target's disk is full under {self.directory}; free some space")
        if code in (126, 127):  # the shell's "command not found" / "not executable"
            return RemotePythonError(f"{self.url}: {self.python!r} not found on the target; install Python "
                                     f">= {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or pass ?python=PATH in the URL")
        return RemoteRunError(f"{self.url}: remote command failed (exit {code}): {_last_line(stderr)}")

    # -- the four steps -----------------------------------------------------------

    def open(self, progress=None) -> None:
        """Connect (one shared connection), check Python and disk, install edgesmith."""
        progress = progress or (lambda message: None)
        self._start_master()
        self.info = self._probe()
        self._install(wheels.edgesmith_wheel(), progress)

    def push(self, model: Path) -> str:
        self._need_space(model.stat().st_size * 2)
        return self._upload(model, "models", f"{model.stem}-{file_sha256(model)[:12]}.tflite")

    def bench(self, remote_model: str, options: BenchOptions) -> str:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        log = f"{self.info['dir']}/logs/{Path(remote_model).stem}-{stamp}-{os.getpid()}.jsonl"
        argv = ["env", f"PYTHONPATH={self.pythonpath}", self.python, "-m", "edgesmith", *options.bench_argv(remote_model, log)]
        script = f"mkdir -p {shlex.quote(str(Path(log).parent))} && {shlex.join(argv)}"
        done = self.run(script, check=False)
        if done.returncode != 0:
            stderr = done.stderr.decode(errors="replace")
            error_line = next((l for l in reversed(stderr.splitlines()) if l.startswith("error:")), _last_line(stderr))
            raise RemoteRunError(f"{self.url}: benchmark failed there: {error_line.removeprefix('error: ')}")
        return log

    def fetch(self, remote_log: str, local_log: Path) -> None:
        atomic_write_bytes(Path(local_log), self.run(["cat", remote_log], timeout=120).stdout)

    def close(self) -> None:
        if self._control_dir is None:
            return
        control, self._control_dir = self._control_dir, None
        subprocess.run(["ssh", "-o", f"ControlPath={control}/master", "-O", "exit", self.host],
                       capture_output=True, timeout=10)
        shutil.rmtree(control, ignore_errors=True)

    # -- internals ------------------------------------------------------------------

    def _start_master(self) -> None:
        """One authenticated connection that every later command reuses (ControlMaster)."""
        control = tempfile.mkdtemp(prefix="es-ssh-")
        argv = ["ssh", *self._options(), "-o", f"ControlPath={control}/master", "-o", "ControlMaster=yes",
                "-o", "ControlPersist=120", "-f", "-N", "--", self.host]
        # ssh -f leaves a background master holding its stderr: use a file, not a pipe
        with tempfile.TemporaryFile() as stderr:
            try:
                code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                      timeout=self.connect_timeout + 10).returncode
            except subprocess.TimeoutExpired:
                shutil.rmtree(control, ignore_errors=True)
                raise UnreachableError(f"{self.url}: no answer within {self.connect_timeout} s (connect timeout)") from None
            stderr.seek(0)
            message = stderr.read().decode(errors="replace")
        if code != 0:
            shutil.rmtree(control, ignore_errors=True)
            raise self._error(255, message)
        self._control_dir = control

    def _probe(self) -> dict:
        done = self.run([self.python, "-c", PROBE, self.directory], timeout=60)
        try:
            info = json.loads(done.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RemotePythonError(f"{self.url}: {self.python!r} on the target did not answer like Python") from None
        version = tuple(info["version"])
        if version[:2] < MIN_PYTHON:
            raise RemotePythonError(f"{self.url}: the target has Python {'.'.join(map(str, version))}; "
                                    f"edgesmith needs >= {MIN_PYTHON[0]}.{MIN_PYTHON[1]} (pass ?python=PATH for another one)")
        return info

    def _install(self, wheel: Path, progress) -> None:
        site = f"{self.info['dir']}/site"
        unpacked = f"edgesmith-{file_sha256(wheel)[:12]}"
        entries = [f"{site}/{unpacked}"]
        if self.info["missing"]:
            entries.append(f"{site}/{self._install_deps(progress)}")
        if unpacked not in self.info["site"]:
            progress(f"installing edgesmith on {self.url}")
            self._need_space(wheel.stat().st_size * 4)
            remote_wheel = self._upload(wheel, "wheels", wheel.name)
            self._into_place(site, unpacked, shlex.join([self.python, "-m", "zipfile", "-e", remote_wheel]), timeout=900)
            stale = [f"{site}/{name}" for name in self.info["site"] if name.startswith("edgesmith-") and name != unpacked]
            if stale:
                self.run(["rm", "-rf", *stale], check=False)
        self.pythonpath = ":".join(entries)

    def _install_deps(self, progress) -> str:
        """Install the missing runtime packages from a wheelhouse made on this host."""
        info = self.info
        if not info["pip"]:
            raise RemotePythonError(f"{self.url}: the target's Python lacks {', '.join(info['missing'])} and pip to "
                                    "install them; install python3-pip (or the packages) there")
        key = f"deps-{info['machine']}-py{info['version'][0]}{info['version'][1]}"
        if key in info["site"]:
            return key
        progress(f"downloading runtime wheels for {info['machine']} Python {info['version'][0]}.{info['version'][1]}")
        files = sorted(wheels.wheelhouse(info["machine"], tuple(info["version"]), info["glibc"]).glob("*.whl"))
        self._need_space(sum(f.stat().st_size for f in files) + DEPS_BYTES)
        progress(f"copying {len(files)} wheels to {self.url}")
        remote_house = f"wheelhouse-{info['machine']}-py{info['version'][0]}{info['version'][1]}"
        for wheel in files:
            self._upload(wheel, remote_house, wheel.name)
        names = [wheel.name.split("-")[0] for wheel in files]
        pip = [self.python, "-m", "pip", "install", "--quiet", "--no-index", "--disable-pip-version-check",
               "--find-links", f"{info['dir']}/{remote_house}", "--target"]
        self._into_place(f"{info['dir']}/site", key, shlex.join(pip), shlex.join(names), timeout=900)
        return key

    def _into_place(self, folder: str, name: str, make: str, after: str = "", **run) -> str:
        """Run the shell words ``make TEMP after`` (quoted by the caller) on the target, TEMP a temporary name in
        ``folder``, then rename TEMP to ``folder/name``; a failure removes TEMP. Never half a file or folder there."""
        final = f"{folder}/{name}"
        temp = shlex.quote(f"{folder}/.{name}.tmp{os.getpid()}")
        self.run(f"mkdir -p {shlex.quote(folder)} && rm -rf {temp} && "
                 f"{{ {make} {temp} {after} && mv {temp} {shlex.quote(final)}; }} "
                 f"|| {{ status=$?; rm -rf {temp}; exit $status; }}", **run)
        return final

    def _upload(self, local: Path, folder: str, name: str) -> str:
        """Copy ``local`` to ``dir/folder/name`` through a temp name (never half a file)."""
        return self._into_place(f"{self.info['dir']}/{folder}", name, "cat >", stdin=local.read_bytes(),
                                timeout=max(60, local.stat().st_size / 2**20))

    def _need_space(self, size: int) -> None:
        free = self.info.get("free_bytes")
        if free is not None and free < size + 2**20:
            raise RemoteDiskFullError(f"{self.url}: only {free / 2**20:.1f} MiB free under {self.info['dir']}, "
                                      f"{size / 2**20:.1f} MiB needed; free some space")
        self.info["free_bytes"] = free - size if free is not None else None


def _remote_dir(directory: str) -> str:
    """The URL's path as the target's shell should see it (relative = under the home)."""
    directory = (directory or "").strip()
    return DEFAULT_DIR if directory in ("", "/", "/~", "/~/") else directory.removeprefix("/~/")


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1].strip()
