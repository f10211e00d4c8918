"""The Android demo's plain-Java core: its JUnit tests pass, and its logs pass the Python schema checks.

``demos/android/core/test.sh`` compiles the core with the JDK and runs its JUnit 4 tests. This
module gives those tests real files made on the Python side: a .tflite built with TensorFlow and
tagged by ``edgesmith.runtime.metadata.write_metadata``, the same model without metadata, and
pixels with the input ``edgesmith.runtime.Classifier`` makes of them. The Java tests write a
JSONL log as the app does; it is read here with ``read_log`` / ``validate_record`` and its
summaries are recomputed with the Python bench's statistics, so the two sides cannot drift.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgesmith.runtime import Classifier
from edgesmith.runtime.bench import latency_stats
from edgesmith.runtime.logs import read_log, validate_record
from edgesmith.runtime.metadata import read_metadata, write_metadata

CORE = Path(__file__).resolve().parents[2] / "demos" / "android" / "core"
LABELS = ["zéro", "one", "two", "three"]
PREPROCESSING = {"size": [16, 16], "color": "rgb", "mean": [127.5, 120.0, 110.0], "std": [127.5, 60.0, 50.0]}

pytestmark = [pytest.mark.slow,  # compiles and runs the Java core on a JVM
              pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK 17 (javac)")]


@pytest.fixture(scope="module")
def java_run(tflite_models, tmp_path_factory):
    """Run the Java tests once on real files; return their output and the paths involved."""
    folder = tmp_path_factory.mktemp("android_java")
    model = write_metadata(tflite_models["float"], {"labels": LABELS, "preprocessing": PREPROCESSING,
                                                    "macs": 14_000}, output=folder / "digits.tflite")
    expected = folder / "metadata.json"
    expected.write_text(json.dumps(read_metadata(model)), encoding="utf-8")
    paths = {"model": model, "metadata": expected, "bare": tflite_models["int8"],
             "pixels": _pixel_fixture(model, folder / "pixels.json"), "log": folder / "android.jsonl"}
    env = {**os.environ, "BUILD_DIR": str(folder / "build"),
           "EDGESMITH_TEST_MODEL": str(model), "EDGESMITH_TEST_METADATA": str(expected),
           "EDGESMITH_TEST_BARE_MODEL": str(paths["bare"]), "EDGESMITH_TEST_PIXELS": str(paths["pixels"]),
           "EDGESMITH_LOG_OUT": str(paths["log"])}
    done = subprocess.run([str(CORE / "test.sh")], env=env, capture_output=True, text=True, timeout=600)
    return done, paths


def _pixel_fixture(model: Path, path: Path) -> Path:
    """Random pixels at the model's size, with Python's preprocessed input and Pillow's luma for them."""
    from PIL import Image

    rgb = np.random.default_rng(7).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    argb = (0xFF << 24) | (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    argb = argb.astype(np.uint32).view(np.int32)  # Java ints are signed
    fixture = {
        "shape": [1, 16, 16, 3],
        "preprocessing": read_metadata(model)["preprocessing"],
        "argb": argb.reshape(-1).tolist(),
        "expected": Classifier(model).preprocess(rgb).reshape(-1).tolist(),
        "luma": np.asarray(Image.fromarray(rgb).convert("L")).reshape(-1).tolist(),
    }
    path.write_text(json.dumps(fixture), encoding="utf-8")
    return path


def _sessions(records: list) -> list:
    """Split a log into [(header, runs, summary), ...]."""
    sessions = []
    for record in records:
        if record["type"] == "header":
            sessions.append([record, [], None])
        elif record["type"] == "run":
            sessions[-1][1].append(record)
        else:
            sessions[-1][2] = record
    return sessions


def test_java_core_unit_tests_pass_without_skips(java_run):
    done, _ = java_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "failed 0, skipped 0" in done.stdout, done.stdout[-2000:]


def test_java_log_passes_the_python_schema(java_run):
    _, paths = java_run
    records = read_log(paths["log"])  # raises on the first record the schema rejects
    assert all(validate_record(record) == [] for record in records)
    sessions = _sessions(records)
    assert [len(runs) for _, runs, _ in sessions] == [43, 25]
    for header, runs, summary in sessions:
        assert header["tool"] == "edgesmith-android"
        assert header["runtime"]["backend"] == "litert-android"
        assert summary is not None and summary["runs"] == sum(r["phase"] == "steady" for r in runs)
        assert {r["label"] for r in runs} <= set(LABELS)


def test_java_header_describes_the_model_as_python_does(java_run):
    _, paths = java_run
    model = paths["model"]
    header = read_log(paths["log"])[0]
    assert header["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert header["model"]["size_bytes"] == model.stat().st_size
    assert header["model"]["metadata"] == read_metadata(model)
    assert header["model"]["macs"] == 14_000


def test_java_summaries_match_the_python_statistics(java_run):
    _, paths = java_run
    for _, runs, summary in _sessions(read_log(paths["log"])):
        steady = [r for r in runs if r["phase"] == "steady"]
        for field, key in (("latency_ms", "invoke_ms"), ("pre_ms", "pre_ms"), ("post_ms", "post_ms")):
            python = latency_stats([r[key] for r in steady])
            assert summary[field] == pytest.approx(python, rel=1e-9, abs=1e-12), field
        warm = [r["invoke_ms"] for r in runs if r["phase"] == "warmup"]
        if warm:
            assert summary["warmup_ms"] == pytest.approx({"n": len(warm), "mean": np.mean(warm), "max": max(warm)})
            assert summary["first_invoke_ms"] == warm[0]
            assert summary["throughput_ips"] == pytest.approx(1000 / summary["latency_ms"]["mean"])
            assert summary["gmacs_per_s"] == pytest.approx(14_000 / (summary["latency_ms"]["p50"] * 1e6))


def test_java_energy_is_measured_or_explained(java_run):
    _, paths = java_run
    (_, _, bench), (_, _, camera) = (s for s in _sessions(read_log(paths["log"])))
    energy = bench["energy"]
    assert energy["available"] and energy["meter"] == "android-battery" and not energy["estimated"]
    # the replayed trace draws 0.598..0.701 A at 3.87 V
    assert 0.598 * 3.87 <= energy["avg_power_w"] <= 0.701 * 3.87
    assert energy["mj_per_inference"] == pytest.approx(energy["joules"] * 1000 / bench["runs"])
    assert camera["energy"]["available"] is False
    assert "charger" in camera["energy"]["reason"]


def test_schema_checks_would_catch_a_drifting_java_record(java_run):
    _, paths = java_run
    run = next(r for r in read_log(paths["log"]) if r["type"] == "run")
    renamed = {("invoke_time_ms" if k == "invoke_ms" else k): v for k, v in run.items()}
    assert validate_record(renamed) != []
