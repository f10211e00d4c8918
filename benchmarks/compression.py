"""Compression benchmark: TFLiteConverter anchors vs edgesmith recipes on one trained MNIST CNN.

    .venv/bin/python benchmarks/compression.py [--data ../shared/data/mnist.npz] [--epochs 3] [--out bench-out]

Trains a reference CNN (standard convolutions, BatchNorm, a residual Add), then
converts the same trained model with the anchors (float32, dynamic-range,
full-int8 PTQ through TFLiteConverter) and with edgesmith's recipes. Every
row is measured on the .tflite through edgesmith.runtime: bytes (raw, gzip),
accuracy on the test split, median latency (1 thread). Ratios are computed
within this one run. Uses builtin:mnist when the shared .npz is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from edgesmith.converters.export import export  # noqa: E402
from edgesmith.converters.ptq import gzipped_size, ptq  # noqa: E402
from edgesmith.data import load_data  # noqa: E402
from edgesmith.pipeline import convert  # noqa: E402
from edgesmith.runtime.bench import benchmark  # noqa: E402

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
ANCHORS = {"anchor: float32": "float32", "anchor: dynamic-range": "dynamic", "anchor: full-int8 PTQ": "int8"}
RECIPES = ("fp16", "dynamic-int8", "int8-ptq", "int8-qat", "prune50-int8", "max-compression")


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


def measure(path: Path, accuracy: float) -> dict:
    content = path.read_bytes()
    latency = benchmark(path, runs=100, warmup=10, energy="none", threads=1)["summary"]["latency_ms"]["p50"]
    return {"bytes": len(content), "gzip": gzipped_size(content), "accuracy": accuracy, "latency_ms": latency}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_MNIST) if SHARED_MNIST.is_file() else "builtin:mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=20000, help="training samples (the test split is whole)")
    parser.add_argument("--out", default="bench-out")
    args = parser.parse_args()
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

    from edgesmith.converters.verify import verify

    rows = {}
    for name, mode in ANCHORS.items():
        path = export(ptq(model, data, mode=mode), data, out / f"{mode}.tflite")
        rows[name] = measure(path, verify(path, data)["tflite_accuracy"])
    for recipe in RECIPES:
        started = time.perf_counter()
        try:
            report = convert(out / "reference.keras", recipe, data, out / recipe)
        except Exception as error:  # an exceeded max_accuracy_drop still leaves the report
            print(f"{recipe}: {error}")
            report = json.loads((out / recipe / "report.json").read_text())
        rows[f"edgesmith: {recipe}"] = measure(Path(report["tflite_path"]), report["tflite_accuracy"])
        rows[f"edgesmith: {recipe}"]["seconds"] = round(time.perf_counter() - started)
    print_table(rows)
    (out / "results.json").write_text(json.dumps(rows, indent=2))


def print_table(rows: dict) -> None:
    float_row, ptq_row = rows["anchor: float32"], rows["anchor: full-int8 PTQ"]
    print(f"\n{'row':32}{'bytes':>10}{'gzip':>10}{'accuracy':>10}{'latency':>11}{'x smaller':>11}{'drop pt':>9}")
    for name, row in rows.items():
        drop = 100 * (float_row["accuracy"] - row["accuracy"])
        print(f"{name:32}{row['bytes']:>10,}{row['gzip']:>10,}{100 * row['accuracy']:>9.2f}%"
              f"{row['latency_ms']:>8.3f} ms{float_row['gzip'] / row['gzip']:>10.1f}x{drop:>9.2f}")
    qat = rows["edgesmith: int8-qat"]
    print(f"\nint8-qat: drop {100 * (float_row['accuracy'] - qat['accuracy']):.2f} pt vs float (target <= 0.3), "
          f"{100 * (qat['accuracy'] - ptq_row['accuracy']):+.2f} pt vs full-int8 PTQ (target >= 0)")
    within = {n: r for n, r in rows.items() if 100 * (float_row["accuracy"] - r["accuracy"]) <= 1.0}
    best = max(within, key=lambda n: float_row["gzip"] / within[n]["gzip"])
    print(f"best within 1.0 pt: {best}, {float_row['gzip'] / within[best]['gzip']:.1f}x smaller (gzip) than float32 "
          "(target >= 8x)")


if __name__ == "__main__":
    main()
