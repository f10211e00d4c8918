"""TensorFlow Lite Micro on real models: arena recorded vs smallest that runs, flash, fits per profile, and
(with data) accuracy in TFLM against LiteRT's reference kernels.

Models: the third-party .tflite files tests/assets.py caches (micro-wakeword's streaming int8 models, made for
TFLM on ESP32; MediaPipe's face landmark model; ones TFLM refuses, with the op it names), plus any .tflite given
with --model PATH[=DATA_SPEC] (e.g. the int8 digits model `edgesmith demo` writes, with builtin:digits).

With --compress, each --model is also written with TFLM's lookup-table weight compression
(edgesmith.mcu.compress_tflm, checked bit-identical in TFLM on its data) and flash and arena are given
before and after.

Run:  TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/mcu.py [--model demo-out/compressed/model.tflite=builtin:digits]
      [--compress]

Compression, measured (2026-11, tflite-micro 0.dev20261023, stm32f746 profile, flash = model + export overhead):

| model | params | flash before | flash after | ratio | arena before | arena after | check |
|---|---|---|---|---|---|---|---|
| MNIST CNN (conv16, conv32, dense 800->256->10), cluster 16 -> qat -> int8, int8 io | 212,441 | 225,146 B | 118,803 B | 0.528 | 16,720 B | 209,680 B | identical on 2,000 samples |
| the same CNN, recipe mcu-smallest-flash (channel_prune 25 % -> cluster 16 -> qat -> int8) | 124,057 | 137,459 B | 74,195 B | 0.540 | 9,840 B | 124,304 B | identical on 2,000 samples |

(the same CNN as plain int8, no clustering, recipe mcu-int8: 229,976 B, so 0.517x and 0.323x of that; goal <= 0.6x.
The arena grows by the decoded kernels: the 204,800-byte dense kernel is expanded into it.)
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


def measure(path: Path, data: str | None, compress: bool = False) -> dict:
    started = time.perf_counter()
    target = path.with_name(f"{path.stem}.compressed.tflite") if compress else None
    try:
        report = check_mcu(path, data=data, compress=target)
    except EdgesmithError as error:
        return {"model": path.name, "refused": str(error).split(": ", 1)[-1]}
    memory = report["memory"]
    row = {"model": path.name, "model_bytes": memory["model_bytes"], "macs": report["macs"],
           "arena_recorded": memory["arena_recorded_bytes"], "arena_smallest": memory["arena_smallest_bytes"],
           "fits": [p["profile"] for p in report["profiles"] if p["fits"]], "seconds": round(time.perf_counter() - started, 1)}
    if "compression" in report:
        done = report["compression"]
        row.update(flash_before=done["flash_before_bytes"], flash_after=done["flash_after_bytes"],
                   flash_ratio=done["flash_ratio"], arena_before=done["before"]["arena_bytes"],
                   arena_after=done["after"]["arena_bytes"], check=done["check"])
    if "accuracy" in report:
        acc = report["accuracy"]
        row.update(tflm_accuracy=acc["tflm_accuracy"], reference_accuracy=acc["reference_accuracy"],
                   top1_agreement=acc["top1_agreement"], outputs_differing=acc["outputs_differing"],
                   samples=acc["samples"])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="PATH[=DATA]")
    parser.add_argument("--compress", action="store_true", help="also compress each --model (TFLM lookup tables)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    models = [(real_tflite(name), None, False) for name in REAL]
    models += [(Path(spec.split("=", 1)[0]), spec.split("=", 1)[1] if "=" in spec else None, args.compress)
               for spec in args.model]
    rows = [measure(path, data, compress) for path, data, compress in models]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for row in rows:
        if "refused" in row:
            print(f"{row['model']:<38} refused: {row['refused']}")
            continue
        accuracy = (f"  TFLM {100 * row['tflm_accuracy']:.2f}% vs reference {100 * row['reference_accuracy']:.2f}%, "
                    f"{row['outputs_differing']}/{row['samples']} not bit-identical") if "samples" in row else ""
        compressed = (f"  compressed: flash {row['flash_before']:,} -> {row['flash_after']:,} B ({row['flash_ratio']:.3f}x), "
                      f"arena {row['arena_before']:,} -> {row['arena_after']:,} B, outputs identical on "
                      f"{row['check']['samples']} {row['check']['inputs']} samples") if "flash_ratio" in row else ""
        print(f"{row['model']:<38} {row['model_bytes']:>9,} B  arena recorded {row['arena_recorded']:>9,} B, "
              f"smallest {row['arena_smallest']:>9,} B  fits: {', '.join(row['fits']) or 'none'}{accuracy}{compressed}")


if __name__ == "__main__":
    main()
