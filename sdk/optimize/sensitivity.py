"""How much each layer suffers from quantization and from pruning, one layer at a time.

>>> from edgesmith.optimize import sensitivity
>>> report = sensitivity(model, data)
>>> print(format_sensitivity(report))
layer   int8 alone  float among int8  sparsity 0.5  sparsity 0.75 ...

Quantization (measured on the .tflite, run by edgesmith.runtime):

* ``int8_alone_drop_pt``: accuracy lost when only this layer is int8 and the rest is float32;
* ``keep_float_gain_pt``: accuracy won back when only this layer stays float32 and the rest is int8.

Pruning (measured on the Keras model, without fine-tuning, so it ranks layers
rather than predicting the accuracy after training):

* ``pruning_drop_pt``: per sparsity, the drop when only this layer's kernel
  loses its smallest weights;
* ``channel_drop_pt``: per ratio, the drop when only this channel group
  loses its least important channels (structured pruning).

All drops are percentage points against the unmodified model.

Only :data:`KINDS` and the presenting functions are at hand without Keras (the CLI reads them for ``--help``).
"""

from __future__ import annotations

import numpy as np

from edgesmith.converters.errors import UnknownOptionError
from edgesmith.converters.verify import accuracy

from .space import channel_groups

KINDS = ("quantization", "pruning", "channels")
SPARSITIES = (0.5, 0.75, 0.9)
CHANNEL_RATIOS = (0.25, 0.5, 0.75)


def sensitivity(model, data, kinds=KINDS, sparsities=SPARSITIES, channel_ratios=CHANNEL_RATIOS, progress=None) -> dict:
    """Per-layer quantization and pruning sensitivity of ``model`` on ``data`` (see the module docstring).

    Args:
        kinds: any of ``quantization``, ``pruning``, ``channels``.
        progress: optional ``progress(stage, done, total)`` callback.

    Returns ``{"layers": [row per layer], "reference": {...}, "sparsities", "channel_ratios"}``.
    """
    from edgesmith.converters.mixed_precision import weighted_layers

    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise UnknownOptionError(f"unknown sensitivity kind(s) {', '.join(unknown)}; valid: {', '.join(KINDS)}")
    rows = {name: {"layer": name} for name in weighted_layers(model)}
    reference = {"keras_accuracy": accuracy(model, data)}
    if "quantization" in kinds:
        found = quantization_sensitivity(model, data, progress=progress)
        reference.update(found["reference"])
        _merge(rows, found["layers"])
    if "pruning" in kinds:
        _merge(rows, pruning_sensitivity(model, data, sparsities, progress))
    if "channels" in kinds:
        _merge(rows, channel_sensitivity(model, data, channel_ratios, progress))
    return {"layers": list(rows.values()), "reference": reference, "sparsities": list(sparsities),
            "channel_ratios": list(channel_ratios), "kinds": list(kinds)}


def _merge(rows: dict, found: list) -> None:
    for row in found:
        rows.setdefault(row["layer"], {"layer": row["layer"]}).update(row)


def quantization_sensitivity(model, data, quantizer=None, progress=None) -> dict:
    """Per weighted layer: the drop when it alone is int8, and the gain when it alone stays float32."""
    from edgesmith.converters.mixed_precision import MixedPrecisionQuantizer, weighted_layers
    from edgesmith.converters.ptq import float_tflite

    layers = weighted_layers(model)
    quantizer = quantizer or MixedPrecisionQuantizer(float_tflite(model), data, layers)
    float_accuracy = accuracy(quantizer.float_content, data)
    int8_accuracy = accuracy(quantizer.quantize({}, "int8"), data)
    rows = []
    for done, layer in enumerate(layers, start=1):
        alone = accuracy(quantizer.quantize({layer: "int8"}, "float32"), data)
        kept = accuracy(quantizer.quantize({layer: "float32"}, "int8"), data)
        rows.append({"layer": layer, "int8_alone_drop_pt": _points(float_accuracy - alone),
                     "keep_float_gain_pt": _points(kept - int8_accuracy)})
        if progress:
            progress("quantization", done, len(layers))
    return {"layers": rows, "reference": {"float_tflite_accuracy": float_accuracy, "int8_tflite_accuracy": int8_accuracy}}


def pruning_sensitivity(model, data, sparsities=SPARSITIES, progress=None) -> list:
    """Per kernel and sparsity: the drop when only that kernel loses its smallest-magnitude weights."""
    from edgesmith.converters.kernels import kernels

    def pruned_accuracy(kernel, sparsity) -> float:
        original = np.asarray(kernel.variable)
        threshold = np.quantile(np.abs(original), sparsity)
        kernel.variable.assign(np.where(np.abs(original) <= threshold, 0.0, original).astype(original.dtype))
        try:
            return accuracy(model, data)
        finally:
            kernel.variable.assign(original)

    targets = [(kernel.layer.name, kernel) for kernel in kernels(model)]
    return _drops(model, data, targets, sparsities, pruned_accuracy, "pruning_drop_pt", "pruning", progress)


def channel_sensitivity(model, data, ratios=CHANNEL_RATIOS, progress=None) -> list:
    """Per channel group (named by its first layer) and ratio: the drop when only that group is thinned."""
    from edgesmith.converters.channel_prune import channel_prune

    def thinned_accuracy(layer, ratio) -> float:
        return accuracy(channel_prune(model, None, ratio=0.0, ratios={layer: ratio}, scope="layer"), data)

    groups = [(layer, layer) for layer in channel_groups(model)]
    return _drops(model, data, groups, ratios, thinned_accuracy, "channel_drop_pt", "channels", progress)


def _drops(model, data, targets: list, values, accuracy_with, key: str, stage: str, progress) -> list:
    """Per ``(layer, target)``: ``{"layer", key: {value: drop}}``, each drop the points ``model`` loses on
    ``data`` when ``accuracy_with(target, value)`` measures it changed."""
    reference = accuracy(model, data)
    rows = []
    for done, (layer, target) in enumerate(targets, start=1):
        rows.append({"layer": layer, key: {str(value): _points(reference - accuracy_with(target, value))
                                           for value in values}})
        if progress:
            progress(stage, done, len(targets))
    return rows


def _points(fraction: float) -> float:
    return round(100.0 * float(fraction), 3)


# -- presenting ----------------------------------------------------------------------------


def sensitivity_table(report: dict) -> list:
    """Rows of the printed table (one per layer, drops in points, '-' where not measured)."""
    table = []
    for row in report["layers"]:
        line = {"layer": row["layer"]}
        if "quantization" in report["kinds"]:
            line["int8 alone"] = _cell(row.get("int8_alone_drop_pt"))
            line["float among int8"] = _cell(row.get("keep_float_gain_pt"), sign=True)
        if "pruning" in report["kinds"]:
            line.update({f"sparsity {v}": _cell(row.get("pruning_drop_pt", {}).get(str(v))) for v in report["sparsities"]})
        if "channels" in report["kinds"]:
            line.update({f"channels {v}": _cell(row.get("channel_drop_pt", {}).get(str(v))) for v in report["channel_ratios"]})
        table.append(line)
    return table


def _cell(value, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def format_sensitivity(report: dict) -> str:
    """The table as aligned text, with the reference accuracies under it."""
    from edgesmith.report.text import format_table

    reference = ", ".join(f"{key} {100 * value:.2f}%" for key, value in report["reference"].items() if value is not None)
    return format_table(sensitivity_table(report)) + f"\n(drops in accuracy points; reference: {reference})"


def plot_sensitivity(report: dict) -> bytes:
    """A PNG: one panel per measured kind, accuracy drop per layer."""
    from edgesmith.report.plots import png_bytes, pyplot

    panels = [kind for kind in report["kinds"] if kind in KINDS]
    plt = pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4.0), squeeze=False)
    for axis, kind in zip(axes[0], panels):
        _draw(axis, kind, report)
    figure.tight_layout()
    return png_bytes(figure)


def _draw(axis, kind: str, report: dict) -> None:
    rows = report["layers"]
    if kind == "quantization":
        measured = [r for r in rows if "int8_alone_drop_pt" in r]
        positions = np.arange(len(measured))
        axis.bar(positions - 0.2, [r["int8_alone_drop_pt"] for r in measured], 0.4, label="drop: int8 alone")
        axis.bar(positions + 0.2, [r["keep_float_gain_pt"] for r in measured], 0.4, label="gain: float among int8")
        axis.set_xticks(positions, [r["layer"] for r in measured], rotation=45, ha="right", fontsize=7)
        axis.set_ylabel("accuracy points")
    else:
        key, values = ("pruning_drop_pt", report["sparsities"]) if kind == "pruning" else ("channel_drop_pt", report["channel_ratios"])
        for row in (r for r in rows if key in r):
            axis.plot(values, [row[key][str(v)] for v in values], marker="o", label=row["layer"])
        axis.set_xlabel("sparsity" if kind == "pruning" else "fraction of channels removed")
        axis.set_ylabel("accuracy drop (points)")
    axis.set_title(f"{kind} sensitivity per layer")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
