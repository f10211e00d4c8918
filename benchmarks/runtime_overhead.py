"""How much does edgesmith's runtime add on top of LiteRT itself?

Two ratios, each measured within one run, in interleaved rounds so that
machine noise hits both sides alike:

1. ``Model.predict`` median / raw interpreter ``set_tensor``+``invoke``+``get_tensor``
   median, on a sub-millisecond model and on a ~10 ms model.  Target <= 1.03.
2. ``edgesmith bench`` median / LiteRT's ``benchmark_litert_model.py`` median,
   same model, same thread count.  Target 0.95-1.05.

Run:  TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/runtime_overhead.py [--rounds 7]
(needs the [convert] extra: the models are built with Keras here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def build_models(folder: Path) -> dict:
    """A sub-millisecond CNN and a ~10 ms MobileNetV2 (224 px), as float .tflite files."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    small = keras.Sequential([
        keras.Input((64, 64, 3)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    large = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None, classes=10)
    paths = {}
    for name, model in {"sub-ms CNN": small, "MobileNetV2 224px": large}.items():
        path = folder / (name.split()[0] + ".tflite")
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        paths[name] = path
    return paths


def time_loop(step, repeats: int) -> float:
    """Median seconds of ``step()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def interleaved_times(paths: list, rounds: int, repeats: int) -> np.ndarray:
    """``[rounds, len(paths)]`` median seconds per invoke: every round times ``repeats`` invokes of each model
    in turn (1 thread, a fixed random input), so machine noise hits them alike."""
    from edgesmith.runtime import Model

    runtimes = [Model(path, threads=1) for path in paths]
    for runtime in runtimes:
        sample = np.random.default_rng(0).normal(size=runtime.inputs[0].shape).astype("float32")
        runtime.set_inputs(runtime.prepare(sample))
        time_loop(runtime.invoke, repeats)  # warm-up: XNNPACK packs weights on the first runs
    return np.array([[time_loop(runtime.invoke, repeats) for runtime in runtimes] for _ in range(rounds)])


def predict_vs_raw(path: Path, rounds: int, repeats: int) -> float:
    """Median over rounds of (Model.predict median / raw interpreter loop median)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgesmith.runtime import Model

    model = Model(path, threads=1)
    raw = Interpreter(model_path=str(path), num_threads=1)
    raw.allocate_tensors()
    in_index = raw.get_input_details()[0]["index"]
    out_index = raw.get_output_details()[0]["index"]
    x = np.random.default_rng(0).uniform(0, 1, model.inputs[0].shape).astype(np.float32)

    def raw_step():
        raw.set_tensor(in_index, x)
        raw.invoke()
        raw.get_tensor(out_index)

    def predict_step():
        model.predict(x)

    for step in (raw_step, predict_step):  # warm both
        time_loop(step, 20)
    ratios = []
    for _ in range(rounds):
        ratios.append(time_loop(predict_step, repeats) / time_loop(raw_step, repeats))
    return float(np.median(ratios))


def bench_vs_litert(path: Path, rounds: int, runs: int, threads: int) -> tuple:
    """Median over rounds of (edgesmith bench p50 / benchmark_litert_model.py median)."""
    import ai_edge_litert

    litert_tool = Path(ai_edge_litert.__file__).parent / "tools" / "benchmark_litert_model.py"
    ratios, ours, theirs = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        result_json = Path(scratch) / "litert.json"
        for _ in range(rounds):
            mine = subprocess.run(
                [sys.executable, "-m", "edgesmith", "bench", str(path), "--runs", str(runs), "--warmup", "5",
                 "--threads", str(threads), "--energy", "none", "--json"],
                check=True, capture_output=True, text=True,
            )
            ours.append(json.loads(mine.stdout)["summary"]["latency_ms"]["p50"])
            subprocess.run(
                [sys.executable, str(litert_tool), f"--model={path}", f"--num_runs={runs}", "--warmup_runs=5",
                 f"--num_threads={threads}", f"--result_json={result_json}"],
                check=True, capture_output=True, text=True,
            )
            theirs.append(json.loads(result_json.read_text())["latency"]["median_ms"])
            ratios.append(ours[-1] / theirs[-1])
    return float(np.median(ratios)), float(np.median(ours)), float(np.median(theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        models = build_models(Path(folder))
        print(f"{'model':<20} {'predict/raw':>12} {'bench/litert':>13} {'bench p50 ms':>13} {'litert ms':>10}")
        for name, path in models.items():
            small = "sub-ms" in name
            overhead = predict_vs_raw(path, args.rounds, repeats=500 if small else 60)
            ratio, ours, theirs = bench_vs_litert(path, args.rounds, runs=500 if small else 100, threads=args.threads)
            print(f"{name:<20} {overhead:>12.3f} {ratio:>13.3f} {ours:>13.3f} {theirs:>10.3f}")
    print("targets: predict/raw <= 1.03; bench/litert within 0.95-1.05")


if __name__ == "__main__":
    main()
