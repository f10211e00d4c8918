"""Compression benchmark: TFLiteConverter anchors vs edgesmith recipes on one trained MNIST CNN.

    .venv/bin/python benchmarks/compression.py [--data ../shared/data/mnist.npz] [--epochs 3] [--out bench-out]

Trains a reference CNN (standard convolutions, BatchNorm, a residual Add), then
converts the same trained model with the anchors (float32, dynamic-range,
full-int8 PTQ through TFLiteConverter) and with edgesmith's recipes. Every
row is measured on the .tflite through edgesmith.runtime: bytes (raw, gzip),
accuracy on the test split, median latency (1 thread). Ratios are computed
within this one run. Uses builtin:mnist when the shared .npz is absent.

The recipes fine-tune for 2 to 8 more epochs, so part of a recipe's "gain"
could be extra training: the row "float32 (same extra epochs)" fine-tunes the
float model for as many epochs as the longest recipe adds, and every drop is
measured against the better of the two float rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgesmith.converters.errors import AccuracyDropError  # noqa: E402
from edgesmith.converters.export import export  # noqa: E402
from edgesmith.converters.mixed_precision import mixed_precision  # noqa: E402
from edgesmith.converters.ptq import gzipped_size, ptq  # noqa: E402
from edgesmith.converters.registry import pass_options  # noqa: E402
from edgesmith.converters.train import fine_tune  # noqa: E402
from edgesmith.converters.verify import verify  # noqa: E402
from edgesmith.data import load_data  # noqa: E402
from edgesmith.pipeline import convert  # noqa: E402
from edgesmith.recipes import load_recipe  # noqa: E402
from edgesmith.runtime.bench import benchmark  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
ANCHORS = {"anchor: float32": "float32", "anchor: dynamic-range": "dynamic", "anchor: full-int8 PTQ": "int8"}
RECIPES = ("fp16", "dynamic-int8", "int8-ptq", "int8-qat", "prune50-int8", "max-compression", "fast-int8",
           "raw-size-int4")
INT4_ANCHOR = "anchor: int4 PTQ (W4A8, litert-quantizer)"  # int4 conv/dense weights, int8 elsewhere, calibrated
FLOAT_ROWS = ("anchor: float32", "float32 (same extra epochs)")
FINE_TUNE_LEARNING_RATE = 5e-4  # what prune and cluster fine-tune with


def reference_cnn(seed: int = 0):
    """Conv-BN-ReLU stem, a residual block with BatchNorm, pooling, a Dense head."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers

    def conv_bn(x, filters):
        return layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(x))

    inputs = keras.Input((28, 28, 1))
    x = layers.ReLU()(conv_bn(inputs, 32))
    x = layers.ReLU()(layers.Add()([x, conv_bn(layers.ReLU()(conv_bn(x, 32)), 32)]))
    x = layers.MaxPooling2D()(x)
    x = layers.MaxPooling2D()(layers.ReLU()(conv_bn(x, 64)))
    x = layers.Dense(128, activation="relu")(layers.Flatten()(x))
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x), name="reference_cnn")


def extra_epochs(recipe_name: str) -> int:
    """Fine-tuning epochs a recipe adds on top of the trained model (its passes' ``epochs``)."""
    passes = load_recipe(recipe_name).keras_passes
    return sum(int(step.options.get("epochs", pass_options(step.name).get("epochs") or 0)) for step in passes)


def fine_tuned_copy(model, data, epochs: int):
    """A copy of ``model`` trained ``epochs`` more, as the recipes' passes fine-tune (same data, Adam)."""
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return fine_tune(copy, data, epochs=epochs, learning_rate=FINE_TUNE_LEARNING_RATE)


def measure(path: Path, accuracy: float) -> dict:
    content = path.read_bytes()
    latency = benchmark(path, runs=100, warmup=10, energy="none", threads=1)["summary"]["latency_ms"]["p50"]
    return {"bytes": len(content), "gzip": gzipped_size(content), "accuracy": accuracy, "latency_ms": latency}


def anchor(model, data, mode: str, path: Path) -> dict:
    """The row of ``model`` converted by TFLiteConverter alone (``ptq`` in ``mode``), written to ``path``."""
    path = export(ptq(model, data, mode=mode), data, path)
    return measure(path, verify(path, data)["tflite_accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_MNIST) if SHARED_MNIST.is_file() else "builtin:mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=20000, help="training samples (the test split is whole)")
    parser.add_argument("--out", default="bench-out")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipes to run (a smoke run: one)")
    args = parser.parse_args()
    recipes = [name for name in args.recipes.split(",") if name]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(args.data, limit=None)
    data.x_train, data.y_train = data.x_train[: args.train_limit], data.y_train[: args.train_limit]
    started = time.perf_counter()
    model = reference_cnn()
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, batch_size=64, epochs=args.epochs, verbose=0)
    model.save(out / "reference.keras")
    print(f"trained the reference CNN in {time.perf_counter() - started:.0f} s")
    rows = {name: anchor(model, data, mode, out / f"{mode}.tflite") for name, mode in ANCHORS.items()}
    int4 = export(mixed_precision(model, data, default="int4"), data, out / "int4.tflite")
    rows[INT4_ANCHOR] = measure(int4, verify(int4, data)["tflite_accuracy"])
    epochs = max(extra_epochs(recipe) for recipe in recipes)
    longer = fine_tuned_copy(model, data, epochs)
    rows[FLOAT_ROWS[1]] = anchor(longer, data, "float32", out / "float32-extra-epochs.tflite")
    print(f"fine-tuned the float model {epochs} more epochs (the longest recipe's)")
    for recipe in recipes:
        started = time.perf_counter()
        try:
            report = convert(out / "reference.keras", recipe, data, out / recipe)
        except AccuracyDropError as error:  # an exceeded max_accuracy_drop still carries the report
            print(f"{recipe}: {error}")
            report = error.report
        rows[f"edgesmith: {recipe}"] = measure(Path(report["tflite_path"]), report["tflite_accuracy"])
        rows[f"edgesmith: {recipe}"]["seconds"] = round(time.perf_counter() - started)
    print_table(rows)
    if {"int8-qat", "fast-int8"} <= set(recipes):
        print_fast_int8(out)
    (out / "results.json").write_text(json.dumps(rows, indent=2))


def print_table(rows: dict) -> None:
    """The table, then the two targets; drops are against the better float32 row."""
    size_row, ptq_row = rows["anchor: float32"], rows["anchor: full-int8 PTQ"]
    reference = max((rows[name] for name in FLOAT_ROWS), key=lambda row: row["accuracy"])
    drops = {name: 100 * (reference["accuracy"] - row["accuracy"]) for name, row in rows.items()}
    print(f"\n{'row':44}{'bytes':>10}{'gzip':>10}{'accuracy':>10}{'latency':>11}{'x raw':>8}{'x gzip':>8}{'drop pt':>9}")
    for name, row in rows.items():
        print(f"{name:44}{row['bytes']:>10,}{row['gzip']:>10,}{100 * row['accuracy']:>9.2f}%"
              f"{row['latency_ms']:>8.3f} ms{size_row['bytes'] / row['bytes']:>7.1f}x{size_row['gzip'] / row['gzip']:>7.1f}x"
              f"{drops[name]:>9.2f}")
    print(f"\ndrops are against the better float row: {100 * reference['accuracy']:.2f}%")
    within = [name for name in rows if name.startswith("edgesmith:") and drops[name] <= 1.0]
    if within:
        smallest = max(within, key=lambda name: size_row["bytes"] / rows[name]["bytes"])
        print(f"fewest raw bytes within 1.0 pt: {smallest}, {size_row['bytes'] / rows[smallest]['bytes']:.1f}x fewer "
              "raw bytes than float32 (target >= 8x)")
    if "edgesmith: int8-qat" not in rows:
        return
    qat = rows["edgesmith: int8-qat"]
    print(f"int8-qat: drop {drops['edgesmith: int8-qat']:.2f} pt vs float (target <= 0.3), "
          f"{100 * (qat['accuracy'] - ptq_row['accuracy']):+.2f} pt vs full-int8 PTQ (target >= 0)")
    within = [name for name in rows if name.startswith("edgesmith:") and drops[name] <= 1.0]
    if not within:
        print("no recipe within 1.0 pt of float")
        return
    best = max(within, key=lambda name: size_row["gzip"] / rows[name]["gzip"])
    print(f"best recipe within 1.0 pt: {best}, {size_row['gzip'] / rows[best]['gzip']:.1f}x smaller (gzip) than "
          "float32 (target >= 8x)")


def print_fast_int8(out: Path, rounds: int = 30, repeats: int = 100) -> None:
    """fast-int8 against int8-qat, both int8: MACs counted on the graphs, latency timed in interleaved rounds
    (each round times ``repeats`` invokes of each; the speedup is the median of the per-round ratios)."""
    import numpy as np

    from edgesmith.runtime.tflite_file import graph_macs
    from runtime_overhead import interleaved_times

    paths = [out / name / "model.tflite" for name in ("int8-qat", "fast-int8")]
    times = interleaved_times(paths, rounds, repeats)
    print(f"fast-int8 vs int8-qat (both int8, 1 thread): {graph_macs(paths[0]) / graph_macs(paths[1]):.2f}x fewer "
          f"MACs, {np.median(times[:, 0] / times[:, 1]):.2f}x faster ({1e3 * np.median(times[:, 0]):.3f} vs "
          f"{1e3 * np.median(times[:, 1]):.3f} ms, {rounds} interleaved rounds)")


if __name__ == "__main__":
    main()
