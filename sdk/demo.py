"""The offline demo: train a small CNN on builtin:digits, compress it with a recipe,
verify the .tflite, benchmark float and compressed, and compare them.

>>> from edgesmith.demo import run_demo
>>> result = run_demo("demo-out")  # doctest: +SKIP
>>> result["compressed"]["accuracy"] >= result["float"]["accuracy"] - 0.01  # doctest: +SKIP
True
>>> result["comparison"]["smaller"] > 1, result["comparison"]["at_least_as_fast"]  # doctest: +SKIP
(True, True)

The two models are benchmarked in alternating rounds (float, compressed, float, ...), each round a
:func:`edgesmith.runtime.bench.benchmark` of ``runs`` invokes on one thread, and each model's latency is
the median of its rounds' p50: a load that slows the machine for a while slows both, so the comparison
holds on a busy machine where one long benchmark after another would not.
"""

from __future__ import annotations

from pathlib import Path
from statistics import median

from edgesmith.data import load_data
from edgesmith.recipes import recipe_from_dict
from edgesmith.runtime.tflite_file import gzipped_size, total_weight_bytes

DEMO_DATA = "builtin:digits"
DEMO_RECIPE = "fast-int8"  # fewer channels, then int8: smaller and faster
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


def demo_cnn(input_shape=(8, 8, 1), classes: int = 10, seed: int = 0, width: int = 64):
    """The demo's CNN: a stem, two residual blocks of ``width`` channels, global average pooling.

    About 4.7 million MACs at ``width=64`` on 8x8 digits, so that the convolutions, not the fixed cost of
    an invoke, set the latency (with :func:`small_cnn`'s 0.16 million, an invoke is a few microseconds of
    overhead and int8 kernels cannot show). BatchNorm's momentum is 0.9: its statistics follow a
    training of a few epochs.
    """
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape, name="image")
    x = _conv_bn(inputs, width // 2)
    x = keras.layers.MaxPooling2D()(_residual_block(x, width))
    x = _residual_block(x, width)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")


def _conv_bn(x, filters: int, relu: bool = True):
    """3x3 convolution (no bias), BatchNorm, and optionally ReLU."""
    import keras

    x = keras.layers.BatchNormalization(momentum=0.9)(keras.layers.Conv2D(filters, 3, padding="same",
                                                                          use_bias=False)(x))
    return keras.layers.ReLU()(x) if relu else x


def _residual_block(x, filters: int):
    """A convolution to ``filters`` channels, then a second one added back to it."""
    import keras

    x = _conv_bn(x, filters)
    return keras.layers.ReLU()(keras.layers.Add()([x, _conv_bn(x, filters, relu=False)]))


def train_small_cnn(data, epochs: int = 8, seed: int = 0, architecture=small_cnn):
    """``architecture`` (default :func:`small_cnn`) trained on ``data`` (Adam, sparse cross-entropy)."""
    from edgesmith.converters.train import TrainingBatches  # imports TensorFlow: `edgesmith demo --help` does not

    model = architecture(data.sample_shape, data.num_classes, seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(TrainingBatches(data.x_train, data.y_train, data.batch_size, seed), epochs=epochs, verbose=0)
    return model


def compare_latency(paths: dict, rounds: int = 15, runs: int = 100, threads: int = 1, progress=None) -> dict:
    """Benchmark the models of ``paths`` (``{name: .tflite}``) in alternating rounds of ``runs`` invokes;
    return ``{name: [p50 of each round in ms]}`` (:func:`edgesmith.runtime.bench.alternating_p50s`)."""
    from edgesmith.runtime.bench import alternating_p50s

    return alternating_p50s(paths, rounds, runs=runs, threads=threads, progress=progress)


def comparison(baseline: dict, compressed: dict) -> dict:
    """How the ``compressed`` row compares with the ``baseline`` one: how many times smaller (raw bytes, gzip)
    and faster (ratio of the p50 medians), and in how many of the paired rounds it was not slower.

    >>> float_row = {"bytes": 4000, "gzip_bytes": 3600, "latency_p50_ms": 0.10, "rounds_p50_ms": [0.10, 0.11, 0.09]}
    >>> int8_row = {"bytes": 1000, "gzip_bytes": 900, "latency_p50_ms": 0.05, "rounds_p50_ms": [0.05, 0.12, 0.05]}
    >>> ratios = comparison(float_row, int8_row)
    >>> ratios["smaller"], ratios["faster"], ratios["at_least_as_fast"], ratios["rounds_not_slower"]
    (4.0, 2.0, True, 2)
    """
    pairs = list(zip(baseline["rounds_p50_ms"], compressed["rounds_p50_ms"]))
    faster = baseline["latency_p50_ms"] / compressed["latency_p50_ms"]
    return {"smaller": baseline["bytes"] / compressed["bytes"],
            "gzip_smaller": baseline["gzip_bytes"] / compressed["gzip_bytes"],
            "faster": faster, "at_least_as_fast": faster >= 1.0,
            "rounds": len(pairs), "rounds_not_slower": sum(c <= f for f, c in pairs)}


def file_row(path, accuracy: float) -> dict:
    """Size (raw, weights, gzip) and accuracy of one .tflite."""
    content = Path(path).read_bytes()
    return {"path": str(path), "bytes": len(content), "weights_bytes": total_weight_bytes(content),
            "gzip_bytes": gzipped_size(content), "accuracy": accuracy}


def run_demo(out_dir, recipe: str = DEMO_RECIPE, epochs: int = 8, rounds: int = 15, runs: int = 100,
             threads: int = 1, progress=None) -> dict:
    """Train :func:`demo_cnn`, compress it with ``recipe``, verify, benchmark float and compressed in
    alternating rounds; return both rows (size, accuracy, p50 latency), the report, and the comparison."""
    notify = progress or (lambda stage, done, total: None)
    baseline, report = train_and_convert(Path(out_dir), recipe, epochs, notify)
    rows = {name: file_row(outcome.tflite_path, outcome.verification.tflite_accuracy)
            for name, outcome in (("float", baseline), ("compressed", report))}
    p50s = compare_latency({name: row["path"] for name, row in rows.items()}, rounds, runs, threads, notify)
    for name, row in rows.items():
        row.update(latency_p50_ms=median(p50s[name]), rounds_p50_ms=p50s[name])
    measured = {**comparison(rows["float"], rows["compressed"]), "runs": runs, "threads": threads}
    return {"recipe": recipe, "float": rows["float"], "compressed": rows["compressed"], "report": report,
            "comparison": measured}


def train_and_convert(out: Path, recipe: str, epochs: int, notify) -> tuple:
    """Train :func:`demo_cnn` on the demo data, save it as ``out/float.keras``, and convert it twice: as it is
    (``out/float``) and with ``recipe`` (``out/compressed``); return both conversion reports."""
    from edgesmith.pipeline import convert  # imports TensorFlow

    data = load_data(DEMO_DATA)
    notify("train", 0, None)
    model = train_small_cnn(data, epochs, architecture=demo_cnn)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "float.keras")
    baseline = convert(out / "float.keras", recipe_from_dict(FLOAT_BASELINE), data, out / "float", progress=notify)
    return baseline, convert(out / "float.keras", recipe, data, out / "compressed", progress=notify)
