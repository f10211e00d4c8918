"""Conformance matrix: architectures no one here designed x every built-in recipe, on real MNIST.

    cd /work/main && TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/conformance.py \
        [--models MobileNet,ResNet50] [--recipes int8-ptq,fp16] [--train-samples 5000 --test-samples 1000] \
        [--source-epochs 30] [--max-recipe-epochs 1] [--json matrix.json] [--out bench-out/conformance]

Every cell is the outcome of ``edgesmith.pipeline.convert(model, recipe, data.npz, out)``:

* verified: the .tflite was written and measured (raw bytes, then gzip bytes, accuracy drop in points below the
  source model, top-1 agreement with the Keras model it came from, the layers QAT kept in float); when the
  pipeline walked back to a weaker recipe to hold the budget, the delivered model's numbers and
  ``(walked back to <recipe>)``; a verification verdict "unresolved" is shown too;
* budget missed: the same numbers, but the drop exceeded the recipe's ``max_accuracy_drop``
  (``AccuracyDropError``, which carries the report);
* refused: any other :class:`edgesmith.runtime.errors.EdgesmithError`, shown as its one-line message;
* CRASH: anything else (an unexpected exception type): a defect in edgesmith, shown as
  ``CRASH: <type>: <first line>``, with the traceback kept in the cell's folder.

Architectures: ten keras.applications families built with ``weights=None, classes=10`` at 32 x 32 x 3
(the smallest input each accepts; ``alpha`` 0.25 for MobileNet, 0.35 for MobileNetV2 and 0.75 for
MobileNetV3, to keep time down), plus a Conv1D keyword-spotting-style model, an LSTM+GRU model, a small
transformer (LayerNormalization + MultiHeadAttention), a model with two outputs, and a legacy Keras 2
``.h5`` file written by tf_keras in a separate process. Each is trained on MNIST first (images
resized to 32 x 32 and tiled to 3 channels, uint8; sequence models read the 28 rows as 28 steps of 28
features, float32 in 0..1), on the input convention it declares (raw pixels for models that normalize
inside, "tf", "caffe" or "torch" for the others), and the same preset is passed to the pipeline.
Sources are trained to a plateau: one epoch at a time, scored on a validation split held out of their training
images (``--source-val-fraction``), stopped after ``--source-patience`` epochs without a better score, the best
epoch's weights kept, at most ``--source-epochs`` (``--source-patience 0``: exactly that many epochs, as before).
Otherwise a recipe that trains would "recover" by finishing the source's training.
BatchNorm moving statistics are re-estimated before each validation score and after training (MobileNetV2/V3
and NASNet use momentum 0.999/0.9997, which leaves them stale after a short training).

Trained source models are cached (``--cache``); each model's row runs in a child process (a hard crash
or ``--row-timeout`` loses one row, not the matrix; ``--in-process`` to debug), which writes its cells to
``OUT/MODEL/cells.jsonl`` as they finish (``--collect`` prints the table from them without running anything).
A cell already in that file is kept and not run again: more recipes can be added to a row later (delete the
file to rerun a row; cells of a source trained with other settings are moved aside to cells.other-source.jsonl).
Every cell's wall time is measured. After a row (also at ``--collect``, over the files the row has), every .tflite
of it is timed with ``edgesmith.runtime.bench.benchmark`` (the code of ``edgesmith bench``) in interleaved rounds,
the median p50 kept in ``OUT/MODEL/latency.json``; size and p50 are shown relative to the row's int8-ptq cell,
and the issue's targets are counted after the tables. Results and their budget: docs/conformance.md.
``--max-recipe-epochs`` caps the ``epochs`` option of every pass of the built-in recipes (the budget is
printed with the table).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from edgesmith.runtime.atomic_write import atomic_write_json  # noqa: E402

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
BATCH = 32  # source training: more steps than 64 on a few thousand images
LEARNING_RATE = 2e-3


# -- input conventions ---------------------------------------------------------------


def preprocessed(pixels: np.ndarray, preset: str | None) -> np.ndarray:
    """What a model trained on ``preset`` sees for uint8 ``pixels`` (the pipeline must repeat it exactly)."""
    x = pixels.astype(np.float32)
    if preset == "raw":
        return x
    if preset == "unit":
        return x / 255.0
    if preset == "tf":
        return x / 127.5 - 1.0
    if preset == "torch":
        return (x / 255.0 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    if preset == "caffe":
        return x[..., ::-1] - np.float32(CAFFE_MEAN_BGR)
    raise ValueError(f"unknown preset {preset!r}")


# -- architectures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Arch:
    """One row: how to build the model, what data it reads, the preset it was trained on."""

    build: object  # () -> keras.Model (None for the legacy .h5, made in a subprocess)
    data: str  # a kind of write_datasets: "image" (32x32x3 uint8), "sequence" (28 steps x 28 features, float32), ...
    preset: str | None  # passed to convert(preprocess=...); None for float (already normalized) data
    note: str = ""
    task: str = "classify"  # how the source is trained and scored: a key of TASKS
    live: object = None  # (weights file) -> keras.Model: a model kept as weights only, converted as a live instance


def _app(name, **options):
    def build():
        import keras

        return getattr(keras.applications, name)(input_shape=(32, 32, 3), weights=None, classes=10, **options)

    return build


def kws_conv1d():
    """Keyword-spotting style: Conv1D blocks over time, then global pooling."""
    import keras

    L = keras.layers
    inputs = keras.Input((28, 28))
    x = inputs
    for filters in (32, 64):
        x = L.ReLU()(L.BatchNormalization()(L.Conv1D(filters, 3, padding="same", use_bias=False)(x)))
        x = L.MaxPooling1D(2)(x)
    x = L.GlobalAveragePooling1D()(L.Conv1D(64, 3, padding="same", activation="relu")(x))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="kws_conv1d")


def lstm_gru():
    """A recurrent sequence classifier: LSTM (all steps) then GRU (last step)."""
    import keras

    L = keras.layers
    inputs = keras.Input((28, 28))
    x = L.GRU(48)(L.LSTM(48, return_sequences=True)(inputs))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="lstm_gru")


def tiny_transformer():
    """One pre-norm encoder block: Conv1D embedding (gives position), LayerNorm + MultiHeadAttention, MLP."""
    import keras

    L = keras.layers
    inputs = keras.Input((28, 28))
    x = L.Conv1D(64, 3, padding="same")(inputs)
    y = L.LayerNormalization()(x)
    x = L.Add()([x, L.MultiHeadAttention(num_heads=4, key_dim=16)(y, y)])
    y = L.LayerNormalization()(x)
    x = L.Add()([x, L.Dense(64)(L.Dense(128, activation="gelu")(y))])
    x = L.GlobalAveragePooling1D()(L.LayerNormalization()(x))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="tiny_transformer")


def two_outputs():
    """A shared CNN trunk with two heads: the digit (10 classes, first) and its parity (2 classes)."""
    import keras

    L = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = L.MaxPooling2D()(L.Conv2D(16, 3, padding="same", activation="relu")(inputs))
    x = L.MaxPooling2D()(L.Conv2D(32, 3, padding="same", activation="relu")(x))
    x = L.GlobalAveragePooling2D()(L.Conv2D(64, 3, padding="same", activation="relu")(x))
    digit = L.Dense(10, activation="softmax", name="digit")(x)
    parity = L.Dense(2, activation="softmax", name="parity")(x)
    return keras.Model(inputs, [digit, parity], name="two_outputs")


def anomaly_autoencoder():
    """MLPerf Tiny AD style, on images: a conv encoder, an 8-value dense bottleneck, a Conv2DTranspose decoder
    (28 x 28 x 1 in and out), trained on normal digits only; anomalies reconstruct worse."""
    import keras

    L = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)  # 14 x 14
    x = L.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)  # 7 x 7
    x = L.Dense(8, activation="relu")(L.Flatten()(x))
    x = L.Reshape((7, 7, 32))(L.Dense(7 * 7 * 32, activation="relu")(x))
    x = L.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(x)
    x = L.Conv2DTranspose(1, 3, strides=2, padding="same", name="reconstruction")(x)
    return keras.Model(inputs, x, name="anomaly_autoencoder")


def unet_segmenter():
    """A small U-Net: two down blocks, a bottleneck, two up blocks (Conv2DTranspose, UpSampling2D) that concatenate
    the encoder's features; a [32, 32, 3] softmax: background, stroke of a digit 0-4, stroke of a digit 5-9."""
    import keras

    L = keras.layers

    def block(x, filters):
        x = L.Conv2D(filters, 3, padding="same", activation="relu")(x)
        return L.Conv2D(filters, 3, padding="same", activation="relu")(x)

    inputs = keras.Input((32, 32, 3))
    skip1 = block(inputs, 16)  # 32 x 32
    skip2 = block(L.MaxPooling2D()(skip1), 32)  # 16 x 16
    x = block(L.MaxPooling2D()(skip2), 64)  # 8 x 8
    x = block(L.Concatenate()([L.Conv2DTranspose(32, 2, strides=2)(x), skip2]), 32)
    x = block(L.Concatenate()([L.Conv2D(16, 1)(L.UpSampling2D()(x)), skip1]), 16)
    return keras.Model(inputs, L.Conv2D(3, 1, activation="softmax", name="mask")(x), name="unet_segmenter")


def keypoint_regressor():
    """A CNN regressing the centre of mass (x, y, in 0..1 of the image) of a digit placed anywhere in 32 x 32."""
    import keras

    L = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for filters in (16, 32, 64):
        x = L.MaxPooling2D()(L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, padding="same", use_bias=False)(x))))
    x = L.Dense(64, activation="relu")(L.Flatten()(x))
    return keras.Model(inputs, L.Dense(2, name="centre")(x), name="keypoint_regressor")


def _subclassed_class():
    """A subclassed keras.Model (defined on first use: keras is imported late)."""
    import keras

    L = keras.layers

    class SubclassedNet(keras.Model):
        """Builds its layers in the constructor and, given a ``.weights.h5`` file, loads it (as a user's code
        does with weights saved earlier). ``sample``: the input of one sample ([32, 32, 3] image or [28, 28]
        sequence), which decides Conv2D or Conv1D."""

        def __init__(self, sample=(32, 32, 3), weights=None, **kwargs):
            super().__init__(**kwargs)
            conv, pool, gap = ((L.Conv2D, L.MaxPooling2D, L.GlobalAveragePooling2D) if len(sample) == 3 else
                               (L.Conv1D, L.MaxPooling1D, L.GlobalAveragePooling1D))
            self.conv1 = conv(16, 3, padding="same", activation="relu")
            self.pool = pool(2)
            self.conv2 = conv(32, 3, padding="same", activation="relu")
            self.gap = gap()
            self.hidden = L.Dense(64, activation="relu")
            self.classes = L.Dense(10, activation="softmax")
            self(np.zeros((1, *sample), np.float32))  # build the variables
            if weights is not None:
                self.load_weights(weights)

        def call(self, inputs, training=False):
            x = self.pool(self.conv1(inputs))
            return self.classes(self.hidden(self.gap(self.conv2(x))))

    return SubclassedNet


def subclassed(sample):
    """``(weights=None) -> model``: the subclassed model for ``sample``-shaped inputs, untrained (to train it) or with
    its saved weights loaded (to convert it live)."""
    return lambda weights=None: _subclassed_class()(sample, weights)


ARCHITECTURES = {
    "MobileNet": Arch(_app("MobileNet", alpha=0.25), "image", "tf", "alpha 0.25"),
    "MobileNetV2": Arch(_app("MobileNetV2", alpha=0.35), "image", "tf", "alpha 0.35"),
    "MobileNetV3Small": Arch(_app("MobileNetV3Small", alpha=0.75), "image", "raw", "alpha 0.75"),
    "MobileNetV3Large": Arch(_app("MobileNetV3Large", alpha=0.75), "image", "raw", "alpha 0.75"),
    "EfficientNetB0": Arch(_app("EfficientNetB0"), "image", "raw"),
    "EfficientNetV2B0": Arch(_app("EfficientNetV2B0"), "image", "raw"),
    "ResNet50": Arch(_app("ResNet50"), "image", "caffe"),
    "DenseNet121": Arch(_app("DenseNet121"), "image", "torch"),
    "NASNetMobile": Arch(_app("NASNetMobile"), "image", "tf"),
    "ConvNeXtTiny": Arch(_app("ConvNeXtTiny"), "image", "raw"),
    "kws-conv1d": Arch(kws_conv1d, "sequence", None, "Conv1D x3, [28, 28]"),
    "lstm-gru": Arch(lstm_gru, "sequence", None, "LSTM 48 + GRU 48, [28, 28]"),
    "transformer": Arch(tiny_transformer, "sequence", None, "1 block, 4 heads, [28, 28]"),
    "two-outputs": Arch(two_outputs, "two-heads", "unit", "digit (10) + parity (2) heads", task="two-heads"),
    "legacy-h5": Arch(None, "image", "unit", "tf_keras CNN saved as .h5"),
    "autoencoder-ad": Arch(anomaly_autoencoder, "anomaly", None, "conv AE, 8-value bottleneck; normal: digits 0-4",
                           task="anomaly"),
    "unet-seg": Arch(unet_segmenter, "segmentation", "unit", "U-Net, 3 classes per pixel, [32, 32]", task="segment"),
    "keypoints": Arch(keypoint_regressor, "keypoints", "unit", "centre of mass [2]", task="keypoints"),
    "subclassed": Arch(subclassed((32, 32, 3)), "image", "unit", "subclassed Conv2D, weights loaded in __init__",
                       live=subclassed((32, 32, 3))),
    "subclassed-seq": Arch(subclassed((28, 28)), "sequence", None, "subclassed Conv1D on [28, 28] sequences",
                           live=subclassed((28, 28))),
}


# -- data ---------------------------------------------------------------------------------


KINDS = ("image", "sequence", "two-heads", "anomaly", "segmentation", "keypoints")
NORMAL_DIGITS = 5  # anomaly detection: digits below this are normal (the autoencoder's training), the rest anomalies


def write_datasets(folder: Path, train: int, test: int, mnist: Path = SHARED_MNIST) -> dict:
    """One .npz per kind of data, from MNIST (see :func:`dataset_arrays`)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / f"{kind}-{train}-{test}.npz" for kind in KINDS}
    if all(path.is_file() for path in paths.values()):
        return paths
    with np.load(mnist) as data:
        splits = {"train": (data["x_train"], data["y_train"], train), "test": (data["x_test"], data["y_test"], test)}
        for kind, arrays in dataset_arrays(splits).items():
            partial = paths[kind].with_name(f".{paths[kind].stem}.{os.getpid()}.partial.npz")
            np.savez(partial, **arrays)
            os.replace(partial, paths[kind])  # concurrent runs never read a half-written file
    return paths


def dataset_arrays(splits: dict) -> dict:
    """``{kind: arrays}`` from ``{split: (MNIST images, labels, count)}``:

    * ``image``: the first ``count`` digits, uint8 32 x 32 x 3, y the class ids; ``sequence``: the same as float32
      28 x 28 in 0..1 (28 steps of 28 features);
    * ``two-heads``: ``image``'s x with ``y_<split>_digit`` and ``y_<split>_parity`` (the digit modulo 2);
    * ``anomaly``: float32 28 x 28 x 1 digits in 0..1; train: ``count`` normal digits (below NORMAL_DIGITS), y all 0;
      test: half normal, half other digits, y 0/1 (one anomaly label per sample);
    * ``segmentation``: ``image``'s x, y [32, 32] class ids per pixel: 0 background, 1 stroke of a digit 0-4,
      2 stroke of a digit 5-9 (stroke: resized pixel >= 128);
    * ``keypoints``: the digit shrunk to 20 x 20 at a seeded random place of a black 32 x 32 x 3 uint8 image, y its
      centre of mass (x, y) in 0..1 of the image, float32 [2].
    """
    import tensorflow as tf

    def resized(x, size):
        scaled = tf.image.resize(x[..., None].astype(np.float32), (size, size)).numpy()
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)

    kinds = {kind: {} for kind in KINDS}
    for split, (x_all, y_all, count) in splits.items():
        x, y = x_all[:count], y_all[:count].astype(np.int64)
        image = np.repeat(resized(x, 32), 3, axis=-1)
        kinds["image"].update({f"x_{split}": image, f"y_{split}": y})
        kinds["sequence"].update({f"x_{split}": x.astype(np.float32) / 255.0, f"y_{split}": y})
        kinds["two-heads"].update({f"x_{split}": image, f"y_{split}_digit": y, f"y_{split}_parity": y % 2})
        normal = np.flatnonzero(y_all < NORMAL_DIGITS)
        if split == "train":
            picked, labels = normal[:count], np.zeros(count, np.int64)
        else:
            anomalous = np.flatnonzero(y_all >= NORMAL_DIGITS)
            picked = np.concatenate([normal[:count - count // 2], anomalous[:count // 2]])
            labels = np.repeat(np.array([0, 1], np.int64), [count - count // 2, count // 2])
        kinds["anomaly"].update({f"x_{split}": x_all[picked][..., None].astype(np.float32) / 255.0,
                                 f"y_{split}": labels})
        stroke = image[..., 0] >= 128
        kinds["segmentation"].update({f"x_{split}": image,
                                      f"y_{split}": (stroke * (1 + (y >= NORMAL_DIGITS))[:, None, None]).astype(
                                          np.int64)})
        small = resized(x, 20)[..., 0]
        rng = np.random.default_rng(0 if split == "train" else 1)
        canvas, centres = np.zeros((count, 32, 32), np.uint8), np.zeros((count, 2), np.float32)
        rows, columns = np.mgrid[0:20, 0:20]
        for i, (top, left) in enumerate(rng.integers(0, 13, size=(count, 2))):
            canvas[i, top:top + 20, left:left + 20] = small[i]
            mass = small[i].astype(np.float64) + 1e-6
            centres[i] = ((left + 0.5 + (mass * columns).sum() / mass.sum()) / 32,
                          (top + 0.5 + (mass * rows).sum() / mass.sum()) / 32)
        kinds["keypoints"].update({f"x_{split}": np.repeat(canvas[..., None], 3, axis=-1), f"y_{split}": centres})
    return kinds


def training_arrays(npz: Path, preset: str | None):
    """``x_train, y_train, x_test, y_test``; y as one array, or ``{name: array}`` for targets per output."""
    with np.load(npz) as data:
        x_train, x_test = data["x_train"], data["x_test"]
        if "y_train" in data:
            y_train, y_test = data["y_train"], data["y_test"]
        else:
            names = [key[len("y_train_"):] for key in data.files if key.startswith("y_train_")]
            y_train, y_test = ({name: data[f"y_{split}_{name}"] for name in names} for split in ("train", "test"))
    if preset is not None:
        x_train, x_test = preprocessed(x_train, preset), preprocessed(x_test, preset)
    return x_train, y_train, x_test, y_test


# -- source models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceTraining:
    """How a source model is trained: to a plateau (early stopping on a validation split held out of its training
    images, the best epoch's weights kept, at most ``max_epochs``), or for exactly ``max_epochs`` when
    ``patience`` is 0 (how the tables before session 11 were made)."""

    max_epochs: int
    patience: int = 3  # epochs without a better validation accuracy before stopping; 0: fixed epochs
    val_fraction: float = 0.1  # of the training images, held out to decide when to stop

    @property
    def plateau(self) -> bool:
        return self.patience > 0

    def key(self) -> str:
        """The part of the cache file name that says how the model was trained (fixed: the old names)."""
        if not self.plateau:
            return f"e{self.max_epochs}"
        return f"plateau-e{self.max_epochs}-p{self.patience}-v{round(100 * self.val_fraction)}pc"  # no "." in it

    def settings(self) -> dict:
        return {"mode": "plateau" if self.plateau else "fixed", "max_epochs": self.max_epochs,
                "patience": self.patience, "val_fraction": self.val_fraction if self.plateau else 0.0}


def source_model(name: str, npz: Path, cache: Path, training: SourceTraining, train: int) -> tuple:
    """The trained source model file (cached, keyed on ``training``) and what its training measured."""
    arch = ARCHITECTURES[name]
    cache.mkdir(parents=True, exist_ok=True)
    stem = cache / f"{name}-n{train}-{training.key()}"
    path = stem.with_suffix(".h5" if arch.build is None else ".weights.h5" if arch.live else ".keras")
    info_file = stem.with_suffix(".json")
    cached = cached_source(path, info_file, training)
    if cached is not None:
        return path, cached
    started = time.perf_counter()
    if arch.build is None:
        fit = train_legacy_h5(npz, path, training)
        import keras

        model = keras.models.load_model(path, compile=False)
    else:
        model, fit = train_keras(arch, npz, training)
        if arch.live:  # weights only (a subclassed model's code builds it)
            partial = path.with_name(f".{path.name.split('.')[0]}.partial.weights.h5")
            model.save_weights(partial)
        else:
            partial = path.with_name(f".{path.stem}.partial.keras")
            model.save(partial)
        os.replace(partial, path)
    _, _, x_test, y_test = training_arrays(npz, arch.preset)
    scores = source_scores(arch.task, model, x_test, y_test)
    info = {"accuracy": scores.get("accuracy", scores.get("digit accuracy")), "scores": scores,
            "train_seconds": round(time.perf_counter() - started, 1), "params": int(model.count_params()),
            "training": {**training.settings(), **fit}}
    atomic_write_json(info_file, info)  # concurrent runs never read a half-written file
    return path, info


def cached_source(path: Path, info_file: Path, training: SourceTraining):
    """The cached model's record, if it was trained as ``training`` says (else None: train it again)."""
    if not (path.is_file() and info_file.is_file()):
        return None
    info = json.loads(info_file.read_text())
    return info if same_training(info, training) else None


def same_training(info: dict, training: SourceTraining) -> bool:
    """Whether a source's record says it was trained as ``training`` says.

    A record without ``training`` is from before plateau training: a fixed number of epochs.

    >>> same_training({"accuracy": 0.9}, SourceTraining(5, patience=0)), same_training({}, SourceTraining(30))
    (True, False)
    """
    recorded = info.get("training", {"mode": "fixed", "max_epochs": training.max_epochs, "patience": 0})
    wanted = training.settings()
    keys = ("mode", "max_epochs", "patience", "val_fraction") if training.plateau else ("mode", "max_epochs")
    return all(recorded.get(key) == wanted[key] for key in keys)


def train_legacy_h5(npz: Path, path: Path, training: SourceTraining) -> dict:
    """The legacy model, trained and saved as .h5 by tf_keras in a child process; what its training measured."""
    partial = path.with_name(f".{path.stem}.partial.h5")
    fit_file = path.with_name(f".{path.stem}.fit.json")
    subprocess.run([sys.executable, "-c", LEGACY_H5_SCRIPT, str(npz), str(partial), str(training.max_epochs),
                    str(training.patience), str(training.val_fraction), str(fit_file)], check=True)
    os.replace(partial, path)
    fit = json.loads(fit_file.read_text())
    fit_file.unlink()
    return fit


def validation_split(count: int, fraction: float, seed: int = 0) -> tuple:
    """Indices ``(fit, validation)``: a seeded ``fraction`` of ``count`` held out (none when ``fraction`` is 0).

    >>> fit, held = validation_split(10, 0.2)
    >>> len(fit), len(held), sorted(set(fit) | set(held)) == list(range(10))
    (8, 2, True)
    """
    order = np.random.default_rng(seed).permutation(count)
    held = int(round(count * fraction))
    return np.sort(order[held:]), np.sort(order[:held])


def train_to_plateau(fit_epoch, score, snapshot, restore, max_epochs: int, patience: int) -> dict:
    """Train one epoch at a time until ``patience`` epochs bring no better ``score()``, or ``max_epochs``; then
    ``restore`` the best epoch's ``snapshot()``. Returns the epochs run, the best epoch (1-based) and its score.

    >>> scores = iter([0.5, 0.7, 0.6, 0.65, 0.7, 0.9])
    >>> train_to_plateau(lambda: None, lambda: next(scores), lambda: None, lambda kept: None, 30, 3)
    {'epochs_run': 5, 'best_epoch': 2, 'val_accuracy': 0.7, 'stopped': 'plateau'}
    """
    best, best_epoch, kept, epoch = None, 0, None, 0
    for epoch in range(1, max_epochs + 1):
        fit_epoch()
        value = score()
        if best is None or value > best:
            best, best_epoch, kept = value, epoch, snapshot()
        elif epoch - best_epoch >= patience:
            break
    restore(kept)
    stopped = "plateau" if epoch - best_epoch >= patience else "max epochs"
    return {"epochs_run": epoch, "best_epoch": best_epoch, "val_accuracy": best, "stopped": stopped}


def train_keras(arch: Arch, npz: Path, training: SourceTraining) -> tuple:
    """The model ``arch`` builds, trained as ``training`` says on its task's targets and loss, and what its
    training measured."""
    import keras

    keras.utils.set_random_seed(0)
    model = arch.build()
    x_train, y_train, _, _ = training_arrays(npz, arch.preset)
    fit, held = validation_split(len(x_train), training.val_fraction if training.plateau else 0.0)
    x_fit, y_fit, x_val, y_val = x_train[fit], _take(y_train, fit), x_train[held], _take(y_train, held)
    targets, losses = TASKS[arch.task]["fit"](x_fit, y_fit)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), losses)
    if not training.plateau:
        model.fit(x_fit, targets, batch_size=BATCH, epochs=training.max_epochs, shuffle=True, verbose=0)
        reestimate_batchnorm(model, x_fit)
        return model, {"epochs_run": training.max_epochs}

    def score():  # BatchNorm statistics re-estimated first: a stale moving average would decide the stop
        reestimate_batchnorm(model, x_fit)
        return TASKS[arch.task]["validate"](model, x_val, y_val)

    fit_info = train_to_plateau(
        lambda: model.fit(x_fit, targets, batch_size=BATCH, epochs=1, shuffle=True, verbose=0), score,
        model.get_weights, model.set_weights, training.max_epochs, training.patience)
    return model, fit_info


def _take(y, rows):
    """Rows of targets: one array, or ``{output: array}``."""
    return {name: values[rows] for name, values in y.items()} if isinstance(y, dict) else y[rows]


def _predict(model, x):
    """The model's outputs on ``x`` in batches: one array, or a list of one per output."""
    batches = [model(x[i:i + 256], training=False) for i in range(0, len(x), 256)]
    if isinstance(batches[0], (list, tuple)):
        return [np.concatenate([np.asarray(b[k]) for b in batches]) for k in range(len(batches[0]))]
    return np.concatenate([np.asarray(b) for b in batches])


def _metric(name: str, targets, outputs) -> float:
    from edgesmith.converters.metrics import score

    return score(name, targets, outputs)


def _reconstruction_auc(model, x, labels) -> float:
    from edgesmith.converters.metrics import anomaly_scores

    return _metric("auc", labels, anomaly_scores(_predict(model, x), x))


# per task: the Keras targets and losses, the validation score training stops on (higher is better; anomaly
# detection's validation split holds normal samples only, so its negative reconstruction error) and the test scores
TASKS = {
    "classify": {
        "fit": lambda x, y: (y, "sparse_categorical_crossentropy"),
        "validate": lambda model, x, y: _accuracy(model, x, y),
        "test": lambda model, x, y: {"accuracy": _accuracy(model, x, y)}},
    "two-heads": {
        "fit": lambda x, y: ([y["digit"], y["parity"]], ["sparse_categorical_crossentropy"] * 2),
        "validate": lambda model, x, y: float(np.mean(list(_head_accuracies(model, x, y).values()))),
        "test": lambda model, x, y: {f"{name} accuracy": value for name, value in _head_accuracies(model, x, y).items()}},
    "anomaly": {
        "fit": lambda x, y: (x, "mse"),
        "validate": lambda model, x, y: -_metric("mse", x, _predict(model, x)),
        "test": lambda model, x, y: {"auc": _reconstruction_auc(model, x, y)}},
    "segment": {
        "fit": lambda x, y: (y, "sparse_categorical_crossentropy"),
        "validate": lambda model, x, y: _metric("miou", y, _predict(model, x)),
        "test": lambda model, x, y: {"miou": _metric("miou", y, _predict(model, x))}},
    "keypoints": {
        "fit": lambda x, y: (y, "mse"),
        "validate": lambda model, x, y: -_metric("mse", y, _predict(model, x)),
        "test": lambda model, x, y: {"mse": _metric("mse", y, _predict(model, x))}},
}


def _head_accuracies(model, x, y: dict) -> dict:
    return {name: float(np.mean(outputs.argmax(-1) == y[name])) for name, outputs in zip(y, _predict(model, x))}


def source_scores(task: str, model, x, y) -> dict:
    """The source's scores on the test split, by its task (``{"accuracy": ...}``, ``{"auc": ...}``, ...)."""
    return {name: round(float(value), 4) for name, value in TASKS[task]["test"](model, x, y).items()}


def reestimate_batchnorm(model, x: np.ndarray, batches: int = 50) -> None:
    """Replace BatchNorm moving statistics by their average over ``batches`` training batches.

    Momentum i / (i + 1) on batch i makes the moving value the plain mean of the batches seen, with nothing
    left of the stale value (a fixed momentum keeps a fraction of it, and after a short training with
    momentum 0.999 that value can be orders of magnitude off). The layers' momentum is restored afterwards.
    """
    import keras

    norms = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    kept = [layer.momentum for layer in norms]
    order = np.random.default_rng(1).permutation(len(x))
    for i in range(batches):
        for layer in norms:
            layer.momentum = i / (i + 1)
        picked = order[(i * BATCH) % len(x):][:BATCH]
        model(x[picked], training=True)
    for layer, value in zip(norms, kept):
        layer.momentum = value


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _accuracy(model, x, y) -> float:
    outputs = [model(x[i:i + 256], training=False) for i in range(0, len(x), 256)]
    first = [np.asarray(o[0] if isinstance(o, (list, tuple)) else o) for o in outputs]
    return float(np.mean(np.concatenate(first).argmax(-1) == y))


# -- recipes and cells -----------------------------------------------------------------------------


def recipe_with_budget(name: str, max_epochs: int | None):
    """The built-in recipe, with every pass's ``epochs`` option capped at ``max_epochs`` (None = as shipped)."""
    from edgesmith.recipes import load_recipe, recipe_from_dict

    recipe = load_recipe(name)
    if max_epochs is None:
        return recipe
    table = recipe.as_dict()
    for step in table["passes"]:
        if "epochs" in step:
            step["epochs"] = min(step["epochs"], max_epochs)
    return recipe_from_dict(table)


def run_cell(model_path, recipe, npz: Path, out: Path, preset) -> dict:
    """One cell: verified / budget missed / refused / crash, with its numbers and wall time. ``model_path``: a
    model file, or a live keras.Model (given to ``edgesmith.convert`` as it is)."""
    from edgesmith import convert
    from edgesmith.converters.errors import AccuracyDropError
    from edgesmith.runtime.errors import EdgesmithError

    out.mkdir(parents=True, exist_ok=True)
    cell, trace = {"status": "verified", "error": None}, None
    started = time.perf_counter()
    try:
        report = convert(model_path, recipe, str(npz), out, preprocess=preset)
    except AccuracyDropError as error:
        cell.update(status="budget missed", error=str(error))
        report = error.report
    except EdgesmithError as error:
        cell.update(status="refused", error=f"{type(error).__name__}: {error}")
        report, trace = None, traceback.format_exc()
    except Exception as error:  # noqa: BLE001 -- anything else is the defect this matrix exists to find
        lines = str(error).strip().splitlines()
        cell.update(status="crash", error=f"CRASH: {type(error).__name__}: {lines[0][:300] if lines else ''}")
        report, trace = None, traceback.format_exc()
    cell["seconds"] = round(time.perf_counter() - started, 1)
    if trace:
        (out / "traceback.txt").write_text(trace)
    if report is not None:
        cell.update(report_numbers(report, out))
    return cell


def report_numbers(report, out: Path) -> dict:
    """A cell's numbers from the run's report: sizes (raw, then gzip), accuracies, the budget, and where
    present the verification's verdict and the walk-back (what was tried and which recipe was delivered)."""
    data = report.to_dict()
    checked = data["verification"]
    numbers = {key: data.get(key) for key in ("tflite_path", "tflite_bytes", "tflite_gzip_bytes", "float_tflite_bytes",
                                             "source_accuracy", "float_layers")}
    numbers.update({key: checked.get(key) for key in ("keras_accuracy", "tflite_accuracy", "top1_agreement",
                                                      "accuracy_drop_pt", "verdict", "drop_ci95_pt",
                                                      "samples_needed")})
    numbers["budget_pt"] = data["recipe"].get("max_accuracy_drop")
    numbers["outputs"] = [{key: check.get(key) for key in OUTPUT_KEYS} for check in checked.get("outputs") or []]
    walk = data.get("walk_back") or _plain(getattr(report, "walk_back", None)) or written_walk_back(out)
    if walk:
        numbers["walk_back"] = {"chosen": walk.get("chosen"), "steps": walk.get("steps", [])}
    return numbers


OUTPUT_KEYS = ("name", "shape", "metric", "source_score", "tflite_score", "change", "budget", "verdict", "snr_db",
               "top1_agreement")


def worsening(check: dict):
    """How much worse the .tflite scores than the source on an output, in its budget's unit (pt, %, dB, absolute;
    negative: better); None for an output without targets."""
    from edgesmith.converters.metrics import METRICS

    if check.get("metric") is None or check.get("source_score") is None:
        return None
    return METRICS[check["metric"]].worsening(check["source_score"], check["tflite_score"])


def budget_unit(check: dict) -> str:
    """The unit of an output's budget: pt, %, dB, or none (auc, cosine); dB of SNR for an output without targets."""
    from edgesmith.converters.metrics import METRICS

    return "dB SNR" if check.get("metric") is None else METRICS[check["metric"]].unit


def output_text(check: dict) -> str:
    """One output's check in a line: ``digit: accuracy 0.982 -> 0.978 (worse by 0.4 pt; budget 1 pt): holds``,
    or for an output without targets its SNR against the source model's.

    >>> output_text({"name": "out", "metric": "mse", "source_score": 0.01, "tflite_score": 0.0105, "change": 0.0005,
    ...              "budget": 10.0, "verdict": "holds"})
    'out: mse 0.01 -> 0.0105 (worse by 5 %; budget 10 %): holds'
    """
    if check.get("metric") is None:
        return (f"{check['name']}: SNR {_number(check.get('snr_db'), '{:.1f}')} dB (minimum "
                f"{_number(check.get('budget'), '{:g}')} dB): {check.get('verdict')}")
    unit = budget_unit(check)
    space = " " if unit else ""
    return (f"{check['name']}: {check['metric']} {check['source_score']:.4g} -> {check['tflite_score']:.4g} "
            f"(worse by {worsening(check):.3g}{space}{unit}; budget {_number(check.get('budget'), '{:g}')}{space}{unit}): "
            f"{check.get('verdict')}")


def _plain(value):
    """A dataclass as its dict; anything else as it is."""
    import dataclasses

    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def written_walk_back(out: Path):
    """The ``walk_back`` entry of the report.json the run wrote in ``out``, if any."""
    written = out / "report.json"
    return json.loads(written.read_text()).get("walk_back") if written.is_file() else None


def run_row(name: str, recipes: list, args, on_cell=None) -> dict:
    """Train (or load) model ``name``, then run every recipe on it; ``on_cell(recipe, cell)`` as they finish."""
    import keras

    arch = ARCHITECTURES[name]
    out = Path(args.out)
    npz = write_datasets(out / "data", args.train_samples, args.test_samples)[arch.data]
    training = write_datasets(out / "data", args.source_train_samples, args.test_samples)[arch.data]
    started = time.perf_counter()
    try:
        path, source = source_model(name, training, Path(args.cache), source_training(name, args),
                                    args.source_train_samples)
    except Exception as error:  # noqa: BLE001 -- the benchmark's own failure: every cell says so
        lines = str(error).strip().splitlines()
        failed = {"status": "crash", "error": f"SOURCE FAILED: {type(error).__name__}: {lines[0] if lines else ''}"}
        return {"source": None, "cells": {recipe: dict(failed) for recipe in recipes}}
    row = {"source": {**source, "seconds": round(time.perf_counter() - started, 1), "file": str(path)}, "cells": {}}
    if on_cell:
        on_cell(None, row["source"])
    for recipe in recipes:
        keras.backend.clear_session()
        model = arch.live(str(path)) if arch.live else path  # a live keras.Model, built by its own code
        cell = run_cell(model, recipe_with_budget(recipe, args.max_recipe_epochs), npz, out / name / recipe,
                        arch.preset)
        row["cells"][recipe] = cell
        if on_cell:
            on_cell(recipe, cell)
    return row


def run_row_isolated(name: str, recipes: list, args, argv: list) -> dict:
    """``run_row`` in a child process; cells it did not report (hard crash, timeout) say so."""
    lines = Path(args.out) / name / "cells.jsonl"
    lines.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, *argv, "--child-row", name]
    try:
        finished = subprocess.run(command, timeout=args.row_timeout)
        ending = None if finished.returncode == 0 else f"CRASH: child process exited with {finished.returncode}"
    except subprocess.TimeoutExpired:
        ending = f"TIMEOUT: row exceeded --row-timeout {args.row_timeout} s"
    return read_row(name, recipes, args, ending or "CRASH: no result")


def read_row(name: str, recipes: list, args, missing: str = "not run") -> dict:
    """The row a child process wrote to ``OUT/NAME/cells.jsonl``; cells it has not written say ``missing``
    (status "timeout" or "not run", else "crash")."""
    lines = Path(args.out) / name / "cells.jsonl"
    row = {"source": None, "cells": {}}
    if lines.is_file():
        for line in lines.read_text().splitlines():
            entry = json.loads(line)
            if entry["recipe"] is None:
                row["source"] = entry["cell"]
            else:
                row["cells"][entry["recipe"]] = entry["cell"]
    status = "timeout" if missing.startswith("TIMEOUT") else "not run" if missing == "not run" else "crash"
    for recipe in recipes:
        row["cells"].setdefault(recipe, {"status": status, "error": missing})
    return row


def source_training(name: str, args) -> SourceTraining:
    return SourceTraining(args.epochs_of.get(name, args.epochs_of[None]), args.source_patience,
                          args.source_val_fraction)


# -- latency: every .tflite of a row, interleaved, with the timing code of `edgesmith bench` ----------------


def interleaved_p50(paths: dict, measure, rounds: int) -> dict:
    """``{recipe: [p50 of each round]}``: each round measures every file once, round ``r`` starting at the
    ``r``-th file, so every file is timed beside the others and the machine's noise is shared.

    >>> seen = []
    >>> interleaved_p50({"a": 1, "b": 2}, lambda path: seen.append(path) or float(path), 2)
    {'a': [1.0, 1.0], 'b': [2.0, 2.0]}
    >>> seen
    [1, 2, 2, 1]
    """
    names = list(paths)
    measured = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            measured[name].append(measure(paths[name]))
    return measured


def tflite_files(name: str, row: dict, args) -> dict:
    """``{recipe: path}`` of the row's cells that wrote a .tflite (verified or over budget)."""
    found = {}
    for recipe, cell in row["cells"].items():
        path = Path(cell.get("tflite_path") or Path(args.out) / name / recipe / "model.tflite")
        if cell.get("tflite_bytes") and path.is_file():
            found[recipe] = path
    return found


def bench_settings(args) -> dict:
    return {"threads": args.bench_threads, "runs": args.bench_runs, "warmup": args.bench_warmup,
            "rounds": args.bench_rounds, "energy": "none"}


def row_latency(name: str, row: dict, args) -> dict | None:
    """p50 latency of every .tflite of the row, measured in one pass (kept in ``OUT/NAME/latency.json`` and
    measured again when a file or a setting changed)."""
    from edgesmith.runtime.bench import benchmark

    paths = tflite_files(name, row, args)
    if not paths:
        return None
    files = {recipe: {"path": str(path), "bytes": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns}
             for recipe, path in paths.items()}
    kept = Path(args.out) / name / "latency.json"
    if kept.is_file():
        earlier = json.loads(kept.read_text())
        if earlier["files"] == files and earlier["settings"] == bench_settings(args):
            return earlier

    def measure(path):
        summary = benchmark(path, threads=args.bench_threads, runs=args.bench_runs, warmup=args.bench_warmup,
                            energy="none")["summary"]
        return summary["latency_ms"]["p50"]

    started = time.perf_counter()
    rounds = interleaved_p50(paths, measure, args.bench_rounds)
    result = {"settings": bench_settings(args), "files": files, "p50_rounds_ms": rounds,
              "p50_ms": {recipe: float(np.median(values)) for recipe, values in rounds.items()},
              "seconds": round(time.perf_counter() - started, 1)}
    atomic_write_json(kept, result)
    return result


def attach_latency(name: str, row: dict, args) -> None:
    """Put each cell's p50 (the median over the rounds) into the row's cells."""
    measured = row_latency(name, row, args)
    row["latency"] = measured and {key: measured[key] for key in ("settings", "seconds")}
    for recipe, cell in row["cells"].items():
        if measured and recipe in measured["p50_ms"]:
            cell["p50_ms"] = measured["p50_ms"][recipe]
            cell["p50_rounds_ms"] = measured["p50_rounds_ms"][recipe]


# -- presenting ---------------------------------------------------------------------------------------


BASELINE = "int8-ptq"  # the ratio columns divide by this recipe's cell of the same row


@dataclass(frozen=True)
class Target:
    """What the issue asks of a recipe: within ``max_drop_pt`` and at most ``max_ratio`` times int8-ptq's
    ``key`` (raw bytes or p50) on ``rows_needed`` of the rows; a row counts when any of ``recipes`` meets it."""

    name: str
    recipes: tuple
    max_drop_pt: float
    key: str  # "tflite_bytes" or "p50_ms"
    max_ratio: float
    rows_needed: int
    of_rows: int


TARGETS = (
    Target("size", ("max-compression", "raw-size-int4"), 1.0, "tflite_bytes", 0.6, 5, 6),
    Target("speed", ("fast-int8",), 1.5, "p50_ms", 0.75, 4, 6),
)


def ratio(row: dict, recipe: str, key: str):
    """The cell's ``key`` over int8-ptq's in the same row (None when either is missing). For p50, the median of
    the ratios within each round of the latency pass, where both files ran side by side under the same load.

    >>> cells = {"int8-ptq": {"p50_ms": 2.0, "p50_rounds_ms": [2.0, 4.0, 2.0]},
    ...          "fast-int8": {"p50_ms": 2.0, "p50_rounds_ms": [1.0, 2.0, 4.0]}}
    >>> ratio({"cells": cells}, "fast-int8", "p50_ms")
    0.5
    """
    cell, base = row["cells"].get(recipe, {}), row["cells"].get(BASELINE, {})
    if cell.get(key) is None or not base.get(key):
        return None
    rounds, base_rounds = cell.get("p50_rounds_ms"), base.get("p50_rounds_ms")
    if key == "p50_ms" and rounds and base_rounds and len(rounds) == len(base_rounds):
        return float(np.median([mine / theirs for mine, theirs in zip(rounds, base_rounds)]))
    return cell[key] / base[key]


def delivered(cell: dict) -> bool:
    """The pipeline returned a model (exit 0): verified, possibly after walking back."""
    return cell["status"] == "verified" and cell.get("accuracy_drop_pt") is not None


def over_budget_delivered(cell: dict) -> bool:
    """A model returned with exit 0 although its drop exceeds the recipe's budget (the defect to count)."""
    budget = cell.get("budget_pt")
    return delivered(cell) and budget is not None and cell["accuracy_drop_pt"] > budget + 1e-9


def size_text(cell: dict) -> str:
    """Raw KiB first, gzip second (older cells have no gzip size; a miss whose error carried no report: no size)."""
    if cell.get("tflite_bytes") is None:
        return "- KiB"
    gzip = cell.get("tflite_gzip_bytes")
    return f"{cell['tflite_bytes'] / 1024:,.0f} KiB" + (f" ({gzip / 1024:,.0f} gz)" if gzip else "")


def cell_notes(cell: dict, status: bool = True) -> str:
    """`` (walked back to X; budget missed; unresolved)``: what a bare drop would hide (``status``: say
    "budget missed" too)."""
    notes = []
    if cell.get("walk_back"):
        notes.append(f"walked back to {cell['walk_back'].get('chosen')}")
    if status and cell["status"] == "budget missed":
        notes.append("budget missed")
    if cell.get("verdict") == "unresolved":
        notes.append("unresolved")
    return f" ({'; '.join(notes)})" if notes else ""


def cell_text(cell: dict, width: int = 60) -> str:
    """``raw KiB (gzip) / drop pt / agree %`` and its notes, or ``refused: <reason>``, or the crash."""
    if cell["status"] == "budget missed" and cell.get("tflite_bytes") is None:  # the error carried no report
        text = f"budget missed (no report): {cell['error']}"
        return text if len(text) <= width else text[: width - 3] + "..."
    if cell["status"] in ("verified", "budget missed") and cell.get("accuracy_drop_pt") is None:
        return f"{size_text(cell)} / {outputs_short(cell)}" + cell_notes(cell)  # outputs scored one by one
    if cell["status"] in ("verified", "budget missed"):
        text = f"{size_text(cell)} / {cell['accuracy_drop_pt']:+.1f} pt / {100 * cell['top1_agreement']:.1f} %"
        return text + cell_notes(cell)
    text = f"refused: {cell['error']}" if cell["status"] == "refused" else cell["error"]
    return text if len(text) <= width else text[: width - 3] + "..."


def outputs_short(cell: dict) -> str:
    """Each output's worsening in its budget's unit: ``digit accuracy +0.4 pt, parity accuracy +0.0 pt`` (an output
    without targets: its SNR).

    >>> outputs_short({"outputs": [{"name": "mask", "metric": "miou", "source_score": 0.8, "tflite_score": 0.79},
    ...                            {"name": "aux", "snr_db": 31.25}]})
    'mask miou +1 pt, aux SNR 31.2 dB'
    """
    parts = []
    for check in cell.get("outputs") or []:
        if check.get("metric") is None:
            parts.append(f"{check['name']} SNR {check['snr_db']:.1f} dB")
        else:
            unit = budget_unit(check)
            parts.append(f"{check['name']} {check['metric']} {worsening(check):+.3g}{' ' if unit else ''}{unit}")
    return ", ".join(parts) or "-"


def source_score_text(source: dict | None) -> str:
    """The source model's test score(s): ``98.1 %`` (accuracy), ``auc 0.9312``, ``digit 98.1 % / parity 99.0 %``."""
    if not source:
        return "-"
    scores = source.get("scores") or {"accuracy": source.get("accuracy")}
    if list(scores) == ["accuracy"]:
        return _number(scores["accuracy"] and 100 * scores["accuracy"], "{:.1f} %")
    return " / ".join(f"{name.replace(' accuracy', '')} {100 * value:.1f} %" if "accuracy" in name
                      else f"{name} {value:.4g}" for name, value in scores.items())


def markdown_table(matrix: dict, recipes: list, width: int = 60) -> str:
    header = ["model", "source score", *recipes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in matrix.items():
        accuracy = source_score_text(row["source"])
        cells = [cell_text(row["cells"][recipe], width).replace("|", "/") for recipe in recipes]
        lines.append("| " + " | ".join([name, accuracy, *cells]) + " |")
    return "\n".join(lines)


def _number(value, form: str) -> str:
    return "-" if value is None else form.format(value)


def cell_row(name: str, recipe: str, row: dict) -> list:
    """One line of the cells table (see :func:`cells_table`)."""
    cell = row["cells"][recipe]
    if cell["status"] not in ("verified", "budget missed") or cell.get("tflite_bytes") is None:
        outcome = cell_text(cell, 48).replace("|", "/")
        return [name, recipe, outcome, *["-"] * 7, _number(cell.get("seconds"), "{:.0f}")]
    if cell.get("accuracy_drop_pt") is None:  # outputs scored one by one: the outputs table has them
        drop = outputs_short(cell)
    else:
        drop = f"{cell['accuracy_drop_pt']:+.1f}" + _number(cell.get("budget_pt"), " ({:g})")
    return [name, recipe, cell["status"] + cell_notes(cell, status=False), _number(cell["tflite_bytes"] / 1024, "{:,.0f}"),
            _number(cell.get("tflite_gzip_bytes") and cell["tflite_gzip_bytes"] / 1024, "{:,.0f}"), drop,
            _number(cell.get("top1_agreement") and 100 * cell["top1_agreement"], "{:.1f}"),
            _number(ratio(row, recipe, "tflite_bytes"), "{:.2f}x"), _number(cell.get("p50_ms"), "{:.3f}"),
            _number(ratio(row, recipe, "p50_ms"), "{:.2f}x"), _number(cell.get("seconds"), "{:.0f}")]


def cells_table(matrix: dict, recipes: list) -> str:
    """One line per cell: sizes (raw, then gzip), drop and budget, agreement, size and p50 relative to the
    same row's int8-ptq cell, p50, and the cell's wall time."""
    header = ["model", "recipe", "outcome", "raw KiB", "gzip KiB", "drop pt (budget)", "agree %",
              f"raw / {BASELINE}", "p50 ms", f"p50 / {BASELINE}", "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in matrix.items():
        lines += ["| " + " | ".join(cell_row(name, recipe, row)) + " |" for recipe in recipes]
    return "\n".join(lines)


def outputs_table(matrix: dict, recipes: list) -> str:
    """One line per output of each cell that scored its outputs one by one: the metric, the source's and the
    .tflite's scores, the change (.tflite - source, in the metric's units), how much worse that is in the budget's
    unit and the budget, the verdict."""
    header = ["model", "recipe", "outcome", "raw bytes", "output", "metric", "source", ".tflite", "change",
              "worse by (budget)", "verdict", "wall s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in matrix.items():
        for recipe in recipes:
            cell = row["cells"].get(recipe, {"status": "not run", "error": "not run"})
            if not cell.get("outputs"):
                if cell["status"] not in ("verified", "budget missed") or cell.get("tflite_bytes") is None:
                    lines.append("| " + " | ".join([name, recipe, cell_text(cell, 70).replace("|", "/"), *["-"] * 8,
                                                    _number(cell.get("seconds"), "{:.0f}")]) + " |")
                continue
            for check in cell["outputs"]:
                unit = budget_unit(check)
                worse = ("-" if worsening(check) is None else f"{worsening(check):+.3g}") + \
                    _number(check.get("budget"), " ({:g}" + (" " if unit else "") + unit + ")")
                lines.append("| " + " | ".join([
                    name, recipe, cell["status"] + cell_notes(cell, status=False), f"{cell['tflite_bytes']:,}",
                    check["name"], check.get("metric") or "(SNR)", _number(check.get("source_score"), "{:.4g}"),
                    _number(check.get("tflite_score"), "{:.4g}"), _number(check.get("change"), "{:+.4g}"), worse,
                    check.get("verdict") or "-", _number(cell.get("seconds"), "{:.0f}")]) + " |")
    return "\n".join(lines)


def sources_table(matrix: dict) -> str:
    """How each source model was trained: test score(s) and the validation score training stopped on (accuracy;
    miou; a negative mse for regression and the autoencoder), epochs (best of run), time."""
    header = ["model", "test score", "val score", "best epoch / run", "stopped", "train s", "params"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in matrix.items():
        source = row["source"] or {}
        fit = source.get("training", {})
        epochs = f"{fit.get('best_epoch', '-')} / {fit.get('epochs_run', '-')}"
        value = fit.get("val_accuracy")
        validation = "-" if value is None else f"{100 * value:.1f} %" if 0 < value <= 1 else f"{value:.4g}"
        lines.append("| " + " | ".join([
            name, source_score_text(row["source"]), validation, epochs,
            fit.get("stopped") or fit.get("mode") or "-", _number(source.get("train_seconds"), "{:.0f}"),
            _number(source.get("params"), "{:,}")]) + " |")
    return "\n".join(lines)


def target_result(matrix: dict, target: Target) -> dict:
    """The rows where one of the target's recipes meets it: ``{row: (recipe, drop, ratio)}``."""
    met = {}
    for name, row in matrix.items():
        for recipe in target.recipes:
            cell, value = row["cells"].get(recipe, {"status": "not run"}), ratio(row, recipe, target.key)
            if delivered(cell) and value is not None and cell["accuracy_drop_pt"] <= target.max_drop_pt \
                    and value <= target.max_ratio:
                met[name] = (recipe, cell["accuracy_drop_pt"], round(value, 3))
                break
    return met


def targets_summary(matrix: dict) -> dict:
    """Each target's rows met, and the cells that returned a model over their budget with exit 0."""
    summary = {target.name: {"met": target_result(matrix, target), "rows": len(matrix),
                             "needed": f"{target.rows_needed} of {target.of_rows}"} for target in TARGETS}
    summary["over budget with exit 0"] = [f"{name} x {recipe}" for name, row in matrix.items()
                                          for recipe, cell in row["cells"].items() if over_budget_delivered(cell)]
    summary["unresolved"] = [f"{name} x {recipe}" for name, row in matrix.items()
                             for recipe, cell in row["cells"].items() if cell.get("verdict") == "unresolved"]
    return summary


def target_lines(summary: dict) -> list:
    lines = []
    for target in TARGETS:
        met = summary[target.name]["met"]
        what = "raw bytes" if target.key == "tflite_bytes" else "p50"
        rows = ", ".join(f"{name} ({recipe} {drop:+.1f} pt, {value:.2f}x)" for name, (recipe, drop, value) in met.items())
        lines.append(f"- {target.name}: {' or '.join(target.recipes)} within {target.max_drop_pt:g} pt at "
                     f"<= {target.max_ratio:g}x {BASELINE}'s {what}: {len(met)} of {summary[target.name]['rows']} "
                     f"rows (target >= {target.rows_needed} of {target.of_rows})" + (f": {rows}" if rows else ""))
    over = summary["over budget with exit 0"]
    lines.append(f"- models returned over their budget with exit 0: {len(over)} (target 0)"
                 + (f": {', '.join(over)}" if over else ""))
    if summary["unresolved"]:
        lines.append(f"- verification verdict unresolved: {', '.join(summary['unresolved'])}")
    return lines


def outcome_lines(matrix: dict) -> list:
    """Every cell that is not a plain verified one, in full, with its float layers when QAT kept some."""
    lines = []
    for name, row in matrix.items():
        for recipe, cell in row["cells"].items():
            if cell["status"] == "not run":
                continue
            if cell["status"] != "verified":
                detail = cell["error"] if cell["status"] != "refused" else f"refused: {cell['error']}"
                lines.append(f"- {name} x {recipe} ({cell['status']}): {detail}")
            elif cell.get("float_layers"):
                lines.append(f"- {name} x {recipe}: kept in float: {', '.join(cell['float_layers'])}")
    return lines


def counts(matrix: dict) -> dict:
    tally = {}
    for row in matrix.values():
        for cell in row["cells"].values():
            tally[cell["status"]] = tally.get(cell["status"], 0) + 1
    return tally


def budget_line(args) -> str:
    epochs = "as shipped" if args.max_recipe_epochs is None else f"capped at {args.max_recipe_epochs}"
    named = "".join(f", {name} {value}" for name, value in args.epochs_of.items() if name)
    if args.source_patience:
        training = (f"trained to a plateau (stopped after {args.source_patience} epochs without a better accuracy on "
                    f"{args.source_val_fraction:.0%} of their images held out, best epoch's weights kept; at most "
                    f"{args.epochs_of[None]} epochs{named})")
    else:
        training = f"trained {args.epochs_of[None]} epochs{named}"
    latency = ("p50 not measured" if args.no_latency else
               f"p50 from `edgesmith bench`'s timing ({args.bench_threads or 'default'} thread(s), "
               f"{args.bench_warmup} warm-up + {args.bench_runs} runs, median of {args.bench_rounds} interleaved rounds)")
    return (f"budget: source models {training} on {args.source_train_samples} MNIST images; the pipeline reads "
            f"{args.train_samples} training / {args.test_samples} test samples; recipe epochs {epochs}; {latency}")


# -- main ---------------------------------------------------------------------------------------------------


def source_epochs(text: str, parser) -> dict:
    """``"5,ResNet50:2"`` -> ``{None: 5, "ResNet50": 2}`` (None: every other model)."""
    epochs = {}
    for part in filter(None, text.split(",")):
        name, _, value = part.rpartition(":")
        if name and name not in ARCHITECTURES or not value.isdigit():
            parser.error(f"--source-epochs: cannot read {part!r}; give N or MODEL:N")
        epochs[name or None] = int(value)
    if None not in epochs:
        parser.error("--source-epochs needs a number for the models not named")
    return epochs


def parse_args(argv=None):
    from edgesmith.recipes import builtin_recipes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ARCHITECTURES), help="comma-separated (default: all)")
    parser.add_argument("--recipes", default=",".join(builtin_recipes()), help="comma-separated (default: all)")
    parser.add_argument("--train-samples", type=int, default=1000,
                        help="training samples in the data the pipeline reads (fine-tuning, calibration)")
    parser.add_argument("--source-train-samples", type=int, default=3000, help="to train the source models on")
    parser.add_argument("--test-samples", type=int, default=500)
    parser.add_argument("--source-epochs", default="30",
                        help="most epochs of each source model's training: N, or N,MODEL:M,... (M for those models)")
    parser.add_argument("--source-patience", type=int, default=3,
                        help="stop a source's training after this many epochs without a better validation accuracy "
                             "and keep the best epoch's weights (0: train exactly --source-epochs, no validation)")
    parser.add_argument("--source-val-fraction", type=float, default=0.1,
                        help="share of the source training images held out to decide when to stop")
    parser.add_argument("--max-recipe-epochs", type=int, default=None,
                        help="cap on every pass's epochs option (default: the recipes as shipped)")
    parser.add_argument("--bench-threads", type=int, default=1, help="interpreter threads for the p50 latency")
    parser.add_argument("--bench-runs", type=int, default=50, help="timed runs per file and round")
    parser.add_argument("--bench-warmup", type=int, default=10, help="warm-up runs per file and round")
    parser.add_argument("--bench-rounds", type=int, default=11,
                        help="rounds over a row's .tflite files (each round times every file once; median kept)")
    parser.add_argument("--no-latency", action="store_true", help="measure no latency (no p50 columns)")
    parser.add_argument("--out", default="bench-out/conformance")
    parser.add_argument("--cache", default=None, help="trained source models (default: OUT/sources)")
    parser.add_argument("--json", default=None, help="write the matrix as JSON to this file")
    parser.add_argument("--row-timeout", type=float, default=None, help="seconds per model row (child process)")
    parser.add_argument("--in-process", action="store_true", help="run every row in this process")
    parser.add_argument("--collect", action="store_true",
                        help="run nothing: print the table from the cells an earlier (interrupted) run wrote")
    parser.add_argument("--child-row", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cache = args.cache or str(Path(args.out) / "sources")
    args.epochs_of = source_epochs(args.source_epochs, parser)
    args.model_list = [m for m in args.models.split(",") if m]
    args.recipe_list = [r for r in args.recipes.split(",") if r]
    unknown = sorted(set(args.model_list) - set(ARCHITECTURES)) + sorted(set(args.recipe_list) - set(builtin_recipes()))
    if unknown:
        parser.error(f"unknown model(s)/recipe(s) {', '.join(unknown)}; models: {', '.join(ARCHITECTURES)}; "
                     f"recipes: {', '.join(builtin_recipes())}")
    return args


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child_row:
        lines = Path(args.out) / args.child_row / "cells.jsonl"

        def append(recipe, cell):
            with lines.open("a") as file:
                file.write(json.dumps({"recipe": recipe, "cell": cell}, default=str) + "\n")

        recorded = read_row(args.child_row, [], args)
        if recorded["source"] and not same_training(recorded["source"], source_training(args.child_row, args)):
            os.replace(lines, lines.with_suffix(".other-source.jsonl"))  # cells of a source trained otherwise
            recorded = read_row(args.child_row, [], args)
        missing = [recipe for recipe in args.recipe_list if recipe not in recorded["cells"]]
        run_row(args.child_row, missing, args, on_cell=append if recorded["source"] is None else
                lambda recipe, cell: recipe is not None and append(recipe, cell))
        return {}
    parent_argv = [a for a in argv if a != "--in-process"]
    started = time.perf_counter()
    matrix = {name: run_or_read(name, args, parent_argv) for name in args.model_list}
    total = time.perf_counter() - started
    summary = targets_summary(matrix)
    print_results(matrix, args, summary, total)
    result = {"budget": budget_line(args), "command": " ".join(["benchmarks/conformance.py", *argv]),
              "total_seconds": round(total, 1), "counts": counts(matrix), "targets": summary,
              "notes": {name: ARCHITECTURES[name].note for name in args.model_list},
              "presets": {name: ARCHITECTURES[name].preset for name in args.model_list}, "matrix": matrix}
    if args.json:
        atomic_write_json(args.json, result)
    return result


def run_or_read(name: str, args, parent_argv: list) -> dict:
    """The row: read (``--collect``) or run, then its latency pass over the .tflite files it has."""
    row_started = time.perf_counter()
    if args.collect:
        row = read_row(name, args.recipe_list, args)
    elif args.in_process:
        row = run_row(name, args.recipe_list, args)
    else:
        row = run_row_isolated(name, args.recipe_list, args, parent_argv)
    if not args.no_latency:
        try:
            attach_latency(name, row, args)
        except Exception as error:  # noqa: BLE001 -- a failed timing must not lose the row's results
            row["latency"] = {"error": f"{type(error).__name__}: {error}"}
    print(f"{name}: {time.perf_counter() - row_started:.0f} s  "
          + "; ".join(f"{r}: {cell_text(c, 50)} ({c.get('seconds', '-')} s)" for r, c in row["cells"].items()),
          flush=True)
    for recipe, cell in row["cells"].items():
        for check in cell.get("outputs") or []:
            print(f"    {recipe}: {output_text(check)}", flush=True)
    return row


def print_results(matrix: dict, args, summary: dict, total: float) -> None:
    print()
    print(budget_line(args))
    print("cell: .tflite raw size (gzip) / accuracy drop vs the source model / top-1 agreement with the Keras model "
          "it came from")
    print(markdown_table(matrix, args.recipe_list))
    print()
    print(f"cells: raw and gzip sizes, drop and the recipe's budget, size and p50 relative to the row's {BASELINE}")
    print(cells_table(matrix, args.recipe_list))
    print()
    if any(cell.get("outputs") for row in matrix.values() for cell in row["cells"].values()):
        print("outputs: each output's metric for the source and the .tflite, the change, how much worse in the "
              "budget's unit (budget), the verdict")
        print(outputs_table(matrix, args.recipe_list))
        print()
    print("sources")
    print(sources_table(matrix))
    print()
    print("\n".join(outcome_lines(matrix)))
    print("\ntargets")
    print("\n".join(target_lines(summary)))
    print(f"\ncells: {counts(matrix)}; total {total / 60:.1f} min")


if __name__ == "__main__":
    main()
