"""Image classification with labels and preprocessing read from the model itself.

>>> from edgesmith.runtime import Classifier
>>> classifier = Classifier("digits.tflite")
>>> top = classifier.classify("three.png", top_k=3)  # [(label, score), ...], best first
>>> len(top), top[0][0], top[0][1] > top[1][1]
(3, '3', True)

Preprocessing comes from edgesmith metadata, else from TFLite Support
metadata (MediaPipe and model-zoo files carry it), else from the input tensor:
resize to the input size, RGB or grayscale by channel count, and scale pixels to
[0, 1] for float inputs (raw 0..255 for quantized ones).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np

from .errors import InputError
from .metadata import read_associated_file, read_metadata, read_support_metadata
from .model import Model


class Classifier:
    """Top-k image classification over any single-image-input .tflite.

    Args:
        model: a path to a .tflite file, or a loaded :class:`Model`.
        threads: interpreter threads (when given a path).
        top_k: how many ``(label, score)`` pairs :meth:`classify` returns.
        backend: interpreter backend (when given a path).
        preprocessing: override the model's preprocessing, e.g.
            ``{"color": "rgb", "mean": [127.5], "std": [127.5]}`` (``color``: rgb, bgr or grayscale).
    """

    def __init__(self, model, threads=None, top_k: int = 5, backend: str = "auto", preprocessing=None):
        self.model = model if isinstance(model, Model) else Model(model, threads=threads, backend=backend)
        self.top_k = top_k
        self._spec = self._image_input()
        self.labels, found = _labels_and_preprocessing(self.model.path)
        self.preprocessing = {**_default_preprocessing(self._spec), **found, **(preprocessing or {})}
        self._height, self._width = self.preprocessing["size"]
        self._mode = "L" if self.preprocessing["color"] == "grayscale" else "RGB"
        channels = 1 if self._mode == "L" else 3
        self._mean = np.asarray(self.preprocessing.get("mean", [0.0]), dtype=np.float32)
        self._std = np.asarray(self.preprocessing.get("std", [1.0]), dtype=np.float32)
        if self._spec.shape_signature[-1] not in (channels, -1):
            raise InputError(f"{self.model.path.name}: preprocessing says {self.preprocessing['color']} "
                             f"but the input has {self._spec.shape_signature[-1]} channels")

    def _image_input(self):
        inputs = self.model.inputs
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].shape[-1] not in (1, 3):
            shapes = ", ".join(str(list(s.shape)) for s in inputs)
            raise InputError(f"{self.model.path.name}: input is not an image (expected one [N,H,W,1|3] tensor, "
                             f"got {shapes})")
        return inputs[0]

    @functools.cached_property
    def _class_scores_output(self):
        """The output holding the class scores: the only one, or of several the one edgesmith's metadata names a
        classifier's (a detector's class head beside its box head). Found once, on the first image: the metadata
        is read from the file."""
        outputs = self.model.outputs
        if len(outputs) == 1:
            return outputs[0]
        described = (read_metadata(self.model.path) or {}).get("outputs") or []
        classes = [spec for spec, output in zip(outputs, described) if output.get("task") == "classification"]
        if len(classes) != 1:
            raise InputError(f"{self.model.path.name}: {len(outputs)} outputs, and its metadata names no single one "
                             "as class scores; classify reads one [1, classes] output")
        return classes[0]

    def preprocess(self, image) -> np.ndarray:
        """Turn a path, PIL image or array into the model's float input batch [1, H, W, C]."""
        pixels = np.asarray(open_image(image).convert(self._mode).resize((self._width, self._height)), dtype=np.float32)
        if pixels.ndim == 2:
            pixels = pixels[..., None]
        if self.preprocessing["color"] == "bgr":  # caffe-style models (keras.applications ResNet, VGG)
            pixels = pixels[..., ::-1]
        return ((pixels - self._mean) / self._std)[None]

    def classify(self, image, top_k: int | None = None) -> list:
        """The top-k ``(label, score)`` pairs for one image, best first."""
        return self.classify_timed(image, top_k)[0]

    def classify_timed(self, image, top_k: int | None = None):
        """Like :meth:`classify`, also returning ``{"pre_ms", "invoke_ms", "post_ms"}``."""
        started = time.perf_counter()
        batch = self.preprocess(image)
        self.model.set_inputs(self.model.prepare(batch))
        prepared = time.perf_counter()
        self.model.invoke()
        invoked = time.perf_counter()
        scores = np.asarray(self.model.get_outputs(as_dict=True)[self._class_scores_output.name]).reshape(-1)
        results = self._top(scores, top_k or self.top_k)
        finished = time.perf_counter()
        timings = {"pre_ms": (prepared - started) * 1000.0, "invoke_ms": (invoked - prepared) * 1000.0,
                   "post_ms": (finished - invoked) * 1000.0}
        return results, timings

    def _top(self, scores: np.ndarray, k: int) -> list:
        best = np.argsort(-scores, kind="stable")[:k]
        labels = self.labels or []
        return [(labels[i] if i < len(labels) else str(i), float(scores[i])) for i in best.tolist()]


def open_image(image):
    """A PIL image from a path, a PIL image or an HxW[xC] array; one-line InputError if undecodable."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, Path)):
        try:
            with Image.open(image) as opened:
                opened.load()
                return opened.copy()
        except FileNotFoundError:
            raise InputError(f"{image}: no such image file") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"{image}: cannot decode image ({exc})") from None
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise InputError(f"image array must be HxW, HxWx1, HxWx3 or HxWx4, got shape {list(array.shape)}")
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return Image.fromarray(array)


def _default_preprocessing(spec) -> dict:
    height, width, channels = spec.shape[1], spec.shape[2], spec.shape[3]
    color = "grayscale" if channels == 1 else "rgb"
    scale = [1.0] if spec.quantized or np.issubdtype(spec.dtype, np.integer) else [255.0]
    return {"size": [height, width], "color": color, "mean": [0.0], "std": scale}


def _labels_and_preprocessing(path: Path):
    """Labels and preprocessing from edgesmith metadata, else TFLite Support metadata."""
    ours = read_metadata(path) or {}
    preprocessing = dict(ours.get("preprocessing") or {})
    labels = ours.get("labels")
    if labels and preprocessing:
        return labels, preprocessing
    support = read_support_metadata(path)
    if support and support.inputs:
        image = support.inputs[0]
        if image.color_space:
            preprocessing.setdefault("color", image.color_space)
        if image.mean and image.std:
            preprocessing.setdefault("mean", image.mean)
            preprocessing.setdefault("std", image.std)
    if not labels and support and support.outputs and support.outputs[0].label_files:
        text = read_associated_file(path.read_bytes(), support.outputs[0].label_files[0])
        labels = text.decode("utf-8").splitlines() if text else None
    return labels, preprocessing
