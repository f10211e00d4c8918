"""Build the demo's default model offline: a small int8 digit classifier.

Trains a tiny CNN on scikit-learn's handwritten digits (rendered like the
sample images, the samples themselves held out), converts it to a fully int8
.tflite with float input and output, and embeds edgesmith metadata: the labels
"zero".."nine" and the preprocessing (28x28 grayscale, pixel / 255). Runs on a host
with TensorFlow (``pip install -e ".[convert]"``), in about ten seconds::

    python demos/raspberrypi/make_model.py                 # -> demos/raspberrypi/models/digits.tflite
    python demos/raspberrypi/make_model.py --float         # keep float32 weights

Copy the .tflite to the Raspberry Pi; the Pi itself never needs TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_samples import DIGIT_SIZE, held_out_indices, render_digit  # noqa: E402

INPUT_SIZE = 28
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
METADATA = {
    "name": "edgesmith digits",
    "description": "Handwritten digit classifier trained on scikit-learn's load_digits (demo model)",
    "labels": LABELS,
    "preprocessing": {"size": [INPUT_SIZE, INPUT_SIZE], "color": "grayscale", "mean": [0.0], "std": [255.0]},
}


def digit_images() -> tuple:
    """``(train_x, train_y, held_out_x, held_out_y)``: images as the model sees them, in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.stack([_as_model_input(pixels) for pixels in digits.images])
    held_out = np.zeros(len(images), dtype=bool)
    held_out[held_out_indices(digits.target)] = True
    return images[~held_out], digits.target[~held_out], images[held_out], digits.target[held_out]


def _as_model_input(pixels: np.ndarray) -> np.ndarray:
    """Render like a sample file, then resize as a reader of that file would."""
    image = render_digit(pixels, DIGIT_SIZE).resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
    return (np.asarray(image, dtype=np.float32) / 255.0)[..., None]


def build_model():
    """A ~6k-parameter CNN: two conv blocks and a softmax."""
    import keras

    return keras.Sequential(
        [
            keras.Input((INPUT_SIZE, INPUT_SIZE, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="digits",
    )


def train(model, images, labels, epochs: int, seed: int = 0):
    """Fit ``model`` quietly; return its training accuracy."""
    import keras

    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0)
    return float(history.history["accuracy"][-1])


def to_tflite(model, calibration: np.ndarray | None) -> bytes:
    """Convert to .tflite bytes; fully int8 inside when ``calibration`` images are given."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its export log
        return converter.convert()


def train_and_convert(epochs: int = 12, quantize: bool = True) -> tuple:
    """``(tflite bytes without metadata, report)``: train the CNN and convert it."""
    train_x, train_y, held_x, held_y = digit_images()
    model = build_model()
    train_accuracy = train(model, train_x, train_y, epochs)
    report = {
        "train_accuracy": round(train_accuracy, 4),
        "held_out_accuracy_keras": float(np.mean(model.predict(held_x, verbose=0).argmax(1) == held_y)),
        "quantized": quantize,
    }
    return to_tflite(model, train_x[:200] if quantize else None), report


def make_model(output, epochs: int = 12, quantize: bool = True) -> dict:
    """Train, convert and write the model with its metadata to ``output``; return what was done.

    >>> make_model("models/digits.tflite")["train_accuracy"]
    0.996
    """
    from edgesmith.runtime.atomic_write import atomic_write_bytes
    from edgesmith.runtime.metadata import write_metadata

    tflite, report = train_and_convert(epochs, quantize)
    output = Path(output)
    atomic_write_bytes(output, tflite)
    write_metadata(output, METADATA)
    return {"path": str(output), "size_bytes": output.stat().st_size, **report}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "models" / "digits.tflite", help="the .tflite to write")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    parser.add_argument("--float", dest="quantize", action="store_false", help="keep float32 weights (no int8)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    report = make_model(args.out, epochs=args.epochs, quantize=args.quantize)
    print(
        f"wrote {report['path']} ({report['size_bytes'] / 1024:.1f} KB, "
        f"{'int8' if report['quantized'] else 'float32'}); accuracy: training {report['train_accuracy']:.3f}, "
        f"held-out samples {report['held_out_accuracy_keras']:.2f} (Keras)"
    )


if __name__ == "__main__":
    main()
