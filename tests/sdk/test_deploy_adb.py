"""The adb target against a stand-in ``adb`` on PATH that records every call.

This checks only the commands edgesmith sends (device checks, push to a temp
name then rename, the activity's intent extras, status polling, the pull of the
log) and that every device-shell argument survives a real ``sh`` parse. The
stand-in plays the app by running ``edgesmith bench`` on the pushed model, so the
pulled log is a real one; ``FAKE_APP=refuse`` plays an app that refuses the
request (a logcat line, no status file), ``FAKE_APP=crash`` one that dies
after writing ``running``, ``FAKE_APP=old`` a build without the benchmark
activity. No phone is involved.
"""

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from edgesmith.deploy import AppMissingError, BenchOptions, DeviceNotConnectedError, RemoteRunError, deploy
from edgesmith.deploy.adb import LOG_DIR, MODEL_DIR, PACKAGE, AdbBenchOptions, AdbTarget
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
    elif command == "logcat":
        if os.path.exists(os.environ["FAKE_LOGCAT"]):
            print(open(os.environ["FAKE_LOGCAT"]).read(), end="")
    elif command == "shell":
        words = shlex.split(rest[0])
        if words[:2] == ["pm", "path"]:
            print("" if serial == "NOAPP" else "package:/data/app/dev.edgesmith.demo/base.apk")
        elif words[:2] == ["am", "start"]:
            extras = {{words[i + 1]: words[i + 2] for i, w in enumerate(words) if w in ("--ei", "--es")}}
            model = os.path.join(root, "Android/data/{package}/files/models", extras["model"])
            log = os.path.join(root, "Android/data/{package}/files/logs", extras["log"])
            os.makedirs(os.path.dirname(log), exist_ok=True)
            app = os.environ.get("FAKE_APP", "ok")
            if app == "old":
                sys.exit(print("Starting: Intent {{ cmp=dev.edgesmith.demo/.BenchmarkActivity }}\nError type 3\n"
                               "Error: Activity class {{dev.edgesmith.demo/dev.edgesmith.demo.BenchmarkActivity}} "
                               "does not exist."))  # and exit code 0, as `am start` does
            if app == "refuse":
                with open(os.environ["FAKE_LOGCAT"], "a") as logcat:
                    logcat.write("11-24 10:00:00.000  4242  4250 E edgesmith: benchmark request refused: "
                                 "--ei runs must be at least 1\n")
            elif app == "crash":
                with open(log + ".status", "w") as status:
                    json.dump({{"state": "running", "log": log, "error": None}}, status)
            else:
                done = subprocess.run([sys.executable, "-m", "edgesmith", "bench", model, "--runs", extras["runs"],
                                       "--warmup", extras["warmup"], "--energy", extras["energy"], "--log", log],
                                      capture_output=True, text=True)
                error = (done.stderr.strip().splitlines() or [f"exit {{done.returncode}}"])[-1] if done.returncode else None
                with open(log + ".status", "w") as status:
                    json.dump({{"state": "failed" if error else "done", "log": log, "error": error}}, status)
            print("Status: ok")
        elif words[0] == "pidof":
            sys.exit(1)  # the stand-in plays the app within `am start`: no app process runs afterwards
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
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SDCARD", str(tmp_path / "sdcard"))
    monkeypatch.setenv("FAKE_ADB_CALLS", str(calls))
    monkeypatch.setenv("FAKE_LOGCAT", str(tmp_path / "logcat.txt"))
    return lambda: [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []


def test_deploy_pushes_starts_the_app_and_pulls_its_log(fake_adb, tmp_path):
    model = tmp_path / "my model's.tflite"  # a quote and a space must survive the device shell
    model.write_bytes(real_tflite("face_detection_short_range").read_bytes())
    options = AdbBenchOptions(runs=5, warmup=1, threads=2, delegate="nnapi")
    result = deploy(model, "adb://R58M123ABC", out_dir=tmp_path / "logs", options=options)
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
    assert extras["energy"] == "auto" and extras["log"].endswith(".jsonl") and extras["delegate"] == "nnapi"
    assert start[5::3] == ["--es", "--ei", "--ei", "--es", "--es", "--es", "--ei"]  # integers must be --ei
    assert next(call for call in calls if call[2] == "pull")[3].startswith(LOG_DIR)


def test_a_failed_run_reports_the_apps_message(fake_adb, tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(real_tflite("okay_nabu").read_bytes()[:4000])  # a truncated file the app cannot load
    with pytest.raises(RemoteRunError, match="benchmark failed: error: .*broken"):  # the app's message
        deploy(broken, "adb://R58M123ABC", out_dir=tmp_path / "logs", options=BenchOptions(runs=2, warmup=0))
    assert not (tmp_path / "logs").exists() or not list((tmp_path / "logs").iterdir())
    polls = [call for call in fake_adb() if call[2] == "shell" and call[3].startswith("cat ")]
    assert len(polls) == 1 and polls[0][3].endswith(".status")  # reported at the first look, not after a timeout


def test_a_refused_request_reports_the_apps_logcat_message(fake_adb, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_APP", "refuse")
    target = AdbTarget("R58M123ABC", start_timeout=0.3, poll_s=0.05)
    with pytest.raises(RemoteRunError, match="did not start the benchmark: --ei runs must be at least 1"):
        deploy(real_tflite("okay_nabu"), target, out_dir=tmp_path)
    logcat = next(call for call in fake_adb() if call[2] == "logcat")
    assert logcat[3:] == ["-d", "-T", logcat[5], "-s", "edgesmith"] and logcat[5].endswith(".000")


def test_an_app_that_dies_mid_run_is_reported_without_waiting_for_the_timeout(fake_adb, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_APP", "crash")
    target = AdbTarget("R58M123ABC", bench_timeout=30, poll_s=0.05, alive_check_s=0.2)
    with pytest.raises(RemoteRunError, match="the app stopped during the benchmark"):
        deploy(real_tflite("okay_nabu"), target, out_dir=tmp_path)
    assert ["pidof", PACKAGE] in [shlex.split(call[3]) for call in fake_adb() if call[2] == "shell"]


def test_an_app_without_the_benchmark_activity_is_a_missing_app(fake_adb, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_APP", "old")
    with pytest.raises(AppMissingError, match="BenchmarkActivity.*does not exist.*install the current demos/android"):
        deploy(real_tflite("okay_nabu"), "adb://R58M123ABC", out_dir=tmp_path)
    assert not [call for call in fake_adb() if call[2] == "shell" and call[3].startswith("cat ")]


def test_a_stale_status_file_is_removed_before_the_app_starts(fake_adb, tmp_path):
    deploy(real_tflite("okay_nabu"), "adb://R58M123ABC", out_dir=tmp_path, options=BenchOptions(runs=1, warmup=0))
    shell = [shlex.split(call[3]) for call in fake_adb() if call[2] == "shell"]
    removed = next(i for i, words in enumerate(shell) if words[:2] == ["rm", "-f"])
    started = next(i for i, words in enumerate(shell) if words[:2] == ["am", "start"])
    assert removed < started and shell[removed][2].endswith(".jsonl.status")


def test_cli_passes_the_delegate_to_the_app_and_refuses_it_elsewhere(fake_adb, tmp_path):
    model = real_tflite("okay_nabu")
    argv = [sys.executable, "-m", "edgesmith", "deploy", str(model), "--runs", "2", "--warmup", "0", "--out", str(tmp_path)]
    done = subprocess.run([*argv, "--target", "adb://R58M123ABC", "--delegate", "gpu", "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["summary"]["runs"] == 2
    start = shlex.split(next(call[3] for call in fake_adb() if call[2] == "shell" and call[3].startswith("am ")))
    assert dict(zip(start[6::3], start[7::3]))["delegate"] == "gpu"
    refused = subprocess.run([*argv, "--target", "local", "--delegate", "gpu"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--delegate" in refused.stderr and "adb://" in refused.stderr


def test_a_disconnected_device_is_a_clear_error(fake_adb, tmp_path):
    with pytest.raises(DeviceNotConnectedError, match="adb devices"):
        deploy(real_tflite("okay_nabu"), "adb://GONE", out_dir=tmp_path)
    assert [call[2] for call in fake_adb()] == ["get-state"]


def test_a_missing_app_stops_before_pushing(fake_adb, tmp_path):
    with pytest.raises(AppMissingError, match=PACKAGE):
        deploy(real_tflite("okay_nabu"), "adb://NOAPP", out_dir=tmp_path)
    assert "push" not in [call[2] for call in fake_adb()]
