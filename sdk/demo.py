"""The offline demo: train a small CNN on builtin:digits, compress it with a recipe,
verify the .tflite, benchmark float and compressed, and compare them.

>>> from edgesmith.demo import run_demo
>>> result = run_demo("demo-out")  # doctest: +SKIP
>>> result["compressed"]["accuracy"] >= result["float"]["accuracy"] - 0.01  # doctest: +SKIP
True
"""

from __future__ import annotations

from pathlib import Path

from edgesmith.converters.train import TrainingBatches
from edgesmith.data import load_data
from edgesmith.pipeline import convert
from edgesmith.recipes import recipe_from_dict
from edgesmith.runtime.tflite_file import gzipped_size, total_weight_bytes

DEMO_DATA = "builtin:digits"
FLOAT_BASELINE = {"name": "float32", "description": "no compression: the float32 .tflite"}


def small_cnn(input_shape=(8, 8, 1), classes: int = 10, seed: int = 0):
    """A small CNN with BatchNorm and a residual Add: the kind of model edge teams ship."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(input_shape, name="image")
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)))
    branch = layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(x))
    x = layers.MaxPooling2D()(layers.ReLU()(layers.Add()([x, branch])))
    x = layers.Flatten()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def train_small_cnn(data, epochs: int = 8, seed: int = 0):
    """``small_cnn`` trained on ``data`` (Adam, sparse cross-entropy)."""
    model = small_cnn(data.sample_shape, data.num_classes, seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(TrainingBatches(data.x_train, data.y_train, data.batch_size, seed), epochs=epochs, verbose=0)
    return model


def run_demo(out_dir, recipe: str = "int8-qat", epochs: int = 20, runs: int = 200, progress=None) -> dict:
    """Train, compress with ``recipe``, verify and benchmark; return float vs compressed figures."""
    from edgesmith.runtime.bench import benchmark

    out = Path(out_dir)
    notify = progress or (lambda stage, done, total: None)
    data = load_data(DEMO_DATA)
    notify("train", 0, None)
    model = train_small_cnn(data, epochs)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "float.keras")
    baseline = convert(out / "float.keras", recipe_from_dict(FLOAT_BASELINE), data, out / "float", progress=notify)
    report = convert(out / "float.keras", recipe, data, out / "compressed", progress=notify)
    rows = {}
    for name, outcome in (("float", baseline), ("compressed", report)):
        path, accuracy = Path(outcome.tflite_path), outcome.verification.tflite_accuracy
        notify(f"bench {name}", 0, None)
        summary = benchmark(path, runs=runs, warmup=20, energy="none", threads=1)["summary"]
        content = path.read_bytes()
        rows[name] = {"path": str(path), "bytes": len(content), "weights_bytes": total_weight_bytes(content),
                      "gzip_bytes": gzipped_size(content),
                      "accuracy": accuracy, "latency_p50_ms": summary["latency_ms"]["p50"]}
    return {"recipe": recipe, "float": rows["float"], "compressed": rows["compressed"], "report": report}
