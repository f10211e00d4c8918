"""Does the quantization debugger blame the layers that measurably cost accuracy? On the compression benchmark's CNNs.

    .venv/bin/python benchmarks/debug_agreement.py [--model reference|wide] [--train-limit 3000] [--epochs 3]
        [--precision int4|int8] [--out bench-out/debug-agreement]

Trains the CNN as ``benchmarks/compression.py`` does (or reuses ``OUT/MODEL.keras``), quantizes every layer to
``--precision`` through the mixed-precision quantizer (int4: 4-bit weights, int8 activations), and then:

* **debugger**: ``edgesmith debug`` on that .tflite ranks the weighted layers by what each one's own error costs
  the model's output (``output_snr_db``, worst first); the error each adds by itself (``local_channel_snr_db``)
  is ranked too, for comparison;
* **measured**: for each weighted layer, the same .tflite with only that layer raised one step (int4 -> int8,
  int8 -> float32), run on the whole test split: the accuracy won back, and the error left in the model's output
  (SNR of the .tflite's output against the float Keras model's, in dB), a finer signal than accuracy on a model
  that loses only a point or two.

Prints one row per layer and the Spearman rank correlation between the debugger's ranking and each measured
ranking (1.0: the same order) for both debugger figures, and each one's worst layer beside the measured one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(__file__))

from compression import MODELS, SHARED_MNIST, train  # noqa: E402

from edgesmith.converters.debug import debug_quantization, snr_db  # noqa: E402
from edgesmith.converters.mixed_precision import MixedPrecisionQuantizer, next_precision, weighted_layers  # noqa: E402
from edgesmith.converters.ptq import float_tflite  # noqa: E402
from edgesmith.data import load_data  # noqa: E402
from edgesmith.runtime.model import Model  # noqa: E402


def tflite_outputs(content: bytes, samples: np.ndarray) -> np.ndarray:
    """The .tflite's (dequantized) outputs on ``samples``, in batches of 256, through edgesmith.runtime."""
    with tempfile.NamedTemporaryFile(suffix=".tflite") as file:
        file.write(content)
        file.flush()
        model = Model(file.name, threads=1)
        return np.concatenate([model.predict(samples[start:start + 256]) for start in range(0, len(samples), 256)])


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long sequences (ties ranked by position)."""
    ranks = [np.argsort(np.argsort(np.asarray(values, dtype=np.float64), kind="stable")) for values in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="reference")
    parser.add_argument("--data", default=str(SHARED_MNIST) if SHARED_MNIST.is_file() else "builtin:mnist")
    parser.add_argument("--train-limit", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--precision", choices=("int4", "int8"), default="int4")
    parser.add_argument("--debug-samples", type=int, default=256)
    parser.add_argument("--out", default="bench-out/debug-agreement")
    args = parser.parse_args(argv)
    import keras

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_data(args.data, limit=None)
    keep = np.arange(min(args.train_limit, len(data.x_train)))
    data.x_train, data.y_train = data.x_train.subset(keep), data.y_train[keep]
    source = out / f"{args.model}.keras"
    if source.is_file():
        model = keras.models.load_model(source)
    else:
        model = train(MODELS[args.model](), data, args.epochs)
        model.save(source)
    test_x, test_y = np.asarray(data.x_val[:], dtype=np.float32), np.asarray(data.y_val)
    reference = np.asarray(model.predict(test_x, batch_size=256, verbose=0))
    layers = weighted_layers(model)
    quantizer = MixedPrecisionQuantizer(float_tflite(model), data, layers)

    def measured(content: bytes) -> dict:
        outputs = tflite_outputs(content, test_x)
        return {"accuracy": float(np.mean(outputs.argmax(-1) == test_y)),
                "output_snr_db": snr_db(float(np.sum(reference ** 2)), float(np.sum((outputs - reference) ** 2)))}

    path = out / f"{args.model}-{args.precision}.tflite"
    path.write_bytes(quantizer.quantize({}, default=args.precision))
    base = measured(path.read_bytes())
    report = debug_quantization(model, path, data, samples=args.debug_samples)
    # a convolution fused with its BatchNorm and ReLU is reported under the last of them, with the others as "fused"
    found = {name: row for row in report["layers"] for name in [row["layer"], *row["fused"]] if name in layers}
    rows = []
    for layer in layers:
        raised = next_precision(args.precision)
        gain = measured(quantizer.quantize({layer: raised}, default=args.precision))
        rows.append({"layer": layer, "raised_to": raised,
                     "debugger_output_snr_db": found.get(layer, {}).get("output_snr_db"),
                     "debugger_local_snr_db": found.get(layer, {}).get("local_channel_snr_db"),
                     "accuracy_gain_pt": round(100 * (gain["accuracy"] - base["accuracy"]), 2),
                     "output_snr_gain_db": round(gain["output_snr_db"] - base["output_snr_db"], 2)})
    result = {"model": args.model, "precision": args.precision,
              "keras_accuracy": float(np.mean(reference.argmax(-1) == test_y)), "base": base, "layers": rows,
              "unmatched": report["unmatched"], **agreement(rows)}
    print_result(result)
    (out / f"{args.model}-{args.precision}.json").write_text(json.dumps(result, indent=2))
    return result


def agreement(rows: list) -> dict:
    """Each debugger figure's worst layer and its Spearman correlation with each measured gain, beside the measured
    worst layer. A low debugger SNR and a large gain both mean "hurts most": SNR is correlated with the negated gain."""
    found = {"measured_worst": max(rows, key=lambda r: r["output_snr_gain_db"])["layer"]}
    for figure in ("debugger_output_snr_db", "debugger_local_snr_db"):
        ranked = [row for row in rows if row[figure] is not None]
        found[f"{figure}_worst"] = min(ranked, key=lambda r: r[figure])["layer"]
        for measure in ("output_snr_gain_db", "accuracy_gain_pt"):
            found[f"spearman_{figure}_vs_{measure}"] = spearman([r[figure] for r in ranked],
                                                                [-r[measure] for r in ranked])
    return found


def print_result(result: dict) -> None:
    base = result["base"]
    print(f"{result['model']} at {result['precision']}: Keras {100 * result['keras_accuracy']:.2f}%, .tflite "
          f"{100 * base['accuracy']:.2f}%, output SNR {base['output_snr_db']:.1f} dB")
    print(f"{'layer':14}{'raised to':>10}{'debugger output SNR dB':>24}{'local SNR dB':>14}{'accuracy gain pt':>18}"
          f"{'output SNR gain dB':>20}")
    for row in sorted(result["layers"], key=lambda r: (r["debugger_output_snr_db"] is None, r["debugger_output_snr_db"])):
        shown = ["-" if row[key] is None else f"{row[key]:.1f}" for key in ("debugger_output_snr_db",
                                                                            "debugger_local_snr_db")]
        print(f"{row['layer']:14}{row['raised_to']:>10}{shown[0]:>24}{shown[1]:>14}{row['accuracy_gain_pt']:>18.2f}"
              f"{row['output_snr_gain_db']:>20.2f}")
    for figure, label in (("debugger_output_snr_db", "output SNR"), ("debugger_local_snr_db", "local SNR")):
        print(f"Spearman, debugger ranking by {label} vs measured: "
              f"{result[f'spearman_{figure}_vs_output_snr_gain_db']:.2f} on output SNR gain, "
              f"{result[f'spearman_{figure}_vs_accuracy_gain_pt']:.2f} on accuracy gain; worst "
              f"{result[f'{figure}_worst']} (measured: {result['measured_worst']})")


if __name__ == "__main__":
    main()
