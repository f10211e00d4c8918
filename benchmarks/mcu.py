"""TensorFlow Lite Micro on real models: arena recorded vs smallest that runs, flash, fits per profile, and
(with data) accuracy in TFLM against LiteRT's reference kernels.

Models: the third-party .tflite files tests/assets.py caches (micro-wakeword's streaming int8 models, made for
TFLM on ESP32; MediaPipe's face landmark model; ones TFLM refuses, with the op it names), plus any .tflite given
with --model PATH[=DATA_SPEC] (e.g. the int8 digits model `edgesmith demo` writes, with builtin:digits).

Run:  TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/mcu.py [--model demo-out/compressed/model.tflite=builtin:digits]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgesmith.mcu import check_mcu  # noqa: E402
from edgesmith.runtime.errors import EdgesmithError  # noqa: E402
from tests.assets import real_tflite  # noqa: E402

REAL = ["okay_nabu", "hey_jarvis", "hey_mycroft", "alexa", "face_landmark", "face_detection_short_range",
        "face_detection_full_range_sparse", "face_landmark_with_attention"]


def measure(path: Path, data: str | None) -> dict:
    started = time.perf_counter()
    try:
        report = check_mcu(path, data=data)
    except EdgesmithError as error:
        return {"model": path.name, "refused": str(error).split(": ", 1)[-1]}
    memory = report["memory"]
    row = {"model": path.name, "model_bytes": memory["model_bytes"], "macs": report["macs"],
           "arena_recorded": memory["arena_recorded_bytes"], "arena_smallest": memory["arena_smallest_bytes"],
           "fits": [p["profile"] for p in report["profiles"] if p["fits"]], "seconds": round(time.perf_counter() - started, 1)}
    if "accuracy" in report:
        acc = report["accuracy"]
        row.update(tflm_accuracy=acc["tflm_accuracy"], reference_accuracy=acc["reference_accuracy"],
                   top1_agreement=acc["top1_agreement"], outputs_differing=acc["outputs_differing"],
                   samples=acc["samples"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="PATH[=DATA]")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    models = [(real_tflite(name), None) for name in REAL]
    models += [(Path(spec.split("=", 1)[0]), spec.split("=", 1)[1] if "=" in spec else None) for spec in args.model]
    rows = [measure(path, data) for path, data in models]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        if "refused" in row:
            print(f"{row['model']:<38} refused: {row['refused']}")
            continue
        accuracy = (f"  TFLM {100 * row['tflm_accuracy']:.2f}% vs reference {100 * row['reference_accuracy']:.2f}%, "
                    f"{row['outputs_differing']}/{row['samples']} not bit-identical") if "samples" in row else ""
        print(f"{row['model']:<38} {row['model_bytes']:>9,} B  arena recorded {row['arena_recorded']:>9,} B, "
              f"smallest {row['arena_smallest']:>9,} B  fits: {', '.join(row['fits']) or 'none'}{accuracy}")


if __name__ == "__main__":
    main()
