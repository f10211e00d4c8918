"""Architecture passes on MNIST (padded to 32 x 32): MACs, .tflite latency and accuracy, ratios within one run.

    cd /work/main && TF_CPP_MIN_LOG_LEVEL=3 .venv/bin/python benchmarks/architecture.py [--train 12000 --epochs 4]

Reference models: a ResNet-8 (the MLPerf Tiny image-classification network) and
keras.applications MobileNetV2 alpha=0.35 at 96 x 96 (latency structure only).
Latency is the median LiteRT invoke time (1 thread, float) of each .tflite,
measured in this run, so only ratios between models of the same run mean much.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from edgesmith.converters.channel_prune import apply_plan, channel_prune, plan_pruning  # noqa: E402
from edgesmith.converters.distill import accuracy, distill  # noqa: E402
from edgesmith.converters.lowrank import lowrank  # noqa: E402
from edgesmith.converters.macs import count_macs  # noqa: E402
from edgesmith.converters.mobilenetize import mobilenetize  # noqa: E402
from edgesmith.converters.ptq import float_tflite  # noqa: E402
from edgesmith.converters.record import record_of  # noqa: E402

L = keras.layers
MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist.npz")


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
    """The distillation student: a thin CNN, a fraction of ResNet-8's MACs."""
    return keras.Sequential([
        keras.Input((32, 32, 1)), L.Conv2D(8, 3, strides=2, activation="relu"),
        L.Conv2D(16, 3, strides=2, activation="relu"), L.Flatten(), L.Dense(classes, activation="softmax"),
    ], name="student")


def train(model, x, y, epochs):
    model.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


def latency_ms(model, runs=200) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=float_tflite(model), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.random.default_rng(0).normal(size=detail["shape"]).astype("float32"))
    for _ in range(20):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def ratio_for_macs(model, target: float, **options) -> float:
    """The channel ratio whose pruned model has about ``target`` x the MACs (bisection on rebuilt models)."""
    low, high, full = 0.0, 0.9, count_macs(model)
    for _ in range(7):
        middle = (low + high) / 2
        macs = count_macs(apply_plan(model, plan_pruning(model, ratio=middle, **options)))
        low, high = (middle, high) if macs / full > target else (low, middle)
    return (low + high) / 2


def row(rows, name, model, acc, base_macs, base_ms):
    ms = latency_ms(model)
    rows.append((name, model.count_params(), count_macs(model), acc, ms, base_macs / count_macs(model), base_ms / ms))
    print(f"  {name}: done", flush=True)
    return ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=12000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    x, y, x_test, y_test = mnist(args.train, args.test)
    test = (x_test, y_test)
    keras.utils.set_random_seed(0)
    rows, figures = [], {}

    print("training the ResNet-8 teacher...", flush=True)
    base = train(resnet8(), x, y, 2 * args.epochs)
    base_acc, base_macs = accuracy(base, test), count_macs(base)
    base_ms = latency_ms(base)
    rows.append(("resnet8", base.count_params(), base_macs, base_acc, base_ms, 1.0, 1.0))

    # channel pruning to about half the MACs, fine-tuned
    ratio = ratio_for_macs(base, 0.5, round_to=4, scope="layer")
    pruned = channel_prune(base, (x, y), ratio=ratio, round_to=4, scope="layer", steps=2, epochs=1)
    pruned_ms = row(rows, f"channel_prune {ratio:.2f} +ft", pruned, accuracy(pruned, test), base_macs, base_ms)
    mac_reduction = base_macs / count_macs(pruned)
    figures["prune: speedup / MAC reduction"] = (base_ms / pruned_ms) / mac_reduction
    figures["prune: accuracy drop (pt)"] = 100 * (base_acc - rows[-1][3])

    # MobileNet-style replacement, rank 1, then distillation from the original
    stem = next(layer.name for layer in base.layers if isinstance(layer, L.Conv2D))  # 1 input channel: no gain
    mobile = mobilenetize(base, rank=1, skip=(stem,))
    layers = record_of(mobile).details["layers"]
    replaced_before = sum(v["macs_before"] for v in layers.values())
    replaced_after = sum(v["macs_after"] for v in layers.values())
    row(rows, "mobilenetize r=1", mobile, accuracy(mobile, test), base_macs, base_ms)
    mobile = distill(mobile, (x, y), epochs=2 * args.epochs, label_weight=0.5, learning_rate=5e-4, batch_size=64)
    row(rows, "mobilenetize r=1 +distill", mobile, accuracy(mobile, test), base_macs, base_ms)
    figures["mobilenetize: MAC reduction in replaced layers"] = replaced_before / replaced_after
    figures["mobilenetize: accuracy drop after distill (pt)"] = 100 * (base_acc - rows[-1][3])

    # distillation vs labels alone, same student, same epochs, few labels
    few = slice(0, max(1000, args.train // 6))
    keras.utils.set_random_seed(1)
    alone = train(small_cnn(), x[few], y[few], 3 * args.epochs)
    keras.utils.set_random_seed(1)
    distilled = distill(base, (x[few], y[few]), student=small_cnn(), epochs=3 * args.epochs, label_weight=0.5,
                        learning_rate=2e-3, batch_size=64)
    row(rows, "student, labels only", alone, accuracy(alone, test), base_macs, base_ms)
    row(rows, "student, distilled", distilled, accuracy(distilled, test), base_macs, base_ms)
    figures["distill: accuracy gain over labels only (pt)"] = 100 * (rows[-1][3] - rows[-2][3])

    # low-rank at two ranks (spatial SVD of the 3x3 convs too), each distilled briefly
    for rank_ratio in (0.5, 0.25):
        factored = lowrank(base, rank_ratio=rank_ratio, spatial=True, skip=(base.layers[-1].name,))
        factored = distill(factored, (x, y), epochs=1, label_weight=0.1)
        row(rows, f"lowrank {rank_ratio} +distill", factored, accuracy(factored, test), base_macs, base_ms)

    # MobileNetV2 alpha=0.35 at 96 x 96: latency structure of channel pruning to half the MACs
    net = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35, classes=10)
    net_macs, net_ms = count_macs(net), latency_ms(net)
    net_ratio = ratio_for_macs(net, 0.5, round_to=8, scope="layer")
    thin = apply_plan(net, plan_pruning(net, ratio=net_ratio, round_to=8, scope="layer"))
    thin_ms = latency_ms(thin)
    rows.append(("mobilenet_v2 0.35 96px", net.count_params(), net_macs, None, net_ms, 1.0, 1.0))
    rows.append((f"  channel_prune {net_ratio:.2f}", thin.count_params(), count_macs(thin), None, thin_ms,
                 net_macs / count_macs(thin), net_ms / thin_ms))
    figures["mobilenet_v2: speedup / MAC reduction"] = (net_ms / thin_ms) / (net_macs / count_macs(thin))

    print(f"\n{'model':32s} {'params':>8s} {'MACs':>11s} {'acc':>6s} {'ms':>7s} {'MACs x':>7s} {'speed x':>7s}")
    for name, params, macs, acc, ms, mac_x, speed_x in rows:
        shown = "-" if acc is None else f"{100 * acc:.2f}"
        print(f"{name:32s} {params:8d} {macs:11d} {shown:>6s} {ms:7.3f} {mac_x:7.2f} {speed_x:7.2f}")
    print()
    for name, value in figures.items():
        print(f"{name}: {value:.2f}")


if __name__ == "__main__":
    main()
