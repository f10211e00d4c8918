"""How much of channel pruning's accuracy loss each part of recovery wins back, on a realistic small case.

A keras.applications MobileNetV2 (alpha 0.35, 32 x 32 x 3, trained from scratch) learns MNIST as 32 px RGB
(3,000 training images, 1,000 held-out test images), then loses 25 % of its channels
(``channel_prune(ratio=0.25)``) and is fine-tuned for a few epochs in each of these ways, from the same pruned
weights and seed:

* ``none``: no fine-tuning;
* ``old``: the labels alone, constant learning rate, every training row trained on (edgesmith before recovery);
* one change at a time: ``+cosine``, ``+warmup_cosine``, ``+distill`` (the unpruned model as teacher);
* ``distill+warmup_cosine``;
* ``new``: what :func:`~edgesmith.converters.channel_prune.channel_prune` now does by default: distillation,
  warm-up + cosine, 10 % of the training rows held out, early stopping and the best epoch kept.

BatchNorm statistics are re-estimated in every fine-tuned variant (fine_tune did so before this change too).
Each variant reports the top-1 accuracy on the test images and its drop against the unpruned model.

Run:  TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/recovery.py [--epochs 3] [--source-epochs 20] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"

# name -> recover() options (teacher=True: the unpruned model); "new" is channel_prune's own fine-tuning
VARIANTS = {
    "old": {"schedule": "constant", "validation": 0.0},
    "+cosine": {"schedule": "cosine", "validation": 0.0},
    "+warmup_cosine": {"schedule": "warmup_cosine", "validation": 0.0},
    "+distill": {"schedule": "constant", "validation": 0.0, "teacher": True},
    "distill+warmup_cosine": {"schedule": "warmup_cosine", "validation": 0.0, "teacher": True},
}


def mnist_rgb32(path: Path, train: int, test: int):
    """MNIST as 32 x 32 RGB in [0, 1] (2 px of padding, the gray channel repeated), as TrainingData."""
    with np.load(path) as arrays:
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))

    def images(x):
        x = np.pad(x.astype(np.float32) / 255.0, ((0, 0), (2, 2), (2, 2)))
        return np.repeat(x[..., None], 3, axis=-1)

    return SimpleNamespace(x_train=images(x_train[:train]), y_train=y_train[:train].astype(np.int64),
                           x_val=images(x_test[:test]), y_val=y_test[:test].astype(np.int64), batch_size=32,
                           labeled=True)


def source_model(data, epochs: int):
    import keras

    from edgesmith.converters.train import fine_tune

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), weights=None, classes=10)
    return fine_tune(model, data, epochs=epochs, learning_rate=2e-3, schedule="cosine", validation=0.0)


def variants(source, data, epochs: int, seed: int, chosen=None) -> dict:
    """Test accuracy (%) of every variant (or those ``chosen``), and the recovery record of ``new``."""
    import keras

    from edgesmith.converters import record_of
    from edgesmith.converters.channel_prune import channel_prune
    from edgesmith.converters.kernels import copy_model
    from edgesmith.converters.train import recover
    from edgesmith.converters.verify import accuracy

    pruned = channel_prune(source, ratio=0.25)
    results = {"none": {"accuracy": 100 * accuracy(pruned, data)}}
    for name, options in VARIANTS.items():
        if chosen and name not in chosen:
            continue
        keras.utils.set_random_seed(seed)
        model, started = copy_model(pruned), time.monotonic()
        teacher = source if options.get("teacher") else None
        report = recover(model, data, epochs=epochs, learning_rate=1e-3, **{**options, "teacher": teacher})
        results[name] = {"accuracy": 100 * accuracy(model, data), "seconds": round(time.monotonic() - started, 1),
                         "recovery": report.as_dict()}
    keras.utils.set_random_seed(seed)
    started = time.monotonic()
    new = channel_prune(source, data, ratio=0.25, epochs=epochs)
    results["new"] = {"accuracy": 100 * accuracy(new, data), "seconds": round(time.monotonic() - started, 1),
                      "recovery": record_of(new).details["recovery"][0]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs after pruning")
    parser.add_argument("--source-epochs", type=int, default=20, help="epochs the source is trained")
    parser.add_argument("--seeds", type=int, default=2, help="fine-tuning seeds per variant")
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--variants", nargs="*", help=f"run only these of {', '.join(VARIANTS)} (and none, new)")
    parser.add_argument("--source", type=Path, help="source .keras file (trained and saved there if absent)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from edgesmith.converters.verify import accuracy

    data = mnist_rgb32(MNIST, args.train, args.test)
    started = time.monotonic()
    if args.source and args.source.exists():
        from edgesmith.converters.load import load_model

        source, trained = load_model(args.source), f"loaded from {args.source}"
    else:
        trained = f"{args.source_epochs} epochs"
        source = source_model(data, args.source_epochs)
        if args.source:
            source.save(args.source)
    base = 100 * accuracy(source, data)
    print(f"source: MobileNetV2 alpha 0.35, {trained}, {base:.1f} % "
          f"({time.monotonic() - started:.0f} s)")
    runs = [variants(source, data, args.epochs, seed, args.variants) for seed in range(args.seeds)]
    print(f"{'variant':24} {'accuracy %':>12} {'drop pt':>9} {'seconds':>8}")
    for name in runs[0]:
        scores = [run[name]["accuracy"] for run in runs]
        seconds = np.mean([run[name].get("seconds", 0.0) for run in runs])
        shown = " / ".join(f"{score:.1f}" for score in scores)
        print(f"{name:24} {shown:>12} {base - np.mean(scores):9.1f} {seconds:8.1f}")
    for run in runs:
        print("new:", json.dumps(run["new"]["recovery"]))
    if args.json:
        args.json.write_text(json.dumps({"source_accuracy": base, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
