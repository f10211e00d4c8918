"""Choosing per-layer precisions within an accuracy budget, verified on the .tflite each step.

>>> from edgesmith.optimize import choose_precisions
>>> choice = choose_precisions(model, data, max_accuracy_drop=0.5)
"""

from __future__ import annotations

from edgesmith.converters.fallback import raise_precisions
from edgesmith.converters.mixed_precision import EIGHT_BIT_OF, MixedPrecisionQuantizer, weighted_layers
from edgesmith.converters.ptq import float_tflite
from edgesmith.converters.verify import accuracy


def choose_precisions(model, data, max_accuracy_drop: float = 1.0, *, lowest: str = "int8", reference_accuracy=None,
                      order=None, progress=None) -> dict:
    """The cheapest per-layer precisions whose verified .tflite stays within ``max_accuracy_drop`` points.

    Starts from every layer at ``lowest`` (``int4``: 4 bits where the op takes them, int8 elsewhere) and,
    while the .tflite loses too much, raises the most sensitive layer among those at the lowest level one
    step (int4 -> int8 -> int16x8 -> float16 -> float32); the other ops stay at the 8-bit default.

    Args:
        lowest: where every layer starts: ``int8`` or ``int4`` (or a dynamic precision).
        reference_accuracy: the accuracy the drop is measured from (default: the float .tflite's).
        order: layers from most to least sensitive (default: from :func:`quantization_sensitivity`).

    Returns ``{"precisions", "accuracy", "accuracy_drop_pt", "met", "steps", "content"}``.

    >>> choice = choose_precisions(model, data, max_accuracy_drop=1.0)
    >>> choice["met"], choice["precisions"]
    (True, {'conv1': 'int8', 'conv2': 'int8', 'fc1': 'int8', 'head': 'int8'})
    >>> choose_precisions(model, data, max_accuracy_drop=1.0, lowest="int4")["met"]
    True
    """
    layers = weighted_layers(model)
    quantizer = MixedPrecisionQuantizer(float_tflite(model), data, layers)
    reference = reference_accuracy if reference_accuracy is not None else accuracy(quantizer.float_content, data)
    if order is None:
        from .sensitivity import quantization_sensitivity

        rows = quantization_sensitivity(model, data, quantizer=quantizer)["layers"]
        order = [row["layer"] for row in sorted(rows, key=lambda r: -r["keep_float_gain_pt"])]
    found = raise_precisions(quantizer, data, quantizer.resolved({}, lowest), EIGHT_BIT_OF.get(lowest, lowest),
                             reference=reference, max_accuracy_drop=max_accuracy_drop, order=order, other_ops=False)
    steps = [{key: step[key] for key in ("precisions", "accuracy", "accuracy_drop_pt")} for step in found["steps"]]
    if progress:
        progress("mixed_precision", len(steps), None)
    return {"precisions": found["precisions"], "accuracy": found["accuracy"], "accuracy_drop_pt": found["accuracy_drop_pt"],
            "met": found["met"], "steps": steps, "content": found["content"]}
