"""The adb target against a stand-in ``adb`` on PATH that records every call.

This checks only the commands edgesmith sends (device checks, push to a temp
name then rename, the activity's intent extras, the pull of the log) and that
every device-shell argument survives a real ``sh`` parse. The stand-in plays
the app by running ``edgesmith bench`` on the pushed model, so the pulled log
is a real one; no phone is involved.
"""

import json
import shlex
import sys
import textwrap

import pytest

from edgesmith.deploy import AppMissingError, BenchOptions, DeviceNotConnectedError, RemoteRunError, deploy
from edgesmith.deploy.adb import LOG_DIR, MODEL_DIR, PACKAGE
from edgesmith.runtime.logs import read_log
from tests.assets import real_tflite

FAKE_ADB = textwrap.dedent(r'''
    #!{python}
    """Stand-in adb: /sdcard is a folder; shell commands run in a real sh; `am start` plays the app."""
    import json, os, shlex, shutil, subprocess, sys
    root = os.environ["FAKE_SDCARD"]
    args = sys.argv[1:]
    with open(os.environ["FAKE_ADB_CALLS"], "a") as calls:
        calls.write(json.dumps(args) + "\n")
    serial, command, rest = args[1], args[2], args[3:]
    local = lambda path: path.replace("/sdcard", root, 1)
    if serial == "GONE":
        sys.exit("error: device 'GONE' not found")
    if command == "get-state":
        print("device")
    elif command == "push":
        os.makedirs(os.path.dirname(local(rest[1])), exist_ok=True)
        shutil.copy(rest[0], local(rest[1]))
    elif command == "pull":
        shutil.copy(local(rest[0]), rest[1])
    elif command == "shell":
        words = shlex.split(rest[0])
        if words[:2] == ["pm", "path"]:
            print("" if serial == "NOAPP" else "package:/data/app/dev.edgesmith.demo/base.apk")
        elif words[:2] == ["am", "start"]:
            extras = {{words[i + 1]: words[i + 2] for i, w in enumerate(words) if w in ("--ei", "--es")}}
            model = os.path.join(root, "Android/data/{package}/files/models", extras["model"])
            log = os.path.join(root, "Android/data/{package}/files/logs", extras["log"])
            done = subprocess.run([sys.executable, "-m", "edgesmith", "bench", model, "--runs", extras["runs"],
                                   "--warmup", extras["warmup"], "--energy", extras["energy"], "--log", log],
                                  capture_output=True, text=True)
            error = (done.stderr.strip().splitlines() or [f"exit {{done.returncode}}"])[-1] if done.returncode else None
            os.makedirs(os.path.dirname(log), exist_ok=True)
            with open(log + ".status", "w") as status:
                json.dump({{"state": "failed" if error else "done", "log": log, "error": error}}, status)
            print("Status: ok")
        else:
            sys.exit(subprocess.run(["sh", "-c", rest[0].replace("/sdcard", root)]).returncode)
''').lstrip()


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable, package=PACKAGE))
    adb.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_SDCARD", str(tmp_path / "sdcard"))
    monkeypatch.setenv("FAKE_ADB_CALLS", str(calls))
    return lambda: [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def test_deploy_pushes_starts_the_app_and_pulls_its_log(fake_adb, tmp_path):
    model = tmp_path / "my model's.tflite"  # a quote and a space must survive the device shell
    model.write_bytes(real_tflite("face_detection_short_range").read_bytes())
    result = deploy(model, "adb://R58M123ABC", out_dir=tmp_path / "logs", options=BenchOptions(runs=5, warmup=1, threads=2))
    assert read_log(result["log"])[-1]["runs"] == 5
    calls = fake_adb()
    assert all(call[:2] == ["-s", "R58M123ABC"] for call in calls)
    verbs = [call[2] if call[2] != "shell" else shlex.split(call[3])[0] for call in calls]
    assert verbs[:2] == ["get-state", "pm"]
    push = next(call for call in calls if call[2] == "push")
    assert push[4].startswith(f"{MODEL_DIR}/.my model's-") and push[4].endswith(".tmp")
    start = shlex.split(next(call[3] for call in calls if call[2] == "shell" and call[3].startswith("am ")))
    assert start[:5] == ["am", "start", "-W", "-n", f"{PACKAGE}/.BenchmarkActivity"]
    extras = dict(zip(start[6::3], start[7::3]))
    assert extras["runs"] == "5" and extras["threads"] == "2" and extras["model"].startswith("my model's-")
    assert extras["energy"] == "auto" and extras["log"].endswith(".jsonl")
    assert next(call for call in calls if call[2] == "pull")[3].startswith(LOG_DIR)


def test_a_failed_run_reports_the_apps_message(fake_adb, tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(real_tflite("okay_nabu").read_bytes()[:4000])  # a truncated file the app cannot load
    with pytest.raises(RemoteRunError, match="benchmark failed"):
        deploy(broken, "adb://R58M123ABC", out_dir=tmp_path / "logs", options=BenchOptions(runs=2, warmup=0))
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").iterdir())


def test_a_disconnected_device_is_a_clear_error(fake_adb, tmp_path):
    with pytest.raises(DeviceNotConnectedError, match="adb devices"):
        deploy(real_tflite("okay_nabu"), "adb://GONE", out_dir=tmp_path)
    assert [call[2] for call in fake_adb()] == ["get-state"]


def test_a_missing_app_stops_before_pushing(fake_adb, tmp_path):
    with pytest.raises(AppMissingError, match=PACKAGE):
        deploy(real_tflite("okay_nabu"), "adb://NOAPP", out_dir=tmp_path)
    assert "push" not in [call[2] for call in fake_adb()]
