"""Conformance matrix: architectures no one here designed x every built-in recipe, on real MNIST.

    cd /work/main && TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/conformance.py \
        [--models MobileNet,ResNet50] [--recipes int8-ptq,fp16] [--train-samples 2000 --test-samples 500] \
        [--source-epochs 3] [--max-recipe-epochs 1] [--json matrix.json] [--out bench-out/conformance]

Every cell is the outcome of ``edgesmith.pipeline.convert(model, recipe, data.npz, out)``:

* verified: the .tflite was written and measured (raw bytes, accuracy drop in points below the source
  model, top-1 agreement with the Keras model it came from, the layers QAT kept in float);
* budget missed: the same numbers, but the drop exceeded the recipe's ``max_accuracy_drop``
  (``AccuracyDropError``, which carries the report);
* refused: any other :class:`edgesmith.runtime.errors.EdgesmithError`, shown as its one-line message;
* CRASH: anything else (an unexpected exception type): a defect in edgesmith, shown as
  ``CRASH: <type>: <first line>``, with the traceback kept in the cell's folder.

Architectures: ten keras.applications families built with ``weights=None, classes=10`` at 32 x 32 x 3
(the smallest input each accepts; ``alpha`` 0.25 for MobileNet, 0.35 for MobileNetV2 and 0.75 for
MobileNetV3, to keep time down), plus a Conv1D keyword-spotting-style model, an LSTM+GRU model, a small
transformer (LayerNormalization + MultiHeadAttention), a model with two outputs, and a legacy Keras 2
``.h5`` file written by tf_keras in a separate process. Each is trained briefly on MNIST first (images
resized to 32 x 32 and tiled to 3 channels, uint8; sequence models read the 28 rows as 28 steps of 28
features, float32 in 0..1), on the input convention it declares (raw pixels for models that normalize
inside, "tf", "caffe" or "torch" for the others), and the same preset is passed to the pipeline.
BatchNorm moving statistics are re-estimated after training (MobileNetV2/V3 and NASNet use momentum
0.999/0.9997, which leaves them stale after a short training).

Trained source models are cached (``--cache``); each model's row runs in a child process (a hard crash
or ``--row-timeout`` loses one row, not the matrix; ``--in-process`` to debug), which writes its cells to
``OUT/MODEL/cells.jsonl`` as they finish (``--collect`` prints the table from them without running anything).
A cell already in that file is kept and not run again: more recipes can be added to a row later (delete the
file to rerun a row).
Every cell's wall time is measured. Results and the budget they were measured at: docs/conformance.md.
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
    data: str  # "image" (32x32x3 uint8) or "sequence" (28 steps x 28 features, float32)
    preset: str | None  # passed to convert(preprocess=...); None for float (already normalized) data
    note: str = ""


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


LEGACY_H5_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import tf_keras as keras
    npz, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    keras.utils.set_random_seed(0)
    with np.load(npz) as d:
        x, y = d["x_train"].astype("float32") / 255.0, d["y_train"]
    L = keras.layers
    inputs = keras.Input((32, 32, 3))
    h = L.MaxPooling2D()(L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same", use_bias=False)(inputs))))
    h = L.MaxPooling2D()(L.ReLU()(L.BatchNormalization()(L.Conv2D(32, 3, padding="same", use_bias=False)(h))))
    h = L.Dropout(0.2)(L.GlobalAveragePooling2D()(L.Conv2D(64, 3, padding="same", activation="relu")(h)))
    model = keras.Model(inputs, L.Dense(10, activation="softmax")(h), name="legacy_cnn")
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    model.save(out)  # .h5 suffix: the legacy HDF5 format
    """
)

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
    "two-outputs": Arch(two_outputs, "image", "unit", "digit (10) + parity (2) heads"),
    "legacy-h5": Arch(None, "image", "unit", "tf_keras CNN saved as .h5"),
}


# -- data ---------------------------------------------------------------------------------


def write_datasets(folder: Path, train: int, test: int, mnist: Path = SHARED_MNIST) -> dict:
    """``image.npz`` (uint8 N x 32 x 32 x 3) and ``sequence.npz`` (float32 N x 28 x 28), from MNIST."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / f"{kind}-{train}-{test}.npz" for kind in ("image", "sequence")}
    if all(path.is_file() for path in paths.values()):
        return paths
    with np.load(mnist) as data:
        parts = {"train": (data["x_train"][:train], data["y_train"][:train]),
                 "test": (data["x_test"][:test], data["y_test"][:test])}
    image, sequence = {}, {}
    for split, (x, y) in parts.items():
        resized = tf.image.resize(x[..., None].astype(np.float32), (32, 32)).numpy()
        image[f"x_{split}"] = np.repeat(np.clip(np.round(resized), 0, 255).astype(np.uint8), 3, axis=-1)
        sequence[f"x_{split}"] = (x.astype(np.float32) / 255.0)
        image[f"y_{split}"] = sequence[f"y_{split}"] = y.astype(np.int64)
    for path, arrays in ((paths["image"], image), (paths["sequence"], sequence)):
        partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.npz")
        np.savez(partial, **arrays)
        os.replace(partial, path)  # concurrent runs never read a half-written file
    return paths


def training_arrays(npz: Path, preset: str | None):
    with np.load(npz) as data:
        x_train, y_train, x_test, y_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    if preset is not None:
        x_train, x_test = preprocessed(x_train, preset), preprocessed(x_test, preset)
    return x_train, y_train, x_test, y_test


# -- source models ---------------------------------------------------------------------------


def source_model(name: str, npz: Path, cache: Path, epochs: int, train: int) -> tuple:
    """The trained source model file (cached) and its test accuracy as measured here."""
    arch = ARCHITECTURES[name]
    cache.mkdir(parents=True, exist_ok=True)
    stem = cache / f"{name}-n{train}-e{epochs}"
    path = stem.with_suffix(".h5" if arch.build is None else ".keras")
    accuracy_file = stem.with_suffix(".json")
    if path.is_file() and accuracy_file.is_file():
        return path, json.loads(accuracy_file.read_text())
    started = time.perf_counter()
    if arch.build is None:
        partial = path.with_name(f".{path.stem}.partial.h5")
        subprocess.run([sys.executable, "-c", LEGACY_H5_SCRIPT, str(npz), str(partial), str(epochs)], check=True)
        os.replace(partial, path)
        import keras

        model = keras.models.load_model(path, compile=False)
    else:
        model = train_keras(arch, npz, epochs)
        partial = path.with_name(f".{path.stem}.partial.keras")
        model.save(partial)
        os.replace(partial, path)
    x_train, y_train, x_test, y_test = training_arrays(npz, arch.preset)
    info = {"accuracy": _accuracy(model, x_test, y_test), "train_seconds": round(time.perf_counter() - started, 1),
            "params": int(model.count_params())}
    atomic_write_json(accuracy_file, info)  # concurrent runs never read a half-written file
    return path, info


def train_keras(arch: Arch, npz: Path, epochs: int):
    import keras

    keras.utils.set_random_seed(0)
    model = arch.build()
    x_train, y_train, _, _ = training_arrays(npz, arch.preset)
    if len(model.outputs) == 2:  # digit and parity
        targets, losses = [y_train, y_train % 2], ["sparse_categorical_crossentropy"] * 2
    else:
        targets, losses = y_train, "sparse_categorical_crossentropy"
    model.compile(keras.optimizers.Adam(LEARNING_RATE), losses)
    model.fit(x_train, targets, batch_size=BATCH, epochs=epochs, shuffle=True, verbose=0)
    reestimate_batchnorm(model, x_train)
    return model


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
    """One cell: verified / budget missed / refused / crash, with its numbers and wall time."""
    from edgesmith.converters.errors import AccuracyDropError
    from edgesmith.pipeline import convert
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
        checked = report.verification
        cell.update(tflite_bytes=report.tflite_bytes, float_tflite_bytes=report.float_tflite_bytes,
                    source_accuracy=report.source_accuracy, keras_accuracy=checked.keras_accuracy,
                    tflite_accuracy=checked.tflite_accuracy, top1_agreement=checked.top1_agreement,
                    accuracy_drop_pt=checked.accuracy_drop_pt, float_layers=report.float_layers)
    return cell


def run_row(name: str, recipes: list, args, on_cell=None) -> dict:
    """Train (or load) model ``name``, then run every recipe on it; ``on_cell(recipe, cell)`` as they finish."""
    import keras

    arch = ARCHITECTURES[name]
    out = Path(args.out)
    npz = write_datasets(out / "data", args.train_samples, args.test_samples)[arch.data]
    training = write_datasets(out / "data", args.source_train_samples, args.test_samples)[arch.data]
    started = time.perf_counter()
    try:
        epochs = args.epochs_of.get(name, args.epochs_of[None])
        path, source = source_model(name, training, Path(args.cache), epochs, args.source_train_samples)
    except Exception as error:  # noqa: BLE001 -- the benchmark's own failure: every cell says so
        lines = str(error).strip().splitlines()
        failed = {"status": "crash", "error": f"SOURCE FAILED: {type(error).__name__}: {lines[0] if lines else ''}"}
        return {"source": None, "cells": {recipe: dict(failed) for recipe in recipes}}
    row = {"source": {**source, "seconds": round(time.perf_counter() - started, 1), "file": str(path)}, "cells": {}}
    if on_cell:
        on_cell(None, row["source"])
    for recipe in recipes:
        keras.backend.clear_session()
        cell = run_cell(path, recipe_with_budget(recipe, args.max_recipe_epochs), npz, out / name / recipe,
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


# -- presenting ---------------------------------------------------------------------------------------


def cell_text(cell: dict, width: int = 60) -> str:
    """``size KiB / drop pt / agree %`` (and ``budget missed``), or ``refused: <reason>``, or the crash."""
    if cell["status"] in ("verified", "budget missed"):
        text = (f"{cell['tflite_bytes'] / 1024:,.0f} KiB / {cell['accuracy_drop_pt']:+.1f} pt / "
                f"{100 * cell['top1_agreement']:.1f} %")
        return text + (" (budget missed)" if cell["status"] == "budget missed" else "")
    text = f"refused: {cell['error']}" if cell["status"] == "refused" else cell["error"]
    return text if len(text) <= width else text[: width - 3] + "..."


def markdown_table(matrix: dict, recipes: list, width: int = 60) -> str:
    header = ["model", "source acc", *recipes]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in matrix.items():
        source = row["source"]
        accuracy = "-" if not source else f"{100 * source['accuracy']:.1f} %"
        cells = [cell_text(row["cells"][recipe], width).replace("|", "/") for recipe in recipes]
        lines.append("| " + " | ".join([name, accuracy, *cells]) + " |")
    return "\n".join(lines)


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
    return (f"budget: source models trained {args.epochs_of[None]} epochs{named} on {args.source_train_samples} "
            f"MNIST images; the pipeline reads {args.train_samples} training / {args.test_samples} test samples; "
            f"recipe epochs {epochs}")


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
    parser.add_argument("--source-epochs", default="5",
                        help="epochs of each source model's training: N, or N,MODEL:M,... (M for those models)")
    parser.add_argument("--max-recipe-epochs", type=int, default=None,
                        help="cap on every pass's epochs option (default: the recipes as shipped)")
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
        missing = [recipe for recipe in args.recipe_list if recipe not in recorded["cells"]]
        run_row(args.child_row, missing, args, on_cell=append if recorded["source"] is None else
                lambda recipe, cell: recipe is not None and append(recipe, cell))
        return {}
    parent_argv = [a for a in argv if a != "--in-process"]
    started = time.perf_counter()
    matrix = {}
    for name in args.model_list:
        row_started = time.perf_counter()
        if args.collect:
            matrix[name] = read_row(name, args.recipe_list, args)
        elif args.in_process:
            matrix[name] = run_row(name, args.recipe_list, args)
        else:
            matrix[name] = run_row_isolated(name, args.recipe_list, args, parent_argv)
        print(f"{name}: {time.perf_counter() - row_started:.0f} s  "
              + "; ".join(f"{r}: {cell_text(c, 50)} ({c.get('seconds', '-')} s)" for r, c in matrix[name]["cells"].items()),
              flush=True)
    total = time.perf_counter() - started
    print()
    print(budget_line(args))
    print("cell: .tflite size / accuracy drop vs the source model / top-1 agreement with the Keras model it came from")
    print(markdown_table(matrix, args.recipe_list))
    print()
    print("\n".join(outcome_lines(matrix)))
    print(f"\ncells: {counts(matrix)}; total {total / 60:.1f} min")
    result = {"budget": budget_line(args), "command": " ".join(["benchmarks/conformance.py", *argv]),
              "total_seconds": round(total, 1), "counts": counts(matrix),
              "notes": {name: ARCHITECTURES[name].note for name in args.model_list},
              "presets": {name: ARCHITECTURES[name].preset for name in args.model_list}, "matrix": matrix}
    if args.json:
        atomic_write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
