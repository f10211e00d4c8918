"""Architecture passes on MNIST (padded to 32 x 32): MACs, .tflite latency and accuracy, ratios within one run.

    cd /work/main && TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/architecture.py [--train 12000 --epochs 4]
    ... benchmarks/architecture.py --only distill --seeds 5 --students mlp   # one distillation comparison alone

Reference models: a ResNet-8 (the MLPerf Tiny image-classification network) and
keras.applications MobileNetV2 alpha=0.35 at 96 x 96 (latency structure only),
plus ResNet-8 on 96 x 96 inputs (latency only: less fixed per-op cost).

Latency: float .tflite, LiteRT with XNNPACK, 1 thread. The models of one
reference are measured in interleaved rounds in this process (each round times
``--repeats`` invokes of every model), so machine noise hits them alike; a
speedup is the median over rounds of (reference time / model time).

Channel pruning is asked for 2x fewer MACs twice: with channels kept at
multiples of 8 (ARM NEON's XNNPACK tile) and at multiples of this CPU's
measured tile (16 on x86 AVX: 8 channels cost as much as 16), where a group of
one tile is left whole, so the reduction is as close to 2x as that allows.
Pruned and replaced models are fine-tuned like the teacher was trained: Adam,
cosine decay from 2e-3 to 0, half the teacher's epochs (channel pruning, on
labels) or all of them (mobilenetize, distilled from the teacher).

Distillation vs labels alone: per seed, the same student (same initial weights,
data order, optimizer, learning rate and epochs, on the teacher's training set)
is trained twice through ``distill``; the arms differ only in the loss: labels
alone (label_weight 1) or the library defaults, T=4 and label_weight 0.1. Two
students: a small CNN (capacity-bound: close to the teacher on labels alone)
and an MLP (capacity to spare, no convolutional prior: where soft labels help).
Accuracy is measured on the whole 10,000-image MNIST test set by default: on
2,000 images one accuracy has a sampling error of about 0.3 pt, the size of the
differences measured here.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from edgesmith.converters.channel_prune import MAX_RATIO, channel_prune, plan_pruning  # noqa: E402
from edgesmith.converters.distill import distill  # noqa: E402
from edgesmith.converters.lowrank import lowrank  # noqa: E402
from edgesmith.converters.macs import count_macs  # noqa: E402
from edgesmith.converters.mobilenetize import mobilenetize  # noqa: E402
from edgesmith.converters.ptq import float_tflite  # noqa: E402
from edgesmith.converters.record import record_of  # noqa: E402
from edgesmith.converters.train import as_dataset, fine_tune  # noqa: E402
from edgesmith.converters.verify import accuracy  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from runtime_overhead import interleaved_times  # noqa: E402

L = keras.layers
MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist.npz")
TARGET = 2.0  # MAC reduction asked of channel pruning
TEMPERATURE, LABEL_WEIGHT = 4.0, 0.1  # distill()'s documented defaults, fixed a priori (not tuned on the test set)
PEAK_LR = 2e-3  # Adam's learning rate at the start of every cosine schedule here


def mnist(train: int, test: int):
    with np.load(MNIST) as data:
        def prep(x):
            return np.pad(x[..., None].astype("float32") / 255.0, ((0, 0), (2, 2), (2, 2), (0, 0)))

        return (prep(data["x_train"][:train]), data["y_train"][:train].astype("int64"),
                prep(data["x_test"][:test]), data["y_test"][:test].astype("int64"))


def resnet8(input_shape=(32, 32, 1), classes=10) -> keras.Model:
    """MLPerf Tiny's ResNet-8: a 16-filter stem and three residual stacks of 16, 32 and 64 filters."""
    inputs = keras.Input(input_shape)
    x = L.ReLU()(L.BatchNormalization(momentum=0.9)(L.Conv2D(16, 3, padding="same")(inputs)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization(momentum=0.9)(L.Conv2D(filters, 3, strides=stride, padding="same")(x)))
        y = L.BatchNormalization(momentum=0.9)(L.Conv2D(filters, 3, padding="same")(y))
        shortcut = x if stride == 1 else L.Conv2D(filters, 1, strides=stride)(x)
        x = L.ReLU()(L.Add()([shortcut, y]))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(classes, activation="softmax")(x), name="resnet8")


def small_cnn(classes=10) -> keras.Model:
    """The distillation student: three 3x3 conv + 2x2 max-pool stages (8, 16, 32 filters), 11k params and
    1/18 of ResNet-8's MACs (98.2 % on MNIST from 12k labels; the earlier two stride-2 convs: 96.6 %)."""
    stages = [layer for filters in (8, 16, 32)
              for layer in (L.Conv2D(filters, 3, padding="same", activation="relu"), L.MaxPooling2D())]
    return keras.Sequential([keras.Input((32, 32, 1)), *stages, L.Flatten(), L.Dense(classes, activation="softmax")],
                            name="student")


def mlp_student(classes=10) -> keras.Model:
    """The second distillation student: two hidden Dense layers of 256 on the flattened image (331k params,
    0.33 M MACs, 1/37 of ResNet-8's). It has capacity to spare and no convolutional prior, so on 12k labels
    it fits the training images more than the digits; the teacher's soft labels are what regularize it."""
    hidden = [L.Dense(256, activation="relu"), L.Dense(256, activation="relu")]
    return keras.Sequential([keras.Input((32, 32, 1)), L.Flatten(), *hidden, L.Dense(classes, activation="softmax")],
                            name="mlp_student")


STUDENTS = {"cnn": small_cnn, "mlp": mlp_student}


def distill_vs_labels(teacher, data, test, seeds, epochs: int, student: str):
    """``([(labels-only acc, distilled acc), ...] per seed, last (labels-only, distilled) models)``.

    Both arms of a seed start from the same weights and see the same batches through the same ``distill``
    call; label_weight 1 turns the distillation loss off, so the loss is the only difference.
    """
    pairs, models = [], None
    for seed in seeds:
        models = tuple(trained_student(teacher, data, seed, epochs, weight, student) for weight in (1.0, LABEL_WEIGHT))
        pairs.append(tuple(accuracy(model, test) for model in models))
        print(f"  {student} seed {seed}: labels only {100 * pairs[-1][0]:.2f} %, "
              f"distilled {100 * pairs[-1][1]:.2f} %", flush=True)
    return pairs, models


def trained_student(teacher, data, seed: int, epochs: int, label_weight: float, student: str):
    keras.utils.set_random_seed(seed)
    return distill(teacher, data, student=STUDENTS[student](), epochs=epochs, temperature=TEMPERATURE,
                   label_weight=label_weight, learning_rate=PEAK_LR, batch_size=64)


def distill_figures(pairs, student: str) -> dict:
    """Mean and std (over seeds) of both arms' accuracy and of the per-seed gain, in % / pt."""
    acc = 100 * np.array(pairs)
    gains = acc[:, 1] - acc[:, 0]
    figures = {}
    for name, values in (("labels only acc (%)", acc[:, 0]), ("distilled acc (%)", acc[:, 1]), ("gain (pt)", gains)):
        figures[f"distill {student}: {name} mean"] = values.mean()
        figures[f"distill {student}: {name} std"] = values.std(ddof=1) if len(values) > 1 else 0.0
    figures.update({f"distill {student}: gain seed {i} (pt)": gain for i, gain in enumerate(gains)})
    figures[f"distill {student}: seeds won"] = float(np.sum(gains > 0))
    return figures


def distillation(base, data, test, args, table=None) -> dict:
    """The distillation comparison for every student in ``--students``; adds the last seed's pair to ``table``."""
    figures = {}
    for student in args.students.split(","):
        pairs, (alone, distilled) = distill_vs_labels(base, data, test, range(args.seeds), 3 * args.epochs, student)
        figures.update(distill_figures(pairs, student))
        if table is not None:
            table.add(f"{student} student, labels only (seed {args.seeds - 1})", alone, pairs[-1][0])
            table.add(f"{student} student, distilled (seed {args.seeds - 1})", distilled, pairs[-1][1])
    return figures


def train(model, x, y, epochs):
    """Adam with cosine decay from ``PEAK_LR`` to 0 (a constant 2e-3 left the student at 97.0 %, this at 98.2 %)."""
    return fine_tune(model, (x, y), epochs=epochs, learning_rate=PEAK_LR, batch_size=64, schedule="cosine")


def interleaved_latency(models: list, rounds: int, repeats: int) -> list:
    """``[(median ms, speedup over models[0]), ...]`` of the models as float .tflite files, timed in
    interleaved rounds; the speedup is the median over rounds of the per-round ratio."""
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"m{i}.tflite" for i in range(len(models))]
        for path, model in zip(paths, models):
            path.write_bytes(float_tflite(model))
        times = interleaved_times(paths, rounds, repeats)
    return [(1e3 * float(np.median(times[:, i])), float(np.median(times[:, 0] / times[:, i])))
            for i in range(len(models))]


def channel_tile(rounds: int = 15) -> int:
    """XNNPACK's output-channel tile on this CPU, measured: 16 if a 1x1 conv with 8 outputs is about as slow
    as one with 16 (the 8 are padded to a 16-wide tile, as on x86 AVX), else 8 (ARM NEON)."""
    convs = [keras.Sequential([keras.Input((32, 32, 64)), L.Conv2D(c, 1)]) for c in (8, 16, 24)]
    (t8, _), (t16, _), (t24, _) = interleaved_latency(convs, rounds, repeats=200)
    return 16 if t16 - t8 < 0.5 * (t24 - t16) else 8


def reachable_target(model, round_to: int) -> float:
    """``TARGET``, or the largest MAC reduction below it that pruning at ``round_to`` can reach."""
    plan = plan_pruning(model, ratio=MAX_RATIO, round_to=round_to)
    return min(TARGET, 0.999 * count_macs(model) / plan.macs())


def prune_variants(base, data, tile: int, **fine_tune) -> list:
    """``[(name, model), ...]``: channel pruning to about 2x fewer MACs at multiples of 8 and of ``tile``."""
    variants = []
    for round_to in sorted({8, tile}):
        target = reachable_target(base, round_to)
        pruned = channel_prune(base, data, macs_reduction=target, round_to=round_to, **fine_tune)
        suffix = " +ft" if fine_tune.get("epochs") else ""
        variants.append((f"channel_prune target {target:.2f}x r{round_to}{suffix}", pruned))
    return variants


class Table:
    """Rows of one reference model: accuracy now, latency measured for all rows together at the end."""

    def __init__(self, base, name: str, acc=None):
        self.entries = [(name, base, acc)]

    def add(self, name: str, model, acc=None):
        self.entries.append((name, model, acc))
        print(f"  {name}: done", flush=True)

    def rows(self, rounds: int, repeats: int) -> list:
        base_macs = count_macs(self.entries[0][1])
        timings = interleaved_latency([model for _, model, _ in self.entries], rounds, repeats)
        return [(name, model.count_params(), count_macs(model), acc, ms, base_macs / count_macs(model), speed)
                for (name, model, acc), (ms, speed) in zip(self.entries, timings)]


def pruning_efficiency(rows: list) -> dict:
    """Speedup / MAC reduction of the channel-pruned rows of one table (the first row is the reference)."""
    return {f"{rows[0][0]} / {name.strip()}: speedup / MAC reduction": speed / mac_x
            for name, _, _, _, _, mac_x, speed in rows if "channel_prune" in name}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=12000)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=40, help="interleaved latency rounds")
    parser.add_argument("--repeats", type=int, default=50, help="invokes of each model per round")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the distillation comparison")
    parser.add_argument("--students", default="cnn,mlp", help=f"distillation students, of: {', '.join(STUDENTS)}")
    parser.add_argument("--only", choices=("distill",), help="run only this part (after training the teacher)")
    args = parser.parse_args()
    x, y, x_test, y_test = mnist(args.train, args.test)
    test = as_dataset((x_test, y_test))
    figures = {}
    tile = None if args.only else channel_tile()
    keras.utils.set_random_seed(0)  # after channel_tile, so --only trains the same teacher
    print("training the ResNet-8 teacher...", flush=True)
    base = train(resnet8(), x, y, 2 * args.epochs)
    base_acc = accuracy(base, test)
    print(f"  teacher accuracy {100 * base_acc:.2f} %", flush=True)
    if args.only == "distill":
        print_figures(distillation(base, (x, y), test, args))
        return
    print(f"measured XNNPACK channel tile on this CPU: {tile}", flush=True)
    resnet = Table(base, "resnet8", base_acc)

    # channel pruning to about half the MACs, fine-tuned
    for name, pruned in prune_variants(base, (x, y), tile, epochs=args.epochs, learning_rate=PEAK_LR):
        resnet.add(name, pruned, accuracy(pruned, test))
        figures[f"{name}: accuracy drop (pt)"] = 100 * (base_acc - resnet.entries[-1][2])

    # MobileNet-style replacement, rank 1, then distillation from the original
    stem = next(layer.name for layer in base.layers if isinstance(layer, L.Conv2D))  # 1 input channel: no gain
    mobile = mobilenetize(base, rank=1, skip=(stem,))
    layers = record_of(mobile).details["layers"]
    replaced_before = sum(v["macs_before"] for v in layers.values())
    replaced_after = sum(v["macs_after"] for v in layers.values())
    resnet.add("mobilenetize r=1", mobile, accuracy(mobile, test))
    mobile = distill(mobile, (x, y), epochs=2 * args.epochs, learning_rate=PEAK_LR, batch_size=64)
    resnet.add("mobilenetize r=1 +distill", mobile, accuracy(mobile, test))
    figures["mobilenetize: MAC reduction in replaced layers"] = replaced_before / replaced_after
    figures["mobilenetize: accuracy drop after distill (pt)"] = 100 * (base_acc - resnet.entries[-1][2])

    # distillation vs labels alone: same student, data, epochs and optimizer per seed; only the loss differs
    figures.update(distillation(base, (x, y), test, args, resnet))

    # low-rank at two ranks (spatial SVD of the 3x3 convs too), each distilled briefly
    for rank_ratio in (0.5, 0.25):
        factored = lowrank(base, rank_ratio=rank_ratio, spatial=True, skip=(base.layers[-1].name,))
        factored = distill(factored, (x, y), epochs=1, label_weight=0.1)
        resnet.add(f"lowrank {rank_ratio} +distill", factored, accuracy(factored, test))

    # latency structure only (untrained weights): MobileNetV2 alpha=0.35 and ResNet-8 on 96 x 96 inputs
    net = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35, classes=10)
    mobilenet_v2 = Table(net, "mobilenet_v2 0.35 96px")
    big = resnet8(input_shape=(96, 96, 1))
    resnet_96 = Table(big, "resnet8 96px")
    for table, model in ((mobilenet_v2, net), (resnet_96, big)):
        for name, pruned in prune_variants(model, None, tile):
            table.add(f"  {name}", pruned)

    print("measuring latency (interleaved rounds)...", flush=True)
    rows = []
    for table in (resnet, mobilenet_v2, resnet_96):
        measured = table.rows(args.rounds, args.repeats)
        rows.extend(measured)
        figures.update(pruning_efficiency(measured))
    print_table(rows, figures, tile)


def print_table(rows, figures, tile):
    print(f"\n{'model':34s} {'params':>8s} {'MACs':>11s} {'acc':>6s} {'ms':>7s} {'MACs x':>7s} {'speed x':>7s}")
    for name, params, macs, acc, ms, mac_x, speed_x in rows:
        shown = "-" if acc is None else f"{100 * acc:.2f}"
        print(f"{name:34s} {params:8d} {macs:11d} {shown:>6s} {ms:7.3f} {mac_x:7.2f} {speed_x:7.2f}")
    print(f"\nchannel tile measured on this CPU: {tile}")
    print_figures(figures)


def print_figures(figures):
    for name, value in figures.items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
