"""The Raspberry Pi example on x86: demos/raspberrypi/classify.py against its real samples.

The model is trained here by make_model.py (real Keras training, ~10 s) and run
with real LiteRT. This machine has no camera, display sensors or power meter,
so energy and CPU temperature are read from fixture sysfs trees holding the
files an INA219 board and a Raspberry Pi 5 expose (tests/runtime/fixtures).
The arm64 proof (the same top-1 under qemu-user) is check-arm64.sh, run by CI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgesmith.runtime import Classifier, InputError
from edgesmith.runtime.logs import read_log
from tests.runtime.fixtures.trees import build_tree

DEMO = Path(__file__).resolve().parents[2] / "demos" / "raspberrypi"
SAMPLES = DEMO / "samples"
sys.path.insert(0, str(DEMO))

import make_model  # noqa: E402
from overlay import RollingStats, overlay_lines, render_overlay  # noqa: E402
from sources import expand_paths  # noqa: E402

pytestmark = pytest.mark.slow  # trains and converts the demo model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The demo model with its metadata, the same graph without metadata, and a non-image model."""
    import keras

    from edgesmith.runtime.metadata import write_metadata

    folder = tmp_path_factory.mktemp("pi-models")
    tflite, report = make_model.train_and_convert(epochs=8)
    (folder / "unlabelled.tflite").write_bytes(tflite)
    write_metadata(folder / "unlabelled.tflite", make_model.METADATA, output=folder / "digits.tflite")
    tabular = keras.Sequential([keras.Input((10,)), keras.layers.Dense(3, activation="softmax")])
    (folder / "tabular.tflite").write_bytes(make_model.to_tflite(tabular, calibration=None))
    return {name: folder / f"{name}.tflite" for name in ("digits", "unlabelled", "tabular")} | {"report": report}


def classify(*args, env=None) -> subprocess.CompletedProcess:
    """Run classify.py as a user would, in a fresh interpreter."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    environment.pop("DISPLAY", None)
    return subprocess.run([sys.executable, str(DEMO / "classify.py"), *map(str, args)],
                          capture_output=True, text=True, env=environment, timeout=120)


def json_lines(stdout: str) -> list:
    return [json.loads(line) for line in stdout.splitlines()]


def test_headless_run_logs_the_schema_and_agrees_with_the_classifier(models, tmp_path):
    log = tmp_path / "pi.jsonl"
    done = classify(SAMPLES, "--model", models["digits"], "--headless", "--json", "--energy", "none", "--log", log)
    assert done.returncode == 0, done.stderr
    results = [r for r in json_lines(done.stdout) if r["type"] == "result"]
    images = sorted(SAMPLES.iterdir())
    assert [Path(r["source"]).name for r in results] == [p.name for p in images]

    reference = Classifier(models["digits"], top_k=3)
    for result, image in zip(results, images):
        expected = reference.classify(image)
        assert [t["label"] for t in result["top_k"]] == [label for label, _ in expected]
        assert [t["score"] for t in result["top_k"]] == pytest.approx([score for _, score in expected])
    digits = {Path(r["source"]).stem: r["top_k"][0]["label"] for r in results if "digit" in r["source"]}
    correct = sum(digits[f"digit-{d}"] == make_model.LABELS[d] for d in range(10))
    assert correct >= 9, digits  # the held-out samples: a trained model, labels from its metadata

    records = read_log(log)  # validates every line against the shared schema
    header, runs, summary = records[0], records[1:-1], records[-1]
    assert header["tool"] == "edgesmith-pi-demo" and header["model"]["metadata"]["labels"] == make_model.LABELS
    assert [r["source"] for r in runs] == [r["source"] for r in results]
    assert [r["label"] for r in runs] == [r["top_k"][0]["label"] for r in results]
    assert summary["runs"] == len(images) and summary["labels"] == "model"
    assert summary["energy"] == {"available": False, "reason": "energy measurement disabled (--energy none)"}


def test_an_undecodable_image_is_skipped_and_logged_and_the_run_continues(models, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a-garbage.png").write_bytes(os.urandom(500))
    truncated = (SAMPLES / "photo-coffee.jpg").read_bytes()
    (folder / "b-truncated.jpg").write_bytes(truncated[: len(truncated) // 3])
    (folder / "c-three.png").write_bytes((SAMPLES / "digit-3.png").read_bytes())
    log = tmp_path / "mixed.jsonl"
    done = classify(folder, "--model", models["digits"], "--headless", "--log", log, "--energy", "none")
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stderr and "a-garbage.png" in done.stderr and "b-truncated.jpg" in done.stderr
    assert "c-three.png" in done.stdout and "three" in done.stdout
    summary = read_log(log)[-1]
    assert summary["runs"] == 1
    assert [Path(s["source"]).name for s in summary["skipped"]] == ["a-garbage.png", "b-truncated.jpg"]
    assert all("cannot decode" in s["reason"] for s in summary["skipped"])


def test_no_camera_gives_a_clear_message_suggesting_files(models):
    done = classify("--model", models["digits"], "--camera", "usb:7")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: no camera found")
    assert "classify image files instead" in done.stderr and "Traceback" not in done.stderr


def test_a_model_without_labels_shows_class_indices(models):
    done = classify(SAMPLES / "digit-3.png", "--model", models["unlabelled"], "--headless", "--energy", "none")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1] == "3"  # an index: the labelled model says "three"
    assert "no labels in its metadata" in done.stderr


def test_a_model_whose_input_is_not_an_image_is_refused_clearly(models):
    done = classify(SAMPLES, "--model", models["tabular"], "--headless")
    assert done.returncode == 2
    assert "input is not an image" in done.stderr and "Traceback" not in done.stderr


def test_benchmark_reads_energy_and_temperature_and_draws_the_overlay(models, tmp_path):
    root = build_tree("thermal-pi5", build_tree("ina219", tmp_path / "pi"))
    overlays, log = tmp_path / "overlays", tmp_path / "bench.jsonl"
    inputs = [SAMPLES / "digit-7.png", SAMPLES / "photo-camera.png"]
    done = classify(*inputs, "--model", models["digits"], "--benchmark", 3, "--energy", "hwmon", "--sysfs-root",
                    root, "--save-overlay", overlays, "--log", log, "--threads", 1)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # benchmark mode prints the summary only
    assert "5 frames timed" in done.stderr and "mJ/frame (hwmon:ina219" in done.stderr
    records = read_log(log)
    phases = [r["phase"] for r in records if r["type"] == "run"]
    assert phases == ["warmup"] + ["steady"] * 5
    summary = records[-1]
    assert summary["energy"]["available"] and summary["energy"]["meter"].startswith("hwmon:ina219")
    assert summary["energy"]["avg_power_w"] == pytest.approx(3.17)  # power1_input, 3170000 uW
    assert summary["cpu"]["temp_c_start"] == pytest.approx(48.3)
    assert records[0]["runtime"]["threads"] == 1
    saved = sorted(overlays.iterdir())
    assert len(saved) == 6
    drawn = np.asarray(Image.open(overlays / "steady-00004.png").convert("L"), dtype=np.int16)  # photo-camera
    plain = np.asarray(Image.open(inputs[1]).convert("L").resize(drawn.shape[::-1], Image.NEAREST), dtype=np.int16)
    top_band = slice(0, drawn.shape[0] // 6)
    assert np.abs(drawn[top_band] - plain[top_band]).mean() > 20  # the statistics are drawn there
    assert np.abs(drawn[-20:] - plain[-20:]).mean() < 1  # and the frame below is untouched


def test_rolling_statistics_and_overlay_text():
    clock = iter(np.arange(0, 10, 0.05))  # a frame every 50 ms
    stats = RollingStats(window=4, clock=lambda: next(clock))
    totals = [3.0, 5.0, 4.0, 100.0, 6.0]
    for total in totals:
        stats.add({"pre_ms": 1.0, "invoke_ms": total - 1.5, "post_ms": 0.5})
    rolling = stats.snapshot()
    assert rolling["n"] == 4  # the first frame fell out of the window
    assert rolling["p50_ms"] == pytest.approx(np.percentile(totals[1:], 50))
    assert rolling["p90_ms"] == pytest.approx(np.percentile(totals[1:], 90))
    assert rolling["fps"] == pytest.approx(20.0)
    lines = overlay_lines([("three", 0.9)], stats.latest, rolling, {"temp_c": 81.5, "throttled": True})
    assert lines[0] == "three 0.90" and "invoke 4.5" in lines[1] and "20.0 FPS" in lines[2]
    assert lines[3] == "CPU 81.5 C   THROTTLED"
    unknown = overlay_lines([("0", 1.0)], stats.latest, RollingStats().snapshot(), {"temp_c": None, "throttled": None})
    assert unknown[3] == "CPU temp n/a   throttling n/a"
    image = render_overlay(Image.new("L", (64, 64)), [("three", 0.9)], stats.latest, rolling, {})
    assert image.mode == "RGB" and image.width >= 480


def test_inputs_expand_from_files_folders_and_globs(tmp_path):
    paths = expand_paths([str(SAMPLES / "digit-1.png"), str(SAMPLES / "photo-*"), str(SAMPLES)])
    names = [p.name for p in paths]
    assert names[0] == "digit-1.png" and names[1:4] == ["photo-astronaut.jpg", "photo-camera.png", "photo-coffee.jpg"]
    assert len(names) == 4 + len(list(SAMPLES.iterdir()))
    with pytest.raises(InputError, match="no file matches"):
        expand_paths([str(tmp_path / "*.png")])
    with pytest.raises(InputError, match="no such file or folder"):
        expand_paths([str(tmp_path / "missing.png")])
