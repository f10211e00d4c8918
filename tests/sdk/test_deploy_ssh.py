"""Deploy and benchmark end to end through a real OpenSSH server on 127.0.0.1 (see tests/sdk/sshd.py).

The target is this machine's system Python (/usr/bin/python3), which has no
numpy, LiteRT or edgesmith: the deploy has to copy edgesmith's wheel and a
wheelhouse over and install them without internet on the target side. What
this does not prove: another CPU architecture (the wheelhouse is fetched for
the target's own machine and Python, but only x86_64 is exercised here) and a
slow or lossy link.
"""

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edgesmith.cli import main
from edgesmith.deploy import (
    AuthError,
    BenchOptions,
    HostKeyError,
    RemoteDiskFullError,
    RemotePythonError,
    TargetURLError,
    UnreachableError,
    deploy,
    parse_target,
)
from edgesmith.runtime.logs import read_log
from tests.assets import real_tflite
from tests.sdk.sshd import free_port, make_key, sshd  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow  # starts a real sshd and installs edgesmith on the target

SYSTEM_PYTHON = "/usr/bin/python3"
OPTIONS = BenchOptions(runs=20, warmup=2, energy="estimate", profile="x86-host")


def run_cli(argv) -> int:
    """The exit code ``edgesmith ARGV`` ends with."""
    try:
        main(argv)
    except SystemExit as done:
        return done.code or 0
    return 0


@pytest.fixture(scope="module")
def model():
    return real_tflite("face_detection_short_range")


@pytest.fixture(scope="module")
def remote_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("target") / "edgesmith deploy"  # a space: every argument must be quoted


@pytest.fixture(scope="module")
def deployed(sshd, model, remote_dir, tmp_path_factory):  # noqa: F811
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail(f"the ssh deploy test uses {SYSTEM_PYTHON} as the target's Python")
    out = tmp_path_factory.mktemp("logs")
    target = sshd.target(str(remote_dir), f"python={SYSTEM_PYTHON}")
    messages = []
    result = deploy(model, target, out_dir=out, options=OPTIONS, progress=messages.append)
    return {"result": result, "target": target, "messages": messages}


def test_the_log_comes_back_with_the_benchmark(deployed, model):
    result = deployed["result"]
    records = read_log(result["log"])
    assert [r["type"] for r in records].count("run") == 20 + 2
    summary = result["summary"]
    assert summary["runs"] == 20 and summary["latency_ms"]["p50"] > 0
    assert summary["energy"]["available"] and summary["energy"]["estimated"]
    assert result["header"]["device"]["profile"] == "x86-host"
    assert result["header"]["model"]["sha256"] == __import__("hashlib").sha256(model.read_bytes()).hexdigest()
    timings = result["timings_s"]
    assert timings["overhead"] == pytest.approx(timings["total"] - timings["bench"], abs=0.01)


def test_the_target_runs_edgesmith_from_the_copied_wheel_without_tensorflow(deployed, remote_dir):
    target = deployed["target"]
    target.open()
    try:
        probe = "import edgesmith, numpy, ai_edge_litert, importlib.util as u; " \
                "print(edgesmith.__file__); print(numpy.__file__); print(u.find_spec('tensorflow'))"
        done = target.run(["env", f"PYTHONPATH={target.pythonpath}", SYSTEM_PYTHON, "-c", probe])
    finally:
        target.close()
    edgesmith_file, numpy_file, tensorflow = done.stdout.decode().split("\n")[:3]
    assert edgesmith_file.startswith(str(remote_dir / "site" / "edgesmith-"))
    assert numpy_file.startswith(str(remote_dir / "site" / "deps-"))
    assert tensorflow == "None"
    assert any("wheels" in m for m in deployed["messages"])


def test_nothing_is_left_under_a_temporary_name(deployed, remote_dir):
    leftovers = [p for p in remote_dir.rglob(".*tmp*")]
    assert leftovers == []
    assert len(list((remote_dir / "models").glob("face_detection_short_range-*.tflite"))) == 1


def test_cli_deploys_again_reusing_the_install(deployed, sshd, model, remote_dir, tmp_path, capsys):  # noqa: F811
    installed = sorted(p.name for p in (remote_dir / "site").iterdir())
    url = sshd.url(str(remote_dir), f"python={SYSTEM_PYTHON}")
    code = run_cli(["deploy", str(model), "--target", url, "--runs", "5", "--warmup", "1", "--energy", "none",
                    "--identity", str(sshd.identity), "--known-hosts", str(sshd.known_hosts), "--ssh-config", "none",
                    "--out", str(tmp_path), "--json"])
    assert code == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["summary"]["runs"] == 5 and Path(result["log"]).parent == tmp_path
    assert sorted(p.name for p in (remote_dir / "site").iterdir()) == installed
    assert result["timings_s"]["connect"] < deployed["result"]["timings_s"]["connect"]


def test_file_names_cannot_inject_shell_commands(sshd, model, tmp_path):  # noqa: F811
    hostile = tmp_path / "a'b;touch PWNED;$(touch PWNED2).tflite"
    hostile.write_bytes(model.read_bytes())
    remote = tmp_path / "remote $(touch PWNED3)"
    target = sshd.target(str(remote), f"python={sys.executable}")  # this venv: no install needed
    result = deploy(hostile, target, out_dir=tmp_path / "out", options=BenchOptions(runs=2, warmup=0, energy="none"))
    assert result["summary"]["runs"] == 2
    assert not list(Path.home().glob("PWNED*")) and not list(tmp_path.rglob("PWNED*"))
    assert (remote / "models").is_dir()


# -- bad input: a clear message within a bounded time ------------------------------


def _deploy_fails(target, model, tmp_path, error_type, match, seconds):
    started = time.monotonic()
    with pytest.raises(error_type, match=match):
        deploy(model, target, out_dir=tmp_path, options=BenchOptions(runs=2, warmup=0))
    assert time.monotonic() - started < seconds
    assert not list(tmp_path.glob("*.jsonl"))


def test_a_closed_port_is_reported_at_once(sshd, model, tmp_path):  # noqa: F811
    target = parse_target(f"ssh://root@127.0.0.1:{free_port()}", **sshd.ssh_options())
    _deploy_fails(target, model, tmp_path, UnreachableError, "Connection refused", 5)


def test_a_silent_host_is_reported_within_the_connect_timeout(sshd, model, tmp_path):  # noqa: F811
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # accepts connections, never says a word
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    try:
        target = parse_target(f"ssh://root@127.0.0.1:{listener.getsockname()[1]}", **sshd.ssh_options(connect_timeout=2))
        _deploy_fails(target, model, tmp_path, UnreachableError, "timeout|timed out", 2 + 5)
    finally:
        listener.close()


def test_a_refused_key_is_an_auth_error_not_a_password_prompt(sshd, model, tmp_path):  # noqa: F811
    stranger = make_key(tmp_path / "stranger")
    target = sshd.target(str(tmp_path / "t"), identity=stranger)
    _deploy_fails(target, model, tmp_path, AuthError, "refused the SSH key", 10)


def test_a_changed_host_key_is_refused(sshd, model, tmp_path):  # noqa: F811
    other = make_key(tmp_path / "other_host")
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {(tmp_path / 'other_host.pub').read_text()}")
    target = sshd.target(str(tmp_path / "t"), known_hosts=known)
    _deploy_fails(target, model, tmp_path, HostKeyError, "ssh-keygen -f", 10)
    assert other.exists()


def test_missing_python_on_the_target(sshd, model, tmp_path):  # noqa: F811
    target = sshd.target(str(tmp_path / "t"), "python=/nonexistent/python3")
    _deploy_fails(target, model, tmp_path, RemotePythonError, "not found on the target", 10)


def test_too_old_python_on_the_target(sshd, model, tmp_path):  # noqa: F811
    # a stand-in interpreter that answers the probe like Python 3.6 would
    old = tmp_path / "python3.6"
    old.write_text('#!/bin/sh\necho \'{"version": [3, 6, 15], "machine": "x86_64", "glibc": "2.36", "dir": "/x", '
                   '"free_bytes": 1000000000, "missing": [], "pip": true, "site": []}\'\n')
    old.chmod(0o755)
    target = sshd.target(str(tmp_path / "t"), f"python={old}")
    _deploy_fails(target, model, tmp_path, RemotePythonError, "Python 3.6.15", 10)


def test_a_full_remote_disk_stops_before_anything_is_written(sshd, model, tmp_path):  # noqa: F811
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    try:
        target = sshd.target(str(small / "deploy"), f"python={sys.executable}")
        _deploy_fails(target, model, tmp_path, RemoteDiskFullError, "MiB free", 10)
        assert not (small / "deploy").exists() or not any((small / "deploy").rglob("*.*"))
    finally:
        subprocess.run(["umount", str(small)], check=True)


@pytest.mark.parametrize("url", [
    "ssh://", "ssh://pi@", "ssh://pi@host:99999", "ssh://pi@host:abc", "ssh://pi:secret@host",
    "ssh://-oProxyCommand=evil/x", "ssh://pi@host/dir?port=2", "ftp://host", "raspberrypi", "adb://", "adb://a b",
])
def test_urls_that_do_not_parse(url):
    with pytest.raises(TargetURLError):
        parse_target(url)


def test_cli_exit_code_for_an_unreachable_host(model, tmp_path, capsys):
    code = run_cli(["deploy", str(model), "--target", f"ssh://root@127.0.0.1:{free_port()}", "--connect-timeout", "2",
                    "--ssh-config", "none", "--known-hosts", str(tmp_path / "kh"), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ssh://root@127.0.0.1") and "Traceback" not in "".join(err)
