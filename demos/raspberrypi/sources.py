"""Where the demo's frames come from: image files, folders and globs, or a camera.

Every source yields :class:`Frame` objects. A file that cannot be decoded
yields a frame with ``error`` set instead of raising, so a run over a folder
skips it and carries on. Cameras are the Raspberry Pi camera (picamera2, when
installed) or a USB camera (OpenCV); when neither is there the error says to
classify files instead.

>>> for frame in file_frames(["samples/"]):
...     print(frame.source, frame.image.size)
"""

from __future__ import annotations

import glob
import importlib.util
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgesmith.runtime.bench import IMAGE_SUFFIXES
from edgesmith.runtime.errors import InputError

CAMERA_SIZE = (640, 480)
NO_CAMERA_HINT = "classify image files instead, e.g. `python classify.py samples/`"


@dataclass
class Frame:
    """One image to classify, or the reason it could not be read."""

    source: str  # a file path, or "camera:<kind>#<frame number>"
    image: Image.Image | None
    decode_ms: float = 0.0
    error: str | None = None


# -- files ----------------------------------------------------------------------


def expand_paths(patterns) -> list:
    """Files named by paths, folders (their images, sorted) and glob patterns, in order given."""
    paths = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            paths.append(path)
        elif glob.has_magic(pattern):
            matches = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
            if not matches:
                raise InputError(f"{pattern}: no file matches this pattern")
            paths += matches
        else:
            raise InputError(f"{pattern}: no such file or folder")
    if not paths:
        raise InputError(f"no images found in {' '.join(map(str, patterns))}")
    return paths


def decode(path: Path) -> Frame:
    """Read one image file into an RGB or grayscale PIL image, timing the decode."""
    started = time.perf_counter()
    try:
        with Image.open(path) as opened:
            image = opened.convert("L" if opened.mode in ("1", "L", "I;16", "I") else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return Frame(str(path), None, error=f"cannot decode image ({type(exc).__name__}: {exc})")
    return Frame(str(path), image, decode_ms=(time.perf_counter() - started) * 1000.0)


def file_frames(patterns, repeat: int = 1) -> Iterator[Frame]:
    """Decode every named image ``repeat`` times, in order (bad paths raise at once)."""
    paths = expand_paths(patterns)
    return (decode(path) for _ in range(repeat) for path in paths)


# -- cameras ----------------------------------------------------------------------


def camera_frames(kind: str = "auto", limit: int | None = None) -> Iterator[Frame]:
    """Frames from ``kind``: ``auto`` (Pi camera, else USB), ``picamera`` or ``usb[:N]``.

    Raises :class:`InputError` at once, with a hint to use files, when no camera works.
    """
    read, close, name = _open_camera(kind)
    return _camera_loop(read, close, name, limit)


def _camera_loop(read, close, name: str, limit: int | None) -> Iterator[Frame]:
    try:
        number = 0
        while limit is None or number < limit:
            started = time.perf_counter()
            pixels = read()
            yield Frame(f"camera:{name}#{number}", Image.fromarray(pixels), (time.perf_counter() - started) * 1000.0)
            number += 1
    finally:
        close()


def _open_camera(kind: str):
    """``(read, close, name)`` for the first camera of ``kind`` that opens."""
    if kind not in ("auto", "picamera") and not kind.startswith("usb"):
        raise InputError(f"unknown camera {kind!r}; use auto, picamera or usb[:N]")
    tried = []
    if kind in ("auto", "picamera"):
        if importlib.util.find_spec("picamera2") is not None:
            return _open_picamera()
        tried.append("picamera2 is not installed")
    if kind == "auto" or kind.startswith("usb"):
        index = int(kind.partition(":")[2] or 0) if kind.startswith("usb") else 0
        if importlib.util.find_spec("cv2") is not None:
            opened = _open_usb_camera(index)
            if opened:
                return opened
            tried.append(f"no USB camera at /dev/video{index}")
        else:
            tried.append("OpenCV (cv2) is not installed")
    raise InputError(f"no camera found ({'; '.join(tried)}); {NO_CAMERA_HINT}")


def _open_picamera():
    from picamera2 import Picamera2

    try:
        camera = Picamera2()
    except (IndexError, RuntimeError) as exc:  # picamera2 raises IndexError when no sensor is attached
        raise InputError(f"no Raspberry Pi camera detected ({exc}); {NO_CAMERA_HINT}") from None
    camera.configure(camera.create_preview_configuration(main={"size": CAMERA_SIZE, "format": "RGB888"}))
    camera.start()
    # picamera2's "RGB888" is stored B, G, R in memory
    return (lambda: np.ascontiguousarray(camera.capture_array()[..., 2::-1])), camera.close, "picamera2"


def _open_usb_camera(index: int):
    import cv2

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        return None
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, CAMERA_SIZE[0])
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, CAMERA_SIZE[1])

    def read():
        ok, bgr = capture.read()
        if not ok:
            raise InputError(f"the USB camera at /dev/video{index} stopped delivering frames")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    return read, capture.release, f"usb{index}"
