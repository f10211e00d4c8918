"""Optimizer benchmark: `edgesmith optimize`'s pick against the best fixed built-in recipe, same constraint.

    .venv/bin/python benchmarks/optimize.py [--data ../shared/data/mnist.npz] [--trials 30] [--out bench-optimize]

Trains the reference CNN of benchmarks/compression.py, converts it with every
built-in recipe, and keeps the best one within 1.0 accuracy point of the float
model: the smallest (gzip bytes of the graph) and the fastest (p50 invoke
latency, 1 thread). Then runs the search (objectives size and latency, <= 30
trials, the same 1.0 pt constraint) and compares its pick (smallest feasible)
and its fastest feasible front member with them. Every figure is measured
in this one run; the search's wall time is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compression import RECIPES, SHARED_MNIST, reference_cnn  # noqa: E402

from edgesmith.converters.errors import AccuracyDropError  # noqa: E402
from edgesmith.converters.train import fine_tune  # noqa: E402
from edgesmith.converters.verify import accuracy  # noqa: E402
from edgesmith.data import load_data  # noqa: E402
from edgesmith.deploy.target import BenchOptions  # noqa: E402
from edgesmith.optimize.search import optimize  # noqa: E402
from edgesmith.pipeline import convert  # noqa: E402
from edgesmith.runtime.bench import benchmark  # noqa: E402
from edgesmith.runtime.report_schema import read_report  # noqa: E402

MAX_DROP = 1.0
BENCH = BenchOptions(runs=100, warmup=10, threads=1, energy="none")


def latency_ms(path) -> float:
    return benchmark(path, runs=BENCH.runs, warmup=BENCH.warmup, threads=BENCH.threads, energy="none")["summary"]["latency_ms"]["p50"]


def fixed_recipes(model_path: Path, data, out: Path, reference: float, resume: bool) -> dict:
    """Each built-in recipe's graph bytes (raw, then gzip), accuracy drop and latency (always measured in this run)."""
    rows = {}
    for recipe in RECIPES:
        report_path = out / recipe / "report.json"
        if resume and report_path.is_file():
            report = read_report(json.loads(report_path.read_text()))  # --resume: an earlier run's report
        else:
            try:
                report = convert(model_path, recipe, data, out / recipe)
            except AccuracyDropError as error:  # measured, over the recipe's budget: its numbers still count
                print(f"{recipe}: {error}")
                report = error.report
        rows[recipe] = {"graph_bytes": report.graph.tflite_bytes, "gzip_bytes": report.graph.gzip_bytes,
                        "accuracy_drop_pt": round(100 * (reference - report.verification.tflite_accuracy), 3),
                        "latency_ms": latency_ms(report.tflite_path)}
        print(f"{recipe:18}{rows[recipe]}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_MNIST) if SHARED_MNIST.is_file() else "builtin:mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=20000, help="samples the reference CNN is trained on")
    parser.add_argument("--tune-limit", type=int, default=6000,
                        help="samples every fine-tuning pass (recipes and search alike) sees; the test split is whole")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--out", default="bench-optimize")
    parser.add_argument("--resume", action="store_true",
                        help="reuse OUT/reference.keras and the recipes' conversions of an earlier run (latencies are "
                             "measured again; the search resumes its study)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(args.data)
    data.x_train, data.y_train = data.x_train[: args.train_limit], data.y_train[: args.train_limit]
    model_path = out / "reference.keras"
    resume = args.resume and model_path.is_file()
    if resume:
        from edgesmith.converters.load import load_model

        model = load_model(model_path)
    else:
        model = reference_cnn()  # fine_tune re-estimates BatchNorm statistics: a short model.fit leaves them stale
        fine_tune(model, data, epochs=args.epochs, batch_size=64)
        model.save(model_path)
    data.x_train, data.y_train = data.x_train[: args.tune_limit], data.y_train[: args.tune_limit]
    reference = accuracy(model, data)
    print(f"reference CNN: {100 * reference:.2f}% on {len(data.y_val)} test images")
    fixed = fixed_recipes(model_path, data, out / "fixed", reference, resume)
    within = {name: row for name, row in fixed.items() if row["accuracy_drop_pt"] <= MAX_DROP}
    smallest = min(within, key=lambda n: within[n]["graph_bytes"])  # the size objective: raw bytes
    fastest = min(within, key=lambda n: within[n]["latency_ms"])

    started = time.perf_counter()
    result = optimize(model_path, data, out / "search", max_accuracy_drop=MAX_DROP, objectives=("size", "latency"),
                      trials=args.trials, bench=BENCH,
                      progress=lambda stage, done, total: print(f"  trial {done}/{total}", flush=True))
    wall = time.perf_counter() - started
    if not result["met"]:
        print(f"search found nothing within {MAX_DROP} pt; best miss {result['miss_pt']} pt")
        return
    pick = result["pick"]
    quickest = min(result["front"], key=lambda r: r["latency_ms"])
    summary = {
        "reference_accuracy": reference, "fixed": fixed, "best_fixed_smallest": smallest, "best_fixed_fastest": fastest,
        "pick": {k: pick[k] for k in ("trial", "graph_bytes", "gzip_bytes", "latency_ms", "accuracy_drop_pt", "passes",
                                      "precisions")},
        "fastest_front": {k: quickest[k] for k in ("trial", "graph_bytes", "gzip_bytes", "latency_ms", "accuracy_drop_pt")},
        "smaller_x": round(within[smallest]["graph_bytes"] / pick["graph_bytes"], 2),
        "faster_x": round(within[fastest]["latency_ms"] / quickest["latency_ms"], 2),
        "search_wall_s": round(wall), "trials": result["trials"]["complete"], "failed": result["trials"]["failed"],
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(f"\nbest fixed recipe within {MAX_DROP} pt: smallest {smallest} ({within[smallest]['graph_bytes']:,} B, "
          f"{within[smallest]['gzip_bytes']:,} B gzip), "
          f"fastest {fastest} ({within[fastest]['latency_ms']:.3f} ms)")
    print(f"optimize pick: trial {pick['trial']}, {pick['graph_bytes']:,} B, {pick['gzip_bytes']:,} B gzip, "
          f"{pick['latency_ms']:.3f} ms, drop {pick['accuracy_drop_pt']:.2f} pt -> {summary['smaller_x']}x smaller as stored, "
          "the size objective (target >= 1.3x)")
    print(f"fastest front member: trial {quickest['trial']}, {quickest['latency_ms']:.3f} ms, drop "
          f"{quickest['accuracy_drop_pt']:.2f} pt -> {summary['faster_x']}x faster (target >= 1.3x)")
    print(f"search wall time: {wall:.0f} s for {summary['trials']} trials ({summary['failed']} failed)")


if __name__ == "__main__":
    main()
