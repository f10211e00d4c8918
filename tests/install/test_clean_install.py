"""A user's first step on a board: `pip install edgesmith` into a clean venv, no TensorFlow,
then `edgesmith bench` and `Classifier` on real third-party models."""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.assets import real_tflite

pytestmark = pytest.mark.slow  # builds a wheel and installs it in a fresh venv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clean_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", folder / "wheels", REPO],
                   check=True, capture_output=True, timeout=300)
    wheel = next((folder / "wheels").glob("edgesmith-*.whl"))
    venv.create(folder / "venv", with_pip=True)
    python = folder / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", wheel], check=True, capture_output=True, timeout=600)
    return python, folder


def test_base_install_has_no_tensorflow(clean_env):
    python, _ = clean_env
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"edgesmith", "numpy", "pillow", "click", "ai-edge-litert"} <= names
    assert not names & {"tensorflow", "tensorflow-cpu", "keras", "tf-keras"}


@pytest.mark.parametrize("name", ["face_detection_short_range", "okay_nabu", "hand_landmark_lite"])
def test_bench_runs_on_real_models(clean_env, name):
    python, folder = clean_env
    log = folder / f"{name}.jsonl"
    done = subprocess.run(
        [python, "-m", "edgesmith", "bench", real_tflite(name), "--runs", "10", "--warmup", "2", "--json", "--log", log],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-1500:]
    summary = json.loads(done.stdout)["summary"]
    assert summary["runs"] == 10 and summary["latency_ms"]["p50"] > 0
    assert summary["macs"] > 0
    assert len(log.read_text().splitlines()) == 14


def test_classifier_on_a_real_model(clean_env):
    """MediaPipe's hand landmarker: its TFLite Support metadata gives the preprocessing; its four outputs
    (landmarks, presence, handedness, world landmarks) are no class scores, which classify says in one line."""
    python, _ = clean_env
    script = (
        "import sys, numpy as np; from edgesmith.runtime import Classifier; from edgesmith.runtime.errors import "
        "InputError; c = Classifier(sys.argv[1]); print(c.preprocessing['size'], c.preprocessing['std'][0])\n"
        "try:\n    c.classify(np.zeros((64, 64, 3), np.uint8))\nexcept InputError as error:\n    print(error)"
    )
    done = subprocess.run([python, "-c", script, real_tflite("hand_landmark_lite")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-1500:]
    size, refusal = done.stdout.strip().splitlines()
    assert size == "[224, 224] 255.0" and "4 outputs, and its metadata names no single one as class scores" in refusal


def test_custom_op_model_fails_cleanly(clean_env):
    python, _ = clean_env
    done = subprocess.run([python, "-m", "edgesmith", "bench", real_tflite("face_landmark_with_attention")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "Landmarks2TransformMatrix" in done.stderr and "Traceback" not in done.stderr
