"""`edgesmith optimize` end to end: a verified Pareto front and a pick, resuming, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgesmith.cli import main
from edgesmith.runtime import Model, read_metadata
from tests.sdk.test_optimize_models import REPO, digits, saved, tiny_model

pytestmark = pytest.mark.slow  # runs searches that train, convert and benchmark

FAST = ["--data", "builtin:digits", "--runs", "20", "--warmup", "2"]


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def model_path(data, tmp_path_factory):
    return saved(tiny_model(data), tmp_path_factory.mktemp("model"))


def run(argv, capsys) -> tuple:
    try:
        main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_search_writes_a_verified_front_and_a_pick_then_resumes(model_path, data, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["optimize", str(model_path), *FAST, "--out", str(out), "--objective", "size", "--objective", "latency",
            "--passes", "prune", "--trials", "3", "--json"]
    code, stdout, _ = run(argv, capsys)
    assert code == 0
    result = json.loads(stdout)
    assert result["met"] and result["trials"]["complete"] == 3
    pick = result["pick"]
    assert pick["accuracy_drop_pt"] <= 1.0
    assert (out / "model.tflite").read_bytes() == (out / "candidates" / f"trial-{pick['trial']:04d}" / "model.tflite").read_bytes()
    for row in result["front"]:  # each front member is a deployable file whose accuracy was measured by running it
        path = out / "front" / f"trial-{row['trial']:04d}.tflite"
        metadata = read_metadata(path)
        assert metadata["metrics"]["tflite_accuracy"] == pytest.approx(row["accuracy"])
        assert metadata["recipe"]["passes"][-1]["precisions"] == row["precisions"]
        predicted = Model(path).predict(data.x_val).argmax(-1)
        assert (predicted == data.y_val).mean() == pytest.approx(row["accuracy"])
        assert row["latency_ms"] > 0 and (out / "front" / f"trial-{row['trial']:04d}.jsonl").is_file()
    others = [r for r in result["front"] if r is not pick]
    assert all(r["graph_bytes"] >= pick["graph_bytes"] for r in others)  # "size" is raw bytes as stored
    assert "Pareto" in (out / "report.html").read_text() and (out / "pareto.png").stat().st_size > 1000

    code, stdout, _ = run(argv[:-3] + ["--trials", "4"], capsys)  # resume: one more trial, table output
    assert code == 0 and "pick: trial" in stdout
    assert json.loads((out / "optimize.json").read_text())["trials"]["complete"] == 4
    assert len(list((out / "candidates").iterdir())) == 4


def test_impossible_constraint_reports_the_best_miss_and_exits_1(data, tmp_path, capsys):
    path = saved(tiny_model(data, outlier=True), tmp_path)  # loses > 2 pt whenever fc1 runs int8
    out = tmp_path / "out"
    code, _, err = run(["optimize", str(path), *FAST, "--out", str(out), "--passes", "none", "--precisions", "int8",
                        "--trials", "2", "--max-accuracy-drop", "1.0"], capsys)
    assert code == 1
    assert "no candidate within 1.0 pt" in err and "pt over" in err
    result = json.loads((out / "optimize.json").read_text())
    assert not result["met"] and result["pick"] is None and result["miss_pt"] > 1.0
    assert not (out / "model.tflite").exists()


def test_unreachable_target_fails_those_trials_and_continues(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(["optimize", str(model_path), *FAST, "--out", str(out), "--passes", "none", "--trials", "2",
                        "--target", "ssh://nobody@127.0.0.1:1"], capsys)
    assert code == 1 and "no trial completed (2 failed)" in err
    failures = json.loads((out / "optimize.json").read_text())["trials"]["failures"]
    assert [f["trial"] for f in failures] == [0, 1]  # the second trial ran after the first failed
    assert all("benchmark on ssh://nobody@127.0.0.1:1 failed" in f["error"] for f in failures)


def test_bad_options_are_one_line_errors(model_path, tmp_path, capsys):
    code, _, err = run(["optimize", str(model_path), *FAST, "--out", str(tmp_path), "--objective", "energy",
                        "--energy", "none"], capsys)
    assert code == 2 and "energy objective needs an energy meter" in err
    code, _, err = run(["optimize", str(model_path), *FAST, "--out", str(tmp_path), "--storage", "nowhere"], capsys)
    assert code == 2 and "give an Optuna storage URL" in err
    code, _, err = run(["optimize", str(model_path), *FAST, "--out", str(tmp_path), "--passes", "distill"], capsys)
    assert code == 2 and "unknown distill" in err


def test_ctrl_c_keeps_the_study_and_a_rerun_resumes_it(model_path, tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "edgesmith", "optimize", str(model_path), *FAST, "--out", str(out),
            "--passes", "prune", "--trials", "50"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    worker = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "candidates" / "trial-0001" / "report.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 130 and "rerun the same command to resume" in err, err[-3000:]
    done = subprocess.run(argv[:-1] + ["3", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = json.loads(done.stdout)["trials"]
    assert trials["complete"] + trials["failed"] >= 3  # the interrupted run's trials count towards the total
    assert trials["complete"] >= 2
