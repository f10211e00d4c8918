"""Choosing per-layer precisions within an accuracy budget, verified on the .tflite each step.

>>> from edgesmith.optimize import choose_precisions
>>> choice = choose_precisions(model, data, max_accuracy_drop=0.5)
"""

from __future__ import annotations

from edgesmith.converters.mixed_precision import (
    PRECISIONS,
    MixedPrecisionQuantizer,
    tflite_accuracy,
    weighted_layers,
)
from edgesmith.converters.ptq import float_tflite


def choose_precisions(model, data, max_accuracy_drop: float = 1.0, *, reference_accuracy=None, order=None,
                      progress=None) -> dict:
    """The cheapest per-layer precisions whose verified .tflite stays within ``max_accuracy_drop`` points.

    Starts from all-int8 and, while the .tflite loses too much, raises the most
    sensitive layer still below float32 one step (int8 -> int16x8 -> float16 -> float32).

    Args:
        reference_accuracy: the accuracy the drop is measured from (default: the float .tflite's).
        order: layers from most to least sensitive (default: from :func:`quantization_sensitivity`).

    Returns ``{"precisions", "accuracy", "accuracy_drop_pt", "met", "steps", "content"}``.

    >>> choice = choose_precisions(model, data, max_accuracy_drop=1.0)
    >>> choice["met"], choice["precisions"]
    (True, {'conv1': 'int8', 'conv2': 'int8', 'fc1': 'int8', 'head': 'int8'})
    """
    layers = weighted_layers(model)
    quantizer = MixedPrecisionQuantizer(float_tflite(model), data, layers)
    reference = reference_accuracy if reference_accuracy is not None else tflite_accuracy(quantizer.float_content, data)
    if order is None:
        from .sensitivity import quantization_sensitivity

        rows = quantization_sensitivity(model, data, quantizer=quantizer)["layers"]
        order = [row["layer"] for row in sorted(rows, key=lambda r: -r["keep_float_gain_pt"])]
    precisions = dict.fromkeys(layers, "int8")
    steps = []
    while True:
        content = quantizer.quantize(precisions, "int8")
        accuracy = tflite_accuracy(content, data)
        drop = round(100.0 * (reference - accuracy), 4)
        steps.append({"precisions": dict(precisions), "accuracy": accuracy, "accuracy_drop_pt": drop})
        if progress:
            progress("mixed_precision", len(steps), None)
        raised = drop > max_accuracy_drop and _raise_one(precisions, order)
        if not raised:
            return {"precisions": precisions, "accuracy": accuracy, "accuracy_drop_pt": drop,
                    "met": drop <= max_accuracy_drop, "steps": steps, "content": content}


def _raise_one(precisions: dict, order) -> bool:
    """Raise one layer a precision step: the most sensitive among those at the lowest level.

    Every layer reaches int16x8 before any goes to float16, and so on; False when all are float32.
    """
    levels = {layer: PRECISIONS.index(precisions[layer]) for layer in order}
    open_levels = [level for level in levels.values() if level < len(PRECISIONS) - 1]
    if not open_levels:
        return False
    layer = next(name for name in order if levels[name] == min(open_levels))
    precisions[layer] = PRECISIONS[levels[layer] + 1]
    return True
